#!/usr/bin/env python3
"""A TCP client that sends exact octets in exact pieces, for the PROXY protocol suite.

  rawclient.py HOST PORT STEP...

Steps, run in order:
  send:TEXT        TEXT with backslash escapes (\\r \\n \\x00 ...) in one send() with
                   TCP_NODELAY, so that separate sends leave as separate segments
  sleep:SECONDS    wait
  silent:SECONDS   nothing may arrive for SECONDS: prints "silent", or "got: ..." and
                   goes on
  line             read one line, print "< LINE" (CRLF removed; "[no CRLF]" otherwise)
  rest             read until the server closes: each line as "< LINE", then "closed"

Output, one line per event; "closed" when the server closed the connection (also when a
"line" step meets the end), "reset" on a connection reset.  Every read has a 15 s
timeout ("timeout" is printed and the client exits 1).

With RAWCLIENT_SOURCE set, the connection is made from that local address (a client of the
scale-out suites, which have several).
"""
import os
import socket
import sys
import time

TIMEOUT = 15


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def show(line):
    if line.endswith(b"\r\n"):
        text = line[:-2].decode("latin-1")
    else:
        text = line.rstrip(b"\n").decode("latin-1") + "  [no CRLF]"
    print("< " + text, flush=True)


def main():
    host, port, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(TIMEOUT)
    if os.environ.get("RAWCLIENT_SOURCE"):
        s.bind((os.environ["RAWCLIENT_SOURCE"], 0))
    s.connect((host, port))
    buf = b""
    closed = False

    def more():
        nonlocal buf, closed
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
            print("reset")
        if not chunk:
            closed = True
            return False
        buf += chunk
        return True

    try:
        for step in steps:
            verb, _, arg = step.partition(":")
            if verb == "send":
                try:
                    s.sendall(unescape(arg))
                except (BrokenPipeError, ConnectionResetError):
                    print("send failed")
            elif verb == "sleep":
                time.sleep(float(arg))
            elif verb == "silent":
                s.settimeout(float(arg))
                try:
                    got = s.recv(65536)
                    print("got: " + repr(got) if got else "closed")
                    buf += got
                    closed = closed or not got
                except socket.timeout:
                    print("silent")
                s.settimeout(TIMEOUT)
            elif verb == "line":
                while b"\n" not in buf and not closed and more():
                    pass
                if b"\n" in buf:
                    i = buf.index(b"\n") + 1
                    show(buf[:i])
                    buf = buf[i:]
                else:
                    if buf:
                        show(buf)
                        buf = b""
                    print("closed")
            elif verb == "rest":
                while not closed and more():
                    pass
                for line in buf.splitlines(keepends=True):
                    show(line)
                buf = b""
                print("closed")
            else:
                print(f"rawclient: unknown step {step}", file=sys.stderr)
                return 2
            sys.stdout.flush()
    except socket.timeout:
        print("timeout")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
