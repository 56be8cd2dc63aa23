#!/usr/bin/env bats
# The two sessions the project started from (a Cyrus and a QPOP telnet walk-through),
# typed as a person would: lower-case commands, LF-only line ends, through the real
# login path (pam_wrapper + pam_matrix users, see tests/lib/cwrap.bash).

load lib/common
load lib/cwrap

SEEDS=$BATS_TEST_DIRNAME/data/seed-mail

setup() {
	cwrap_setup "$BATS_TEST_TMPDIR/cw"
	cwrap_add_user benutzername kennwort 2001
	cwrap_add_user thomas xxxxxxx 2002
	read -r -a CW_ENV <<< "$(cwrap_env_prefix)"
	for v in "${CWRAP_VARS[@]}"; do unset "$v"; done
	MP_T=$BATS_TEST_TMPDIR
}

teardown() {
	cwrap_teardown
}

# maildir USER: the user's Maildir, created.
maildir() {
	local md=$CWRAP_DIR/home/$1/Maildir
	mkdir -p "$md/new" "$md/cur" "$md/tmp"
	printf '%s\n' "$md"
}

# typed INPUT: runs a session through login with printf-formatted INPUT.
typed() {
	# shellcheck disable=SC2059
	printf "$1" | "${CW_ENV[@]}" "$MAILDIR_POP3D" > "$MP_T/out"
}

size() { python3 "$MP_LIB/pop3enc.py" size "$1"; }
wire() { python3 "$MP_LIB/pop3enc.py" wire "$1" | tr -d '\r' | sed '$d'; }

@test "the Cyrus seed session typed by hand: user, pass, stat, list, retr, dele, stat, list, quit" {
	md=$(maildir benutzername)
	cp "$SEEDS/cyrus-1.eml" "$md/new/1149001785.M1P1.mediata4"
	cp "$SEEDS/cyrus-2.eml" "$md/new/1149001802.M2P2.mediata4"
	s1=$(size "$SEEDS/cyrus-1.eml")
	s2=$(size "$SEEDS/cyrus-2.eml")
	typed 'user benutzername\npass kennwort\nstat\nlist\nretr 1\ndele 1\nstat\nlist\nquit\n'
	assert_transcript <<-EOF
	+OK maildir-pop3d ready.
	+OK Send the password.
	+OK maildrop has 2 messages ($((s1 + s2)) octets)
	+OK 2 $((s1 + s2))
	+OK 2 messages ($((s1 + s2)) octets)
	1 $s1
	2 $s2
	.
	+OK $s1 octets
	$(wire "$SEEDS/cyrus-1.eml")
	.
	+OK message 1 deleted
	+OK 1 $s2
	+OK 1 messages ($s2 octets)
	2 $s2
	.
	+OK maildir-pop3d signing off (1 messages deleted)
	EOF
	# message 1 is gone; message 2 was never retrieved, so it is still new
	run ls "$md/new" "$md/cur"
	assert_output --partial "1149001802.M2P2.mediata4"
	refute_output --partial "1149001785.M1P1.mediata4"
}

@test "the QPOP seed session typed by hand: list, list 8, top 8 5, retr 1, uidl 1, dele 1, rset, stat, noop, quit" {
	md=$(maildir thomas)
	total=0
	for i in 1 2 3 4 5 6 7 8; do
		cp "$SEEDS/qpop-$i.eml" "$md/cur/95120984$i.M${i}P$i.localhost:2,"
		sz[i]=$(size "$SEEDS/qpop-$i.eml")
		total=$((total + sz[i]))
	done
	typed 'user thomas\npass xxxxxxx\nlist\nlist 8\ntop 8 5\nretr 1\nuidl 1\ndele 1\nrset\nstat\nnoop\nquit\n'
	top=$(python3 "$MP_LIB/pop3enc.py" top "$SEEDS/qpop-8.eml" 5 | tr -d '\r' | sed '$d')
	assert_transcript <<-EOF
	+OK maildir-pop3d ready.
	+OK Send the password.
	+OK maildrop has 8 messages ($total octets)
	+OK 8 messages ($total octets)
	1 ${sz[1]}
	2 ${sz[2]}
	3 ${sz[3]}
	4 ${sz[4]}
	5 ${sz[5]}
	6 ${sz[6]}
	7 ${sz[7]}
	8 ${sz[8]}
	.
	+OK 8 ${sz[8]}
	+OK top of message follows
	$top
	.
	+OK ${sz[1]} octets
	$(wire "$SEEDS/qpop-1.eml")
	.
	+OK 1 951209841.M1P1.localhost
	+OK message 1 deleted
	+OK maildrop has 8 messages ($total octets)
	+OK 8 $total
	+OK
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
	# RSET undid the DELE; RETR 1 added the seen flag at QUIT
	[ "$(ls "$md/cur" | wc -l)" -eq 8 ]
	[ -f "$md/cur/951209841.M1P1.localhost:2,S" ]
	[ -f "$md/cur/951209842.M2P2.localhost:2," ]
}

@test "TOP n 5 of the QPOP seed mail ends after five body lines, and a body line of dots is stuffed" {
	md=$(maildir thomas)
	cp "$SEEDS/qpop-8.eml" "$md/new/951209848.M8P8.localhost"
	typed 'user thomas\npass xxxxxxx\ntop 1 5\ntop 1 7\nquit\n'
	run body_after "top of message follows"
	assert_output --partial "Perl anzapft?"
	[[ "$output" == *$'\r\n\r\nCU\r' ]]
	# the seventh body line is ".. und noch eine Zeile": "..." on the wire
	grep -q -a '^\.\.\. und noch eine Zeile' "$MP_T/out"
	[ "$(grep -c -a 'und noch eine Zeile' "$MP_T/out")" -eq 1 ]
}
