# Debian 12 containers with systemd as PID 1, for tests/systemd.bats (root only).
#
# The root file system is made once per build directory with mmdebstrap and kept as a tar
# file ($MP_BUILDDIR/systemd-ct/root.tar); each container is a fresh copy of it, booted with
# `systemd-nspawn -b --register=no --keep-unit --private-network`: its own network namespace
# with only a loopback, so ports 110 and 995 never clash with the host or with another run.
# Clients (curl, python3) are the host's, run inside that network namespace with
# `nsenter -n`; commands inside the container (systemctl, journalctl, apt-get) run with
# `nsenter -a` against the container's PID 1.
#
#   ct_available             0 if root with systemd-nspawn, mmdebstrap and nsenter, else 1
#   ct_root_tar              prints the cached root tar, making it first if needed
#   ct_create NAME           a fresh root in $CT_DIR/NAME; prints its path
#   ct_boot NAME             boots it; waits for PID 1 to be up (running or degraded)
#   ct NAME CMD...           CMD inside the container (all its namespaces)
#   ct_net NAME CMD...       the host's CMD inside the container's network namespace
#   ct_stop NAME             powers it off and waits for systemd-nspawn to exit
#   ct_stop_all              every container this file booted
#   ct_wait NAME SECONDS CMD...   retries CMD inside the container until it succeeds

CT_SUITE='bookworm'
# What the containers have besides the essential set: systemd as init, dbus for systemctl's
# clients, what the package needs (so that apt installs it with no network), and an inetd
# for the package's update-inetd path (taken only where systemd is not running).
CT_INCLUDE='systemd,systemd-sysv,dbus,libpam-modules,libpam-runtime,libssl3,adduser,passwd,openbsd-inetd'

ct_available() {
	[[ $(id -u) -eq 0 ]] || return 1
	command -v systemd-nspawn >/dev/null && command -v mmdebstrap >/dev/null &&
		command -v nsenter >/dev/null
}

# MP_CT_CACHE: where the root is cached (scripts/check shares one among its builds).
ct_cache_dir() {
	echo "${MP_CT_CACHE:-${MP_BUILDDIR:?}/systemd-ct}"
}

# One mmdebstrap per build directory (about 25 s); a lock keeps two suites from making it
# at once.  A root older than a day is made again (security updates).
ct_root_tar() {
	local dir tar
	dir=$(ct_cache_dir)
	# The name says what is in it: another CT_INCLUDE makes another root.
	tar=$dir/root-$(printf '%s %s' "$CT_SUITE" "$CT_INCLUDE" | md5sum | cut -c1-8).tar
	mkdir -p "$dir"
	(
		flock 9
		if [[ -s $tar ]] && [[ -z $(find "$tar" -mmin +1440) ]]; then
			exit 0
		fi
		# mmdebstrap picks its output format from the name: *.tar.  It hands apt a pipe
		# as "cat >&N" for /bin/sh, and dash takes one digit only: no fd above 2 is left
		# open for it (bats holds several), so the pipe gets a low number.
		rm -rf "$dir/root.new.tar"
		mmdebstrap --variant=apt --include="$CT_INCLUDE" "$CT_SUITE" "$dir/root.new.tar" \
			</dev/null >"$dir/mmdebstrap.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- ||
			{ tail -20 "$dir/mmdebstrap.log" >&2; exit 1; }
		mv "$dir/root.new.tar" "$tar"
	) 9>"$dir/lock" || return 1
	echo "$tar"
}

ct_create() {
	local name=$1 root tar s
	root=$CT_DIR/$name
	tar=$(ct_root_tar) || return 1
	rm -rf "$root"
	mkdir -p "$root"
	tar -xf "$tar" -C "$root" || return 1
	# nspawn here cannot lower oom_score_adj: journald and dbus would fail with 206/OOM_ADJUST.
	for s in systemd-journald dbus; do
		mkdir -p "$root/etc/systemd/system/$s.service.d"
		printf '[Service]\nOOMScoreAdjust=0\n' >"$root/etc/systemd/system/$s.service.d/oom.conf"
	done
	# No login prompt on the console: nobody reads it.
	ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
	echo "$root"
}

# ct_leader NAME: the container's PID 1 as the host sees it (nspawn's child).
ct_leader() {
	cat "$CT_DIR/$1.leader"
}

ct_boot() {
	local name=$1 pid leader i state=
	systemd-nspawn -q -b --register=no --keep-unit --private-network \
		-M "mp-$name-$$" -D "$CT_DIR/$name" </dev/null >"$CT_DIR/$name.console" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	pid=$!
	echo "$pid" >"$CT_DIR/$name.pid"
	# nspawn's first child may be an intermediate process that forks the container's PID 1
	# and exits: the leader is read again until its systemd answers.
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || { tail -30 "$CT_DIR/$name.console" >&2; return 1; }
		leader=$(awk '{print $1}' "/proc/$pid/task/$pid/children" 2>/dev/null) || true
		if [[ -n $leader ]]; then
			state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null) || true
			case $state in
			running|degraded)
				echo "$leader" >"$CT_DIR/$name.leader"
				[[ $state == running ]] || nsenter -t "$leader" -a systemctl --failed --no-legend >&2
				return 0 ;;
			esac
		fi
		sleep 0.1
	done
	echo "container $name: not up after 30 s (state: $state)" >&2
	return 1
}

ct() {
	local name=$1
	shift
	nsenter -t "$(ct_leader "$name")" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

ct_net() {
	local name=$1
	shift
	nsenter -t "$(ct_leader "$name")" -n "$@"
}

ct_wait() {
	local name=$1 secs=$2 i
	shift 2
	for i in $(seq $((secs * 10))); do
		ct "$name" "$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	ct "$name" "$@"
}

ct_stop() {
	local name=$1 pid leader i
	[[ -f $CT_DIR/$name.pid ]] || return 0
	pid=$(cat "$CT_DIR/$name.pid")
	leader=$(cat "$CT_DIR/$name.leader" 2>/dev/null) || true
	# SIGTERM makes nspawn ask the container's systemd to power off; a signal that came
	# while PID 1 was busy is sent again.  After 15 s, SIGKILL to the container's PID 1
	# ends its whole PID namespace, and nspawn with it.
	for i in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		(( i % 20 == 1 )) && kill -TERM "$pid" 2>/dev/null
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		[[ -n $leader ]] && kill -KILL "$leader" 2>/dev/null
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$CT_DIR/$name.pid" "$CT_DIR/$name.leader"
}

ct_stop_all() {
	local f
	for f in "$CT_DIR"/*.pid; do
		[[ -e $f ]] || continue
		ct_stop "$(basename "$f" .pid)"
	done
}
