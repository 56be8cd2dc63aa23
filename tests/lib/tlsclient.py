#!/usr/bin/env python3
"""A scripted POP3 client with TLS (STLS and implicit), for tests/tls.bats.

  tlsclient.py session [OPTION...] HOST PORT DIR STEP...
      Connects (and with --implicit does the TLS handshake first), saves the greeting raw
      in DIR/0, then runs each STEP and saves what it got in DIR/1, DIR/2, ...:
        CMD          sends CMD (CRLF added) and saves its whole answer: an +OK answer to
                     RETR, TOP, CAPA, a bare AUTH, or LIST/UIDL without an argument is read
                     through its terminating ".CRLF".  After QUIT everything until the
                     server closes is saved in DIR/end.
        @raw TEXT    sends TEXT as is, after turning \\r, \\n and \\\\ into CR, LF and \\;
                     reads nothing (several commands in one write: STLS injection).
        @line        reads one line.
        @lines N     reads N lines (the answers to commands sent with @raw).
        @tls         the TLS handshake now (after STLS); fails if any plaintext the
                     server sent is still unread.
      The handshake (--implicit, @tls) saves "VERSION SHA256-OF-THE-PEER-CERTIFICATE" in
      its file (DIR/tls for --implicit).  A failed handshake saves "failed: REASON",
      prints it and exits 3; any other failure exits 1.
      Options: --implicit; --cafile FILE (verify the server against FILE, as "localhost");
      --tls-version 1.2|1.3 (offer that version only).

  tlsclient.py bench [--implicit|--stls|--plain] [--pid PID] HOST PORT N
      N sessions one after another, each: (handshake,) greeting, (STLS, handshake,) QUIT,
      the server's close.  Prints one line: sessions, wall time per session, and with
      --pid the CPU (user+system) of the children PID has reaped meanwhile (the launcher's
      sessions: systemd-socket-activate reaps each one), and this client's CPU.  A
      measurement for the notes, never a test.

Every socket operation has a timeout, so a hung server fails the test instead of hanging it.
"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only in distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pop3client import Conn, HandshakeFailed, tls_context as context  # noqa: E402


def unescape(text):
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append({"r": "\r", "n": "\n", "\\": "\\"}.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out).encode("latin-1")


def save(outdir, name, data):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)


def session(argv):
    implicit, cafile, version = False, None, None
    while argv and argv[0].startswith("--"):
        opt = argv.pop(0)
        if opt == "--implicit":
            implicit = True
        elif opt == "--cafile":
            cafile = argv.pop(0)
        elif opt == "--tls-version":
            version = argv.pop(0)
        else:
            raise SystemExit(f"unknown option {opt}")
    host, port, outdir, steps = argv[0], argv[1], argv[2], argv[3:]
    c = Conn(host, port, ctx=context(cafile, version))
    n = 0
    try:
        if implicit:
            n = "tls"
            save(outdir, "tls", c.handshake())
        n = 0
        save(outdir, "0", c.line())
        for n, step in enumerate(steps, 1):
            if step == "@tls":
                data = c.handshake()
            elif step == "@line":
                data = c.line()
            elif step.startswith("@lines "):
                data = b"".join(c.line() for _ in range(int(step[7:])))
            elif step.startswith("@raw "):
                c.send(unescape(step[5:]))
                data = b""
            else:
                data = c.answer(step.encode("latin-1"))
            save(outdir, str(n), data)
            if step.upper() == "QUIT":
                save(outdir, "end", c.rest())
    except HandshakeFailed as e:
        save(outdir, str(n), f"failed: {e}\n".encode())
        print(f"handshake failed: {e}", file=sys.stderr)
        return 3
    return 0


def cpu_of_children(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): cutime and cstime are fields 16 and 17.
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def bench(argv):
    mode, pid = "--implicit", None
    while argv and argv[0].startswith("--"):
        opt = argv.pop(0)
        if opt == "--pid":
            pid = int(argv.pop(0))
        else:
            mode = opt
    host, port, n = argv[0], argv[1], int(argv[2])
    ctx = context()
    cpu0 = cpu_of_children(pid) if pid else 0.0
    own0 = os.times()
    t0 = time.monotonic()
    for _ in range(n):
        c = Conn(host, port, ctx=ctx)
        if mode == "--implicit":
            c.handshake()
        assert c.line().startswith(b"+OK"), "greeting"
        if mode == "--stls":
            assert c.answer(b"STLS").startswith(b"+OK"), "STLS"
            c.handshake()
        assert c.answer(b"QUIT").startswith(b"+OK"), "QUIT"
        c.rest()
        c.close()
    wall = time.monotonic() - t0
    own1 = os.times()
    if pid:
        time.sleep(0.3)  # let the launcher reap the last session
    line = f"mode={mode[2:]} sessions={n} wall_ms={wall * 1000 / n:.2f}/session"
    if pid:
        line += f" server_cpu_ms={(cpu_of_children(pid) - cpu0) * 1000 / n:.2f}/session"
    client = (own1.user - own0.user) + (own1.system - own0.system)
    line += f" client_cpu_ms={client * 1000 / n:.2f}/session"
    print(line)
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("session", "bench"):
        raise SystemExit(__doc__)
    return (session if sys.argv[1] == "session" else bench)(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
