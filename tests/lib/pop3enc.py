#!/usr/bin/env python3
"""An independent model of what RFC 1939 says a message looks like on the wire.

  pop3enc.py size FILE        the octet count LIST/STAT must report
  pop3enc.py wire FILE        what RETR must send after its +OK line (ends in .CRLF)
  pop3enc.py top FILE N       what TOP n N must send after its +OK line
  pop3enc.py unstuff          stdin: a dot-terminated body; stdout: it unstuffed, without the final dot
"""
import sys


def lines_of(data):
    parts = data.split(b"\n")
    last = parts.pop()
    lines = [p[:-1] if p.endswith(b"\r") else p for p in parts]
    if last:
        lines.append(last[:-1] if last.endswith(b"\r") else last)
    return lines


def wire(lines):
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines) + b".\r\n"


def main():
    out = sys.stdout.buffer
    if sys.argv[1] == "unstuff":
        data = sys.stdin.buffer.read()
        assert data.endswith(b"\r\n.\r\n") or data == b".\r\n", "no terminating dot line"
        body = data[:-3]
        res = []
        for l in body.split(b"\r\n")[:-1]:
            res.append(l[1:] if l.startswith(b".") else l)
        out.write(b"".join(l + b"\r\n" for l in res))
        return
    data = open(sys.argv[2], "rb").read()
    lines = lines_of(data)
    if sys.argv[1] == "size":
        print(sum(len(l) + 2 for l in lines))
    elif sys.argv[1] == "wire":
        out.write(wire(lines))
    elif sys.argv[1] == "top":
        n = int(sys.argv[3])
        try:
            blank = lines.index(b"")
            sel = lines[: blank + 1 + n]
        except ValueError:
            sel = lines
        out.write(wire(sel))


if __name__ == "__main__":
    main()
