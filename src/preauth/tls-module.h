/* The one symbol the TLS module (tls.so, built from tls.c with OpenSSL) exports and the loader (tlsload.c) looks up: a table of the tls.h functions; loaded and initialised in the pre-auth process before its change of ids (as root), used there unprivileged, never in the session. */
#ifndef MP_TLS_MODULE_H
#define MP_TLS_MODULE_H

#include <stddef.h>

#include "lineio.h"

struct tls_conn;

/*
 * Raised whenever this table, struct lineio_ops or what the functions
 * promise (tls.h) changes: a module left from another build is then refused
 * with a configuration error instead of being called the wrong way.
 */
#define MP_TLS_MODULE_ABI	3
#define MP_TLS_MODULE_SYMBOL	"mp_tls_module"

/* Each member does what the tls.h function of the same name says. */
struct mp_tls_module {
	unsigned int		 abi;	/* MP_TLS_MODULE_ABI */
	size_t			 size;	/* sizeof(struct mp_tls_module) */
	int			(*init)(const char *cert_file, const char *key_file,
				    char *err, size_t errlen);
	struct tls_conn		*(*accept)(int fd, int timeout_ms, const char *peer);
	const struct lineio_ops	*ops;
	void			(*shutdown)(struct tls_conn *);
	int			(*cert_info)(const char *cert_file, char *subject,
				    size_t subject_len, long long *not_after_r,
				    char *err, size_t errlen);
};

extern const struct mp_tls_module mp_tls_module;

#endif
