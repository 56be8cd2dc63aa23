/* maildir-pop3d --check [USER]: the operator's configuration and login check; runs as root (or as the invoking user). */
#ifndef MP_CHECK_H
#define MP_CHECK_H

#include "session.h"

/* Prints the effective configuration of o and checks it (PAM service file, TLS module,
 * certificate and key, the pre-auth user and chroot); with user, reads a password from
 * stdin and runs the login path step by step.  Returns the exit status: 0 when every
 * check passed (with user: a session would work), else 1. */
int	check_run(const struct options *o, const char *user);

#endif
