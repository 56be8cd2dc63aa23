/* One POP3 session: the command table, the dispatcher that alone writes status lines, the read loop, and the logout summary; runs in the pre-auth process before login (AUTHORIZATION), then as the mailbox owner. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"
#include "proto.h"
#include "session.h"
#ifdef HAVE_OPENSSL
#include "tls.h"
#endif

struct command {
	const char	*name;
	unsigned	 states;	/* ST_AUTH | ST_TRANS */
	int		 min_args, max_args;
	cmd_fn		*fn;
};

/* Argument counts exclude the verb; PASS and AUTH see the raw rest. */
static const struct command commands[] = {
	{ "CAPA", ST_AUTH | ST_TRANS, 0, 0, cmd_capa },
	{ "USER", ST_AUTH, 1, 1, cmd_user },
	{ "PASS", ST_AUTH, 0, 0, cmd_pass },
	{ "AUTH", ST_AUTH, 0, 2, cmd_auth },
	{ "APOP", ST_AUTH, 0, PROTO_MAX_ARGS, cmd_apop },
	{ "STLS", ST_AUTH, 0, 0, cmd_stls },
	{ "QUIT", ST_AUTH | ST_TRANS, 0, 0, cmd_quit },
	{ "STAT", ST_TRANS, 0, 0, cmd_stat },
	{ "LIST", ST_TRANS, 0, 1, cmd_list },
	{ "UIDL", ST_TRANS, 0, 1, cmd_uidl },
	{ "RETR", ST_TRANS, 1, 1, cmd_retr },
	{ "TOP",  ST_TRANS, 2, 2, cmd_top },
	{ "DELE", ST_TRANS, 1, 1, cmd_dele },
	{ "RSET", ST_TRANS, 0, 0, cmd_rset },
	{ "NOOP", ST_TRANS, 0, 0, cmd_noop },
	{ "LAST", ST_TRANS, 0, 0, cmd_last },
};

void
reply_ok(struct reply *r, const char *fmt, ...)
{
	va_list ap;

	r->ok = true;
	r->code = NULL;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void
reply_err(struct reply *r, const char *code, const char *fmt, ...)
{
	va_list ap;

	r->ok = false;
	r->code = code;
	r->body = NULL;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void
session_init(struct session *s, const struct options *opt, int rfd, int wfd)
{
	/* Everything but the I/O buffers (lineio_init resets their indexes):
	 * clearing those would only make 129 KiB resident for nothing. */
	_Static_assert(offsetof(struct session, io) == 0, "io comes first");
	memset((char *)s + sizeof(s->io), 0, sizeof(*s) - sizeof(s->io));
	lineio_init(&s->io, rfd, wfd, opt->timeout);
	s->opt = opt;
	s->state = ST_AUTH;
	s->body_fd = -1;
	s->md.dirfd = s->md.lockfd = -1;
	snprintf(s->peer, sizeof(s->peer), "local");
	s->peer_secure = true;
}

bool
session_plaintext_ok(const struct session *s)
{
	return s->opt->plaintext == PLAINTEXT_ALWAYS || s->tls_active || s->peer_secure;
}

int
session_expand_maildir(const char *fmt, const char *user, const char *home,
    char *out, size_t outsize)
{
	size_t n = 0;
	const char *p;

	if (*fmt != '/' && *fmt != '%') {
		/* relative: under the home directory */
		int k = snprintf(out, outsize, "%s/", home);

		if (k < 0 || (size_t)k >= outsize)
			return -1;
		n = (size_t)k;
	}
	for (p = fmt; *p; p++) {
		const char *add;
		char one[2] = { *p, '\0' };

		if (*p != '%')
			add = one;
		else {
			switch (*++p) {
			case 'u': add = user; break;
			case 'h': add = home; break;
			case '%': add = "%"; break;
			default: return -1;
			}
		}
		size_t len = strlen(add);

		if (len >= outsize - n)
			return -1;
		memcpy(out + n, add, len);
		n += len;
	}
	out[n] = '\0';
	/* "%h/..." is absolute; a result still relative goes under home. */
	if (out[0] != '/') {
		char tmp[LIMIT_PATH];
		int k = snprintf(tmp, sizeof(tmp), "%s/%s", home, out);

		if (k < 0 || (size_t)k >= sizeof(tmp) || (size_t)k >= outsize)
			return -1;
		memcpy(out, tmp, (size_t)k + 1);
	}
	return 0;
}

bool
session_enter_transaction(struct session *s, const char *user, const char *home,
    struct reply *r)
{
	char path[LIMIT_PATH], clean[LIMIT_PATH];

	if (session_expand_maildir(s->opt->maildir, user, home, path, sizeof(path)) == -1) {
		log_warnx("maildir path does not expand: %s", s->opt->maildir);
		reply_err(r, "SYS/PERM", "Maildir path misconfigured.");
		return false;
	}
	struct maildir_config mcfg = {
		.lock = s->opt->lock,
		.uidl_source = s->opt->uidl_source,
		.uidl_format = s->opt->uidl_format,
	};

	/* Before the first byte of the Maildir is parsed. */
	if (sandbox_session(path, s->opt->sandbox) == -1) {
		reply_err(r, "SYS/PERM", "The server cannot confine this session.");
		s->exit_status = MP_EXIT_CONFIG;
		return false;
	}
	switch (maildir_open(&s->md, path, &mcfg)) {
	case MAILDIR_OK:
		break;
	case MAILDIR_IN_USE:
		reply_err(r, "IN-USE", "Maildrop is in use by another session.");
		return false;
	case MAILDIR_FAIL:
		log_sanitize_path(clean, sizeof(clean), path);
		log_warn("cannot open maildir %s", clean);
		reply_err(r, "SYS/TEMP", "Cannot open the maildrop.");
		maildir_close(&s->md);
		return false;
	}
	if (s->md.dirfd != -1 && fchdir(s->md.dirfd) == -1) {
		log_sanitize_path(clean, sizeof(clean), path);
		log_warn("fchdir %s", clean);
	}
	/* LAST starts after the unbroken run of messages already seen (flag
	 * S) from message 1: clients that fetch "everything above LAST" then
	 * never skip an unread message. */
	for (uint32_t i = 0; i < s->md.count; i++) {
		const char *name = maildir_name(&s->md, i);
		const struct msg *m = &s->md.msgs[i];

		if (m->name_len <= m->uniq_len + 3 || memcmp(name + m->uniq_len, ":2,", 3) != 0 ||
		    memchr(name + m->uniq_len + 3, 'S', (size_t)(m->name_len - m->uniq_len - 3)) == NULL)
			break;
		s->last_at_login = i + 1;
	}
	s->last_msn = s->last_at_login;
	s->state = ST_TRANS;
	reply_ok(r, "maildrop has %" PRIu32 " messages (%" PRIu64 " octets)",
	    s->md.count, s->md.total);
	return true;
}

bool
session_msn(struct session *s, const char *arg, uint32_t *idx_r, struct reply *r)
{
	uint64_t msn;

	if (proto_parse_u64(arg, UINT32_MAX, &msn) == -1 || msn == 0) {
		reply_err(r, NULL, "Invalid message number.");
		return false;
	}
	if (msn > s->md.count) {
		reply_err(r, NULL, "No such message.");
		return false;
	}
	if (s->md.msgs[msn - 1].flags & MSG_DELETED) {
		reply_err(r, NULL, "Message is deleted.");
		return false;
	}
	*idx_r = (uint32_t)(msn - 1);
	return true;
}

static void
send_reply(struct session *s, struct reply *r)
{
	if (r->none)
		return;
	if (r->ok)
		lineio_printf(&s->io, "+OK%s%s\r\n", r->text[0] ? " " : "", r->text);
	else if (r->code)
		lineio_printf(&s->io, "-ERR [%s] %s\r\n", r->code, r->text);
	else
		lineio_printf(&s->io, "-ERR %s\r\n", r->text);
	if (r->ok && r->body) {
		r->body(s);
		lineio_write(&s->io, ".\r\n", 3);
	}
	if (r->ok && r->after && lineio_flush(&s->io) == 0)
		r->after(s);
}

static void
bad_command(struct session *s, struct reply *r)
{
	if (++s->bad_commands >= LIMIT_BAD_COMMANDS) {
		reply_err(r, NULL, "Too many bad commands, closing connection.");
		s->state = ST_DONE;
		s->end = END_LIMIT;
	}
}

static void
dispatch(struct session *s, char *line, size_t len)
{
	struct reply r;
	char *argv[PROTO_MAX_ARGS], *rest;
	const struct command *c = NULL;
	size_t i, vlen;
	int argc;

	memset(&r, 0, sizeof(r));
	s->commands++;
	if (strlen(line) != len) {
		reply_err(&r, NULL, "Command contains a NUL octet.");
		bad_command(s, &r);
		goto out;
	}
	/* The verb, and the raw rest for PASS and AUTH (a password may
	 * contain spaces). */
	vlen = strcspn(line, " ");
	rest = line[vlen] ? line + vlen + 1 : line + vlen;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == vlen &&
		    strncasecmp(line, commands[i].name, vlen) == 0) {
			c = &commands[i];
			break;
		}
	if (c == NULL) {
		if (vlen == 5 && strncmp(line, "PROXY", 5) == 0 && s->state == ST_AUTH) {
			log_warnx("PROXY header from untrusted peer: rhost=<%s>", s->peer);
			reply_err(&r, NULL, "PROXY header not accepted from this address.");
			s->state = ST_DONE;
			s->end = END_ERROR;
			goto out;
		}
		reply_err(&r, NULL, "Unknown command.");
		bad_command(s, &r);
		goto out;
	}
	if (len + 2 > LIMIT_CMD_LINE && c->fn != cmd_auth) {
		reply_err(&r, NULL, "Command line too long.");
		bad_command(s, &r);
		goto out;
	}
	if (!(c->states & s->state)) {
		reply_err(&r, NULL, "%s is not valid in this state.", c->name);
		bad_command(s, &r);
		goto out;
	}
	if (c->fn == cmd_pass) {
		argv[0] = line;
		argv[1] = rest;
		argc = 2;
	} else {
		argc = proto_split(line, argv);
		if (argc - 1 < c->min_args) {
			reply_err(&r, NULL, "Missing argument.");
			bad_command(s, &r);
			goto out;
		}
		if (argc - 1 > c->max_args) {
			reply_err(&r, NULL, "Too many arguments.");
			bad_command(s, &r);
			goto out;
		}
	}
	c->fn(s, argc, argv, &r);
	/* Before login every error counts, whatever its kind. */
	if (!r.ok && !r.none && !r.counted && s->state == ST_AUTH)
		bad_command(s, &r);
out:
	send_reply(s, &r);
}

static const char *
end_name(enum session_end e)
{
	switch (e) {
	case END_QUIT: return "quit";
	case END_EOF: return "eof";
	case END_TIMEOUT: return "timeout";
	case END_LIMIT: return "limit";
	default: return "error";
	}
}

static void
log_logout(struct session *s)
{
	uint32_t left = 0, i;
	uint64_t left_octets = 0;

	if (s->state == ST_AUTH || s->login_method == NULL) {
		/* A trusted proxy's health check: connected, heard the
		 * greeting, left. */
		/* HAProxy ends its checks with a reset: end=error. */
		if (s->quiet_eof && (s->end == END_EOF || s->end == END_ERROR) && s->commands == 0)
			log_debug("disconnect: rhost=<%s> end=%s", s->peer, end_name(s->end));
		else
			log_info("disconnect: rhost=<%s> end=%s", s->peer, end_name(s->end));
		return;
	}
	for (i = 0; i < s->md.count; i++) {
		/* After a QUIT the deleted ones are gone; otherwise all stay. */
		if (s->end == END_QUIT && (s->md.msgs[i].flags & MSG_DELETED))
			continue;
		left++;
		left_octets += s->md.msgs[i].size;
	}
	log_info("logout: user=<%s> rhost=<%s> retr=%" PRIu32 "/%" PRIu64
	    " top=%" PRIu32 "/%" PRIu64 " dele=%" PRIu32 "/%" PRIu64
	    " left=%" PRIu32 "/%" PRIu64 " end=%s",
	    s->login_user, s->peer, s->retr_count, s->retr_octets,
	    s->top_count, s->top_octets, s->dele_count, s->dele_octets,
	    left, left_octets, end_name(s->end));
}

enum lineio_status
session_read_line(struct session *s, char **line_r, size_t *len_r)
{
	long long left;
	enum lineio_status st;

	s->io.timeout_ms = s->opt->timeout * 1000;
	if (s->state == ST_AUTH && s->login_deadline != 0) {
		left = s->login_deadline - deadline_now_ms();
		if (left < s->io.timeout_ms)
			s->io.timeout_ms = left > 0 ? (int)left : 0;
	}
	st = lineio_read_line(&s->io, LIMIT_SASL_LINE, line_r, len_r);
	if (st == LINEIO_TIMEOUT && s->state == ST_AUTH && s->login_deadline != 0 &&
	    deadline_now_ms() >= s->login_deadline) {
		lineio_puts(&s->io, "-ERR Login took too long, closing connection.\r\n");
		log_info("login deadline passed: rhost=<%s>", s->peer);
		s->end = END_LIMIT;
		s->state = ST_DONE;
	}
	return st;
}

static int
end_status(enum session_end e)
{
	switch (e) {
	case END_QUIT: case END_HANDOVER: return MP_EXIT_QUIT;
	case END_EOF: return MP_EXIT_GONE;
	case END_TIMEOUT: return MP_EXIT_TIMEOUT;
	case END_LIMIT: return MP_EXIT_LIMIT;
	default: return MP_EXIT_ERROR;
	}
}

int
session_run(struct session *s)
{
	enum lineio_status st;
	struct reply r;
	char *line;
	size_t len;

	if (!s->greeted)
		lineio_puts(&s->io, "+OK maildir-pop3d ready.\r\n");
	s->greeted = true;
	while (s->state != ST_DONE) {
		st = session_read_line(s, &line, &len);
		if (s->state == ST_DONE)
			break;
		switch (st) {
		case LINEIO_OK:
			dispatch(s, line, len);
			break;
		case LINEIO_TOO_LONG:
			memset(&r, 0, sizeof(r));
			reply_err(&r, NULL, "Command line too long.");
			bad_command(s, &r);
			send_reply(s, &r);
			break;
		case LINEIO_TIMEOUT:
			lineio_puts(&s->io, "-ERR Autologout: idle for too long.\r\n");
			s->end = END_TIMEOUT;
			s->state = ST_DONE;
			break;
		case LINEIO_EOF:
			s->end = END_EOF;
			s->state = ST_DONE;
			break;
		case LINEIO_ERROR:
			s->end = END_ERROR;
			s->state = ST_DONE;
			break;
		}
		if (s->io.failed && s->state != ST_DONE) {
			s->end = END_ERROR;
			s->state = ST_DONE;
		}
	}
	if (s->end == END_HANDOVER)
		return MP_EXIT_QUIT;
	lineio_flush(&s->io);
	log_logout(s);
#ifdef HAVE_OPENSSL
	if (s->tls)
		tls_shutdown(s->tls);
#endif
	maildir_close(&s->md);
	return s->exit_status != 0 ? s->exit_status : end_status(s->end);
}

int
session_after_login(struct session *s, const char *user, const char *home,
    const char *method, const char *in, size_t inlen)
{
	struct reply r;

	lineio_preload(&s->io, in, inlen);
	log_sanitize(s->login_user, sizeof(s->login_user), user, strlen(user));
	s->login_method = method;
	log_info("login: user=<%s> rhost=<%s> method=%s tls=%s", s->login_user, s->peer,
	    method, s->tls_active ? "yes" : "no");
	memset(&r, 0, sizeof(r));
	if (!session_enter_transaction(s, user, home, &r)) {
		s->state = ST_DONE;
		s->end = END_ERROR;
	}
	send_reply(s, &r);
	s->greeted = true;
	return session_run(s);
}
