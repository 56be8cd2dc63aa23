# Real-PAM test harness (root only): test users exist only inside a private mount namespace.
#
# realpam_setup writes copies of /etc/passwd, /etc/shadow, /etc/group, /etc/gshadow and
# /etc/pam.d into a scratch directory, with the test users added; realpam_run and
# realpam_spawn bind-mount those copies over the real files inside `unshare -m`, so
# getpwnam, initgroups and Debian's pam_unix (common-auth, common-account) see the test users
# while the host's files are only ever read.
#
# Each command also runs in its own PID namespace whose init is a bash wrapper (not the
# command, so the daemon keeps ordinary signal semantics): when the namespace ends, every
# process left in it (daemons, per-connection children) is killed by the kernel.
#
#   realpam_available            0 if root and unshare works, else 1 (tests then skip)
#   realpam_why_not              why not, in a few words (nothing when it works)
#   realpam_setup DIR            scratch users alice, bob, carol, dave in DIR; exports REALPAM_*
#   realpam_run DIR CMD...       CMD in the namespace, in the foreground; stdin/stdout pass through
#   realpam_spawn DIR CMD...     CMD in the namespace, in the background; prints a pid whose
#                                SIGTERM tears the namespace down; output to $REALPAM_LOG
#                                (default DIR/spawn.log)
#   realpam_kill PID             SIGTERM a realpam_spawn pid and wait until its namespace is gone
#   realpam_password USER        the test password of USER

REALPAM_SERVICE=maildir-pop3d
REALPAM_ALICE_PASSWORD=alice-secret-1
REALPAM_BOB_PASSWORD=bob-secret-2
REALPAM_CAROL_PASSWORD=carol-secret-3
REALPAM_DAVE_PASSWORD=dave-secret-4
REALPAM_FIRST_ID=61000
# Source tree, for the pam.d file the project ships; MP_SRCDIR wins when set.
REALPAM_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# unshare --fork blocks SIGTERM in its parent (util-linux 2.38), so nothing below relies on
# signalling the unshare process with anything but SIGKILL; --kill-child then SIGKILLs the
# namespace's init and the kernel kills the rest of the PID namespace.
REALPAM_UNSHARE=(unshare --mount --propagation private --pid --fork --kill-child --mount-proc)

# Runs inside the namespace as its PID 1: $1 is DIR, the rest is the command.  Bind mounts
# first, then the command as a child (a PID 1 ignores default-action signals such as SIGPIPE,
# which would change the daemon's behaviour).  When it exits, the kernel kills whatever is
# left in the namespace.
# shellcheck disable=SC2016
REALPAM_INNER='# PID 1 of a realpam namespace (written by tests/lib/realpam.bash): bind mounts, then "$@".
d=$1; shift
set -e
for f in passwd shadow group gshadow; do
	if [ -e "/etc/$f" ] && [ -e "$d/etc/$f" ]; then mount --bind "$d/etc/$f" "/etc/$f"; fi
done
mount --bind "$d/etc/pam.d" /etc/pam.d
# nscd (or unscd) would answer getpwnam from its cache of the host files: hide its socket so
# glibc falls back to the bind-mounted files.
for n in /run/nscd /var/run/nscd; do
	if [ -d "$n" ]; then mount --bind "$d/nscd-hidden" "$n"; fi
done
set +e
# Not exec: the command must not be PID 1, and it runs in the foreground so that it inherits
# no SIG_IGN (bash ignores SIGQUIT in background jobs).
"$@"
exit $?
'

realpam_available() {
	[ "$(id -u)" -eq 0 ] || return 1
	command -v unshare >/dev/null 2>&1 || return 1
	"${REALPAM_UNSHARE[@]}" sh -c 'mount --bind /etc/passwd /etc/passwd' >/dev/null 2>&1
}

realpam_why_not() {
	local err
	[ "$(id -u)" -eq 0 ] || { echo "not root"; return; }
	command -v unshare >/dev/null 2>&1 || { echo "unshare is not installed (util-linux)"; return; }
	unshare --mount --propagation unchanged true 2>/dev/null ||
		{ echo "unshare --mount is not permitted (no CAP_SYS_ADMIN here, or a seccomp filter)"; return; }
	if ! unshare --mount --propagation private true 2>/dev/null; then
		if command -v mountpoint >/dev/null && ! mountpoint -q /; then
			echo "/ is not a mount point (a chroot?), so its mounts cannot be made private"
		else
			echo "the mounts cannot be made private (unshare --propagation private fails)"
		fi
		return
	fi
	realpam_available && return
	err=$("${REALPAM_UNSHARE[@]}" sh -c 'mount --bind /etc/passwd /etc/passwd' 2>&1 | head -n 1)
	echo "a private PID namespace or a bind mount over /etc/passwd fails: ${err:-no message}"
}

realpam_password() {
	case $1 in
	alice) printf '%s\n' "$REALPAM_ALICE_PASSWORD" ;;
	bob) printf '%s\n' "$REALPAM_BOB_PASSWORD" ;;
	carol) printf '%s\n' "$REALPAM_CAROL_PASSWORD" ;;
	dave) printf '%s\n' "$REALPAM_DAVE_PASSWORD" ;;
	*) return 1 ;;
	esac
}

# A crypt(3) hash of $1 made with the system's tools: yescrypt as Debian's default, else SHA-512.
realpam_hash() {
	if command -v mkpasswd >/dev/null 2>&1; then
		printf '%s\n' "$1" | mkpasswd --method=yescrypt --stdin
	elif command -v openssl >/dev/null 2>&1; then
		printf '%s\n' "$1" | openssl passwd -6 -stdin
	else
		echo "realpam: need mkpasswd (package whois) or openssl to hash passwords" >&2
		return 1
	fi
}

# The first id >= $1 that is used neither as a uid nor as a gid, in the copies nor by NSS.
realpam_free_id() {
	local dir=$1 id=$2
	while [ "$id" -lt 65000 ]; do
		if ! awk -F: -v id="$id" '$3 == id { found = 1 } END { exit !found }' \
			"$dir/etc/passwd" "$dir/etc/group" &&
			! getent passwd "$id" >/dev/null && ! getent group "$id" >/dev/null; then
			echo "$id"
			return 0
		fi
		id=$((id + 1))
	done
	echo "realpam: no free id between $2 and 65000" >&2
	return 1
}

# Users who drop to a test uid must be able to reach DIR/home: give search permission (o+x,
# not read) to DIR's ancestors, but only inside scratch space.
realpam_make_reachable() {
	local p=$1 mode
	while [ "$p" != / ] && [ -n "$p" ]; do
		mode=$(stat -c %a "$p") || return 1
		if [ $((0$mode & 1)) -eq 0 ]; then
			case $p/ in
			"${BATS_RUN_TMPDIR:-/nonexistent}"/* | "${TMPDIR:-/tmp}"/?* | /tmp/?* | /var/tmp/?*)
				chmod o+x "$p" || return 1 ;;
			*)
				echo "realpam: $p is not searchable by other users; use a scratch DIR under /tmp" >&2
				return 1 ;;
			esac
		fi
		p=$(dirname "$p")
	done
}

realpam_setup() {
	local dir=${1:?usage: realpam_setup DIR}
	local today id f name hash pamfile
	local -a names=(alice bob carol dave)

	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd) || return 1
	mkdir -p "$dir/etc" "$dir/home" "$dir/nscd-hidden" || return 1
	chmod 0755 "$dir" "$dir/etc" "$dir/home" "$dir/nscd-hidden" || return 1
	realpam_make_reachable "$dir" || return 1

	# Copies without any host entry of the same names, so ours are the only ones.
	for f in passwd shadow group gshadow; do
		[ -e "/etc/$f" ] || continue
		awk -F: '$1 !~ /^(alice|bob|carol|dave|mpgroup)$/' "/etc/$f" >"$dir/etc/$f" || return 1
		chown --reference="/etc/$f" "$dir/etc/$f" || return 1
		chmod --reference="/etc/$f" "$dir/etc/$f" || return 1
	done

	today=$(($(date +%s) / 86400))
	id=$REALPAM_FIRST_ID
	for name in "${names[@]}"; do
		id=$(realpam_free_id "$dir" "$id") || return 1
		local uname=${name^^}
		printf -v "REALPAM_${uname}_UID" %s "$id"
		printf -v "REALPAM_${uname}_GID" %s "$id"
		printf -v "REALPAM_${uname}_HOME" %s "$dir/home/$name"
		hash=$(realpam_hash "$(realpam_password "$name")") || return 1
		printf '%s:x:%s:%s:realpam test user:%s:/bin/sh\n' \
			"$name" "$id" "$id" "$dir/home/$name" >>"$dir/etc/passwd"
		case $name in
		carol)	# account expired on 1970-01-02 (0 would mean "never" to some tools)
			printf '%s:%s:%s:0:99999:7::1:\n' "$name" "$hash" "$today" ;;
		dave)	# password older than its maximum age, account itself valid
			printf '%s:%s:%s:0:30:7:::\n' "$name" "$hash" "$((today - 100))" ;;
		*)
			printf '%s:%s:%s:0:99999:7:::\n' "$name" "$hash" "$today" ;;
		esac >>"$dir/etc/shadow"
		printf '%s:x:%s:\n' "$name" "$id" >>"$dir/etc/group"
		[ -e "$dir/etc/gshadow" ] && printf '%s:!::\n' "$name" >>"$dir/etc/gshadow"
		mkdir -p "$dir/home/$name/Maildir/new" "$dir/home/$name/Maildir/cur" \
			"$dir/home/$name/Maildir/tmp" || return 1
		chown -R "$id:$id" "$dir/home/$name" || return 1
		chmod -R 0700 "$dir/home/$name" || return 1
		id=$((id + 1))
	done
	# The pre-auth process's system user, and its empty root-owned chroot.
	id=$(realpam_free_id "$dir" "$id") || return 1
	if ! grep -q '^maildir-pop3d:' "$dir/etc/passwd"; then
		printf 'maildir-pop3d:x:%s:%s::/nonexistent:/usr/sbin/nologin\n' "$id" "$id" >>"$dir/etc/passwd"
		printf 'maildir-pop3d:x:%s:\n' "$id" >>"$dir/etc/group"
		[ -e "$dir/etc/gshadow" ] && printf 'maildir-pop3d:!::\n' >>"$dir/etc/gshadow"
		[ -e "$dir/etc/shadow" ] && printf 'maildir-pop3d:!:%s:::::\n' "$today" >>"$dir/etc/shadow"
	fi
	mkdir -p "$dir/empty" && chmod 0555 "$dir/empty" || return 1
	export MAILDIR_POP3D_PREAUTH_USER=maildir-pop3d MAILDIR_POP3D_PREAUTH_CHROOT=$dir/empty
	id=$((id + 1))
	id=$(realpam_free_id "$dir" "$id") || return 1
	export REALPAM_MPGROUP_GID=$id
	printf 'mpgroup:x:%s:alice\n' "$id" >>"$dir/etc/group"
	[ -e "$dir/etc/gshadow" ] && printf 'mpgroup:!::alice\n' >>"$dir/etc/gshadow"

	rm -rf "$dir/etc/pam.d"
	cp -a /etc/pam.d "$dir/etc/pam.d" || return 1
	pamfile=${MP_SRCDIR:-$REALPAM_LIBDIR/../..}/pam.d/maildir-pop3d
	if [ -f "$pamfile" ]; then
		cp "$pamfile" "$dir/etc/pam.d/$REALPAM_SERVICE" || return 1
	else
		printf '@include common-auth\n@include common-account\n' \
			>"$dir/etc/pam.d/$REALPAM_SERVICE" || return 1
	fi
	chmod 0644 "$dir/etc/pam.d/$REALPAM_SERVICE"
	printf '%s' "$REALPAM_INNER" >"$dir/ns-init" || return 1

	export REALPAM_DIR=$dir
	: >"$dir/realpam.env"
	for f in REALPAM_DIR REALPAM_MPGROUP_GID MAILDIR_POP3D_PREAUTH_USER MAILDIR_POP3D_PREAUTH_CHROOT \
		REALPAM_{ALICE,BOB,CAROL,DAVE}_{UID,GID,HOME}; do
		export "${f?}"
		printf '%s=%q\n' "$f" "${!f}" >>"$dir/realpam.env"
	done
}

realpam_run() {
	local dir=${1:?usage: realpam_run DIR CMD...}
	shift
	[ -f "$dir/ns-init" ] || { echo "realpam: run realpam_setup $dir first" >&2; return 1; }
	"${REALPAM_UNSHARE[@]}" bash "$dir/ns-init" "$dir" "$@"
}

realpam_spawn() {
	local dir=${1:?usage: realpam_spawn DIR CMD...}
	shift
	[ -f "$dir/ns-init" ] || { echo "realpam: run realpam_setup $dir first" >&2; return 1; }
	local log=${REALPAM_LOG:-$dir/spawn.log}
	# The printed pid is this subshell: on SIGTERM it SIGKILLs unshare (which ignores
	# SIGTERM), whose --kill-child takes the namespace's init and so every process in it.
	(
		init=
		# shellcheck disable=SC2317
		stop() {
			[ -n "$init" ] || init=$(cat "/proc/$child/task/$child/children" 2>/dev/null)
			kill -KILL "$child" 2>/dev/null
			wait "$child" 2>/dev/null
			realpam_wait_gone "$init"
			exit 143
		}
		trap stop TERM HUP
		# Job control, so that the background job (and the daemon) do not start with SIGINT
		# and SIGQUIT ignored; stdin is /dev/null, so its own process group costs nothing.
		set -m
		"${REALPAM_UNSHARE[@]}" bash "$dir/ns-init" "$dir" "$@" &
		child=$!
		while [ -z "$init" ] && kill -0 "$child" 2>/dev/null; do
			init=$(cat "/proc/$child/task/$child/children" 2>/dev/null)
			[ -n "$init" ] || sleep 0.01
		done
		wait "$child"
	) </dev/null >>"$log" 2>&1 3>&- &
	echo "$!"
}

# Waits (at most 10 s) until each pid has exited; a zombie counts as exited.
realpam_wait_gone() {
	local pid i state
	for pid in "$@"; do
		for ((i = 0; i < 1000; i++)); do
			state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || break
			if [ -z "$state" ] || [ "$state" = Z ]; then break; fi
			sleep 0.01
		done
	done
}

realpam_kill() {
	local pid=${1:?usage: realpam_kill PID}
	kill -TERM "$pid" 2>/dev/null || return 0
	realpam_wait_gone "$pid"
}
