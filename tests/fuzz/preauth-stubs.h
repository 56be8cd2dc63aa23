/* Link-time stand-in for root's answer to a login in the pre-auth fuzz target; test code only, never part of the daemon. */
#ifndef MP_PREAUTH_STUBS_H
#define MP_PREAUTH_STUBS_H

void	 stub_reset(void);
unsigned stub_asks(void);	/* requests sent to "root" */
unsigned stub_failures(void);	/* answers that were not PS_OK */
unsigned stub_oks(void);

#endif
