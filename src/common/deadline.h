/* Monotonic deadlines, poll() waits and whole reads and writes on a file descriptor; used by the line reader, the PROXY header reader, the TLS handshake, the PAM child's pipe and the size cache, before and after login. */
#ifndef MP_DEADLINE_H
#define MP_DEADLINE_H

#include <limits.h>
#include <stddef.h>

#define DEADLINE_NONE	LLONG_MAX

/* Microseconds and milliseconds on the monotonic clock: the one clock of
 * every deadline and delay. */
long long deadline_now_us(void);
long long deadline_now_ms(void);
/* The deadline timeout_ms from now; a negative timeout means none. */
long long deadline_in_ms(int timeout_ms);
/* Waits until fd is ready for events (or in error or hung up: the next I/O
 * call says which): 0, or -1 with errno ETIMEDOUT once the deadline has
 * passed, or poll()'s own error. */
int	deadline_wait_fd(int fd, short events, long long deadline);
/* Reads exactly len octets, waiting at most until the deadline: 0, or -1
 * with errno (ETIMEDOUT, EPIPE for an early end of file, read()'s own). */
int	deadline_read_full(int fd, void *buf, size_t len, long long deadline);
/* Writes all len octets to a blocking fd: 0, or -1 with errno (EIO when
 * write() makes no progress). */
int	fd_write_all(int fd, const void *buf, size_t len);
/* Reads the whole of the regular file open on fd, of at most max octets,
 * into a malloc'd buffer with a NUL after its *len_r octets (a file that
 * shrinks meanwhile gives what it holds).  0, or -1 with errno: EINVAL (not
 * a regular file), EFBIG (over max), ENOMEM, or read()'s own, after which
 * what was read is wiped (a key file).  Does not close fd. */
int	fd_read_file(int fd, size_t max, char **buf_r, size_t *len_r);

#endif
