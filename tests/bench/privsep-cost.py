#!/usr/bin/env python3
"""The cost of the process split and the confinement (issue 12, part 4), run by
tests/bench/privsep-cost inside a real-PAM namespace (tests/lib/realpam.bash) as root.
Not a test: it prints a table and fails only when a session gives a wrong answer.

    privsep-cost.py BEFORE AFTER PAMSERVICE SESSIONS IDLE MIB MAILDIR_USER PASSWORD

BEFORE and AFTER are "BINARY=TLSMODULE" pairs.  Each session is launched here as inetd
would (the connection on fd 0 and 1, nothing exec'd but the server), and wait4() gives the
CPU of the whole session: the launcher's process and every child it reaped (pre-auth, PAM).
"""
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

BEFORE, AFTER, SERVICE = sys.argv[1], sys.argv[2], sys.argv[3]
SESSIONS, IDLE, MIB = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
USER, PASSWORD = sys.argv[7], sys.argv[8]
CERT = os.environ["MP_BENCH_CERT"]


def binary(pair):
    b, mod = pair.split("=", 1)
    return b, mod


def launch(pair, conn, extra):
    """Starts one server on conn (fd 0 and 1); returns the pid."""
    b, mod = binary(pair)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MAILDIR_POP3D_TLS_MODULE": mod}
    # The test harness's pre-auth user and chroot (tests/lib/realpam.bash), where set.
    for k in ("MAILDIR_POP3D_PREAUTH_USER", "MAILDIR_POP3D_PREAUTH_CHROOT"):
        if k in os.environ:
            env[k] = os.environ[k]
    fd = conn.fileno()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(fd, 0)
            os.dup2(fd, 1)
            nul = os.open("/dev/null", os.O_WRONLY)
            os.dup2(nul, 2)
            os.execve(b, [b, "-s", SERVICE, "--plaintext=always"] + extra, env)
        finally:
            os._exit(127)
    return pid


class Client:
    def __init__(self, port, tls):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb")
        self.expect("+OK")
        if tls:
            self.cmd("STLS")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.s = ctx.wrap_socket(self.s, server_hostname="localhost")
            self.f = self.s.makefile("rb")

    def expect(self, what):
        line = self.f.readline()
        if not line.startswith(what.encode()):
            raise SystemExit("bench: wrong answer: %r" % line)
        return line

    def cmd(self, c, what="+OK"):
        self.s.sendall(c.encode() + b"\r\n")
        return self.expect(what)

    def login(self):
        self.cmd("USER " + USER)
        self.cmd("PASS " + PASSWORD)

    def close(self):
        self.s.close()


def listener():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(512)
    return ls, ls.getsockname()[1]


def one_session(pair, tls, work):
    """CPU seconds (user+sys, the session's whole process tree) and wall seconds of work."""
    ls, port = listener()
    extra = ["--tls-cert=" + CERT] if tls else []
    box = {}

    def client():
        c = Client(port, tls)
        c.login()
        t0 = time.perf_counter()
        work(c)
        box["wall"] = time.perf_counter() - t0
        c.cmd("QUIT")
        c.close()

    th = threading.Thread(target=client)
    th.start()
    conn, _ = ls.accept()
    pid = launch(pair, conn, extra)
    conn.close()
    ls.close()
    th.join()
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit("bench: %s exited with %#x" % (pair, status))
    return ru.ru_utime + ru.ru_stime, box.get("wall", 0.0)


def stat(c):
    c.cmd("STAT")


def retr_all(c):
    c.s.sendall(b"RETR 1\r\n")
    c.expect("+OK")
    n = 0
    while True:
        line = c.f.readline()
        if line == b".\r\n":
            break
        n += len(line)
    if n < MIB * 1024 * 1024:
        raise SystemExit("bench: RETR short: %d" % n)


def paired(fn, n):
    """Medians for BEFORE and AFTER from n back-to-back pairs, and the median difference."""
    b, a, d = [], [], []
    for _ in range(n):
        x = fn(BEFORE)
        y = fn(AFTER)
        b.append(x)
        a.append(y)
        d.append(y - x)
    return statistics.median(b), statistics.median(a), statistics.median(d)


def pss_of_tree(pid):
    """Sum of Pss (KiB) over pid and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return total


def procs_of_tree(pid):
    n, todo = 0, [pid]
    while todo:
        p = todo.pop()
        n += 1
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return n


def idle_memory(pair, tls, count):
    """Median PSS (KiB) of a logged-in idle session's processes, count sessions at once."""
    ls, port = listener()
    extra = ["--tls-cert=" + CERT] if tls else []
    clients, pids = [], []
    for _ in range(count):
        box = {}

        def connect():
            c = Client(port, tls)
            c.login()
            c.cmd("STAT")
            box["c"] = c

        th = threading.Thread(target=connect)
        th.start()
        conn, _ = ls.accept()
        pids.append(launch(pair, conn, extra))
        conn.close()
        th.join()
        if "c" not in box:
            raise SystemExit("bench: session %d of %s did not log in" % (len(pids), pair))
        clients.append(box["c"])
    time.sleep(0.5)
    pss = sorted(pss_of_tree(p) for p in pids)
    nproc = statistics.median(procs_of_tree(p) for p in pids)
    for c in clients:
        c.cmd("QUIT")
        c.close()
    for p in pids:
        os.waitpid(p, 0)
    ls.close()
    return statistics.median(pss), nproc


def main():
    rows = []
    n = SESSIONS
    # The size cache of the big message is written once, not inside a measured session.
    one_session(BEFORE, False, stat)
    one_session(AFTER, False, stat)
    for tls in (False, True):
        b, a, d = paired(lambda pair: one_session(pair, tls, stat)[0], n)
        rows.append(("CPU per session, %s (ms)" % ("STLS" if tls else "plaintext"),
                     "%.3f" % (b * 1000), "%.3f" % (a * 1000), "%+.3f" % (d * 1000),
                     "+0.5 ms" if not tls else "-"))
    rounds = 3
    tb, ta = [], []
    for _ in range(rounds):
        tb.append(one_session(BEFORE, True, retr_all)[1])
        ta.append(one_session(AFTER, True, retr_all)[1])
    mb = MIB / statistics.median(tb)
    ma = MIB / statistics.median(ta)
    rows.append(("RETR %d MiB over TLS (MiB/s)" % MIB, "%.1f" % mb, "%.1f" % ma,
                 "%.0f%%" % (100 * ma / mb), ">= 80%"))
    for tls in (False, True):
        pb, nb = idle_memory(BEFORE, tls, IDLE)
        pa, na = idle_memory(AFTER, tls, IDLE)
        rows.append(("PSS per idle %s session, %d open (KiB)" % ("STLS" if tls else "plaintext", IDLE),
                     "%d (%g proc)" % (pb, nb), "%d (%g proc)" % (pa, na), "%+d" % (pa - pb),
                     "<= 250 KiB" if not tls else "<= 1536 KiB"))
    w = [max(len(r[i]) for r in rows + [("", "before", "after", "change", "budget")]) for i in range(5)]
    head = ("", "before", "after", "change", "budget")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    print("(CPU: medians of %d back-to-back pairs, user+system of the whole session tree from "
          "wait4; RETR: median of %d; PSS: Pss of smaps_rollup summed over each session's "
          "processes, median over the sessions)" % (n, rounds))


if __name__ == "__main__":
    main()
