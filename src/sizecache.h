/* The size cache file inside the Maildir: load and verify, look up, rewrite atomically; runs as the mailbox owner. */
#ifndef MP_SIZECACHE_H
#define MP_SIZECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sizecache_entry {
	uint64_t	st_size;
	int64_t		mtime;
	uint64_t	size;
	uint32_t	key_off;
	uint16_t	key_len;
};

struct sizecache {
	char			*buf;		/* the file, as read */
	struct sizecache_entry	*ents;
	uint32_t		 count;
	uint32_t		*slots;		/* hash table: entry index + 1, 0 = empty */
	uint32_t		 mask;
};

/* Reads and verifies the cache file; a missing, truncated, corrupt or
 * foreign-version file leaves the cache empty.  Never fails. */
void	sizecache_load(struct sizecache *, int dirfd, const char *name);
bool	sizecache_lookup(const struct sizecache *, const char *key, size_t key_len,
	    uint64_t st_size, int64_t mtime, uint64_t *size_r);
void	sizecache_free(struct sizecache *);

/* Serialises one entry per call into a growing buffer; sizecache_commit()
 * writes it under a unique temporary name, fsyncs and renames it into
 * place.  Failure (full disk, read-only Maildir) is logged and harmless. */
struct sizecache_writer {
	char	*buf;
	size_t	 len, cap;
	uint32_t count;
	bool	 oom;
};

void	sizecache_writer_init(struct sizecache_writer *);
void	sizecache_writer_add(struct sizecache_writer *, const char *key, size_t key_len,
	    uint64_t st_size, int64_t mtime, uint64_t size);
int	sizecache_writer_commit(struct sizecache_writer *, int dirfd, const char *name);

/* Parses a cache image in memory (exported for the unit tests and fuzzers);
 * takes ownership of buf (malloc'd, len octets plus a spare NUL). */
void	sizecache_parse(struct sizecache *, char *buf, size_t len);

/* FNV-1a 64-bit, for the table and the checksum. */
uint64_t sizecache_fnv64(const void *, size_t, uint64_t seed);
#define FNV64_BASIS	0xcbf29ce484222325ULL

#endif
