#!/usr/bin/env bats
# Behind a real HAProxy (Debian's haproxy, root only; skipped otherwise): the configuration in
# tests/data/scaleout/haproxy-pop3.cfg (the one README.md shows) balances POP3 and POP3S over
# two hosts, pop1 (systemd-socket-activate) and pop2 (openbsd-inetd), each running the command
# line of tests/data/scaleout/maildir-pop3d{,s}.service.d.conf. Every part lives in namespaces
# the test makes: a "lan" with a bridge, where HAProxy listens on 192.0.2.1 and the clients have
# the addresses 198.51.100.7 and 198.51.100.8, and one namespace per host, joined to the bridge
# by a veth pair; the test users exist only there (tests/lib/realpam.bash: real pam_unix, plus
# pam_access that denies alice from 198.51.100.8). Nothing is configured in the host's own
# network namespace; no address outside those namespaces is contacted.
#
# Asserts: the client's address (sent by HAProxy as PROXY v1 and v2) in the log lines and in
# PAM_RHOST (pam_access allows one client and refuses the other), the plaintext policy applied
# to the client's address, not the proxy's; a PROXY header from an address outside
# --proxy-from, or a trusted proxy sending none, refused as without HAProxy; a client's early
# disconnect still logged; POP3S with the PROXY header before the TLS handshake.
#
# Needs: haproxy, openbsd-inetd, systemd (systemd-socket-activate), iproute2, util-linux
# (unshare, nsenter), socat, openssl, python3.

bats_load_library bats-support
bats_load_library bats-assert
load lib/realpam
load lib/hostns
bats_require_minimum_version 1.5.0

FIX=$BATS_TEST_DIRNAME/data/scaleout
INETD=/usr/sbin/inetd
PROXY=192.0.2.1
POP1=192.0.2.11
POP2=192.0.2.12
CLIENT_OK=198.51.100.7
CLIENT_DENIED=198.51.100.8

# Why this suite cannot run here, or nothing.
why_skip() {
	[[ $(id -u) == 0 ]] || { echo "needs root: HAProxy, the hosts and the PAM users live in namespaces the test makes"; return; }
	command -v haproxy >/dev/null || { echo "haproxy is not installed (Debian: haproxy)"; return; }
	[[ -x $INETD ]] || { echo "$INETD is not installed (Debian: openbsd-inetd)"; return; }
	command -v systemd-socket-activate >/dev/null || { echo "systemd-socket-activate is not installed (Debian: systemd)"; return; }
	command -v socat >/dev/null || { echo "socat is not installed"; return; }
	unshare --mount --net --uts --pid --fork true 2>/dev/null || { echo "unshare of mount, net, uts and pid namespaces is not permitted here"; return; }
	"$MAILDIR_POP3D" --version | grep -q '^TLS: not built in' && { echo "built without OpenSSL: the POP3S backend needs TLS"; return; }
	unshare --net sh -c 'ip link add b0 type bridge && ip link add v0 type veth peer name v1' 2>/dev/null ||
		{ echo "this kernel makes no bridge or veth devices"; return; }
	return 0
}

setup_file() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	SKIP_WHY=$(why_skip)
	export SKIP_WHY
	[[ -z $SKIP_WHY ]] || return 0
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		{ echo "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)" >&2; return 1; }
	export D=$BATS_FILE_TMPDIR/lab
	realpam_setup "$D"
	export CERTS=$D/certs
	hostns_certs "$CERTS" "DNS:pop.example.org,IP:$PROXY"

	# pam_access after Debian's common-account: alice may not log in from $CLIENT_DENIED.
	printf -- '-:alice:%s\n+:ALL:ALL\n' "$CLIENT_DENIED" >"$D/access.conf"
	printf 'account  required  pam_access.so accessfile=%s\n' "$D/access.conf" \
		>>"$D/etc/pam.d/$REALPAM_SERVICE"

	local h cmd110 cmd995
	cmd110=$(hostns_fixture_cmd "$FIX/maildir-pop3d.service.d.conf" "$CERTS")
	cmd995=$(hostns_fixture_cmd "$FIX/maildir-pop3ds.service.d.conf" "$CERTS")
	[[ -n $cmd110 && -n $cmd995 ]] || { echo "no ExecStart= in the drop-in fixtures" >&2; return 1; }

	hostns_start lan "$D" "hostname lan
		mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/haproxy
		ip link add br0 type bridge && ip addr add $PROXY/24 dev br0 && ip link set br0 up
		ip addr add $CLIENT_OK/32 dev lo && ip addr add $CLIENT_DENIED/32 dev lo"
	for h in pop1 pop2; do
		hostns_start "$h" "$D" "hostname $h; mount -t tmpfs -o mode=0755 tmpfs /run"
	done
	hostns_attach lan pop1 "$POP1/24" "$PROXY"
	hostns_attach lan pop2 "$POP2/24" "$PROXY"

	# pop1: systemd-socket-activate, one per port, as the .socket units do.
	hostns_daemon_env "$D/pop1.syslog"
	# shellcheck disable=SC2086 # the command lines are words
	hostns_spawn pop1 "$D/pop1.ssa110.log" systemd-socket-activate -l "$POP1:110" -a --inetd \
		"${HOSTNS_ENV[@]}" $cmd110
	hostns_wait_listening pop1 110 "$HOSTNS_SPAWNED"
	# shellcheck disable=SC2086
	hostns_spawn pop1 "$D/pop1.ssa995.log" systemd-socket-activate -l "$POP1:995" -a --inetd \
		"${HOSTNS_ENV[@]}" $cmd995
	hostns_wait_listening pop1 995 "$HOSTNS_SPAWNED"

	# pop2: openbsd-inetd (its pid file goes to the namespace's own /run); inetd.conf carries
	# no environment, so a wrapper sets it.
	hostns_daemon_env "$D/pop2.syslog"
	{
		echo '#!/bin/sh'
		echo '# inetd service on pop2: the daemon under test, logging through the syslog shim.'
		printf 'export %q\n' "${HOSTNS_ENV[@]:1}"
		printf 'exec %q "$@"\n' "$MAILDIR_POP3D"
	} >"$D/pop2-wrapper"
	chmod 0755 "$D/pop2-wrapper"
	{
		printf '%s:110 stream tcp nowait root %s maildir-pop3d %s\n' "$POP2" "$D/pop2-wrapper" "${cmd110#* }"
		printf '%s:995 stream tcp nowait root %s maildir-pop3d %s\n' "$POP2" "$D/pop2-wrapper" "${cmd995#* }"
	} >"$D/pop2-inetd.conf"
	hostns_spawn pop2 "$D/pop2.inetd.log" "$INETD" -d "$D/pop2-inetd.conf"
	hostns_wait_listening pop2 110 "$HOSTNS_SPAWNED"
	hostns_wait_listening pop2 995 "$HOSTNS_SPAWNED"

	# HAProxy: a global section of the test's own (log to stdout, the admin socket in the lan's
	# /run), then the fixture exactly as README.md shows it.
	cat >"$D/haproxy-global.cfg" <<-EOF
		global
		    log stdout format raw local0 info
		    stats socket /run/haproxy/admin.sock mode 600 level admin
	EOF
	haproxy -c -f "$D/haproxy-global.cfg" -f "$FIX/haproxy-pop3.cfg" >"$D/haproxy-check.log" 2>&1 ||
		{ echo "haproxy -c: $(cat "$D/haproxy-check.log")" >&2; return 1; }
	hostns_spawn lan "$D/haproxy.log" haproxy -db -f "$D/haproxy-global.cfg" -f "$FIX/haproxy-pop3.cfg"
	echo "$HOSTNS_SPAWNED" >"$D/haproxy.pid"
	hostns_wait_listening lan 110 "$HOSTNS_SPAWNED"
	hostns_wait_listening lan 995 "$HOSTNS_SPAWNED"
}

teardown_file() {
	[[ -z ${SKIP_WHY:-} ]] || return 0
	local pid
	pid=$(cat "$D/haproxy.pid" 2>/dev/null) && kill -TERM "$pid" 2>/dev/null
	hostns_stop_all
	return 0
}

setup() {
	# The README's blocks are checked everywhere; the rest needs the lab.
	[[ $BATS_TEST_DESCRIPTION == README* ]] && return 0
	[[ -z $SKIP_WHY ]] || skip "$SKIP_WHY"
	# Two messages for alice; each test starts from the same Maildir and empty logs.
	local md=$REALPAM_ALICE_HOME/Maildir
	rm -rf "$md"
	mkdir -p "$md/new" "$md/cur" "$md/tmp"
	printf 'Subject: one\n\nfirst\n' >"$md/new/1000000001.M1P1.lab"
	printf 'Subject: two\n\nsecond\n' >"$md/new/1000000002.M2P2.lab"
	chown -R "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$md"
	chmod -R go= "$md"
	: >"$D/pop1.syslog"
	: >"$D/pop2.syslog"
	chmod 644 "$D/pop1.syslog" "$D/pop2.syslog"
}

# haproxy_cmd COMMAND: a command on HAProxy's admin socket.
haproxy_cmd() {
	echo "$1" | hostns_exec lan socat - UNIX-CONNECT:/run/haproxy/admin.sock
}

# pop SRC HOST PORT MODE [USER PASSWORD]: python3's poplib from source address SRC.
# MODE: plain (USER/PASS as is), stls (STLS first), tls (implicit TLS: port 995), hello (read
# the greeting, then close). Prints one line per answer.
pop() {
	hostns_exec lan python3 - "$CERTS/ca.pem" "$@" <<-'EOF'
		import poplib, socket, ssl, sys
		ca, src, host, port, mode = sys.argv[1:6]
		user, password = (sys.argv[6:8] + ["", ""])[:2]
		ctx = ssl.create_default_context(cafile=ca)
		class P(poplib.POP3):
		    def _create_socket(self, timeout):
		        return socket.create_connection((self.host, self.port), timeout, (src, 0))
		class PS(poplib.POP3_SSL):
		    def _create_socket(self, timeout):
		        s = socket.create_connection((self.host, self.port), timeout, (src, 0))
		        return self.context.wrap_socket(s, server_hostname=self.host)
		p = PS(host, int(port), timeout=20, context=ctx) if mode == "tls" else P(host, int(port), timeout=20)
		print("greeting:", p.getwelcome().decode())
		if mode == "hello":
		    p.close()
		    sys.exit(0)
		if mode == "stls":
		    print("stls:", p.stls(ctx).decode())
		try:
		    print("user:", p.user(user).decode())
		    print("pass:", p.pass_(password).decode())
		except poplib.error_proto as e:
		    print("refused:", e.args[0].decode())
		    print("quit:", p.quit().decode())
		    sys.exit(0)
		print("stat: %d %d" % p.stat())
		print("quit:", p.quit().decode())
	EOF
}

# Both hosts' log lines at info level, without the "facility=mail maildir-pop3d[PID]: " part.
info_lines() {
	sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: info: //p' "$D/pop1.syslog" "$D/pop2.syslog"
}

# wait_logged REGEX: waits (at most 10 s) for a line matching REGEX in either host's log
# (a session logs its last line after the client has its answer).
wait_logged() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q -E "$1" "$D/pop1.syslog" "$D/pop2.syslog" && return 0
		sleep 0.05
	done
	fail "no log line matching $1: $(cat "$D/pop1.syslog" "$D/pop2.syslog")"
}

@test "README.md shows the HAProxy configuration and the drop-ins this suite runs" {
	local f
	for f in haproxy-pop3.cfg maildir-pop3d.service.d.conf maildir-pop3ds.service.d.conf; do
		python3 - "$BATS_TEST_DIRNAME/../README.md" "$FIX/$f" <<-'EOF' || fail "README.md does not show $f as it is"
			import sys
			readme = open(sys.argv[1]).read()
			block = open(sys.argv[2]).read()
			sys.exit(0 if ("```\n" + block + "```\n") in readme or ("```ini\n" + block + "```\n") in readme else 1)
		EOF
	done
}

@test "both hosts serve through HAProxy (PROXY v2 to pop1, v1 to pop2): the client's address is logged" {
	local n
	for n in 1 2; do
		run pop "$CLIENT_OK" "$PROXY" 995 tls alice "$REALPAM_ALICE_PASSWORD"
		assert_success
		assert_line 'greeting: +OK maildir-pop3d ready.'
		assert_line --partial 'pass: +OK maildrop has 2 messages'
		assert_line --regexp '^stat: 2 [0-9]+$'
		assert_line --partial 'quit: +OK maildir-pop3d signing off'
	done
	wait_logged 'logout: .*'
	for n in 1 2; do
		run grep -c -F "info: login: user=<alice> rhost=<$CLIENT_OK> method=USER tls=yes" "$D/pop$n.syslog"
		assert_output 1
	done
	run sh -c 'cat "$1" "$2" | grep -E ": info: (login|logout|auth failed):" | grep -c -F "rhost=<$3>"' \
		sh "$D/pop1.syslog" "$D/pop2.syslog" "$PROXY"
	assert_output 0
	# and plain POP3 with STLS on port 110, through send-proxy-v2 and send-proxy
	: >"$D/pop1.syslog"
	: >"$D/pop2.syslog"
	for n in 1 2; do
		run pop "$CLIENT_OK" "$PROXY" 110 stls alice "$REALPAM_ALICE_PASSWORD"
		assert_success
		assert_line --partial 'pass: +OK maildrop has 2 messages'
	done
	wait_logged 'logout: .*'
	for n in 1 2; do
		run grep -c -F "info: login: user=<alice> rhost=<$CLIENT_OK> method=USER tls=yes" "$D/pop$n.syslog"
		assert_output 1
	done
}

@test "PAM_RHOST is the client's address through HAProxy: pam_access lets one client in and keeps the other out" {
	local n
	for n in 1 2; do
		run pop "$CLIENT_DENIED" "$PROXY" 995 tls alice "$REALPAM_ALICE_PASSWORD"
		assert_success
		# (the password was right: pam_access, in the account phase, said no)
		assert_line --regexp '^refused: -ERR \[AUTH\] '
		run pop "$CLIENT_OK" "$PROXY" 995 tls alice "$REALPAM_ALICE_PASSWORD"
		assert_success
		assert_line --partial 'pass: +OK maildrop has 2 messages'
	done
	wait_logged 'logout: .*'
	run sh -c 'cat "$1" "$2" | grep -c -F "$3"' sh "$D/pop1.syslog" "$D/pop2.syslog" \
		"info: auth failed: user=<alice> rhost=<$CLIENT_DENIED> reason=<"
	assert_output 2
	run sh -c 'cat "$1" "$2" | grep -c -F "$3"' sh "$D/pop1.syslog" "$D/pop2.syslog" \
		"info: login: user=<alice> rhost=<$CLIENT_OK> method=USER tls=yes"
	assert_output 2
	run sh -c 'cat "$1" "$2" | grep -E ": info: (login|logout|auth failed):" | grep -c -F "rhost=<$3>"' \
		sh "$D/pop1.syslog" "$D/pop2.syslog" "$PROXY"
	assert_output 0
}

@test "the plaintext policy follows the client's address, not the proxy's" {
	# 198.51.100.7 is not local: USER without TLS is refused on port 110 ...
	run pop "$CLIENT_OK" "$PROXY" 110 plain alice "$REALPAM_ALICE_PASSWORD"
	assert_success
	assert_line 'refused: -ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first.'
	# ... a loopback client of the proxy's host counts as local, although HAProxy's own
	# address (192.0.2.1) is not: the address in the PROXY header decides.
	run pop 127.0.0.1 "$PROXY" 110 plain alice "$REALPAM_ALICE_PASSWORD"
	assert_success
	assert_line --partial 'pass: +OK maildrop has 2 messages'
	wait_logged 'logout: user=<alice> rhost=<127\.0\.0\.1> '
	run grep -c -E 'login: user=<alice> rhost=<127\.0\.0\.1> method=USER tls=no$' "$D/pop1.syslog" "$D/pop2.syslog"
	assert_output --regexp ':1$'
}

@test "a client that leaves right after the greeting is still logged with its address and end=eof" {
	run pop "$CLIENT_OK" "$PROXY" 110 hello
	assert_success
	assert_line 'greeting: +OK maildir-pop3d ready.'
	# at info level: only the proxy's own checks may go unlogged, never a client who leaves
	wait_logged ": info: disconnect: rhost=<$CLIENT_OK> end=eof\$"
}

@test "a PROXY header from an address outside --proxy-from is refused, as without HAProxy" {
	# A second HAProxy to pop1's port 1110, where the daemon trusts only 203.0.113.0/24 (v1
	# there: how a v2 header from an untrusted peer ends is tests/proxy.bats' business).
	local pid hpid
	hostns_daemon_env "$D/pop1.syslog"
	hostns_spawn pop1 "$D/pop1.ssa1110.log" systemd-socket-activate -l "$POP1:1110" -a --inetd \
		"${HOSTNS_ENV[@]}" "$MAILDIR_POP3D" --proxy-from=203.0.113.0/24 --plaintext=always
	pid=$HOSTNS_SPAWNED
	hostns_wait_listening pop1 1110 "$pid"
	cat >"$D/haproxy-untrusted.cfg" <<-EOF
		global
		    log stdout format raw local0 info
		defaults
		    mode tcp
		    timeout connect 5s
		    timeout client 1m
		    timeout server 1m
		listen untrusted
		    bind $PROXY:1110
		    server pop1 $POP1:1110 send-proxy
		listen noheader
		    bind $PROXY:1111
		    server pop1 $POP1:110
	EOF
	hostns_spawn lan "$D/haproxy-untrusted.log" haproxy -db -f "$D/haproxy-untrusted.cfg"
	hpid=$HOSTNS_SPAWNED
	hostns_wait_listening lan 1110 "$hpid"
	run pop "$CLIENT_OK" "$PROXY" 1110 plain alice "$REALPAM_ALICE_PASSWORD"
	# the greeting, then the header HAProxy sent first is refused and the connection closed
	assert_line 'greeting: +OK maildir-pop3d ready.'
	refute_output --partial 'pass: +OK'
	wait_logged "warning: PROXY header from untrusted peer: rhost=<$PROXY>"
	# and a client that bypasses HAProxy and talks to pop1 directly cannot claim an address
	run hostns_exec lan env RAWCLIENT_SOURCE="$CLIENT_OK" python3 "$BATS_TEST_DIRNAME/lib/rawclient.py" "$POP1" 110 \
		"send:PROXY TCP4 192.0.2.99 $POP1 4711 110\\r\\n" rest
	assert_line '< +OK maildir-pop3d ready.'
	assert_line '< -ERR PROXY header not accepted from this address.'
	assert_line closed
	wait_logged "warning: PROXY header from untrusted peer: rhost=<$CLIENT_OK>"
	# a trusted proxy that sends no header: closed without a greeting, logged
	run pop "$CLIENT_OK" "$PROXY" 1111 hello
	refute_output --partial 'greeting: +OK'
	wait_logged "warning: PROXY header missing or malformed: rhost=<$PROXY>: "
	run grep -c -E ': info: (login|auth failed):' "$D/pop1.syslog"
	assert_output 0
	kill -TERM "$hpid" "$pid"
	hostns_wait_gone "$hpid" "$pid"
}

@test "HAProxy's health checks see the greeting on both hosts and both ports (PROXY v2 LOCAL, v1, TLS)" {
	local i state
	# Each server is UP (three checks of "+OK" in a row, with rise 2 ... ) ...
	for ((i = 0; i < 200; i++)); do
		state=$(haproxy_cmd 'show stat' | awk -F, '$1 ~ /^pop3s?$/ && $2 ~ /^pop[12]$/ { print $1 "/" $2 " " $18 " " $37 }' | sort)
		[[ $(grep -c ' UP L7OK$' <<<"$state") == 4 ]] && break
		sleep 0.1
	done
	assert_equal "$state" "$(printf '%s\n' 'pop3/pop1 UP L7OK' 'pop3/pop2 UP L7OK' 'pop3s/pop1 UP L7OK' 'pop3s/pop2 UP L7OK')"
	# ... and the checks reached the daemon: systemd-socket-activate on pop1 spawned one.
	run grep -c "^Connection from $PROXY:" "$D/pop1.ssa110.log"
	assert_output --regexp '^[1-9][0-9]*$'
}

@test "HAProxy's health checks log nothing at info level (PROXY v2 LOCAL, v1, over TLS); a client's early disconnect still does" {
	local i n0 n
	: >"$D/pop1.syslog"
	: >"$D/pop2.syslog"
	# Checks every 2 s per server and port: wait for 3 more on pop1's port 110 (spawned by
	# systemd-socket-activate, which says so); the other three have run meanwhile too.
	n0=$(grep -c "^Connection from $PROXY:" "$D/pop1.ssa110.log")
	for ((i = 0; i < 300; i++)); do
		n=$(grep -c "^Connection from $PROXY:" "$D/pop1.ssa110.log")
		((n >= n0 + 3)) && break
		sleep 0.05
	done
	((n >= n0 + 3)) || fail "fewer than 3 health checks in 15 s"
	# HAProxy still sees every server up: the checks got their greeting
	run haproxy_cmd 'show stat'
	run awk -F, '$1 ~ /^pop3s?$/ && $2 ~ /^pop[12]$/ { print $1 "/" $2 " " $18 }' <<<"$output"
	assert_output "$(printf '%s\n' 'pop3/pop1 UP' 'pop3/pop2 UP' 'pop3s/pop1 UP' 'pop3s/pop2 UP')"
	# nothing but debug lines from them, on either host
	run grep -h -v ': debug: ' "$D/pop1.syslog" "$D/pop2.syslog"
	assert_output ''
	run grep -c ': debug: disconnect: rhost=<' "$D/pop1.syslog"
	refute_output 0
	run pop "$CLIENT_OK" "$PROXY" 110 hello
	wait_logged ": info: disconnect: rhost=<$CLIENT_OK> end=eof\$"
	run grep -h -v ': debug: ' "$D/pop1.syslog" "$D/pop2.syslog"
	assert_output --regexp "^facility=mail maildir-pop3d\[[0-9]+\]: info: disconnect: rhost=<$CLIENT_OK> end=eof\$"
}
