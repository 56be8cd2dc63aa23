#!/usr/bin/env bats
# The shipped units and the Debian package under a real systemd PID 1 (root only): a Debian 12
# container (tests/lib/container.bash) boots with systemd; first with the units and binary from
# `make install`, then with the .deb installed by apt into fresh containers.  Real pam_unix
# users, real curl on ports 110 and 995, the journal as the log, the units' sandbox as shipped.
#
# Needs: root, systemd-nspawn (systemd-container), mmdebstrap, curl, openssl, python3;
# Debian's apt reachable once per build directory (the root is cached there); the package
# tests also dpkg-buildpackage (debhelper), or MP_DEB_DIR naming a directory with the built
# .deb (scripts/check passes the one it built).  MP_SYSTEMD_SKIP=REASON skips the suite
# visibly (scripts/check: the sanitizer build).

bats_load_library bats-support
bats_load_library bats-assert
load lib/container

ALICE_PASS='alice-Secret-7'
BOB_PASS='bob-Secret-8'

setup_file() {
	export CT_DIR=$BATS_FILE_TMPDIR/ct
	mkdir -p "$CT_DIR"
}

teardown_file() {
	ct_stop_all
}

setup() {
	[[ -z ${MP_SYSTEMD_SKIP:-} ]] || skip "$MP_SYSTEMD_SKIP"
	ct_available || skip "needs root, systemd-nspawn (systemd-container), mmdebstrap and nsenter"
	: "${MP_BUILDDIR:?MP_BUILDDIR must name the build directory (make check sets it)}"
	SRCDIR=${MP_SRCDIR:-$BATS_TEST_DIRNAME/..}
	command -v curl >/dev/null || { echo "curl is not installed" >&2; return 1; }
	command -v openssl >/dev/null || { echo "openssl is not installed" >&2; return 1; }
}

# A make of its own, not a job of the `make check` that may be running this test.
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s "$@"
}

# ---- what the containers hold ------------------------------------------------------

# Three messages, LF line ends as delivered; LIST counts them with CRLF.
MSG1=$'Subject: one\n\nfirst body\n'
MSG2=$'Subject: two\n\nsecond body\nline two\n'
MSG3=$'Subject: three\n\n.dot line\n'
crlf_size() { local s=$1 lf=${1//[^$'\n']/}; echo $((${#s} + ${#lf})); }

# mail_to ROOT USER HOME: a Maildir with the three messages, owned by USER.
mail_to() {
	local root=$1 user=$2 home=$3 md
	md=$root$home/Maildir
	mkdir -p "$md/new" "$md/cur" "$md/tmp"
	printf '%s' "$MSG1" >"$md/new/1700000001.M1P1.ct"
	printf '%s' "$MSG2" >"$md/new/1700000002.M2P1.ct"
	printf '%s' "$MSG3" >"$md/cur/1700000003.M3P1.ct:2,"
	chroot "$root" chown -R "$user:$user" "$home/Maildir"
	chmod -R go-rwx "$md"
}

# users ROOT: alice (home in /home) and bob (home in /srv, outside the sandbox's writable
# paths), with passwords pam_unix checks (yescrypt, Debian's default).
users() {
	local root=$1
	chroot "$root" useradd -m -s /bin/bash alice
	chroot "$root" useradd -m -d /srv/bob -s /bin/bash bob
	printf 'alice:%s\nbob:%s\n' "$ALICE_PASS" "$BOB_PASS" | chroot "$root" chpasswd
	# The pre-auth process's user, as the package makes it (make install does not).
	chroot "$root" getent passwd maildir-pop3d >/dev/null ||
		chroot "$root" adduser --quiet --system --group --no-create-home --home /nonexistent maildir-pop3d
	mail_to "$root" alice /home/alice
	mail_to "$root" bob /srv/bob
}

# cert_to ROOT: a self-signed certificate and its key where the 995 unit reads them.
cert_to() {
	local root=$1
	mkdir -p "$root/etc/maildir-pop3d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ct.test \
		-keyout "$root/etc/maildir-pop3d/key.pem" -out "$root/etc/maildir-pop3d/cert.pem" 2>/dev/null
	chmod 600 "$root/etc/maildir-pop3d/key.pem"
}

expected_list() {
	printf '1 %s\r\n2 %s\r\n3 %s\r\n' "$(crlf_size "$MSG1")" "$(crlf_size "$MSG2")" "$(crlf_size "$MSG3")"
}

# pop NAME URL [CURL-OPTION...]: curl from inside the container's network namespace.
pop() {
	local name=$1 url=$2
	shift 2
	ct_net "$name" curl -sS --max-time 20 "$@" "$url"
}

# pop_text NAME URL [CURL-OPTION...]: the same, CRLF line ends as LF (a message from RETR).
pop_text() {
	local out rc=0
	out=$(pop "$@") || rc=$?
	printf '%s\n' "$out" | tr -d '\r'
	return $rc
}

# journal NAME: the daemon's log lines, as the journal got them from the sessions' units.
journal() {
	ct "$1" journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=maildir-pop3d
}

# journal_has NAME REGEX: waits (journald is asynchronous) until a log line matches.
journal_has() {
	local i
	for i in $(seq 100); do
		journal "$1" | grep -qE -- "$2" && return 0
		sleep 0.1
	done
	journal "$1" | tail -20
	fail "no log line matching: $2"
}

# ---- the units from make install --------------------------------------------------------

# The "src" container: make install into a fresh root, users, a certificate, both sockets
# enabled and started with systemctl.  Booted once for the tests below that need it.
src_up() {
	[[ -f $CT_DIR/src.pid ]] && return 0
	# make distcheck configures a prefix of its own (.../_inst): units installed there are
	# not where systemd looks.
	local prefix
	prefix=$(sed -n 's/^prefix = //p' "$MP_BUILDDIR/Makefile")
	[[ $prefix == /usr || $prefix == /usr/local ]] ||
		skip "this build's prefix is $prefix (make distcheck's): systemd would not find its units"
	local root
	root=$(ct_create src) || { echo "cannot make the container root" >&2; return 1; }
	mk -C "$MP_BUILDDIR" install DESTDIR="$root" >/dev/null || { echo "make install failed" >&2; return 1; }
	users "$root"
	cert_to "$root"
	ct_boot src || { echo "the container did not boot" >&2; return 1; }
	ct src systemctl enable --now maildir-pop3d.socket maildir-pop3ds.socket >/dev/null 2>&1 ||
		fail "cannot enable the sockets"
}

@test "make install: systemd PID 1 listens on 110 and 995 through the shipped socket units" {
	src_up
	run ct src systemctl is-active maildir-pop3d.socket maildir-pop3ds.socket
	assert_output $'active\nactive'
	run ct_net src ss -Hltn
	assert_output --regexp '[:*]110 '
	assert_output --regexp '[:*]995 '
}

@test "make install: a real pam_unix user logs in on 110 and lists the Maildir with exact sizes" {
	src_up
	run pop src "pop3://alice:$ALICE_PASS@127.0.0.1/"
	assert_success
	assert_output "$(expected_list)"
	journal_has src "^login: user=<alice> rhost=<127\.0\.0\.1> method=[A-Z]+ tls=no$"
	journal_has src "^logout: user=<alice> rhost=<127\.0\.0\.1> .* end=quit$"
}

@test "make install: a real pam_unix user retrieves a message over implicit TLS on 995" {
	src_up
	run pop_text src "pop3s://alice:$ALICE_PASS@127.0.0.1/2" --insecure
	assert_success
	assert_output "${MSG2%$'\n'}"
	journal_has src "^login: user=<alice> rhost=<127\.0\.0\.1> method=[A-Z]+ tls=yes$"
}

@test "make install: the client's address from PID 1's accepted socket reaches the log and a wrong password is logged" {
	src_up
	ct_net src ip addr add 192.0.2.10/32 dev lo 2>/dev/null || true
	run pop src "pop3s://alice:wrong@192.0.2.10/" --insecure --interface 192.0.2.10
	assert_failure
	journal_has src "^auth failed: user=<alice> rhost=<192\.0\.2\.10> reason=<[^>]+>$"
	run pop src "pop3s://alice:$ALICE_PASS@192.0.2.10/" --insecure --interface 192.0.2.10
	assert_success
	journal_has src "^login: user=<alice> rhost=<192\.0\.2\.10> method=[A-Z]+ tls=yes$"
	# PID 1 hands the session the client's address in REMOTE_ADDR too (Accept=yes): seen
	# in the environment of a session held open from 192.0.2.10.
	ct_net src python3 -c '
import socket, sys, time
s = socket.create_connection(("192.0.2.10", 110), timeout=20, source_address=("192.0.2.10", 0))
sys.stdout.write(s.recv(100).decode()); sys.stdout.flush()
time.sleep(60)' >"$BATS_TEST_TMPDIR/held.out" 2>&1 3>&- &
	local held=$! pid
	for _ in $(seq 100); do
		[[ -s $BATS_TEST_TMPDIR/held.out ]] && break
		sleep 0.1
	done
	pid=$(ct src sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = maildir-pop3d ] && echo ${p#/proc/}; done' | head -1)
	[[ -n $pid ]] || fail "no session process"
	run ct src sh -c "tr '\\0' '\\n' </proc/$pid/environ | grep ^REMOTE_ADDR="
	assert_output 'REMOTE_ADDR=192.0.2.10'
	kill "$held" 2>/dev/null || true
	wait "$held" 2>/dev/null || true
	# Not on 110 without TLS from a remote address: plaintext is refused there.
	run pop src "pop3://alice:$ALICE_PASS@192.0.2.10/" --interface 192.0.2.10
	assert_failure
	# The log lines come from the per-connection service units, through the journal.
	run ct src journalctl -q --no-pager -o cat -u 'maildir-pop3ds@*.service' SYSLOG_IDENTIFIER=maildir-pop3d
	assert_output --partial 'rhost=<192.0.2.10>'
}

@test "make install: the sandbox leaves pam_faillock its run directory: failures are counted there and a good login still works" {
	src_up
	# pam_faillock in front of Debian's pam_unix, as its manual page shows.
	cat >"$CT_DIR/src/etc/pam.d/maildir-pop3d" <<-'EOF'
		auth     required                     pam_faillock.so preauth
		auth     [success=1 default=ignore]   pam_unix.so
		auth     [default=die]                pam_faillock.so authfail
		auth     sufficient                   pam_faillock.so authsucc
		auth     requisite                    pam_deny.so
		account  required                     pam_faillock.so
		@include common-account
	EOF
	ct src rm -rf /run/faillock
	run pop src "pop3://bob:wrong@127.0.0.1/"
	assert_failure
	run ct src faillock --user bob
	assert_success
	assert_output --regexp 'RHOST|V'	# a tally file with a record
	assert_output --partial '127.0.0.1'
	run ct src stat -c '%U %a' /run/faillock
	assert_output 'root 755'
	run pop src "pop3://alice:$ALICE_PASS@127.0.0.1/"
	assert_success
	assert_output "$(expected_list)"
	cp "$SRCDIR/pam.d/maildir-pop3d" "$CT_DIR/src/etc/pam.d/maildir-pop3d"
}

@test "make install: the sandbox lets the session write its size cache in the Maildir, and the next session reads it" {
	src_up
	ct src rm -f /home/alice/Maildir/maildir-pop3d.cache
	run pop src "pop3://alice:$ALICE_PASS@127.0.0.1/"
	assert_success
	run ct src stat -c '%U %a' /home/alice/Maildir/maildir-pop3d.cache
	assert_success
	assert_output 'alice 600'
	run pop src "pop3://alice:$ALICE_PASS@127.0.0.1/"
	assert_success
	assert_output "$(expected_list)"
	journal_has src '^maildir: messages=3 octets=[0-9]+ from-cache=3 '
}

@test "make install: MaxConnectionsPerSource lets 32 sessions from one address in and closes the 33rd at once" {
	src_up
	run ct_net src python3 - <<-'EOF'
		import socket
		held = []
		for i in range(32):
		    s = socket.create_connection(("127.0.0.1", 110), timeout=20)
		    f = s.makefile("rb")
		    assert f.readline() == b"+OK maildir-pop3d ready.\r\n", i
		    held.append((s, f))
		s = socket.create_connection(("127.0.0.1", 110), timeout=20)
		try:
		    data = s.recv(100)
		except ConnectionResetError:
		    data = b""
		print("33rd:", data)
		for s, f in held:
		    s.sendall(b"QUIT\r\n")
		    assert f.readline().startswith(b"+OK"), "quit"
		print("held: 32")
	EOF
	assert_success
	assert_output $'33rd: b\'\'\nheld: 32'
	# The listener is still up.
	run ct src systemctl is-active maildir-pop3d.socket
	assert_output active
}

@test "make install: a Maildir outside /home is read-only in the sandbox; QUIT says the deletion failed and the log says why" {
	src_up
	run ct_net src python3 - "$BOB_PASS" <<-'EOF'
		import poplib, sys
		p = poplib.POP3("127.0.0.1", 110, timeout=20)
		p.user("bob")
		p.pass_(sys.argv[1])
		print(p.dele(1).decode())
		try:
		    print(p.quit().decode())
		except poplib.error_proto as e:
		    print(e.args[0].decode())
	EOF
	assert_success
	assert_output $'+OK message 1 deleted\n-ERR [SYS/TEMP] Some deleted messages not removed.'
	journal_has src '^cannot remove new/1700000001\.M1P1\.ct: Read-only file system$'
	run ls "$CT_DIR/src/srv/bob/Maildir/new"
	assert_line '1700000001.M1P1.ct'
	journal_has src "^logout: user=<bob> .*dele=1/[0-9]+ .*end=quit$"
}

# ---- the Debian package -----------------------------------------------------------------

# deb_ensure: DEB (this build) and DEB_PREV (the same, repacked as an older version).
deb_ensure() {
	local dir=${MP_DEB_DIR:-$BATS_FILE_TMPDIR/deb} prev
	if ! compgen -G "$dir/maildir-pop3d_*.deb" >/dev/null; then
		command -v dpkg-buildpackage >/dev/null || skip "dpkg-buildpackage not installed (debhelper)"
		[[ -d $SRCDIR/debian ]] ||
			skip "no debian/ in $SRCDIR (a release tarball, as in make distcheck): set MP_DEB_DIR to a built .deb"
		"$SRCDIR/scripts/build-deb" "$dir" >/dev/null || { echo "the package did not build" >&2; return 1; }
	fi
	DEB=$(ls -t "$dir"/maildir-pop3d_*.deb | head -1)
	prev=$BATS_FILE_TMPDIR/prev
	DEB_PREV=$prev/maildir-pop3d_prev.deb
	if [[ ! -f $DEB_PREV ]]; then
		rm -rf "$prev" && mkdir -p "$prev"
		dpkg-deb -R "$DEB" "$prev/tree"
		sed -i 's/^Version: \(.*\)$/Version: \1~prev1/' "$prev/tree/DEBIAN/control"
		dpkg-deb -b --root-owner-group "$prev/tree" "$DEB_PREV" >/dev/null
	fi
}

# deb_up NAME: a fresh container with users and the packages copied in, booted.
deb_up() {
	local name=$1 root
	ct_stop_all
	root=$(ct_create "$name") || { echo "cannot make the container root" >&2; return 1; }
	users "$root"
	mkdir -p "$root/root/debs"
	cp "$DEB" "$DEB_PREV" "$root/root/debs/"
	ct_boot "$name" || { echo "the container did not boot" >&2; return 1; }
}

# apt_install NAME DEB: apt installs a local .deb (every dependency is in the root already).
apt_install() {
	ct "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		"/root/debs/$(basename "$2")"
}

# What the package left, as a list to compare before and after.
leftovers() {
	local name=$1
	ct "$name" sh -c '
		ls /etc/systemd/system/*.wants 2>/dev/null | grep -i pop3
		ls /var/lib/systemd/deb-systemd-helper-enabled/ 2>/dev/null | grep -i pop3
		find /var/lib/systemd/deb-systemd-helper-enabled -name "*pop3*" 2>/dev/null
		getent passwd maildir-pop3d; getent group maildir-pop3d
		ls -d /etc/maildir-pop3d /etc/pam.d/maildir-pop3d /usr/sbin/maildir-pop3d /lib/systemd/system/maildir-pop3d* 2>/dev/null
		dpkg -l maildir-pop3d 2>/dev/null | grep "^[a-z][a-z] "
		true'
}

@test "the package, installed with apt in a fresh container: the 110 socket is enabled and serves a real user; 995 waits for a certificate" {
	deb_ensure
	deb_up deb
	run apt_install deb "$DEB"
	assert_success
	run ct deb systemctl is-enabled maildir-pop3d.socket maildir-pop3ds.path maildir-pop3ds.socket
	assert_output $'enabled\nenabled\ndisabled'
	run ct deb systemctl is-active maildir-pop3d.socket maildir-pop3ds.path maildir-pop3ds.socket
	assert_output $'active\nactive\ninactive'
	# The unprivileged user, the Debian way: a system user with no shell and no home.
	run ct deb getent passwd maildir-pop3d
	assert_output --regexp '^maildir-pop3d:x:[0-9]{3}:[0-9]{3}:[^:]*:/nonexistent:/usr/sbin/nologin$'
	# Under systemd the sockets serve: no inetd line as well (openbsd-inetd is installed).
	run grep -c maildir-pop3d "$CT_DIR/deb/etc/inetd.conf"
	assert_output 0
	run ct deb dpkg-query -W -f '${Conffiles}' maildir-pop3d
	assert_output --partial '/etc/pam.d/maildir-pop3d '
	run pop deb "pop3://alice:$ALICE_PASS@127.0.0.1/"
	assert_success
	assert_output "$(expected_list)"
	journal_has deb "^login: user=<alice> rhost=<127\.0\.0\.1> method=[A-Z]+ tls=no$"
	# The operator's check agrees, through the real pam_unix, as root in the container.
	run ct deb sh -c 'printf "%s\n" "$1" | maildir-pop3d --check alice' sh "$ALICE_PASS"
	assert_success
	assert_line '  ok    PAM service file /etc/pam.d/maildir-pop3d'
	assert_line --regexp '^  ok    pre-auth user maildir-pop3d \(uid [0-9]+, gid [0-9]+\)$'
	assert_line --regexp '^  ok    Maildir /home/alice/Maildir: 3 messages, [0-9]+ octets, '
	assert_line 'result: a session for this user would work'
	run ct deb sh -c 'printf "wrong\n" | maildir-pop3d --check alice'
	assert_failure 1
	assert_line '  FAIL  PAM: auth failed: user=<alice> reason=<Authentication failure>'

	# 995: nothing more than the key and the certificate.
	run ct_net deb ss -Hltn
	refute_output --regexp '[:*]995 '
	cert_to "$CT_DIR/deb"
	ct_wait deb 10 systemctl is-active -q maildir-pop3ds.socket || { echo "the 995 socket did not start" >&2; return 1; }
	run ct deb maildir-pop3d --check --tls=implicit --tls-cert=/etc/maildir-pop3d/cert.pem \
		--tls-key=/etc/maildir-pop3d/key.pem
	assert_success
	assert_line --regexp '^  warn  certificate subject CN=ct\.test: expires on .* UTC, in [12] days$'
	refute_output --partial FAIL
	run pop_text deb "pop3s://alice:$ALICE_PASS@127.0.0.1/1" --insecure
	assert_success
	assert_output "${MSG1%$'\n'}"
	journal_has deb "^login: user=<alice> rhost=<127\.0\.0\.1> method=[A-Z]+ tls=yes$"
}

@test "the package: apt remove stops the sockets and leaves nothing running; purge leaves nothing of ours behind" {
	deb_ensure
	# Run alone (or after the test above failed half-way): a container in the same state.
	if [[ ! -f $CT_DIR/deb.pid ]] || ! ct deb dpkg-query -W maildir-pop3d >/dev/null 2>&1; then
		deb_up deb
		apt_install deb "$DEB" >/dev/null
	fi
	[[ -f $CT_DIR/deb/etc/maildir-pop3d/cert.pem ]] || cert_to "$CT_DIR/deb"
	ct_wait deb 10 systemctl is-active -q maildir-pop3ds.socket
	# A session still open at removal: removal ends it too.
	ct_net deb python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", 110), timeout=20)
sys.stdout.write(s.recv(100).decode()); sys.stdout.flush()
time.sleep(60)' >"$BATS_TEST_TMPDIR/held.out" 2>&1 3>&- &
	local held=$!
	for _ in $(seq 100); do
		[[ -s $BATS_TEST_TMPDIR/held.out ]] && break
		sleep 0.1
	done
	run cat "$BATS_TEST_TMPDIR/held.out"
	assert_output $'+OK maildir-pop3d ready.\r'
	# A session before login is two processes: the launcher's (root) and its pre-auth child.
	run ct deb sh -c 'cat /proc/[0-9]*/comm 2>/dev/null | grep -c "^maildir-pop3d"'
	assert_output 2
	run ct deb env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q maildir-pop3d
	assert_success
	run ct deb systemctl is-active maildir-pop3d.socket maildir-pop3ds.path maildir-pop3ds.socket
	assert_output $'inactive\ninactive\ninactive'
	run ct_net deb ss -Hltn
	refute_output --regexp '[:*](110|995) '
	run ct deb sh -c 'systemctl list-units --no-legend --all "maildir-pop3d*" | grep -v "not-found.*inactive.*dead"'
	assert_output ''
	run ct deb sh -c 'cat /proc/[0-9]*/comm 2>/dev/null | grep -c "^maildir-pop3d"'
	assert_output 0
	kill "$held" 2>/dev/null || true
	wait "$held" 2>/dev/null || true
	# The certificate and key are the admin's, not the package's: purge would keep them
	# (and their directory); the admin takes them away first.
	rm -f "$CT_DIR/deb/etc/maildir-pop3d/"*.pem
	run ct deb env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q maildir-pop3d
	assert_success
	run leftovers deb
	assert_output ''
	ct_stop deb
}

@test "the package: an upgrade from the previous build keeps the sockets enabled and listening" {
	deb_ensure
	deb_up upg
	run apt_install upg "$DEB_PREV"
	assert_success
	run ct upg dpkg-query -W -f '${Version}' maildir-pop3d
	assert_output --regexp '~prev1$'
	run ct upg systemctl is-enabled maildir-pop3d.socket maildir-pop3ds.path
	assert_output $'enabled\nenabled'
	run apt_install upg "$DEB"
	assert_success
	run ct upg dpkg-query -W -f '${Version}' maildir-pop3d
	refute_output --regexp '~prev1$'
	run ct upg systemctl is-enabled maildir-pop3d.socket maildir-pop3ds.path
	assert_output $'enabled\nenabled'
	run ct upg systemctl is-active maildir-pop3d.socket maildir-pop3ds.path
	assert_output $'active\nactive'
	run pop upg "pop3://alice:$ALICE_PASS@127.0.0.1/"
	assert_success
	assert_output "$(expected_list)"
	ct_stop upg
}

@test "the package without systemd: dpkg registers an enabled pop3 line with update-inetd; remove disables it, purge removes it" {
	deb_ensure
	local root line
	root=$(ct_create inetd)
	mkdir -p "$root/root/debs"
	cp "$DEB" "$root/root/debs/"
	# A chroot: no systemd runs there (/run/systemd/system is absent), openbsd-inetd is installed.
	[[ ! -d $root/run/systemd/system ]]
	line=$'pop3\tstream\ttcp\tnowait\troot\t/usr/sbin/maildir-pop3d\tmaildir-pop3d'
	run chroot "$root" dpkg -i "/root/debs/$(basename "$DEB")"
	assert_success
	run grep -F -x -- "$line" "$root/etc/inetd.conf"
	assert_success
	run chroot "$root" dpkg -r maildir-pop3d
	assert_success
	run grep -F -x -- "#<off># $line" "$root/etc/inetd.conf"
	assert_success
	run chroot "$root" dpkg -P maildir-pop3d
	assert_success
	run grep -c maildir-pop3d "$root/etc/inetd.conf"
	assert_output 0
	run chroot "$root" getent passwd maildir-pop3d
	assert_failure
	rm -rf "$root"
}
