/* seccomp and Landlock confinement of each part (pre-auth, TLS relay, session), all rules in sandbox.c; called by each part on itself after its identity change. */
#ifndef MP_SANDBOX_H
#define MP_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

enum sandbox_mode {
	SANDBOX_TRY = 0,	/* default: confine; where the kernel cannot, serve and log once */
	SANDBOX_REQUIRE,	/* --sandbox=require: where the kernel cannot, refuse (-1) */
	SANDBOX_OFF,		/* in-process harnesses only (fuzzers); no option selects it */
};

/* The mode sandbox_preauth and sandbox_relay apply (main sets it from
 * --sandbox once; SANDBOX_TRY until then). */
void	sandbox_set_mode(enum sandbox_mode);

/* Whether this build and kernel can apply both layers: true, or false with
 * why set ("landlock unavailable (...)", "seccomp unavailable (...)"). */
bool	sandbox_available(char *why, size_t whysize);

/* The pre-auth child, after chroot, the identity change and TLS set-up: no
 * file access at all (Landlock), and a seccomp allow-list of I/O on its open
 * descriptors, clocks, sleep, getrandom, memory without new executable
 * mappings, and exit.  open/openat fail with EACCES, socket/connect with
 * EPERM; exec, ptrace, id changes, mounts, fork and the like kill the
 * process (SIGSYS); any other call fails with ENOSYS.
 * 0 when confined (or, with SANDBOX_TRY, when the kernel cannot and it was
 * logged); -1 when it must not serve (logged). */
int	sandbox_preauth(void);

/* The pre-auth child once it only relays TLS: a second, tighter seccomp
 * filter stacked on the first (no sleeping, no fcntl, no open at all). */
int	sandbox_relay(void);

/* The session, after the privilege drop and once the Maildir path is known:
 * Landlock allows reading, writing, creating, removing and renaming regular
 * files beneath maildir_path only; seccomp allows the session's system calls
 * (execve, ptrace, mount, id changes, ... kill it; socket() fails EPERM).
 * A path that does not exist gets no rule: nothing is reachable. */
int	sandbox_session(const char *maildir_path, enum sandbox_mode);

/* One line for --version: what this build can apply. */
const char *sandbox_describe(void);

#endif
