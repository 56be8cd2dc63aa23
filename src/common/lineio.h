/* Bounded line reader and buffered writer on the client connection; runs in the pre-auth process before login and as the mailbox owner after. */
#ifndef MP_LINEIO_H
#define MP_LINEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pop3d-limits.h"

/*
 * A transport moves octets; plain fds and TLS both provide one.  read and
 * write return >0, 0 (read: end of stream), or -1 with errno set.  errno
 * EAGAIN means "would block": *want_r is then POLLIN or POLLOUT, the event to
 * poll() the fd for before calling again.  pending says whether the
 * transport holds decoded input that poll() on the fd cannot see.
 */
struct lineio_ops {
	ssize_t	(*read)(void *ctx, void *buf, size_t len, short *want_r);
	ssize_t	(*write)(void *ctx, const void *buf, size_t len, short *want_r);
	bool	(*pending)(void *ctx);
};

enum lineio_status {
	LINEIO_OK = 0,		/* a line is in *line_r */
	LINEIO_TOO_LONG,	/* a line over the limit was skipped up to its end */
	LINEIO_EOF,		/* the client closed the connection */
	LINEIO_TIMEOUT,		/* nothing arrived for the idle timeout */
	LINEIO_ERROR,		/* I/O error; errno set */
};

struct lineio {
	int			 rfd, wfd;
	int			 timeout_ms;
	const struct lineio_ops	*ops;
	void			*ctx;
	bool			 failed;	/* nothing more goes out: a write failed, or
						 * lineio_abort(); the session is over */
	bool			 skipping;	/* discarding the rest of an overlong line */
	size_t			 in_start, in_len;
	size_t			 out_len;
	char			 in[LIMIT_INBUF];
	char			 out[LIMIT_OUTBUF];
};

/* Plain fd transport; ctx is the struct lineio itself. */
extern const struct lineio_ops lineio_plain_ops;

void	lineio_init(struct lineio *, int rfd, int wfd, int timeout_s);
void	lineio_set_transport(struct lineio *, const struct lineio_ops *, void *ctx);

/* Reads one line of at most limit octets including its end (CRLF or LF).
 * The returned line is NUL-terminated, without its end, and valid until the
 * next call.  *len_r excludes the terminator; a NUL inside the line shows as
 * len_r > strlen(line).  Pending output is flushed first unless a complete
 * line is already buffered (PIPELINING: answers go out in batches). */
enum lineio_status lineio_read_line(struct lineio *, size_t limit, char **line_r, size_t *len_r);

/* Drops every buffered input octet (STLS: plaintext after the command must
 * never be read as if it came through TLS). */
void	lineio_discard_input(struct lineio *);

/* Puts in[0..len) into the empty input buffer, as if read (the hand-over of
 * what the pre-auth process had read past the login command). */
void	lineio_preload(struct lineio *, const char *in, size_t len);

/* Octets buffered but not yet consumed; for the STLS injection check. */
size_t	lineio_input_buffered(const struct lineio *);

/* Buffered output.  These return 0, or -1 once the connection is broken
 * (then every later call is a no-op returning -1). */
int	lineio_write(struct lineio *, const void *, size_t);
int	lineio_puts(struct lineio *, const char *);
int	lineio_printf(struct lineio *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	lineio_flush(struct lineio *);

/* Marks the connection broken without a write having failed: for an answer
 * that cannot be finished (a message file that fails mid-RETR), whose end
 * must not be sent as if it were whole.  Buffered output is dropped and
 * every later write is a no-op returning -1, as after a failed write. */
void	lineio_abort(struct lineio *);

/* Direct access to the output buffer for the message encoder: returns a
 * pointer to at least need free octets (flushing first if necessary), or NULL
 * on a broken connection.  lineio_commit() adds n octets written there. */
char	*lineio_reserve(struct lineio *, size_t need);
void	 lineio_commit(struct lineio *, size_t n);
/* Free octets in the output buffer now (what a reserve gets without a flush). */
size_t	 lineio_room(const struct lineio *);

#endif
