#!/usr/bin/env python3
"""The login half of Courier's POP3 server for tests, run as root by systemd-socket-activate
--inetd (tests/lib/peers.bash): greets, answers CAPA, USER and PASS like courierpop3login, and
after a right password drops to the user's ids and execs Courier's own courierpop3d with the
Maildir as its argument, as courierpop3login does once authdaemond said yes. courierpop3d then
answers "+OK logged in." to the PASS and serves the session itself.

Environment: PEERS_COURIER_ROOT (the unpacked courier-pop), PEERS_COURIER_PW (a file whose first
line is the password of every user; the account itself comes from the namespace's passwd),
PEERS_COURIER_LOG (courierpop3d's stderr: its INFO lines). Reads the client byte by byte, so
nothing meant for courierpop3d is consumed before the exec.
"""
import glob
import os
import pwd
import sys

ROOT = os.environ["PEERS_COURIER_ROOT"]
BIN = os.path.join(ROOT, "usr/lib/courier/courier/courierpop3d")


def send(text):
    os.write(1, text.encode() + b"\r\n")


def readline():
    buf = b""
    while len(buf) < 1024:
        c = os.read(0, 1)
        if not c:
            sys.exit(0)
        if c == b"\n":
            return buf.rstrip(b"\r").decode("latin-1")
        buf += c
    sys.exit(0)


def main():
    with open(os.environ["PEERS_COURIER_PW"]) as f:
        password = f.readline().rstrip("\n")
    user = None
    send("+OK Hello there.")
    for _ in range(20):
        line = readline()
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "CAPA":
            send("+OK Here's what I can do:\r\nTOP\r\nUSER\r\nUIDL\r\nPIPELINING\r\nIMPLEMENTATION Courier Mail Server\r\n.")
        elif verb == "USER" and arg:
            user = arg
            send("+OK Password required.")
        elif verb == "PASS" and user is not None:
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                pw = None
            if pw is None or arg != password or pw.pw_uid == 0:
                send("-ERR Login failed.")
                user = None
                continue
            os.initgroups(pw.pw_name, pw.pw_gid)
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            os.chdir(pw.pw_dir)
            log = os.open(os.environ["PEERS_COURIER_LOG"], os.O_WRONLY | os.O_APPEND)
            os.dup2(log, 2)
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": pw.pw_dir,
                "USER": pw.pw_name,
                "AUTHENTICATED": pw.pw_name,
                "TCPREMOTEIP": os.environ.get("REMOTE_ADDR", "127.0.0.1"),
                "LD_LIBRARY_PATH": ":".join([os.path.join(ROOT, "usr/lib")] +
                                            glob.glob(os.path.join(ROOT, "usr/lib/*-linux-gnu"))),
            }
            os.execve(BIN, [BIN, "Maildir"], env)
        elif verb == "QUIT":
            send("+OK Better luck next time.")
            return
        else:
            send("-ERR Invalid command.")


main()
