/* Monotonic deadlines, poll() waits and whole reads and writes, shared by every reader and writer so that one rule bounds them all; runs before and after login. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "pop3d-limits.h"

long long
deadline_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long
deadline_now_ms(void)
{
	return deadline_now_us() / 1000;
}

long long
deadline_in_ms(int timeout_ms)
{
	return timeout_ms < 0 ? DEADLINE_NONE : deadline_now_ms() + timeout_ms;
}

int
deadline_wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int r;

	for (;;) {
		if (deadline == DEADLINE_NONE)
			left = LIMIT_POLL_SLICE_MS;
		else if ((left = deadline - deadline_now_ms()) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > LIMIT_POLL_SLICE_MS ? LIMIT_POLL_SLICE_MS : (int)left);
		if (r > 0)
			return 0;
		if (r == -1 && errno != EINTR)
			return -1;
	}
}

int
deadline_read_full(int fd, void *buf, size_t len, long long deadline)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		if (deadline_wait_fd(fd, POLLIN, deadline) == -1)
			return -1;
		n = read(fd, p, len);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fd_read_file(int fd, size_t max, char **buf_r, size_t *len_r)
{
	struct stat st;
	size_t len = 0, size;
	ssize_t n;
	char *buf;

	if (fstat(fd, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size + 1)) == NULL)
		return -1;
	while (len < size) {
		n = read(fd, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			int saved = errno;

			explicit_bzero(buf, len);
			free(buf);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
}

int
fd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
