/* The maildrop's life: open (lock, scan, size, log), UIDL, opening one message and following another agent's renames, close; runs as the mailbox owner. */
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
#include "maildir-int.h"

const char *const maildir_subdir[2] = { "new", "cur" };

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
maildir_open(struct maildir *md, const char *path, const struct maildir_config *cfg)
{
	const char *cache;
	uint64_t *deliv = NULL;
	bool full;
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
	if (cfg->lock) {
		r = take_lock(md);
		if (r == 1)
			return MAILDIR_IN_USE;
		if (r == -1)
			return MAILDIR_FAIL;
	}
	if (maildir_scan(md, &full, &deliv) == -1)
		return MAILDIR_FAIL;
	if (full) {
		char clean[LIMIT_PATH];

		log_sanitize_path(clean, sizeof(clean), path);
		log_warnx("maildir %s: more than %u messages, serving the first found",
		    clean, (unsigned)LIMIT_MESSAGES);
	}
	cache = maildir_size_all(md, deliv);
	free(deliv);
	/* The UIDLs answered are part of the cache: it is written after. */
	if (maildir_assign_uidls(md, cfg) || cache == NULL)
		cache = maildir_write_cache(md) == 0 ? "written" : "not-written";
	for (uint32_t i = 0; i < md->count; i++)
		md->total += md->msgs[i].size;
	/* What the login cost: how each size was found, how many files were
	 * stat'ed, what became of the cache file, and where the UIDLs came
	 * from. */
	log_info("maildir: messages=%" PRIu32 " octets=%" PRIu64 " from-cache=%" PRIu32
	    " from-name=%" PRIu32 " from-file=%" PRIu32 " stats=%" PRIu32 " cache=%s"
	    " uidl-kept=%" PRIu32 " uidl-dovecot=%" PRIu32 " uidl-courier=%" PRIu32
	    " uidl-own=%" PRIu32,
	    md->count, md->total, md->sized_by_cache, md->sized_by_name,
	    md->sized_by_reading, md->stats, cache, md->uidl_from[UIDL_KEPT],
	    md->uidl_from[UIDL_DOVECOT], md->uidl_from[UIDL_COURIER], md->uidl_from[UIDL_OWN]);
	return MAILDIR_OK;
}

void
maildir_close(struct maildir *md)
{
	if (md->cache_dirty && md->dirfd != -1)
		maildir_write_cache(md);
	if (md->dirfd != -1)
		close(md->dirfd);
	if (md->lockfd != -1)
		close(md->lockfd);
	free(md->msgs);
	free(md->arena);
	memset(md, 0, sizeof(*md));
	md->dirfd = md->lockfd = -1;
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

		fd = openat(md->dirfd, maildir_subdir[which], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
			if (maildir_arena_add(md, de->d_name, len, &m->name_off) == -1)
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

int
maildir_with_renames(struct maildir *md, uint32_t idx, maildir_path_op *op, void *arg,
    bool *gone_r)
{
	char path[8 + LIMIT_MAILDIR_NAME];

	if (gone_r != NULL)
		*gone_r = false;
	for (int tries = 0; tries < LIMIT_RENAME_TRIES; tries++) {
		snprintf(path, sizeof(path), "%s/%s",
		    maildir_subdir[md->msgs[idx].flags & MSG_IN_CUR ? 1 : 0], maildir_name(md, idx));
		if (op(md, idx, path, arg) == 0)
			return 0;
		if (errno != ENOENT)
			return -1;
		if (find_renamed(md, idx) == -1) {
			if (gone_r != NULL)
				*gone_r = true;
			errno = ENOENT;
			return -1;
		}
	}
	errno = ENOENT;
	return -1;
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

static int
open_op(struct maildir *md, uint32_t idx, const char *path, void *arg)
{
	int *fd_r = arg, fd, fl;
	struct stat st;

	fd = openat(md->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return -1;
	/* Back to blocking reads: a FIFO planted in the Maildir was refused
	 * by O_NONBLOCK above. */
	fl = fcntl(fd, F_GETFL);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (fl != -1)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if ((uint64_t)st.st_size != md->msgs[idx].st_size ||
	    maildir_mtime_ns(&st) != md->msgs[idx].mtime)
		stale(md, idx);
	*fd_r = fd;
	return 0;
}

int
maildir_open_msg(struct maildir *md, uint32_t idx)
{
	int fd = -1;

	if (md->dirfd == -1) {
		errno = ENOENT;
		return -1;
	}
	if (maildir_with_renames(md, idx, open_op, &fd, NULL) == -1)
		return -1;
	return fd;
}
