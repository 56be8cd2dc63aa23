/* The size cache file inside the Maildir: load and verify, read in order, rewrite atomically; runs as the mailbox owner. */
#ifndef MP_SIZECACHE_H
#define MP_SIZECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The file: this magic line, one line per message in arrival order
 *
 *	<unique part> <inode> <file size> <mtime in ns> <wire size>[ <UIDL>]
 *
 * and a trailer "end <count> <checksum>" (16 hex digits of sizecache_fnv64
 * over everything before it).  A file that fails any check is ignored whole.
 * The UIDL field is the one sessions answered for the message when it is
 * not the one derived from its name (taken over from the previous server);
 * without it, the name's own.  Version 2 files (no UIDL field) are read as
 * all own: the server that wrote them answered those.
 */
#define SIZECACHE_MAGIC		"maildir-pop3d size cache v3\n"
#define SIZECACHE_MAGIC_V2	"maildir-pop3d size cache v2\n"

struct sizecache_entry {
	uint64_t	ino;		/* inode number the size is for */
	uint64_t	st_size;	/* the file's size and mtime (ns) when sized */
	int64_t		mtime;
	uint64_t	size;		/* octets on the wire (CRLF), before stuffing */
	uint32_t	key_off;	/* the unique part, in the file image */
	uint16_t	key_len;
	uint8_t		uidl_len;	/* 0: the UIDL of the name */
	uint32_t	uidl_off;	/* else the UIDL answered, in the file image */
};

/* A wire size is possible for a file of st_size octets: CRLF conversion at
 * most doubles it, plus a final CRLF. */
static inline bool
sizecache_plausible(uint64_t size, uint64_t st_size)
{
	return size >= st_size && size <= 2 * st_size + 2;
}

/* Whether a key can be written and read back (1..65535 octets, no space,
 * newline or NUL). */
bool	sizecache_key_ok(const char *key, size_t key_len);

/* Streaming reader: the whole file is checked (magic, trailer, count bound,
 * checksum) when opened; entries are then parsed one at a time, in file
 * order.  A malformed entry ends the reading and sets bad. */
struct sizecache_reader {
	char		*buf;		/* the file, as read, NUL-terminated */
	size_t		 len;
	size_t		 pos, end;	/* next entry; start of the trailer */
	uint32_t	 count;		/* entries the trailer announces */
	uint32_t	 read;		/* entries returned so far */
	int		 version;	/* 2 or 3 */
	bool		 present;	/* a cache file was there */
	bool		 valid;		/* ... and passed the checks */
	bool		 bad;		/* an entry did not parse */
};

/* Reads and checks the file name in dirfd (not following a symlink, only a
 * regular file of at most LIMIT_CACHE_FILE octets).  Never fails: a missing
 * or unusable file reads as empty (see present and valid). */
void	sizecache_reader_open(struct sizecache_reader *, int dirfd, const char *name);
/* Takes ownership of buf (malloc'd, len octets plus a spare NUL) and checks it. */
void	sizecache_reader_from(struct sizecache_reader *, char *buf, size_t len);
/* The next entry (key_off into r->buf), or false at the end or on a bad entry. */
bool	sizecache_reader_next(struct sizecache_reader *, struct sizecache_entry *);
void	sizecache_reader_close(struct sizecache_reader *);

/* Serialises one entry per call into a growing buffer; commit writes it
 * under a temporary name unique across hosts (time, pid, host name) in the
 * same directory, fsyncs and renames it into place.  Failure (full disk,
 * read-only Maildir) is logged and harmless.  Keys that could not be read
 * back (empty, with a space, a newline or a NUL) are left out. */
struct sizecache_writer {
	char	*buf;
	size_t	 len, cap;
	uint32_t count;
	bool	 oom;
};

void	sizecache_writer_init(struct sizecache_writer *);
void	sizecache_writer_put(struct sizecache_writer *, const char *key, size_t key_len,
	    uint64_t ino, uint64_t st_size, int64_t mtime, uint64_t size);
/* The same with the UIDL answered for it when that is not the name's own
 * (1..LIMIT_UIDL_LEN octets of 0x21..0x7E; anything else is left out). */
void	sizecache_writer_put_uidl(struct sizecache_writer *, const char *key, size_t key_len,
	    uint64_t ino, uint64_t st_size, int64_t mtime, uint64_t size,
	    const char *uidl, size_t uidl_len);
/* Appends the trailer; the image is then w->buf[0..w->len).  -1 on ENOMEM. */
int	sizecache_writer_finish(struct sizecache_writer *);
/* Finishes (unless done) and writes the file; frees the buffer either way. */
int	sizecache_writer_commit(struct sizecache_writer *, int dirfd, const char *name);

/* The checksum: FNV-1a's 64-bit step on
 * 8-octet little-endian words, then on the remaining octets. */
uint64_t sizecache_fnv64(const void *, size_t, uint64_t seed);
#define FNV64_BASIS	0xcbf29ce484222325ULL

#endif
