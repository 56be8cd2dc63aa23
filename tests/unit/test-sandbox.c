/* Unit test of src/sandbox.c: each part's confinement applied in a child process, which then tries what it may and may not do; runs as any user. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "tap.h"

static bool sanitizer;
static char dir[64];

/* What a probe in the child gave: the result, and errno when it is -1. */
struct res {
	long	rc;
	int	err;
};

static void
put(int fd, long rc)
{
	struct res r = { rc, rc == -1 ? errno : 0 };

	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(3);
}

typedef void probe_fn(int fd);

/* Runs fn in a child after confine(); the results in rs, the wait status returned. */
static int
in_child(int (*confine)(void), probe_fn *fn, struct res *rs, int n)
{
	int p[2], status;
	pid_t pid;
	ssize_t got;

	memset(rs, 0, sizeof(*rs) * (size_t)n);
	if (pipe(p) == -1 || (pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		close(p[0]);
		if (confine() == -1)
			_exit(2);
		fn(p[1]);
		_exit(0);
	}
	close(p[1]);
	for (size_t have = 0; have < sizeof(*rs) * (size_t)n; have += (size_t)got)
		if ((got = read(p[0], (char *)rs + have, sizeof(*rs) * (size_t)n - have)) <= 0)
			break;
	close(p[0]);
	waitpid(pid, &status, 0);
	return status;
}

static int preauth(void) { return sandbox_preauth(); }
static int relay(void) { return sandbox_preauth() == -1 ? -1 : sandbox_relay(); }
static int session(void) { return sandbox_session(dir, SANDBOX_TRY); }
static int session_missing(void) { return sandbox_session("/nonexistent/maildir-pop3d/Maildir", SANDBOX_TRY); }

static void
probe_common(int fd)
{
	struct timespec ts = { 0, 1000 };
	char path[256];
	void *m;

	put(fd, open("/etc/passwd", O_RDONLY));
	put(fd, socket(AF_INET, SOCK_STREAM, 0));
	m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	put(fd, m == MAP_FAILED ? -1 : 0);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	put(fd, m == MAP_FAILED ? -1 : 0);
	put(fd, nanosleep(&ts, NULL));
	snprintf(path, sizeof(path), "%s/new/m1", dir);
	put(fd, open(path, O_RDONLY));
	snprintf(path, sizeof(path), "%s/new/m1", dir);
	{
		char to[256];

		snprintf(to, sizeof(to), "%s/cur/m1:2,S", dir);
		put(fd, rename(path, to));
	}
	snprintf(path, sizeof(path), "%s/tmp/made", dir);
	put(fd, open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
	snprintf(path, sizeof(path), "%s/../outside", dir);
	put(fd, open(path, O_WRONLY | O_CREAT, 0600));
	put(fd, mkdir("/tmp/maildir-pop3d-test-sandbox-mkdir", 0700));
}

static void
probe_execve(int fd)
{
	static char sh[] = "sh";
	char *argv[] = { sh, NULL };

	(void)fd;
	execve("/bin/sh", argv, NULL);
	_exit(40 + errno % 20);
}
static void probe_setuid(int fd) { (void)fd; if (setuid(getuid()) == -1) _exit(40 + errno % 20); _exit(1); }
static void probe_fork(int fd) { (void)fd; pid_t p = fork(); if (p == 0) _exit(0); _exit(p == -1 ? 40 + errno % 20 : 1); }

enum { P_PASSWD, P_SOCKET, P_MMAPX, P_MMAP, P_SLEEP, P_MSG, P_RENAME, P_CREAT, P_OUTSIDE, P_MKDIR, P_N };

static void
killed(int (*confine)(void), probe_fn *fn, const char *what)
{
	struct res rs[1];
	int st = in_child(confine, fn, rs, 1);

	if (sanitizer)
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 40 + ENOSYS % 20,
		    "%s fails with ENOSYS (sanitizer build; status %#x)", what, st);
	else
		ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "%s kills with SIGSYS (status %#x)", what, st);
}

/* LeakSanitizer's stop-the-world clones: sanitizer builds allow clone(). */
static void
forked(int (*confine)(void), const char *what)
{
	struct res rs[1];
	int st;

	if (!sanitizer) {
		killed(confine, probe_fork, what);
		return;
	}
	st = in_child(confine, probe_fork, rs, 1);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s works in sanitizer builds (status %#x)", what, st);
}

static void
refused(const struct res *r, int err, const char *what)
{
	ok(r->rc == -1 && r->err == err, "%s: -1/%s (got %ld/%s)", what, strerror(err), r->rc,
	    strerror(r->err));
}

static void
allowed(const struct res *r, const char *what)
{
	ok(r->rc >= 0, "%s works (got %ld/%s)", what, r->rc, r->rc == -1 ? strerror(r->err) : "-");
}

static void
fresh_maildir(void)
{
	char p[512];

	snprintf(p, sizeof(p), "rm -rf '%s' && mkdir -p '%s/new' '%s/cur' '%s/tmp'", dir, dir, dir, dir);
	if (system(p) != 0)
		exit(99);
	snprintf(p, sizeof(p), "%s/new/m1", dir);
	close(open(p, O_WRONLY | O_CREAT, 0600));
}

int
main(void)
{
	struct res rs[P_N];
	char why[256], base[] = "/tmp/mp-test-sandbox.XXXXXX";
	int st;

	if (!sandbox_available(why, sizeof(why))) {
		printf("1..0 # SKIP %s\n", why);
		return 0;
	}
	sanitizer = strstr(sandbox_describe(), "sanitizer build") != NULL;
	if (mkdtemp(base) == NULL)
		return 99;
	snprintf(dir, sizeof(dir), "%s/Maildir", base);

	/* The pre-auth child: no file at all, no socket, no executable memory. */
	fresh_maildir();
	st = in_child(preauth, probe_common, rs, P_N);
	is_int(st, 0, "pre-auth: the child ran its probes");
	refused(&rs[P_PASSWD], EACCES, "pre-auth: open /etc/passwd");
	refused(&rs[P_MSG], EACCES, "pre-auth: open a message");
	refused(&rs[P_SOCKET], EPERM, "pre-auth: socket(AF_INET)");
	refused(&rs[P_MMAPX], EPERM, "pre-auth: mmap PROT_EXEC");
	allowed(&rs[P_MMAP], "pre-auth: mmap PROT_READ|PROT_WRITE");
	allowed(&rs[P_SLEEP], "pre-auth: nanosleep (the failure delay)");
	refused(&rs[P_MKDIR], ENOSYS, "pre-auth: mkdir (not listed)");
	killed(preauth, probe_execve, "pre-auth: execve");
	killed(preauth, probe_setuid, "pre-auth: setuid (even to its own uid)");
	forked(preauth, "pre-auth: fork");

	/* The relay, stacked on the pre-auth filter from inside it. */
	fresh_maildir();
	st = in_child(relay, probe_common, rs, P_N);
	is_int(st, 0, "relay: sandbox_relay() stacks on sandbox_preauth() and the probes ran");
	refused(&rs[P_SLEEP], ENOSYS, "relay: nanosleep is no longer allowed");
	refused(&rs[P_PASSWD], EACCES, "relay: open /etc/passwd");
	allowed(&rs[P_MMAP], "relay: mmap PROT_READ|PROT_WRITE");
	killed(relay, probe_execve, "relay: execve");

	/* The session: its Maildir and nothing else. */
	fresh_maildir();
	st = in_child(session, probe_common, rs, P_N);
	is_int(st, 0, "session: the child ran its probes");
	allowed(&rs[P_MSG], "session: open a message");
	allowed(&rs[P_RENAME], "session: rename new/ to cur/ with a flag");
	allowed(&rs[P_CREAT], "session: create a file in tmp/");
	refused(&rs[P_PASSWD], EACCES, "session: open /etc/passwd");
	refused(&rs[P_OUTSIDE], EACCES, "session: create a file next to the Maildir");
	refused(&rs[P_SOCKET], EPERM, "session: socket(AF_INET)");
	refused(&rs[P_MMAPX], EPERM, "session: mmap PROT_EXEC");
	refused(&rs[P_MKDIR], ENOSYS, "session: mkdir (not listed)");
	killed(session, probe_execve, "session: execve");
	killed(session, probe_setuid, "session: setuid (even to its own uid)");
	forked(session, "session: fork");

	/* A Maildir that does not exist: nothing is reachable. */
	fresh_maildir();
	st = in_child(session_missing, probe_common, rs, P_N);
	is_int(st, 0, "session without a Maildir: the child ran its probes");
	refused(&rs[P_MSG], EACCES, "session without a Maildir: open any file");
	refused(&rs[P_PASSWD], EACCES, "session without a Maildir: open /etc/passwd");

	{
		char p[256];

		snprintf(p, sizeof(p), "rm -rf '%s'", base);
		if (system(p) != 0)
			return 99;
	}
	return done_testing();
}
