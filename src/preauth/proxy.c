/* HAProxy PROXY protocol (v1 and v2) header parser and trusted-proxy address lists; runs in the pre-auth process (root only matches the peer against --proxy-from) and is pure: no I/O except proxy_read_header(). */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pop3d-limits.h"
#include "deadline.h"
#include "proto.h"
#include "proxy.h"

/* Spec section 2.2: the 12-octet v2 signature, then ver_cmd, fam, 2-octet
 * length, then the address block. */
static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
#define V2_OFF_VER_CMD	12
#define V2_OFF_FAM	13
#define V2_OFF_LEN	14
#define V2_HDR_LEN	16		/* the address block starts here */
/* Address block sizes (spec 2.2): two addresses and two ports. */
#define V2_ADDR_INET	12
#define V2_ADDR_INET6	36
#define V2_ADDR_UNIX	216
/* The source port follows both addresses of the block. */
#define V2_SPORT_INET	(V2_HDR_LEN + 2 * 4)
#define V2_SPORT_INET6	(V2_HDR_LEN + 2 * 16)
#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1
#define V2_TCP4		0x11
#define V2_TCP6		0x21
#define PP2_TYPE_CRC32C	0x03

/* Shortest possible header: "PROXY UNKNOWN\r\n" (v1); v2 is at least 16. */
#define V1_MIN_LEN	15

static const unsigned char v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/*
 * A cursor over text.  partial means the text is a prefix of something not
 * yet complete: running out of it is PROXY_NEED_MORE, not PROXY_BAD.  That
 * way one grammar both parses complete lines and rejects bad prefixes early.
 */
struct cursor {
	const unsigned char	*p, *end;
	bool			 partial;
};

static enum proxy_result
at_end(const struct cursor *c)
{
	return c->partial ? PROXY_NEED_MORE : PROXY_BAD;
}

static enum proxy_result
expect(struct cursor *c, const char *lit)
{
	for (; *lit != '\0'; lit++) {
		if (c->p == c->end)
			return at_end(c);
		if (*c->p != (unsigned char)*lit)
			return PROXY_BAD;
		c->p++;
	}
	return PROXY_OK;
}

/* Decimal in 0..max without leading zeros (spec 2.1: no octal confusion). */
static enum proxy_result
decimal(struct cursor *c, unsigned max, unsigned *val_r)
{
	const char *s = (const char *)c->p;
	size_t avail = (size_t)(c->end - c->p), n;
	uint64_t v = 0;

	n = proto_scan_u64(s, avail, max, &v);
	/* Too large, or a leading zero, is bad even in a prefix. */
	if ((n == 0 && avail > 0 && *s >= '0' && *s <= '9') || (n > 1 && *s == '0'))
		return PROXY_BAD;
	c->p += n;
	if (c->p == c->end && c->partial)
		return PROXY_NEED_MORE;
	if (n == 0)
		return PROXY_BAD;
	*val_r = (unsigned)v;
	return PROXY_OK;
}

/* Exactly four decimals 0..255 separated by single dots. */
static enum proxy_result
ipv4(struct cursor *c, unsigned char out[4])
{
	enum proxy_result r;
	unsigned v;
	int i;

	for (i = 0; i < 4; i++) {
		if (i > 0 && (r = expect(c, ".")) != PROXY_OK)
			return r;
		if ((r = decimal(c, 255, &v)) != PROXY_OK)
			return r;
		out[i] = (unsigned char)v;
	}
	return PROXY_OK;
}

static bool
is_ipv6_char(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
	    (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.';
}

/*
 * IPv6 text as inet_pton() takes it.  The dotted tail is accepted because
 * senders format with inet_ntop(), which writes IPv4-mapped addresses as
 * "::ffff:192.0.2.7".
 */
static enum proxy_result
ipv6(struct cursor *c, unsigned char out[16])
{
	char text[INET6_ADDRSTRLEN];
	size_t n = 0;

	while (c->p < c->end && is_ipv6_char(*c->p)) {
		if (n == sizeof(text) - 1)
			return PROXY_BAD;
		text[n++] = (char)*c->p++;
	}
	if (c->p == c->end && c->partial)
		return PROXY_NEED_MORE;
	if (n == 0)
		return PROXY_BAD;
	text[n] = '\0';
	return inet_pton(AF_INET6, text, out) == 1 ? PROXY_OK : PROXY_BAD;
}

static void
set_sockaddr(struct proxy_info *info, int family, const unsigned char *addr,
    unsigned port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&info->src, 0, sizeof(info->src));
	if (family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		memcpy(&sin.sin_addr, addr, 4);
		memcpy(&info->src, &sin, sizeof(sin));
		info->srclen = sizeof(sin);
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		memcpy(&sin6.sin6_addr, addr, 16);
		memcpy(&info->src, &sin6, sizeof(sin6));
		info->srclen = sizeof(sin6);
	}
}

/*
 * "PROXY" SP ( "UNKNOWN" [SP anything] | "TCP4" SP a4 SP a4 SP port SP port
 * | "TCP6" SP a6 SP a6 SP port SP port ) CRLF, at most LIMIT_PROXY_V1 octets
 * with the CRLF (spec 2.1).  A lone CR or LF anywhere is refused.
 */
static enum proxy_result
parse_v1(const unsigned char *buf, size_t len, struct proxy_info *info)
{
	struct cursor c;
	enum proxy_result r;
	unsigned char src[16], dst[16];
	unsigned sport, dport;
	size_t i, lim, eol = 0;
	bool found = false;
	int family;

	lim = len < LIMIT_PROXY_V1 ? len : LIMIT_PROXY_V1;
	for (i = 0; i < lim; i++) {
		if (buf[i] == '\n')
			return PROXY_BAD;
		if (buf[i] == '\r') {
			if (i + 2 > LIMIT_PROXY_V1)
				return PROXY_BAD;
			if (i + 1 == len)
				break;
			if (buf[i + 1] != '\n')
				return PROXY_BAD;
			eol = i;
			found = true;
			break;
		}
	}
	if (!found && len >= LIMIT_PROXY_V1)
		return PROXY_BAD;

	c.p = buf;
	c.end = found ? buf + eol : buf + i;
	c.partial = !found;

	if ((r = expect(&c, "PROXY ")) != PROXY_OK)
		return r;
	if (c.p < c.end && *c.p == 'U') {
		if ((r = expect(&c, "UNKNOWN")) != PROXY_OK)
			return r;
		if (c.p < c.end && *c.p != ' ')
			return PROXY_BAD;
		if (c.partial)
			return PROXY_NEED_MORE;
		info->local = true;
		info->consumed = eol + 2;
		return PROXY_OK;
	}
	if ((r = expect(&c, "TCP")) != PROXY_OK)
		return r;
	if (c.p == c.end)
		return at_end(&c);
	if (*c.p == '4')
		family = AF_INET;
	else if (*c.p == '6')
		family = AF_INET6;
	else
		return PROXY_BAD;
	c.p++;

	if ((r = expect(&c, " ")) != PROXY_OK)
		return r;
	r = family == AF_INET ? ipv4(&c, src) : ipv6(&c, src);
	if (r != PROXY_OK)
		return r;
	if ((r = expect(&c, " ")) != PROXY_OK)
		return r;
	r = family == AF_INET ? ipv4(&c, dst) : ipv6(&c, dst);
	if (r != PROXY_OK)
		return r;
	if ((r = expect(&c, " ")) != PROXY_OK)
		return r;
	if ((r = decimal(&c, 65535, &sport)) != PROXY_OK)
		return r;
	if ((r = expect(&c, " ")) != PROXY_OK)
		return r;
	if ((r = decimal(&c, 65535, &dport)) != PROXY_OK)
		return r;
	if (c.p != c.end)
		return PROXY_BAD;
	if (c.partial)		/* decimal() said so already; a guard */
		return PROXY_NEED_MORE;

	set_sockaddr(info, family, src, sport);
	info->consumed = eol + 2;
	return PROXY_OK;
}

/* RFC 4960 appendix B (CRC32c, reflected polynomial 0x82F63B78), bitwise:
 * headers are at most a few hundred octets. */
static uint32_t
crc32c(const unsigned char *p, size_t len, size_t zero_at)
{
	uint32_t crc = 0xFFFFFFFFu;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= (i >= zero_at && i < zero_at + 4) ? 0 : p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* The TLVs in hdr[off..len) must tile it exactly; a CRC32C TLV (at most
 * one, of 4 octets) must match (spec 2.2.3: MUST treat as invalid). */
static bool
tlvs_valid(const unsigned char *hdr, size_t len, size_t off)
{
	size_t vlen, crc_at = 0;
	bool have_crc = false;
	uint32_t want;

	while (off < len) {
		if (len - off < 3)
			return false;
		vlen = (size_t)hdr[off + 1] << 8 | hdr[off + 2];
		if (len - off - 3 < vlen)
			return false;
		if (hdr[off] == PP2_TYPE_CRC32C) {
			if (vlen != 4 || have_crc)
				return false;
			have_crc = true;
			crc_at = off + 3;
		}
		off += 3 + vlen;
	}
	if (!have_crc)
		return true;
	want = (uint32_t)hdr[crc_at] << 24 | (uint32_t)hdr[crc_at + 1] << 16 |
	    (uint32_t)hdr[crc_at + 2] << 8 | hdr[crc_at + 3];
	return crc32c(hdr, len, crc_at) == want;
}

/* Address block size of a valid v2 family/transport octet, or -1. */
static int
v2_addr_len(unsigned char fam)
{
	switch (fam) {
	case 0x00:
		return 0;
	case 0x11: case 0x12:
		return V2_ADDR_INET;
	case 0x21: case 0x22:
		return V2_ADDR_INET6;
	case 0x31: case 0x32:
		return V2_ADDR_UNIX;
	default:
		return -1;
	}
}

/*
 * Spec 2.2.  LOCAL ignores the family and the whole block.  PROXY over TCP
 * gives the client's address.  The other valid combinations (UNSPEC, UDP,
 * UNIX) fall back to the real endpoints, as the spec asks of receivers
 * that do not implement them.
 */
static enum proxy_result
parse_v2(const unsigned char *buf, size_t len, struct proxy_info *info)
{
	size_t n, body;
	unsigned ver, cmd;
	int alen = 0;

	n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	if (memcmp(buf, v2_sig, n) != 0)
		return PROXY_BAD;
	if (len <= V2_OFF_VER_CMD)
		return PROXY_NEED_MORE;
	ver = buf[V2_OFF_VER_CMD] >> 4;
	cmd = buf[V2_OFF_VER_CMD] & 0x0F;
	if (ver != 2 || (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY))
		return PROXY_BAD;
	if (len <= V2_OFF_FAM)
		return PROXY_NEED_MORE;
	if (cmd == V2_CMD_PROXY && (alen = v2_addr_len(buf[V2_OFF_FAM])) < 0)
		return PROXY_BAD;
	if (len < V2_HDR_LEN)
		return PROXY_NEED_MORE;
	body = (size_t)buf[V2_OFF_LEN] << 8 | buf[V2_OFF_LEN + 1];
	if (body > LIMIT_PROXY_V2_BODY || body < (size_t)alen)
		return PROXY_BAD;
	if (len < V2_HDR_LEN + body)
		return PROXY_NEED_MORE;

	if (cmd == V2_CMD_LOCAL ||
	    (buf[V2_OFF_FAM] != V2_TCP4 && buf[V2_OFF_FAM] != V2_TCP6)) {
		info->local = true;
		info->consumed = V2_HDR_LEN + body;
		return PROXY_OK;
	}
	if (!tlvs_valid(buf, V2_HDR_LEN + body, V2_HDR_LEN + (size_t)alen))
		return PROXY_BAD;
	if (buf[V2_OFF_FAM] == V2_TCP4)
		set_sockaddr(info, AF_INET, buf + V2_HDR_LEN,
		    (unsigned)buf[V2_SPORT_INET] << 8 | buf[V2_SPORT_INET + 1]);
	else
		set_sockaddr(info, AF_INET6, buf + V2_HDR_LEN,
		    (unsigned)buf[V2_SPORT_INET6] << 8 | buf[V2_SPORT_INET6 + 1]);
	info->consumed = V2_HDR_LEN + body;
	return PROXY_OK;
}

enum proxy_result
proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *info)
{
	enum proxy_result r;

	memset(info, 0, sizeof(*info));
	if (len == 0)
		return PROXY_NEED_MORE;
	if (buf[0] == v2_sig[0])
		r = parse_v2(buf, len, info);
	else
		r = parse_v1(buf, len, info);
	if (r != PROXY_OK)
		memset(info, 0, sizeof(*info));
	return r;
}

/* Octets we may read next without any risk of reading past the header. */
static size_t
want_more(const unsigned char *buf, size_t have)
{
	if (have < V1_MIN_LEN)
		return V1_MIN_LEN - have;
	if (buf[0] != v2_sig[0])
		return 1;	/* v1: the end is the CRLF, so one octet at a time */
	if (have < V2_HDR_LEN)
		return V2_HDR_LEN - have;
	return V2_HDR_LEN + ((size_t)buf[V2_OFF_LEN] << 8 | buf[V2_OFF_LEN + 1]) - have;
}

/*
 * Exact-size reads rather than recv(MSG_PEEK): a peek cannot wait for more
 * data (poll() stays readable while a partial header sits in the buffer, so
 * the loop would spin), and it only works on sockets.  Each read asks for at
 * most what the header still certainly needs: the 15 octets of the shortest
 * header, then the rest of the v2 fixed part and its announced length, or
 * v1 one octet at a time up to its CRLF (at most 92 small reads, once per
 * connection).  The timeout covers the whole header so that a sender that
 * dribbles octets cannot hold the process for longer.
 */
int
proxy_read_header(int fd, int timeout_ms, struct proxy_info *info)
{
	unsigned char buf[V2_HDR_LEN + LIMIT_PROXY_V2_BODY];
	long long deadline;
	size_t have = 0, want;
	ssize_t got;

	memset(info, 0, sizeof(*info));
	deadline = deadline_in_ms(timeout_ms);
	for (;;) {
		want = want_more(buf, have);
		if (want == 0 || want > sizeof(buf) - have) {
			errno = EPROTO;	/* cannot happen after NEED_MORE */
			return -1;
		}
		if (deadline_wait_fd(fd, POLLIN, deadline) == -1)
			return -1;
		got = read(fd, buf + have, want);
		if (got == -1) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		if (got == 0) {
			errno = EPROTO;
			return -1;
		}
		have += (size_t)got;
		switch (proxy_parse(buf, have, info)) {
		case PROXY_OK:
			return 0;
		case PROXY_BAD:
			errno = EPROTO;
			return -1;
		case PROXY_NEED_MORE:
			break;
		}
	}
}

/* One "addr[/prefix]" in s[0..len). */
static int
parse_net(const char *s, size_t len, struct proxy_net *net)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - s) : len;
	char text[INET6_ADDRSTRLEN];
	struct cursor c;
	unsigned prefix, bits, i;

	memset(net, 0, sizeof(*net));
	if (memchr(s, ':', alen) != NULL) {
		if (alen == 0 || alen >= sizeof(text))
			return -1;
		memcpy(text, s, alen);
		text[alen] = '\0';
		if (inet_pton(AF_INET6, text, net->addr) != 1)
			return -1;
		net->family = AF_INET6;
		bits = 128;
	} else {
		c.p = (const unsigned char *)s;
		c.end = c.p + alen;
		c.partial = false;
		if (ipv4(&c, net->addr) != PROXY_OK || c.p != c.end)
			return -1;
		net->family = AF_INET;
		bits = 32;
	}
	prefix = bits;
	if (slash != NULL) {
		c.p = (const unsigned char *)slash + 1;
		c.end = (const unsigned char *)s + len;
		c.partial = false;
		if (decimal(&c, bits, &prefix) != PROXY_OK || c.p != c.end)
			return -1;
	}
	/* Host bits beyond the prefix are most likely a typo: refuse them. */
	for (i = prefix; i < bits; i++)
		if (net->addr[i / 8] & (0x80u >> (i % 8)))
			return -1;
	net->prefix = prefix;
	if (net->family == AF_INET6 && prefix >= 96 &&
	    memcmp(net->addr, v4mapped_prefix, 12) == 0) {
		memmove(net->addr, net->addr + 12, 4);
		memset(net->addr + 4, 0, 12);
		net->family = AF_INET;
		net->prefix = prefix - 96;
	}
	return 0;
}

int
proxy_parse_cidrs(const char *spec, struct proxy_net *nets, int max)
{
	const char *p, *comma;
	size_t len;
	int n = 0;

	if (spec == NULL || max < 0) {
		errno = EINVAL;
		return -1;
	}
	for (p = spec;; p = comma + 1) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == 0) {
			errno = EINVAL;
			return -1;
		}
		if (n == max) {
			errno = E2BIG;
			return -1;
		}
		if (parse_net(p, len, &nets[n]) == -1) {
			errno = EINVAL;
			return -1;
		}
		n++;
		if (comma == NULL)
			return n;
	}
}

static bool
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xFFu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool
proxy_addr_trusted(const struct sockaddr *peer, const struct proxy_net *nets, int n)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	unsigned char addr[16];
	int family, i;

	if (peer == NULL)
		return false;
	if (peer->sa_family == AF_INET) {
		memcpy(&sin, peer, sizeof(sin));
		memcpy(addr, &sin.sin_addr, 4);
		family = AF_INET;
	} else if (peer->sa_family == AF_INET6) {
		memcpy(&sin6, peer, sizeof(sin6));
		memcpy(addr, &sin6.sin6_addr, 16);
		family = AF_INET6;
		if (memcmp(addr, v4mapped_prefix, 12) == 0) {
			memmove(addr, addr + 12, 4);
			family = AF_INET;
		}
	} else
		return false;

	for (i = 0; i < n; i++)
		if (nets[i].family == family &&
		    prefix_equal(addr, nets[i].addr, nets[i].prefix))
			return true;
	return false;
}
