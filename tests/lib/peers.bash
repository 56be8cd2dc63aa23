# The real neighbours of maildir-pop3d, run as root for a test (root only): Debian's Dovecot 2.3
# (POP3 and IMAP), Courier's POP3 server, and maildir-pop3d itself, each on a loopback port in
# its own private mount and PID namespace (tests/lib/realpam.bash), serving the real test user
# alice of that namespace. Nothing on the host is started, configured or written: every config,
# socket, state and log file lives in the test's directory.
#
#   peers_available              0 if root, unshare works and Dovecot is installed, else 1
#   peers_why_not                why not, in a few words
#   peers_setup DIR              realpam_setup DIR/ns (alice, bob... with real ids); PEERS_DIR=DIR
#   peers_dovecot NAME PROTOS [LINE...]
#                                Dovecot's master (dovecot -F) with its own config DIR/NAME.conf:
#                                base_dir, state_dir and log in DIR, PROTOS ("pop3", "imap pop3")
#                                on free loopback ports (DOVECOT_POP3_PORT, DOVECOT_IMAP_PORT),
#                                alice's password from a passwd-file, her uid, gid and home from
#                                the namespace's /etc/passwd, mail_location maildir:~/Maildir;
#                                each LINE is one more setting (pop3_uidl_format = %f)
#   peers_courier                Courier's POP3 server on COURIER_PORT, its own programs end to
#                                end: couriertcpd runs courierpop3login, which checks the
#                                password through courier-authlib's authdaemond (authpam, so
#                                pam_unix with the namespace's shadow) and execs courierpop3d,
#                                which keeps courierpop3dsizelist and answers UIDL
#   PEERS_POP3_PORT              when set, the POP3 port of every server started (a switch of
#                                servers on one port, as an admin does it: clients key their
#                                state on host and port)
#   peers_stop_all               ends every server started by this helper (their namespaces)
#   peers_lda [ARG...]           dovecot-lda as alice (no daemon needed) with the NAME "lda"
#                                config: stdin is delivered to her Maildir
#   peers_as_alice CMD...        CMD inside a namespace as alice (HOME, USER set): procmail etc.
#
# Courier's POP3 server (Debian's courier-pop) conflicts with dovecot-core in apt, so it is
# never installed: peers_courier_root unpacks courier-pop and the libraries it needs (dpkg -x)
# into MP_COURIER_ROOT (scripts/check does it once), or into a cache directory on first use
# (apt-get download; a failure says so). Its programs look for /etc/courier, /usr/lib/courier*
# and /run/courier/authdaemon: inside its namespace those come from read-only overlays of the
# unpacked files over /etc and /usr/lib and a tmpfs on /run; the host's /etc, /usr and /run
# are not touched.

PEERS_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/realpam.bash
. "$PEERS_LIBDIR/realpam.bash"

PEERS_DOVECOT=/usr/sbin/dovecot
PEERS_LDA=/usr/lib/dovecot/dovecot-lda
# Debian 12's courier-pop, courier-base (couriertcpd), courier-authlib (authdaemond, authpam)
# and the library courierpop3d links that a Dovecot machine lacks.
PEERS_COURIER_DEBS=(courier-pop courier-base courier-authlib libcourier-unicode4)
PEERS_COURIER_BIN=usr/lib/courier/courier/courierpop3d
PEERS_PIDS=()

peers_available() {
	realpam_available || return 1
	[ -x "$PEERS_DOVECOT" ] && [ -x /usr/lib/dovecot/pop3 ]
}

# peers_why_not: why peers_available says no, in a few words.
peers_why_not() {
	local w
	w=$(realpam_why_not)
	echo "${w:-Dovecot is not installed (dovecot-core, dovecot-pop3d)}"
}

peers_setup() {
	local dir=${1:?usage: peers_setup DIR}
	mkdir -p "$dir" || return 1
	PEERS_DIR=$(cd "$dir" && pwd) || return 1
	chmod 755 "$PEERS_DIR"
	realpam_setup "$PEERS_DIR/ns" || return 1
	PEERS_PIDS=()
	export PEERS_DIR
}

peers_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# peers_wait_port PORT LOG: until something listens on PORT (10 s at most).
peers_wait_port() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	echo "peers: nothing listens on port $1: $(tail -5 "$2" 2>/dev/null)" >&2
	return 1
}

# peers_spawn LOG CMD...: CMD in its own namespace; its pid is remembered for peers_stop_all.
peers_spawn() {
	local log=$1 pid
	shift
	pid=$(REALPAM_LOG=$log realpam_spawn "$PEERS_DIR/ns" "$@") || return 1
	PEERS_PIDS+=("$pid")
}

peers_stop_all() {
	local pid
	for pid in "${PEERS_PIDS[@]}"; do
		realpam_kill "$pid"
	done
	PEERS_PIDS=()
	return 0
}

peers_dovecot_conf() {
	local name=$1 protos=$2 line
	shift 2
	local d=$PEERS_DIR/$name
	rm -rf "$d.run" "$d.state"
	mkdir -p "$d.run" "$d.state"
	printf 'alice:{PLAIN}%s\n' "$REALPAM_ALICE_PASSWORD" >"$d.passwd"
	chown dovecot "$d.passwd" 2>/dev/null
	chmod 600 "$d.passwd"
	{
		cat <<-EOF
			# Dovecot for one test (tests/lib/peers.bash): defaults but for these lines.
			base_dir = $d.run
			state_dir = $d.state
			protocols = $protos
			listen = 127.0.0.1
			ssl = no
			disable_plaintext_auth = no
			log_path = $d.log
			mail_location = maildir:~/Maildir
			mail_privileged_group =
			first_valid_uid = 1000
			passdb {
			  driver = passwd-file
			  args = $d.passwd
			}
			userdb {
			  driver = passwd
			}
			service pop3-login {
			  inet_listener pop3 {
			    port = ${DOVECOT_POP3_PORT:-0}
			  }
			  inet_listener pop3s {
			    port = 0
			  }
			}
			service imap-login {
			  inet_listener imap {
			    port = ${DOVECOT_IMAP_PORT:-0}
			  }
			  inet_listener imaps {
			    port = 0
			  }
			}
		EOF
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >"$d.conf"
	chmod 644 "$d.conf"
}

peers_dovecot() {
	local name=${1:?usage: peers_dovecot NAME PROTOS [LINE...]} protos=${2:?}
	shift 2
	DOVECOT_POP3_PORT=0 DOVECOT_IMAP_PORT=0
	case " $protos " in *" pop3 "*) DOVECOT_POP3_PORT=${PEERS_POP3_PORT:-$(peers_port)} ;; esac
	case " $protos " in *" imap "*) DOVECOT_IMAP_PORT=$(peers_port) ;; esac
	peers_dovecot_conf "$name" "$protos" "$@"
	local d=$PEERS_DIR/$name
	: >"$d.log"
	peers_spawn "$d.out" "$PEERS_DOVECOT" -F -c "$d.conf" || return 1
	if [ "$DOVECOT_POP3_PORT" != 0 ]; then
		peers_wait_port "$DOVECOT_POP3_PORT" "$d.log" || return 1
	fi
	if [ "$DOVECOT_IMAP_PORT" != 0 ]; then
		peers_wait_port "$DOVECOT_IMAP_PORT" "$d.log" || return 1
	fi
	export DOVECOT_POP3_PORT DOVECOT_IMAP_PORT
}

# The directory holding Courier's unpacked files (usr/lib/courier/courier/courierpop3d).
peers_courier_root() {
	local root=${MP_COURIER_ROOT:-${TMPDIR:-/tmp}/mp-courier-pop}
	if [ -x "$root/$PEERS_COURIER_BIN" ] && [ -x "$root/usr/sbin/couriertcpd" ]; then
		echo "$root"
		return 0
	fi
	peers_courier_fetch "$root" >&2 || return 1
	echo "$root"
}

# peers_courier_fetch DIR: apt-get download + dpkg -x of Debian's courier-pop into DIR.
peers_courier_fetch() {
	local root=$1 dl deb
	command -v apt-get >/dev/null || { echo "peers: no apt-get to fetch courier-pop" >&2; return 1; }
	dl=$(mktemp -d "${TMPDIR:-/tmp}/mp-courier-dl.XXXXXX") || return 1
	# apt's sandbox user must be able to write there.
	chmod 755 "$dl"
	chown _apt "$dl" 2>/dev/null
	if ! (cd "$dl" && apt-get download -q "${PEERS_COURIER_DEBS[@]}" >download.log 2>&1); then
		echo "peers: apt-get download ${PEERS_COURIER_DEBS[*]} failed:" >&2
		tail -5 "$dl/download.log" >&2
		rm -rf "$dl"
		return 1
	fi
	rm -rf "$root.new"
	mkdir -p "$root.new"
	for deb in "$dl"/*.deb; do
		dpkg-deb -x "$deb" "$root.new" || { rm -rf "$dl" "$root.new"; return 1; }
	done
	(cd "$dl" && ls -- *.deb) >"$root.new/DEBS"
	rm -rf "$dl" "$root"
	mv "$root.new" "$root"
	[ -x "$root/$PEERS_COURIER_BIN" ] || { echo "peers: no $PEERS_COURIER_BIN in courier-pop" >&2; return 1; }
}

peers_courier() {
	local root d=$PEERS_DIR ns=$PEERS_DIR/ns
	root=$(peers_courier_root) || return 1
	COURIER_PORT=${PEERS_POP3_PORT:-$(peers_port)}
	# authdaemond's configuration: PAM only, one daemon, its socket under the namespace's /run.
	mkdir -p "$d/courier-etc/courier"
	printf 'authmodulelist="authpam"\ndaemons=1\nauthdaemonvar=/run/courier/authdaemon\n' \
		>"$d/courier-etc/courier/authdaemonrc"
	# Courier's PAM service "pop3" as Debian ships it, less its password and session stacks:
	# Debian's common-session would register a logind session on the host.
	printf '@include common-auth\n@include common-account\nsession required pam_permit.so\n' \
		>"$ns/etc/pam.d/pop3"
	chmod 644 "$ns/etc/pam.d/pop3"
	cat >"$d/courier-ns.sh" <<-EOF
		# Courier in a namespace (written by tests/lib/peers.bash): Courier's compiled-in
		# paths (/etc/courier, /usr/lib/courier*, /run/courier) from overlays and a tmpfs.
		set -e
		mount -t tmpfs tmpfs /run
		mkdir -p /run/courier/authdaemon
		mount -t overlay overlay -o lowerdir=$d/courier-etc:$root/etc:/etc /etc
		for f in passwd shadow group gshadow; do
			if [ -e $ns/etc/\$f ]; then mount --bind $ns/etc/\$f /etc/\$f; fi
		done
		mount --bind $ns/etc/pam.d /etc/pam.d
		mount -t overlay overlay -o lowerdir=$root/usr/lib:/usr/lib /usr/lib
		/usr/lib/courier/courier-authlib/authdaemond &
		i=0
		while [ ! -S /run/courier/authdaemon/socket ] && [ \$i -lt 200 ]; do
			sleep 0.05
			i=\$((i + 1))
		done
		exec env -i PATH=/usr/bin:/bin POP3AUTH= $root/usr/sbin/couriertcpd -address=127.0.0.1 \\
			-nodnslookup -noidentlookup -maxprocs=20 $COURIER_PORT \\
			/usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d Maildir
	EOF
	peers_spawn "$d/courier.out" bash "$d/courier-ns.sh" || return 1
	peers_wait_port "$COURIER_PORT" "$d/courier.out" || return 1
	export COURIER_PORT
}

peers_ours() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test}"
	local san=() v shim=()
	for v in ASAN_OPTIONS UBSAN_OPTIONS MAILDIR_POP3D_PREAUTH_USER MAILDIR_POP3D_PREAUTH_CHROOT; do
		if [ -n "${!v:-}" ]; then san+=("$v=${!v}"); fi
	done
	OURS_SYSLOG=$PEERS_DIR/ours.syslog
	: >>"$OURS_SYSLOG"
	chmod 666 "$OURS_SYSLOG"
	if [ -n "${MP_SYSLOG_SHIM:-}" ] && [ -f "$MP_SYSLOG_SHIM" ]; then
		shim=(LD_PRELOAD="$MP_SYSLOG_SHIM" MP_TEST_SYSLOG="$OURS_SYSLOG")
	fi
	OURS_PORT=${PEERS_POP3_PORT:-$(peers_port)}
	peers_spawn "$PEERS_DIR/ours.out" systemd-socket-activate -l "127.0.0.1:$OURS_PORT" -a --inetd \
		env "${san[@]}" "${shim[@]}" "$MAILDIR_POP3D" "$@" || return 1
	peers_wait_port "$OURS_PORT" "$PEERS_DIR/ours.out" || return 1
	export OURS_PORT OURS_SYSLOG
}

# peers_as_alice CMD...: CMD as alice (her ids and groups) in the namespace, foreground.
peers_as_alice() {
	realpam_run "$PEERS_DIR/ns" setpriv --reuid="$REALPAM_ALICE_UID" --regid="$REALPAM_ALICE_GID" \
		--init-groups env -i PATH=/usr/bin:/bin HOME="$REALPAM_ALICE_HOME" USER=alice LOGNAME=alice "$@"
}

# peers_lda [ARG...]: dovecot-lda as alice with the config of peers_dovecot_conf lda.
peers_lda() {
	[ -f "$PEERS_DIR/lda.conf" ] || peers_dovecot_conf lda pop3
	peers_as_alice "$PEERS_LDA" -c "$PEERS_DIR/lda.conf" "$@"
}
