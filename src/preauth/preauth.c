/* The pre-auth process: loads TLS, takes its unprivileged identity in the empty chroot, reads the PROXY header, does the handshake, serves AUTHORIZATION, asks root about every login, hands over what the client pipelined, and relays TLS after login; runs as the pre-auth user (as root only up to the drop, reading no client byte). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "deadline.h"
#include "log.h"
#include "preauth.h"
#include "sandbox.h"
#ifdef HAVE_OPENSSL
#include "tls.h"
#endif

static int ctl = -1;

int
preauth_ask(struct session *s, int method, const char *user, const char *password,
    bool *close_r)
{
	static struct ps_auth a;
	struct ps_answer ans;
	ssize_t n;

	memset(&a, 0, sizeof(a));
	a.type = PS_AUTH;
	a.version = PS_VERSION;
	a.method = (uint32_t)method;
	a.tls = s->tls_active;
	/* What does not fit is sent empty: root answers it as a failure,
	 * with the same delay, and counts it. */
	if (strlen(user) < sizeof(a.user))
		memcpy(a.user, user, strlen(user) + 1);
	if (strlen(password) < sizeof(a.password))
		memcpy(a.password, password, strlen(password) + 1);
	snprintf(a.peer, sizeof(a.peer), "%s", s->peer);
	n = send(ctl, &a, sizeof(a), MSG_NOSIGNAL);
	explicit_bzero(&a, sizeof(a));
	if (n != (ssize_t)sizeof(a))
		return -1;
	do
		n = recv(ctl, &ans, sizeof(ans), 0);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(ans) || ans.type != PS_ANSWER || ans.result < PS_OK ||
	    ans.result > PS_HOME_TOO_LONG || ans.close > 1)
		return -1;
	*close_r = ans.close == 1;
	return (int)ans.result;
}

#ifdef HAVE_OPENSSL
/* Plaintext between the TLS connection and the session's socket, until
 * either side is done.  Input and output are buffered apart so that a
 * client that does not read cannot stop its own commands. */
static void
relay(struct session *s, int fd)
{
	static char up[LIMIT_FILE_CHUNK], down[LIMIT_FILE_CHUNK];
	size_t up_off = 0, up_len = 0, down_off = 0, down_len = 0;
	bool client_eof = false, session_eof = false, progress;
	short want_r = POLLIN, want_w = POLLOUT;
	struct pollfd pfd[2];
	ssize_t n;

	for (;;) {
		progress = false;
		if (up_len == 0 && !client_eof) {
			n = tls_ops.read(s->tls, up, sizeof(up), &want_r);
			if (n > 0) {
				up_off = 0;
				up_len = (size_t)n;
				progress = true;
			} else if (n == 0) {
				client_eof = progress = true;
				shutdown(fd, SHUT_WR);
			} else if (errno != EAGAIN)
				return;
		}
		if (up_len > 0) {
			n = write(fd, up + up_off, up_len);
			if (n > 0) {
				up_off += (size_t)n;
				up_len -= (size_t)n;
				progress = true;
			} else if (errno != EAGAIN)
				return;
		}
		if (down_len == 0 && !session_eof) {
			n = read(fd, down, sizeof(down));
			if (n > 0) {
				down_off = 0;
				down_len = (size_t)n;
				progress = true;
			} else if (n == 0)
				session_eof = progress = true;
			else if (errno != EAGAIN)
				return;
		}
		if (down_len > 0) {
			n = tls_ops.write(s->tls, down + down_off, down_len, &want_w);
			if (n > 0) {
				down_off += (size_t)n;
				down_len -= (size_t)n;
				progress = true;
			} else if (errno != EAGAIN)
				return;
		}
		if (session_eof && down_len == 0) {
			tls_shutdown(s->tls);
			return;
		}
		if (progress)
			continue;
		pfd[0].fd = s->io.rfd;
		pfd[0].events = (short)((up_len == 0 && !client_eof ? want_r : 0) |
		    (down_len > 0 ? want_w : 0));
		pfd[1].fd = fd;
		pfd[1].events = (short)((down_len == 0 && !session_eof ? POLLIN : 0) |
		    (up_len > 0 ? POLLOUT : 0));
		if (poll(pfd, 2, -1) == -1 && errno != EINTR)
			return;
	}
}
#endif

/* After root said yes: what the client sent behind its login command goes
 * to the session, then the process ends or becomes the TLS relay. */
static void
handover(struct session *s, int relay_fd)
{
	static struct ps_handover h;

	lineio_flush(&s->io);
	memset(&h, 0, sizeof(h));
	h.type = PS_HANDOVER;
	h.tls = s->tls_active;
	h.inlen = (uint32_t)s->io.in_len;
	memcpy(h.in, s->io.in + s->io.in_start, s->io.in_len);
	if (s->io.failed || send(ctl, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		_exit(MP_EXIT_ERROR);
	explicit_bzero(&h, sizeof(h));
#ifdef HAVE_OPENSSL
	if (s->tls_active) {
		/* The tighter filter forbids fcntl: non-blocking first. */
		fcntl(relay_fd, F_SETFL, fcntl(relay_fd, F_GETFL) | O_NONBLOCK);
		if (sandbox_relay() == -1)
			_exit(MP_EXIT_CONFIG);
		relay(s, relay_fd);
	}
#else
	(void)relay_fd;
#endif
	_exit(MP_EXIT_QUIT);
}

#ifdef HAVE_OPENSSL
static void
config_error(int fd, const char *line)
{
	ssize_t n = write(fd, line, strlen(line));

	(void)n;
	_exit(MP_EXIT_CONFIG);
}
#endif

/* A macro: the resource's type differs between C libraries. */
#define LIMIT(resource, value) do { \
	struct rlimit rl_ = { (value), (value) }; \
	if (setrlimit((resource), &rl_) == -1) \
		fatal("setrlimit %s", #resource); \
} while (0)

/* Tight limits, as the pre-auth user (lowering needs no privilege), and no
 * way to gain privileges or be traced by the user's other processes. */
static void
limits(const struct privdrop_preauth *p)
{
	LIMIT(RLIMIT_CORE, 0);
	if (!p->may_write_files)
		LIMIT(RLIMIT_FSIZE, 0);
	LIMIT(RLIMIT_NOFILE, LIMIT_PREAUTH_NOFILE);
	/* Counted per real uid: only the dedicated user's count is ours. */
	if (p->as_root)
		LIMIT(RLIMIT_NPROC, 0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(MP_ASAN)
	/* The sanitizers reserve terabytes of address space. */
	LIMIT(RLIMIT_AS, LIMIT_PREAUTH_AS);
#endif
#if defined(HAVE_SYS_PRCTL_H) && defined(PR_SET_NO_NEW_PRIVS)
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
#endif
	privdrop_nodump();
}

noreturn void
preauth_main(const struct preauth_conf *pc)
{
	static struct session s;
	const struct options *opt = pc->opt;
	struct conn *c = pc->conn;
	long long phase_s;
	int st;

	ctl = pc->ctl;
	/* The time zone for syslog's time stamps came with the fork (log_init). */
#ifdef HAVE_OPENSSL
	if (opt->tls != TLS_OFF) {
		char err[512];

		/* As root: the key file may be readable by root alone.  The
		 * session process never maps OpenSSL, never sees the key. */
		if (tls_init(opt->tls_cert, opt->tls_key, err, sizeof(err)) == -1) {
			log_warnx("TLS configuration error: %s", err);
			if (opt->tls == TLS_STARTTLS)
				config_error(c->wfd, "-ERR [SYS/PERM] TLS is misconfigured on this server.\r\n");
			_exit(MP_EXIT_CONFIG);
		}
	}
#endif
	privdrop_preauth(pc->id);
	limits(pc->id);
	/* Confined before the first client byte: no file, no exec, no new
	 * socket (sandbox.c). */
	if (sandbox_preauth() == -1)
		_exit(MP_EXIT_CONFIG);
	session_init(&s, opt, c->rfd, c->wfd);
	if (pc->nnets > 0 && c->peer_sa.ss_family != AF_UNSPEC &&
	    proxy_addr_trusted((struct sockaddr *)&c->peer_sa, pc->nets, pc->nnets)) {
		struct proxy_info pi;

		if (proxy_read_header(c->rfd, opt->timeout * 1000, &pi) == -1) {
			log_warn("PROXY header missing or malformed: rhost=<%s>", c->peer);
			_exit(MP_EXIT_ERROR);
		}
		char proxy_addr[sizeof(c->peer)];

		/* The proxy's own connection: v2 LOCAL, v1 UNKNOWN, or a header
		 * that names the proxy itself as the source (HAProxy's v1 health
		 * checks).  A health check connects and leaves; a client behind
		 * the proxy that leaves is still logged. */
		snprintf(proxy_addr, sizeof(proxy_addr), "%s", c->peer);
		if (!pi.local)
			conn_set_peer(c, (struct sockaddr *)&pi.src);
		s.quiet_eof = pi.local || strcmp(proxy_addr, c->peer) == 0;
	}
	snprintf(s.peer, sizeof(s.peer), "%s", c->peer);
	s.peer_secure = c->secure;
	s.is_socket = c->is_socket;
	phase_s = LIMIT_LOGIN_PHASE_TIMEOUTS * (long long)opt->timeout;
	s.login_deadline = deadline_in_ms((int)(phase_s < LIMIT_LOGIN_PHASE_S ? phase_s :
	    LIMIT_LOGIN_PHASE_S) * 1000);
#ifdef HAVE_OPENSSL
	if (opt->tls != TLS_OFF) {
		s.tls_ready = true;
		if (opt->tls == TLS_IMPLICIT) {
			struct tls_conn *t = tls_accept(c->rfd, opt->timeout * 1000, c->peer);

			if (t == NULL)
				_exit(MP_EXIT_ERROR);
			lineio_set_transport(&s.io, &tls_ops, t);
			s.tls = t;
			s.tls_active = true;
		}
	}
#endif
	st = session_run(&s);
	if (s.end == END_HANDOVER)
		handover(&s, pc->relay);
	_exit(st);
}
