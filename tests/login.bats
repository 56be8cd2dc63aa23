#!/usr/bin/env bats
# Login without root: the real binary, without --preauth, as uid_wrapper's pretend root, checks
# passwords through pam_wrapper + pam_matrix, finds its users through nss_wrapper (homes and
# Maildirs in the test's temp dir) and logs through the syslog shim (tests/lib/cwrap.bash).
# Covers USER/PASS, SASL PLAIN and LOGIN, the login policy (one answer and one delay for every
# failure, 3 failures, expired accounts, empty passwords, uid 0, --plaintext), the privilege drop
# as uid_wrapper records it, and the log lines.
#
# Every failed login costs LIMIT_AUTH_FAIL_DELAY_US (2 s), so tests that need several failures
# run their sessions side by side. The delay itself is measured, not asserted, by
# tests/bench/login-delay.

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
bats_require_minimum_version 1.5.0

setup() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	cwrap_setup "$BATS_TEST_TMPDIR/cw"
	# Only the daemon and pamtester run wrapped (wrapped, below), not the test's own tools:
	# pam_wrapper 1.1.4 gives every wrapped process a /tmp/pam.X chosen by lstat-then-mkdir,
	# and two processes starting at once may share one, which the first to exit removes.
	export -n LD_PRELOAD
	cwrap_add_user alice 'open sesame' 1001
	cwrap_add_user bob 'bob pw' 1002
	# pam_matrix's service field differs: pam_acct_mgmt says PAM_PERM_DENIED.
	cwrap_add_user carol 'carol pw' 1003 other-service
	# pam_matrix accepts an empty password for this one: only the daemon refuses it.
	cwrap_add_user nopw '' 1004
	LONGPW=$(printf 'L%.0s' {1..300})
	cwrap_add_user longpw "$LONGPW" 1005
	printf 'root:root pw:maildir-pop3d\n' >>"$CWRAP_DIR/passdb"
	printf 'toor:x:0:0:root alias:/root:/bin/sh\n' >>"$CWRAP_DIR/passwd"
	printf 'toor:toor pw:maildir-pop3d\n' >>"$CWRAP_DIR/passdb"

	A=$CWRAP_DIR/home/alice/Maildir
	B=$CWRAP_DIR/home/bob/Maildir
	mkdir -p "$A"/{new,cur,tmp} "$B"/{new,cur,tmp}
	printf 'From: x@example.org\nSubject: one\n\nfirst message for alice\n' \
		>"$A/new/1000000001.M1P1.test"
	printf 'Subject: two\n\nsecond message for alice\n.dotted\n' >"$A/cur/1000000002.M2P2.test:2,S"
	printf 'Subject: bob\n\nonly for bob\n' >"$B/new/1000000003.M3P3.test"
	A1=$(crlf_size "$A/new/1000000001.M1P1.test")
	A2=$(crlf_size "$A/cur/1000000002.M2P2.test:2,S")
	POP_ARGS=()
	PRIVTMP_OK=0
	sh "$BATS_TEST_DIRNAME/lib/privtmp.sh" -- true 2>/dev/null && PRIVTMP_OK=1
}

teardown() {
	# What pam_exec started in "a PAM stack slower than the idle timeout" (a session of its own).
	if [[ -s $BATS_TEST_TMPDIR/slow.pid ]]; then
		kill "$(cat "$BATS_TEST_TMPDIR/slow.pid")" 2>/dev/null || true
	fi
	cwrap_teardown
}

# wrapped CMD...: CMD with pam_wrapper, nss_wrapper, uid_wrapper and the syslog shim.
wrapped() {
	LD_PRELOAD=$LD_PRELOAD "$@"
}

# Size of an LF-terminated file as sent with CRLF line ends.
crlf_size() {
	echo $(($(wc -c <"$1") + $(wc -l <"$1")))
}

# b64 FORMAT: base64 of printf FORMAT (so \0 is a NUL).
b64() {
	# shellcheck disable=SC2059
	printf "$1" | base64 -w0
}

# pop_to NAME LINE...: one session on pipes, each LINE sent with CRLF, all at once; the daemon
# gets "${POP_ARGS[@]}" and the caller's environment (REMOTE_ADDR=... pop_to ... works).
# Raw answer in $BATS_TEST_TMPDIR/NAME.out, stderr in NAME.err, exit status in NAME.rc.
# With POP_PRIVTMP=1 the daemon gets a private /tmp (pop_bg).
pop_to() {
	local name=$1 fmt='' l rc=0 run=(wrapped) keep
	shift
	for l in "$@"; do
		fmt+="${l//%/%%}\r\n"
	done
	if [[ ${POP_PRIVTMP:-} == 1 ]]; then
		mapfile -t keep < <(cwrap_tmp_keep "$MAILDIR_POP3D" "$MP_SYSLOG_SHIM" "$CWRAP_DIR" "$BATS_TEST_TMPDIR")
		run=(sh "$BATS_TEST_DIRNAME/lib/privtmp.sh" "${keep[@]}" -- env LD_PRELOAD="$LD_PRELOAD")
	fi
	# shellcheck disable=SC2059
	printf "$fmt" | "${run[@]}" "$MAILDIR_POP3D" "${POP_ARGS[@]}" \
		>"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" || rc=$?
	echo "$rc" >"$BATS_TEST_TMPDIR/$name.rc"
}

# answer NAME: $output/$lines/$status from session NAME; fails on a line without CRLF.
answer() {
	local f=$BATS_TEST_TMPDIR/$1.out
	python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(0 if d.count(b"\n")==d.count(b"\r\n") and (not d or d.endswith(b"\r\n")) else 1)' "$f" ||
		fail "answer of $1 has a line without CRLF: $(od -c "$f" | head)"
	output=$(tr -d '\r' <"$f")
	mapfile -t lines <<<"$output"
	status=$(<"$BATS_TEST_TMPDIR/$1.rc")
}

# pop_bg NAME LINE...: pop_to in the background (then wait), so that the failure delays of
# several sessions overlap.  pam_wrapper 1.1.4 picks each wrapped process's /tmp/pam.X by
# lstat-then-mkdir, at start-up and again in the PAM child: processes that start at once may
# share one, which the first to exit removes.  So each session gets a /tmp of its own
# (lib/privtmp.sh: root or unprivileged user namespaces); without that, the sessions run one
# after the other (slower, never racing).
pop_bg() {
	if [[ $PRIVTMP_OK == 1 ]]; then
		POP_PRIVTMP=1 pop_to "$@" &
	else
		pop_to "$@"
	fi
}

# pop LINE...: one session, answered in $output.
pop() {
	pop_to s "$@"
	answer s
}

# The syslog lines of facility mail, without "facility=mail maildir-pop3d[PID]: PRIORITY: ".
mail_log() {
	sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: [a-z]*: //p' "$MP_TEST_SYSLOG"
}

popctl() {
	MP_SESSION_CMD="env LD_PRELOAD=$LD_PRELOAD $MAILDIR_POP3D" python3 "$BATS_TEST_DIRNAME/lib/popctl.py"
}

free_port() {
	python3 -c 'import socket, sys; s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}

# ---- USER/PASS ----------------------------------------------------------------------------

@test "USER/PASS logs in to TRANSACTION with the account's own Maildir" {
	pop 'USER alice' 'PASS open sesame' STAT 'RETR 1' 'LIST 2' QUIT
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		+OK Send the password.
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
		+OK 2 $((A1 + A2))
		+OK $A1 octets
		From: x@example.org
		Subject: one

		first message for alice
		.
		+OK 2 $A2
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	assert_equal "$status" 0
	# The retrieved message got its seen flag, as alice; bob's mail is untouched.
	run ls "$A/cur"
	assert_output - <<-'EOF'
		1000000001.M1P1.test:2,S
		1000000002.M2P2.test:2,S
	EOF
	[ -f "$B/new/1000000003.M3P3.test" ]
}

@test "the session process takes the user's uid and gid for good before serving (uid_wrapper trace)" {
	UID_WRAPPER_DEBUGLEVEL=4 pop_to s 'USER alice' 'PASS open sesame' STAT QUIT
	answer s
	assert_line --index 2 "+OK maildrop has 2 messages ($((A1 + A2)) octets)"
	local pid
	pid=$(sed -n 's/^facility=mail maildir-pop3d\[\([0-9]*\)\]: info: login: user=<alice> .*/\1/p' "$MP_TEST_SYSLOG")
	[[ $pid =~ ^[0-9]+$ ]] || fail "no login line: $(cat "$MP_TEST_SYSLOG")"
	# uid_wrapper only pretends, but it records what the process asked for: the same process
	# that logged the login set all three gids, then all three uids, to alice's, then tried
	# to get root back (which failed, or the drop check would have aborted the session).
	run grep -F "UWRAP_TRACE($pid) - uwrap_set" "$BATS_TEST_TMPDIR/s.err"
	assert_line --index 0 "UWRAP_TRACE($pid) - uwrap_setresgid: rgid 0 -> 1001, egid 0 -> 1001, sgid 0 -> 1001"
	assert_line "UWRAP_TRACE($pid) - uwrap_setresuid: ruid 0 -> 1001, euid 0 -> 1001, suid 0 -> 1001"
	assert_line "UWRAP_TRACE($pid) - uwrap_setuid_args: uid 1001 -> 0"
	run grep -c "UWRAP_TRACE($pid) - uwrap_setresuid: ruid 0 -> 1001" "$BATS_TEST_TMPDIR/s.err"
	assert_output 1
	run mail_log
	assert_line 'login: user=<alice> rhost=<local> method=USER tls=no'
}

@test "a wrong password and an unknown user get the identical answer" {
	pop_bg wrong 'USER alice' 'PASS open sesamE' QUIT
	pop_bg unknown 'USER mallory' 'PASS open sesame' QUIT
	wait
	cmp "$BATS_TEST_TMPDIR/wrong.out" "$BATS_TEST_TMPDIR/unknown.out"
	answer wrong
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [AUTH] Authentication failed.
		+OK maildir-pop3d signing off.
	EOF
	run mail_log
	assert_line 'auth failed: user=<alice> rhost=<local> reason=<Authentication failure>'
	assert_line 'auth failed: user=<mallory> rhost=<local> reason=<Authentication failure>'
	refute_line --partial 'login:'
}

@test "PASS without USER is refused, is not a failed login, and a failed PASS needs USER again" {
	pop_bg nouser 'PASS open sesame' 'PASS open sesame' 'PASS open sesame' 'USER alice' \
		'PASS open sesame' QUIT
	pop_bg again 'USER alice' 'PASS nope' 'PASS open sesame' QUIT
	wait
	answer nouser
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		-ERR Send USER first.
		-ERR Send USER first.
		-ERR Send USER first.
		+OK Send the password.
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	answer again
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [AUTH] Authentication failed.
		-ERR Send USER first.
		+OK maildir-pop3d signing off.
	EOF
	run grep -c 'auth failed:' "$MP_TEST_SYSLOG"
	assert_output 1
}

@test "an empty password is refused before PAM, even for an account whose password is empty" {
	# The refusal must come from the daemon: pam_matrix itself would accept it.
	run wrapped pamtester maildir-pop3d nopw authenticate <<<''
	assert_success
	printf 'auth required %s/no_such_module.so\n' "$CWRAP_DIR" >"$CWRAP_DIR/pam.d/broken"
	pop_bg pass 'USER nopw' 'PASS' QUIT
	pop_bg plain "AUTH PLAIN $(b64 '\0nopw\0')" QUIT
	pop_bg login 'AUTH LOGIN' "$(b64 nopw)" '=' QUIT
	pop_bg space 'USER nopw' 'PASS ' QUIT
	# Refused before PAM: a service that cannot even load its module never answers SYS/TEMP.
	POP_ARGS=(--pam-service=broken)
	pop_bg broken 'USER nopw' 'PASS' QUIT
	POP_ARGS=()
	wait
	local n
	for n in pass space broken; do
		answer $n
		assert_output - <<-'EOF'
			+OK maildir-pop3d ready.
			+OK Send the password.
			-ERR [AUTH] Authentication failed.
			+OK maildir-pop3d signing off.
		EOF
	done
	answer plain
	assert_line --index 1 '-ERR [AUTH] Authentication failed.'
	answer login
	assert_line --index 3 '-ERR [AUTH] Authentication failed.'
	run mail_log
	assert_equal "$(grep -c 'auth failed: user=<nopw> rhost=<local> reason=<empty or overlong password>' <<<"$output")" 5
	refute_line --partial 'login:'
	refute_line --partial 'auth error:'
}

@test "the third failed login closes the connection, whatever the method" {
	pop_to s 'USER alice' 'PASS bad-1' "AUTH PLAIN $(b64 '\0alice\0bad-2')" \
		'AUTH LOGIN' "$(b64 alice)" "$(b64 bad-3)" 'USER alice' 'PASS open sesame' QUIT
	answer s
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [AUTH] Authentication failed.
		-ERR [AUTH] Authentication failed.
		+ VXNlcm5hbWU6
		+ UGFzc3dvcmQ6
		-ERR [AUTH] Authentication failed.
	EOF
	run mail_log
	assert_equal "$(grep -c '^auth failed: user=<alice> rhost=<local>' <<<"$output")" 3
	assert_line 'disconnect: rhost=<local> end=limit'
	refute_line --partial 'login:'
}

@test "a right password that the account phase refuses is answered exactly like a wrong one" {
	# pam_matrix: carol's password is right but for another service, so pam_acct_mgmt
	# answers PAM_PERM_DENIED, as for an expired or locked account.  A distinct answer
	# would confirm the password to anyone (before the privilege separation it said
	# "-ERR [AUTH] Login not permitted for this account.").
	pop_bg right 'USER carol' 'PASS carol pw' QUIT
	pop_bg wrong 'USER carol' 'PASS carol pW' QUIT
	wait
	answer wrong
	local wrong_answer=$output
	answer right
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [AUTH] Authentication failed.
		+OK maildir-pop3d signing off.
	EOF
	assert_equal "$output" "$wrong_answer"
	# The reason goes to the log only.
	run mail_log
	assert_line 'auth failed: user=<carol> rhost=<local> reason=<Permission denied>'
	assert_line 'auth failed: user=<carol> rhost=<local> reason=<Authentication failure>'
	refute_line --partial 'login:'
}

@test "uid 0 is never served, under any name, and the answer is the generic failure" {
	run wrapped pamtester maildir-pop3d root authenticate acct_mgmt <<<'root pw'
	assert_success
	pop_bg root 'USER root' 'PASS root pw' QUIT
	pop_bg toor "AUTH PLAIN $(b64 '\0toor\0toor pw')" QUIT
	wait
	answer root
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [AUTH] Authentication failed.
		+OK maildir-pop3d signing off.
	EOF
	answer toor
	assert_line --index 1 '-ERR [AUTH] Authentication failed.'
	run mail_log
	assert_line 'auth failed: user=<root> rhost=<local> reason=<uid 0 refused>'
	assert_line 'auth failed: user=<toor> rhost=<local> reason=<uid 0 refused>'
	refute_line --partial 'login:'
}

@test "PAM failing itself answers -ERR [SYS/TEMP], not an authentication failure" {
	printf 'auth required %s/no_such_module.so\naccount required pam_permit.so\n' \
		"$CWRAP_DIR" >"$CWRAP_DIR/pam.d/broken"
	POP_ARGS=(--pam-service=broken)
	pop 'USER alice' 'PASS open sesame' QUIT
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [SYS/TEMP] Authentication is unavailable; try again later.
		+OK maildir-pop3d signing off.
	EOF
	run mail_log
	assert_line --regexp '^auth error: user=<alice> rhost=<local> reason=<.+>$'
	refute_line --partial 'auth failed:'
}

@test "a PAM stack slower than the idle timeout is cut off: -ERR [SYS/TEMP], and the session goes on" {
	# pam_exec runs sleep(1) for 30 s; with --timeout=1 the PAM child is killed after 1 s,
	# and the next command is still served.  (The sleep, in a session of its own, lives on:
	# teardown ends it by the pid it wrote.)
	printf '#!/bin/sh\necho $$ >%s/slow.pid\nexec sleep 30\n' "$BATS_TEST_TMPDIR" >"$BATS_TEST_TMPDIR/slow.sh"
	chmod 755 "$BATS_TEST_TMPDIR/slow.sh"
	printf 'auth required pam_exec.so quiet %s\naccount required pam_permit.so\n' "$BATS_TEST_TMPDIR/slow.sh" \
		>"$CWRAP_DIR/pam.d/slow"
	POP_ARGS=(--pam-service=slow --timeout=1)
	pop 'USER alice' 'PASS open sesame' NOOP QUIT
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [SYS/TEMP] Authentication is unavailable; try again later.
		-ERR NOOP is not valid in this state.
		+OK maildir-pop3d signing off.
	EOF
	run mail_log
	assert_line 'auth error: user=<alice> rhost=<local> reason=<PAM took longer than 1 s>'
}

@test "--pam-service selects the PAM service" {
	cp "$CWRAP_DIR/pam.d/maildir-pop3d" "$CWRAP_DIR/pam.d/other-service"
	POP_ARGS=(--pam-service=other-service)
	pop 'USER carol' 'PASS carol pw' STAT QUIT
	assert_line --index 2 '+OK maildrop has 0 messages (0 octets)'
	run mail_log
	assert_line 'login: user=<carol> rhost=<local> method=USER tls=no'
}

@test "not started as root, the daemon logs in only the user running it" {
	printf 'USER alice\r\nPASS open sesame\r\nSTAT\r\nQUIT\r\n' |
		cwrap_as_user alice env LD_PRELOAD="$LD_PRELOAD" "$MAILDIR_POP3D" >"$BATS_TEST_TMPDIR/self.out"
	echo $? >"$BATS_TEST_TMPDIR/self.rc"
	printf 'USER bob\r\nPASS bob pw\r\nSTAT\r\nQUIT\r\n' |
		cwrap_as_user alice env LD_PRELOAD="$LD_PRELOAD" "$MAILDIR_POP3D" >"$BATS_TEST_TMPDIR/other.out"
	echo $? >"$BATS_TEST_TMPDIR/other.rc"
	answer self
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		+OK Send the password.
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
		+OK 2 $((A1 + A2))
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	answer other
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Send the password.
		-ERR [SYS/PERM] Not running as root: only the invoking user can be served.
		-ERR STAT is not valid in this state.
		+OK maildir-pop3d signing off.
	EOF
	run mail_log
	assert_line 'login: user=<alice> rhost=<local> method=USER tls=no'
	assert_line 'login refused: user=<bob> rhost=<local> reason=<not running as root>'
	refute_line --partial 'login: user=<bob>'
}

# ---- SASL -------------------------------------------------------------------------------

@test "a bare AUTH lists PLAIN and LOGIN" {
	pop AUTH QUIT
	assert_output - <<-'EOF'
		+OK maildir-pop3d ready.
		+OK Mechanisms follow
		PLAIN
		LOGIN
		.
		+OK maildir-pop3d signing off.
	EOF
}

@test "AUTH PLAIN with an initial response logs in" {
	pop "AUTH PLAIN $(b64 '\0alice\0open sesame')" STAT QUIT
	assert_line --index 1 "+OK maildrop has 2 messages ($((A1 + A2)) octets)"
	assert_line --index 2 "+OK 2 $((A1 + A2))"
	run mail_log
	assert_line 'login: user=<alice> rhost=<local> method=PLAIN tls=no'
}

@test "AUTH PLAIN without an initial response sends an empty continuation first" {
	run popctl <<-EOF
		open s
		send s AUTH PLAIN
		send s $(b64 '\0alice\0open sesame')
		send s STAT
		send s QUIT
	EOF
	assert_output - <<-EOF
		s< +OK maildir-pop3d ready.
		s< + 
		s< +OK maildrop has 2 messages ($((A1 + A2)) octets)
		s< +OK 2 $((A1 + A2))
		s< +OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "AUTH PLAIN with an authorization identity: the same user logs in, another is refused without PAM" {
	pop "AUTH PLAIN $(b64 'bob\0alice\0open sesame')" \
		"AUTH PLAIN $(b64 'alice\0alice\0open sesame')" STAT QUIT
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		-ERR Malformed PLAIN response (or authorization identity differs).
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
		+OK 2 $((A1 + A2))
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	run mail_log
	refute_line --partial 'auth failed:'
	assert_line 'login: user=<alice> rhost=<local> method=PLAIN tls=no'
}

@test "AUTH PLAIN '=' (empty response), malformed messages and bad base64 are refused, the session goes on" {
	pop 'AUTH PLAIN =' 'AUTH PLAIN' '=' "AUTH PLAIN $(b64 'alice\0open sesame')" \
		"AUTH PLAIN $(b64 '\0alice\0open\0sesame')" 'AUTH PLAIN not*base64' 'AUTH PLAIN' 'YQ=' \
		'AUTH PLAIN YR==' "AUTH PLAIN $(b64 '\0alice\0open sesame')" QUIT
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		-ERR Malformed PLAIN response (or authorization identity differs).
		+ 
		-ERR Malformed PLAIN response (or authorization identity differs).
		-ERR Malformed PLAIN response (or authorization identity differs).
		-ERR Malformed PLAIN response (or authorization identity differs).
		-ERR Invalid base64 data.
		+ 
		-ERR Invalid base64 data.
		-ERR Invalid base64 data.
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	run mail_log
	refute_line --partial 'auth failed:'
}

@test "AUTH PLAIN '*' cancels, and a cancel is not a failed login" {
	run popctl <<-EOF
		open s
		send s AUTH PLAIN
		send s *
		send s AUTH PLAIN
		send s *
		send s AUTH PLAIN
		send s *
		send s AUTH PLAIN
		send s *
		send s AUTH PLAIN $(b64 '\0alice\0open sesame')
		send s QUIT
	EOF
	assert_output - <<-EOF
		s< +OK maildir-pop3d ready.
		s< + 
		s< -ERR Authentication cancelled.
		s< + 
		s< -ERR Authentication cancelled.
		s< + 
		s< -ERR Authentication cancelled.
		s< + 
		s< -ERR Authentication cancelled.
		s< +OK maildrop has 2 messages ($((A1 + A2)) octets)
		s< +OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "a SASL response longer than a command line is accepted (RFC 5034)" {
	local ir
	ir=$(b64 "\\0longpw\\0$LONGPW")
	[ "${#ir}" -gt 255 ]
	pop "AUTH PLAIN $ir" QUIT
	assert_line --index 1 '+OK maildrop has 0 messages (0 octets)'
	run mail_log
	assert_line 'login: user=<longpw> rhost=<local> method=PLAIN tls=no'
}

@test "AUTH LOGIN asks for the user name and the password, then logs in" {
	run popctl <<-EOF
		open s
		send s AUTH LOGIN
		send s $(b64 alice)
		send s $(b64 'open sesame')
		send s STAT
		send s QUIT
	EOF
	assert_output - <<-EOF
		s< +OK maildir-pop3d ready.
		s< + VXNlcm5hbWU6
		s< + UGFzc3dvcmQ6
		s< +OK maildrop has 2 messages ($((A1 + A2)) octets)
		s< +OK 2 $((A1 + A2))
		s< +OK maildir-pop3d signing off (0 messages deleted)
	EOF
	run mail_log
	assert_line 'login: user=<alice> rhost=<local> method=LOGIN tls=no'
}

@test "AUTH LOGIN with the user name as initial response asks only for the password" {
	run popctl <<-EOF
		open s
		send s AUTH LOGIN $(b64 alice)
		send s $(b64 'open sesame')
		send s QUIT
	EOF
	assert_output - <<-EOF
		s< +OK maildir-pop3d ready.
		s< + UGFzc3dvcmQ6
		s< +OK maildrop has 2 messages ($((A1 + A2)) octets)
		s< +OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "AUTH LOGIN can be cancelled at each step, and bad base64 is refused at each step" {
	pop 'AUTH LOGIN' '*' 'AUTH LOGIN' "$(b64 alice)" '*' "AUTH LOGIN $(b64 alice)" '*' \
		'AUTH LOGIN' 'YWxpY2U' "AUTH LOGIN $(b64 alice)" '%%%%' 'AUTH LOGIN YWxp!2U=' \
		"AUTH LOGIN $(b64 'al\0ice')" 'AUTH LOGIN' "$(b64 alice)" "$(b64 'open\0sesame')" \
		"AUTH LOGIN $(b64 alice)" "$(b64 'open sesame')" QUIT
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		+ VXNlcm5hbWU6
		-ERR Authentication cancelled.
		+ VXNlcm5hbWU6
		+ UGFzc3dvcmQ6
		-ERR Authentication cancelled.
		+ UGFzc3dvcmQ6
		-ERR Authentication cancelled.
		+ VXNlcm5hbWU6
		-ERR Invalid base64 data.
		+ UGFzc3dvcmQ6
		-ERR Invalid base64 data.
		-ERR Invalid base64 data.
		-ERR Invalid user name.
		+ VXNlcm5hbWU6
		+ UGFzc3dvcmQ6
		-ERR Invalid password encoding.
		+ UGFzc3dvcmQ6
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	run mail_log
	refute_line --partial 'auth failed:'
}

@test "an unknown SASL mechanism is refused and the session goes on" {
	pop 'AUTH CRAM-MD5' 'AUTH XOAUTH2 dXNlcj1hbGljZQ==' 'AUTH GSSAPI' \
		"auth plain $(b64 '\0alice\0open sesame')" QUIT
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		-ERR Unsupported authentication mechanism.
		-ERR Unsupported authentication mechanism.
		-ERR Unsupported authentication mechanism.
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "APOP is refused and not offered" {
	pop CAPA 'APOP alice c4c9334bac560ecc979e58001b3e22fb' QUIT
	assert_line --index 0 '+OK maildir-pop3d ready.'
	refute_line --regexp '^APOP'
	refute_output --partial '<'
	assert_line '-ERR APOP is not supported (PAM cannot check a digest); use USER/PASS or AUTH.'
	run mail_log
	refute_line --partial 'auth failed:'
}

# ---- where plaintext logins are allowed -----------------------------------------------------

@test "CAPA before login offers USER and SASL PLAIN LOGIN to a local peer, and not after login" {
	pop CAPA 'USER alice' 'PASS open sesame' CAPA QUIT
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		+OK Capability list follows
		TOP
		UIDL
		RESP-CODES
		AUTH-RESP-CODE
		PIPELINING
		USER
		SASL PLAIN LOGIN
		IMPLEMENTATION maildir-pop3d
		.
		+OK Send the password.
		+OK maildrop has 2 messages ($((A1 + A2)) octets)
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

@test "loopback peers named by the launcher count as local" {
	local addr
	for addr in 127.0.0.1 ::1 ::ffff:127.0.0.2; do
		REMOTE_ADDR=$addr pop CAPA 'USER alice' 'PASS open sesame' QUIT
		assert_line USER
		assert_line 'SASL PLAIN LOGIN'
		assert_line "+OK maildrop has 2 messages ($((A1 + A2)) octets)"
	done
	run mail_log
	assert_line 'login: user=<alice> rhost=<127.0.0.1> method=USER tls=no'
	assert_line 'login: user=<alice> rhost=<::1> method=USER tls=no'
	assert_line 'login: user=<alice> rhost=<127.0.0.2> method=USER tls=no'
}

@test "--plaintext=secure refuses USER, PASS and AUTH from a remote peer without TLS" {
	local addr var
	for var in REMOTE_ADDR TCPREMOTEIP; do
		for addr in 192.0.2.7 2001:db8::7; do
			export "$var=$addr"
			pop_to s CAPA AUTH 'USER alice' 'PASS open sesame' \
				"AUTH PLAIN $(b64 '\0alice\0open sesame')" 'AUTH LOGIN' "$(b64 alice)" STAT QUIT
			unset "$var"
			answer s
			assert_output - <<-'EOF'
				+OK maildir-pop3d ready.
				+OK Capability list follows
				TOP
				UIDL
				RESP-CODES
				AUTH-RESP-CODE
				PIPELINING
				IMPLEMENTATION maildir-pop3d
				.
				+OK Mechanisms follow
				.
				-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first.
				-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first.
				-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first.
				-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first.
				-ERR Unknown command.
				-ERR STAT is not valid in this state.
				+OK maildir-pop3d signing off.
			EOF
		done
	done
	run mail_log
	refute_line --partial 'login:'
	refute_line --partial 'auth failed:'
	assert_line 'disconnect: rhost=<192.0.2.7> end=quit'
	assert_line 'disconnect: rhost=<2001:db8::7> end=quit'
}

@test "--plaintext=always allows USER/PASS and AUTH from a remote peer" {
	POP_ARGS=(--plaintext=always)
	REMOTE_ADDR=192.0.2.7 pop CAPA AUTH 'USER alice' 'PASS open sesame' 'RETR 1' QUIT
	assert_line USER
	assert_line 'SASL PLAIN LOGIN'
	assert_line --index 12 PLAIN
	assert_line --index 13 LOGIN
	assert_line "+OK maildrop has 2 messages ($((A1 + A2)) octets)"
	assert_line 'first message for alice'
	REMOTE_ADDR=2001:db8::7 pop "AUTH PLAIN $(b64 '\0bob\0bob pw')" STAT QUIT
	assert_line --index 1 "+OK maildrop has 1 messages ($(crlf_size "$B/new/1000000003.M3P3.test") octets)"
	run mail_log
	assert_line 'login: user=<alice> rhost=<192.0.2.7> method=USER tls=no'
	assert_line --regexp '^logout: user=<alice> rhost=<192\.0\.2\.7> retr=1/[0-9]+ '
	assert_line 'login: user=<bob> rhost=<2001:db8::7> method=PLAIN tls=no'
}

@test "a login over a loopback TCP connection from systemd-socket-activate --inetd" {
	command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate missing"
	local addr port pid bind
	for addr in 127.0.0.1 ::1; do
		port=$(free_port "$addr") || skip "no $addr on this host"
		[[ $addr == *:* ]] && bind="[$addr]:$port" || bind="$addr:$port"
		# shellcheck disable=SC2046
		systemd-socket-activate -l "$bind" -a --inetd $(cwrap_env_prefix) "$MAILDIR_POP3D" \
			2>"$BATS_TEST_TMPDIR/ssa.err" 3>&- &
		pid=$!
		for _ in $(seq 100); do
			grep -q '^Listening on' "$BATS_TEST_TMPDIR/ssa.err" && break
			sleep 0.05
		done
		run popctl <<-EOF
			connect c $addr $port
			multi c CAPA
			send c USER alice
			send c PASS open sesame
			send c STAT
			send c QUIT
		EOF
		kill "$pid"
		wait "$pid" || true
		assert_line 'c| USER'
		assert_line 'c| SASL PLAIN LOGIN'
		assert_line "c< +OK maildrop has 2 messages ($((A1 + A2)) octets)"
		assert_line 'c< +OK maildir-pop3d signing off (0 messages deleted)'
		run mail_log
		assert_line "login: user=<alice> rhost=<$addr> method=USER tls=no"
	done
}

# ---- logging ---------------------------------------------------------------------------------

@test "login, auth failed and logout are logged on facility mail with the counters" {
	local top
	# TOP 2 0 sends the header and the empty line that ends it.
	sed '/^$/q' "$A/cur/1000000002.M2P2.test:2,S" >"$BATS_TEST_TMPDIR/top"
	top=$(crlf_size "$BATS_TEST_TMPDIR/top")
	pop_bg bad 'USER alice' 'PASS wrong' QUIT
	pop_bg good 'USER alice' 'PASS open sesame' 'RETR 1' 'TOP 2 0' 'DELE 2' QUIT
	wait
	answer good
	assert_line --index 2 "+OK maildrop has 2 messages ($((A1 + A2)) octets)"
	run grep -c -v '^facility=mail maildir-pop3d\[[0-9]\+\]: \|^facility=authpriv ' "$MP_TEST_SYSLOG"
	assert_output 0
	run cat "$MP_TEST_SYSLOG"
	assert_line --regexp '^facility=mail maildir-pop3d\[[0-9]+\]: info: auth failed: user=<alice> rhost=<local> reason=<Authentication failure>$'
	assert_line --regexp '^facility=mail maildir-pop3d\[[0-9]+\]: info: login: user=<alice> rhost=<local> method=USER tls=no$'
	assert_line --regexp "^facility=mail maildir-pop3d\\[[0-9]+\\]: info: logout: user=<alice> rhost=<local> retr=1/$A1 top=1/$top dele=1/$A2 left=1/$A1 end=quit\$"
}

@test "user names are logged without control characters" {
	pop_bg ctl "$(printf 'USER ev\001il\033[2Jname<x>\177')" 'PASS x' QUIT
	pop_bg nl "AUTH PLAIN $(b64 '\0mallory\r\nauth failed: user=<root>\0pw')" QUIT
	pop_bg lf 'AUTH LOGIN' "$(b64 'bad\nguy')" "$(b64 pw)" QUIT
	wait
	answer ctl
	assert_line --index 2 '-ERR [AUTH] Authentication failed.'
	run mail_log
	assert_line 'auth failed: user=<ev?il?[2Jname?x??> rhost=<local> reason=<Authentication failure>'
	assert_line 'auth failed: user=<mallory??auth failed: user=?root?> rhost=<local> reason=<Authentication failure>'
	assert_line 'auth failed: user=<bad?guy> rhost=<local> reason=<Authentication failure>'
	run grep -c '^facility=mail .*auth failed:' "$MP_TEST_SYSLOG"
	assert_output 3
}

@test "passwords never reach the log" {
	pop_bg user 'USER alice' 'PASS open sesame' QUIT
	pop_bg wrong 'USER alice' 'PASS Hunter2-wrong' QUIT
	pop_bg plain "AUTH PLAIN $(b64 '\0alice\0Plain-wrong-pw')" QUIT
	pop_bg login 'AUTH LOGIN' "$(b64 alice)" "$(b64 'Login-wrong-pw')" QUIT
	pop_bg empty 'USER nopw' "PASS" QUIT
	wait
	answer user
	assert_line --index 2 "+OK maildrop has 2 messages ($((A1 + A2)) octets)"
	local pw
	for pw in 'open sesame' Hunter2-wrong Plain-wrong-pw Login-wrong-pw \
		"$(b64 'Login-wrong-pw')" "$(b64 '\0alice\0Plain-wrong-pw')"; do
		run grep -r -F -e "$pw" "$MP_TEST_SYSLOG" "$BATS_TEST_TMPDIR"/*.err
		assert_failure
	done
	run grep -c 'auth failed:' "$MP_TEST_SYSLOG"
	assert_output 4
}
