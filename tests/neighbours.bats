#!/usr/bin/env bats
# Living with the neighbours (root only; skipped otherwise; issue 13 item 6): the real programs
# that share a Maildir with a POP3 server, at work while maildir-pop3d serves it.
#   - Dovecot IMAP (dovecot-imapd, its own config) changes flags, moves new/ to cur/ and
#     expunges while POP3 sessions retrieve everything and delete: every RETR is byte-exact,
#     LIST equals RETR, a UIDL never changes, only what IMAP expunged may fail to open, and at
#     the end IMAP, POP3 and the files agree on exactly which messages are left.
#   - Dovecot's delivery agent (dovecot-lda) and procmail deliver at a steady rate while POP3
#     sessions retrieve and delete, some of them SIGKILLed (by the pid of their serving process)
#     or dropped mid-session: every delivered message is retrieved byte-exact at least once,
#     none is lost, and a message is retrieved twice only after a session that had it ended
#     without +OK to QUIT (RFC 1939: only QUIT from TRANSACTION deletes).
# Counts are printed (bats --tap shows them as "#" lines); nothing is timed. The servers run
# in private namespaces (tests/lib/peers.bash); the drivers are tests/lib/neighbours.py.

bats_load_library bats-support
bats_load_library bats-assert
load lib/peers
bats_require_minimum_version 1.5.0

setup() {
	peers_available || skip "the servers run with Dovecot in private namespaces: $(peers_why_not)"
	[[ -x /usr/lib/dovecot/imap ]] || fail "Dovecot IMAP is not installed (Debian: dovecot-imapd)"
	command -v procmail >/dev/null || fail "procmail is not installed (Debian: procmail)"
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	peers_setup "$BATS_TEST_TMPDIR/p"
	MD=$REALPAM_ALICE_HOME/Maildir
	PW=$REALPAM_ALICE_PASSWORD
	NB=$PEERS_LIBDIR/neighbours.py
	MSGS=$PEERS_DIR/msgs
}

teardown() {
	if [[ -z ${BATS_TEST_COMPLETED:-} && -n ${PEERS_DIR:-} ]]; then
		local f
		for f in "$PEERS_DIR"/*.log "$PEERS_DIR"/ours.syslog "$PEERS_DIR"/deliver.out "$MSGS"/delivered; do
			[[ -s $f ]] && { echo "--- $f:"; tail -20 "$f"; }
		done
	fi
	[[ -n ${DELIVERER:-} ]] && kill "$DELIVERER" 2>/dev/null && wait "$DELIVERER" 2>/dev/null
	peers_stop_all
	return 0
}

# show: the driver's counts as TAP comments.
show() {
	sed 's/^/# /' <<<"$output" >&3
}

@test "Dovecot IMAP changing flags, moving new/ to cur/ and expunging while POP3 sessions run: nothing lost, changed or renamed under a UIDL" {
	python3 "$NB" messages "$MSGS" 36
	# 30 messages now (IMAP's SELECT moves them to cur/), 6 more arrive during the run.
	local f
	for f in "$MSGS"/00{0,1,2}?.eml "$MSGS"/0030.eml; do
		cp "$f" "$MD/new/$((1700000000 + 10#$(basename "$f" .eml))).M${RANDOM}P1.nb"
	done
	chown -R "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$MD"
	[[ $(find "$MD/new" -type f | wc -l) == 30 ]] || fail "expected 30 messages in new/"
	peers_dovecot imap imap
	peers_ours
	run python3 "$NB" imap "$OURS_PORT" "$DOVECOT_IMAP_PORT" alice "$PW" "$MSGS" "$MD" \
		"$REALPAM_ALICE_UID" "$REALPAM_ALICE_GID" 13
	show
	assert_success
	refute_output --partial VIOLATION
	assert_output --regexp 'IMAP: [1-9][0-9]* flag changes, [1-9][0-9]* expunges'
}

@test "dovecot-lda and procmail delivering while POP3 sessions retrieve, delete and get killed: every message retrieved byte-exact, none lost, duplicates only without +OK to QUIT" {
	python3 "$NB" messages "$MSGS" 120
	chmod -R a+rX "$MSGS"
	chown "$REALPAM_ALICE_UID" "$MSGS"
	peers_dovecot_conf lda pop3 "log_path = /dev/stderr"
	printf ':0\n%s/\n' "$MD" >"$PEERS_DIR/procmailrc"
	chmod 644 "$PEERS_DIR/procmailrc"
	peers_ours
	local ssa
	ssa=$(pgrep -f "^systemd-socket-activate -l 127.0.0.1:$OURS_PORT ") || fail "no systemd-socket-activate for port $OURS_PORT"
	peers_as_alice /usr/bin/python3 "$NB" deliver "$MSGS" "$PEERS_DIR/lda.conf" "$PEERS_DIR/procmailrc" \
		>"$PEERS_DIR/deliver.out" 2>&1 &
	DELIVERER=$!
	run python3 "$NB" kills "$OURS_PORT" "$ssa" alice "$PW" "$MSGS" 7
	show
	wait "$DELIVERER"
	DELIVERER=
	assert_success
	refute_output --partial VIOLATION
	assert_line 'lost: 0'
	assert_line --regexp '^deliveries: 120 \(dovecot-lda 60, procmail 60\)$'
	# The kills happened: each kind at least once.
	assert_output --regexp 'killed-after-retr [1-9]'
	assert_output --regexp 'killed-after-dele [1-9]'
	# Nothing left behind: the maildrop is empty.
	run find "$MD/new" "$MD/cur" -type f
	assert_output ''
}
