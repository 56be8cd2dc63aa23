# Private "hosts" for the scale-out suites (root only): each is a mount + network + UTS + PID
# namespace made by the test, with the realpam users (tests/lib/realpam.bash) bind-mounted in,
# its own host name and addresses, and processes that die with it. Nothing is configured in
# the host's own network namespace, and the host's files are only ever read.
#
#   hostns_start NAME DIR SETUP   a namespace whose PID 1 is realpam's ns-init (users from
#                                 realpam_setup DIR), then runs the bash snippet SETUP (as root,
#                                 inside: addresses, host name, extra mounts) and waits. Its PID 1
#                                 (host view) goes to DIR/hostns/NAME.init, the pid that
#                                 hostns_stop kills to DIR/hostns/NAME.holder; DIR is remembered
#                                 in HOSTNS_DIR (exported: setup_file and the tests share it).
#   hostns_exec NAME CMD...       CMD inside NAME, in the foreground
#   hostns_spawn NAME LOG CMD...  CMD inside NAME, in the background, output to LOG; sets
#                                 HOSTNS_SPAWNED to the pid (host view) of CMD itself
#   hostns_pids NAME              the pids (host view) of every process in NAME but its PID 1
#   hostns_stop NAME              SIGKILL the namespace: the kernel ends every process in it
#   hostns_stop_all               hostns_stop for every namespace this test started
#   hostns_wait_listening NAME PORT [PID]
#                                 waits (at most 10 s) until something in NAME listens on PORT
#   hostns_certs DIR SAN          a test CA (DIR/ca.pem) and a certificate for SAN (e.g.
#                                 DNS:pop.example.org,IP:192.0.2.1) with its key: DIR/cert.pem,
#                                 DIR/key.pem
#   hostns_fixture_cmd FILE CERTS the ExecStart= command line of the systemd drop-in FILE with
#                                 $MAILDIR_POP3D for /usr/sbin/maildir-pop3d, CERTS for
#                                 /etc/maildir-pop3d and systemd's %% as %
#   hostns_daemon_env LOG         HOSTNS_ENV: an "env VAR=..." prefix for the daemon, logging
#                                 through the syslog shim to LOG, with the sanitizer, TLS
#                                 module and pre-auth settings of make check and realpam_setup
#   hostns_attach LAN NAME ADDR/LEN [GW]
#                                 a veth pair from the bridge br0 of namespace LAN (made by its
#                                 SETUP) to eth0 in NAME, with ADDR/LEN and a default route to GW

HOSTNS_SPAWNED=

hostns_init() {
	cat "$HOSTNS_DIR/hostns/$1.init"
}

hostns_start() {
	local name=$1 dir=$2 setup=$3 ready i init holder
	export HOSTNS_DIR=$dir
	mkdir -p "$dir/hostns"
	ready=$dir/hostns/$name.ready
	rm -f "$ready"
	rm -f "$ready"
	printf '%s\n' "$setup" >"$dir/hostns/$name.setup"
	# unshare's --kill-child SIGKILLs PID 1 when unshare dies; the kernel then ends the rest.
	unshare --mount --propagation private --net --uts --pid --fork --kill-child --mount-proc \
		bash "$dir/ns-init" "$dir" bash -c 'set -e; ip link set lo up; . "$1"; : >"$2"; exec sleep infinity' \
		hostns-setup "$dir/hostns/$name.setup" "$ready" \
		</dev/null >>"$dir/hostns/$name.log" 2>&1 3>&- &
	holder=$!
	disown "$holder"	# killed with SIGKILL at the end: no job report
	echo "$holder" >"$dir/hostns/$name.holder"
	init=
	for ((i = 0; i < 1000; i++)); do
		[[ -n $init ]] || init=$(cat "/proc/$holder/task/$holder/children" 2>/dev/null)
		[[ -n $init && -e $ready ]] && break
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.01
	done
	if [[ -z $init || ! -e $ready ]]; then
		echo "# namespace $name did not start: $(cat "$dir/hostns/$name.log")" >&2
		return 1
	fi
	echo "${init%% *}" >"$dir/hostns/$name.init"
}

hostns_enter() {
	local name=$1
	shift
	nsenter --target "$(hostns_init "$name")" --mount --net --uts --pid -- "$@"
}

hostns_exec() {
	hostns_enter "$@"
}

hostns_spawn() {
	local name=$1 log=$2 nse i kid= init
	shift 2
	init=$(hostns_init "$name") || return 1
	# nsenter forks to enter the PID namespace: the command is its only child.
	nsenter --target "$init" --mount --net --uts --pid -- "$@" \
		</dev/null >>"$log" 2>&1 3>&- &
	nse=$!
	disown "$nse"
	for ((i = 0; i < 500; i++)); do
		kid=$(cat "/proc/$nse/task/$nse/children" 2>/dev/null) || true
		[[ -n $kid ]] && break
		kill -0 "$nse" 2>/dev/null || break
		sleep 0.01
	done
	HOSTNS_SPAWNED=${kid%% *}
	[[ -n $HOSTNS_SPAWNED ]] || { echo "# could not start $* in $name: $(cat "$log")" >&2; return 1; }
}

hostns_pids() {
	local init
	init=$(hostns_init "$1") || return 0
	pgrep --ns "$init" --nslist pid | grep -v -x -F "$init"
	return 0
}

hostns_stop() {
	local name=$1 holder init i
	holder=$(cat "$HOSTNS_DIR/hostns/$name.holder" 2>/dev/null) || return 0
	init=$(cat "$HOSTNS_DIR/hostns/$name.init" 2>/dev/null) || init=
	kill -KILL "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	hostns_wait_gone "$holder" $init
	rm -f "$HOSTNS_DIR/hostns/$name.holder" "$HOSTNS_DIR/hostns/$name.init"
}

# Waits (at most 10 s each) until the pids have exited; a zombie counts as exited.
hostns_wait_gone() {
	local pid i state
	for pid in "$@"; do
		for ((i = 0; i < 1000; i++)); do
			state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || break
			[[ -z $state || $state == Z ]] && break
			sleep 0.01
		done
	done
}

hostns_stop_all() {
	local f
	[[ -n ${HOSTNS_DIR:-} ]] || return 0
	for f in "$HOSTNS_DIR"/hostns/*.holder; do
		[[ -e $f ]] || continue
		f=${f##*/}
		hostns_stop "${f%.holder}"
	done
	return 0
}

hostns_wait_listening() {
	local name=$1 port=$2 pid=${3:-} i
	for ((i = 0; i < 200; i++)); do
		[[ -n $(hostns_enter "$name" ss -Hltn "( sport = :$port )" 2>/dev/null) ]] && return 0
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			echo "# $pid exited before listening on $port in $name" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "# nothing listens on port $port in $name after 10 s" >&2
	return 1
}

hostns_attach() {
	local lan=$1 name=$2 addr=$3 gw=${4:-}
	# Only the lan's network namespace: the peer's pid is one of this (the host's) PID namespace.
	nsenter --target "$(hostns_init "$lan")" --net ip link add "v-$name" type veth peer name eth0 \
		netns "$(hostns_init "$name")" &&
		hostns_exec "$lan" ip link set "v-$name" master br0 up &&
		hostns_exec "$name" ip addr add "$addr" dev eth0 &&
		hostns_exec "$name" ip link set eth0 up || return 1
	if [[ -n $gw ]]; then
		hostns_exec "$name" ip route add default via "$gw" || return 1
	fi
}

hostns_certs() {
	local dir=$1 san=$2
	mkdir -p "$dir" || return 1
	(
		set -e
		cd "$dir"
		req() { openssl req -x509 -nodes -days 2 "$@" 2>/dev/null; }
		req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj '/CN=scale-out test CA' \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
			-keyout ca.key -out ca.pem
		req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=pop.example.org \
			-addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
			-addext "subjectAltName=$san" -CA ca.pem -CAkey ca.key -keyout key.pem -out cert.pem
		chmod 600 key.pem ca.key
	) || { echo "# openssl could not make the test certificates" >&2; return 1; }
}

hostns_fixture_cmd() {
	sed -n 's/^ExecStart=\(.\+\)$/\1/p' "$1" |
		sed -e "s|/usr/sbin/maildir-pop3d|$MAILDIR_POP3D|" -e "s|/etc/maildir-pop3d/|$2/|g" -e 's/%%/%/g'
}

hostns_daemon_env() {
	local v
	HOSTNS_ENV=(env LD_PRELOAD="$MP_SYSLOG_SHIM" MP_TEST_SYSLOG="$1")
	# The pre-auth user and chroot come from realpam_setup where the daemon has them.
	for v in ASAN_OPTIONS UBSAN_OPTIONS MAILDIR_POP3D_TLS_MODULE MAILDIR_POP3D_PREAUTH_USER \
		MAILDIR_POP3D_PREAUTH_CHROOT; do
		if [[ -n ${!v:-} ]]; then HOSTNS_ENV+=("$v=${!v}"); fi
	done
}
