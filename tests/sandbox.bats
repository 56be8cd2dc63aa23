#!/usr/bin/env bats
# Confinement of a --preauth session (src/sandbox.c), as any user: the live process is in
# seccomp filter mode with no-new-privs; every Maildir operation still works inside the
# Landlock rule (flag renames new/ to cur/, DELE, the size cache, --lock's file,
# maildirsize); where the kernel lacks Landlock or seccomp (simulated by
# tests/lib/kernel-without) a session serves and logs it once, and --sandbox=require
# refuses before the greeting with -ERR [SYS/PERM] and status 78.  What a confined process
# may NOT do is proven as root on live processes in tests/confinement.bats.

load lib/common

setup() {
	mp_setup
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	SYSLOG=$MP_T/syslog
	WITHOUT=${MP_BUILDDIR:-.}/tests/lib/kernel-without
}

teardown() {
	mp_teardown
}

# logged PREFIX... -- ARGS...: one --preauth session, fed $MP_INPUT, with PREFIX before the
# binary (e.g. the kernel-without helper) and ARGS after -p -m; the log in $SYSLOG.
logged() {
	local pre=()
	while [[ $1 != -- ]]; do
		pre+=("$1")
		shift
	done
	shift
	mp_own
	: >"$SYSLOG"
	chmod 666 "$SYSLOG"
	status=0
	printf "$MP_INPUT" | env LD_PRELOAD="$MP_SYSLOG_SHIM" MP_TEST_SYSLOG="$SYSLOG" \
		"${MP_AS[@]}" "${pre[@]}" "$MAILDIR_POP3D" -p -m "$MD" "$@" \
		>"$MP_T/out" 2>"$MP_T/err" || status=$?
	output=$(cat "$MP_T/out")
	mapfile -t lines <"$MP_T/out"
}

need_without() {
	[[ -x $WITHOUT ]] || skip "tests/lib/kernel-without not built (configured without libseccomp)"
	sandbox_built seccomp || skip "this maildir-pop3d has no seccomp filter"
	sandbox_built Landlock || skip "this maildir-pop3d has no Landlock rules"
}

# sandbox_built WORD: the --version line says the layer is built in.
sandbox_built() {
	"$MAILDIR_POP3D" --version | grep '^sandbox: ' | grep -q -v -i "$1 not built in"
}

@test "--version names the sandbox layers this build has" {
	run "$MAILDIR_POP3D" --version
	assert_success
	assert_line --regexp '^sandbox: (seccomp \(libseccomp [0-9.]+\)|seccomp not built in), (Landlock \(kernel ABI [0-9]+\)|Landlock \(not in this kernel\)|Landlock not built in)'
}

@test "--sandbox accepts only require: anything else is a usage error (64) naming the option" {
	run "$MAILDIR_POP3D" --sandbox=maybe
	assert_equal "$status" 64
	assert_output --partial -- "--sandbox: must be require: maybe"
}

@test "--help documents --sandbox=require" {
	run "$MAILDIR_POP3D" --help
	assert_success
	assert_output --partial -- "--sandbox=require"
}

@test "a live --preauth session is in seccomp filter mode with no-new-privs" {
	sandbox_built seccomp || skip "this maildir-pop3d has no seccomp filter"
	mp_own
	mkfifo "$MP_T/in"
	"${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" <"$MP_T/in" >"$MP_T/out" 2>&1 &
	local pid=$!
	exec 7>"$MP_T/in"
	printf 'STAT\r\n' >&7
	for _ in $(seq 100); do
		grep -q '^+OK 0 0' "$MP_T/out" && break
		sleep 0.05
	done
	local st
	st=$(cat "/proc/$pid/status")
	printf 'QUIT\r\n' >&7
	exec 7>&-
	wait "$pid"
	grep -q '^+OK 0 0' "$MP_T/out" || fail "no STAT answer: $(cat "$MP_T/out")"
	grep -q '^Name:.*maildir-pop3d' <<<"$st" || fail "not the session: $st"
	grep -qx $'Seccomp:\t2' <<<"$st" || fail "not in seccomp filter mode: $(grep Seccomp <<<"$st")"
	grep -qx $'NoNewPrivs:\t1' <<<"$st" || fail "no-new-privs not set"
}

@test "every Maildir operation works inside the sandbox: flag rename, DELE, cache, lock file, maildirsize" {
	deliver_text 1000000001.M1P1.host 'Subject: one\n\nfirst\n'
	deliver_text 1000000002.M2P2.host 'Subject: two\n\nsecond\n'
	printf '1000 10S\n40 2\n' >"$MD/maildirsize"
	MP_INPUT='RETR 1\r\nDELE 2\r\nQUIT\r\n'
	logged -- --lock
	assert_equal "$status" 0
	assert_line --index 0 "+OK maildir-pop3d ready."$'\r'
	assert_line --partial "signing off (1 messages deleted)"
	run md_files
	assert_output "cur/1000000001.M1P1.host:2,S"
	[[ -f $MD/maildir-pop3d.cache ]] || fail "size cache not written: $(ls -A "$MD")"
	[[ -f $MD/maildir-pop3d.lock ]] || fail "lock file not created: $(ls -A "$MD")"
	run tail -n 1 "$MD/maildirsize"
	assert_output --regexp '^-[0-9]+ -1$'
	# Confined, and nothing failed inside: no sandbox line but the one a build
	# without libseccomp writes.
	run grep 'sandbox:' "$SYSLOG"
	refute_output --partial "landlock"
	if sandbox_built seccomp; then
		assert_output ""
	fi
}

@test "without Landlock in the kernel a session still serves and logs it once" {
	need_without
	deliver_text 1000000001.M1P1.host 'Subject: one\n\nfirst\n'
	MP_INPUT='STAT\r\nRETR 1\r\nQUIT\r\n'
	logged "$WITHOUT" landlock --
	assert_equal "$status" 0
	assert_line --partial "+OK 1 "
	run grep -c 'warning: sandbox: landlock unavailable (kernel without Landlock' "$SYSLOG"
	assert_output 1
	run grep -c 'sandbox:' "$SYSLOG"
	assert_output 1
}

@test "without seccomp filters in the kernel a session still serves and logs it once" {
	need_without
	MP_INPUT='STAT\r\nQUIT\r\n'
	logged "$WITHOUT" seccomp --
	assert_equal "$status" 0
	assert_line "+OK 0 0"$'\r'
	run grep -c 'warning: sandbox: seccomp unavailable' "$SYSLOG"
	assert_output 1
	run grep -c 'sandbox:' "$SYSLOG"
	assert_output 1
}

@test "--sandbox=require refuses before the greeting without Landlock: -ERR [SYS/PERM], status 78" {
	need_without
	MP_INPUT='STAT\r\nQUIT\r\n'
	logged "$WITHOUT" landlock -- --sandbox=require
	assert_equal "$status" 78
	assert_output "-ERR [SYS/PERM] This server cannot confine its sessions."$'\r'
	grep -q 'sandbox: landlock unavailable (kernel without Landlock.*--sandbox=require refuses to serve' "$SYSLOG" ||
		fail "no log line: $(cat "$SYSLOG")"
}

@test "--sandbox=require refuses before the greeting without seccomp: -ERR [SYS/PERM], status 78" {
	need_without
	MP_INPUT='STAT\r\nQUIT\r\n'
	logged "$WITHOUT" seccomp -- --sandbox=require
	assert_equal "$status" 78
	assert_output "-ERR [SYS/PERM] This server cannot confine its sessions."$'\r'
	grep -q 'sandbox: seccomp unavailable.*--sandbox=require refuses to serve' "$SYSLOG" ||
		fail "no log line: $(cat "$SYSLOG")"
}

@test "--sandbox=require serves where the kernel has both layers" {
	sandbox_built seccomp || skip "this maildir-pop3d has no seccomp filter"
	"$MAILDIR_POP3D" --version | grep -q 'Landlock (kernel ABI' || skip "no Landlock in this build or kernel"
	MP_INPUT='STAT\r\nQUIT\r\n'
	logged -- --sandbox=require
	assert_equal "$status" 0
	assert_line "+OK 0 0"$'\r'
}
