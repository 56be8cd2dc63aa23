/* How the connection arrived (fd 0/1, fd 3 from systemd, a pipe or tty) and who is at the other end; runs as root after the connection is accepted. */
#ifndef MP_CONN_H
#define MP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct conn {
	int			rfd, wfd;
	bool			is_socket;
	bool			secure;		/* loopback, unix socket, pipe, tty */
	struct sockaddr_storage	peer_sa;	/* AF_UNSPEC when unknown */
	char			peer[64];	/* as logged: "192.0.2.7", "::1", "local" */
	char			why[160];	/* CONN_NO_SYSTEMD: dlopen's reason */
};

enum conn_result {
	CONN_OK,
	CONN_LISTENING,		/* a listening socket: Accept=no */
	CONN_BAD_FDS,		/* LISTEN_FDS announced something unusable */
	CONN_NO_SYSTEMD,	/* LISTEN_FDS set, fd 0 not the connection, and no libsystemd */
};

enum conn_result conn_detect(struct conn *);

/* Formats an address the way logs and PAM_RHOST show it: IPv6 without
 * brackets, IPv4-mapped IPv6 as IPv4, a unix socket as "local".  Sets
 * *loopback_r.  Pure; exported for the tests. */
void	conn_format_addr(const struct sockaddr *, char *out, size_t outsize, bool *loopback_r);

/* Whether fd is a socket (not a pipe, a tty or a file). */
bool	conn_fd_is_socket(int fd);
/* Writes one line (a configuration error's -ERR) to the client; reads nothing. */
void	conn_say(const struct conn *, const char *line);

/* Sets the peer from a PROXY header's source address. */
void	conn_set_peer(struct conn *, const struct sockaddr *);

#endif
