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
			m->mtime = maildir_mtime_ns(&st);
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
			m->mtime = maildir_mtime_ns(&st);
		}
		return 1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	m->st_size = (uint64_t)st.st_size;
	m->mtime = maildir_mtime_ns(&st);
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

int
maildir_write_cache(struct maildir *md)
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

/* The cache entries are merged in (both are in maildrop order), the rest
 * comes from the files. */
const char *
maildir_size_all(struct maildir *md, const uint64_t *deliv)
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

		while (have && (c = maildir_cmp_uniq(e_delivery, r.buf + e.key_off, e.key_len,
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
	return maildir_write_cache(md) == 0 ? "written" : "not-written";
}

