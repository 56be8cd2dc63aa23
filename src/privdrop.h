/* The irrevocable change from root to the mailbox owner, verified; runs as root at login. */
#ifndef MP_PRIVDROP_H
#define MP_PRIVDROP_H

#include <pwd.h>

enum privdrop_result {
	PRIVDROP_OK,
	PRIVDROP_ROOT_REFUSED,	/* uid 0 is never served */
	PRIVDROP_NOT_ROOT,	/* not started as root and the user is someone else */
};

/* Becomes pw's user for good (initgroups, setgid, setuid, and the check
 * that root cannot come back: failure there is fatal), sets umask 077.
 * When not running as root, only pw == the caller is accepted. */
enum privdrop_result privdrop_to(const struct passwd *pw);

#endif
