/* Scanning new/ and cur/ and sorting the messages into maildrop order; runs as the mailbox owner. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir-int.h"

int
maildir_arena_add(struct maildir *md, const char *name, size_t len, uint32_t *off_r)
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

	fd = openat(md->dirfd, maildir_subdir[which], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
		if (maildir_arena_add(md, de->d_name, len, &m->name_off) == -1)
			goto fail;
		m->name_len = (uint16_t)len;
		m->uniq_len = (uint16_t)ul;
		m->flags = flags;
		m->uidl_off = 0;
		m->uidl_len = 0;
		m->uidl_src = UIDL_OWN;
		m->size = 0;
		m->ino = (uint64_t)de->d_ino;
		if (flags & MSG_STAT) {
			m->st_size = (uint64_t)st.st_size;
			m->mtime = maildir_mtime_ns(&st);
		} else {
			m->st_size = 0;
			m->mtime = 0;
		}
		s->ord[md->count].delivery = maildir_arrival(de->d_name, ul);
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

int
maildir_cmp_uniq(uint64_t da, const char *a, size_t la, uint64_t db, const char *b, size_t lb)
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
	return maildir_cmp_uniq(0, sort_md->arena + x->name_off, x->uniq_len,
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

/* Whether message m's file is no longer under the name the scan read. */
static bool
gone(const struct maildir *md, const struct msg *m)
{
	char path[8 + LIMIT_MAILDIR_NAME];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", maildir_subdir[m->flags & MSG_IN_CUR ? 1 : 0],
	    md->arena + m->name_off);
	return fstatat(md->dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT;
}

/* Puts the messages in maildrop order, their names in the arena in the
 * same order (later passes then read memory front to back), and drops a
 * new/ copy of a message that is also in cur/ (another agent's new/ -> cur/
 * move caught half way: equal unique parts sort together), and an old name
 * of a message renamed during the read.  *deliv_r gets
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
		uint32_t in_cur = 0, left;

		for (j = i; j < md->count; j++) {
			const struct msg *m = &md->msgs[ord[j].idx];

			if (j > i && (ord[j].delivery != ord[i].delivery ||
			    m->uniq_len != first->uniq_len ||
			    memcmp(md->arena + m->name_off, md->arena + first->name_off, m->uniq_len) != 0))
				break;
			in_cur += (m->flags & MSG_IN_CUR) != 0;
		}
		left = in_cur ? in_cur : j - i;
		for (uint32_t k = i; k < j; k++) {
			const struct msg *m = &md->msgs[ord[k].idx];

			if (in_cur && !(m->flags & MSG_IN_CUR))
				continue;
			/* More than one name for a unique part: readdir() may
			 * return a message twice that another agent renamed
			 * (its flags) during the read, old name and new.  A
			 * name gone by now is dropped, unless every one is;
			 * two files that both exist are two messages. */
			if (left > 1 && gone(md, m)) {
				left--;
				continue;
			}
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

int
maildir_scan(struct maildir *md, bool *full_r, uint64_t **deliv_r)
{
	struct scan s;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	s.md = md;
	*deliv_r = NULL;
	/* new/ before cur/: a message another session or an IMAP server moves
	 * from new/ to cur/ between the two reads is then seen twice (sort_msgs
	 * keeps the cur/ copy), never missed, as it was with cur/ read first
	 * (tests/load.bats caught a kept message missing from a session's UIDL). */
	if (scan_dir(&s, 0) == -1 || (!s.full && scan_dir(&s, 1) == -1) ||
	    sort_msgs(&s, deliv_r) == -1)
		rc = -1;
	free(s.ord);
	*full_r = s.full;
	return rc;
}
