/* Link-time stand-ins for PAM, the privilege drop and nanosleep() in the pre-login fuzz target; test code only, never part of the daemon.
 *
 * Defined here, auth_check() and privdrop_to() resolve cmd_auth.o's
 * references before the linker looks in libpop3d.a, so auth_pam.o and
 * privdrop.o are never pulled in (nothing else refers to them;
 * tests/fuzz/run-all checks with nm that load_pam, child_main and setresuid
 * are absent).  A definition of nanosleep() in the executable takes
 * precedence over libc's, for cmd_auth.o's 2-second failure delay; other
 * callers (libFuzzer's own threads) still sleep.
 *
 * The stub PAM answer is chosen by the password's first octet, so seeds can
 * reach every branch of login():
 *   'o' success, PAM_USER as given        'r' success, but PAM maps the name to root
 *   'u' success, PAM_USER has no passwd    'n' success, but the drop says "not root"
 *   'x' account expired   'p' password expired   'd' denied   's' system error
 *   anything else: wrong password
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_pam.h"
#include "fuzz-common.h"
#include "pop3d-limits.h"
#include "preauth-stubs.h"
#include "privdrop.h"

static __thread bool in_session;
static unsigned delays, pam_calls, pam_syserrs, pam_notroot;
static long long max_delay_us;
static bool drop_not_root;

void
stub_reset(void)
{
	delays = pam_calls = pam_syserrs = pam_notroot = 0;
	max_delay_us = 0;
	drop_not_root = false;
}

void
stub_in_session(bool on)
{
	in_session = on;
}

unsigned
stub_delays(void)
{
	return delays;
}

long long
stub_max_delay_us(void)
{
	return max_delay_us;
}

unsigned
stub_pam_calls(void)
{
	return pam_calls;
}

unsigned
stub_pam_syserrs(void)
{
	return pam_syserrs;
}

unsigned
stub_pam_notroot(void)
{
	return pam_notroot;
}

int
nanosleep(const struct timespec *req, struct timespec *rem)
{
	int r;

	if (in_session) {
		long long us = (long long)req->tv_sec * 1000000 + req->tv_nsec / 1000;

		FUZZ_CHECK(req->tv_sec >= 0 && req->tv_nsec >= 0 && req->tv_nsec < 1000000000,
		    "nanosleep with an invalid time");
		delays++;
		if (us > max_delay_us)
			max_delay_us = us;
		if (rem != NULL)
			memset(rem, 0, sizeof(*rem));
		return 0;
	}
	r = clock_nanosleep(CLOCK_REALTIME, 0, req, rem);
	if (r != 0) {
		errno = r;
		return -1;
	}
	return 0;
}

enum auth_result
auth_check(const char *service, const char *user, const char *password,
    const char *rhost, int timeout_ms, struct auth_account *acct,
    char *reason_r, size_t reason_size)
{
	const char *canon = user;
	enum auth_result res;

	pam_calls++;
	/* What login() promises PAM. */
	FUZZ_CHECK(service != NULL && rhost != NULL && *rhost != '\0', "PAM without service or rhost");
	FUZZ_CHECK(*user != '\0' && strlen(user) <= LIMIT_USER_NAME, "empty or overlong user name reached PAM");
	FUZZ_CHECK(*password != '\0', "an empty password reached PAM (Debian's nullok)");
	FUZZ_CHECK(strlen(password) <= LIMIT_PASSWORD, "an overlong password reached PAM");
	FUZZ_CHECK(timeout_ms > 0, "the PAM child without a time limit");
	memset(acct, 0, sizeof(*acct));
	/* A hostile reason text: login() must sanitise it before logging. */
	snprintf(reason_r, reason_size, "%s", "stub\tPAM\x1b[1m reason\n<x>");
	drop_not_root = false;
	switch (password[0]) {
	case 'o': res = AUTH_OK; break;
	case 'r': res = AUTH_OK; canon = "root"; break;
	case 'u': res = AUTH_OK; canon = "maildir-pop3d-fuzz-no-such-user"; break;
	case 'n': res = AUTH_OK; drop_not_root = true; pam_notroot++; break;
	case 'x': res = AUTH_ACCT_EXPIRED; break;
	case 'p': res = AUTH_PASS_EXPIRED; break;
	case 'd': res = AUTH_DENIED; break;
	case 's': res = AUTH_SYSERR; pam_syserrs++; break;
	default: res = AUTH_FAILED; break;
	}
	if (res == AUTH_OK) {
		/* What the child reports: an account, uid 0 for root, none
		 * for the unknown name; one group, heap-allocated as the real
		 * one is, so a leak shows. */
		snprintf(acct->name, sizeof(acct->name), "%s", canon);
		acct->found = strcmp(canon, "maildir-pop3d-fuzz-no-such-user") != 0;
		acct->uid = strcmp(canon, "root") == 0 ? 0 : 4242;
		acct->gid = acct->uid;
		snprintf(acct->home, sizeof(acct->home), "/nonexistent/%s", canon);
		if ((acct->groups = malloc(sizeof(gid_t))) != NULL) {
			acct->groups[0] = acct->gid;
			acct->ngroups = 1;
		}
	}
	return res;
}

enum privdrop_result
privdrop_to(const struct auth_account *a)
{
	/* login() refuses uid 0 before it gets here: never serve root. */
	FUZZ_CHECK(a->uid != 0 && a->found, "privilege drop asked for uid 0 or no account");
	return drop_not_root ? PRIVDROP_NOT_ROOT : PRIVDROP_OK;
}
