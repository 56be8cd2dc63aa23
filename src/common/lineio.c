/* Bounded line reader and buffered writer on the client connection, with poll() timeouts; runs in the pre-auth process before login and as the mailbox owner after (root only writes one configuration-error line with it). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "lineio.h"

static ssize_t
plain_read(void *ctx, void *buf, size_t len, short *want_r)
{
	struct lineio *l = ctx;
	ssize_t n;

	do
		n = read(l->rfd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		errno = EAGAIN;
		*want_r = POLLIN;
	}
	return n;
}

static ssize_t
plain_write(void *ctx, const void *buf, size_t len, short *want_r)
{
	struct lineio *l = ctx;
	ssize_t n;

	do
		n = write(l->wfd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		errno = EAGAIN;
		*want_r = POLLOUT;
	}
	return n;
}

static bool
plain_pending(void *ctx)
{
	(void)ctx;
	return false;
}

const struct lineio_ops lineio_plain_ops = {
	plain_read, plain_write, plain_pending,
};

void
lineio_init(struct lineio *l, int rfd, int wfd, int timeout_s)
{
	l->rfd = rfd;
	l->wfd = wfd;
	l->timeout_ms = timeout_s * 1000;
	l->ops = &lineio_plain_ops;
	l->ctx = l;
	l->failed = false;
	l->skipping = false;
	l->in_start = l->in_len = 0;
	l->out_len = 0;
}

void
lineio_set_transport(struct lineio *l, const struct lineio_ops *ops, void *ctx)
{
	l->ops = ops;
	l->ctx = ctx;
}

static int
flush_out(struct lineio *l)
{
	long long deadline = deadline_in_ms(l->timeout_ms);
	size_t off = 0;
	short want;
	ssize_t n;

	if (l->failed)
		return -1;
	while (off < l->out_len) {
		want = POLLOUT;
		n = l->ops->write(l->ctx, l->out + off, l->out_len - off, &want);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EAGAIN &&
		    deadline_wait_fd(want == POLLIN ? l->rfd : l->wfd, want, deadline) == 0)
			continue;
		l->failed = true;
		l->out_len = 0;
		return -1;
	}
	l->out_len = 0;
	return 0;
}

void
lineio_abort(struct lineio *l)
{
	l->failed = true;
	l->out_len = 0;
}

int
lineio_flush(struct lineio *l)
{
	return flush_out(l);
}

int
lineio_write(struct lineio *l, const void *p, size_t len)
{
	const char *s = p;

	if (l->failed)
		return -1;
	while (len > 0) {
		size_t room = sizeof(l->out) - l->out_len;
		size_t n = len < room ? len : room;

		memcpy(l->out + l->out_len, s, n);
		l->out_len += n;
		s += n;
		len -= n;
		if (l->out_len == sizeof(l->out) && flush_out(l) == -1)
			return -1;
	}
	return 0;
}

int
lineio_puts(struct lineio *l, const char *s)
{
	return lineio_write(l, s, strlen(s));
}

int
lineio_printf(struct lineio *l, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;	/* our own texts only; never reached */
	return lineio_write(l, buf, (size_t)n);
}

char *
lineio_reserve(struct lineio *l, size_t need)
{
	if (l->failed || need > sizeof(l->out))
		return NULL;
	if (sizeof(l->out) - l->out_len < need && flush_out(l) == -1)
		return NULL;
	return l->out + l->out_len;
}

void
lineio_commit(struct lineio *l, size_t n)
{
	l->out_len += n;
}

size_t
lineio_room(const struct lineio *l)
{
	return sizeof(l->out) - l->out_len;
}

void
lineio_discard_input(struct lineio *l)
{
	l->in_start = l->in_len = 0;
	l->skipping = false;
}

void
lineio_preload(struct lineio *l, const char *in, size_t len)
{
	if (len > sizeof(l->in))
		len = sizeof(l->in);
	memcpy(l->in, in, len);
	l->in_start = 0;
	l->in_len = len;
}

size_t
lineio_input_buffered(const struct lineio *l)
{
	return l->in_len;
}

/* Reads more input into the buffer: 1 on data, 0 on EOF, -1 with errno. */
static int
fill(struct lineio *l, long long deadline)
{
	short want;
	ssize_t n;

	if (l->in_start > 0) {
		memmove(l->in, l->in + l->in_start, l->in_len);
		l->in_start = 0;
	}
	for (;;) {
		if (!l->ops->pending(l->ctx)) {
			if (deadline_wait_fd(l->rfd, POLLIN, deadline) == -1)
				return -1;
		}
		want = POLLIN;
		n = l->ops->read(l->ctx, l->in + l->in_len, sizeof(l->in) - l->in_len, &want);
		if (n > 0) {
			l->in_len += (size_t)n;
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno != EAGAIN)
			return -1;
		if (want == POLLOUT && deadline_wait_fd(l->wfd, POLLOUT, deadline) == -1)
			return -1;
	}
}

enum lineio_status
lineio_read_line(struct lineio *l, size_t limit, char **line_r, size_t *len_r)
{
	long long deadline = deadline_in_ms(l->timeout_ms);
	char *start, *nl;
	size_t len;
	int r;

	if (limit > sizeof(l->in))
		limit = sizeof(l->in);
	for (;;) {
		start = l->in + l->in_start;
		nl = l->in_len ? memchr(start, '\n', l->in_len) : NULL;
		if (nl != NULL) {
			len = (size_t)(nl - start) + 1;
			l->in_start += len;
			l->in_len -= len;
			if (l->skipping) {
				l->skipping = false;
				return LINEIO_TOO_LONG;
			}
			if (len > limit)
				return LINEIO_TOO_LONG;
			len--;			/* the LF */
			if (len > 0 && start[len - 1] == '\r')
				len--;
			start[len] = '\0';
			*line_r = start;
			*len_r = len;
			return LINEIO_OK;
		}
		if (l->skipping || l->in_len >= limit) {
			/* No end in sight within the limit: drop what we have
			 * and remember to answer once the line ends. */
			l->skipping = true;
			l->in_start = l->in_len = 0;
		}
		if (flush_out(l) == -1)
			return LINEIO_ERROR;
		r = fill(l, deadline);
		if (r == 0)
			return LINEIO_EOF;
		if (r == -1)
			return errno == ETIMEDOUT ? LINEIO_TIMEOUT : LINEIO_ERROR;
	}
}
