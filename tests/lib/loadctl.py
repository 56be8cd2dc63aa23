#!/usr/bin/env python3
"""Load client for tests/load.bats: many concurrent POP3 sessions over TCP, checked byte-exact.

  loadctl.py mkmaildir DIR N SEED
        N messages in DIR/new (100 octets to 60 KiB, one in 50 of 150 KB; some lines
        dot-leading or a lone dot, some files with CRLF or no final line end), named so
        that message i sorts i-th.
  loadctl.py run HOST PORT --user NAME:PASSWORD:MAILDIR ... [--sessions 200] [--idle 100]
                 [--per-session 20] [--limit SECONDS]
        0. logs in once per user, one after the other, so that the size caches exist (as
           on a live server; later sessions still rewrite them concurrently, since
           messages go);
        1. opens IDLE connections and keeps them silent: half stay before login, half log in
           and then wait;
        2. runs SESSIONS sessions at once, spread over the users.  Per user, the first half of
           the messages is "fetched": each fetcher session RETRieves, checks and DELEtes its
           own PER-SESSION of them, then QUITs; the other half is "kept": reader sessions
           RETRieve PER-SESSION of those, check them, and QUIT.  Every session checks its
           greeting, login, STAT, LIST and UIDL (no duplicate, no unknown message, every kept
           message there) against the files;
        3. QUITs the idle connections (each must still be alive and answer);
        4. checks each Maildir: exactly the kept messages, once each, byte-identical (under
           their name or their seen name), nothing in tmp/; and every fetched message was
           retrieved exactly once, by the session that deleted it.
        Prints timings and counts; exits 1 with one "FAIL: ..." line per error (at most 30).
"""
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only in distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pop3enc  # noqa: E402
from pop3client import Conn  # noqa: E402

BASE_TIME = 1200000000


def make_body(rnd, i):
    size = rnd.choice([100, 300, 1000, 2000, 4000, 8000, 20000, 61000])
    if i % 50 == 25:
        size = 150000     # an attachment: more than one read chunk of the server
    kind = i % 4
    lines = [b"From: load%d@example.org" % i, b"Subject: load message %d" % i, b""]
    n = sum(len(x) + 1 for x in lines)
    k = 0
    while n < size:
        line = b"line %d of message %d " % (k, i) + b"y" * rnd.randrange(0, 70)
        if k % 13 == 5:
            line = b"." + line
        if k % 29 == 7:
            line = b"."
        lines.append(line)
        n += len(line) + 1
        k += 1
    eol = b"\r\n" if kind == 1 else b"\n"
    data = eol.join(lines) + eol
    if kind == 2:
        data = data[:-1]
    return data


def cmd_mkmaildir(args):
    d, n, seed = args[0], int(args[1]), int(args[2])
    rnd = random.Random(seed)
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    for i in range(1, n + 1):
        with open(os.path.join(d, "new", f"{BASE_TIME + i}.M{i}P{seed}.loadhost"), "wb") as f:
            f.write(make_body(rnd, i))


class Msg:
    __slots__ = ("uniq", "path", "data", "wire", "size")

    def __init__(self, uniq, path, data):
        self.uniq, self.path, self.data = uniq, path, data
        lines = pop3enc.lines_of(data)
        self.wire = pop3enc.wire(lines)
        self.size = sum(len(l) + 2 for l in lines)


def load_maildir(d):
    msgs = []
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(d, sub)):
            with open(os.path.join(d, sub, name), "rb") as f:
                msgs.append(Msg(name.split(":", 1)[0], f"{sub}/{name}", f.read()))
    msgs.sort(key=lambda m: (int(m.uniq.split(".", 1)[0]), m.uniq))
    return msgs


class User:
    def __init__(self, spec):
        self.name, self.password, self.dir = spec.split(":", 2)
        self.msgs = load_maildir(self.dir)
        self.by_uniq = {m.uniq: m for m in self.msgs}
        half = len(self.msgs) // 2
        self.fetch = [m.uniq for m in self.msgs[:half]]
        self.keep = [m.uniq for m in self.msgs[half:]]
        self.fetched = {}           # uniq -> count of sessions that retrieved and deleted it


def cmd(c, text):
    """Sends one command (CRLF added), returns its first line."""
    c.send(text.encode() + b"\r\n")
    return c.line()


def all_at_once(calls):
    """Runs each (function, arg...) in a thread of its own, all at the same time."""
    threads = [threading.Thread(target=c[0], args=c[1:]) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Run:
    def __init__(self, host, port, users, limit):
        self.host, self.port, self.users, self.limit = host, port, users, limit
        self.errors = []
        self.n_retr = 0
        self.greet_s = []           # connect to greeting, per working session
        self.session_s = []         # connect to QUIT's answer, per working session
        self.octets = 0
        self.lock = threading.Lock()

    def err(self, label, text):
        self.errors.append(f"{label}: {text}")

    def connect(self, label):
        t = time.monotonic()
        c = Conn(self.host, self.port, timeout=self.limit)
        greet = c.line()
        if greet != b"+OK maildir-pop3d ready.\r\n":
            raise RuntimeError(f"greeting {greet!r}")
        c.t0 = t
        if label.startswith("s"):
            with self.lock:
                self.greet_s.append(time.monotonic() - t)
        return c

    def login(self, c, u):
        a = cmd(c, f"USER {u.name}")
        b = cmd(c, f"PASS {u.password}")
        if not a.startswith(b"+OK") or not b.startswith(b"+OK maildrop has "):
            raise RuntimeError(f"login: {a!r} {b!r}")

    def listings(self, c, u):
        """STAT, LIST and UIDL checked against the files; returns uniq -> msn."""
        stat = cmd(c, "STAT")
        if cmd(c, "LIST") != b"+OK %d messages (%d octets)\r\n" % tuple(map(int, stat.split()[1:3])):
            raise RuntimeError(f"LIST does not match STAT {stat!r}")
        listed = [l.split() for l in c.multi().split(b"\r\n")[:-2]]
        if not cmd(c, "UIDL").startswith(b"+OK"):
            raise RuntimeError("UIDL refused")
        uidl = [l.split() for l in c.multi().split(b"\r\n")[:-2]]
        msn = {}
        for (n1, size), (n2, uniq) in zip(listed, uidl):
            uq = uniq.decode()
            if n1 != n2:
                raise RuntimeError("LIST and UIDL disagree on numbers")
            m = u.by_uniq.get(uq)
            if m is None:
                raise RuntimeError(f"UIDL lists an unknown message {uq}")
            if uq in msn:
                raise RuntimeError(f"UIDL lists {uq} twice")
            if int(size) != m.size:
                raise RuntimeError(f"LIST {int(n1)}: {int(size)} octets, want {m.size}")
            msn[uq] = int(n1)
        if len(listed) != len(uidl) or len(listed) != int(stat.split()[1]):
            raise RuntimeError("STAT, LIST and UIDL counts differ")
        if sum(u.by_uniq[q].size for q in msn) != int(stat.split()[2]):
            raise RuntimeError("STAT octets differ from the files")
        missing = [q for q in u.keep if q not in msn]
        if missing:
            raise RuntimeError(f"{len(missing)} kept messages missing from UIDL, e.g. {missing[0]}")
        return msn

    def retr(self, c, u, msn, uq):
        m = u.by_uniq[uq]
        ok = cmd(c, f"RETR {msn[uq]}")
        if ok != b"+OK %d octets\r\n" % m.size:
            raise RuntimeError(f"RETR {msn[uq]} ({uq}): {ok!r}, want {m.size} octets")
        body = c.multi()
        if body != m.wire:
            raise RuntimeError(f"RETR {msn[uq]} ({uq}): the body differs from the file "
                               f"({len(body)} octets sent, {len(m.wire)} expected)")
        with self.lock:
            self.n_retr += 1
            self.octets += len(body)

    def fetcher(self, label, u, slice_):
        c = self.connect(label)
        try:
            self.login(c, u)
            msn = self.listings(c, u)
            for uq in slice_:
                if uq not in msn:
                    raise RuntimeError(f"my message {uq} is not listed")
                self.retr(c, u, msn, uq)
                d = cmd(c, f"DELE {msn[uq]}")
                if d != b"+OK message %d deleted\r\n" % msn[uq]:
                    raise RuntimeError(f"DELE {msn[uq]}: {d!r}")
            q = cmd(c, "QUIT")
            if q != b"+OK maildir-pop3d signing off (%d messages deleted)\r\n" % len(slice_):
                raise RuntimeError(f"QUIT: {q!r}")
            for uq in slice_:
                u.fetched[uq] = u.fetched.get(uq, 0) + 1
            with self.lock:
                self.session_s.append(time.monotonic() - c.t0)
        finally:
            c.close()

    def reader(self, label, u, picks):
        c = self.connect(label)
        try:
            self.login(c, u)
            msn = self.listings(c, u)
            for uq in picks:
                self.retr(c, u, msn, uq)
            q = cmd(c, "QUIT")
            if q != b"+OK maildir-pop3d signing off (0 messages deleted)\r\n":
                raise RuntimeError(f"QUIT: {q!r}")
            with self.lock:
                self.session_s.append(time.monotonic() - c.t0)
        finally:
            c.close()

    def guarded(self, label, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # every failure is a test error, with its session named
            with self.lock:
                self.err(label, f"{type(e).__name__}: {e}")

    def warm(self, u):
        c = self.connect(f"warm/{u.name}")
        try:
            self.login(c, u)
            self.listings(c, u)
            if not cmd(c, "QUIT").startswith(b"+OK"):
                raise RuntimeError("QUIT refused")
        finally:
            c.close()

    def main(self, sessions, idle, per):
        # 0. one session per user first, as on a live server: the size caches exist
        for u in self.users:
            self.guarded(f"warm/{u.name}", self.warm, u)
        t0 = time.monotonic()
        # 1. idle connections, half of them logged in
        idle_conns = []

        def open_idle(i):
            c = self.connect(f"idle{i}")
            if i % 2:
                self.login(c, self.users[i % len(self.users)])
            idle_conns.append((i, c))

        all_at_once([(self.guarded, f"idle{i}", open_idle, i) for i in range(idle)])
        t1 = time.monotonic()
        # 2. the working sessions, all at once
        rnd = random.Random(1939)
        jobs = []
        per_user = [[] for _ in self.users]
        for k in range(sessions):
            per_user[k % len(self.users)].append(k)
        for ui, ks in enumerate(per_user):
            u = self.users[ui]
            fetchers = ks[: len(ks) // 2]
            readers = ks[len(ks) // 2:]
            if len(u.fetch) < len(fetchers) * per:
                raise SystemExit(f"user {u.name}: {len(u.fetch)} messages to fetch, "
                                 f"{len(fetchers)} fetchers want {per} each")
            for j, k in enumerate(fetchers):
                jobs.append((self.guarded, f"s{k}/{u.name}/fetch",
                             self.fetcher, f"s{k}", u, u.fetch[j * per:(j + 1) * per]))
            for k in readers:
                jobs.append((self.guarded, f"s{k}/{u.name}/read",
                             self.reader, f"s{k}", u, rnd.sample(u.keep, per)))
        all_at_once(jobs)
        t2 = time.monotonic()
        # 3. the idle ones are still there and answer
        alive = 0
        for i, c in idle_conns:
            try:
                q = cmd(c, "QUIT")
                if q.startswith(b"+OK"):
                    alive += 1
                else:
                    self.err(f"idle{i}", f"QUIT: {q!r}")
            except Exception as e:
                self.err(f"idle{i}", f"{type(e).__name__}: {e}")
            c.close()
        if alive != idle:
            self.err("idle", f"{alive} of {idle} idle connections answered QUIT")
        t3 = time.monotonic()
        print(f"load: {idle} idle connections opened in {t1 - t0:.1f} s; {sessions} sessions "
              f"({self.n_retr} RETR, {self.octets} octets) in {t2 - t1:.1f} s; "
              f"{alive} idle QUIT in {t3 - t2:.1f} s")

        def pct(xs):
            xs = sorted(xs) or [0]
            return "/".join(f"{xs[min(len(xs) - 1, int(p * len(xs)))]:.1f}" for p in (0.5, 0.9, 1.0))
        print(f"load: seconds to greeting {pct(self.greet_s)}, per session {pct(self.session_s)} "
              "(median/90th percentile/max)")

    def check_maildirs(self):
        for u in self.users:
            now = {}
            for sub in ("new", "cur"):
                for name in os.listdir(os.path.join(u.dir, sub)):
                    with open(os.path.join(u.dir, sub, name), "rb") as f:
                        now.setdefault(name.split(":", 1)[0], []).append((f"{sub}/{name}", f.read()))
            lost = [q for q in u.keep if q not in now]
            dup = [q for q, fs in now.items() if len(fs) > 1]
            left = [q for q in u.fetch if q in now]
            unknown = [q for q in now if q not in u.by_uniq]
            changed = [q for q, fs in now.items() if q in u.by_uniq and fs[0][1] != u.by_uniq[q].data]
            fetched_twice = [q for q, n in u.fetched.items() if n != 1]
            never = [q for q in u.fetch if q not in u.fetched]
            tmp = os.listdir(os.path.join(u.dir, "tmp"))
            for what, lst in (("kept messages lost", lost), ("messages twice", dup),
                              ("fetched messages still there", left), ("unknown files", unknown),
                              ("messages with changed bytes", changed),
                              ("messages fetched more than once", fetched_twice),
                              ("messages never fetched", never), ("files in tmp/", tmp)):
                if lst:
                    self.err(u.name, f"{len(lst)} {what}, e.g. {lst[0]}")
            print(f"maildir {u.name}: {len(now)} messages left of {len(u.msgs)}, "
                  f"{sum(u.fetched.values())} fetched and deleted")


def cmd_run(args):
    host, port = args[0], int(args[1])
    users = [User(args[i + 1]) for i, a in enumerate(args) if a == "--user"]

    def opt(name, default):
        return int(args[args.index(name) + 1]) if name in args else default

    sessions, idle = opt("--sessions", 200), opt("--idle", 100)
    per, limit = opt("--per-session", 20), opt("--limit", 150)
    run = Run(host, port, users, 60)
    # Every socket operation times out after 60 s, so the run ends; --limit bounds it too.
    t = threading.Thread(target=run.main, args=(sessions, idle, per), daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        run.err("run", f"not finished within {limit} s")
    run.check_maildirs()
    for e in run.errors[:30]:
        print("FAIL: " + e)
    if len(run.errors) > 30:
        print(f"FAIL: ... and {len(run.errors) - 30} more")
    return 1 if run.errors else 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("mkmaildir", "run"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "mkmaildir":
        cmd_mkmaildir(sys.argv[2:])
        return 0
    return cmd_run(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
