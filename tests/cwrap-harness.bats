#!/usr/bin/env bats
# Tests of the cwrap harness itself (tests/lib/cwrap.bash, tests/lib/syslog-shim.c), so that a
# broken harness fails here and not as a mysterious daemon failure. Needs MP_SYSLOG_SHIM
# (path of the built syslog-shim.so), pamtester, python3, cc and systemd-socket-activate.

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
bats_require_minimum_version 1.5.0

setup() {
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (cc -shared -fPIC -o syslog-shim.so tests/lib/syslog-shim.c)"
	command -v pamtester >/dev/null || fail "pamtester is not installed"
	cwrap_setup "$BATS_TEST_TMPDIR/cw"
	cwrap_add_user alice 'open sesame' 1001
	cwrap_add_user bob secret 1002 other-service
	cwrap_add_group mailers 2000 alice bob
}

teardown() {
	cwrap_teardown
}

@test "pam_matrix accepts the right password through pam_wrapper" {
	run pamtester maildir-pop3d alice authenticate acct_mgmt <<<'open sesame'
	assert_success
	assert_output --partial 'successfully authenticated'
}

@test "pam_matrix refuses a wrong password" {
	run pamtester maildir-pop3d alice authenticate <<<'open sesam'
	assert_failure
	assert_output --partial 'Authentication failure'
}

@test "pam_matrix refuses an unknown user" {
	run pamtester maildir-pop3d mallory authenticate <<<'open sesame'
	assert_failure
	assert_output --partial 'Authentication failure'
}

@test "an account for another service authenticates but fails acct_mgmt (the expired case)" {
	run pamtester maildir-pop3d bob authenticate <<<secret
	assert_success
	run pamtester maildir-pop3d bob authenticate acct_mgmt <<<secret
	assert_failure
	assert_output --partial 'Permission denied'	# PAM_PERM_DENIED
}

@test "pam_wrapper reads the test service directory, not /etc/pam.d" {
	[ -f /etc/pam.d/login ] || skip "no /etc/pam.d/login on this host"
	run pamtester login alice authenticate <<<'open sesame'	# falls to the test "other": denied
	assert_failure
}

@test "PAM messages go to the syslog shim, not to stderr" {
	rm "$CWRAP_DIR/pam.d/other"	# libpam now complains about the missing "other" service
	run --separate-stderr pamtester maildir-pop3d alice authenticate <<<'open sesame'
	assert_success
	refute_output --partial 'no default config'	# with --separate-stderr, $output is stdout
	# shellcheck disable=SC2154
	[[ $stderr != *PWRAP* && $stderr != *'no default config'* ]]
	run grep -F 'no default config other' "$MP_TEST_SYSLOG"
	assert_success
	assert_output --partial 'facility=authpriv'
}

@test "nss_wrapper serves the test users and no host user" {
	run getent passwd alice
	assert_success
	assert_output "alice:x:1001:1001:alice:$CWRAP_DIR/home/alice:/bin/sh"
	[ -d "$CWRAP_DIR/home/alice" ]
	run getent passwd daemon
	assert_failure
}

@test "uid_wrapper starts a process as root" {
	run id -u
	assert_output 0
}

@test "supplementary groups from the test group file reach initgroups" {
	run id -G alice
	assert_output '1001 2000'
}

@test "a full privilege drop under uid_wrapper cannot be undone" {
	run python3 - <<-'EOF'
		import os, pwd
		pw = pwd.getpwnam("alice")
		os.initgroups("alice", pw.pw_gid)
		os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
		os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
		print("ids", os.getresuid(), os.getresgid(), sorted(os.getgroups()))
		for f, a in ((os.setuid, (0,)), (os.seteuid, (0,)), (os.setresuid, (0, 0, 0)), (os.setresgid, (0, 0, 0))):
		    try:
		        f(*a)
		        print(f.__name__, "succeeded")
		    except PermissionError:
		        print(f.__name__, "EPERM")
	EOF
	assert_success
	assert_line 'ids (1001, 1001, 1001) (1001, 1001, 1001) [1001, 2000]'
	assert_line 'setuid EPERM'
	assert_line 'seteuid EPERM'
	assert_line 'setresuid EPERM'
	assert_line 'setresgid EPERM'
}

@test "cwrap_as_user starts a process as the test user, unable to become root" {
	run cwrap_as_user alice /usr/bin/python3 -c '
import os
print(os.getresuid(), os.getresgid(), sorted(os.getgroups()))
try:
    os.setuid(0)
    print("setuid(0) succeeded")
except PermissionError:
    print("setuid(0) EPERM")'
	assert_success
	assert_line '(1001, 1001, 1001) (1001, 1001, 1001) [1001, 2000]'
	assert_line 'setuid(0) EPERM'
}

@test "the syslog shim writes ident, pid, priority, facility and %m, fortified or not" {
	cat >"$BATS_TEST_TMPDIR/logger.c" <<-'EOF'
		#include <errno.h>
		#include <syslog.h>
		int main(void) {
			openlog("maildir-pop3d", LOG_PID, LOG_MAIL);
			errno = ENOENT;
			syslog(LOG_WARNING, "open: %m");
			syslog(LOG_INFO, "user=<%s>", "a\r\nb");
			syslog(LOG_CRIT, "100%% done");
			return 0;
		}
	EOF
	local flags
	for flags in -O0 '-O2 -D_FORTIFY_SOURCE=2'; do
		: >"$MP_TEST_SYSLOG"
		# shellcheck disable=SC2086
		cwrap_unwrapped cc $flags -o "$BATS_TEST_TMPDIR/logger" "$BATS_TEST_TMPDIR/logger.c"
		"$BATS_TEST_TMPDIR/logger"
		run cat "$MP_TEST_SYSLOG"
		assert_line --regexp '^facility=mail maildir-pop3d\[[0-9]+\]: warning: open: No such file or directory$'
		assert_line --regexp '^facility=mail maildir-pop3d\[[0-9]+\]: info: user=<a#015#012b>$'
		assert_line --regexp '^facility=mail maildir-pop3d\[[0-9]+\]: crit: 100% done$'
		assert [ "${#lines[@]}" -eq 3 ]
	done
}

@test "cwrap_env_prefix carries the wrappers into an empty environment" {
	# shellcheck disable=SC2046
	run env -i $(cwrap_env_prefix) sh -c 'id -u; getent passwd alice'
	assert_success
	assert_line --index 0 0
	assert_line --index 1 --partial "$CWRAP_DIR/home/alice"
}

@test "a process under systemd-socket-activate runs with the wrappers" {
	command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate missing"
	local port pid out
	port=$((20000 + RANDOM % 20000))
	# shellcheck disable=SC2046,SC2016
	systemd-socket-activate -l "127.0.0.1:$port" -a $(cwrap_env_prefix) \
		sh -c '{ echo "$LISTEN_FDS $LISTEN_PID $$"; id -u; getent passwd alice; } >&3' \
		2>"$BATS_TEST_TMPDIR/ssa.err" 3>&- &
	pid=$!
	for _ in $(seq 50); do
		grep -q '^Listening on' "$BATS_TEST_TMPDIR/ssa.err" && break
		sleep 0.1
	done
	# shellcheck disable=SC2016
	out=$(timeout 5 bash -c 'exec 4<>"/dev/tcp/127.0.0.1/$1"; cat <&4' _ "$port") || true
	kill "$pid"
	wait "$pid" || true
	run echo "$out"
	assert_line --index 0 --regexp '^1 ([0-9]+) \1$'	# the socket is fd 3; env kept LISTEN_PID right
	assert_line --index 1 0
	assert_line --index 2 --partial "$CWRAP_DIR/home/alice"
}
