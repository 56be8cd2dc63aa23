#!/usr/bin/env bats
# How the connection arrives (DESIGN.md sections 1 and 2), through real launchers on loopback:
# systemd-socket-activate with --inetd (fd 0/1) and without (fd 3, LISTEN_FDS), over IPv4 and
# IPv6; a listening socket refused; 100 sessions at once; the peer from the launcher's
# environment when fd 0 is a pipe; and fail2ban's filter on the log lines of real failed logins.
# Users are cwrap's (tests/lib/cwrap.bash), except the 100-session test, which needs more
# processes than pam_wrapper allows at once and uses real PAM users (root only).
#
# Needs systemd-socket-activate (systemd), python3, ss (iproute2), fail2ban-regex (fail2ban).

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
load lib/deploy
load lib/realpam


setup() {
	dp_launcher_setup
	SSA_PIDS=()
	SPAWNED=
}

teardown() {
	local pid
	for pid in "${SSA_PIDS[@]}"; do
		dp_stop "$pid" || true
	done
	if [[ -n $SPAWNED ]]; then
		realpam_kill "$SPAWNED"
	fi
	cwrap_teardown
}

# ssa ADDR PORT OPTION...: the daemon behind systemd-socket-activate OPTION... on ADDR:PORT,
# in the background, with the cwrap environment; waits until it listens.
ssa() {
	local addr=$1 port=$2 listen pid
	shift 2
	if [[ $addr == *:* ]]; then listen="[$addr]:$port"; else listen="$addr:$port"; fi
	systemd-socket-activate -l "$listen" "$@" "${CW_SETENV[@]}" "$MAILDIR_POP3D" \
		</dev/null >"$BATS_TEST_TMPDIR/ssa-$port.out" 2>"$BATS_TEST_TMPDIR/ssa-$port.err" 3>&- &
	pid=$!
	SSA_PIDS+=("$pid")
	LAST_PID=$pid
	dp_wait_listening "$port" "$pid"
}

need_ipv6() {
	dp_have_ipv6 || skip "no IPv6 loopback (::1) on this host"
}

# ---- the connection on fd 0/1 and on fd 3 -------------------------------------------

@test "systemd-socket-activate --inetd -a: a whole session on fd 0/1, IPv4 peer logged as 127.0.0.1" {
	PORT=$(dp_free_port 127.0.0.1)
	ssa 127.0.0.1 "$PORT" -a --inetd
	dp_full_session 127.0.0.1 "$PORT" '127\.0\.0\.1'
}

@test "systemd-socket-activate -a: a whole session on fd 3 from LISTEN_FDS (without libsystemd: a clear refusal)" {
	PORT=$(dp_free_port 127.0.0.1)
	if ! have_libsystemd; then
		refused "$NO_SD" -a
		return
	fi
	ssa 127.0.0.1 "$PORT" -a
	dp_full_session 127.0.0.1 "$PORT" '127\.0\.0\.1'
}

@test "systemd-socket-activate --inetd -a over IPv6: the peer is logged as ::1, without brackets" {
	need_ipv6
	PORT=$(dp_free_port ::1)
	ssa ::1 "$PORT" -a --inetd
	dp_full_session ::1 "$PORT" '::1'
}

@test "systemd-socket-activate -a over IPv6: fd 3, the peer is logged as ::1, without brackets" {
	need_ipv6
	have_libsystemd || skip "built without libsystemd: fd 3 is refused (see the IPv4 test)"
	PORT=$(dp_free_port ::1)
	ssa ::1 "$PORT" -a
	dp_full_session ::1 "$PORT" '::1'
}

@test "LISTEN_FDS with the connection on fd 0 too (StandardInput=socket): served from fd 0, its copy on fd 3 closed, libsystemd not loaded" {
	# systemd's Accept=yes with StandardInput=socket passes the connection on fd 0, fd 1 and,
	# announced by LISTEN_FDS, fd 3.  A launcher doing exactly that over a socketpair:
	# the session must work, and while it runs the daemon holds no fd 3 and has not mapped
	# libsystemd (loading it is what the fd-3-only mode needs, and costs every session).
	run python3 - "$BATS_TEST_TMPDIR/msg" "${CW_ENV[@]}" "$MAILDIR_POP3D" <<-'EOF'
		import os, socket, sys
		msg, cmd = sys.argv[1], sys.argv[2:]
		a, b = socket.socketpair()
		pid = os.fork()
		if pid == 0:
		    for fd in (0, 1, 3):
		        os.dup2(b.fileno(), fd)
		    os.environ["LISTEN_FDS"] = "1"
		    os.environ["LISTEN_PID"] = str(os.getpid())	# env(1) execs in the same process
		    # systemd names the peer of a socketpair-like connection through REMOTE_ADDR;
		    # a unix socket alone is no proof of a local client.
		    os.environ["REMOTE_ADDR"] = "127.0.0.1"
		    os.execvp(cmd[0], cmd)
		conn = "socket:[%d]" % os.fstat(b.fileno()).st_ino
		b.close()
		f = a.makefile("rb")
		def cmdline(line):
		    a.sendall(line.encode() + b"\r\n")
		    return f.readline()
		print("greeting", f.readline())
		print("user", cmdline("USER alice")[:3])
		print("pass", cmdline("PASS secret")[:3])
		try:
		    maps = open(f"/proc/{pid}/maps").read()
		    print("libsystemd mapped:", "libsystemd" in maps)
		    held = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")
		                  if os.readlink(f"/proc/{pid}/fd/{fd}") == conn)
		    print("connection on fds:", held)
		except PermissionError:
		    print("proc: unreadable")	# a non-dumpable process of another user
		print("quit", cmdline("QUIT")[:3])
		print("eof", f.read())
		print("status", os.waitpid(pid, 0)[1])
	EOF
	assert_success
	[[ ${lines[*]} != *'proc: unreadable'* ]] ||
		skip "only root can read a non-dumpable session's /proc entries (CI runs as root)"
	assert_output "greeting b'+OK maildir-pop3d ready.\r\n'
user b'+OK'
pass b'+OK'
libsystemd mapped: False
connection on fds: [0, 1]
quit b'+OK'
eof b''
status 0"
}

# ---- Accept=no ---------------------------------------------------------------------

# refused MESSAGE OPTION...: the launcher with OPTION... hands over a socket the daemon must
# refuse at the first connection: not one byte to the client, MESSAGE on stderr (a file here)
# and in the log, exit status 78 (EX_CONFIG).  Without -a, systemd-socket-activate passes its
# listening socket, as systemd does with Accept=no.
refused() {
	local msg=$1 st=0
	shift
	PORT=$(dp_free_port 127.0.0.1)
	ssa 127.0.0.1 "$PORT" "$@"
	run python3 - "$PORT" <<-'EOF'
		import socket, sys
		data = b""
		try:
		    # The refusing daemon may close the listening socket while this
		    # connection is still in its backlog: a reset, and still no octet.
		    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
		    while True:
		        chunk = s.recv(4096)
		        if not chunk:
		            break
		        data += chunk
		except ConnectionResetError:
		    pass
		print(repr(data))
	EOF
	assert_success
	assert_output "b''"
	if [[ " $* " == *' -a '* ]]; then
		# One child per connection: the launcher reports how it ended.
		for _ in $(seq 200); do
			grep -q '^Child [0-9]* died with code' "$BATS_TEST_TMPDIR/ssa-$PORT.err" && break
			sleep 0.05
		done
		run grep '^Child [0-9]* died with code' "$BATS_TEST_TMPDIR/ssa-$PORT.err"
		assert_output --regexp '^Child [0-9]+ died with code 78$'
	else
		wait "$LAST_PID" || st=$?	# systemd-socket-activate exec'd the daemon
		SSA_PIDS=()
		assert_equal "$st" 78	# EX_CONFIG
	fi
	run grep -F "maildir-pop3d: $msg" "$BATS_TEST_TMPDIR/ssa-$PORT.err"
	assert_success
	run cat "$SYSLOG"
	assert_equal "${#lines[@]}" 1
	[[ ${lines[0]} =~ ^facility=mail\ maildir-pop3d\[[0-9]+\]:\ err:\ (.*)$ && ${BASH_REMATCH[1]} == "$msg"* ]] ||
		fail "log line: ${lines[0]}"
}

ACCEPT_NO='got a listening socket: use Accept=yes in the systemd .socket unit (or nowait in inetd.conf)'
NO_SD='LISTEN_FDS is set but this maildir-pop3d was built without libsystemd; use StandardInput=socket'

have_libsystemd() {
	"$MAILDIR_POP3D" --version | grep -q '^socket activation: libsystemd$'
}

@test "a listening socket on fd 3 (Accept=no) is refused, exit 78, with a message naming Accept=yes" {
	if have_libsystemd; then
		refused "$ACCEPT_NO"
	else
		refused "$NO_SD"
	fi
}

@test "a listening socket on fd 0 (Accept=no, StandardInput=socket) is refused with a message naming Accept=yes" {
	refused "$ACCEPT_NO" --inetd
}

# ---- 100 sessions at once ------------------------------------------------------------

@test "100 concurrent sessions through socket activation all log in and get the right bytes" {
	realpam_available ||
		skip "100 concurrent logins are more than pam_wrapper's 62 processes, so this test uses real PAM users in a private mount namespace: $(realpam_why_not)"
	local d=$BATS_TEST_TMPDIR/rp log u
	realpam_setup "$d"
	log=$d/syslog
	: >"$log"
	chmod 0644 "$log"
	for u in alice bob; do
		local home=REALPAM_${u^^}_HOME id=REALPAM_${u^^}_UID md
		md=${!home}/Maildir
		printf 'Subject: %s one\n\n.dot\nshort\n' "$u" >"$md/new/1700000001.M1P1.$u"
		python3 -c 'import sys; sys.stdout.write("Subject: big\n\n" + "".join("%05d %s\n" % (i, "x" * 70) for i in range(1200)))' \
			>"$md/new/1700000002.M2P2.$u"	# over 64 KiB
		printf 'Subject: %s three\n\nno line end' "$u" >"$md/new/1700000003.M3P3.$u"
		chown -R "${!id}:${!id}" "$md"
		mkdir -p "$BATS_TEST_TMPDIR/orig-$u"
		cp "$md"/new/* "$BATS_TEST_TMPDIR/orig-$u/"
	done
	PORT=$(dp_free_port 127.0.0.1)
	SPAWNED=$(REALPAM_LOG=$d/ssa.log realpam_spawn "$d" systemd-socket-activate -l "127.0.0.1:$PORT" -a --inetd \
		-E "LD_PRELOAD=$MP_SYSLOG_SHIM" -E "MP_TEST_SYSLOG=$log" \
		-E "MAILDIR_POP3D_PREAUTH_USER=$MAILDIR_POP3D_PREAUTH_USER" \
		-E "MAILDIR_POP3D_PREAUTH_CHROOT=$MAILDIR_POP3D_PREAUTH_CHROOT" "$MAILDIR_POP3D")
	dp_wait_listening "$PORT" "$SPAWNED"

	run timeout 300 python3 "$BATS_TEST_DIRNAME/lib/pop3client.py" load 127.0.0.1 "$PORT" 100 \
		"alice:$(realpam_password alice):$REALPAM_ALICE_HOME/Maildir" \
		"bob:$(realpam_password bob):$REALPAM_BOB_HOME/Maildir"
	assert_success
	assert_output '100/100 sessions ok'

	run grep -c ': info: login: user=<alice> rhost=<127.0.0.1> method=USER tls=no$' "$log"
	assert_output 50
	run grep -c ': info: login: user=<bob> rhost=<127.0.0.1> method=USER tls=no$' "$log"
	assert_output 50
	run grep -c ': info: logout: .* end=quit$' "$log"
	assert_output 100
	# Every message was retrieved by some session: moved to cur/ with the seen flag, intact.
	for u in alice bob; do
		local home=REALPAM_${u^^}_HOME md f
		md=${!home}/Maildir
		run find "$md/new" -type f
		assert_output ''
		for f in "$BATS_TEST_TMPDIR/orig-$u"/*; do
			cmp "$f" "$md/cur/$(basename "$f"):2,S" || fail "$u: $(basename "$f") not flagged seen intact"
		done
		run find "$md/cur" -type f
		assert_equal "${#lines[@]}" 3
	done
}

# ---- the peer from the launcher's environment -----------------------------------------

# piped VAR=VALUE...: a login session on a pipe with these variables; prints the login line.
piped() {
	printf 'USER alice\r\nPASS secret\r\nQUIT\r\n' |
		"${CW_ENV[@]}" "$@" "$MAILDIR_POP3D" --plaintext=always >"$BATS_TEST_TMPDIR/out" 2>>"$BATS_TEST_TMPDIR/err" ||
		return 1
	grep -q '^+OK maildir-pop3d signing off' "$BATS_TEST_TMPDIR/out" || return 1
	grep -o 'login: .*' "$SYSLOG"
	: >"$SYSLOG"
}

@test "on a pipe, REMOTE_ADDR (systemd) and TCPREMOTEIP (ucspi-tcp) name the peer, IPv4 and IPv6" {
	run piped REMOTE_ADDR=192.0.2.7 REMOTE_PORT=4711
	assert_success
	assert_output 'login: user=<alice> rhost=<192.0.2.7> method=USER tls=no'
	run piped TCPREMOTEIP=2001:db8::7 TCPREMOTEPORT=4711
	assert_success
	assert_output 'login: user=<alice> rhost=<2001:db8::7> method=USER tls=no'
	run piped REMOTE_ADDR=::ffff:198.51.100.4	# IPv4-mapped: logged as plain IPv4
	assert_success
	assert_output 'login: user=<alice> rhost=<198.51.100.4> method=USER tls=no'
}

@test "on a pipe, a launcher variable that is not an address is skipped, and no variable means local" {
	run piped 'REMOTE_ADDR=192.0.2.7> evil=<x' TCPREMOTEIP=192.0.2.8
	assert_success
	assert_output 'login: user=<alice> rhost=<192.0.2.8> method=USER tls=no'
	run piped REMOTE_HOST=mail.example.org
	assert_success
	assert_output 'login: user=<alice> rhost=<local> method=USER tls=no'
	run piped
	assert_success
	assert_output 'login: user=<alice> rhost=<local> method=USER tls=no'
}

@test "a socket's own peer address wins over the launcher's environment" {
	PORT=$(dp_free_port 127.0.0.1)
	ssa 127.0.0.1 "$PORT" -a --inetd -E REMOTE_ADDR=192.0.2.66 -E TCPREMOTEIP=192.0.2.67
	dp_full_session 127.0.0.1 "$PORT" '127\.0\.0\.1'
}

# ---- fail2ban on the log of real failed logins -----------------------------------------

# A failed login (wrong password) through a launcher on ADDR, in the background.
fail_login() {
	local addr=$1 port
	port=$(dp_free_port "$addr")
	ssa "$addr" "$port" -a --inetd
	mkdir -p "$BATS_TEST_TMPDIR/fail-$port"
	pop3c session "$addr" "$port" "$BATS_TEST_TMPDIR/fail-$port" 'USER alice' 'PASS wrong' QUIT &
	CLIENTS+=($!)
}

@test "fail2ban's filter bans the address of a real failed login, over IPv4 and IPv6" {
	command -v fail2ban-regex >/dev/null || skip "fail2ban-regex not installed (Debian: fail2ban)"
	local c want=('127.0.0.1')
	CLIENTS=()
	fail_login 127.0.0.1
	if dp_have_ipv6; then
		fail_login ::1
		want+=('::1')
	fi
	for c in "${CLIENTS[@]}"; do
		wait "$c"
	done
	run grep -c ': info: auth failed: user=<alice> rhost=<[0-9a-f.:]*> reason=<' "$SYSLOG"
	assert_output "${#want[@]}"
	# As rsyslog writes them to /var/log/mail.log.
	sed -n 's/^facility=mail \(maildir-pop3d\[[0-9]*\]\): [a-z]*: \(auth failed: \)/Nov 22 10:00:00 host \1: \2/p' \
		"$SYSLOG" >"$BATS_TEST_TMPDIR/mail.log"
	run cat "$BATS_TEST_TMPDIR/mail.log"
	assert_line --regexp '^Nov 22 10:00:00 host maildir-pop3d\[[0-9]+\]: auth failed: user=<alice> rhost=<127\.0\.0\.1> reason=<.+>$'
	mkdir -p "$BATS_TEST_TMPDIR/f2b/filter.d"
	cp /etc/fail2ban/filter.d/common.conf "$BATS_TEST_TMPDIR/f2b/filter.d/"
	cp "${MP_SRCDIR:-$BATS_TEST_DIRNAME/..}/contrib/fail2ban/maildir-pop3d.conf" "$BATS_TEST_TMPDIR/f2b/filter.d/"
	run fail2ban-regex -c "$BATS_TEST_TMPDIR/f2b" --out ip "$BATS_TEST_TMPDIR/mail.log" maildir-pop3d
	assert_success
	run sort <<<"$output"
	assert_output "$(printf '%s\n' "${want[@]}" | sort)"
}
