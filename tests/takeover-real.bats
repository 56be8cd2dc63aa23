#!/usr/bin/env bats
# Taking over from the real Dovecot and Courier (root only; skipped otherwise; issue 13): a Maildir of
# about 40 awkward messages (bursts in one second, no final newline, ,W= names, dot lines, long
# names, flags in cur/) is served first by Debian's Dovecot 2.3 with default settings, or by
# Courier's POP3 server (Debian's courier-pop, unpacked: couriertcpd, courierpop3login with
# authdaemond and pam_unix, courierpop3d), through the real
# leave-on-server clients fetchmail, getmail6 and mpop, each with its own state file. What the
# old servers answered is recorded and checked against the Maildir, every client must fetch
# every message once and then nothing. Then the old server stops and maildir-pop3d (real PAM)
# serves the same port, as an admin switches: it must answer the old server's UIDL list in the
# old server's order, LIST sizes equal to what RETR sends (the old servers' own LIST is 2 octets
# short for a message without a final newline; the test prints where), the same again in a
# later session, and each client downloads nothing again. Servers, users and PAM live in
# private mount and PID namespaces (tests/lib/peers.bash), clients run as uid 65534 on
# loopback, on one port for all servers (getmail keys its state on host and port).
# Leaving again (issue 13 item 5): maildir-pop3d served the Maildir (and 4 messages of its
# own), contrib/maildir-pop3d-handback hands its UIDLs back, and the real Dovecot or Courier
# answers them, with no client downloading anything again; and Dovecot's
# pop3_uidl_format = %f on a Maildir whose UIDLs were all maildir-pop3d's own.
#
# Needs: dovecot-core dovecot-pop3d fetchmail getmail6 mpop, and courier-pop's files
# (tests/lib/peers.bash fetches them with apt-get download when MP_COURIER_ROOT is not set).

bats_load_library bats-support
bats_load_library bats-assert
load lib/peers
bats_require_minimum_version 1.5.0

CLIENT_UID=65534
# Clients run as CLIENT_UID: not a python3 from root's own environment.

setup() {
	peers_available || skip "the servers run with Dovecot in private namespaces: $(peers_why_not)"
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	local c
	for c in fetchmail getmail mpop; do
		command -v "$c" >/dev/null || fail "$c is not installed (Debian: fetchmail getmail6 mpop)"
	done
	peers_setup "$BATS_TEST_TMPDIR/p"
	MD=$REALPAM_ALICE_HOME/Maildir
	PW=$REALPAM_ALICE_PASSWORD
	PEERS_POP3_PORT=$(peers_port)
	PY=$PEERS_LIBDIR/peers.py
	mkdir -p "$PEERS_DIR/clients"
	chown "$CLIENT_UID:$CLIENT_UID" "$PEERS_DIR/clients"
}

teardown() {
	if [[ -z ${BATS_TEST_COMPLETED:-} && -n ${PEERS_DIR:-} ]]; then
		local f
		for f in "$PEERS_DIR"/*.log "$PEERS_DIR"/*.out "$PEERS_DIR"/ours.syslog; do
			[[ -s $f ]] && { echo "--- $f:"; tail -20 "$f"; }
		done
	fi
	peers_stop_all
	return 0
}

# deliver_corpus: the generated corpus, plus four messages through Dovecot's real delivery
# agent (dovecot-lda writes ,S= and ,W= into the names), one without a final newline; all
# alice's. Leaves their count in NMSG.
deliver_corpus() {
	run python3 "$PY" corpus "$MD" "$PEERS_DIR/orig"
	assert_success
	peers_dovecot_conf lda pop3 "log_path = /dev/stderr"
	chown -R "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$MD"
	local i
	for i in 1 2 3 4; do
		if [[ $i == 3 ]]; then
			printf 'From: lda@example.org\nSubject: lda %d\nMessage-ID: <lda%d.takeover@example.org>\n\nno final newline %d' "$i" "$i" "$i"
		else
			printf 'From: lda@example.org\nSubject: lda %d\nMessage-ID: <lda%d.takeover@example.org>\n\n.\nbody %d\n' "$i" "$i" "$i"
		fi | peers_lda -f lda@example.org || fail "dovecot-lda failed"
	done
	NMSG=$(find "$MD/new" "$MD/cur" -type f | wc -l)
	assert_equal "$NMSG" 44
	run bash -c 'ls "$1/new" | grep -c ",S=[0-9]*,W=[0-9]*$"' _ "$MD"
	assert [ "$output" -ge 18 ]
}

# view NAME: a UIDL, LIST and RETR-everything session on $PEERS_POP3_PORT into $PEERS_DIR/NAME.view.
view() {
	python3 "$PY" view "$PEERS_POP3_PORT" alice "$PW" >"$PEERS_DIR/$1.view" ||
		fail "the $1 session failed: $(cat "$PEERS_DIR/$1.view")"
	echo "# $1 view: $(head -3 "$PEERS_DIR/$1.view" | tr '\n' ';') ..." >&3
}

# client KIND: one run of fetchmail, getmail or mpop as uid 65534 against $PEERS_POP3_PORT,
# keeping mail on the server, with its state in $PEERS_DIR/clients/KIND; sets FETCHED.
client() {
	run setpriv --reuid="$CLIENT_UID" --regid="$CLIENT_UID" --clear-groups -- \
		/usr/bin/python3 "$PY" client "$1" "$PEERS_DIR/clients/$1" "$PEERS_POP3_PORT" alice "$PW"
	assert_success
	FETCHED=$(sed -n "s/^$1 fetched //p" <<<"$output")
}

# every_client_once: each client fetches all NMSG messages, then, run again, nothing.
every_client_once() {
	local c
	for c in fetchmail getmail mpop; do
		client "$c"
		assert_equal "$c fetched $FETCHED" "$c fetched $NMSG"
		client "$c"
		assert_equal "$c fetched $FETCHED (again)" "$c fetched 0 (again)"
	done
}

# The order a view shows, as the messages' Message-IDs.
order_of() {
	awk '$1 != "stat" { print $5 }' "$PEERS_DIR/$1.view"
}

# The order of arrival: the delivery time in the name, then its microseconds (M field),
# then the name; the Message-IDs of the files in the Maildir in that order.
arrival_order() {
	python3 - "$MD" <<-'PY'
		import os, re, sys
		md = sys.argv[1]
		rows = []
		for sub in ("new", "cur"):
		    for n in os.listdir(os.path.join(md, sub)):
		        data = open(os.path.join(md, sub, n), "rb").read()
		        mid = re.search(rb"Message-ID: <([^>]*)>", data).group(1).decode()
		        base = n.split(":")[0]
		        secs = int(base.split(".")[0])
		        m = re.match(r"\d+\.(?:[^.]*?)M(\d+)", base)
		        rows.append((secs, int(m.group(1)) if m else -1, base, mid))
		for r in sorted(rows):
		    print(r[3])
	PY
}

# Every message a view lists was sent byte-exact: its RETR size and content match the original.
@test "Dovecot 2.3 (default settings) serves the corpus in arrival order with its default UIDLs, and every leave-on-server client fetches it once" {
	deliver_corpus
	peers_dovecot dovecot pop3
	view dovecot
	run grep -c -E '^[0-9]+ [0-9a-f]{16} ' "$PEERS_DIR/dovecot.view"
	assert_output "$NMSG"
	# Dovecot's default pop3_uidl_format %08Xu%08Xv: the IMAP UID, then UIDVALIDITY.
	run awk '$1 == 1 { print substr($2, 1, 8) } $1 == 44 { print substr($2, 1, 8) }' "$PEERS_DIR/dovecot.view"
	assert_output $'00000001\n0000002c'
	# Its order is its UID order: dovecot-lda gave its four messages UIDs 1-4 as it delivered
	# them (it keeps dovecot-uidlist), the others got theirs when the POP3 session first saw
	# them, in arrival order (seconds, then microseconds).
	run diff <(order_of dovecot) <(printf 'lda%d.takeover@example.org\n' 1 2 3 4; arrival_order | grep -v '^lda')
	assert_success
	every_client_once
}

@test "Courier's pop3d serves the corpus with UID<n>-<uidvalidity> UIDLs and its sizelist, and every leave-on-server client fetches it once" {
	deliver_corpus
	peers_courier
	view courier
	run grep -c -E '^[0-9]+ UID[0-9]+-[0-9]+ ' "$PEERS_DIR/courier.view"
	assert_output "$NMSG"
	[[ -f $MD/courierpop3dsizelist ]] || fail "Courier wrote no courierpop3dsizelist"
	run head -1 "$MD/courierpop3dsizelist"
	assert_output --regexp '^/3 45 [0-9]+$'
	every_client_once
}


# ---- the switch: the old server stops, maildir-pop3d serves the same port -----------------

# served_by OLD: the corpus served by OLD (dovecot or courier) through every client, then OLD
# stopped and maildir-pop3d started on the same port.
served_by() {
	deliver_corpus
	case $1 in
	dovecot) peers_dovecot dovecot pop3 ;;
	courier) peers_courier ;;
	esac
	view "$1"
	every_client_once
	peers_stop_all
	peers_ours
}

# same_view OLD NEW: same UIDL list, same order, sizes equal where OLD's LIST was right.
same_view() {
	run python3 "$PY" same-view "$PEERS_DIR/$1.view" "$PEERS_DIR/$2.view"
	echo "$output" | sed -n 's/^old size differs/# &/p' >&3
	assert_success
}

# uidl_sources N: the "maildir:" log line of maildir-pop3d's session number N (1 = first)
# shows where its UIDLs came from: "uidl-kept=.. uidl-dovecot=.. uidl-courier=.. uidl-own=..".
uidl_sources() {
	[[ -n ${MP_SYSLOG_SHIM:-} ]] || fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	grep 'info: maildir: messages=' "$OURS_SYSLOG" | sed -n "$1p" | grep -o 'uidl-kept=.*'
}

# A second session answers exactly what the first did, its UIDLs now kept in maildir-pop3d's
# own state (the size cache), not read again from the old server's file.
second_session_keeps() {
	view ours2
	same_view ours ours2
	run uidl_sources 2
	assert_output "uidl-kept=$NMSG uidl-dovecot=0 uidl-courier=0 uidl-own=0"
}

@test "after Dovecot, maildir-pop3d answers Dovecot's UIDL list in Dovecot's order, and LIST equals what RETR sends" {
	served_by dovecot
	view ours
	same_view dovecot ours
	run uidl_sources 1
	assert_output "uidl-kept=0 uidl-dovecot=$NMSG uidl-courier=0 uidl-own=0"
	second_session_keeps
}

@test "after Dovecot, fetchmail, getmail6 and mpop download nothing again from maildir-pop3d" {
	served_by dovecot
	local c
	for c in fetchmail getmail mpop; do
		client "$c"
		assert_equal "$c fetched $FETCHED after the switch" "$c fetched 0 after the switch"
	done
}

@test "after Courier, maildir-pop3d answers Courier's UIDL list in Courier's order, and LIST equals what RETR sends" {
	served_by courier
	view ours
	same_view courier ours
	run uidl_sources 1
	assert_output "uidl-kept=0 uidl-dovecot=0 uidl-courier=$NMSG uidl-own=0"
	second_session_keeps
}

@test "after Courier, fetchmail, getmail6 and mpop download nothing again from maildir-pop3d" {
	served_by courier
	local c
	for c in fetchmail getmail mpop; do
		client "$c"
		assert_equal "$c fetched $FETCHED after the switch" "$c fetched 0 after the switch"
	done
}

# ---- leaving again: back to Dovecot or Courier with contrib/maildir-pop3d-handback --------

# deliver_later N: N more messages while maildir-pop3d serves, from an agent that tells no
# POP3 server (plain files renamed from tmp/ into new/): they get maildir-pop3d's own UIDLs
# (their names). NMSG grows by N.
deliver_later() {
	local i t name
	t=$(($(date +%s) + 10))
	for ((i = 1; i <= $1; i++)); do
		name=$((t + i)).M${i}00P$((8000 + i)).later
		printf 'From: later@example.org\nSubject: later %d\nMessage-ID: <later%d.takeover@example.org>\n\nbody %d\n' \
			"$i" "$i" "$i" >"$MD/tmp/$name"
		chown "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$MD/tmp/$name"
		mv "$MD/tmp/$name" "$MD/new/$name"
	done
	NMSG=$((NMSG + $1))
}

handback() {
	run peers_as_alice /bin/sh "${MP_SRCDIR:-$BATS_TEST_DIRNAME/..}/contrib/maildir-pop3d-handback" "$1" "$MD"
	assert_success
}

# leave_again OLD: OLD served first, then maildir-pop3d (with 4 messages of its own), then OLD
# again after contrib/maildir-pop3d-handback: the UIDL list and order maildir-pop3d answered,
# and each client, which fetched the 4 from maildir-pop3d, downloads nothing again.
leave_again() {
	served_by "$1"
	deliver_later 4
	local c
	for c in fetchmail getmail mpop; do
		client "$c"
		assert_equal "$c fetched $FETCHED from maildir-pop3d" "$c fetched 4 from maildir-pop3d"
	done
	view ours
	# Its first session: 44 UIDLs from the old server's file, 4 of its own.
	run uidl_sources 1
	if [[ $1 == dovecot ]]; then
		assert_output "uidl-kept=0 uidl-dovecot=44 uidl-courier=0 uidl-own=4"
	else
		assert_output "uidl-kept=0 uidl-dovecot=0 uidl-courier=44 uidl-own=4"
	fi
	peers_stop_all
	handback "$1"
	case $1 in
	dovecot) peers_dovecot dovecot pop3 ;;
	courier) peers_courier ;;
	esac
	view back
	run python3 "$PY" same-view "$PEERS_DIR/ours.view" "$PEERS_DIR/back.view" --other
	echo "$output" | sed -n 's/^new size differs/# &/p' >&3
	assert_success
	for c in fetchmail getmail mpop; do
		client "$c"
		assert_equal "$c fetched $FETCHED after going back" "$c fetched 0 after going back"
	done
}

@test "leaving again for Dovecot: with the P fields contrib/maildir-pop3d-handback writes, Dovecot answers maildir-pop3d's UIDLs and order, and clients download nothing again" {
	leave_again dovecot
	# maildir-pop3d's own UIDLs became P fields; Dovecot's others are answered as before.
	run grep -c ' P[^ ]*\.later ' "$MD/dovecot-uidlist"
	assert_output 4
}

@test "leaving again for Courier: with the sizelist contrib/maildir-pop3d-handback writes, Courier answers maildir-pop3d's UIDLs and order, and clients download nothing again" {
	leave_again courier
}

@test "leaving for Dovecot without a script: pop3_uidl_format = %f answers maildir-pop3d's own UIDLs (the name's unique part), all but names over 70 octets" {
	run python3 "$PY" corpus "$MD" "$PEERS_DIR/orig"
	chown -R "$REALPAM_ALICE_UID:$REALPAM_ALICE_GID" "$MD"
	NMSG=40
	peers_ours
	view ours
	run uidl_sources 1
	assert_output "uidl-kept=0 uidl-dovecot=0 uidl-courier=0 uidl-own=40"
	peers_stop_all
	peers_dovecot dovecot pop3 "pop3_uidl_format = %f"
	view back
	# The same order; the same UIDL for every message but the two whose names are over 70
	# octets: Dovecot answers the long name, maildir-pop3d a digest (a POP3 unique-id is at
	# most 70 octets, RFC 1939).
	run diff <(awk '$1 != "stat" { print $5, $2 }' "$PEERS_DIR/ours.view") \
		<(awk '$1 != "stat" { print $5, $2 }' "$PEERS_DIR/back.view")
	assert_failure
	run bash -c 'diff <(awk '\''$1 != "stat" { print $5, $2 }'\'' "$1") <(awk '\''$1 != "stat" { print $5, $2 }'\'' "$2") | grep -c "^>"' _ \
		"$PEERS_DIR/ours.view" "$PEERS_DIR/back.view"
	assert_output 2
	run grep -c -E '^[0-9]+ [0-9]+\.M[0-9]+P[0-9]+\.h{70} ' "$PEERS_DIR/back.view"
	assert_output 2
}
