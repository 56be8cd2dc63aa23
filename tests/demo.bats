#!/usr/bin/env bats
# scripts/demo, the README's first command: started in the background on a free port with
# MP_BUILDDIR (so it does not build again), it serves the sample Maildir to curl and to a
# person typing a seed session, and SIGTERM stops it without leaving a listener, a process or
# its files behind.  Needs curl, python3, ss (iproute2) and what the demo needs.

bats_load_library bats-support
bats_load_library bats-assert
load lib/deploy

setup() {
	: "${MP_BUILDDIR:?MP_BUILDDIR must name a build directory (make check sets it)}"
	SRCDIR=${MP_SRCDIR:-$BATS_TEST_DIRNAME/..}
	SEEDS=$SRCDIR/tests/data/seed-mail
	command -v curl >/dev/null || fail "curl is not installed"
	PORT=$(dp_free_port 127.0.0.1)
	DEMO_PID=
	# The demo's own temp files go here, so that the test can see they are gone.
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
	MP_BUILDDIR=$MP_BUILDDIR MP_DEMO_PORT=$PORT "$SRCDIR/scripts/demo" \
		</dev/null >"$BATS_TEST_TMPDIR/demo.out" 2>&1 3>&- &
	DEMO_PID=$!
	dp_wait_listening "$PORT" "$DEMO_PID" || fail "the demo did not start: $(cat "$BATS_TEST_TMPDIR/demo.out")"
	wait_for_output "The server's log lines:"
}

# wait_for_output TEXT: waits (at most 10 s) until the demo has printed a line with TEXT.
wait_for_output() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q -F -- "$1" "$BATS_TEST_TMPDIR/demo.out" && return 0
		sleep 0.05
	done
	fail "the demo did not print \"$1\": $(cat "$BATS_TEST_TMPDIR/demo.out")"
}

teardown() {
	[[ -z $DEMO_PID ]] || dp_stop "$DEMO_PID" || true
}

# stop_demo: SIGTERM; the demo exits 0 and leaves nothing behind.
stop_demo() {
	local st=0
	SECONDS=0
	kill -TERM "$DEMO_PID"
	wait "$DEMO_PID" || st=$?
	DEMO_PID=
	assert_equal "$st" 0
	echo "# stop took $SECONDS s" >&3
	run dp_listening "$PORT"
	assert_failure
	run pgrep -f "systemd-socket-activate -l 127.0.0.1:$PORT "
	assert_failure
	run find "$TMPDIR" -mindepth 1 -maxdepth 1
	assert_output ''
}

@test "scripts/demo serves message 1 to curl as in the sample mail, and SIGTERM stops it cleanly" {
	run grep -F "curl pop3://demo:demo@127.0.0.1:$PORT/1" "$BATS_TEST_TMPDIR/demo.out"
	assert_success
	# The command suggested for typing a session is one this machine has.
	if command -v telnet >/dev/null; then
		run grep -F "  telnet 127.0.0.1 $PORT" "$BATS_TEST_TMPDIR/demo.out"
	elif command -v nc >/dev/null; then
		run grep -F "  nc 127.0.0.1 $PORT" "$BATS_TEST_TMPDIR/demo.out"
	else
		run grep -F "  bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT; cat <&3 & cat >&3'" "$BATS_TEST_TMPDIR/demo.out"
	fi
	assert_success
	curl -s --max-time 30 "pop3://demo:demo@127.0.0.1:$PORT/1" >"$BATS_TEST_TMPDIR/got"
	# curl undoes the dot-stuffing and drops the final dot line; the lines keep their CRLF.
	python3 "$BATS_TEST_DIRNAME/lib/pop3enc.py" wire "$SEEDS/qpop-1.eml" |
		python3 "$BATS_TEST_DIRNAME/lib/pop3enc.py" unstuff >"$BATS_TEST_TMPDIR/want"
	cmp "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got" || fail "curl got: $(head -c 600 "$BATS_TEST_TMPDIR/got")"
	wait_for_output 'login: user=<demo> rhost=<127.0.0.1>'	# the log lines are shown
	stop_demo
}

@test "the QPOP seed session typed into the demo (lower case, LF only) works" {
	local out=$BATS_TEST_TMPDIR/typed
	run python3 - "$PORT" <<-'EOF'
		import socket, sys
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
		s.sendall(b"user demo\npass demo\nlist\nlist 8\ntop 8 5\nretr 1\nuidl 1\ndele 1\nrset\nstat\nnoop\nquit\n")
		data = b""
		while True:
		    chunk = s.recv(65536)
		    if not chunk:
		        break
		    data += chunk
		sys.stdout.write(data.decode("latin-1").replace("\r\n", "\n"))
	EOF
	assert_success
	printf '%s\n' "$output" >"$out"
	local -a s
	local total=0 i f
	for i in 1 2 3 4 5 6 7 8; do
		s[i]=$(python3 "$BATS_TEST_DIRNAME/lib/pop3enc.py" size "$SEEDS/qpop-$i.eml")
	done
	for f in "$SEEDS"/qpop-{1..8}.eml "$SEEDS"/cyrus-{1,2}.eml; do
		total=$((total + $(python3 "$BATS_TEST_DIRNAME/lib/pop3enc.py" size "$f")))
	done
	assert_line --index 0 '+OK maildir-pop3d ready.'
	assert_line "+OK maildrop has 10 messages ($total octets)"
	assert_line "1 ${s[1]}"
	assert_line "8 ${s[8]}"
	assert_line "+OK 8 ${s[8]}"
	assert_line "+OK ${s[1]} octets"
	assert_line '+OK message 1 deleted'
	assert_line "+OK 10 $total"	# STAT: RSET undid DELE 1
	assert_line --index $((${#lines[@]} - 1)) --regexp '^\+OK maildir-pop3d signing off'
	# TOP 8 5: the header and the first five body lines of the eighth QPOP mail, right
	# after the answer to LIST 8.
	python3 "$BATS_TEST_DIRNAME/lib/pop3enc.py" top "$SEEDS/qpop-8.eml" 5 | tr -d '\r' >"$BATS_TEST_TMPDIR/top"
	run python3 - "$out" "$BATS_TEST_TMPDIR/top" <<-'EOF'
		import sys
		got = open(sys.argv[1]).read()
		want = open(sys.argv[2]).read()
		i = got.index("\n", got.index("\n+OK 8 ") + 1) + 1  # the line after LIST 8's answer
		i = got.index("\n", i) + 1                           # after TOP's +OK line
		print("same" if got[i:i + len(want)] == want else "differs:\n" + got[i:i + len(want)])
	EOF
	assert_output same
	stop_demo
}
