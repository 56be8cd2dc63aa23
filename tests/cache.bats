#!/usr/bin/env bats
# The size cache (maildir-pop3d.cache in the Maildir): written after a first session and
# used by the next one, rewritten only when it changed, never trusted blindly (truncated,
# corrupt, forged, foreign, huge or symlinked caches, stale entries), harmless when it
# cannot be written, valid after concurrent writers; ,W= sizes; the temporary name.
#
# What a session did is read from its log line
#   maildir: messages=N octets=N from-cache=N from-name=N from-file=N stats=N cache=WHAT
# (sizes found in the cache, in ,W= fields, by reading files; files stat'ed; the cache file
# kept, written, not-written or none) and, where it matters, from strace.  Every answer is
# also checked against the independent model (tests/lib/pop3enc.py).

load lib/common

setup() {
	mp_setup
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	CACHE=$MD/maildir-pop3d.cache
	SYSLOG=$MP_T/syslog
	deliver_text 1000000001.M1P1.host 'Subject: one\n\nfirst body\n'
	deliver_text 1000000002.M2P2.host 'Subject: two\n\n.dot\nsecond\nbody\n'
	printf 'Subject: three\r\n\r\nthird, with CRLF\r\n' >"$MD/cur/1000000003.M3P3.host:2,S"
}

teardown() {
	mp_teardown
}

# logged_session LINE...: one --preauth session fed these lines; the answer in $MP_T/out
# and $output, its log in $SYSLOG, the maildir: line's fields in $MDLOG.
logged_session() {
	local fmt= l
	for l in "$@"; do
		fmt+="${l//%/%%}\r\n"
	done
	mp_own
	: >"$SYSLOG"
	chmod 666 "$SYSLOG"
	status=0
	# shellcheck disable=SC2059
	printf "$fmt" | env LD_PRELOAD="$MP_SYSLOG_SHIM" MP_TEST_SYSLOG="$SYSLOG" \
		"${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" >"$MP_T/out" 2>"$MP_T/err" || status=$?
	output=$(cat "$MP_T/out")
	mapfile -t lines <"$MP_T/out"
	MDLOG=$(sed -n 's/.*: info: maildir: //p' "$SYSLOG")
}

# The LIST answer the model (tests/lib/pop3enc.py) gives for the messages now in $MD, in
# delivery order (the test names sort by it).
want_list() {
	python3 - "$MP_LIB" "$MD" <<-'PY'
	import os, sys
	sys.path.insert(0, sys.argv[1])
	from pop3enc import lines_of
	md = sys.argv[2]
	files = sorted((n, os.path.join(md, d, n)) for d in ("new", "cur")
	               for n in os.listdir(os.path.join(md, d)) if not n.startswith("."))
	sizes = [sum(len(l) + 2 for l in lines_of(open(p, "rb").read())) for _, p in files]
	print(f"+OK {len(sizes)} messages ({sum(sizes)} octets)")
	for i, s in enumerate(sizes, 1):
	    print(i, s)
	print(".")
	PY
}

got_list() {
	tr -d '\r' <"$MP_T/out" | sed -n '/^+OK [0-9]* messages (/,/^\.$/p'
}

assert_list_right() {
	local want got
	want=$(want_list)
	got=$(got_list)
	[[ $got == "$want" ]] || fail "$(printf 'LIST differs from the model:\n--- want\n%s\n--- got\n%s\n' "$want" "$got")"
}

assert_log() {	# assert_log FIELD=VALUE...
	local kv
	for kv in "$@"; do
		[[ " $MDLOG " == *" $kv "* ]] || fail "log line lacks $kv: maildir: $MDLOG"
	done
}

cache_check() {
	python3 "$MP_LIB/sizecache.py" check "$CACHE"
}

stamp() {	# inode, size and mtime (ns) of the cache file (mp_own's chown changes the ctime)
	stat -c '%i %s %.9Y' "$CACHE"
}

@test "the first session writes the cache and the next one takes every size from it, opening no message" {
	[ ! -e "$CACHE" ]
	logged_session LIST QUIT
	assert_list_right
	assert_log messages=3 from-cache=0 from-name=0 from-file=3 cache=written
	run cache_check
	assert_success
	assert_line --regexp '^1000000001.M1P1.host [0-9]+ 25 [0-9]+ 28$'
	assert_line --regexp '^1000000003.M3P3.host [0-9]+ 36 [0-9]+ 36$'
	[ "${#lines[@]}" -eq 3 ]

	logged_session LIST QUIT
	assert_list_right
	assert_log messages=3 from-cache=3 from-name=0 from-file=0 stats=0 cache=kept
	# The server makes itself non-dumpable: an unprivileged strace then cannot read the
	# paths it passes, so the cross-check below needs root.
	[[ $(id -u) == 0 ]] || skip "the log agrees; the strace cross-check needs root (the server is non-dumpable)"
	if command -v strace >/dev/null; then
		# The file system agrees: no message file is opened or stat'ed.
		mp_own
		printf 'STAT\r\nLIST\r\nUIDL\r\nQUIT\r\n' | ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=%file,%stat -o "$MP_T/trace" \
			"${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" >"$MP_T/out"
		run grep -E '(new|cur)/1000000|"1000000' "$MP_T/trace"
		assert_failure
		grep -q 'maildir-pop3d.cache' "$MP_T/trace"	# the trace did catch the session
	fi
}

@test "a session that changes nothing leaves the cache file alone: same inode, size and mtime" {
	logged_session QUIT
	before=$(stamp)
	sleep 0.05
	logged_session STAT LIST UIDL 'RETR 1' 'TOP 2 0' QUIT
	assert_log from-cache=3 cache=kept
	[ "$(stamp)" = "$before" ]
	# RETR gave message 1 the seen flag (a rename to cur/): still the same unique part and
	# inode, so still a cache hit, and still nothing to rewrite.
	[ -f "$MD/cur/1000000001.M1P1.host:2,S" ]
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=3 from-file=0 cache=kept
	[ "$(stamp)" = "$before" ]
}

@test "the cache is rewritten when a message is gone or new, and only then" {
	logged_session QUIT
	rm "$MD/new/1000000002.M2P2.host"
	logged_session LIST QUIT
	assert_list_right
	assert_log messages=2 from-cache=2 from-file=0 cache=written
	run cache_check
	assert_success
	[ "${#lines[@]}" -eq 2 ]
	deliver_text 1000000004.M4P4.host 'Subject: four\n\nnew one\n'
	logged_session LIST QUIT
	assert_list_right
	assert_log messages=3 from-cache=2 from-file=1 cache=written
	before=$(stamp)
	logged_session LIST QUIT
	assert_log from-cache=3 cache=kept
	[ "$(stamp)" = "$before" ]
}

@test "DELE and QUIT: the next session drops the entries of the deleted messages" {
	logged_session QUIT
	logged_session 'DELE 1' 'DELE 3' QUIT
	[ "$(md_files)" = "new/1000000002.M2P2.host" ]
	logged_session LIST QUIT
	assert_list_right
	assert_log messages=1 from-cache=1 cache=written
	run cache_check
	assert_success
	assert_output --regexp '^1000000002.M2P2.host '
}

@test "a message replaced under its name (a new file renamed over it) is sized again at once" {
	logged_session QUIT
	printf 'Subject: two, longer now\n\nsecond\nbody\nand more\n' >"$MD/tmp/x"
	mv "$MD/tmp/x" "$MD/new/1000000002.M2P2.host"
	logged_session LIST 'RETR 2' QUIT
	assert_list_right
	assert_log from-cache=2 from-file=1 cache=written
	grep -q -a "^+OK $(python3 "$MP_LIB/pop3enc.py" size "$MD/cur/1000000002.M2P2.host:2,S") octets" "$MP_T/out"
	! grep -q 'size changed' "$SYSLOG"
	run cache_check
	assert_line --regexp '^1000000002.M2P2.host [0-9]+ 47 [0-9]+ 52$'
}

@test "a message rewritten in place keeps its listed size for that session; opening it drops its entry and the next session reads it" {
	logged_session QUIT
	ino=$(stat -c %i "$MD/new/1000000002.M2P2.host")
	# Against the Maildir rules (files never change), but it happens: same inode.
	printf 'Subject: two, rewritten in place\n\nlonger body now\n' >>"$MD/new/1000000002.M2P2.host"
	[ "$(stat -c %i "$MD/new/1000000002.M2P2.host")" = "$ino" ]
	logged_session 'LIST 2' 'RETR 2' QUIT
	# The listed size stays the session's (RFC 1939: fixed for the session) ...
	assert_line '+OK 2 36'$'\r'
	assert_line '+OK 36 octets'$'\r'
	assert_log from-cache=3 cache=kept
	# ... RETR sends the file as it is, says so in the log, and the cache loses the entry.
	grep -q 'message 2 size changed: listed 36, sent 89' "$SYSLOG"
	run cache_check
	assert_success
	refute_output --partial 1000000002.M2P2.host
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=2 from-file=1 cache=written
}

@test "a cache entry with another inode number (another file under that name) is not used" {
	logged_session QUIT
	sed -i -E 's/^(1000000001.M1P1.host) [0-9]+ /\1 4242 /' "$CACHE"
	python3 "$MP_LIB/sizecache.py" retrailer "$CACHE"
	cache_check >/dev/null
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=2 from-file=1 cache=written
}

@test "a truncated cache is ignored and rebuilt" {
	logged_session QUIT
	size=$(stat -c %s "$CACHE")
	for cut in 0 10 40 $((size - 30)) $((size - 1)); do
		logged_session QUIT
		head -c "$cut" "$CACHE" >"$MP_T/cut" && cat "$MP_T/cut" >"$CACHE"
		logged_session LIST QUIT
		assert_list_right
		assert_log from-cache=0 from-file=3 cache=written
		cache_check >/dev/null
	done
}

@test "a corrupt cache (a size changed, checksum left) is ignored: the sizes come from the files" {
	logged_session QUIT
	sed -i -E 's/^(1000000001.M1P1.host [0-9]+ 25 [0-9]+) 28$/\1 29/' "$CACHE"
	grep -q ' 25 [0-9]* 29$' "$CACHE"
	run cache_check
	assert_failure
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=0 from-file=3 cache=written
	cache_check >/dev/null
}

@test "a forged cache with a valid checksum is still not trusted with an impossible size" {
	logged_session QUIT
	# 25 octets cannot become more than 2 * 25 + 2 on the wire, 31 not fewer than 31.
	sed -i -E 's/^(1000000001.M1P1.host [0-9]+ 25 [0-9]+) 28$/\1 53/; s/^(1000000002.M2P2.host [0-9]+ 31 [0-9]+) 36$/\1 30/' "$CACHE"
	grep -q ' 25 [0-9]* 53$' "$CACHE" && grep -q ' 31 [0-9]* 30$' "$CACHE"
	python3 "$MP_LIB/sizecache.py" retrailer "$CACHE"
	cache_check >/dev/null
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=1 from-file=2 cache=written
}

@test "a cache of another version or another program is ignored" {
	logged_session QUIT
	sed -i '1s/v3$/v1/' "$CACHE"
	python3 "$MP_LIB/sizecache.py" retrailer "$CACHE"
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=0 from-file=3 cache=written
	printf 'something else entirely\n' >"$CACHE"
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=0 from-file=3 cache=written
	cache_check >/dev/null
}

@test "a huge cache file is not read but replaced" {
	logged_session QUIT
	truncate -s 600M "$CACHE"	# sparse: over the 512 MiB limit
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=0 from-file=3 cache=written
	[ "$(stat -c %s "$CACHE")" -lt 1000 ]
	cache_check >/dev/null
}

@test "a symlinked cache is neither followed nor written through; the link itself is replaced" {
	logged_session QUIT
	# A valid cache of the same names with other sizes, reached through a link.
	sed -E 's/ 28$/ 29/' "$CACHE" >"$MP_T/elsewhere"
	python3 "$MP_LIB/sizecache.py" retrailer "$MP_T/elsewhere"
	cp "$MP_T/elsewhere" "$MP_T/elsewhere.orig"
	chmod 666 "$MP_T/elsewhere"
	ln -sf "$MP_T/elsewhere" "$CACHE"
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=0 from-file=3 cache=written
	[ ! -L "$CACHE" ] && [ -f "$CACHE" ]
	cmp "$MP_T/elsewhere" "$MP_T/elsewhere.orig"
	cache_check >/dev/null
}

@test "a cache that cannot be written (read-only Maildir) changes no answer" {
	logged_session LIST UIDL 'RETR 2' 'TOP 1 0' QUIT
	cp "$MP_T/out" "$MP_T/want"
	rm "$CACHE"
	mp_own
	chmod 555 "$MD"
	logged_session LIST UIDL 'RETR 2' 'TOP 1 0' QUIT
	chmod 755 "$MD"
	cmp "$MP_T/want" "$MP_T/out"
	assert_log from-file=3 cache=not-written
	grep -q ': warning: size cache not written: Permission denied' "$SYSLOG"
	[ ! -e "$CACHE" ]
	[ -z "$(ls -A "$MD" | grep -v -x -e new -e cur -e tmp)" ]
}

@test "a full disk changes no answer and leaves no temporary file (root: a small tmpfs in a mount namespace)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root for a private tmpfs"
	command -v unshare >/dev/null || skip "unshare missing"
	logged_session LIST UIDL 'RETR 2' QUIT
	cp "$MP_T/out" "$MP_T/want"
	mkdir "$MP_T/fs"
	: >"$SYSLOG"
	# The Maildir on a 256 KiB tmpfs, filled up after delivery; the session runs there.
	run unshare -m --propagation private bash -c '
		set -e
		mount -t tmpfs -o size=256k,mode=755 tmpfs "$1/fs"
		cp -a "$2" "$1/fs/Maildir"
		rm -f "$1/fs/Maildir/maildir-pop3d.cache"
		chown -R "$3:$3" "$1/fs/Maildir"
		dd if=/dev/zero of="$1/fs/fill" bs=4k 2>/dev/null || true
		df -k "$1/fs" | tail -1
		printf "LIST\r\nUIDL\r\nRETR 2\r\nQUIT\r\n" | env LD_PRELOAD="$4" MP_TEST_SYSLOG="$5" \
			setpriv --reuid="$3" --regid="$3" --clear-groups -- "$6" -p -m "$1/fs/Maildir" >"$1/out"
		ls -A "$1/fs/Maildir"' _ "$MP_T" "$MD" "$MP_RUN_UID" "$MP_SYSLOG_SHIM" "$SYSLOG" "$MAILDIR_POP3D"
	assert_success
	assert_line --regexp ' 256 +256 +0 +100% '	# the file system was full
	refute_output --partial maildir-pop3d.cache	# no cache, no temporary file left
	cmp "$MP_T/want" "$MP_T/out"
	grep -q ': warning: size cache not written: No space left on device' "$SYSLOG"
	grep -q 'maildir: messages=3 .* from-file=3 .* cache=not-written' "$SYSLOG"
}

@test "20 concurrent sessions writing the cache leave a valid one, and every answer is right" {
	for i in $(seq 10 40); do
		deliver_text "10000000$i.M${i}P$i.host" "Subject: m$i\n\n%${i}s\n" x
	done
	for round in 1 2 3; do
		rm -f "$CACHE"
		# Each round changes the maildrop, so that every session has a cache to write.
		deliver_text "100000009$round.M9${round}P1.host" 'Subject: round %s\n\nbody\n' "$round"
		want_list >"$MP_T/want"
		mp_own
		# Meanwhile a reader checks that the cache is never seen half written.
		python3 - "$MP_LIB" "$CACHE" "$MP_T/stop" >"$MP_T/watch" <<-'PY' &
		import os, sys, time
		sys.path.insert(0, sys.argv[1])
		import sizecache
		seen = bad = 0
		open(sys.argv[3] + ".ready", "w").close()
		while True:
		    done = os.path.exists(sys.argv[3])
		    try:
		        sizecache.check(sys.argv[2])
		        seen += 1
		    except FileNotFoundError:
		        pass
		    except ValueError as e:
		        bad += 1
		        print("torn:", e)
		    if done:
		        break
		    time.sleep(0.0005)
		print(f"valid reads {seen}, invalid {bad}")
		PY
		watcher=$!
		while [ ! -e "$MP_T/stop.ready" ]; do sleep 0.01; done
		for i in $(seq 20); do
			printf 'LIST\r\nQUIT\r\n' | "${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" >"$MP_T/out.$i" 2>&1 &
		done
		for i in $(seq 20); do
			wait %$((i + 1))
		done
		touch "$MP_T/stop"
		wait "$watcher"
		rm "$MP_T/stop" "$MP_T/stop.ready"
		grep -q -E '^valid reads [1-9][0-9]*, invalid 0$' "$MP_T/watch" || fail "a reader saw a torn cache: $(cat "$MP_T/watch")"
		for i in $(seq 20); do
			got=$(tr -d '\r' <"$MP_T/out.$i" | sed -n '/^+OK [0-9]* messages (/,/^\.$/p')
			[ "$got" = "$(cat "$MP_T/want")" ] || fail "round $round, session $i: wrong LIST"
		done
		cache_check >/dev/null
		[ "$(cache_check | wc -l)" -eq $((34 + round)) ]
		logged_session LIST QUIT
		assert_list_right
		assert_log from-cache=$((34 + round)) from-file=0 cache=kept
		# every writer renamed its own temporary file into place or removed it
		[ -z "$(ls -A "$MD" | grep -v -x -e new -e cur -e tmp -e maildir-pop3d.cache)" ]
	done
}

@test "a ,W= size that fits the file is used without reading the file" {
	rm "$MD"/new/* "$MD"/cur/*
	# 22 octets with 4 LF: 26 on the wire.  W=27 is wrong but possible, so it is believed:
	# proof that the size came from the name and not from the file.
	printf 'Subject: w\n\nbody\nline\n' >"$MD/new/1000000001.M1P1.host,S=22,W=27"
	logged_session LIST QUIT
	assert_line '1 27'$'\r'
	assert_log messages=1 from-name=1 from-file=0 stats=1 cache=written
	logged_session LIST QUIT
	assert_line '1 27'$'\r'
	assert_log from-cache=1 from-name=0 stats=0 cache=kept
}

@test "an absurd ,W= size (smaller than the file, more than twice it, or not a number) is ignored" {
	rm "$MD"/new/* "$MD"/cur/*
	printf 'Subject: w\n\nbody\nline\n' >"$MD/new/1000000001.M1P1.host,W=12"
	printf 'Subject: w\n\nbody\nline\n' >"$MD/new/1000000002.M2P2.host,W=47"
	printf 'Subject: w\n\nbody\nline\n' >"$MD/new/1000000003.M3P3.host,W=99999999999999999999999"
	printf 'Subject: w\n\nbody\nline\n' >"$MD/new/1000000004.M4P4.host,W=27x"
	logged_session LIST QUIT
	assert_list_right
	assert_line '1 26'$'\r'
	assert_log messages=4 from-name=0 from-file=4
}

@test "a message moved from new/ to cur/ by another agent keeps its cached size" {
	logged_session QUIT
	mv "$MD/new/1000000002.M2P2.host" "$MD/cur/1000000002.M2P2.host:2,RS"
	logged_session LIST QUIT
	assert_list_right
	assert_log from-cache=3 from-file=0 cache=kept
}

@test "the temporary cache file is named after time, pid and host, in the Maildir, and renamed into place" {
	command -v strace >/dev/null || skip "strace missing"
	[[ $(id -u) == 0 ]] || skip "needs root: an unprivileged strace cannot read a non-dumpable process's paths"
	mp_own
	printf 'QUIT\r\n' | ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=openat,rename,renameat,renameat2,fsync -o "$MP_T/trace" \
		"${MP_AS[@]}" "$MAILDIR_POP3D" -p -m "$MD" >"$MP_T/out"
	host=$(hostname | tr '/: ' '___')
	run grep -E "openat\(([0-9]+), \"maildir-pop3d\.cache\.tmp\.[0-9]+\.[0-9]{9}\.P([0-9]+)\.$host\", O_WRONLY\|O_CREAT\|O_EXCL" "$MP_T/trace"
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	read -r pid rest <<<"$output"
	[[ $rest =~ \"(maildir-pop3d\.cache\.tmp\.[^\"]*)\".*\)\ +=\ ([0-9]+)$ ]]
	tmp=${BASH_REMATCH[1]}
	fd=${BASH_REMATCH[2]}
	[[ $tmp == *".P$pid.$host" ]]	# the pid in the name is the writer's
	[[ $rest =~ ^openat\(([0-9]+), ]]
	dirfd=${BASH_REMATCH[1]}
	# fsync'ed before the rename (strace may split a slow call into "unfinished" and
	# "resumed" lines)
	grep -E -q "^$pid +(fsync\($fd\)|<\.\.\. fsync resumed>\)) += 0$" "$MP_T/trace" ||
		fail "no fsync($fd) before the rename: $(cat "$MP_T/trace")"
	# renamed within the same directory: atomic
	grep -E -q "^$pid +renameat2?\($dirfd, \"$tmp\", $dirfd, \"maildir-pop3d\.cache\"(, 0)?\) += 0$" "$MP_T/trace" ||
		fail "no rename of $tmp in the same directory: $(cat "$MP_T/trace")"
	[ ! -e "$MD/$tmp" ]
	cache_check >/dev/null
}
