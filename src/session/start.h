/* Where the session takes over the process after the privilege drop; runs as the mailbox owner. */
#ifndef MP_START_H
#define MP_START_H

#include <sys/types.h>

#include "conn.h"
#include "monitor.h"
#include "session.h"

/* After root's privilege drop (launch.c), as the mailbox owner: takes the
 * connection (plaintext) or the relay to the pre-auth process (TLS), gives
 * the session the input the pre-auth process had read, serves it to its end
 * (session_after_login) and reaps the pre-auth process.  Returns the exit
 * status.  Its own file, so that the fuzz targets that link session.c do
 * not pull in root's monitor.c. */
int	session_start(const struct options *, const struct conn *, const struct monitor_login *,
	    int relay, pid_t preauth);

#endif
