/* Logging to syslog (LOG_MAIL) with sanitised fields; used by every process: root, pre-auth and the session. */
#ifndef MP_LOG_H
#define MP_LOG_H

#include <stddef.h>
#include <stdnoreturn.h>

void	log_init(const char *ident);
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));	/* appends strerror(errno) */
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *, ...) __attribute__((format(printf, 1, 2)));	/* exit MP_EXIT_TEMPFAIL */
noreturn void fatalx(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into dst (of dstsize octets, NUL-terminated) replacing control
 * characters, '<', '>' and non-ASCII octets by '?', and cutting at
 * LIMIT_LOG_FIELD octets, so that client-chosen text can go into a key=<value> log field. */
void	log_sanitize(char *dst, size_t dstsize, const char *src, size_t srclen);

/* The same for a path (with a user name or home directory in it from the
 * account database), cut only by dstsize. */
void	log_sanitize_path(char *dst, size_t dstsize, const char *src);

#endif
