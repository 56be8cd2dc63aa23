#!/usr/bin/env bats
# Several hosts, one Maildir store (root only; skipped otherwise): three "hosts" h1, h2, h3,
# each a mount + network + UTS + PID namespace with its own host name and address
# (10.77.0.11-13 on a bridge in a "lan" namespace the test makes: no address outside these
# namespaces is used), each running the command line of
# tests/data/scaleout/maildir-pop3d-shared.service.d.conf under systemd-socket-activate, with
# the realpam users (real pam_unix) and one store directory bind-mounted at /srv on all three.
# The hosts' PID namespaces give their sessions the same small pids, so only the host name
# keeps the server's temporary file names apart.
#
# tests/lib/multihost.py drives the clients (STLS, USER/PASS, LIST, UIDL, RETR, DELE, QUIT) on
# all hosts at once while a delivery agent adds mail the Maildir way (tmp/, then new/), and a
# session on h3 is cut off by killing h3's processes by pid. It checks: nothing lost, nothing
# shown twice in one session, each RETR octet for octet, deletions only at a QUIT that said
# +OK; the size cache is valid at the end and every rename of it came from a temporary name
# that carries the renaming host's name (strace on h1 and h2). --lock is exclusive across hosts
# and dies with a killed host.
#
# Needs: systemd (systemd-socket-activate), iproute2, util-linux (unshare, nsenter), strace,
# openssl, python3.

bats_load_library bats-support
bats_load_library bats-assert
load lib/realpam
load lib/hostns
bats_require_minimum_version 1.5.0

FIX=$BATS_TEST_DIRNAME/data/scaleout
HOSTS=(h1 h2 h3)
declare -gA ADDR=([h1]=10.77.0.11 [h2]=10.77.0.12 [h3]=10.77.0.13)

why_skip() {
	[[ $(id -u) == 0 ]] || { echo "needs root: the hosts and the PAM users live in namespaces the test makes"; return; }
	command -v systemd-socket-activate >/dev/null || { echo "systemd-socket-activate is not installed (Debian: systemd)"; return; }
	command -v strace >/dev/null || { echo "strace is not installed"; return; }
	[[ -d /srv ]] || { echo "no /srv to mount the shared store on"; return; }
	unshare --mount --net --uts --pid --fork true 2>/dev/null || { echo "unshare of mount, net, uts and pid namespaces is not permitted here"; return; }
	"$MAILDIR_POP3D" --version | grep -q '^TLS: not built in' && { echo "built without OpenSSL: the hosts offer STLS"; return; }
	unshare --net sh -c 'ip link add b0 type bridge && ip link add v0 type veth peer name v1' 2>/dev/null ||
		{ echo "this kernel makes no bridge or veth devices"; return; }
	return 0
}

setup() {
	[[ $BATS_TEST_DESCRIPTION == README* ]] && return 0
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	local why
	why=$(why_skip)
	[[ -z $why ]] || skip "$why"
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	D=$BATS_TEST_TMPDIR/lab
	realpam_setup "$D"
	CERTS=$D/certs
	hostns_certs "$CERTS" "DNS:pop.example.org,IP:${ADDR[h1]},IP:${ADDR[h2]},IP:${ADDR[h3]}"
	# The shared store: /srv/mail/alice on every host.
	STORE=$D/store
	MD=$STORE/mail/alice
	mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
	chmod 0755 "$STORE" "$STORE/mail"
	chown -R "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$MD"
	chmod -R 0700 "$MD"
	CMD=$(hostns_fixture_cmd "$FIX/maildir-pop3d-shared.service.d.conf" "$CERTS")
	[[ $CMD == *--maildir=/srv/mail/%u* ]] || fail "unexpected command line in the fixture: $CMD"

	hostns_start lan "$D" "hostname lan
		ip link add br0 type bridge && ip addr add 10.77.0.1/24 dev br0 && ip link set br0 up"
	local h
	for h in "${HOSTS[@]}"; do
		hostns_start "$h" "$D" "hostname $h; mount --bind $STORE /srv"
		hostns_attach lan "$h" "${ADDR[$h]}/24"
		: >"$D/$h.syslog"
		chmod 644 "$D/$h.syslog"
	done
}

teardown() {
	hostns_stop_all
}

# serve HOST PORT [OPTION...]: the fixture's command line (plus OPTION...) under
# systemd-socket-activate on HOST's address; on h1 and h2 under strace, which records every
# rename. Sets SSA_PID (host view).
serve() {
	local h=$1 port=$2 trace=()
	shift 2
	if [[ $h != h3 ]]; then
		trace=(strace -f -qq -e trace=rename,renameat,renameat2 -o "$D/$h.$port.strace")
	fi
	hostns_daemon_env "$D/$h.syslog"
	# shellcheck disable=SC2086 # the command line is words
	hostns_spawn "$h" "$D/$h.$port.ssa.log" "${trace[@]}" systemd-socket-activate \
		-l "${ADDR[$h]}:$port" -a --inetd "${HOSTNS_ENV[@]}" $CMD "$@"
	SSA_PID=$HOSTNS_SPAWNED
	hostns_wait_listening "$h" "$port" "$SSA_PID"
}

@test "README.md shows the shared-store drop-in this suite runs" {
	python3 - "$BATS_TEST_DIRNAME/../README.md" "$FIX/maildir-pop3d-shared.service.d.conf" <<-'EOF' ||
		import sys
		sys.exit(0 if ("```ini\n" + open(sys.argv[2]).read() + "```\n") in open(sys.argv[1]).read() else 1)
	EOF
		fail "README.md does not show maildir-pop3d-shared.service.d.conf as it is"
}

@test "three hosts, one Maildir, mail arriving, one host killed mid-session: nothing lost, nothing shown twice" {
	local h
	for h in "${HOSTS[@]}"; do
		serve "$h" 110
	done
	mkdir "$D/sync"
	cat >"$D/run.json" <<-EOF
		{"hosts": ["${ADDR[h1]}", "${ADDR[h2]}", "${ADDR[h3]}"], "port": 110,
		 "user": "alice", "password": "$REALPAM_ALICE_PASSWORD", "cafile": "$CERTS/ca.pem",
		 "maildir": "$MD", "uid": $REALPAM_ALICE_UID, "gid": $REALPAM_ALICE_GID,
		 "initial": 40, "deliveries": 80, "sessions": 6, "threads": 2, "sync": "$D/sync"}
	EOF
	hostns_spawn lan "$D/run.out" python3 "$BATS_TEST_DIRNAME/lib/multihost.py" run "$D/run.json"
	local driver=$HOSTNS_SPAWNED i pids p
	# A session on h3 holds retrieved and deleted messages: h3 dies now. Its processes are
	# killed one by one, by pid (systemd-socket-activate and every session), then its namespace.
	for ((i = 0; i < 1200; i++)); do
		[[ -e $D/sync/holding ]] && break
		kill -0 "$driver" 2>/dev/null || break
		sleep 0.05
	done
	[[ -e $D/sync/holding ]] || fail "the session on h3 never held: $(cat "$D/run.out")"
	pids=$(hostns_pids h3)
	[[ -n $pids ]] || fail "no processes on h3"
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null || true
	done
	hostns_stop h3
	touch "$D/sync/killed"
	for ((i = 0; i < 2400; i++)); do
		kill -0 "$driver" 2>/dev/null || break
		sleep 0.05
	done
	run cat "$D/run.out"
	# The counts, for the record (README.md quotes a run).
	sed 's/^/# /' "$D/run.out" >&3
	refute_output --partial BROKEN
	assert_line 'lost: 0'
	assert_line 'deliveries: 120'
	assert_line 'delivered while sessions ran: 80'
	assert_line --regexp '^sessions killed: [1-9][0-9]*$'
	assert_line --regexp '^sessions committed: ([2-9][0-9]|1[0-9])$'
	# Each surviving host served sessions; no session logged anything but info lines.
	for h in h1 h2; do
		run grep -c ': info: login: user=<alice> rhost=<10.77.0.1> method=USER tls=yes' "$D/$h.syslog"
		assert_output --regexp '^[1-9][0-9]*$'
	done
	run grep -h -v ': info: ' "$D/h1.syslog" "$D/h2.syslog"
	assert_output ''
	# The size cache: valid, and every rename of it on h1 and h2 came from a name with the
	# renaming host's name in it.
	run python3 "$BATS_TEST_DIRNAME/lib/sizecache.py" check "$MD/maildir-pop3d.cache"
	assert_success
	for h in h1 h2; do
		run grep -E 'rename.*maildir-pop3d\.cache' "$D/$h.110.strace"
		assert_output --regexp 'maildir-pop3d\.cache'
		run grep -E 'rename.*"maildir-pop3d\.cache\.tmp\.[^"]*", [^,]*, "maildir-pop3d\.cache"' "$D/$h.110.strace"
		assert_output --regexp "\\.$h\", "
		run grep -E 'rename.*maildir-pop3d\.cache' "$D/$h.110.strace"
		refute_output --regexp "cache\\.tmp\\.[^\"]*\\.(h[^$h]|lan)\""
	done
	# For the record: the hosts' PID namespaces hand out the same pids, so a name with pid and
	# time but no host name could be the same on two hosts.
	comm -12 <(grep -o 'cache\.tmp\.[0-9]*\.[0-9]*\.P[0-9]*\.h1' "$D/h1.110.strace" | sed 's/.*\.P\([0-9]*\)\..*/\1/' | sort -u) \
		<(grep -o 'cache\.tmp\.[0-9]*\.[0-9]*\.P[0-9]*\.h2' "$D/h2.110.strace" | sed 's/.*\.P\([0-9]*\)\..*/\1/' | sort -u) |
		wc -l | sed 's/^/# pids in size cache temporary names on both h1 and h2: /' >&3
	# No temporary file of the survivors is left behind.
	run find "$MD" -maxdepth 1 -name 'maildir-pop3d.cache.tmp.*' ! -name '*.h3'
	assert_output ''
}

@test "--lock is exclusive across hosts on the shared Maildir, and a killed host's lock dies with it" {
	local h
	for h in "${HOSTS[@]}"; do
		serve "$h" 1110 --lock
	done
	printf 'Subject: locked\n\nbody\n' >"$MD/new/1000000001.M1P1.mx"
	chown "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$MD/new/1000000001.M1P1.mx"
	mkdir "$D/sync"
	# lockclient HOST: log in on HOST, print the answer, hold the session until DIR/release
	# appears (or the connection dies), then QUIT.
	cat >"$D/lockclient.py" <<-'EOF'
		import os, poplib, ssl, sys, time
		host, pw, ca, sync = sys.argv[1:5]
		ctx = ssl.create_default_context(cafile=ca)
		ctx.check_hostname = False
		p = poplib.POP3(host, 1110, timeout=20)
		p.stls(ctx)
		p.user("alice")
		try:
		    print(host, p.pass_(pw).decode(), flush=True)
		except poplib.error_proto as e:
		    print(host, e.args[0].decode(), flush=True)
		    sys.exit(0)
		open(os.path.join(sync, "locked." + host), "w").close()
		while not os.path.exists(os.path.join(sync, "release." + host)):
		    time.sleep(0.05)
		try:
		    print(host, p.quit().decode(), flush=True)
		except (OSError, poplib.error_proto, EOFError):
		    print(host, "connection lost", flush=True)
	EOF
	lock_on() {	# lock_on HOST: a session on HOST that holds the lock, in the background
		hostns_spawn lan "$D/lock.$1.out" python3 "$D/lockclient.py" "${ADDR[$1]}" \
			"$REALPAM_ALICE_PASSWORD" "$CERTS/ca.pem" "$D/sync"
		HOLDER=$HOSTNS_SPAWNED
		for ((i = 0; i < 400; i++)); do
			[[ -e $D/sync/locked.${ADDR[$1]} ]] && return 0
			sleep 0.05
		done
		fail "no session holds the lock on $1: $(cat "$D/lock.$1.out")"
	}
	try_on() {	# try_on HOST: one login attempt on HOST while the lock is held elsewhere
		hostns_exec lan python3 "$D/lockclient.py" "${ADDR[$1]}" "$REALPAM_ALICE_PASSWORD" \
			"$CERTS/ca.pem" "$D/sync-try"
	}
	mkdir "$D/sync-try"
	local i
	lock_on h1
	run try_on h2
	assert_output "${ADDR[h2]} -ERR [IN-USE] Maildrop is in use by another session."
	run try_on h3
	assert_output "${ADDR[h3]} -ERR [IN-USE] Maildrop is in use by another session."
	touch "$D/sync/release.${ADDR[h1]}"
	hostns_wait_gone "$HOLDER"
	run cat "$D/lock.h1.out"
	assert_line --partial "${ADDR[h1]} +OK maildir-pop3d signing off"
	# h3 holds the lock and dies: killed by pid, then its namespace; h2 gets the Maildir.
	lock_on h3
	run try_on h2
	assert_output --partial '-ERR [IN-USE]'
	for p in $(hostns_pids h3); do
		kill -KILL "$p" 2>/dev/null || true
	done
	hostns_stop h3
	touch "$D/sync/release.${ADDR[h3]}"
	hostns_wait_gone "$HOLDER"
	lock_on h2
	run cat "$D/lock.h2.out"
	assert_line --partial "${ADDR[h2]} +OK maildrop has 1 message"
	touch "$D/sync/release.${ADDR[h2]}"
	hostns_wait_gone "$HOLDER"
}
