/* TLS server side (STLS and implicit TLS): context, handshake and a lineio transport, implemented by the OpenSSL module (tls.c, tls.so) and reached through its loader (tlsload.c); loaded and initialised in the pre-auth process before its change of ids (as root), the handshake and relay unprivileged; never in the session process. */
#ifndef MP_TLS_H
#define MP_TLS_H

#include <stddef.h>

#include "lineio.h"

struct tls_conn;

/*
 * The TLS module's path: $MAILDIR_POP3D_TLS_MODULE when set (and the process
 * is not set-id: secure_getenv), else the compiled-in $(pkglibdir)/tls.so.
 */
const char	*tls_module_path(void);

/*
 * Loads the TLS module (so OpenSSL is mapped only by the processes that get
 * here: those with TLS configured), then builds the process's server context
 * from a PEM certificate chain and a PEM private key (TLS 1.2 minimum, the
 * system's cipher policy, no compression, no renegotiation, no session
 * tickets or cache) and checks that the key matches the certificate.
 * Encrypted keys are refused, never prompted for.  Returns 0, or -1 with a
 * one-line reason naming the file (or the module) in err[errlen].  Called
 * once per process, before the greeting; the functions below only after it
 * succeeded.
 */
int	tls_init(const char *cert_file, const char *key_file, char *err, size_t errlen);

/*
 * For maildir-pop3d --check: the subject (one line, RFC 2253) and the end of
 * validity (seconds since the epoch) of the first certificate in cert_file.
 * Loads the module like tls_init.  Returns 0, or -1 with a reason in err.
 */
int	tls_cert_info(const char *cert_file, char *subject, size_t subject_len,
	    long long *not_after_r, char *err, size_t errlen);

/*
 * Server handshake on the connected socket fd, within timeout_ms (negative:
 * no limit).  fd is left O_NONBLOCK: a readable socket does not mean a whole
 * TLS record has arrived, so blocking reads could outlast the idle timeout.
 * The private key is dropped from memory once the handshake is done (the
 * session then runs as the mailbox owner), so this succeeds once per process.
 * Returns NULL after logging `TLS handshake failed: rhost=<peer> reason=<...>`.
 */
struct tls_conn	*tls_accept(int fd, int timeout_ms, const char *peer);

/* Transport for lineio_set_transport(); ctx is the struct tls_conn *.  A fatal
 * TLS error is logged once and gives -1 with errno EPROTO; a TCP error keeps
 * its errno (ECONNRESET, EPIPE); a peer's close_notify or EOF reads as 0. */
extern const struct lineio_ops tls_ops;

/* Best-effort close_notify (not after a fatal error), then frees; does not
 * close fd. */
void	tls_shutdown(struct tls_conn *);

#endif
