#!/usr/bin/env bats
# maildir-pop3d --check [USER]: the effective configuration, each check's verdict, and with USER
# the real login path step by step (PAM through pam_wrapper + pam_matrix, the account through
# nss_wrapper, the privilege drop through uid_wrapper, the Maildir in the test's temp dir).
# One test per failure it diagnoses; exit 0 only when everything (and the session) would work;
# what it says about a failed login is what the log says, no more.

bats_load_library bats-support
bats_load_library bats-assert
load lib/cwrap
bats_require_minimum_version 1.5.0

setup() {
	: "${MAILDIR_POP3D:?MAILDIR_POP3D must name the binary under test (make check sets it)}"
	cwrap_setup "$BATS_TEST_TMPDIR/cw"
	export -n LD_PRELOAD
	cwrap_add_user alice 'open sesame' 1001
	cwrap_add_user carol 'carol pw' 1003 other-service
	printf 'toor:x:0:0:root alias:/root:/bin/sh\n' >>"$CWRAP_DIR/passwd"
	printf 'toor:toor pw:maildir-pop3d\n' >>"$CWRAP_DIR/passdb"
	# The pre-auth process's system user (cwrap_setup adds it, uid $CWRAP_PREAUTH_UID), and
	# an empty root-owned chroot of the test's own.
	export MAILDIR_POP3D_PREAUTH_CHROOT=$BATS_TEST_TMPDIR/empty
	mkdir -p "$MAILDIR_POP3D_PREAUTH_CHROOT"
	chmod 555 "$MAILDIR_POP3D_PREAUTH_CHROOT"
	A=$CWRAP_DIR/home/alice/Maildir
	mkdir -p "$A"/{new,cur,tmp}
	printf 'Subject: one\n\nfirst\n' >"$A/new/1000000001.M1P1.test"
	printf 'Subject: two\n\nsecond\n' >"$A/cur/1000000002.M2P2.test,W=23:2,S"
	TLSDIR=$BATS_TEST_TMPDIR/tls
	mkdir -p "$TLSDIR"
}

teardown() {
	cwrap_teardown
}

need_root_owned() {
	[[ $(id -u) -eq 0 ]] || skip "the chroot check wants a root-owned directory: run as root (CI does)"
}

wrapped() {
	LD_PRELOAD=$LD_PRELOAD "$@"
}

# check [OPTION...]: --check with the password (if any) in $PW on stdin, a pipe.
check() {
	printf '%s\n' "${PW-}" | wrapped "$MAILDIR_POP3D" --check "$@"
}

# cert NAME DAYS: a self-signed certificate and key in $TLSDIR (DAYS may be negative: expired).
cert() {
	local name=$1 days=$2
	if [[ $days -gt 0 ]]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
			-subj "/CN=$name" -keyout "$TLSDIR/$name.key" -out "$TLSDIR/$name.pem" 2>/dev/null
	else
		# An expired one, valid from 3 days ago to yesterday: openssl req cannot date
		# one back before OpenSSL 3.4 (-not_after), python3-cryptography can.
		python3 - "$name" "$TLSDIR" <<-'EOF' || skip "python3-cryptography is not installed"
			import datetime, sys
			from cryptography import x509
			from cryptography.hazmat.primitives import hashes, serialization
			from cryptography.hazmat.primitives.asymmetric import ec
			from cryptography.x509.oid import NameOID
			name, d = sys.argv[1], sys.argv[2]
			key = ec.generate_private_key(ec.SECP256R1())
			subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
			now = datetime.datetime.now(datetime.timezone.utc)
			cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
			        .public_key(key.public_key()).serial_number(x509.random_serial_number())
			        .not_valid_before(now - datetime.timedelta(days=3))
			        .not_valid_after(now - datetime.timedelta(days=1))
			        .sign(key, hashes.SHA256()))
			open(f"{d}/{name}.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
			open(f"{d}/{name}.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
			    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
		EOF
	fi
}

need_tls() {
	"$MAILDIR_POP3D" --version | grep -q '^TLS: OpenSSL' || skip "built without OpenSSL"
}

# ---- a working setup ---------------------------------------------------------------

@test "--check prints the effective configuration and passes when everything is in place" {
	run -0 check --maildir=Maildir --timeout=700 --lock
	assert_line --index 0 --regexp '^maildir-pop3d [0-9.]+: effective configuration$'
	assert_line '  maildir          Maildir'
	assert_line '  pam-service      maildir-pop3d'
	assert_line '  timeout          700'
	assert_line '  lock             yes'
	assert_line '  tls              off'
	assert_line "  ok    PAM service file $CWRAP_DIR/pam.d/maildir-pop3d"
	assert_line "  ok    pre-auth user maildir-pop3d (uid $CWRAP_PREAUTH_UID, gid $CWRAP_PREAUTH_UID)"
	refute_output --partial 'FAIL'
	assert_line --index $((${#lines[@]} - 1)) 'result: configuration ok'
}

@test "--check USER with the right password on a pipe runs PAM, the account, the drop and the Maildir, and exits 0" {
	PW='open sesame'
	run -0 check alice
	assert_line 'login as alice (PAM service maildir-pop3d)'
	assert_line --regexp '^  ok    PAM: pam_authenticate, pam_acct_mgmt, pam_setcred in [0-9.]+ ms$'
	assert_line "  ok    account alice: uid 1001 gid 1001 home $CWRAP_DIR/home/alice groups 1001"
	assert_line '  ok    privilege drop to uid 1001 gid 1001 with 1 groups; root cannot come back'
	assert_line --regexp "^  ok    Maildir $CWRAP_DIR/home/alice/Maildir: 2 messages, 46 octets, scanned in [0-9.]+ ms$"
	assert_line '  ok    sizes: 0 from the size cache, 1 from ,W= in names, 1 by reading files (1 stat calls)'
	assert_line '  ok    UIDLs: 2 derived from names, 0 kept from earlier sessions, 0 from dovecot-uidlist, 0 from courierpop3dsizelist'
	assert_line --index $((${#lines[@]} - 1)) 'result: a session for this user would work'
	refute_output --partial 'open sesame'
}

# ---- each failure it diagnoses ----------------------------------------------------------

@test "--check USER with a wrong password fails at PAM with the log's reason, and says the same for an unknown user" {
	PW='wrong'
	run -1 check alice
	assert_line --regexp '^  FAIL  PAM: auth failed: user=<alice> reason=<[^>]+>$'
	refute_output --partial 'account alice'
	assert_line --index $((${#lines[@]} - 1)) 'result: 1 check failed: a session would not work'
	local wrong=${output//alice/USER}
	run -1 check nosuchuser
	local unknown=${output//nosuchuser/USER}
	# The two are alike but for the reason, which is the log's (and no timing: a
	# failure's duration would tell a known name from an unknown one).
	assert_equal "$(grep -v '^  FAIL  PAM' <<<"$wrong")" "$(grep -v '^  FAIL  PAM' <<<"$unknown")"
	refute_output --regexp 'FAIL .*[0-9] ms'
	refute_output --partial 'ms)'
}

@test "--check USER reports the same reason as the daemon logs for the same failed login" {
	local logged
	printf 'USER alice\r\nPASS wrong\r\nQUIT\r\n' | wrapped "$MAILDIR_POP3D" >/dev/null
	logged=$(sed -n 's/.*auth failed: user=<alice> rhost=<local> \(reason=<[^>]*>\).*/\1/p' "$CWRAP_DIR/syslog")
	[[ -n $logged ]] || fail "no auth failed line in the log: $(cat "$CWRAP_DIR/syslog")"
	PW='wrong'
	run -1 check alice
	assert_output --partial "auth failed: user=<alice> $logged"
}

@test "--check USER fails when the account phase refuses the right password" {
	PW='carol pw'
	run -1 check carol
	assert_line --regexp '^  FAIL  PAM: auth failed: user=<carol> reason=<[^>]+>$'
}

@test "--check USER fails for an account with uid 0, as the daemon refuses it" {
	PW='toor pw'
	run -1 check toor
	assert_line '  FAIL  account: auth failed: user=<toor> reason=<uid 0 refused>'
}

@test "--check USER with an empty password refuses it before PAM" {
	PW=''
	run -1 check alice
	assert_line --regexp '^  FAIL  password: empty or longer than [0-9]+ octets: refused before PAM$'
	refute_output --partial 'PAM: '
}

@test "--check USER fails when the Maildir cannot be opened after the drop" {
	rm -rf "$A"
	printf 'not a directory\n' >"$A"
	PW='open sesame'
	run -1 check alice
	assert_line --partial '  ok    privilege drop to uid 1001 gid 1001'
	assert_line "  FAIL  Maildir $A: cannot be opened as uid 1001: Not a directory"
}

@test "--check USER warns about a missing Maildir (an empty maildrop) and still passes" {
	rm -rf "$A"
	PW='open sesame'
	run -0 check alice
	assert_line "  warn  Maildir $A: does not exist: an empty maildrop (not created)"
}

@test "--check USER run by another user than root fails at the privilege drop, as the daemon would" {
	PW='open sesame'
	run -1 cwrap_as_user carol env LD_PRELOAD="$LD_PRELOAD" "$MAILDIR_POP3D" --check alice <<<"$PW"
	assert_line '  FAIL  privilege drop: not running as root, and alice is another user'
}

@test "--check fails when the PAM service file is missing" {
	run -1 check --pam-service=nosuch
	assert_line "  FAIL  PAM service file $CWRAP_DIR/pam.d/nosuch: No such file or directory (PAM then uses $CWRAP_DIR/pam.d/other, which usually denies)"
}

@test "--check fails when the pre-auth user does not exist" {
	sed -i '/^maildir-pop3d:/d' "$CWRAP_DIR/passwd"
	run -1 check
	assert_line --partial '  FAIL  pre-auth user maildir-pop3d: no such user'
}

@test "--check fails when the pre-auth chroot is missing or writable by others" {
	need_root_owned
	MAILDIR_POP3D_PREAUTH_CHROOT=$BATS_TEST_TMPDIR/nonexistent run -1 check
	assert_line "  FAIL  pre-auth chroot $BATS_TEST_TMPDIR/nonexistent: No such file or directory"
	chmod 777 "$MAILDIR_POP3D_PREAUTH_CHROOT"
	run -1 check
	assert_line "  FAIL  pre-auth chroot $MAILDIR_POP3D_PREAUTH_CHROOT: must be a directory owned by root, writable by nobody else"
}

@test "--check with a certificate: the module loads, the key matches, the subject and expiry are shown" {
	need_tls
	cert good 400
	run -0 check --tls=implicit --tls-cert="$TLSDIR/good.pem" --tls-key="$TLSDIR/good.key"
	assert_line '  tls              implicit'
	assert_line --regexp '^  ok    TLS module .*tls\.so loads$'
	assert_line "  ok    certificate $TLSDIR/good.pem and key $TLSDIR/good.key: readable, the key matches"
	assert_line --regexp '^  ok    certificate subject CN=good: expires on [0-9-]+ [0-9:]+ UTC, in (399|400) days$'
}

@test "--check warns about a certificate that expires within 30 days" {
	need_tls
	cert soon 10
	run -0 check --tls-cert="$TLSDIR/soon.pem" --tls-key="$TLSDIR/soon.key"
	assert_line --regexp '^  warn  certificate subject CN=soon: expires on .* UTC, in (9|10) days$'
}

@test "--check fails on an expired certificate" {
	need_tls
	cert old -1
	run -1 check --tls-cert="$TLSDIR/old.pem" --tls-key="$TLSDIR/old.key"
	assert_line --regexp '^  FAIL  certificate subject CN=old: expired on .* UTC$'
}

@test "--check fails when the key does not match the certificate" {
	need_tls
	cert one 30
	cert two 30
	run -1 check --tls-cert="$TLSDIR/one.pem" --tls-key="$TLSDIR/two.key"
	assert_line --regexp '^  FAIL  TLS: .*'
	refute_line --partial 'readable, the key matches'
}

@test "--check fails when the certificate cannot be read" {
	need_tls
	run -1 check --tls-cert="$TLSDIR/missing.pem"
	assert_line --regexp "^  FAIL  TLS: .*$TLSDIR/missing\.pem"
}

@test "--check fails when the TLS module cannot be loaded" {
	need_tls
	cert good 400
	MAILDIR_POP3D_TLS_MODULE=/nonexistent/tls.so run -1 check --tls-cert="$TLSDIR/good.pem" --tls-key="$TLSDIR/good.key"
	assert_line --regexp '^  FAIL  TLS: cannot load TLS module /nonexistent/tls\.so: '
}

@test "--check USER on a terminal asks for the password without echoing it" {
	run -0 wrapped python3 - "$MAILDIR_POP3D" <<-'EOF'
		import os, pty, sys
		pid, fd = pty.fork()
		if pid == 0:
		    os.execv(sys.argv[1], [sys.argv[1], "--check", "alice"])
		out = b""
		while b"Password: " not in out:
		    out += os.read(fd, 1024)
		os.write(fd, b"open sesame\n")
		while True:
		    try:
		        chunk = os.read(fd, 4096)
		    except OSError:
		        break
		    if not chunk:
		        break
		    out += chunk
		_, st = os.waitpid(pid, 0)
		text = out.decode()
		print("echoed" if "open sesame" in text else "not echoed")
		print("works" if "result: a session for this user would work" in text else text)
		print("status", os.waitstatus_to_exitcode(st))
	EOF
	assert_output $'not echoed\nworks\nstatus 0'
}
