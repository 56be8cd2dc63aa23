#!/usr/bin/env bats
# Login with the real PAM stack and real ids (root only; skipped otherwise): test users with real
# password hashes exist only in a private mount namespace (tests/lib/realpam.bash), Debian's
# pam_unix checks them, and the daemon runs under systemd-socket-activate --inetd on a loopback
# port inside that namespace. While a session is open, the kernel's view of the serving
# process (/proc/PID/status) must show the user's uids, gids and groups; the kernel, not the
# daemon, keeps alice out of bob's Maildir; uid 0 is refused; expired accounts and passwords
# get their own answers. The host's /etc is never modified.
#
# The failed-login delay with pam_unix is measured by tests/bench/login-delay realpam.

bats_load_library bats-support
bats_load_library bats-assert
load lib/realpam
bats_require_minimum_version 1.5.0

host_sums() {
	sha256sum /etc/passwd /etc/shadow /etc/group /etc/gshadow 2>/dev/null
	find /etc/pam.d -type f -exec sha256sum {} + | sort
}

setup_file() {
	if [ "$(id -u)" -eq 0 ]; then
		host_sums >"$BATS_FILE_TMPDIR/host-sums"
	fi
}

setup() {
	realpam_available || skip "real PAM users live in a private mount namespace: $(realpam_why_not)"
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	D=$BATS_TEST_TMPDIR/realpam
	realpam_setup "$D"
	SPAWNED=
	LOG=$D/syslog
	# Sanitizer builds (scripts/check): their options must survive the emptied environments.
	SAN_ENV=()
	local v
	for v in ASAN_OPTIONS UBSAN_OPTIONS; do
		if [[ -n ${!v:-} ]]; then SAN_ENV+=("$v=${!v}"); fi
	done
	: >"$LOG"
	chmod 644 "$LOG"

	# uid 0 gets a known password in the namespace's copy of shadow, so that PAM says yes and
	# only the daemon's own rule refuses it; "toor" is a second name for uid 0.
	ROOT_PW=root-secret-0
	local hash
	hash=$(realpam_hash "$ROOT_PW")
	awk -F: -v OFS=: -v h="$hash" '$1 == "root" { $2 = h } { print }' "$D/etc/shadow" >"$D/shadow.new"
	printf 'toor:%s:19000:0:99999:7:::\n' "$hash" >>"$D/shadow.new"
	cat "$D/shadow.new" >"$D/etc/shadow"
	printf 'toor:x:0:0:root alias:/root:/bin/sh\n' >>"$D/etc/passwd"

	# Mail: two messages for alice, one for bob, owned by them.
	printf 'Subject: for alice\n\nalice one\n' >"$REALPAM_ALICE_HOME/Maildir/new/1000000001.M1P1.rp"
	printf 'Subject: for alice too\n\nalice two\n' >"$REALPAM_ALICE_HOME/Maildir/new/1000000002.M2P2.rp"
	printf 'Subject: for bob\n\nbob only\n' >"$REALPAM_BOB_HOME/Maildir/new/1000000003.M3P3.rp"
	chown -R "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$REALPAM_ALICE_HOME"
	chown -R "$REALPAM_BOB_UID:$REALPAM_BOB_GID" "$REALPAM_BOB_HOME"
	A1=$(crlf_size "$REALPAM_ALICE_HOME/Maildir/new/1000000001.M1P1.rp")
	AT=$((A1 + $(crlf_size "$REALPAM_ALICE_HOME/Maildir/new/1000000002.M2P2.rp")))
	B1=$(crlf_size "$REALPAM_BOB_HOME/Maildir/new/1000000003.M3P3.rp")
}

# Size of an LF-terminated file as sent with CRLF line ends.
crlf_size() {
	echo $(($(wc -c <"$1") + $(wc -l <"$1")))
}

teardown() {
	[ -z "${SPAWNED:-}" ] || realpam_kill "$SPAWNED"
	return 0
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve [OPTION...]: the daemon behind systemd-socket-activate --inetd on a free loopback port,
# inside the namespace, logging through the syslog shim into $LOG. Sets PORT and SSA (the pid
# of systemd-socket-activate, parent of every serving process).
serve() {
	PORT=$(free_port)
	SPAWN_LOG=$D/spawn.$PORT.log
	SPAWNED=$(REALPAM_LOG=$SPAWN_LOG realpam_spawn "$D" systemd-socket-activate \
		-l "127.0.0.1:$PORT" -a --inetd \
		env "${SAN_ENV[@]}" LD_PRELOAD="$MP_SYSLOG_SHIM" MP_TEST_SYSLOG="$LOG" \
		MAILDIR_POP3D_PREAUTH_USER="$MAILDIR_POP3D_PREAUTH_USER" \
		MAILDIR_POP3D_PREAUTH_CHROOT="$MAILDIR_POP3D_PREAUTH_CHROOT" "$MAILDIR_POP3D" "$@")
	for _ in $(seq 200); do
		grep -q 'Listening on' "$SPAWN_LOG" 2>/dev/null && break
		sleep 0.05
	done
	SSA=$(pgrep -f "^systemd-socket-activate -l 127.0.0.1:$PORT ") ||
		fail "systemd-socket-activate did not start: $(cat "$SPAWN_LOG")"
}

# client USER PASSWORD [hold] [retr]: python3's poplib against $PORT. Prints "login: ...",
# "stat: N SIZE", with hold the /proc/PID/status lines (Uid Gid Groups CapPrm CapEff) and cwd of
# every process serving a connection (children of $SSA) while the session is open (with maps
# too: which PAM, NSS and crypt objects it has mapped, and whether its peak memory stayed under
# 8 MiB), with retr message 1, then "quit: ...".
client() {
	python3 - "$PORT" "$SSA" "$@" <<-'EOF'
		import os, poplib, sys
		port, ssa, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
		opts = sys.argv[5:]
		p = poplib.POP3("127.0.0.1", port, timeout=30)
		try:
		    p.user(user)
		    print("login:", p.pass_(password).decode())
		except poplib.error_proto as e:
		    print("login:", e.args[0].decode())
		    sys.exit(0)
		print("stat: %d %d" % p.stat())
		if "hold" in opts:
		    with open("/proc/%s/task/%s/children" % (ssa, ssa)) as f:
		        pids = f.read().split()
		    print("serving: %d" % len(pids))
		    for pid in pids:
		        with open("/proc/%s/status" % pid) as f:
		            for l in f:
		                k = l.split(":")[0]
		                if k in ("Uid", "Gid", "Groups", "CapPrm", "CapEff"):
		                    print(k + ": " + " ".join(l.split()[1:]))
		        print("cwd: " + os.readlink("/proc/%s/cwd" % pid))
		        if "maps" in opts:
		            libs = set()
		            with open("/proc/%s/maps" % pid) as f:
		                for l in f:
		                    name = os.path.basename(l.split()[-1])
		                    if name.startswith(("libpam", "pam_", "libnss_", "libcrypt.so", "libaudit")):
		                        libs.add(name)
		            print("PAM and NSS objects mapped: %s" % (sorted(libs) or "none"))
		            with open("/proc/%s/status" % pid) as f:
		                hwm = [int(l.split()[1]) for l in f if l.startswith("VmHWM:")][0]
		            # One yescrypt computation alone touches 16 MiB.
		            print("peak memory under 8 MiB: %s" % (hwm < 8 * 1024))
		if "retr" in opts:
		    for l in p.retr(1)[1]:
		        print("retr| " + l.decode())
		print("quit:", p.quit().decode())
	EOF
}

# Name, size, mode, owner and mtime of every file under DIR, and their contents' hashes.
snapshot() {
	find "$1" -printf '%p %s %m %u %T@\n' | sort
	find "$1" -type f -exec sha256sum {} + | sort
}

@test "the pre-auth process runs as maildir-pop3d in its empty chroot, and no process of a session is dumpable" {
	# Not dumpable: the kernel gives /proc/PID/status to root, whoever runs the process.
	# (setresuid resets the flag to fs.suid_dumpable: on a host where that is 1 or 2 a
	# missing prctl after the change of ids shows here.)
	serve
	run python3 - "$PORT" "$SSA" "$REALPAM_ALICE_PASSWORD" <<-'EOF'
		import os, socket, sys
		port, ssa, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
		s = socket.create_connection(("127.0.0.1", port), 30)
		f = s.makefile("rb")
		print("greeting:", f.readline().decode().strip())
		def kids(pid):
		    return open("/proc/%s/task/%s/children" % (pid, pid)).read().split()
		def show(who, pid):
		    st = {l.split(":")[0]: " ".join(l.split()[1:]) for l in open("/proc/%s/status" % pid)}
		    print(who, "Uid:", st["Uid"], "Groups:", st["Groups"] or "none", "CapEff:", st["CapEff"],
		          "NoNewPrivs:", st["NoNewPrivs"], "status owner:", os.stat("/proc/%s/status" % pid).st_uid)
		    print(who, "root:", os.readlink("/proc/%s/root" % pid))
		root = kids(ssa)[0]
		show("preauth", kids(root)[0])
		s.sendall(b"USER alice\r\nPASS " + pw.encode() + b"\r\n")
		f.readline(); print("login:", f.readline().decode().strip()[:3])
		show("session", root)
		s.sendall(b"QUIT\r\n")
		f.readline()
	EOF
	assert_success
	local u
	u=$(realpam_run "$D" id -u maildir-pop3d)
	assert_line 'greeting: +OK maildir-pop3d ready.'
	assert_line "preauth Uid: $u $u $u $u Groups: none CapEff: 0000000000000000 NoNewPrivs: 1 status owner: 0"
	assert_line "preauth root: $MAILDIR_POP3D_PREAUTH_CHROOT"
	assert_line 'login: +OK'
	local a=$REALPAM_ALICE_UID
	assert_line --regexp "^session Uid: $a $a $a $a Groups: $REALPAM_ALICE_GID $REALPAM_MPGROUP_GID CapEff: 0000000000000000 NoNewPrivs: [01] status owner: 0\$"
}

@test "alice's session runs with alice's real, effective, saved and fs ids and her groups" {
	serve
	run client alice "$REALPAM_ALICE_PASSWORD" hold retr
	assert_success
	local a=$REALPAM_ALICE_UID g=$REALPAM_ALICE_GID
	assert_output - <<-EOF
		login: +OK maildrop has 2 messages ($AT octets)
		stat: 2 $AT
		serving: 1
		Uid: $a $a $a $a
		Gid: $g $g $g $g
		Groups: $g $REALPAM_MPGROUP_GID
		CapPrm: 0000000000000000
		CapEff: 0000000000000000
		cwd: $REALPAM_ALICE_HOME/Maildir
		retr| Subject: for alice
		retr| 
		retr| alice one
		quit: +OK maildir-pop3d signing off (0 messages deleted)
	EOF
	# The seen flag was set by alice's process: the renamed file is still hers.
	run stat -c '%u %n' "$REALPAM_ALICE_HOME/Maildir/cur/1000000001.M1P1.rp:2,S"
	assert_output "$a $REALPAM_ALICE_HOME/Maildir/cur/1000000001.M1P1.rp:2,S"
	run sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: info: //p' "$LOG"
	assert_line 'login: user=<alice> rhost=<127.0.0.1> method=USER tls=no'
	assert_line "logout: user=<alice> rhost=<127.0.0.1> retr=1/$A1 top=0/0 dele=0/0 left=2/$AT end=quit"
}

@test "PAM runs in a child: the logged-in session has mapped no PAM, NSS or crypt object and never held a password hash's 16 MiB" {
	serve
	run client alice "$REALPAM_ALICE_PASSWORD" hold maps
	assert_success
	assert_line 'serving: 1'
	assert_line 'PAM and NSS objects mapped: none'
	# AddressSanitizer's shadow memory alone is more than 8 MiB: there only the maps count.
	if ! nm "$MAILDIR_POP3D" 2>/dev/null | grep -q __asan_init; then
		assert_line 'peak memory under 8 MiB: True'
	fi
	assert_line 'quit: +OK maildir-pop3d signing off (0 messages deleted)'
}

@test "alice cannot reach bob's Maildir even when the configuration points there" {
	local before maildir
	before=$(snapshot "$REALPAM_BOB_HOME")
	for maildir in '%h/../bob/Maildir' "$REALPAM_BOB_HOME/Maildir" '../bob/Maildir'; do
		serve --maildir="$maildir"
		run client alice "$REALPAM_ALICE_PASSWORD" retr
		assert_success
		assert_output 'login: -ERR [SYS/TEMP] Cannot open the maildrop.'
		realpam_kill "$SPAWNED"
		SPAWNED=
	done
	assert_equal "$(snapshot "$REALPAM_BOB_HOME")" "$before"
	run grep -c 'warning: cannot open maildir .*/bob/Maildir: Permission denied$' "$LOG"
	assert_output 3
	# The same configuration serves bob his own mail: the path was right, the user was not.
	serve --maildir='%h/../bob/Maildir'
	run client bob "$REALPAM_BOB_PASSWORD"
	assert_line "login: +OK maildrop has 1 messages ($B1 octets)"
}

@test "uid 0 is refused with the generic failure even though PAM accepts its password" {
	run realpam_run "$D" pamtester "$REALPAM_SERVICE" root authenticate acct_mgmt <<<"$ROOT_PW"
	assert_success
	serve
	client root "$ROOT_PW" >"$BATS_TEST_TMPDIR/root.out" &
	sleep 0.1
	client toor "$ROOT_PW" >"$BATS_TEST_TMPDIR/toor.out" &
	client alice wrong-password >"$BATS_TEST_TMPDIR/wrong.out"
	wait
	run cat "$BATS_TEST_TMPDIR/root.out" "$BATS_TEST_TMPDIR/toor.out" "$BATS_TEST_TMPDIR/wrong.out"
	assert_output - <<-'EOF'
		login: -ERR [AUTH] Authentication failed.
		login: -ERR [AUTH] Authentication failed.
		login: -ERR [AUTH] Authentication failed.
	EOF
	run sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: info: //p' "$LOG"
	assert_line 'auth failed: user=<root> rhost=<127.0.0.1> reason=<uid 0 refused>'
	assert_line 'auth failed: user=<toor> rhost=<127.0.0.1> reason=<uid 0 refused>'
	refute_line --partial 'login:'
}

@test "an expired account and an expired password are answered like a wrong password; the reason is logged" {
	serve
	local who
	for who in carol dave; do
		client "$who" "$(realpam_password "$who")" >"$BATS_TEST_TMPDIR/$who.right" &
		sleep 0.1
		client "$who" "$(realpam_password "$who")x" >"$BATS_TEST_TMPDIR/$who.wrong" &
		sleep 0.1
	done
	wait
	run cat "$BATS_TEST_TMPDIR"/{carol,dave}.{right,wrong}
	# Before the privilege separation the right password got "Account expired." and
	# "Password expired; ...": a password confirmed to anyone who tried it.
	assert_output - <<-'EOF'
		login: -ERR [AUTH] Authentication failed.
		login: -ERR [AUTH] Authentication failed.
		login: -ERR [AUTH] Authentication failed.
		login: -ERR [AUTH] Authentication failed.
	EOF
	run sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: info: //p' "$LOG"
	# PAM's own reason (Debian's common-account turns pam_unix's "expired" into pam_deny's
	# failure for carol); dave's password age is pam_unix's own answer.
	assert_line --regexp '^auth failed: user=<carol> rhost=<127\.0\.0\.1> reason=<.+>$'
	assert_line 'auth failed: user=<dave> rhost=<127.0.0.1> reason=<Authentication token is no longer valid; new one required>'
	refute_line --partial 'login:'
}

@test "a wrong password and an unknown user get the same answer from pam_unix" {
	serve
	client alice "$REALPAM_BOB_PASSWORD" >"$BATS_TEST_TMPDIR/wrong.out" &
	sleep 0.1
	client nosuchuser "$REALPAM_ALICE_PASSWORD" >"$BATS_TEST_TMPDIR/unknown.out"
	wait
	cmp "$BATS_TEST_TMPDIR/wrong.out" "$BATS_TEST_TMPDIR/unknown.out"
	run cat "$BATS_TEST_TMPDIR/wrong.out"
	assert_output 'login: -ERR [AUTH] Authentication failed.'
	run sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: info: //p' "$LOG"
	assert_line --regexp '^auth failed: user=<alice> rhost=<127\.0\.0\.1> reason=<.+>$'
	assert_line --regexp '^auth failed: user=<nosuchuser> rhost=<127\.0\.0\.1> reason=<.+>$'
	run grep -r -F -e "$REALPAM_BOB_PASSWORD" -e "$REALPAM_ALICE_PASSWORD" "$LOG" "$D"/spawn.*.log
	assert_failure
}

@test "started by alice herself, the daemon checks her password through pam_unix and serves her" {
	printf 'USER alice\r\nPASS %s\r\nSTAT\r\nQUIT\r\n' "$REALPAM_ALICE_PASSWORD" |
		realpam_run "$D" setpriv --reuid alice --regid alice --init-groups --reset-env \
		env "${SAN_ENV[@]}" "$MAILDIR_POP3D" >"$BATS_TEST_TMPDIR/out"
	run tr -d '\r' <"$BATS_TEST_TMPDIR/out"
	assert_output - <<-EOF
		+OK maildir-pop3d ready.
		+OK Send the password.
		+OK maildrop has 2 messages ($AT octets)
		+OK 2 $AT
		+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "the host's /etc/passwd, shadow, group, gshadow and pam.d are unchanged by the suite" {
	[ -f "$BATS_FILE_TMPDIR/host-sums" ] || fail "no snapshot from setup_file"
	assert_equal "$(host_sums)" "$(cat "$BATS_FILE_TMPDIR/host-sums")"
	run getent passwd alice
	[ "$status" -ne 0 ] || [ "$(cut -d: -f3 <<<"$output")" != "$REALPAM_ALICE_UID" ]
}
