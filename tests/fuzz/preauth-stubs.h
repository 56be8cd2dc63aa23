/* Link-time stand-ins for PAM, the privilege drop and nanosleep() in the pre-login fuzz target; test code only, never part of the daemon. */
#ifndef MP_PREAUTH_STUBS_H
#define MP_PREAUTH_STUBS_H

#include <stdbool.h>

void	 stub_reset(void);
/* While on, nanosleep() from this thread returns at once (the 2 s login
 * delay), and only records what was asked. */
void	 stub_in_session(bool);
unsigned stub_delays(void);
long long stub_max_delay_us(void);
unsigned stub_pam_calls(void);
unsigned stub_pam_syserrs(void);
unsigned stub_pam_notroot(void);

#endif
