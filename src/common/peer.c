/* Names a peer from its socket address, for the log and PAM_RHOST, and says whether it is on this machine; shared: root names the launcher's peer with it, the pre-auth process a PROXY header's source. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"

void
conn_format_addr(const struct sockaddr *sa, char *out, size_t outsize, bool *loopback_r)
{
	*loopback_r = false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outsize);
		*loopback_r = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			struct in_addr a;

			memcpy(&a, &sin6->sin6_addr.s6_addr[12], 4);
			inet_ntop(AF_INET, &a, out, (socklen_t)outsize);
			*loopback_r = (ntohl(a.s_addr) >> 24) == 127;
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)outsize);
			*loopback_r = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		}
	} else {
		snprintf(out, outsize, "local");
		*loopback_r = sa->sa_family == AF_UNIX;
	}
}

void
conn_set_peer(struct conn *c, const struct sockaddr *sa)
{
	size_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	memset(&c->peer_sa, 0, sizeof(c->peer_sa));
	memcpy(&c->peer_sa, sa, len);
	conn_format_addr(sa, c->peer, sizeof(c->peer), &c->secure);
}
