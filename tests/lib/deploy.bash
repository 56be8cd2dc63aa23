# Helpers for the suites that start the daemon the way a launcher does (systemd-socket-activate,
# openbsd-inetd, scripts/demo): free loopback ports, waiting for a listener without connecting
# to it (a connection would start a session), stopping a launcher by its pid, and the cwrap
# environment kept out of the test's own shell.
#
#   dp_cwrap DIR          cwrap_setup DIR, then CW_ENV (an "env VAR=..." prefix) and CW_SETENV
#                         (systemd-socket-activate -E arguments) for the daemon, and the wrappers
#                         removed from this shell, so clients and tools run unwrapped.
#                         SYSLOG is the syslog shim's file.
#   dp_free_port ADDR     a free TCP port on ADDR (127.0.0.1 or ::1)
#   dp_have_ipv6          0 if ::1 can be bound
#   dp_wait_listening PORT [PID]
#                         waits (at most 10 s) until something listens on PORT; fails at once
#                         if PID has exited
#   dp_listening PORT     0 if something listens on PORT
#   dp_stop PID           SIGTERM PID (a process this test started) and reap it; returns its status
#   pop3c ARG...          tests/lib/pop3client.py (session, load)
#   dp_alice              (after dp_cwrap) user alice, password "secret", one message in her
#                         Maildir ($MD); a copy of it in $BATS_TEST_TMPDIR/msg
#   dp_full_session HOST PORT RHOST_REGEX
#                         USER/PASS, STAT, RETR 1 (byte for byte), DELE 1, QUIT through the
#                         launcher on HOST:PORT; the message is gone afterwards, and the login
#                         and logout log lines name the peer

# shellcheck disable=SC2034  # CW_ENV, CW_SETENV and SYSLOG are for the suites
dp_cwrap() {
	local v
	cwrap_setup "$1" || return 1
	read -r -a CW_ENV <<<"$(cwrap_env_prefix)"
	read -r -a CW_SETENV <<<"$(cwrap_setenv_args)"
	SYSLOG=$MP_TEST_SYSLOG
	for v in "${CWRAP_VARS[@]}"; do
		unset "$v"
	done
}

dp_free_port() {
	python3 - "${1:-127.0.0.1}" <<-'EOF'
		import socket, sys
		fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
		s = socket.socket(fam)
		s.bind((sys.argv[1], 0))
		print(s.getsockname()[1])
	EOF
}

dp_have_ipv6() {
	python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null
}

dp_listening() {
	[[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]
}

dp_wait_listening() {
	local port=$1 pid=${2:-} i
	for ((i = 0; i < 200; i++)); do
		dp_listening "$port" && return 0
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			echo "# launcher $pid exited before listening on $port" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "# nothing listens on port $port after 10 s" >&2
	return 1
}

dp_stop() {
	local pid=$1 st=0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || st=$?
	return "$st"
}

pop3c() {
	python3 "$BATS_TEST_DIRNAME/lib/pop3client.py" "$@"
}

dp_alice() {
	cwrap_add_user alice secret 1001
	MD=$CWRAP_DIR/home/alice/Maildir
	mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
	# Dot-stuffing, a CRLF line, and no line end at the end: RETR must get all of it right.
	printf 'From: bob@example.org\nTo: alice@example.org\nSubject: deployment\n\n.leading dot\n..two\r\n.\nlast line without a line end' \
		>"$MD/new/1700000001.M1P1.test"
	cp "$MD/new/1700000001.M1P1.test" "$BATS_TEST_TMPDIR/msg"
}

# dp_launcher_setup: what every systemd-socket-activate suite starts with: the binary,
# the launcher, a cwrap directory in the test's temp dir and the user alice.
dp_launcher_setup() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test}"
	command -v systemd-socket-activate >/dev/null ||
		fail "systemd-socket-activate is not installed (Debian: systemd)"
	dp_cwrap "$BATS_TEST_TMPDIR/cw"
	dp_alice
}

# dp_same FILE FORMAT [ARG...]: FILE holds exactly the printf-formatted bytes.
dp_same() {
	local file=$1
	shift
	# shellcheck disable=SC2059
	printf "$@" >"$BATS_TEST_TMPDIR/want"
	cmp -s "$BATS_TEST_TMPDIR/want" "$file" ||
		fail "$(printf '%s differs:\n--- want\n%s\n--- got\n%s' "$file" "$(od -c "$BATS_TEST_TMPDIR/want" | head)" "$(od -c "$file" | head)")"
}

dp_starts_ok() {
	[[ $(head -c 4 "$1") == '+OK ' ]] || fail "$1 is not +OK: $(cat "$1")"
}

dp_full_session() {
	local host=$1 port=$2 rhost=$3 out=$BATS_TEST_TMPDIR/session lib=$BATS_TEST_DIRNAME/lib size
	mkdir -p "$out"
	size=$(python3 "$lib/pop3enc.py" size "$BATS_TEST_TMPDIR/msg")
	pop3c session "$host" "$port" "$out" 'USER alice' 'PASS secret' STAT 'RETR 1' 'DELE 1' QUIT ||
		fail "the session failed"
	dp_same "$out/0" '+OK maildir-pop3d ready.\r\n'
	dp_starts_ok "$out/1"
	dp_starts_ok "$out/2"
	dp_same "$out/3" '+OK 1 %s\r\n' "$size"
	{
		printf '+OK %s octets\r\n' "$size"
		python3 "$lib/pop3enc.py" wire "$BATS_TEST_TMPDIR/msg"
	} >"$BATS_TEST_TMPDIR/retr"
	cmp -s "$BATS_TEST_TMPDIR/retr" "$out/4" || fail "RETR 1 differs: $(od -c "$out/4" | head -20)"
	dp_starts_ok "$out/5"
	dp_starts_ok "$out/6"
	[[ ! -s $out/end ]] || fail "bytes after QUIT's answer: $(cat "$out/end")"
	run find "$MD/new" "$MD/cur" -type f
	assert_output ''
	run grep -E ': (login|logout):' "$SYSLOG"
	assert_line --index 0 --regexp "^facility=mail maildir-pop3d\[[0-9]+\]: info: login: user=<alice> rhost=<$rhost> method=USER tls=no\$"
	assert_line --index 1 --regexp "^facility=mail maildir-pop3d\[[0-9]+\]: info: logout: user=<alice> rhost=<$rhost> retr=1/$size top=0/0 dele=1/$size left=0/0 end=quit\$"
	assert_equal "${#lines[@]}" 2
}
