#!/usr/bin/env bats
# Accounts from a directory (root only; skipped otherwise): a real slapd on its own "host"
# (namespace ldap, 192.0.2.20) holds lucy, who exists nowhere else; on the POP3 host (namespace
# pop1, 192.0.2.11, both on a bridge the test makes) nslcd, libnss-ldapd and libpam-ldapd
# make her an account through NSS and PAM, with tests/data/scaleout/{nslcd.conf,nsswitch.conf,
# common-auth,common-account} (the files README.md shows) and the modules of Debian's packages;
# nslcd talks to slapd with StartTLS (a test CA), and slapd takes simple binds only over TLS.
# The packages are unpacked, never installed (tests/lib/ldap-fetch.sh; MP_LDAP_ROOT names the
# tree, scripts/check makes it): their maintainer scripts would rewrite the host's PAM files
# and nsswitch.conf. Inside pop1's private mount namespace the test's files are laid over /etc
# and the modules over the library directory (read-only overlays), and /home is the test's.
#
# The daemon runs with the shipped units' command line (nothing to loosen for nslcd: it is
# asked over a unix socket) under systemd-socket-activate. Asserts: lucy logs in with her
# directory password through the real PAM stack (a wrong one is refused), the serving process
# runs with her directory uid, gid and groups (/proc/PID/status), in the Maildir under her
# directory home; the host's files are unchanged. The same again under a real systemd PID 1
# (tests/lib/container.bash): `make install` into a Debian 12 container, nslcd and the modules
# put where the packages put them, the shipped socket and service units with their sandbox
# (RestrictAddressFamilies=AF_UNIX, IPAddressDeny=any) unchanged; slapd answers on the
# container's loopback.
#
# Needs: systemd (systemd-socket-activate), iproute2, util-linux, python3 (and for the real
# systemd: systemd-container, mmdebstrap, Debian's apt once per build), and the packages
# above unpacked (their libraries installed: libldap-2.5-0, libsasl2-2, libltdl7, libodbc2,
# libwrap0, libargon2-1, libperl5.36, libgssapi-krb5-2).

bats_load_library bats-support
bats_load_library bats-assert
load lib/realpam
load lib/hostns
load lib/container
bats_require_minimum_version 1.5.0

FIX=$BATS_TEST_DIRNAME/data/scaleout
LUCY_PW=lucy-ldap-secret-5
LUCY_UID=62001
LUCY_GID=62001
MAILUSERS_GID=62010

host_sums() {
	sha256sum /etc/passwd /etc/group /etc/nsswitch.conf 2>/dev/null
	find /etc/pam.d -type f -exec sha256sum {} + | sort
	ls -la /etc/nslcd.conf /lib/*/libnss_ldap.so.2 /lib/*/security/pam_ldap.so /run/nslcd 2>&1 | sort
}

why_skip() {
	[[ $(id -u) == 0 ]] || { echo "needs root: slapd, nslcd and the PAM stack live in namespaces the test makes"; return; }
	[[ -n ${MP_LDAP_ROOT:-} ]] || { echo "MP_LDAP_ROOT is not set: run tests/lib/ldap-fetch.sh DIR and set MP_LDAP_ROOT=DIR/root (scripts/check does)"; return; }
	command -v systemd-socket-activate >/dev/null || { echo "systemd-socket-activate is not installed (Debian: systemd)"; return; }
	unshare --mount --net --uts --pid --fork true 2>/dev/null || { echo "unshare of mount, net, uts and pid namespaces is not permitted here"; return; }
	grep -qw overlay /proc/filesystems || { echo "no overlay file system in this kernel"; return; }
	unshare --net sh -c 'ip link add b0 type bridge && ip link add v0 type veth peer name v1' 2>/dev/null ||
		{ echo "this kernel makes no bridge or veth devices"; return; }
	return 0
}

setup_file() {
	if [[ $(id -u) == 0 ]]; then
		host_sums >"$BATS_FILE_TMPDIR/host-sums"
	fi
}

# directory_setup DIR: slapd's configuration and database (the fixture's tree) in DIR/slapd, its
# certificate from a test CA for ldap.example.org in DIR/ldapcerts; sets SLAPD_ENV (what the
# unpacked slapd needs to run) and MULTIARCH (/lib/x86_64-linux-gnu or the like).
directory_setup() {
	local D=$1 R=$MP_LDAP_ROOT nss
	nss=$(find "$R" -name libnss_ldap.so.2 | head -1)
	MULTIARCH=${nss#"$R"}
	MULTIARCH=${MULTIARCH%/libnss_ldap.so.2}
	[[ -d $MULTIARCH ]] || fail "no $MULTIARCH on this host"
	hostns_certs "$D/ldapcerts" "DNS:ldap.example.org"
	# The directory: slapd with its own configuration and database, the fixture's tree.
	mkdir -p "$D/slapd/db"
	cat >"$D/slapd/slapd.conf" <<-EOF
		include $R/etc/ldap/schema/core.schema
		include $R/etc/ldap/schema/cosine.schema
		include $R/etc/ldap/schema/nis.schema
		include $R/etc/ldap/schema/inetorgperson.schema
		modulepath $R/usr/lib/ldap
		moduleload back_mdb
		pidfile $D/slapd/slapd.pid
		database mdb
		suffix "dc=example,dc=org"
		rootdn "cn=admin,dc=example,dc=org"
		directory $D/slapd/db
		TLSCACertificateFile $D/ldapcerts/ca.pem
		TLSCertificateFile $D/ldapcerts/cert.pem
		TLSCertificateKeyFile $D/ldapcerts/key.pem
		# simple binds (pam_ldap's password checks) only over TLS
		security simple_bind=128
		access to attrs=userPassword by anonymous auth by self write by * none
		access to * by * read
	EOF
	SLAPD_ENV=(env LD_LIBRARY_PATH="$R/usr/lib/$(basename "$MULTIARCH")")
	"${SLAPD_ENV[@]}" "$R/usr/sbin/slapadd" -q -f "$D/slapd/slapd.conf" -l "$FIX/directory.ldif" \
		>"$D/slapadd.log" 2>&1 || fail "slapadd: $(cat "$D/slapadd.log")"
}

setup() {
	[[ $BATS_TEST_DESCRIPTION == README* ]] && return 0
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	local why
	why=$(why_skip)
	[[ -z $why ]] || skip "$why"
	[[ -n ${MP_SYSLOG_SHIM:-} && -f $MP_SYSLOG_SHIM ]] ||
		fail "MP_SYSLOG_SHIM must name the built syslog-shim.so (make check sets it)"
	local R=$MP_LDAP_ROOT f
	for f in usr/sbin/slapd usr/sbin/nslcd; do
		[[ -x $R/$f ]] || fail "$R/$f is missing: run tests/lib/ldap-fetch.sh again"
	done
	! getent passwd lucy "$LUCY_UID" >/dev/null || fail "the host already has a user lucy or uid $LUCY_UID"
	! getent group "$MAILUSERS_GID" >/dev/null || fail "the host already has group $MAILUSERS_GID"

	D=$BATS_TEST_TMPDIR/lab
	directory_setup "$D"
	[[ $BATS_TEST_DESCRIPTION == "under a real systemd"* ]] && return 0
	realpam_setup "$D"
	# The POP3 host's /etc: realpam's copies plus the fixtures, and the user nslcd runs as (the
	# package would add it).
	cp "$FIX/nslcd.conf" "$FIX/nsswitch.conf" "$D/etc/"
	chmod 0644 "$D/etc/nsswitch.conf"
	# The directory's name and CA, as the fixture names them.
	cp /etc/hosts "$D/etc/hosts"
	printf '192.0.2.20\tldap.example.org\n' >>"$D/etc/hosts"
	mkdir -p "$D/etc/ssl/certs"
	cp "$D/ldapcerts/ca.pem" "$D/etc/ssl/certs/ldap.example.org-ca.pem"
	chmod 0644 "$D/etc/hosts" "$D/etc/ssl/certs/ldap.example.org-ca.pem"
	chmod 0640 "$D/etc/nslcd.conf"
	cp "$FIX/common-auth" "$FIX/common-account" "$D/etc/pam.d/"
	local id
	id=$(realpam_free_id "$D" 61900)
	printf 'nslcd:x:%s:%s:nslcd name service LDAP connection daemon:/run/nslcd:/usr/sbin/nologin\n' "$id" "$id" >>"$D/etc/passwd"
	printf 'nslcd:x:%s:\n' "$id" >>"$D/etc/group"
	chgrp "$id" "$D/etc/nslcd.conf"
	# The modules where glibc and libpam look for them: the unpacked multiarch directory.
	local multiarch=$MULTIARCH
	mkdir -p "$D/lib/security"
	cp "$R$multiarch/libnss_ldap.so.2" "$D/lib/"
	cp "$R$multiarch/security/pam_ldap.so" "$D/lib/security/"
	# lucy's home exists only on the POP3 host's /home.
	mkdir -p "$D/ldaphome/lucy/Maildir/new" "$D/ldaphome/lucy/Maildir/cur" "$D/ldaphome/lucy/Maildir/tmp"
	printf 'Subject: from the directory\n\nhello lucy\n' >"$D/ldaphome/lucy/Maildir/new/1000000001.M1P1.ldap"
	chown -R "$LUCY_UID:$LUCY_GID" "$D/ldaphome/lucy"
	chmod -R go= "$D/ldaphome/lucy"
	chmod 0755 "$D/ldaphome"

	hostns_start lan "$D" "hostname lan; ip link add br0 type bridge && ip link set br0 up"
	hostns_start ldap "$D" "hostname ldap"
	hostns_attach lan ldap 192.0.2.20/24
	hostns_start pop1 "$D" "hostname pop1
		mount -t overlay overlay -o lowerdir=$D/etc:/etc /etc
		mount -t overlay overlay -o lowerdir=$D/lib:$multiarch $multiarch
		mount -t tmpfs -o mode=0755 tmpfs /run
		mkdir -m 0755 /run/nslcd && chown nslcd:nslcd /run/nslcd
		mount --bind $D/ldaphome /home"
	hostns_attach lan pop1 192.0.2.11/24

	hostns_spawn ldap "$D/slapd.log" "${SLAPD_ENV[@]}" "$R/usr/sbin/slapd" -d 256 \
		-f "$D/slapd/slapd.conf" -h ldap://192.0.2.20/	# -d: foreground; 256: log binds
	hostns_wait_listening ldap 389 "$HOSTNS_SPAWNED"
	hostns_spawn pop1 "$D/nslcd.log" "$R/usr/sbin/nslcd" -n
	local i
	for ((i = 0; i < 200; i++)); do
		hostns_exec pop1 test -S /run/nslcd/socket && break
		sleep 0.05
	done
	hostns_exec pop1 test -S /run/nslcd/socket || fail "nslcd did not start: $(cat "$D/nslcd.log")"

	LOG=$D/syslog
	: >"$LOG"
	chmod 644 "$LOG"
	hostns_daemon_env "$LOG"
	# The shipped units' command line: ExecStart=@sbindir@/maildir-pop3d, nothing added.
	CMD=$(sed -n 's|^ExecStart=@sbindir@/\(maildir-pop3d.*\)$|\1|p' "$BATS_TEST_DIRNAME/../systemd/maildir-pop3d@.service.in")
	[[ $CMD == maildir-pop3d ]] || fail "the unit's ExecStart= changed: $CMD"
	hostns_spawn pop1 "$D/ssa.log" systemd-socket-activate -l 127.0.0.1:110 -a --inetd \
		"${HOSTNS_ENV[@]}" "$MAILDIR_POP3D"
	hostns_wait_listening pop1 110 "$HOSTNS_SPAWNED"
}

teardown() {
	hostns_stop_all
	if [[ -n ${CT_SLAPD:-} ]]; then
		kill -TERM "$CT_SLAPD" 2>/dev/null
		hostns_wait_gone "$CT_SLAPD"
	fi
	[[ -z ${CT_DIR:-} ]] || ct_stop_all
}

# The result codes (0 success, 49 invalid credentials) of the binds as lucy that slapd logged,
# in order: pam_ldap (through nslcd on pop1) checks a password by binding as the user. (slapd's
# threads may log a connection's ACCEPT after its BIND.)
# slapd may log a result after the client has it: waits (at most 10 s) for N of them.
lucy_binds() {
	local n=$1 i
	for ((i = 0; i < 200; i++)); do
		[[ $(lucy_bind_results | wc -l) -ge $n ]] && break
		sleep 0.05
	done
	lucy_bind_results
}

lucy_bind_results() {
	awk '/ BIND dn="uid=lucy,ou=people,dc=example,dc=org" method=/ { lucy[$3 " " $4] = 1 }
		/ RESULT tag=97 / && lucy[$3 " " $4] { sub(/^err=/, "", $7); print $7 }' "$D/slapd.log"
}

teardown_file() {
	if [[ $(id -u) == 0 && -f $BATS_FILE_TMPDIR/host-sums ]]; then
		host_sums >"$BATS_FILE_TMPDIR/host-sums.after"
		cmp -s "$BATS_FILE_TMPDIR/host-sums" "$BATS_FILE_TMPDIR/host-sums.after" || {
			echo "# the host's files changed:" >&3
			diff "$BATS_FILE_TMPDIR/host-sums" "$BATS_FILE_TMPDIR/host-sums.after" | sed 's/^/# /' >&3
			return 1
		}
	fi
}

# client USER PASSWORD [hold]: python3's poplib on pop1's 127.0.0.1:110; with hold, while the
# session is open, the Uid/Gid/Groups lines and cwd of every process systemd-socket-activate
# started for it.
client() {
	hostns_exec pop1 python3 - "$@" <<-'EOF'
		import os, poplib, sys
		user, password = sys.argv[1:3]
		p = poplib.POP3("127.0.0.1", 110, timeout=30)
		p.user(user)
		try:
		    print("login:", p.pass_(password).decode())
		except poplib.error_proto as e:
		    print("login:", e.args[0].decode())
		    sys.exit(0)
		if "hold" in sys.argv[3:]:
		    ssa = [d for d in os.listdir("/proc") if d.isdigit() and
		           open("/proc/%s/comm" % d).read().startswith("systemd-socket")][0]
		    for pid in open("/proc/%s/task/%s/children" % (ssa, ssa)).read().split():
		        for l in open("/proc/%s/status" % pid):
		            if l.split(":")[0] in ("Uid", "Gid", "Groups"):
		                print(l.split(":")[0] + ": " + " ".join(l.split()[1:]))
		        print("cwd: " + os.readlink("/proc/%s/cwd" % pid))
		for l in p.retr(1)[1]:
		    print("retr| " + l.decode())
		print("quit:", p.quit().decode())
	EOF
}

@test "README.md shows the nslcd, nsswitch and PAM files this suite runs" {
	local f
	for f in nslcd.conf nsswitch.conf common-auth common-account; do
		python3 - "$BATS_TEST_DIRNAME/../README.md" "$FIX/$f" <<-'EOF' || fail "README.md does not show $f as it is"
			import sys
			sys.exit(0 if ("```\n" + open(sys.argv[2]).read() + "```\n") in open(sys.argv[1]).read() else 1)
		EOF
	done
}

@test "a user who exists only in the directory is an account on the POP3 host, and nowhere else" {
	run hostns_exec pop1 getent passwd lucy
	assert_output "lucy:*:$LUCY_UID:$LUCY_GID:Lucy Ldap:/home/lucy:/bin/sh"
	run hostns_exec pop1 id lucy
	assert_output "uid=$LUCY_UID(lucy) gid=$LUCY_GID(lucy) groups=$LUCY_GID(lucy),$MAILUSERS_GID(mailusers)"
	run grep -c '^lucy:' "$D/etc/passwd" "$D/etc/shadow" "$D/etc/group"
	refute_output --regexp ':[1-9]'
	run getent passwd lucy
	assert_failure
}

@test "lucy logs in with her directory password; the session runs with her directory uid, gid and groups, in her directory home" {
	run client lucy "$LUCY_PW" hold
	assert_success
	assert_output - <<-EOF
		login: +OK maildrop has 1 messages (43 octets)
		Uid: $LUCY_UID $LUCY_UID $LUCY_UID $LUCY_UID
		Gid: $LUCY_GID $LUCY_GID $LUCY_GID $LUCY_GID
		Groups: $LUCY_GID $MAILUSERS_GID
		cwd: /home/lucy/Maildir
		retr| Subject: from the directory
		retr| 
		retr| hello lucy
		quit: +OK maildir-pop3d signing off (0 messages deleted)
	EOF
	run sed -n 's/^facility=mail maildir-pop3d\[[0-9]*\]: info: //p' "$LOG"
	assert_line 'login: user=<lucy> rhost=<127.0.0.1> method=USER tls=no'
	assert_line --regexp '^logout: user=<lucy> rhost=<127\.0\.0\.1> retr=1/43 .* end=quit$'
	run lucy_binds 1
	[[ $output == 0 ]] || fail "slapd log: $(grep -E 'BIND|RESULT|ACCEPT' "$D/slapd.log")"
	# over StartTLS (slapd refuses a simple bind below ssf 128)
	run grep -E ' BIND dn="uid=lucy,ou=people,dc=example,dc=org" mech=SIMPLE .* ssf=(128|256)$' "$D/slapd.log"
	assert_success
	# the seen flag was set by lucy's own process
	run stat -c '%u:%g %n' "$D/ldaphome/lucy/Maildir/cur/1000000001.M1P1.ldap:2,S"
	assert_output "$LUCY_UID:$LUCY_GID $D/ldaphome/lucy/Maildir/cur/1000000001.M1P1.ldap:2,S"
}

@test "a wrong directory password is refused like any other, and logged" {
	run client lucy wrong-password
	assert_success
	assert_output 'login: -ERR [AUTH] Authentication failed.'
	run grep -c -E ': info: auth failed: user=<lucy> rhost=<127\.0\.0\.1> reason=<' "$LOG"
	assert_output 1
	run lucy_binds 1
	[[ $output == 49 ]] || fail "slapd log: $(grep -E 'BIND|RESULT|ACCEPT' "$D/slapd.log")"
}

# ---- under a real systemd (tests/lib/container.bash) -------------------------------------

@test "under a real systemd: the installed units as shipped serve a directory user through nslcd" {
	ct_available || skip "needs systemd-nspawn (systemd-container), mmdebstrap and nsenter"
	[[ -n ${MP_SYSTEMD_SKIP:-} ]] && skip "$MP_SYSTEMD_SKIP"
	: "${MP_BUILDDIR:?MP_BUILDDIR must name the build directory (make check sets it)}"
	local R=$MP_LDAP_ROOT root lib leader prefix
	# make distcheck configures a prefix of its own (.../_inst): units installed there are
	# not where systemd looks.
	prefix=$(sed -n 's/^prefix = //p' "$MP_BUILDDIR/Makefile")
	[[ $prefix == /usr || $prefix == /usr/local ]] ||
		skip "this build's prefix is $prefix (make distcheck's): systemd would not find its units"
	export CT_DIR=$BATS_TEST_TMPDIR/ct
	mkdir -p "$CT_DIR"
	root=$(ct_create ldap) || fail "cannot make the container root"
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$MP_BUILDDIR" install DESTDIR="$root" >"$D/install.log" 2>&1 ||
		fail "make install failed: $(tail "$D/install.log")"
	chroot "$root" getent passwd maildir-pop3d >/dev/null ||
		chroot "$root" adduser --quiet --system --group --no-create-home --home /nonexistent maildir-pop3d
	# nslcd, libnss-ldapd and libpam-ldapd as the packages put them (the container has no
	# network for apt; the libraries nslcd links come from this host, the same Debian release),
	# with the fixtures; the directory answers on the container's loopback.
	cp "$R/usr/sbin/nslcd" "$root/usr/sbin/"
	cp "$R$MULTIARCH/libnss_ldap.so.2" "$root$MULTIARCH/"
	cp "$R$MULTIARCH/security/pam_ldap.so" "$root$MULTIARCH/security/"
	for lib in $(ldd "$R/usr/sbin/nslcd" | awk '$3 ~ /^\// { print $3 }'); do
		[[ -e $root$lib ]] || cp -L "$lib" "$root$lib"
	done
	chroot "$root" adduser --quiet --system --group --no-create-home --home /run/nslcd nslcd
	install -m 0640 -g "$(chroot "$root" getent group nslcd | cut -d: -f3)" "$FIX/nslcd.conf" "$root/etc/nslcd.conf"
	install -m 0644 "$FIX/nsswitch.conf" "$root/etc/nsswitch.conf"
	install -m 0644 "$FIX/common-auth" "$FIX/common-account" "$root/etc/pam.d/"
	install -D -m 0644 "$D/ldapcerts/ca.pem" "$root/etc/ssl/certs/ldap.example.org-ca.pem"
	printf '127.0.0.1\tldap.example.org\n' >>"$root/etc/hosts"
	cat >"$root/etc/systemd/system/nslcd.service" <<-EOF
		[Unit]
		Description=LDAP connection daemon (tests/ldap.bats)
		[Service]
		ExecStartPre=/usr/bin/install -d -o nslcd -g nslcd -m 0755 /run/nslcd
		ExecStart=/usr/sbin/nslcd -n
		[Install]
		WantedBy=multi-user.target
	EOF
	mkdir -p "$root/home/lucy/Maildir/new" "$root/home/lucy/Maildir/cur" "$root/home/lucy/Maildir/tmp"
	printf 'Subject: from the directory\n\nhello lucy\n' >"$root/home/lucy/Maildir/new/1000000001.M1P1.ldap"
	chown -R "$LUCY_UID:$LUCY_GID" "$root/home/lucy"
	chmod -R go= "$root/home/lucy"
	ct_boot ldap || fail "the container did not boot"
	leader=$(ct_leader ldap)
	nsenter -t "$leader" -n "${SLAPD_ENV[@]}" "$R/usr/sbin/slapd" -d 256 -f "$D/slapd/slapd.conf" \
		-h ldap://127.0.0.1/ </dev/null >"$D/slapd.log" 2>&1 3>&- &
	CT_SLAPD=$!
	ct ldap systemctl enable --now nslcd.service maildir-pop3d.socket >/dev/null 2>&1 ||
		fail "cannot start nslcd and the socket: $(ct ldap systemctl status nslcd.service maildir-pop3d.socket 2>&1 | tail -20)"
	ct_wait ldap 10 test -S /run/nslcd/socket
	run ct ldap getent passwd lucy
	assert_output "lucy:*:$LUCY_UID:$LUCY_GID:Lucy Ldap:/home/lucy:/bin/sh"
	# A session held open while the container's /proc shows the serving processes' ids.
	mkdir -p "$D/ct-sync"
	nsenter -t "$leader" -n python3 - "$LUCY_PW" "$D/ct-sync" >"$D/ct-client.out" 2>&1 <<-'EOF' &
		import os, poplib, sys, time
		p = poplib.POP3("127.0.0.1", 110, timeout=30)
		p.user("lucy")
		print("login:", p.pass_(sys.argv[1]).decode(), flush=True)
		open(os.path.join(sys.argv[2], "in"), "w").close()
		while not os.path.exists(os.path.join(sys.argv[2], "out")):
		    time.sleep(0.05)
		for l in p.retr(1)[1]:
		    print("retr| " + l.decode())
		print("quit:", p.quit().decode(), flush=True)
	EOF
	local client=$! i
	for ((i = 0; i < 300; i++)); do
		[[ -e $D/ct-sync/in ]] && break
		kill -0 "$client" 2>/dev/null || break
		sleep 0.05
	done
	[[ -e $D/ct-sync/in ]] || fail "no session: $(cat "$D/ct-client.out")"
	run ct ldap sh -c 'for d in /proc/[0-9]*; do
		[ "$(cat $d/comm 2>/dev/null)" = maildir-pop3d ] || continue
		grep -E "^(Uid|Gid|Groups):" $d/status | tr -s "\t " " " | sed "s/ *\$//"; echo "cwd: $(readlink $d/cwd)"; done'
	touch "$D/ct-sync/out"
	wait "$client"
	assert_line "Uid: $LUCY_UID $LUCY_UID $LUCY_UID $LUCY_UID"
	assert_line "Gid: $LUCY_GID $LUCY_GID $LUCY_GID $LUCY_GID"
	assert_line "Groups: $LUCY_GID $MAILUSERS_GID"
	assert_line "cwd: /home/lucy/Maildir"
	run cat "$D/ct-client.out"
	assert_output - <<-EOF
		login: +OK maildrop has 1 messages (43 octets)
		retr| Subject: from the directory
		retr| 
		retr| hello lucy
		quit: +OK maildir-pop3d signing off (0 messages deleted)
	EOF
	run lucy_binds 1
	assert_output 0
	local j
	for ((j = 0; j < 50; j++)); do
		ct ldap journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=maildir-pop3d | grep -q 'logout: user=<lucy>' && break
		sleep 0.1
	done
	run ct ldap journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=maildir-pop3d
	assert_line 'login: user=<lucy> rhost=<127.0.0.1> method=USER tls=no'
	assert_line --regexp '^logout: user=<lucy> rhost=<127\.0\.0\.1> retr=1/43 .* end=quit$'
}
