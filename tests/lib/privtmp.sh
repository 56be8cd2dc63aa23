#!/bin/sh
# privtmp.sh KEEP... -- CMD...: runs CMD in a new mount namespace whose /tmp is an empty
# private tmpfs, except for the top-level /tmp entries named KEEP, bind-mounted back from the
# real /tmp (the binary under test, the scratch directory...).
#
# Why: pam_wrapper (Debian 12: 1.1.4) makes a directory /tmp/pam.X in every process it is
# loaded into, X one of only 62 letters and digits, and a process that finds all 62 taken
# exits at once.  So at most ~62 cwrap'ed sessions can live at the same time on one /tmp; a
# launcher that starts each session through this script gives each its own /tmp, and the
# load test can hold 300.  The directory is not configurable (PAM_WRAPPER_RUNTIME_DIR is
# only an output), hence this.
#
# Needs root (unshare -m) or unprivileged user namespaces (unshare -Urm).  Not installed;
# for the tests (load.bats, login.bats) and scripts/check.  PRIVTMP_SIZE: the tmpfs's size
# (default 16m; "50%" is half the RAM).
set -eu
keep=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	case $1 in
	*/* | . | .. | '') echo "privtmp.sh: KEEP must be a name in /tmp: $1" >&2; exit 64 ;;
	esac
	keep="$keep $1"
	shift
done
[ $# -gt 1 ] || { echo "usage: privtmp.sh KEEP... -- CMD..." >&2; exit 64; }
shift
ns=-Urm
[ "$(id -u)" = 0 ] && ns=-m
# The inner shell keeps the real /tmp as its working directory, so "./NAME" still reaches
# the real entries once the tmpfs hides them (mount must not canonicalize "./NAME").
PRIVTMP_KEEP=$keep PRIVTMP_SIZE=${PRIVTMP_SIZE:-16m} exec unshare "$ns" --propagation private -- sh -c '
	set -eu
	cd /tmp
	mount -t tmpfs -o "mode=1777,size=$PRIVTMP_SIZE" privtmp /tmp
	for k in $PRIVTMP_KEEP; do
		if [ -d "./$k" ]; then mkdir "/tmp/$k"; else : >"/tmp/$k"; fi
		mount --no-canonicalize --bind "./$k" "/tmp/$k"
	done
	cd /
	unset PRIVTMP_KEEP PRIVTMP_SIZE
	exec "$@"' privtmp "$@"
