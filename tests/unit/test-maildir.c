/* Unit tests for Maildir name handling, UIDL derivation, path expansion and the size cache format. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "maildir.h"
#include "session.h"
#include "sizecache.h"
#include "tap.h"

static bool
seen(const char *name, char *out)
{
	return maildir_seen_name(name, strlen(name), out, 300);
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

	/* size cache round trip and corruption */
	{
		struct sizecache_writer wr;
		struct sizecache c;
		uint64_t size;
		char *img;

		sizecache_writer_init(&wr);
		sizecache_writer_add(&wr, "1.M1.h", 6, 100, 1700000000, 104);
		sizecache_writer_add(&wr, "2.M2.h", 6, 50, 1700000001, 52);
		sizecache_writer_add(&wr, "bad key", 7, 1, 1, 2);
		/* finish the image the way commit does, without the file */
		{
			char trailer[64];
			int n = snprintf(trailer, sizeof(trailer), "end %u %016llx\n", wr.count,
			    (unsigned long long)sizecache_fnv64(wr.buf, wr.len, FNV64_BASIS));

			img = malloc(wr.len + (size_t)n + 1);
			memcpy(img, wr.buf, wr.len);
			memcpy(img + wr.len, trailer, (size_t)n + 1);
		}
		size_t imglen = strlen(img);
		char *copy = malloc(imglen + 1);

		memcpy(copy, img, imglen + 1);
		sizecache_parse(&c, copy, imglen);
		is_int(c.count, 2, "cache round trip keeps two entries (a key with a space is left out)");
		ok(sizecache_lookup(&c, "1.M1.h", 6, 100, 1700000000, &size) && size == 104, "cache hit");
		ok(!sizecache_lookup(&c, "1.M1.h", 6, 101, 1700000000, &size), "changed size is a miss");
		ok(!sizecache_lookup(&c, "1.M1.h", 6, 100, 1700000009, &size), "changed mtime is a miss");
		ok(!sizecache_lookup(&c, "3.M3.h", 6, 1, 1, &size), "unknown key is a miss");
		sizecache_free(&c);

		for (size_t cut = 0; cut < imglen; cut += 7) {
			copy = malloc(imglen + 1);
			memcpy(copy, img, cut);
			copy[cut] = '\0';
			sizecache_parse(&c, copy, cut);
			if (!ok(c.count == 0, "truncated cache (%zu octets) is ignored", cut))
				break;
			sizecache_free(&c);
		}
		copy = malloc(imglen + 1);
		memcpy(copy, img, imglen + 1);
		copy[40] ^= 1;	/* flip one bit in an entry */
		sizecache_parse(&c, copy, imglen);
		is_int(c.count, 0, "a flipped bit fails the checksum");
		sizecache_free(&c);
		copy = malloc(imglen + 1);
		memcpy(copy, img, imglen + 1);
		copy[26] = '9';	/* version */
		sizecache_parse(&c, copy, imglen);
		is_int(c.count, 0, "a foreign version is ignored");
		sizecache_free(&c);
		free(img);
		free(wr.buf);
	}
	return done_testing();
}
