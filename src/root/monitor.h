/* Root's side of the login: the pre-auth child's requests, PAM, the fixed failure delay and budget, the privilege drop; runs as root after the connection is accepted. */
#ifndef MP_MONITOR_H
#define MP_MONITOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "pop3d-limits.h"
#include "privsep-proto.h"

/* What the session needs from a successful login. */
struct monitor_login {
	char		 user[LIMIT_USER_NAME + 1];	/* the account PAM settled on */
	char		 home[LIMIT_PATH];
	char		 peer[PS_PEER_SIZE];
	const char	*method;			/* "USER", "PLAIN", "LOGIN" */
	bool		 tls;
	struct ps_handover	handover;
};

struct monitor_conf {
	const char	*pam_service;
	int		 timeout_s;		/* the idle timeout: PAM's limit too */
	long long	 login_deadline;	/* deadline_in_ms() clock */
	const char	*peer;			/* as root sees the connection */
	bool		 peer_from_child;	/* a trusted PROXY: the child names the client */
};

/*
 * Serves the pre-auth child `child` on the record socket `fd` until a login
 * succeeds: then the privileges are dropped for good (privdrop_to) and the
 * hand-over read (as the mailbox owner), and true is returned with *out
 * filled.  Otherwise the child is reaped (killed when it misbehaves or
 * outlives the login deadline), false returned and *exit_r set.
 */
bool	monitor_run(const struct monitor_conf *, pid_t child, int fd, struct monitor_login *out,
	    int *exit_r);

/* Waits at most LIMIT_PREAUTH_GRACE_MS for child to end, then kills it;
 * returns its exit status as ours (MP_EXIT_ERROR when it did not exit
 * with one of them). */
int	monitor_reap(pid_t child);

#endif
