/* Unit tests for strict base64 and PLAIN splitting (pre-login input). */
#include "config.h"

#include <string.h>

#include "sasl.h"
#include "tap.h"

static int
dec(const char *in, char *out, size_t outsize, size_t *len)
{
	return sasl_b64_decode(in, strlen(in), out, outsize, len);
}

int
main(void)
{
	char out[64], msg[64];
	const char *cid, *pw;
	size_t len;

	ok(dec("dXNlcg==", out, sizeof(out), &len) == 0 && len == 4 && memcmp(out, "user", 4) == 0, "user decodes");
	ok(dec("YWJj", out, sizeof(out), &len) == 0 && len == 3, "no padding needed");
	ok(dec("YQ==", out, sizeof(out), &len) == 0 && len == 1 && out[0] == 'a', "two pads");
	ok(dec("YWI=", out, sizeof(out), &len) == 0 && len == 2, "one pad");
	ok(dec("=", out, sizeof(out), &len) == 0 && len == 0, "= is the empty response");
	ok(dec("", out, sizeof(out), &len) == -1, "empty refused");
	ok(dec("YQ", out, sizeof(out), &len) == -1, "missing padding refused");
	ok(dec("YQ=a", out, sizeof(out), &len) == -1, "data after padding refused");
	ok(dec("Y Q==", out, sizeof(out), &len) == -1, "space refused");
	ok(dec("YR==", out, sizeof(out), &len) == -1, "non-canonical low bits refused");
	ok(dec("YQ==YQ==", out, sizeof(out), &len) == -1, "padding in the middle refused");
	ok(dec("!!!!", out, sizeof(out), &len) == -1, "bad characters refused");
	ok(dec("YWJjZGVmZ2hpamtsbW5vcA==", out, 8, &len) == -1, "too long for the buffer refused");

	memcpy(msg, "\0alice\0secret", 13);
	ok(sasl_plain_split(msg, 13, &cid, &pw) && strcmp(cid, "alice") == 0 && strcmp(pw, "secret") == 0,
	    "PLAIN without authzid");
	memcpy(msg, "alice\0alice\0secret", 18);
	ok(sasl_plain_split(msg, 18, &cid, &pw), "PLAIN with authzid equal to authcid");
	memcpy(msg, "bob\0alice\0secret", 16);
	ok(!sasl_plain_split(msg, 16, &cid, &pw), "PLAIN with a different authzid refused");
	memcpy(msg, "\0alice", 6);
	ok(!sasl_plain_split(msg, 6, &cid, &pw), "PLAIN without password part refused");
	memcpy(msg, "\0\0secret", 8);
	ok(!sasl_plain_split(msg, 8, &cid, &pw), "PLAIN with empty authcid refused");
	memcpy(msg, "\0alice\0sec\0ret", 14);
	ok(!sasl_plain_split(msg, 14, &cid, &pw), "PLAIN with a NUL in the password refused");
	return done_testing();
}
