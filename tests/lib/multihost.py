#!/usr/bin/env python3
"""Clients and a delivery agent for tests/multihost.bats: one user's Maildir on a store shared by
several POP3 hosts, used from all of them at once while mail arrives and one host dies.

  multihost.py run CONFIG.json      prints one "key: value" line per count and exits 0 only
                                    when no invariant was broken (each broken one is printed
                                    as "BROKEN: ...")

CONFIG: hosts (addresses; the last one is killed), port, user, password, cafile, maildir (the
store's path as seen here), uid/gid (the owner of delivered files), initial (messages there
before the clients start), deliveries (delivered while they run), sessions (per client
thread), threads (client threads per surviving host), sync (a directory: this program
creates "holding" when a session on the last host has retrieved and deleted messages, then
waits for "killed", which the test creates after killing that host's processes).

Deliveries follow the Maildir rule: written under tmp/ with a unique name, then renamed into
new/. Every message carries its sequence number; its whole content follows from that number,
so each RETR is checked octet for octet. MULTIHOST_DEBUG=1 prints each session's start to stderr.

Invariants checked: in one session no message is shown twice (by UIDL or by sequence
number) and each RETR equals the delivered message with its LIST size; a session that was
killed deleted nothing; at the end every delivered message was either deleted by a session
whose QUIT said +OK or is still in the Maildir exactly once, and a final session retrieves
and deletes all that is left (lost: 0).
"""
import json
import os
import poplib
import random
import socket
import ssl
import sys
import threading
import time

lock = threading.Lock()
broken = []
counts = {"sessions": 0, "sessions_committed": 0, "sessions_killed": 0,
          "sessions_refused_host_down": 0, "deliveries": 0, "messages_retrieved": 0,
          "messages_deleted": 0}
committed_deleted = set()
killed_deleted = set()


def broke(text):
    with lock:
        broken.append(text)


def body(seq):
    """The message with sequence number seq, LF line ends, as delivered."""
    lines = ["From: mta@example.org", "To: alice@example.org", "Subject: message %d" % seq,
             "X-Seq: %d" % seq, ""]
    lines += ["line %d of message %d" % (i, seq) for i in range(seq % 7 + 1)]
    if seq % 3 == 0:
        lines.append(".a line that starts with a dot")
    return ("\n".join(lines) + "\n").encode()


def wire(seq):
    """The same as RETR's lines give it back (CRLF, unstuffed by poplib)."""
    return body(seq).replace(b"\n", b"\r\n")


def seq_of(lines):
    for l in lines:
        if l.startswith(b"X-Seq: "):
            return int(l[7:])
    return None


class Delivery:
    def __init__(self, cfg):
        self.md = cfg["maildir"]
        self.uid, self.gid = cfg["uid"], cfg["gid"]
        self.n = 0

    def deliver(self, seq):
        now = time.time()
        self.n += 1
        name = "%d.M%06dP%dQ%d.mx.example.org" % (int(now), int(now * 1e6) % 1000000, os.getpid(), self.n)
        tmp = os.path.join(self.md, "tmp", name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, body(seq))
        os.fsync(fd)
        os.fchown(fd, self.uid, self.gid)
        os.close(fd)
        os.rename(tmp, os.path.join(self.md, "new", name))
        with lock:
            counts["deliveries"] += 1


def dying(cfg):
    """True once the last host is being killed."""
    return os.path.exists(os.path.join(cfg["sync"], "holding"))


def connect(cfg, host, ctx):
    p = poplib.POP3(host, cfg["port"], timeout=20)
    p.stls(ctx)
    p.user(cfg["user"])
    p.pass_(cfg["password"])
    return p


def session(cfg, host, ctx, rnd, hold=False, sweep=False):
    """One session; returns the sequence numbers retrieved."""
    try:
        p = connect(cfg, host, ctx)
    except (OSError, poplib.error_proto) as e:
        if host == cfg["hosts"][-1] and dying(cfg):
            with lock:
                counts["sessions_refused_host_down"] += 1
            return None
        broke("%s: login failed: %r" % (host, e))
        return None
    with lock:
        counts["sessions"] += 1
    if os.environ.get("MULTIHOST_DEBUG"):
        print("%.3f session on %s%s" % (time.time(), host, " (doomed)" if hold else ""), file=sys.stderr, flush=True)
    seen, deleted = {}, set()
    try:
        return serve(cfg, host, p, rnd, hold, sweep, seen, deleted)
    except (OSError, EOFError, poplib.error_proto) as e:
        # Only the host that is killed may cut a session off.
        if host != cfg["hosts"][-1] or not dying(cfg):
            broke("%s: session failed: %r" % (host, e))
        with lock:
            counts["sessions_killed"] += 1
            killed_deleted.update(deleted)
        return list(seen)


def serve(cfg, host, p, rnd, hold, sweep, seen, deleted):
    sizes = {}
    for l in p.list()[1]:
        msn, size = l.split()
        sizes[int(msn)] = int(size)
    uidls = {}
    for l in p.uidl()[1]:
        msn, uid = l.split()
        uidls[int(msn)] = uid
    if sorted(sizes) != sorted(uidls):
        broke("%s: LIST and UIDL disagree" % host)
    if len(set(uidls.values())) != len(uidls):
        broke("%s: a UIDL shown twice in one session" % host)
    for msn in sorted(sizes):
        try:
            resp, lines, _ = p.retr(msn)
        except poplib.error_proto as e:
            # Deleted by a session on another host since our login: allowed.
            if not e.args[0].startswith(b"-ERR"):
                raise
            continue
        seq = seq_of(lines)
        got = b"".join(l + b"\r\n" for l in lines)
        with lock:
            counts["messages_retrieved"] += 1
        if seq is None or got != wire(seq):
            broke("%s: RETR %d is not a delivered message" % (host, msn))
            continue
        if len(got) != sizes[msn]:
            broke("%s: RETR %d: %d octets, LIST said %d" % (host, msn, len(got), sizes[msn]))
        if seq in seen:
            broke("%s: message %d shown twice in one session (%d and %d)" % (host, seq, seen[seq], msn))
        seen[seq] = msn
        if sweep or hold or rnd.random() < 0.5:
            p.dele(msn)
            deleted.add(seq)
        if hold and len(deleted) >= 3:
            break
    if hold:
        # The host dies now, in the middle of this session.
        with lock:
            counts["deliveries_before_kill"] = counts["deliveries"]
            counts["sessions_before_kill"] = counts["sessions"]
        open(os.path.join(cfg["sync"], "holding"), "w").close()
        for _ in range(600):
            if os.path.exists(os.path.join(cfg["sync"], "killed")):
                break
            time.sleep(0.05)
        p.sock.settimeout(5)
        p.noop()
        broke("%s: the session survived its host" % host)
        return list(seen)
    resp = p.quit()
    if resp.startswith(b"+OK"):
        with lock:
            counts["sessions_committed"] += 1
            counts["messages_deleted"] += len(deleted)
            committed_deleted.update(deleted)
    else:
        broke("%s: QUIT: %r" % (host, resp))
    return list(seen)


def files_by_seq(md):
    out = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(md, sub)):
            if name.startswith("."):
                continue
            with open(os.path.join(md, sub, name), "rb") as f:
                seq = seq_of(f.read().split(b"\n"))
            out.setdefault(seq, []).append(sub + "/" + name)
    return out


def run(cfg):
    ctx = ssl.create_default_context(cafile=cfg["cafile"])
    ctx.check_hostname = False
    md = cfg["maildir"]
    d = Delivery(cfg)
    total = cfg["initial"] + cfg["deliveries"]
    for seq in range(1, cfg["initial"] + 1):
        d.deliver(seq)

    delivering = threading.Event()
    delivering.set()

    def deliverer():
        for seq in range(cfg["initial"] + 1, total + 1):
            d.deliver(seq)
            time.sleep(0.05)
        delivering.clear()

    def client(host, n, seed):
        # At least n sessions, and sessions as long as mail is arriving.
        rnd = random.Random(seed)
        done = 0
        while done < n or delivering.is_set():
            if session(cfg, host, ctx, rnd) is None and host == cfg["hosts"][-1] and dying(cfg):
                return
            done += 1
            time.sleep(rnd.random() * 0.05)

    threads = [threading.Thread(target=deliverer)]
    seed = 1
    for host in cfg["hosts"]:
        for _ in range(cfg["threads"]):
            threads.append(threading.Thread(target=client, args=(host, cfg["sessions"], seed)))
            seed += 1
    def doomed():
        # Half-way through the deliveries, while the other sessions run.
        while counts["deliveries"] < cfg["initial"] + cfg["deliveries"] // 2:
            time.sleep(0.01)
        session(cfg, cfg["hosts"][-1], ctx, random.Random(0), hold=True)

    threads.append(threading.Thread(target=doomed))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Before the sweep: every delivered message deleted by a committed QUIT or still there
    # exactly once.
    files = files_by_seq(md)
    if None in files:
        broke("files that are not delivered messages: %s" % files[None])
    for seq, names in files.items():
        if len(names) > 1:
            broke("message %d is in the Maildir %d times: %s" % (seq, len(names), names))
        if seq in committed_deleted:
            broke("message %d was deleted at a QUIT that said +OK, but is still there" % seq)
    # What the killed session deleted without a QUIT must still be there, unless a committed
    # session deleted it too.
    for seq in killed_deleted - committed_deleted:
        if seq not in files:
            broke("message %d, deleted by the killed session only, is gone" % seq)
    left = len(files)
    lost = [s for s in range(1, total + 1) if s not in files and s not in committed_deleted]

    # The final sweep from the first host: all that is left, once each, then nothing.
    swept = session(cfg, cfg["hosts"][0], ctx, random.Random(0), sweep=True) or []
    if sorted(swept) != sorted(files):
        broke("the final session saw %d messages, the Maildir held %d" % (len(swept), left))
    after = files_by_seq(md)
    if after:
        broke("messages left after the final session: %s" % sorted(after))
    for k in ("sessions", "sessions_committed", "sessions_killed", "sessions_refused_host_down",
              "deliveries", "messages_retrieved", "messages_deleted"):
        print("%s: %d" % (k.replace("_", " "), counts[k]))
    print("delivered while sessions ran: %d" % cfg["deliveries"])
    print("host killed after: %d sessions, %d deliveries" % (counts.get("sessions_before_kill", 0),
                                                           counts.get("deliveries_before_kill", 0)))
    print("left before the final session: %d" % left)
    print("lost: %d" % len(lost))
    for b in broken:
        print("BROKEN: " + b)
    return 0 if not broken and not lost else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "run":
        sys.exit(__doc__)
    with open(sys.argv[2]) as f:
        sys.exit(run(json.load(f)))
