/* Root's part of a connection: the pre-auth process, the login, the drop, then the session; runs as root after the connection is accepted. */
#ifndef MP_LAUNCH_H
#define MP_LAUNCH_H

#include "conn.h"
#include "proxy.h"
#include "session.h"

/* Serves the connection c with privilege separation (see src/README);
 * returns the exit status. */
int	launch_separated(const struct options *, struct conn *, const struct proxy_net *, int nnets);

#endif
