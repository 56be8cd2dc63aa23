/* libFuzzer target for root's side of the login (src/root/monitor.c): the input scripts what a compromised pre-auth process sends over the record socket, while PAM, the privilege drop, the clock, the sleeps and the pre-auth child's end are stand-ins defined here; test code only, runs unprivileged or as root, changes no ids and starts no process. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_pam.h"
#include "deadline.h"
#include "fuzz-common.h"
#include "monitor.h"
#include "pop3d-limits.h"
#include "privdrop.h"
#include "privsep-proto.h"

/*
 * What is linked: monitor.o and log.o from libpop3d.a, nothing else of the
 * daemon.  This file defines auth_check() and privdrop_to() (so auth_pam.o
 * and privdrop.o, with PAM and setresuid, stay out: run-all checks with nm)
 * and every function of deadline.h (so deadline.o stays out, and the clock
 * is a fake one: a second definition would not link).  nanosleep(), waitpid()
 * and kill() are interposed while monitor_run() runs: a sleep advances the
 * fake clock, and the pre-auth child is a pid that no process has (FAKE_PID)
 * whose end the input chooses.  A whole login with three failed attempts
 * thus costs no real time.
 *
 * The pre-auth process acts whenever root waits for a record (the fake
 * deadline_wait_fd): when nothing is queued on root's end, it runs the next
 * batch of the script, sending SOCK_SEQPACKET messages into its end of a
 * real socketpair, and it reads root's answers from that end.  Alongside,
 * an independent model of the protocol (privsep-proto.h, monitor.h,
 * pop3d-limits.h) predicts every answer, the exit status and the return.
 *
 * Input: four header octets h0..h3, then operations.
 *   h0   0x01 peer_from_child (a trusted PROXY)   0x06 the peer root sees
 *        0x08 errno is ETIMEDOUT when monitor_run() starts (a caller's leftover)
 *        0x30 the login deadline: 60 s, 5 s, 1 s, 0 s away   0x40 timeout 1 s (else 600)
 *   h1   the child's end once root waits for it: 0 it exits with status h2,
 *        1 it is killed by SIGTERM, 2 it never ends by itself, 3 it has already
 *        exited with status h2; in cases 0 and 1 after h3 * 20 ms
 *   op   0x80: the batch ends after this operation; 0x07 the kind:
 *        0-2 a ps_auth record: F, then fields (see put_auth), the password's
 *            first octet % 8 choosing what PAM says (see auth_check below)
 *        3   a raw message of a chosen length (see put_raw)
 *        4   a ps_handover (see put_handover)
 *        5   a pause of a 16-bit number of ms (0xffff: up to the deadline,
 *            0xfffe: to 1 ms before it); the batch ends if something is queued
 *        6   shutdown(SHUT_WR): root reads the end of file; the script ends
 *        7   close: root's answers can no longer be delivered; the script ends
 */

#define FAKE_PID	((pid_t)2000000000)	/* above any pid_max */
#define T0_MS		1000000LL
#define MAX_MSGS	32
#define MAX_MSG_LEN	8192
#define MAX_OPS		256
#define MAX_ANSWERS	16

/* ---- the fake clock and the interposed calls ---- */

static _Thread_local bool in_monitor;	/* only monitor_run()'s thread is faked */
static long long now_us;
static unsigned sleeps;
static bool verbose;

#define TRACE(...)	do { if (verbose) fprintf(stderr, __VA_ARGS__); } while (0)

long long
deadline_now_us(void)
{
	return now_us;
}

long long
deadline_now_ms(void)
{
	return now_us / 1000;
}

long long
deadline_in_ms(int timeout_ms)
{
	return timeout_ms < 0 ? DEADLINE_NONE : deadline_now_ms() + timeout_ms;
}

static void
advance_to_ms(long long ms)
{
	if (ms * 1000 > now_us)
		now_us = ms * 1000;
}

/* monitor.c uses none of these: defined so that deadline.o is not linked. */
int
deadline_read_full(int fd, void *buf, size_t len, long long deadline)
{
	(void)fd; (void)buf; (void)len; (void)deadline;
	fuzz_fail(__FILE__, __LINE__, "deadline_read_full called in the monitor target");
}

int
fd_write_all(int fd, const void *buf, size_t len)
{
	(void)fd; (void)buf; (void)len;
	fuzz_fail(__FILE__, __LINE__, "fd_write_all called in the monitor target");
}

int
fd_read_file(int fd, size_t max, char **buf_r, size_t *len_r)
{
	(void)fd; (void)max; (void)buf_r; (void)len_r;
	fuzz_fail(__FILE__, __LINE__, "fd_read_file called in the monitor target");
}

/* ---- the input ---- */

static const uint8_t *in_p;
static size_t in_n;

static unsigned
get8(void)
{
	if (in_n == 0)
		return 0;
	in_n--;
	return *in_p++;
}

static unsigned
get16(void)
{
	unsigned hi = get8();

	return hi << 8 | get8();
}

static uint32_t
get32(void)
{
	uint32_t hi = get16();

	return hi << 16 | get16();
}

/* Copies up to n input octets to dst; the rest of dst[0..n) stays as it is. */
static void
get_bytes(void *dst, size_t n)
{
	if (n > in_n)
		n = in_n;
	memcpy(dst, in_p, n);
	in_p += n;
	in_n -= n;
}

/* ---- the configuration and the pre-auth child ---- */

static const char *const conf_peers[] = { "192.0.2.7", "local", "2001:db8::1", "unknown" };
static const int login_in_ms[] = { 60000, 5000, 1000, 0 };

static struct monitor_conf mc;

enum child_mode { CHILD_EXITS, CHILD_SIGNALED, CHILD_NEVER, CHILD_GONE };

static struct {
	enum child_mode mode;
	int	 status;		/* exit status in CHILD_EXITS and CHILD_GONE */
	long long after_ms;		/* from the first waitpid or kill */
	bool	 started;		/* root has begun to end it */
	long long exit_at;		/* ms; LLONG_MAX: never by itself */
	long long reap_start, kill_at;	/* ms; -1: not yet */
	bool	 killed, reaped;
	bool	 kill_before_reap;	/* kill() came before any waitpid() */
	int	 raw;			/* the status waitpid() reported */
	unsigned waits;
} child;

static void
child_start(void)
{
	if (child.started)
		return;
	child.started = true;
	switch (child.mode) {
	case CHILD_EXITS: case CHILD_SIGNALED:
		child.exit_at = deadline_now_ms() + child.after_ms;
		break;
	case CHILD_NEVER:
		child.exit_at = LLONG_MAX;
		break;
	case CHILD_GONE:
		child.exit_at = deadline_now_ms();
		break;
	}
}

static bool
child_exited(void)
{
	return child.killed || deadline_now_ms() >= child.exit_at;
}

static void collect_answers(void);

static void *
real_fn(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL)
		abort();
	return f;
}

int
nanosleep(const struct timespec *req, struct timespec *rem)
{
	if (!in_monitor) {
		int (*real)(const struct timespec *, struct timespec *) =
		    (int (*)(const struct timespec *, struct timespec *))real_fn("nanosleep");

		return real(req, rem);
	}
	collect_answers();
	FUZZ_CHECK(req->tv_sec >= 0 && req->tv_nsec >= 0 && req->tv_nsec < 1000000000,
	    "nanosleep with an invalid time");
	FUZZ_CHECK(req->tv_sec > 0 || req->tv_nsec > 0, "nanosleep for no time (a busy loop)");
	FUZZ_CHECK(++sleeps < 100000, "root sleeps without end");
	now_us += (long long)req->tv_sec * 1000000 + (req->tv_nsec + 999) / 1000;
	if (rem != NULL)
		rem->tv_sec = 0, rem->tv_nsec = 0;
	return 0;
}

pid_t
waitpid(pid_t pid, int *st, int options)
{
	if (!in_monitor || pid != FAKE_PID) {
		pid_t (*real)(pid_t, int *, int) = (pid_t (*)(pid_t, int *, int))real_fn("waitpid");

		FUZZ_CHECK(!in_monitor, "root waits for a process that is not its pre-auth child");
		return real(pid, st, options);
	}
	collect_answers();
	child_start();
	FUZZ_CHECK(!child.reaped, "the pre-auth child reaped twice");
	FUZZ_CHECK(options == 0 || options == WNOHANG, "waitpid with unexpected options");
	FUZZ_CHECK(++child.waits < 100000, "root polls its child without end");
	if (child.reap_start == -1)
		child.reap_start = deadline_now_ms();
	if (!child_exited()) {
		if (options & WNOHANG)
			return 0;
		FUZZ_CHECK(child.exit_at != LLONG_MAX,
		    "root blocks on a child that was neither killed nor ends");
		advance_to_ms(child.exit_at);
	}
	if (child.killed)
		child.raw = SIGKILL;			/* WIFSIGNALED, WTERMSIG 9 */
	else if (child.mode == CHILD_SIGNALED)
		child.raw = SIGTERM;
	else
		child.raw = (child.status & 0xff) << 8;	/* WIFEXITED */
	child.reaped = true;
	if (st != NULL)
		*st = child.raw;
	return pid;
}

int
kill(pid_t pid, int sig)
{
	if (!in_monitor) {
		int (*real)(pid_t, int) = (int (*)(pid_t, int))real_fn("kill");

		return real(pid, sig);
	}
	collect_answers();
	FUZZ_CHECK(pid == FAKE_PID, "root signals a process that is not its pre-auth child");
	FUZZ_CHECK(sig == SIGKILL, "root sends its child a signal other than SIGKILL");
	FUZZ_CHECK(!child.reaped, "root signals its child after reaping it (the pid may be reused)");
	if (child.reap_start == -1)
		child.kill_before_reap = true;
	child_start();
	if (!child_exited()) {
		child.killed = true;
		child.kill_at = deadline_now_ms();
	}
	return 0;
}

/* ---- the records as the script sends them, and the model ---- */

static int peer_fd = -1, root_fd = -1;
static bool closed, script_done;
static unsigned ops;

static unsigned char msgs[MAX_MSGS][MAX_MSG_LEN];
static size_t msg_len[MAX_MSGS];
static unsigned nmsgs, consumed;

enum phase { AWAIT_AUTH, AWAIT_HANDOVER, ENDED };
enum end {
	END_NONE,
	END_OK,		/* true: the hand-over arrived */
	END_EOF,	/* the child closed: its status */
	END_MALFORMED,	/* MP_EXIT_ERROR, killed */
	END_LATE,	/* MP_EXIT_LIMIT, killed */
	END_BUDGET,	/* the third failure: MP_EXIT_LIMIT */
	END_LOST,	/* a failure answer could not be sent: the child's status */
	END_NO_HANDOVER,	/* MP_EXIT_ERROR, killed */
};

struct expect_answer {
	uint32_t result, close;
	long long t_req;	/* ms */
	bool	 lost;		/* sent into a closed socket */
};

/* The verdicts auth_check() and privdrop_to() give, by the password's first
 * octet % 8 ('p' is V_OK, 'q' V_FAILED, ... 'w' V_ROOT_REFUSED). */
enum variant {
	V_OK,			/* AUTH_OK, PRIVDROP_OK */
	V_FAILED,		/* AUTH_FAILED */
	V_SYSERR,		/* AUTH_SYSERR, errno left ETIMEDOUT */
	V_NOT_FOUND,		/* AUTH_OK, no passwd entry */
	V_UID0,			/* AUTH_OK, uid 0 */
	V_HOME_TOO_LONG,	/* AUTH_OK, home does not fit */
	V_NOT_ROOT,		/* AUTH_OK, PRIVDROP_NOT_ROOT */
	V_ROOT_REFUSED,		/* AUTH_OK, PRIVDROP_ROOT_REFUSED */
};

static const char *const stub_home = "/home/fuzz";

static struct {
	enum phase phase;
	enum end end;
	unsigned failures;
	struct ps_auth cur;		/* the request root is working on */
	bool	 cur_valid;
	bool	 expect_auth;		/* the stub must be called for cur */
	bool	 expect_drop;
	char	 peer[PS_PEER_SIZE];	/* what out->peer must hold */
	struct expect_answer ans[MAX_ANSWERS];
	unsigned nans, got;
	unsigned auth_calls, drops, drops_ok;
	char	 acct_name[LIMIT_USER_NAME + 1];
	unsigned handover;		/* index of the hand-over message */
} m;

static bool
has_nul(const char *s, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (s[i] == '\0')
			return true;
	return false;
}

/* A client address as the pre-auth process writes it (privsep-proto.h). */
static bool
peer_form_ok(const char *p)
{
	if (p[0] == '\0' || strcmp(p, "local") == 0 || strcmp(p, "unknown") == 0)
		return true;
	for (; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		    (*p >= 'A' && *p <= 'F') || *p == '.' || *p == ':'))
			return false;
	return true;
}

/* Every field checked on the receiving side (privsep-proto.h). */
static bool
model_request_ok(const struct ps_auth *a)
{
	return a->type == PS_AUTH && a->version == PS_VERSION && a->method >= PS_METHOD_USER &&
	    a->method <= PS_METHOD_LOGIN && (a->tls == 0 || a->tls == 1) &&
	    has_nul(a->user, sizeof(a->user)) && has_nul(a->password, sizeof(a->password)) &&
	    has_nul(a->peer, sizeof(a->peer)) && peer_form_ok(a->peer);
}

static uint32_t
model_result(const struct ps_auth *a)
{
	if (a->user[0] == '\0' || a->password[0] == '\0')
		return PS_FAILED;
	switch ((enum variant)((unsigned char)a->password[0] % 8)) {
	case V_OK: return PS_OK;
	case V_SYSERR: return PS_TEMPFAIL;
	case V_HOME_TOO_LONG: return PS_HOME_TOO_LONG;
	case V_NOT_ROOT: return PS_NOT_ROOT;
	default: return PS_FAILED;
	}
}

/* Root has just taken message `consumed` (or the end of file) off its end. */
static void
model_consume(void)
{
	const unsigned char *msg = consumed < nmsgs ? msgs[consumed] : NULL;
	size_t len = msg != NULL ? msg_len[consumed] : 0;
	struct ps_handover h;
	struct expect_answer *e;

	FUZZ_CHECK(!m.expect_auth, "a well-formed request never reached PAM");
	if (msg != NULL)
		consumed++;
	if (m.phase == AWAIT_HANDOVER) {
		m.phase = ENDED;
		m.end = END_NO_HANDOVER;
		if (msg == NULL || len != sizeof(h))
			return;
		memcpy(&h, msg, sizeof(h));
		if (h.type == PS_HANDOVER && h.tls == m.cur.tls && h.inlen <= LIMIT_INBUF) {
			m.end = END_OK;
			m.handover = consumed - 1;
		}
		return;
	}
	FUZZ_CHECK(m.phase == AWAIT_AUTH, "root reads a record after the login ended");
	/* On SOCK_SEQPACKET recv() returns 0 for a message of no octets as at
	 * the end of file: root cannot tell them apart, and both end the
	 * login as a close does (the child's status, reaped within its grace;
	 * a child that sends one could as well close its end). */
	if (msg == NULL || len == 0) {
		m.phase = ENDED;
		m.end = END_EOF;
		return;
	}
	if (len != sizeof(m.cur)) {
		m.phase = ENDED;
		m.end = END_MALFORMED;
		return;
	}
	memcpy(&m.cur, msg, sizeof(m.cur));
	if (!model_request_ok(&m.cur)) {
		m.phase = ENDED;
		m.end = END_MALFORMED;
		return;
	}
	m.cur_valid = true;
	snprintf(m.peer, sizeof(m.peer), "%s",
	    mc.peer_from_child && m.cur.peer[0] != '\0' ? m.cur.peer : mc.peer);
	m.expect_auth = m.cur.user[0] != '\0' && m.cur.password[0] != '\0';
	FUZZ_CHECK(m.nans < MAX_ANSWERS, "more requests answered than the budget allows");
	e = &m.ans[m.nans++];
	e->result = model_result(&m.cur);
	e->close = e->result != PS_OK && ++m.failures >= LIMIT_AUTH_FAILURES;
	e->t_req = deadline_now_ms();
	e->lost = closed;
	if (e->result == PS_OK) {
		m.phase = closed ? ENDED : AWAIT_HANDOVER;
		m.end = closed ? END_NO_HANDOVER : END_NONE;
	} else if (e->close) {
		m.phase = ENDED;
		m.end = END_BUDGET;
	} else if (closed) {
		m.phase = ENDED;
		m.end = END_LOST;
	}
}

static void
model_timeout(void)
{
	FUZZ_CHECK(!m.expect_auth, "a well-formed request never reached PAM");
	FUZZ_CHECK(m.phase != ENDED, "root waits for a record after the login ended");
	m.end = m.phase == AWAIT_AUTH ? END_LATE : END_NO_HANDOVER;
	m.phase = ENDED;
}

/* Reads root's answers from the pre-auth end and checks each on arrival:
 * called at every point where root may have sent one since.  Leaves errno
 * as it was: the calls it stands beside do not change it when they succeed. */
static void
collect_answers(void)
{
	unsigned char buf[sizeof(struct ps_answer) + 1];
	struct ps_answer a;
	const struct expect_answer *e;
	int saved = errno;
	ssize_t n;

	if (peer_fd == -1)
		return;
	while ((n = recv(peer_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		FUZZ_CHECK((size_t)n == sizeof(a), "an answer that is not one struct ps_answer");
		memcpy(&a, buf, sizeof(a));
		TRACE("  answer result=%u close=%u at +%lld ms\n", a.result, a.close,
		    deadline_now_ms() - T0_MS);
		FUZZ_CHECK(a.type == PS_ANSWER, "an answer of the wrong type");
		FUZZ_CHECK(a.result >= PS_OK && a.result <= PS_HOME_TOO_LONG,
		    "an answer with an unknown result");
		FUZZ_CHECK(a.close <= 1, "an answer with close neither 0 nor 1");
		FUZZ_CHECK(m.got < m.nans, "an answer to no request");
		e = &m.ans[m.got++];
		FUZZ_CHECK(!e->lost, "an answer delivered into a closed socket");
		FUZZ_CHECK(a.result == e->result, "an answer with the wrong result");
		FUZZ_CHECK(a.close == e->close,
		    "close not set exactly on the last failure the budget allows");
		if (a.result != PS_OK)
			FUZZ_CHECK(deadline_now_ms() >= e->t_req + LIMIT_AUTH_FAIL_DELAY_US / 1000,
			    "a failure answered before the fixed delay");
	}
	FUZZ_CHECK(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK, "recv on the pre-auth end");
	errno = saved;
}

/* ---- the script: what the pre-auth process sends ---- */

static void
send_msg(const void *buf, size_t len)
{
	if (nmsgs == MAX_MSGS) {
		script_done = true;
		return;
	}
	/* A message the socket does not take was never sent. */
	if (send(peer_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		return;
	memcpy(msgs[nmsgs], buf, len);
	msg_len[nmsgs++] = len;
	TRACE("  sent %zu octets\n", len);
}

static const char *const peer_table[] = {
	"", "local", "unknown", "192.0.2.9", "2001:db8::9", "::ffff:192.0.2.1", "bad peer",
	"LOCAL", "-", "0", "1.2.3.4\n",
};

/*
 * F: 0x01 type from 4 input octets (else PS_AUTH), 0x02 version from 1
 * (else PS_VERSION), 0x0c the method (0 is none), 0x10 tls from 1 octet
 * (else 0), 0x20 tls 1, 0x40 user fills its field without NUL, 0x80 so does
 * the password.  Then the user's length and octets, the password's (255:
 * and padded to LIMIT_PASSWORD), the peer's (0x80 set: peer_table[low bits],
 * 0xff: 64 octets without NUL; else that many octets, at most 63).
 */
static void
put_auth(void)
{
	struct ps_auth a;
	unsigned f = get8(), n;

	memset(&a, 0, sizeof(a));
	a.type = f & 0x01 ? get32() : PS_AUTH;
	a.version = f & 0x02 ? get8() : PS_VERSION;
	a.method = f >> 2 & 3;
	a.tls = f & 0x10 ? get8() : f >> 5 & 1;
	n = get8();
	get_bytes(a.user, n);
	if (f & 0x40)
		memset(a.user, 'u', sizeof(a.user));
	n = get8();
	get_bytes(a.password, n);
	if (n == 255)
		memset(a.password + 255, 'p', LIMIT_PASSWORD - 255);
	if (f & 0x80)
		memset(a.password, 'p', sizeof(a.password));
	n = get8();
	if (n == 0xff)
		memset(a.peer, 'a', sizeof(a.peer));
	else if (n & 0x80)
		snprintf(a.peer, sizeof(a.peer), "%s",
		    peer_table[(n & 0x7f) % (sizeof(peer_table) / sizeof(peer_table[0]))]);
	else
		get_bytes(a.peer, n < sizeof(a.peer) ? n : sizeof(a.peer) - 1);
	send_msg(&a, sizeof(a));
}

/* L & 7: the length: sizeof(struct ps_auth), one less, one more, 0,
 * sizeof(struct ps_handover), one less, one more, 16 bits of input (at most
 * MAX_MSG_LEN); L & 8: starts as a valid request's header; then a count and
 * that many octets of content, zeros after. */
static void
put_raw(void)
{
	static unsigned char buf[MAX_MSG_LEN];
	unsigned l = get8();
	size_t len = 0, n;

	switch (l & 7) {
	case 0: len = sizeof(struct ps_auth); break;
	case 1: len = sizeof(struct ps_auth) - 1; break;
	case 2: len = sizeof(struct ps_auth) + 1; break;
	case 3: len = 0; break;
	case 4: len = sizeof(struct ps_handover); break;
	case 5: len = sizeof(struct ps_handover) - 1; break;
	case 6: len = sizeof(struct ps_handover) + 1; break;
	case 7: len = get16() % (MAX_MSG_LEN + 1); break;
	}
	memset(buf, 0, len);
	if (l & 8 && len >= 16) {
		struct ps_auth a = { .type = PS_AUTH, .version = PS_VERSION,
		    .method = PS_METHOD_USER, .tls = 0 };

		memcpy(buf, &a, 16);
	}
	n = get8();
	get_bytes(buf + (l & 8 && len >= 16 ? 16 : 0), n < len ? n : len);
	send_msg(buf, len);
}

/* F: 0x01 tls, 0x02 a wrong type, 0x04 inlen from input (0x08: LIMIT_INBUF
 * + 1, else 32 bits), else 16 bits % (LIMIT_INBUF + 1); 0x10 one octet
 * short; then a count and that many octets of in[]. */
static void
put_handover(void)
{
	static struct ps_handover h;
	unsigned f = get8(), n;

	memset(&h, 0, sizeof(h));
	h.type = f & 0x02 ? PS_ANSWER : PS_HANDOVER;
	h.tls = f & 0x01;
	if (f & 0x04)
		h.inlen = f & 0x08 ? LIMIT_INBUF + 1 : get32();
	else
		h.inlen = get16() % (LIMIT_INBUF + 1);
	n = get8();
	get_bytes(h.in, n);
	send_msg(&h, f & 0x10 ? sizeof(h) - 1 : sizeof(h));
}

static bool
root_readable(void)
{
	struct pollfd p = { .fd = root_fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/*
 * Runs operations until a batch ends.  false: a pause passed the deadline.
 */
static bool
run_batch(long long deadline)
{
	unsigned op, d;

	while (!script_done) {
		if (in_n == 0 || ++ops > MAX_OPS) {
			script_done = true;
			break;
		}
		op = *in_p;
		if ((op & 7) == 5 && root_readable())
			return true;	/* the pause comes after root has read */
		get8();
		switch (op & 7) {
		case 0: case 1: case 2:
			put_auth();
			break;
		case 3:
			put_raw();
			break;
		case 4:
			put_handover();
			break;
		case 5:
			d = get16();
			if (d == 0xffff)
				advance_to_ms(deadline);
			else if (d == 0xfffe)
				advance_to_ms(deadline - 1);
			else
				now_us += (long long)d * 1000;
			TRACE("  pause to +%lld ms\n", deadline_now_ms() - T0_MS);
			if (deadline_now_ms() >= deadline)
				return false;
			break;
		case 6:
			TRACE("  shutdown\n");
			shutdown(peer_fd, SHUT_WR);
			script_done = true;
			break;
		case 7:
			TRACE("  close\n");
			collect_answers();
			close(peer_fd);
			peer_fd = -1;
			closed = script_done = true;
			break;
		}
		if (op & 0x80)
			break;
	}
	return true;
}

/* Root waits for its next record: the pre-auth process acts now. */
int
deadline_wait_fd(int fd, short events, long long deadline)
{
	int saved = errno;	/* a wait that succeeds leaves it alone */

	FUZZ_CHECK(in_monitor, "deadline_wait_fd outside monitor_run");
	FUZZ_CHECK(fd == root_fd && events == POLLIN, "root waits for something but a record");
	FUZZ_CHECK(deadline != DEADLINE_NONE, "root waits for a record without a deadline");
	if (m.phase == AWAIT_AUTH)
		FUZZ_CHECK(deadline <= mc.login_deadline + LIMIT_PREAUTH_GRACE_MS,
		    "root waits for a request past the login deadline and its grace");
	else
		FUZZ_CHECK(deadline <= deadline_now_ms() + (long long)mc.timeout_s * 1000,
		    "root waits for the hand-over longer than the idle timeout");
	collect_answers();
	for (;;) {
		if (deadline - deadline_now_ms() <= 0)
			break;
		if (root_readable()) {
			model_consume();
			TRACE("  root reads message %u%s at +%lld ms\n", consumed,
			    m.end == END_EOF ? " (end of file)" : "", deadline_now_ms() - T0_MS);
			errno = saved;
			return 0;
		}
		if (script_done || !run_batch(deadline)) {
			advance_to_ms(deadline);
			break;
		}
	}
	TRACE("  root's wait times out at +%lld ms\n", deadline_now_ms() - T0_MS);
	model_timeout();
	errno = ETIMEDOUT;
	return -1;
}

/* ---- PAM and the privilege drop ---- */

/* The password's first octet % 8 (enum variant) chooses the verdict. */
enum auth_result
auth_check(const char *service, const char *user, const char *password, const char *rhost,
    int timeout_ms, struct auth_account *acct, char *reason_r, size_t reason_size)
{
	enum variant v;

	FUZZ_CHECK(in_monitor, "auth_check outside monitor_run");
	FUZZ_CHECK(m.expect_auth, "auth_check for a request that must not reach PAM");
	m.expect_auth = false;
	FUZZ_CHECK(++m.auth_calls <= LIMIT_AUTH_FAILURES, "PAM asked more often than the budget");
	FUZZ_CHECK(m.drops_ok == 0, "PAM asked after the privileges were dropped");
	FUZZ_CHECK(service == mc.pam_service, "PAM asked with another service");
	FUZZ_CHECK(timeout_ms == mc.timeout_s * 1000, "PAM's limit is not the idle timeout");
	FUZZ_CHECK(user != NULL && password != NULL && rhost != NULL, "PAM asked without credentials");
	FUZZ_CHECK(memchr(user, '\0', LIMIT_USER_NAME + 1) != NULL, "a user name PAM cannot bound");
	FUZZ_CHECK(memchr(password, '\0', LIMIT_PASSWORD + 1) != NULL, "a password PAM cannot bound");
	FUZZ_CHECK(user[0] != '\0', "an empty user name reached PAM");
	FUZZ_CHECK(password[0] != '\0', "an empty password reached PAM (nullok)");
	FUZZ_CHECK(strcmp(user, m.cur.user) == 0, "PAM got another user than the request's");
	FUZZ_CHECK(strcmp(password, m.cur.password) == 0, "PAM got another password than the request's");
	FUZZ_CHECK(memchr(rhost, '\0', PS_PEER_SIZE) != NULL && strcmp(rhost, m.peer) == 0,
	    "PAM got another peer than the one root trusts");
	FUZZ_CHECK(acct != NULL && reason_r != NULL && reason_size > 0, "no room for PAM's answer");

	v = (enum variant)((unsigned char)password[0] % 8);
	memset(acct, 0, sizeof(*acct));
	/* PAM's text is anything a module says: here the user's octets. */
	snprintf(reason_r, reason_size, "stub %d: %s", (int)v, user);
	if (v == V_FAILED)
		return AUTH_FAILED;
	if (v == V_SYSERR) {
		errno = ETIMEDOUT;	/* as auth_check leaves it when PAM took too long */
		return AUTH_SYSERR;
	}
	/* The account PAM settled on may have another name (pam_mapping). */
	snprintf(acct->name, sizeof(acct->name), "%s%s", password[1] & 1 ? "mapped-" : "", user);
	snprintf(m.acct_name, sizeof(m.acct_name), "%s", acct->name);
	acct->found = v != V_NOT_FOUND;
	acct->home_too_long = v == V_HOME_TOO_LONG;
	acct->uid = v == V_UID0 ? 0 : 1000;
	acct->gid = 1000;
	snprintf(acct->home, sizeof(acct->home), "%s", v == V_HOME_TOO_LONG ? "" : stub_home);
	acct->ngroups = 2;
	if ((acct->groups = malloc(2 * sizeof(gid_t))) == NULL)
		abort();
	acct->groups[0] = 1000;
	acct->groups[1] = 100;
	m.expect_drop = acct->found && acct->uid != 0 && !acct->home_too_long;
	return AUTH_OK;
}

/* Changes no ids: the verdict is the same password octet's. */
enum privdrop_result
privdrop_to(const struct auth_account *acct)
{
	enum variant v = (enum variant)((unsigned char)m.cur.password[0] % 8);

	FUZZ_CHECK(in_monitor, "privdrop_to outside monitor_run");
	FUZZ_CHECK(m.expect_drop, "privdrop_to for an account that must not be served");
	m.expect_drop = false;
	FUZZ_CHECK(acct->found && acct->uid != 0 && !acct->home_too_long,
	    "privdrop_to with an account that must not be served (uid 0, no entry, long home)");
	FUZZ_CHECK(acct->groups != NULL && acct->ngroups == 2, "privdrop_to without the group list");
	FUZZ_CHECK(m.drops_ok == 0, "privdrop_to after privileges were dropped");
	m.drops++;
	if (v == V_NOT_ROOT)
		return PRIVDROP_NOT_ROOT;
	if (v == V_ROOT_REFUSED)
		return PRIVDROP_ROOT_REFUSED;
	m.drops_ok++;
	return PRIVDROP_OK;
}

/* ---- one input ---- */

/* maildir-pop3d(8), EXIT STATUS: the child's, as monitor_reap promises. */
static int
status_from_child(int raw)
{
	if (!WIFEXITED(raw))
		return MP_EXIT_ERROR;
	switch (WEXITSTATUS(raw)) {
	case MP_EXIT_QUIT: case MP_EXIT_GONE: case MP_EXIT_TIMEOUT: case MP_EXIT_LIMIT:
	case MP_EXIT_CONFIG:
		return WEXITSTATUS(raw);
	default:
		return MP_EXIT_ERROR;
	}
}

static void
check_outcome(bool ok, int exit_status, const struct monitor_login *out)
{
	static const char *const methods[] = { "", "USER", "PLAIN", "LOGIN" };
	bool killed_first = false;
	int want = -1;

	collect_answers();
	FUZZ_CHECK(m.phase == ENDED, "monitor_run returned before the login ended");
	FUZZ_CHECK(!m.expect_auth && !m.expect_drop, "a request left unanswered by PAM or the drop");
	FUZZ_CHECK(ok == (m.end == END_OK), ok ? "a login succeeded that must not" :
	    "a login failed that must succeed");
	FUZZ_CHECK(memchr(out->peer, '\0', sizeof(out->peer)) != NULL, "out->peer without NUL");
	FUZZ_CHECK(strcmp(out->peer, m.cur_valid ? m.peer : "") == 0,
	    "out->peer is neither root's peer nor (behind a trusted proxy) the request's");
	FUZZ_CHECK(m.drops_ok <= 1, "more than one privilege drop");
	/* Every answer sent arrived (the lost ones could not). */
	for (unsigned i = m.got; i < m.nans; i++)
		FUZZ_CHECK(m.ans[i].lost, "an answer root never sent");
	if (ok) {
		const struct ps_auth *a = &m.cur;

		FUZZ_CHECK(m.drops_ok == 1, "a login without the privilege drop");
		FUZZ_CHECK(!child.killed && !child.reaped && child.waits == 0,
		    "the pre-auth child ended although it relays the session");
		FUZZ_CHECK(strcmp(out->user, m.acct_name) == 0, "out->user is not PAM's account");
		FUZZ_CHECK(strcmp(out->home, stub_home) == 0, "out->home is not the account's");
		FUZZ_CHECK(out->method != NULL && strcmp(out->method, methods[a->method]) == 0,
		    "out->method is not the request's");
		FUZZ_CHECK(out->tls == (a->tls == 1), "out->tls is not the request's");
		FUZZ_CHECK(memcmp(&out->handover, msgs[m.handover], sizeof(out->handover)) == 0,
		    "out->handover is not the record that arrived");
		return;
	}
	FUZZ_CHECK(child.reaped, "the pre-auth child was not reaped (a zombie)");
	switch (m.end) {
	case END_MALFORMED: case END_NO_HANDOVER:
		want = MP_EXIT_ERROR;
		killed_first = true;
		break;
	case END_LATE:
		want = MP_EXIT_LIMIT;
		killed_first = true;
		break;
	case END_BUDGET:
		want = MP_EXIT_LIMIT;
		break;
	case END_EOF: case END_LOST:
		want = status_from_child(child.raw);
		break;
	default:
		fuzz_fail(__FILE__, __LINE__, "no end in the model");
	}
	FUZZ_CHECK(exit_status == MP_EXIT_OK || exit_status == MP_EXIT_ERROR ||
	    exit_status == MP_EXIT_GONE || exit_status == MP_EXIT_TIMEOUT ||
	    exit_status == MP_EXIT_LIMIT || exit_status == MP_EXIT_CONFIG,
	    "an exit status maildir-pop3d(8) does not document");
	FUZZ_CHECK(exit_status == want, "the wrong exit status for how the login ended");
	if (killed_first) {
		/* A misbehaving child is killed before root waits for it. */
		FUZZ_CHECK(child.kill_before_reap, "a misbehaving pre-auth child was not killed");
	} else {
		/* A child that ends within its grace is not killed; one that
		 * does not is killed once the grace has passed (give or take
		 * the reap's last poll, at most 10 ms). */
		long long grace_end = child.reap_start + LIMIT_PREAUTH_GRACE_MS;

		if (child.exit_at <= grace_end)
			FUZZ_CHECK(!child.killed, "the pre-auth child killed within its grace");
		else if (child.killed)
			FUZZ_CHECK(child.kill_at >= grace_end && child.kill_at <= grace_end + 10,
			    "the pre-auth child killed too long after its grace");
		else
			FUZZ_CHECK(child.exit_at <= grace_end + 10,
			    "a pre-auth child that outlived its grace was not killed");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct monitor_login out;
	int sv[2], exit_status = -1;
	unsigned h0, h1;
	bool ok;

	verbose = getenv("MP_FUZZ_VERBOSE") != NULL;
	in_p = data;
	in_n = size;
	h0 = get8();
	h1 = get8();
	memset(&child, 0, sizeof(child));
	child.mode = (enum child_mode)(h1 & 3);
	child.status = (int)get8();
	child.after_ms = (long long)get8() * 20;
	child.reap_start = child.kill_at = -1;
	memset(&m, 0, sizeof(m));
	now_us = T0_MS * 1000;
	mc.pam_service = "maildir-pop3d-fuzz";
	mc.timeout_s = h0 & 0x40 ? 1 : 600;
	mc.login_deadline = T0_MS + login_in_ms[h0 >> 4 & 3];
	mc.peer = conf_peers[h0 >> 1 & 3];
	mc.peer_from_child = h0 & 0x01;
	nmsgs = consumed = ops = sleeps = 0;
	closed = script_done = false;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return 0;
	root_fd = sv[0];
	peer_fd = sv[1];
	fuzz_log_reset();
	TRACE("monitor: peer %s%s, login deadline +%lld ms, timeout %d s, child mode %d\n",
	    mc.peer, mc.peer_from_child ? " (child names it)" : "",
	    mc.login_deadline - T0_MS, mc.timeout_s, (int)child.mode);
	in_monitor = true;
	if (h0 & 0x08)
		errno = ETIMEDOUT;
	ok = monitor_run(&mc, FAKE_PID, root_fd, &out, &exit_status);
	in_monitor = false;
	TRACE("monitor: %s, exit %d, model end %d\n", ok ? "logged in" : "refused", exit_status,
	    (int)m.end);
	check_outcome(ok, exit_status, &out);
	close(root_fd);
	if (peer_fd != -1)
		close(peer_fd);
	root_fd = peer_fd = -1;
	return 0;
}
