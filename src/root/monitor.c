/* Root's side of the login: reads the pre-auth child's fixed-size requests, checks each field, asks PAM (in its own child), answers every failure at the same fixed time and counts them, and on success drops privileges before the hand-over; runs as root after the connection is accepted. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_pam.h"
#include "deadline.h"
#include "log.h"
#include "monitor.h"
#include "privdrop.h"

/* One record of exactly len octets, within the deadline.  0; 1 when the
 * child closed its end; -2 on a timeout; -1 on an error or any other length
 * (told apart by value: a wrong length leaves errno as it was). */
static int
recv_record(int fd, void *rec, size_t len, long long deadline)
{
	char buf[sizeof(struct ps_handover) + 1];
	ssize_t n;

	if (deadline_wait_fd(fd, POLLIN, deadline) == -1)
		return errno == ETIMEDOUT ? -2 : -1;
	n = recv(fd, buf, len + 1, MSG_DONTWAIT);
	if (n == 0)
		return 1;
	if (n < 0 || (size_t)n != len)
		return -1;
	memcpy(rec, buf, len);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static bool
terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* An address as the child formats it: hex digits, '.', ':', or a word. */
static bool
peer_ok(const char *p)
{
	if (strcmp(p, "local") == 0 || strcmp(p, "unknown") == 0)
		return true;
	if (*p == '\0')
		return false;
	return strspn(p, "0123456789abcdefABCDEF.:") == strlen(p);
}

static bool
request_ok(const struct ps_auth *a)
{
	return a->type == PS_AUTH && a->version == PS_VERSION &&
	    a->method >= PS_METHOD_USER && a->method <= PS_METHOD_LOGIN && a->tls <= 1 &&
	    terminated(a->user, sizeof(a->user)) && terminated(a->password, sizeof(a->password)) &&
	    terminated(a->peer, sizeof(a->peer)) && (a->peer[0] == '\0' || peer_ok(a->peer));
}

static void
sleep_until_ms(long long when)
{
	long long left;
	struct timespec ts;

	while ((left = when - deadline_now_ms()) > 0) {
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000;
		nanosleep(&ts, NULL);
	}
}

static void
log_failed(const char *user, const char *peer, const char *reason)
{
	char u[80], r[128];

	log_sanitize(u, sizeof(u), user, strlen(user));
	log_sanitize(r, sizeof(r), reason, strlen(reason));
	log_info("auth failed: user=<%s> rhost=<%s> reason=<%s>", u, peer, r);
}

/* PAM and the drop for one request: PS_OK only with privileges dropped. */
static enum ps_result
check(const struct monitor_conf *mc, const struct ps_auth *a, const char *peer,
    struct monitor_login *out)
{
	char reason[128], u[80];
	struct auth_account acct;
	enum auth_result res;
	enum ps_result ans = PS_FAILED;

	/* Debian's common-auth has nullok: an empty password must never
	 * reach it. */
	if (a->user[0] == '\0' || a->password[0] == '\0') {
		log_failed(a->user, peer, a->user[0] == '\0' ? "bad user name" :
		    "empty or overlong password");
		return PS_FAILED;
	}
	res = auth_check(mc->pam_service, a->user, a->password, peer, mc->timeout_s * 1000,
	    &acct, reason, sizeof(reason));
	if (res == AUTH_SYSERR) {
		log_sanitize(u, sizeof(u), a->user, strlen(a->user));
		log_sanitize(acct.name, sizeof(acct.name), reason, strlen(reason));
		log_warnx("auth error: user=<%s> rhost=<%s> reason=<%s>", u, peer, acct.name);
		return PS_TEMPFAIL;
	}
	if (res != AUTH_OK) {
		/* A refusal after the right password (expired, denied) says
		 * so in the log only: to the client it is a wrong password. */
		log_failed(a->user, peer, reason);
		return PS_FAILED;
	}
	if (!acct.found || acct.uid == 0) {
		log_failed(acct.name, peer, acct.found ? "uid 0 refused" : "no passwd entry");
		goto out;
	}
	log_sanitize(u, sizeof(u), acct.name, strlen(acct.name));
	if (acct.home_too_long) {
		log_warnx("login refused: user=<%s> rhost=<%s> reason=<home directory path too long>",
		    u, peer);
		ans = PS_HOME_TOO_LONG;
		goto out;
	}
	switch (privdrop_to(&acct)) {
	case PRIVDROP_OK:
		break;
	case PRIVDROP_ROOT_REFUSED:
		log_failed(acct.name, peer, "uid 0 refused");
		goto out;
	case PRIVDROP_NOT_ROOT:
		log_warnx("login refused: user=<%s> rhost=<%s> reason=<not running as root>", u, peer);
		ans = PS_NOT_ROOT;
		goto out;
	}
	memcpy(out->user, acct.name, sizeof(out->user));
	memcpy(out->home, acct.home, sizeof(out->home));
	ans = PS_OK;
out:
	auth_account_free(&acct);
	return ans;
}

int
monitor_reap(pid_t child)
{
	long long until = deadline_in_ms(LIMIT_PREAUTH_GRACE_MS);
	/* Polled after 1 ms, then 2, 4, 8 ms: the TLS relay, which ends once
	 * the session's last byte is out, is reaped after one short sleep
	 * rather than a fixed 10 ms (the launcher's slot held that long). */
	long ns = 500 * 1000;
	int st = 0;
	pid_t w;

	while ((w = waitpid(child, &st, WNOHANG)) == 0 && deadline_now_ms() < until)
		nanosleep(&(struct timespec){ 0, ns *= ns < 8 * 1000000 ? 2 : 1 }, NULL);
	if (w == 0) {
		kill(child, SIGKILL);
		while (waitpid(child, &st, 0) == -1 && errno == EINTR)
			;
		return MP_EXIT_ERROR;
	}
	if (w != child || !WIFEXITED(st))
		return MP_EXIT_ERROR;
	switch (WEXITSTATUS(st)) {
	case MP_EXIT_QUIT: case MP_EXIT_GONE: case MP_EXIT_TIMEOUT: case MP_EXIT_LIMIT:
	case MP_EXIT_CONFIG:
		return WEXITSTATUS(st);
	default:
		return MP_EXIT_ERROR;
	}
}

bool
monitor_run(const struct monitor_conf *mc, pid_t child, int fd, struct monitor_login *out,
    int *exit_r)
{
	static const char *const methods[] = { "", "USER", "PLAIN", "LOGIN" };
	struct ps_auth a;
	struct ps_answer ans;
	long long started;
	int failures = 0, rc;

	/* A launcher that ignores SIGCHLD would have the child reaped
	 * behind waitpid()'s back. */
	signal(SIGCHLD, SIG_DFL);
	memset(out, 0, sizeof(*out));
	for (;;) {
		rc = recv_record(fd, &a, sizeof(a), mc->login_deadline + LIMIT_PREAUTH_GRACE_MS);
		if (rc == 1) {
			*exit_r = monitor_reap(child);
			return false;
		}
		if (rc < 0 || !request_ok(&a)) {
			bool late = rc == -2;

			log_warnx("pre-auth process: %s; ending it",
			    late ? "past the login deadline" : "malformed record");
			explicit_bzero(&a, sizeof(a));
			kill(child, SIGKILL);
			monitor_reap(child);
			*exit_r = late ? MP_EXIT_LIMIT : MP_EXIT_ERROR;
			return false;
		}
		started = deadline_now_ms();
		/* The child names the client only behind a trusted proxy. */
		snprintf(out->peer, sizeof(out->peer), "%s",
		    mc->peer_from_child && a.peer[0] != '\0' ? a.peer : mc->peer);
		memset(&ans, 0, sizeof(ans));
		ans.type = PS_ANSWER;
		ans.result = check(mc, &a, out->peer, out);
		explicit_bzero(a.password, sizeof(a.password));
		if (ans.result == PS_OK) {
			out->method = methods[a.method];
			out->tls = a.tls == 1;
			break;
		}
		/* Every failure, whatever its reason, is answered at the same
		 * time after the request and counted, here where a
		 * compromised pre-auth child cannot skip either. */
		ans.close = ++failures >= LIMIT_AUTH_FAILURES;
		sleep_until_ms(started + LIMIT_AUTH_FAIL_DELAY_US / 1000);
		if (send(fd, &ans, sizeof(ans), MSG_NOSIGNAL) != (ssize_t)sizeof(ans) || ans.close) {
			rc = monitor_reap(child);
			*exit_r = ans.close ? MP_EXIT_LIMIT : rc;
			return false;
		}
	}
	/* Privileges are gone: from here on this is the session. */
	if (send(fd, &ans, sizeof(ans), MSG_NOSIGNAL) != (ssize_t)sizeof(ans) ||
	    recv_record(fd, &out->handover, sizeof(out->handover),
	    deadline_in_ms(mc->timeout_s * 1000)) != 0 ||
	    out->handover.type != PS_HANDOVER || out->handover.tls != (uint32_t)out->tls ||
	    out->handover.inlen > sizeof(out->handover.in)) {
		log_warnx("login: no hand-over from the pre-auth process");
		kill(child, SIGKILL);
		monitor_reap(child);
		*exit_r = MP_EXIT_ERROR;
		return false;
	}
	return true;
}
