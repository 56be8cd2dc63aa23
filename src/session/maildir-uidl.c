/* UIDLs and order at login: what earlier sessions answered, else the previous server's (dovecot-uidlist, courierpop3dsizelist), else the name's own, unique within the session; runs as the mailbox owner. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "maildir-int.h"
#include "takeover.h"

void
maildir_uidl(const struct maildir *md, uint32_t idx, char out[LIMIT_UIDL_LEN + 1])
{
	const struct msg *m = &md->msgs[idx];

	if (m->uidl_len > 0) {
		memcpy(out, md->arena + m->uidl_off, m->uidl_len);
		out[m->uidl_len] = '\0';
	} else
		maildir_uidl_of(maildir_name(md, idx), m->uniq_len, out);
}

/* With auto, the file the previous server wrote last: an IMAP server left
 * running on the Maildir keeps its own file fresh, but the POP3 server that
 * is replaced wrote its file at its last session. */
static enum takeover_kind
pick_source(const struct maildir *md, enum maildir_uidl_source src)
{
	struct stat d, c;
	bool hd, hc;

	switch (src) {
	case UIDL_SOURCE_NONE:
		return TAKEOVER_NONE;
	case UIDL_SOURCE_DOVECOT:
		return TAKEOVER_DOVECOT;
	case UIDL_SOURCE_COURIER:
		return TAKEOVER_COURIER;
	case UIDL_SOURCE_AUTO:
		break;
	}
	hd = fstatat(md->dirfd, TAKEOVER_DOVECOT_NAME, &d, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(d.st_mode);
	hc = fstatat(md->dirfd, TAKEOVER_COURIER_NAME, &c, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(c.st_mode);
	if (hd && hc)
		return maildir_mtime_ns(&c) > maildir_mtime_ns(&d) ? TAKEOVER_COURIER : TAKEOVER_DOVECOT;
	return hd ? TAKEOVER_DOVECOT : hc ? TAKEOVER_COURIER : TAKEOVER_NONE;
}

/* A UIDL that is certainly not another message's: 32 hex digits of the
 * hash of the unique part and a counter. */
static int
set_digest(struct maildir *md, uint32_t idx, unsigned salt)
{
	char buf[LIMIT_MAILDIR_NAME + 16], out[LIMIT_UIDL_LEN + 1];
	struct msg *m = &md->msgs[idx];
	size_t n = m->uniq_len;

	memcpy(buf, maildir_name(md, idx), n);
	buf[n++] = '\0';
	buf[n++] = (char)(salt & 0xff);
	buf[n++] = (char)(salt >> 8 & 0xff);
	buf[n++] = (char)(salt >> 16 & 0xff);
	/* Longer than LIMIT_UIDL_LEN or with a NUL: always the digest form. */
	memset(buf + n, 0, sizeof(buf) - n);
	maildir_uidl_of(buf, LIMIT_UIDL_LEN + 1 > n ? LIMIT_UIDL_LEN + 1 : n, out);
	if (maildir_arena_add(md, out, strlen(out), &m->uidl_off) == -1)
		return -1;
	m->uidl_len = (uint8_t)strlen(out);
	return 0;
}

struct uidl_set {
	uint32_t	*slots;		/* message index + 1, 0 = empty */
	uint32_t	 mask;
};

static uint32_t
uidl_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Adds message idx; false when another message already has its UIDL. */
static bool
set_add(struct uidl_set *set, const struct maildir *md, uint32_t idx)
{
	char u[LIMIT_UIDL_LEN + 1], o[LIMIT_UIDL_LEN + 1];
	uint32_t slot, j;

	maildir_uidl(md, idx, u);
	slot = uidl_hash(u) & set->mask;
	while ((j = set->slots[slot]) != 0) {
		maildir_uidl(md, j - 1, o);
		if (strcmp(u, o) == 0)
			return false;
		slot = (slot + 1) & set->mask;
	}
	set->slots[slot] = idx + 1;
	return true;
}

/* Makes every UIDL unique: first what earlier sessions answered, then the
 * rest, each in maildrop order; the first holder of a UIDL keeps it, a
 * later one gets its own (name-derived) UIDL, or a digest when even that is
 * taken.  Returns how many changed; *kept_changed when a recorded one did. */
static uint32_t
make_unique(struct maildir *md, bool *kept_changed)
{
	struct uidl_set set;
	uint32_t cap, i, changed = 0;

	for (cap = 16; cap < (uint64_t)md->count * 2; cap <<= 1)
		;
	set.slots = calloc(cap, sizeof(*set.slots));
	if (set.slots == NULL)
		return 0;
	set.mask = cap - 1;
	for (int pass = 0; pass < 2; pass++)
		for (i = 0; i < md->count; i++) {
			struct msg *m = &md->msgs[i];
			unsigned salt = 0;

			if ((m->uidl_src == UIDL_KEPT) != (pass == 0))
				continue;
			if (set_add(&set, md, i))
				continue;
			changed++;
			if (m->uidl_src == UIDL_KEPT)
				*kept_changed = true;
			md->uidl_from[m->uidl_src]--;
			m->uidl_src = UIDL_OWN;
			md->uidl_from[UIDL_OWN]++;
			if (m->uidl_len > 0) {
				m->uidl_len = 0;
				if (set_add(&set, md, i))
					continue;
			}
			while (set_digest(md, i, salt++) == 0 && !set_add(&set, md, i))
				;
		}
	free(set.slots);
	return changed;
}

struct ord {
	uint64_t	key;
	uint32_t	idx;
};

static int
cmp_ord(const void *pa, const void *pb)
{
	const struct ord *a = pa, *b = pb;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The messages the old file knows first, in its order; the others after
 * them in arrival order (the order they are in now). */
static void
reorder(struct maildir *md, const uint64_t *key)
{
	struct ord *o;
	struct msg *n;
	uint32_t i;

	/* Usually the old server numbered them in arrival order too. */
	for (i = 1; i < md->count && key[i - 1] <= key[i]; i++)
		;
	if (i >= md->count)
		return;
	o = malloc((size_t)md->count * sizeof(*o));
	n = malloc((size_t)md->count * sizeof(*n));
	if (o == NULL || n == NULL) {
		free(o);
		free(n);
		return;		/* arrival order then */
	}
	for (i = 0; i < md->count; i++) {
		o[i].key = key[i];
		o[i].idx = i;
	}
	qsort(o, md->count, sizeof(*o), cmp_ord);
	for (i = 0; i < md->count; i++) {
		n[i] = md->msgs[o[i].idx];
		if (o[i].idx != i)
			md->reordered = true;
	}
	free(md->msgs);
	md->msgs = n;
	free(o);
}

bool
maildir_assign_uidls(struct maildir *md, const struct maildir_config *cfg)
{
	const char *fmt = cfg->uidl_format != NULL ? cfg->uidl_format : TAKEOVER_DOVECOT_DEFAULT_FORMAT;
	enum takeover_kind kind = pick_source(md, cfg->uidl_source);
	const char *fname = kind == TAKEOVER_COURIER ? TAKEOVER_COURIER_NAME : TAKEOVER_DOVECOT_NAME;
	uint64_t *key = NULL;
	uint32_t i, damaged = 0, dups;
	bool kept_changed = false, known = false;
	struct takeover t;

	memset(&t, 0, sizeof(t));
	if (kind != TAKEOVER_NONE && md->count > 0) {
		if (takeover_load(&t, md->dirfd, kind) == -1) {
			if (errno != ENOENT)
				log_warn("%s not read, own UIDLs", fname);
			kind = TAKEOVER_NONE;
		} else if (t.bad_header) {
			log_warnx("%s: damaged header, not used: own UIDLs", fname);
			kind = TAKEOVER_NONE;
		} else if (t.bad_lines > 0)
			log_warnx("%s: %u damaged lines skipped: their messages get own UIDLs",
			    fname, (unsigned)t.bad_lines);
	}
	if (kind != TAKEOVER_NONE && t.count > 0)
		key = malloc((size_t)md->count * sizeof(*key));
	for (i = 0; i < md->count; i++) {
		struct msg *m = &md->msgs[i];
		const struct takeover_entry *e = NULL;
		char u[LIMIT_UIDL_LEN + 1];

		if (key != NULL) {
			e = takeover_find(&t, maildir_name(md, i), m->uniq_len);
			key[i] = e != NULL ? e->order : UINT64_MAX;
			known |= e != NULL;
		}
		if (m->uidl_src != UIDL_KEPT && e != NULL) {
			if (takeover_uidl(&t, e, fmt, maildir_name(md, i), m->uniq_len, u)) {
				if (maildir_arena_add(md, u, strlen(u), &m->uidl_off) == 0) {
					m->uidl_len = (uint8_t)strlen(u);
					m->uidl_src = kind == TAKEOVER_DOVECOT ? UIDL_DOVECOT : UIDL_COURIER;
				}
			} else
				damaged++;
		}
		md->uidl_from[m->uidl_src]++;
	}
	if (damaged > 0)
		log_warnx("%s: %u UIDLs not usable (not 1-70 printable octets): own UIDLs instead",
		    fname, (unsigned)damaged);
	if (known)
		reorder(md, key);
	free(key);
	takeover_free(&t);
	dups = make_unique(md, &kept_changed);
	if (dups > 0)
		log_warnx("maildir: %u duplicate UIDLs: the first message in order keeps each, "
		    "the others get their own", (unsigned)dups);
	return kept_changed;
}
