/* Helpers shared by the session fuzz targets: a syslog sink that checks every line, and a session's input and output as a pipe and a memory file; test code only, never part of the daemon. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz-common.h"

void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "\n%s:%d: property violated: %s\n", file, line, what);
	abort();
}

bool
fuzz_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- syslog: tests/lib/syslog-shim.c is linked in (the daemon's log.c
 * calls it instead of flooding the host's log) and hands each message here;
 * every line is checked. ---- */

/* Every line of the current session, however many. */
static char (*log_lines)[160];
static size_t log_n, log_cap;

void
fuzz_log_reset(void)
{
	log_n = 0;
}

unsigned
fuzz_log_count(const char *prefix)
{
	unsigned c = 0;

	for (size_t i = 0; i < log_n; i++)
		if (fuzz_has_prefix(log_lines[i], prefix))
			c++;
	return c;
}

void
syslog_shim_observe(int pri, const char *msg)
{
	(void)pri;
	/* One line per event, no control characters (client text is sanitised
	 * before it is logged). */
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p < 0x7f, "log line with a control or non-ASCII octet");
	if (log_n == log_cap) {
		log_cap = log_cap ? log_cap * 2 : 256;
		log_lines = realloc(log_lines, log_cap * sizeof(*log_lines));
		if (log_lines == NULL)
			abort();
	}
	snprintf(log_lines[log_n++], sizeof(log_lines[0]), "%s", msg);
}

/* ---- the session's two ends ---- */

int
fuzz_io_open(struct fuzz_io *io, const uint8_t *in, size_t len)
{
	int p[2];
	size_t off = 0;
	ssize_t n;

	memset(io, 0, sizeof(*io));
	io->rfd = io->wfd = -1;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	/* The whole input must fit in the pipe: nobody else writes it. */
	if (len > 65536 && fcntl(p[1], F_SETPIPE_SZ, (int)(len < (1u << 20) ? len : (1u << 20))) == -1)
		len = 65536;
	if (len > (1u << 20))
		len = 1u << 20;
	while (off < len) {
		n = write(p[1], in + off, len - off);
		if (n <= 0) {
			close(p[0]);
			close(p[1]);
			return -1;
		}
		off += (size_t)n;
	}
	close(p[1]);
	io->rfd = p[0];
	io->wfd = memfd_create("fuzz-session-out", MFD_CLOEXEC);
	if (io->wfd == -1) {
		close(io->rfd);
		return -1;
	}
	return 0;
}

int
fuzz_io_collect(struct fuzz_io *io)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;

	close(io->rfd);
	io->rfd = -1;
	if (fstat(io->wfd, &st) == -1)
		abort();
	io->out = malloc((size_t)st.st_size + 1);
	if (io->out == NULL)
		abort();
	while (got < (size_t)st.st_size) {
		n = pread(io->wfd, io->out + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0)
			abort();
		got += (size_t)n;
	}
	io->out[got] = '\0';
	io->out_len = got;
	close(io->wfd);
	io->wfd = -1;
	return 0;
}

void
fuzz_dump(const struct fuzz_io *io)
{
	static int verbose = -1;

	if (verbose == -1)
		verbose = getenv("MP_FUZZ_VERBOSE") != NULL;
	if (verbose) {
		fprintf(stderr, "---- session output (%zu octets)\n", io->out_len);
		fwrite(io->out, 1, io->out_len, stderr);
		fprintf(stderr, "---- end\n");
	}
}

void
fuzz_io_free(struct fuzz_io *io)
{
	if (io->rfd != -1)
		close(io->rfd);
	if (io->wfd != -1)
		close(io->wfd);
	free(io->out);
	io->out = NULL;
}

/* ---- reading the answers back ---- */

size_t
fuzz_parse_responses(const char *out, size_t len, bool (*multi_pred)(const char *),
    struct fuzz_resp **resp_r)
{
	struct fuzz_resp *v = NULL;
	size_t n = 0, cap = 0, i = 0;

	/* Every LF on the wire is part of a CRLF. */
	for (size_t k = 0; k < len; k++)
		if (out[k] == '\n')
			FUZZ_CHECK(k > 0 && out[k - 1] == '\r', "bare LF in the output");
	FUZZ_CHECK(len == 0 || (len >= 2 && out[len - 2] == '\r' && out[len - 1] == '\n'),
	    "output does not end with CRLF");
	while (i < len) {
		const char *eol = memmem(out + i, len - i, "\r\n", 2);
		struct fuzz_resp *r;

		FUZZ_CHECK(eol != NULL, "unterminated status line");
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				abort();
		}
		r = &v[n++];
		memset(r, 0, sizeof(*r));
		r->status_len = (size_t)(eol - (out + i));
		r->status = strndup(out + i, r->status_len);
		if (r->status == NULL)
			abort();
		/* Status lines are our own fixed texts: printable ASCII only. */
		for (size_t k = 0; k < r->status_len; k++)
			FUZZ_CHECK((unsigned char)out[i + k] >= 0x20 && (unsigned char)out[i + k] < 0x7f,
			    "status line with a control or non-ASCII octet");
		FUZZ_CHECK(fuzz_has_prefix(r->status, "+OK") || fuzz_has_prefix(r->status, "-ERR") ||
		    fuzz_has_prefix(r->status, "+ "), "status line is not +OK, -ERR or a continuation");
		FUZZ_CHECK(r->status_len + 2 <= 512, "status line over 512 octets (RFC 2449)");
		i = (size_t)(eol - out) + 2;
		if (!multi_pred(r->status))
			continue;
		r->multi = true;
		r->body = malloc(len - i + 1);
		if (r->body == NULL)
			abort();
		for (;;) {
			const char *lstart = out + i;

			eol = memmem(lstart, len - i, "\r\n", 2);
			FUZZ_CHECK(eol != NULL, "multi-line answer without its final dot");
			i = (size_t)(eol - out) + 2;
			if (eol - lstart == 1 && lstart[0] == '.')
				break;
			if (lstart < eol && lstart[0] == '.') {
				/* A line that starts with a dot was stuffed. */
				FUZZ_CHECK(eol - lstart >= 2 && lstart[1] == '.', "unstuffed dot line in a body");
				lstart++;
			}
			memcpy(r->body + r->body_len, lstart, (size_t)(eol - lstart) + 2);
			r->body_len += (size_t)(eol - lstart) + 2;
		}
		/* For sscanf() in the checks: it reads to a NUL, whatever body_len says. */
		r->body[r->body_len] = '\0';
	}
	*resp_r = v;
	return n;
}

void
fuzz_free_responses(struct fuzz_resp *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].status);
		free(v[i].body);
	}
	free(v);
}
