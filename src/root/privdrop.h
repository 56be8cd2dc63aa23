/* The irrevocable changes of identity (the pre-auth user, the mailbox owner), verified; runs as root. */
#ifndef MP_PRIVDROP_H
#define MP_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "auth_pam.h"
#include "pop3d-limits.h"

enum privdrop_result {
	PRIVDROP_OK,
	PRIVDROP_ROOT_REFUSED,	/* uid 0 is never served */
	PRIVDROP_NOT_ROOT,	/* not started as root and the user is someone else */
};

/* Becomes the account's user for good (setgroups with the list the PAM child
 * looked up, which is initgroups() done in two processes; setgid, setuid; and
 * the check that root cannot come back: failure there is fatal), sets umask
 * 077.  When not running as root, only the caller's own account is accepted. */
enum privdrop_result privdrop_to(const struct auth_account *);

/* The pre-auth process's identity, looked up by root before the fork. */
struct privdrop_preauth {
	bool	 as_root;		/* false: started by an ordinary user, who stays */
	bool	 may_write_files;	/* the client's fd is a file (a script's output) */
	uid_t	 uid;
	gid_t	 gid;
	char	 user[LIMIT_USER_NAME + 1];
	char	 chroot[LIMIT_PATH];
};

/* Finds the pre-auth user (MP_PREAUTH_USER, or $MAILDIR_POP3D_PREAUTH_USER)
 * and checks its chroot (MP_PREAUTH_CHROOT, or $MAILDIR_POP3D_PREAUTH_CHROOT):
 * an existing directory owned by root, writable by no one else.  -1 with a
 * one-line reason in why when either is unusable: never a fallback. */
int	privdrop_preauth_lookup(struct privdrop_preauth *, char *why, size_t whysize);

/* In the pre-auth process, when started as root: chroot, no groups, the
 * pre-auth user's ids (verified), not dumpable.  Fatal on failure.  Its
 * rlimits and no-new-privs follow as that user (preauth.c). */
void	privdrop_preauth(const struct privdrop_preauth *);

/* Not dumpable (no core, no ptrace by the same uid, no /proc/PID/mem): set
 * again after every change of ids, which resets it. */
void	privdrop_nodump(void);

#endif
