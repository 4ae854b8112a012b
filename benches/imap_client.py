#!/usr/bin/env python3
"""IMAP load client for benches/imap_fetch.sh: the same bytes against gatepost and Dovecot.

  imap_client.py append HOST PORT CAFILE USER PASSFILE MSG_DIR
      APPEND every *.eml of MSG_DIR to INBOX, one at a time on one connection (LITERAL+, each
      APPEND waits for its tagged OK: the server's durable APPEND rate). Prints
      "append <messages> <seconds>".
  imap_client.py fetch HOST PORT CAFILE USER PASSFILE
      SELECT INBOX, then one `UID FETCH 1:* BODY.PEEK[]`, reading the whole answer. Prints
      "fetch <messages> <bytes> <seconds>".
"""
import os
import socket
import ssl
import sys
import time


def connect(host, port, cafile, user, password):
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((host, int(port)))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname=host)
    f = s.makefile("rb", buffering=1 << 20)
    f.readline()  # greeting
    s.sendall(b'l LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
    until(f, b"l ")
    return s, f


def until(f, tag):
    """Read lines (literals skipped over) up to the tagged reply; returns (lines, literal bytes)."""
    count = 0
    lit_bytes = 0
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line.startswith(tag):
            if not line[len(tag):].startswith(b"OK"):
                raise SystemExit("failed: %r" % line)
            return count, lit_bytes
        while line.endswith(b"}\r\n") and b"{" in line:
            n = int(line[line.rindex(b"{") + 1:-3].rstrip(b"+"))
            f.read(n)
            lit_bytes += n
            count += 1
            line = f.readline()


def main():
    mode, host, port, cafile, user, passfile = sys.argv[1:7]
    password = open(passfile).read().splitlines()[0]
    s, f = connect(host, port, cafile, user, password)
    if mode == "append":
        d = sys.argv[7]
        names = sorted(n for n in os.listdir(d) if n.endswith(".eml"))
        msgs = [open(os.path.join(d, n), "rb").read() for n in names]
        start = time.monotonic()
        for i, m in enumerate(msgs):
            tag = b"a%d " % i
            s.sendall(tag + b"APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
            until(f, tag)
        print("append %d %.3f" % (len(msgs), time.monotonic() - start))
    elif mode == "fetch":
        s.sendall(b"s SELECT INBOX\r\n")
        until(f, b"s ")
        start = time.monotonic()
        s.sendall(b"f UID FETCH 1:* BODY.PEEK[]\r\n")
        count, nbytes = until(f, b"f ")
        print("fetch %d %d %.3f" % (count, nbytes, time.monotonic() - start))
    s.sendall(b"z LOGOUT\r\n")


main()
