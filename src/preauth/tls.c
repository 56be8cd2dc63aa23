/* The TLS module (tls.so, the only code linked with OpenSSL; dlopen()ed by tlsload.c when TLS is configured): loads the certificate and key, does the handshake for STLS and implicit TLS, and carries lineio over TLS; in the pre-auth process only: loaded and initialised (certificate and key) as root before its change of ids, the handshake and the relay unprivileged. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "deadline.h"
#include "lineio.h"
#include "log.h"
#include "pop3d-limits.h"
#include "tls-module.h"

struct tls_conn {
	SSL	*ssl;
	int	 fd;
	bool	 failed;	/* fatal error: no more I/O, no close_notify */
	char	 peer[LIMIT_TLS_LOG_FIELD];	/* sanitised, for log lines */
};

static SSL_CTX	*server_ctx;
/* Kept apart from server_ctx so that it can be freed (and wiped by OpenSSL)
 * after the handshake: the session that follows runs as the mailbox owner. */
static EVP_PKEY	*server_key;
static bool	 passphrase_asked;

/* Refuses encrypted keys instead of letting OpenSSL prompt on a terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	passphrase_asked = true;
	return -1;
}

/* The first OpenSSL error queued (the cause; later ones are context), or
 * fallback; clears the queue. */
static const char *
ssl_reason(char *buf, size_t len, const char *fallback)
{
	unsigned long e;
	const char *r;

	e = ERR_peek_error();
	if (e == 0)
		return fallback;
	r = ERR_reason_error_string(e);
	if (r == NULL) {
		ERR_error_string_n(e, buf, len);
		r = buf;
	}
	ERR_clear_error();
	return r;
}

/* True when the queued error means the file held no PEM object of the kind
 * asked for (OpenSSL 3 reports it as "unsupported", which misleads). */
static bool
no_pem_found(void)
{
	unsigned long e = ERR_peek_error();

	if (e == 0)
		return true;
#ifdef ERR_LIB_OSSL_DECODER
	if (ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER)
		return true;
#endif
	return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* Opens a regular file for reading; a FIFO or device path cannot block us. */
static int
open_regular(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		snprintf(err, errlen, "cannot read TLS %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read TLS %s %s: not a regular file", what, path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads the key through a buffer we wipe: stdio would leave the PEM text in
 * freed memory of a process that later runs as the user. */
static EVP_PKEY *
read_key(const char *path, char *err, size_t errlen)
{
	char rbuf[256];
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	char *buf;
	size_t len;
	int fd;

	if ((fd = open_regular("key", path, err, errlen)) == -1)
		return NULL;
	if (fd_read_file(fd, LIMIT_TLS_KEY_FILE, &buf, &len) == -1) {
		if (errno == EFBIG)
			snprintf(err, errlen, "cannot read TLS key %s: larger than %d octets",
			    path, LIMIT_TLS_KEY_FILE);
		else
			snprintf(err, errlen, "cannot read TLS key %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	passphrase_asked = false;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL) {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	if (pkey == NULL && passphrase_asked)
		snprintf(err, errlen, "cannot load TLS key %s: encrypted keys are not supported", path);
	else if (pkey == NULL && no_pem_found())
		snprintf(err, errlen, "cannot load TLS key %s: no usable PEM private key in it", path);
	else if (pkey == NULL)
		snprintf(err, errlen, "cannot load TLS key %s: %s", path,
		    ssl_reason(rbuf, sizeof rbuf, "unknown error"));
	OPENSSL_cleanse(buf, len);
	free(buf);
	close(fd);
	return pkey;
}

/* What the functions below promise is in tls.h; the executable reaches them
 * through mp_tls_module only (the one symbol the module exports). */
static int
tlsmod_init(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	char rbuf[256];
	X509 *cert;
	int fd;

	if (server_ctx != NULL) {
		snprintf(err, errlen, "TLS is already initialised");
		return -1;
	}
	ERR_clear_error();
	if ((fd = open_regular("certificate", cert_file, err, errlen)) == -1)
		return -1;
	close(fd);

	if ((server_ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create TLS context: %s",
		    ssl_reason(rbuf, sizeof rbuf, "unknown error"));
		return -1;
	}
	/* Raise the floor, never lower one set by the system's policy. */
	if (SSL_CTX_get_min_proto_version(server_ctx) < TLS1_2_VERSION &&
	    SSL_CTX_set_min_proto_version(server_ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot set the TLS minimum version: %s",
		    ssl_reason(rbuf, sizeof rbuf, "unknown error"));
		goto fail;
	}
	SSL_CTX_set_options(server_ctx, SSL_OP_NO_COMPRESSION |
#ifdef SSL_OP_CLEANSE_PLAINTEXT
	    /* Passwords typed over TLS do not linger in OpenSSL's buffers. */
	    SSL_OP_CLEANSE_PLAINTEXT |
#endif
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_TICKET
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	    /* A client that drops TCP after QUIT is normal; POP3 framing
	     * already tells a complete reply from a truncated one. */
	    | SSL_OP_IGNORE_UNEXPECTED_EOF
#endif
	    );
	/* One connection per process: nothing could resume a session. */
	SSL_CTX_set_session_cache_mode(server_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(server_ctx, 0);
	SSL_CTX_set_mode(server_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_passwd_cb(server_ctx, no_passphrase);

	if (SSL_CTX_use_certificate_chain_file(server_ctx, cert_file) != 1) {
		if (no_pem_found())
			snprintf(err, errlen, "cannot load TLS certificate %s: no PEM certificate in it",
			    cert_file);
		else
			snprintf(err, errlen, "cannot load TLS certificate %s: %s", cert_file,
			    ssl_reason(rbuf, sizeof rbuf, "unknown error"));
		goto fail;
	}
	if ((server_key = read_key(key_file, err, errlen)) == NULL)
		goto fail;
	/* What SSL_CTX_check_private_key does; the key is not in the context. */
	cert = SSL_CTX_get0_certificate(server_ctx);
	if (cert == NULL || X509_check_private_key(cert, server_key) != 1) {
		snprintf(err, errlen, "TLS key %s does not match certificate %s: %s",
		    key_file, cert_file, ssl_reason(rbuf, sizeof rbuf, "key values mismatch"));
		goto fail;
	}
	return 0;

fail:
	EVP_PKEY_free(server_key);
	server_key = NULL;
	SSL_CTX_free(server_ctx);
	server_ctx = NULL;
	ERR_clear_error();
	return -1;
}

/* The private key is needed for the handshake only; after it, drop every
 * reference so that OpenSSL frees and wipes it. */
static void
drop_key(SSL *ssl)
{
	if (ssl != NULL)
		SSL_certs_clear(ssl);
	EVP_PKEY_free(server_key);
	server_key = NULL;
}

static struct tls_conn *
tlsmod_accept(int fd, int timeout_ms, const char *peer)
{
	char rbuf[256], reason[LIMIT_TLS_LOG_FIELD], rhost[LIMIT_TLS_LOG_FIELD];
	struct tls_conn *c;
	long long deadline;
	const char *why = NULL;
	int flags, rc, saved;

	log_sanitize(rhost, sizeof rhost, peer, strlen(peer));
	if ((c = calloc(1, sizeof *c)) == NULL) {
		log_warn("TLS handshake failed: rhost=<%s>", rhost);
		return NULL;
	}
	c->fd = fd;
	memcpy(c->peer, rhost, sizeof c->peer);
	if (server_ctx == NULL || server_key == NULL) {
		why = "TLS not initialised or key already used";
		goto fail;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    ((flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)) {
		why = strerror(errno);
		goto fail;
	}
	if ((c->ssl = SSL_new(server_ctx)) == NULL ||
	    SSL_use_PrivateKey(c->ssl, server_key) != 1 ||
	    SSL_set_fd(c->ssl, fd) != 1) {
		why = ssl_reason(rbuf, sizeof rbuf, "cannot set up TLS");
		goto fail;
	}

	deadline = deadline_in_ms(timeout_ms);
	for (;;) {
		short events;

		ERR_clear_error();
		errno = 0;
		rc = SSL_accept(c->ssl);
		saved = errno;
		if (rc == 1)
			break;
		switch (SSL_get_error(c->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			events = POLLIN;
			break;
		case SSL_ERROR_WANT_WRITE:
			events = POLLOUT;
			break;
		case SSL_ERROR_SYSCALL:
			why = saved != 0 ? strerror(saved) : "connection closed by peer";
			goto fail;
		case SSL_ERROR_ZERO_RETURN:
			why = "connection closed by peer";
			goto fail;
		default:
			why = ssl_reason(rbuf, sizeof rbuf, "protocol error");
			goto fail;
		}
		if (deadline_wait_fd(fd, events, deadline) == -1) {
			why = errno == ETIMEDOUT ? "timeout" : strerror(errno);
			goto fail;
		}
	}
	drop_key(c->ssl);
	return c;

fail:
	drop_key(c->ssl);
	log_sanitize(reason, sizeof reason, why, strlen(why));
	log_warnx("TLS handshake failed: rhost=<%s> reason=<%s>", c->peer, reason);
	SSL_free(c->ssl);
	ERR_clear_error();
	free(c);
	return NULL;
}

/* Maps a failed SSL_read_ex/SSL_write_ex to the lineio contract. */
static ssize_t
io_error(struct tls_conn *c, int rc, int saved, bool reading, short *want_r)
{
	char rbuf[256], reason[LIMIT_TLS_LOG_FIELD];
	const char *why;

	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		*want_r = POLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want_r = POLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:	/* close_notify (or EOF, see tlsmod_init) */
		if (reading)
			return 0;
		errno = EPIPE;
		return -1;
	case SSL_ERROR_SYSCALL:
		c->failed = true;
		if (saved == 0 && reading)	/* EOF with OpenSSL 1.1.1 */
			return 0;
		errno = saved != 0 ? saved : EPIPE;
		return -1;
	default:
		c->failed = true;
		why = ssl_reason(rbuf, sizeof rbuf, "protocol error");
		log_sanitize(reason, sizeof reason, why, strlen(why));
		log_warnx("TLS error: rhost=<%s> reason=<%s>", c->peer, reason);
		errno = EPROTO;
		return -1;
	}
}

/* One read into rbuf or one write from wbuf (the other is NULL): the
 * octets moved, or -1 with errno (see io_error). */
static ssize_t
tls_io(struct tls_conn *c, void *rbuf, const void *wbuf, size_t len, short *want_r)
{
	size_t n = 0;
	int rc;

	if (c->failed) {
		errno = EPROTO;
		return -1;
	}
	if (rbuf == NULL && len == 0)
		return 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	ERR_clear_error();
	errno = 0;
	rc = rbuf != NULL ? SSL_read_ex(c->ssl, rbuf, len, &n) : SSL_write_ex(c->ssl, wbuf, len, &n);
	if (rc == 1)
		return (ssize_t)n;
	return io_error(c, rc, errno, rbuf != NULL, want_r);
}

static ssize_t
tls_read(void *ctx, void *buf, size_t len, short *want_r)
{
	return tls_io(ctx, buf, NULL, len, want_r);
}

static ssize_t
tls_write(void *ctx, const void *buf, size_t len, short *want_r)
{
	return tls_io(ctx, NULL, buf, len, want_r);
}

/* SSL_has_pending also covers a received record not yet decrypted: poll()
 * would not wake for it either.  A false positive costs one EAGAIN. */
static bool
tls_pending(void *ctx)
{
	struct tls_conn *c = ctx;

	return !c->failed && (SSL_pending(c->ssl) > 0 || SSL_has_pending(c->ssl));
}

static const struct lineio_ops tlsmod_ops = {
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
};

static void
tlsmod_shutdown(struct tls_conn *c)
{
	long long deadline;
	int rc;

	if (c == NULL)
		return;
	if (!c->failed) {
		deadline = deadline_in_ms(LIMIT_TLS_SHUTDOWN_MS);
		for (;;) {
			ERR_clear_error();
			/* 0: our close_notify is out; the peer's is not awaited. */
			if ((rc = SSL_shutdown(c->ssl)) >= 0)
				break;
			if (SSL_get_error(c->ssl, rc) != SSL_ERROR_WANT_WRITE ||
			    deadline_wait_fd(c->fd, POLLOUT, deadline) == -1)
				break;
		}
	}
	SSL_free(c->ssl);
	ERR_clear_error();
	free(c);
}

/* --check: what the first certificate of the chain says about itself. */
static int
tlsmod_cert_info(const char *cert_file, char *subject, size_t subject_len,
    long long *not_after_r, char *err, size_t errlen)
{
	ASN1_TIME *epoch;
	X509 *x = NULL;
	BIO *b = NULL, *mem = NULL;
	BUF_MEM *bm;
	int days, secs, rc = -1;

	if ((b = BIO_new_file(cert_file, "r")) == NULL ||
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "%s: no PEM certificate could be read", cert_file);
		goto out;
	}
	if ((mem = BIO_new(BIO_s_mem())) == NULL ||
	    X509_NAME_print_ex(mem, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0) {
		snprintf(err, errlen, "%s: cannot print the subject", cert_file);
		goto out;
	}
	BIO_get_mem_ptr(mem, &bm);
	snprintf(subject, subject_len, "%.*s", (int)(bm->length < subject_len ? bm->length :
	    subject_len - 1), bm->data);
	/* Seconds from the epoch to notAfter, without timegm(). */
	if ((epoch = ASN1_TIME_set(NULL, 0)) == NULL ||
	    !ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(x))) {
		ASN1_TIME_free(epoch);
		snprintf(err, errlen, "%s: unreadable expiry date", cert_file);
		goto out;
	}
	ASN1_TIME_free(epoch);
	*not_after_r = (long long)days * 86400 + secs;
	rc = 0;
out:
	BIO_free(mem);
	BIO_free(b);
	X509_free(x);
	return rc;
}

const struct mp_tls_module mp_tls_module = {
	.abi = MP_TLS_MODULE_ABI,
	.size = sizeof(struct mp_tls_module),
	.init = tlsmod_init,
	.accept = tlsmod_accept,
	.ops = &tlsmod_ops,
	.shutdown = tlsmod_shutdown,
	.cert_info = tlsmod_cert_info,
};
