/* Pure protocol helpers: number parsing, word splitting, the message encoder; no I/O, used before and after login. */
#include "config.h"

#include <string.h>

#include "proto.h"

size_t
proto_scan_u64(const char *s, size_t len, uint64_t max, uint64_t *val_r)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		/* v only grows, so one check against max bounds it. */
		if (d > max || v > (max - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (i == 0)
		return 0;
	*val_r = v;
	return i;
}

int
proto_parse_u64(const char *s, uint64_t max, uint64_t *val_r)
{
	uint64_t v;
	size_t len;

	if (s == NULL)
		return -1;
	len = strlen(s);
	if (len == 0 || proto_scan_u64(s, len, max, &v) != len)
		return -1;
	*val_r = v;
	return 0;
}

int
proto_split(char *line, char *argv[PROTO_MAX_ARGS])
{
	int argc = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ')
			*p++ = '\0';
		if (*p == '\0')
			return argc;
		if (argc == PROTO_MAX_ARGS)
			return PROTO_MAX_ARGS + 1;
		argv[argc++] = p;
		while (*p != '\0' && *p != ' ')
			p++;
	}
}

void
enc_init(struct enc *e, bool stuff)
{
	memset(e, 0, sizeof(*e));
	e->stuff = stuff;
	e->bol = true;
}

void
enc_init_top(struct enc *e, uint64_t lines)
{
	enc_init(e, true);
	e->top = true;
	e->top_lines = lines;
}

size_t
enc_feed(struct enc *e, const char *in, size_t len, char *out)
{
	const char *p = in, *end = in + len, *nl, *seg_end;
	char *o = out;
	size_t stuffed = 0, n;

	while (p < end && !e->done) {
		if (e->bol && *p == '.' && e->stuff) {
			*o++ = '.';
			stuffed++;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		seg_end = nl ? nl : end;
		n = (size_t)(seg_end - p);
		if (n > 0) {
			memcpy(o, p, n);
			o += n;
			e->cr = p[n - 1] == '\r';
			e->linelen += n;
			e->bol = false;
			p = seg_end;
		}
		if (nl == NULL)
			break;
		/* End of a line: make it CRLF. */
		bool empty = e->linelen == (e->cr ? 1u : 0u);

		if (!e->cr)
			*o++ = '\r';
		*o++ = '\n';
		p++;
		e->bol = true;
		e->cr = false;
		e->linelen = 0;
		if (e->top) {
			if (e->in_body) {
				if (--e->top_lines == 0)
					e->done = true;
			} else if (empty) {
				e->in_body = true;
				if (e->top_lines == 0)
					e->done = true;
			}
		}
	}
	e->size += (uint64_t)(o - out) - stuffed;
	return (size_t)(o - out);
}

size_t
enc_finish(struct enc *e, char *out)
{
	size_t n = 0;

	if (!e->done && !e->bol) {
		/* A final bare CR already stands for half a line end. */
		if (!e->cr)
			out[n++] = '\r';
		out[n++] = '\n';
		e->bol = true;
		e->cr = false;
	}
	e->size += n;
	return n;
}
