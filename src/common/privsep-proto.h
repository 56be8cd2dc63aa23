/* The fixed-size records the pre-auth child, root and the session exchange over their socketpair; pure header, no code. */
#ifndef MP_PRIVSEP_PROTO_H
#define MP_PRIVSEP_PROTO_H

#include <stdint.h>

#include "pop3d-limits.h"

/*
 * One connection is served by two processes before login (see src/README):
 *
 *   root (P)          the launcher's process: PAM child, privilege drop
 *   pre-auth (C)      its child: every byte from the client before login
 *
 * They share one AF_UNIX SOCK_SEQPACKET socketpair, so each record is one
 * message: the receiver reads into a buffer one octet larger than the
 * record it expects and refuses any other length.  Every field is checked
 * on the receiving side (the NUL inside its array, enum values, lengths);
 * root trusts nothing the pre-auth child says.
 *
 *   C -> P   struct ps_auth      credentials, once per login attempt
 *   P -> C   struct ps_answer    the verdict, never earlier than
 *                                LIMIT_AUTH_FAIL_DELAY_US after the request
 *                                when it is not PS_OK
 *   C -> P   struct ps_handover  after PS_OK, read by P only once it has
 *                                become the mailbox owner: what the client
 *                                pipelined behind its login command
 *
 * With TLS the pre-auth child stays on as the relay; the session then talks
 * to it over a second socketpair instead of the client's socket.
 */

#define PS_VERSION	1

enum ps_type {
	PS_AUTH = 0x70730001,
	PS_ANSWER,
	PS_HANDOVER,
};

enum ps_method {
	PS_METHOD_USER = 1,	/* USER/PASS */
	PS_METHOD_PLAIN,	/* AUTH PLAIN */
	PS_METHOD_LOGIN,	/* AUTH LOGIN */
};

enum ps_result {
	PS_OK = 1,		/* logged in: send the hand-over */
	PS_FAILED,		/* -ERR [AUTH] Authentication failed. (every credential or account reason) */
	PS_TEMPFAIL,		/* -ERR [SYS/TEMP]: PAM or the system failed */
	PS_NOT_ROOT,		/* not started as root and the account is another user's */
	PS_HOME_TOO_LONG,	/* the account's home does not fit LIMIT_PATH */
};

/* "192.0.2.7", "2001:db8::1", "local": at most an IPv6 address's 45 octets. */
#define PS_PEER_SIZE	64

struct ps_auth {
	uint32_t	type;		/* PS_AUTH */
	uint32_t	version;	/* PS_VERSION */
	uint32_t	method;		/* enum ps_method */
	uint32_t	tls;		/* 0 or 1: the credentials came over TLS */
	char		user[LIMIT_USER_NAME + 1];	/* NUL-terminated; "" when the client's did not fit */
	char		password[LIMIT_PASSWORD + 1];	/* idem; wiped by both sides after use */
	char		peer[PS_PEER_SIZE];	/* the client as the PROXY header named it, or "" */
};

struct ps_answer {
	uint32_t	type;		/* PS_ANSWER */
	uint32_t	result;		/* enum ps_result */
	uint32_t	close;		/* 1: the failure budget is spent; answer, then end */
};

struct ps_handover {
	uint32_t	type;		/* PS_HANDOVER */
	uint32_t	tls;		/* 0 or 1; must match the request's */
	uint32_t	inlen;		/* octets used in in[], at most LIMIT_INBUF */
	char		in[LIMIT_INBUF];	/* read from the client, not yet a command */
};

#endif
