/* Helpers shared by the session fuzz targets: a syslog sink that checks every line, and a session's input and output as a pipe and a memory file; test code only, never part of the daemon. */
#ifndef MP_FUZZ_COMMON_H
#define MP_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message on stderr: a property of the daemon does not hold. */
#define FUZZ_CHECK(cond, what)	do { if (!(cond)) fuzz_fail(__FILE__, __LINE__, what); } while (0)
__attribute__((noreturn)) void fuzz_fail(const char *file, int line, const char *what);

/* Log lines seen since the last fuzz_log_reset(), and how many of them
 * start with prefix. */
void	fuzz_log_reset(void);
unsigned fuzz_log_count(const char *prefix);
/* Called by tests/lib/syslog-shim.c (linked in) with each formatted message. */
void	syslog_shim_observe(int pri, const char *msg);

/* The client side of one session: rfd reads the input (a pipe, written in
 * full and closed), wfd is a memory file that takes any amount of output.
 * 0, or -1 on a system error (the harness then skips the input). */
struct fuzz_io {
	int	rfd, wfd;
	char	*out;		/* after fuzz_io_collect(): the output, NUL-terminated */
	size_t	 out_len;
};
int	fuzz_io_open(struct fuzz_io *, const uint8_t *in, size_t len);
/* Reads what the session wrote; closes both descriptors. */
int	fuzz_io_collect(struct fuzz_io *);
void	fuzz_io_free(struct fuzz_io *);
/* With MP_FUZZ_VERBOSE set, writes the session's output to stderr: run a
 * target on one input to see its transcript. */
void	fuzz_dump(const struct fuzz_io *);

/* Status lines ("+OK", "-ERR", "+ " continuations) and multi-line bodies of
 * a session's output, in order.  Each line ends in CRLF (checked); body
 * lines are unstuffed; a body ends at "." (checked). */
struct fuzz_resp {
	char		*status;	/* without CRLF, NUL-terminated copy */
	size_t		 status_len;
	bool		 multi;
	char		*body;		/* unstuffed, CRLF line ends, NUL after; NULL unless multi */
	size_t		 body_len;
};
/* multi_pred says whether a status line opens a multi-line answer. */
size_t	fuzz_parse_responses(const char *out, size_t len, bool (*multi_pred)(const char *status),
	    struct fuzz_resp **resp_r);
void	fuzz_free_responses(struct fuzz_resp *, size_t n);

bool	fuzz_has_prefix(const char *s, const char *prefix);

#endif
