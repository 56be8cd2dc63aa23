/* libFuzzer target for the pre-auth process: the input is what a client sends before login, fed through session_run() and the real dispatcher and AUTHORIZATION commands over a pipe; root's answer to a login is a link-time stub (preauth-stubs.c); runs unprivileged or as root, changes no ids. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-common.h"
#include "preauth-stubs.h"
#include "session.h"

/*
 * Input: the client's octets.  An optional first octet 0xff takes the next
 * octet as option bits, so plain sessions stay plain seeds:
 *   0x01  the peer is a remote TCP address (plaintext login not "secure")
 *   0x02  --plaintext=always
 */
#define OPT_REMOTE	0x01
#define OPT_PLAIN_ALWAYS 0x02

static struct session s;

static bool
multi_line(const char *status)
{
	return strcmp(status, "+OK Capability list follows") == 0 ||
	    strcmp(status, "+OK Mechanisms follow") == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct options opt;
	struct fuzz_io io;
	struct fuzz_resp *resp;
	size_t nresp, i;
	unsigned bits = 0, auth_fail = 0, greet = 0;
	int cwd;

	if (size >= 2 && data[0] == 0xff) {
		bits = data[1];
		data += 2;
		size -= 2;
	}
	memset(&opt, 0, sizeof(opt));
	opt.sandbox = SANDBOX_OFF;	/* the fuzzer's own process must stay free */
	/* A Maildir that cannot exist: a stub login reaches TRANSACTION on
	 * an empty maildrop and nothing on disk is ever touched. */
	opt.maildir = "/nonexistent/maildir-pop3d-fuzz/%u";
	opt.pam_service = "maildir-pop3d-fuzz-no-such-service";
	opt.timeout = 5;
	opt.flag_updates = true;
	opt.plaintext = bits & OPT_PLAIN_ALWAYS ? PLAINTEXT_ALWAYS : PLAINTEXT_SECURE;

	if (fuzz_io_open(&io, data, size) == -1)
		return 0;
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	session_init(&s, &opt, io.rfd, io.wfd);
	if (bits & OPT_REMOTE) {
		snprintf(s.peer, sizeof(s.peer), "192.0.2.7");
		s.peer_secure = false;
		s.is_socket = true;
	}
	fuzz_log_reset();
	stub_reset();
	session_run(&s);
	/* What preauth.c's hand-over does first: the answers so far go out. */
	if (s.end == END_HANDOVER)
		lineio_flush(&s.io);
	if (cwd != -1) {
		if (fchdir(cwd) == -1)
			abort();
		close(cwd);
	}
	fuzz_io_collect(&io);
	fuzz_dump(&io);

	nresp = fuzz_parse_responses(io.out, io.out_len, multi_line, &resp);
	FUZZ_CHECK(nresp >= 1 && strcmp(resp[0].status, "+OK maildir-pop3d ready.") == 0,
	    "the session does not start with the greeting");
	for (i = 0; i < nresp; i++) {
		const char *st = resp[i].status;

		if (strcmp(st, "+OK maildir-pop3d ready.") == 0)
			greet++;
		if (strcmp(st, "-ERR [AUTH] Authentication failed.") == 0 ||
		    strcmp(st, "-ERR [SYS/TEMP] Authentication is unavailable; try again later.") == 0 ||
		    strcmp(st, "-ERR [SYS/PERM] Not running as root: only the invoking user can be served.") == 0 ||
		    strcmp(st, "-ERR [SYS/PERM] Home directory path too long.") == 0)
			auth_fail++;
		/* The only + line that is not +OK is a SASL challenge. */
		if (fuzz_has_prefix(st, "+ "))
			FUZZ_CHECK(strcmp(st, "+ ") == 0 || strcmp(st, "+ VXNlcm5hbWU6") == 0 ||
			    strcmp(st, "+ UGFzc3dvcmQ6") == 0, "unexpected continuation line");
		if (strcmp(st, "+OK Capability list follows") == 0)
			FUZZ_CHECK(resp[i].body_len > 0, "empty CAPA");
	}
	FUZZ_CHECK(greet == 1, "more than one greeting");
	/* DESIGN.md section 3: after 3 failures the connection is closed. */
	FUZZ_CHECK(auth_fail <= LIMIT_AUTH_FAILURES, "more than 3 failed logins in one session");
	/* Every answer from root is passed on, exactly once. */
	FUZZ_CHECK(auth_fail == stub_failures(), "a failed login answered twice or not at all");
	/* After a login the pre-auth process answers nothing more: the
	 * session (the mailbox owner) does. */
	FUZZ_CHECK(stub_oks() <= 1, "more than one login handed over");
	if (stub_oks() == 1)
		FUZZ_CHECK(s.end == END_HANDOVER && s.state == ST_DONE,
		    "a login that was not handed over");
	FUZZ_CHECK(stub_asks() <= LIMIT_AUTH_FAILURES + 1, "root asked too often in one session");
	fuzz_free_responses(resp, nresp);
	fuzz_io_free(&io);
	return 0;
}
