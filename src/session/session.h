/* One POP3 session: options, states, the command table and dispatcher, counters and the logout summary; runs in the pre-auth process before login, then as the mailbox owner. */
#ifndef MP_SESSION_H
#define MP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "lineio.h"
#include "maildir.h"
#include "sandbox.h"

enum tls_mode { TLS_OFF, TLS_STARTTLS, TLS_IMPLICIT };
enum plaintext_policy { PLAINTEXT_SECURE, PLAINTEXT_ALWAYS };

#define MAX_PROXY_NETS	32

struct options {
	const char		*maildir;	/* -m, with %u %h %% */
	const char		*pam_service;
	int			 timeout;	/* seconds */
	bool			 preauth;
	const char		*tls_cert, *tls_key;
	enum tls_mode		 tls;
	bool			 flag_updates;
	bool			 lock;
	const char		*proxy_from;	/* as given; parsed by main */
	enum plaintext_policy	 plaintext;
	enum maildir_uidl_source uidl_source;	/* --uidl-source */
	const char		*uidl_format;	/* --pop3-uidl-format, NULL: Dovecot's default */
	enum sandbox_mode	 sandbox;	/* --sandbox; 0 confines */
};

enum state {
	ST_AUTH = 1,		/* AUTHORIZATION, as root */
	ST_TRANS = 2,		/* TRANSACTION, as the mailbox owner */
	ST_DONE = 4,		/* QUIT answered or a fatal condition: leave */
};

/* How the session ended, for the log and the exit status. */
enum session_end { END_QUIT, END_EOF, END_TIMEOUT, END_ERROR, END_LIMIT,
	END_HANDOVER,		/* pre-auth: root accepted a login; the session takes over */
};

struct session {
	struct lineio		 io;		/* first: session_init skips its buffers */
	const struct options	*opt;
	enum state		 state;
	enum session_end	 end;
	int			 exit_status;	/* when not 0, the exit status whatever the end */
	bool			 greeted;	/* the greeting (or the login's answer) is out */

	/* connection */
	char			 peer[64];	/* "192.0.2.7", "::1", "local" */
	bool			 peer_secure;	/* loopback, unix socket, pipe */
	bool			 is_socket;
	bool			 tls_active;
	void			*tls;		/* struct tls_conn * when TLS is on */
	bool			 tls_ready;	/* --tls-cert given and loaded */

	/* authorization */
	char			 user[LIMIT_USER_NAME + 1];	/* after USER */
	bool			 have_user;
	int			 auth_failures;
	int			 bad_commands;
	unsigned		 commands;	/* lines received */
	long long		 login_deadline;	/* AUTHORIZATION ends here (0: none) */
	bool			 quiet_eof;	/* the proxy's own connection: leaving unheard is a health check */
	char			 login_user[LIMIT_USER_NAME + 1];	/* sanitised, for the log */
	const char		*login_method;

	/* transaction */
	struct maildir		 md;
	uint32_t		 last_msn;	/* LAST: highest message number RETR'd */
	uint32_t		 last_at_login;	/* highest one already seen before */
	uint32_t		 dele_count, retr_count, top_count;
	uint64_t		 dele_octets, retr_octets, top_octets;

	/* the multi-line body the dispatcher sends after +OK */
	int			 body_fd;
	uint32_t		 body_idx;
	bool			 body_top;
	uint64_t		 body_lines;
};

/* A handler's answer: the dispatcher writes "+OK text" or "-ERR [code]
 * text", then calls body() for a multi-line answer, then ".". */
struct reply {
	bool		 ok;
	const char	*code;		/* RFC 2449 response code or NULL */
	char		 text[160];
	void		(*body)(struct session *);
	void		(*after)(struct session *);	/* after the line is flushed (STLS) */
	bool		 none;		/* no answer at all (a login handed over) */
	bool		 counted;	/* a failed login: counted apart from bad commands */
};

typedef void cmd_fn(struct session *, int argc, char **argv, struct reply *);

/* Sets a reply from a fixed text (never client input). */
void	reply_ok(struct reply *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	reply_err(struct reply *, const char *code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

void	session_init(struct session *, const struct options *, int rfd, int wfd);
/* Runs the session to its end; returns the exit status (MP_EXIT_*). */
int	session_run(struct session *);

/* After the hand-over, as the mailbox owner: the input the pre-auth process
 * had read (in[0..inlen)), the login's log line and answer, then the rest
 * of the session; returns the exit status. */
int	session_after_login(struct session *, const char *user, const char *home,
	    const char *method, const char *in, size_t inlen);

/* Reads one command or SASL line within the idle timeout and, before
 * login, the AUTHORIZATION deadline. */
enum lineio_status session_read_line(struct session *, char **line_r, size_t *len_r);

/* Enters TRANSACTION as the current (already dropped) user: resolves the
 * Maildir path, confines the process to it (sandbox_session), opens it.
 * Returns false with r set when it cannot; a process that must not serve
 * unconfined also gets exit_status 78. */
bool	session_enter_transaction(struct session *, const char *user, const char *home,
	    struct reply *);

/* Whether USER/PASS and SASL PLAIN/LOGIN may be used right now. */
bool	session_plaintext_ok(const struct session *);

/* cmd_auth.c: before login */
cmd_fn	cmd_capa, cmd_user, cmd_pass, cmd_auth, cmd_apop, cmd_stls, cmd_quit;
/* cmd_trans.c: after login */
cmd_fn	cmd_stat, cmd_list, cmd_uidl, cmd_retr, cmd_top, cmd_dele, cmd_rset, cmd_noop, cmd_last;
void	trans_quit(struct session *, struct reply *);

/* One function turns a wire message number into an index: false with r set
 * when arg is not a number of an existing, undeleted message. */
bool	session_msn(struct session *, const char *arg, uint32_t *idx_r, struct reply *);

/* Expands %u, %h, %% in fmt; a relative result is put under home.  -1 when
 * the result would not fit or has an unknown % sequence. */
int	session_expand_maildir(const char *fmt, const char *user, const char *home,
	    char *out, size_t outsize);

#endif
