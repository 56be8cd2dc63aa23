/* Monotonic deadlines and poll() waits on the connection; used by the line reader, the PROXY header reader and the TLS handshake, before and after login. */
#ifndef MP_DEADLINE_H
#define MP_DEADLINE_H

#include <limits.h>

#define DEADLINE_NONE	LLONG_MAX

/* Milliseconds on the monotonic clock. */
long long deadline_now_ms(void);
/* The deadline timeout_ms from now; a negative timeout means none. */
long long deadline_in_ms(int timeout_ms);
/* Waits until fd is ready for events (or in error or hung up: the next I/O
 * call says which): 0, or -1 with errno ETIMEDOUT once the deadline has
 * passed, or poll()'s own error. */
int	deadline_wait_fd(int fd, short events, long long deadline);

#endif
