/* The tls.h interface in the executable: dlopen()s the OpenSSL module (tls.so) when TLS is configured and forwards every call to it, so that sessions without TLS never map libssl and libcrypto; in the pre-auth process only: loaded and initialised (certificate and key) as root before its change of ids, the handshake and the relay unprivileged. */
#include "config.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "lineio.h"
#include "log.h"
#include "pop3d-limits.h"
#include "tls-module.h"
#include "tls.h"

#ifndef MP_TLS_MODULE_PATH
#error "MP_TLS_MODULE_PATH (the installed module, $(pkglibdir)/tls.so) comes from Makefile.am"
#endif

/*
 * Linked in, libssl and libcrypto cost every session their mapping and
 * relocation (about 0.5-0.9 ms of CPU and 0.4 MiB of memory) even without
 * --tls-cert; loaded here, only the sessions that use TLS pay for them.  The
 * module stays loaded until the process exits: one process, one connection.
 */
static const struct mp_tls_module *mod;

const char *
tls_module_path(void)
{
	const char *p;

	/* For running uninstalled (the test suites, a DESTDIR install).  Not
	 * for a set-id process: its environment is the caller's. */
#ifdef HAVE_SECURE_GETENV
	p = secure_getenv("MAILDIR_POP3D_TLS_MODULE");
#else
	p = NULL;
	if (getuid() == geteuid() && getgid() == getegid())
		p = getenv("MAILDIR_POP3D_TLS_MODULE");
#endif
	return p != NULL && *p != '\0' ? p : MP_TLS_MODULE_PATH;
}

/* dlerror()'s text without the leading "PATH: " that the caller's message
 * already has. */
static const char *
dl_reason(const char *path)
{
	const char *e = dlerror();
	size_t n = strlen(path);

	if (e == NULL)
		return "unknown error";
	if (strncmp(e, path, n) == 0 && e[n] == ':' && e[n + 1] == ' ')
		e += n + 2;
	return e;
}

static int
load_module(char *err, size_t errlen)
{
	const struct mp_tls_module *m;
	const char *path = tls_module_path();
	void *h;

	/* A relative name would be looked up in the library search path or
	 * the working directory: neither is what was meant. */
	if (path[0] != '/') {
		snprintf(err, errlen, "TLS module %s: not an absolute path", path);
		return -1;
	}
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "cannot load TLS module %s: %s", path, dl_reason(path));
		return -1;
	}
	m = (const struct mp_tls_module *)dlsym(h, MP_TLS_MODULE_SYMBOL);
	if (m == NULL) {
		snprintf(err, errlen, "TLS module %s: no %s symbol (not a maildir-pop3d TLS module)",
		    path, MP_TLS_MODULE_SYMBOL);
		dlclose(h);
		return -1;
	}
	if (m->abi != MP_TLS_MODULE_ABI || m->size != sizeof(*m)) {
		snprintf(err, errlen, "TLS module %s: interface version %u, this maildir-pop3d needs %u "
		    "(a module from another build?)", path, m->abi, MP_TLS_MODULE_ABI);
		dlclose(h);
		return -1;
	}
	mod = m;
	return 0;
}

int
tls_init(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	if (mod == NULL && load_module(err, errlen) == -1)
		return -1;
	return mod->init(cert_file, key_file, err, errlen);
}

int
tls_cert_info(const char *cert_file, char *subject, size_t subject_len, long long *not_after_r,
    char *err, size_t errlen)
{
	if (mod == NULL && load_module(err, errlen) == -1)
		return -1;
	return mod->cert_info(cert_file, subject, subject_len, not_after_r, err, errlen);
}

struct tls_conn *
tls_accept(int fd, int timeout_ms, const char *peer)
{
	char rhost[LIMIT_TLS_LOG_FIELD];

	if (mod == NULL) {
		log_sanitize(rhost, sizeof(rhost), peer, strlen(peer));
		log_warnx("TLS handshake failed: rhost=<%s> reason=<TLS not initialised>", rhost);
		return NULL;
	}
	return mod->accept(fd, timeout_ms, peer);
}

/* tls.h's callers take tls_ops as an object of the executable, so it
 * forwards to the module's; a connection exists only once the module is. */
static ssize_t
fwd_read(void *ctx, void *buf, size_t len, short *want_r)
{
	return mod->ops->read(ctx, buf, len, want_r);
}

static ssize_t
fwd_write(void *ctx, const void *buf, size_t len, short *want_r)
{
	return mod->ops->write(ctx, buf, len, want_r);
}

static bool
fwd_pending(void *ctx)
{
	return mod->ops->pending(ctx);
}

const struct lineio_ops tls_ops = {
	.read = fwd_read,
	.write = fwd_write,
	.pending = fwd_pending,
};

void
tls_shutdown(struct tls_conn *c)
{
	if (c == NULL || mod == NULL)
		return;
	mod->shutdown(c);
}
