/* The maildrop: scan of new/ and cur/, order, UIDL, exact sizes and their cache, lock, streaming one message, commit at QUIT; runs as the mailbox owner. */
#ifndef MP_MAILDIR_H
#define MP_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pop3d-limits.h"

#define MAILDIR_CACHE_NAME	"maildir-pop3d.cache"
#define MAILDIR_LOCK_NAME	"maildir-pop3d.lock"

/* Per-message flags. */
#define MSG_DELETED	0x01	/* DELE'd in this session */
#define MSG_RETR	0x02	/* sent whole by RETR: gets the seen flag at QUIT */
#define MSG_IN_CUR	0x04	/* lives in cur/ (else new/) */
#define MSG_NOCACHE	0x08	/* size not known (file unreadable at login): no cache entry */
#define MSG_STAT	0x10	/* st_size and mtime come from a stat of the file (scan) */
#define MSG_GONE	0x20	/* vanished between readdir and sizing (scan) */

/* Where a message's UIDL came from (the maildir: log line counts them). */
enum uidl_src {
	UIDL_OWN = 0,		/* derived from the name, first answered now */
	UIDL_KEPT,		/* what earlier sessions answered (the size cache) */
	UIDL_DOVECOT,		/* the previous server's: dovecot-uidlist */
	UIDL_COURIER,		/* the previous server's: courierpop3dsizelist */
};

/* 48 octets a message, plus its name (and a taken-over UIDL) in the arena. */
struct msg {
	uint64_t	size;		/* octets on the wire (CRLF), before dot-stuffing */
	uint64_t	st_size;	/* the file the size is for: its size, */
	int64_t		mtime;		/* mtime (ns) and inode number (from readdir) */
	uint64_t	ino;
	uint32_t	name_off;	/* file name in the arena */
	uint16_t	name_len;
	uint16_t	uniq_len;	/* length of the part before ':' */
	uint32_t	uidl_off;	/* the UIDL in the arena when uidl_len > 0, */
	uint8_t		uidl_len;	/* else the one derived from the name */
	uint8_t		uidl_src;	/* enum uidl_src */
	uint8_t		flags;
};

/* Whose state file gives the UIDLs (and order) of the messages it knows. */
enum maildir_uidl_source {
	UIDL_SOURCE_AUTO = 0,	/* the one of the two written last (mtime) */
	UIDL_SOURCE_DOVECOT,
	UIDL_SOURCE_COURIER,
	UIDL_SOURCE_NONE,
};

struct maildir_config {
	bool			 lock;		/* --lock */
	enum maildir_uidl_source uidl_source;	/* --uidl-source */
	const char		*uidl_format;	/* --pop3-uidl-format; NULL: Dovecot's default */
};

struct maildir {
	int		 dirfd;		/* the Maildir, or -1 when it does not exist */
	int		 lockfd;
	struct msg	*msgs;
	uint32_t	 count;
	uint64_t	 total;		/* sum of sizes */
	char		*arena;		/* names, NUL-terminated, back to back */
	size_t		 arena_len, arena_cap;
	bool		 cache_dirty;	/* a size was corrected after login: rewrite at close */
	bool		 reordered;	/* msgs are in the previous server's order, not arrival */
	/* what login cost, for the log */
	uint32_t	 sized_by_name, sized_by_cache, sized_by_reading, stats;
	uint32_t	 uidl_from[4];	/* messages by enum uidl_src */
};

enum maildir_err {
	MAILDIR_OK = 0,
	MAILDIR_IN_USE,		/* --lock and another session holds it */
	MAILDIR_FAIL,		/* the Maildir exists but cannot be read; errno set */
};

/* Opens and scans the Maildir at path (absolute, or relative to the current
 * directory).  A missing Maildir is an empty maildrop.  With cfg->lock,
 * takes the session lock first.
 *
 * One pass over new/ and cur/ (readdir gives names, types and inode
 * numbers); the order is sorted once.  A message's size comes from the size
 * cache when its entry has the same unique part and inode number (no stat,
 * no open: Maildir files are never rewritten in place, and one rewritten by
 * rename has a new inode), else from a ,W= field that fits the file's size,
 * else from reading the file.  UIDLs: what the cache recorded, else the
 * previous server's (cfg->uidl_source), else the name's own.  The cache is
 * rewritten only when it would change. */
enum maildir_err maildir_open(struct maildir *, const char *path, const struct maildir_config *cfg);
/* Writes the size cache if a size was corrected during the session; frees. */
void	maildir_close(struct maildir *);

static inline const char *
maildir_name(const struct maildir *md, uint32_t idx)
{
	return md->arena + md->msgs[idx].name_off;
}

/* Opens message idx for reading, following a rename by another agent (the
 * unique part never changes).  -1 with errno when it is gone or unreadable.
 * When the file is not the one its size was computed for (another size or
 * mtime: rewritten in place), the session keeps its size but the cache entry
 * is dropped at maildir_close(), so the next session reads the file. */
int	maildir_open_msg(struct maildir *, uint32_t idx);

/* Writes the UIDL of message idx into out (LIMIT_UIDL_LEN + 1 octets). */
void	maildir_uidl(const struct maildir *, uint32_t idx, char out[LIMIT_UIDL_LEN + 1]);

struct maildir_commit_stats {
	uint32_t	deleted, delete_failed;
	uint64_t	deleted_octets;
};

/* QUIT in TRANSACTION: unlinks deleted messages, gives retrieved ones the
 * seen flag (unless !flag_updates), updates maildirsize.  0, or -1 when
 * some deletions failed (the others are still done). */
int	maildir_commit(struct maildir *, bool flag_updates, struct maildir_commit_stats *);

/* ---- pure helpers, exported for the unit tests and fuzzers ---- */

/* Length of the unique part of a Maildir file name (up to ':'). */
size_t	maildir_uniq_len(const char *name, size_t len);
/* Leading decimal number of a name (delivery time), 0 if none. */
uint64_t maildir_delivery(const char *name, size_t len);
/* Arrival sort key of a unique part: the delivery time (at most 2^44 - 1)
 * shifted left 20 bits, plus the microseconds of an "M<digits>" in the
 * part between the first and second '.' (at most 2^20 - 1), as Dovecot's
 * maildir_filename_sort_cmp() orders; 0 microseconds without one. */
uint64_t maildir_arrival(const char *name, size_t len);
/* Value of a ",W=<n>" field in the unique part; false when absent or bad. */
bool	maildir_name_wsize(const char *name, size_t uniq_len, uint64_t *w_r);
/* UIDL of a unique part: itself when 1..70 octets of 0x21..0x7E, else 32 hex
 * digits of its FNV-1a 128-bit hash.  out needs LIMIT_UIDL_LEN + 1 octets. */
void	maildir_uidl_of(const char *uniq, size_t len, char *out);
/* The name with the seen flag added; false if it has it or cannot take it
 * (an info part that is not "2,..."). out needs len + 5 octets. */
bool	maildir_seen_name(const char *name, size_t len, char *out, size_t outsize);
/* Exact wire size of a message read from fd (stuffing excluded), by the
 * encoder that RETR uses. */
int	maildir_size_fd(int fd, uint64_t *size_r);

#endif
