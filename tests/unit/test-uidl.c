/* Unit tests for taking over another POP3 server's UIDLs and order: dovecot-uidlist and courierpop3dsizelist files written by the real Dovecot (and by hand after Courier's reader), pop3_uidl_format expansion, damaged input, arrival order. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"
#include "takeover.h"
#include "tap.h"

static char *
slurp(const char *name, size_t *len_r)
{
	const char *src = getenv("MP_SRCDIR");
	char path[4096];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/tests/data/takeover/%s", src ? src : ".", name);
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		perror(path);
		exit(99);
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(99);
	fclose(f);
	*len_r = (size_t)n;
	return buf;
}

static char *
copy(const char *s, size_t *len_r)
{
	*len_r = strlen(s);
	return strdup(s);
}

/* The UIDL for a file name, or "-" when the file does not know it or its
 * UIDL is unusable. */
static const char *
uidl_for(const struct takeover *t, const char *fmt, const char *name)
{
	static char out[LIMIT_UIDL_LEN + 1];
	size_t ul = maildir_uniq_len(name, strlen(name));
	const struct takeover_entry *e = takeover_find(t, name, ul);

	if (e == NULL || !takeover_uidl(t, e, fmt, name, ul, out))
		return "-";
	return out;
}

/* Every name of a fixture gets the UIDL the real server answered, and the
 * order keys put them in the order it listed them. */
static void
real_fixture(const char *server, const char *fixture, const char *fmt)
{
	char f[256], *names, *want, *p, *q, *saveptr = NULL;
	char got_order[16][80];
	uint64_t keys[16];
	size_t len, nlen, wlen;
	struct takeover t;
	int n = 0;

	bool courier = strcmp(server, "courier") == 0;

	snprintf(f, sizeof(f), "%s-%s.%s", server, fixture, courier ? "sizelist" : "uidlist");
	p = slurp(f, &len);
	ok((courier ? takeover_parse_courier(&t, p, len) : takeover_parse_dovecot(&t, p, len)) == 0 &&
	    !t.bad_header && t.bad_lines == 0, "%s %s: the server's file parses cleanly", server, fixture);
	snprintf(f, sizeof(f), "%s-%s.names", server, fixture);
	names = slurp(f, &nlen);
	names[nlen] = '\0';
	snprintf(f, sizeof(f), "%s-%s.uidl", server, fixture);
	want = slurp(f, &wlen);
	want[wlen] = '\0';
	for (q = strtok_r(names, "\n", &saveptr); q != NULL && n < 16; q = strtok_r(NULL, "\n", &saveptr)) {
		size_t ul = maildir_uniq_len(q, strlen(q));
		const struct takeover_entry *e = takeover_find(&t, q, ul);

		keys[n] = e != NULL ? e->order : UINT64_MAX;
		snprintf(got_order[n], sizeof(got_order[n]), "%s", uidl_for(&t, fmt, q));
		n++;
	}
	/* Sort by the order key and print "msn uidl" as Dovecot did. */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (keys[j] < keys[i]) {
				uint64_t k = keys[i];
				char tmp[80];

				keys[i] = keys[j];
				keys[j] = k;
				memcpy(tmp, got_order[i], 80);
				memcpy(got_order[i], got_order[j], 80);
				memcpy(got_order[j], tmp, 80);
			}
	{
		char got[4096];
		size_t off = 0;

		got[0] = '\0';
		for (int i = 0; i < n; i++)
			off += (size_t)snprintf(got + off, sizeof(got) - off, "%d %s\r\n", i + 1,
			    got_order[i]);
		is_str(got, want, "%s %s: the UIDL list and order the server answered", server, fixture);
	}
	free(names);
	free(want);
	takeover_free(&t);
}

static void
dovecot_by_hand(void)
{
	struct takeover t;
	size_t len;
	char *p;

	p = slurp("dovecot-v1.uidlist", &len);
	ok(takeover_parse_dovecot(&t, p, len) == 0 && t.version == 1 && t.count == 3 &&
	    t.uidvalidity == 1700000000, "version 1: header and three lines");
	is_str(uidl_for(&t, TAKEOVER_DOVECOT_DEFAULT_FORMAT, "1700000000.M1P1.host:2,S"),
	    "000000016553f100", "version 1: default format from uid 1, uidvalidity 1700000000");
	is_str(uidl_for(&t, TAKEOVER_DOVECOT_DEFAULT_FORMAT, "1700000002.M3P3.host"),
	    "000000036553f100", "version 1: a name stored with flags is found by its base");
	takeover_free(&t);

	/* P wins over the format, O over the UID, a line without O after those
	 * with one; damaged lines are skipped and counted; a later line for
	 * the same name replaces the earlier one, as Dovecot reads it. */
	p = copy("3 V7 N9 Gabc\n"
	    "1 O2 P<uidl1> :a.M1.h\n"
	    "2 :b.M2.h\n"
	    "3 O1 :c.M3.h\n"
	    "x :junk\n"
	    "4 P :d.M4.h\n"
	    "5 Pwith\x7f :e.M5.h\n"
	    "6 Gguid6 :f.M6.h\n"
	    "7 :sub/dir\n"
	    "8 :b.M2.h\n"
	    "9 no colon\n", &len);
	ok(takeover_parse_dovecot(&t, p, len) == 0 && t.bad_lines == 3,
	    "version 3: three damaged lines (no number, a slash, no ':')");
	is_str(uidl_for(&t, "%u", "a.M1.h"), "<uidl1>", "P holds the UIDL");
	is_str(uidl_for(&t, "%u", "d.M4.h:2,S"), "d.M4.h", "an empty P is the base name");
	is_str(uidl_for(&t, "%u", "e.M5.h"), "-", "a P that is no valid UIDL is not used");
	is_str(uidl_for(&t, "%g", "f.M6.h"), "guid6", "%%g is the G field");
	is_str(uidl_for(&t, "%g", "b.M2.h"), "b.M2.h", "%%g without G is the base name");
	is_str(uidl_for(&t, "%u", "b.M2.h"), "8", "a later line for a name replaces the earlier");
	ok(takeover_find(&t, "c.M3.h", 6)->order < takeover_find(&t, "a.M1.h", 6)->order &&
	    takeover_find(&t, "a.M1.h", 6)->order < takeover_find(&t, "d.M4.h", 6)->order,
	    "O orders first, then the UID");
	takeover_free(&t);

	p = copy("2 V1 N2\n1 :a\n", &len);
	ok(takeover_parse_dovecot(&t, p, len) == 0 && t.bad_header && t.count == 0,
	    "version 2 is not Dovecot's: unused");
	takeover_free(&t);
	p = copy("3 N2\n1 :a\n", &len);
	ok(takeover_parse_dovecot(&t, p, len) == 0 && t.bad_header, "no UIDVALIDITY: unused");
	takeover_free(&t);
	p = copy("3 V99999999999 N2\n", &len);
	ok(takeover_parse_dovecot(&t, p, len) == 0 && t.bad_header, "UIDVALIDITY over 32 bits: unused");
	takeover_free(&t);
	p = copy("", &len);
	ok(takeover_parse_dovecot(&t, p, len) == 0 && t.bad_header, "an empty file: unused");
	takeover_free(&t);
	{
		char *big = malloc(LIMIT_TAKEOVER_LINE + 64);

		strcpy(big, "3 V1 N5\n1 P");
		memset(big + 11, 'x', LIMIT_TAKEOVER_LINE);
		strcpy(big + 11 + LIMIT_TAKEOVER_LINE, " :a\n2 :b\n");
		ok(takeover_parse_dovecot(&t, big, strlen(big)) == 0 && t.bad_lines == 1 &&
		    t.count == 1, "a line over LIMIT_TAKEOVER_LINE is damaged, the next one is read");
		takeover_free(&t);
	}
}

static void
courier(void)
{
	struct takeover t;
	size_t len;
	char *p;

	p = slurp("courier-v3.sizelist", &len);
	ok(takeover_parse_courier(&t, p, len) == 0 && t.version == 3 && t.count == 3, "Courier v3 parses");
	is_str(uidl_for(&t, NULL, "1700000000.M1P1.host:2,S"), "UID1-1700000500", "v3: UID<n>-<uidv>");
	is_str(uidl_for(&t, NULL, "1700000002.M3P3.host:2,RS"), "UID4-1700000400",
	    "v3: the line's own UIDVALIDITY, found by the base name");
	takeover_free(&t);
	p = slurp("courier-v2.sizelist", &len);
	ok(takeover_parse_courier(&t, p, len) == 0 && t.version == 2 && t.count == 2, "Courier v2 parses");
	is_str(uidl_for(&t, NULL, "1600000001.M2P2.host"), "UID3-1600000000", "v2: UID<n>-<uidv>");
	takeover_free(&t);
	p = slurp("courier-v1.sizelist", &len);
	ok(takeover_parse_courier(&t, p, len) == 0 && t.version == 1 && t.count == 2, "Courier v1 parses");
	is_str(uidl_for(&t, NULL, "1500000000.M1P1.host"), "UID1", "v1 without UIDVALIDITY: UID<n>");
	is_str(uidl_for(&t, NULL, "1500000001.M2P2.host"), "UID2-1500000000", "v1 with one: UID<n>-<uidv>");
	takeover_free(&t);
	p = slurp("courier-v0.sizelist", &len);
	ok(takeover_parse_courier(&t, p, len) == 0 && t.version == 0 && t.count == 2,
	    "Courier v0 (no header) parses");
	is_str(uidl_for(&t, NULL, "1400000000.M1P1.host"), "1400000000.M1P1.host", "v0: the base name");
	is_str(uidl_for(&t, NULL, "1400000001.P2+x\"y.host"), "1400000001.P2+2Bx+22y.host",
	    "v0: + \" ' and octets outside 0x21-0x7E as +XX");
	takeover_free(&t);

	p = copy("/3 9 5\nname with spaces:2,S 10 7:5:0\nbad 10 7\n 10 1:2:0\nx 10 1:2:0 \n/9\n", &len);
	ok(takeover_parse_courier(&t, p, len) == 0 && t.count == 1 && t.bad_lines == 4,
	    "a name with spaces is split at the last two; lines without uid:uidv, name or with junk are damaged");
	is_str(uidl_for(&t, NULL, "name with spaces"), "UID7-5", "the name with spaces is found");
	takeover_free(&t);
	p = copy("/4 1 2\na 1 1:2:0\n", &len);
	ok(takeover_parse_courier(&t, p, len) == 0 && t.bad_header, "an unknown version: unused");
	takeover_free(&t);
}

static const char *
fmt(const char *f, uint32_t uid, uint32_t uidv, const char *name)
{
	static char out[LIMIT_UIDL_LEN + 2];
	struct uidl_vars v = { uid, uidv, name, strlen(name), name, strlen(name) };
	const char *err;

	if (!takeover_format(f, &v, out, sizeof(out), &err))
		return err;
	return out;
}

static void
formats(void)
{
	const char *err;

	/* Outputs as Dovecot 2.3.19 expanded them (the "format" fixture). */
	is_str(fmt("%08Xu%08Xv", 1, 1796430150, "n"), "000000016b135946", "default: lowercase hex");
	is_str(fmt("%08XUu", 255, 0, "n"), "000000FF", "X then U: uppercase hex");
	is_str(fmt("%3f", 0, 0, "1796430178.M2"), "179", "a width cuts");
	is_str(fmt("%-4.2v", 0, 1796430178, "n"), "01", "a negative offset counts from the end");
	is_str(fmt("%0.05u", 3, 0, "n"), "00003", "a zero width pads");
	is_str(fmt("%Lf", 0, 0, "A.M1P2,S=3"), "a.m1p2,s=3", "L lowercases");
	is_str(fmt("%Rf%%", 0, 0, "abc"), "cba%", "R reverses, %%%% is a percent");
	is_str(fmt("%Xf", 0, 0, "abc"), "0", "X of a non-number is 0, as Dovecot's str_to_ullong");
	is_str(fmt("%{uid}.%{uidvalidity}", 5, 6, "n"), "5.6", "long names");
	ok(!takeover_format_ok("%m", &err) && strstr(err, "mbox") != NULL, "%%m is refused: mbox only");
	ok(!takeover_format_ok("%Mu", &err), "the M modifier (MD5) is refused");
	ok(!takeover_format_ok("%q", &err), "an unknown variable is refused");
	ok(!takeover_format_ok("%{uid", &err), "an unterminated %%{ is refused");
	ok(takeover_format_ok("%f%f%f%f", &err), "a format that can be too long for a name is accepted");
	is_str(fmt("%f%f", 0, 0, "0123456789012345678901234567890123456789"), "too long",
	    "an expansion over 70 octets is not a UIDL");
}

/* Dovecot answered these UIDLs of over 70 octets (RFC 1939 allows 70):
 * the expansion is the same, but they are not answered (own UIDLs). */
static void
format_fixture(void)
{
	const char *f = "%08XUu-%g-%3f-%-4.2v-%Lf-%0.05u";
	char out[256];
	const char *err;
	const char *name = "1796430178.M254849P13900.vm,S=23,W=26";
	struct uidl_vars v = { 1, 1796430178, name, strlen(name), name, strlen(name) };
	struct takeover t;
	size_t len;
	char *p = slurp("dovecot-format.uidlist", &len);

	ok(takeover_format(f, &v, out, sizeof(out), &err) &&
	    strcmp(out, "00000001-1796430178.M254849P13900.vm,S=23,W=26-179-01-"
	    "1796430178.m254849p13900.vm,s=23,w=26-00001") == 0,
	    "format: the expansion Dovecot answered (fixture dovecot-format.uidl)");
	ok(takeover_parse_dovecot(&t, p, len) == 0 && t.count == 3, "format: the file parses");
	is_str(uidl_for(&t, f, "1796430178.M254849P13900.vm,S=23,W=26:2,S"), "-",
	    "format: a UIDL over 70 octets is not used");
	takeover_free(&t);
}

static void
arrival(void)
{
	ok(maildir_arrival("1700000000.M112000P123.host", 27) > maildir_arrival("1700000000.M17800P124.host", 26),
	    "M112000 arrives after M17800 in the same second");
	ok(maildir_arrival("1700000001.M1P1.host", 20) > maildir_arrival("1700000000.M999999P1.host", 25),
	    "a later second arrives later whatever the microseconds");
	is_int(maildir_arrival("1700000000.P1.host", 18), (int64_t)(1700000000ULL << 20),
	    "no M field: 0 microseconds");
	is_int(maildir_arrival("1700000000.P1M5.host", 20), (int64_t)(1700000000ULL << 20 | 5),
	    "the first M inside the uniqueness part");
	is_int(maildir_arrival("99999999999999999999.M1.h", 25), (int64_t)(((1ULL << 44) - 1) << 20 | 1),
	    "an absurd time is clamped");
}

int
main(void)
{
	real_fixture("dovecot", "default", TAKEOVER_DOVECOT_DEFAULT_FORMAT);
	real_fixture("dovecot", "saved", "%v.%u");
	real_fixture("dovecot", "empty-p", "%f");
	/* Courier orders same-second names by octets: M112000 before M17800. */
	real_fixture("courier", "real", NULL);
	format_fixture();
	dovecot_by_hand();
	courier();
	formats();
	arrival();
	done_testing();
}
