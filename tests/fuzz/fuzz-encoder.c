/* libFuzzer target for the CRLF + dot-stuffing encoder behind sizes, RETR and TOP: round trip, exact size, TOP as a prefix of RETR, independent of how the file is chunked; runs unprivileged. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz-common.h"
#include "maildir.h"
#include "proto.h"

/*
 * Input: 4 octets seed the chunk sizes, 1 octet picks TOP's line count
 * (255 means "more than any message has"), the rest is the message file.
 */

struct buf {
	char	*p;
	size_t	 len;
};

static void
append(struct buf *b, const char *p, size_t n)
{
	char *np = realloc(b->p, b->len + n + 1);

	if (np == NULL)
		abort();
	b->p = np;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static uint32_t
next_rand(uint32_t *st)
{
	/* xorshift32: chunk sizes that depend on the input only */
	uint32_t x = *st ? *st : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*st = x;
	return x;
}

/* Runs the encoder over msg in pseudo-random chunks, each output area
 * exactly ENC_OUT_MAX(chunk) octets of its own allocation so that ASan
 * sees any overrun. */
static uint64_t
encode(struct enc *e, const uint8_t *msg, size_t len, uint32_t seed, struct buf *out)
{
	size_t off = 0;
	char *o;

	while (off < len) {
		uint32_t r = next_rand(&seed);
		size_t n;

		/* mostly small chunks, sometimes large, sometimes empty */
		switch (r & 3) {
		case 0: n = 0; break;
		case 1: n = 1 + (r >> 8) % 3; break;
		case 2: n = 1 + (r >> 8) % 64; break;
		default: n = 1 + (r >> 8) % 4096; break;
		}
		if (n > len - off)
			n = len - off;
		o = malloc(ENC_OUT_MAX(n));
		if (o == NULL)
			abort();
		size_t k = enc_feed(e, (const char *)msg + off, n, o);

		FUZZ_CHECK(k <= ENC_OUT_MAX(n), "encoder wrote past ENC_OUT_MAX");
		append(out, o, k);
		free(o);
		off += n;
		if (e->done)
			break;
	}
	o = malloc(2);
	if (o == NULL)
		abort();
	append(out, o, enc_finish(e, o));
	free(o);
	return e->size;
}

/* What RETR must deliver once the client undoes the dot-stuffing: every
 * LF that is not after a CR becomes CRLF, and a last line without an end
 * gets one (a final bare CR gets just the LF). */
static void
model(const uint8_t *m, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
			append(out, "\r", 1);
		append(out, (const char *)m + i, 1);
	}
	if (len > 0 && m[len - 1] != '\n')
		append(out, m[len - 1] == '\r' ? "\n" : "\r\n", m[len - 1] == '\r' ? 1 : 2);
}

/* Undoes dot-stuffing of a wire body (without the final "."). */
static void
unstuff(const struct buf *w, struct buf *out)
{
	size_t i = 0;

	while (i < w->len) {
		const char *eol = memmem(w->p + i, w->len - i, "\r\n", 2);
		size_t n = eol ? (size_t)(eol - (w->p + i)) + 2 : w->len - i;

		if (w->p[i] == '.') {
			FUZZ_CHECK(n >= 2 && w->p[i + 1] == '.', "a line starting with a dot was not stuffed");
			FUZZ_CHECK(!(n == 3 && eol != NULL), "a body line is a lone dot");
			append(out, w->p + i + 1, n - 1);
		} else {
			append(out, w->p + i, n);
		}
		i += n;
	}
}

/* TOP's model: the wire lines of RETR up to the first empty one, then
 * lines more, or all of them. */
static size_t
top_len(const struct buf *w, uint64_t lines)
{
	size_t i = 0;
	bool body = false;

	while (i < w->len) {
		const char *eol = memmem(w->p + i, w->len - i, "\r\n", 2);

		FUZZ_CHECK(eol != NULL, "RETR output does not end in CRLF");
		bool empty = eol == w->p + i;

		i = (size_t)(eol - w->p) + 2;
		if (body) {
			if (--lines == 0)
				return i;
		} else if (empty) {
			body = true;
			if (lines == 0)
				return i;
		}
	}
	return w->len;
}

static int memfd = -1;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf retr = { 0 }, sized = { 0 }, top = { 0 }, want = { 0 }, got = { 0 };
	struct enc e;
	uint32_t seed;
	uint64_t lines, retr_size, plain_size, fd_size;
	const uint8_t *msg;
	size_t len;
	int fd;

	if (size < 5)
		return 0;
	memcpy(&seed, data, 4);
	lines = data[4] == 255 ? UINT64_MAX : data[4];
	msg = data + 5;
	len = size - 5;

	model(msg, len, &want);

	/* RETR: stuffed; the client's unstuffing gives the model back. */
	enc_init(&e, true);
	retr_size = encode(&e, msg, len, seed, &retr);
	unstuff(&retr, &got);
	FUZZ_CHECK(got.len == want.len && (want.len == 0 || memcmp(got.p, want.p, want.len) == 0),
	    "RETR does not round-trip to the file with CRLF line ends");
	FUZZ_CHECK(retr_size == want.len, "RETR's counted size is not the unstuffed length");
	for (size_t i = 0; i < retr.len; i++)
		if (retr.p[i] == '\n')
			FUZZ_CHECK(i > 0 && retr.p[i - 1] == '\r', "bare LF on the wire");

	/* Sizing: no stuffing, other chunks, the same octets and size. */
	enc_init(&e, false);
	plain_size = encode(&e, msg, len, seed * 2654435761u + 1, &sized);
	FUZZ_CHECK(plain_size == want.len && sized.len == want.len &&
	    (want.len == 0 || memcmp(sized.p, want.p, want.len) == 0),
	    "sizing run differs from the model");

	/* The size LIST reports, read from a file as the server does (one
	 * memory file for the process, emptied for each input). */
	if (memfd == -1)
		memfd = memfd_create("fuzz-encoder-msg", MFD_CLOEXEC);
	fd = memfd;
	if (fd != -1 && ftruncate(fd, 0) == 0 && pwrite(fd, msg, len, 0) == (ssize_t)len &&
	    lseek(fd, 0, SEEK_SET) == 0) {
		FUZZ_CHECK(maildir_size_fd(fd, &fd_size) == 0, "maildir_size_fd failed on a memory file");
		FUZZ_CHECK(fd_size == want.len, "maildir_size_fd differs from RETR's size");
	}

	/* TOP: exactly the header, the blank line and n body lines of what
	 * RETR sends, and so a prefix of it. */
	enc_init_top(&e, lines);
	encode(&e, msg, len, seed ^ 0x5bd1e995u, &top);
	FUZZ_CHECK(top.len <= retr.len && (top.len == 0 || memcmp(top.p, retr.p, top.len) == 0),
	    "TOP output is not a prefix of RETR output");
	FUZZ_CHECK(top.len == top_len(&retr, lines), "TOP sends a different number of lines");

	free(retr.p);
	free(sized.p);
	free(top.p);
	free(want.p);
	free(got.p);
	return 0;
}
