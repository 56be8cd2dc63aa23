/* Every seccomp and Landlock rule of maildir-pop3d, one function per part; runs unprivileged in the part that confines itself (pre-auth child, TLS relay, session). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#if defined(__GLIBC__) && defined(HAVE_SECCOMP) && !defined(MP_SANDBOX_BPF)
#include <malloc.h>
#endif
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif
/*
 * seccomp filters are built with libseccomp from the tables below.  Normally at build time:
 * this file compiled with MP_SANDBOX_GEN is src/sandbox-gen, which writes every part's
 * filter as BPF into src/sandbox-bpf.h, and the daemon (MP_SANDBOX_BPF) only loads those
 * programs: no libseccomp in the process, and no half millisecond of building a filter in
 * every session.  Where no generator can run (cross builds), the daemon links libseccomp
 * and builds the same filters at run time.
 */
#if defined(HAVE_SECCOMP) && !defined(MP_SANDBOX_BPF)
#define MP_SECCOMP_LIB 1
#include <seccomp.h>
#endif
#ifdef MP_SANDBOX_BPF
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include "src/sandbox-bpf.h"
#endif
#ifdef HAVE_LANDLOCK
#include <linux/landlock.h>
#include <sys/syscall.h>
#endif

#include "log.h"
#include "sandbox.h"

/*
 * Sanitizer builds (--enable-asan, --enable-fuzzing) only: LeakSanitizer stops
 * the process at exit with a ptrace()ing clone that lists /proc/self/task and
 * reads /proc/self/maps, and reports go to files named by ASAN_OPTIONS and
 * UBSAN_OPTIONS log_path.  There, and only there, those calls are allowed,
 * /proc is readable and the report directories writable, and whatever would
 * kill the process fails with ENOSYS instead, so a report is never lost to
 * SIGSYS.  Release builds have none of this.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MP_SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MP_SANITIZER_BUILD 1
#endif
#endif

enum part { PART_PREAUTH, PART_RELAY, PART_SESSION };

static enum sandbox_mode preauth_mode = SANDBOX_TRY;

void
sandbox_set_mode(enum sandbox_mode mode)
{
	preauth_mode = mode;
}

/* ---- Landlock ------------------------------------------------------------ */

#ifdef HAVE_LANDLOCK
/* The file-system rights this build's header names, by the ABI that added them. */
static uint64_t
fs_rights_for_abi(int abi)
{
	uint64_t r = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
	    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
	    LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
	    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
	    LANDLOCK_ACCESS_FS_MAKE_SYM;

#ifdef LANDLOCK_ACCESS_FS_REFER
	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
#ifdef LANDLOCK_ACCESS_FS_IOCTL_DEV
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
#endif
	return r;
}

/* What a session may do beneath its Maildir: read and list; write the size
 * cache, the lock file and maildirsize; create, unlink and rename messages,
 * including new/ to cur/ (REFER).  No exec, no directories, links, devices,
 * sockets or fifos. */
static uint64_t
session_rights(int abi)
{
	uint64_t r = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
	    LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_REG;

#ifdef LANDLOCK_ACCESS_FS_REFER
	r |= LANDLOCK_ACCESS_FS_REFER;
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	r |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
	return r & fs_rights_for_abi(abi);
}

static int
landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? -1 : (int)v;
}

/* 0, or -1 with errno set; rights == 0 adds nothing. */
static int
add_path_rule(int ruleset, const char *path, uint64_t rights)
{
	struct landlock_path_beneath_attr pb;
	int fd, r, saved;

	memset(&pb, 0, sizeof(pb));
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd == -1)
		return -1;
	pb.parent_fd = fd;
	pb.allowed_access = rights;
	r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

#ifdef MP_SANITIZER_BUILD
/* The directory of log_path= in a sanitizer's options, writable for reports. */
static void
allow_report_dir(int ruleset, const char *opts, uint64_t handled)
{
	char dir[4096];
	const char *p, *end;
	char *slash;
	size_t n;

	if (opts == NULL || (p = strstr(opts, "log_path=")) == NULL)
		return;
	p += strlen("log_path=");
	end = p + strcspn(p, ":");
	n = (size_t)(end - p);
	if (n == 0 || n >= sizeof(dir))
		return;
	memcpy(dir, p, n);
	dir[n] = '\0';
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	*slash = '\0';
	add_path_rule(ruleset, dir[0] ? dir : "/", handled & (LANDLOCK_ACCESS_FS_WRITE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_READ_FILE));
}
#endif
#endif /* HAVE_LANDLOCK */

/* The kernel's Landlock ABI when it serves the part, else -1 with why set. */
static int
landlock_check(enum part part, char *why, size_t whysize)
{
#ifdef HAVE_LANDLOCK
	int abi = landlock_abi();

	if (abi < 0) {
		snprintf(why, whysize, "landlock unavailable (%s)", errno == EOPNOTSUPP ?
		    "disabled at boot: add landlock to the lsm= kernel parameter" :
		    errno == ENOSYS ? "kernel without Landlock, 5.13 or later needed" : strerror(errno));
		return -1;
	}
	if (part == PART_SESSION && abi < 2) {
		/* ABI 1 forbids every rename across directories. */
		snprintf(why, whysize, "landlock unavailable (ABI %d cannot allow new/ to cur/ "
		    "renames, kernel 5.19 or later needed)", abi);
		return -1;
	}
	return abi;
#else
	(void)part;
	snprintf(why, whysize, "landlock unavailable (built without <linux/landlock.h>)");
	return -1;
#endif
}

/*
 * PART_SESSION: everything handled, one rule for the Maildir.  The others:
 * everything handled, no rule (the pre-auth child has nothing to open).
 * 0 applied; 1 unavailable (why set); -1 failed (why set).
 */
static int
apply_landlock(enum part part, const char *maildir, char *why, size_t whysize)
{
#ifdef HAVE_LANDLOCK
	struct landlock_ruleset_attr attr;
	int abi, ruleset;

	if ((abi = landlock_check(part, why, whysize)) < 0)
		return 1;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = fs_rights_for_abi(abi);
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset == -1) {
		snprintf(why, whysize, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	if (part == PART_SESSION && maildir != NULL &&
	    add_path_rule(ruleset, maildir, session_rights(abi)) == -1 &&
	    errno != ENOENT && errno != ENOTDIR && errno != EACCES) {
		/* A Maildir that does not exist (or that the user cannot
		 * reach) gets no rule: then nothing is reachable at all. */
		snprintf(why, whysize, "landlock_add_rule: %s", strerror(errno));
		close(ruleset);
		return -1;
	}
#ifdef MP_SANITIZER_BUILD
	add_path_rule(ruleset, "/proc", attr.handled_access_fs &
	    (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR));
	allow_report_dir(ruleset, getenv("ASAN_OPTIONS"), attr.handled_access_fs);
	allow_report_dir(ruleset, getenv("UBSAN_OPTIONS"), attr.handled_access_fs);
#endif
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) == -1) {
		snprintf(why, whysize, "landlock_restrict_self: %s", strerror(errno));
		close(ruleset);
		return -1;
	}
	close(ruleset);
	return 0;
#else
	(void)maildir;
	return landlock_check(part, why, whysize) < 0 ? 1 : 0;
#endif
}

/* ---- seccomp ------------------------------------------------------------- */

#ifdef MP_SECCOMP_LIB
/* Reading and writing descriptors already open, waiting, time, randomness,
 * memory, signals the C library handles, exit: what every part does.  Any
 * call in none of the lists fails with ENOSYS; those in sys_kill kill. */
static const int sys_common[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg),
	SCMP_SYS(close), SCMP_SYS(shutdown),
	SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(getrandom),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(futex),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall),
	SCMP_SYS(getpid), SCMP_SYS(gettid),
	/* abort() and raise() signal the process itself; Landlock's signal
	 * scoping and the uid bound the rest. */
	SCMP_SYS(tgkill),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* Pre-auth adds: the failure delay, non-blocking switches, stdio's fstat,
 * signal handlers, one's own ids (logging). */
static const int sys_preauth[] = {
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
};

/* The session adds the Maildir (Landlock decides which files), the lock,
 * fsync of the size cache, its host name (the cache's temporary name), the
 * pre-auth child it may reap, and its own ids. */
static const int sys_session[] = {
	SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(close_range),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statx),
	SCMP_SYS(getdents64), SCMP_SYS(getdents), SCMP_SYS(lseek), SCMP_SYS(pread64),
	SCMP_SYS(fcntl), SCMP_SYS(fsync), SCMP_SYS(fdatasync),
	SCMP_SYS(unlinkat), SCMP_SYS(unlink),
	SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(rename),
	SCMP_SYS(fchdir),
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(uname),
	SCMP_SYS(wait4), SCMP_SYS(waitid), SCMP_SYS(kill),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
	SCMP_SYS(getppid),
};

#ifdef MP_SANITIZER_BUILD
/* LeakSanitizer's stop-the-world at exit and the sanitizers' report files. */
static const int sys_sanitizer[] = {
	SCMP_SYS(ptrace), SCMP_SYS(clone), SCMP_SYS(wait4), SCMP_SYS(prctl),
	SCMP_SYS(sched_yield), SCMP_SYS(getdents64), SCMP_SYS(open), SCMP_SYS(openat),
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(sigaltstack), SCMP_SYS(getppid),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(rt_sigaction), SCMP_SYS(kill),
	SCMP_SYS(tkill), SCMP_SYS(sched_getaffinity), SCMP_SYS(pipe2), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64),
};
#endif

/* Allow rules that fail to be added only make the filter stricter (a call
 * that does not exist on this architecture): not an error. */
static void
allow_all(scmp_filter_ctx ctx, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		(void)seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nrs[i], 0);
}

/* Denials that must fail softly, with the errno a program expects. */
static void
deny_soft(scmp_filter_ctx ctx, enum part part)
{
	/* syslog() reconnects after a syslogd restart: it must fail, not die
	 * (the socket to the log was opened with LOG_NDELAY before). */
	static const int eperm[] = {
		SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect),
	};
	static const int eacces_preauth[] = { SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2) };

	/* Like the allow rules: one that fails leaves the call to the
	 * default action, which is stricter. */
	for (size_t i = 0; i < sizeof(eperm) / sizeof(eperm[0]); i++)
		(void)seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), eperm[i], 0);
	/* isatty() and the like: "not a terminal". */
	(void)seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0);
	/* A late dlopen() (or an exploit) wants executable memory: refused. */
	(void)seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	(void)seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mmap), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
	(void)seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	(void)seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mprotect), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
	if (part == PART_PREAUTH) {
		/* sandbox_relay() stacks its filter from inside this one: adding
		 * a filter can only take calls away (no-new-privs is set). */
		(void)seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1,
		    SCMP_A0(SCMP_CMP_EQ, 1 /* SECCOMP_SET_MODE_FILTER */, 0));
		(void)seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1,
		    SCMP_A0(SCMP_CMP_EQ, 2 /* SECCOMP_GET_ACTION_AVAIL */, 0));
	}
	if (part != PART_SESSION) {
		/* A library that looks for a file it can do without (time
		 * zone, configuration) gets "permission denied". */
		for (size_t i = 0; i < sizeof(eacces_preauth) / sizeof(eacces_preauth[0]); i++)
			(void)seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), eacces_preauth[i], 0);
	}
}

/* Calls no part makes and an attacker wants: running programs, debugging or
 * reading other processes, mounts and namespaces, ids and capabilities, new
 * processes, kernel keys, BPF, io_uring, modules.  These kill. */
static const int sys_kill[] = {
	SCMP_SYS(execve), SCMP_SYS(execveat),
	SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
	SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(fsopen), SCMP_SYS(fsmount),
	SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
	SCMP_SYS(unshare), SCMP_SYS(setns),
	SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid), SCMP_SYS(setregid),
	SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(setgroups), SCMP_SYS(setfsuid),
	SCMP_SYS(setfsgid), SCMP_SYS(capset),
	SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(clone), SCMP_SYS(clone3),
	SCMP_SYS(bpf), SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key),
	SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
	SCMP_SYS(userfaultfd), SCMP_SYS(perf_event_open), SCMP_SYS(personality),
	SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(init_module),
	SCMP_SYS(finit_module), SCMP_SYS(delete_module),
	SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at),
};

/* The part's filter, or NULL. */
static scmp_filter_ctx
build_filter(enum part part)
{
	scmp_filter_ctx ctx;
	uint32_t kill;

#ifdef MP_SANITIZER_BUILD
	kill = SCMP_ACT_ERRNO(ENOSYS);
#else
	kill = SCMP_ACT_KILL_PROCESS;
#endif
	/*
	 * An allow-list: a call not named here fails with ENOSYS, as on a kernel
	 * that lacks it, so a call the C library only tries (and falls back from)
	 * does no harm, and calls later kernels add are denied too; those an
	 * attacker wants (sys_kill) end the process.  ENOSYS rather than a kill
	 * by default also lets strace inject faults (it turns a call into an
	 * invalid one) in the tests.
	 */
	ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
	if (ctx == NULL)
		return NULL;
	/* confine() sets no-new-privs itself; libseccomp's own prctl() would
	 * be refused when the relay's filter is loaded under the pre-auth one. */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
	/*
	 * A binary tree over the system call numbers instead of one long chain.
	 * The kernel runs the filter once per system call number and
	 * architecture when it is loaded (to cache the calls that are always
	 * allowed), and converts and compiles it: with the chain that took
	 * about 150 us per filter, two filters (pre-auth and session) in every
	 * login; with the tree about 55 us.  Calls the cache does not cover
	 * (mmap, mprotect, and every denial) also take fewer steps.
	 */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
	allow_all(ctx, sys_common, sizeof(sys_common) / sizeof(sys_common[0]));
	switch (part) {
	case PART_PREAUTH:
		allow_all(ctx, sys_preauth, sizeof(sys_preauth) / sizeof(sys_preauth[0]));
		break;
	case PART_SESSION:
		allow_all(ctx, sys_session, sizeof(sys_session) / sizeof(sys_session[0]));
		break;
	case PART_RELAY:
		break;
	}
#ifdef MP_SANITIZER_BUILD
	allow_all(ctx, sys_sanitizer, sizeof(sys_sanitizer) / sizeof(sys_sanitizer[0]));
#endif
	deny_soft(ctx, part);
	/* Added last: a sanitizer build's allowance (clone, ptrace) wins. */
	for (size_t i = 0; i < sizeof(sys_kill) / sizeof(sys_kill[0]); i++)
		(void)seccomp_rule_add(ctx, kill, sys_kill[i], 0);
	return ctx;
}

/* 0 applied; 1 unavailable (why set); -1 failed (why set). */
static int
apply_seccomp(enum part part, char *why, size_t whysize)
{
	scmp_filter_ctx ctx;
	int r;

	/* API level 3: seccomp(2) itself and SECCOMP_RET_KILL_PROCESS, kernel
	 * 4.14.  valgrind 3.19 does not pass seccomp(2) on: level 1. */
	if (seccomp_api_get() < 3) {
		snprintf(why, whysize, "seccomp unavailable (kernel 4.14 or later needed)");
		return 1;
	}
	if ((ctx = build_filter(part)) == NULL) {
		snprintf(why, whysize, "seccomp_init failed");
		return -1;
	}
	r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0) {
		snprintf(why, whysize, "seccomp_load: %s", strerror(-r));
		return -1;
	}
	return 0;
}
#elif defined(MP_SANDBOX_BPF)
/* seccomp(2) and SECCOMP_RET_KILL_PROCESS (kernel 4.14); valgrind 3.19 and
 * older kernels say ENOSYS or EINVAL. */
static bool
seccomp_kernel_ok(void)
{
	uint32_t action = SECCOMP_RET_KILL_PROCESS;

	return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

/* 0 applied; 1 unavailable (why set); -1 failed (why set). */
static int
apply_seccomp(enum part part, char *why, size_t whysize)
{
	struct sock_fprog prog;

	if (!seccomp_kernel_ok()) {
		snprintf(why, whysize, "seccomp unavailable (kernel 4.14 or later needed)");
		return 1;
	}
	switch (part) {
	case PART_PREAUTH:
		prog.filter = (struct sock_filter *)(uintptr_t)mp_bpf_preauth;
		prog.len = (unsigned short)(sizeof(mp_bpf_preauth) / sizeof(mp_bpf_preauth[0]));
		break;
	case PART_RELAY:
		prog.filter = (struct sock_filter *)(uintptr_t)mp_bpf_relay;
		prog.len = (unsigned short)(sizeof(mp_bpf_relay) / sizeof(mp_bpf_relay[0]));
		break;
	case PART_SESSION:
	default:
		prog.filter = (struct sock_filter *)(uintptr_t)mp_bpf_session;
		prog.len = (unsigned short)(sizeof(mp_bpf_session) / sizeof(mp_bpf_session[0]));
		break;
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == -1) {
		snprintf(why, whysize, "seccomp: %s", strerror(errno));
		return -1;
	}
	return 0;
}
#else
static int
apply_seccomp(enum part part, char *why, size_t whysize)
{
	(void)part;
	snprintf(why, whysize, "seccomp unavailable (built without libseccomp)");
	return 1;
}
#endif /* MP_SECCOMP_LIB */

/* ---- the parts ----------------------------------------------------------- */

static bool
seccomp_probe(char *why, size_t whysize)
{
#if defined(MP_SANDBOX_BPF)
	if (seccomp_kernel_ok())
		return true;
	snprintf(why, whysize, "seccomp unavailable (kernel 4.14 or later needed)");
	return false;
#elif defined(MP_SECCOMP_LIB)
	/* What apply_seccomp() needs (see there). */
	if (seccomp_api_get() >= 3)
		return true;
	snprintf(why, whysize, "seccomp unavailable (kernel 4.14 or later needed)");
	return false;
#else
	snprintf(why, whysize, "seccomp unavailable (built without libseccomp)");
	return false;
#endif
}

bool
sandbox_available(char *why, size_t whysize)
{
	why[0] = '\0';
	if (landlock_check(PART_SESSION, why, whysize) < 0)
		return false;
	return seccomp_probe(why, whysize);
}

static int
confine(enum part part, const char *maildir, enum sandbox_mode mode)
{
	char why_ll[256] = "", why_sc[256] = "", avail[256];
	int ll, sc;

	if (mode == SANDBOX_OFF)
		return 0;
	if (part == PART_RELAY) {
		/* Inside the pre-auth confinement: no-new-privs and the
		 * Landlock ruleset stay; only a tighter filter is added (the
		 * pre-auth part already refused where --sandbox=require must). */
		sc = apply_seccomp(part, why_sc, sizeof(why_sc));
		if (sc == -1)
			log_warnx("sandbox: relay: %s", why_sc);
		return sc == -1 ? -1 : 0;
	}
	if (mode == SANDBOX_REQUIRE && !sandbox_available(avail, sizeof(avail))) {
		log_warnx("sandbox: %s; --sandbox=require refuses to serve", avail);
		return -1;
	}
#if defined(HAVE_SYS_PRCTL_H) && defined(PR_SET_NO_NEW_PRIVS)
	/* Landlock and unprivileged seccomp need it; nothing here execs. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_warn("sandbox: PR_SET_NO_NEW_PRIVS");
		return -1;
	}
#endif
	/* Landlock first: its own system calls are not in the filter. */
	ll = apply_landlock(part, maildir, why_ll, sizeof(why_ll));
	if (ll == -1) {
		log_warnx("sandbox: %s", why_ll);
		return -1;
	}
	sc = apply_seccomp(part, why_sc, sizeof(why_sc));
	if (sc == -1) {
		log_warnx("sandbox: %s", why_sc);
		return -1;
	}
#if defined(__GLIBC__) && defined(MP_SECCOMP_LIB)
	/* libseccomp's rule database is freed, but its pages would stay in
	 * the heap of every idle session (about 70 KiB). */
	malloc_trim(0);
#endif
	if (ll == 1 || sc == 1) {
		log_warnx("sandbox: %s%s%s", ll == 1 ? why_ll : "", ll == 1 && sc == 1 ? ", " : "",
		    sc == 1 ? why_sc : "");
		if (mode == SANDBOX_REQUIRE)
			return -1;
	}
	return 0;
}

int
sandbox_preauth(void)
{
	return confine(PART_PREAUTH, NULL, preauth_mode);
}

int
sandbox_relay(void)
{
	return confine(PART_RELAY, NULL, preauth_mode);
}

int
sandbox_session(const char *maildir_path, enum sandbox_mode mode)
{
	return confine(PART_SESSION, maildir_path, mode);
}

const char *
sandbox_describe(void)
{
	static char buf[256];
	int n = 0;

#if defined(MP_SANDBOX_BPF)
	n = snprintf(buf, sizeof(buf), "seccomp (libseccomp %s)", MP_BPF_LIBSECCOMP);
#elif defined(MP_SECCOMP_LIB)
	const struct scmp_version *v = seccomp_version();

	n = snprintf(buf, sizeof(buf), "seccomp (libseccomp %u.%u.%u)", v->major, v->minor, v->micro);
#else
	n = snprintf(buf, sizeof(buf), "seccomp not built in");
#endif
#ifdef HAVE_LANDLOCK
	{
		int abi = landlock_abi();

		if (abi >= 0)
			snprintf(buf + n, sizeof(buf) - (size_t)n, ", Landlock (kernel ABI %d)", abi);
		else
			snprintf(buf + n, sizeof(buf) - (size_t)n, ", Landlock (not in this kernel)");
	}
#else
	snprintf(buf + n, sizeof(buf) - (size_t)n, ", Landlock not built in");
#endif
#ifdef MP_SANITIZER_BUILD
	n = (int)strlen(buf);
	snprintf(buf + n, sizeof(buf) - (size_t)n,
	    "; sanitizer build: denied calls fail with ENOSYS instead of killing");
#endif
	return buf;
}

#ifdef MP_SANDBOX_GEN
/* src/sandbox-gen: every part's filter as BPF, a C header on standard output. */
static int
emit(const char *name, enum part part)
{
	scmp_filter_ctx ctx = build_filter(part);
	FILE *tmp = tmpfile();
	unsigned char ins[8];
	int first = 1;

	if (ctx == NULL || tmp == NULL || seccomp_export_bpf(ctx, fileno(tmp)) < 0)
		return -1;
	seccomp_release(ctx);
	rewind(tmp);
	printf("static const struct sock_filter mp_bpf_%s[] = {\n", name);
	/* struct sock_filter: u16 code, u8 jt, u8 jf, u32 k, in host order. */
	while (fread(ins, sizeof(ins), 1, tmp) == 1) {
		uint16_t code;
		uint32_t k;

		memcpy(&code, ins, 2);
		memcpy(&k, ins + 4, 4);
		printf("%s\t{ 0x%04x, %u, %u, 0x%08x }", first ? "" : ",\n", code, ins[2], ins[3], k);
		first = 0;
	}
	printf("\n};\n");
	fclose(tmp);
	return first ? -1 : 0;
}

int
main(void)
{
	const struct scmp_version *v = seccomp_version();

	printf("/* Generated by src/sandbox-gen from the tables in src/sandbox.c: do not edit. */\n");
	printf("#define MP_BPF_LIBSECCOMP \"%u.%u.%u\"\n", v->major, v->minor, v->micro);
	if (emit("preauth", PART_PREAUTH) == -1 || emit("relay", PART_RELAY) == -1 ||
	    emit("session", PART_SESSION) == -1) {
		fprintf(stderr, "sandbox-gen: cannot build the filters\n");
		return 1;
	}
	return 0;
}
#endif
