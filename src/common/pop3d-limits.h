/* Every limit, timeout and exit status of maildir-pop3d, with the reason for its value; pure header, used by every part. */
#ifndef MP_POP3D_LIMITS_H
#define MP_POP3D_LIMITS_H

/* RFC 2449 section 4: a command line is at most 255 octets including CRLF. */
#define LIMIT_CMD_LINE		255

/* RFC 5034 section 4: SASL responses are not bound by the 255-octet rule.  PLAIN
 * with a 255-octet name twice and a 255-octet password, base64-encoded, fits. */
#define LIMIT_SASL_LINE		1024

/* Input buffer: room for one SASL line plus pipelined commands behind it.  Never
 * grows; a client cannot make us allocate. */
#define LIMIT_INBUF		4096

/* Read size for message files when streaming RETR/TOP and computing sizes. */
#define LIMIT_FILE_CHUNK	(64 * 1024)

/* Output buffer: multi-line answers go out in writes of this size (fewer
 * syscalls, no Nagle stalls between pieces of one answer).  It must hold one
 * encoded chunk of a message: at worst twice the chunk plus a line end. */
#define LIMIT_OUTBUF		(2 * LIMIT_FILE_CHUNK + 1024)

/* RETR/TOP: with room in the output buffer for less than this much message
 * (encoded, at worst twice as long), the buffer is written out first rather
 * than fed a small piece: writes stay nearly full. */
#define LIMIT_ENC_MIN_PIECE	(LIMIT_OUTBUF / 32)

/* RFC 1939 section 3: the autologout timer is at least 10 minutes. */
#define LIMIT_TIMEOUT_DEFAULT	600
#define LIMIT_TIMEOUT_MAX	86400

/* A configuration error is told to the client in one line before exiting;
 * a client that does not read it within this many seconds is not waited for. */
#define LIMIT_GREET_ERROR_TIMEOUT	10

/* Longest single poll() sleep while waiting for a deadline: a clock that
 * jumps cannot make one wait outlive the deadline by more than this. */
#define LIMIT_POLL_SLICE_MS	60000

/* Failed logins per connection before it is closed: enough for a typo or
 * two, few enough that guessing costs a new connection (and a new
 * LIMIT_AUTH_FAIL_DELAY_US each) per three tries.  Documented in
 * maildir-pop3d(8), PROTOCOL. */
#define LIMIT_AUTH_FAILURES	3

/* Password prompts the PAM conversation answers in one login: a stack that
 * asks more often wants something other than the one password we have (a
 * new password, a second factor), and the login fails. */
#define LIMIT_PAM_PROMPTS	3

/* Bad or unknown commands per session before it is closed: a client that
 * sends garbage in a loop is not a mail client. */
#define LIMIT_BAD_COMMANDS	20

/* Every failed login answers no earlier than this after the credentials
 * arrived, whatever PAM did, so a wrong password and an unknown user look
 * alike in time (microseconds). */
#define LIMIT_AUTH_FAIL_DELAY_US	2000000

/* AUTHORIZATION ends this long after the connection at the latest, or after
 * LIMIT_LOGIN_PHASE_TIMEOUTS idle timeouts when that is sooner: a login takes
 * seconds, and a client that keeps one alive with CAPA must not hold a process
 * and a launcher slot forever.  Never shorter than RFC 1939's 10 minutes at
 * the default timeout. */
#define LIMIT_LOGIN_PHASE_S		900
#define LIMIT_LOGIN_PHASE_TIMEOUTS	2

/* Root gives the pre-auth child this long past the login deadline (and past
 * its last answer when the failure budget is spent) before it kills it. */
#define LIMIT_PREAUTH_GRACE_MS		2000

/* The pre-auth child's rlimits: descriptors for the client, the records,
 * the relay, syslog and what OpenSSL keeps; no files written, no processes
 * started; an address space that holds OpenSSL and our fixed buffers. */
#define LIMIT_PREAUTH_NOFILE		16
#define LIMIT_PREAUTH_AS		(256UL * 1024 * 1024)

/* Longest user name we pass to PAM; longer ones fail like a wrong password. */
#define LIMIT_USER_NAME		255

/* Longest password we pass to PAM (crypt(3) implementations cap far lower). */
#define LIMIT_PASSWORD		512

/* RFC 1939 section 7: a unique-id is 1 to 70 characters in 0x21..0x7E. */
#define LIMIT_UIDL_LEN		70

/* Longest Maildir file name we accept (NAME_MAX on every system we target). */
#define LIMIT_MAILDIR_NAME	255

/* Messages served in one session.  The index is 32-bit; past this a
 * maildrop is served partially (what new/, read first, and then cur/ hold
 * up to the limit), and the log says so. */
#define LIMIT_MESSAGES		4000000

/* Times an operation on a message file (open, unlink, rename) follows
 * another agent's rename of it (new/ to cur/, then a flag change) before
 * giving up: each try reads new/ and cur/ once, and an agent that renames
 * the same file three times while we look is not one we can keep up with. */
#define LIMIT_RENAME_TRIES	3

/* Longest path to a Maildir after %u/%h expansion. */
#define LIMIT_PATH		4096

/* Supplementary groups of an account, as sent by the PAM child: Linux's
 * NGROUPS_MAX. */
#define LIMIT_GROUPS		65536

/* PROXY protocol header: v1 is at most 107 octets (spec section 2.1); v2 is
 * 16 octets plus a length we cap at what an address block with TLVs needs. */
#define LIMIT_PROXY_V1		107
#define LIMIT_PROXY_V2_BODY	512

/* Size cache file: never read more than this many octets of it (about
 * 100 octets a line, so several million messages). */
#define LIMIT_CACHE_FILE	(512u * 1024 * 1024)

/* The previous server's state file (dovecot-uidlist, courierpop3dsizelist):
 * read whole, never more than this (about 60 octets a line for Dovecot, so
 * LIMIT_MESSAGES lines fit); a bigger one is not used at all. */
#define LIMIT_TAKEOVER_FILE	(256u * 1024 * 1024)

/* One line of that file: a file name (LIMIT_MAILDIR_NAME) plus Dovecot's
 * extension fields (UIDL, order, GUID, sizes) fits many times; Courier's own
 * reader keeps 2048 octets of a line.  A longer line is damaged. */
#define LIMIT_TAKEOVER_LINE	4096

/* One extension field of a dovecot-uidlist line, and one value expanded into
 * a pop3_uidl_format: a UIDL is at most LIMIT_UIDL_LEN, a GUID 32 hex
 * digits; the room is for formats that cut a longer value down. */
#define LIMIT_TAKEOVER_FIELD	1024

/* --pop3-uidl-format: Dovecot's setting was one short line. */
#define LIMIT_UIDL_FORMAT	256

/* TLS private key file: a PEM key (possibly with its chain in the same file)
 * is a few KiB; past this the file is not what the administrator meant.  It
 * is read into one buffer that is wiped afterwards. */
#define LIMIT_TLS_KEY_FILE	(1024 * 1024)

/* How long the TLS close_notify may wait for room in the socket buffer: it is
 * a courtesy to the client, not worth holding the process. */
#define LIMIT_TLS_SHUTDOWN_MS	1000

/* A client-chosen field in a log line (user name, PAM text) is cut here:
 * enough for any real user name, short enough that a client cannot fill the
 * log with one line. */
#define LIMIT_LOG_FIELD		64

/* Buffers for the peer and the OpenSSL reason in TLS log lines: log_sanitize
 * keeps at most LIMIT_LOG_FIELD octets, and the longest peer (IPv6) is 45. */
#define LIMIT_TLS_LOG_FIELD	(LIMIT_LOG_FIELD + 8)

/* maildir-pop3d --check warns about a certificate that ends within this many
 * days: ACME clients renew 30 days ahead, so one this close has missed its
 * renewals. */
#define LIMIT_CERT_WARN_DAYS	30

/*
 * Exit statuses (maildir-pop3d(8), EXIT STATUS).  The launcher (systemd,
 * inetd) only logs them, but they tell an administrator how sessions end:
 * a configuration error from a client's, a client that left from one that
 * was cut off.  Small numbers for how the client's session ended, sysexits(3)
 * values for the server's own troubles.
 */
#define MP_EXIT_OK		0	/* the session ended with QUIT; --help, --version */
#define MP_EXIT_QUIT		MP_EXIT_OK
#define MP_EXIT_ERROR		1	/* an I/O error, a failed TLS handshake, a protocol violation */
#define MP_EXIT_GONE		2	/* the client closed the connection without QUIT */
#define MP_EXIT_TIMEOUT		3	/* the idle timeout passed */
#define MP_EXIT_LIMIT		4	/* failed logins, bad commands or the login deadline */
#define MP_EXIT_USAGE		64	/* EX_USAGE: a bad option or option value */
#define MP_EXIT_TEMPFAIL	75	/* EX_TEMPFAIL: the system failed (fatal()) */
#define MP_EXIT_CONFIG		78	/* EX_CONFIG: a configuration error found at run time */
#define MP_EXIT_CHECK_FAILED	1	/* --check: a check failed */

#endif
