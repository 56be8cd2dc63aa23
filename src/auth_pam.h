/* Password check through PAM: pam_start .. pam_setcred, the conversation, PAM_RHOST/PAM_TTY, wiping secrets; runs as root before login. */
#ifndef MP_AUTH_PAM_H
#define MP_AUTH_PAM_H

#include <stddef.h>

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,		/* wrong password, unknown user: one answer for both */
	AUTH_ACCT_EXPIRED,	/* right password, account expired */
	AUTH_PASS_EXPIRED,	/* right password, password must be changed */
	AUTH_DENIED,		/* right password, account not allowed here */
	AUTH_SYSERR,		/* PAM or the system failed, not the credentials */
};

/* Checks user/password with the PAM service.  On AUTH_OK the name PAM left
 * in PAM_USER is copied to canon_r.  reason_r gets PAM's text for the log.
 * The caller wipes password afterwards; no copy of it outlives this call
 * except inside PAM, which pam_end() overwrites. */
enum auth_result auth_pam_check(const char *service, const char *user, const char *password,
    const char *rhost, char *canon_r, size_t canon_size, char *reason_r, size_t reason_size);

#endif
