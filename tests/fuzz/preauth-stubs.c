/* Link-time stand-in for root's answer to a login in the pre-auth fuzz target; test code only, never part of the daemon.
 *
 * Defined here, preauth_ask() resolves cmd_auth.o's reference before the
 * linker looks in libpop3d.a, so preauth.o (and with it the record socket),
 * monitor.o, auth_pam.o and privdrop.o are never pulled in: the target is
 * the pre-auth process's command handling alone (tests/fuzz/run-all checks
 * with nm that load_pam, child_main and setresuid are absent).
 *
 * The answer is chosen by the password's first octet, so seeds can reach
 * every branch of login():
 *   'o' PS_OK (the session is handed over)   's' PS_TEMPFAIL
 *   'n' PS_NOT_ROOT   'h' PS_HOME_TOO_LONG   anything else: PS_FAILED
 * and, as root does, the third failure comes with close = 1.
 */
#include "config.h"

#include <string.h>

#include "fuzz-common.h"
#include "pop3d-limits.h"
#include "preauth.h"
#include "preauth-stubs.h"

static unsigned asks, failures, oks;

void
stub_reset(void)
{
	asks = failures = oks = 0;
}

unsigned
stub_asks(void)
{
	return asks;
}

unsigned
stub_failures(void)
{
	return failures;
}

unsigned
stub_oks(void)
{
	return oks;
}

int
preauth_ask(struct session *s, int method, const char *user, const char *password,
    bool *close_r)
{
	int res;

	asks++;
	/* What login() promises root. */
	FUZZ_CHECK(s->state == ST_AUTH, "a login asked for outside AUTHORIZATION");
	FUZZ_CHECK(method >= PS_METHOD_USER && method <= PS_METHOD_LOGIN, "a login with no method");
	FUZZ_CHECK(user != NULL && password != NULL, "a login without credentials");
	FUZZ_CHECK(failures < LIMIT_AUTH_FAILURES, "a login asked for after the budget was spent");
	switch (password[0]) {
	case 'o': res = PS_OK; break;
	case 's': res = PS_TEMPFAIL; break;
	case 'n': res = PS_NOT_ROOT; break;
	case 'h': res = PS_HOME_TOO_LONG; break;
	default: res = PS_FAILED; break;
	}
	if (res == PS_OK)
		oks++;
	else
		failures++;
	*close_r = res != PS_OK && failures >= LIMIT_AUTH_FAILURES;
	return res;
}
