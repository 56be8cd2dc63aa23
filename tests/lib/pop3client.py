#!/usr/bin/env python3
"""The tests' POP3 client (class Conn: TCP, TLS or a server on pipes; the other tools in
tests/lib import it), and a command-line client for the deployment suites (socket
activation, inetd, demo).

  pop3client.py session HOST PORT DIR CMD...
      Connects, saves the greeting raw in DIR/0, sends each CMD (CRLF added) and saves its
      answer raw in DIR/1, DIR/2, ...  An +OK answer to RETR, TOP, CAPA, or LIST/UIDL
      without an argument is read through its terminating ".CRLF".  After the last command
      it reads until the server closes the connection and saves that in DIR/end.

  pop3client.py load HOST PORT N USER:PASSWORD:MAILDIR...
      N sessions at once, one thread each; session i logs in as account i mod k, checks
      STAT against the files in MAILDIR/new (sorted by name; sizes and bytes from
      pop3enc.py, the independent model), RETRs message (i mod count) + 1 and compares
      it byte for byte, then waits until all N sessions have got that far (so that N
      server processes run at the same time) before it sends QUIT and expects +OK and
      the close.  Prints one line per failed session and "OK/N sessions ok"; exits 1 if
      any failed.

Every socket operation has a timeout, so a hung server fails the test instead of
hanging it.
"""
import hashlib
import os
import select
import socket
import ssl
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only in distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pop3enc  # noqa: E402

TIMEOUT = 30
MULTI = (b"RETR", b"TOP", b"CAPA")
MULTI_NOARG = (b"LIST", b"UIDL", b"AUTH")
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class HandshakeFailed(Exception):
    pass


def tls_context(cafile=None, version=None):
    """A client TLS context: verifying against cafile, or not verifying at all."""
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if version:
        ctx.minimum_version = ctx.maximum_version = TLS_VERSIONS[version]
    return ctx


class Conn:
    """The tests' one POP3 client connection: TCP to (host, port), with TLS started by
    handshake() (implicit TLS or after STLS), a server process on pipes (argv=[...]: its
    stdin and stdout), or a server process on one end of a socketpair (pair=[...]: as
    inetd hands over a connection, and TLS works on it).  Lines and multi-line answers are read in linear time (a 5 MiB
    RETR costs no quadratic copy); every socket operation has a timeout."""

    def __init__(self, host=None, port=None, argv=None, ctx=None, pass_fds=(), timeout=TIMEOUT,
                 source=None, pair=None):
        self.buf = bytearray()
        self.proc = self.sock = None
        self.ctx = ctx
        if pair is not None:
            self.sock, theirs = socket.socketpair()
            self.sock.settimeout(timeout)
            self.proc = subprocess.Popen(pair, stdin=theirs, stdout=theirs, pass_fds=pass_fds)
            theirs.close()
        elif argv is not None:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         pass_fds=pass_fds)
        else:
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(fam, socket.SOCK_STREAM)
            # Like a mail client: without it, Nagle holds a command after TLS 1.3's Finished.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(timeout)
            if source:
                self.sock.bind((source, 0))
            self.sock.connect((host, int(port)))

    def fileno(self):
        return self.sock.fileno() if self.sock else self.proc.stdout.fileno()

    def handshake(self):
        """TLS on the connection; returns "VERSION SHA256-OF-THE-CERTIFICATE\n"."""
        if self.buf:
            raise AssertionError(f"plaintext left unread before the handshake: {bytes(self.buf)!r}")
        try:
            self.sock = self.ctx.wrap_socket(self.sock, server_hostname="localhost")
        except (ssl.SSLError, ssl.CertificateError, OSError) as e:
            raise HandshakeFailed(str(e)) from e
        der = self.sock.getpeercert(binary_form=True) or b""
        return f"{self.sock.version()} {hashlib.sha256(der).hexdigest()}\n".encode()

    def send(self, data):
        if self.sock:
            self.sock.sendall(data)
        else:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def recv(self):
        """One chunk from the server, b"" once it has closed (or reset) the connection."""
        try:
            if self.sock:
                return self.sock.recv(1 << 16)
            return os.read(self.proc.stdout.fileno(), 1 << 16)
        except ConnectionResetError:
            return b""

    def _more(self):
        chunk = self.recv()
        if not chunk:
            raise EOFError("connection closed by the server: %r" % bytes(self.buf[:200]))
        self.buf += chunk

    def line(self, end=b"\r\n"):
        """The next line through end (EOFError if the server closes first)."""
        start = 0
        while True:
            i = self.buf.find(end, start)
            if i >= 0:
                break
            start = max(0, len(self.buf) - len(end) + 1)
            self._more()
        out = bytes(self.buf[:i + len(end)])
        del self.buf[:i + len(end)]
        return out

    def line_or_rest(self, end=b"\n"):
        """The next line through end; at the close, what is left without end, or None."""
        try:
            return self.line(end)
        except EOFError:
            rest, self.buf = bytes(self.buf), bytearray()
            return rest or None

    def multi(self):
        """The rest of a multi-line answer, through the terminating .CRLF."""
        out, first = [], True
        while True:
            i = self.buf.find(b"\r\n.\r\n")
            if first and self.buf.startswith(b".\r\n"):
                i = -2
            if i != -1:
                end = i + 5
                out.append(bytes(self.buf[:end]))
                del self.buf[:end]
                return b"".join(out)
            # Keep a tail that may hold the start of the terminator.
            keep = 4
            if len(self.buf) > keep:
                out.append(bytes(self.buf[:-keep]))
                del self.buf[:-keep]
                first = False
            self._more()

    body = multi

    def answer(self, cmd):
        """Sends cmd (CRLF added), returns its whole raw answer."""
        self.send(cmd + b"\r\n")
        first = self.line()
        verb, _, arg = cmd.partition(b" ")
        verb = verb.upper()
        if first.startswith(b"+OK") and (verb in MULTI or (verb in MULTI_NOARG and not arg)):
            return first + self.multi()
        return first

    def rest(self, timeout=None):
        """Everything until the server closes (or timeout s of silence)."""
        out, self.buf = [bytes(self.buf)], bytearray()
        while True:
            if timeout is not None and not select.select([self], [], [], timeout)[0]:
                break
            chunk = self.recv()
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)

    def close_write(self):
        if self.sock:
            self.sock.shutdown(socket.SHUT_WR)
        else:
            self.proc.stdin.close()

    def eof(self, timeout=60):
        """Closes our sending end; for a process, waits for it and returns its status."""
        self.close_write()
        if self.proc:
            return self.proc.wait(timeout=timeout)
        return 0

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.sock:
            self.sock.close()
        if self.proc:
            self.kill()


def session(host, port, outdir, cmds):
    c = Conn(host, port)
    with open(os.path.join(outdir, "0"), "wb") as f:
        f.write(c.line())
    for n, cmd in enumerate(cmds, 1):
        data = c.answer(cmd.encode("latin-1"))
        with open(os.path.join(outdir, str(n)), "wb") as f:
            f.write(data)
    with open(os.path.join(outdir, "end"), "wb") as f:
        f.write(c.rest())
    c.close()


def mailbox(maildir):
    """[(size, wire bytes)] of the files in MAILDIR/new, in name order."""
    out = []
    new = os.path.join(maildir, "new")
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), "rb") as f:
            lines = pop3enc.lines_of(f.read())
        out.append((sum(len(l) + 2 for l in lines), pop3enc.wire(lines)))
    return out


def load(host, port, n, specs):
    accounts = []
    for spec in specs:
        user, password, maildir = spec.split(":", 2)
        accounts.append((user, password, mailbox(maildir)))
    barrier = threading.Barrier(n, timeout=120)
    failures = []
    lock = threading.Lock()

    def expect(what, got, want):
        if got != want:
            raise AssertionError(f"{what}: want {want[:80]!r}, got {got[:80]!r}")

    def one(i):
        user, password, msgs = accounts[i % len(accounts)]
        total = sum(s for s, _ in msgs)
        msn = i % len(msgs) + 1
        size, wire = msgs[msn - 1]
        c = None
        try:
            c = Conn(host, port)
            expect("greeting", c.line()[:3], b"+OK")
            expect("USER", c.answer(b"USER " + user.encode())[:3], b"+OK")
            expect("PASS", c.answer(b"PASS " + password.encode())[:3], b"+OK")
            expect("STAT", c.answer(b"STAT"), b"+OK %d %d\r\n" % (len(msgs), total))
            expect(f"RETR {msn}", c.answer(b"RETR %d" % msn),
                   b"+OK %d octets\r\n" % size + wire)
            barrier.wait()
            expect("QUIT", c.answer(b"QUIT")[:3], b"+OK")
            expect("after QUIT", c.rest(), b"")
        except Exception as e:  # noqa: BLE001 - every failure is reported, per session
            barrier.abort()
            with lock:
                failures.append(f"session {i} ({user}): {type(e).__name__}: {e}")
        finally:
            if c is not None:
                c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A broken barrier fails every session still waiting: show the causes, count the rest.
    causes = [f for f in failures if "BrokenBarrierError" not in f]
    for f in causes[:10]:
        print(f)
    if len(causes) > 10:
        print(f"... and {len(causes) - 10} more failures like these")
    if len(failures) > len(causes):
        print(f"{len(failures) - len(causes)} sessions stopped waiting for the others")
    print(f"{n - len(failures)}/{n} sessions ok")
    return 1 if failures else 0


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "session":
        session(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
        return 0
    if len(sys.argv) >= 6 and sys.argv[1] == "load":
        return load(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
