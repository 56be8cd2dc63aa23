/* CAPA USER PASS AUTH APOP STLS QUIT: everything a client without a password reaches; runs in the pre-auth process as its unprivileged user. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "preauth.h"
#include "sasl.h"
#include "session.h"
#ifdef HAVE_OPENSSL
#include "tls.h"
#endif

static bool
can_stls(const struct session *s)
{
	return s->state == ST_AUTH && s->tls_ready && !s->tls_active;
}

static void
body_capa(struct session *s)
{
	lineio_puts(&s->io, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->state == ST_AUTH && session_plaintext_ok(s))
		lineio_puts(&s->io, "USER\r\nSASL PLAIN LOGIN\r\n");
	if (can_stls(s))
		lineio_puts(&s->io, "STLS\r\n");
	lineio_puts(&s->io, "IMPLEMENTATION maildir-pop3d\r\n");
}

void
cmd_capa(struct session *s, int argc, char **argv, struct reply *r)
{
	(void)argc;
	(void)argv;
	(void)s;
	reply_ok(r, "Capability list follows");
	r->body = body_capa;
}

static bool
plaintext_refused(struct session *s, struct reply *r)
{
	if (session_plaintext_ok(s))
		return false;
	reply_err(r, "AUTH", "Plaintext authentication is not allowed without TLS; use STLS first.");
	return true;
}

void
cmd_user(struct session *s, int argc, char **argv, struct reply *r)
{
	(void)argc;
	if (plaintext_refused(s, r))
		return;
	if (strlen(argv[1]) > LIMIT_USER_NAME) {
		reply_err(r, NULL, "User name too long.");
		return;
	}
	memcpy(s->user, argv[1], strlen(argv[1]) + 1);
	s->have_user = true;
	/* The same answer whether or not the user exists. */
	reply_ok(r, "Send the password.");
}

/* The whole login, as far as this process goes: root checks the
 * credentials, answers a failure only after the fixed delay, and counts.
 * The caller wipes the password. */
static void
login(struct session *s, const char *user, const char *password, int method,
    struct reply *r)
{
	bool close = false;

	s->have_user = false;
	r->counted = true;
	switch (preauth_ask(s, method, user, password, &close)) {
	case PS_OK:
		/* Root is the mailbox owner now and answers from here on. */
		r->none = true;
		s->state = ST_DONE;
		s->end = END_HANDOVER;
		return;
	case PS_FAILED:
		reply_err(r, "AUTH", "Authentication failed.");
		break;
	case PS_TEMPFAIL:
		reply_err(r, "SYS/TEMP", "Authentication is unavailable; try again later.");
		break;
	case PS_NOT_ROOT:
		reply_err(r, "SYS/PERM", "Not running as root: only the invoking user can be served.");
		break;
	case PS_HOME_TOO_LONG:
		reply_err(r, "SYS/PERM", "Home directory path too long.");
		break;
	default:
		reply_err(r, "SYS/TEMP", "Authentication is unavailable; try again later.");
		s->state = ST_DONE;
		s->end = END_ERROR;
		return;
	}
	if (close || ++s->auth_failures >= LIMIT_AUTH_FAILURES) {
		s->state = ST_DONE;
		s->end = END_LIMIT;
	}
}

void
cmd_pass(struct session *s, int argc, char **argv, struct reply *r)
{
	char *password = argv[1];

	(void)argc;
	if (plaintext_refused(s, r))
		goto out;
	if (!s->have_user) {
		reply_err(r, NULL, "Send USER first.");
		goto out;
	}
	login(s, s->user, password, PS_METHOD_USER, r);
out:
	explicit_bzero(password, strlen(password));
}

/* Reads one SASL continuation line.  NULL when the client cancelled ("*",
 * r set) or the connection ended (session marked done). */
static char *
sasl_read(struct session *s, const char *challenge, struct reply *r)
{
	enum lineio_status st;
	char *line;
	size_t len;

	lineio_printf(&s->io, "+ %s\r\n", challenge);
	st = session_read_line(s, &line, &len);
	if (s->state == ST_DONE) {
		/* The login deadline passed: answered already. */
		r->none = true;
		return NULL;
	}
	switch (st) {
	case LINEIO_OK:
		if (strcmp(line, "*") == 0) {
			reply_err(r, NULL, "Authentication cancelled.");
			return NULL;
		}
		return line;
	case LINEIO_TOO_LONG:
		reply_err(r, NULL, "Authentication line too long.");
		return NULL;
	case LINEIO_TIMEOUT:
		s->end = END_TIMEOUT;
		break;
	case LINEIO_EOF:
		s->end = END_EOF;
		break;
	default:
		s->end = END_ERROR;
		break;
	}
	s->state = ST_DONE;
	reply_err(r, NULL, "Connection ended during authentication.");
	return NULL;
}

static bool
decode(const char *b64, char *out, size_t outsize, size_t *len_r, struct reply *r)
{
	if (sasl_b64_decode(b64, strlen(b64), out, outsize, len_r) == -1) {
		reply_err(r, NULL, "Invalid base64 data.");
		return false;
	}
	return true;
}

static void
auth_plain(struct session *s, char *ir, struct reply *r)
{
	char buf[LIMIT_SASL_LINE];
	const char *authcid, *passwd;
	size_t len;

	if (ir == NULL && (ir = sasl_read(s, "", r)) == NULL)
		return;
	if (decode(ir, buf, sizeof(buf), &len, r)) {
		if (!sasl_plain_split(buf, len, &authcid, &passwd))
			reply_err(r, NULL, "Malformed PLAIN response (or authorization identity differs).");
		else
			login(s, authcid, passwd, PS_METHOD_PLAIN, r);
	}
	explicit_bzero(ir, strlen(ir));
	explicit_bzero(buf, sizeof(buf));
}

static void
auth_login(struct session *s, char *ir, struct reply *r)
{
	char user[LIMIT_SASL_LINE], pass[LIMIT_SASL_LINE], *line;
	size_t len;

	/* "Username:" and "Password:", as every LOGIN client expects. */
	if (ir == NULL && (ir = sasl_read(s, "VXNlcm5hbWU6", r)) == NULL)
		return;
	if (!decode(ir, user, sizeof(user), &len, r))
		return;
	if (strlen(user) != len) {
		reply_err(r, NULL, "Invalid user name.");
		return;
	}
	if ((line = sasl_read(s, "UGFzc3dvcmQ6", r)) == NULL)
		return;
	if (decode(line, pass, sizeof(pass), &len, r)) {
		if (strlen(pass) != len)
			reply_err(r, NULL, "Invalid password encoding.");
		else
			login(s, user, pass, PS_METHOD_LOGIN, r);
	}
	explicit_bzero(line, strlen(line));
	explicit_bzero(pass, sizeof(pass));
}

static void
body_mechs(struct session *s)
{
	if (session_plaintext_ok(s))
		lineio_puts(&s->io, "PLAIN\r\nLOGIN\r\n");
}

void
cmd_auth(struct session *s, int argc, char **argv, struct reply *r)
{
	if (argc == 1) {
		/* Clients probe with a bare AUTH (RFC 1734 style). */
		reply_ok(r, "Mechanisms follow");
		r->body = body_mechs;
		return;
	}
	if (strcasecmp(argv[1], "PLAIN") != 0 && strcasecmp(argv[1], "LOGIN") != 0) {
		reply_err(r, NULL, "Unsupported authentication mechanism.");
		return;
	}
	if (plaintext_refused(s, r))
		return;
	if (toupper((unsigned char)argv[1][0]) == 'P')
		auth_plain(s, argc == 3 ? argv[2] : NULL, r);
	else
		auth_login(s, argc == 3 ? argv[2] : NULL, r);
}

void
cmd_apop(struct session *s, int argc, char **argv, struct reply *r)
{
	(void)s;
	(void)argc;
	(void)argv;
	reply_err(r, NULL, "APOP is not supported (PAM cannot check a digest); use USER/PASS or AUTH.");
}

#ifdef HAVE_OPENSSL
static void
stls_after(struct session *s)
{
	struct tls_conn *t;

	/* Anything the client sent after STLS in plaintext must not be read
	 * as if it had come through TLS. */
	if (lineio_input_buffered(&s->io) > 0)
		log_warnx("plaintext after STLS discarded: rhost=<%s>", s->peer);
	lineio_discard_input(&s->io);
	t = tls_accept(s->io.rfd, s->opt->timeout * 1000, s->peer);
	if (t == NULL) {
		s->state = ST_DONE;
		s->end = END_ERROR;
		return;
	}
	lineio_set_transport(&s->io, &tls_ops, t);
	s->tls = t;
	s->tls_active = true;
	/* RFC 2595: forget what was said before TLS. */
	s->have_user = false;
}
#endif

void
cmd_stls(struct session *s, int argc, char **argv, struct reply *r)
{
	(void)argc;
	(void)argv;
	if (s->tls_active) {
		reply_err(r, NULL, "Already using TLS.");
		return;
	}
	if (!can_stls(s)) {
		reply_err(r, NULL, "STLS is not available on this server.");
		return;
	}
#ifdef HAVE_OPENSSL
	reply_ok(r, "Begin TLS negotiation.");
	r->after = stls_after;
#endif
}

void
cmd_quit(struct session *s, int argc, char **argv, struct reply *r)
{
	(void)argc;
	(void)argv;
	if (s->state == ST_TRANS)
		trans_quit(s, r);
	else
		reply_ok(r, "maildir-pop3d signing off.");
	s->state = ST_DONE;
	s->end = END_QUIT;
}
