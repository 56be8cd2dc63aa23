/* HAProxy PROXY protocol (v1 and v2) header parser and trusted-proxy address lists; runs in the pre-auth process (root only matches the peer against --proxy-from) and is pure: no I/O except proxy_read_header(). */
#ifndef MP_PROXY_H
#define MP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* One entry of --proxy-from.  An IPv4-mapped IPv6 entry of prefix >= 96 is
 * stored as the IPv4 network it covers. */
struct proxy_net {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];	/* network order; IPv4 in the first 4 */
	unsigned	prefix;		/* 0..32 or 0..128 */
};

/* Parses "10.0.0.0/8,::1,192.0.2.7" into nets[0..max).  A bare address is a
 * /32 or /128.  No spaces, no empty entries, no host bits set beyond the
 * prefix, no leading zeros in the prefix.  Returns the count (>= 1), or -1
 * with errno EINVAL on a syntax error or E2BIG for more than max entries.
 * Writes nothing to stderr. */
int	proxy_parse_cidrs(const char *spec, struct proxy_net *nets, int max);

/* True when peer (AF_INET or AF_INET6; IPv4-mapped IPv6 compares as IPv4)
 * is inside one of nets[0..n).  Any other family is never trusted. */
bool	proxy_addr_trusted(const struct sockaddr *peer, const struct proxy_net *nets, int n);

enum proxy_result {
	PROXY_OK,		/* a complete, valid header; see info */
	PROXY_NEED_MORE,	/* a valid prefix of a header: read more */
	PROXY_BAD,		/* malformed: drop the connection */
};

struct proxy_info {
	bool			local;		/* v2 LOCAL, v2 UNSPEC/UDP/UNIX, v1 UNKNOWN: keep the socket's own address */
	struct sockaddr_storage	src;		/* the client's address and port when !local */
	socklen_t		srclen;
	size_t			consumed;	/* header length in octets */
};

/* Parses the header at the start of buf[0..len).  Only reads buf[0..header
 * end); on PROXY_OK info->consumed is the header length.  On any other
 * result *info is zeroed. */
enum proxy_result proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *info);

/* Reads exactly one header from fd and nothing after it.  The whole header
 * must arrive within timeout_ms (< 0: no limit).  Returns 0 and fills info,
 * or -1 with errno EPROTO (malformed, or end of stream inside the header),
 * ETIMEDOUT, or the error of poll()/read(). */
int	proxy_read_header(int fd, int timeout_ms, struct proxy_info *info);

#endif
