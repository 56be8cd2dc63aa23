/* Unit tests for the pure protocol helpers: number parsing, splitting, the encoder. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "tap.h"

/* Encodes in (in pieces of chunk octets) and returns a malloc'd result. */
static char *
encode(const char *in, size_t len, size_t chunk, bool stuff, long top, uint64_t *size_r, size_t *outlen_r)
{
	char *out = malloc(ENC_OUT_MAX(len) + 4);
	struct enc e;
	size_t n = 0, off;

	if (top >= 0)
		enc_init_top(&e, (uint64_t)top);
	else
		enc_init(&e, stuff);
	for (off = 0; off < len; off += chunk) {
		size_t k = len - off < chunk ? len - off : chunk;

		n += enc_feed(&e, in + off, k, out + n);
	}
	n += enc_finish(&e, out + n);
	out[n] = '\0';
	*size_r = e.size;
	*outlen_r = n;
	return out;
}

static void
check_enc(const char *name, const char *in, const char *want_sent, uint64_t want_size)
{
	size_t chunks[] = { 1, 2, 3, 7, 4096 };

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		uint64_t size, size2;
		size_t outlen, outlen2;
		char *sent = encode(in, strlen(in), chunks[c], true, -1, &size, &outlen);
		char *plain = encode(in, strlen(in), chunks[c], false, -1, &size2, &outlen2);

		is_str(sent, want_sent, "%s: bytes sent (chunk %zu)", name, chunks[c]);
		is_int(size, want_size, "%s: size counted while sending (chunk %zu)", name, chunks[c]);
		is_int(size2, want_size, "%s: size counted without stuffing (chunk %zu)", name, chunks[c]);
		is_int(outlen2, want_size, "%s: unstuffed output is the size (chunk %zu)", name, chunks[c]);
		free(sent);
		free(plain);
	}
}

static void
check_top(const char *name, const char *in, long lines, const char *want)
{
	uint64_t size;
	size_t outlen;

	for (size_t chunk = 1; chunk <= 5; chunk += 4) {
		char *out = encode(in, strlen(in), chunk, true, lines, &size, &outlen);

		is_str(out, want, "%s (chunk %zu)", name, chunk);
		free(out);
	}
}

int
main(void)
{
	uint64_t v;
	char line[128], *argv[PROTO_MAX_ARGS];

	/* strict numbers */
	ok(proto_parse_u64("1", 10, &v) == 0 && v == 1, "1 parses");
	ok(proto_parse_u64("007", 10, &v) == 0 && v == 7, "leading zeros are a plain number");
	ok(proto_parse_u64("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX, "UINT64_MAX parses");
	ok(proto_parse_u64("18446744073709551616", UINT64_MAX, &v) == -1, "UINT64_MAX + 1 does not wrap");
	ok(proto_parse_u64("99999999999999999999999", UINT64_MAX, &v) == -1, "23 significant digits refused");
	{
		/* RFC 2449 allows a 255-octet line: a number padded with zeros
		 * up to it is the number (here 250 digits). */
		char padded[251];

		memset(padded, '0', 249);
		strcpy(padded + 249, "1");
		ok(proto_parse_u64(padded, UINT32_MAX, &v) == 0 && v == 1, "250 digits of leading zeros and a 1 are 1");
		memcpy(padded + 229, "18446744073709551615", 21);
		ok(proto_parse_u64(padded, UINT64_MAX, &v) == 0 && v == UINT64_MAX,
		    "UINT64_MAX behind 229 zeros parses");
		padded[248] = '6';
		ok(proto_parse_u64(padded, UINT64_MAX, &v) == -1, "UINT64_MAX + 1 behind zeros does not wrap");
		memset(padded, '0', 250);
		ok(proto_parse_u64(padded, 10, &v) == 0 && v == 0, "250 zeros are 0");
	}
	v = 77;
	ok(proto_parse_u64("12x", 100, &v) == -1 && v == 77, "a refused number leaves the result alone");
	/* the scanner under every decimal field (Maildir names, cache, PROXY) */
	{
		size_t n;

		v = 0;
		n = proto_scan_u64("0042,S=1", 8, UINT64_MAX, &v);
		ok(n == 4 && v == 42, "scan reads the digits up to the first non-digit");
		n = proto_scan_u64("123", 2, UINT64_MAX, &v);
		ok(n == 2 && v == 12, "scan stops at the length given");
		v = 9;
		ok(proto_scan_u64(",1", 2, UINT64_MAX, &v) == 0 && v == 9, "scan without a digit reads nothing");
		ok(proto_scan_u64("256", 3, 255, &v) == 0 && v == 9, "scan over max reads nothing");
		ok(proto_scan_u64("255", 3, 255, &v) == 3 && v == 255, "scan of max itself");
		ok(proto_scan_u64("7", 1, 0, &v) == 0, "scan with max 0 refuses 7");
		ok(proto_scan_u64("0", 1, 0, &v) == 1 && v == 0, "scan with max 0 takes 0");
	}
	ok(proto_parse_u64("4294967296", UINT32_MAX, &v) == -1, "over the maximum refused");
	ok(proto_parse_u64("+1", 10, &v) == -1, "+1 refused");
	ok(proto_parse_u64("-1", 10, &v) == -1, "-1 refused");
	ok(proto_parse_u64("0x1", 10, &v) == -1, "0x1 refused");
	ok(proto_parse_u64("1a", 10, &v) == -1, "trailing junk refused");
	ok(proto_parse_u64(" 1", 10, &v) == -1, "leading space refused");
	ok(proto_parse_u64("", 10, &v) == -1, "empty refused");
	ok(proto_parse_u64("1.5", 10, &v) == -1, "decimal point refused");

	/* splitting */
	strcpy(line, "LIST 1");
	is_int(proto_split(line, argv), 2, "two words");
	is_str(argv[1], "1", "second word");
	strcpy(line, "top  1   2 ");
	is_int(proto_split(line, argv), 3, "runs of spaces count as one");
	is_str(argv[2], "2", "third word after several spaces");
	strcpy(line, "a b c d e");
	is_int(proto_split(line, argv), PROTO_MAX_ARGS + 1, "too many words reported");
	strcpy(line, "");
	is_int(proto_split(line, argv), 0, "empty line has no words");

	/* encoder: bytes sent and sizes */
	check_enc("LF lines", "a\nb\n", "a\r\nb\r\n", 6);
	check_enc("CRLF lines kept", "a\r\nb\r\n", "a\r\nb\r\n", 6);
	check_enc("mixed ends", "a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n", 9);
	check_enc("no final newline", "abc", "abc\r\n", 5);
	check_enc("final bare CR", "abc\r", "abc\r\n", 5);
	check_enc("bare CR inside a line", "a\rb\n", "a\rb\r\n", 5);
	check_enc("line of only a dot", "x\n.\ny\n", "x\r\n..\r\ny\r\n", 9);
	check_enc("line starting with two dots", "..x\n", "...x\r\n", 5);
	check_enc("dot at the very start", ".\n", "..\r\n", 3);
	check_enc("dot not at line start", "a.b\n", "a.b\r\n", 5);
	check_enc("empty message", "", "", 0);
	check_enc("empty body", "Subject: x\n\n", "Subject: x\r\n\r\n", 14);
	check_enc("8-bit bytes", "\xe4\xf6\xfc\n", "\xe4\xf6\xfc\r\n", 5);
	check_enc("dot after CRLF", "a\r\n.b\r\n", "a\r\n..b\r\n", 7);
	check_enc("last line only a dot, no newline", "a\n.", "a\r\n..\r\n", 6);

	/* TOP */
	check_top("TOP 0 sends the header and the blank line", "H: 1\n\nb1\nb2\n", 0, "H: 1\r\n\r\n");
	check_top("TOP 1 sends one body line", "H: 1\n\nb1\nb2\n", 1, "H: 1\r\n\r\nb1\r\n");
	check_top("TOP more lines than the body has", "H: 1\n\nb1\n", 5, "H: 1\r\n\r\nb1\r\n");
	check_top("TOP with CRLF header end", "H: 1\r\n\r\nb1\r\nb2\r\n", 1, "H: 1\r\n\r\nb1\r\n");
	check_top("TOP of a message with no body", "H: 1\nH: 2", 0, "H: 1\r\nH: 2\r\n");
	check_top("TOP stuffs dots in the body", "H: 1\n\n.x\ny\n", 1, "H: 1\r\n\r\n..x\r\n");
	check_top("TOP last body line without newline", "H: 1\n\nb1", 3, "H: 1\r\n\r\nb1\r\n");

	return done_testing();
}
