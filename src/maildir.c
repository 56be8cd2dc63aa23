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

int
maildir_size_fd(int fd, uint64_t *size_r)
{
	static char in[LIMIT_FILE_CHUNK], out[ENC_OUT_MAX(LIMIT_FILE_CHUNK)];
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
	}
	enc_finish(&e, out);
	*size_r = e.size;
	return 0;
}

/* ---- scanning ---- */

static int
arena_add(struct maildir *md, const char *name, size_t len, uint32_t *off_r)
{
	if (md->arena_cap - md->arena_len < len + 1) {
		size_t ncap = md->arena_cap ? md->arena_cap * 2 : 65536;
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

struct scan {
	struct maildir		*md;
	uint32_t		 cap;
	uint32_t		*seen;		/* hash of unique parts: index + 1 */
	uint32_t		 seen_mask;
};

static int
grow(struct scan *s)
{
	uint32_t ncap = s->cap ? s->cap * 2 : 1024;
	struct msg *nm;

	if (s->cap >= LIMIT_MESSAGES) {
		errno = EFBIG;
		return -1;
	}
	nm = realloc(s->md->msgs, (size_t)ncap * sizeof(*nm));
	if (nm == NULL)
		return -1;
	s->md->msgs = nm;
	s->cap = ncap;
	return 0;
}

static uint32_t
uniq_hash(const char *p, size_t len)
{
	return (uint32_t)sizecache_fnv64(p, len, FNV64_BASIS);
}

/* The set of unique parts seen, to drop a duplicate left behind by another
 * agent's new/ -> cur/ move caught half way. */
static int
seen_rebuild(struct scan *s)
{
	struct maildir *md = s->md;
	uint32_t cap = 1024, i, slot;

	while (cap < md->count * 2 + 2)
		cap <<= 1;
	free(s->seen);
	s->seen = calloc(cap, sizeof(*s->seen));
	if (s->seen == NULL)
		return -1;
	s->seen_mask = cap - 1;
	for (i = 0; i < md->count; i++) {
		slot = uniq_hash(maildir_name(md, i), md->msgs[i].uniq_len) & s->seen_mask;
		while (s->seen[slot])
			slot = (slot + 1) & s->seen_mask;
		s->seen[slot] = i + 1;
	}
	return 0;
}

static bool
seen_has(const struct scan *s, const char *name, size_t ul)
{
	uint32_t slot = uniq_hash(name, ul) & s->seen_mask, i;

	while ((i = s->seen[slot]) != 0) {
		const struct msg *m = &s->md->msgs[i - 1];

		if (m->uniq_len == ul && memcmp(maildir_name(s->md, i - 1), name, ul) == 0)
			return true;
		slot = (slot + 1) & s->seen_mask;
	}
	return false;
}

static int
scan_dir(struct scan *s, int which)
{
	struct maildir *md = s->md;
	struct dirent *de;
	struct stat st;
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
		size_t len = strlen(de->d_name), ul;
		struct msg *m;

		if (de->d_name[0] == '.' || len > LIMIT_MAILDIR_NAME)
			continue;
		if (md->count == LIMIT_MESSAGES)
			break;
		ul = maildir_uniq_len(de->d_name, len);
		if (ul == 0)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;	/* vanished, or not a message */
		if (which == 0 && s->seen && seen_has(s, de->d_name, ul))
			continue;	/* already in cur/ under its new name */
		if (md->count == s->cap && grow(s) == -1)
			goto fail;
		m = &md->msgs[md->count];
		memset(m, 0, sizeof(*m));
		if (arena_add(md, de->d_name, len, &m->name_off) == -1)
			goto fail;
		m->name_len = (uint16_t)len;
		m->uniq_len = (uint16_t)ul;
		m->flags = which ? MSG_IN_CUR : 0;
		m->delivery = maildir_delivery(de->d_name, ul);
		m->st_size = (uint64_t)st.st_size;
		m->mtime = (int64_t)st.st_mtime;
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

static const struct maildir *sort_md;

static int
cmp_msg(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;
	size_t n;
	int c;

	if (x->delivery != y->delivery)
		return x->delivery < y->delivery ? -1 : 1;
	n = x->uniq_len < y->uniq_len ? x->uniq_len : y->uniq_len;
	c = memcmp(sort_md->arena + x->name_off, sort_md->arena + y->name_off, n);
	if (c != 0)
		return c;
	return (int)x->uniq_len - (int)y->uniq_len;
}

/* Sizes from the name, the cache or the file; rewrites the cache when it
 * was not exactly right. */
static void
size_all(struct maildir *md)
{
	struct sizecache cache;
	struct sizecache_writer w;
	uint32_t i;

	sizecache_load(&cache, md->dirfd, MAILDIR_CACHE_NAME);
	sizecache_writer_init(&w);
	for (i = 0; i < md->count; i++) {
		struct msg *m = &md->msgs[i];
		const char *name = maildir_name(md, i);
		uint64_t st_size = m->st_size, w_size;

		if (maildir_name_wsize(name, m->uniq_len, &w_size) &&
		    w_size >= st_size && w_size <= 2 * st_size + 2) {
			m->size = w_size;
			md->sized_by_name++;
		} else if (sizecache_lookup(&cache, name, m->uniq_len, st_size,
		    m->mtime, &m->size)) {
			md->sized_by_cache++;
		} else {
			char path[8 + LIMIT_MAILDIR_NAME];
			int fd;

			snprintf(path, sizeof(path), "%s/%s", subdir[m->flags & MSG_IN_CUR ? 1 : 0], name);
			fd = openat(md->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			if (fd == -1 || maildir_size_fd(fd, &m->size) == -1) {
				/* Unreadable now: RETR will say so.  Report the
				 * file's own size meanwhile. */
				m->size = st_size;
				if (fd != -1)
					close(fd);
				continue;
			}
			close(fd);
			md->sized_by_reading++;
		}
		sizecache_writer_add(&w, name, m->uniq_len, st_size, m->mtime, m->size);
	}
	/* Rewrite only when it would differ: a size was computed, or some
	 * entries belong to messages that are gone. */
	if (md->sized_by_reading > 0 || (cache.count != w.count && md->count > 0))
		sizecache_writer_commit(&w, md->dirfd, MAILDIR_CACHE_NAME);
	else
		free(w.buf);
	sizecache_free(&cache);
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
	struct scan s;
	int r;

	memset(md, 0, sizeof(*md));
	md->lockfd = -1;
	md->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (md->dirfd == -1) {
		if (errno == ENOENT) {
			log_info("maildir %s does not exist: empty maildrop", path);
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
	/* cur/ first, so that a message caught between new/ and cur/ by
	 * another agent is served once, under its cur/ name. */
	if (scan_dir(&s, 1) == -1 || seen_rebuild(&s) == -1 || scan_dir(&s, 0) == -1) {
		free(s.seen);
		return MAILDIR_FAIL;
	}
	free(s.seen);
	sort_md = md;
	if (md->count > 1)
		qsort(md->msgs, md->count, sizeof(*md->msgs), cmp_msg);
	size_all(md);
	for (uint32_t i = 0; i < md->count; i++)
		md->total += md->msgs[i].size;
	return MAILDIR_OK;
}

void
maildir_close(struct maildir *md)
{
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
	char path[8 + LIMIT_MAILDIR_NAME], npath[16 + LIMIT_MAILDIR_NAME];
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
					log_warn("cannot remove %s", path);
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
				log_warn("cannot mark %s seen", path);
				break;
			}
			if (find_renamed(md, i) == -1)
				break;
		}
	}
	update_maildirsize(md, disk_octets, st->deleted);
	return st->delete_failed ? -1 : 0;
}
