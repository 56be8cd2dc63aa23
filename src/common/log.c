/* syslog(3) on LOG_MAIL with a small vocabulary; runs in every process: root, pre-auth and the session. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "pop3d-limits.h"

void
log_init(const char *ident)
{
	/* LOG_NDELAY: connect to /dev/log now, before any chroot or drop. */
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	/* The time zone for syslog's time stamps, read once while /etc is
	 * here: every process forked later (pre-auth in its chroot, the
	 * session) inherits it instead of reading /etc/localtime again. */
	tzset();
}

__attribute__((format(printf, 2, 0))) static void
vlog(int pri, const char *fmt, va_list ap, int errnum)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum)
		syslog(pri, "%s: %s", msg, strerror(errnum));
	else
		syslog(pri, "%s", msg);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, 0);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, saved);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap, saved);
	va_end(ap);
	exit(MP_EXIT_TEMPFAIL);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap, 0);
	va_end(ap);
	exit(MP_EXIT_TEMPFAIL);
}

static void
sanitize(char *dst, size_t dstsize, const char *src, size_t srclen, size_t max)
{
	size_t i, n = 0;

	if (dstsize == 0)
		return;
	for (i = 0; i < srclen && n + 1 < dstsize && n < max; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[n++] = (c < 0x20 || c >= 0x7f || c == '<' || c == '>') ?
		    '?' : (char)c;
	}
	dst[n] = '\0';
}

void
log_sanitize(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	sanitize(dst, dstsize, src, srclen, LIMIT_LOG_FIELD);
}

void
log_sanitize_path(char *dst, size_t dstsize, const char *src)
{
	sanitize(dst, dstsize, src, strlen(src), (size_t)-1);
}
