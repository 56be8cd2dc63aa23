/* QUIT in TRANSACTION: unlinking deleted messages, the seen flag for retrieved ones, the Maildir++ quota file; runs as the mailbox owner. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "maildir-int.h"

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

struct unlink_arg {
	uint64_t	disk_octets;	/* the file's size, for maildirsize */
};

static int
unlink_op(struct maildir *md, uint32_t idx, const char *path, void *arg)
{
	struct unlink_arg *a = arg;
	struct stat sb;

	(void)idx;
	if (fstatat(md->dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		sb.st_size = 0;
	if (unlinkat(md->dirfd, path, 0) == -1)
		return -1;
	a->disk_octets = (uint64_t)sb.st_size;
	return 0;
}

static int
seen_op(struct maildir *md, uint32_t idx, const char *path, void *arg)
{
	char nname[8 + LIMIT_MAILDIR_NAME], npath[16 + LIMIT_MAILDIR_NAME];

	(void)arg;
	if (!maildir_seen_name(maildir_name(md, idx), md->msgs[idx].name_len, nname, sizeof(nname)))
		return 0;	/* has it already, or an info we leave alone */
	snprintf(npath, sizeof(npath), "cur/%s", nname);
	return renameat(md->dirfd, path, md->dirfd, npath);
}

/* Logs a failure on message idx; names are whatever the delivery agent chose. */
static void
warn_msg(const struct maildir *md, uint32_t idx, const char *what)
{
	char path[8 + LIMIT_MAILDIR_NAME], clean[8 + LIMIT_MAILDIR_NAME];
	int e = errno;

	snprintf(path, sizeof(path), "%s/%s",
	    maildir_subdir[md->msgs[idx].flags & MSG_IN_CUR ? 1 : 0], maildir_name(md, idx));
	log_sanitize_path(clean, sizeof(clean), path);
	errno = e;
	log_warn("%s %s", what, clean);
}

int
maildir_commit(struct maildir *md, bool flag_updates, struct maildir_commit_stats *st)
{
	uint64_t disk_octets = 0;
	uint32_t i;
	bool gone;

	memset(st, 0, sizeof(*st));
	if (md->dirfd == -1)
		return 0;
	for (i = 0; i < md->count; i++) {
		struct msg *m = &md->msgs[i];

		if (m->flags & MSG_DELETED) {
			struct unlink_arg a = { 0 };

			if (maildir_with_renames(md, i, unlink_op, &a, &gone) == 0) {
				st->deleted++;
				st->deleted_octets += m->size;
				disk_octets += a.disk_octets;
			} else if (gone) {
				/* Another session removed it: it is deleted. */
				st->deleted++;
				st->deleted_octets += m->size;
			} else if (errno != ENOENT) {
				warn_msg(md, i, "cannot remove");
				st->delete_failed++;
			}
			continue;
		}
		if (!flag_updates || !(m->flags & MSG_RETR))
			continue;
		if (maildir_with_renames(md, i, seen_op, NULL, &gone) == -1 && errno != ENOENT)
			warn_msg(md, i, "cannot mark seen");
	}
	update_maildirsize(md, disk_octets, st->deleted);
	return st->delete_failed ? -1 : 0;
}
