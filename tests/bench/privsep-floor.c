/* The floor under tests/bench/privsep-cost (not part of the daemon, not a test): what the
 * steps that the process split adds to a login cost on this machine by themselves, with
 * none of our code around them.  privsep-cost builds it and prints its lines under the table.
 *
 *   privsep-floor [N]
 *
 * Each step is measured N times (default 500) and the mean printed, one line each:
 *   floor fork_us=...         fork() of a small process, _exit(0) in the child, waitpid():
 *                             CPU of parent and child together (getrusage)
 *   floor seccomp_NAME_us=... insns=...
 *                             loading one of the server's own filters (src/sandbox-bpf.h,
 *                             when built with -DMP_BENCH_BPF and -I the build's src/): the
 *                             CPU of the seccomp(2) call, in a fresh child each time
 *   floor landlock_us=...     creating a ruleset that handles every file access, and
 *                             restrict_self with it (the pre-auth process's confinement)
 * A step the kernel or the build lacks prints "floor NAME=unavailable".
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if __has_include(<linux/landlock.h>)
#include <linux/landlock.h>
#endif
#ifdef MP_BENCH_BPF
#include "sandbox-bpf.h"
#endif

static double
cpu_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double
rusage_us(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void
fork_floor(int n)
{
	double self0 = rusage_us(RUSAGE_SELF), kids0 = rusage_us(RUSAGE_CHILDREN);

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == -1) {
			printf("floor fork_us=unavailable\n");
			return;
		}
		if (pid == 0)
			_exit(0);
		waitpid(pid, NULL, 0);
	}
	printf("floor fork_us=%.1f\n", (rusage_us(RUSAGE_SELF) - self0 +
	    rusage_us(RUSAGE_CHILDREN) - kids0) / n);
}

/* step() runs in a fresh child and returns the CPU it took in microseconds, or
 * a negative number when it cannot run; the mean over n children is printed. */
static void
in_children(const char *name, double (*step)(const void *), const void *arg, int n,
    const char *extra)
{
	double sum = 0;

	for (int i = 0; i < n; i++) {
		int p[2];
		double us = -1;
		pid_t pid;

		if (pipe(p) == -1 || (pid = fork()) == -1) {
			printf("floor %s=unavailable\n", name);
			return;
		}
		if (pid == 0) {
			close(p[0]);
			us = step(arg);
			(void)!write(p[1], &us, sizeof(us));
			_exit(0);
		}
		close(p[1]);
		if (read(p[0], &us, sizeof(us)) != (ssize_t)sizeof(us))
			us = -1;
		close(p[0]);
		waitpid(pid, NULL, 0);
		if (us < 0) {
			printf("floor %s=unavailable\n", name);
			return;
		}
		sum += us;
	}
	printf("floor %s=%.1f%s\n", name, sum / n, extra);
}

#ifdef MP_BENCH_BPF
static double
load_filter(const void *arg)
{
	const struct sock_fprog *prog = arg;
	double t0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) == -1)
		return -1;
	return cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0;
}

#define FILTER(n, name, f) do {							\
	struct sock_fprog prog = { sizeof(f) / sizeof((f)[0]), (struct sock_filter *)(f) }; \
	char extra[32];								\
	snprintf(extra, sizeof(extra), " insns=%u", (unsigned)prog.len);	\
	in_children("seccomp_" name "_us", load_filter, &prog, n, extra);	\
} while (0)
#endif

#if defined(LANDLOCK_CREATE_RULESET_VERSION) && defined(SYS_landlock_create_ruleset)
static double
landlock(const void *arg)
{
	struct landlock_ruleset_attr attr = { .handled_access_fs =
	    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
	    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
	    LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
	    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
	    LANDLOCK_ACCESS_FS_MAKE_SYM };
	double t0;
	int fd;

	(void)arg;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd == -1 || syscall(SYS_landlock_restrict_self, fd, 0) == -1)
		return -1;
	close(fd);
	return cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0;
}
#endif

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 500;

	if (n <= 0)
		n = 500;
	fork_floor(n);
#ifdef MP_BENCH_BPF
	FILTER(n, "preauth", mp_bpf_preauth);
	FILTER(n, "session", mp_bpf_session);
	FILTER(n, "relay", mp_bpf_relay);
#else
	printf("floor seccomp=unavailable\n");
#endif
#if defined(LANDLOCK_CREATE_RULESET_VERSION) && defined(SYS_landlock_create_ruleset)
	in_children("landlock_us", landlock, NULL, n, "");
#else
	printf("floor landlock_us=unavailable\n");
#endif
	return 0;
}
