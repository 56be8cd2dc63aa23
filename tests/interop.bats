#!/usr/bin/env bats
# Interoperability: the mail clients shipped by Debian (fetchmail, getmail6, mutt, curl,
# python3's poplib, Perl's Net::POP3) fetch test Maildirs from the real daemon, served by
# systemd-socket-activate --inetd on a loopback port with cwrap (pam_wrapper) users, and what
# each client stored must be byte-identical to the Maildir original, once the LF->CRLF transport
# (the server also ends an unterminated last line) and the client's own documented additions are
# undone. Plaintext first, then STLS and implicit TLS with a certificate made at test time.
#
# Clients run without the wrappers, and as uid 65534 (setpriv) when the suite runs as root:
# getmail refuses to deliver as root, fetchmail discourages it, and the plugin case needs a
# non-root caller. Needs: fetchmail getmail6 mutt curl perl libio-socket-ssl-perl python3
# openssl systemd (systemd-socket-activate) util-linux (script, setpriv).

load lib/common
load lib/cwrap
bats_require_minimum_version 1.5.0

CLIENT_UID=65534
PASS='alice pw'

setup_file() {
	# The CA file must be readable by the client user: not under bats' private temp dirs.
	IX_CERTS=$(mktemp -d "${TMPDIR:-/tmp}/mp-interop-certs.XXXXXX")
	chmod 755 "$IX_CERTS"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
		-keyout "$IX_CERTS/key.pem" -out "$IX_CERTS/cert.pem" 2>/dev/null
	chmod 644 "$IX_CERTS/cert.pem"
	export IX_CERTS
}

teardown_file() {
	[[ -n ${IX_CERTS:-} ]] && rm -rf "$IX_CERTS"
	return 0
}

setup() {
	[[ -f $IX_CERTS/cert.pem ]] || fail "openssl could not make the test certificate"
	T=$(mktemp -d "${TMPDIR:-/tmp}/mp-interop.XXXXXX")
	chmod 755 "$T"
	cwrap_setup "$T/cw"
	# Only the daemon runs wrapped (through $(cwrap_env_prefix)), not this shell's helpers:
	# fewer processes competing for pam_wrapper's 62 /tmp/pam.? names.
	export -n "${CWRAP_VARS[@]}"
	cwrap_add_user alice "$PASS" 1001
	MD=$CWRAP_DIR/home/alice/Maildir
	mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
	ORIG=$T/orig	# copies of what the Maildir held, to compare with
	C=$T/client	# the client's HOME, rc files and output
	mkdir -p "$ORIG" "$C/out"
	if [[ $(id -u) == 0 ]]; then
		AS_CLIENT=(setpriv --reuid="$CLIENT_UID" --regid="$CLIENT_UID" --clear-groups --)
	else
		AS_CLIENT=()
	fi
	SSA_PIDS=()
}

teardown() {
	if [[ -z ${BATS_TEST_COMPLETED:-} && -n ${T:-} ]]; then	# the test failed: say why
		echo "--- daemon log:"
		cat "$MP_TEST_SYSLOG" 2>/dev/null
		if [[ -f $T/mutt.screen ]]; then
			echo "--- mutt's screen, last lines:"
			tail -15 "$T/mutt.screen"
		fi
	fi
	# The launchers and the sessions they started, by pid.
	mp_kill_tree "${SSA_PIDS[@]}"
	cwrap_teardown
	[[ -n ${T:-} && -d $T ]] && rm -rf "$T"
	return 0
}

# ---- helpers -------------------------------------------------------------------------

# need PROGRAM PACKAGE: fails, naming the Debian package, when a client is missing.
need() {
	command -v "$1" >/dev/null || fail "$1 is not installed (Debian: apt-get install $2)"
}

# own_client PATH...: hands client files to the client user (root runs only).
own_client() {
	if [[ $(id -u) == 0 ]]; then
		chown -R "$CLIENT_UID:$CLIENT_UID" "$@"
	fi
}

# client CMD...: runs a client unwrapped, as the client user, with HOME=$C.
client() {
	own_client "$C"
	cwrap_unwrapped "${AS_CLIENT[@]}" env HOME="$C" FETCHMAILHOME="$C" "$@"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server [DAEMON-OPTION...]: the daemon behind systemd-socket-activate --inetd on a free
# loopback port, left in $PORT. Retries when another process took the port in between.
start_server() {
	local pid err
	need systemd-socket-activate systemd
	for _ in 1 2 3; do
		PORT=$(free_port)
		err=$T/ssa-$PORT.err
		# Not through cwrap_unwrapped: a function in the background is a subshell, and
		# its pid in $! would not be the launcher's (setup un-exported the wrappers).
		# shellcheck disable=SC2046
		systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
			$(cwrap_env_prefix) "$MAILDIR_POP3D" "$@" 2>"$err" 3>&- &
		pid=$!
		for _ in $(seq 100); do
			grep -q '^Listening on' "$err" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if grep -q '^Listening on' "$err"; then
			SSA_PIDS+=("$pid")
			return 0
		fi
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	fail "systemd-socket-activate did not start: $(cat "$err")"
}

start_tls_server() {
	"$MAILDIR_POP3D" --version | grep -q '^TLS: OpenSSL' || skip "maildir-pop3d built without OpenSSL"
	start_server --tls-cert="$IX_CERTS/cert.pem" --tls-key="$IX_CERTS/key.pem" "$@"
}

# corpus: delivers the test messages (the awkward cases clients and servers get wrong) and
# keeps a copy of each in $ORIG.
corpus() {
	python3 - "$MD" "$ORIG" <<-'PY'
		import base64, os, sys
		md, orig = sys.argv[1:3]
		b64 = base64.encodebytes(bytes((i * 7919 + 13) % 256 for i in range(150000)))
		msgs = [
		    ("new", b"From: a@example.org\nTo: alice@example.org\nSubject: plain\n"
		            b"Message-ID: <1@interop>\n\nfirst body\n"),
		    ("new", b"From: b@example.org\nSubject: no final newline\nMessage-ID: <2@interop>\n\n"
		            b"the last line\nhas no line end"),
		    ("new", b"Return-Path: <bounce@example.org>\nDelivered-To: alice@example.org\n"
		            b"Received: from mx.example.org by mail.example.org; Mon, 1 Jan 2024 00:00:00 +0000\n"
		            b"From: Alice <alice@example.org>\nTo: bob\nSubject: =?utf-8?q?caf=C3=A9?= and a\n"
		            b"\tfolded header\nMessage-ID: <3@interop>\nStatus: RO\nX-Latin1: caf\xe9\n\n"
		            b".\n..\n. \n...dots\nFrom the start of a line\n>From quoted\n>>From twice\n"
		            b"8bit \xe9\xe8\xff\x80 bytes\n\ttab\ntrailing spaces   \n   \n\n\n"
		            + b"x" * 998 + b"\nend\n"),
		    ("new", b"Subject: headers only, no blank line\nMessage-ID: <4@interop>\n"),
		    ("new", b"From: c@example.org\nSubject: ends in a lone dot line\nMessage-ID: <5@interop>\n"
		            b"\nbody\n.\n"),
		    ("new", b"From: d@example.org\nSubject: attachment\nMessage-ID: <6@interop>\n"
		            b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b0\"\n\n"
		            b"preamble\n--b0\nContent-Type: text/plain\n\nsee attached\n--b0\n"
		            b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
		            + b64 + b"--b0--\n"),
		    ("new", b"From: e@example.org\nSubject: empty body\nMessage-ID: <7@interop>\n\n"),
		    ("cur", b"From: f@example.org\nSubject: already seen by an IMAP client\n"
		            b"Message-ID: <8@interop>\n\nold mail\n"),
		]
		for i, (sub, data) in enumerate(msgs, 1):
		    name = "17000000%02d.M%dP%d.interop" % (i, i, i) + (":2,S" if sub == "cur" else "")
		    for d in (os.path.join(md, sub), orig):
		        with open(os.path.join(d, name), "wb") as f:
		            f.write(data)
	PY
}

# deliver_one NAME TEXT: one more message, also kept in $T/later.
deliver_one() {
	mkdir -p "$T/later"
	printf '%s' "$2" >"$MD/tmp/$1"
	cp "$MD/tmp/$1" "$T/later/$1"
	mv "$MD/tmp/$1" "$MD/new/$1"
}

# same_messages MODE EXPECTED-DIR STORED...: the messages stored by a client (files, or
# directories searched recursively) are exactly the messages in EXPECTED-DIR, each once.
# The expected form of an original is its bytes with a line end added to an unterminated last
# line (the server sends one), then by MODE:
#   lf       as is (clients that turn CRLF back into LF)
#   crlf     LF -> CRLF (the wire form, unstuffed)
#   lf+sep   as lf, and a message that is all header (no empty line) gets the empty line that
#            ends a header: fetchmail always writes one
#   getmail  getmail's flatten() (what its Maildir and MDA_external destinations write),
#            which re-serialises the message with Python's email package: the empty line
#            as for lf+sep; one "Return-Path: <sender>" line first,
#            sender taken from the original Return-Path: (whose own fields are removed), else
#            Sender:, else "unknown"; header lines over 78 octets refolded at a space, so
#            header fields are compared unfolded at "LF SP" (both sides)
same_messages() {
	python3 - "$@" <<-'PY'
		import difflib, email.utils, os, re, sys
		mode, expdir, stored = sys.argv[1], sys.argv[2], sys.argv[3:]

		def files(p):
		    if os.path.isdir(p):
		        for root, _, fs in sorted(os.walk(p)):
		            for f in sorted(fs):
		                yield os.path.join(root, f)
		    else:
		        yield p

		def getmail_form(b):
		    end = b.find(b"\n\n")
		    head, body = (b, b"") if end < 0 else (b[:end + 1], b[end + 1:])
		    fields = re.findall(rb"[^\n]*\n(?:[ \t][^\n]*\n)*", head)
		    def value(name):
		        for f in fields:
		            if f.lower().startswith(name + b":"):
		                return f.split(b":", 1)[1].strip()
		        return None
		    sender = value(b"return-path") or value(b"sender")
		    sender = email.utils.parseaddr(sender.decode("latin-1"))[1].encode("latin-1") if sender else b"unknown"
		    kept = b"".join(f for f in fields if not f.lower().startswith(b"return-path:"))
		    return b"Return-Path: <" + sender + b">\n" + kept + body

		def unfold(b):
		    end = b.find(b"\n\n")
		    return b[:end].replace(b"\n ", b" ") + b[end:] if end >= 0 else b

		def expected(b):
		    if b and not b.endswith(b"\n"):
		        b += b"\n"
		    if mode in ("lf+sep", "getmail") and not b.startswith(b"\n") and b"\n\n" not in b:
		        b += b"\n"
		    if mode == "crlf":
		        b = b.replace(b"\n", b"\r\n")
		    elif mode == "getmail":
		        b = unfold(getmail_form(b))
		    return b

		def stored_form(b):
		    return unfold(b) if mode == "getmail" else b

		want = [(f, expected(open(f, "rb").read())) for f in files(expdir)]
		got = [(f, stored_form(open(f, "rb").read())) for p in stored for f in files(p)]
		left = list(got)
		missing = []
		for wf, wb in want:
		    for i, (gf, gb) in enumerate(left):
		        if gb == wb:
		            del left[i]
		            break
		    else:
		        missing.append((wf, wb))
		if not missing and not left:
		    sys.exit(0)
		print("stored %d message(s), expected %d" % (len(got), len(want)))
		for wf, _ in missing:
		    print("not stored byte-identically:", os.path.basename(wf))
		for gf, _ in left:
		    print("stored but not expected:", gf)
		def mid(b):
		    m = re.search(rb"(?im)^message-id:\s*(\S+)", b)
		    return m.group(1) if m else None
		for wf, wb in missing:
		    for gf, gb in left:
		        if mid(gb) == mid(wb):
		            print("--- diff of %s (expected) and %s (stored):" % (os.path.basename(wf), gf))
		            for l in list(difflib.unified_diff([repr(x) for x in wb.splitlines(True)],
		                                              [repr(x) for x in gb.splitlines(True)], lineterm=""))[:60]:
		                print(l)
		            break
		sys.exit(1)
	PY
}

# maildir_empty: no message left in the served Maildir.
maildir_empty() {
	run find "$MD/new" "$MD/cur" -type f
	assert_output ''
}

# logged PATTERN: the daemon logged a line matching the extended regex PATTERN.
logged() {
	grep -Eq "$1" "$MP_TEST_SYSLOG" || fail "no log line matches '$1': $(cat "$MP_TEST_SYSLOG")"
}

# ---- fetchmail -----------------------------------------------------------------------

# make_mda: $C/mda, which stores its input, unchanged, in a new file in $C/out.
make_mda() {
	# shellcheck disable=SC2016
	printf '#!/bin/sh\nexec cat >"$(mktemp %s/out/msg.XXXXXX)"\n' "$C" >"$C/mda"
	chmod 755 "$C/mda"
}

# fetchmail_rc [SERVER-OPTIONS [USER-OPTIONS [DELIVERY]]]: $C/fetchmailrc polling alice on
# $PORT and by default delivering to an MDA that writes each message to its own file in $C/out.
# "set invisible" stops fetchmail's Received: header and "no rewrite" its address rewriting;
# with those (and no dropstatus/dropdelivered/mimedecode) it stores the message unchanged but
# for the empty line it writes after a header that had none (same_messages lf+sep).

fetchmail_rc() {
	local server_opts=${1:-} user_opts=${2:-} delivery=${3:-"mda \"$C/mda\""}
	make_mda
	cat >"$C/fetchmailrc" <<-EOF
		set no syslog
		set invisible
		poll 127.0.0.1 protocol pop3 port $PORT auth password $server_opts
		  user "alice" there with password "$PASS" is "nobody" here
		  no rewrite $user_opts
		  $delivery
	EOF
	chmod 600 "$C/fetchmailrc"
}

fetchmail_run() {
	need fetchmail fetchmail
	run client fetchmail --nodetach -f "$C/fetchmailrc" --idfile "$C/fetchmail.ids" "$@"
}

@test "fetchmail keep+uidl fetches every message once, then nothing, then only the new one" {
	corpus
	start_server
	fetchmail_rc "uidl" "sslproto '' keep"
	local before
	before=$(cd "$MD" && find new cur -type f | sort)
	fetchmail_run
	assert_success
	same_messages lf+sep "$ORIG" "$C/out"
	# keep: fetchmail reads with "TOP n 99999999", not RETR, so nothing is deleted or
	# flagged seen.
	run bash -c 'cd "$1" && find new cur -type f | sort' _ "$MD"
	assert_output "$before"

	rm -f "$C"/out/*
	fetchmail_run
	assert_equal "$status" 1	# fetchmail's "no new mail"
	run find "$C/out" -type f
	assert_output ''

	deliver_one 1700000100.M100P100.interop $'From: late@example.org\nSubject: delivered later\nMessage-ID: <100@interop>\n\nnew one\n'
	fetchmail_run
	assert_success
	same_messages lf+sep "$T/later" "$C/out"
	logged 'login: user=<alice> rhost=<127\.0\.0\.1> method=[A-Z]+ tls=no'
}

# fetchmail without "uidl" (its default) asks LAST which messages it has seen. The corpus's
# last message is in cur/ with the seen flag (an IMAP client read it), the others are unread:
# LAST must not make fetchmail skip them.
@test "fetchmail's default LAST mode fetches unread mail sorted before a seen message, and deletes it all" {
	corpus
	start_server
	fetchmail_rc "" "sslproto ''"
	fetchmail_run
	assert_success
	same_messages lf+sep "$ORIG" "$C/out"
	maildir_empty
	logged 'logout: user=<alice> .* dele=8/'
}

@test "fetchmail uidl+flush fetches every message and deletes them all" {
	corpus
	start_server
	fetchmail_rc "uidl" "sslproto '' flush"
	fetchmail_run
	assert_success
	same_messages lf+sep "$ORIG" "$C/out"
	maildir_empty
}

# ---- getmail6 ------------------------------------------------------------------------

# getmail_rc RETRIEVER DELETE [RETRIEVER-LINES]: $C/getmailrc into the Maildir $C/dest.
# delivered_to/received = false stop getmail's Delivered-To: and Received: headers; the
# Return-Path: line getmail's flatten() always writes is undone by same_messages getmail.
# The message goes through MDA_external, which writes the same flatten() bytes as getmail's
# Maildir destination: getmail 6.18 loses a SIGCHLD that arrives before it waits for its
# delivery child (getmail6 issue 226) and then hangs until its timeout, so the child takes
# a moment (a pause in the client's delivery, not a timing assertion).
getmail_rc() {
	mkdir -p "$C/dest/new" "$C/dest/cur" "$C/dest/tmp" "$C/getmail"
	cat >"$C/getmailrc" <<-EOF
		[retriever]
		type = $1
		server = ${GETMAIL_SERVER:-127.0.0.1}
		port = $PORT
		username = alice
		password = $PASS
		${3:-}
		[destination]
		type = MDA_external
		path = /bin/sh
		arguments = ("-c", "sleep 0.05; exec cat >\$(mktemp $C/dest/new/gm.XXXXXX)")

		[options]
		read_all = false
		delete = $2
		delivered_to = false
		received = false
		verbose = 0
	EOF
}

getmail_run() {
	need getmail getmail6
	run client getmail --getmaildir="$C/getmail" --rcfile="$C/getmailrc"
}

@test "getmail6 SimplePOP3Retriever read_all=false keeps mail and fetches only new messages" {
	corpus
	start_server
	getmail_rc SimplePOP3Retriever false
	getmail_run
	assert_success
	same_messages getmail "$ORIG" "$C/dest"
	run find "$MD/new" "$MD/cur" -type f
	assert_equal "${#lines[@]}" 8

	rm -rf "$C/dest"
	mkdir -p "$C/dest/new" "$C/dest/cur" "$C/dest/tmp"
	getmail_run
	assert_success
	run find "$C/dest" -type f
	assert_output ''

	deliver_one 1700000100.M100P100.interop $'From: late@example.org\nSubject: delivered later\nMessage-ID: <100@interop>\n\nnew one\n'
	getmail_run
	assert_success
	same_messages getmail "$T/later" "$C/dest"
}

@test "getmail6 SimplePOP3Retriever delete=true empties the Maildir" {
	corpus
	start_server
	getmail_rc SimplePOP3Retriever true
	getmail_run
	assert_success
	same_messages getmail "$ORIG" "$C/dest"
	maildir_empty
}

# ---- mutt ----------------------------------------------------------------------------

# mutt_fetch RC-LINES...: mutt's <fetch-mail> run headless. Without a terminal mutt takes
# itself for a mail sender ("No recipients specified"), so it runs under script(1) with
# TERM=dumb; the timeout ends a mutt waiting at a prompt.
mutt_fetch() {
	local l
	need mutt mutt
	need script util-linux
	{
		printf 'set pop_host="%s"\n' "${MUTT_URL:-pop://alice@127.0.0.1:$PORT}"
		printf 'set pop_pass="%s"\n' "$PASS"
		printf 'set folder="%s"\n' "$C"
		for l in "$@"; do
			printf '%s\n' "$l"
		done
	} >"$C/muttrc"
	printf '#!/bin/sh\nexec mutt -n -F %s -e "push %s"\n' "$C/muttrc" "${MUTT_KEYS:-<fetch-mail><quit>}" >"$C/mutt.sh"
	chmod 755 "$C/mutt.sh"
	run client env TERM=dumb timeout 60 script -qec "$C/mutt.sh" /dev/null </dev/null
	# What mutt showed (errors included), for teardown to print if the test fails.
	# shellcheck disable=SC2031
	printf '%s\n' "$output" | tr '\r' '\n' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/^ *//; s/ *$//' | grep -v '^$' >"$T/mutt.screen" || true
}

# split_mbox MBOX DIR: one file per message of a mutt-written mbox. mutt does no ">From "
# quoting when it appends (mboxcl), so only a "From " line in mutt's own From_ format after
# an empty line starts a message; the empty line mutt adds after each message is removed.
split_mbox() {
	python3 - "$1" "$2" <<-'PY'
		import re, sys
		data = open(sys.argv[1], "rb").read()
		sep = re.compile(rb"^From \S+ [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\n", re.M)
		starts = [m for m in sep.finditer(data) if m.start() == 0 or data[m.start() - 2:m.start()] == b"\n\n"]
		assert starts and starts[0].start() == 0, "mbox does not start with a From_ line"
		for i, m in enumerate(starts):
		    end = starts[i + 1].start() if i + 1 < len(starts) else len(data)
		    msg = data[m.end():end]
		    assert msg.endswith(b"\n\n"), "message %d lacks the separating empty line" % i
		    open("%s/%03d" % (sys.argv[2], i), "wb").write(msg[:-1])
	PY
}

@test "mutt fetch-mail into a Maildir stores every message unchanged and leaves them on the server" {
	corpus
	start_server
	mkdir -p "$C/spool/new" "$C/spool/cur" "$C/spool/tmp"
	mutt_fetch "set spoolfile=\"$C/spool\"" 'set mbox_type=Maildir' 'set pop_delete=no' \
		'set ssl_starttls=no' 'set ssl_force_tls=no'
	assert_success
	same_messages lf "$ORIG" "$C/spool"
	run find "$MD/new" "$MD/cur" -type f
	assert_equal "${#lines[@]}" 8
}

@test "mutt fetch-mail with pop_delete into an mbox stores every message and deletes them" {
	corpus
	start_server
	: >"$C/mbox"
	# <exit>, not <quit>: quitting rewrites the mbox with mutt's Status/Content-Length/Lines.
	MUTT_KEYS='<fetch-mail><exit>' mutt_fetch "set spoolfile=\"$C/mbox\"" 'set mbox_type=mbox' \
		'set pop_delete=yes' 'set ssl_starttls=no' 'set ssl_force_tls=no'
	assert_success
	mkdir "$T/split"
	split_mbox "$C/mbox" "$T/split"
	same_messages lf "$ORIG" "$T/split"
	maildir_empty
}

# ---- curl ----------------------------------------------------------------------------

curl_pop() {
	need curl curl
	run --separate-stderr client curl -sS --max-time 30 -u "alice:$PASS" "$@"
}

@test "curl pop3:// LIST, RETR, UIDL, TOP and DELE" {
	corpus
	start_server
	curl_pop "pop3://127.0.0.1:$PORT/"
	assert_success
	# RFC 1939 sizes: CRLF line ends, a line end added to an unterminated last line.
	assert_equal "$output" "$(python3 - "$ORIG" <<-'PY'
		import os, sys
		for n, f in enumerate(sorted(os.listdir(sys.argv[1])), 1):
		    b = open(os.path.join(sys.argv[1], f), "rb").read()
		    b += b"\n" * (not b.endswith(b"\n"))
		    sys.stdout.write("%d %d\r\n" % (n, len(b) + b.count(b"\n")))
	PY
	)"

	mkdir "$C/retr"
	local i
	for i in 1 2 3 4 5 6 7 8; do
		client curl -sS --max-time 30 -u "alice:$PASS" -o "$C/retr/$i" "pop3://127.0.0.1:$PORT/$i"
	done
	same_messages crlf "$ORIG" "$C/retr"

	curl_pop -X UIDL "pop3://127.0.0.1:$PORT/"
	assert_success
	assert_line --index 0 $'1 1700000001.M1P1.interop\r'
	assert_line --index 7 $'8 1700000008.M8P8.interop\r'

	client curl -sS --max-time 30 -u "alice:$PASS" -o "$C/top" -X 'TOP 1 0' "pop3://127.0.0.1:$PORT/"
	run od -c "$C/top"
	assert_output "$(printf 'From: a@example.org\r\nTo: alice@example.org\r\nSubject: plain\r\nMessage-ID: <1@interop>\r\n\r\n' | od -c)"

	curl_pop -X DELE -I "pop3://127.0.0.1:$PORT/2"
	assert_success
	[[ ! -e $MD/new/1700000002.M2P2.interop ]] || fail "DELE 2 then QUIT left the file"
	run find "$MD/new" "$MD/cur" -type f
	assert_equal "${#lines[@]}" 7
}

# ---- python3 poplib and Perl Net::POP3 --------------------------------------------------

# poplib_session MODE: login, uidl, retr of every message into $C/got, top 1 0, dele 1, quit.
# MODE: plain | stls | ssl.
poplib_session() {
	run client python3 - "$1" "$PORT" "$PASS" "$C/got" "$IX_CERTS/cert.pem" <<-'PY'
		import os, poplib, ssl, sys
		mode, port, pw, out, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
		ctx = ssl.create_default_context(cafile=ca)
		if mode == "ssl":
		    p = poplib.POP3_SSL("localhost", port, context=ctx)
		else:
		    p = poplib.POP3("127.0.0.1", port)
		if mode == "stls":
		    assert "STLS" in p.capa(), p.capa()
		    print(p.stls(ctx).decode())
		p.user("alice")
		print(p.pass_(pw).decode())
		resp, uids, _ = p.uidl()
		sizes = {int(n): int(sz) for n, sz in (l.split() for l in p.list()[1])}
		os.makedirs(out)
		for u in uids:
		    n, uid = u.decode().split()
		    resp, lines, octets = p.retr(int(n))
		    data = b"".join(l + b"\r\n" for l in lines)
		    # octets: what poplib read, CRLFs in, stuffing out: the RFC 1939 size
		    assert octets == len(data) == sizes[int(n)], (n, octets, len(data), sizes[int(n)])
		    with open(os.path.join(out, n), "wb") as f:
		        f.write(data)
		    print(n, uid)
		resp, lines, _ = p.top(1, 0)
		sys.stdout.buffer.write(b"TOP: " + b"|".join(lines) + b"\n")
		print(p.dele(1).decode())
		print(p.quit().decode())
	PY
}

poplib_check() {
	assert_success
	assert_line '1 1700000001.M1P1.interop'
	assert_line '8 1700000008.M8P8.interop'
	assert_line 'TOP: From: a@example.org|To: alice@example.org|Subject: plain|Message-ID: <1@interop>|'
	assert_line --partial '+OK maildir-pop3d signing off (1 message'
	same_messages crlf "$ORIG" "$C/got"
	[[ ! -e $MD/new/1700000001.M1P1.interop ]] || fail "DELE 1 then QUIT left the file"
}

# netpop3_session MODE: the same with Net::POP3 (MODE: plain | starttls | ssl).
netpop3_session() {
	[[ $1 == plain ]] || perl -MIO::Socket::SSL -e 1 2>/dev/null ||
		fail "IO::Socket::SSL is missing (Debian: apt-get install libio-socket-ssl-perl)"
	run client perl - "$1" "$PORT" "$PASS" "$C/got" "$IX_CERTS/cert.pem" <<-'PL'
		use strict; use warnings; use Net::POP3;
		my ($mode, $port, $pw, $out, $ca) = @ARGV;
		my %tls = (SSL_ca_file => $ca, SSL_verifycn_name => "localhost");
		my $p = $mode eq "ssl"
		    ? Net::POP3->new("localhost", Port => $port, SSL => 1, %tls, Timeout => 30)
		    : Net::POP3->new("127.0.0.1", Port => $port, Timeout => 30);
		die "connect: $@" unless $p;
		if ($mode eq "starttls") { $p->starttls(%tls) or die "starttls failed: " . $p->message; }
		defined $p->login("alice", $pw) or die "login: " . $p->message;
		my $uidl = $p->uidl or die "uidl";
		# Net::Cmd hands back lines ending in "\n" (CRLF undone), but over TLS
		# IO::Socket::SSL's getline shadows Net::Cmd's and the CRLF stays: require
		# exactly the one that applies, and make it the wire's CRLF again.
		my $eol = $mode eq "plain" ? "\n" : "\r\n";
		my $crlf = sub { my $l = shift; $l =~ s/\Q$eol\E\z/\r\n/ or die "line without its end: $l"; $l };
		mkdir $out or die;
		for my $n (sort { $a <=> $b } keys %$uidl) {
		    my $lines = $p->get($n) or die "retr $n: " . $p->message;
		    open my $fh, ">:raw", "$out/$n" or die;
		    print $fh map { $crlf->($_) } @$lines;
		    close $fh;
		    print "$n $uidl->{$n}\n";
		}
		my $top = $p->top(1, 0) or die "top";
		print "TOP: ", join("|", map { substr($crlf->($_), 0, -2) } @$top), "\n";
		$p->delete(1) or die "dele";
		$p->quit or die "quit";
		print "quit ok\n";
	PL
}

netpop3_check() {
	assert_success
	assert_line '1 1700000001.M1P1.interop'
	assert_line '8 1700000008.M8P8.interop'
	assert_line 'TOP: From: a@example.org|To: alice@example.org|Subject: plain|Message-ID: <1@interop>|'
	assert_line 'quit ok'
	same_messages crlf "$ORIG" "$C/got"
	[[ ! -e $MD/new/1700000001.M1P1.interop ]] || fail "DELE 1 then QUIT left the file"
}

@test "python3 poplib: login, uidl, retr, top, dele, quit" {
	corpus
	start_server
	poplib_session plain
	poplib_check
}

@test "Perl Net::POP3: login, uidl, get, top, delete, quit" {
	corpus
	start_server
	netpop3_session plain
	netpop3_check
}

# ---- fetchmail plugin (the ssh tunnel case without ssh) --------------------------------

@test "fetchmail plugin runs maildir-pop3d --preauth and fetches every message" {
	corpus
	own_client "$MD"	# the plugin serves the client user's own Maildir
	make_mda
	cat >"$C/fetchmailrc" <<-EOF
		set no syslog
		set invisible
		poll localhost protocol pop3 plugin "$MAILDIR_POP3D --preauth -m $MD" auth ssh uidl
		  user "alice" is "nobody" here
		  sslproto '' no rewrite
		  mda "$C/mda"
	EOF
	chmod 600 "$C/fetchmailrc"
	fetchmail_run
	assert_success
	same_messages lf+sep "$ORIG" "$C/out"
	maildir_empty
}

# ---- TLS -----------------------------------------------------------------------------

@test "fetchmail over STLS with sslcertck against the test CA" {
	corpus
	start_tls_server
	fetchmail_rc "uidl" "sslproto 'tls1.2+' sslcertck sslcertfile \"$IX_CERTS/cert.pem\" sslcommonname localhost keep"
	fetchmail_run -v
	assert_success
	assert_output --partial 'POP3> STLS'
	same_messages lf+sep "$ORIG" "$C/out"
	logged 'login: user=<alice> .* tls=yes'
}

@test "fetchmail over implicit TLS (ssl) deletes what it fetched" {
	corpus
	start_tls_server --tls=implicit
	fetchmail_rc "uidl" "ssl sslcertck sslcertfile \"$IX_CERTS/cert.pem\" sslcommonname localhost"
	fetchmail_run
	assert_success
	same_messages lf+sep "$ORIG" "$C/out"
	maildir_empty
	logged 'login: user=<alice> .* tls=yes'
}

@test "getmail6 SimplePOP3SSLRetriever with ca_certs fetches and deletes" {
	corpus
	start_tls_server --tls=implicit
	GETMAIL_SERVER=localhost getmail_rc SimplePOP3SSLRetriever true "ca_certs = $IX_CERTS/cert.pem"
	getmail_run
	assert_success
	same_messages getmail "$ORIG" "$C/dest"
	maildir_empty
	logged 'login: user=<alice> .* tls=yes'
}

@test "mutt fetch-mail over STLS with the test CA" {
	corpus
	start_tls_server
	mkdir -p "$C/spool/new" "$C/spool/cur" "$C/spool/tmp"
	MUTT_URL="pop://alice@localhost:$PORT" mutt_fetch "set spoolfile=\"$C/spool\"" 'set mbox_type=Maildir' \
		'set pop_delete=no' 'set ssl_starttls=yes' 'set ssl_force_tls=yes' \
		"set ssl_ca_certificates_file=\"$IX_CERTS/cert.pem\""
	assert_success
	same_messages lf "$ORIG" "$C/spool"
	logged 'login: user=<alice> .* tls=yes'
}

@test "mutt fetch-mail over pops:// (implicit TLS)" {
	corpus
	start_tls_server --tls=implicit
	mkdir -p "$C/spool/new" "$C/spool/cur" "$C/spool/tmp"
	MUTT_URL="pops://alice@localhost:$PORT" mutt_fetch "set spoolfile=\"$C/spool\"" 'set mbox_type=Maildir' \
		'set pop_delete=yes' "set ssl_ca_certificates_file=\"$IX_CERTS/cert.pem\""
	assert_success
	same_messages lf "$ORIG" "$C/spool"
	maildir_empty
	logged 'login: user=<alice> .* tls=yes'
}

@test "curl --ssl-reqd (STLS) RETR and DELE, and pop3s:// with --cacert" {
	corpus
	start_tls_server
	mkdir "$C/retr"
	client curl -sS --max-time 30 --ssl-reqd --cacert "$IX_CERTS/cert.pem" -u "alice:$PASS" \
		-o "$C/retr/3" "pop3://localhost:$PORT/3"
	client curl -sS --max-time 30 --ssl-reqd --cacert "$IX_CERTS/cert.pem" -u "alice:$PASS" \
		-o "$C/retr/6" "pop3://localhost:$PORT/6"
	mkdir "$T/want"
	cp "$ORIG"/1700000003.* "$ORIG"/1700000006.* "$T/want"
	same_messages crlf "$T/want" "$C/retr"
	curl_pop --ssl-reqd --cacert "$IX_CERTS/cert.pem" -X DELE -I "pop3://localhost:$PORT/3"
	assert_success
	[[ ! -e $MD/new/1700000003.M3P3.interop ]] || fail "DELE 3 then QUIT left the file"
	logged 'login: user=<alice> .* tls=yes'

	start_tls_server --tls=implicit
	rm -rf "$C/retr"
	mkdir "$C/retr"
	for i in 1 2 3 4 5 6 7; do
		client curl -sS --max-time 30 --cacert "$IX_CERTS/cert.pem" -u "alice:$PASS" \
			-o "$C/retr/$i" "pop3s://localhost:$PORT/$i"
	done
	rm "$ORIG"/1700000003.*
	same_messages crlf "$ORIG" "$C/retr"
	curl_pop --cacert "$IX_CERTS/cert.pem" -X UIDL "pop3s://localhost:$PORT/"
	assert_success
	assert_line --index 0 $'1 1700000001.M1P1.interop\r'
}

@test "curl --ssl-reqd refuses a server without STLS" {
	corpus
	start_server
	curl_pop --ssl-reqd --cacert "$IX_CERTS/cert.pem" "pop3://localhost:$PORT/"
	assert_equal "$status" 64	# CURLE_USE_SSL_FAILED: no STLS in CAPA
	! grep -q 'login:' "$MP_TEST_SYSLOG" || fail "curl logged in without TLS"
}

@test "python3 poplib over stls() and POP3_SSL" {
	corpus
	cp -a "$MD" "$T/Maildir.orig"
	start_tls_server
	poplib_session stls
	poplib_check
	logged 'login: user=<alice> .* tls=yes'

	rm -rf "$MD" "$C/got"
	cp -a "$T/Maildir.orig" "$MD"
	start_tls_server --tls=implicit
	poplib_session ssl
	poplib_check
}

@test "Perl Net::POP3 over starttls and SSL (IO::Socket::SSL)" {
	corpus
	cp -a "$MD" "$T/Maildir.orig"
	start_tls_server
	netpop3_session starttls
	netpop3_check
	logged 'login: user=<alice> .* tls=yes'

	rm -rf "$MD" "$C/got"
	cp -a "$T/Maildir.orig" "$MD"
	start_tls_server --tls=implicit
	netpop3_session ssl
	netpop3_check
}

# ---- a big mailbox -------------------------------------------------------------------

# split_bsmtp FILE DIR: the DATA of each transaction in fetchmail's BSMTP file, unstuffed,
# one file per message.
split_bsmtp() {
	python3 - "$1" "$2" <<-'PY'
		import re, sys
		data = open(sys.argv[1], "rb").read()
		txn = re.compile(rb"MAIL FROM:<[^>\r\n]*>[^\r\n]*\r\n(?:RCPT TO:<[^>\r\n]*>\r\n)+DATA\r\n(.*?)\r\n\.\r\n", re.S)
		pos = n = 0
		for m in txn.finditer(data):
		    assert m.start() == pos, "unexpected BSMTP bytes at offset %d" % pos
		    body = re.sub(rb"(?m)^\.", b"", m.group(1)) + b"\r\n"
		    open("%s/%05d" % (sys.argv[2], n), "wb").write(body)
		    pos, n = m.end(), n + 1
		assert pos == len(data), "trailing BSMTP bytes at offset %d" % pos
	PY
}

@test "fetchmail gets each of 5000 messages exactly once and deletes them" {
	python3 - "$MD" "$ORIG" <<-'PY'
		import os, sys
		md, orig = sys.argv[1:3]
		for i in range(5000):
		    name = "%d.M%dP1.big" % (1700000000 + i, i)
		    data = b"From: big@example.org\nSubject: %d\nMessage-ID: <%d@big>\n\nbody %d\n.\n" % (i, i, i)
		    for d in (os.path.join(md, "new"), orig):
		        with open(os.path.join(d, name), "wb") as f:
		            f.write(data)
	PY
	start_server
	# BSMTP, not an MDA: 5000 MDA processes would take most of the time.
	fetchmail_rc "uidl" "sslproto ''" "bsmtp \"$C/bsmtp\""
	local t0=$SECONDS
	fetchmail_run
	assert_success
	echo "# fetchmail: 5000 messages in $((SECONDS - t0)) s" >&3
	mkdir "$T/split"
	split_bsmtp "$C/bsmtp" "$T/split"
	same_messages crlf "$ORIG" "$T/split"
	maildir_empty
	logged 'logout: user=<alice> .* dele=5000/'
}
