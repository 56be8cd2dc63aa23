/* What the parts of the maildrop (maildir*.c) share and nothing else includes: the sub-directories, the name arena, the scan, the sizing, the rename-following helper; runs as the mailbox owner. */
#ifndef MP_MAILDIR_INT_H
#define MP_MAILDIR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "maildir.h"

#ifndef O_NOATIME
#define O_NOATIME	0
/* maildir-uidl.c */
/* Gives every message without a recorded UIDL the previous server's (cfg)
 * or its own, makes them unique, and puts the messages the previous
 * server's file knows in its order.  true when a recorded UIDL had to
 * change (a duplicate), so the cache is rewritten. */
bool	maildir_assign_uidls(struct maildir *, const struct maildir_config *);

#endif

/* new/ and cur/, indexed by whether MSG_IN_CUR is set. */
extern const char *const maildir_subdir[2];

static inline int64_t
maildir_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* maildir.c */
/* An operation on the file of message idx, at path ("new/<name>" or
 * "cur/<name>", relative to the Maildir): 0, or -1 with errno. */
typedef int maildir_path_op(struct maildir *, uint32_t idx, const char *path, void *arg);
/* Runs op on message idx and, while it fails with ENOENT because another
 * agent renamed the file (new/ to cur/, a flag change), finds the new name
 * by the unique part and runs it again, at most LIMIT_RENAME_TRIES times.
 * Returns op's result; -1 with ENOENT when the message is gone (*gone_r set
 * when gone_r is not NULL) or kept moving. */
int	maildir_with_renames(struct maildir *, uint32_t idx, maildir_path_op *op, void *arg,
	    bool *gone_r);

/* maildir-scan.c */
/* Appends a name to the arena; *off_r gets its offset. */
int	maildir_arena_add(struct maildir *, const char *name, size_t len, uint32_t *off_r);
/* Reads cur/ then new/ and sorts the messages into maildrop order (their
 * names in the arena in the same order); *full_r when LIMIT_MESSAGES was
 * reached, *deliv_r each message's delivery time (malloc'd, NULL when there
 * are none). */
int	maildir_scan(struct maildir *, bool *full_r, uint64_t **deliv_r);
/* Order of two unique parts: by delivery time, then octets, then length.
 * The cache is written in this order, so reading it is a merge. */
int	maildir_cmp_uniq(uint64_t da, const char *a, size_t la, uint64_t db, const char *b,
	    size_t lb);

/* maildir-size.c */
/* Sizes every message (cache, name, file) and takes the UIDLs the cache
 * recorded, drops the ones that vanished; says what became of the cache
 * file ("kept", "none"), NULL when it must be rewritten. */
const char *maildir_size_all(struct maildir *, const uint64_t *deliv);
/* Writes the size cache from the messages in memory. */
int	maildir_write_cache(struct maildir *);

/* maildir-uidl.c */
/* Gives every message without a recorded UIDL the previous server's (cfg)
 * or its own, makes them unique, and puts the messages the previous
 * server's file knows in its order.  true when a recorded UIDL had to
 * change (a duplicate), so the cache is rewritten. */
bool	maildir_assign_uidls(struct maildir *, const struct maildir_config *);

#endif
