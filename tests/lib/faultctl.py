#!/usr/bin/env python3
"""Drivers and checkers for tests/faults.bats: Maildirs made to order, snapshots, and the
scenarios that need more timing or bookkeeping than a popctl script.

  faultctl.py mkmsgs DIR N [--big BYTES]
        N messages into DIR/new, named so that message i (1-based) sorts i-th; contents
        cycle through plain text, dot-leading lines, CRLF files, a missing final line end
        and an empty file.  --big: message 1 instead has BYTES octets of text.
  faultctl.py snap DIR
        one line per file of DIR/new, DIR/cur and DIR/tmp ("new/NAME SIZE SHA256"), then
        every other entry of DIR except the server's own cache and lock files ("root NAME"):
        two snapshots differ exactly when the Maildir changed.
  faultctl.py killquit DIR --make N --mark all|odd [--retr even] --at FRACTION
        makes N messages in DIR as mkmsgs does (given to uid 65534 when root), then runs
        one --preauth session ($MP_SESSION_CMD) on DIR under strace: pipelined DELE of
        the marked messages (and RETR of the retrieved ones, each checked byte-exact), QUIT.
        strace stops the session with SIGSTOP right after its K-th unlinkat (K: the marked
        message at FRACTION of the list), and it is SIGKILLed there.  Checks that it was
        stopped (a QUIT that ends sooner, or answers first, is a failure), that exactly the
        K unlinked messages are gone, and that every file left is an original, whole, once,
        under its own name or (retrieved and unmarked only) its seen name.
  faultctl.py interleave DIR --sessions 2|3 [--sample N] [--seed S]
        sessions on one Maildir without --lock, in every interleaving of fixed per-session
        programs (or N seeded random ones), each run against a model: every answer's status,
        RETR bodies byte-exact, QUIT's count, and the Maildir left behind.
  faultctl.py tcpretr HOST PORT LAUNCHER_PID --mode close|reset|stall [--read BYTES]
        over TCP: DELE 2, RETR 1 (the big message), read BYTES of the answer (an answer
        that ends sooner is a failure), then close (with data unread, the kernel resets),
        reset (SO_LINGER 0), or stop reading and keep the socket open; then wait (bounded,
        60 s) until LAUNCHER_PID has no child left.
  faultctl.py session DIR [--tcp HOST PORT] [--dele K,...] [--undeletable K,...]
                     [--quit TEXT] [--no-cache]
        one session ($MP_SESSION_CMD, or a TCP connection) checked against the files of
        DIR: exact STAT, LIST and UIDL; RETR of every message byte-exact; DELE of the
        messages K; QUIT answered TEXT (default: +OK with the count).  Then the Maildir:
        deleted ones gone (except the undeletable ones), every other message there once,
        whole, under its name or its seen name.  --no-cache: the server wrote nothing
        (no size cache, no temporary file) in DIR.

Prints a summary line, then one "FAIL: ..." line per violation; exits 1 if there was any.
"""
import hashlib
import os
import random
import select
import shlex
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pop3enc  # noqa: E402
from pop3client import Conn  # noqa: E402

SERVER_FILES = {"maildir-pop3d.cache", "maildir-pop3d.lock"}
BASE_TIME = 1000000000


def msg_name(i):
    return f"{BASE_TIME + i}.M{i}P42.faulthost"


def msg_body(i):
    kind = i % 6
    if kind == 0:
        return b""
    if kind == 1:
        return b"From: a@example.org\nSubject: message %d\n\nbody of %d\n" % (i, i)
    if kind == 2:
        return b"Subject: dots %d\n\n.leading dot\n..two dots\n.\nend\n" % i
    if kind == 3:
        return b"Subject: crlf %d\r\n\r\nline one\r\nline two\r\n" % i
    if kind == 4:
        return b"Subject: no final newline %d\n\nlast line" % i
    return b"Subject: longer %d\n\n" % i + b"".join(b"line %d of %d\n" % (k, i) for k in range(i % 40 + 1))


def big_body(size):
    out, n = [], 0
    k = 0
    while n < size:
        line = (b"." if k % 17 == 0 else b"") + b"big line %d " % k + b"x" * (k % 90) + b"\n"
        out.append(line)
        n += len(line)
        k += 1
    data = b"".join(out)[:size]
    return data


def wire_of(data):
    return pop3enc.wire(pop3enc.lines_of(data))


def size_of(data):
    return sum(len(l) + 2 for l in pop3enc.lines_of(data))


def fail(msgs):
    for m in msgs:
        print("FAIL: " + m)
    sys.exit(1 if msgs else 0)


# ---- Maildir helpers ----

def mkmsgs(d, n, big=None):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    for i in range(1, n + 1):
        data = big_body(big) if big and i == 1 else msg_body(i)
        with open(os.path.join(d, "new", msg_name(i)), "wb") as f:
            f.write(data)


def give_away(d):
    """The session runs as uid 65534 when the tests run as root (common.bash)."""
    if os.getuid() != 0:
        return
    os.chown(d, 65534, 65534)
    for root, dirs, files in os.walk(d):
        for x in dirs + files:
            os.chown(os.path.join(root, x), 65534, 65534)


def cmd_mkmsgs(args):
    big = int(args[args.index("--big") + 1]) if "--big" in args else None
    mkmsgs(args[0], int(args[1]), big)


def snapshot(d):
    rows = []
    for sub in ("new", "cur", "tmp"):
        p = os.path.join(d, sub)
        if not os.path.isdir(p):
            continue
        for name in sorted(os.listdir(p)):
            fp = os.path.join(p, name)
            try:
                with open(fp, "rb") as f:
                    data = f.read()
                rows.append(f"{sub}/{name} {len(data)} {hashlib.sha256(data).hexdigest()}")
            except OSError as e:
                rows.append(f"{sub}/{name} unreadable {e.errno}")
    for name in sorted(os.listdir(d)):
        if name not in ("new", "cur", "tmp") and name not in SERVER_FILES:
            rows.append(f"root {name}")
    return rows


def cmd_snap(args):
    for r in snapshot(args[0]):
        print(r)


def read_originals(d):
    """uniq -> (relative path, bytes) of the messages in d, in message-number order."""
    orig = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(d, sub)):
            with open(os.path.join(d, sub, name), "rb") as f:
                orig[name.split(":", 1)[0]] = (f"{sub}/{name}", f.read())
    return dict(sorted(orig.items(), key=lambda kv: (int(kv[0].split(".", 1)[0]), kv[0])))


def listing(d):
    """uniq -> list of (relative path, bytes) now in d."""
    now = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(d, sub)):
            with open(os.path.join(d, sub, name), "rb") as f:
                now.setdefault(name.split(":", 1)[0], []).append((f"{sub}/{name}", f.read()))
    return now


def seen_path(path):
    name = path.split("/", 1)[1]
    uniq, _, info = name.partition(":")
    if not info:
        return f"cur/{uniq}:2,S"
    flags = info[2:]
    if "S" in flags:
        return path
    return "cur/" + uniq + ":2," + "".join(sorted(flags + "S"))


# ---- a session on pipes ----

def open_session(stop_after_unlink=None):
    """A session ($MP_SESSION_CMD) on pipes: a pop3client.Conn.  stop_after_unlink=K runs it
    under strace, which stops it with SIGSTOP once its K-th unlinkat has returned; then
    conn.trace_fd reads strace's lines (trace_lines)."""
    argv = shlex.split(os.environ["MP_SESSION_CMD"])
    if stop_after_unlink is None:
        return Conn(argv=argv)
    # Not --seccomp-bpf: strace 6.1 then ignores when=K.
    r, w = os.pipe()
    argv = ["strace", "-f", "-qq", "-e", "trace=unlinkat", "-e",
            f"inject=unlinkat:signal=SIGSTOP:when={stop_after_unlink}", "-o", f"/dev/fd/{w}"] + argv
    conn = Conn(argv=argv, pass_fds=(w,))
    os.close(w)
    conn.trace_fd = r
    return conn


def trace_lines(fd, timeout):
    """strace's lines from fd as they come; ends at EOF or after timeout s without one."""
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode(errors="replace")


# ---- killquit ----

def proc_state(pid):
    """The state letter of /proc/PID/stat ("T" stopped, "t" stopped by the tracer)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return None
    return st[st.rindex(")") + 2:].split()[0]


def cmd_killquit(args):
    d = args[0]
    mark = args[args.index("--mark") + 1]
    retr = args[args.index("--retr") + 1] if "--retr" in args else "none"
    at = float(args[args.index("--at") + 1])
    mkmsgs(d, int(args[args.index("--make") + 1]))
    give_away(d)
    orig = read_originals(d)
    uniqs = list(orig)
    n = len(uniqs)
    marked = {u for k, u in enumerate(uniqs, 1) if mark == "all" or (mark == "odd" and k % 2 == 1)}
    retrd = {u for k, u in enumerate(uniqs, 1) if retr == "even" and k % 2 == 0}
    cmds = []
    for k, u in enumerate(uniqs, 1):
        if u in retrd:
            cmds.append((b"RETR %d\r\n" % k, u))
        if u in marked:
            cmds.append((b"DELE %d\r\n" % k, None))
    k = min(len(marked) - 1, int(at * len(marked))) + 1
    s = open_session(stop_after_unlink=k)
    errs = []
    greet = s.line()
    if not greet.startswith(b"+OK"):
        fail([f"greeting {greet!r}"])
    # Pipelined: a writer thread, so neither side blocks on a full pipe.
    w = threading.Thread(target=s.send, args=(b"".join(c for c, _ in cmds),))
    w.start()
    for c, u in cmds:
        ln = s.line()
        if not ln.startswith(b"+OK"):
            errs.append(f"{c.strip().decode()}: {ln!r}")
            break
        if u is not None:
            body = s.body()
            if body != wire_of(orig[u][1]):
                errs.append(f"{c.strip().decode()}: body differs")
    w.join()
    if errs:
        s.proc.kill()
        fail(errs)
    # Stop the session right after its K-th unlinkat (strace delivers SIGSTOP on entry to
    # that call, the call completes, the stop takes effect before the next instruction),
    # then SIGKILL it there: a kill that provably lands in the middle of QUIT's deletions.
    # strace's trace arrives on a pipe, so waiting for the stop is a blocking read.
    s.send(b"QUIT\r\n")
    s.close_write()
    trace = trace_lines(s.trace_fd, timeout=120)
    unlinked, pid, stopped = [], None, False
    for line in trace:
        f = line.split(None, 1)
        if len(f) < 2:
            continue
        if f[1].startswith("unlinkat("):
            unlinked.append(line)
        elif f[1].startswith("--- stopped by SIGSTOP ---"):
            pid = int(f[0])
            stopped = proc_state(pid) in ("t", "T")
            break
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    rest = s.rest(timeout=60)
    s.proc.wait(timeout=60)
    os.close(s.trace_fd)
    if pid is None or not stopped:
        errs.append(f"the session was not stopped after deletion {k} of {len(marked)}: "
                    f"{len(unlinked)} unlinkat calls, then "
                    + ("it stopped but was not in a stopped state" if pid else "it went on to the end"))
    if len(unlinked) != k:
        errs.append(f"{len(unlinked)} unlinkat calls before the kill, want {k}")
    bad = [ln for ln in unlinked if not ln.rstrip().endswith("= 0")]
    if bad:
        errs.append(f"failed unlinkat calls: {bad[:3]}")
    if b"signing off" in rest:
        errs.append(f"QUIT was answered before the kill: {rest[-200:]!r}")
    now = listing(d)
    for u, files in now.items():
        if u not in orig:
            errs.append(f"a file that was not there before: {files[0][0]}")
            continue
        if len(files) != 1:
            errs.append(f"message {u} is there {len(files)} times: {[p for p, _ in files]}")
        for path, data in files:
            if data != orig[u][1]:
                errs.append(f"{path}: {len(data)} octets, was {len(orig[u][1])}, or other bytes")
            ok_names = {orig[u][0]}
            if u in retrd and u not in marked:
                ok_names.add(seen_path(orig[u][0]))
            if path not in ok_names:
                errs.append(f"{path}: wrong name (allowed: {sorted(ok_names)})")
    gone = [u for u in orig if u not in now]
    for u in gone:
        if u not in marked:
            errs.append(f"{orig[u][0]} is gone but was never marked deleted")
    if os.listdir(os.path.join(d, "tmp")):
        errs.append(f"tmp/ not empty: {os.listdir(os.path.join(d, 'tmp'))}")
    if len(gone) != len(unlinked):
        errs.append(f"{len(gone)} messages gone, but {len(unlinked)} were unlinked")
    renamed = sum(1 for u, f in now.items() if f[0][0] != orig[u][0])
    print(f"killquit: {n} messages, {len(marked)} marked, {len(retrd)} retrieved; "
          + (f"killed when stopped after unlinkat {len(unlinked)} of {len(marked)}: "
             if stopped else f"not stopped (after {len(unlinked)} unlinkat calls): ")
          + f"{len(gone)} removed, {renamed} renamed")
    fail(errs)


# ---- interleave ----

# Per-session programs: (verb, arg).  "open" starts the session, "quit"/"eof" end it.
PROGRAMS2 = [
    # a deletion racing a retrieval, both ways round
    ([("open",), ("dele", 1), ("retr", 2), ("quit",)],
     [("open",), ("retr", 1), ("dele", 1), ("dele", 2), ("quit",)]),
    # both delete the same message, each also retrieves it
    ([("open",), ("retr", 1), ("dele", 1), ("quit",)],
     [("open",), ("dele", 1), ("retr", 1), ("quit",)]),
    # marks dropped by a disconnect or an RSET
    ([("open",), ("dele", 2), ("eof",)],
     [("open",), ("retr", 2), ("rset",), ("dele", 1), ("quit",)]),
    # seen-flag renames racing a deletion
    ([("open",), ("retr", 3), ("retr", 1), ("quit",)],
     [("open",), ("retr", 1), ("dele", 3), ("quit",)]),
]
PROGRAMS3 = [
    [("open",), ("dele", 1), ("retr", 2), ("quit",)],
    [("open",), ("retr", 1), ("dele", 2), ("retr", 3), ("quit",)],
    [("open",), ("dele", 1), ("dele", 3), ("retr", 2), ("eof",)],
]
N_MSGS = 3


def interleavings(progs):
    """Every merge of the programs that keeps each one's order: lists of session indexes."""
    counts = [len(p) for p in progs]

    def rec(left):
        if not any(left):
            yield []
            return
        for i, c in enumerate(left):
            if c:
                left[i] -= 1
                for rest in rec(left):
                    yield [i] + rest
                left[i] += 1
    yield from rec(counts)


def random_interleaving(progs, rnd):
    order = [i for i, p in enumerate(progs) for _ in p]
    rnd.shuffle(order)
    return order


def run_interleaving(d, progs, order):
    """Runs one interleaving on a fresh Maildir d; returns a list of violations."""
    for sub in ("new", "cur", "tmp"):
        p = os.path.join(d, sub)
        os.makedirs(p, exist_ok=True)
        for name in os.listdir(p):
            os.unlink(os.path.join(p, name))
    for name in os.listdir(d):
        if name in SERVER_FILES:
            os.unlink(os.path.join(d, name))
    contents = {}
    for i in range(1, N_MSGS + 1):
        contents[msg_name(i)] = msg_body(i) or b"x\n"
        with open(os.path.join(d, "new", msg_name(i)), "wb") as f:
            f.write(contents[msg_name(i)])
    give_away(d)
    disk = {u: f"new/{u}" for u in contents}       # the model of the Maildir
    st = [dict(pc=0, snap=None, marked=set(), retr=set(), pipe=None) for _ in progs]
    errs = []
    names = "ABC"
    try:
        for who in order:
            s = st[who]
            step = progs[who][s["pc"]]
            s["pc"] += 1
            what = f"{names[who]} {' '.join(map(str, step))}"
            verb = step[0]
            if verb == "open":
                s["pipe"] = open_session()
                s["snap"] = sorted(disk, key=lambda u: (int(u.split(".", 1)[0]), u))
                got = s["pipe"].line()
                if not got.startswith(b"+OK"):
                    errs.append(f"{what}: {got!r}")
                continue
            p = s["pipe"]
            if verb == "eof":
                rc = p.eof()
                # 2: the client left without QUIT (maildir-pop3d(8), EXIT STATUS).
                if rc != 2:
                    errs.append(f"{what}: exit status {rc}")
                continue
            if verb == "rset":
                p.send(b"RSET\r\n")
                got = p.line()
                s["marked"].clear()
                if not got.startswith(b"+OK"):
                    errs.append(f"{what}: {got!r}")
                continue
            if verb == "quit":
                p.send(b"QUIT\r\n")
                got = p.line()
                want = b"+OK maildir-pop3d signing off (%d messages deleted)\r\n" % len(s["marked"])
                if got != want:
                    errs.append(f"{what}: {got!r}, want {want!r}")
                p.eof()
                for u in s["marked"]:
                    disk.pop(u, None)
                for u in s["retr"] - s["marked"]:
                    if u in disk:
                        disk[u] = seen_path(disk[u])
                continue
            k = step[1]
            u = s["snap"][k - 1] if k <= len(s["snap"]) else None
            if verb == "dele":
                p.send(b"DELE %d\r\n" % k)
                got = p.line()
                ok = u is not None and u not in s["marked"]
                if ok:
                    s["marked"].add(u)
            else:
                p.send(b"RETR %d\r\n" % k)
                got = p.line()
                ok = u is not None and u not in s["marked"] and u in disk
                if got.startswith(b"+OK"):
                    body = p.body()
                    if u is not None and body != wire_of(contents[u]):
                        errs.append(f"{what}: body differs")
                if ok:
                    s["retr"].add(u)
            if got.startswith(b"+OK") != ok:
                errs.append(f"{what}: {got!r}, want {'+OK' if ok else '-ERR'}")
    except (EOFError, OSError) as e:
        errs.append(f"session failed: {e}")
    finally:
        for s in st:
            if s["pipe"]:
                s["pipe"].kill()
    want = sorted(disk.values())
    now = listing(d)
    got = sorted(path for files in now.values() for path, _ in files)
    if got != want:
        errs.append(f"Maildir has {got}, want {want}")
    for u, files in now.items():
        for path, data in files:
            if u in contents and data != contents[u]:
                errs.append(f"{path}: bytes changed")
    return errs


def cmd_interleave(args):
    d = args[0]
    n = int(args[args.index("--sessions") + 1])
    sample = int(args[args.index("--sample") + 1]) if "--sample" in args else 0
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
    runs = []
    if n == 2:
        for a, b in PROGRAMS2:
            for order in interleavings([a, b]):
                runs.append(([a, b], order))
    else:
        progs = PROGRAMS3
        if sample:
            rnd = random.Random(seed)
            runs = [(progs, random_interleaving(progs, rnd)) for _ in range(sample)]
        else:
            runs = [(progs, o) for o in interleavings(progs)]
    errs = []
    for progs, order in runs:
        e = run_interleaving(d, progs, order)
        if e:
            steps, pcs = [], [0] * len(progs)
            for who in order:
                steps.append("ABC"[who] + ":" + " ".join(map(str, progs[who][pcs[who]])))
                pcs[who] += 1
            errs.append("interleaving " + ", ".join(steps) + ":\n    " + "\n    ".join(e))
            if len(errs) >= 5:
                break
    print(f"interleave: {len(runs)} interleavings of {n} sessions"
          + (f" (seed {seed})" if sample else ""))
    fail(errs)


# ---- TCP ----

def children(pid):
    """Live child processes of pid (from /proc: no procps needed)."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[1] == str(pid) and fields[0] != "Z":
            out.append(e)
    return out


def cmd_tcpretr(args):
    host, port, launcher = args[0], int(args[1]), int(args[2])
    mode = args[args.index("--mode") + 1]
    want = int(args[args.index("--read") + 1]) if "--read" in args else 100000
    # A small receive window, set before connecting, so that the server cannot park the
    # whole message in socket buffers and must block on the rest.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(30)
    sock.connect((host, port))
    buf = b""

    def line():
        nonlocal buf
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("server closed early")
            buf += chunk
        i = buf.index(b"\r\n") + 2
        out, buf = buf[:i], buf[i:]
        return out

    errs = []
    greet = line()
    sock.sendall(b"DELE 2\r\nRETR 1\r\n")
    dele, retr = line(), line()
    if not greet.startswith(b"+OK") or not dele.startswith(b"+OK") or not retr.startswith(b"+OK"):
        errs.append(f"answers: {greet!r} {dele!r} {retr!r}")
    listed = int(retr.split()[1]) if retr.startswith(b"+OK") else 0
    got, tail = len(buf), (b"\r\n" + buf)[-5:]
    while got < want:
        if tail.endswith(b"\r\n.\r\n"):
            errs.append(f"RETR answer ended after {got} octets, but its +OK line said {listed}")
            break
        chunk = sock.recv(65536)
        if not chunk:
            errs.append(f"server closed after {got} octets of the answer")
            break
        got += len(chunk)
        tail = (tail + chunk)[-5:]
    if mode == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    if mode != "stall":
        sock.close()
    t0 = time.monotonic()
    while children(launcher) and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    left = children(launcher)
    if mode == "stall":
        sock.close()
    if left:
        errs.append(f"server process(es) {left} still running 60 s after the client "
                    f"{'stopped reading' if mode == 'stall' else 'went away'}")
    print(f"tcpretr {mode}: read {got} octets; server gone after ~{time.monotonic() - t0:.1f} s")
    fail(errs)


def opt(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def nums(text):
    return {int(x) for x in text.split(",") if x} if text else set()


def cmd_session(args):
    d = args[0]
    dele = nums(opt(args, "--dele", ""))
    undeletable = nums(opt(args, "--undeletable", ""))
    quit_want = opt(args, "--quit", "").encode() or None
    orig = read_originals(d)
    items = list(orig.items())
    conn = Conn(opt(args, "--tcp"), int(args[args.index("--tcp") + 2]), timeout=60) if "--tcp" in args \
        else open_session()
    errs = []

    def expect(cmd, want):
        conn.send(cmd + b"\r\n")
        got = conn.line()
        if got != want:
            errs.append(f"{cmd.decode()}: {got!r}, want {want!r}")
        return got

    greet = conn.line()
    if greet != b"+OK maildir-pop3d ready.\r\n":
        fail([f"greeting {greet!r}"])
    sizes = [size_of(data) for _, (_, data) in items]
    expect(b"STAT", b"+OK %d %d\r\n" % (len(items), sum(sizes)))
    if expect(b"LIST", b"+OK %d messages (%d octets)\r\n" % (len(items), sum(sizes))).startswith(b"+OK"):
        want = b"".join(b"%d %d\r\n" % (k, z) for k, z in enumerate(sizes, 1)) + b".\r\n"
        if conn.body() != want:
            errs.append("LIST body differs")
    if expect(b"UIDL", b"+OK unique-id listing follows\r\n").startswith(b"+OK"):
        want = b"".join(b"%d %s\r\n" % (k, u.encode()) for k, (u, _) in enumerate(items, 1)) + b".\r\n"
        if conn.body() != want:
            errs.append("UIDL body differs")
    for k, (u, (path, data)) in enumerate(items, 1):
        if expect(b"RETR %d" % k, b"+OK %d octets\r\n" % size_of(data)).startswith(b"+OK"):
            if conn.body() != wire_of(data):
                errs.append(f"RETR {k}: body differs")
    for k in sorted(dele):
        expect(b"DELE %d" % k, b"+OK message %d deleted\r\n" % k)
    if quit_want is None:
        quit_want = b"+OK maildir-pop3d signing off (%d messages deleted)" % len(dele)
    expect(b"QUIT", quit_want + b"\r\n")
    conn.eof()
    now = listing(d)
    for k, (u, (path, data)) in enumerate(items, 1):
        files = now.get(u, [])
        if k in dele and k not in undeletable:
            if files:
                errs.append(f"message {k} was deleted but is still there: {files[0][0]}")
            continue
        if len(files) != 1:
            errs.append(f"message {k} is there {len(files)} times")
            continue
        if files[0][1] != data:
            errs.append(f"message {k}: bytes changed")
        if files[0][0] not in (path, seen_path(path)):
            errs.append(f"message {k}: wrong name {files[0][0]}")
    if "--no-cache" in args:
        stray = [n for n in os.listdir(d) if n not in ("new", "cur", "tmp", "maildir-pop3d.lock")]
        if stray:
            errs.append(f"files the server should not have been able to write: {stray}")
    print(f"session: {len(items)} messages listed and retrieved, {len(dele)} marked deleted")
    fail(errs)


def main():
    cmds = {
        "mkmsgs": cmd_mkmsgs, "snap": cmd_snap, "killquit": cmd_killquit,
        "interleave": cmd_interleave, "tcpretr": cmd_tcpretr, "session": cmd_session,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    cmds[sys.argv[1]](sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
