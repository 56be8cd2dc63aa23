#!/usr/bin/env bats
# Maildir rules: byte-exact messages for the hard cases, sizes equal to what RETR sends,
# UIDL stability, the seen flag, concurrent sessions, --lock, changes by other agents.

load lib/common

setup() {
	mp_setup
}

teardown() {
	mp_teardown
}

# retr_matches NAME: RETR 1 of a maildrop holding only $MD/new/NAME sends exactly what the
# independent model (tests/lib/pop3enc.py) says, and LIST reports its size.
retr_matches() {
	local f=$MD/new/$1 want_size
	want_size=$(python3 "$MP_LIB/pop3enc.py" size "$f")
	python3 "$MP_LIB/pop3enc.py" wire "$f" > "$MP_T/want"
	send_lines 'LIST 1' 'RETR 1' QUIT
	assert_line "+OK 1 $want_size"$'\r'
	python3 - "$MP_T/out" "$MP_T/got" <<-'PY'
	import sys
	d = open(sys.argv[1], "rb").read()
	i = d.index(b" octets\r\n") + 9
	j = d.index(b"\r\n.\r\n+OK maildir-pop3d signing off", i - 2) + 5 if not d[i:].startswith(b".\r\n") else i + 3
	open(sys.argv[2], "wb").write(d[i:j])
	PY
	cmp "$MP_T/want" "$MP_T/got"
	# and the +OK line of RETR carries the same size
	grep -q -a "^+OK $want_size octets"$'\r'"\$" "$MP_T/out"
}

@test "RETR is byte-exact for a line of only a dot" {
	printf 'Subject: x\n\n.\nafter\n' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
}

@test "RETR is byte-exact for lines starting with dots" {
	printf 'Subject: x\n\n..two\n...three\n.one\n' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
}

@test "RETR adds CRLF before the final dot when the message has no final newline" {
	printf 'Subject: x\n\nno newline at the end' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
	grep -q -a $'^no newline at the end\r$' "$MP_T/out"
}

@test "RETR keeps existing CRLF line ends and does not double them" {
	printf 'Subject: x\r\n\r\nalready crlf\r\nmixed\nend\r\n' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
	! grep -q -a $'\r\r' "$MP_T/out"
}

@test "RETR of an empty body and of an empty file" {
	printf 'Subject: x\n\n' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
	rm -f "$MD"/new/* "$MD"/cur/*
	: > "$MD/new/2.M2.h"
	retr_matches 2.M2.h
	assert_line "+OK 1 0"$'\r'
}

@test "RETR passes 8-bit octets through unchanged" {
	python3 -c 'import sys; sys.stdout.buffer.write(b"Subject: x\n\n" + bytes(range(128, 256)) + b"\n\xff\xfe\n")' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
}

@test "RETR of a message with a 100 KiB line" {
	python3 -c 'import sys; sys.stdout.buffer.write(b"Subject: x\n\n" + b"." + b"a" * 102400 + b"\nend\n")' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
}

@test "RETR of a 5 MiB message is byte-exact and its size is exact" {
	python3 -c '
import random, sys
r = random.Random(5)
out = [b"Subject: big\n\n"]
n = 0
while n < 5 * 1024 * 1024:
    k = r.choice([0, 1, 2, 60, 76, 200, 1000])
    line = bytes(r.choice(b"..abc \t\r\xe4") for _ in range(k))
    end = r.choice([b"\n", b"\r\n"])
    out.append(line + end)
    n += len(line) + len(end)
sys.stdout.buffer.write(b"".join(out))' > "$MD/new/1.M1.h"
	retr_matches 1.M1.h
}

@test "STAT and LIST sizes equal the octets RETR sends for every message" {
	printf 'a\nb\n' > "$MD/new/1.M1.h"
	printf 'a\r\nb' > "$MD/new/2.M2.h"
	printf '.\n..\n...\n' > "$MD/cur/3.M3.h:2,S"
	printf 'x\r' > "$MD/cur/4.M4.h:2,"
	send_lines LIST 'RETR 1' 'RETR 2' 'RETR 3' 'RETR 4' STAT QUIT
	total=0
	for i in 1 2 3 4; do
		listed=$(tr -d '\r' < "$MP_T/out" | awk -v n=$i '/^\+OK 4 messages/ { l = 1; next } l && $1 == n { print $2; exit }')
		body=$(python3 - "$MP_T/out" "$i" <<-'PY'
		import sys
		d = open(sys.argv[1], "rb").read().split(b"\r\n")
		n = int(sys.argv[2])
		oks = [k for k, l in enumerate(d) if l.endswith(b" octets") and l.startswith(b"+OK ") and b"messages" not in l]
		k = oks[n - 1] + 1
		size = 0
		while d[k] != b".":
		    line = d[k][1:] if d[k].startswith(b".") else d[k]
		    size += len(line) + 2
		    k += 1
		print(size)
		PY
		)
		[ "$listed" = "$body" ] || fail "message $i: LIST says $listed, RETR sent $body"
		total=$((total + body))
	done
	assert_line "+OK 4 $total"$'\r'
}

@test "messages are ordered by delivery time, then by name, across new/ and cur/" {
	printf 'x\n' > "$MD/new/1700000003.M1.h"
	printf 'x\n' > "$MD/cur/1700000001.M9.h:2,S"
	printf 'x\n' > "$MD/new/1700000002.Mb.h"
	printf 'x\n' > "$MD/new/1700000002.Ma.h"
	printf 'x\n' > "$MD/new/900000000.M1.h"
	send_lines UIDL QUIT
	assert_transcript <<-'EOF'
	+OK maildir-pop3d ready.
	+OK unique-id listing follows
	1 900000000.M1.h
	2 1700000001.M9.h
	3 1700000002.Ma.h
	4 1700000002.Mb.h
	5 1700000003.M1.h
	.
	+OK maildir-pop3d signing off (0 messages deleted)
	EOF
}

@test "UIDL is stable across sessions and across the new/ to cur/ move with flags" {
	printf 'x\n' > "$MD/new/1700000001.M1P1.host,S=2"
	printf 'y\n' > "$MD/new/1700000002.M2P2.host"
	send_lines UIDL 'RETR 1' QUIT
	first=$(grep -a '^[12] ' "$MP_T/out")
	[ -f "$MD/cur/1700000001.M1P1.host,S=2:2,S" ]
	mv "$MD/new/1700000002.M2P2.host" "$MD/cur/1700000002.M2P2.host:2,FR"
	send_lines UIDL QUIT
	second=$(grep -a '^[12] ' "$MP_T/out")
	[ "$first" = "$second" ]
	assert_line "1 1700000001.M1P1.host,S=2"$'\r'
}

@test "a unique part that is not a valid UIDL gets a stable 32-digit digest" {
	long=$(printf '1700000001.%080d.host' 7)
	printf 'x\n' > "$MD/new/$long"
	send_lines 'UIDL 1' QUIT
	uidl=$(grep -a '^+OK 1 ' "$MP_T/out" | tr -d '\r' | cut -d' ' -f3)
	[[ $uidl =~ ^[0-9a-f]{32}$ ]]
	mv "$MD/new/$long" "$MD/cur/$long:2,S"
	send_lines 'UIDL 1' QUIT
	assert_line "+OK 1 $uidl"$'\r'
}

@test "RETR'd messages get the seen flag at QUIT; TOP'd and untouched ones do not" {
	printf 'a\n' > "$MD/new/1.M1.h"
	printf 'b\n' > "$MD/new/2.M2.h"
	printf 'c\n' > "$MD/cur/3.M3.h:2,F"
	printf 'd\n' > "$MD/cur/4.M4.h:2,RS"
	send_lines 'RETR 1' 'TOP 2 0' 'RETR 3' 'RETR 4' QUIT
	run md_files
	assert_output "$(printf '%s\n' 'cur/1.M1.h:2,S' 'cur/3.M3.h:2,FS' 'cur/4.M4.h:2,RS' 'new/2.M2.h')"
}

@test "nothing is renamed at login or without QUIT" {
	printf 'a\n' > "$MD/new/1.M1.h"
	send_lines STAT 'RETR 1'
	run md_files
	assert_output "new/1.M1.h"
}

@test "--no-flag-updates never renames a message" {
	printf 'a\n' > "$MD/new/1.M1.h"
	MP_ARGS=(--no-flag-updates)
	send_lines 'RETR 1' QUIT
	run md_files
	assert_output "new/1.M1.h"
}

@test "a message removed by someone else mid-session answers -ERR; the rest goes on" {
	printf 'a\n' > "$MD/new/1.M1.h"
	printf 'b\n' > "$MD/new/2.M2.h"
	run popctl <<-EOF
	open A
	send A STAT
	sh rm -f $MD/new/1.M1.h
	multi A RETR 1
	multi A RETR 2
	send A DELE 1
	send A QUIT
	EOF
	assert_line "A< -ERR Message 1 is gone (removed by another session)."
	assert_line "A| b"
	assert_line "A< +OK maildir-pop3d signing off (1 messages deleted)"
	run md_files
	assert_output "cur/2.M2.h:2,S"
}

@test "a message renamed by another agent mid-session is found by its unique part" {
	printf 'a\n' > "$MD/new/1.M1.h"
	run popctl <<-EOF
	open A
	send A STAT
	sh mv $MD/new/1.M1.h $MD/cur/1.M1.h:2,F
	multi A RETR 1
	send A QUIT
	EOF
	assert_line "A| a"
	run md_files
	assert_output "cur/1.M1.h:2,FS"
}

@test "a message renamed by another agent is still deleted by DELE and QUIT" {
	printf 'a\n' > "$MD/new/1.M1.h"
	run popctl <<-EOF
	open A
	send A DELE 1
	sh mv $MD/new/1.M1.h $MD/cur/1.M1.h:2,S
	send A QUIT
	EOF
	assert_line "A< +OK maildir-pop3d signing off (1 messages deleted)"
	run md_files
	assert_output ""
}

@test "mail that arrives during the session is not shown, not touched and not deleted" {
	printf 'a\n' > "$MD/new/1.M1.h"
	run popctl <<-EOF
	open A
	send A STAT
	sh printf 'new\n' > $MD/new/2.M2.h; chmod 644 $MD/new/2.M2.h
	send A STAT
	send A DELE 1
	send A DELE 2
	send A QUIT
	EOF
	assert_line "A< +OK 1 3"
	assert_line "A< -ERR No such message."
	run md_files
	assert_output "new/2.M2.h"
}

@test "two concurrent sessions that RETR and DELE the same messages lose nothing" {
	for i in 1 2 3 4; do printf 'm%s\n' $i > "$MD/new/$i.M$i.h"; done
	run popctl <<-EOF
	open A
	open B
	send A DELE 1
	send B DELE 1
	multi A RETR 2
	multi B RETR 3
	send A QUIT
	multi B RETR 2
	send B DELE 2
	send B QUIT
	open C
	send C STAT
	multi C UIDL
	send C QUIT
	EOF
	# A deleted 1 and flagged 2 seen; B deleted 1 (already gone) and 2; B read 3; 4 untouched
	assert_line "A< +OK maildir-pop3d signing off (1 messages deleted)"
	# B's RETR 2 finds the message A's QUIT renamed to cur/ with the seen flag
	assert_line "B| m2"
	assert_line "B< +OK maildir-pop3d signing off (2 messages deleted)"
	assert_line "C< +OK 2 8"
	run md_files
	assert_output "$(printf '%s\n' 'cur/3.M3.h:2,S' 'new/4.M4.h')"
}

@test "--lock: a second session gets -ERR [IN-USE] and gets in once the first ends" {
	printf 'a\n' > "$MD/new/1.M1.h"
	run popctl <<-EOF
	open A --lock
	send A STAT
	open B --lock
	wait B
	send A QUIT
	open C --lock
	send C STAT
	send C QUIT
	EOF
	assert_line "B< -ERR [IN-USE] Maildrop is in use by another session."
	assert_line "C< +OK 1 3"
}

@test "--lock is released when the lock holder is killed" {
	printf 'a\n' > "$MD/new/1.M1.h"
	run popctl <<-EOF
	open A --lock
	send A DELE 1
	kill A
	open B --lock
	send B STAT
	send B QUIT
	EOF
	assert_line "B< +OK 1 3"
	run md_files
	assert_output "new/1.M1.h"
}

@test "without --lock concurrent sessions are allowed" {
	printf 'a\n' > "$MD/new/1.M1.h"
	run popctl <<-EOF
	open A
	open B
	send A STAT
	send B STAT
	send A QUIT
	send B QUIT
	EOF
	assert_line "A< +OK 1 3"
	assert_line "B< +OK 1 3"
}

@test "Maildir++ maildirsize gets one line for the deletions of a QUIT" {
	printf 'aaaa\n' > "$MD/new/1.M1.h"
	printf 'bb\n' > "$MD/new/2.M2.h"
	printf '0S\n100 2\n' > "$MD/maildirsize"
	send_lines 'DELE 1' 'DELE 2' QUIT
	run cat "$MD/maildirsize"
	assert_output "$(printf '0S\n100 2\n-8 -2')"
}

@test "login and logout are logged to syslog (mail facility) with the counters" {
	[ -n "${MP_SYSLOG_SHIM:-}" ] || fail "MP_SYSLOG_SHIM not set"
	printf 'aaaa\n' > "$MD/new/1.M1.h"
	printf 'bb\n' > "$MD/new/2.M2.h"
	export LD_PRELOAD=$MP_SYSLOG_SHIM MP_TEST_SYSLOG=$MP_T/syslog
	: > "$MP_T/syslog"
	chmod 666 "$MP_T/syslog"
	send_lines 'RETR 1' 'TOP 2 0' 'DELE 2' QUIT
	unset LD_PRELOAD
	run cat "$MP_T/syslog"
	assert_output --regexp "facility=mail maildir-pop3d\[[0-9]+\]: info: login: user=<[^>]+> rhost=<local> method=preauth tls=no"
	assert_output --regexp "logout: user=<[^>]+> rhost=<local> retr=1/6 top=1/[0-9]+ dele=1/4 left=1/6 end=quit"
}
