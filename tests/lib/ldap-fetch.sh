#!/bin/sh
# Fetches Debian's slapd, nslcd, libnss-ldapd and libpam-ldapd for tests/ldap.bats and unpacks
# them into DIR/root without installing them (run as root or not; it writes only under DIR).
#
#   tests/lib/ldap-fetch.sh DIR      prints DIR/root; MP_LDAP_ROOT=DIR/root runs tests/ldap.bats
#
# Installing them would run their maintainer scripts: pam-auth-update rewrites the host's
# /etc/pam.d/common-*, libnss-ldapd edits /etc/nsswitch.conf, slapd and nslcd start as host
# services. The test instead runs slapd and nslcd itself and bind-mounts its own nsswitch.conf,
# PAM files and the unpacked modules inside a private mount namespace. The libraries they link
# (libldap, libsasl2, libltdl, libodbc, libwrap, libargon2, libperl) are ordinary packages
# without services; scripts/check installs them.
set -eu
dir=${1:?usage: ldap-fetch.sh DIR}
pkgs="slapd nslcd libnss-ldapd libpam-ldapd"
mkdir -p "$dir/debs"
dir=$(cd "$dir" && pwd)
# apt-get download writes into the current directory; as root its sandbox user _apt must be
# able to write there too.
chmod 0777 "$dir/debs"
for p in $pkgs; do
	if ! ls "$dir/debs/${p}"_*.deb >/dev/null 2>&1; then
		(cd "$dir/debs" && apt-get download -q "$p" >/dev/null) || {
			echo "ldap-fetch: apt-get download $p failed (is Debian's apt reachable?)" >&2
			exit 1
		}
	fi
done
rm -rf "$dir/root.new"
for f in "$dir"/debs/*.deb; do
	dpkg-deb -x "$f" "$dir/root.new"
done
rm -rf "$dir/root"
mv "$dir/root.new" "$dir/root"
for f in usr/sbin/slapd usr/sbin/slapadd usr/sbin/nslcd etc/ldap/schema/nis.schema; do
	[ -e "$dir/root/$f" ] || { echo "ldap-fetch: $f is not in the packages" >&2; exit 1; }
done
[ -n "$(find "$dir/root" -name libnss_ldap.so.2)" ] && [ -n "$(find "$dir/root" -name pam_ldap.so)" ] ||
	{ echo "ldap-fetch: libnss_ldap.so.2 or pam_ldap.so is not in the packages" >&2; exit 1; }
echo "$dir/root"
