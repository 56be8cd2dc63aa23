/* Sizing the maildrop at login: the size cache merged with the sorted messages, a fitting ,W= field, else reading the file through the RETR encoder; runs as the mailbox owner. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir-int.h"
#include "proto.h"
#include "sizecache.h"

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

/* Sizes message m from the file: a fitting ,W= field and the file's last
 * octet, else reading it all.  -1 when the file is gone or is not a regular
 * file, 1 when it cannot be read. */
static int
size_from_file(struct maildir *md, const int sub[2], struct msg *m)
{
	const char *name = maildir_name(md, (uint32_t)(m - md->msgs));
	int dfd = sub[m->flags & MSG_IN_CUR ? 1 : 0];
	uint64_t w_size;
	bool have_w;
	struct stat st;
	int fd;

	have_w = maildir_name_wsize(name, m->uniq_len, &w_size);
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
			m->mtime = maildir_mtime_ns(&st);
		}
		return 1;
	}
	if (have_w && !(m->flags & MSG_STAT))
		md->stats++;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	m->st_size = (uint64_t)st.st_size;
	m->mtime = maildir_mtime_ns(&st);
	m->flags |= MSG_STAT;
	if (have_w) {
		/* W= (the delivery agent's) counts each line end as CRLF but
		 * not the CRLF sent after a last line without one: one octet
		 * of the file tells. */
		char last = '\n';

		if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
			last = '\r';
		if (last != '\n' && w_size <= UINT64_MAX - 2)
			w_size += 2;
		/* A final bare CR: whether W= counted it as a line end is the
		 * agent's guess; the file is read instead. */
		if (last != '\r' && sizecache_plausible(w_size, m->st_size)) {
			close(fd);
			m->size = w_size;
			md->sized_by_name++;
			return 0;
		}
	}
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

/* Cache entries in arrival order: how the cache is written, and how the
 * sorted messages are merged with it. */
struct centry {
	uint64_t		arrival;
	struct sizecache_entry	e;
};

static const char *csort_buf;

static int
cmp_centry(const void *pa, const void *pb)
{
	const struct centry *a = pa, *b = pb;

	return maildir_cmp_uniq(a->arrival, csort_buf + a->e.key_off, a->e.key_len,
	    b->arrival, csort_buf + b->e.key_off, b->e.key_len);
}

static const struct maildir *wsort_md;

static int
cmp_arrival(const void *pa, const void *pb)
{
	const struct msg *x = &wsort_md->msgs[*(const uint32_t *)pa];
	const struct msg *y = &wsort_md->msgs[*(const uint32_t *)pb];
	const char *a = wsort_md->arena + x->name_off, *b = wsort_md->arena + y->name_off;

	return maildir_cmp_uniq(maildir_arrival(a, x->uniq_len), a, x->uniq_len,
	    maildir_arrival(b, y->uniq_len), b, y->uniq_len);
}

int
maildir_write_cache(struct maildir *md)
{
	struct sizecache_writer w;
	uint32_t *perm = NULL;

	/* The file is in arrival order whatever order the session serves. */
	if (md->reordered && md->count > 0) {
		perm = malloc((size_t)md->count * sizeof(*perm));
		if (perm == NULL)
			return -1;
		for (uint32_t i = 0; i < md->count; i++)
			perm[i] = i;
		wsort_md = md;
		qsort(perm, md->count, sizeof(*perm), cmp_arrival);
	}
	sizecache_writer_init(&w);
	for (uint32_t k = 0; k < md->count; k++) {
		uint32_t i = perm != NULL ? perm[k] : k;
		const struct msg *m = &md->msgs[i];

		if (!(m->flags & MSG_NOCACHE))
			sizecache_writer_put_uidl(&w, maildir_name(md, i), m->uniq_len,
			    m->ino, m->st_size, m->mtime, m->size,
			    md->arena + m->uidl_off, m->uidl_len);
	}
	free(perm);
	return sizecache_writer_commit(&w, md->dirfd, MAILDIR_CACHE_NAME);
}

/* Reads every cache entry, in arrival order: a cache written by an older
 * version in another order is sorted once.  NULL when there are none. */
static struct centry *
read_cache(struct sizecache_reader *r, uint32_t *n_r)
{
	struct centry *c;
	struct sizecache_entry e;
	uint32_t n = 0;
	bool sorted = true;

	*n_r = 0;
	if (!r->valid || r->count == 0)
		return NULL;
	c = malloc((size_t)r->count * sizeof(*c));
	if (c == NULL)
		return NULL;
	while (n < r->count && sizecache_reader_next(r, &e)) {
		c[n].e = e;
		c[n].arrival = maildir_arrival(r->buf + e.key_off, e.key_len);
		if (n > 0 && sorted) {
			csort_buf = r->buf;
			sorted = cmp_centry(&c[n - 1], &c[n]) <= 0;
		}
		n++;
	}
	if (!sorted) {
		csort_buf = r->buf;
		qsort(c, n, sizeof(*c), cmp_centry);
	}
	*n_r = n;
	return c;
}

/* The cache entries are merged in (both in arrival order); a message whose
 * unique part has an entry keeps the UIDL recorded there whatever became of
 * its file; the sizes come from the entry when it is for the very same file,
 * else from the file.  Returns what became of the cache ("kept", "none"),
 * or NULL when it must be rewritten. */
const char *
maildir_size_all(struct maildir *md, const uint64_t *deliv)
{
	struct sizecache_reader r;
	struct centry *ents;
	uint32_t i, n, k = 0, nents, matched = 0, want = 0;
	int sub[2] = { -1, -1 };

	sizecache_reader_open(&r, md->dirfd, MAILDIR_CACHE_NAME);
	ents = read_cache(&r, &nents);
	for (i = 0; deliv != NULL && i < md->count; i++) {
		struct msg *m = &md->msgs[i];
		const struct sizecache_entry *e = NULL;
		int c = 1, rc;

		while (k < nents && (c = maildir_cmp_uniq(ents[k].arrival, r.buf + ents[k].e.key_off,
		    ents[k].e.key_len, deliv[i], maildir_name(md, i), m->uniq_len)) < 0)
			k++;
		if (k < nents && c == 0) {
			e = &ents[k++].e;
			m->uidl_src = UIDL_KEPT;
			if (e->uidl_len > 0 &&
			    maildir_arena_add(md, r.buf + e->uidl_off, e->uidl_len, &m->uidl_off) == 0)
				m->uidl_len = e->uidl_len;
		}
		if (e != NULL && e->ino == m->ino && sizecache_plausible(e->size, e->st_size) &&
		    (!(m->flags & MSG_STAT) || (e->st_size == m->st_size && e->mtime == m->mtime))) {
			m->size = e->size;
			m->st_size = e->st_size;
			m->mtime = e->mtime;
			md->sized_by_cache++;
			matched++;
			continue;
		}
		if (sub[0] == -1) {
			sub[0] = openat(md->dirfd, maildir_subdir[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			sub[1] = openat(md->dirfd, maildir_subdir[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
	free(ents);
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
	return NULL;
}
