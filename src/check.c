/* maildir-pop3d --check [USER]: prints the effective configuration and checks it, and with USER runs the real login path (PAM child, account, privilege drop in a child, the Maildir) step by step; runs as root (or as the invoking user), never serves a client. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "auth_pam.h"
#include "check.h"
#include "deadline.h"
#include "log.h"
#include "maildir.h"
#include "pop3d-limits.h"
#include "privdrop.h"
#include "session.h"
#ifdef HAVE_OPENSSL
#include "tls.h"
#endif

static int failures;

__attribute__((format(printf, 2, 3)))
static void
result(const char *tag, const char *fmt, ...)
{
	va_list ap;

	if (strcmp(tag, "FAIL") == 0)
		failures++;
	printf("  %-5s ", tag);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static const char *
yesno(bool b)
{
	return b ? "yes" : "no";
}

static void
print_config(const struct options *o)
{
	static const char *const tls_names[] = { "off", "starttls", "implicit" };
	static const char *const uidl_names[] = { "auto", "dovecot", "courier", "none" };

	printf("maildir-pop3d %s: effective configuration\n", PACKAGE_VERSION);
	printf("  maildir          %s\n", o->maildir);
	printf("  pam-service      %s\n", o->pam_service);
	printf("  timeout          %d\n", o->timeout);
	printf("  tls              %s\n", tls_names[o->tls]);
	printf("  tls-cert         %s\n", o->tls_cert ? o->tls_cert : "-");
	printf("  tls-key          %s\n", o->tls_key ? o->tls_key : "-");
	printf("  plaintext        %s\n", o->plaintext == PLAINTEXT_ALWAYS ? "always" : "secure");
	printf("  lock             %s\n", yesno(o->lock));
	printf("  flag-updates     %s\n", yesno(o->flag_updates));
	printf("  proxy-from       %s\n", o->proxy_from ? o->proxy_from : "-");
	printf("  uidl-source      %s\n", uidl_names[o->uidl_source]);
#ifdef HAVE_OPENSSL
	printf("  tls module       %s\n", tls_module_path());
#else
	printf("  tls module       (built without OpenSSL)\n");
#endif
	printf("checks\n");
}

/* Where the PAM library reads service files: /etc/pam.d, or pam_wrapper's directory when
 * it stands in for the PAM library (the test suites). */
static void
check_pam_file(const char *service)
{
	const char *dir = "/etc/pam.d";
	const char *w = getenv("PAM_WRAPPER"), *wdir = getenv("PAM_WRAPPER_SERVICE_DIR");
	char path[LIMIT_PATH];
	struct stat st;

	if (w != NULL && strcmp(w, "1") == 0 && wdir != NULL)
		dir = wdir;
	snprintf(path, sizeof(path), "%s/%s", dir, service);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
		result("ok", "PAM service file %s", path);
	else if (strcmp(dir, "/etc/pam.d") == 0 && stat("/usr/lib/pam.d/maildir-pop3d", &st) == 0 &&
	    strcmp(service, "maildir-pop3d") == 0)
		result("ok", "PAM service file /usr/lib/pam.d/%s", service);
	else
		result("FAIL", "PAM service file %s: %s (PAM then uses %s/other, which usually denies)",
		    path, strerror(errno), dir);
}

#ifdef HAVE_OPENSSL
static void
check_tls(const struct options *o)
{
	char err[512], subject[256], when[64];
	long long not_after;
	time_t t, now = time(NULL);
	struct tm tm;
	long long days;

	if (o->tls == TLS_OFF) {
		result("ok", "TLS off: no STLS, no port 995 (--tls-cert enables it)");
		return;
	}
	if (tls_init(o->tls_cert, o->tls_key, err, sizeof(err)) == -1) {
		result("FAIL", "TLS: %s", err);
		return;
	}
	result("ok", "TLS module %s loads", tls_module_path());
	result("ok", "certificate %s and key %s: readable, the key matches", o->tls_cert, o->tls_key);
	if (tls_cert_info(o->tls_cert, subject, sizeof(subject), &not_after, err, sizeof(err)) == -1) {
		result("FAIL", "certificate: %s", err);
		return;
	}
	t = (time_t)not_after;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	days = (not_after - (long long)now) / 86400;
	if (not_after <= (long long)now)
		result("FAIL", "certificate subject %s: expired on %s", subject, when);
	else if (days < LIMIT_CERT_WARN_DAYS)
		result("warn", "certificate subject %s: expires on %s, in %lld days", subject, when, days);
	else
		result("ok", "certificate subject %s: expires on %s, in %lld days", subject, when, days);
}
#endif

/* The pre-auth process's user and chroot, where this build has one. */
static void
check_preauth(void)
{
#ifdef MP_PREAUTH_USER
	const char *user = getenv("MAILDIR_POP3D_PREAUTH_USER");
	struct passwd *pw;

	if (user == NULL || *user == '\0')
		user = MP_PREAUTH_USER;
	errno = 0;
	if ((pw = getpwnam(user)) == NULL)
		result("FAIL", "pre-auth user %s: no such user (Debian: adduser --system --group "
		    "--no-create-home --home /nonexistent %s)", user, user);
	else if (pw->pw_uid == 0 || pw->pw_gid == 0)
		result("FAIL", "pre-auth user %s: uid or gid 0", user);
	else
		result("ok", "pre-auth user %s (uid %u, gid %u)", user, (unsigned)pw->pw_uid,
		    (unsigned)pw->pw_gid);
#else
	result("ok", "this build runs no pre-auth process: no unprivileged user needed");
#endif
#ifdef MP_PREAUTH_CHROOT
	{
		const char *dir = getenv("MAILDIR_POP3D_PREAUTH_CHROOT");
		struct stat st;
		DIR *d;
		struct dirent *e;
		bool empty = true;

		if (dir == NULL || *dir == '\0')
			dir = MP_PREAUTH_CHROOT;
		if (stat(dir, &st) == -1) {
			result("FAIL", "pre-auth chroot %s: %s", dir, strerror(errno));
			return;
		}
		if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0) {
			result("FAIL", "pre-auth chroot %s: must be a directory owned by root, "
			    "writable by nobody else", dir);
			return;
		}
		if ((d = opendir(dir)) != NULL) {
			while ((e = readdir(d)) != NULL)
				if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
					empty = false;
			closedir(d);
		}
		result(empty ? "ok" : "warn", "pre-auth chroot %s: root-owned%s", dir,
		    empty ? ", empty" : ", not empty");
	}
#endif
}

/* One line of password: without echo on a terminal, as is from a pipe. */
static int
read_password(char *buf, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(0) == 1;
	size_t n;

	/* Echo goes off before the prompt, and without a flush: what is typed
	 * (or written by a script) as soon as the prompt shows is the
	 * password, never discarded. */
	if (tty) {
		if (tcgetattr(0, &old) == -1)
			return -1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSANOW, &quiet);
		fputs("Password: ", stderr);
		fflush(stderr);
	}
	if (fgets(buf, (int)size, stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		tcsetattr(0, TCSANOW, &old);
		fputc('\n', stderr);
	}
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n + 1 >= size)
		return -1;	/* longer than any password PAM is given */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

static double
ms_since(long long t0)
{
	return (double)(deadline_now_us() - t0) / 1000.0;
}

/* In a child: the privilege drop and the Maildir, as the session does them. */
static int
session_part(const struct options *o, const struct auth_account *a)
{
	struct maildir md;
	struct maildir_config mcfg = {
		.lock = o->lock,
		.uidl_source = o->uidl_source,
		.uidl_format = o->uidl_format,
	};
	char path[LIMIT_PATH];
	long long t0 = deadline_now_us();
	int e;

	switch (privdrop_to(a)) {
	case PRIVDROP_OK:
		break;
	case PRIVDROP_ROOT_REFUSED:
		result("FAIL", "privilege drop: uid 0 is never served");
		return 1;
	case PRIVDROP_NOT_ROOT:
		result("FAIL", "privilege drop: not running as root, and %s is another user", a->name);
		return 1;
	}
	result("ok", "privilege drop to uid %u gid %u with %d groups; root cannot come back",
	    (unsigned)getuid(), (unsigned)getgid(), a->ngroups);
	if (session_expand_maildir(o->maildir, a->name, a->home, path, sizeof(path)) == -1) {
		result("FAIL", "Maildir %s: does not expand (too long?)", o->maildir);
		return 1;
	}
	memset(&md, 0, sizeof(md));
	switch (maildir_open(&md, path, &mcfg)) {
	case MAILDIR_OK:
		break;
	case MAILDIR_IN_USE:
		result("FAIL", "Maildir %s: in use by another session (--lock)", path);
		maildir_close(&md);
		return 1;
	case MAILDIR_FAIL:
		e = errno;
		result("FAIL", "Maildir %s: cannot be opened as uid %u: %s", path, (unsigned)getuid(),
		    strerror(e));
		maildir_close(&md);
		return 1;
	}
	if (md.dirfd == -1)
		result("warn", "Maildir %s: does not exist: an empty maildrop (not created)", path);
	else
		result("ok", "Maildir %s: %" PRIu32 " messages, %" PRIu64 " octets, scanned in %.1f ms",
		    path, md.count, md.total, ms_since(t0));
	result("ok", "sizes: %" PRIu32 " from the size cache, %" PRIu32 " from ,W= in names, %"
	    PRIu32 " by reading files (%" PRIu32 " stat calls)", md.sized_by_cache, md.sized_by_name,
	    md.sized_by_reading, md.stats);
	result("ok", "UIDLs: %" PRIu32 " derived from names, %" PRIu32 " kept from earlier sessions, %"
	    PRIu32 " from dovecot-uidlist, %" PRIu32 " from courierpop3dsizelist",
	    md.uidl_from[UIDL_OWN], md.uidl_from[UIDL_KEPT], md.uidl_from[UIDL_DOVECOT],
	    md.uidl_from[UIDL_COURIER]);
	maildir_close(&md);
	return 0;
}

static void
check_login(const struct options *o, const char *user)
{
	char password[LIMIT_PASSWORD + 2], reason[128], clean[128], uname[80];
	struct auth_account acct;
	enum auth_result res;
	long long t0;
	pid_t pid;
	int st, i;

	printf("login as %s (PAM service %s)\n", user, o->pam_service);
	fflush(stdout);
	if (read_password(password, sizeof(password)) == -1 || password[0] == '\0') {
		result("FAIL", "password: empty or longer than %d octets: refused before PAM",
		    LIMIT_PASSWORD);
		explicit_bzero(password, sizeof(password));
		return;
	}
	if (strlen(user) > LIMIT_USER_NAME) {
		result("FAIL", "user name longer than %d octets", LIMIT_USER_NAME);
		explicit_bzero(password, sizeof(password));
		return;
	}
	memset(&acct, 0, sizeof(acct));
	t0 = deadline_now_us();
	res = auth_check(o->pam_service, user, password, "local", o->timeout * 1000, &acct,
	    reason, sizeof(reason));
	explicit_bzero(password, sizeof(password));
	log_sanitize(clean, sizeof(clean), reason, strlen(reason));
	log_sanitize(uname, sizeof(uname), user, strlen(user));
	/* The reasons are the log's (auth failed: ... reason=<...>): nothing more.  No
	 * timing either: a failure's time tells a known name (a hash computed) from an
	 * unknown one, which the log does not. */
	switch (res) {
	case AUTH_OK:
		result("ok", "PAM: pam_authenticate, pam_acct_mgmt, pam_setcred in %.1f ms",
		    ms_since(t0));
		break;
	case AUTH_FAILED:
		result("FAIL", "PAM: auth failed: user=<%s> reason=<%s>", uname, clean);
		auth_account_free(&acct);
		return;
	case AUTH_SYSERR:
		result("FAIL", "PAM: auth error: user=<%s> reason=<%s>", uname, clean);
		auth_account_free(&acct);
		return;
	}
	log_sanitize(uname, sizeof(uname), acct.name, strlen(acct.name));
	if (!acct.found) {
		result("FAIL", "account: auth failed: user=<%s> reason=<no passwd entry>", uname);
		auth_account_free(&acct);
		return;
	}
	if (acct.uid == 0) {
		result("FAIL", "account: auth failed: user=<%s> reason=<uid 0 refused>", uname);
		auth_account_free(&acct);
		return;
	}
	if (acct.home_too_long) {
		result("FAIL", "account %s: home directory path too long", uname);
		auth_account_free(&acct);
		return;
	}
	printf("  ok    account %s: uid %u gid %u home %s groups", uname, (unsigned)acct.uid,
	    (unsigned)acct.gid, acct.home);
	for (i = 0; i < acct.ngroups; i++)
		printf("%c%u", i ? ',' : ' ', (unsigned)acct.groups[i]);
	printf("\n");
	fflush(stdout);
	/* The drop is for good: done in a child, which reports on stdout. */
	if ((pid = fork()) == -1) {
		result("FAIL", "fork: %s", strerror(errno));
		auth_account_free(&acct);
		return;
	}
	if (pid == 0) {
		int rc = session_part(o, &acct);

		fflush(stdout);
		_exit(rc);
	}
	auth_account_free(&acct);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (!WIFEXITED(st))
			result("FAIL", "the session part died (signal %d)", WTERMSIG(st));
		else
			failures++;
	}
}

int
check_run(const struct options *o, const char *user)
{
	print_config(o);
	check_pam_file(o->pam_service);
#ifdef HAVE_OPENSSL
	check_tls(o);
#else
	result("ok", "TLS: not built in");
#endif
	check_preauth();
	if (user != NULL)
		check_login(o, user);
	if (failures > 0) {
		printf("result: %d check%s failed%s\n", failures, failures == 1 ? "" : "s",
		    user ? ": a session would not work" : "");
		return MP_EXIT_CHECK_FAILED;
	}
	printf("result: %s\n", user ? "a session for this user would work" : "configuration ok");
	return MP_EXIT_OK;
}
