#!/usr/bin/env bats
# The daemon under a real inetd (Debian's openbsd-inetd, /usr/sbin/inetd) with a private
# inetd.conf on a free loopback port: a whole login session with `nowait`, and the `wait`
# misconfiguration (inetd then passes its listening socket) refused with a message naming
# nowait / Accept=yes.
#
# inetd writes /run/inetd.pid, even in debug mode, so it runs in a private mount namespace with
# its own /run: root only.  inetd.conf cannot carry environment variables, so the service is a
# wrapper script that exports the cwrap environment (tests/lib/cwrap.bash) and execs the daemon.

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
load lib/deploy
load lib/realpam

INETD=/usr/sbin/inetd

setup() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test}"
	[[ -x $INETD ]] || skip "$INETD not installed (Debian: openbsd-inetd)"
	[[ $(id -u) == 0 ]] || skip "needs root: inetd writes /run/inetd.pid, so it runs in a private mount namespace"
	unshare --mount --propagation private true 2>/dev/null ||
		skip "inetd runs in a private mount namespace: $(realpam_why_not)"
	dp_cwrap "$BATS_TEST_TMPDIR/cw"
	dp_alice
	WRAPPER=$BATS_TEST_TMPDIR/maildir-pop3d-cwrap
	{
		echo '#!/bin/sh'
		echo '# inetd service: the daemon under test with the cwrap environment.'
		printf 'export %q\n' "${CW_ENV[@]:1}"	# CW_ENV is env VAR=value...
		printf 'exec %q "$@"\n' "$MAILDIR_POP3D"
	} >"$WRAPPER"
	chmod 0755 "$WRAPPER"
	INETD_PID=
}

teardown() {
	[[ -z ${INETD_PID:-} ]] || dp_stop "$INETD_PID" || true
	cwrap_teardown
}

# inetd_start LINE: inetd in the foreground (-d) with LINE as its whole configuration,
# and a tmpfs on /run for its pid file; waits until it listens on $PORT.
inetd_start() {
	printf '%s\n' "$1" >"$BATS_TEST_TMPDIR/inetd.conf"
	# unshare and sh exec, so $! is inetd itself.
	unshare --mount --propagation private -- sh -c 'mount -t tmpfs -o size=1m,mode=0755 tmpfs /run && exec "$0" "$@"' \
		"$INETD" -d "$BATS_TEST_TMPDIR/inetd.conf" \
		</dev/null >"$BATS_TEST_TMPDIR/inetd.out" 2>"$BATS_TEST_TMPDIR/inetd.err" 3>&- &
	INETD_PID=$!
	dp_wait_listening "$PORT" "$INETD_PID" || fail "inetd did not start: $(cat "$BATS_TEST_TMPDIR/inetd.err")"
}

# inetd_stop: SIGTERM, as the init script does; inetd exits and closes its port.
inetd_stop() {
	local st=0
	kill -TERM "$INETD_PID"
	wait "$INETD_PID" || st=$?
	INETD_PID=
	assert_equal "$st" 0	# its SIGTERM handler removes the pid file and exits 0
	run dp_listening "$PORT"
	assert_failure
}

@test "openbsd-inetd with nowait runs a whole login session on fd 0/1 and stops cleanly" {
	PORT=$(dp_free_port 127.0.0.1)
	inetd_start "127.0.0.1:$PORT stream tcp nowait root $WRAPPER maildir-pop3d"
	dp_full_session 127.0.0.1 "$PORT" '127\.0\.0\.1'
	inetd_stop
}

@test "openbsd-inetd on ::1 (tcp6): a whole session, the peer logged as ::1" {
	dp_have_ipv6 || skip "no IPv6 loopback (::1) on this host"
	PORT=$(dp_free_port ::1)
	inetd_start "[::1]:$PORT stream tcp6 nowait root $WRAPPER maildir-pop3d"
	dp_full_session ::1 "$PORT" '::1'
	inetd_stop
}

@test "openbsd-inetd with wait (a listening socket) gets the Accept=yes / nowait message in the log" {
	PORT=$(dp_free_port 127.0.0.1)
	# .3: after three attempts a minute inetd stops retrying the connection nobody accepts.
	inetd_start "127.0.0.1:$PORT stream tcp wait.3 root $WRAPPER maildir-pop3d"
	run python3 - "$PORT" "$SYSLOG" <<-'EOF'
		import socket, sys, time
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
		for _ in range(200):
		    if b"got a listening socket" in open(sys.argv[2], "rb").read():
		        break
		    time.sleep(0.05)
		else:
		    print("no log line")
		s.settimeout(0.5)
		try:
		    print(repr(s.recv(4096)))
		except socket.timeout:
		    print("nothing")
		except ConnectionResetError:
		    print("reset")
	EOF
	assert_success
	# fd 2 is the socket too: nothing may reach the client, not even the error.
	[[ $output == nothing || $output == reset || $output == "b''" ]] || fail "client got: $output"
	run grep -m1 'err: ' "$SYSLOG"
	assert_output --regexp '^facility=mail maildir-pop3d\[[0-9]+\]: err: got a listening socket: use Accept=yes in the systemd \.socket unit \(or nowait in inetd\.conf\); one process serves one connection$'
	run grep -c -v ': err: got a listening socket: ' "$SYSLOG"
	assert_output 0	# and nothing else was logged
	inetd_stop
}
