#!/usr/bin/env python3
"""Drivers of tests/neighbours.bats (no privileges of its own; the deliverer runs as the mailbox
owner): POP3 sessions of maildir-pop3d beside real neighbours on the same Maildir, with the
bookkeeping that says whether any message was lost, changed or retrieved twice without a reason.

  neighbours.py messages DIR N           N test messages DIR/NNNN.eml (unique Message-IDs; dot
                                         lines, no final newline, bigger bodies)
  neighbours.py deliver DIR LDACONF RC   as the mailbox owner: every DIR/*.eml in turn, odd ones
                                         through dovecot-lda -c LDACONF, even ones through
                                         procmail -m RC, a pause of 20 ms between; DIR/delivered
                                         gets "NNNN agent" per success, DIR/done at the end
  neighbours.py kills POP3PORT SSAPID USER PASSWORD DIR SEED
                                         sessions while the deliverer runs, then until the
                                         maildrop is empty: RETR everything, DELE it, QUIT; some
                                         sessions are SIGKILLed (by the pid of their serving
                                         process, a child of systemd-socket-activate SSAPID)
                                         after RETR, after DELE, or right after sending QUIT;
                                         some drop the connection
  neighbours.py imap POP3PORT IMAPPORT USER PASSWORD DIR MAILDIR UID GID SEED
                                         Dovecot IMAP changes flags and expunges, and new mail
                                         arrives in new/ (Dovecot moves it to cur/), while POP3
                                         sessions retrieve everything and delete one message each

Both drivers print their counts and every violation, and exit 1 on any violation.
"""
import imaplib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only in distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pop3client import Conn  # noqa: E402

MID_RE = re.compile(rb"Message-ID: <([^>]*)>", re.I)


def wire_form(data):
    """A stored message as POP3 sends it (before dot-stuffing): CRLF line ends, CRLF added
    after a last line without one."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    return data.replace(b"\n", b"\r\n")


def mid_of(data):
    m = MID_RE.search(data)
    return m.group(1).decode() if m else None


# ---- messages and the deliverer ------------------------------------------------------------

def messages(d, n):
    os.makedirs(d, exist_ok=True)
    for i in range(1, n + 1):
        head = ("From: nb%d@example.org\nTo: alice@example.org\nSubject: neighbour %d\n"
                "Message-ID: <nb%04d@neighbours.example>\n\n" % (i, i, i)).encode()
        k = i % 5
        if k == 0:
            b = b"plain %d\n" % i
        elif k == 1:
            b = b".\n..\n.dot %d\nend\n" % i
        elif k == 2:
            b = b"no final newline %d" % i
        elif k == 3:
            b = b"".join(b"line %04d of message %d\n" % (j, i) for j in range(300))
        else:
            b = b"8bit caf\xe9 %d\n.\n" % i
        with open(os.path.join(d, "%04d.eml" % i), "wb") as f:
            f.write(head + b)


def deliver(d, ldaconf, rcfile):
    names = sorted(n for n in os.listdir(d) if n.endswith(".eml"))
    with open(os.path.join(d, "delivered"), "a") as log:
        for n in names:
            i = int(n[:4])
            if i % 2:
                agent = "dovecot-lda"
                argv = ["/usr/lib/dovecot/dovecot-lda", "-c", ldaconf, "-f", "nb@example.org"]
            else:
                agent = "procmail"
                argv = ["procmail", "-m", rcfile]
            with open(os.path.join(d, n), "rb") as f:
                r = subprocess.run(argv, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if r.returncode == 0:
                log.write("%04d %s\n" % (i, agent))
            else:
                log.write("%04d %s FAILED %d %s\n" % (i, agent, r.returncode,
                                                      r.stderr.decode("latin-1").strip()[:200]))
            log.flush()
            time.sleep(0.02)
    open(os.path.join(d, "done"), "w").close()


def originals(d, raw=False):
    """Message-ID -> the message as POP3 must send it (or, with raw, as stored)."""
    out = {}
    for n in os.listdir(d):
        if n.endswith(".eml"):
            with open(os.path.join(d, n), "rb") as f:
                data = f.read()
            out[mid_of(data)] = data if raw else wire_form(data)
    return out


# ---- a POP3 session with the wire bytes ----------------------------------------------------

class Pop:
    """One logged-in session through the tests' POP3 client (pop3client.Conn); answers are
    given without their CRLF."""

    def __init__(self, port, user, password):
        self.c = Conn("127.0.0.1", port, timeout=60)
        greet = self.c.line()
        if not greet.startswith(b"+OK"):
            raise RuntimeError("greeting %r" % greet)
        for line in ("USER " + user, "PASS " + password):
            r = self.c.answer(line.encode())
            if not r.startswith(b"+OK"):
                raise RuntimeError("%s: %r" % (line.split()[0], r))

    def listing(self, cmd):
        """msn -> the rest of its line, from LIST or UIDL without an argument."""
        answer = self.c.answer(cmd.upper().encode())
        if not answer.startswith(b"+OK"):
            raise RuntimeError("%s: %r" % (cmd.upper(), answer))
        lines = answer.split(b"\r\n")[1:-2]
        return dict((int(a), b) for a, b in (l.decode().split(" ", 1) for l in lines))

    def retr(self, msn):
        """(+OK line, octets before dot-stuffing, the unstuffed CRLF body), or (-ERR line,)."""
        self.send("RETR %d" % msn)
        resp = self.c.line()[:-2]
        if not resp.startswith(b"+OK"):
            return (resp, None, None)
        lines = self.c.multi().split(b"\r\n")[:-2]
        data = b"".join((l[1:] if l.startswith(b"..") else l) + b"\r\n" for l in lines)
        return (resp, len(data), data)

    def send(self, line):
        self.c.send(line.encode() + b"\r\n")

    def cmd(self, line):
        self.send(line)
        return self.c.line()[:-2]

    def close(self):
        self.c.close()


def serving_pids(ssa):
    """The live (not zombie) children of systemd-socket-activate: one per open session."""
    try:
        with open("/proc/%d/task/%d/children" % (ssa, ssa)) as f:
            pids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    live = []
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    live.append(p)
        except OSError:
            pass
    return live


def kill_all(pids):
    """SIGKILL each pid; one that has just ended by itself (its QUIT done) is not an error."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_idle(ssa):
    """Until the processes of earlier sessions have ended (a dropped session may still be
    finishing), so that the next session's serving process is the only child (5 s at most)."""
    for _ in range(500):
        if not serving_pids(ssa):
            return
        time.sleep(0.01)


# ---- deliveries and kills ------------------------------------------------------------------

def kills(port, ssa, user, password, d, seed):
    rng = random.Random(seed)
    orig = originals(d)
    bad = []
    retrieved = {}          # mid -> [session numbers that retrieved it]
    gone_for_good = {}      # mid -> session whose QUIT +OK deleted it
    why_again = {}          # mid -> reasons it may come again
    again = []              # the reason of each repeated retrieval
    counts = {"sessions": 0, "quit-ok": 0, "killed-after-retr": 0, "killed-after-dele": 0,
              "killed-after-quit-sent": 0, "dropped": 0, "retr": 0, "retr-err": 0}
    done_file = os.path.join(d, "done")
    drained = 0
    while counts["sessions"] < 400:
        finished = os.path.exists(done_file)
        counts["sessions"] += 1
        s = counts["sessions"]
        wait_idle(ssa)
        before = set(serving_pids(ssa))
        pop = Pop(port, user, password)
        pids = [p for p in serving_pids(ssa) if p not in before]
        uidl = pop.listing("uidl")
        sizes = pop.listing("list")
        if finished and not uidl:
            pop.cmd("QUIT")
            break
        # Once the deliverer is done, the last sessions end normally so the maildrop drains.
        kind = "normal" if finished and drained >= 0 and rng.random() < 0.7 else rng.choice(
            ["normal", "normal", "kill-after-retr", "kill-after-dele", "kill-after-quit-sent", "drop"])
        if finished:
            drained += 1
            if drained > 30:
                kind = "normal"
        if kind.startswith("kill") and len(pids) != 1:
            bad.append("session %d: %d serving processes found to kill, not 1" % (s, len(pids)))
        mine = []
        msns = sorted(uidl)
        if kind == "kill-after-retr":
            msns = msns[:max(1, len(msns) // 2)]
        for msn in msns:
            resp, n, data = pop.retr(msn)
            if n is None:
                counts["retr-err"] += 1
                bad.append("session %d: RETR %d answered %r" % (s, msn, resp))
                continue
            counts["retr"] += 1
            mid = mid_of(data)
            want = orig.get(mid)
            if want is None or data != want:
                bad.append("session %d: RETR %d (%s) is not byte-exact" % (s, msn, mid))
            if int(sizes[msn].split()[0]) != n or int(resp.split()[1]) != n:
                bad.append("session %d: message %d: LIST %s, +OK line %r, sent %d" % (
                    s, msn, sizes[msn], resp, n))
            if mid in gone_for_good:
                bad.append("session %d: %s again, after session %d's QUIT +OK deleted it" % (
                    s, mid, gone_for_good[mid]))
            if mid in retrieved:
                # Again: only after the last session that had it ended without +OK to QUIT.
                if why_again.get(mid):
                    again.append(re.sub(r"session \d+ ", "", why_again[mid][-1]))
                else:
                    bad.append("session %d: %s retrieved again without a reason" % (s, mid))
            why_again[mid] = []
            retrieved.setdefault(mid, []).append(s)
            mine.append((msn, mid))
        def end_early(stage, counter):
            """The session ends without QUIT: its messages may be retrieved again."""
            for _, mid in mine:
                why_again.setdefault(mid, []).append("session %d %s %s" % (
                    s, "dropped" if kind == "drop" else "killed", stage))
            if kind == "drop":
                pop.close()
                counts["dropped"] += 1
            else:
                kill_all(pids)
                counts[counter] += 1

        if kind == "kill-after-retr" or kind == "drop" and rng.random() < 0.5:
            end_early("after RETR, before DELE", "killed-after-retr")
            continue
        for msn, mid in mine:
            r = pop.cmd("DELE %d" % msn)
            if not r.startswith(b"+OK"):
                bad.append("session %d: DELE %d answered %r" % (s, msn, r))
        if kind in ("kill-after-dele", "drop"):
            end_early("after DELE, before QUIT", "killed-after-dele")
            continue
        if kind == "kill-after-quit-sent":
            pop.send("QUIT")
            kill_all(pids)
            for _, mid in mine:
                why_again.setdefault(mid, []).append("session %d killed after sending QUIT, before its +OK" % s)
            counts["killed-after-quit-sent"] += 1
            pop.close()
            continue
        r = pop.cmd("QUIT")
        if not r.startswith(b"+OK"):
            bad.append("session %d: QUIT answered %r" % (s, r))
            continue
        counts["quit-ok"] += 1
        for _, mid in mine:
            gone_for_good[mid] = s
    # Reap: every serving process of a killed session is gone before the counts are made.
    delivered = {}
    with open(os.path.join(d, "delivered")) as f:
        for line in f:
            w = line.split()
            if len(w) >= 3 and w[2] == "FAILED":
                bad.append("delivery %s by %s failed: %s" % (w[0], w[1], line.strip()))
            else:
                delivered["nb%s@neighbours.example" % w[0]] = w[1]
    lost = sorted(set(delivered) - set(retrieved))
    dups = {m: v for m, v in retrieved.items() if len(v) > 1}
    agents = {}
    for a in delivered.values():
        agents[a] = agents.get(a, 0) + 1
    print("deliveries: %d (%s)" % (len(delivered), ", ".join("%s %d" % kv for kv in sorted(agents.items()))))
    print("sessions: %d (%s)" % (counts["sessions"], ", ".join(
        "%s %d" % (k, counts[k]) for k in ("quit-ok", "killed-after-retr", "killed-after-dele",
                                           "killed-after-quit-sent", "dropped"))))
    print("retrieved: %d distinct messages in %d RETRs, %d RETR errors" % (
        len(retrieved), counts["retr"], counts["retr-err"]))
    print("lost: %d" % len(lost))
    print("duplicates: %d messages retrieved more than once, %d repeated RETRs" % (
        len(dups), len(again)))
    reasons = {}
    for r in again:
        reasons[r] = reasons.get(r, 0) + 1
    for k, v in sorted(reasons.items()):
        print("  %d after a session %s" % (v, k))
    if len(delivered) != len(orig):
        bad.append("%d of %d messages delivered" % (len(delivered), len(orig)))
    for m in lost:
        bad.append("lost: %s (delivered by %s), never retrieved" % (m, delivered[m]))
    for b in bad:
        print("VIOLATION: " + b)
    return 1 if bad else 0


# ---- Dovecot IMAP on the same Maildir ------------------------------------------------------

def imap(pop_port, imap_port, user, password, d, maildir, uid, gid, seed):
    rng = random.Random(seed)
    orig = originals(d)
    raw = originals(d, raw=True)
    bad = []
    lock = threading.Lock()
    expunging = set()        # mids IMAP was told to expunge (before it answered)
    expunged = set()
    arrived = []             # mids written into new/ during the run
    counts = {"imap-flag-changes": 0, "imap-expunges": 0, "pop3-sessions": 0, "retr": 0,
              "retr-gone": 0, "pop3-deleted": 0, "arrivals": 0}
    stop = threading.Event()
    late = sorted(m for m in orig if int(m[2:6]) > 30)

    def imap_side():
        try:
            c = imaplib.IMAP4("127.0.0.1", imap_port)
            c.login(user, password)
            c.select("INBOX")
            rounds = 0
            while rounds < 120:
                rounds += 1
                typ, data = c.search(None, "ALL")
                seqs = data[0].split()
                if not seqs:
                    c.noop()
                    time.sleep(0.02)
                    continue
                seq = rng.choice(seqs)
                op = rng.random()
                if op < 0.8:
                    flag = rng.choice(["\\Flagged", "\\Seen", "\\Answered", "$Label1"])
                    sign = rng.choice("+-")
                    c.store(seq, sign + "FLAGS", "(%s)" % flag)
                    counts["imap-flag-changes"] += 1
                elif counts["imap-expunges"] < 6:
                    typ, data = c.fetch(seq, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                    mid = mid_of(data[0][1]) if data and isinstance(data[0], tuple) else None
                    if mid:
                        with lock:
                            expunging.add(mid)
                        c.store(seq, "+FLAGS", "(\\Deleted)")
                        c.expunge()
                        with lock:
                            expunged.add(mid)
                        counts["imap-expunges"] += 1
                # New mail arrives now and then; IMAP's next sync moves it to cur/.
                if rounds % 12 == 0 and late:
                    mid = late.pop(0)
                    name = "%d.M%dP%d.nbhost" % (time.time(), rng.randrange(1000000), 900 + rounds)
                    tmp = os.path.join(maildir, "tmp", name)
                    with open(tmp, "wb") as f:
                        f.write(raw[mid])
                    os.chown(tmp, uid, gid)
                    os.rename(tmp, os.path.join(maildir, "new", name))
                    with lock:
                        arrived.append(mid)
                    counts["arrivals"] += 1
                c.noop()
                time.sleep(0.02)
            c.logout()
        except Exception as e:    # reported, not raised: the POP3 side must stop too
            bad.append("IMAP side failed: %r" % (e,))
        finally:
            stop.set()

    t = threading.Thread(target=imap_side)
    t.start()
    uidl_of = {}
    deleted = set()
    s = 0
    while not stop.is_set() or s < 3:
        s += 1
        pop = Pop(pop_port, user, password)
        uidl = pop.listing("uidl")
        sizes = pop.listing("list")
        got = []
        for msn in sorted(uidl):
            resp, n, data = pop.retr(msn)
            if n is None:
                # Only a message IMAP expunged may be gone.
                counts["retr-gone"] += 1
                got.append((msn, None))
                continue
            counts["retr"] += 1
            mid = mid_of(data)
            if orig.get(mid) != data:
                bad.append("POP3 session %d: RETR %d (%s) is not byte-exact" % (s, msn, mid))
            if int(sizes[msn].split()[0]) != n:
                bad.append("POP3 session %d: LIST %d says %s, RETR sent %d" % (s, msn, sizes[msn], n))
            if mid in deleted:
                bad.append("POP3 session %d: %s is back after POP3 deleted it" % (s, mid))
            u = uidl[msn]
            if uidl_of.setdefault(mid, u) != u:
                bad.append("POP3 session %d: UIDL of %s changed from %s to %s" % (s, mid, uidl_of[mid], u))
            got.append((msn, mid))
        with lock:
            gone_ok = set(expunging)
        # A message that RETR could not open must be one IMAP was told to expunge; it is
        # known by its UIDL from an earlier session.
        missing = [msn for msn, mid in got if mid is None]
        if missing:
            by_uidl = {u: m for m, u in uidl_of.items()}
            for msn in missing:
                m = by_uidl.get(uidl[msn])
                if m is None and gone_ok - set(uidl_of):
                    continue    # new in this session and already expunged by IMAP
                if m not in gone_ok:
                    bad.append("POP3 session %d: RETR %d (%s) failed, but IMAP did not expunge it" % (
                        s, msn, m))
        choice = [(msn, mid) for msn, mid in got if mid is not None]
        victim = None
        if choice and rng.random() < 0.6:
            victim = rng.choice(choice)
            r = pop.cmd("DELE %d" % victim[0])
            if not r.startswith(b"+OK"):
                bad.append("POP3 session %d: DELE answered %r" % (s, r))
        r = pop.cmd("QUIT")
        if not r.startswith(b"+OK"):
            bad.append("POP3 session %d: QUIT answered %r" % (s, r))
        elif victim:
            deleted.add(victim[1])
            counts["pop3-deleted"] += 1
        counts["pop3-sessions"] += 1
        if s > 200:
            bad.append("POP3 side: more than 200 sessions, the IMAP side never finished")
            stop.set()
    t.join()
    # Settled: what each of IMAP, POP3 and the file system sees now.
    delivered = set(m for m in orig if int(m[2:6]) <= 30) | set(arrived)
    expect = delivered - expunged - deleted
    c = imaplib.IMAP4("127.0.0.1", imap_port)
    c.login(user, password)
    c.select("INBOX")
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])") if expect else ("OK", [])
    imap_view = sorted(mid_of(x[1]) for x in data if isinstance(x, tuple))
    c.logout()
    pop = Pop(pop_port, user, password)
    pop_view = []
    for msn in sorted(pop.listing("uidl")):
        resp, n, body = pop.retr(msn)
        if body is not None and orig.get(mid_of(body)) != body:
            bad.append("final POP3 session: RETR %d is not byte-exact" % msn)
        pop_view.append(mid_of(body) if body else None)
    pop.cmd("QUIT")
    files = []
    for sub in ("new", "cur"):
        for n in os.listdir(os.path.join(maildir, sub)):
            with open(os.path.join(maildir, sub, n), "rb") as f:
                files.append(mid_of(f.read()))
    for name, view in (("IMAP", imap_view), ("POP3", sorted(x for x in pop_view if x)),
                       ("Maildir files", sorted(files))):
        if view != sorted(expect):
            bad.append("%s sees %d messages, expected %d: missing %s, extra or twice %s" % (
                name, len(view), len(expect), sorted(expect - set(view)),
                sorted(set(m for m in view if view.count(m) > 1 or m not in expect))))
    print("IMAP: %d flag changes, %d expunges; %d messages arrived in new/ during the run" % (
        counts["imap-flag-changes"], counts["imap-expunges"], counts["arrivals"]))
    print("POP3: %d sessions, %d RETRs byte-exact, %d RETRs of a message IMAP had expunged, "
          "%d messages deleted" % (counts["pop3-sessions"], counts["retr"], counts["retr-gone"],
                                   counts["pop3-deleted"]))
    print("end: %d messages expected, IMAP sees %d, POP3 %d, files %d; UIDLs stable for %d messages" % (
        len(expect), len(imap_view), len(pop_view), len(files), len(uidl_of)))
    for b in bad:
        print("VIOLATION: " + b)
    return 1 if bad else 0


def main():
    cmd = sys.argv[1]
    a = sys.argv[2:]
    if cmd == "messages":
        messages(a[0], int(a[1]))
        return 0
    if cmd == "deliver":
        deliver(*a[:3])
        return 0
    if cmd == "kills":
        return kills(int(a[0]), int(a[1]), a[2], a[3], a[4], int(a[5]))
    if cmd == "imap":
        return imap(int(a[0]), int(a[1]), a[2], a[3], a[4], a[5], int(a[6]), int(a[7]), int(a[8]))
    print("neighbours.py: unknown command %s" % cmd, file=sys.stderr)
    return 64


sys.exit(main())
