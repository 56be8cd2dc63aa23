/* libFuzzer target for the TRANSACTION dispatcher: the input is a client's commands after login, run by session_run() on a throwaway Maildir that is put back after every input; checks every answer against the known messages and the Maildir against the DELEs and RETRs answered; runs unprivileged or as root, only inside its own temp dir. */
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

#include "fuzz-common.h"
#include "maildir.h"
#include "proto.h"
#include "session.h"

/*
 * Input: the commands.  An optional first octet 0xff takes the next octet as
 * option bits, so plain sessions stay plain seeds:
 *   0x01  --lock
 *   0x02  --no-flag-updates
 */
#define OPT_LOCK	0x01
#define OPT_NO_FLAGS	0x02

/* Every file that belongs in the Maildir, with fixed mtimes so that the
 * size cache written by the first session stays valid. */
enum kind { SERVED, DUPLICATE, NOISE };
struct fixture {
	const char	*dir;		/* "new" or "cur" */
	char		 name[256];
	enum kind	 kind;
	const char	*content;	/* for the whole run (a copy, or static) */
	size_t		 len;
	/* for SERVED: what the client must see */
	char		*wire;		/* unstuffed RETR body */
	size_t		 wire_len;
	size_t		 uniq_len;
};

#define MAX_FIX	16
static struct fixture fix[MAX_FIX];
static int nfix, nserved;
static int served[MAX_FIX];	/* msn - 1 -> fixture index */
static char md_path[256];
static const char maildirsize0[] = "1000000S,10C\n100 1\n";
static struct session s;

#define FIXED_MTIME	1000000000

/* ---- the Maildir and its fixtures ---- */

static void
wire_of(struct fixture *f)
{
	size_t n = 0;

	f->wire = malloc(2 * f->len + 3);
	if (f->wire == NULL)
		abort();
	for (size_t i = 0; i < f->len; i++) {
		if (f->content[i] == '\n' && (i == 0 || f->content[i - 1] != '\r'))
			f->wire[n++] = '\r';
		f->wire[n++] = f->content[i];
	}
	if (f->len > 0 && f->content[f->len - 1] != '\n') {
		if (f->content[f->len - 1] != '\r')
			f->wire[n++] = '\r';
		f->wire[n++] = '\n';
	}
	f->wire_len = n;
}

static struct fixture *
add(const char *dir, const char *name, enum kind kind, const char *content, size_t len)
{
	struct fixture *f = &fix[nfix++];

	if (nfix > MAX_FIX)
		abort();
	f->dir = dir;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->kind = kind;
	char *copy = malloc(len + 1);

	if (copy == NULL)
		abort();
	memcpy(copy, content, len);
	f->content = copy;
	f->len = len;
	f->uniq_len = maildir_uniq_len(f->name, strlen(f->name));
	if (kind == SERVED) {
		wire_of(f);
		served[nserved++] = nfix - 1;
	}
	return f;
}

static void
addz(const char *dir, const char *name, enum kind kind, const char *content)
{
	add(dir, name, kind, content, strlen(content));
}

static int
mdfd(void)
{
	int fd = open(md_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1)
		abort();
	return fd;
}

static void
write_file(int dfd, const char *path, const char *content, size_t len)
{
	struct timespec ts[2] = { { FIXED_MTIME, 0 }, { FIXED_MTIME, 0 } };
	int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1 || write(fd, content, len) != (ssize_t)len || futimens(fd, ts) == -1)
		abort();
	close(fd);
}

/* Puts the Maildir back as it was: messages deleted or renamed by the
 * last session come back under their names, everything else goes. */
static void
reset_maildir(void)
{
	static const char *const dirs[] = { "new", "cur" };
	char path[300];
	struct stat st;
	int dfd = mdfd();

	for (int d = 0; d < 2; d++) {
		DIR *dir;
		struct dirent *de;
		int fd = openat(dfd, dirs[d], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd == -1 || (dir = fdopendir(fd)) == NULL)
			abort();
		while ((de = readdir(dir)) != NULL) {
			bool keep = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;

			for (int i = 0; i < nfix && !keep; i++)
				keep = strcmp(fix[i].dir, dirs[d]) == 0 && strcmp(fix[i].name, de->d_name) == 0;
			if (!keep && strcmp(dirs[d], "cur") == 0)
				keep = strcmp(de->d_name, "1000000013.sub") == 0 ||
				    strcmp(de->d_name, "1000000014.link") == 0;
			if (!keep && unlinkat(fd, de->d_name, 0) == -1)
				abort();
		}
		closedir(dir);
	}
	for (int i = 0; i < nfix; i++) {
		snprintf(path, sizeof(path), "%s/%s", fix[i].dir, fix[i].name);
		if (fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) == -1)
			write_file(dfd, path, fix[i].content, fix[i].len);
	}
	if (fstatat(dfd, "maildirsize", &st, 0) == -1 || (size_t)st.st_size != strlen(maildirsize0))
		write_file(dfd, "maildirsize", maildirsize0, strlen(maildirsize0));
	/* Leftovers of an interrupted cache write, if any. */
	{
		DIR *dir = fdopendir(dup(dfd));
		struct dirent *de;

		if (dir == NULL)
			abort();
		while ((de = readdir(dir)) != NULL)
			if (strstr(de->d_name, ".tmp.") != NULL)
				FUZZ_CHECK(false, "a temporary cache file was left behind");
		closedir(dir);
	}
	close(dfd);
}

static void
remove_tree(const char *path)
{
	char cmd[600];

	/* Only ever our own mkdtemp directory. */
	if (strncmp(path, "/tmp/mp-fuzz-trans.", 19) != 0 && strstr(path, "/mp-fuzz-trans.") == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz-trans: could not remove %s\n", path);
}

static char top_dir[256];

static void
cleanup(void)
{
	remove_tree(top_dir);
}

int	LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char big[70000], w4[64], name[256];
	struct fixture *f;
	int dfd;

	(void)argc;
	(void)argv;
	snprintf(top_dir, sizeof(top_dir), "%s/mp-fuzz-trans.XXXXXX", tmp && *tmp && strlen(tmp) < 100 ? tmp : "/tmp");
	if (mkdtemp(top_dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(md_path, sizeof(md_path), "%s/Maildir", top_dir);
	if (mkdir(md_path, 0700) == -1)
		abort();
	dfd = mdfd();
	if (mkdirat(dfd, "new", 0700) == -1 || mkdirat(dfd, "cur", 0700) == -1 ||
	    mkdirat(dfd, "tmp", 0700) == -1 || mkdirat(dfd, "cur/1000000013.sub", 0700) == -1 ||
	    symlinkat("../new/1000000001.M1P1.host", dfd, "cur/1000000014.link") == -1)
		abort();

	/* In delivery order; every wire size differs, so "+OK n octets" names
	 * its message. */
	addz("new", "1000000001.M1P1.host", SERVED, "From: a@example.org\nSubject: one\n\nfirst body\n");
	addz("cur", "1000000002.M2P2.host:2,S", SERVED,
	    "Subject: two\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend");
	addz("cur", "1000000003.M3P3.host,S=10,W=99999:2,", SERVED, "Subject: bad W\n\nbody\n");
	/* a right ,W= (the wire size of the content) */
	{
		static const char c4[] = "Subject: sized\n\nline\n.\n";
		struct fixture tmpf = { .content = c4, .len = sizeof(c4) - 1 };

		wire_of(&tmpf);
		snprintf(w4, sizeof(w4), "1000000004.M4P4.host,S=%zu,W=%zu", sizeof(c4) - 1, tmpf.wire_len);
		free(tmpf.wire);
		addz("new", w4, SERVED, c4);
	}
	memset(name, 'L', 90);
	memcpy(name, "1000000005.", 11);
	name[90] = '\0';
	addz("new", name, SERVED, "Subject: a unique part too long for a UIDL\n\nxyz\n");
	addz("new", "1000000006.M6P6.host", SERVED, "");
	addz("cur", "1000000007.M7P7.host:2,T", SERVED, "Subject: dup\n\n\rbare cr\rline\n");
	/* 70000 octets: a CRLF split across the 64 KiB read boundary and
	 * dot lines near it */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	memcpy(big, "Subject: big\n\n", 14);
	for (size_t i = 100; i < sizeof(big); i += 77)
		big[i] = '\n';
	big[65534] = '\n';
	big[65535] = '.';
	big[65536] = '\r';
	big[65537] = '\n';
	big[65538] = '.';
	big[65539] = '.';
	f = add("new", "1000000008.M8P8.host", SERVED, big, sizeof(big));
	(void)f;
	addz("cur", "1000000009.M9P9.host:2,FRS", SERVED, "Subject: seen\n\nold\n");
	addz("cur", "1000000010.M10P10.host:1,xyz", SERVED, "Subject: v1 info\n\nsome body text\n");
	/* not served */
	addz("new", "1000000007.M7P7.host", DUPLICATE, "Subject: dup\n\n\rbare cr\rline\n");
	addz("new", ".hidden", NOISE, "x\n");
	addz("tmp", "1000000012.M12P12.host", NOISE, "being delivered\n");

	for (int i = 0; i < nserved; i++)
		for (int j = 0; j < i; j++)
			if (fix[served[i]].wire_len == fix[served[j]].wire_len)
				abort();	/* the harness needs distinct sizes */
	close(dfd);
	reset_maildir();
	return 0;
}

/* ---- reading the session's answers ---- */

static bool
is_retr_status(const char *st, uint64_t *n_r)
{
	const char *p;
	char num[24];
	size_t k;

	if (!fuzz_has_prefix(st, "+OK "))
		return false;
	p = st + 4;
	k = strspn(p, "0123456789");
	if (k == 0 || k >= sizeof(num) || strcmp(p + k, " octets") != 0)
		return false;
	memcpy(num, p, k);
	num[k] = '\0';
	return proto_parse_u64(num, UINT64_MAX, n_r) == 0;
}

static bool
multi_line(const char *st)
{
	uint64_t n;

	return strcmp(st, "+OK Capability list follows") == 0 ||
	    (fuzz_has_prefix(st, "+OK ") && strstr(st, " messages (") != NULL &&
	    !fuzz_has_prefix(st, "+OK maildrop has ")) ||
	    strcmp(st, "+OK unique-id listing follows") == 0 ||
	    strcmp(st, "+OK top of message follows") == 0 ||
	    is_retr_status(st, &n);
}

static int
served_by_size(uint64_t n)
{
	for (int i = 0; i < nserved; i++)
		if (fix[served[i]].wire_len == n)
			return i;
	return -1;
}

static void
check_list_body(const struct fuzz_resp *r)
{
	const char *p = r->body, *end = r->body + r->body_len;
	unsigned long last = 0;

	while (p < end) {
		unsigned long msn;
		unsigned long long size;
		int used = 0;

		FUZZ_CHECK(sscanf(p, "%lu %llu\r\n%n", &msn, &size, &used) == 2 && used > 0, "LIST line malformed");
		FUZZ_CHECK(msn > last && msn >= 1 && msn <= (unsigned long)nserved, "LIST numbers out of order or range");
		FUZZ_CHECK(size == fix[served[msn - 1]].wire_len, "LIST size differs from what RETR sends");
		last = msn;
		p += used;
	}
}

static void
check_uidl_body(const struct fuzz_resp *r)
{
	const char *p = r->body, *end = r->body + r->body_len;
	unsigned long last = 0;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		unsigned long msn;
		char uidl[LIMIT_UIDL_LEN + 2];
		int used = 0;
		const struct fixture *f;

		FUZZ_CHECK(eol != NULL && sscanf(p, "%lu %71s%n", &msn, uidl, &used) == 2 && p + used == eol,
		    "UIDL line malformed");
		FUZZ_CHECK(msn > last && msn >= 1 && msn <= (unsigned long)nserved, "UIDL numbers out of order or range");
		f = &fix[served[msn - 1]];
		if (f->uniq_len <= LIMIT_UIDL_LEN)
			FUZZ_CHECK(strlen(uidl) == f->uniq_len && memcmp(uidl, f->name, f->uniq_len) == 0,
			    "UIDL is not the unique part");
		else
			FUZZ_CHECK(strlen(uidl) == 32, "UIDL of a long name is not a digest");
		last = msn;
		p = eol + 2;
	}
}

/* Where fixture f must be now, given whether the session committed, it
 * was deleted, and it was retrieved. */
static void
check_file(int dfd, const struct fixture *f, bool gone, bool seen)
{
	char want[300], alt[300], nname[300];
	struct stat st;

	snprintf(want, sizeof(want), "%s/%s", f->dir, f->name);
	if (seen && maildir_seen_name(f->name, strlen(f->name), nname, sizeof(nname)))
		snprintf(want, sizeof(want), "cur/%s", nname);
	if (gone) {
		FUZZ_CHECK(fstatat(dfd, want, &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT,
		    "a message deleted at QUIT is still there");
		return;
	}
	if (fstatat(dfd, want, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		fprintf(stderr, "missing: %s\n", want);
		FUZZ_CHECK(false, "a message is missing or under an unexpected name");
	}
	FUZZ_CHECK((size_t)st.st_size == f->len, "a message changed size");
	if (strcmp(want + 4, f->name) != 0 || strncmp(want, f->dir, 3) != 0) {
		/* renamed: the old name must be gone */
		snprintf(alt, sizeof(alt), "%s/%s", f->dir, f->name);
		FUZZ_CHECK(fstatat(dfd, alt, &st, AT_SYMLINK_NOFOLLOW) == -1, "a message exists twice");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct options opt;
	struct reply r;
	struct fuzz_io io;
	struct fuzz_resp *resp;
	size_t nresp, i;
	unsigned bits = 0;
	bool deleted[MAX_FIX] = { false }, retrieved[MAX_FIX] = { false }, quit = false;
	uint64_t quit_count = 0, del_octets = 0;
	int cwd, dfd, ndel = 0;

	if (size >= 2 && data[0] == 0xff) {
		bits = data[1];
		data += 2;
		size -= 2;
	}
	memset(&opt, 0, sizeof(opt));
	opt.sandbox = SANDBOX_OFF;	/* the fuzzer's own process must stay free */
	opt.maildir = md_path;	/* absolute: nothing outside the temp dir */
	opt.pam_service = "maildir-pop3d-fuzz-no-such-service";
	opt.timeout = 5;
	opt.flag_updates = !(bits & OPT_NO_FLAGS);
	opt.lock = bits & OPT_LOCK;
	opt.plaintext = PLAINTEXT_SECURE;

	if (fuzz_io_open(&io, data, size) == -1)
		return 0;
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd == -1)
		abort();
	session_init(&s, &opt, io.rfd, io.wfd);
	fuzz_log_reset();
	memset(&r, 0, sizeof(r));
	FUZZ_CHECK(session_enter_transaction(&s, "fuzz", top_dir, &r), "the test Maildir does not open");
	FUZZ_CHECK(s.md.count == (uint32_t)nserved, "the scan found a different set of messages");
	session_run(&s);
	/* session_enter_transaction() moved into the Maildir: libFuzzer
	 * writes its crash files into the current directory. */
	if (fchdir(cwd) == -1)
		abort();
	close(cwd);
	fuzz_io_collect(&io);
	fuzz_dump(&io);
	FUZZ_CHECK(s.state == ST_DONE, "session_run returned before the end");

	nresp = fuzz_parse_responses(io.out, io.out_len, multi_line, &resp);
	FUZZ_CHECK(nresp >= 1 && strcmp(resp[0].status, "+OK maildir-pop3d ready.") == 0,
	    "the session does not start with the greeting");
	for (i = 1; i < nresp; i++) {
		const struct fuzz_resp *x = &resp[i];
		uint64_t n;
		unsigned long msn;
		int k;

		if (is_retr_status(x->status, &n)) {
			k = served_by_size(n);
			FUZZ_CHECK(k >= 0, "RETR announces a size no message has");
			FUZZ_CHECK(x->body_len == n, "RETR sends a different number of octets than it announces");
			FUZZ_CHECK(n == 0 || memcmp(x->body, fix[served[k]].wire, n) == 0,
			    "RETR does not send the message with CRLF line ends");
			retrieved[k] = true;
		} else if (strcmp(x->status, "+OK top of message follows") == 0) {
			bool found = false;

			for (k = 0; k < nserved && !found; k++)
				found = x->body_len <= fix[served[k]].wire_len &&
				    (x->body_len == 0 || memcmp(x->body, fix[served[k]].wire, x->body_len) == 0);
			FUZZ_CHECK(found, "TOP output is not the start of a message");
		} else if (x->multi && strstr(x->status, " messages (") != NULL) {
			check_list_body(x);
		} else if (strcmp(x->status, "+OK unique-id listing follows") == 0) {
			check_uidl_body(x);
		} else if (sscanf(x->status, "+OK message %lu deleted", &msn) == 1) {
			FUZZ_CHECK(msn >= 1 && msn <= (unsigned long)nserved && !deleted[msn - 1],
			    "DELE of a message that is not there or already deleted");
			deleted[msn - 1] = true;
		} else if (fuzz_has_prefix(x->status, "+OK maildrop has ")) {
			memset(deleted, 0, sizeof(deleted));	/* RSET */
		} else if (sscanf(x->status, "+OK maildir-pop3d signing off (%" SCNu64 " messages deleted)",
		    &quit_count) == 1) {
			quit = true;
			FUZZ_CHECK(i == nresp - 1, "answers after QUIT");
		}
		FUZZ_CHECK(strcmp(x->status, "-ERR [SYS/TEMP] Some deleted messages not removed.") != 0,
		    "QUIT could not remove a message from the test Maildir");
	}
	for (int k = 0; k < nserved; k++)
		if (deleted[k]) {
			ndel++;
			del_octets += fix[served[k]].len;
		}
	if (quit)
		FUZZ_CHECK(quit_count == (uint64_t)ndel, "QUIT reports a different number of deletions");

	/* The Maildir: nothing lost, nothing deleted that was not DELEd,
	 * nothing renamed without a QUIT. */
	dfd = mdfd();
	for (int k = 0; k < nserved; k++)
		check_file(dfd, &fix[served[k]], quit && deleted[k], quit && opt.flag_updates && retrieved[k] && !deleted[k]);
	for (int k = 0; k < nfix; k++)
		if (fix[k].kind != SERVED)
			check_file(dfd, &fix[k], false, false);
	{
		char buf[256], want[64];
		int fd = openat(dfd, "maildirsize", O_RDONLY | O_CLOEXEC);
		ssize_t got;

		FUZZ_CHECK(fd != -1, "maildirsize is gone");
		got = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		FUZZ_CHECK(got >= 0, "maildirsize unreadable");
		buf[got] = '\0';
		if (quit && ndel > 0)
			snprintf(want, sizeof(want), "%s-%" PRIu64 " -%d\n", maildirsize0, del_octets, ndel);
		else
			snprintf(want, sizeof(want), "%s", maildirsize0);
		FUZZ_CHECK(strcmp(buf, want) == 0, "maildirsize not updated by exactly the deletions");
	}
	close(dfd);

	fuzz_free_responses(resp, nresp);
	fuzz_io_free(&io);
	reset_maildir();
	return 0;
}
