/*
 * Test double for the syslog daemon, loaded with LD_PRELOAD by tests only (never part of
 * maildir-pop3d): openlog/syslog/vsyslog/closelog/setlogmask and glibc's fortified
 * __syslog_chk/__vsyslog_chk append each message as one line
 *
 *     facility=mail IDENT[PID]: info: message
 *
 * to the file named by $MP_TEST_SYSLOG; with the variable unset they do nothing.
 *
 * As with real syslog: "[PID]" appears only with LOG_PID, LOG_PERROR copies the line to
 * stderr, setlogmask() filters, %m is strerror(errno) (glibc's printf does it, errno is
 * restored first), the ident defaults to the program name and the facility to LOG_USER.
 * As rsyslog does, control characters are written as #ooo (octal) and a trailing newline
 * is dropped, so a message is always one line. Each line is one write() on an O_APPEND
 * descriptor so that concurrent processes do not interleave.
 *
 * The path is read once, when the library is loaded, so a process that clears its
 * environment still logs; the file is opened at the first message (or at openlog with
 * LOG_NDELAY) and kept open, like syslog's socket, so it survives a privilege drop.
 *
 * Unlike syslog's socket, the file is subject to RLIMIT_FSIZE: while a log file is set,
 * setrlimit(RLIMIT_FSIZE) (the pre-auth process sets 0) is accepted and recorded but not
 * applied, so that the process's log lines still arrive; getrlimit reports the recorded
 * value.  Every other resource passes through.
 *
 * Build: cc -shared -fPIC -o syslog-shim.so syslog-shim.c
 *
 * The fuzz targets link this file in (no LD_PRELOAD, no file) and define
 * syslog_shim_observe(), which then sees every message as formatted, before control
 * characters are escaped: one syslog interposer for the tests and the fuzzers.
 */
/* Our own syslog/vsyslog must not be turned into calls to __syslog_chk (and back). */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static char log_path[4096];
static int log_fd = -1;
static dev_t log_dev;
static ino_t log_ino;
static const char *log_ident;
static int log_option;
static int log_facility = LOG_USER;
static int log_mask = 0xff;

/* Defined by a program linked with this file (tests/fuzz/fuzz-common.c); NULL in the
 * LD_PRELOAD object. */
void syslog_shim_observe(int pri, const char *msg) __attribute__((weak));

static const char *const prio_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"
};

static const char *
facility_name(int fac)
{
	static const char *const names[] = {
		"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
		"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"
	};
	int n = LOG_FAC(fac);

	if (n >= 0 && n < (int)(sizeof(names) / sizeof(names[0])))
		return names[n];
	return "unknown";
}

__attribute__((constructor)) static void
shim_init(void)
{
	const char *p = getenv("MP_TEST_SYSLOG");

	if (p != NULL && *p != '\0' && strlen(p) < sizeof(log_path))
		strcpy(log_path, p);
}

/* Opens the file unless our descriptor is still open on it: a process that closed its
 * descriptors may have reused the number for a client socket, which must never get a log line. */
static void
shim_open(void)
{
	struct stat st;

	if (log_path[0] == '\0')
		return;
	if (log_fd != -1 && fstat(log_fd, &st) == 0 && st.st_dev == log_dev && st.st_ino == log_ino)
		return;
	log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (log_fd != -1 && fstat(log_fd, &st) == 0) {
		log_dev = st.st_dev;
		log_ino = st.st_ino;
	}
}

void
openlog(const char *ident, int option, int facility)
{
	log_ident = ident;
	log_option = option;
	if (facility != 0 && (facility & ~LOG_FACMASK) == 0)
		log_facility = facility;
	if (option & LOG_NDELAY)
		shim_open();
}

void
closelog(void)
{
	struct stat st;
	int save = errno;

	if (log_fd != -1 && fstat(log_fd, &st) == 0 && st.st_dev == log_dev && st.st_ino == log_ino)
		close(log_fd);
	log_fd = -1;
	log_ident = NULL;	/* as glibc: option and facility stay */
	errno = save;
}

int
setlogmask(int mask)
{
	int old = log_mask;

	if (mask != 0)
		log_mask = mask;
	return old;
}

__attribute__((format(printf, 2, 0))) static void
shim_vlog(int pri, const char *fmt, va_list ap)
{
	char msg[4096], line[8192];
	const char *ident;
	size_t len = 0, head, i, mlen;
	int save = errno, n;

	if ((log_path[0] == '\0' && syslog_shim_observe == NULL) ||
	    (LOG_MASK(LOG_PRI(pri)) & log_mask) == 0) {
		errno = save;
		return;
	}
	if ((pri & LOG_FACMASK) == 0)
		pri |= log_facility;

	errno = save;	/* for %m */
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		snprintf(msg, sizeof(msg), "(syslog-shim: bad format)");
	if (syslog_shim_observe != NULL)
		syslog_shim_observe(pri, msg);
	if (log_path[0] == '\0') {
		errno = save;
		return;
	}
	mlen = strlen(msg);
	while (mlen > 0 && msg[mlen - 1] == '\n')
		mlen--;

	ident = log_ident != NULL ? log_ident : program_invocation_short_name;
	if (log_option & LOG_PID)
		n = snprintf(line, sizeof(line), "facility=%s %s[%ld]: %s: ",
		    facility_name(pri), ident, (long)getpid(), prio_names[LOG_PRI(pri)]);
	else
		n = snprintf(line, sizeof(line), "facility=%s %s: %s: ",
		    facility_name(pri), ident, prio_names[LOG_PRI(pri)]);
	if (n < 0)
		n = 0;
	head = (size_t)strlen("facility= ") + strlen(facility_name(pri));
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	for (i = 0; i < mlen && len + 5 < sizeof(line); i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(line + len, 5, "#%03o", c);
			len += 4;
		} else
			line[len++] = (char)c;
	}
	line[len++] = '\n';

	shim_open();
	if (log_fd != -1)
		(void)!write(log_fd, line, len);
	if (log_option & LOG_PERROR)	/* as glibc: without the facility */
		(void)!write(STDERR_FILENO, line + head, len - head);
	errno = save;
}

void
vsyslog(int pri, const char *fmt, va_list ap)
{
	shim_vlog(pri, fmt, ap);
}

void
syslog(int pri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shim_vlog(pri, fmt, ap);
	va_end(ap);
}

/* glibc's fortified entry points (-D_FORTIFY_SOURCE=2 and libpam use them) */
void __vsyslog_chk(int, int, const char *, va_list) __attribute__((format(printf, 3, 0)));
void __syslog_chk(int, int, const char *, ...) __attribute__((format(printf, 3, 4)));

void
__vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	shim_vlog(pri, fmt, ap);
}

void
__syslog_chk(int pri, int flag, const char *fmt, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, fmt);
	shim_vlog(pri, fmt, ap);
	va_end(ap);
}

static struct rlimit fsize_recorded = { RLIM_INFINITY, RLIM_INFINITY };
static int fsize_set;

int
setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
	int (*real)(__rlimit_resource_t, const struct rlimit *) =
	    (int (*)(__rlimit_resource_t, const struct rlimit *))dlsym(RTLD_NEXT, "setrlimit");

	if (resource == RLIMIT_FSIZE && log_path[0] != '\0') {
		fsize_recorded = *rl;
		fsize_set = 1;
		return 0;
	}
	return real(resource, rl);
}

int
getrlimit(__rlimit_resource_t resource, struct rlimit *rl)
{
	int (*real)(__rlimit_resource_t, struct rlimit *) =
	    (int (*)(__rlimit_resource_t, struct rlimit *))dlsym(RTLD_NEXT, "getrlimit");

	if (resource == RLIMIT_FSIZE && fsize_set) {
		*rl = fsize_recorded;
		return 0;
	}
	return real(resource, rl);
}
