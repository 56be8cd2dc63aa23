/* The Maildir size cache: a text file of "key inode size mtime wire-size" lines with a checksummed trailer, verified whole on load, read in order, replaced atomically; runs as the mailbox owner. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pop3d-limits.h"
#include "log.h"
#include "deadline.h"
#include "proto.h"
#include "sizecache.h"

#define MAGIC_LEN	(sizeof(SIZECACHE_MAGIC) - 1)

uint64_t
sizecache_fnv64(const void *p, size_t len, uint64_t h)
{
	const unsigned char *s = p;

	/* FNV-1a's step on 8-octet little-endian words, then on the last
	 * octets one by one: eight times fewer dependent multiplications than
	 * octet by octet, for a checksum read at every login. */
	while (len >= 8) {
		uint64_t w = (uint64_t)s[0] | (uint64_t)s[1] << 8 | (uint64_t)s[2] << 16 |
		    (uint64_t)s[3] << 24 | (uint64_t)s[4] << 32 | (uint64_t)s[5] << 40 |
		    (uint64_t)s[6] << 48 | (uint64_t)s[7] << 56;

		h ^= w;
		h *= 0x100000001b3ULL;
		h ^= h >> 32;
		s += 8;
		len -= 8;
	}
	while (len--) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A decimal field at *pp, advancing past it. */
static bool
parse_u64(const char **pp, const char *end, uint64_t *v_r)
{
	size_t n = proto_scan_u64(*pp, (size_t)(end - *pp), UINT64_MAX, v_r);

	*pp += n;
	return n > 0;
}

/* ---- the streaming reader ---- */

void
sizecache_reader_from(struct sizecache_reader *r, char *buf, size_t len)
{
	const char *p, *end = buf + len, *trailer;
	uint64_t want_count, want_sum;
	int i;

	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	r->present = true;
	if (len >= MAGIC_LEN && memcmp(buf, SIZECACHE_MAGIC, MAGIC_LEN) == 0)
		r->version = 3;
	else if (len >= MAGIC_LEN && memcmp(buf, SIZECACHE_MAGIC_V2, MAGIC_LEN) == 0)
		r->version = 2;
	else
		return;		/* missing, foreign or another version */
	/* The trailer "end <count> <16 hex digits>\n" is the last line. */
	if (buf[len - 1] != '\n')
		return;		/* truncated */
	for (trailer = end - 1; trailer > buf && trailer[-1] != '\n'; trailer--)
		;
	if (trailer < buf + MAGIC_LEN)
		return;
	p = trailer;
	if (end - p < 4 || memcmp(p, "end ", 4) != 0)
		return;
	p += 4;
	if (!parse_u64(&p, end, &want_count) || p >= end || *p++ != ' ')
		return;
	want_sum = 0;
	for (i = 0; i < 16; i++, p++) {
		int d;

		if (p >= end)
			return;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return;
		want_sum = want_sum << 4 | (uint64_t)d;
	}
	/* The count bounds the reading: it may not claim more entries than the
	 * file has room for ("k 0 0 0 0\n" is the shortest). */
	if (p + 1 != end || want_count > LIMIT_MESSAGES ||
	    want_count > (uint64_t)(trailer - (buf + MAGIC_LEN)) / 10)
		return;
	if (sizecache_fnv64(buf, (size_t)(trailer - buf), FNV64_BASIS) != want_sum)
		return;		/* corrupt, or a torn write that slipped through */
	r->pos = MAGIC_LEN;
	r->end = (size_t)(trailer - buf);
	r->count = (uint32_t)want_count;
	r->valid = true;
}

void
sizecache_reader_open(struct sizecache_reader *r, int dirfd, const char *name)
{
	char *buf;
	size_t got;
	int fd, rc;

	memset(r, 0, sizeof(*r));
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1) {
		/* A symlink (ELOOP) or anything else there is "present":
		 * it gets replaced by a real cache. */
		r->present = errno != ENOENT;
		return;
	}
	r->present = true;
	/* Not a file we wrote, or absurdly large: never read. */
	rc = fd_read_file(fd, LIMIT_CACHE_FILE, &buf, &got);
	close(fd);
	if (rc == 0)
		sizecache_reader_from(r, buf, got);
}

bool
sizecache_reader_next(struct sizecache_reader *r, struct sizecache_entry *e)
{
	const char *p, *key, *line_end, *stop;
	uint64_t v;

	if (!r->valid || r->bad || r->pos >= r->end)
		return false;
	p = key = r->buf + r->pos;
	stop = r->buf + r->end;
	line_end = memchr(p, '\n', (size_t)(stop - p));
	if (line_end == NULL || r->read == r->count)
		goto bad;
	while (p < line_end && *p != ' ' && *p != '\0')
		p++;
	if (p == key || p - key > 0xffff || p == line_end || *p != ' ')
		goto bad;
	e->key_off = (uint32_t)(key - r->buf);
	e->key_len = (uint16_t)(p - key);
	p++;
	if (!parse_u64(&p, line_end, &e->ino) || p >= line_end || *p++ != ' ')
		goto bad;
	if (!parse_u64(&p, line_end, &e->st_size) || p >= line_end || *p++ != ' ')
		goto bad;
	if (!parse_u64(&p, line_end, &v) || v > INT64_MAX || p >= line_end || *p++ != ' ')
		goto bad;
	e->mtime = (int64_t)v;
	if (!parse_u64(&p, line_end, &e->size))
		goto bad;
	e->uidl_len = 0;
	e->uidl_off = 0;
	if (p != line_end) {
		const char *u = p + 1;

		if (r->version < 3 || *p != ' ' || line_end - u < 1 || line_end - u > LIMIT_UIDL_LEN)
			goto bad;
		for (const char *q = u; q < line_end; q++)
			if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
				goto bad;
		e->uidl_off = (uint32_t)(u - r->buf);
		e->uidl_len = (uint8_t)(line_end - u);
	}
	r->pos = (size_t)(line_end + 1 - r->buf);
	r->read++;
	return true;
bad:
	r->bad = true;
	return false;
}

void
sizecache_reader_close(struct sizecache_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

/* ---- writing ---- */

void
sizecache_writer_init(struct sizecache_writer *w)
{
	memset(w, 0, sizeof(*w));
}

/* Room for n more octets; false (and oom set) when there is none. */
static bool
wroom(struct sizecache_writer *w, size_t n)
{
	if (w->oom)
		return false;
	if (w->cap - w->len < n) {
		size_t ncap = w->cap ? w->cap : 65536;
		char *nb;

		while (ncap - w->len < n)
			ncap *= 2;
		nb = realloc(w->buf, ncap);
		if (nb == NULL) {
			w->oom = true;
			return false;
		}
		w->buf = nb;
		w->cap = ncap;
	}
	return true;
}

static void
wappend(struct sizecache_writer *w, const char *s, size_t n)
{
	if (!wroom(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

/* " <decimal>" at p; returns the octets written (at most 21). */
static size_t
put_num(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	p[0] = ' ';
	for (i = 0; i < n; i++)
		p[1 + i] = tmp[n - 1 - i];
	return n + 1;
}

bool
sizecache_key_ok(const char *key, size_t key_len)
{
	return key_len > 0 && key_len <= 0xffff && memchr(key, ' ', key_len) == NULL &&
	    memchr(key, '\n', key_len) == NULL && memchr(key, '\0', key_len) == NULL;
}

void
sizecache_writer_put(struct sizecache_writer *w, const char *key, size_t key_len,
    uint64_t ino, uint64_t st_size, int64_t mtime, uint64_t size)
{
	sizecache_writer_put_uidl(w, key, key_len, ino, st_size, mtime, size, NULL, 0);
}

void
sizecache_writer_put_uidl(struct sizecache_writer *w, const char *key, size_t key_len,
    uint64_t ino, uint64_t st_size, int64_t mtime, uint64_t size,
    const char *uidl, size_t uidl_len)
{
	char *p;

	if (w->len == 0)
		wappend(w, SIZECACHE_MAGIC, MAGIC_LEN);
	if (!sizecache_key_ok(key, key_len) || mtime < 0)
		return;
	if (uidl_len > LIMIT_UIDL_LEN)
		uidl_len = 0;
	for (size_t i = 0; i < uidl_len; i++)
		if ((unsigned char)uidl[i] < 0x21 || (unsigned char)uidl[i] > 0x7e)
			uidl_len = 0;
	if (!wroom(w, key_len + 4 * 21 + 2 + uidl_len))
		return;
	p = w->buf + w->len;
	memcpy(p, key, key_len);
	p += key_len;
	p += put_num(p, ino);
	p += put_num(p, st_size);
	p += put_num(p, (uint64_t)mtime);
	p += put_num(p, size);
	if (uidl_len > 0) {
		*p++ = ' ';
		memcpy(p, uidl, uidl_len);
		p += uidl_len;
	}
	*p++ = '\n';
	w->len = (size_t)(p - w->buf);
	w->count++;
}

int
sizecache_writer_finish(struct sizecache_writer *w)
{
	char trailer[64];
	int n;

	if (w->len == 0)
		wappend(w, SIZECACHE_MAGIC, MAGIC_LEN);
	n = snprintf(trailer, sizeof(trailer), "end %" PRIu32 " %016" PRIx64 "\n", w->count,
	    sizecache_fnv64(w->buf, w->len, FNV64_BASIS));
	wappend(w, trailer, (size_t)n);
	if (w->oom) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
sizecache_writer_commit(struct sizecache_writer *w, int dirfd, const char *name)
{
	char tmp[512], host[256];
	struct timespec ts;
	int fd, saved;

	if (sizecache_writer_finish(w) == -1)
		goto fail;
	/* A name unique across hosts sharing the Maildir (Maildir's own rule:
	 * time, pid, host), in the same directory so rename() is atomic. */
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *h = host; *h; h++)
		if (*h == '/' || *h == ':' || (unsigned char)*h <= ' ')
			*h = '_';
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%lld.%09ld.P%ld.%s", name,
	    (long long)ts.tv_sec, ts.tv_nsec, (long)getpid(), host);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		goto fail;
	if (fd_write_all(fd, w->buf, w->len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		goto fail;
	}
	if (close(fd) == -1 || renameat(dirfd, tmp, dirfd, name) == -1) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		goto fail;
	}
	free(w->buf);
	w->buf = NULL;
	return 0;
fail:
	log_warn("size cache not written");
	free(w->buf);
	w->buf = NULL;
	return -1;
}
