/* The Maildir size cache: a text file of "key st_size mtime size" lines with a checksummed trailer, verified on load and replaced atomically; runs as the mailbox owner. */
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
#include "sizecache.h"

#define CACHE_MAGIC	"maildir-pop3d size cache v1\n"

uint64_t
sizecache_fnv64(const void *p, size_t len, uint64_t h)
{
	const unsigned char *s = p;

	while (len--) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool
parse_u64(const char **pp, const char *end, uint64_t *v_r)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return false;
	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		p++;
	}
	*v_r = v;
	*pp = p;
	return true;
}

static void
reset(struct sizecache *c)
{
	free(c->buf);
	free(c->ents);
	free(c->slots);
	memset(c, 0, sizeof(*c));
}

void
sizecache_parse(struct sizecache *c, char *buf, size_t len)
{
	const char *p, *end, *trailer, *line_end;
	uint64_t want_count, want_sum, v;
	uint32_t n = 0, cap, i;

	memset(c, 0, sizeof(*c));
	c->buf = buf;
	end = buf + len;
	if (len < sizeof(CACHE_MAGIC) - 1 || memcmp(buf, CACHE_MAGIC, sizeof(CACHE_MAGIC) - 1) != 0)
		goto bad;
	/* The trailer "end <count> <fnv64 hex>\n" is the last line. */
	if (buf[len - 1] != '\n')
		goto bad;
	for (trailer = end - 1; trailer > buf && trailer[-1] != '\n'; trailer--)
		;
	p = trailer;
	if (end - p < 4 || memcmp(p, "end ", 4) != 0)
		goto bad;
	p += 4;
	if (!parse_u64(&p, end, &want_count) || p >= end || *p++ != ' ')
		goto bad;
	want_sum = 0;
	for (i = 0; i < 16; i++, p++) {
		int d;

		if (p >= end)
			goto bad;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			goto bad;
		want_sum = want_sum << 4 | (uint64_t)d;
	}
	if (p + 1 != end)
		goto bad;
	if (sizecache_fnv64(buf, (size_t)(trailer - buf), FNV64_BASIS) != want_sum)
		goto bad;
	if (want_count > LIMIT_MESSAGES)
		goto bad;

	c->ents = calloc(want_count ? want_count : 1, sizeof(*c->ents));
	for (cap = 16; cap < want_count * 2; cap <<= 1)
		;
	c->slots = calloc(cap, sizeof(*c->slots));
	if (c->ents == NULL || c->slots == NULL)
		goto bad;
	c->mask = cap - 1;

	for (p = buf + sizeof(CACHE_MAGIC) - 1; p < trailer; p = line_end + 1) {
		struct sizecache_entry *e;
		const char *key = p;
		uint32_t slot;

		line_end = memchr(p, '\n', (size_t)(trailer - p));
		if (line_end == NULL || n == want_count)
			goto bad;
		while (p < line_end && *p != ' ')
			p++;
		if (p == key || p - key > 0xffff || p == line_end)
			goto bad;
		e = &c->ents[n];
		e->key_off = (uint32_t)(key - buf);
		e->key_len = (uint16_t)(p - key);
		p++;
		if (!parse_u64(&p, line_end, &e->st_size) || p >= line_end || *p++ != ' ')
			goto bad;
		if (!parse_u64(&p, line_end, &v) || v > INT64_MAX || p >= line_end || *p++ != ' ')
			goto bad;
		e->mtime = (int64_t)v;
		if (!parse_u64(&p, line_end, &e->size) || p != line_end)
			goto bad;
		slot = (uint32_t)sizecache_fnv64(key, e->key_len, FNV64_BASIS) & c->mask;
		while (c->slots[slot] != 0)
			slot = (slot + 1) & c->mask;
		c->slots[slot] = ++n;
	}
	if (n != want_count)
		goto bad;
	c->count = n;
	return;
bad:
	reset(c);
}

void
sizecache_load(struct sizecache *c, int dirfd, const char *name)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	ssize_t r;
	int fd;

	memset(c, 0, sizeof(*c));
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size <= 0 || (uint64_t)st.st_size > LIMIT_CACHE_FILE) {
		close(fd);
		return;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	sizecache_parse(c, buf, got);
}

bool
sizecache_lookup(const struct sizecache *c, const char *key, size_t key_len,
    uint64_t st_size, int64_t mtime, uint64_t *size_r)
{
	uint32_t slot, i;

	if (c->count == 0)
		return false;
	slot = (uint32_t)sizecache_fnv64(key, key_len, FNV64_BASIS) & c->mask;
	while ((i = c->slots[slot]) != 0) {
		const struct sizecache_entry *e = &c->ents[i - 1];

		if (e->key_len == key_len && memcmp(c->buf + e->key_off, key, key_len) == 0) {
			/* A size is only trusted for the very same file. */
			if (e->st_size != st_size || e->mtime != mtime)
				return false;
			/* Sanity: CRLF conversion at most doubles, plus a final CRLF. */
			if (e->size < st_size || e->size > 2 * st_size + 2)
				return false;
			*size_r = e->size;
			return true;
		}
		slot = (slot + 1) & c->mask;
	}
	return false;
}

void
sizecache_free(struct sizecache *c)
{
	reset(c);
}

void
sizecache_writer_init(struct sizecache_writer *w)
{
	memset(w, 0, sizeof(*w));
}

static void
wappend(struct sizecache_writer *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (w->cap - w->len < n) {
		size_t ncap = w->cap ? w->cap : 4096;
		char *nb;

		while (ncap - w->len < n)
			ncap *= 2;
		nb = realloc(w->buf, ncap);
		if (nb == NULL) {
			w->oom = true;
			return;
		}
		w->buf = nb;
		w->cap = ncap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void
sizecache_writer_add(struct sizecache_writer *w, const char *key, size_t key_len,
    uint64_t st_size, int64_t mtime, uint64_t size)
{
	char num[80];
	int n;

	if (w->len == 0)
		wappend(w, CACHE_MAGIC, sizeof(CACHE_MAGIC) - 1);
	/* Keys with a space or newline could not be read back: leave them out. */
	if (key_len == 0 || key_len > 0xffff || memchr(key, ' ', key_len) || memchr(key, '\n', key_len) || mtime < 0)
		return;
	wappend(w, key, key_len);
	n = snprintf(num, sizeof(num), " %" PRIu64 " %" PRId64 " %" PRIu64 "\n",
	    st_size, mtime, size);
	wappend(w, num, (size_t)n);
	w->count++;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
sizecache_writer_commit(struct sizecache_writer *w, int dirfd, const char *name)
{
	char tmp[512], host[256], trailer[64];
	struct timespec ts;
	int fd, n, saved;

	if (w->len == 0)
		wappend(w, CACHE_MAGIC, sizeof(CACHE_MAGIC) - 1);
	n = snprintf(trailer, sizeof(trailer), "end %u %016" PRIx64 "\n", w->count,
	    sizecache_fnv64(w->buf, w->len, FNV64_BASIS));
	wappend(w, trailer, (size_t)n);
	if (w->oom) {
		errno = ENOMEM;
		goto fail_nofile;
	}
	/* A name unique across hosts sharing the Maildir (Maildir's own rule:
	 * time, pid, host), in the same directory so rename() is atomic. */
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *h = host; *h; h++)
		if (*h == '/' || *h == ':')
			*h = '_';
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%lld.%09ld.P%ld.%s", name,
	    (long long)ts.tv_sec, ts.tv_nsec, (long)getpid(), host);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		goto fail_nofile;
	if (write_all(fd, w->buf, w->len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		goto fail_nofile;
	}
	if (close(fd) == -1 || renameat(dirfd, tmp, dirfd, name) == -1) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		goto fail_nofile;
	}
	free(w->buf);
	w->buf = NULL;
	return 0;
fail_nofile:
	log_warn("size cache not written");
	free(w->buf);
	w->buf = NULL;
	return -1;
}
