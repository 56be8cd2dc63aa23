#!/usr/bin/env bats
# HAProxy PROXY protocol (DESIGN.md sections 2 and 8) through a real launcher:
# systemd-socket-activate --inetd on loopback with --proxy-from, cwrap users.  v1 TCP4/TCP6
# and v2 headers put the client's address in the login, logout and auth-failure log lines
# and in PAM_RHOST (seen by pam_exec in the test's PAM stack); the greeting waits for the
# header; a header in several TCP segments works; a missing or malformed header from a
# trusted peer and a header from an untrusted one close the connection with a log line.
#
# Needs systemd-socket-activate (systemd), python3, ss (iproute2); pam_exec.so
# (libpam-modules) for the PAM_RHOST checks.

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
load lib/deploy

# The v2 signature, and headers for a client 192.0.2.7:4711 or [2001:db8::7]:4711 talking to
# port 110 (TCP over IPv4: family 0x11, 12 octets; over IPv6: 0x21, 36 octets).
V2SIG='\r\n\r\n\x00\r\nQUIT\n'
V2_TCP4="$V2SIG"'\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x12\x67\x00\x6e'
V2_TCP6="$V2SIG"'\x21\x21\x00\x24\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x12\x67\x00\x6e'
V2_LOCAL="$V2SIG"'\x20\x00\x00\x00'

setup() {
	dp_launcher_setup
	# PAM_RHOST as the PAM stack sees it: pam_exec runs a script with the PAM items in its
	# environment (pam_matrix does not show them).
	PAM_ITEMS=$BATS_TEST_TMPDIR/pam-items
	PAM_EXEC=
	for d in /lib/*/security /usr/lib/*/security /lib/security /usr/lib/security; do
		if [[ -f $d/pam_exec.so ]]; then
			PAM_EXEC=$d/pam_exec.so
			break
		fi
	done
	if [[ -n $PAM_EXEC ]]; then
		printf '#!/bin/sh\necho "$PAM_TYPE user=$PAM_USER rhost=$PAM_RHOST" >>%s\n' "$PAM_ITEMS" \
			>"$BATS_TEST_TMPDIR/items.sh"
		chmod 755 "$BATS_TEST_TMPDIR/items.sh"
		printf 'auth     optional %s quiet %s\n' "$PAM_EXEC" "$BATS_TEST_TMPDIR/items.sh" \
			>>"$CWRAP_DIR/pam.d/maildir-pop3d"
	fi
	SSA_PIDS=()
}

teardown() {
	local pid
	for pid in "${SSA_PIDS[@]}"; do
		dp_stop "$pid" || true
	done
	cwrap_teardown
}

# start ADDR OPTION...: the daemon behind systemd-socket-activate --inetd -a on ADDR (a free
# port, in $PORT and $HOST) with the cwrap environment and OPTION...  Behind a proxy the
# client's own address is not loopback, so plaintext logins are allowed explicitly.
start() {
	local listen pid
	HOST=$1
	shift
	PORT=$(dp_free_port "$HOST")
	if [[ $HOST == *:* ]]; then listen="[$HOST]:$PORT"; else listen="$HOST:$PORT"; fi
	systemd-socket-activate -l "$listen" -a --inetd "${CW_SETENV[@]}" "$MAILDIR_POP3D" \
		--plaintext=always "$@" \
		</dev/null >"$BATS_TEST_TMPDIR/ssa.out" 2>"$BATS_TEST_TMPDIR/ssa.err" 3>&- &
	pid=$!
	SSA_PIDS+=("$pid")
	dp_wait_listening "$PORT" "$pid"
}

raw() {
	python3 "$BATS_TEST_DIRNAME/lib/rawclient.py" "$HOST" "$PORT" "$@"
}

# login_steps: USER/PASS/STAT/QUIT as rawclient steps, each answer read.
LOGIN=('send:USER alice\r\n' line 'send:PASS secret\r\n' line 'send:STAT\r\n' line 'send:QUIT\r\n' rest)

assert_logged_in() {	# assert_logged_in RHOST: the session in $output and the logs name RHOST
	local rhost=$1
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	assert_line --index 1 '< +OK Send the password.'
	assert_line --index 2 --regexp '^< \+OK maildrop has 1 messages? \('
	assert_line --index 3 --regexp '^< \+OK 1 [0-9]+$'
	assert_line --index 4 --regexp '^< \+OK maildir-pop3d signing off'
	assert_line --index 5 closed
	grep -q -F ": info: login: user=<alice> rhost=<$rhost> method=USER tls=no" "$SYSLOG" ||
		fail "no login line with rhost=<$rhost>: $(cat "$SYSLOG")"
	grep -q -F ": info: logout: user=<alice> rhost=<$rhost> " "$SYSLOG" ||
		fail "no logout line with rhost=<$rhost>: $(cat "$SYSLOG")"
	if [[ -n $PAM_EXEC ]]; then
		grep -q -x -F "auth user=alice rhost=$rhost" "$PAM_ITEMS" ||
			fail "PAM_RHOST was not $rhost: $(cat "$PAM_ITEMS" 2>&1)"
	fi
}

assert_no_session() {	# the connection was closed without a greeting; no login
	refute_output --partial '+OK'
	assert_line closed
	run grep -E ': info: (login|logout|auth failed):' "$SYSLOG"
	assert_failure
}

@test "v1 TCP4 header: the client's address is the one logged and given to PAM" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PROXY TCP4 192.0.2.7 127.0.0.1 4711 110\r\n' line "${LOGIN[@]}"
	assert_success
	assert_logged_in 192.0.2.7
	run grep -c -F 'rhost=<127.0.0.1>' "$SYSLOG"
	assert_output 0
}

@test "v1 TCP6 header: an IPv6 client address, without brackets" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PROXY TCP6 2001:db8::7 ::1 4711 110\r\n' line "${LOGIN[@]}"
	assert_success
	assert_logged_in 2001:db8::7
}

@test "v1 TCP6 header with an IPv4-mapped address: logged as plain IPv4" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PROXY TCP6 ::ffff:192.0.2.8 ::ffff:127.0.0.1 4711 110\r\n' line "${LOGIN[@]}"
	assert_success
	assert_logged_in 192.0.2.8
}

@test "v2 header, TCP over IPv4: the client's address is logged and given to PAM" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw "send:$V2_TCP4" line "${LOGIN[@]}"
	assert_success
	assert_logged_in 192.0.2.7
}

@test "v2 header, TCP over IPv6: the client's address is logged and given to PAM" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw "send:$V2_TCP6" line "${LOGIN[@]}"
	assert_success
	assert_logged_in 2001:db8::7
}

@test "a failed login behind the proxy is logged with the client's address (what fail2ban bans)" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PROXY TCP4 198.51.100.9 127.0.0.1 4711 110\r\n' line \
		'send:USER alice\r\n' line 'send:PASS wrong\r\n' line 'send:QUIT\r\n' rest
	assert_success
	assert_line --index 2 '< -ERR [AUTH] Authentication failed.'
	grep -q -E ': info: auth failed: user=<alice> rhost=<198\.51\.100\.9> reason=<' "$SYSLOG" ||
		fail "no auth failed line with the client's address: $(cat "$SYSLOG")"
	run grep -c -F 'rhost=<127.0.0.1>' "$SYSLOG"
	assert_output 0
}

@test "v1 UNKNOWN and v2 LOCAL (a proxy's health check) keep the connection's own address" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PROXY UNKNOWN\r\n' line "${LOGIN[@]}"
	assert_success
	assert_logged_in 127.0.0.1
	: >"$SYSLOG"
	: >"$PAM_ITEMS"
	run raw "send:$V2_LOCAL" line "${LOGIN[@]}"
	assert_success
	assert_logged_in 127.0.0.1
}

# wait_log REGEX: until a line of the log matches (10 s at most).
wait_log() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -Eq -- "$1" "$SYSLOG" && return 0
		sleep 0.05
	done
	fail "no log line matches $1: $(cat "$SYSLOG")"
}

@test "a trusted proxy's health check (v2 LOCAL, v1 UNKNOWN or its own address: connect, greeting, close) logs nothing at info level" {
	# Issue 15's load balancers check every few seconds: before, each check left an info
	# line "disconnect: ... end=eof" in mail.log.
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw "send:$V2_LOCAL" line
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	run raw 'send:PROXY UNKNOWN\r\n' line
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	# HAProxy's v1 checks name the proxy itself as the source
	run raw 'send:PROXY TCP4 127.0.0.1 127.0.0.1 4711 110\r\n' line
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	local i
	for ((i = 0; i < 200; i++)); do
		(($(grep -c ': debug: disconnect: rhost=<127\.0\.0\.1> end=eof$' "$SYSLOG") == 3)) && break
		sleep 0.05
	done
	run grep -c ': debug: disconnect: rhost=<127\.0\.0\.1> end=eof$' "$SYSLOG"
	assert_output 3
	run grep -F ': info: ' "$SYSLOG"
	assert_failure
}

@test "a client that closes early is logged at info level, behind a trusted proxy too" {
	start 127.0.0.1
	run raw line
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	wait_log ': info: disconnect: rhost=<127\.0\.0\.1> end=eof$'
	: >"$SYSLOG"
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PROXY TCP4 192.0.2.7 127.0.0.1 4711 110\r\n' line
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	wait_log ': info: disconnect: rhost=<192\.0\.2\.7> end=eof$'
}

@test "the greeting comes only after the header" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw silent:0.5 'send:PROXY TCP4 ' silent:0.3 'send:192.0.2.7 127.0.0.1 4711 110\r\n' line "${LOGIN[@]}"
	assert_success
	assert_line --index 0 silent
	assert_line --index 1 silent
	assert_line --index 2 '< +OK maildir-pop3d ready.'
	run raw 'send:PROXY TCP4 192.0.2.7 127.0.0.1 4711 110\r\n' line "${LOGIN[@]}"
	assert_logged_in 192.0.2.7
}

@test "a header split across several TCP segments still works, v1 and v2" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PRO' sleep:0.1 'send:XY TCP4 192.0.2.7 12' sleep:0.1 'send:7.0.0.1 4711 110\r' sleep:0.1 'send:\n' \
		line "${LOGIN[@]}"
	assert_success
	assert_logged_in 192.0.2.7
	: >"$SYSLOG"
	: >"$PAM_ITEMS"
	run raw 'send:\r\n\r\n\x00\r' sleep:0.1 'send:\nQUIT\n\x21' sleep:0.1 'send:\x21\x00\x24' sleep:0.1 \
		"send:${V2_TCP6:38}" line "${LOGIN[@]}"
	assert_success
	assert_logged_in 2001:db8::7
}

@test "commands in the same segment as the header are served, not lost" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:PROXY TCP4 192.0.2.7 127.0.0.1 4711 110\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n' rest
	assert_success
	assert_logged_in 192.0.2.7
}

@test "a trusted peer without a header is closed without a greeting, and logged" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	run raw 'send:CAPA\r\n' rest
	assert_success
	assert_no_session
	grep -q -E ': warning: PROXY header missing or malformed: rhost=<127\.0\.0\.1>: ' "$SYSLOG" ||
		fail "no log line: $(cat "$SYSLOG")"
}

@test "a trusted peer that sends nothing is closed at the timeout, without a greeting, and logged" {
	start 127.0.0.1 --proxy-from=127.0.0.1 --timeout=1
	run raw rest
	assert_success
	assert_no_session
	grep -q -E ': warning: PROXY header missing or malformed: rhost=<127\.0\.0\.1>: Connection timed out$' "$SYSLOG" ||
		fail "no timeout line: $(cat "$SYSLOG")"
}

@test "malformed headers close the connection without a greeting, each with a log line" {
	start 127.0.0.1 --proxy-from=127.0.0.1
	local h n=0
	for h in \
		'PROXY TCP4 256.0.2.7 127.0.0.1 4711 110\r\n' \
		'PROXY TCP4 192.0.2.7 127.0.0.1 4711 70000\r\n' \
		'PROXY TCP4 2001:db8::7 127.0.0.1 4711 110\r\n' \
		'PROXY  TCP4 192.0.2.7 127.0.0.1 4711 110\r\n' \
		'proxy TCP4 192.0.2.7 127.0.0.1 4711 110\r\n' \
		"PROXY UNKNOWN $(printf '%0100d' 0)\\r\\n" \
		'PROXY TCP4 192.0.2.7 127.0.0.1 4711 110' \
		"${V2SIG}"'\x31\x11\x00\x0c' \
		"${V2SIG}"'\x21\x11\x02\x01' \
		"${V2SIG}"'\x21\x11\x00\x04\xc0\x00\x02\x07'; do
		n=$((n + 1))
		# the last ones end early: the client closes its side after sending
		run python3 - "$HOST" "$PORT" "$h" <<-'PY'
		import socket, sys
		s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
		s.sendall(sys.argv[3].encode("latin-1").decode("unicode_escape").encode("latin-1"))
		try:
		    s.shutdown(socket.SHUT_WR)
		except OSError:
		    pass	# the server refused the header before our end: already reset
		data = b""
		while True:
		    try:
		        chunk = s.recv(4096)
		    except ConnectionResetError:
		        break
		    if not chunk:
		        break
		    data += chunk
		print(repr(data))
		PY
		assert_success
		assert_output "b''"
		run grep -c ': warning: PROXY header missing or malformed: rhost=<127.0.0.1>: ' "$SYSLOG"
		assert_output "$n"
	done
	run grep -E ': info: (login|logout|auth failed):' "$SYSLOG"
	assert_failure
}

@test "a v1 PROXY line from an untrusted address is refused: -ERR after the greeting, closed, logged" {
	start 127.0.0.1 --proxy-from=10.0.0.0/8
	run raw line 'send:PROXY TCP4 192.0.2.7 127.0.0.1 4711 110\r\nUSER alice\r\nPASS secret\r\n' rest
	assert_success
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	assert_line --index 1 '< -ERR PROXY header not accepted from this address.'
	assert_line --index 2 closed
	grep -q -F ': warning: PROXY header from untrusted peer: rhost=<127.0.0.1>' "$SYSLOG" ||
		fail "no log line: $(cat "$SYSLOG")"
	run grep -E ': info: (login|auth failed):' "$SYSLOG"
	assert_failure
	[[ ! -s $PAM_ITEMS ]]
}

@test "a v2 header from an untrusted address ends the session before any login" {
	start 127.0.0.1 --proxy-from=10.0.0.0/8
	run raw line "send:$V2_TCP4"'USER alice\r\nPASS secret\r\n' rest
	assert_success
	assert_line --index 0 '< +OK maildir-pop3d ready.'
	assert_line closed
	refute_output --partial 'Send the password'
	run grep -E ': info: (login|auth failed):' "$SYSLOG"
	assert_failure
	[[ ! -s $PAM_ITEMS ]]
}

@test "without --proxy-from a PROXY line is refused the same way" {
	start 127.0.0.1
	run raw line 'send:PROXY TCP4 192.0.2.7 127.0.0.1 4711 110\r\n' rest
	assert_success
	assert_line --index 1 '< -ERR PROXY header not accepted from this address.'
	assert_line --index 2 closed
	grep -q -F ': warning: PROXY header from untrusted peer: rhost=<127.0.0.1>' "$SYSLOG"
}

@test "over IPv6: a proxy on ::1 trusted by --proxy-from=::1 sends a v1 TCP4 header" {
	dp_have_ipv6 || skip "no IPv6 loopback (::1) on this host"
	start ::1 --proxy-from=127.0.0.1,::1
	run raw 'send:PROXY TCP4 192.0.2.7 127.0.0.1 4711 110\r\n' line "${LOGIN[@]}"
	assert_success
	assert_logged_in 192.0.2.7
	: >"$SYSLOG"
	run raw 'send:CAPA\r\n' rest
	assert_no_session
	grep -q -F ': warning: PROXY header missing or malformed: rhost=<::1>: ' "$SYSLOG"
}
