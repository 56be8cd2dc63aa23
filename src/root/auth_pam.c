/* Password check through PAM (authenticate, acct_mgmt, setcred; never a session) in a child process that also looks the account up; runs as root after the connection is accepted, in a child that holds no client socket. */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdnoreturn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_pam.h"
#include "deadline.h"
#include "log.h"
#include "pop3d-limits.h"

/*
 * libpam is loaded in the child only, so the session process never maps it
 * or what it pulls in (libaudit, libcap-ng): 0.12 MiB less in every session,
 * and nothing of PAM left in a process that runs as the mailbox owner.  The
 * symbols are looked up in the global scope, not in libpam's own, so that an
 * interposed PAM (pam_wrapper in the tests, LD_PRELOAD) is the one called.
 * The members are in the order of load_pam()'s names[].
 */
static struct {
	int		 (*start)(const char *, const char *, const struct pam_conv *,
			    pam_handle_t **);
	int		 (*end)(pam_handle_t *, int);
	int		 (*set_item)(pam_handle_t *, int, const void *);
	int		 (*get_item)(const pam_handle_t *, int, const void **);
	const char	*(*strerror)(pam_handle_t *, int);
	int		 (*authenticate)(pam_handle_t *, int);
	int		 (*acct_mgmt)(pam_handle_t *, int);
	int		 (*setcred)(pam_handle_t *, int);
} P;

static int
load_pam(char *why, size_t whysize)
{
	static const char *const names[] = { "pam_start", "pam_end", "pam_set_item",
	    "pam_get_item", "pam_strerror", "pam_authenticate", "pam_acct_mgmt", "pam_setcred" };
	void *global, *f;
	const char *e;

	_Static_assert(sizeof(P) == sizeof(names) / sizeof(names[0]) * sizeof(f),
	    "P holds one pointer per name, each the size of an object pointer");
	/* Kept loaded for the child's short life; only the global scope is
	 * searched below. */
	if (dlopen(MP_PAM_SONAME, RTLD_NOW | RTLD_GLOBAL) == NULL ||
	    (global = dlopen(NULL, RTLD_NOW)) == NULL) {
		e = dlerror();
		snprintf(why, whysize, "cannot load %s: %s", MP_PAM_SONAME, e ? e : "?");
		return -1;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((f = dlsym(global, names[i])) == NULL) {
			snprintf(why, whysize, "%s has no %s", MP_PAM_SONAME, names[i]);
			return -1;
		}
		memcpy((char *)&P + i * sizeof(f), &f, sizeof(f));
	}
	return 0;
}

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
			if (cd->answered++ >= LIMIT_PAM_PROMPTS || (resp[i].resp = strdup(cd->password)) == NULL)
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

/* PAM's verdict on the credentials and then on the account: every refusal
 * is one answer to the client, so only "PAM itself failed" stands apart
 * (PAM_AUTHINFO_UNAVAIL: a directory is down; PAM_SYSTEM_ERR, ...). */
static enum auth_result
classify(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return AUTH_OK;
	case PAM_AUTH_ERR: case PAM_USER_UNKNOWN: case PAM_CRED_INSUFFICIENT: case PAM_MAXTRIES:
	case PAM_PERM_DENIED: case PAM_CONV_ERR: case PAM_ACCT_EXPIRED: case PAM_NEW_AUTHTOK_REQD:
	case PAM_AUTHTOK_EXPIRED:
		return AUTH_FAILED;
	default:
		return AUTH_SYSERR;
	}
}

/* The PAM conversation proper; in the child.  On AUTH_OK the name PAM left
 * in PAM_USER is in canon_r.  No copy of the password outlives this call
 * except inside PAM, which pam_end() overwrites. */
static enum auth_result
pam_check(const char *service, const char *user, const char *password,
    const char *rhost, char *canon_r, size_t canon_size, char *reason_r, size_t reason_size)
{
	struct conv_data cd = { password, 0 };
	struct pam_conv pc = { conv, &cd };
	pam_handle_t *pamh = NULL;
	enum auth_result res;
	const void *item;
	int rc;

	snprintf(reason_r, reason_size, "%s", "unknown");
	if (load_pam(reason_r, reason_size) == -1)
		return AUTH_SYSERR;
	rc = P.start(service, user, &pc, &pamh);
	if (rc != PAM_SUCCESS) {
		snprintf(reason_r, reason_size, "pam_start: %s", P.strerror(pamh, rc));
		return AUTH_SYSERR;
	}
	/* For pam_access, pam_faillock and fail2ban's PAM filter.  A local
	 * peer has no address: "local" as PAM_RHOST would only send libaudit
	 * looking it up in the DNS. */
	if ((strcmp(rhost, "local") != 0 &&
	    P.set_item(pamh, PAM_RHOST, rhost) != PAM_SUCCESS) ||
	    P.set_item(pamh, PAM_TTY, "pop3") != PAM_SUCCESS ||
	    P.set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay) != PAM_SUCCESS) {
		res = AUTH_SYSERR;
		snprintf(reason_r, reason_size, "pam_set_item failed");
		goto out;
	}
	rc = P.authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if ((res = classify(rc)) == AUTH_OK)
		res = classify(rc = P.acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK));
	if (res != AUTH_OK) {
		snprintf(reason_r, reason_size, "%s", P.strerror(pamh, rc));
		goto out;
	}
	rc = P.setcred(pamh, PAM_ESTABLISH_CRED | PAM_SILENT);
	if (rc != PAM_SUCCESS) {
		res = AUTH_SYSERR;
		snprintf(reason_r, reason_size, "pam_setcred: %s", P.strerror(pamh, rc));
		goto out;
	}
	/* Modules may map names: serve the user PAM settled on. */
	rc = P.get_item(pamh, PAM_USER, &item);
	if (rc != PAM_SUCCESS || item == NULL || strlen(item) >= canon_size ||
	    strlen(item) == 0) {
		res = AUTH_SYSERR;
		snprintf(reason_r, reason_size, "no usable PAM_USER");
		goto out;
	}
	memcpy(canon_r, item, strlen(item) + 1);
	snprintf(reason_r, reason_size, "%s", "ok");
out:
	P.end(pamh, rc);
	return res;
}

/* ---- the child -------------------------------------------------------- */

/* What the child reports, written whole to the pipe, then acct.ngroups
 * gid_t values.  The parent trusts nothing in it without checking. */
struct report {
	int			res;
	char			reason[128];
	struct auth_account	acct;	/* acct.groups means nothing here */
};

/* The group list initgroups() would set: at most NGROUPS_MAX of them, cut
 * there as initgroups() cuts. */
static gid_t *
account_groups(const char *name, gid_t gid, int *n_r)
{
	long max = sysconf(_SC_NGROUPS_MAX);
	gid_t *g;

	if (max <= 0 || max > LIMIT_GROUPS)
		max = LIMIT_GROUPS;
	*n_r = (int)max;
	if ((g = calloc((size_t)max, sizeof(*g))) != NULL && getgrouplist(name, gid, g, n_r) == -1)
		*n_r = (int)max;
	return g;
}

static int private_fds[4] = { -1, -1, -1, -1 };

void
auth_close_in_child(int fd)
{
	for (size_t i = 0; i < sizeof(private_fds) / sizeof(private_fds[0]); i++)
		if (private_fds[i] == -1 || private_fds[i] == fd) {
			private_fds[i] = fd;
			return;
		}
}

static noreturn void
child_main(int fd, const char *service, const char *user, char *password, const char *rhost)
{
	struct report rep = { 0 };
	struct passwd *pw;
	gid_t *groups = NULL;
	int null;

	/* Whatever a PAM module prints (pam_exec's programs) must not reach
	 * the client: the connection is fd 0 and fd 1.  Only the fds root
	 * named are closed: an fd a library holds (NSS, syslog) is its own. */
	for (size_t i = 0; i < sizeof(private_fds) / sizeof(private_fds[0]); i++)
		if (private_fds[i] > 2)
			close(private_fds[i]);
	if ((null = open("/dev/null", O_RDWR)) == -1 || dup2(null, 0) == -1 ||
	    dup2(null, 1) == -1)
		_exit(MP_EXIT_TEMPFAIL);
	if (null > 2)
		close(null);
	rep.res = (int)pam_check(service, user, password, rhost, rep.acct.name, sizeof(rep.acct.name),
	    rep.reason, sizeof(rep.reason));
	explicit_bzero(password, strlen(password));
	if (rep.res == AUTH_OK && (pw = getpwnam(rep.acct.name)) != NULL) {
		rep.acct.found = true;
		rep.acct.uid = pw->pw_uid;
		rep.acct.gid = pw->pw_gid;
		if (strlen(pw->pw_dir) >= sizeof(rep.acct.home))
			rep.acct.home_too_long = true;
		else
			memcpy(rep.acct.home, pw->pw_dir, strlen(pw->pw_dir) + 1);
		groups = account_groups(rep.acct.name, pw->pw_gid, &rep.acct.ngroups);
		if (groups == NULL) {
			rep.res = AUTH_SYSERR;
			snprintf(rep.reason, sizeof(rep.reason), "no memory for the group list");
			rep.acct.ngroups = 0;
		}
	}
	rep.acct.groups = NULL;
	if (fd_write_all(fd, &rep, sizeof(rep)) == -1 ||
	    (rep.acct.ngroups > 0 &&
	    fd_write_all(fd, groups, (size_t)rep.acct.ngroups * sizeof(*groups)) == -1))
		_exit(MP_EXIT_TEMPFAIL);
	_exit(MP_EXIT_OK);
}

/* ---- the session's side ---------------------------------------------- */

enum auth_result
auth_check(const char *service, const char *user, const char *password,
    const char *rhost, int timeout_ms, struct auth_account *acct,
    char *reason_r, size_t reason_size)
{
	long long deadline = deadline_in_ms(timeout_ms);
	struct report rep;
	enum auth_result res = AUTH_SYSERR;
	int p[2], st = 0, err = 0;
	bool got = false;
	pid_t pid, w;

	memset(acct, 0, sizeof(*acct));
	snprintf(reason_r, reason_size, "%s", "unknown");
	/* A launcher that ignores SIGCHLD would have the child reaped
	 * behind waitpid()'s back. */
	signal(SIGCHLD, SIG_DFL);
	if (pipe(p) == -1) {
		snprintf(reason_r, reason_size, "pipe: %s", strerror(errno));
		return AUTH_SYSERR;
	}
	fcntl(p[0], F_SETFD, FD_CLOEXEC);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	pid = fork();
	if (pid == -1) {
		snprintf(reason_r, reason_size, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return AUTH_SYSERR;
	}
	if (pid == 0) {
		char copy[LIMIT_PASSWORD + 1];

		close(p[0]);
		/* A writable copy to wipe: the caller's stays the caller's. */
		snprintf(copy, sizeof(copy), "%s", password);
		child_main(p[1], service, user, copy, rhost);
	}
	close(p[1]);
	if (deadline_read_full(p[0], &rep, sizeof(rep), deadline) == 0) {
		rep.reason[sizeof(rep.reason) - 1] = '\0';
		rep.acct.name[sizeof(rep.acct.name) - 1] = '\0';
		rep.acct.home[sizeof(rep.acct.home) - 1] = '\0';
		got = rep.res >= AUTH_OK && rep.res <= AUTH_SYSERR &&
		    rep.acct.ngroups >= 0 && rep.acct.ngroups <= LIMIT_GROUPS;
		if (got && rep.acct.ngroups > 0) {
			acct->groups = malloc((size_t)rep.acct.ngroups * sizeof(gid_t));
			got = acct->groups != NULL && deadline_read_full(p[0], acct->groups,
			    (size_t)rep.acct.ngroups * sizeof(gid_t), deadline) == 0;
		}
	}
	if (!got) {
		err = errno;
		/* What a module started in a session of its own
		 * (pam_exec's programs) is not ours to end. */
		kill(pid, SIGKILL);
	}
	close(p[0]);
	while ((w = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
		;
	if (!got) {
		free(acct->groups);
		acct->groups = NULL;
		if (w == pid && WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
			snprintf(reason_r, reason_size, "PAM process killed by signal %d",
			    WTERMSIG(st));
		else if (err == ETIMEDOUT)
			snprintf(reason_r, reason_size, "PAM took longer than %d s", timeout_ms / 1000);
		else
			snprintf(reason_r, reason_size, "no answer from the PAM process");
		return AUTH_SYSERR;
	}
	res = (enum auth_result)rep.res;
	snprintf(reason_r, reason_size, "%s", rep.reason);
	if (res == AUTH_OK) {
		gid_t *groups = acct->groups;

		*acct = rep.acct;
		acct->groups = groups;
	} else
		auth_account_free(acct);
	return res;
}
