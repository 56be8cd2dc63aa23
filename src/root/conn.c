/* Finds the client connection (fd 0/1, fd 3 via sd_listen_fds, a pipe), refuses a listening socket, and names the peer; runs as root after the connection is accepted, reading no client byte. */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <dlfcn.h>
#include <systemd/sd-daemon.h>
#endif

#include "conn.h"
#include "lineio.h"

/* The launcher's word for the peer, when the fd cannot tell: systemd
 * Accept=yes, ucspi-tcp/couriertcpd, xinetd, socat.  Validated. */
static bool
peer_from_env(struct conn *c)
{
	static const char *const vars[] = {
		"REMOTE_ADDR", "TCPREMOTEIP", "REMOTE_HOST", "SOCAT_PEERADDR",
	};
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v == NULL || *v == '\0')
			continue;
		memset(&sin, 0, sizeof(sin));
		memset(&sin6, 0, sizeof(sin6));
		if (inet_pton(AF_INET, v, &sin.sin_addr) == 1) {
			sin.sin_family = AF_INET;
			conn_set_peer(c, (struct sockaddr *)&sin);
			return true;
		}
		if (inet_pton(AF_INET6, v, &sin6.sin6_addr) == 1) {
			sin6.sin6_family = AF_INET6;
			conn_set_peer(c, (struct sockaddr *)&sin6);
			return true;
		}
	}
	return false;
}

static bool
is_listening(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v != 0;
}

bool
conn_fd_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

#ifdef HAVE_SYSTEMD
/*
 * libsystemd is loaded only for the one case that needs it, the connection as
 * fd 3 with stdin left alone: linked in, it and the libraries it pulls in
 * (libgcrypt, liblzma, libzstd, liblz4, libcap) would be mapped and relocated
 * by every session, about 1.4 ms of CPU and 0.5 MiB of memory each.
 */
static enum conn_result
listen_fd_systemd(struct conn *c)
{
	int (*listen_fds)(int) = NULL;
	int (*is_sock)(int, int, int, int) = NULL;
	void *h;
	int n;

	h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (h != NULL) {
		listen_fds = (int (*)(int))dlsym(h, "sd_listen_fds");
		is_sock = (int (*)(int, int, int, int))dlsym(h, "sd_is_socket");
	}
	if (h == NULL || listen_fds == NULL || is_sock == NULL) {
		const char *e = dlerror();

		snprintf(c->why, sizeof(c->why), "%s", e ? e : "libsystemd.so.0: symbols missing");
		return CONN_NO_SYSTEMD;
	}
	n = listen_fds(1);
	if (n != 1)
		return n == 0 ? CONN_OK : CONN_BAD_FDS;
	if (is_sock(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1) > 0)
		return CONN_LISTENING;
	if (is_sock(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 0) <= 0)
		return CONN_BAD_FDS;
	c->rfd = c->wfd = SD_LISTEN_FDS_START;
	return CONN_OK;
}
#endif

/* Same open file description on both fds (systemd's StandardInput=socket
 * puts the connection on fd 0 and fd 3). */
static bool
same_socket(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISSOCK(sa.st_mode) &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

enum conn_result
conn_detect(struct conn *c)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	socklen_t len = sizeof(ss);
	const char *lf = getenv("LISTEN_FDS");

	memset(c, 0, sizeof(*c));
	c->rfd = 0;
	c->wfd = 1;
	if (lf != NULL && conn_fd_is_socket(0) && !is_listening(0)) {
		/* Accept=yes with StandardInput=socket: fd 0 is the
		 * connection already and fd 3 a second copy of it. */
		if (same_socket(0, 3))
			close(3);
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
	} else if (lf != NULL) {
#ifdef HAVE_SYSTEMD
		enum conn_result res = listen_fd_systemd(c);

		if (res != CONN_OK)
			return res;
#else
		return CONN_NO_SYSTEMD;
#endif
	}
	c->is_socket = conn_fd_is_socket(c->rfd);
	if (c->is_socket && is_listening(c->rfd))
		return CONN_LISTENING;
	snprintf(c->peer, sizeof(c->peer), "local");
	c->secure = true;
	c->peer_sa.ss_family = AF_UNSPEC;
	if (c->is_socket && getpeername(c->rfd, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
		conn_set_peer(c, (struct sockaddr *)&ss);
	} else if (!peer_from_env(c) && c->is_socket) {
		/* A unix socket is no proof of a local client: socat's EXEC
		 * and stunnel's exec mode hand over a socketpair.  Without
		 * the launcher's word the client is unknown, so remote. */
		snprintf(c->peer, sizeof(c->peer), "unknown");
		c->secure = false;
	}
	/* else a pipe or a tty: the other end is on this machine */
	if (c->is_socket) {
		int one = 1;

		/* Answers are written whole; Nagle would only add delay. */
		setsockopt(c->rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* Our own file description: non-blocking I/O with poll()
		 * timeouts, so a client that stops reading cannot hang us. */
		fcntl(c->rfd, F_SETFL, fcntl(c->rfd, F_GETFL) | O_NONBLOCK);
		if (c->wfd != c->rfd)
			fcntl(c->wfd, F_SETFL, fcntl(c->wfd, F_GETFL) | O_NONBLOCK);
	}
	return CONN_OK;
}

void
conn_say(const struct conn *c, const char *line)
{
	struct lineio io;

	lineio_init(&io, c->rfd, c->wfd, LIMIT_GREET_ERROR_TIMEOUT);
	lineio_puts(&io, line);
	lineio_flush(&io);
}
