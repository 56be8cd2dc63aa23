/* The pre-auth process: its set-up, its one question to root (a login), the hand-over and the TLS relay; runs as the unprivileged pre-auth user. */
#ifndef MP_PREAUTH_H
#define MP_PREAUTH_H

#include <stdbool.h>
#include <stdnoreturn.h>

#include "conn.h"
#include "privdrop.h"
#include "privsep-proto.h"
#include "proxy.h"
#include "session.h"

struct preauth_conf {
	const struct options		*opt;
	struct conn			*conn;
	const struct proxy_net		*nets;
	int				 nnets;
	const struct privdrop_preauth	*id;
	int				 ctl;	/* records to and from root */
	int				 relay;	/* the session's end of the TLS relay, or -1 */
};

/* The child's whole life: loads TLS (as root, before anything else), drops
 * to the pre-auth identity, serves AUTHORIZATION, and after a login hands
 * over and relays TLS or exits.  Exits with an MP_EXIT_* status. */
noreturn void preauth_main(const struct preauth_conf *);

/* Asks root about one set of credentials (method: enum ps_method) and waits
 * for the verdict: an enum ps_result, with *close_r set when the failure
 * budget is spent; -1 when root is gone or answered nonsense.  Wipes its
 * copy of the password.  Replaced by a stub in the pre-auth fuzz target. */
int	preauth_ask(struct session *, int method, const char *user, const char *password,
	    bool *close_r);

#endif
