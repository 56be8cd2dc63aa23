#!/usr/bin/env bats
# TLS (issue 5; DESIGN.md sections 2 and 3): STLS and implicit TLS through
# systemd-socket-activate --inetd on loopback with cwrap users; openssl s_client, curl and
# python3's poplib and ssl as clients; TLS versions; what CAPA offers before, inside and
# without TLS; plaintext pipelined after STLS is never executed inside TLS; the plaintext
# policy from a non-loopback peer (root: two network namespaces of the test's own, joined by
# a veth pair); certificate and key errors (-ERR [SYS/PERM], a log line naming the cause,
# exit status 78); failed handshakes logged with the peer; OpenSSL loaded (as the TLS module,
# src/.libs/tls.so through MAILDIR_POP3D_TLS_MODULE) only by sessions with TLS configured, and a
# missing or foreign module refused like a bad certificate.
#
# Certificates are made at test time (setup_file): a test CA, an EC P-256 certificate it
# signed for localhost/127.0.0.1 (for clients that verify), a self-signed RSA one, and keys
# for the error cases.  No key is ever committed.  Built without OpenSSL, every test but the
# one about that build skips (maildir-pop3d --version says "TLS: not built in").
#
# Needs: openssl curl python3 systemd (systemd-socket-activate) iproute2 (ip, ss)
# util-linux (setpriv) cc (build-essential: two stand-in modules).

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
load lib/deploy
bats_require_minimum_version 1.5.0

setup_file() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test}"
	if "$MAILDIR_POP3D" --version | grep -q '^TLS: not built in'; then
		export TLS_BUILT=no
		return 0
	fi
	export TLS_BUILT=yes
	CERTS=$(mktemp -d "${TMPDIR:-/tmp}/mp-tls-certs.XXXXXX")
	export CERTS
	(
		set -e
		cd "$CERTS"
		req() { openssl req -x509 -nodes -days 2 "$@" 2>/dev/null; }
		req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj '/CN=maildir-pop3d test CA' \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
			-keyout ca.key -out ca.pem
		req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=localhost \
			-addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
			-addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
			-CA ca.pem -CAkey ca.key -keyout ec.key -out ec.pem
		req -newkey rsa:2048 -subj /CN=localhost \
			-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout rsa.key -out rsa.pem
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-ec.key
		openssl pkey -in ec.key -aes128 -passout pass:secret -out encrypted.key
		cat ec.pem ec.key >both.pem
		printf 'not a PEM file\n' >garbage.pem
		chmod 600 ./*.key both.pem
	) || { echo "# openssl could not make the test certificates" >&2; return 1; }
}

teardown_file() {
	if [[ -n ${CERTS:-} && -d $CERTS ]]; then
		rm -rf "$CERTS"
	fi
	return 0
}

setup() {
	SSA_PIDS=()
	NETNS=()
	if [[ $TLS_BUILT == no && $BATS_TEST_DESCRIPTION != *"built without OpenSSL"* ]]; then
		skip "maildir-pop3d was built without OpenSSL (--version: TLS: not built in)"
	fi
	[[ $TLS_BUILT == no ]] && return 0
	command -v systemd-socket-activate >/dev/null ||
		fail "systemd-socket-activate is not installed (Debian: systemd)"
	dp_cwrap "$BATS_TEST_TMPDIR/cw"
	dp_alice
	LIB=$BATS_TEST_DIRNAME/lib
	SIZE=$(python3 "$LIB/pop3enc.py" size "$BATS_TEST_TMPDIR/msg")
}

teardown() {
	local pid ns
	if [[ -z ${BATS_TEST_COMPLETED:-} && -n ${SYSLOG:-} && -f $SYSLOG ]]; then
		# Shown only when the test failed: the server's side of the story.
		echo "# syslog:"
		cat "$SYSLOG"
		echo "# launchers:"
		cat "$BATS_TEST_TMPDIR"/ssa-*.err 2>/dev/null | grep -v '^Spawned\|^Execing'
	fi
	for pid in "${SSA_PIDS[@]}"; do
		dp_stop "$pid" || true
	done
	for ns in "${NETNS[@]}"; do
		# Sessions still inside would keep the namespace alive after its name is gone.
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$ns" 2>/dev/null || true
	done
	cwrap_teardown
}

# ---- helpers ------------------------------------------------------------------------

# serve [--netns NS ADDR] DAEMON-OPTION...: the daemon behind systemd-socket-activate
# --inetd -a on a free port of 127.0.0.1 (or ADDR inside the network namespace NS), with
# the cwrap environment.  Sets PORT and LAUNCHER_ERR (its stderr, where
# it reports "Child PID died with code N").  Retries when the port was taken meanwhile.
serve() {
	local ns=() addr=127.0.0.1 pid i
	if [[ $1 == --netns ]]; then
		ns=(ip netns exec "$2")
		addr=$3
		shift 3
	fi
	for _ in 1 2 3; do
		if [[ ${#ns[@]} -gt 0 ]]; then PORT=$((20000 + RANDOM % 20000)); else PORT=$(dp_free_port 127.0.0.1); fi
		LAUNCHER_ERR=$BATS_TEST_TMPDIR/ssa-$PORT.err
		"${ns[@]}" systemd-socket-activate --inetd -a -l "$addr:$PORT" "${CW_ENV[@]}" "$MAILDIR_POP3D" "$@" \
			</dev/null >/dev/null 2>"$LAUNCHER_ERR" 3>&- &
		pid=$!
		for ((i = 0; i < 200; i++)); do
			grep -q '^Listening on' "$LAUNCHER_ERR" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if grep -q '^Listening on' "$LAUNCHER_ERR"; then
			SSA_PIDS+=("$pid")
			return 0
		fi
		dp_stop "$pid" || true
	done
	fail "systemd-socket-activate did not start: $(cat "$LAUNCHER_ERR")"
}

serve_tls() {
	serve --tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/ec.key" "$@"
}

# tc NAME [OPTION...] STEP...: tests/lib/tlsclient.py session against 127.0.0.1:$PORT, its
# files in $BATS_TEST_TMPDIR/NAME (O is that directory); status in $status.
tc() {
	local name=$1
	shift
	O=$BATS_TEST_TMPDIR/$name
	mkdir -p "$O"
	local opts=()
	while [[ ${1:-} == --* ]]; do
		opts+=("$1")
		[[ $1 == --implicit ]] || { opts+=("$2"); shift; }
		shift
	done
	run "${TC_PREFIX[@]}" python3 "$LIB/tlsclient.py" session "${opts[@]}" "${TC_HOST:-127.0.0.1}" "$PORT" "$O" "$@"
}
TC_PREFIX=()

# is FILE FORMAT [ARG...]: FILE holds exactly the printf-formatted bytes.
is() {
	local file=$1
	shift
	# shellcheck disable=SC2059
	printf -- "$@" >"$BATS_TEST_TMPDIR/want"
	cmp -s "$BATS_TEST_TMPDIR/want" "$file" ||
		fail "$(printf '%s differs:\n--- want\n%s\n--- got\n%s' "$file" "$(od -c "$BATS_TEST_TMPDIR/want" | head)" "$(od -c "$file" | head)")"
}

# starts_ok FILE...: each answer is +OK.
starts_ok() {
	local f
	for f in "$@"; do
		dp_starts_ok "$f"
	done
}

# wait_logged REGEX: waits (at most 10 s) for a syslog line matching REGEX: a session may
# log after the client has seen the server close.
wait_logged() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -Eq -- "$1" "$SYSLOG" && return 0
		sleep 0.05
	done
	fail "$(printf 'no log line matches %s; the log:\n%s' "$1" "$(cat "$SYSLOG")")"
}

# not_logged REGEX
not_logged() {
	! grep -Eq -- "$1" "$SYSLOG" || fail "$(printf 'a log line matches %s:\n%s' "$1" "$(grep -E -- "$1" "$SYSLOG")")"
}

# session_exits CODE: the launcher reaped a session that exited with CODE, and that session
# is the one that logged the last line of the log (waits at most 10 s).
# The line may come from the launcher's process or from its pre-auth child (pid + 1 or
# later): the launcher's process is the newest child the launcher reaped at or below it.
session_exits() {
	local code=$1 pid i child
	pid=$(tail -n 1 "$SYSLOG" | sed -n 's/^[^]]*maildir-pop3d\[\([0-9]*\)\].*/\1/p')
	[[ -n $pid ]] || fail "no session pid in the log: $(cat "$SYSLOG")"
	for ((i = 0; i < 200; i++)); do
		child=$(sed -n 's/^Child \([0-9]*\) died with code .*/\1/p' "$LAUNCHER_ERR" |
			awk -v p="$pid" '$1 <= p && $1 > p - 1000 && $1 > best { best = $1 } END { if (best) print best }')
		[[ -n $child ]] && break
		sleep 0.05
	done
	run grep "^Child $child died with code " "$LAUNCHER_ERR"
	assert_output "Child $child died with code $code"
}

# sha256 of a PEM certificate's DER form, as tlsclient.py prints it.
cert_sha() {
	openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

# retr_expected FILE: "+OK SIZE octets" and the wire form of FILE, as RETR must send them.
retr_expected() {
	printf '+OK %s octets\r\n' "$(python3 "$LIB/pop3enc.py" size "$1")"
	python3 "$LIB/pop3enc.py" wire "$1"
}

# direct OUT DAEMON-OPTION...: the daemon started directly (not through a launcher) with one
# end of a socketpair as fd 0 and 1 and the cwrap environment; what it wrote to the other end
# goes to OUT, its exit status to $status.  PREFIX (an array) runs before it.
direct() {
	local out=$1
	shift
	# A launcher that hands over a socketpair names the client (REMOTE_ADDR): loopback here.
	run "${PREFIX[@]}" python3 - "$out" "${CW_ENV[@]}" REMOTE_ADDR=127.0.0.1 "$MAILDIR_POP3D" "$@" <<-'PY'
		import socket, subprocess, sys
		mine, theirs = socket.socketpair()
		p = subprocess.Popen(sys.argv[2:], stdin=theirs, stdout=theirs)
		theirs.close()
		mine.settimeout(30)
		got = b""
		while True:
		    chunk = mine.recv(65536)
		    if not chunk:
		        break
		    got += chunk
		open(sys.argv[1], "wb").write(got)
		sys.exit(p.wait(30))
	PY
}
PREFIX=()

CAPA_LOOPBACK_STLS='+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\nIMPLEMENTATION maildir-pop3d\r\n.\r\n'
CAPA_PLAIN_OK='+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION maildir-pop3d\r\n.\r\n'
CAPA_REMOTE_STLS='+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION maildir-pop3d\r\n.\r\n'
GREETING='+OK maildir-pop3d ready.\r\n'
MISCONFIGURED='-ERR [SYS/PERM] TLS is misconfigured on this server.\r\n'
REFUSED='-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first.\r\n'

# ---- openssl s_client -----------------------------------------------------------------

# s_client ARG...: a scripted openssl s_client that verifies the server against the test CA;
# stdin is the script (LF line ends: -crlf adds the CR; -nocommands: RETR is not "R").
s_client() {
	timeout 30 openssl s_client -quiet -crlf -nocommands -connect "127.0.0.1:$PORT" \
		-CAfile "$CERTS/ca.pem" -verify_return_error -verify_hostname localhost "$@"
}

@test "openssl s_client -starttls pop3: login and RETR over TLS, byte for byte, logged with tls=yes" {
	serve_tls
	printf 'USER alice\nPASS secret\nRETR 1\nQUIT\n' | s_client -starttls pop3 \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" ||
		fail "s_client failed: $(cat "$BATS_TEST_TMPDIR/err")"
	{
		printf '+OK Send the password.\r\n+OK maildrop has 1 messages (%s octets)\r\n' "$SIZE"
		retr_expected "$BATS_TEST_TMPDIR/msg"
		printf '+OK maildir-pop3d signing off (0 messages deleted)\r\n'
	} >"$BATS_TEST_TMPDIR/expected"
	cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/out" || fail "$(od -c "$BATS_TEST_TMPDIR/out" | head -20)"
	wait_logged '^facility=mail maildir-pop3d\[[0-9]+\]: info: login: user=<alice> rhost=<127\.0\.0\.1> method=USER tls=yes$'
}

@test "openssl s_client -connect to --tls=implicit: the greeting comes through TLS, then login and RETR" {
	serve_tls --tls=implicit
	printf 'USER alice\nPASS secret\nRETR 1\nQUIT\n' | s_client >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" ||
		fail "s_client failed: $(cat "$BATS_TEST_TMPDIR/err")"
	{
		printf '%b+OK Send the password.\r\n+OK maildrop has 1 messages (%s octets)\r\n' "$GREETING" "$SIZE"
		retr_expected "$BATS_TEST_TMPDIR/msg"
		printf '+OK maildir-pop3d signing off (0 messages deleted)\r\n'
	} >"$BATS_TEST_TMPDIR/expected"
	cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/out" || fail "$(od -c "$BATS_TEST_TMPDIR/out" | head -20)"
	wait_logged 'info: login: user=<alice> rhost=<127\.0\.0\.1> method=USER tls=yes$'
}

@test "TLS 1.2 and TLS 1.3 both negotiate, with STLS and with implicit TLS" {
	local mode v
	for mode in starttls implicit; do
		serve_tls --tls=$mode
		for v in 1_2 1_3; do
			local args=(-brief "-tls$v")
			[[ $mode == implicit ]] || args+=(-starttls pop3)
			run --separate-stderr s_client "${args[@]}" <<<"QUIT"
			assert_success
			# shellcheck disable=SC2154 # stderr: set by run --separate-stderr
			[[ $stderr == *"Protocol version: TLSv${v/_/.}"* ]] || fail "$mode -tls$v: $stderr"
			assert_output --partial '+OK maildir-pop3d signing off'
		done
	done
}

@test "a client's renegotiation (TLS 1.2) is refused and ends the session" {
	local line got=
	serve_tls --tls=implicit
	# s_client's "R" command renegotiates; command letters need a live stdin (no -quiet).
	coproc SC { timeout 30 openssl s_client -tls1_2 -crlf -connect "127.0.0.1:$PORT" 2>&1; }
	while IFS= read -r -t 20 -u "${SC[0]}" line; do
		[[ $line == '+OK maildir-pop3d ready.'* ]] && break
	done
	[[ $line == '+OK maildir-pop3d ready.'* ]] || fail "no greeting through TLS 1.2"
	printf 'R\nCAPA\n' >&"${SC[1]}"
	while IFS= read -r -t 20 -u "${SC[0]}" line; do
		got+="$line"$'\n'
	done
	wait "$SC_PID" || true
	[[ $got == *RENEGOTIATING* ]] || fail "s_client did not renegotiate: $got"
	[[ $got != *'+OK Capability list follows'* ]] || fail "the session went on after the renegotiation: $got"
	wait_logged '^facility=mail maildir-pop3d\[[0-9]+\]: warning: TLS error: rhost=<127\.0\.0\.1> reason=<[^>]+>$'
	wait_logged 'info: disconnect: rhost=<127\.0\.0\.1> end=error$'
}

@test "TLS 1.1 is refused, and the failed handshake is logged with the peer" {
	local mode
	for mode in starttls implicit; do
		serve_tls --tls=$mode
		: >"$SYSLOG"
		local args=(-tls1_1 -cipher 'DEFAULT@SECLEVEL=0')	# so that the client does offer 1.1
		[[ $mode == implicit ]] || args+=(-starttls pop3)
		run s_client "${args[@]}" <<<"QUIT"
		assert_failure
		wait_logged '^facility=mail maildir-pop3d\[[0-9]+\]: warning: TLS handshake failed: rhost=<127\.0\.0\.1> reason=<unsupported protocol>$'
		not_logged 'login:'
	done
}

# ---- curl and python3 -------------------------------------------------------------------

@test "curl pop3:// --ssl-reqd (STLS) and pop3s:// verify the CA-signed certificate and RETR the message" {
	local want=$BATS_TEST_TMPDIR/body
	python3 "$LIB/pop3enc.py" wire "$BATS_TEST_TMPDIR/msg" | python3 "$LIB/pop3enc.py" unstuff >"$want"
	serve_tls
	run curl -sS --max-time 30 --ssl-reqd --cacert "$CERTS/ca.pem" -u alice:secret \
		-o "$BATS_TEST_TMPDIR/stls" "pop3://localhost:$PORT/1"
	assert_success
	cmp "$want" "$BATS_TEST_TMPDIR/stls"
	wait_logged 'login: user=<alice> rhost=<127\.0\.0\.1> method=[A-Z]+ tls=yes$'

	serve_tls --tls=implicit
	run curl -sS --max-time 30 --cacert "$CERTS/ca.pem" -u alice:secret \
		-o "$BATS_TEST_TMPDIR/implicit" "pop3s://localhost:$PORT/1"
	assert_success
	cmp "$want" "$BATS_TEST_TMPDIR/implicit"
	# Without the test CA, curl must not trust the server: verification really happened.
	run curl -sS --max-time 30 -u alice:secret "pop3s://localhost:$PORT/1"
	assert_equal "$status" 60	# CURLE_PEER_FAILED_VERIFICATION
}

# poplib MODE: python3 poplib (stls() or POP3_SSL) verifying the test CA: login, RETR 1, QUIT.
poplib() {
	run python3 - "$1" "$PORT" "$CERTS/ca.pem" "$BATS_TEST_TMPDIR/got" <<-'PY'
		import poplib, ssl, sys
		mode, port, ca, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
		ctx = ssl.create_default_context(cafile=ca)
		if mode == "ssl":
		    p = poplib.POP3_SSL("localhost", port, context=ctx, timeout=30)
		else:
		    p = poplib.POP3("localhost", port, timeout=30)
		    assert "STLS" in p.capa()
		    p.stls(ctx)
		    assert "STLS" not in p.capa()
		print(p.sock.version())
		p.user("alice")
		p.pass_("secret")
		resp, lines, octets = p.retr(1)
		open(out, "wb").write(b"".join(l + b"\r\n" for l in lines))
		print(resp.decode(), octets)
		# One connection per process: nothing could resume a session, so no tickets.
		print("ticket" if p.sock.session and p.sock.session.has_ticket else "no ticket")
		print(p.quit().decode())
	PY
}

@test "python3 poplib stls() and POP3_SSL log in and RETR the message" {
	local want=$BATS_TEST_TMPDIR/body
	python3 "$LIB/pop3enc.py" wire "$BATS_TEST_TMPDIR/msg" | python3 "$LIB/pop3enc.py" unstuff >"$want"
	serve_tls
	poplib stls
	assert_success
	assert_line --index 0 --regexp '^TLSv1\.[23]$'
	assert_line --index 1 "+OK $SIZE octets $SIZE"
	assert_line --index 2 "no ticket"
	cmp "$want" "$BATS_TEST_TMPDIR/got"
	wait_logged 'login: user=<alice> rhost=<127\.0\.0\.1> method=USER tls=yes$'

	serve_tls --tls=implicit
	rm -f "$BATS_TEST_TMPDIR/got"
	poplib ssl
	assert_success
	assert_line --index 1 "+OK $SIZE octets $SIZE"
	assert_line --index 2 "no ticket"
	cmp "$want" "$BATS_TEST_TMPDIR/got"
}

@test "RETR of a 5 MiB message over TLS is byte-exact, with STLS and with implicit TLS" {
	local big=$BATS_TEST_TMPDIR/big mode
	rm -f "$MD"/new/*
	# Long and short lines, leading dots, CRLF and bare LF, no line end at the very end.
	python3 - "$big" <<-'PY'
		import sys
		out, i = [], 0
		total = 0
		while total < 5 * 1024 * 1024:
		    line = (b"." if i % 7 == 0 else b"") + bytes((33 + (i * 31 + j) % 94) for j in range((i * 131) % 1500))
		    line += b"\r\n" if i % 5 == 0 else b"\n"
		    out.append(line)
		    total += len(line)
		    i += 1
		open(sys.argv[1], "wb").write(b"Subject: big\n\n" + b"".join(out) + b"..the end")
	PY
	cp "$big" "$MD/new/1700000002.M2P2.big"
	retr_expected "$big" >"$BATS_TEST_TMPDIR/big-retr"
	for mode in starttls implicit; do
		serve_tls --tls=$mode
		if [[ $mode == implicit ]]; then
			tc $mode --implicit 'USER alice' 'PASS secret' 'RETR 1' QUIT
			assert_success
			cmp "$BATS_TEST_TMPDIR/big-retr" "$O/3" || fail "$mode: RETR differs"
		else
			tc $mode STLS @tls 'USER alice' 'PASS secret' 'RETR 1' QUIT
			assert_success
			cmp "$BATS_TEST_TMPDIR/big-retr" "$O/5" || fail "$mode: RETR differs"
		fi
		is "$O/end" ''
	done
}

@test "pipelined commands inside TLS, more than the input buffer in one TLS record, are all answered in order" {
	local stats i
	stats=$(printf 'STAT\\r\\n%.0s' $(seq 1000))	# 6000 octets in one write, one record
	serve_tls
	tc s STLS @tls 'USER alice' 'PASS secret' "@raw $stats" '@lines 1000' QUIT
	assert_success
	is "$O/6" "$(for ((i = 0; i < 1000; i++)); do printf '+OK 1 %s\\r\\n' "$SIZE"; done)"
	starts_ok "$O/7"
}

# ---- CAPA and STLS state ----------------------------------------------------------------

@test "CAPA before STLS lists STLS, USER and SASL (loopback peer); after STLS USER and SASL but not STLS" {
	serve_tls
	tc s CAPA STLS @tls CAPA QUIT
	assert_success
	is "$O/1" "$CAPA_LOOPBACK_STLS"
	is "$O/2" '+OK Begin TLS negotiation.\r\n'
	[[ $(cat "$O/3") == TLSv1.3\ "$(cert_sha "$CERTS/ec.pem")" ]] || fail "handshake: $(cat "$O/3")"
	is "$O/4" "$CAPA_PLAIN_OK"
}

@test "CAPA inside implicit TLS lists USER and SASL but not STLS" {
	serve_tls --tls=implicit
	tc s --implicit CAPA QUIT
	assert_success
	is "$O/0" "$GREETING"
	is "$O/1" "$CAPA_PLAIN_OK"
}

@test "STLS inside TLS is -ERR and the session goes on (after STLS and with implicit TLS)" {
	serve_tls
	tc stls STLS @tls STLS 'USER alice' 'PASS secret' STAT QUIT
	assert_success
	is "$O/3" '-ERR Already using TLS.\r\n'
	starts_ok "$O/4" "$O/5" "$O/6" "$O/7"

	serve_tls --tls=implicit
	tc implicit --implicit STLS 'USER alice' 'PASS secret' STAT QUIT
	assert_success
	is "$O/1" '-ERR Already using TLS.\r\n'
	starts_ok "$O/2" "$O/3" "$O/4" "$O/5"
}

@test "STLS after login is -ERR and the session goes on in plaintext" {
	serve_tls
	tc s 'USER alice' 'PASS secret' STLS STAT QUIT
	assert_success
	starts_ok "$O/1" "$O/2"
	[[ $(head -c 5 "$O/3") == '-ERR ' ]] || fail "STLS after login: $(cat "$O/3")"
	is "$O/4" '+OK 1 %s\r\n' "$SIZE"
	wait_logged 'login: user=<alice> rhost=<127\.0\.0\.1> method=USER tls=no$'
}

@test "without a certificate (or with --tls=off) CAPA does not list STLS and STLS is -ERR" {
	local opts
	for opts in "" "--tls=off --tls-cert=$CERTS/ec.pem --tls-key=$CERTS/ec.key"; do
		# shellcheck disable=SC2086
		serve $opts
		tc "s$PORT" CAPA STLS 'USER alice' 'PASS secret' QUIT
		assert_success
		is "$O/1" "$CAPA_PLAIN_OK"
		is "$O/2" '-ERR STLS is not available on this server.\r\n'
		starts_ok "$O/3" "$O/4" "$O/5"
	done
}

@test "a USER given before STLS is forgotten: PASS after the handshake is -ERR (RFC 2595 section 4)" {
	serve_tls
	tc s 'USER alice' STLS @tls 'PASS secret' STAT QUIT
	assert_success
	starts_ok "$O/1" "$O/2"
	[[ $(head -c 5 "$O/4") == '-ERR ' ]] || fail "PASS after STLS used the plaintext USER: $(cat "$O/4")"
	[[ $(head -c 5 "$O/5") == '-ERR ' ]] || fail "STAT: $(cat "$O/5")"
	not_logged 'login:'
}

# ---- STLS command injection (RFC 2595 section 3.1; CVE-2011-0411's class) ----------------

@test "plaintext pipelined after STLS in the same write is discarded, not executed inside TLS" {
	serve_tls
	# If the injected CAPA ran inside TLS, its answer would come before USER's.
	tc s '@raw STLS\r\nCAPA\r\n' @line @tls 'USER alice' 'PASS secret' QUIT
	assert_success
	is "$O/2" '+OK Begin TLS negotiation.\r\n'
	is "$O/4" '+OK Send the password.\r\n'
	starts_ok "$O/5" "$O/6"
	is "$O/end" ''
	wait_logged '^facility=mail maildir-pop3d\[[0-9]+\]: warning: plaintext after STLS discarded: rhost=<127\.0\.0\.1>$'
}

@test "a login injected after STLS in the same write does not log the TLS session in" {
	serve_tls
	tc s '@raw STLS\r\nUSER alice\r\nPASS secret\r\n' @line @tls STAT 'PASS secret' QUIT
	assert_success
	is "$O/2" '+OK Begin TLS negotiation.\r\n'
	[[ $(head -c 5 "$O/4") == '-ERR ' ]] || fail "STAT answered inside TLS: $(cat "$O/4")"
	[[ $(head -c 5 "$O/5") == '-ERR ' ]] || fail "PASS without USER inside TLS: $(cat "$O/5")"
	wait_logged 'warning: plaintext after STLS discarded: rhost=<127\.0\.0\.1>$'
	not_logged 'login:'
}

@test "plaintext sent after the STLS answer, in place of a ClientHello, fails the handshake and ends the session" {
	serve_tls
	tc s STLS '@raw CAPA\r\n' @tls
	assert_equal "$status" 3
	wait_logged 'warning: TLS handshake failed: rhost=<127\.0\.0\.1> reason=<[^>]+>$'
	session_exits 1
	not_logged 'login:'
}

# ---- the plaintext policy from a non-loopback peer (root) -------------------------------

# netns_pair: two network namespaces of this test, server and client, joined by a veth pair:
# the server at SRV_ADDR, the client at CLI_ADDR, a /30 of 10.200.0.0/16 that exists only
# inside them.  The host's interfaces and routes are not touched.  Clients (tc) then run in
# the client namespace.
netns_pair() {
	[[ $(id -u) == 0 ]] || skip "needs root: network namespaces put the client on a non-loopback address"
	local id=$$-$RANDOM x=$((RANDOM % 64 * 4))
	NS_SRV=mp-tls-srv-$id
	NS_CLI=mp-tls-cli-$id
	ip netns add "$NS_SRV" || fail "ip netns add $NS_SRV failed"
	NETNS+=("$NS_SRV")
	ip netns add "$NS_CLI" || fail "ip netns add $NS_CLI failed"
	NETNS+=("$NS_CLI")
	SRV_ADDR=10.200.$((RANDOM % 256)).$((x + 1))
	CLI_ADDR=${SRV_ADDR%.*}.$((x + 2))
	ip -n "$NS_SRV" link add veth0 type veth peer name veth1 netns "$NS_CLI"
	ip -n "$NS_SRV" addr add "$SRV_ADDR/30" dev veth0
	ip -n "$NS_CLI" addr add "$CLI_ADDR/30" dev veth1
	ip -n "$NS_SRV" link set lo up
	ip -n "$NS_SRV" link set veth0 up
	ip -n "$NS_CLI" link set lo up
	ip -n "$NS_CLI" link set veth1 up
	TC_PREFIX=(ip netns exec "$NS_CLI")
	TC_HOST=$SRV_ADDR
}

@test "from a non-loopback peer CAPA offers neither USER nor SASL, and USER and AUTH PLAIN/LOGIN get -ERR [AUTH]" {
	netns_pair
	serve --netns "$NS_SRV" "$SRV_ADDR" --tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/ec.key"
	tc s CAPA 'USER alice' 'PASS secret' 'AUTH PLAIN AGFsaWNlAHNlY3JldA==' 'AUTH LOGIN' AUTH QUIT
	assert_success
	is "$O/1" "$CAPA_REMOTE_STLS"
	is "$O/2" "$REFUSED"
	[[ $(head -c 5 "$O/3") == '-ERR ' ]] || fail "PASS: $(cat "$O/3")"
	is "$O/4" "$REFUSED"
	is "$O/5" "$REFUSED"
	is "$O/6" '+OK Mechanisms follow\r\n.\r\n'	# a bare AUTH lists none
	starts_ok "$O/7"
	not_logged 'login:'
}

@test "from a non-loopback peer the same USER/PASS login succeeds after STLS, logged with the peer and tls=yes" {
	netns_pair
	serve --netns "$NS_SRV" "$SRV_ADDR" --tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/ec.key"
	tc s 'USER alice' STLS @tls CAPA AUTH 'USER alice' 'PASS secret' STAT QUIT
	assert_success
	is "$O/1" "$REFUSED"
	is "$O/2" '+OK Begin TLS negotiation.\r\n'
	is "$O/4" "$CAPA_PLAIN_OK"
	is "$O/5" '+OK Mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n'
	starts_ok "$O/6" "$O/7"
	is "$O/8" '+OK 1 %s\r\n' "$SIZE"
	wait_logged "^facility=mail maildir-pop3d\\[[0-9]+\\]: info: login: user=<alice> rhost=<${CLI_ADDR//./\\.}> method=USER tls=yes\$"
}

@test "from a non-loopback peer AUTH PLAIN succeeds after STLS" {
	netns_pair
	serve --netns "$NS_SRV" "$SRV_ADDR" --tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/ec.key"
	tc s 'AUTH PLAIN AGFsaWNlAHNlY3JldA==' STLS @tls 'AUTH PLAIN AGFsaWNlAHNlY3JldA==' STAT QUIT
	assert_success
	is "$O/1" "$REFUSED"
	starts_ok "$O/4"
	is "$O/5" '+OK 1 %s\r\n' "$SIZE"
	wait_logged "login: user=<alice> rhost=<${CLI_ADDR//./\\.}> method=PLAIN tls=yes\$"
}

@test "--plaintext=always accepts USER/PASS from a non-loopback peer without TLS" {
	netns_pair
	serve --netns "$NS_SRV" "$SRV_ADDR" --plaintext=always
	tc s CAPA 'USER alice' 'PASS secret' QUIT
	assert_success
	is "$O/1" "$CAPA_PLAIN_OK"
	starts_ok "$O/2" "$O/3"
	wait_logged "login: user=<alice> rhost=<${CLI_ADDR//./\\.}> method=USER tls=no\$"
}

# ---- certificate and key errors ---------------------------------------------------------

# Each: daemon options, then the cause the log line must name (an extended regex).
BAD_CONFIGS=(
	"--tls-cert=%CERTS%/no-such-cert.pem" "cannot read TLS certificate [^ ]*/no-such-cert\\.pem: No such file or directory"
	"--tls-cert=%CERTS%" "cannot read TLS certificate [^ ]*: not a regular file"
	"--tls-cert=%CERTS%/garbage.pem --tls-key=%CERTS%/ec.key" "cannot load TLS certificate [^ ]*/garbage\\.pem: no PEM certificate in it"
	"--tls-cert=%CERTS%/ec.pem --tls-key=%CERTS%/no-such.key" "cannot read TLS key [^ ]*/no-such\\.key: No such file or directory"
	"--tls-cert=%CERTS%/ec.pem" "cannot load TLS key [^ ]*/ec\\.pem: no usable PEM private key in it"
	"--tls-cert=%CERTS%/ec.pem --tls-key=%CERTS%/encrypted.key" "cannot load TLS key [^ ]*/encrypted\\.key: encrypted keys are not supported"
	"--tls-cert=%CERTS%/ec.pem --tls-key=%CERTS%/other-ec.key" "TLS key [^ ]*/other-ec\\.key does not match certificate [^ ]*/ec\\.pem: .+"
	"--tls-cert=%CERTS%/ec.pem --tls-key=%CERTS%/rsa.key" "TLS key [^ ]*/rsa\\.key does not match certificate [^ ]*/ec\\.pem: .+"
)

@test "a bad certificate or key: -ERR [SYS/PERM] before any greeting (STLS mode), the cause logged, exit 78" {
	local i opts
	for ((i = 0; i < ${#BAD_CONFIGS[@]}; i += 2)); do
		opts=${BAD_CONFIGS[i]//%CERTS%/$CERTS}
		: >"$SYSLOG"
		# shellcheck disable=SC2086
		direct "$BATS_TEST_TMPDIR/out" $opts
		assert_equal "$status" 78
		is "$BATS_TEST_TMPDIR/out" "$MISCONFIGURED"
		wait_logged "^facility=mail maildir-pop3d\\[[0-9]+\\]: warning: TLS configuration error: ${BAD_CONFIGS[i + 1]}\$"
	done
}

@test "a bad certificate or key with --tls=implicit: nothing is sent, the cause logged, exit 78" {
	local i opts
	for ((i = 0; i < ${#BAD_CONFIGS[@]}; i += 2)); do
		opts=${BAD_CONFIGS[i]//%CERTS%/$CERTS}
		: >"$SYSLOG"
		# shellcheck disable=SC2086
		direct "$BATS_TEST_TMPDIR/out" --tls=implicit $opts
		assert_equal "$status" 78
		is "$BATS_TEST_TMPDIR/out" ''
		wait_logged "warning: TLS configuration error: ${BAD_CONFIGS[i + 1]}\$"
	done
}

@test "an unreadable key: -ERR [SYS/PERM], 'Permission denied' logged, exit 78" {
	cp "$CERTS/ec.key" "$BATS_TEST_TMPDIR/unreadable.key"
	chmod 000 "$BATS_TEST_TMPDIR/unreadable.key"
	if [[ $(id -u) == 0 ]]; then
		# Root as a hardened unit runs it: without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH.
		# shellcheck disable=SC2054 # the commas are setpriv's
		PREFIX=(setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search --)
	fi
	direct "$BATS_TEST_TMPDIR/out" --tls-cert="$CERTS/ec.pem" --tls-key="$BATS_TEST_TMPDIR/unreadable.key"
	assert_equal "$status" 78
	is "$BATS_TEST_TMPDIR/out" "$MISCONFIGURED"
	wait_logged 'warning: TLS configuration error: cannot read TLS key [^ ]*/unreadable\.key: Permission denied$'
}

@test "through systemd-socket-activate a key that does not match gives the client -ERR [SYS/PERM] and exits 78" {
	serve --tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/other-ec.key"
	tc s
	assert_success
	is "$O/0" "$MISCONFIGURED"
	wait_logged 'warning: TLS configuration error: TLS key [^ ]*/other-ec\.key does not match certificate [^ ]*/ec\.pem: .+$'
	session_exits 78

	serve --tls=implicit --tls-cert="$CERTS/no-such.pem" --tls-key="$CERTS/ec.key"
	: >"$SYSLOG"
	tc i --implicit
	assert_equal "$status" 3	# no handshake
	wait_logged 'warning: TLS configuration error: cannot read TLS certificate [^ ]*/no-such\.pem: No such file or directory$'
	session_exits 78
}

@test "the certificate and key are read at each connection: a renewed pair is served without a restart" {
	cp "$CERTS/ec.pem" "$BATS_TEST_TMPDIR/live.pem"
	cp "$CERTS/ec.key" "$BATS_TEST_TMPDIR/live.key"
	serve --tls=implicit --tls-cert="$BATS_TEST_TMPDIR/live.pem" --tls-key="$BATS_TEST_TMPDIR/live.key"
	tc before --implicit QUIT
	assert_success
	[[ $(cut -d' ' -f2 "$O/tls") == "$(cert_sha "$CERTS/ec.pem")" ]] || fail "first certificate: $(cat "$O/tls")"
	cp "$CERTS/rsa.pem" "$BATS_TEST_TMPDIR/live.pem"
	cp "$CERTS/rsa.key" "$BATS_TEST_TMPDIR/live.key"
	tc after --implicit QUIT
	assert_success
	[[ $(cut -d' ' -f2 "$O/tls") == "$(cert_sha "$CERTS/rsa.pem")" ]] || fail "renewed certificate: $(cat "$O/tls")"
}

@test "a certificate file that also holds the key needs no --tls-key" {
	serve --tls-cert="$CERTS/both.pem"
	tc s STLS @tls 'USER alice' 'PASS secret' QUIT
	assert_success
	starts_ok "$O/3" "$O/4"
}

# ---- failed handshakes --------------------------------------------------------------------

@test "a client that connects to --tls=implicit and closes without a handshake is logged; the session exits" {
	serve_tls --tls=implicit
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	exec 5>&-
	wait_logged '^facility=mail maildir-pop3d\[[0-9]+\]: warning: TLS handshake failed: rhost=<127\.0\.0\.1> reason=<connection closed by peer>$'
	session_exits 1
}

@test "a client that closes after the STLS answer without a handshake is logged; the session exits" {
	serve_tls
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -u 5 line
	printf 'STLS\r\n' >&5
	IFS= read -r -u 5 line
	assert_equal "$line" $'+OK Begin TLS negotiation.\r'
	exec 5>&-
	wait_logged 'warning: TLS handshake failed: rhost=<127\.0\.0\.1> reason=<connection closed by peer>$'
	session_exits 1
}

@test "garbage instead of a ClientHello (--tls=implicit) is logged as a failed handshake; the session exits" {
	serve_tls --tls=implicit
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'USER alice\r\nPASS secret\r\n' >&5
	cat <&5 >/dev/null 2>&1 || true	# an alert, then the close
	exec 5>&-
	wait_logged 'warning: TLS handshake failed: rhost=<127\.0\.0\.1> reason=<[^>]+>$'
	session_exits 1
	not_logged 'login:'
}

@test "a client that says nothing is dropped when the idle timeout passes during the handshake" {
	serve_tls --tls=implicit --timeout=1
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_logged 'warning: TLS handshake failed: rhost=<127\.0\.0\.1> reason=<timeout>$'
	session_exits 1
	exec 5>&-
}

# ---- the TLS module: OpenSSL only where TLS is configured (issue 6) ---------------------

# mapped_session MODE: the daemon (MODE plain: no TLS options; tls: --tls-cert) started
# directly on one end of a socketpair with the cwrap environment; greeting, CAPA, then the
# session's /proc/PID/maps is read, then (tls) STLS and the handshake, then USER/PASS/STAT
# and QUIT.  One line per step on stdout; "maps: unreadable" when /proc/PID/maps cannot be
# read (the daemon is not dumpable: only root can).
mapped_session() {
	local opts=()
	[[ $1 == tls ]] && opts=(--tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/ec.key")
	run python3 - "$1" "$CERTS/ca.pem" "${CW_ENV[@]}" REMOTE_ADDR=127.0.0.1 "$MAILDIR_POP3D" "${opts[@]}" <<-'PY'
		import os, re, socket, ssl, sys
		mode, ca, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
		a, b = socket.socketpair()
		pid = os.fork()
		if pid == 0:
		    os.dup2(b.fileno(), 0)
		    os.dup2(b.fileno(), 1)
		    os.execvp(cmd[0], cmd)
		b.close()
		a.settimeout(30)
		conn = a
		def line():
		    got = b""
		    while not got.endswith(b"\n"):
		        c = conn.recv(1)
		        if not c:
		            break
		        got += c
		    return got
		def ask(text):
		    conn.sendall(text.encode() + b"\r\n")
		    return line()
		print("greeting", line().decode().strip())
		conn.sendall(b"CAPA\r\n")
		capa = []
		while True:
		    l = line()
		    if l in (b".\r\n", b""):
		        break
		    capa.append(l.decode().strip())
		print("stls offered:", "STLS" in capa)
		# The launcher's process (root, then the session) and its pre-auth child.
		kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
		for who, p in (("session", pid), ("preauth", int(kids[0]) if kids else -1)):
		    try:
		        maps = open(f"/proc/{p}/maps").read()
		        names = {os.path.basename(l.split()[-1]) for l in maps.splitlines() if "/" in l}
		        for lib in ("libssl.so", "libcrypto.so", "tls.so"):
		            print(f"{who} {lib} mapped:", any(n == lib or n.startswith(lib + ".") for n in names))
		    except (PermissionError, FileNotFoundError):
		        print("maps: unreadable")
		if mode == "tls":
		    print("stls", ask("STLS").decode().strip())
		    ctx = ssl.create_default_context(cafile=ca)
		    conn = ctx.wrap_socket(a, server_hostname="localhost")
		    print("handshake", conn.version() in ("TLSv1.2", "TLSv1.3"))
		print("user", ask("USER alice")[:3].decode())
		print("pass", ask("PASS secret")[:3].decode())
		print("stat", ask("STAT")[:3].decode())
		print("quit", ask("QUIT")[:3].decode())
		print("status", os.waitpid(pid, 0)[1])
	PY
}

@test "the session process never maps libssl, libcrypto or the TLS module; only the pre-auth process does, and only with --tls-cert" {
	mapped_session plain
	assert_success
	assert_line 'greeting +OK maildir-pop3d ready.'
	assert_line 'stls offered: False'
	assert_line 'pass +OK'
	assert_line 'stat +OK'
	assert_line 'status 0'
	local plain=("${lines[@]}")

	mapped_session tls
	assert_success
	assert_line 'greeting +OK maildir-pop3d ready.'
	assert_line 'stls offered: True'
	assert_line 'stls +OK Begin TLS negotiation.'
	assert_line 'handshake True'
	assert_line 'pass +OK'
	assert_line 'stat +OK'
	assert_line 'status 0'
	wait_logged 'login: user=<alice> rhost=<127\.0\.0\.1> method=USER tls=yes$'

	[[ ${plain[*]} != *'maps: unreadable'* && $output != *'maps: unreadable'* ]] ||
		skip "only root can read a non-dumpable process's /proc/PID/maps (CI runs as root)"
	local lib
	for lib in libssl.so libcrypto.so tls.so; do
		assert_line "preauth $lib mapped: True"
		assert_line "session $lib mapped: False"
	done
	lines=("${plain[@]}")
	for lib in libssl.so libcrypto.so tls.so; do
		assert_line "preauth $lib mapped: False"
		assert_line "session $lib mapped: False"
	done
}

# ---- the private key never reaches the mailbox owner's process (issue 12) ------------------

# key_scan MODE: one session on a socketpair with the RSA certificate and key, MODE one of
# stls-unused (STLS offered, login in plaintext), stls (login inside STLS), implicit, and
# preauth-stls (--preauth as uid 65534 on its own Maildir, STLS configured).  Once logged
# in, the session process's readable memory (/proc/PID/mem, root only) is searched for the
# key: its primes p and q in either byte order (OpenSSL keeps numbers in little-endian
# words) and the base64 lines of the PEM file.  In the STLS modes the pre-auth process,
# which holds the key until the handshake, is searched first as the control: the search
# finds a key where there is one.
key_scan() {
	local mode=$1 cmd key=$CERTS/rsa.key
	cmd=("${CW_ENV[@]}" REMOTE_ADDR=127.0.0.1 "$MAILDIR_POP3D")
	if [[ $mode == preauth-* ]]; then
		# Its own readable copies and Maildir: the --preauth user reads them itself.
		local d
		# Under $CERTS (removed with the suite), which uid 65534 may pass through.
		d=$(mktemp -d "$CERTS/pre.XXXXXX")
		chmod 711 "$CERTS" "$d"
		cp "$CERTS/rsa.pem" "$CERTS/rsa.key" "$d/"
		mkdir -p "$d/Maildir/new" "$d/Maildir/cur" "$d/Maildir/tmp"
		cp "$BATS_TEST_TMPDIR/msg" "$d/Maildir/new/1700000001.M1P1.test"
		chown -R 65534:65534 "$d"
		key=$d/rsa.key
		# Of the cwrap environment only the TLS module's path and the sanitizers' options:
		# no PAM or uid wrapper in a process that runs as its own user.
		local v env=()
		for v in "${CW_ENV[@]}"; do
			[[ $v == @(MAILDIR_POP3D_TLS_MODULE|ASAN_OPTIONS|UBSAN_OPTIONS)=* ]] && env+=("$v")
		done
		cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups env "${env[@]}" REMOTE_ADDR=127.0.0.1
			"$MAILDIR_POP3D" --preauth -m "$d/Maildir" --tls-cert="$d/rsa.pem" --tls-key="$d/rsa.key")
	else
		cmd+=(--tls-cert="$CERTS/rsa.pem" --tls-key="$CERTS/rsa.key")
	fi
	[[ $mode == *implicit ]] && cmd+=(--tls=implicit)
	run python3 - "$LIB" "$mode" "$key" "${cmd[@]}" <<-'PY'
		import re, subprocess, sys
		lib, mode, keyfile, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
		text = subprocess.run(["openssl", "rsa", "-in", keyfile, "-noout", "-text"],
		                      capture_output=True, text=True, check=True).stdout
		needles = {}
		for name in ("prime1", "prime2"):
		    hexdigits = re.search(name + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", text).group(1)
		    n = bytes.fromhex(re.sub(r"[\s:]", "", hexdigits)).lstrip(b"\0")
		    needles[name] = n
		    needles[name + " (little-endian)"] = n[::-1]
		pem = [l for l in open(keyfile).read().splitlines() if l and not l.startswith("-----")]
		for i in (1, 2):
		    needles["PEM line %d" % i] = pem[i].encode()
		def holds_key(pid):
		    found = set()
		    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
		        for l in maps:
		            f = l.split()
		            lo, hi = (int(x, 16) for x in f[0].split("-"))
		            # Not the sanitizers' terabytes of shadow: key bytes are in small regions.
		            if "r" not in f[1] or hi - lo > (256 << 20) or l.rstrip().endswith(("[vvar]", "[vsyscall]")):
		                continue
		            try:
		                mem.seek(lo)
		                data = mem.read(hi - lo)
		            except OSError:
		                continue
		            found |= {k for k, v in needles.items() if v in data}
		    return sorted(found)
		sys.path.insert(0, lib)
		import pop3client
		c = pop3client.Conn(pair=cmd, ctx=pop3client.tls_context())
		pid = c.proc.pid
		def ask(text):
		    return c.answer(text.encode())
		if mode.endswith("implicit"):
		    print("handshake", c.handshake().split()[0].decode() in ("TLSv1.2", "TLSv1.3"))
		print("greeting", c.line().decode().strip())
		if mode in ("stls-unused", "stls"):
		    kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
		    print("control: pre-auth holds", holds_key(int(kids[0])) if kids else "no pre-auth process")
		if mode == "stls":
		    print("stls", ask("STLS").decode().strip())
		    print("handshake", c.handshake().split()[0].decode() in ("TLSv1.2", "TLSv1.3"))
		if not mode.startswith("preauth"):
		    print("user", ask("USER alice")[:3].decode())
		    print("pass", ask("PASS secret")[:3].decode())
		print("stat", ask("STAT")[:3].decode())
		print("session holds", holds_key(pid))
		print("quit", ask("QUIT")[:3].decode())
		print("status", c.proc.wait(timeout=30))
		c.close()
	PY
}

@test "a logged-in session's memory holds no byte of the TLS key: STLS unused or used, implicit TLS, --preauth with STLS" {
	[[ $EUID -eq 0 ]] || skip "only root reads a non-dumpable process's /proc/PID/mem (CI runs as root)"
	local mode
	for mode in stls-unused stls implicit; do
		key_scan "$mode"
		assert_success
		assert_line 'stat +OK'
		# A reviewer found the RSA primes in a session's heap when STLS was configured
		# but not used: the key was loaded in the process that became the session.
		assert_line 'session holds []'
		assert_line 'status 0'
		if [[ $mode != implicit ]]; then
			# The control: before its handshake the pre-auth process has the key.
			assert_line --regexp "^control: pre-auth holds \[.*'prime1'.*\]$"
		fi
	done
	# --preauth is the mailbox owner's own process, started in TRANSACTION where STLS is
	# never offered: the key is not loaded at all.  (With --tls=implicit it must be: the user
	# who runs --preauth reads the key file, and OpenSSL's freed buffers may keep a copy.)
	key_scan preauth-stls
	assert_success
	assert_line 'stat +OK'
	assert_line 'session holds []'
	assert_line 'status 0'
}

# Each: a MAILDIR_POP3D_TLS_MODULE value (%T% is the test's temp dir, %CERTS% the
# certificates) and the cause the log line must name (an extended regex).
BAD_MODULES=(
	"/nonexistent/tls.so" "cannot load TLS module /nonexistent/tls\\.so: cannot open shared object file: No such file or directory"
	"%CERTS%/garbage.pem" "cannot load TLS module [^ ]*/garbage\\.pem: .+"
	"tls.so" "TLS module tls\\.so: not an absolute path"
	"%T%/nosymbol.so" "TLS module [^ ]*/nosymbol\\.so: no mp_tls_module symbol \\(not a maildir-pop3d TLS module\\)"
	"%T%/oldabi.so" "TLS module [^ ]*/oldabi\\.so: interface version 999, this maildir-pop3d needs [0-9]+ \\(a module from another build\\?\\)"
)

@test "a missing, broken or wrong-version TLS module: -ERR [SYS/PERM] (STLS mode), the path and cause logged, exit 78" {
	local i mod env=("${CW_ENV[@]}")
	command -v cc >/dev/null || fail "cc is not installed (Debian: build-essential)"
	printf 'int not_the_table = 1;\n' >"$BATS_TEST_TMPDIR/nosymbol.c"
	printf 'const struct { unsigned int abi; unsigned long size; } mp_tls_module = { 999, 0 };\n' \
		>"$BATS_TEST_TMPDIR/oldabi.c"
	cc -shared -fPIC -o "$BATS_TEST_TMPDIR/nosymbol.so" "$BATS_TEST_TMPDIR/nosymbol.c"
	cc -shared -fPIC -o "$BATS_TEST_TMPDIR/oldabi.so" "$BATS_TEST_TMPDIR/oldabi.c"
	for ((i = 0; i < ${#BAD_MODULES[@]}; i += 2)); do
		mod=${BAD_MODULES[i]//%CERTS%/$CERTS}
		mod=${mod//%T%/$BATS_TEST_TMPDIR}
		# env(1) applies its assignments in order: this one wins over CW_ENV's.
		CW_ENV=("${env[@]}" "MAILDIR_POP3D_TLS_MODULE=$mod")
		: >"$SYSLOG"
		direct "$BATS_TEST_TMPDIR/out" --tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/ec.key"
		assert_equal "$status" 78
		is "$BATS_TEST_TMPDIR/out" "$MISCONFIGURED"
		wait_logged "^facility=mail maildir-pop3d\\[[0-9]+\\]: warning: TLS configuration error: ${BAD_MODULES[i + 1]}\$"
	done

	# With implicit TLS nothing at all is sent.
	CW_ENV=("${env[@]}" MAILDIR_POP3D_TLS_MODULE=/nonexistent/tls.so)
	: >"$SYSLOG"
	direct "$BATS_TEST_TMPDIR/out" --tls=implicit --tls-cert="$CERTS/ec.pem" --tls-key="$CERTS/ec.key"
	assert_equal "$status" 78
	is "$BATS_TEST_TMPDIR/out" ''
	wait_logged "warning: TLS configuration error: ${BAD_MODULES[1]}\$"

	# Without TLS options the module is never looked for: a whole session works.
	: >"$SYSLOG"
	mapped_session plain
	assert_success
	assert_line 'stls offered: False'
	assert_line 'stat +OK'
	assert_line 'status 0'
	not_logged 'TLS'
}

@test "--version names the TLS module, and says when it is missing" {
	run env MAILDIR_POP3D_TLS_MODULE=/nonexistent/tls.so "$MAILDIR_POP3D" --version
	assert_success
	assert_line 'TLS: OpenSSL, module /nonexistent/tls.so (missing)'
	[[ -n ${MP_BUILDDIR:-} && -f $MP_BUILDDIR/src/.libs/tls.so ]] || skip "MP_BUILDDIR has no src/.libs/tls.so"
	run env MAILDIR_POP3D_TLS_MODULE="$MP_BUILDDIR/src/.libs/tls.so" "$MAILDIR_POP3D" --version
	assert_line "TLS: OpenSSL, module $MP_BUILDDIR/src/.libs/tls.so"
}

# ---- built without OpenSSL ------------------------------------------------------------------

@test "built without OpenSSL: --tls-cert and --tls=implicit are usage errors (exit 64) that say so" {
	[[ $TLS_BUILT == no ]] || skip "maildir-pop3d is built with OpenSSL (see the build without it: configure --without-openssl)"
	run --separate-stderr "$MAILDIR_POP3D" --tls-cert=/nonexistent.pem </dev/null
	assert_equal "$status" 64
	assert_output ''
	[[ $stderr == *"built without OpenSSL"* ]] || fail "stderr: $stderr"
	run --separate-stderr "$MAILDIR_POP3D" --tls=implicit --tls-cert=/nonexistent.pem </dev/null
	assert_equal "$status" 64
	[[ $stderr == *"built without OpenSSL"* ]] || fail "stderr: $stderr"
}
