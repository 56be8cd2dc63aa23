#!/usr/bin/env python3
"""Counts the lines of our C that run as root after the connection is accepted.

  rootlines.py SRCDIR

What is counted: every src/root/*.c file whole (conn.c, launch.c, monitor.c, privdrop.c,
auth_pam.c: the PAM child runs as root too), and main() of src/main.c (it runs after the
options are parsed: finding the connection).  Lines that are blank or hold only a comment are
not counted; preprocessor lines are.  Prints one line per file and then "total N".

Not counted, and said so in the README: helpers shared with the other processes that root
also calls (log.c, deadline.c, lineio.c for one -ERR line, peer.c, proxy_addr_trusted), and the
pre-auth process's steps as root before its change of ids (loading the TLS module and key,
tlsload.c and tls.c's init), which read no client byte.
"""
import glob
import os
import re
import sys


def strip_comments(src):
    out, i, n, quote = [], 0, len(src), None
    while i < n:
        c = src[i]
        if quote is None:
            if src.startswith("/*", i):
                j = src.find("*/", i + 2)
                j = n if j < 0 else j + 2
                out.append("\n" * src.count("\n", i, j))
                i = j
                continue
            if src.startswith("//", i):
                j = src.find("\n", i)
                i = n if j < 0 else j
                continue
            if c in "\"'":
                quote = c
        elif c == "\\":
            out.append(src[i:i + 2])
            i += 2
            continue
        elif c == quote:
            quote = None
        out.append(c)
        i += 1
    return "".join(out)


def count(text):
    return sum(1 for line in strip_comments(text).split("\n") if line.strip())


def main_function(text):
    m = re.search(r"^int\nmain\(int argc, char \*\*argv\)\n\{.*?^\}\n", text, re.S | re.M)
    if m is None:
        sys.exit("rootlines: no main() in src/main.c")
    return m.group(0)


def main():
    src = os.path.join(sys.argv[1], "src")
    total = 0
    for path in sorted(glob.glob(os.path.join(src, "root", "*.c"))):
        n = count(open(path).read())
        print(f"{n:5d} src/root/{os.path.basename(path)}")
        total += n
    n = count(main_function(open(os.path.join(src, "main.c")).read()))
    print(f"{n:5d} src/main.c main()")
    total += n
    shared = [f"{os.path.basename(p)} {count(open(p).read())}"
              for p in sorted(glob.glob(os.path.join(src, "common", "*.c")))
              if os.path.basename(p) in ("log.c", "deadline.c", "lineio.c", "peer.c")]
    print("  not counted, shared helpers root also calls: " + ", ".join(shared))
    print(f"total {total}")


if __name__ == "__main__":
    main()
