#!/usr/bin/env bats
# Tests of the root-only real-PAM harness (tests/lib/realpam.bash): test users live only in a
# private mount namespace and Debian's pam_unix stack authenticates them there.

bats_load_library bats-support
bats_load_library bats-assert
load lib/realpam

setup() {
	realpam_available || skip "needs root and private mount namespaces: $(realpam_why_not)"
	D=$BATS_TEST_TMPDIR/realpam
	realpam_setup "$D"
}

teardown() {
	[ -z "${SPAWNED:-}" ] || realpam_kill "$SPAWNED"
}

host_sums() {
	sha256sum /etc/passwd /etc/shadow /etc/group /etc/gshadow 2>/dev/null
	find /etc/pam.d -type f -exec sha256sum {} + | sort
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

@test "pam_unix accepts alice's password inside the private namespace" {
	run realpam_run "$D" pamtester "$REALPAM_SERVICE" alice authenticate acct_mgmt \
		<<<"$REALPAM_ALICE_PASSWORD"
	assert_success
	assert_output --partial "successfully authenticated"
	assert_output --partial "account management done"
	run realpam_run "$D" pamtester "$REALPAM_SERVICE" bob authenticate acct_mgmt \
		<<<"$REALPAM_BOB_PASSWORD"
	assert_success
}

@test "pam_unix refuses a wrong password and another user's password" {
	run realpam_run "$D" pamtester "$REALPAM_SERVICE" alice authenticate <<<"alice-secret-2"
	assert_failure
	assert_output --partial "Authentication failure"
	run realpam_run "$D" pamtester "$REALPAM_SERVICE" alice authenticate \
		<<<"$REALPAM_BOB_PASSWORD"
	assert_failure
}

@test "an expired account passes authenticate but is refused by acct_mgmt" {
	run realpam_run "$D" pamtester "$REALPAM_SERVICE" carol authenticate acct_mgmt \
		<<<"$REALPAM_CAROL_PASSWORD"
	assert_failure
	assert_output --partial "successfully authenticated"
	assert_output --partial "Your account has expired"
	# pam_unix says PAM_ACCT_EXPIRED; common-account turns it into PAM_AUTH_ERR via pam_deny.
	assert_output --partial "pamtester: Authentication failure"
	refute_output --partial "account management done"
}

@test "an expired password passes authenticate but acct_mgmt wants a new one" {
	run realpam_run "$D" pamtester "$REALPAM_SERVICE" dave authenticate acct_mgmt \
		<<<"$REALPAM_DAVE_PASSWORD"
	assert_failure
	assert_output --partial "successfully authenticated"
	# PAM_NEW_AUTHTOK_REQD, passed through by common-account's new_authtok_reqd=done.
	assert_output --partial "Authentication token is no longer valid; new one required"
	refute_output --partial "account management done"
}

@test "the test users exist only inside the namespace" {
	run getent passwd alice
	[ "$status" -ne 0 ] || [ "$(cut -d: -f3 <<<"$output")" != "$REALPAM_ALICE_UID" ]
	run realpam_run "$D" id alice
	assert_success
	assert_output "uid=$REALPAM_ALICE_UID(alice) gid=$REALPAM_ALICE_GID(alice) groups=$REALPAM_ALICE_GID(alice),$REALPAM_MPGROUP_GID(mpgroup)"
	run realpam_run "$D" id -G bob
	assert_output "$REALPAM_BOB_GID"
}

@test "alice reaches her Maildir after dropping to her uid and groups" {
	# shellcheck disable=SC2016
	run realpam_run "$D" setpriv --reuid alice --regid alice --init-groups --reset-env sh -c \
		'id -u; id -G; touch "$HOME/Maildir/new/probe" && echo wrote' </dev/null
	assert_success
	assert_line --index 0 "$REALPAM_ALICE_UID"
	assert_line --index 1 "$REALPAM_ALICE_GID $REALPAM_MPGROUP_GID"
	assert_line --index 2 wrote
	[ "$(stat -c %u "$REALPAM_ALICE_HOME/Maildir/new/probe")" = "$REALPAM_ALICE_UID" ]
	[ "$(stat -c %a "$REALPAM_ALICE_HOME")" = 700 ]
}

@test "stdin and stdout pass through the namespace, and the exit status comes back" {
	run realpam_run "$D" sh -c 'cat; exit 3' < <(printf 'USER alice\r\nQUIT\r\n')
	assert_equal "$status" 3
	assert_output "$(printf 'USER alice\r\nQUIT\r')"
}

@test "the host's /etc/passwd, /etc/shadow and /etc/group are unchanged after the namespace" {
	local before
	before=$(host_sums)
	realpam_setup "$BATS_TEST_TMPDIR/second"
	realpam_run "$D" pamtester "$REALPAM_SERVICE" alice authenticate <<<"$REALPAM_ALICE_PASSWORD"
	# Writes inside the namespace land in the copies.
	realpam_run "$D" sh -c 'echo "eve:x:61999:61999::/nonexistent:/bin/false" >>/etc/passwd
		echo "eve:x:61999:" >>/etc/group; echo "eve:*:1:0:99999:7:::" >>/etc/shadow
		echo "# touched" >>/etc/pam.d/common-auth'
	grep -q '^eve:' "$D/etc/passwd"
	assert_equal "$(host_sums)" "$before"
	run grep -q '^eve:' /etc/passwd
	assert_failure
}

@test "killing a spawned namespace ends the launcher and every connection it serves" {
	local port marker
	port=$(free_port)
	marker=realpam-marker-$$-$BATS_TEST_NUMBER
	SPAWNED=$(realpam_spawn "$D" systemd-socket-activate -l "127.0.0.1:$port" --accept --inetd \
		bash -c "id -un alice; exec -a $marker sleep 300")
	for _ in $(seq 100); do
		grep -q "Listening on" "$D/spawn.log" 2>/dev/null && break
		sleep 0.05
	done
	exec 5<>"/dev/tcp/127.0.0.1/$port"
	read -r -t 5 line <&5
	exec 5<&-
	assert_equal "$line" alice
	run pgrep -f "^$marker"
	assert_success
	kill "$SPAWNED"
	realpam_wait_gone "$SPAWNED"
	SPAWNED=
	run pgrep -f "^$marker"
	assert_failure
	run pgrep -f "systemd-socket-activate -l 127.0.0.1:$port "
	assert_failure
}
