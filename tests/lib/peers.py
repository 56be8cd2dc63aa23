#!/usr/bin/env python3
"""Test helpers for the takeover and neighbour suites (no privileges of its own): the takeover
corpus, a POP3 "view" of a server (UIDL, LIST and what RETR really sends, per message) and its
comparison between two servers, and runs of the leave-on-server clients fetchmail, getmail6 and
mpop with their own state files.

  peers.py corpus MAILDIR ORIG         ~40 messages into MAILDIR (and a copy of each in ORIG)
  peers.py view PORT USER PASSWORD     one session: UIDL, LIST, STAT, RETR of every message,
                                       QUIT; prints one line per message:
                                       "MSN UIDL LISTSIZE SENTSIZE MESSAGE-ID" and "stat N SIZE"
  peers.py same-view OLD NEW [--other] the UIDL list and order of two views are equal; sizes
                                       too, but where OLD's LIST differs from what OLD sent
                                       (printed as "old size differs: ..."); NEW's LIST equals
                                       what NEW sent (with --other, NEW is another server:
                                       printed as "new size differs: ..." instead)
  peers.py client KIND DIR PORT USER PASSWORD
                                       fetchmail, getmail or mpop, keeping mail on the server,
                                       its state and what it stored under DIR; prints
                                       "KIND fetched N" (the messages stored by this run)
"""
import hashlib
import os
import poplib
import re
import subprocess
import sys

# ---- the corpus ----------------------------------------------------------------------------

T0 = 1700000000


def body(i, kind):
    head = ("From: sender%d@example.org\nTo: alice@example.org\nSubject: takeover %d (%s)\n"
            "Message-ID: <%d.takeover@example.org>\n\n" % (i, i, kind, i)).encode()
    if kind == "plain":
        return head + b"plain body line\nsecond line %d\n" % i
    if kind == "nonl":
        return head + b"the last line has no line end %d" % i
    if kind == "dots":
        return head + b".\n..\n.dot first\n. \nend %d\n" % i
    if kind == "lone-dot-end":
        return head + b"body\n.\n"
    if kind == "big":
        return head + b"".join(b"line %05d of a longer message, %d\n" % (n, i) for n in range(400))
    if kind == "8bit":
        return head + b"caf\xe9 \xff\x80 bytes %d\n" % i
    if kind == "empty-body":
        return head
    raise ValueError(kind)


def crlf_size(data):
    size = len(data) + data.count(b"\n")
    if data and not data.endswith(b"\n"):
        size += 2
    return size


def corpus_messages():
    """(subdir, name, bytes): bursts in one second whose microseconds have different numbers of
    digits, names with ,S= and ,W= (right, and as a delivery agent writes them for a message
    without a final newline: W= without the CRLF the server adds), old-style names without M,
    procmail's style, a long name, seen and flagged mail in cur/."""
    kinds = ["plain", "nonl", "dots", "lone-dot-end", "big", "8bit", "empty-body"]
    out = []
    i = 0

    def add(sub, name_fn, kind):
        nonlocal i
        i += 1
        data = body(i, kind)
        out.append((sub, name_fn(i, data), data))

    # A burst: ten messages in the same second, microseconds 5, 17800, 112000, 999999...
    for us in (112000, 17800, 5, 999999, 400000, 40000, 4000, 400, 40, 123456):
        add("new", lambda n, d, us=us: "%d.M%dP%d.mx1" % (T0 + 100, us, 1000 + n), kinds[us % 7])
    # Dovecot's delivery agent style: ,S=<file size>,W=<CRLF size without the added CRLF>.
    for k, kind in enumerate(["plain", "nonl", "dots", "nonl", "big", "plain", "8bit", "nonl"]):
        add("new", lambda n, d, k=k: "%d.M%dP%d.mx1,S=%d,W=%d" % (
            T0 + 200 + k // 3, 10 ** (k % 6) + k, 2000 + n, len(d), len(d) + d.count(b"\n")), kind)
    # Second burst across new/ and cur/ with flags.
    for k, (sub, flags) in enumerate([("cur", ":2,S"), ("new", ""), ("cur", ":2,"), ("cur", ":2,RS"),
                                      ("new", ""), ("cur", ":2,FS")]):
        add(sub, lambda n, d, k=k, flags=flags: "%d.M%dP%d.mx2%s" % (
            T0 + 300, [9, 90, 900, 9000, 90000, 900000][k], 3000 + n, flags), kinds[k])
    # Old style names (no M field) and procmail's "time.pid_n.host".
    for k in range(4):
        add("new", lambda n, d, k=k: "%d.%d.oldhost" % (T0 + 400 + k, 4000 + n), kinds[(k + 3) % 7])
    for k in range(4):
        add("new", lambda n, d, k=k: "%d.%d_%d.pmhost" % (T0 + 500, 5000, k), kinds[(k + 1) % 7])
    # Names over 70 octets (maildir-pop3d's own UIDL is then a digest).
    for k in range(2):
        add("new", lambda n, d, k=k: "%d.M%dP%d.%s" % (T0 + 600, k, 6000 + n, "h" * 70), kinds[k])
    # Later single deliveries, one without a final newline and a W=.
    for k in range(6):
        kind = ["plain", "nonl", "dots", "8bit", "plain", "nonl"][k]
        add("new", lambda n, d, k=k: "%d.M%dP%d.mx3,S=%d,W=%d" % (
            T0 + 700 + k, k * 11, 7000 + n, len(d), len(d) + d.count(b"\n")), kind)
    return out


def corpus(maildir, orig):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    os.makedirs(orig, exist_ok=True)
    for sub, name, data in corpus_messages():
        with open(os.path.join(maildir, sub, name), "wb") as f:
            f.write(data)
        mid = re.search(rb"Message-ID: <([^>]*)>", data).group(1).decode()
        with open(os.path.join(orig, mid), "wb") as f:
            f.write(data)
        t = int(name.split(".")[0])
        os.utime(os.path.join(maildir, sub, name), (t, t))
    print("corpus %d" % len(corpus_messages()))


# ---- views ---------------------------------------------------------------------------------

def retr_raw(p, msn):
    """RETR and what came on the wire: the +OK line, the octet count before dot-stuffing and
    the unstuffed body."""
    p._putcmd("RETR %d" % msn)
    resp = p._getline()[0]
    if not resp.startswith(b"+OK"):
        raise poplib.error_proto(resp)
    size = 0
    lines = []
    while True:
        line, n = p._getline()
        if line == b".":
            break
        if line.startswith(b".."):
            line = line[1:]
        lines.append(line)
        size += len(line) + 2
    return resp, size, b"".join(l + b"\r\n" for l in lines)


def view(port, user, password):
    p = poplib.POP3("127.0.0.1", int(port), timeout=60)
    p.user(user)
    p.pass_(password)
    count, total = p.stat()
    uidl = dict(l.decode().split(" ", 1) for l in p.uidl()[1])
    sizes = dict(l.decode().split(" ", 1) for l in p.list()[1])
    for msn in range(1, count + 1):
        resp, sent, data = retr_raw(p, msn)
        m = re.search(rb"Message-ID: <([^>]*)>", data)
        mid = m.group(1).decode() if m else "sha256:" + hashlib.sha256(data).hexdigest()[:16]
        print("%d %s %s %d %s" % (msn, uidl[str(msn)], sizes[str(msn)], sent, mid))
    print("stat %d %d" % (count, total))
    p.quit()


def read_view(path):
    msgs, stat = [], None
    with open(path) as f:
        for line in f:
            w = line.split()
            if w[0] == "stat":
                stat = (int(w[1]), int(w[2]))
            else:
                msgs.append({"msn": int(w[0]), "uidl": w[1], "list": int(w[2]), "sent": int(w[3]),
                             "mid": w[4]})
    return msgs, stat


def same_view(old_path, new_path, new_is_other=False):
    old, old_stat = read_view(old_path)
    new, new_stat = read_view(new_path)
    bad = []
    if [m["uidl"] for m in old] != [m["uidl"] for m in new]:
        bad.append("UIDL lists differ:\n  old: %s\n  new: %s" % (
            " ".join(m["uidl"] for m in old), " ".join(m["uidl"] for m in new)))
    if [m["mid"] for m in old] != [m["mid"] for m in new]:
        bad.append("orders differ:\n  old: %s\n  new: %s" % (
            " ".join(m["mid"] for m in old), " ".join(m["mid"] for m in new)))
    for m in new:
        if m["list"] != m["sent"]:
            if new_is_other:
                print("new size differs: %s listed %d, sent %d" % (m["mid"], m["list"], m["sent"]))
            else:
                bad.append("new LIST %d says %d octets, RETR sent %d" % (m["msn"], m["list"], m["sent"]))
    by_mid = {m["mid"]: m for m in new}
    for m in old:
        n = by_mid.get(m["mid"])
        if n is None:
            continue
        if m["list"] != m["sent"]:
            print("old size differs: %s listed %d, sent %d" % (m["mid"], m["list"], m["sent"]))
        elif n["list"] != m["list"] and n["list"] == n["sent"]:
            bad.append("%s: old LIST %d, new LIST %d" % (m["mid"], m["list"], n["list"]))
    if new_stat[1] != sum(m["sent"] for m in new) and not new_is_other:
        bad.append("new STAT total %d is not the sum of what RETR sent (%d)" % (
            new_stat[1], sum(m["sent"] for m in new)))
    for b in bad:
        print(b)
    print("compared %d old, %d new messages" % (len(old), len(new)))
    return 1 if bad else 0


# ---- clients -------------------------------------------------------------------------------

def run(argv, env):
    r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode("latin-1")


def count_files(d):
    return sum(len(files) for _, _, files in os.walk(d))


def client(kind, d, port, user, password):
    os.makedirs(d, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": d, "FETCHMAILHOME": d}
    out = os.path.join(d, "out")
    before = count_files(out) if os.path.isdir(out) else 0
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    if kind == "fetchmail":
        rc_file = os.path.join(d, "fetchmailrc")
        with open(rc_file, "w") as f:
            f.write('set no syslog\nset invisible\n'
                    'poll 127.0.0.1 protocol pop3 port %s auth password uidl\n'
                    '  user "%s" there with password "%s" is "nobody" here\n'
                    "  no rewrite sslproto '' keep\n"
                    '  mda "%s"\n' % (port, user, password, os.path.join(d, "mda")))
        os.chmod(rc_file, 0o600)
        with open(os.path.join(d, "mda"), "w") as f:
            f.write('#!/bin/sh\nexec cat >"$(mktemp %s/new/fm.XXXXXX)"\n' % out)
        os.chmod(os.path.join(d, "mda"), 0o755)
        rc, text = run(["fetchmail", "--nodetach", "-f", rc_file,
                        "--idfile", os.path.join(d, "fetchmail.ids")], env)
        ok = rc in (0, 1)    # 1: no new mail
    elif kind == "getmail":
        # getmail 6.18 loses a SIGCHLD that comes before it waits for its delivery child
        # (getmail6 issue 226) and then hangs for its timeout: a delivery command that takes
        # a moment keeps the child alive until the parent waits.
        gdir = os.path.join(d, "getmail")
        os.makedirs(gdir, exist_ok=True)
        rc_file = os.path.join(d, "getmailrc")
        with open(rc_file, "w") as f:
            f.write("[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = %s\n"
                    "username = %s\npassword = %s\n\n[destination]\ntype = MDA_external\n"
                    "path = /bin/sh\narguments = (\"-c\", \"sleep 0.05; exec cat >$(mktemp %s/new/gm.XXXXXX)\")\n\n"
                    "[options]\nread_all = false\ndelete = false\ndelivered_to = false\n"
                    "received = false\nverbose = 0\n" % (port, user, password, out))
        rc, text = run(["getmail", "--getmaildir=" + gdir, "--rcfile=" + rc_file], env)
        ok = rc == 0
    elif kind == "mpop":
        rc_file = os.path.join(d, "mpoprc")
        with open(rc_file, "w") as f:
            f.write("account default\nhost 127.0.0.1\nport %s\nuser %s\npassword %s\nauth user\n"
                    "tls off\nkeep on\nuidls_file %s\ndelivery maildir %s\n" % (
                        port, user, password, os.path.join(d, "mpop.uidls"), out))
        os.chmod(rc_file, 0o600)
        rc, text = run(["mpop", "-C", rc_file, "-q"], env)
        ok = rc == 0
    else:
        raise ValueError(kind)
    n = count_files(out) - before
    if not ok:
        print("%s failed (exit %d):\n%s" % (kind, rc, text))
        return 1
    print("%s fetched %d" % (kind, n))
    return 0


def main():
    cmd = sys.argv[1]
    if cmd == "corpus":
        corpus(sys.argv[2], sys.argv[3])
        return 0
    if cmd == "view":
        view(*sys.argv[2:5])
        return 0
    if cmd == "same-view":
        return same_view(sys.argv[2], sys.argv[3], sys.argv[4:] == ["--other"])
    if cmd == "client":
        return client(*sys.argv[2:7])
    print("peers.py: unknown command %s" % cmd, file=sys.stderr)
    return 64


sys.exit(main())
