/* Reading the previous POP3 server's state file (dovecot-uidlist v1/v3, courierpop3dsizelist v0-v3) with every line and field bounded, and answering that server's UIDL and order for a message; pure except takeover_load, runs as the mailbox owner. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadline.h"
#include "proto.h"
#include "sizecache.h"
#include "takeover.h"

/* Decimal without sign, at most max; p..end.  Advances *pp. */
static bool
num(const char **pp, const char *end, uint64_t max, uint64_t *v_r)
{
	size_t n = proto_scan_u64(*pp, (size_t)(end - *pp), max, v_r);

	*pp += n;
	return n > 0;
}

static size_t
base_len(const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);

	return colon != NULL ? (size_t)(colon - name) : len;
}

static uint32_t
key_hash(const char *key, size_t len)
{
	return (uint32_t)sizecache_fnv64(key, len, FNV64_BASIS);
}

static void
reset(struct takeover *t)
{
	free(t->buf);
	free(t->ents);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

void
takeover_free(struct takeover *t)
{
	reset(t);
}

/* Room for one more entry; the table is built once all are read. */
static struct takeover_entry *
add_entry(struct takeover *t, uint32_t *cap)
{
	if (t->count == *cap) {
		uint32_t ncap = *cap ? *cap * 2 : 1024;
		struct takeover_entry *n;

		if (*cap >= LIMIT_MESSAGES) {
			errno = EFBIG;
			return NULL;
		}
		n = realloc(t->ents, (size_t)ncap * sizeof(*n));
		if (n == NULL)
			return NULL;
		t->ents = n;
		*cap = ncap;
	}
	memset(&t->ents[t->count], 0, sizeof(t->ents[0]));
	return &t->ents[t->count];
}

/* Hash table over the base names.  With later_wins a later line for the
 * same name replaces the earlier one (Dovecot's reading), else the first
 * stays (Courier's merge of its sorted list). */
static int
index_entries(struct takeover *t, bool later_wins)
{
	uint32_t cap, i;

	for (cap = 16; cap < (uint64_t)t->count * 2; cap <<= 1)
		;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (t->slots == NULL)
		return -1;
	t->mask = cap - 1;
	for (i = 0; i < t->count; i++) {
		const struct takeover_entry *e = &t->ents[i];
		uint32_t slot = key_hash(t->buf + e->key_off, e->key_len) & t->mask, j;

		while ((j = t->slots[slot]) != 0) {
			const struct takeover_entry *o = &t->ents[j - 1];

			if (o->key_len == e->key_len &&
			    memcmp(t->buf + o->key_off, t->buf + e->key_off, e->key_len) == 0)
				break;
			slot = (slot + 1) & t->mask;
		}
		if (j == 0 || later_wins)
			t->slots[slot] = i + 1;
	}
	return 0;
}

const struct takeover_entry *
takeover_find(const struct takeover *t, const char *key, size_t len)
{
	uint32_t slot, i;

	if (t->slots == NULL)
		return NULL;
	slot = key_hash(key, len) & t->mask;
	while ((i = t->slots[slot]) != 0) {
		const struct takeover_entry *e = &t->ents[i - 1];

		if (e->key_len == len && memcmp(t->buf + e->key_off, key, len) == 0)
			return e;
		slot = (slot + 1) & t->mask;
	}
	return NULL;
}

/* The next line of the image: [*pos, *line_end), *pos moves past its LF.
 * A last line without LF counts (a file cut short loses at most it). */
static bool
next_line(const struct takeover *t, size_t *pos, const char **line, const char **line_end)
{
	const char *p, *nl;

	if (*pos >= t->len)
		return false;
	p = t->buf + *pos;
	nl = memchr(p, '\n', t->len - *pos);
	*line = p;
	*line_end = nl != NULL ? nl : t->buf + t->len;
	*pos = (size_t)(*line_end - t->buf) + 1;
	return true;
}

/* ---- Dovecot: dovecot-uidlist ----
 *
 * Version 1: "1 <uidvalidity> <next uid>", then "<uid> <file name>".
 * Version 3: "3 V<uidvalidity> N<next uid> G<mailbox guid> ...", then
 * "<uid> [<key letter><value> ...] :<base name>"; key letters A-Z: P POP3
 * UIDL, O POP3 order, G message GUID, S and W sizes.
 * (Dovecot src/lib-storage/index/maildir/maildir-uidlist.c:
 * maildir_uidlist_read_header, maildir_uidlist_read_v3_header,
 * maildir_uidlist_next, maildir_uidlist_read_extended.) */

static bool
dovecot_header(struct takeover *t, const char *p, const char *end)
{
	uint64_t v, next = 0;

	if (end - p < 2 || (p[0] != '1' && p[0] != '3') || p[1] != ' ')
		return false;
	t->version = p[0] - '0';
	p += 2;
	if (t->version == 1) {
		if (!num(&p, end, UINT32_MAX, &v) || p >= end || *p++ != ' ' ||
		    !num(&p, end, UINT32_MAX, &next))
			return false;
		t->uidvalidity = (uint32_t)v;
	} else {
		while (p < end) {
			char key = *p++;
			const char *val = p;

			while (p < end && *p != ' ')
				p++;
			if (key == 'V' || key == 'N') {
				const char *q = val;

				if (!num(&q, p, UINT32_MAX, &v) || q != p)
					return false;
				if (key == 'V')
					t->uidvalidity = (uint32_t)v;
				else
					next = v;
			}
			while (p < end && *p == ' ')
				p++;
		}
	}
	/* Dovecot refuses a header without both. */
	return t->uidvalidity != 0 && next != 0;
}

static bool
dovecot_line(struct takeover *t, struct takeover_entry *e, const char *p, const char *end)
{
	uint64_t uid, order;
	const char *name;

	/* Dovecot: 0 < uid < 2^32 - 1. */
	if (!num(&p, end, UINT32_MAX - 1, &uid) || uid == 0 || p >= end || *p != ' ')
		return false;
	e->uid = (uint32_t)uid;
	e->order = (uint64_t)1 << 32 | uid;	/* no O field: after those with one, by UID */
	while (p < end && *p == ' ')
		p++;
	if (t->version == 3) {
		while (p < end && *p != ':') {
			const char *f = p;
			size_t flen;

			while (p < end && *p != ' ')
				p++;
			flen = (size_t)(p - f);
			if (flen > LIMIT_TAKEOVER_FIELD)
				return false;
			switch (*f) {
			case 'P':
				e->has_p = 1;
				e->p_off = (uint32_t)(f + 1 - t->buf);
				e->p_len = (uint16_t)(flen - 1);
				break;
			case 'G':
				e->g_off = (uint32_t)(f + 1 - t->buf);
				e->g_len = (uint16_t)(flen - 1);
				break;
			case 'O': {
				const char *q = f + 1;

				/* Dovecot: str_to_uoff, else "no order". */
				if (num(&q, p, UINT32_MAX - 1, &order) && q == p)
					e->order = order;
				break;
			}
			default:
				/* S, W and others; not A-Z: Dovecot drops the field. */
				break;
			}
			while (p < end && *p == ' ')
				p++;
		}
		if (p >= end || *p != ':')
			return false;
		p++;
	}
	name = p;
	if (p >= end || memchr(p, '/', (size_t)(end - p)) != NULL ||
	    memchr(p, '\0', (size_t)(end - p)) != NULL)
		return false;
	e->key_off = (uint32_t)(name - t->buf);
	e->key_len = (uint16_t)base_len(name, (size_t)(end - name));
	return e->key_len > 0 && e->key_len <= LIMIT_MAILDIR_NAME;
}

static int
parse(struct takeover *t, char *buf, size_t len, enum takeover_kind kind)
{
	const char *line, *end;
	size_t pos = 0;
	uint32_t cap = 0, lineno = 0;
	uint64_t courier_ver = 0;

	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->buf = buf;
	t->len = len;
	buf[len] = '\0';
	if (len > LIMIT_TAKEOVER_FILE || !next_line(t, &pos, &line, &end) ||
	    end - line > LIMIT_TAKEOVER_LINE) {
		t->bad_header = true;
		return 0;
	}
	if (kind == TAKEOVER_DOVECOT) {
		if (!dovecot_header(t, line, end)) {
			t->bad_header = true;
			return 0;
		}
	} else if (line[0] == '/') {
		/* Courier: "/<version> <next uid> [<uidvalidity>]". */
		const char *p = line + 1;

		if (!num(&p, end, 9, &courier_ver) || courier_ver < 1 || courier_ver > 3) {
			t->bad_header = true;
			return 0;
		}
		t->version = (int)courier_ver;
	} else {
		t->version = 0;		/* no header: the first line is an entry */
		pos = 0;
	}
	while (next_line(t, &pos, &line, &end)) {
		struct takeover_entry *e;
		bool ok;

		lineno++;
		if ((e = add_entry(t, &cap)) == NULL) {
			if (errno == EFBIG)
				break;
			reset(t);
			return -1;
		}
		if (end - line > LIMIT_TAKEOVER_LINE)
			ok = false;
		else if (kind == TAKEOVER_DOVECOT)
			ok = dovecot_line(t, e, line, end);
		else {
			ok = false;
			e->order = lineno;
			/* Courier splits at the last two spaces: the name may hold spaces. */
			const char *sp2 = NULL, *sp1 = NULL, *p, *q;
			uint64_t size = 0, uid = 0, uidv = 0, utf8 = 0;

			for (p = end; p > line; p--)
				if (p[-1] == ' ') {
					if (sp2 == NULL && t->version > 0)
						sp2 = p - 1;
					else {
						sp1 = p - 1;
						break;
					}
				}
			if (t->version == 0)
				sp2 = end;
			if (sp1 != NULL && sp2 != NULL && sp1 > line) {
				q = sp1 + 1;
				ok = num(&q, sp2, UINT64_MAX, &size) && q == sp2;
				if (ok && t->version > 0) {
					q = sp2 + 1;
					ok = num(&q, end, UINT32_MAX, &uid);
					if (ok && q < end && *q == ':') {
						q++;
						ok = num(&q, end, UINT32_MAX, &uidv);
						if (ok && q < end && *q == ':' && t->version == 3) {
							q++;
							ok = num(&q, end, INT32_MAX, &utf8);
						}
					} else if (t->version >= 2)
						ok = false;	/* v2, v3: uid:uidv required */
					ok = ok && q == end;
				}
				(void)size;
				(void)utf8;
			}
			if (ok) {
				e->uid = (uint32_t)uid;
				e->uidv = (uint32_t)uidv;
				e->key_off = (uint32_t)(line - t->buf);
				e->key_len = (uint16_t)base_len(line, (size_t)(sp1 - line));
				ok = e->key_len > 0 && e->key_len <= LIMIT_MAILDIR_NAME &&
				    memchr(line, '\0', (size_t)(sp1 - line)) == NULL;
			}
		}
		if (!ok) {
			t->bad_lines++;
			continue;
		}
		t->count++;
	}
	if (index_entries(t, kind == TAKEOVER_DOVECOT) == -1) {
		reset(t);
		return -1;
	}
	return 0;
}

int
takeover_parse_dovecot(struct takeover *t, char *buf, size_t len)
{
	return parse(t, buf, len, TAKEOVER_DOVECOT);
}

int
takeover_parse_courier(struct takeover *t, char *buf, size_t len)
{
	return parse(t, buf, len, TAKEOVER_COURIER);
}

int
takeover_load(struct takeover *t, int dirfd, enum takeover_kind kind)
{
	const char *name = kind == TAKEOVER_DOVECOT ? TAKEOVER_DOVECOT_NAME : TAKEOVER_COURIER_NAME;
	size_t got;
	char *buf;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd == -1)
		return -1;
	rc = fd_read_file(fd, LIMIT_TAKEOVER_FILE, &buf, &got);
	close(fd);
	if (rc == -1)
		return -1;
	return parse(t, buf, got, kind);
}

/* ---- UIDLs ---- */

static bool
valid_uidl(const char *s, size_t len)
{
	if (len < 1 || len > LIMIT_UIDL_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

bool
takeover_uidl(const struct takeover *t, const struct takeover_entry *e, const char *fmt,
    const char *key, size_t key_len, char *out)
{
	char tmp[LIMIT_UIDL_LEN + 2];
	size_t n = 0;
	const char *err;

	if (t->kind == TAKEOVER_DOVECOT) {
		struct uidl_vars v;

		if (e->has_p && e->p_len > 0) {
			/* Dovecot: an explicit UIDL (maildir_mail_get_special,
			 * MAIL_FETCH_UIDL_BACKEND). */
			if (!valid_uidl(t->buf + e->p_off, e->p_len))
				return false;
			memcpy(out, t->buf + e->p_off, e->p_len);
			out[e->p_len] = '\0';
			return true;
		}
		if (e->has_p) {
			/* An empty P: the base file name. */
			if (!valid_uidl(key, key_len))
				return false;
			memcpy(out, key, key_len);
			out[key_len] = '\0';
			return true;
		}
		v.uid = e->uid;
		v.uidvalidity = t->uidvalidity;
		v.filename = key;
		v.filename_len = key_len;
		/* MAIL_FETCH_GUID: the G field, else the base file name. */
		v.guid = e->g_len > 0 ? t->buf + e->g_off : key;
		v.guid_len = e->g_len > 0 ? e->g_len : key_len;
		if (!takeover_format(fmt, &v, tmp, sizeof(tmp), &err))
			return false;
		n = strlen(tmp);
		if (!valid_uidl(tmp, n))
			return false;
		memcpy(out, tmp, n + 1);
		return true;
	}
	/* Courier imap/pop3dserver.c print_uidl(): "UID<n>-<uidv>", "UID<n>"
	 * without a UIDVALIDITY, and for an entry without a UID (version 0
	 * files) the base name with octets outside 0x21..0x7E and ' " + as +XX. */
	if (e->uid != 0) {
		if (e->uidv != 0)
			snprintf(tmp, sizeof(tmp), "UID%lu-%lu", (unsigned long)e->uid,
			    (unsigned long)e->uidv);
		else
			snprintf(tmp, sizeof(tmp), "UID%lu", (unsigned long)e->uid);
		n = strlen(tmp);
	} else {
		for (size_t i = 0; i < key_len; i++) {
			unsigned char c = (unsigned char)key[i];

			if (n + 3 > LIMIT_UIDL_LEN)
				return false;
			if (c < 0x21 || c > 0x7e || c == '\'' || c == '"' || c == '+')
				n += (size_t)snprintf(tmp + n, 4, "+%02X", c);
			else
				tmp[n++] = (char)c;
		}
		tmp[n] = '\0';
	}
	if (!valid_uidl(tmp, n))
		return false;
	memcpy(out, tmp, n + 1);
	return true;
}

/* ---- Dovecot's pop3_uidl_format ----
 * The expansion of Dovecot 2.3 src/lib/var-expand.c var_expand_with_funcs()
 * with the table of src/pop3/pop3-commands.c pop3_get_uid(). */

#define MAX_MODIFIERS	10	/* var-expand.c MAX_MODIFIER_COUNT */

static const char format_too_long[] = "too long";

struct obuf {
	char	*p;
	size_t	 len, size;
	bool	 full;
};

static void
oput(struct obuf *o, const char *s, size_t n)
{
	if (o->len + n >= o->size) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* A modifier applied in place to v[0..*n) (room for LIMIT_TAKEOVER_FIELD * 2). */
static bool
modify(char m, char *v, size_t *n)
{
	char tmp[2 * LIMIT_TAKEOVER_FIELD + 2];
	size_t i, k = 0;
	unsigned long long x = 0;

	switch (m) {
	case 'L':
	case 'U':
		for (i = 0; i < *n; i++)
			if (m == 'L' && v[i] >= 'A' && v[i] <= 'Z')
				v[i] = (char)(v[i] - 'A' + 'a');
			else if (m == 'U' && v[i] >= 'a' && v[i] <= 'z')
				v[i] = (char)(v[i] - 'a' + 'A');
		return true;
	case 'X':
		/* str_to_ullong(): all decimal digits, else 0; then "%llx". */
		for (i = 0; i < *n; i++) {
			if (v[i] < '0' || v[i] > '9' || x > (~0ULL - 9) / 10) {
				x = 0;
				break;
			}
			x = x * 10 + (unsigned long long)(v[i] - '0');
		}
		if (*n == 0)
			x = 0;
		*n = (size_t)snprintf(v, 24, "%llx", x);
		return true;
	case 'R':
		for (i = 0; i < *n / 2; i++) {
			char c = v[i];

			v[i] = v[*n - 1 - i];
			v[*n - 1 - i] = c;
		}
		return true;
	case 'T':
		while (*n > 0 && (v[*n - 1] == ' ' || v[*n - 1] == '\t' || v[*n - 1] == '\r' ||
		    v[*n - 1] == '\n'))
			(*n)--;
		return true;
	case 'E':
		for (i = 0; i < *n; i++) {
			if (k + 2 >= sizeof(tmp))
				return false;
			if (v[i] == '"' || v[i] == '\'' || v[i] == '\\')
				tmp[k++] = '\\';
			tmp[k++] = v[i];
		}
		memcpy(v, tmp, k);
		*n = k;
		return true;
	default:
		return false;
	}
}

static bool
is_modifier(char c)
{
	/* Dovecot 2.3's list; H N M D need hashes or LDAP quoting we do not
	 * carry: refused by lookup below. */
	return c == 'L' || c == 'U' || c == 'E' || c == 'X' || c == 'R' || c == 'H' ||
	    c == 'N' || c == 'M' || c == 'D' || c == 'T';
}

bool
takeover_format(const char *fmt, const struct uidl_vars *vars, char *out, size_t outsize,
    const char **err_r)
{
	struct obuf o = { out, 0, outsize, false };
	const char *s = fmt;

	*err_r = NULL;
	if (outsize == 0)
		return false;
	out[0] = '\0';
	if (strlen(fmt) > LIMIT_UIDL_FORMAT) {
		*err_r = "longer than the limit";
		return false;
	}
	for (; *s != '\0'; s++) {
		char mods[MAX_MODIFIERS], val[2 * LIMIT_TAKEOVER_FIELD + 2], key;
		int sign = 1, offset = 0, width = 0, nmods = 0;
		bool zero = false;
		size_t vn;
		const char *v;

		if (*s != '%') {
			oput(&o, s, 1);
			continue;
		}
		s++;
		if (*s == '-') {
			sign = -1;
			s++;
		}
		if (*s == '0') {
			zero = true;
			s++;
		}
		for (; *s >= '0' && *s <= '9'; s++)
			if ((width = width * 10 + (*s - '0')) > LIMIT_UIDL_LEN * 10) {
				*err_r = "width too large";
				return false;
			}
		if (*s == '.') {
			offset = sign * width;
			sign = 1;
			width = 0;
			s++;
			zero = false;
			if (*s == '0') {
				zero = true;
				s++;
			}
			if (*s == '-') {
				sign = -1;
				s++;
			}
			for (; *s >= '0' && *s <= '9'; s++)
				if ((width = width * 10 + (*s - '0')) > LIMIT_UIDL_LEN * 10) {
					*err_r = "width too large";
					return false;
				}
			width = sign * width;
		}
		while (nmods < MAX_MODIFIERS && is_modifier(*s))
			mods[nmods++] = *s++;
		if (*s == '\0')
			break;		/* Dovecot: a trailing '%' expands to nothing */
		key = *s;
		if (*s == '{') {
			const char *end = strchr(s, '}');
			size_t klen;

			if (end == NULL) {
				*err_r = "unterminated %{";
				return false;
			}
			klen = (size_t)(end - s - 1);
			if (klen == 3 && memcmp(s + 1, "uid", 3) == 0)
				key = 'u';
			else if (klen == 11 && memcmp(s + 1, "uidvalidity", 11) == 0)
				key = 'v';
			else if (klen == 8 && memcmp(s + 1, "filename", 8) == 0)
				key = 'f';
			else if (klen == 4 && memcmp(s + 1, "guid", 4) == 0)
				key = 'g';
			else if (klen == 3 && memcmp(s + 1, "md5", 3) == 0)
				key = 'm';
			else {
				*err_r = "unknown variable";
				return false;
			}
			s = end;
		}
		switch (key) {
		case '%':
			v = "%";
			vn = 1;
			break;
		case 'u':
		case 'v':
			vn = (size_t)snprintf(val, sizeof(val), "%lu",
			    (unsigned long)(key == 'u' ? vars->uid : vars->uidvalidity));
			v = val;
			break;
		case 'f':
			v = vars->filename;
			vn = vars->filename_len;
			break;
		case 'g':
			v = vars->guid;
			vn = vars->guid_len;
			break;
		case 'm':
			*err_r = "%m (header MD5) is for mbox in Dovecot, not Maildir";
			return false;
		default:
			*err_r = "unknown variable";
			return false;
		}
		if (vn > LIMIT_TAKEOVER_FIELD) {
			*err_r = "value too long";
			return false;
		}
		if (v != val) {
			memcpy(val, v, vn);
			v = val;
		}
		for (int i = 0; i < nmods; i++)
			if (!modify(mods[i], val, &vn)) {
				*err_r = "modifier not supported (only L U X R T E)";
				return false;
			}
		if (offset < 0) {
			if (vn > (size_t)-offset) {
				v += vn - (size_t)-offset;
				vn = (size_t)-offset;
			}
		} else {
			size_t skip = (size_t)offset < vn ? (size_t)offset : vn;

			v += skip;
			vn -= skip;
		}
		if (width == 0) {
			oput(&o, v, vn);
		} else if (!zero) {
			long w = width;

			if (w < 0)
				w = (long)vn + w;
			/* str_append_max with a negative width appends it all */
			oput(&o, v, w < 0 || (size_t)w > vn ? vn : (size_t)w);
		} else {
			for (long w = width; w > (long)vn; w--)
				oput(&o, "0", 1);
			oput(&o, v, vn);
		}
	}
	if (o.full) {
		*err_r = format_too_long;
		return false;
	}
	return true;
}

bool
takeover_format_ok(const char *fmt, const char **err_r)
{
	/* Every variable and modifier is checked on any value. */
	struct uidl_vars v = { 1, 1, "1.M1P1.h", 8, "1.M1P1.h", 8 };
	char out[LIMIT_UIDL_LEN + 2];

	/* A value may make it too long for one message, not a wrong format. */
	if (takeover_format(fmt, &v, out, sizeof(out), err_r) || *err_r == format_too_long)
		return true;
	if (*err_r == NULL)
		*err_r = "cannot be expanded";
	return false;
}
