/* The process shape of a login: forks the pre-auth process, serves its requests as root (monitor.c) until the privilege drop, then hands this same process to the session (src/session/); runs as root after the connection is accepted. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_pam.h"
#include "deadline.h"
#include "launch.h"
#include "log.h"
#include "monitor.h"
#include "preauth.h"
#include "privdrop.h"
#include "start.h"

/*
 * The process shape of a login (see src/README): this process, root, forks
 * the pre-auth process, which does every byte from the client until root,
 * asked through fixed-size records, accepts a login; then this process drops
 * to the mailbox owner and is the session.  Root reads no client byte.
 */
int
launch_separated(const struct options *opt, struct conn *c, const struct proxy_net *nets,
    int nnets)
{
	struct privdrop_preauth id;
	struct monitor_conf mc;
	/* One login per process: static, like the session in start.c, so nothing is left to free. */
	static struct monitor_login login, *ml = &login;
	struct preauth_conf pc;
	char why[LIMIT_PATH + 128];
	struct stat st;
	int ctl[2], relay[2] = { -1, -1 }, status;
	long long phase_s;
	pid_t pid;

	if (privdrop_preauth_lookup(&id, why, sizeof(why)) == -1) {
		log_warnx("%s; refusing to serve", why);
		conn_say(c, "-ERR [SYS/PERM] Server misconfigured (pre-auth user or chroot).\r\n");
		return MP_EXIT_CONFIG;
	}
	id.may_write_files = fstat(c->wfd, &st) == 0 && S_ISREG(st.st_mode);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1 ||
	    (opt->tls != TLS_OFF &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, relay) == -1))
		fatal("socketpair");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		close(ctl[0]);
		if (relay[0] != -1)
			close(relay[0]);
		pc = (struct preauth_conf){ opt, c, nets, nnets, &id, ctl[1], relay[1] };
		preauth_main(&pc);
	}
	close(ctl[1]);
	if (relay[1] != -1)
		close(relay[1]);
	/* The PAM child must not hold them. */
	auth_close_in_child(c->rfd);
	auth_close_in_child(c->wfd);
	auth_close_in_child(ctl[0]);
	auth_close_in_child(relay[0]);
	phase_s = LIMIT_LOGIN_PHASE_TIMEOUTS * (long long)opt->timeout;
	mc = (struct monitor_conf){ opt->pam_service, opt->timeout,
	    deadline_in_ms((int)(phase_s < LIMIT_LOGIN_PHASE_S ? phase_s : LIMIT_LOGIN_PHASE_S) * 1000),
	    c->peer, nnets > 0 && c->peer_sa.ss_family != AF_UNSPEC &&
	    proxy_addr_trusted((struct sockaddr *)&c->peer_sa, nets, nnets) };
	if (!monitor_run(&mc, pid, ctl[0], ml, &status))
		return status;

	/* The mailbox owner from here on: src/session/. */
	return session_start(opt, c, ml, relay[0], pid);
}

