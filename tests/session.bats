#!/usr/bin/env bats
# The POP3 session in --preauth mode over pipes: every command, byte-exact messages,
# DELE/QUIT semantics, limits, pipelining.

load lib/common

setup() {
	mp_setup
	deliver_text 1000000001.M1P1.host 'From: a@example.org\nSubject: one\n\nfirst body\n'
	deliver_text 1000000002.M2P2.host 'From: b@example.org\nSubject: two\n\nsecond\nbody\n'
}

teardown() {
	mp_teardown
}

@test "greeting is +OK maildir-pop3d ready. and QUIT signs off" {
	send_lines QUIT
	[ "$status" -eq 0 ]
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "STAT, LIST and LIST n report exact CRLF sizes" {
	send_lines STAT LIST 'LIST 2' QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK 2 100
	+OK 2 messages (100 octets)
	1 49
	2 51
	.
	+OK 2 51
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "commands are case-insensitive and bare LF line ends work" {
	send_raw 'stat\nlist 1\nQuIt\n'
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK 2 100
	+OK 1 49
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "RETR sends the message with CRLF line ends and a final dot" {
	send_lines 'RETR 1' QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK 49 octets
	From: a@example.org
	Subject: one

	first body
	.
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "a read error in the middle of RETR ends the session: no final dot, nothing after it" {
	local status=0
	command -v strace >/dev/null || skip "strace missing (it injects the read error)"
	# The server makes itself non-dumpable: only root's strace can then resolve its fds
	# to the message's path (-P).
	[[ $(id -u) == 0 ]] || skip "needs root: strace -P cannot see a non-dumpable process's fds"
	# 3000 lines of 100 octets, sized by its ,W= (so login reads nothing of it): RETR's
	# first read gets 64 KiB, the second fails with EIO.
	local name='1000000009.M9P9.host,W=303000'
	python3 -c 'import sys; sys.stdout.write(("a" * 99 + "\n") * 3000)' > "$MD/new/$name"
	mp_own
	printf 'RETR 3\r\nQUIT\r\n' | ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -P "$MD/new/$name" -e trace=read -e inject=read:error=EIO:when=2 -o "$MP_T/trace" \
		"${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" > "$MP_T/out" || status=$?
	# Exit status 1: an error ended the session.
	[ "${status:-0}" -eq 1 ]
	grep -q 'EIO.*INJECTED' "$MP_T/trace"	# the error did land
	run cat "$MP_T/out"
	assert_line --index 0 $'+OK maildir-pop3d ready.\r'
	# A truncated message must not pass for a whole one, and the session is over.
	refute_line $'.\r'
	refute_line --partial 'signing off'
	[ "$(wc -c < "$MP_T/out")" -lt 303000 ]
}

@test "bad message numbers get one -ERR each and the session goes on" {
	send_lines 'LIST 0' 'LIST 3' 'LIST -1' 'LIST +1' 'LIST 0x1' 'LIST 1a' 'LIST 99999999999999999999999' \
		'RETR' 'RETR x' 'RETR 1 2' 'TOP 1' 'TOP 1 -1' 'TOP 1 x' 'TOP 0 1' 'DELE' 'DELE 3' 'UIDL 0' 'STAT x' NOOP QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	-ERR Invalid message number.
	-ERR No such message.
	-ERR Invalid message number.
	-ERR Invalid message number.
	-ERR Invalid message number.
	-ERR Invalid message number.
	-ERR Invalid message number.
	-ERR Missing argument.
	-ERR Invalid message number.
	-ERR Too many arguments.
	-ERR Missing argument.
	-ERR Invalid number of lines.
	-ERR Invalid number of lines.
	-ERR Invalid message number.
	-ERR Missing argument.
	-ERR No such message.
	-ERR Invalid message number.
	-ERR Too many arguments.
	+OK
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "numbers padded with leading zeros to the 255-octet line mean what their short form means" {
	# RFC 2449 section 4: 255 octets with CRLF.  Each line here is 253 + CRLF.
	msn=$(printf '%0248d' 2)	# RETR, LIST, UIDL, DELE: 5 + 248
	top=$(printf '%0244d' 1)	# "TOP " + 4 digits + " " + 244 lines
	[ "${#msn}" -eq 248 ] && [ "${#top}" -eq 244 ]
	send_lines "RETR $msn" "LIST $msn" "UIDL $msn" "TOP 0002 $top" "DELE $msn" QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK 51 octets
	From: b@example.org
	Subject: two

	second
	body
	.
	+OK 2 51
	+OK 2 1000000002.M2P2.host
	+OK top of message follows
	From: b@example.org
	Subject: two

	second
	.
	+OK message 2 deleted
	+OK maildir-pop3d signing off (1 messages deleted)
	EOF
}

@test "AUTHORIZATION commands are refused in TRANSACTION" {
	send_lines 'USER bob' 'PASS x' 'AUTH PLAIN' 'STLS' 'APOP bob 0123' NOOP QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	-ERR USER is not valid in this state.
	-ERR PASS is not valid in this state.
	-ERR AUTH is not valid in this state.
	-ERR STLS is not valid in this state.
	-ERR APOP is not valid in this state.
	+OK
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "unknown commands and empty lines get -ERR" {
	send_lines FOO '' 'XTND XMIT' NOOP QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	-ERR Unknown command.
	-ERR Unknown command.
	-ERR Unknown command.
	+OK
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "a deleted message is refused by every command and DELE twice is an error" {
	send_lines 'DELE 1' 'DELE 1' 'RETR 1' 'TOP 1 0' 'LIST 1' 'UIDL 1' STAT LIST RSET STAT QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK message 1 deleted
	-ERR Message is deleted.
	-ERR Message is deleted.
	-ERR Message is deleted.
	-ERR Message is deleted.
	-ERR Message is deleted.
	+OK 1 51
	+OK 1 messages (51 octets)
	2 51
	.
	+OK maildrop has 2 messages (100 octets)
	+OK 2 100
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	[ "$(md_files | wc -l)" -eq 2 ]
}

@test "DELE is applied only at QUIT" {
	send_lines 'DELE 1' QUIT
	assert_line --partial "signing off (1 messages deleted)"
	run md_files
	assert_output "new/1000000002.M2P2.host"
}

@test "DELE is not applied when the connection drops (EOF)" {
	send_lines 'DELE 1' 'DELE 2'
	# Exit status 2: the client left without QUIT.
	[ "$status" -eq 2 ]
	[ "$(md_files | wc -l)" -eq 2 ]
}

@test "DELE is not applied on idle timeout, which closes with -ERR" {
	local pid w
	mp_own
	mkfifo "$MP_T/in"
	# timeout(1) only stops a server that never times out (status 124); nothing waits on time.
	timeout 60 "${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" -t 1 <"$MP_T/in" >"$MP_T/out" &
	pid=$!
	exec {w}>"$MP_T/in"
	printf 'DELE 1\r\n' >&"$w"
	# stdin stays open and silent until the server has ended: it can only have ended by its
	# idle timeout, never by EOF or a QUIT.
	status=0
	wait "$pid" || status=$?
	exec {w}>&-
	[ "$status" -ne 124 ] || fail "the server was still waiting after 60 s of silence"
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK message 1 deleted
	-ERR Autologout: idle for too long.
	EOF
	[ "$(md_files | wc -l)" -eq 2 ]
}

@test "a command line over 255 octets is answered -ERR and skipped; the session goes on" {
	long=$(printf 'LIST %0300d' 1)
	send_lines "$long" STAT QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	-ERR Command line too long.
	+OK 2 100
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "a 100 KiB line without end is answered once and skipped" {
	long=$(head -c 102400 /dev/zero | tr '\0' 'A')
	send_lines "$long" NOOP QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	-ERR Command line too long.
	+OK
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "a NUL octet in a command is refused" {
	send_raw 'NO\0OP\r\nNOOP\r\nQUIT\r\n'
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	-ERR Command contains a NUL octet.
	+OK
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "a 255-octet line (with CRLF) is accepted, 256 is not" {
	sp249=$(printf '%249s' '')
	send_lines "NOOP$sp249" "NOOP$sp249 " QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK
	-ERR Command line too long.
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "pipelined commands in one write are all answered in order" {
	send_raw 'STAT\r\nLIST\r\nUIDL 1\r\nTOP 2 1\r\nNOOP\r\nLAST\r\nQUIT\r\n'
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK 2 100
	+OK 2 messages (100 octets)
	1 49
	2 51
	.
	+OK 1 1000000001.M1P1.host
	+OK top of message follows
	From: b@example.org
	Subject: two

	second
	.
	+OK
	+OK 0
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "too many bad commands close the session" {
	args=()
	for i in $(seq 1 25); do args+=(BOGUS); done
	send_lines "${args[@]}" NOOP
	[ "$(grep -c -- '-ERR Unknown command.' "$MP_T/out")" -eq 19 ]
	assert_line --partial "Too many bad commands"
	refute_line --partial "+OK"$'\r'
}

@test "CAPA after login lists TOP UIDL RESP-CODES PIPELINING but not USER, SASL or STLS" {
	send_lines CAPA QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK Capability list follows
	TOP
	UIDL
	RESP-CODES
	AUTH-RESP-CODE
	PIPELINING
	IMPLEMENTATION maildir-pop3d
	.
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "a missing Maildir is an empty maildrop and is not created" {
	rm -rf "$MD"
	mkdir -p "$MP_T/x" && MD=$MP_T/x/none
	send_lines STAT LIST QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK 0 0
	+OK 0 messages (0 octets)
	.
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	[ ! -e "$MD" ]
}

@test "dot files and tmp/ are ignored" {
	deliver_text .hidden 'x\n'
	printf 'x\n' > "$MD/tmp/1000000003.M3.host"
	printf 'x\n' > "$MD/cur/.also-hidden:2,S"
	send_lines STAT QUIT
	assert_line "+OK 2 100"$'\r'
}

@test "--preauth refuses to run as root" {
	if [[ $(id -u) != 0 ]]; then
		skip "needs root"
	fi
	run "$MAILDIR_POP3D" -p -m "$MD"
	[ "$status" -eq 64 ]
	assert_output --partial "refuses to run as root"
}
