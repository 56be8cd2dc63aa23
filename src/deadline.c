/* Monotonic deadlines and poll() waits on the connection, shared by every reader and writer so that one rule bounds them all; runs before and after login. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

#include "deadline.h"

long long
deadline_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
			left = 60000;
		else if ((left = deadline - deadline_now_ms()) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		/* At most a minute at a time: a clock that jumps cannot
		 * make one poll() outlive the deadline by much. */
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r == -1 && errno != EINTR)
			return -1;
	}
}
