/* Unit tests for Maildir name handling, UIDL derivation, path expansion and the size cache format. */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadline.h"
#include "maildir.h"
#include "session.h"
#include "sizecache.h"
#include "tap.h"

/*
 * readdir() as a busy Maildir gives it: with race.from set, once the real
 * readdir() of the directory race.dir_ino reaches its end, race.from is
 * renamed to race.to there (another agent changing its flags) and the new
 * name is returned too, as readdir() may do for an entry renamed while it
 * reads (tmpfs puts a renamed entry at the end).  Defined here, it stands in
 * for the C library's in the code under test (dlsym finds the real one).
 */
static struct {
	ino_t		 dir_ino;
	int		 dirfd;
	const char	*from, *to;
	struct dirent	 de;
} race;

struct dirent *
readdir(DIR *d)
{
	static struct dirent *(*real)(DIR *);
	struct dirent *de;
	struct stat st;

	if (real == NULL && (real = (struct dirent *(*)(DIR *))dlsym(RTLD_NEXT, "readdir")) == NULL)
		exit(99);
	de = real(d);
	if (de != NULL || race.from == NULL || fstat(dirfd(d), &st) == -1 || st.st_ino != race.dir_ino)
		return de;
	if (renameat(race.dirfd, race.from, race.dirfd, race.to) == -1 ||
	    fstatat(race.dirfd, race.to, &st, 0) == -1)
		exit(99);
	race.from = NULL;
	memset(&race.de, 0, sizeof(race.de));
	race.de.d_ino = st.st_ino;
	race.de.d_type = DT_REG;
	snprintf(race.de.d_name, sizeof(race.de.d_name), "%s", race.to);
	return &race.de;
}

static bool
seen(const char *name, char *out)
{
	return maildir_seen_name(name, strlen(name), out, 300);
}

static void
put_file(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);

	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) == -1) {
		perror(name);
		exit(99);
	}
}

static int64_t
mtime_of(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static uint64_t
size_of(const struct maildir *md, const char *uniq)
{
	for (uint32_t i = 0; i < md->count; i++)
		if (strncmp(maildir_name(md, i), uniq, strlen(uniq)) == 0)
			return md->msgs[i].size;
	return UINT64_MAX;
}

/*
 * The rule maildir_open() applies to a cache entry: its size is used when
 * the entry has the message's unique part and inode number, and the file is
 * read otherwise.  Each cache entry below holds a size that is plausible
 * for its file but false, so which source a size came from shows.  The cache
 * is written by the production writer (sizecache_writer_commit).
 */
static void
cache_trusts_only_the_same_inode(void)
{
	char dir[] = "/tmp/test-maildir.XXXXXX";
	struct sizecache_writer w;
	struct maildir md;
	const struct maildir_config cfg = { .lock = false, .uidl_source = UIDL_SOURCE_NONE };
	struct stat st1, st2;
	int dfd, cur;

	if (mkdtemp(dir) == NULL || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1 ||
	    mkdirat(dfd, "new", 0700) == -1 || mkdirat(dfd, "cur", 0700) == -1 ||
	    mkdirat(dfd, "tmp", 0700) == -1 || (cur = openat(dfd, "cur", O_RDONLY | O_DIRECTORY)) == -1) {
		perror("test maildir");
		exit(99);
	}
	/* Wire sizes: 6 ("a\r\nb\r\n") and 3 ("x\r\n"). */
	put_file(cur, "1700000000.M1.h:2,", "a\nb\n");
	put_file(cur, "1700000001.M2.h:2,", "x\n");
	if (fstatat(cur, "1700000000.M1.h:2,", &st1, 0) == -1 ||
	    fstatat(cur, "1700000001.M2.h:2,", &st2, 0) == -1)
		exit(99);
	sizecache_writer_init(&w);
	sizecache_writer_put(&w, "1700000000.M1.h", 15, (uint64_t)st1.st_ino,
	    (uint64_t)st1.st_size, mtime_of(&st1), 9);
	sizecache_writer_put(&w, "1700000001.M2.h", 15, (uint64_t)st2.st_ino + 1,
	    (uint64_t)st2.st_size, mtime_of(&st2), 5);
	ok(sizecache_writer_commit(&w, dfd, MAILDIR_CACHE_NAME) == 0, "the writer commits a cache file");

	ok(maildir_open(&md, dir, &cfg) == MAILDIR_OK, "the test Maildir opens");
	is_int(md.count, 2, "both messages are found");
	is_int(size_of(&md, "1700000000.M1.h"), 9, "an entry with the file's inode number gives the size");
	is_int(size_of(&md, "1700000001.M2.h"), 3, "an entry with another inode number is not trusted: the file is read");
	is_int(md.sized_by_cache, 1, "one size came from the cache");
	is_int(md.sized_by_reading, 1, "one size came from reading the file");
	maildir_close(&md);

	/* The cache was rewritten with the size read, for the right inode. */
	ok(maildir_open(&md, dir, &cfg) == MAILDIR_OK, "the test Maildir opens again");
	is_int(md.sized_by_cache, 2, "the rewritten cache serves both messages");
	is_int(size_of(&md, "1700000001.M2.h"), 3, "the rewritten entry holds the size read from the file");
	maildir_close(&md);

	unlinkat(cur, "1700000000.M1.h:2,", 0);
	unlinkat(cur, "1700000001.M2.h:2,", 0);
	unlinkat(dfd, MAILDIR_CACHE_NAME, 0);
	unlinkat(dfd, "new", AT_REMOVEDIR);
	unlinkat(dfd, "cur", AT_REMOVEDIR);
	unlinkat(dfd, "tmp", AT_REMOVEDIR);
	close(cur);
	close(dfd);
	rmdir(dir);
}

/* Entries the reader returns from a copy of img[0..len) until it stops; -1
 * when it refuses the file as a whole. */
static long
entries_read(const char *img, size_t len)
{
	struct sizecache_reader r;
	struct sizecache_entry e;
	char *copy = malloc(len + 1);
	long n = 0;

	if (copy == NULL)
		exit(99);
	memcpy(copy, img, len);
	copy[len] = '\0';
	sizecache_reader_from(&r, copy, len);
	if (!r.valid)
		n = -1;
	else
		while (sizecache_reader_next(&r, &e))
			n++;
	sizecache_reader_close(&r);
	return n;
}

/* A message renamed in cur/ while the scan reads it (readdir() returns its
 * old and its new name) is one message with its own UIDL, also when the
 * size cache sizes it (tests/load.bats once saw a digest UIDL then); two files with one
 * unique part that both exist stay two messages, the second with a digest. */
static void
renamed_during_scan_is_one_message(void)
{
	char dir[] = "/tmp/test-maildir.XXXXXX", u[LIMIT_UIDL_LEN + 1];
	const struct maildir_config cfg = { .lock = false, .uidl_source = UIDL_SOURCE_NONE };
	struct maildir md;
	struct stat st;
	int dfd, cur;

	if (mkdtemp(dir) == NULL || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1 ||
	    mkdirat(dfd, "new", 0700) == -1 || mkdirat(dfd, "cur", 0700) == -1 ||
	    mkdirat(dfd, "tmp", 0700) == -1 || (cur = openat(dfd, "cur", O_RDONLY | O_DIRECTORY)) == -1 ||
	    fstat(cur, &st) == -1) {
		perror("test maildir");
		exit(99);
	}
	put_file(cur, "1700000000.M1.h:2,", "a\n");
	put_file(cur, "1700000001.M2.h:2,", "b\n");
	/* A size cache, as on a live server: with it the sizes come without
	 * opening the files, so no open finds the old name gone. */
	ok(maildir_open(&md, dir, &cfg) == MAILDIR_OK, "the Maildir opens and its size cache is written");
	maildir_close(&md);
	race.dir_ino = st.st_ino;
	race.dirfd = cur;
	race.from = "1700000000.M1.h:2,";
	race.to = "1700000000.M1.h:2,S";
	ok(maildir_open(&md, dir, &cfg) == MAILDIR_OK, "the Maildir opens while a message is renamed");
	ok(race.from == NULL, "the rename happened during the scan");
	is_int(md.sized_by_cache, 2, "both sizes come from the cache");
	is_int(md.count, 2, "the renamed message is listed once");
	maildir_uidl(&md, 0, u);
	is_str(u, "1700000000.M1.h", "the renamed message keeps its own UIDL, not a digest");
	is_str(maildir_name(&md, 0), "1700000000.M1.h:2,S", "under the name it has now");
	maildir_uidl(&md, 1, u);
	is_str(u, "1700000001.M2.h", "the other message is untouched");
	maildir_close(&md);

	put_file(cur, "1700000000.M1.h:2,", "c\n");
	ok(maildir_open(&md, dir, &cfg) == MAILDIR_OK, "the Maildir opens with two files for one unique part");
	is_int(md.count, 3, "two files that both exist are two messages");
	maildir_uidl(&md, 0, u);
	is_str(u, "1700000000.M1.h", "the first keeps the name's UIDL");
	maildir_uidl(&md, 1, u);
	is_int(strlen(u), 32, "the second gets a digest");
	maildir_close(&md);
	unlinkat(cur, "1700000000.M1.h:2,", 0);
	unlinkat(cur, "1700000000.M1.h:2,S", 0);
	unlinkat(cur, "1700000001.M2.h:2,", 0);
	unlinkat(dfd, MAILDIR_CACHE_NAME, 0);
	close(cur);
	unlinkat(dfd, "new", AT_REMOVEDIR);
	unlinkat(dfd, "cur", AT_REMOVEDIR);
	unlinkat(dfd, "tmp", AT_REMOVEDIR);
	close(dfd);
	rmdir(dir);
}

/* A cache image from the production writer (trailer included) reads back
 * whole; any truncation, a flipped bit or another version is refused whole. */
static void
cache_image_checks(void)
{
	struct sizecache_writer w;
	struct sizecache_reader r;
	struct sizecache_entry e;
	char *img, *copy;
	size_t len;

	sizecache_writer_init(&w);
	sizecache_writer_put(&w, "1.M1.h", 6, 11, 100, 1700000000, 104);
	sizecache_writer_put(&w, "2.M2.h", 6, 12, 50, 1700000001, 52);
	sizecache_writer_put(&w, "bad key", 7, 13, 1, 1, 2);
	if (sizecache_writer_finish(&w) == -1)
		exit(99);
	img = w.buf;
	len = w.len;
	is_int(entries_read(img, len), 2, "a written cache reads back (a key with a space is left out)");
	copy = malloc(len + 1);
	memcpy(copy, img, len);
	copy[len] = '\0';
	sizecache_reader_from(&r, copy, len);
	ok(sizecache_reader_next(&r, &e) && e.key_len == 6 && memcmp(r.buf + e.key_off, "1.M1.h", 6) == 0 &&
	    e.ino == 11 && e.st_size == 100 && e.mtime == 1700000000 && e.size == 104,
	    "an entry reads back field by field");
	sizecache_reader_close(&r);
	for (size_t cut = 0; cut < len; cut += 7)
		if (!is_int(entries_read(img, cut), -1, "truncated cache (%zu octets) is ignored", cut))
			break;
	img[40] ^= 1;	/* one bit in an entry */
	is_int(entries_read(img, len), -1, "a flipped bit fails the checksum");
	img[40] ^= 1;
	img[26] = '9';	/* the version in the magic line */
	is_int(entries_read(img, len), -1, "a foreign version is ignored");
	free(img);
}

/* fd_read_file, which reads the size cache, the previous server's state
 * file and the TLS key: whole, NUL-terminated, bounded, regular files only. */
static void
whole_file_reads(void)
{
	char dir[] = "/tmp/test-readfile.XXXXXX", *buf = NULL;
	size_t len = 99;
	int dfd, fd;

	if (mkdtemp(dir) == NULL || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1)
		exit(99);
	put_file(dfd, "f", "0123456789");
	put_file(dfd, "empty", "");
	fd = openat(dfd, "f", O_RDONLY);
	ok(fd_read_file(fd, 10, &buf, &len) == 0 && len == 10 && memcmp(buf, "0123456789", 11) == 0,
	    "a file of max octets is read whole, with a NUL after it");
	free(buf);
	errno = 0;
	ok(fd_read_file(fd, 9, &buf, &len) == -1 && errno == EFBIG, "a file over max is refused (EFBIG)");
	close(fd);
	fd = openat(dfd, "empty", O_RDONLY);
	ok(fd_read_file(fd, 10, &buf, &len) == 0 && len == 0 && buf[0] == '\0', "an empty file reads as empty");
	free(buf);
	close(fd);
	errno = 0;
	ok(fd_read_file(dfd, 1 << 20, &buf, &len) == -1 && errno == EINVAL, "a directory is refused (EINVAL)");
	unlinkat(dfd, "f", 0);
	unlinkat(dfd, "empty", 0);
	close(dfd);
	rmdir(dir);
}

int
main(void)
{
	char out[300], uidl[LIMIT_UIDL_LEN + 1], long_name[200];
	uint64_t w;

	is_int(maildir_uniq_len("123.M1.host:2,S", 15), 11, "unique part stops at the colon");
	is_int(maildir_uniq_len("123.M1.host", 11), 11, "no colon: whole name");
	is_int(maildir_delivery("1700000000.M1.host", 18), 1700000000, "delivery time from the leading number");
	is_int(maildir_delivery("abc", 3), 0, "no leading number: 0");

	ok(maildir_name_wsize("1.M1.h,S=100,W=104", 18, &w) && w == 104, ",W= at the end");
	ok(maildir_name_wsize("1.M1.h,W=104,S=100", 18, &w) && w == 104, ",W= before ,S=");
	ok(!maildir_name_wsize("1.M1.h,S=100", 12, &w), "no ,W=");
	ok(!maildir_name_wsize("1.M1.h,W=", 9, &w), "empty ,W= refused");
	ok(!maildir_name_wsize("1.M1.h,W=12x", 12, &w), ",W= with junk refused");

	maildir_uidl_of("1700000000.M1P2.host", 20, uidl);
	is_str(uidl, "1700000000.M1P2.host", "a plain unique part is its own UIDL");
	memset(long_name, 'a', 71);
	maildir_uidl_of(long_name, 71, uidl);
	is_int(strlen(uidl), 32, "a 71-octet name gets a 32-digit digest");
	maildir_uidl_of(long_name, 70, uidl);
	is_int(strlen(uidl), 70, "a 70-octet name is kept");
	maildir_uidl_of("a b", 3, uidl);
	is_int(strlen(uidl), 32, "a name with a space gets a digest");
	maildir_uidl_of("a", 1, uidl);
	is_str(uidl, "a", "one octet is kept");
	/* FNV-1a 128 of "a" per the published test vectors, checked through a
	 * name that forces the digest path: the digest of "" is the basis. */
	maildir_uidl_of("", 0, uidl);
	is_str(uidl, "6c62272e07bb014262b821756295c58d", "digest of the empty name is the FNV-1a 128 basis");
	maildir_uidl_of("a\x7f", 2, uidl);
	{
		char again[LIMIT_UIDL_LEN + 1];

		maildir_uidl_of("a\x7f", 2, again);
		is_str(uidl, again, "the digest is stable");
	}

	ok(seen("1.M1.h", out) && strcmp(out, "1.M1.h:2,S") == 0, "new message gets :2,S");
	ok(seen("1.M1.h:2,", out) && strcmp(out, "1.M1.h:2,S") == 0, "empty flags get S");
	ok(seen("1.M1.h:2,FR", out) && strcmp(out, "1.M1.h:2,FRS") == 0, "S goes after F and R");
	ok(seen("1.M1.h:2,DT", out) && strcmp(out, "1.M1.h:2,DST") == 0, "S goes between D and T");
	ok(!seen("1.M1.h:2,S", out), "already seen: no rename");
	ok(!seen("1.M1.h:1,xyz", out), "unknown info left alone");

	ok(session_expand_maildir("Maildir", "alice", "/home/alice", out, sizeof(out)) == 0 &&
	    strcmp(out, "/home/alice/Maildir") == 0, "relative path under home");
	ok(session_expand_maildir("/var/mail/%u/", "alice", "/home/alice", out, sizeof(out)) == 0 &&
	    strcmp(out, "/var/mail/alice/") == 0, "%%u expands");
	ok(session_expand_maildir("%h/Mail", "alice", "/home/alice", out, sizeof(out)) == 0 &&
	    strcmp(out, "/home/alice/Mail") == 0, "%%h expands");
	ok(session_expand_maildir("/m/100%%", "a", "/h", out, sizeof(out)) == 0 &&
	    strcmp(out, "/m/100%") == 0, "%%%% is a percent");
	ok(session_expand_maildir("/m/%x", "a", "/h", out, sizeof(out)) == -1, "unknown %%x refused");
	ok(session_expand_maildir("/m/%u", "a", "/h", out, 4) == -1, "overflow refused");

	cache_trusts_only_the_same_inode();
	cache_image_checks();
	renamed_during_scan_is_one_message();
	whole_file_reads();
	return done_testing();
}
