#!/usr/bin/env bats
# `make install DESTDIR=...` (DESIGN.md section 6): exactly the binary in $(sbindir), the TLS
# module in $(pkglibdir) (built with OpenSSL), the man page, the PAM file in
# $(pamdir) (/etc/pam.d unless --with-pamdir says otherwise) and the four units, with @sbindir@ replaced by the real path; the
# installed binary loads the installed module; `make uninstall` takes them all away again;
# --with-systemdsystemunitdir=no installs no unit.  Runs in the build directory that
# `make check` tests (MP_BUILDDIR).

bats_load_library bats-support
bats_load_library bats-assert

UNITS=(maildir-pop3d.socket maildir-pop3d@.service maildir-pop3ds.socket maildir-pop3ds@.service)

setup() {
	: "${MP_BUILDDIR:?MP_BUILDDIR must name the build directory (make check sets it)}"
	SRCDIR=${MP_SRCDIR:-$BATS_TEST_DIRNAME/..}
	DEST=$BATS_TEST_TMPDIR/dest
}

# A make of its own, not a job of the `make check` that may be running this test.
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s "$@"
}

# var DIR NAME: the value of make variable NAME in the build directory DIR, expanded.
var() {
	mk -C "$1" --no-print-directory --eval='mp-print-%: ; @echo $($*)' "mp-print-$2"
}

# The files (and symlinks) under $DEST, relative to it, sorted.
installed() {
	(cd "$DEST" && find . ! -type d | sed 's|^\.||' | sort)
}

# 0 if the build has TLS (the OpenSSL module).
with_tls() {
	[[ -n $(var "$MP_BUILDDIR" pkglib_LTLIBRARIES) ]]
}

@test "make install puts exactly the binary, the TLS module, the man page, the PAM file and the four units under DESTDIR" {
	local sbindir mandir pamdir unitdir pkglibdir u want
	sbindir=$(var "$MP_BUILDDIR" sbindir)
	mandir=$(var "$MP_BUILDDIR" mandir)
	pamdir=$(var "$MP_BUILDDIR" pamdir)
	unitdir=$(var "$MP_BUILDDIR" systemdsystemunitdir)
	pkglibdir=$(var "$MP_BUILDDIR" pkglibdir)
	[[ $sbindir == /* && $mandir == /* && $pamdir == /* && $pkglibdir == /* ]] ||
		fail "odd directories: $sbindir $mandir $pamdir $pkglibdir"
	mk -C "$MP_BUILDDIR" install DESTDIR="$DEST"

	want=("$sbindir/maildir-pop3d" "$mandir/man8/maildir-pop3d.8" "$pamdir/maildir-pop3d")
	# Only the module itself: it is loaded by its path, libtool's .la file is not installed.
	if with_tls; then
		want+=("$pkglibdir/tls.so")
	fi
	if [[ -n $unitdir ]]; then
		for u in "${UNITS[@]}"; do
			want+=("$unitdir/$u")
		done
	fi
	run installed
	assert_output "$(printf '%s\n' "${want[@]}" | sort)"

	[[ -x $DEST$sbindir/maildir-pop3d ]]
	run "$DEST$sbindir/maildir-pop3d" --version
	assert_success
	assert_line --index 0 --regexp '^maildir-pop3d [0-9]'
	cmp "$SRCDIR/doc/maildir-pop3d.8" "$DEST$mandir/man8/maildir-pop3d.8"
	cmp "$SRCDIR/pam.d/maildir-pop3d" "$DEST$pamdir/maildir-pop3d"
	run stat -c %a "$DEST$pamdir/maildir-pop3d" "$DEST$mandir/man8/maildir-pop3d.8"
	assert_output $'644\n644'
	if with_tls; then
		# The binary looks for the module where it is installed (without DESTDIR); make
		# check points the variable at the build tree's.
		run env -u MAILDIR_POP3D_TLS_MODULE "$DEST$sbindir/maildir-pop3d" --version
		assert_line --index 1 --partial "TLS: OpenSSL, module $pkglibdir/tls.so"
		run nm -D --defined-only "$DEST$pkglibdir/tls.so"
		assert_success
		assert_output --regexp '^[0-9a-f]+ [DR] mp_tls_module$'	# its one symbol
	fi
}

@test "the installed binary loads the installed TLS module: STLS is offered, and OpenSSL is linked into the module only" {
	local sbindir pkglibdir
	with_tls || skip "built without OpenSSL: no TLS module"
	command -v openssl >/dev/null || fail "openssl is not installed (Debian: openssl)"
	sbindir=$(var "$MP_BUILDDIR" sbindir)
	pkglibdir=$(var "$MP_BUILDDIR" pkglibdir)
	mk -C "$MP_BUILDDIR" install DESTDIR="$DEST"
	# As root the binary needs its pre-auth user and chroot: the installed (empty, root-owned)
	# directory under DESTDIR, and an unprivileged account this host has.
	export MAILDIR_POP3D_PREAUTH_USER=nobody
	MAILDIR_POP3D_PREAUTH_CHROOT=$DEST$(var "$MP_BUILDDIR" preauthchrootdir)
	export MAILDIR_POP3D_PREAUTH_CHROOT
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
		-keyout "$BATS_TEST_TMPDIR/key.pem" -out "$BATS_TEST_TMPDIR/cert.pem" 2>/dev/null
	# Installed under DESTDIR, the module is not where the binary looks: the variable says.
	run env MAILDIR_POP3D_TLS_MODULE="$DEST$pkglibdir/tls.so" "$DEST$sbindir/maildir-pop3d" \
		--tls-cert="$BATS_TEST_TMPDIR/cert.pem" --tls-key="$BATS_TEST_TMPDIR/key.pem" \
		< <(printf 'CAPA\r\nQUIT\r\n')
	assert_success
	assert_line $'STLS\r'
	run env MAILDIR_POP3D_TLS_MODULE=/nonexistent/tls.so "$DEST$sbindir/maildir-pop3d" \
		--tls-cert="$BATS_TEST_TMPDIR/cert.pem" --tls-key="$BATS_TEST_TMPDIR/key.pem" </dev/null
	assert_equal "$status" 78
	run readelf -d "$DEST$sbindir/maildir-pop3d"
	refute_output --partial libssl
	refute_output --partial libcrypto
	run readelf -d "$DEST$pkglibdir/tls.so"
	assert_output --partial 'Shared library: [libssl.so'
}

@test "the installed service units start the installed binary: @sbindir@ is substituted" {
	local sbindir unitdir u
	sbindir=$(var "$MP_BUILDDIR" sbindir)
	unitdir=$(var "$MP_BUILDDIR" systemdsystemunitdir)
	[[ -n $unitdir ]] || skip "this build installs no units (--with-systemdsystemunitdir=no)"
	mk -C "$MP_BUILDDIR" install DESTDIR="$DEST"
	for u in "${UNITS[@]}"; do
		run grep -c '@[a-z_]*@' "$DEST$unitdir/$u"
		assert_output 0	# nothing left unsubstituted
	done
	for u in maildir-pop3d@.service maildir-pop3ds@.service; do
		run grep '^ExecStart=' "$DEST$unitdir/$u"
		assert_success
		assert_equal "${#lines[@]}" 1
		[[ ${lines[0]} == "ExecStart=$sbindir/maildir-pop3d" || ${lines[0]} == "ExecStart=$sbindir/maildir-pop3d "* ]] ||
			fail "$u: ${lines[0]}"
	done
	# The sockets are copied as they are.
	cmp "$SRCDIR/systemd/maildir-pop3d.socket" "$DEST$unitdir/maildir-pop3d.socket"
	cmp "$SRCDIR/systemd/maildir-pop3ds.socket" "$DEST$unitdir/maildir-pop3ds.socket"
}

@test "make uninstall removes every installed file" {
	mk -C "$MP_BUILDDIR" install DESTDIR="$DEST"
	mk -C "$MP_BUILDDIR" uninstall DESTDIR="$DEST"
	run installed
	assert_output ''
}

@test "a plain configure puts the PAM file in /etc/pam.d and the units where systemd looks, starting the binary it installs" {
	[[ ! -e $SRCDIR/config.status ]] ||
		skip "the source tree is configured in place; a second build from it is refused"
	local b=$BATS_TEST_TMPDIR/build-defaults unitdir
	mkdir -p "$b"
	(cd "$b" && "$SRCDIR/configure" --without-systemd --without-openssl) \
		>"$BATS_TEST_TMPDIR/configure.log" 2>&1 || fail "configure failed: $(tail -20 "$BATS_TEST_TMPDIR/configure.log")"
	assert_equal "$(var "$b" pamdir)" /etc/pam.d
	unitdir=$(var "$b" systemdsystemunitdir)
	assert_equal "$unitdir" /usr/local/lib/systemd/system
	run grep -F 'the installed units start /usr/local/sbin/maildir-pop3d' "$BATS_TEST_TMPDIR/configure.log"
	assert_success
	# A directory PAM never reads is said loudly.
	(cd "$b" && "$SRCDIR/configure" --without-systemd --without-openssl --with-pamdir=/usr/local/etc/pam.d) \
		>"$BATS_TEST_TMPDIR/configure2.log" 2>&1 || fail "configure failed"
	run grep -F 'WARNING: the PAM file goes to /usr/local/etc/pam.d, where PAM does not look' "$BATS_TEST_TMPDIR/configure2.log"
	assert_success
}

@test "configure --with-systemdsystemunitdir=no installs no unit" {
	[[ ! -e $SRCDIR/config.status ]] ||
		skip "the source tree is configured in place; a second build from it is refused"
	local b=$BATS_TEST_TMPDIR/build-nounits unitdir
	mkdir -p "$b"
	(cd "$b" && "$SRCDIR/configure" -q --with-systemdsystemunitdir=no --without-systemd --without-openssl) \
		>"$BATS_TEST_TMPDIR/configure.log" 2>&1 || fail "configure failed: $(tail -20 "$BATS_TEST_TMPDIR/configure.log")"
	unitdir=$(var "$b" systemdsystemunitdir)
	assert_equal "$unitdir" ''
	# The data files are enough to see it; the binary need not be built for that.
	mk -C "$b" install-data DESTDIR="$DEST"
	run installed
	assert_output "$(printf '%s\n' "$(var "$b" mandir)/man8/maildir-pop3d.8" "$(var "$b" pamdir)/maildir-pop3d" | sort)"
	run find "$DEST" -name '*.socket' -o -name '*.service'
	assert_output ''
}
