# Shared set-up for the bats suites: a scratch Maildir, the binary under test run as an
# ordinary user in --preauth mode, and helpers to deliver messages and compare bytes.
#
# The binary comes from $MAILDIR_POP3D (set by `make check`).  When the tests run as root
# (CI), --preauth sessions run as uid/gid 65534 through setpriv, because --preauth refuses
# root; the scratch Maildir is handed to that uid.

bats_load_library bats-support
bats_load_library bats-assert

: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
MP_LIB=${BATS_TEST_DIRNAME}/lib
MP_RUN_UID=65534
MP_ARGS=()

mp_setup() {
	# bats' own temp dir is private to root (0700): the session user must reach ours.
	MP_T=$(mktemp -d "${TMPDIR:-/tmp}/mp-test.XXXXXX")
	chmod 755 "$MP_T"
	MD=$MP_T/Maildir
	mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
	if [[ $(id -u) == 0 ]]; then
		MP_AS=(setpriv --reuid="$MP_RUN_UID" --regid="$MP_RUN_UID" --clear-groups --)
	else
		MP_AS=()
	fi
	MP_ARGS=()
	export MP_SESSION_CMD="${MP_AS[*]} $MAILDIR_POP3D -p -m $MD"
}

mp_teardown() {
	if [[ -n ${MP_T:-} && -d $MP_T ]]; then
		rm -rf "$MP_T"
	fi
	return 0
}

# mp_descendants PID: every process below PID, one per line (from /proc, no procps needed).
mp_descendants() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$c"
		mp_descendants "$c"
	done
}

# mp_kill_tree PID...: SIGTERM to each PID and to every process below it, all listed before
# the first signal (an orphan would no longer be found under its parent); then waits for
# those of the PIDs that are this shell's children.  Ends only what the test started.
mp_kill_tree() {
	local p all=()
	for p in "$@"; do
		all+=("$p")
		mapfile -t -O "${#all[@]}" all < <(mp_descendants "$p")
	done
	[[ ${#all[@]} -eq 0 ]] || kill "${all[@]}" 2>/dev/null
	for p in "$@"; do
		wait "$p" 2>/dev/null
	done
	return 0
}

# Gives the Maildir to the session user (root runs only).
mp_own() {
	if [[ $(id -u) == 0 && -e $MD ]]; then
		chown -R "$MP_RUN_UID:$MP_RUN_UID" "$MD"
	fi
	return 0
}

# deliver DIR NAME: stdin becomes $MD/DIR/NAME (DIR is new or cur).
deliver() {
	cat > "$MD/$1/$2"
}

# deliver_text NAME FORMAT [ARG...]: a printf-made message into new/.
deliver_text() {
	local name=$1
	shift
	# shellcheck disable=SC2059
	printf "$@" > "$MD/new/$name"
}

# send_raw FORMAT [ARG...]: one --preauth session fed printf-formatted input.
# send_lines LINE...: the same, one CRLF-terminated line per argument.
# Both leave the raw answer in $MP_T/out, the exit status in $status and the text
# (CRs kept) in $output.
# $MP_WRAP, when set, is a command put in front of the binary (words split on blanks), e.g.
# MP_WRAP='valgrind -q --error-exitcode=99 --leak-check=full --log-file=DIR/vg.%p'.
send_raw() {
	local fmt=$1 wrap=()
	shift
	mp_own
	status=0
	read -r -a wrap <<< "${MP_WRAP:-}"
	# shellcheck disable=SC2059
	printf "$fmt" "$@" | "${MP_AS[@]}" "${wrap[@]}" "$MAILDIR_POP3D" -p -m "$MD" "${MP_ARGS[@]}" \
		> "$MP_T/out" 2> "$MP_T/err" || status=$?
	output=$(cat "$MP_T/out")
	mapfile -t lines < "$MP_T/out"
}

send_lines() {
	local fmt= l
	for l in "$@"; do
		fmt+="${l//%/%%}\r\n"
	done
	send_raw "$fmt"
}

# assert_transcript: stdin is the expected answer, one line per line, without CRs.
# Fails when any line of the real answer lacks its CRLF or when they differ.
assert_transcript() {
	local want got
	want=$(cat)
	if ! python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(0 if d.count(b"\n")==d.count(b"\r\n") and (not d or d.endswith(b"\r\n")) else 1)' "$MP_T/out"; then
		fail "answer has a line without CRLF: $(od -c "$MP_T/out" | head -20)"
		return 1
	fi
	got=$(tr -d '\r' < "$MP_T/out")
	if [[ "$got" != "$want" ]]; then
		fail "$(printf 'transcript differs:\n--- want\n%s\n--- got\n%s\n' "$want" "$got")"
		return 1
	fi
}

# body_after TEXT: the unstuffed body (CRLF line ends, no final dot) of the multi-line
# answer whose +OK line is the first line of $MP_T/out containing TEXT.
body_after() {
	python3 - "$MP_T/out" "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
i = data.index(sys.argv[2].encode("latin-1"))
i = data.index(b"\r\n", i) + 2
out = []
while True:
    j = data.index(b"\r\n", i)
    line = data[i:j]
    i = j + 2
    if line == b".":
        break
    out.append(line[1:] if line.startswith(b".") else line)
sys.stdout.buffer.write(b"".join(l + b"\r\n" for l in out))
PY
}

# Files in the Maildir, one per line, sorted: "new/NAME" or "cur/NAME".
md_files() {
	(cd "$MD" && find new cur -type f | sort)
}

popctl() {
	mp_own
	python3 "$MP_LIB/popctl.py"
}
