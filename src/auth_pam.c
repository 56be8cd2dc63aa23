/* Password check through PAM (authenticate, acct_mgmt, setcred; never a session); runs as root before login. */
#include "config.h"

#include <security/pam_appl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __has_include
#if __has_include(<shadow.h>)
#include <shadow.h>
#define MP_HAVE_SHADOW 1
#endif
#endif

#include "auth_pam.h"
#include "pop3d-limits.h"
#include "log.h"

struct conv_data {
	const char	*password;
	int		 answered;
};

static int
conv(int n, const struct pam_message **msg, struct pam_response **resp_r, void *appdata)
{
	struct conv_data *cd = appdata;
	struct pam_response *resp;
	char clean[128];
	int i;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	resp = calloc((size_t)n, sizeof(*resp));
	if (resp == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			/* The password, and only a few times: a stack that
			 * keeps asking wants something we do not have. */
			if (cd->answered++ >= 3 || (resp[i].resp = strdup(cd->password)) == NULL)
				goto fail;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			log_sanitize(clean, sizeof(clean), msg[i]->msg, strlen(msg[i]->msg));
			log_info("PAM says: %s", clean);
			break;
		default:
			/* PAM_PROMPT_ECHO_ON and anything else: a question
			 * a POP3 client cannot answer. */
			goto fail;
		}
	}
	*resp_r = resp;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < n; i++)
		if (resp[i].resp) {
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	free(resp);
	return PAM_CONV_ERR;
}

/* PAM modules delay failures by their own rules (pam_unix: about 2 s,
 * unless nodelay); we take the delay over so every failure costs the same. */
static void
no_delay(int retval, unsigned usec, void *appdata)
{
	(void)retval;
	(void)usec;
	(void)appdata;
}

static enum auth_result
classify_authenticate(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return AUTH_OK;
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_CRED_INSUFFICIENT:
	case PAM_MAXTRIES:
	case PAM_PERM_DENIED:
	case PAM_CONV_ERR:
		return AUTH_FAILED;
	default:
		/* PAM_AUTHINFO_UNAVAIL (directory down), PAM_SYSTEM_ERR,
		 * PAM_BUF_ERR, PAM_SERVICE_ERR, PAM_ABORT, ... */
		return AUTH_SYSERR;
	}
}

static enum auth_result
classify_acct(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return AUTH_OK;
	case PAM_ACCT_EXPIRED:
		return AUTH_ACCT_EXPIRED;
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_AUTHTOK_EXPIRED:
		return AUTH_PASS_EXPIRED;
	case PAM_PERM_DENIED:
	case PAM_USER_UNKNOWN:
	case PAM_AUTH_ERR:
		return AUTH_DENIED;
	default:
		return AUTH_SYSERR;
	}
}

/* Debian's common-account turns pam_unix's PAM_ACCT_EXPIRED into pam_deny's
 * PAM_AUTH_ERR, so an account refused after the right password is looked up
 * in the shadow file (readable only as root), as pam_unix itself does, to
 * tell the user why.  Only reached after a correct password. */
static bool
shadow_expired(const char *user)
{
#ifdef MP_HAVE_SHADOW
	const struct spwd *sp = getspnam(user);
	long today = (long)(time(NULL) / 86400);

	if (sp == NULL)
		return false;
	if (sp->sp_expire != -1 && today >= sp->sp_expire)
		return true;
	/* Password expired and past its inactivity period: pam_unix calls
	 * this an expired account too. */
	if (sp->sp_lstchg > 0 && sp->sp_max != -1 && sp->sp_inact != -1 &&
	    today - sp->sp_lstchg > sp->sp_max + sp->sp_inact)
		return true;
#else
	(void)user;
#endif
	return false;
}

enum auth_result
auth_pam_check(const char *service, const char *user, const char *password,
    const char *rhost, char *canon_r, size_t canon_size, char *reason_r, size_t reason_size)
{
	struct conv_data cd = { password, 0 };
	struct pam_conv pc = { conv, &cd };
	pam_handle_t *pamh = NULL;
	enum auth_result res;
	const void *item;
	int rc;

	snprintf(reason_r, reason_size, "%s", "unknown");
	rc = pam_start(service, user, &pc, &pamh);
	if (rc != PAM_SUCCESS) {
		snprintf(reason_r, reason_size, "pam_start: %s", pam_strerror(pamh, rc));
		return AUTH_SYSERR;
	}
	/* For pam_access, pam_faillock and fail2ban's PAM filter.  A local
	 * peer has no address: "local" as PAM_RHOST would only send libaudit
	 * looking it up in the DNS. */
	if ((strcmp(rhost, "local") != 0 &&
	    pam_set_item(pamh, PAM_RHOST, rhost) != PAM_SUCCESS) ||
	    pam_set_item(pamh, PAM_TTY, "pop3") != PAM_SUCCESS ||
	    pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay) != PAM_SUCCESS) {
		res = AUTH_SYSERR;
		snprintf(reason_r, reason_size, "pam_set_item failed");
		goto out;
	}
	rc = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	res = classify_authenticate(rc);
	if (res != AUTH_OK) {
		snprintf(reason_r, reason_size, "%s", pam_strerror(pamh, rc));
		goto out;
	}
	rc = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	res = classify_acct(rc);
	if (res == AUTH_DENIED && pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS &&
	    item != NULL && shadow_expired(item)) {
		res = AUTH_ACCT_EXPIRED;
		snprintf(reason_r, reason_size, "%s", pam_strerror(pamh, PAM_ACCT_EXPIRED));
		goto out;
	}
	if (res != AUTH_OK) {
		snprintf(reason_r, reason_size, "%s", pam_strerror(pamh, rc));
		goto out;
	}
	rc = pam_setcred(pamh, PAM_ESTABLISH_CRED | PAM_SILENT);
	if (rc != PAM_SUCCESS) {
		res = AUTH_SYSERR;
		snprintf(reason_r, reason_size, "pam_setcred: %s", pam_strerror(pamh, rc));
		goto out;
	}
	/* Modules may map names: serve the user PAM settled on. */
	rc = pam_get_item(pamh, PAM_USER, &item);
	if (rc != PAM_SUCCESS || item == NULL || strlen(item) >= canon_size ||
	    strlen(item) == 0) {
		res = AUTH_SYSERR;
		snprintf(reason_r, reason_size, "no usable PAM_USER");
		goto out;
	}
	memcpy(canon_r, item, strlen(item) + 1);
	snprintf(reason_r, reason_size, "%s", "ok");
out:
	pam_end(pamh, rc);
	return res;
}
