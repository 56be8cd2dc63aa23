#!/usr/bin/env bats
# Load: 200 concurrent PAM-authenticated sessions over systemd-socket-activate --inetd on
# loopback, against a 1,000-message Maildir for each of 4 users, every RETR checked byte-exact
# and every Maildir checked afterwards (lib/loadctl.py says exactly what), while 100 idle
# connections (half before login, half logged in) stay open and must not stop the others from
# being served.  Zero errors, zero lost or duplicated messages.
#
# The launcher's limits: systemd-socket-activate (systemd 252, --accept) has none of its own.
# It accepts and forks one child per connection, with no cap on children and no rate limit;
# its listening socket's backlog is the kernel's net.core.somaxconn (4096 on Debian 12).  So
# the bounds are the kernel's: pid_max, RLIMIT_NPROC of the user, memory, and file
# descriptors (it closes each accepted socket after forking).  A deployment bounds
# connections with the units' MaxConnections= and MaxConnectionsPerSource=
# (systemd/maildir-pop3d.socket); this launcher has no such settings, which is why the test
# can hold 300 connections at once.
#
# The test's own limit is pam_wrapper's: it puts every process it is loaded into in one of
# only 62 directories /tmp/pam.[0-9A-Za-z], and the 63rd process at once exits at start-up.
# So each session is started through lib/privtmp.sh, which gives it a private /tmp (a tmpfs
# in its own mount namespace, with the few /tmp entries it needs bind-mounted back).  That
# takes root or unprivileged user namespaces; without either the test is skipped.
# Run time: about 15 s on 2 cores (50 s with the ASan build, which peaks at ~2 GB of RAM).
# Timings per phase and per session are printed (bats --show-output-of-passing-tests).

load lib/cwrap
bats_load_library bats-support
bats_load_library bats-assert

: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
MP_LIB=${BATS_TEST_DIRNAME}/lib
USERS=(alice bob carol dave)

setup() {
	LAUNCHER=
	command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate not installed"
	sh "$MP_LIB/privtmp.sh" -- true 2>/dev/null ||
		skip "needs root or unprivileged user namespaces for a private /tmp per session (pam_wrapper allows ~62 processes per /tmp)"
	T=$(mktemp -d "${TMPDIR:-/tmp}/mp-load.XXXXXX")
	chmod 755 "$T"
	cwrap_setup "$T/cw"
	local i=0 u
	for u in "${USERS[@]}"; do
		cwrap_add_user "$u" "pw-$u-$i" $((2001 + i))
		cwrap_unwrapped python3 "$MP_LIB/loadctl.py" mkmaildir "$CWRAP_DIR/home/$u/Maildir" 1000 $((i + 1))
		i=$((i + 1))
	done
}

teardown() {
	if [[ -n ${LAUNCHER:-} ]]; then
		kill "$LAUNCHER" 2>/dev/null || true
		wait "$LAUNCHER" 2>/dev/null || true
	fi
	cwrap_teardown
	# Nothing wrapped may start once the PAM service directory is gone (pam_wrapper exits).
	unset LD_PRELOAD PAM_WRAPPER
	[[ -n ${T:-} && -d $T ]] && rm -rf "$T"
	return 0
}

@test "200 concurrent sessions retrieve byte-exact with 100 idle connections open: no error, nothing lost or duplicated" {
	local port keep i args=()
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mapfile -t keep < <(cwrap_tmp_keep "$MAILDIR_POP3D" "$MP_SYSLOG_SHIM" "$T")
	local envp
	envp=$(cwrap_env_prefix)
	# A subshell that execs the launcher, so that $! is the launcher's own pid (a
	# function in the background would leave it running after teardown's kill).
	# shellcheck disable=SC2086 # the env prefix is meant to be split (no blanks in it)
	(
		unset "${CWRAP_VARS[@]}"
		exec systemd-socket-activate --inetd -a -l "127.0.0.1:$port" \
			sh "$MP_LIB/privtmp.sh" "${keep[@]}" -- $envp "$MAILDIR_POP3D"
	) </dev/null >/dev/null 2>"$T/launcher.log" 3>&- &
	LAUNCHER=$!
	for ((i = 0; i < 200; i++)); do
		grep -q 'Listening on' "$T/launcher.log" 2>/dev/null && break
		sleep 0.05
	done
	for i in "${!USERS[@]}"; do
		args+=(--user "${USERS[i]}:pw-${USERS[i]}-$i:$CWRAP_DIR/home/${USERS[i]}/Maildir")
	done
	run cwrap_unwrapped python3 "$MP_LIB/loadctl.py" run 127.0.0.1 "$port" "${args[@]}" \
		--sessions 200 --idle 100 --per-session 20 --limit 150
	echo "$output"
	assert_success
	assert_line --regexp '^load: 100 idle connections opened in .*; 200 sessions \(4000 RETR, [0-9]+ octets\) in .*; 100 idle QUIT'
	for u in "${USERS[@]}"; do
		assert_line "maildir $u: 500 messages left of 1000, 500 fetched and deleted"
	done
	# Every session (4 warm-up, 200, 50 idle ones) logged in once and out once, in the
	# server's own words.
	[ "$(cwrap_unwrapped grep -c 'maildir-pop3d\[[0-9]*\]: info: login: user=<' "$MP_TEST_SYSLOG")" -eq 254 ]
	[ "$(cwrap_unwrapped grep -c 'maildir-pop3d\[[0-9]*\]: info: logout: user=<.* end=quit' "$MP_TEST_SYSLOG")" -eq 254 ]
}
