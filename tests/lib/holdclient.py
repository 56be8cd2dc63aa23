#!/usr/bin/env python3
"""A POP3 client that holds its session open and acts on commands, one per line on stdin,
so that a test can inspect the live server processes between steps (tests/confinement.bats).

    holdclient.py PORT ROOTPID USER PASSWORD [stls]

With stls, STLS follows the greeting and everything after it goes through TLS (the test's
self-signed certificate is not verified).

Prints "greeting: ...", then "tree: PID..." (every descendant of ROOTPID, the launcher), and
for each line read from stdin:
    tree            "tree: PID..." again
    login           USER/PASS: "login: REPLY", then "tree: ..."
    send TEXT       sends TEXT as one command line: "reply: REPLY"
    quit            QUIT: "quit: REPLY", and exits
Each output line is flushed at once.  EOF on stdin closes the connection without QUIT.
"""
import socket
import ssl
import sys


def descendants(root):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%s/task/%s/children" % (p, p)) as f:
                kids = f.read().split()
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def main():
    port, root, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    stls = len(sys.argv) > 5 and sys.argv[5] == "stls"

    def say(*a):
        print(*a, flush=True)

    def line():
        return f.readline().decode("latin-1").rstrip("\r\n")

    def cmd(c):
        s.sendall(c.encode("latin-1") + b"\r\n")
        return line()

    say("greeting:", line())
    if stls:
        say("stls:", cmd("STLS"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
        f = s.makefile("rb")
    say("tree:", " ".join(descendants(root)))
    for req in sys.stdin:
        req = req.rstrip("\n")
        if req == "tree":
            say("tree:", " ".join(descendants(root)))
        elif req == "login":
            r = cmd("USER " + user)
            if r.startswith("+OK"):
                r = cmd("PASS " + password)
            say("login:", r)
            say("tree:", " ".join(descendants(root)))
        elif req.startswith("send "):
            say("reply:", cmd(req[5:]))
        elif req == "quit":
            say("quit:", cmd("QUIT"))
            return
    s.close()


if __name__ == "__main__":
    main()
