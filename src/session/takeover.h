/* The state files of the POP3 server that served the Maildir before (Dovecot's dovecot-uidlist, Courier's courierpop3dsizelist): bounded parsers, lookup by unique part, their UIDLs and order; pure, runs as the mailbox owner (and in the fuzzers). */
#ifndef MP_TAKEOVER_H
#define MP_TAKEOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pop3d-limits.h"

#define TAKEOVER_DOVECOT_NAME	"dovecot-uidlist"
#define TAKEOVER_COURIER_NAME	"courierpop3dsizelist"

/* Dovecot's pop3_uidl_format default since v1.1 (doc/wiki POP3Server.txt). */
#define TAKEOVER_DOVECOT_DEFAULT_FORMAT	"%08Xu%08Xv"

enum takeover_kind {
	TAKEOVER_NONE = 0,
	TAKEOVER_DOVECOT,
	TAKEOVER_COURIER,
};

/* One message the old file knows.  Offsets are into the file image. */
struct takeover_entry {
	uint32_t	key_off;	/* base name: the file name up to ':' */
	uint16_t	key_len;
	uint16_t	p_len;		/* Dovecot: P (POP3 UIDL) value */
	uint32_t	p_off;
	uint32_t	g_off;		/* Dovecot: G (GUID) value */
	uint16_t	g_len;
	uint8_t		has_p;		/* a P field, maybe empty (= the base name) */
	uint32_t	uid;		/* Dovecot: IMAP UID.  Courier: its UID number */
	uint32_t	uidv;		/* Courier: the line's UIDVALIDITY (0: none) */
	uint64_t	order;		/* sort key of the old server's order */
};

struct takeover {
	enum takeover_kind	 kind;
	int			 version;	/* the file's format version */
	char			*buf;		/* the file, NUL-terminated */
	size_t			 len;
	struct takeover_entry	*ents;
	uint32_t		 count;
	uint32_t		*slots;		/* hash table: entry index + 1, 0 = empty */
	uint32_t		 mask;
	uint32_t		 uidvalidity;	/* Dovecot: the header's */
	uint32_t		 bad_lines;	/* lines skipped as damaged */
	bool			 bad_header;	/* the whole file is unusable */
};

/* Parse a file image; take ownership of buf (malloc'd, len octets plus a
 * spare octet for a NUL).  Never fail: a damaged header leaves no entries
 * (bad_header), a damaged line is skipped (bad_lines).  -1 only on ENOMEM. */
int	takeover_parse_dovecot(struct takeover *, char *buf, size_t len);
int	takeover_parse_courier(struct takeover *, char *buf, size_t len);
/* Reads name in dirfd (regular file, not a symlink, at most
 * LIMIT_TAKEOVER_FILE octets) and parses it as kind.  -1 when absent or
 * unreadable (errno set). */
int	takeover_load(struct takeover *, int dirfd, enum takeover_kind kind);
void	takeover_free(struct takeover *);

/* The entry for a base name, or NULL. */
const struct takeover_entry *takeover_find(const struct takeover *, const char *key, size_t len);

/* The UIDL the old server answered for entry e of the message whose base
 * name is key: Dovecot's P field (empty: the base name), else fmt expanded;
 * Courier's "UID<n>-<uidvalidity>", or for its oldest files the escaped base
 * name.  false when it is not a valid RFC 1939 unique-id (1..70 octets of
 * 0x21..0x7E).  out needs LIMIT_UIDL_LEN + 1 octets. */
bool	takeover_uidl(const struct takeover *, const struct takeover_entry *e,
	    const char *fmt, const char *key, size_t key_len, char *out);

/* Values of Dovecot's pop3_uidl_format variables for one message. */
struct uidl_vars {
	uint32_t	 uid, uidvalidity;
	const char	*filename;	/* %f: the base name */
	size_t		 filename_len;
	const char	*guid;		/* %g: the G field, or the base name */
	size_t		 guid_len;
};

/* Expands a Dovecot 2.3 pop3_uidl_format string (var_expand syntax: %% and
 * %[-][0]<width>[.[0][-]<width>]<modifiers><var> with vars u v f g, or
 * %{uid} %{uidvalidity} %{filename} %{guid}, and modifiers L U X R T E)
 * into out.  false when the format uses anything else (*err_r says what),
 * or the result does not fit outsize (*err_r "too long"). */
bool	takeover_format(const char *fmt, const struct uidl_vars *, char *out, size_t outsize,
	    const char **err_r);
/* Whether fmt is a format takeover_format() expands; *err_r says why not. */
bool	takeover_format_ok(const char *fmt, const char **err_r);

#endif
