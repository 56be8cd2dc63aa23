/* libFuzzer target for Maildir name handling (unique part, delivery time, ,W= size, UIDL, the seen flag) and the size cache reader and writer, each against a model or a round trip; runs unprivileged. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "maildir.h"
#include "sizecache.h"

static void
check_names(const char *name, size_t len, size_t outsize)
{
	size_t ul = maildir_uniq_len(name, len), i;
	const char *colon = memchr(name, ':', len);
	uint64_t v = 0, w = 424242;
	char *uidl, *again, *seen;
	bool plain, has_w;

	FUZZ_CHECK(ul == (colon ? (size_t)(colon - name) : len), "unique part does not stop at the first colon");

	/* Delivery time: the leading digits as a number, 0 when there are
	 * none or they exceed UINT64_MAX (the model counts in 128 bits). */
	{
		unsigned __int128 big = 0;
		bool over = false;

		for (i = 0; i < len && name[i] >= '0' && name[i] <= '9'; i++) {
			big = big * 10 + (unsigned)(name[i] - '0');
			over |= big > UINT64_MAX;
		}
		v = over ? 0 : (uint64_t)big;
	}
	FUZZ_CHECK(maildir_delivery(name, len) == v, "delivery time differs from the model");

	/* ,W=: the first ",W=" in the unique part decides; digits (at most
	 * UINT64_MAX) then ',' or the end of the unique part. */
	{
		const char *p = NULL;
		bool want = false;
		uint64_t wv = 0;

		for (i = 0; i + 3 < ul; i++)
			if (memcmp(name + i, ",W=", 3) == 0) {
				p = name + i + 3;
				break;
			}
		if (p != NULL) {
			unsigned __int128 big = 0;
			bool over = false;
			size_t k = 0;

			while (p + k < name + ul && p[k] >= '0' && p[k] <= '9') {
				big = big * 10 + (unsigned)(p[k++] - '0');
				over |= big > UINT64_MAX;
			}
			wv = (uint64_t)big;
			want = k > 0 && !over && (p + k == name + ul || p[k] == ',');
		}
		has_w = maildir_name_wsize(name, ul, &w);
		FUZZ_CHECK(has_w == want, ",W= found or refused unlike the model");
		if (has_w)
			FUZZ_CHECK(w == wv, ",W= value differs from the model");
		else
			FUZZ_CHECK(w == 424242, "maildir_name_wsize wrote its result on failure");
	}

	/* UIDL: RFC 1939 section 7, 1..70 octets of 0x21..0x7e, stable. */
	uidl = malloc(LIMIT_UIDL_LEN + 1);
	again = malloc(LIMIT_UIDL_LEN + 1);
	if (uidl == NULL || again == NULL)
		abort();
	maildir_uidl_of(name, ul, uidl);
	maildir_uidl_of(name, ul, again);
	FUZZ_CHECK(strcmp(uidl, again) == 0, "UIDL is not stable");
	FUZZ_CHECK(strlen(uidl) >= 1 && strlen(uidl) <= LIMIT_UIDL_LEN, "UIDL length outside 1..70");
	for (i = 0; uidl[i]; i++)
		FUZZ_CHECK((unsigned char)uidl[i] >= 0x21 && (unsigned char)uidl[i] <= 0x7e,
		    "UIDL octet outside 0x21..0x7e");
	plain = ul >= 1 && ul <= LIMIT_UIDL_LEN;
	for (i = 0; plain && i < ul; i++)
		plain = (unsigned char)name[i] >= 0x21 && (unsigned char)name[i] <= 0x7e;
	if (plain)
		FUZZ_CHECK(strlen(uidl) == ul && memcmp(uidl, name, ul) == 0, "a usable unique part is not its own UIDL");
	else
		FUZZ_CHECK(strlen(uidl) == 32 && strspn(uidl, "0123456789abcdef") == 32,
		    "an unusable unique part does not get a 32-digit digest");
	free(uidl);
	free(again);

	/* The seen flag, into a buffer of exactly outsize octets. */
	seen = malloc(outsize ? outsize : 1);
	if (seen == NULL)
		abort();
	if (maildir_seen_name(name, len, seen, outsize)) {
		FUZZ_CHECK(outsize >= len + 5, "seen name written into too small a buffer");
		if (colon == NULL) {
			FUZZ_CHECK(memcmp(seen, name, len) == 0 && memcmp(seen + len, ":2,S", 5) == 0,
			    "a name without info does not get :2,S");
		} else {
			const char *flags = name + ul + 3, *nflags = seen + ul + 3;
			size_t flen = len - ul - 3, j = 0;

			FUZZ_CHECK(len - ul >= 3 && memcmp(name + ul, ":2,", 3) == 0, "seen flag added to a foreign info");
			FUZZ_CHECK(memcmp(seen, name, ul + 3) == 0, "seen name changed the unique part");
			FUZZ_CHECK(memchr(flags, 'S', flen) == NULL, "seen flag added twice");
			FUZZ_CHECK(seen[len + 1] == '\0', "seen name is not one octet longer");
			/* the old flags in order, with one S before the first flag >= 'S' */
			while (j < flen && (unsigned char)flags[j] < 'S')
				j++;
			FUZZ_CHECK(memcmp(nflags, flags, j) == 0 && nflags[j] == 'S' &&
			    memcmp(nflags + j + 1, flags + j, flen - j) == 0, "flags not kept in order around S");
		}
	} else {
		FUZZ_CHECK(outsize < len + 5 || (colon != NULL && (len - ul < 3 ||
		    memcmp(name + ul, ":2,", 3) != 0 || memchr(name + ul + 3, 'S', len - ul - 3) != NULL)),
		    "seen flag refused for a name that can take it");
	}
	free(seen);
}

/* Entries the streaming reader returns from a copy of img[0..len), into a
 * malloc'd array (*ents_r, keys pointing into *buf_r); whether the file is
 * usable: checked whole and every announced entry read. */
static bool
read_all(const char *img, size_t len, struct sizecache_entry **ents_r, uint32_t *n_r, char **buf_r)
{
	struct sizecache_reader r;
	struct sizecache_entry e, *ents = NULL;
	uint32_t n = 0, cap = 0;
	char *copy = malloc(len + 1);
	bool usable;

	if (copy == NULL)
		abort();
	memcpy(copy, img, len + 1);
	sizecache_reader_from(&r, copy, len);
	while (sizecache_reader_next(&r, &e)) {
		FUZZ_CHECK(e.key_len > 0 && (size_t)e.key_off + e.key_len <= len, "reader key outside the file");
		FUZZ_CHECK(sizecache_key_ok(r.buf + e.key_off, e.key_len), "reader key with a space, newline or NUL");
		FUZZ_CHECK(n < r.count, "reader returned more entries than the trailer announces");
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ents = realloc(ents, cap * sizeof(*ents));
			if (ents == NULL)
				abort();
		}
		ents[n++] = e;
	}
	usable = r.valid && !r.bad && n == r.count;
	*buf_r = r.buf;
	r.buf = NULL;		/* the keys live on in *buf_r */
	sizecache_reader_close(&r);
	*ents_r = ents;
	*n_r = n;
	return usable;
}

/* Entries of a usable cache written back by the production writer and read
 * again give the same. */
static void
round_trip(const char *buf, const struct sizecache_entry *ents, uint32_t n)
{
	struct sizecache_writer w;
	struct sizecache_entry *back;
	uint32_t i, m;
	char *img, *bbuf;

	sizecache_writer_init(&w);
	for (i = 0; i < n; i++)
		sizecache_writer_put(&w, buf + ents[i].key_off, ents[i].key_len, ents[i].ino,
		    ents[i].st_size, ents[i].mtime, ents[i].size);
	if (sizecache_writer_finish(&w) == -1) {
		free(w.buf);
		return;		/* out of memory */
	}
	FUZZ_CHECK(w.count == n, "writer dropped a read entry");
	img = malloc(w.len + 1);
	if (img == NULL)
		abort();
	memcpy(img, w.buf, w.len);
	img[w.len] = '\0';
	FUZZ_CHECK(read_all(img, w.len, &back, &m, &bbuf) && m == n, "a written cache does not read back");
	for (i = 0; i < n; i++) {
		const struct sizecache_entry *a = &ents[i], *b = &back[i];

		FUZZ_CHECK(a->key_len == b->key_len && memcmp(buf + a->key_off, bbuf + b->key_off, a->key_len) == 0 &&
		    a->ino == b->ino && a->st_size == b->st_size && a->mtime == b->mtime && a->size == b->size,
		    "a written cache entry reads back differently");
	}
	free(back);
	free(bbuf);
	free(img);
	free(w.buf);
}

static void
check_cache(const uint8_t *data, size_t size, int mode)
{
	static const size_t magic_len = sizeof(SIZECACHE_MAGIC) - 1;
	struct sizecache_entry *ents;
	size_t len = size;
	uint32_t n;
	char *buf, *rbuf;

	buf = malloc(size + 64 + magic_len);
	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	if (mode > 0) {
		/* Past the checksum: the lines as given, with the magic in
		 * front when missing and a correct trailer behind; mode 2
		 * announces more entries than there are lines. */
		size_t lines = 0;
		int k;

		if (size < magic_len || memcmp(buf, SIZECACHE_MAGIC, magic_len) != 0) {
			memmove(buf + magic_len, buf, size);
			memcpy(buf, SIZECACHE_MAGIC, magic_len);
			len += magic_len;
		}
		if (buf[len - 1] != '\n')
			buf[len++] = '\n';
		for (size_t i = magic_len; i < len; i++)
			lines += buf[i] == '\n';
		if (mode == 2)
			lines = LIMIT_MESSAGES - (size % 1000);
		k = snprintf(buf + len, 64, "end %zu %016" PRIx64 "\n", lines,
		    sizecache_fnv64(buf, len, FNV64_BASIS));
		len += (size_t)k;
	}
	buf[len] = '\0';
	if (read_all(buf, len, &ents, &n, &rbuf) && n > 0)
		round_trip(rbuf, ents, n);
	free(ents);
	free(rbuf);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t outsize = 0, nlen;
	char *name;

	/* The name: up to the first newline (one octet before it sets the
	 * seen-name buffer size), the whole input for the cache. */
	nlen = size;
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n') {
			nlen = i;
			break;
		}
	if (nlen > 0) {
		outsize = data[0] % 16 == 0 ? 8 : nlen + data[0] % 8;
		/* exactly nlen octets, so that ASan sees reads past the name */
		name = malloc(nlen - 1 ? nlen - 1 : 1);
		if (name == NULL)
			abort();
		memcpy(name, data + 1, nlen - 1);
		check_names(name, nlen - 1, outsize);
		free(name);
	}
	check_cache(data, size, 0);
	check_cache(data, size, 1);
	if (size > 0 && data[0] & 0x80)
		check_cache(data, size, 2);
	return 0;
}
