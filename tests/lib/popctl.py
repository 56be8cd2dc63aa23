#!/usr/bin/env python3
"""Drives one or more POP3 sessions from a script, for tests that interleave sessions.

Each session is a maildir-pop3d process on pipes (or a TCP connection).  The
script comes on stdin, one step a line:

  open NAME [ARG...]     start "$MP_SESSION_CMD ARG..." and read its greeting
  connect NAME HOST PORT open a TCP connection instead and read the greeting
  send NAME LINE...      send LINE (CRLF added), read a one-line answer
  multi NAME LINE...     send LINE, read a one-line answer and, if +OK, the
                         dot-terminated body (shown unstuffed)
  raw NAME TEXT          send TEXT with \\r \\n escapes as given, read nothing
  read NAME              read one line
  eof NAME               close our end of the connection, wait for the process
  kill NAME              SIGKILL the process
  wait NAME              read until the server closes; print what came
  sh COMMAND...          run a shell command (test set-up between steps)

Every line received is printed as "NAME< line" (CRLF shown as is stripped
and a missing CRLF is reported).  Bodies are printed as "NAME| line".
"""
import os
import shlex
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only in distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pop3client import Conn  # noqa: E402


def write(name, conn, data):
    try:
        conn.send(data)
    except (BrokenPipeError, ConnectionResetError):
        print(f"{name}! write failed")


def show(name, line, mark="<"):
    if line is None:
        print(f"{name}! closed")
        return None
    text = line.decode("latin-1")
    if text.endswith("\r\n"):
        text = text[:-2]
    else:
        text = text.rstrip("\n") + "  [no CRLF]"
    print(f"{name}{mark} {text}")
    return text


def main():
    sessions = {}
    base = shlex.split(os.environ.get("MP_SESSION_CMD", ""))
    for raw in sys.stdin:
        raw = raw.rstrip("\n")
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        verb, _, rest = raw.partition(" ")
        if verb == "sh":
            subprocess.run(rest, shell=True, check=False)
            continue
        name, _, arg = rest.partition(" ")
        if verb == "open":
            sessions[name] = s = Conn(argv=base + shlex.split(arg))
            show(name, s.line_or_rest())
        elif verb == "connect":
            host, port = arg.split()
            sessions[name] = s = Conn(host, int(port))
            show(name, s.line_or_rest())
        elif verb in ("send", "multi"):
            s = sessions[name]
            write(name, s, arg.encode("latin-1") + b"\r\n")
            first = show(name, s.line_or_rest())
            if verb == "multi" and first and first.startswith("+OK"):
                while True:
                    line = s.line_or_rest()
                    if line is None:
                        print(f"{name}! closed inside a multi-line answer")
                        break
                    if line == b".\r\n":
                        print(f"{name}| .")
                        break
                    if line.startswith(b"."):
                        line = line[1:]
                    show(name, line, "|")
        elif verb == "raw":
            write(name, sessions[name], arg.encode("latin-1").decode("unicode_escape").encode("latin-1"))
        elif verb == "read":
            show(name, sessions[name].line_or_rest())
        elif verb == "eof":
            s = sessions[name]
            s.close_write()
            if s.proc:
                s.proc.wait(timeout=60)
                print(f"{name}! exit {s.proc.returncode}")
        elif verb == "kill":
            s = sessions[name]
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait(timeout=60)
            print(f"{name}! killed")
        elif verb == "wait":
            s = sessions[name]
            while True:
                line = s.line_or_rest()
                if line is None:
                    break
                show(name, line)
            if s.proc:
                s.proc.wait(timeout=60)
                print(f"{name}! exit {s.proc.returncode}")
            else:
                print(f"{name}! closed")
        else:
            print(f"popctl: unknown step: {raw}", file=sys.stderr)
            return 2
        sys.stdout.flush()
    for s in sessions.values():
        s.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
