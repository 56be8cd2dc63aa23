#!/usr/bin/env bats
# Confinement proven on live processes (issue 12, part 3), as root: real logins through
# pam_unix in a private mount namespace (tests/lib/realpam.bash) behind
# systemd-socket-activate, and --preauth sessions.  For each live process of a session /proc
# shows its ids, groups, capabilities, root directory, seccomp filter mode, no-new-privs
# and that it is not dumpable; gdb, attached in batch mode, makes each process try what it
# must not (open /etc/passwd, execve /bin/sh, socket(AF_INET), setuid(0)) and each attempt
# fails with the designed errno or kills the process with SIGSYS, as src/sandbox.c says;
# strace proves that no root process reads the client's bytes.
#
# The pre-auth child and the TLS relay come with the process split: until a session has
# such a child, the tests about it skip and say so.  In sanitizer builds a call that would
# kill fails with ENOSYS instead (src/sandbox.c); the tests expect that there.

load lib/common
load lib/realpam

EACCES=13
EPERM=1
ENOSYS=38
ENOENT=2

setup() {
	[[ $(id -u) == 0 ]] || skip "needs root: gdb and strace on other users' processes, real PAM users"
	command -v gdb >/dev/null || skip "gdb missing"
	"$MAILDIR_POP3D" --version | grep -q '^sandbox: seccomp (libseccomp' ||
		skip "this maildir-pop3d has no seccomp filter"
	"$MAILDIR_POP3D" --version | grep -q 'Landlock (kernel ABI' ||
		skip "no Landlock in this build or kernel"
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	SANITIZER=0
	if "$MAILDIR_POP3D" --version | grep -q 'sanitizer build'; then SANITIZER=1; fi
	SPAWNED= HOLD= PRE=
	D=$BATS_TEST_TMPDIR/conf
	mkdir -p "$D"
	chmod 755 "$BATS_TEST_TMPDIR" "$D"
}

teardown() {
	exec 7>&- 2>/dev/null || true
	if [[ -n $HOLD ]]; then kill "$HOLD" 2>/dev/null; wait "$HOLD" 2>/dev/null; fi
	if [[ -n $PRE ]]; then kill "$PRE" 2>/dev/null; wait "$PRE" 2>/dev/null; fi
	[ -z "${SPAWNED:-}" ] || realpam_kill "$SPAWNED"
	if [[ -n ${MP_T:-} ]]; then mp_teardown; fi
	return 0
}

# Sanitizer builds: gdb keeps the strings it passes to a called function in memory it
# malloc()s inside the process and never frees: not the server's leaks.
asan_options() {
	echo "${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
}

# ---- a real login: alice through pam_unix, behind systemd-socket-activate --------------

realpam_start() {
	realpam_available || skip "needs root and unshare: real PAM users live in a private mount namespace"
	realpam_setup "$D/rp"
	LOG=$D/syslog
	: >"$LOG"
	chmod 644 "$LOG"
	printf 'Subject: for alice\n\nalice one\n' >"$REALPAM_ALICE_HOME/Maildir/new/1000000001.M1P1.rp"
	chown -R "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$REALPAM_ALICE_HOME"
	local san=() v
	# realpam_setup's pre-auth user and chroot (the privilege-separated daemon needs them).
	for v in UBSAN_OPTIONS MAILDIR_POP3D_TLS_MODULE MAILDIR_POP3D_PREAUTH_USER \
		MAILDIR_POP3D_PREAUTH_CHROOT; do
		if [[ -n ${!v:-} ]]; then san+=("$v=${!v}"); fi
	done
	san+=("ASAN_OPTIONS=$(asan_options)")
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	local spawn_log=$D/spawn.log
	SPAWNED=$(REALPAM_LOG=$spawn_log realpam_spawn "$D/rp" systemd-socket-activate \
		-l "127.0.0.1:$PORT" -a --inetd \
		env "${san[@]}" LD_PRELOAD="$MP_SYSLOG_SHIM" MP_TEST_SYSLOG="$LOG" "$MAILDIR_POP3D" "$@")
	for _ in $(seq 200); do
		grep -q 'Listening on' "$spawn_log" 2>/dev/null && break
		sleep 0.05
	done
	SSA=$(pgrep -f "^systemd-socket-activate -l 127.0.0.1:$PORT ") ||
		fail "systemd-socket-activate did not start: $(cat "$spawn_log")"
	# The client holds the session; commands go to it through fd 7.
	mkfifo "$D/ctl"
	python3 "$MP_LIB/holdclient.py" "$PORT" "$SSA" alice "$REALPAM_ALICE_PASSWORD" ${HOLD_STLS:+stls} \
		<"$D/ctl" >"$D/hold.out" 2>&1 &
	HOLD=$!
	exec 7>"$D/ctl"
	hold_wait '^tree:' 1
}

# hold_wait REGEX N: until the client's output has N lines matching REGEX.
hold_wait() {
	for _ in $(seq 600); do
		(($(grep -c -E "$1" "$D/hold.out") >= $2)) && return 0
		sleep 0.05
	done
	fail "client: no $1 (x$2): $(cat "$D/hold.out")"
}

# The pids of the last "tree:" line: every process serving the connection.
tree_pids() {
	grep '^tree:' "$D/hold.out" | tail -n 1 | cut -d' ' -f2-
}

# uid_of PID: the real uid.
uid_of() {
	awk '/^Uid:/ { print $2 }' "/proc/$1/status"
}

# pid_with_uid UID: the serving process that runs as UID (empty if none).
pid_with_uid() {
	local p
	for p in $(tree_pids); do
		if [[ $(uid_of "$p" 2>/dev/null) == "$1" ]]; then echo "$p"; return; fi
	done
}

# The pre-auth child: a serving process that is neither root nor alice.
preauth_pid() {
	local p u
	for p in $(tree_pids); do
		u=$(uid_of "$p" 2>/dev/null) || continue
		if [[ $u != 0 && $u != "${REALPAM_ALICE_UID:-x}" ]]; then echo "$p"; return; fi
	done
}

login_alice() {
	printf 'login\n' >&7
	hold_wait '^login:' 1
	grep -q '^login: +OK' "$D/hold.out" || fail "login failed: $(cat "$D/hold.out") $(cat "$LOG")"
	hold_wait '^tree:' 2
	SESSION=$(pid_with_uid "$REALPAM_ALICE_UID")
	[[ -n $SESSION ]] || fail "no process runs as alice: $(tree_pids)"
}

# ---- a --preauth session as uid 65534 -----------------------------------------------

preauth_start() {
	mp_setup
	printf 'Subject: x\n\nbody\n' >"$MD/new/1000000001.M1P1.host"
	mp_own
	mkfifo "$MP_T/in"
	ASAN_OPTIONS=$(asan_options) "${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" \
		<"$MP_T/in" >"$MP_T/out" 2>&1 &
	PRE=$!
	exec 7>"$MP_T/in"
	printf 'STAT\r\n' >&7
	for _ in $(seq 200); do
		grep -q '^+OK 1 ' "$MP_T/out" && return 0
		sleep 0.05
	done
	fail "no STAT answer: $(cat "$MP_T/out")"
}

# ---- what a process is and what it can do ----------------------------------------------

# proc_confined PID UID ROOTDIR: ids all UID, no capabilities, root directory ROOTDIR,
# seccomp filter mode, no-new-privs, not dumpable (its /proc files belong to root).
proc_confined() {
	local pid=$1 uid=$2 root=$3 st
	st=$(cat "/proc/$pid/status")
	grep -qE "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" <<<"$st" || fail "pid $pid ids: $(grep ^Uid <<<"$st")"
	local gid
	gid=$(awk '/^Gid:/ { print $2 }' <<<"$st")
	[[ $gid != 0 ]] || fail "pid $pid runs with gid 0"
	grep -qE "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" <<<"$st" || fail "pid $pid gids: $(grep ^Gid <<<"$st")"
	if grep -qE '^Groups:.*\b0\b' <<<"$st"; then fail "pid $pid has group 0: $(grep ^Groups <<<"$st")"; fi
	local c
	for c in CapInh CapPrm CapEff CapAmb; do
		grep -qE "^$c:\s+0000000000000000$" <<<"$st" || fail "pid $pid $c: $(grep "^$c" <<<"$st")"
	done
	grep -qE '^Seccomp:\s+2$' <<<"$st" || fail "pid $pid not in seccomp filter mode: $(grep ^Seccomp <<<"$st")"
	grep -qE '^NoNewPrivs:\s+1$' <<<"$st" || fail "pid $pid without no-new-privs"
	[[ $(readlink "/proc/$pid/root") == "$root" ]] ||
		fail "pid $pid root directory: $(readlink "/proc/$pid/root"), want $root"
	[[ $(stat -c %u "/proc/$pid/status") == 0 ]] || fail "pid $pid is dumpable"
	# Shown in the log, not asserted: with no-new-privs and no exec it cannot matter.
	echo "# pid $pid $(grep ^CapBnd <<<"$st")" >&3
}

# gdb_try PID EXPR: EXPR called inside PID by gdb; prints "returned R errno E" or
# "killed by SIGSYS".
gdb_try() {
	local out r e
	out=$(timeout 120 gdb -q -batch -nx -p "$1" -ex 'set confirm off' \
		-ex "print (long)($2)" -ex 'print *(int *)__errno_location()' -ex detach 2>&1)
	if grep -q 'terminated with signal SIGSYS' <<<"$out"; then
		echo "killed by SIGSYS"
		return
	fi
	r=$(sed -n 's/^\$1 = //p' <<<"$out")
	e=$(sed -n 's/^\$2 = //p' <<<"$out")
	if [[ -z $r ]]; then
		echo "gdb failed: $out"
		return
	fi
	echo "returned $r errno $e"
}

# expect_refused PID EXPR ERRNO
expect_refused() {
	run gdb_try "$1" "$2"
	assert_output "returned -1 errno $3"
}

# expect_killed PID EXPR: SIGSYS, and the process is gone (ENOSYS in sanitizer builds).
expect_killed() {
	run gdb_try "$1" "$2"
	if ((SANITIZER)); then
		assert_output "returned -1 errno $ENOSYS"
		return
	fi
	assert_output "killed by SIGSYS"
	for _ in $(seq 100); do
		[[ -e /proc/$1/status ]] || return 0
		grep -q '^State:\s*Z' "/proc/$1/status" && return 0
		sleep 0.05
	done
	fail "pid $1 still running after SIGSYS"
}

# ---- --preauth sessions ------------------------------------------------------------------

@test "a --preauth session in /proc: its own ids, no capabilities, seccomp filter, no-new-privs, not dumpable" {
	preauth_start
	proc_confined "$PRE" 65534 /
	[[ $(readlink "/proc/$PRE/cwd") == "$MD" ]] || fail "cwd: $(readlink "/proc/$PRE/cwd")"
}

@test "a --preauth session opens files in its Maildir but not /etc/passwd (EACCES), and socket() fails (EPERM)" {
	preauth_start
	# The control: the same call on an allowed file works, so a refusal below is the sandbox.
	run gdb_try "$PRE" "open(\"$MD/new/1000000001.M1P1.host\", 0)"
	assert_output --regexp '^returned [0-9]+ errno'
	expect_refused "$PRE" 'open("/etc/passwd", 0)' $EACCES
	expect_refused "$PRE" 'open("/etc/passwd", 0101, 0600)' $EACCES
	expect_refused "$PRE" 'socket(2, 1, 0)' $EPERM
	# Still serving after the refusals.
	printf 'NOOP\r\nQUIT\r\n' >&7
	exec 7>&-
	wait "$PRE"
	PRE=
	grep -q '^+OK maildir-pop3d signing off' "$MP_T/out" || fail "session did not go on: $(cat "$MP_T/out")"
}

@test "a --preauth session that tries execve(/bin/sh) is killed by SIGSYS" {
	preauth_start
	expect_killed "$PRE" 'execve("/bin/sh", 0, 0)'
}

@test "a --preauth session that tries setuid(0) is killed by SIGSYS" {
	preauth_start
	expect_killed "$PRE" 'setuid(0)'
}

# ---- logged-in sessions (pam_unix) -------------------------------------------------------

@test "alice's logged-in session in /proc: her ids and groups, no capabilities, seccomp filter, no-new-privs, not dumpable" {
	realpam_start
	login_alice
	proc_confined "$SESSION" "$REALPAM_ALICE_UID" /
	run awk '/^Groups:/ { $1 = ""; print }' "/proc/$SESSION/status"
	assert_output " $REALPAM_ALICE_GID $REALPAM_MPGROUP_GID"
	[[ $(readlink "/proc/$SESSION/cwd") == "$REALPAM_ALICE_HOME/Maildir" ]] ||
		fail "cwd: $(readlink "/proc/$SESSION/cwd")"
}

@test "alice's logged-in session opens her mail but not /etc/passwd or bob's home (EACCES); socket() fails (EPERM)" {
	realpam_start
	login_alice
	run gdb_try "$SESSION" "open(\"$REALPAM_ALICE_HOME/Maildir/new/1000000001.M1P1.rp\", 0)"
	assert_output --regexp '^returned [0-9]+ errno'
	expect_refused "$SESSION" 'open("/etc/passwd", 0)' $EACCES
	# Her own home, outside the Maildir, is out of reach too.
	expect_refused "$SESSION" "open(\"$REALPAM_ALICE_HOME/.profile-new\", 0101, 0600)" $EACCES
	expect_refused "$SESSION" 'socket(2, 1, 0)' $EPERM
	expect_refused "$SESSION" 'socket(10, 2, 0)' $EPERM
	printf 'send NOOP\n' >&7
	hold_wait '^reply:' 1
	grep -q '^reply: +OK' "$D/hold.out" || fail "session did not go on: $(cat "$D/hold.out")"
}

@test "alice's logged-in session that tries execve(/bin/sh) is killed by SIGSYS" {
	realpam_start
	login_alice
	expect_killed "$SESSION" 'execve("/bin/sh", 0, 0)'
}

@test "alice's logged-in session that tries setuid(0) is killed by SIGSYS" {
	realpam_start
	login_alice
	expect_killed "$SESSION" 'setuid(0)'
}

# ---- the pre-auth child and the root process ----------------------------------------------

need_preauth_child() {
	PREAUTH=$(preauth_pid)
	[[ -n $PREAUTH ]] ||
		skip "no unprivileged pre-auth child before login (the process split has not landed)"
}

@test "the pre-auth child in /proc: unprivileged, no groups, no capabilities, chrooted, seccomp filter, no-new-privs" {
	realpam_start
	need_preauth_child
	local uid
	uid=$(uid_of "$PREAUTH")
	proc_confined "$PREAUTH" "$uid" "$(readlink "/proc/$PREAUTH/root")"
	[[ $(readlink "/proc/$PREAUTH/root") != / ]] || fail "the pre-auth child is not chrooted"
	run awk '/^Groups:/ { $1 = ""; print }' "/proc/$PREAUTH/status"
	assert_output ""
}

@test "the pre-auth child cannot open (EACCES) or create sockets (EPERM)" {
	realpam_start
	need_preauth_child
	if ((SANITIZER)); then
		# Sanitizer builds let open through seccomp (LeakSanitizer reads /proc): the
		# empty chroot has no /etc/passwd, which is what stops it there.
		expect_refused "$PREAUTH" 'open("/etc/passwd", 0)' $ENOENT
	else
		expect_refused "$PREAUTH" 'open("/etc/passwd", 0)' $EACCES
	fi
	expect_refused "$PREAUTH" 'socket(2, 1, 0)' $EPERM
}

@test "the pre-auth child that tries execve(/bin/sh) is killed by SIGSYS" {
	realpam_start
	need_preauth_child
	expect_killed "$PREAUTH" 'execve("/bin/sh", 0, 0)'
}

@test "the pre-auth child that tries setuid(0) is killed by SIGSYS" {
	realpam_start
	need_preauth_child
	expect_killed "$PREAUTH" 'setuid(0)'
}

@test "no root process reads the client's bytes: a marked command shows up only in the pre-auth child's reads" {
	command -v strace >/dev/null || skip "strace missing"
	realpam_start
	need_preauth_child
	local p pids=() roots=() st
	for p in $(tree_pids); do
		pids+=(-p "$p")
		[[ $(uid_of "$p") == 0 ]] && roots+=("$p")
	done
	((${#roots[@]} > 0)) || fail "no root process serves the connection: $(tree_pids)"
	strace -f -qq -s 256 -e trace=read,recvfrom,recvmsg,readv -o "$D/strace" "${pids[@]}" &
	st=$!
	for _ in $(seq 100); do
		grep -q "^TracerPid:\s*$st$" "/proc/${roots[0]}/status" && break
		sleep 0.05
	done
	printf 'send NOOP XYZZY-MARK\n' >&7
	hold_wait '^reply:' 1
	printf 'send CAPA\n' >&7
	hold_wait '^reply:' 2
	kill "$st"
	wait "$st" || true
	grep -q 'XYZZY-MARK' "$D/strace" || fail "the marker was read by no process: $(head -20 "$D/strace")"
	for p in "${roots[@]}"; do
		if grep -E "^$p +" "$D/strace" | grep -q 'XYZZY-MARK'; then
			fail "root process $p read the client's bytes: $(grep 'XYZZY-MARK' "$D/strace")"
		fi
	done
	grep -E "^$PREAUTH +" "$D/strace" | grep -q 'XYZZY-MARK' ||
		fail "the pre-auth child $PREAUTH did not read the marker: $(grep 'XYZZY-MARK' "$D/strace")"
}

@test "with STLS, every process of alice's logged-in session is confined, the TLS relay included" {
	command -v openssl >/dev/null || skip "openssl missing"
	"$MAILDIR_POP3D" --version | grep -q '^TLS: OpenSSL' || skip "built without OpenSSL"
	local certs=$D/certs
	mkdir -p "$certs"
	openssl req -x509 -nodes -days 2 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-subj /CN=localhost -keyout "$certs/k.pem" -out "$certs/c.pem" 2>/dev/null
	chmod 755 "$certs"
	chmod 644 "$certs"/*.pem
	HOLD_STLS=1 realpam_start --tls-cert="$certs/c.pem" --tls-key="$certs/k.pem"
	login_alice
	local p n=0 uid
	for p in $(tree_pids); do
		uid=$(uid_of "$p") || continue
		[[ $uid != 0 ]] || fail "a root process still serves the logged-in session: pid $p"
		if [[ $uid == "$REALPAM_ALICE_UID" ]]; then
			proc_confined "$p" "$uid" /
		else
			# The TLS relay: the pre-auth child, still chrooted.
			proc_confined "$p" "$uid" "$(readlink "/proc/$p/root")"
			[[ $(readlink "/proc/$p/root") != / ]] || fail "the TLS relay $p is not chrooted"
		fi
		n=$((n + 1))
	done
	((n >= 1)) || fail "no process serves the session"
	echo "# processes serving the TLS session: $n" >&3
	printf 'send NOOP\n' >&7
	hold_wait '^reply:' 1
	grep -q '^reply: +OK' "$D/hold.out" || fail "session over TLS did not answer: $(cat "$D/hold.out")"
}
