/* Entry point: options, core dumps off, how the connection arrived, PROXY header, TLS set-up, then one session; runs as root until login. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "check.h"
#include "conn.h"
#include "launch.h"
#include "pop3d-limits.h"
#include "log.h"
#include "proto.h"
#include "proxy.h"
#include "sandbox.h"
#include "session.h"
#include "takeover.h"
#ifdef HAVE_OPENSSL
#include "tls.h"
#endif


static const char usage_text[] =
"Usage: maildir-pop3d [OPTION]...\n"
"Serve one POP3 session on stdin/stdout (inetd, xinetd, systemd Accept=yes)\n"
"or on fd 3 from systemd socket activation.\n"
"\n"
"  -m, --maildir=PATH        Maildir to serve; relative to the home directory;\n"
"                            %u user name, %h home, %% a percent (default: Maildir)\n"
"  -s, --pam-service=NAME    PAM service name (default: maildir-pop3d)\n"
"  -t, --timeout=SECONDS     idle timeout (default: 600; RFC 1939 asks >= 600)\n"
"  -p, --preauth             the caller is the mailbox owner: start in TRANSACTION,\n"
"                            no PAM, no privilege change (refused as root)\n"
"      --tls-cert=FILE       PEM certificate chain; enables STLS\n"
"      --tls-key=FILE        PEM private key (default: the certificate file)\n"
"      --tls=MODE            starttls | implicit (port 995) | off\n"
"      --no-flag-updates     never rename messages to add the seen flag\n"
"      --lock                exclusive access to the Maildir for the session\n"
"      --proxy-from=CIDR[,CIDR...]\n"
"                            require a PROXY protocol header from these addresses\n"
"      --plaintext=POLICY    secure (default: TLS or local peers only) | always\n"
"      --uidl-source=SOURCE  whose UIDLs (and order) messages keep when the Maildir\n"
"                            was served by another POP3 server: auto (default: the\n"
"                            newer of dovecot-uidlist and courierpop3dsizelist) |\n"
"                            dovecot | courier | none\n"
"      --dovecot-uidl-format=FORMAT\n"
"                            the pop3_uidl_format Dovecot was set to (default:\n"
"                            %08Xu%08Xv, Dovecot's own default)\n"
"      --check [USER]        print the effective configuration and check it (PAM\n"
"                            file, TLS module, certificate and key, the pre-auth\n"
"                            user); with USER, read a password from stdin and run\n"
"                            the login path step by step; exit 0 when all is well\n"
"      --sandbox=require     refuse to serve where the kernel lacks Landlock or\n"
"                            seccomp (default: serve, and log it once)\n"
"  -h, --help                show this help and exit\n"
"  -V, --version             show the version and exit\n";

static bool stderr_ok;
/* --check [USER] */
static bool check_mode;
static const char *check_user;

/* A usage or configuration error before the session: to stderr when it is
 * not the client's socket, and to syslog always. */
__attribute__((format(printf, 2, 3)))
static noreturn void
die(int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	syslog(LOG_ERR, "%s", msg);
	if (stderr_ok)
		fprintf(stderr, "maildir-pop3d: %s\n", msg);
	exit(status);
}

static void
secure_process(void)
{
	struct rlimit rl = { 0, 0 };

	/* No core file may ever hold a password. */
	setrlimit(RLIMIT_CORE, &rl);
#if defined(HAVE_SYS_PRCTL_H) && defined(PR_SET_DUMPABLE)
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
	signal(SIGPIPE, SIG_IGN);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	enum { O_TLS_CERT = 256, O_TLS_KEY, O_TLS, O_NO_FLAG, O_LOCK, O_PROXY, O_PLAIN,
	    O_UIDL_SOURCE, O_UIDL_FORMAT, O_CHECK, O_SANDBOX };
	static const struct option longopts[] = {
		{ "maildir", required_argument, NULL, 'm' },
		{ "pam-service", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "preauth", no_argument, NULL, 'p' },
		{ "tls-cert", required_argument, NULL, O_TLS_CERT },
		{ "tls-key", required_argument, NULL, O_TLS_KEY },
		{ "tls", required_argument, NULL, O_TLS },
		{ "no-flag-updates", no_argument, NULL, O_NO_FLAG },
		{ "lock", no_argument, NULL, O_LOCK },
		{ "proxy-from", required_argument, NULL, O_PROXY },
		{ "plaintext", required_argument, NULL, O_PLAIN },
		{ "uidl-source", required_argument, NULL, O_UIDL_SOURCE },
		{ "dovecot-uidl-format", required_argument, NULL, O_UIDL_FORMAT },
		{ "check", no_argument, NULL, O_CHECK },
		{ "sandbox", required_argument, NULL, O_SANDBOX },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tls_mode = NULL;
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->maildir = "Maildir";
	o->pam_service = "maildir-pop3d";
	o->timeout = LIMIT_TIMEOUT_DEFAULT;
	o->flag_updates = true;
	o->plaintext = PLAINTEXT_SECURE;
	o->sandbox = SANDBOX_TRY;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":m:s:t:phV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (*optarg == '\0' || strlen(optarg) >= LIMIT_PATH)
				die(MP_EXIT_USAGE, "--maildir: empty or too long");
			o->maildir = optarg;
			break;
		case 's':
			if (*optarg == '\0' || strchr(optarg, '/') != NULL)
				die(MP_EXIT_USAGE, "--pam-service: not a service name: %s", optarg);
			o->pam_service = optarg;
			break;
		case 't':
			if (proto_parse_u64(optarg, LIMIT_TIMEOUT_MAX, &v) == -1 || v == 0)
				die(MP_EXIT_USAGE, "--timeout: not a number of seconds from 1 to %d: %s",
				    LIMIT_TIMEOUT_MAX, optarg);
			o->timeout = (int)v;
			break;
		case 'p':
			o->preauth = true;
			break;
		case O_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case O_TLS_KEY:
			o->tls_key = optarg;
			break;
		case O_TLS:
			tls_mode = optarg;
			if (strcmp(optarg, "starttls") == 0)
				o->tls = TLS_STARTTLS;
			else if (strcmp(optarg, "implicit") == 0)
				o->tls = TLS_IMPLICIT;
			else if (strcmp(optarg, "off") == 0)
				o->tls = TLS_OFF;
			else
				die(MP_EXIT_USAGE, "--tls: must be starttls, implicit or off: %s", optarg);
			break;
		case O_NO_FLAG:
			o->flag_updates = false;
			break;
		case O_LOCK:
			o->lock = true;
			break;
		case O_PROXY:
			o->proxy_from = optarg;
			break;
		case O_PLAIN:
			if (strcmp(optarg, "secure") == 0)
				o->plaintext = PLAINTEXT_SECURE;
			else if (strcmp(optarg, "always") == 0)
				o->plaintext = PLAINTEXT_ALWAYS;
			else
				die(MP_EXIT_USAGE, "--plaintext: must be secure or always: %s", optarg);
			break;
		case O_UIDL_SOURCE:
			if (strcmp(optarg, "auto") == 0)
				o->uidl_source = UIDL_SOURCE_AUTO;
			else if (strcmp(optarg, "dovecot") == 0)
				o->uidl_source = UIDL_SOURCE_DOVECOT;
			else if (strcmp(optarg, "courier") == 0)
				o->uidl_source = UIDL_SOURCE_COURIER;
			else if (strcmp(optarg, "none") == 0)
				o->uidl_source = UIDL_SOURCE_NONE;
			else
				die(MP_EXIT_USAGE, "--uidl-source: must be auto, dovecot, courier or none: %s",
				    optarg);
			break;
		case O_UIDL_FORMAT: {
			const char *why;

			if (!takeover_format_ok(optarg, &why))
				die(MP_EXIT_USAGE, "--dovecot-uidl-format: %s", why);
			o->uidl_format = optarg;
			break;
		}
		case O_CHECK:
			check_mode = true;
			break;
		case O_SANDBOX:
			if (strcmp(optarg, "require") != 0)
				die(MP_EXIT_USAGE, "--sandbox: must be require: %s", optarg);
			o->sandbox = SANDBOX_REQUIRE;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(MP_EXIT_QUIT);
		case 'V':
			printf("maildir-pop3d %s\n", PACKAGE_VERSION);
#ifdef HAVE_OPENSSL
			/* Only named here: loading it is for sessions with TLS. */
			printf("TLS: OpenSSL, module %s%s\n", tls_module_path(),
			    access(tls_module_path(), F_OK) == 0 ? "" : " (missing)");
#else
			printf("TLS: not built in\n");
#endif
#ifdef HAVE_SYSTEMD
			printf("socket activation: libsystemd\n");
#else
			printf("socket activation: fd 0/1 only (built without libsystemd)\n");
#endif
			printf("sandbox: %s\n", sandbox_describe());
			exit(MP_EXIT_OK);
		case ':':
			die(MP_EXIT_USAGE, "option %s needs a value", argv[optind - 1]);
		default:
			if (optopt)
				die(MP_EXIT_USAGE, "unknown option -%c (try --help)", optopt);
			die(MP_EXIT_USAGE, "unknown option %s (try --help)", argv[optind - 1]);
		}
	}
	if (check_mode && optind < argc)
		check_user = argv[optind++];
	if (optind < argc)
		die(MP_EXIT_USAGE, "unexpected argument: %s (try --help)", argv[optind]);
	if (o->tls_key && !o->tls_cert)
		die(MP_EXIT_USAGE, "--tls-key needs --tls-cert");
	if (tls_mode == NULL)
		o->tls = o->tls_cert ? TLS_STARTTLS : TLS_OFF;
	else if (o->tls != TLS_OFF && !o->tls_cert)
		die(MP_EXIT_USAGE, "--tls=%s needs --tls-cert", tls_mode);
	if (o->tls_cert && !o->tls_key)
		o->tls_key = o->tls_cert;
#ifndef HAVE_OPENSSL
	if (o->tls != TLS_OFF)
		die(MP_EXIT_USAGE, "--tls-cert/--tls: this maildir-pop3d was built without OpenSSL");
#endif
}

/* --preauth: the caller is the mailbox owner already; no login, so no
 * pre-auth process: one process as that user does it all. */
static int
serve_preauth(const struct options *opt, struct conn *c, const struct proxy_net *nets, int nnets)
{
	static struct session s;

	if (nnets > 0) {
		struct proxy_info pi;

		if (c->peer_sa.ss_family == AF_UNSPEC ||
		    !proxy_addr_trusted((struct sockaddr *)&c->peer_sa, nets, nnets)) {
			/* Not from a trusted proxy: served as is; a PROXY
			 * line is then refused by the dispatcher. */
		} else if (proxy_read_header(c->rfd, opt->timeout * 1000, &pi) == -1) {
			log_warn("PROXY header missing or malformed: rhost=<%s>", c->peer);
			return MP_EXIT_ERROR;
		} else if (!pi.local) {
			conn_set_peer(c, (struct sockaddr *)&pi.src);
		}
	}

	session_init(&s, opt, c->rfd, c->wfd);
	snprintf(s.peer, sizeof(s.peer), "%s", c->peer);
	s.peer_secure = c->secure;
	s.is_socket = c->is_socket;

#ifdef HAVE_OPENSSL
	/* Implicit TLS only: the session starts in TRANSACTION, where STLS is
	 * never offered, so with --tls=starttls the key is not even loaded
	 * (this process is the mailbox owner's).  With implicit TLS the
	 * caller reads the key file itself; the module frees the key after
	 * the handshake. */
	if (opt->tls == TLS_IMPLICIT) {
		char err[512];
		struct tls_conn *t;

		if (tls_init(opt->tls_cert, opt->tls_key, err, sizeof(err)) == -1) {
			log_warnx("TLS configuration error: %s", err);
			return MP_EXIT_CONFIG;
		}
		if ((t = tls_accept(c->rfd, opt->timeout * 1000, c->peer)) == NULL)
			return MP_EXIT_ERROR;
		s.tls_ready = true;
		lineio_set_transport(&s.io, &tls_ops, t);
		s.tls = t;
		s.tls_active = true;
	}
#endif

	{
		struct passwd *pw = getpwuid(getuid());
		struct reply r;

		if (pw == NULL) {
			log_warnx("preauth: uid %u has no passwd entry", (unsigned)getuid());
			conn_say(c, "-ERR [SYS/PERM] No passwd entry for this user.\r\n");
			return MP_EXIT_CONFIG;
		}
		umask(077);
		log_sanitize(s.login_user, sizeof(s.login_user), pw->pw_name, strlen(pw->pw_name));
		s.login_method = "preauth";
		log_info("login: user=<%s> rhost=<%s> method=preauth tls=%s", s.login_user, s.peer,
		    s.tls_active ? "yes" : "no");
		memset(&r, 0, sizeof(r));
		if (!session_enter_transaction(&s, pw->pw_name, pw->pw_dir, &r)) {
			char line[256];

			snprintf(line, sizeof(line), "-ERR%s%s%s %s\r\n", r.code ? " [" : "",
			    r.code ? r.code : "", r.code ? "]" : "", r.text);
			lineio_puts(&s.io, line);
			lineio_flush(&s.io);
			return s.exit_status != 0 ? s.exit_status : MP_EXIT_ERROR;
		}
	}
	return session_run(&s);
}

int
main(int argc, char **argv)
{
	struct options opt;
	struct conn c;
	struct proxy_net nets[MAX_PROXY_NETS];
	int nnets = 0;

	secure_process();
	stderr_ok = !conn_fd_is_socket(2);
	log_init("maildir-pop3d");
	parse_options(argc, argv, &opt);
	if (opt.proxy_from) {
		nnets = proxy_parse_cidrs(opt.proxy_from, nets, MAX_PROXY_NETS);
		if (nnets < 0)
			die(MP_EXIT_USAGE, "--proxy-from: not a list of addresses or CIDR networks: %s",
			    opt.proxy_from);
	}
	if (check_mode)
		return check_run(&opt, check_user);
	if (opt.preauth && geteuid() == 0)
		die(MP_EXIT_USAGE, "--preauth refuses to run as root (it serves the caller's own mailbox)");

	switch (conn_detect(&c)) {
	case CONN_OK:
		break;
	case CONN_LISTENING:
		die(MP_EXIT_CONFIG, "got a listening socket: use Accept=yes in the systemd .socket unit "
		    "(or nowait in inetd.conf); one process serves one connection");
	case CONN_BAD_FDS:
		die(MP_EXIT_CONFIG, "LISTEN_FDS must pass exactly one connected stream socket (Accept=yes)");
	case CONN_NO_SYSTEMD:
#ifdef HAVE_SYSTEMD
		die(MP_EXIT_CONFIG, "LISTEN_FDS is set but libsystemd could not be loaded (%s); "
		    "install it or use StandardInput=socket", c.why);
#else
		die(MP_EXIT_CONFIG, "LISTEN_FDS is set but this maildir-pop3d was built without libsystemd; "
		    "use StandardInput=socket");
#endif
	}
	/* From here on only POP3 goes to the client: fd 2 may be the socket. */
	if (conn_fd_is_socket(2)) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null != -1 && null != 2) {
			dup2(null, 2);
			close(null);
		}
	}
	stderr_ok = false;

	sandbox_set_mode(opt.sandbox);
	if (opt.sandbox == SANDBOX_REQUIRE) {
		char why[256];

		/* Refused before the greeting: no client gets as far as a password. */
		if (!sandbox_available(why, sizeof(why))) {
			log_warnx("sandbox: %s; --sandbox=require refuses to serve", why);
			conn_say(&c, "-ERR [SYS/PERM] This server cannot confine its sessions.\r\n");
			return MP_EXIT_CONFIG;
		}
	}
	if (!opt.preauth)
		return launch_separated(&opt, &c, nets, nnets);
	return serve_preauth(&opt, &c, nets, nnets);
}
