/* Where the session takes over the process the launcher started, after root's privilege drop (launch.c): the connection or the TLS relay, the hand-over, and at the end the pre-auth process; runs as the mailbox owner. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "conn.h"
#include "monitor.h"
#include "session.h"
#include "start.h"

int
session_start(const struct options *opt, const struct conn *c, const struct monitor_login *ml,
    int relay, pid_t preauth)
{
	/* One per process: static, so nothing is left to free. */
	static struct session s;
	int status;

	session_init(&s, opt, ml->tls ? relay : c->rfd, ml->tls ? relay : c->wfd);
	if (ml->tls) {
		/* The relay has the connection; this process keeps none. */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		dup2(null, c->rfd);
		dup2(null, c->wfd);
		close(null);
		fcntl(relay, F_SETFL, fcntl(relay, F_GETFL) | O_NONBLOCK);
	} else if (relay != -1) {
		close(relay);
		relay = -1;
	}
	/* monitor_run() left ml->peer NUL-terminated and validated. */
	snprintf(s.peer, sizeof(s.peer), "%.*s", (int)sizeof(s.peer) - 1, ml->peer);
	s.is_socket = c->is_socket || ml->tls;
	s.tls_active = ml->tls;
	status = session_after_login(&s, ml->user, ml->home, ml->method, ml->handover.in,
	    ml->handover.inlen);
	if (relay != -1)
		close(relay);
	/* The pre-auth process: a zombie since the hand-over, or the TLS
	 * relay, which ends once the last byte is out. */
	monitor_reap(preauth);
	return status;
}
