/* libFuzzer target for the strict number parser, the word splitter and the one function that turns a wire message number into an index; checks each against a plain model; runs unprivileged. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "proto.h"
#include "session.h"

static struct session s;	/* session_msn() only reads md.count and the flags */
static struct msg msgs[8];

/* Model of proto_parse_u64: one or more ASCII digits, no sign or space,
 * any number of leading zeros, value at most max (and representable). */
static int
model_u64(const char *p, uint64_t max, uint64_t *v_r)
{
	unsigned __int128 v = 0;
	size_t n = strlen(p), i, z;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return -1;
	for (z = 0; z < n && p[z] == '0'; z++)
		;
	if (n - z > 20)
		return -1;
	for (i = z; i < n; i++)
		v = v * 10 + (unsigned)(p[i] - '0');
	if (v > UINT64_MAX || v > max)
		return -1;
	*v_r = (uint64_t)v;
	return 0;
}

static void
check_parse(const char *p, uint64_t max)
{
	uint64_t got = 12345, want = 0;
	int r = proto_parse_u64(p, max, &got), m = model_u64(p, max, &want);

	FUZZ_CHECK(r == m, "proto_parse_u64 accepts or refuses unlike the model");
	if (r == 0) {
		char again[32];

		FUZZ_CHECK(got == want, "proto_parse_u64 value differs from the model");
		/* Printing the value gives the input without leading zeros. */
		snprintf(again, sizeof(again), "%" PRIu64, got);
		while (p[0] == '0' && p[1] != '\0')
			p++;
		FUZZ_CHECK(strcmp(again, p) == 0, "value does not print back as its digits");
	} else {
		FUZZ_CHECK(got == 12345, "proto_parse_u64 wrote its result on failure");
	}
}

static void
check_split(const char *p)
{
	char *line = strdup(p), *argv[PROTO_MAX_ARGS];
	const char *w[64];
	size_t wl[64], nw = 0, i = 0;
	int argc;

	if (line == NULL)
		abort();
	/* Model: words are maximal runs of octets other than space. */
	while (p[i] != '\0') {
		while (p[i] == ' ')
			i++;
		if (p[i] == '\0')
			break;
		if (nw < 64) {
			w[nw] = p + i;
			wl[nw] = strcspn(p + i, " ");
		}
		nw++;
		i += strcspn(p + i, " ");
	}
	argc = proto_split(line, argv);
	if (nw > PROTO_MAX_ARGS) {
		FUZZ_CHECK(argc == PROTO_MAX_ARGS + 1, "too many words not reported as such");
	} else {
		FUZZ_CHECK(argc == (int)nw, "word count differs from the model");
		for (int k = 0; k < argc; k++) {
			FUZZ_CHECK(argv[k] >= line && argv[k] < line + strlen(p), "word outside the line");
			FUZZ_CHECK(strlen(argv[k]) == wl[k] && memcmp(argv[k], w[k], wl[k]) == 0,
			    "word differs from the model");
		}
	}
	free(line);
}

static void
check_msn(const char *p, uint8_t count, uint8_t deleted)
{
	struct reply r;
	uint64_t want;
	uint32_t idx = 777;
	bool ok;

	s.md.msgs = msgs;
	s.md.count = count % 9;
	for (uint32_t i = 0; i < 8; i++)
		msgs[i].flags = (uint8_t)(deleted & (1u << i) ? MSG_DELETED : 0);
	memset(&r, 0, sizeof(r));
	ok = session_msn(&s, p, &idx, &r);
	if (model_u64(p, UINT32_MAX, &want) == 0 && want >= 1 && want <= s.md.count &&
	    !(msgs[want - 1].flags & MSG_DELETED)) {
		FUZZ_CHECK(ok && idx == want - 1, "a valid message number refused or mapped wrongly");
	} else {
		FUZZ_CHECK(!ok && !r.ok && r.text[0] != '\0', "an invalid message number accepted");
		FUZZ_CHECK(idx == 777, "session_msn wrote an index on failure");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t maxes[] = { UINT64_MAX, UINT32_MAX, LIMIT_TIMEOUT_MAX, 0, 1, 9, 10,
		9999999999999999999ULL, 10000000000000000000ULL };
	char *p;
	uint8_t sel = 0, count = 0, deleted = 0;

	/* Three control octets, then the text. */
	if (size >= 3) {
		sel = data[0];
		count = data[1];
		deleted = data[2];
		data += 3;
		size -= 3;
	}
	p = malloc(size + 1);
	if (p == NULL)
		return 0;
	memcpy(p, data, size);
	p[size] = '\0';

	check_parse(p, maxes[sel % (sizeof(maxes) / sizeof(maxes[0]))]);
	check_parse(p, UINT64_MAX);
	check_split(p);
	check_msn(p, count, deleted);
	free(p);
	return 0;
}
