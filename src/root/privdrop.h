/* The irrevocable change from root to the mailbox owner, verified; runs as root at login. */
#ifndef MP_PRIVDROP_H
#define MP_PRIVDROP_H

#include "auth_pam.h"

enum privdrop_result {
	PRIVDROP_OK,
	PRIVDROP_ROOT_REFUSED,	/* uid 0 is never served */
	PRIVDROP_NOT_ROOT,	/* not started as root and the user is someone else */
};

/* Becomes the account's user for good (setgroups with the list the PAM child
 * looked up, which is initgroups() done in two processes; setgid, setuid; and
 * the check that root cannot come back: failure there is fatal), sets umask
 * 077.  When not running as root, only the caller's own account is accepted. */
enum privdrop_result privdrop_to(const struct auth_account *);

#endif
