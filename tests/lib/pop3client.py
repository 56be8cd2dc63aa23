#!/usr/bin/env python3
"""A POP3 client over TCP for the deployment suites (socket activation, inetd, demo).

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
import os
import socket
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only in distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pop3enc  # noqa: E402

TIMEOUT = 30
MULTI = (b"RETR", b"TOP", b"CAPA")
MULTI_NOARG = (b"LIST", b"UIDL")


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.buf = b""

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._more()
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def multi(self):
        """The rest of a multi-line answer, through the terminating .CRLF."""
        out = b""
        while True:
            line = self.line()
            out += line
            if line == b".\r\n":
                return out

    def answer(self, cmd):
        """Sends cmd, returns its whole raw answer."""
        self.sock.sendall(cmd + b"\r\n")
        first = self.line()
        verb, _, arg = cmd.partition(b" ")
        verb = verb.upper()
        if first.startswith(b"+OK") and (verb in MULTI or (verb in MULTI_NOARG and not arg)):
            return first + self.multi()
        return first

    def rest(self):
        """Everything until the server closes."""
        out = self.buf
        self.buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return out
            out += chunk

    def close(self):
        self.sock.close()


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
