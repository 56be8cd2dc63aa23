#!/usr/bin/env bats
# The privilege separation seen from outside, with the cwrap harness (tests/lib/cwrap.bash):
# the exit statuses, the login-phase budget and deadline, the PAM child's descriptors, unix
# sockets handed over by socat, and the pre-auth user and chroot that must exist.  Each test
# names a finding of issue 12 and failed on the code before the separation (see the commit).

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
bats_require_minimum_version 1.5.0

setup() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	cwrap_setup "$BATS_TEST_TMPDIR/cw"
	export -n LD_PRELOAD
	cwrap_add_user alice 'open sesame' 1001
	A=$CWRAP_DIR/home/alice/Maildir
	mkdir -p "$A"/{new,cur,tmp}
	printf 'Subject: one\n\nfirst\n' >"$A/new/1000000001.M1P1.test"
	POP_ARGS=()
	PIDS=()
}

teardown() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	cwrap_teardown
}

wrapped() {
	LD_PRELOAD=$LD_PRELOAD "$@"
}

# pop LINE...: one session on pipes (CRLF added), all input at once; the answer without CRs
# in $output, the exit status in $status.
pop() {
	local fmt='' l
	for l in "$@"; do
		fmt+="${l//%/%%}\r\n"
	done
	status=0
	# shellcheck disable=SC2059
	printf "$fmt" | wrapped "$MAILDIR_POP3D" "${POP_ARGS[@]}" >"$BATS_TEST_TMPDIR/out" \
		2>"$BATS_TEST_TMPDIR/err" || status=$?
	output=$(tr -d '\r' <"$BATS_TEST_TMPDIR/out")
	mapfile -t lines <<<"$output"
}

mail_log() {
	sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: [a-z]*: //p' "$MP_TEST_SYSLOG"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# login_over_tcp PORT: alice logs in over TCP to 127.0.0.1:PORT and quits, the commands
# pipelined; prints the greeting and the three answers, a line each.
login_over_tcp() {
	python3 - "$1" <<-'PY'
		import socket, sys
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
		f = s.makefile("rb")
		print(f.readline().decode().strip())
		s.sendall(b"USER alice\r\nPASS open sesame\r\nQUIT\r\n")
		for _ in range(3):
		    print(f.readline().decode().strip())
	PY
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (5 s at most).
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1"
}

# ---- exit statuses -------------------------------------------------------------------------

@test "exit status 0 after QUIT, before and after login" {
	pop QUIT
	assert_equal "$status" 0
	pop 'USER alice' 'PASS open sesame' QUIT
	assert_line --index 2 --partial '+OK maildrop has 1 message'
	assert_equal "$status" 0
}

@test "exit status 2 when the client leaves without QUIT, before and after login" {
	# Before the separation every session exited 0.
	pop CAPA
	assert_equal "$status" 2
	pop 'USER alice' 'PASS open sesame' STAT
	assert_line --index 3 --partial '+OK 1 '
	assert_equal "$status" 2
}

@test "exit status 3 when the idle timeout passes" {
	POP_ARGS=(--timeout=1)
	status=0
	{ printf 'CAPA\r\n'; sleep 3; } | wrapped "$MAILDIR_POP3D" --timeout=1 >"$BATS_TEST_TMPDIR/out" || status=$?
	assert_equal "$status" 3
	run tr -d '\r' <"$BATS_TEST_TMPDIR/out"
	assert_line -- '-ERR Autologout: idle for too long.'
}

@test "exit status 4 after three failed logins, and after too many bad commands" {
	pop 'USER alice' 'PASS x' 'USER alice' 'PASS y' 'USER alice' 'PASS z' CAPA
	assert_equal "$status" 4
	assert_equal "$(grep -c 'Authentication failed' <<<"$output")" 3
	refute_line '+OK Capability list follows'
	local bad=()
	for _ in $(seq 25); do bad+=(XYZZY); done
	pop "${bad[@]}"
	assert_equal "$status" 4
	assert_line -- '-ERR Too many bad commands, closing connection.'
}

@test "exit status 64 for a bad option, 78 for a missing pre-auth user or chroot, and nothing is served" {
	run wrapped "$MAILDIR_POP3D" --bogus </dev/null
	assert_equal "$status" 64
	MAILDIR_POP3D_PREAUTH_USER=no-such-user pop CAPA QUIT
	assert_equal "$status" 78
	assert_output '-ERR [SYS/PERM] Server misconfigured (pre-auth user or chroot).'
	run mail_log
	assert_line --partial 'pre-auth user no-such-user: no such user'
	MAILDIR_POP3D_PREAUTH_CHROOT=$BATS_TEST_TMPDIR/missing pop CAPA QUIT
	assert_equal "$status" 78
	assert_output '-ERR [SYS/PERM] Server misconfigured (pre-auth user or chroot).'
	# A directory others may write to is no chroot for it.
	mkdir -m 0777 "$BATS_TEST_TMPDIR/open"
	MAILDIR_POP3D_PREAUTH_CHROOT=$BATS_TEST_TMPDIR/open pop CAPA QUIT
	assert_equal "$status" 78
}

# ---- the login phase's budget and deadline -------------------------------------------------

@test "every error before login counts against the budget: bad SASL, cancelled AUTH, wrong-state commands" {
	# Before the separation bad base64 and cancels were not counted: a client could send
	# them forever.
	local cmds=() i
	for ((i = 0; i < 7; i++)); do
		cmds+=('AUTH PLAIN !!!!' 'AUTH LOGIN' '*' STAT)
	done
	cmds+=(CAPA)
	pop "${cmds[@]}"
	assert_equal "$status" 4
	assert_line -- '-ERR Too many bad commands, closing connection.'
	refute_line '+OK Capability list follows'
}

@test "AUTHORIZATION has a deadline of its own: a client that keeps it alive with CAPA is closed" {
	# --timeout=1 makes the deadline two idle timeouts (2 s); CAPA every 0.4 s never lets
	# the idle timeout pass.  Before, this session lasted as long as the client wanted.
	status=0
	{ for _ in $(seq 30); do printf 'CAPA\r\n'; sleep 0.4; done; } |
		wrapped "$MAILDIR_POP3D" --timeout=1 >"$BATS_TEST_TMPDIR/out" || status=$?
	assert_equal "$status" 4
	run tr -d '\r' <"$BATS_TEST_TMPDIR/out"
	assert_line -- '-ERR Login took too long, closing connection.'
	run mail_log
	assert_line 'login deadline passed: rhost=<local>'
}

# ---- the PAM child -------------------------------------------------------------------------

@test "the PAM child holds no client socket, in the fd-3 launch mode too" {
	# pam_exec runs a script whose parent is the PAM child: it lists that process's
	# descriptors.  Before the separation the PAM child inherited the connection on fd 3.
	local pam_exec d
	for d in /lib/*/security /usr/lib/*/security; do
		[[ -f $d/pam_exec.so ]] && pam_exec=$d/pam_exec.so
	done
	[[ -n ${pam_exec:-} ]] || skip "pam_exec.so not found"
	"$MAILDIR_POP3D" --version | grep -q '^socket activation: libsystemd' ||
		skip "built without libsystemd: no fd-3 launch mode"
	printf '#!/bin/sh\nls -l /proc/$PPID/fd >%s/pam-child-fds 2>&1\n' "$BATS_TEST_TMPDIR" \
		>"$BATS_TEST_TMPDIR/fds.sh"
	chmod 755 "$BATS_TEST_TMPDIR/fds.sh"
	printf 'auth optional %s quiet %s\n' "$pam_exec" "$BATS_TEST_TMPDIR/fds.sh" \
		>>"$CWRAP_DIR/pam.d/maildir-pop3d"
	local port
	port=$(free_port)
	# Without --inetd: the connection arrives as fd 3 (LISTEN_FDS), stdin is /dev/null.
	systemd-socket-activate -l "127.0.0.1:$port" -a $(cwrap_setenv_args) "$MAILDIR_POP3D" \
		</dev/null >"$BATS_TEST_TMPDIR/ssa.out" 2>&1 &
	PIDS+=($!)
	wait_port "$port"
	run login_over_tcp "$port"
	assert_line --index 2 --partial '+OK maildrop has 1 message'
	[[ -s $BATS_TEST_TMPDIR/pam-child-fds ]] || fail "pam_exec's script did not run"
	run cat "$BATS_TEST_TMPDIR/pam-child-fds"
	refute_output --partial 'socket:'
}

# ---- unix sockets handed over by a launcher ------------------------------------------------

@test "socat EXEC (a socketpair on fd 0): the client is socat's peer, not a local one" {
	command -v socat >/dev/null || skip "socat is not installed"
	local port i
	port=$(free_port)
	{
		echo '#!/bin/sh'
		echo '# the daemon under test with the cwrap environment; socat adds SOCAT_PEERADDR'
		printf 'exec %s %q\n' "$(cwrap_env_prefix)" "$MAILDIR_POP3D"
	} >"$BATS_TEST_TMPDIR/daemon.sh"
	chmod 755 "$BATS_TEST_TMPDIR/daemon.sh"
	# One connection, no fork: socat exits with it.  EXEC gives the daemon a socketpair and
	# the client's address in SOCAT_PEERADDR.  Before, the peer was logged as local.
	socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "EXEC:$BATS_TEST_TMPDIR/daemon.sh" \
		2>"$BATS_TEST_TMPDIR/socat.err" &
	PIDS+=($!)
	for ((i = 0; i < 100; i++)); do
		ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.05
	done
	run login_over_tcp "$port"
	assert_line --index 2 --partial '+OK maildrop has 1 message'
	run mail_log
	assert_line 'login: user=<alice> rhost=<127.0.0.1> method=USER tls=no'
}

@test "a socketpair on fd 0 without the launcher's address is an unknown, remote peer: no plaintext login" {
	# Before, any unix socket counted as a local peer, so socat or stunnel exec from the
	# network got plaintext logins allowed.
	run python3 - "$MAILDIR_POP3D" "$LD_PRELOAD" <<-'PY'
		import os, socket, sys
		a, b = socket.socketpair()
		pid = os.fork()
		if pid == 0:
		    os.dup2(b.fileno(), 0)
		    os.dup2(b.fileno(), 1)
		    for v in ("SOCAT_PEERADDR", "REMOTE_HOST", "REMOTE_ADDR", "TCPREMOTEIP"):
		        os.environ.pop(v, None)
		    os.environ["LD_PRELOAD"] = sys.argv[2]
		    os.execv(sys.argv[1], [sys.argv[1]])
		b.close()
		f = a.makefile("rb")
		print(f.readline().decode().strip())
		a.sendall(b"CAPA\r\n")
		while True:
		    l = f.readline().decode().strip()
		    print(l)
		    if l in (".", ""):
		        break
		a.sendall(b"USER alice\r\nQUIT\r\n")
		print(f.readline().decode().strip())
		print(f.readline().decode().strip())
		os.waitpid(pid, 0)
	PY
	assert_success
	refute_line USER
	assert_line -- '-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first.'
	run mail_log
	assert_line 'disconnect: rhost=<unknown> end=quit'
}
