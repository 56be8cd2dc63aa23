/* The maildrop: scan of new/ and cur/, order, UIDL, exact sizes (name, cache, reading), lock, open one message, commit at QUIT; runs as the mailbox owner. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"
#include "proto.h"
#include "sizecache.h"

#ifndef O_NOATIME
#define O_NOATIME	0
#endif

static const char *const subdir[2] = { "new", "cur" };

/* ---- pure name helpers ---- */

size_t
maildir_uniq_len(const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);

	return colon ? (size_t)(colon - name) : len;
}

uint64_t
maildir_delivery(const char *name, size_t len)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && i < 19 && name[i] >= '0' && name[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(name[i] - '0');
	return v;
}

bool
maildir_name_wsize(const char *name, size_t uniq_len, uint64_t *w_r)
{
	size_t i;

	/* ",W=<digits>" followed by ',' or the end of the unique part. */
	for (i = 0; i + 3 < uniq_len; i++) {
		if (name[i] != ',' || name[i + 1] != 'W' || name[i + 2] != '=')
			continue;
		size_t j = i + 3, k = 0;
		uint64_t v = 0;

		while (j < uniq_len && name[j] >= '0' && name[j] <= '9' && k < 19) {
			v = v * 10 + (uint64_t)(name[j] - '0');
			j++;
			k++;
		}
		if (k == 0 || (j < uniq_len && name[j] != ','))
			return false;
		*w_r = v;
		return true;
	}
	return false;
}

/* FNV-1a with the 128-bit parameters, on two 64-bit halves: portable,
 * stable, and only needs to tell names apart, not resist an attacker (names
 * come from the delivery agent). */
static void
fnv128(const char *s, size_t len, uint64_t *hi_r, uint64_t *lo_r)
{
	uint64_t hi = 0x6c62272e07bb0142ULL, lo = 0x62b821756295c58dULL;

	for (size_t i = 0; i < len; i++) {
		uint64_t l0, l1, a, b, nlo, nhi;

		lo ^= (unsigned char)s[i];
		/* (hi:lo) *= 2^88 + 0x13b, modulo 2^128 */
		l0 = lo & 0xffffffffULL;
		l1 = lo >> 32;
		a = l0 * 0x13b;
		b = l1 * 0x13b + (a >> 32);
		nlo = (b << 32) | (a & 0xffffffffULL);
		nhi = hi * 0x13b + (b >> 32) + (lo << 24);
		hi = nhi;
		lo = nlo;
	}
	*hi_r = hi;
	*lo_r = lo;
}

void
maildir_uidl_of(const char *uniq, size_t len, char *out)
{
	bool plain = len >= 1 && len <= LIMIT_UIDL_LEN;
	uint64_t hi, lo;

	for (size_t i = 0; plain && i < len; i++)
		if ((unsigned char)uniq[i] < 0x21 || (unsigned char)uniq[i] > 0x7e)
			plain = false;
	if (plain) {
		memcpy(out, uniq, len);
		out[len] = '\0';
		return;
	}
	fnv128(uniq, len, &hi, &lo);
	snprintf(out, LIMIT_UIDL_LEN + 1, "%016" PRIx64 "%016" PRIx64, hi, lo);
}

bool
maildir_seen_name(const char *name, size_t len, char *out, size_t outsize)
{
	size_t ul = maildir_uniq_len(name, len), n;
	const char *flags;
	size_t flen, i;

	if (outsize < len + 5)
		return false;
	if (ul == len) {
		memcpy(out, name, len);
		memcpy(out + len, ":2,S", 5);
		return true;
	}
	if (len - ul < 3 || name[ul + 1] != '2' || name[ul + 2] != ',')
		return false;	/* an info we do not understand: leave it alone */
	flags = name + ul + 3;
	flen = len - ul - 3;
	if (memchr(flags, 'S', flen) != NULL)
		return false;
	/* Flags stay in ASCII order, as the Maildir rules ask. */
	n = ul + 3;
	memcpy(out, name, n);
	for (i = 0; i < flen && (unsigned char)flags[i] < 'S'; i++)
		out[n++] = flags[i];
	out[n++] = 'S';
	memcpy(out + n, flags + i, flen - i);
	n += flen - i;
	out[n] = '\0';
	return true;
}

/* Sizes a file by running the encoder over it.  st_size is what fstat said:
 * a short read that reaches it is the end, which saves the read() that
 * would return 0 for every small message. */
static int
size_file(int fd, uint64_t st_size, uint64_t *size_r)
{
	static char in[LIMIT_FILE_CHUNK], out[ENC_OUT_MAX(LIMIT_FILE_CHUNK)];
	uint64_t got = 0;
	struct enc e;
	ssize_t n;

	enc_init(&e, false);
	for (;;) {
		n = read(fd, in, sizeof(in));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		enc_feed(&e, in, (size_t)n, out);
		got += (uint64_t)n;
		if ((size_t)n < sizeof(in) && got == st_size)
			break;
	}
	enc_finish(&e, out);
	*size_r = e.size;
	return 0;
}

int
maildir_size_fd(int fd, uint64_t *size_r)
{
	return size_file(fd, UINT64_MAX, size_r);
}

static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* ---- scanning ---- */

static int
arena_add(struct maildir *md, const char *name, size_t len, uint32_t *off_r)
{
	if (md->arena_cap - md->arena_len < len + 1) {
		size_t ncap = md->arena_cap ? md->arena_cap * 2 : 16384;
		char *na;

		while (ncap - md->arena_len < len + 1)
			ncap *= 2;
		if (ncap > UINT32_MAX) {
			errno = ENOMEM;
			return -1;
		}
		na = realloc(md->arena, ncap);
		if (na == NULL)
			return -1;
		md->arena = na;
		md->arena_cap = ncap;
	}
	memcpy(md->arena + md->arena_len, name, len);
	md->arena[md->arena_len + len] = '\0';
	*off_r = (uint32_t)md->arena_len;
	md->arena_len += len + 1;
	return 0;
}

/* The sort key of a message: delivery time, then the unique part. */
struct order {
	uint64_t	delivery;
	uint32_t	idx;
};

struct scan {
	struct maildir		*md;
	uint32_t		 cap;
	struct order		*ord;
	bool			 full;		/* LIMIT_MESSAGES reached */
};

static int
grow(struct scan *s)
{
	uint32_t ncap = s->cap ? s->cap * 2 : 256;
	struct msg *nm;
	struct order *no;

	if (s->cap >= LIMIT_MESSAGES) {
		errno = EFBIG;
		return -1;
	}
	nm = realloc(s->md->msgs, (size_t)ncap * sizeof(*nm));
	if (nm == NULL)
		return -1;
	s->md->msgs = nm;
	no = realloc(s->ord, (size_t)ncap * sizeof(*no));
	if (no == NULL)
		return -1;
	s->ord = no;
	s->cap = ncap;
	return 0;
}

/* Reads one of new/ and cur/: names, types and inode numbers, no stat
 * unless the file system does not give the type. */
static int
scan_dir(struct scan *s, int which)
{
	struct maildir *md = s->md;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(md->dirfd, subdir[which], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		size_t len, ul;
		struct stat st;
		struct msg *m;
		uint8_t flags = which ? MSG_IN_CUR : 0;

		if (de->d_name[0] == '.')
			continue;
		len = strlen(de->d_name);
		if (len > LIMIT_MAILDIR_NAME || (ul = maildir_uniq_len(de->d_name, len)) == 0)
			continue;
#ifdef DT_UNKNOWN
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;	/* a directory, symlink, FIFO...: not a message */
		if (de->d_type == DT_UNKNOWN)
#endif
		{
			md->stats++;
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
			    !S_ISREG(st.st_mode))
				continue;
			flags |= MSG_STAT;
		}
		if (md->count == LIMIT_MESSAGES) {
			s->full = true;
			break;
		}
		if ((md->count >= s->cap || s->ord == NULL) && grow(s) == -1)
			goto fail;
		m = &md->msgs[md->count];
		if (arena_add(md, de->d_name, len, &m->name_off) == -1)
			goto fail;
		m->name_len = (uint16_t)len;
		m->uniq_len = (uint16_t)ul;
		m->flags = flags;
		m->size = 0;
		m->ino = (uint64_t)de->d_ino;
		if (flags & MSG_STAT) {
			m->st_size = (uint64_t)st.st_size;
			m->mtime = mtime_ns(&st);
		} else {
			m->st_size = 0;
			m->mtime = 0;
		}
		s->ord[md->count].delivery = maildir_delivery(de->d_name, ul);
		s->ord[md->count].idx = md->count;
		md->count++;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	return 0;
fail:
	closedir(d);
	return -1;
}

/* Order of two unique parts: by delivery time, then octets, then length.
 * The cache is written in this order, so reading it is a merge. */
static int
cmp_uniq(uint64_t da, const char *a, size_t la, uint64_t db, const char *b, size_t lb)
{
	int c;

	if (da != db)
		return da < db ? -1 : 1;
	c = memcmp(a, b, la < lb ? la : lb);
	if (c != 0)
		return c;
	return la < lb ? -1 : la > lb;
}

static const struct maildir *sort_md;

static int
cmp_order(const void *pa, const void *pb)
{
	const struct order *a = pa, *b = pb;
	const struct msg *x = &sort_md->msgs[a->idx], *y = &sort_md->msgs[b->idx];

	if (a->delivery != b->delivery)
		return a->delivery < b->delivery ? -1 : 1;
	return cmp_uniq(0, sort_md->arena + x->name_off, x->uniq_len,
	    0, sort_md->arena + y->name_off, y->uniq_len);
}

/* Sorts ord[0..n) by delivery time with an LSD radix sort over the octets
 * that differ between keys (three or four for real time stamps), then each
 * run of equal times by name with qsort: O(n) for the usual Maildir,
 * O(n log n) at worst (every name without a time). */
static int
sort_order(struct maildir *md, struct order *ord, uint32_t n)
{
	uint64_t all_or = 0, all_and = UINT64_MAX, vary;
	struct order *tmp, *src = ord, *dst;
	uint32_t i, j;

	for (i = 0; i < n; i++) {
		all_or |= ord[i].delivery;
		all_and &= ord[i].delivery;
	}
	vary = all_or ^ all_and;
	tmp = malloc((size_t)n * sizeof(*tmp));
	if (tmp == NULL)
		return -1;
	dst = tmp;
	for (unsigned shift = 0; shift < 64; shift += 8) {
		uint32_t count[256] = { 0 }, pos = 0;

		if (((vary >> shift) & 0xff) == 0)
			continue;
		for (i = 0; i < n; i++)
			count[(src[i].delivery >> shift) & 0xff]++;
		for (i = 0; i < 256; i++) {
			uint32_t c = count[i];

			count[i] = pos;
			pos += c;
		}
		for (i = 0; i < n; i++)
			dst[count[(src[i].delivery >> shift) & 0xff]++] = src[i];
		struct order *t = src;

		src = dst;
		dst = t;
	}
	if (src != ord)
		memcpy(ord, src, (size_t)n * sizeof(*ord));
	free(tmp);
	sort_md = md;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && ord[j].delivery == ord[i].delivery; j++)
			;
		if (j - i > 1)
			qsort(ord + i, j - i, sizeof(*ord), cmp_order);
	}
	return 0;
}

/* Puts the messages in maildrop order, their names in the arena in the
 * same order (later passes then read memory front to back), and drops a
 * new/ copy of a message that is also in cur/: another agent's new/ -> cur/
 * move caught half way (equal unique parts sort together).  *deliv_r gets
 * each message's delivery time. */
static int
sort_msgs(struct scan *s, uint64_t **deliv_r)
{
	struct maildir *md = s->md;
	struct order *ord = s->ord;
	struct msg *sorted;
	uint64_t *deliv;
	char *arena;
	size_t alen = 0;
	uint32_t i, j, n = 0;

	*deliv_r = NULL;
	if (md->count == 0 || ord == NULL)
		return 0;
	if (sort_order(md, ord, md->count) == -1)
		return -1;
	sorted = malloc((size_t)md->count * sizeof(*sorted));
	deliv = malloc((size_t)md->count * sizeof(*deliv));
	arena = malloc(md->arena_len ? md->arena_len : 1);
	if (sorted == NULL || deliv == NULL || arena == NULL) {
		free(sorted);
		free(deliv);
		free(arena);
		return -1;
	}
	for (i = 0; i < md->count; i = j) {
		const struct msg *first = &md->msgs[ord[i].idx];
		bool in_cur = false;

		for (j = i; j < md->count; j++) {
			const struct msg *m = &md->msgs[ord[j].idx];

			if (j > i && (ord[j].delivery != ord[i].delivery ||
			    m->uniq_len != first->uniq_len ||
			    memcmp(md->arena + m->name_off, md->arena + first->name_off, m->uniq_len) != 0))
				break;
			in_cur |= (m->flags & MSG_IN_CUR) != 0;
		}
		for (uint32_t k = i; k < j; k++) {
			const struct msg *m = &md->msgs[ord[k].idx];

			if (in_cur && !(m->flags & MSG_IN_CUR))
				continue;
			sorted[n] = *m;
			sorted[n].name_off = (uint32_t)alen;
			memcpy(arena + alen, md->arena + m->name_off, (size_t)m->name_len + 1);
			alen += (size_t)m->name_len + 1;
			deliv[n] = ord[k].delivery;
			n++;
		}
	}
	free(md->msgs);
	free(md->arena);
	md->msgs = sorted;
	md->arena = arena;
	md->arena_cap = md->arena_len ? md->arena_len : 1;
	md->arena_len = alen;
	md->count = n;
	*deliv_r = deliv;
	return 0;
}

/* Sizes message m from the file: a stat for a fitting ,W= field, else
 * open and read.  -1 when the file is gone or is not a regular file. */
static int
size_from_file(struct maildir *md, const int sub[2], struct msg *m)
{
	const char *name = maildir_name(md, (uint32_t)(m - md->msgs));
	int dfd = sub[m->flags & MSG_IN_CUR ? 1 : 0];
	uint64_t w_size;
	struct stat st;
	int fd;

	if (maildir_name_wsize(name, m->uniq_len, &w_size)) {
		if (!(m->flags & MSG_STAT)) {
			md->stats++;
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
				return -1;
			m->st_size = (uint64_t)st.st_size;
			m->mtime = mtime_ns(&st);
			m->flags |= MSG_STAT;
		}
		/* Written by the delivery agent; used when it fits the file. */
		if (sizecache_plausible(w_size, m->st_size)) {
			m->size = w_size;
			md->sized_by_name++;
			return 0;
		}
	}
	/* O_NOATIME: sizing is not reading the mail (owner only: else EPERM). */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOATIME);
	if (fd == -1 && errno == EPERM)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT || errno == ELOOP)
			return -1;
		/* Unreadable (EACCES...): its file size stands in for now. */
		if (!(m->flags & MSG_STAT) && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			m->st_size = (uint64_t)st.st_size;
			m->mtime = mtime_ns(&st);
		}
		return 1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	m->st_size = (uint64_t)st.st_size;
	m->mtime = mtime_ns(&st);
	m->flags |= MSG_STAT;
	if (size_file(fd, m->st_size, &m->size) == -1) {
		close(fd);
		return 1;
	}
	close(fd);
	md->sized_by_reading++;
	return 0;
}

static bool
cacheable(const struct maildir *md, uint32_t idx)
{
	const struct msg *m = &md->msgs[idx];

	return !(m->flags & MSG_NOCACHE) && m->mtime >= 0 &&
	    sizecache_key_ok(maildir_name(md, idx), m->uniq_len);
}

static int
write_cache(struct maildir *md)
{
	struct sizecache_writer w;

	sizecache_writer_init(&w);
	for (uint32_t i = 0; i < md->count; i++) {
		const struct msg *m = &md->msgs[i];

		if (!(m->flags & MSG_NOCACHE))
			sizecache_writer_put(&w, maildir_name(md, i), m->uniq_len,
			    m->ino, m->st_size, m->mtime, m->size);
	}
	return sizecache_writer_commit(&w, md->dirfd, MAILDIR_CACHE_NAME);
}

/* Sizes every message: the cache entries are merged in (both are in
 * maildrop order), the rest comes from the files.  Returns what happened to
 * the cache file, for the log. */
static const char *
size_all(struct maildir *md, const uint64_t *deliv)
{
	struct sizecache_reader r;
	struct sizecache_entry e;
	uint64_t e_delivery = 0;
	uint32_t i, n, matched = 0, want = 0;
	int sub[2] = { -1, -1 };
	bool have;

	sizecache_reader_open(&r, md->dirfd, MAILDIR_CACHE_NAME);
	have = sizecache_reader_next(&r, &e);
	if (have)
		e_delivery = maildir_delivery(r.buf + e.key_off, e.key_len);
	for (i = 0; deliv != NULL && i < md->count; i++) {
		struct msg *m = &md->msgs[i];
		const char *name = maildir_name(md, i);
		uint64_t delivery = deliv[i];
		int c = 1, rc;

		while (have && (c = cmp_uniq(e_delivery, r.buf + e.key_off, e.key_len,
		    delivery, name, m->uniq_len)) < 0) {
			have = sizecache_reader_next(&r, &e);
			if (have)
				e_delivery = maildir_delivery(r.buf + e.key_off, e.key_len);
		}
		if (have && c == 0 && e.ino == m->ino && sizecache_plausible(e.size, e.st_size) &&
		    (!(m->flags & MSG_STAT) || (e.st_size == m->st_size && e.mtime == m->mtime))) {
			m->size = e.size;
			m->st_size = e.st_size;
			m->mtime = e.mtime;
			md->sized_by_cache++;
			matched++;
			have = sizecache_reader_next(&r, &e);
			if (have)
				e_delivery = maildir_delivery(r.buf + e.key_off, e.key_len);
			continue;
		}
		if (sub[0] == -1) {
			sub[0] = openat(md->dirfd, subdir[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			sub[1] = openat(md->dirfd, subdir[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		rc = size_from_file(md, sub, m);
		if (rc == -1) {
			m->flags |= MSG_GONE;	/* vanished since readdir */
		} else if (rc == 1) {
			/* Unreadable now: RETR will say so.  Report the
			 * file's own size meanwhile, and cache nothing. */
			m->size = m->st_size;
			m->flags |= MSG_NOCACHE;
		}
	}
	if (sub[0] != -1)
		close(sub[0]);
	if (sub[1] != -1)
		close(sub[1]);
	/* Drop the vanished ones, keeping the order. */
	for (i = n = 0; i < md->count; i++)
		if (!(md->msgs[i].flags & MSG_GONE))
			md->msgs[n++] = md->msgs[i];
	md->count = n;
	for (i = 0; i < md->count; i++) {
		md->msgs[i].flags &= (uint8_t)~MSG_STAT;
		want += cacheable(md, i);
	}
	/* Rewrite only when the file would differ: an entry unused (message
	 * gone or changed), a message not in it, or a file not ours. */
	if (r.valid && !r.bad && matched == r.count && matched == want) {
		sizecache_reader_close(&r);
		return "kept";
	}
	if (!r.present && want == 0) {
		sizecache_reader_close(&r);
		return "none";
	}
	sizecache_reader_close(&r);
	return write_cache(md) == 0 ? "written" : "not-written";
}

static int
take_lock(struct maildir *md)
{
	struct flock fl;

	md->lockfd = openat(md->dirfd, MAILDIR_LOCK_NAME,
	    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (md->lockfd == -1)
		return -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(md->lockfd, F_SETLK, &fl) == -1) {
		if (errno == EACCES || errno == EAGAIN) {
			close(md->lockfd);
			md->lockfd = -1;
			return 1;
		}
		return -1;
	}
	return 0;
}

enum maildir_err
maildir_open(struct maildir *md, const char *path, bool lock)
{
	const char *cache;
	uint64_t *deliv = NULL;
	struct scan s;
	int r;

	memset(md, 0, sizeof(*md));
	md->lockfd = -1;
	md->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (md->dirfd == -1) {
		if (errno == ENOENT) {
			char clean[LIMIT_PATH];

			log_sanitize_path(clean, sizeof(clean), path);
			log_info("maildir %s does not exist: empty maildrop", clean);
			return MAILDIR_OK;
		}
		return MAILDIR_FAIL;
	}
	if (lock) {
		r = take_lock(md);
		if (r == 1)
			return MAILDIR_IN_USE;
		if (r == -1)
			return MAILDIR_FAIL;
	}
	memset(&s, 0, sizeof(s));
	s.md = md;
	if (scan_dir(&s, 1) == -1 || (!s.full && scan_dir(&s, 0) == -1) ||
	    sort_msgs(&s, &deliv) == -1) {
		free(s.ord);
		return MAILDIR_FAIL;
	}
	free(s.ord);
	if (s.full)
		log_warnx("maildir %s: more than %u messages, serving the first found",
		    path, (unsigned)LIMIT_MESSAGES);
	cache = size_all(md, deliv);
	free(deliv);
	for (uint32_t i = 0; i < md->count; i++)
		md->total += md->msgs[i].size;
	/* What the login cost: how each size was found, how many files were
	 * stat'ed, and what became of the cache file. */
	log_info("maildir: messages=%" PRIu32 " octets=%" PRIu64 " from-cache=%" PRIu32
	    " from-name=%" PRIu32 " from-file=%" PRIu32 " stats=%" PRIu32 " cache=%s",
	    md->count, md->total, md->sized_by_cache, md->sized_by_name,
	    md->sized_by_reading, md->stats, cache);
	return MAILDIR_OK;
}

void
maildir_close(struct maildir *md)
{
	if (md->cache_dirty && md->dirfd != -1)
		write_cache(md);
	if (md->dirfd != -1)
		close(md->dirfd);
	if (md->lockfd != -1)
		close(md->lockfd);
	free(md->msgs);
	free(md->arena);
	memset(md, 0, sizeof(*md));
	md->dirfd = md->lockfd = -1;
}

void
maildir_uidl(const struct maildir *md, uint32_t idx, char out[LIMIT_UIDL_LEN + 1])
{
	maildir_uidl_of(maildir_name(md, idx), md->msgs[idx].uniq_len, out);
}

/* Looks for message idx under another name (renamed by another agent):
 * updates the in-memory name.  0 when found, -1 (ENOENT) when gone. */
static int
find_renamed(struct maildir *md, uint32_t idx)
{
	struct msg *m = &md->msgs[idx];
	char uniq[LIMIT_MAILDIR_NAME + 1];
	size_t ul = m->uniq_len;
	int which;

	memcpy(uniq, maildir_name(md, idx), ul);
	for (which = 1; which >= 0; which--) {
		struct dirent *de;
		DIR *d;
		int fd;

		fd = openat(md->dirfd, subdir[which], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd == -1)
			continue;
		d = fdopendir(fd);
		if (d == NULL) {
			close(fd);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			size_t len = strlen(de->d_name);

			if (len < ul || memcmp(de->d_name, uniq, ul) != 0 ||
			    (len > ul && de->d_name[ul] != ':') || len > LIMIT_MAILDIR_NAME)
				continue;
			if (arena_add(md, de->d_name, len, &m->name_off) == -1)
				break;
			m->name_len = (uint16_t)len;
			m->flags = (uint8_t)((m->flags & ~MSG_IN_CUR) | (which ? MSG_IN_CUR : 0));
			closedir(d);
			return 0;
		}
		closedir(d);
	}
	errno = ENOENT;
	return -1;
}

static void
msg_path(const struct maildir *md, uint32_t idx, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", subdir[md->msgs[idx].flags & MSG_IN_CUR ? 1 : 0],
	    maildir_name(md, idx));
}

/* The file open on fd is not the one message idx was sized for (rewritten
 * in place since): the session keeps the size it listed (RFC 1939 fixes the
 * maildrop for the session), but the cache entry goes, so that the next
 * session reads the file again. */
static void
stale(struct maildir *md, uint32_t idx)
{
	struct msg *m = &md->msgs[idx];

	if (!(m->flags & MSG_NOCACHE)) {
		m->flags |= MSG_NOCACHE;
		md->cache_dirty = true;
	}
}

int
maildir_open_msg(struct maildir *md, uint32_t idx)
{
	char path[8 + LIMIT_MAILDIR_NAME];
	int fd, tries;

	if (md->dirfd == -1) {
		errno = ENOENT;
		return -1;
	}
	for (tries = 0; tries < 3; tries++) {
		msg_path(md, idx, path, sizeof(path));
		fd = openat(md->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd != -1) {
			/* Back to blocking reads: a FIFO planted in the Maildir
			 * was refused by O_NONBLOCK above. */
			int fl = fcntl(fd, F_GETFL);
			struct stat st;

			if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
				close(fd);
				errno = EINVAL;
				return -1;
			}
			if (fl != -1)
				fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
			if ((uint64_t)st.st_size != md->msgs[idx].st_size ||
			    mtime_ns(&st) != md->msgs[idx].mtime)
				stale(md, idx);
			return fd;
		}
		if (errno != ENOENT || find_renamed(md, idx) == -1)
			return -1;
	}
	errno = ENOENT;
	return -1;
}

static void
update_maildirsize(struct maildir *md, uint64_t octets, uint32_t count)
{
	char line[64];
	int fd, n;

	if (count == 0)
		return;
	/* Maildir++: every program that removes mail appends its change. */
	fd = openat(md->dirfd, "maildirsize", O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return;
	n = snprintf(line, sizeof(line), "-%" PRIu64 " -%" PRIu32 "\n", octets, count);
	if (write(fd, line, (size_t)n) != n)
		log_warn("maildirsize not updated");
	close(fd);
}

int
maildir_commit(struct maildir *md, bool flag_updates, struct maildir_commit_stats *st)
{
	char path[8 + LIMIT_MAILDIR_NAME], npath[16 + LIMIT_MAILDIR_NAME], clean[8 + LIMIT_MAILDIR_NAME];
	char nname[8 + LIMIT_MAILDIR_NAME];
	uint64_t disk_octets = 0;
	uint32_t i;

	memset(st, 0, sizeof(*st));
	if (md->dirfd == -1)
		return 0;
	for (i = 0; i < md->count; i++) {
		struct msg *m = &md->msgs[i];
		int tries;

		if (m->flags & MSG_DELETED) {
			for (tries = 0; tries < 3; tries++) {
				struct stat sb;

				msg_path(md, i, path, sizeof(path));
				if (fstatat(md->dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == -1)
					sb.st_size = 0;
				if (unlinkat(md->dirfd, path, 0) == 0) {
					st->deleted++;
					st->deleted_octets += m->size;
					disk_octets += (uint64_t)sb.st_size;
					break;
				}
				if (errno != ENOENT) {
					int e = errno;

					/* Names are whatever the delivery agent chose. */
					log_sanitize_path(clean, sizeof(clean), path);
					errno = e;
					log_warn("cannot remove %s", clean);
					st->delete_failed++;
					break;
				}
				if (find_renamed(md, i) == -1) {
					/* Another session removed it: it is deleted. */
					st->deleted++;
					st->deleted_octets += m->size;
					break;
				}
			}
			continue;
		}
		if (!flag_updates || !(m->flags & MSG_RETR))
			continue;
		for (tries = 0; tries < 3; tries++) {
			if (!maildir_seen_name(maildir_name(md, i), m->name_len, nname, sizeof(nname)))
				break;
			msg_path(md, i, path, sizeof(path));
			snprintf(npath, sizeof(npath), "cur/%s", nname);
			if (renameat(md->dirfd, path, md->dirfd, npath) == 0)
				break;
			if (errno != ENOENT) {
				int e = errno;

				log_sanitize_path(clean, sizeof(clean), path);
				errno = e;
				log_warn("cannot mark %s seen", clean);
				break;
			}
			if (find_renamed(md, i) == -1)
				break;
		}
	}
	update_maildirsize(md, disk_octets, st->deleted);
	return st->delete_failed ? -1 : 0;
}
