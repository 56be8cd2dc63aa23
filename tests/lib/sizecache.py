#!/usr/bin/env python3
"""An independent model of maildir-pop3d's size cache file (src/session/sizecache.c), for tests.

  sizecache.py check FILE      exit 0 and print the entries ("key ino st_size mtime size"
                               and " UIDL" when one is recorded, one a line) when FILE is
                               a valid cache, else exit 1 with the reason on stderr
  sizecache.py retrailer FILE  rewrite FILE's trailer ("end COUNT CHECKSUM") to match the
                               lines above it, whatever they hold: for tests that forge a
                               cache the server must still not trust blindly

The file: "maildir-pop3d size cache v3\\n" (or v2, without UIDLs), lines
"key ino st_size mtime_ns size[ uidl]\\n" (uidl: 1-70 octets of 0x21-0x7E, the UIDL
answered when it is not the one of the name),
then "end COUNT CHECKSUM\\n" where CHECKSUM is 16 hex digits of FNV-1a's 64-bit step over
8-octet little-endian words (each followed by h ^= h >> 32), then over the last octets one
by one, from the basis 0xcbf29ce484222325, over everything before the trailer.
"""
import re
import sys

MAGIC = b"maildir-pop3d size cache v3\n"
MAGIC_V2 = b"maildir-pop3d size cache v2\n"
PRIME = 0x100000001B3
MASK = (1 << 64) - 1


def checksum(data):
    h = 0xCBF29CE484222325
    n = len(data) - len(data) % 8
    for i in range(0, n, 8):
        h ^= int.from_bytes(data[i:i + 8], "little")
        h = (h * PRIME) & MASK
        h ^= h >> 32
    for b in data[n:]:
        h ^= b
        h = (h * PRIME) & MASK
    return h


def split(data):
    """(body, trailer) where body ends with a newline and trailer is the last line."""
    if not data.endswith(b"\n"):
        raise ValueError("no final newline")
    cut = data.rstrip(b"\n").rfind(b"\n") + 1
    return data[:cut], data[cut:]


def check(path):
    data = open(path, "rb").read()
    v3 = data.startswith(MAGIC)
    if not v3 and not data.startswith(MAGIC_V2):
        raise ValueError("bad magic")
    body, trailer = split(data)
    m = re.fullmatch(rb"end (\d+) ([0-9a-f]{16})\n", trailer)
    if not m:
        raise ValueError("bad trailer")
    if int(m.group(2), 16) != checksum(body):
        raise ValueError("bad checksum")
    lines = body[len(MAGIC):].split(b"\n")[:-1]
    if len(lines) != int(m.group(1)):
        raise ValueError("bad count")
    for line in lines:
        if not re.fullmatch(rb"[^ \n\0]+ \d+ \d+ \d+ \d+" + (rb"( [!-~]{1,70})?" if v3 else b""), line):
            raise ValueError(f"bad entry: {line!r}")
    return lines


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "retrailer"):
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[2]
    if sys.argv[1] == "check":
        try:
            lines = check(path)
        except (OSError, ValueError) as e:
            print(f"invalid cache: {e}", file=sys.stderr)
            return 1
        for line in lines:
            sys.stdout.buffer.write(line + b"\n")
        return 0
    data = open(path, "rb").read()
    body, _ = split(data)
    count = body.count(b"\n") - (1 if body.startswith(MAGIC) or body.startswith(MAGIC_V2) else 0)
    with open(path, "wb") as f:
        f.write(body + b"end %d %016x\n" % (count, checksum(body)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
