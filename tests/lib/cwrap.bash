# cwrap harness for bats: test users, groups and PAM accounts in a directory, and the
# environment that runs a process under pam_wrapper (pam_matrix), nss_wrapper and
# uid_wrapper plus the syslog shim (tests/lib/syslog-shim.c), so the real binary can log in,
# drop privileges and log without root. Works the same whether the real user is root or not.
#
#   load lib/cwrap
#   setup() { cwrap_setup "$BATS_TEST_TMPDIR/cw"; cwrap_add_user alice secret 1001; }
#
# cwrap_setup DIR                       files in DIR, exports the environment below, CWRAP_DIR=DIR
# cwrap_add_user NAME PASSWORD UID [SERVICE]
#                                       passwd + own group (gid=UID) + pam_matrix passdb line +
#                                       DIR/home/NAME; SERVICE other than maildir-pop3d makes
#                                       pam_acct_mgmt fail with PAM_PERM_DENIED (6): "expired"
# cwrap_add_group NAME GID MEMBER...    a supplementary group
# cwrap_env_prefix                      prints "env VAR=value ..." to prefix a command
# cwrap_setenv_args                     prints "-E VAR=value ..." for systemd-socket-activate
# cwrap_as_user NAME CMD...             runs CMD as the test user from the start (not root):
#                                       the "started by an ordinary user" and --preauth cases
# cwrap_unwrapped CMD...                runs CMD without the wrappers (clients, tools)
# cwrap_teardown                        removes pam_wrapper's stale /tmp/pam.? directories
#
# Needs MP_SYSLOG_SHIM: the path of the built syslog-shim.so
# (cc -shared -fPIC -o syslog-shim.so tests/lib/syslog-shim.c).
#
# systemd-socket-activate gives its child an empty environment (PATH and LISTEN_* only), so
# the wrappers must be passed on explicitly, either way:
#   systemd-socket-activate -l 127.0.0.1:PORT -a [--inetd] $(cwrap_env_prefix) maildir-pop3d ...
#   systemd-socket-activate -l 127.0.0.1:PORT -a [--inetd] $(cwrap_setenv_args) maildir-pop3d ...
# (env execs, so LISTEN_PID stays right.) Paths must not contain blanks: cwrap_setup refuses them.
#
# What the wrappers do and do not do (Debian 12: pam_wrapper 1.1.4, uid_wrapper 1.2.9):
# - uid_wrapper only pretends: files are created with the real uid and the kernel checks
#   access with it, so permission tests need the real-PAM suite. After a full drop
#   setuid(0)/seteuid(0)/setresuid(0,0,0)/setresgid(0,0,0) fail with EPERM, like the kernel,
#   but setgroups() still succeeds: do not make "setgroups fails" part of the drop check.
# - Fake ids survive fork (+exec) but not a plain exec: an exec'd image starts again as
#   root (UID_WRAPPER_ROOT=1).
# - Since cwrap_setup exports LD_PRELOAD, every program a test runs is wrapped, believes it
#   is root and sees only the test passwd; use cwrap_unwrapped for clients that mind.
# - pam_wrapper copies the service dir into /tmp/pam.X (62 possible names) in every wrapped
#   process; at most ~62 wrapped processes can run at once.
# - nss_wrapper keeps the passwd and group files open (O_CLOEXEC) in the process.
# - ASan builds: ASAN_OPTIONS=verify_asan_link_order=0 and PAM_WRAPPER_DISABLE_DEEPBIND=1
#   NSS_WRAPPER_DISABLE_DEEPBIND=1 UID_WRAPPER_DISABLE_DEEPBIND=1.

CWRAP_SERVICE=maildir-pop3d
CWRAP_VARS=(LD_PRELOAD PAM_WRAPPER PAM_WRAPPER_SERVICE_DIR PAM_WRAPPER_USE_SYSLOG
	NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP UID_WRAPPER UID_WRAPPER_ROOT MP_TEST_SYSLOG
	MAILDIR_POP3D_PREAUTH_USER MAILDIR_POP3D_PREAUTH_CHROOT)
# The pre-auth process's user (in the test passwd) and its empty chroot (in DIR).
CWRAP_PREAUTH_USER=maildir-pop3d
CWRAP_PREAUTH_UID=101
# The TLS module of the build under test (make check sets MAILDIR_POP3D_TLS_MODULE; a
# suite run by hand with MP_BUILDDIR finds it there): the daemon runs uninstalled.
if [[ -z ${MAILDIR_POP3D_TLS_MODULE:-} && -n ${MP_BUILDDIR:-} && -f $MP_BUILDDIR/src/.libs/tls.so ]]; then
	export MAILDIR_POP3D_TLS_MODULE=$MP_BUILDDIR/src/.libs/tls.so
fi
# Sanitizer builds (scripts/check's asan step sets these) and the TLS module: carried like
# the rest, so that processes started through an emptied environment get them too.
for v in PAM_WRAPPER_DISABLE_DEEPBIND NSS_WRAPPER_DISABLE_DEEPBIND UID_WRAPPER_DISABLE_DEEPBIND \
	ASAN_OPTIONS UBSAN_OPTIONS MAILDIR_POP3D_TLS_MODULE; do
	if [[ -n ${!v:-} ]]; then CWRAP_VARS+=("$v"); fi
done
unset v

cwrap_fail() {
	printf 'cwrap: %s\n' "$*" >&2
	return 1
}

# Prints the path of a cwrap library: pkg-config first, then the multiarch directories.
cwrap_find_lib() {
	local pc=$1 so=$2 path d

	path=$(pkg-config --libs "$pc" 2>/dev/null) || path=
	path=${path%% *}
	if [[ $path == /* && -f $path ]]; then
		printf '%s\n' "$path"
		return 0
	fi
	for d in /usr/lib/"$(gcc -print-multiarch 2>/dev/null)" /usr/lib/*-linux-gnu* /usr/lib64 /usr/lib; do
		if [[ -f $d/$so ]]; then
			printf '%s\n' "$d/$so"
			return 0
		fi
	done
	cwrap_fail "$so not found (Debian: apt-get install libpam-wrapper libnss-wrapper libuid-wrapper)"
}

cwrap_setup() {
	local dir=$1 pamwrap nsswrap uidwrap modules t

	[[ -n $dir ]] || { cwrap_fail "usage: cwrap_setup DIR"; return 1; }
	[[ -n ${MP_SYSLOG_SHIM:-} ]] ||
		{ cwrap_fail "MP_SYSLOG_SHIM is not set: build tests/lib/syslog-shim.c (cc -shared -fPIC -o syslog-shim.so syslog-shim.c) and export its path"; return 1; }
	[[ -f $MP_SYSLOG_SHIM ]] || { cwrap_fail "MP_SYSLOG_SHIM=$MP_SYSLOG_SHIM: no such file"; return 1; }

	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd -P) || return 1
	MP_SYSLOG_SHIM=$(cd "$(dirname "$MP_SYSLOG_SHIM")" && pwd -P)/$(basename "$MP_SYSLOG_SHIM")
	# LD_PRELOAD splits on blanks and colons, cwrap_env_prefix's words on blanks.
	for t in "$dir" "$MP_SYSLOG_SHIM"; do
		[[ $t != *[[:space:]:]* ]] || { cwrap_fail "path with a blank or colon: $t"; return 1; }
	done

	pamwrap=$(cwrap_find_lib pam_wrapper libpam_wrapper.so) || return 1
	nsswrap=$(cwrap_find_lib nss_wrapper libnss_wrapper.so) || return 1
	uidwrap=$(cwrap_find_lib uid_wrapper libuid_wrapper.so) || return 1
	modules=$(pkg-config --variable=modules pam_wrapper 2>/dev/null) || modules=
	[[ -n $modules ]] || modules=$(dirname "$pamwrap")/pam_wrapper
	[[ -f $modules/pam_matrix.so ]] || { cwrap_fail "pam_matrix.so not found in $modules"; return 1; }

	mkdir -p "$dir/pam.d" "$dir/home" || return 1
	printf 'root:x:0:0:root:/root:/bin/sh\n%s:x:%s:%s::/nonexistent:/usr/sbin/nologin\n' \
		"$CWRAP_PREAUTH_USER" "$CWRAP_PREAUTH_UID" "$CWRAP_PREAUTH_UID" >"$dir/passwd"
	printf 'root:x:0:\n%s:x:%s:\n' "$CWRAP_PREAUTH_USER" "$CWRAP_PREAUTH_UID" >"$dir/group"
	mkdir -p "$dir/empty" && chmod 0555 "$dir/empty" || return 1
	: >"$dir/passdb"
	: >"$dir/syslog"
	for t in auth account password session; do
		printf '%-8s required %s/pam_matrix.so passdb=%s\n' "$t" "$modules" "$dir/passdb"
	done >"$dir/pam.d/$CWRAP_SERVICE"
	# As on Debian: an unknown service is denied, and libpam does not complain about "other".
	for t in auth account password session; do
		printf '%-8s required pam_deny.so\n' "$t"
	done >"$dir/pam.d/other"

	CWRAP_DIR=$dir
	export LD_PRELOAD="$pamwrap:$nsswrap:$uidwrap:$MP_SYSLOG_SHIM"
	export PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$dir/pam.d"
	# PAM modules' messages go to syslog (the shim, facility authpriv), not to stderr,
	# which may be the client's socket.
	export PAM_WRAPPER_USE_SYSLOG=1
	export NSS_WRAPPER_PASSWD="$dir/passwd" NSS_WRAPPER_GROUP="$dir/group"
	export UID_WRAPPER=1 UID_WRAPPER_ROOT=1
	export MP_TEST_SYSLOG="$dir/syslog"
	export MP_SYSLOG_SHIM
	export MAILDIR_POP3D_PREAUTH_USER=$CWRAP_PREAUTH_USER MAILDIR_POP3D_PREAUTH_CHROOT=$dir/empty
}

cwrap_add_user() {
	local name=$1 password=$2 uid=$3 service=${4:-$CWRAP_SERVICE}

	[[ -n ${CWRAP_DIR:-} ]] || { cwrap_fail "cwrap_setup first"; return 1; }
	[[ $# -ge 3 && -n $name && $uid =~ ^[0-9]+$ ]] ||
		{ cwrap_fail "usage: cwrap_add_user NAME PASSWORD UID [SERVICE]"; return 1; }
	[[ $name$password$service != *[:$'\n']* ]] || { cwrap_fail "no ':' or newline in a passdb field"; return 1; }
	! grep -q "^$name:" "$CWRAP_DIR/passwd" || { cwrap_fail "user $name exists"; return 1; }

	printf '%s:x:%s:%s:%s:%s:/bin/sh\n' "$name" "$uid" "$uid" "$name" "$CWRAP_DIR/home/$name" >>"$CWRAP_DIR/passwd"
	printf '%s:x:%s:\n' "$name" "$uid" >>"$CWRAP_DIR/group"
	printf '%s:%s:%s\n' "$name" "$password" "$service" >>"$CWRAP_DIR/passdb"
	mkdir -p "$CWRAP_DIR/home/$name"
}

cwrap_add_group() {
	local name=$1 gid=$2 members

	[[ -n ${CWRAP_DIR:-} ]] || { cwrap_fail "cwrap_setup first"; return 1; }
	[[ -n $name && $gid =~ ^[0-9]+$ ]] || { cwrap_fail "usage: cwrap_add_group NAME GID MEMBER..."; return 1; }
	shift 2
	members=$(IFS=,; printf '%s' "$*")
	printf '%s:x:%s:%s\n' "$name" "$gid" "$members" >>"$CWRAP_DIR/group"
}

cwrap_env_prefix() {
	local v

	printf 'env'
	for v in "${CWRAP_VARS[@]}"; do
		printf ' %s=%s' "$v" "${!v}"
	done
	printf '\n'
}

cwrap_setenv_args() {
	local v sep=

	for v in "${CWRAP_VARS[@]}"; do
		printf '%s-E %s=%s' "$sep" "$v" "${!v}"
		sep=' '
	done
	printf '\n'
}

# uid_wrapper takes its starting ids from UID_WRAPPER_INITIAL_* (and then removes them from
# the environment): they reach CMD only if CMD is the first wrapped program, so no wrapped
# "env" or "sh -c 'exec ...'" in between. bash runs CMD directly, so this function works.
cwrap_as_user() {
	local name=$1 uid gid groups

	[[ -n ${CWRAP_DIR:-} && $# -ge 2 ]] || { cwrap_fail "usage (after cwrap_setup): cwrap_as_user NAME CMD..."; return 1; }
	shift
	IFS=: read -r _ _ uid gid _ < <(grep "^$name:" "$CWRAP_DIR/passwd") || true
	[[ -n $uid ]] || { cwrap_fail "no user $name"; return 1; }
	groups=$(awk -F: -v u="$name" -v g="$gid" '
		BEGIN { out = g }
		$3 != g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) out = out "," $3 }
		END { print out }' "$CWRAP_DIR/group")
	UID_WRAPPER_INITIAL_RUID=$uid UID_WRAPPER_INITIAL_EUID=$uid UID_WRAPPER_INITIAL_SUID=$uid \
	UID_WRAPPER_INITIAL_RGID=$gid UID_WRAPPER_INITIAL_EGID=$gid UID_WRAPPER_INITIAL_SGID=$gid \
	UID_WRAPPER_INITIAL_GROUPS=$groups \
	UID_WRAPPER_INITIAL_GROUPS_COUNT=$(awk -F, '{ print NF }' <<<"$groups") \
		"$@"
}

cwrap_unwrapped() {
	local args=() v

	for v in "${CWRAP_VARS[@]}" PAM_WRAPPER_RUNTIME_DIR; do
		args+=(-u "$v")
	done
	env "${args[@]}" "$@"
}

# cwrap_tmp_keep PATH...: the top-level /tmp entries that hold the PATHs, one per line: what
# tests/lib/privtmp.sh must bind back into a private /tmp for a wrapped process to reach them.
cwrap_tmp_keep() {
	local p
	for p in "$@"; do
		p=$(realpath -m "$p")
		if [[ $p == /tmp/* ]]; then
			p=${p#/tmp/}
			printf '%s\n' "${p%%/*}"
		fi
	done | sort -u
}

# pam_wrapper makes /tmp/pam.X (one of 62 names) in every process it is loaded into and
# removes it at exit; a killed or exec'ing process leaves it behind until another process
# happens to probe that name. Remove ours whose process is gone.
cwrap_teardown() {
	local d pid

	for d in /tmp/pam.?; do
		[[ -d $d && -O $d && -f $d/pid ]] || continue
		{ read -r pid < "$d/pid"; } 2>/dev/null || continue
		[[ $pid =~ ^[0-9]+$ && ! -e /proc/$pid ]] || continue
		rm -rf -- "$d"
	done
	return 0
}
