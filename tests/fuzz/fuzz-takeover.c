/* libFuzzer targets for the parsers of the previous server's state files (dovecot-uidlist with pop3_uidl_format expansion, courierpop3dsizelist): bounded entries, lookups that find every entry, UIDLs that are always valid RFC 1939 unique-ids; runs unprivileged. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "takeover.h"

#ifndef FUZZ_COURIER
#define FUZZ_COURIER 0
#endif

static void
check_uidl(const char *u, bool courier_uid)
{
	size_t n = strlen(u);

	FUZZ_CHECK(n >= 1 && n <= LIMIT_UIDL_LEN, "UIDL length outside 1..70");
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)u[i] >= 0x21 && (unsigned char)u[i] <= 0x7e,
		    "UIDL octet outside 0x21..0x7e");
	if (courier_uid) {
		unsigned long a, b;
		char tail;

		FUZZ_CHECK(sscanf(u, "UID%lu-%lu%c", &a, &b, &tail) == 2 ||
		    sscanf(u, "UID%lu%c", &a, &tail) == 1, "Courier UIDL not UID<n>[-<uidv>]");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char fmt[LIMIT_UIDL_FORMAT + 1] = TAKEOVER_DOVECOT_DEFAULT_FORMAT;
	const char *err;
	struct takeover t;
	size_t lines = 1;
	char *buf;

	/* Dovecot: an input starting with 0xfe carries a pop3_uidl_format on
	 * its first line (as --dovecot-uidl-format takes it). */
	if (!FUZZ_COURIER && size > 0 && data[0] == 0xfe) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t flen = nl != NULL ? (size_t)(nl - data) - 1 : size - 1;

		if (flen > LIMIT_UIDL_FORMAT || memchr(data + 1, '\0', flen) != NULL)
			return 0;
		memcpy(fmt, data + 1, flen);
		fmt[flen] = '\0';
		if (!takeover_format_ok(fmt, &err))
			return 0;
		size -= flen + 1 + (nl != NULL);
		data += flen + 1 + (nl != NULL);
	}
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if ((FUZZ_COURIER ? takeover_parse_courier(&t, buf, size) :
	    takeover_parse_dovecot(&t, buf, size)) == -1)
		return 0;	/* ENOMEM: the parser freed buf */
	FUZZ_CHECK(t.count + t.bad_lines <= lines, "more entries than lines");
	FUZZ_CHECK(!t.bad_header || t.count == 0, "entries from a file with a bad header");
	for (uint32_t i = 0; i < t.count; i++) {
		const struct takeover_entry *e = &t.ents[i], *f;
		const char *key = t.buf + e->key_off;
		char u[LIMIT_UIDL_LEN + 1];

		FUZZ_CHECK(e->key_off + (size_t)e->key_len <= t.len, "key outside the file");
		FUZZ_CHECK(e->key_len >= 1 && e->key_len <= LIMIT_MAILDIR_NAME, "key length");
		FUZZ_CHECK(memchr(key, ':', e->key_len) == NULL, "key holds the info part");
		FUZZ_CHECK(memchr(key, '\n', e->key_len) == NULL, "key holds a newline");
		FUZZ_CHECK(e->p_off + (size_t)e->p_len <= t.len && e->g_off + (size_t)e->g_len <= t.len,
		    "field outside the file");
		f = takeover_find(&t, key, e->key_len);
		FUZZ_CHECK(f != NULL && f->key_len == e->key_len &&
		    memcmp(t.buf + f->key_off, key, e->key_len) == 0, "an entry's name is not found");
		if (takeover_uidl(&t, f, fmt, key, e->key_len, u))
			check_uidl(u, FUZZ_COURIER && f->uid != 0);
	}
	takeover_free(&t);
	return 0;
}
