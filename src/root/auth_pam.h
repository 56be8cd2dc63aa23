/* Password check through PAM in a short-lived child process, and what the login learns about the account; runs as root after the connection is accepted. */
#ifndef MP_AUTH_PAM_H
#define MP_AUTH_PAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>

#include "pop3d-limits.h"

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,		/* wrong password, unknown user, or the account phase said no */
	AUTH_SYSERR,		/* PAM or the system failed, not the credentials */
};

/* The account PAM settled on, as the password database describes it. */
struct auth_account {
	char	 name[LIMIT_USER_NAME + 1];	/* PAM_USER as PAM left it */
	bool	 found;			/* name has a passwd entry */
	bool	 home_too_long;		/* its home does not fit home[] */
	uid_t	 uid;
	gid_t	 gid;
	char	 home[LIMIT_PATH];
	int	 ngroups;		/* the group list initgroups() would set */
	gid_t	*groups;		/* malloc()ed; auth_account_free() */
};

/*
 * Checks user/password with the PAM service (pam_authenticate, pam_acct_mgmt,
 * pam_setcred; never a session) in a child process, and there also looks up
 * the account PAM_USER names and its groups.  The session process thus never
 * loads a PAM module or an NSS module and never holds a password hash's
 * working memory (yescrypt: 16 MiB); the child's memory goes with it.
 * A child that outlives timeout_ms (negative: no limit) is killed: AUTH_SYSERR.
 * On AUTH_OK, *acct is filled (acct->found may still be false).  reason_r
 * gets PAM's text for the log.  The caller wipes password afterwards.
 */
enum auth_result auth_check(const char *service, const char *user, const char *password,
    const char *rhost, int timeout_ms, struct auth_account *acct,
    char *reason_r, size_t reason_size);

/* Registers a descriptor the PAM child closes first (the client's socket,
 * the records, the relay): PAM modules run code nobody reviewed here.  -1
 * is ignored. */
void	auth_close_in_child(int fd);

/* Inline, so the fuzz stubs that stand in for auth_pam.o share it. */
static inline void
auth_account_free(struct auth_account *a)
{
	free(a->groups);
	a->groups = NULL;
	a->ngroups = 0;
}

#endif
