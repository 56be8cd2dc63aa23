# Installs Debian packages for the tests and leaves every service they bring disabled and
# stopped; sourced by scripts/check and tests/bench/run, runs as root (apt-get).
#
#   apt_inert_install PACKAGE...   installs the missing ones (apt-get --no-install-recommends);
#                                  sets APT_INERT_INSTALLED and APT_INERT_DISABLED
#   apt_inert_missing PACKAGE...   prints the ones not installed, one per line
#
# Packages such as dovecot-pop3d, fail2ban, openbsd-inetd or slapd enable their service when
# installed, so on a systemd host Dovecot would take port 110 at the next boot (and block the
# project's own socket).  Test programs here start private instances of them; the host's
# copies must stay off.  So, around the installation:
# - /usr/sbin/policy-rc.d answers 101 (no start) unless one exists already (a Docker image
#   has one): a file we did not create is never changed or removed;
# - whatever the installation enabled is disabled again: systemd units (`systemctl disable`,
#   offline when systemd is not PID 1) and System V links (`update-rc.d NAME disable`: unlike
#   `remove`, a later upgrade of the package keeps it disabled);
# - a service it started anyway (a policy-rc.d that allows starts) is stopped;
# - the lines it added to /etc/inetd.conf are commented out as update-inetd --disable does.
# The packages themselves stay installed (reinstalling ~100 on every run would take minutes).

APT_INERT_INSTALLED=()
APT_INERT_DISABLED=()

apt_inert_missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
	done
	return 0
}

# The state that an installation may change, one item per line, sorted.
# (Each returns 0: callers may run with set -e -o pipefail, as scripts/demo does.)
apt_inert_units() {	# enabled systemd units
	command -v systemctl >/dev/null || return 0
	{ systemctl list-unit-files --state=enabled --no-legend --no-pager 2>/dev/null || :; } |
		awk '{ print $1 }' | sort -u
}
apt_inert_rclinks() {	# System V start links: NAME
	{ ls /etc/rc[2-5].d 2>/dev/null || :; } | sed -n 's/^S[0-9][0-9]//p' | sort -u
}
apt_inert_inetd() {	# active inetd.conf lines
	[ -f /etc/inetd.conf ] || return 0
	{ grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' /etc/inetd.conf || :; } | sort -u
}

apt_inert_install() {
	local missing before rc=0 created_policy=0 u n line old_traps
	APT_INERT_INSTALLED=()
	APT_INERT_DISABLED=()
	mapfile -t missing < <(apt_inert_missing "$@")
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		echo "missing packages (install them as root): ${missing[*]}" >&2
		return 1
	fi
	before=$(mktemp -d "${TMPDIR:-/tmp}/apt-inert.XXXXXX") || return 1
	apt_inert_units >"$before/units"
	apt_inert_rclinks >"$before/rclinks"
	apt_inert_inetd >"$before/inetd"
	if [ ! -e /usr/sbin/policy-rc.d ] && [ ! -L /usr/sbin/policy-rc.d ]; then
		# Removed again below, or by this trap if the run is interrupted.
		old_traps=$(trap -p EXIT INT TERM)
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
		trap 'rm -f /usr/sbin/policy-rc.d; exit 130' INT TERM
		printf '#!/bin/sh\n# made by maildir-pop3d tests/lib/aptinert.bash for one apt-get run\nexit 101\n' \
			>/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
		>"$before/apt.log" 2>&1 || rc=$?
	[ $rc -eq 0 ] || tail -n 20 "$before/apt.log" >&2

	# systemd units the installation enabled
	for u in $(apt_inert_units | comm -13 "$before/units" -); do
		if [ -d /run/systemd/system ] && systemctl is-active --quiet "$u" 2>/dev/null; then
			systemctl stop "$u" 2>/dev/null
		fi
		systemctl disable --quiet "$u" 2>/dev/null && APT_INERT_DISABLED+=("$u")
	done
	# System V start links it added (hosts without systemd, or scripts without a unit)
	for n in $(apt_inert_rclinks | comm -13 "$before/rclinks" -); do
		[ -x "/etc/init.d/$n" ] || continue
		if [ ! -d /run/systemd/system ] && "/etc/init.d/$n" status >/dev/null 2>&1; then
			"/etc/init.d/$n" stop >/dev/null 2>&1
		fi
		update-rc.d "$n" disable >/dev/null 2>&1 && APT_INERT_DISABLED+=("init.d/$n")
	done
	# inetd.conf lines it added
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		LINE=$line awk '$0 == ENVIRON["LINE"] { print "#<off># " $0; next } { print }' \
			/etc/inetd.conf >"$before/inetd.conf" && cat "$before/inetd.conf" >/etc/inetd.conf &&
			APT_INERT_DISABLED+=("inetd.conf: ${line%%[[:space:]]*}")
	done < <(apt_inert_inetd | comm -13 "$before/inetd" -)

	if [ $created_policy -eq 1 ]; then
		rm -f /usr/sbin/policy-rc.d
		trap - EXIT INT TERM
		eval "$old_traps"
	fi
	mapfile -t APT_INERT_INSTALLED < <(printf '%s\n' "${missing[@]}" | sort | comm -23 - <(apt_inert_missing "${missing[@]}" | sort))
	rm -rf "$before"
	return $rc
}
