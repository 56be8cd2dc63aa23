#!/usr/bin/env bats
# Fault injection with real processes: clients that vanish after any command or in the middle
# of a 5 MiB RETR, SIGKILL during QUIT's deletions, message files removed, renamed, truncated
# or made unreadable under a session, a full or read-only file system, --lock hand-over,
# concurrent sessions in every interleaving, and the idle timeout.  Nothing may be lost, and
# nothing may be deleted that no QUIT asked for.
#
# Sessions are --preauth over pipes (lib/common.bash: as root they run as uid 65534); the TCP
# ones go through systemd-socket-activate --inetd, started as that same uid.  lib/popctl.py
# interleaves sessions and shell steps; lib/faultctl.py holds the drivers and checkers that
# need timing or bookkeeping (its docstring lists them).
# As root, the big Maildirs live on a tmpfs in a private mount namespace (faster, and the host
# is left alone); the full file system and the read-only bind mount need root and are skipped
# otherwise.  Run time: about 45 s as root on 2 cores (90 s with the ASan build).

load lib/common

FAULTCTL=${BATS_TEST_DIRNAME}/lib/faultctl.py
READONLY_QUIT='-ERR [SYS/TEMP] Some deleted messages not removed.'

setup() {
	mp_setup
	LAUNCHER=
}

teardown() {
	if [[ -n ${LAUNCHER:-} ]]; then
		kill "$LAUNCHER" 2>/dev/null || true
		wait "$LAUNCHER" 2>/dev/null || true
	fi
	# chmod'ed directories would stop rm -rf when not root.
	[[ -n ${MP_T:-} && -d $MP_T ]] && chmod -R u+rwX "$MP_T" 2>/dev/null
	mp_teardown
}

snap() {
	python3 "$FAULTCTL" snap "$MD"
}

need_root() {
	[[ $(id -u) == 0 ]] || skip "needs root: $*"
}

# in_tmpfs DIR CMD...: runs CMD; as root with DIR on a fresh tmpfs in a private mount
# namespace (gone with CMD), otherwise with DIR a plain directory.
in_tmpfs() {
	local dir=$1
	shift
	mkdir -p "$dir"
	chmod 755 "$dir"
	if [[ $(id -u) == 0 ]]; then
		unshare -m --propagation private -- bash -c \
			'mount -t tmpfs -o mode=755,size=256m mp-faults "$1" && shift && exec "$@"' _ "$dir" "$@"
	else
		"$@"
	fi
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_launcher ARG...: systemd-socket-activate --inetd on a free loopback port, running
# maildir-pop3d ARG... as the session user, logging through the syslog shim into
# $MP_T/syslog.  Sets PORT and LAUNCHER (its pid); teardown stops it, and its children
# get SIGTERM when it dies.
start_launcher() {
	local i v env=(-E LD_PRELOAD="$MP_SYSLOG_SHIM" -E MP_TEST_SYSLOG="$MP_T/syslog")
	# The launcher gives its children an empty environment: carry the sanitizers' settings
	# (scripts/check's ASan run sends their reports to files).
	for v in ASAN_OPTIONS UBSAN_OPTIONS; do
		[[ -z ${!v:-} ]] || env+=(-E "$v=${!v}")
	done
	: >"$MP_T/syslog"
	[[ $(id -u) == 0 ]] && chown "$MP_RUN_UID" "$MP_T/syslog"
	PORT=$(free_port)
	"${MP_AS[@]}" systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" "${env[@]}" \
		"$MAILDIR_POP3D" "$@" </dev/null >/dev/null 2>"$MP_T/launcher.log" 3>&- &
	LAUNCHER=$!
	for ((i = 0; i < 200; i++)); do
		grep -q 'Listening on' "$MP_T/launcher.log" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "systemd-socket-activate did not start: $(cat "$MP_T/launcher.log")"
}

# popctl with trailing blanks dropped ("A| " for an empty body line), so that the expected
# transcripts below have none.
popctl_trim() {
	popctl | sed 's/[[:space:]]*$//'
}

# How popctl must send a command: multi-line answers for LIST, UIDL, RETR, TOP without an
# argument count of one.
popctl_step() {
	local s=$1 c=$2
	case $c in
	LIST | UIDL | RETR\ * | TOP\ *) printf 'multi %s %s\n' "$s" "$c" ;;
	*) printf 'send %s %s\n' "$s" "$c" ;;
	esac
}

# ---- clients that vanish ----

@test "a client that drops after any command deletes, renames and rewrites nothing, and frees the lock" {
	local cmds=(STAT LIST UIDL 'RETR 1' 'TOP 2 1' 'DELE 1' 'LIST 1' 'DELE 3' 'RETR 4'
		RSET 'DELE 2' 'DELE 4' 'RETR 5' NOOP 'UIDL 5' LAST 'DELE 6')
	# A cheap snapshot (no python per step): entries of the Maildir and every file's digest.
	local sum="cd $MD && ls -A | grep -v -x -e maildir-pop3d.cache -e maildir-pop3d.lock;"
	sum+=" find new cur tmp -type f | sort | xargs -r sha256sum"
	local k c
	python3 "$FAULTCTL" mkmsgs "$MD" 6
	mp_own
	sh -c "$sum" >"$MP_T/sum.before"
	# One popctl run: for k = 0..N, a session that sends the first k commands (reading each
	# answer) and hangs up, then a --lock session that must get in, then a snapshot.
	for ((k = 0; k <= ${#cmds[@]}; k++)); do
		echo "open A$k --lock"
		for c in "${cmds[@]:0:k}"; do popctl_step "A$k" "$c"; done
		echo "eof A$k"
		echo "open B$k --lock"
		echo "send B$k QUIT"
		echo "sh ($sum) >$MP_T/sum.$k"
	done >"$MP_T/script"
	run popctl_trim <"$MP_T/script"
	for ((k = 0; k <= ${#cmds[@]}; k++)); do
		# 2: the client left without QUIT.
		assert_line "A$k! exit 2"
		assert_line "B$k< +OK maildir-pop3d ready."
		assert_line "B$k< +OK maildir-pop3d signing off (0 messages deleted)"
		cmp -s "$MP_T/sum.before" "$MP_T/sum.$k" ||
			fail "Maildir changed by a drop after ${cmds[*]:0:k}: $(diff "$MP_T/sum.before" "$MP_T/sum.$k")"
	done
}

@test "a drop with every command pipelined, or with an unterminated QUIT, applies nothing" {
	local all='STAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nDELE 2\r\nRETR 3\r\nTOP 4 2\r\nDELE 5\r\n'
	local tail before
	python3 "$FAULTCTL" mkmsgs "$MD" 6
	mp_own
	before=$(snap)
	MP_ARGS=(--lock)
	for tail in '' 'QUIT' 'QUIT\r' 'QU' 'QUIT ' 'DELE 6'; do
		send_raw "$all$tail"
		# 2: the client left without QUIT.
		[ "$status" -eq 2 ]
		assert_line --partial '+OK message 5 deleted'
		refute_output --partial 'signing off'
		[[ $(snap) == "$before" ]] || fail "Maildir changed after input ending in '$tail'"
		send_lines QUIT
		assert_line --index 0 $'+OK maildir-pop3d ready.\r'
	done
}

@test "a client that closes or resets in the middle of a 5 MiB RETR deletes nothing and its server exits" {
	local before mode
	python3 "$FAULTCTL" mkmsgs "$MD" 3 --big $((5 * 1024 * 1024))
	mp_own
	before=$(snap)
	start_launcher -p -m "$MD"
	for mode in close reset; do
		run python3 "$FAULTCTL" tcpretr 127.0.0.1 "$PORT" "$LAUNCHER" --mode "$mode" --read 300000
		assert_success
		[[ $(snap) == "$before" ]] || fail "Maildir changed after a $mode"
	done
	# Both sessions ended as dropped connections, with DELE 2 not applied.
	run grep 'logout: ' "$MP_T/syslog"
	[ "${#lines[@]}" -eq 2 ]
	[ "$(grep -c ' dele=1/' <<<"$output")" -eq 2 ]
	refute_line --partial 'end=quit'
	# The next client is served the whole message, byte-exact.
	run python3 "$FAULTCTL" session "$MD" --tcp 127.0.0.1 "$PORT"
	assert_success
}

@test "a client that stops reading in the middle of a 5 MiB RETR is dropped after the timeout, deleting nothing" {
	local before
	python3 "$FAULTCTL" mkmsgs "$MD" 3 --big $((5 * 1024 * 1024))
	mp_own
	before=$(snap)
	start_launcher -p -m "$MD" -t 2
	run python3 "$FAULTCTL" tcpretr 127.0.0.1 "$PORT" "$LAUNCHER" --mode stall --read 100000
	assert_success
	[[ $(snap) == "$before" ]]
	run grep 'logout: ' "$MP_T/syslog"
	assert_output --partial 'dele=1/'
	refute_output --partial 'end=quit'
}

# ---- SIGKILL during QUIT ----

# killquit ARG...: faultctl.py killquit on a Maildir of its own (a tmpfs as root); strace
# stops the session right after one of QUIT's deletions, where it is killed.
killquit() {
	command -v strace >/dev/null || skip "strace missing (it stops the session mid-QUIT)"
	local fs=$MP_T/fs
	export MP_SESSION_CMD="${MP_AS[*]} $MAILDIR_POP3D -p -m $fs/Maildir"
	run in_tmpfs "$fs" python3 "$FAULTCTL" killquit "$fs/Maildir" "$@"
	echo "$output"
	assert_success
	assert_output --partial 'killed when stopped after unlinkat'
}

@test "SIGKILL at the start of QUIT's 20,000 deletions leaves only whole, unrenamed originals" {
	killquit --make 20000 --mark all --at 0
}

@test "SIGKILL late in QUIT's 20,000 deletions leaves only whole, unrenamed originals" {
	killquit --make 20000 --mark all --at 0.9
}

@test "SIGKILL during QUIT with odd messages deleted and even ones retrieved: no even one is lost" {
	killquit --make 20000 --mark odd --retr even --at 0.5
}

# ---- message files changed under a session ----

deliver_five() {
	deliver_text 1000000001.M1P1.host 'Subject: one\n\nfirst\n'
	deliver_text 1000000002.M2P2.host 'Subject: two\n\nsecond\n'
	deliver_text 1000000003.M3P3.host 'Subject: three\n\nthird body\n'
	deliver_text 1000000004.M4P4.host 'Subject: four\n\nfourth\n'
	deliver_text 1000000005.M5P5.host 'Subject: five\n\nfifth\n'
}

@test "a message removed by another agent mid-session: RETR and TOP say -ERR, the rest is served, QUIT counts its DELE" {
	deliver_five
	run popctl_trim <<-EOF
	open A
	send A STAT
	sh rm $MD/new/1000000002.M2P2.host
	multi A RETR 2
	multi A TOP 2 0
	multi A RETR 3
	send A DELE 2
	send A QUIT
	EOF
	assert_output - <<-'EOF'
	A< +OK maildir-pop3d ready.
	A< +OK 5 126
	A< -ERR Message 2 is gone (removed by another session).
	A< -ERR Message 2 is gone (removed by another session).
	A< +OK 30 octets
	A| Subject: three
	A|
	A| third body
	A| .
	A< +OK message 2 deleted
	A< +OK maildir-pop3d signing off (1 messages deleted)
	EOF
	run md_files
	assert_output - <<-'EOF'
	cur/1000000003.M3P3.host:2,S
	new/1000000001.M1P1.host
	new/1000000004.M4P4.host
	new/1000000005.M5P5.host
	EOF
}

@test "a message moved to cur/ with flags mid-session (as an IMAP server does) is still served byte-exact, flagged and deleted" {
	deliver_five
	run popctl_trim <<-EOF
	open A
	send A LIST 1
	sh mv $MD/new/1000000001.M1P1.host $MD/cur/1000000001.M1P1.host:2,F
	sh mv $MD/new/1000000004.M4P4.host $MD/cur/1000000004.M4P4.host:2,S
	multi A RETR 1
	send A UIDL 1
	send A DELE 4
	send A QUIT
	EOF
	assert_output - <<-'EOF'
	A< +OK maildir-pop3d ready.
	A< +OK 1 23
	A< +OK 23 octets
	A| Subject: one
	A|
	A| first
	A| .
	A< +OK 1 1000000001.M1P1.host
	A< +OK message 4 deleted
	A< +OK maildir-pop3d signing off (1 messages deleted)
	EOF
	run md_files
	assert_output - <<-'EOF'
	cur/1000000001.M1P1.host:2,FS
	new/1000000002.M2P2.host
	new/1000000003.M3P3.host
	new/1000000005.M5P5.host
	EOF
	[ "$(cat "$MD/cur/1000000001.M1P1.host:2,FS")" = "$(printf 'Subject: one\n\nfirst')" ]
}

@test "a message truncated mid-session is sent as it is now and the session goes on" {
	deliver_five
	run popctl_trim <<-EOF
	open A
	send A LIST 3
	sh truncate -s 8 $MD/new/1000000003.M3P3.host
	multi A RETR 3
	send A NOOP
	multi A RETR 4
	send A QUIT
	EOF
	# The body is what the file holds now.  The +OK line may give the size listed at login
	# (30) or the size sent now (10): RFC 1939 leaves its text free, LIST stays fixed.
	[[ ${lines[2]} =~ ^A\<\ \+OK\ (30|10)\ octets$ ]] || fail "RETR 3 answered: ${lines[2]}"
	lines[2]='A< +OK N octets'
	printf '%s\n' "${lines[@]}" >"$MP_T/got"
	run cat "$MP_T/got"
	assert_output - <<-'EOF'
	A< +OK maildir-pop3d ready.
	A< +OK 3 30
	A< +OK N octets
	A| Subject:
	A| .
	A< +OK
	A< +OK 25 octets
	A| Subject: four
	A|
	A| fourth
	A| .
	A< +OK maildir-pop3d signing off (0 messages deleted)
	EOF
	[ "$(cat "$MD/cur/1000000003.M3P3.host:2,S")" = 'Subject:' ]
	[ -f "$MD/cur/1000000004.M4P4.host:2,S" ]
}

@test "a message made unreadable or replaced by a FIFO mid-session: -ERR [SYS/TEMP], no hang, the rest served, QUIT works" {
	deliver_five
	run popctl_trim <<-EOF
	open A
	sh chmod 000 $MD/new/1000000004.M4P4.host
	sh rm $MD/new/1000000005.M5P5.host && mkfifo -m 644 $MD/new/1000000005.M5P5.host
	multi A RETR 4
	multi A TOP 4 0
	multi A RETR 5
	multi A RETR 1
	send A DELE 5
	send A QUIT
	EOF
	assert_output - <<-'EOF'
	A< +OK maildir-pop3d ready.
	A< -ERR [SYS/TEMP] Message 4 cannot be read.
	A< -ERR [SYS/TEMP] Message 4 cannot be read.
	A< -ERR [SYS/TEMP] Message 5 cannot be read.
	A< +OK 23 octets
	A| Subject: one
	A|
	A| first
	A| .
	A< +OK message 5 deleted
	A< +OK maildir-pop3d signing off (1 messages deleted)
	EOF
	run md_files
	assert_output - <<-'EOF'
	cur/1000000001.M1P1.host:2,S
	new/1000000002.M2P2.host
	new/1000000003.M3P3.host
	new/1000000004.M4P4.host
	EOF
	[ "$(stat -c %a "$MD/new/1000000004.M4P4.host")" = 0 ]
}

# ---- full and read-only file systems ----

@test "on a full file system the size cache is not written, every answer is still exact, and QUIT deletes" {
	need_root "mounts a 1 MiB tmpfs in a private mount namespace"
	local fs=$MP_T/fs
	mkdir -p "$fs"
	export FS=$fs FAULTCTL
	export MP_SESSION_CMD="${MP_AS[*]} $MAILDIR_POP3D -p -m $fs/Maildir"
	run unshare -m --propagation private -- bash -euc '
		mount -t tmpfs -o size=1m,mode=755 mp-full "$FS"
		python3 "$FAULTCTL" mkmsgs "$FS/Maildir" 8
		chown -R 65534:65534 "$FS/Maildir"
		dd if=/dev/zero of="$FS/fill" bs=64k 2>/dev/null || true
		dd if=/dev/zero of="$FS/fill2" bs=512 2>/dev/null || true
		echo "free: $(df --output=avail -B1 "$FS" | tail -1 | tr -d " ")"
		python3 "$FAULTCTL" session "$FS/Maildir" --dele 1,3,8 --no-cache
		# The deletions freed room: fill it again.
		dd if=/dev/zero of="$FS/fill3" bs=512 2>/dev/null || true
		python3 "$FAULTCTL" session "$FS/Maildir" --dele 2 --no-cache
		python3 "$FAULTCTL" snap "$FS/Maildir"
	'
	echo "$output"
	assert_success
	assert_line 'free: 0'
	assert_line 'session: 8 messages listed and retrieved, 3 marked deleted'
	assert_line 'session: 5 messages listed and retrieved, 1 marked deleted'
	# Four left, all retrieved and so flagged seen.
	[ "$(grep -c '^cur/.*:2,S ' <<<"$output")" -eq 4 ]
	refute_line --regexp '^new/'
}

@test "a read-only bind mount: exact answers, and QUIT says -ERR [SYS/TEMP] with nothing removed" {
	need_root "bind-mounts the Maildir read-only in a private mount namespace"
	local before
	python3 "$FAULTCTL" mkmsgs "$MD" 5
	mp_own
	before=$(snap)
	export FAULTCTL READONLY_QUIT MD
	run unshare -m --propagation private -- bash -euc '
		mount --bind "$MD" "$MD"
		mount -o remount,bind,ro "$MD"
		python3 "$FAULTCTL" session "$MD" --dele 1,4 --undeletable 1,4 --quit "$READONLY_QUIT" --no-cache
	'
	echo "$output"
	assert_success
	[[ $(snap) == "$before" ]]
}

@test "a Maildir whose own directory is not writable: exact answers, no size cache, and QUIT deletes" {
	python3 "$FAULTCTL" mkmsgs "$MD" 5
	mp_own
	chmod a-w "$MD"
	run python3 "$FAULTCTL" session "$MD" --dele 2,5 --no-cache
	echo "$output"
	assert_success
}

@test "a message that cannot be unlinked: QUIT says -ERR [SYS/TEMP] and still removes the others" {
	python3 "$FAULTCTL" mkmsgs "$MD" 5
	mv "$MD/new/$(cd "$MD/new" && ls | sort -n | sed -n 2p)" "$MD/cur/"
	mp_own
	chmod a-w "$MD/cur"
	# 1 and 3 go; 2 (in cur/) cannot; the retrieved ones in new/ cannot move to cur/ and stay.
	run python3 "$FAULTCTL" session "$MD" --dele 1,2,3 --undeletable 2 --quit "$READONLY_QUIT"
	echo "$output"
	assert_success
	run md_files
	assert_output - <<-'EOF'
	cur/1000000002.M2P42.faulthost
	new/1000000004.M4P42.faulthost
	new/1000000005.M5P42.faulthost
	EOF
}

# ---- --lock and concurrent sessions ----

@test "--lock: a second session gets -ERR [IN-USE] until the first ends by QUIT, EOF or SIGKILL, then the next gets in at once" {
	deliver_five
	run popctl_trim <<-'EOF'
	open A --lock
	open B --lock
	eof B
	send A DELE 1
	send A QUIT
	open C --lock
	open D --lock
	eof C
	open E --lock
	send E DELE 2
	kill E
	open F --lock
	send F STAT
	send F QUIT
	EOF
	assert_output - <<-'EOF'
	A< +OK maildir-pop3d ready.
	B< -ERR [IN-USE] Maildrop is in use by another session.
	B! exit 1
	A< +OK message 1 deleted
	A< +OK maildir-pop3d signing off (1 messages deleted)
	C< +OK maildir-pop3d ready.
	D< -ERR [IN-USE] Maildrop is in use by another session.
	C! exit 2
	E< +OK maildir-pop3d ready.
	E< +OK message 2 deleted
	E! killed
	F< +OK maildir-pop3d ready.
	F< +OK 4 103
	F< +OK maildir-pop3d signing off (0 messages deleted)
	EOF
	[ "$(md_files | wc -l)" -eq 4 ]
}

@test "without --lock, two sessions in every interleaving of RETR, DELE, RSET, QUIT and EOF leave the Maildir the model predicts" {
	local fs=$MP_T/fs
	export MP_SESSION_CMD="${MP_AS[*]} $MAILDIR_POP3D -p -m $fs/Maildir"
	run in_tmpfs "$fs" python3 "$FAULTCTL" interleave "$fs/Maildir" --sessions 2
	echo "$output"
	assert_success
	assert_line --regexp '^interleave: [0-9]+ interleavings of 2 sessions$'
}

@test "without --lock, three sessions in 150 seeded interleavings leave the Maildir the model predicts" {
	local fs=$MP_T/fs
	export MP_SESSION_CMD="${MP_AS[*]} $MAILDIR_POP3D -p -m $fs/Maildir"
	run in_tmpfs "$fs" python3 "$FAULTCTL" interleave "$fs/Maildir" --sessions 3 --sample 150 --seed 1939
	echo "$output"
	assert_success
}

# ---- idle timeout ----

@test "the idle timeout in the middle of a session closes with -ERR and applies neither DELE nor the seen flag" {
	local before
	deliver_five
	mp_own
	before=$(snap)
	run popctl_trim <<-'EOF'
	open A -t 1
	multi A RETR 1
	send A DELE 2
	wait A
	EOF
	assert_output - <<-'EOF'
	A< +OK maildir-pop3d ready.
	A< +OK 23 octets
	A| Subject: one
	A|
	A| first
	A| .
	A< +OK message 2 deleted
	A< -ERR Autologout: idle for too long.
	A! exit 3
	EOF
	[[ $(snap) == "$before" ]]
}

@test "the idle timeout closes a TCP session that never sends a command" {
	deliver_five
	mp_own
	start_launcher -p -m "$MD" -t 1
	run python3 - "$PORT" <<-'EOF'
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
	data = b""
	while True:
	    chunk = s.recv(4096)
	    if not chunk:
	        break
	    data += chunk
	sys.stdout.write(data.decode().replace("\r\n", "|"))
	EOF
	assert_output '+OK maildir-pop3d ready.|-ERR Autologout: idle for too long.|'
	[ "$(md_files | wc -l)" -eq 5 ]
}
