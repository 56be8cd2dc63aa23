#!/usr/bin/env python3
"""Builds a benchmark Maildir (for tests/bench/run; not a test).

  mkmaildir.py DIR COUNT [--min 1024] [--max 8192] [--sub cur] [--seed 1]
  mkmaildir.py DIR --big MIB       one message of MIB MiB in cur/
  mkmaildir.py DIR --dovecot-uidlist FILE
                                   FILE gets the dovecot-uidlist (version 3) Dovecot would
                                   write for the messages in DIR: one line per message, UIDs
                                   in Dovecot's order (time, microseconds, name), a W field

Messages are plain-text mail with LF line ends, as delivery agents store them: a
header, a blank line, lines of 20-78 characters, some starting with '.' (so RETR has
dot-stuffing to do); sizes are uniform between --min and --max octets.  Names follow
the Maildir rules (time.MusecPpidQn.host) without ,S= or ,W= fields, so a server has to
find the sizes itself; files in cur/ carry ":2,S" (seen), the state a POP3 box is in
once a client has fetched but kept its mail.  Deterministic for a given seed.
"""
import base64
import os
import random
import sys

WORDS = ("the of and to in is you that it he was for on are as with his they at be this "
         "from have or by one had not but what all were when we there can an your which "
         "their said if do will each about how up out them then she many some so these "
         "would other into has more her two like him see time could no make than first "
         "been its who now people my made over did down only way find use may water long "
         "little very after words called just where most know").split()


_POOL = []


def body_lines(rng, want):
    """Lines of text totalling at least want octets, from a pool made once (fast)."""
    if not _POOL:
        prng = random.Random(7)
        for _ in range(4096):
            line = " ".join(prng.choice(WORDS) for _ in range(prng.randint(5, 15)))[:78]
            if prng.random() < 0.02:
                line = "." + line
            _POOL.append(line)
    out = []
    n = 0
    while n < want:
        line = _POOL[rng.getrandbits(12)]
        out.append(line)
        n += len(line) + 1
    return out


def message(rng, i, size):
    head = [
        f"Return-Path: <sender{i % 97}@example.org>",
        f"Received: from mx.example.org by bench.example.net with ESMTP id {i:08x}",
        f"From: Sender {i % 97} <sender{i % 97}@example.org>",
        "To: bench@example.net",
        f"Subject: benchmark message {i}",
        f"Message-ID: <{i}.{rng.getrandbits(32):08x}@example.org>",
        "Date: Tue, 14 Nov 2023 22:13:20 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    text = "\n".join(head) + "\n\n"
    need = size - len(text)
    if need > 0:
        text += "\n".join(body_lines(rng, need)) + "\n"
    data = text.encode("ascii")
    if len(data) > size:
        # Cut at a line end so every message ends with LF.
        cut = data.rfind(b"\n", 0, size)
        data = data[: cut + 1] if cut > len(text) // 2 else data
    return data


def dovecot_uidlist(d, path):
    """Version 3, as maildir-uidlist.c writes it: header, then "<uid> W<vsize> :<base>"."""
    names = []
    for sub in ("new", "cur"):
        for n in os.listdir(os.path.join(d, sub)):
            if not n.startswith("."):
                names.append((n.split(":")[0], os.path.getsize(os.path.join(d, sub, n))))

    def key(item):
        base = item[0]
        secs = base.split(".")[0]
        usec = 0
        uniq = base.split(".")[1] if "." in base else ""
        if "M" in uniq:
            digits = uniq[uniq.index("M") + 1:]
            num = ""
            for ch in digits:
                if not ch.isdigit():
                    break
                num += ch
            usec = int(num or 0)
        return (int(secs) if secs.isdigit() else 0, usec, base)

    names.sort(key=key)
    with open(path, "w") as f:
        f.write(f"3 V1700000000 N{len(names) + 1} G0123456789abcdef0123456789abcdef\n")
        for uid, (base, size) in enumerate(names, 1):
            f.write(f"{uid} W{size + size // 40} :{base}\n")
    return 0


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    d = args.pop(0)
    if args[:1] == ["--dovecot-uidlist"] and len(args) == 2:
        return dovecot_uidlist(d, args[1])
    opts = {"--min": "1024", "--max": "8192", "--sub": "cur", "--seed": "1", "--big": None}
    count = None
    while args:
        a = args.pop(0)
        if a in opts:
            opts[a] = args.pop(0)
        else:
            count = int(a)
    for s in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(d, s), exist_ok=True)
    rng = random.Random(int(opts["--seed"]))
    t0 = 1700000000
    if opts["--big"]:
        # What a 100 MiB message is in practice: an attachment in base64, 76-octet lines.
        want = int(opts["--big"]) * 1024 * 1024
        name = os.path.join(d, "cur", f"{t0}.M1P1Q1.bench:2,S")
        with open(name, "wb") as f:
            f.write(message(rng, 0, 600)[:-1].replace(
                b"text/plain; charset=us-ascii", b'multipart/mixed; boundary="b"'))
            f.write(b'\n--b\nContent-Type: application/octet-stream\n'
                    b'Content-Transfer-Encoding: base64\n\n')
            raw = rng.randbytes(57 * 16384)
            chunk = b"".join(base64.b64encode(raw[i:i + 57]) + b"\n" for i in range(0, len(raw), 57))
            end = b"\n--b--\n"
            while f.tell() + len(chunk) + len(end) <= want:
                f.write(chunk)
            left = want - f.tell() - len(end)
            f.write(chunk[:left - left % 77] + b"=" * (left % 77 - 1 if left % 77 else 0)
                    + (b"\n" if left % 77 else b"") + end)
        return 0
    lo, hi = int(opts["--min"]), int(opts["--max"])
    sub = opts["--sub"]
    info = ":2,S" if sub == "cur" else ""
    for i in range(count):
        size = rng.randint(lo, hi)
        # A delivery every ~7 s, several per second now and then, as a busy box gets them.
        t = t0 + i * 7 - (i % 5)
        name = f"{t}.M{rng.randint(0, 999999)}P{1000 + i % 30000}Q{i}.bench{info}"
        fd = os.open(os.path.join(d, sub, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, message(rng, i, size))
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
