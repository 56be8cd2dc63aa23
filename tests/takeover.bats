#!/usr/bin/env bats
# Taking over from another POP3 server: the UIDLs and order Dovecot (dovecot-uidlist, as the
# real Dovecot 2.3 wrote it: tests/data/takeover) and Courier (courierpop3dsizelist) answered
# are answered again; a UIDL once answered never changes, also when the other server's file
# changes later; damaged files cost only their messages' UIDLs; UIDLs stay unique; the
# arrival order counts microseconds; sizes equal the octets RETR sends.
#
# What a session did is read from its log line
#   maildir: ... uidl-kept=N uidl-dovecot=N uidl-courier=N uidl-own=N

load lib/common

DATA=${BATS_TEST_DIRNAME}/data/takeover

setup() {
	mp_setup
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	SYSLOG=$MP_T/syslog
}

teardown() {
	mp_teardown
}

# logged_session [OPTION...] -- LINE...: one --preauth session; the answer in $MP_T/out and
# $output, its log in $SYSLOG, the maildir: line's fields in $MDLOG.
logged_session() {
	local fmt= l opts=()
	while [[ $# -gt 0 && $1 != -- ]]; do
		opts+=("$1")
		shift
	done
	shift
	for l in "$@"; do
		fmt+="${l//%/%%}\r\n"
	done
	mp_own
	: >"$SYSLOG"
	chmod 666 "$SYSLOG"
	status=0
	# shellcheck disable=SC2059
	printf "$fmt" | env LD_PRELOAD="$MP_SYSLOG_SHIM" MP_TEST_SYSLOG="$SYSLOG" \
		"${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" "${opts[@]}" >"$MP_T/out" 2>"$MP_T/err" ||
		status=$?
	output=$(cat "$MP_T/out")
	mapfile -t lines <"$MP_T/out"
	MDLOG=$(sed -n 's/.*: info: maildir: //p' "$SYSLOG")
}

assert_log() {	# assert_log FIELD=VALUE...
	local kv
	for kv in "$@"; do
		[[ " $MDLOG " == *" $kv "* ]] || fail "log line lacks $kv: maildir: $MDLOG"
	done
}

# The UIDL answer's lines ("msn uidl" CRLF), from $MP_T/out.
uidl_lines() {
	python3 - "$MP_T/out" <<-'PY'
	import sys
	d = open(sys.argv[1], "rb").read()
	i = d.index(b"+OK unique-id listing follows\r\n") + 31
	sys.stdout.buffer.write(d[i:d.index(b".\r\n", i)])
	PY
}

# The Maildir the real Dovecot served (tests/data/takeover/README): the same seven
# messages under the same names, and its dovecot-uidlist.
dovecot_maildir() {
	local c=$MD/cur
	printf 'From: a@example.org\nSubject: one\n\nbody one\n' >"$c/1796430150.M504054P3488.vm,S=43,W=47:2,S"
	printf 'From: a@example.org\nSubject: two no final newline\n\nbody two' >"$c/1796430150.M529423P3492.vm,S=59,W=62:2,S"
	printf 'From: a@example.org\nSubject: three\n\n.dot line\n..two dots\n' >"$c/1796430150.M541659P3502.vm,S=57,W=62:2,S"
	printf 'From: a@example.org\nSubject: four crlf\n\nbody four\n' >"$c/1796430150.M556166P3510.vm,S=50,W=54:2,S"
	printf 'From: a@example.org\nSubject: five\n\n' >"$c/1796430150.M569194P3523.vm,S=35,W=38:2,S"
	printf 'Subject: burst a\n\na\n' >"$c/1700000000.M17800P124.host:2,S"
	printf 'Subject: burst b\n\nb\n' >"$c/1700000000.M112000P123.host:2,S"
	cp "$DATA/dovecot-default.uidlist" "$MD/dovecot-uidlist"
}

@test "a Maildir Dovecot served answers Dovecot's UIDL list, in Dovecot's order, byte for byte" {
	dovecot_maildir
	logged_session -- UIDL QUIT
	assert_success
	cmp <(uidl_lines) "$DATA/dovecot-default.uidl"
	assert_log messages=7 uidl-dovecot=7 uidl-own=0 uidl-kept=0 cache=written
	# the state file is read, never written
	cmp "$MD/dovecot-uidlist" "$DATA/dovecot-default.uidlist"
}

@test "Dovecot's saved P fields and empty P fields (the file name) are answered" {
	local n
	for n in saved empty-p; do
		rm -rf "$MD" && mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
		while read -r f; do printf 'Subject: x\n\nx\n' >"$MD/cur/$f"; done <"$DATA/dovecot-$n.names"
		cp "$DATA/dovecot-$n.uidlist" "$MD/dovecot-uidlist"
		logged_session -- UIDL QUIT
		cmp <(uidl_lines) "$DATA/dovecot-$n.uidl"
		assert_log uidl-dovecot=3 uidl-own=0
	done
}

@test "--dovecot-uidl-format takes Dovecot's pop3_uidl_format; a format it cannot expand exits 64 naming the option" {
	dovecot_maildir
	logged_session --dovecot-uidl-format='%v.%u' -- 'UIDL 1' 'UIDL 7' QUIT
	assert_line $'+OK 1 1796430150.1\r'
	assert_line $'+OK 7 1796430150.7\r'
	rm "$MD/maildir-pop3d.cache"
	logged_session --dovecot-uidl-format='%m' -- QUIT
	[ "$status" -eq 64 ]
	[ ! -s "$MP_T/out" ]
	grep -q -- '--dovecot-uidl-format: %m' "$MP_T/err"
}

@test "a UIDL once answered never changes: Dovecot IMAP rewriting its uidlist later changes nothing" {
	dovecot_maildir
	logged_session -- UIDL QUIT
	cmp <(uidl_lines) "$DATA/dovecot-default.uidl"
	# Dovecot recreates its file: new UIDVALIDITY, other UIDs, and P fields.
	printf '3 V1800000000 N9 Gabc\n1 P:x :1796430150.M504054P3488.vm,S=43,W=47\n8 :1700000000.M17800P124.host\n' \
		>"$MD/dovecot-uidlist"
	logged_session -- UIDL QUIT
	# the order follows the file as it is now; every message keeps its UIDL
	cmp <(uidl_lines | cut -d' ' -f2 | sort) <(cut -d' ' -f2 "$DATA/dovecot-default.uidl" | sort)
	assert_line $'1 000000016b135946\r'	# UID 1 in the new file: first
	assert_line $'2 000000066b135946\r'	# UID 8: second
	assert_log uidl-kept=7 uidl-dovecot=0 uidl-own=0 cache=kept
	# even with the state file gone, or turned off
	rm "$MD/dovecot-uidlist"
	logged_session --uidl-source=none -- UIDL QUIT
	cmp <(uidl_lines | cut -d' ' -f2 | sort) <(cut -d' ' -f2 "$DATA/dovecot-default.uidl" | sort)
	assert_log uidl-kept=7
}

@test "a message answered with its own UIDL keeps it after Dovecot IMAP adds it to its uidlist" {
	printf 'Subject: a\n\na\n' >"$MD/new/1700000001.M1P1.host"
	logged_session -- UIDL QUIT
	assert_line $'1 1700000001.M1P1.host\r'
	assert_log uidl-own=1
	printf '3 V1796430150 N2 Gabc\n1 :1700000001.M1P1.host\n' >"$MD/dovecot-uidlist"
	printf 'Subject: b\n\nb\n' >"$MD/new/1700000002.M2P2.host"
	printf '3 V1796430150 N3 Gabc\n1 :1700000001.M1P1.host\n2 :1700000002.M2P2.host\n' >"$MD/dovecot-uidlist"
	logged_session -- UIDL QUIT
	assert_line $'1 1700000001.M1P1.host\r'
	assert_line $'2 000000026b135946\r'
	assert_log uidl-kept=1 uidl-dovecot=1 uidl-own=0
	logged_session -- UIDL QUIT
	assert_line $'2 000000026b135946\r'
	assert_log uidl-kept=2
}

@test "a Maildir Courier served answers Courier's UIDLs (versions 3, 2, 1 and 0), in its order" {
	local v
	for v in 3 2 1 0; do
		rm -rf "$MD" && mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
		cut -d' ' -f1 "$DATA/courier-v$v.sizelist" | grep -v '^/' | while read -r f; do
			printf 'Subject: x\n\nx\n' >"$MD/cur/$f"
		done
		cp "$DATA/courier-v$v.sizelist" "$MD/courierpop3dsizelist"
		logged_session -- UIDL QUIT
		case $v in
		3) assert_line $'1 UID1-1700000500\r'; assert_line $'3 UID4-1700000400\r' ;;
		2) assert_line $'2 UID3-1600000000\r' ;;
		1) assert_line $'1 UID1\r'; assert_line $'2 UID2-1500000000\r' ;;
		0) assert_line $'1 1400000000.M1P1.host\r' ;;
		esac
		assert_log uidl-courier=$((v == 3 ? 3 : 2)) uidl-own=0
	done
}

@test "with both files, the one written last is used; --uidl-source chooses" {
	printf 'Subject: x\n\nx\n' >"$MD/cur/1700000000.M1P1.host:2,S"
	printf '3 V7 N2 Gabc\n1 :1700000000.M1P1.host\n' >"$MD/dovecot-uidlist"
	printf '/3 2 9\n1700000000.M1P1.host:2,S 13 1:9:0\n' >"$MD/courierpop3dsizelist"
	touch -d '2020-01-01' "$MD/dovecot-uidlist"
	logged_session -- 'UIDL 1' QUIT
	assert_line $'+OK 1 UID1-9\r'
	rm "$MD/maildir-pop3d.cache"
	logged_session --uidl-source=dovecot -- 'UIDL 1' QUIT
	assert_line $'+OK 1 0000000100000007\r'
	rm "$MD/maildir-pop3d.cache"
	touch -d '2020-01-01' "$MD/courierpop3dsizelist"
	touch "$MD/dovecot-uidlist"
	logged_session -- 'UIDL 1' QUIT
	assert_line $'+OK 1 0000000100000007\r'
	rm "$MD/maildir-pop3d.cache"
	logged_session --uidl-source=none -- 'UIDL 1' QUIT
	assert_line $'+OK 1 1700000000.M1P1.host\r'
	run "$MAILDIR_POP3D" -p --uidl-source=qmail
	[ "$status" -eq 64 ]
}

@test "a damaged line costs only its message's UIDL, logged once; duplicates are made unique, the first keeps it" {
	local f
	for f in 1 2 3 4 5; do printf 'Subject: %s\n\nx\n' $f >"$MD/cur/170000000$f.M${f}P$f.host:2,S"; done
	{
		printf '3 V7 N9 Gabc\n'
		printf '1 Psame :1700000001.M1P1.host\n'
		printf 'garbage line\n'
		printf '2 Psame :1700000002.M2P2.host\n'
		printf '3 P%s :1700000003.M3P3.host\n' "$(printf 'x%.0s' $(seq 80))"
		printf '4 P1700000005.M5P5.host :1700000004.M4P4.host\n'
	} >"$MD/dovecot-uidlist"
	logged_session -- UIDL QUIT
	assert_line $'1 same\r'
	assert_line $'2 1700000002.M2P2.host\r'	# a duplicate: its own
	assert_line $'3 1700000003.M3P3.host\r'	# 81 octets is no UIDL: its own
	assert_line $'4 1700000005.M5P5.host\r'	# Dovecot's, though it is message 5's name
	refute_line $'5 1700000005.M5P5.host\r'	# so message 5 gets a digest
	[ "$(uidl_lines | cut -d' ' -f2 | sort | uniq -d)" = "" ]
	[ "$(grep -c 'damaged lines' "$SYSLOG")" -eq 1 ]
	grep -q 'duplicate UIDLs' "$SYSLOG"
	assert_log uidl-dovecot=2 uidl-own=3
	# and the next session answers the very same
	uidl_lines >"$MP_T/first"
	logged_session -- UIDL QUIT
	cmp <(uidl_lines) "$MP_T/first"
	assert_log uidl-kept=5
}

@test "a damaged header: every message gets its own UIDL, logged" {
	printf 'Subject: x\n\nx\n' >"$MD/new/1700000001.M1P1.host"
	printf '3 N2 Gabc\n1 Pold :1700000001.M1P1.host\n' >"$MD/dovecot-uidlist"
	logged_session -- UIDL QUIT
	assert_line $'1 1700000001.M1P1.host\r'
	grep -q 'dovecot-uidlist: damaged header' "$SYSLOG"
	assert_log uidl-own=1 uidl-dovecot=0
}

@test "same-second arrivals are ordered by the name's microseconds, not its octets" {
	printf 'Subject: b\n\nb\n' >"$MD/new/1700000000.M112000P123.host"
	printf 'Subject: a\n\na\n' >"$MD/new/1700000000.M17800P124.host"
	printf 'Subject: c\n\nc\n' >"$MD/new/1699999999.M999999P1.host"
	logged_session -- UIDL QUIT
	assert_line $'1 1699999999.M999999P1.host\r'
	assert_line $'2 1700000000.M17800P124.host\r'
	assert_line $'3 1700000000.M112000P123.host\r'
}

# The +OK lines of LIST n, of RETR n and STAT's total, against the octets RETR sent
# (dot-stuffing undone), for every message in the Maildir.
check_sizes() {
	local n=$1 cmds=(STAT) i
	for ((i = 1; i <= n; i++)); do cmds+=("LIST $i" "RETR $i"); done
	logged_session -- "${cmds[@]}" QUIT
	python3 - "$MP_T/out" "$n" <<-'PY'
	import sys
	d = open(sys.argv[1], "rb").read().split(b"\r\n")
	n = int(sys.argv[2])
	i = 1
	stat = int(d[i].split()[2]); i += 1
	total = 0
	for k in range(1, n + 1):
	    listed = int(d[i].split()[2]); i += 1
	    retr = int(d[i].split()[1]); i += 1
	    body = []
	    while d[i] != b".":
	        body.append(d[i][1:] if d[i].startswith(b"..") else d[i]); i += 1
	    i += 1
	    sent = sum(len(l) + 2 for l in body)
	    if not listed == retr == sent:
	        sys.exit(f"message {k}: LIST {listed}, RETR line {retr}, sent {sent}")
	    total += sent
	if stat != total:
	    sys.exit(f"STAT {stat}, sent {total}")
	PY
}

@test "LIST, STAT and the RETR line equal the octets RETR sends, for awkward messages with and without ,W=" {
	local i=0 body w
	# name suffix W= is computed the way Dovecot's LDA does: every LF as CRLF, nothing added
	for body in 'a\nb\n' 'no final newline' 'crlf\r\nends\r\n' 'bare cr at the end\r' '' \
		'.\n..\n...\n' 'mixed\r\nlf\nno end' '\n' 'x'; do
		i=$((i + 1))
		printf "$body" >"$MP_T/m"
		w=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(len(d)+d.count(b"\n")-d.count(b"\r\n"))' "$MP_T/m")
		cp "$MP_T/m" "$MD/new/17000000$(printf %02d $i).M${i}P1.host,S=$(stat -c %s "$MP_T/m"),W=$w"
		cp "$MP_T/m" "$MD/new/17000001$(printf %02d $i).M${i}P1.host"
	done
	check_sizes 18
	assert_log from-cache=0
	check_sizes 18		# and from the cache
	assert_log from-cache=18
}
