#!/usr/bin/env python3
"""Push latency and idle cost of connected accounts (benches/account_push.sh runs this).

  account_push.py latency GP_PORT DV_PORT CAFILE N
      A client logged in to gatepost as `bench` waits in IDLE on INBOX; N times, a message is
      APPENDed to the account's source INBOX (Dovecot, user src0) and the time from the
      APPEND's tagged OK to gatepost's `* n EXISTS` is measured. Prints each and p50/p99.
  account_push.py idle PID SECONDS
      The server's CPU time (utime+stime of /proc/PID/stat) and RSS over SECONDS of idling.
"""
import os
import socket
import ssl
import statistics
import sys
import time


def connect(port, cafile, user, password):
    ctx = ssl.create_default_context(cafile=cafile)
    s = ctx.wrap_socket(socket.create_connection(("localhost", port)), server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'l LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
    until(f, b"l ")
    return s, f


def until(f, tag):
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line.startswith(tag):
            if not line[len(tag):].startswith(b"OK"):
                raise SystemExit("failed: %r" % line)
            return


def latency(gp_port, dv_port, cafile, n):
    gp, gf = connect(int(gp_port), cafile, "bench", "bench own password")
    gp.sendall(b"s SELECT INBOX\r\n")
    until(gf, b"s ")
    gp.sendall(b"i IDLE\r\n")
    assert gf.readline().startswith(b"+")
    dv, df = connect(int(dv_port), cafile, "src0", "source password")
    out = []
    for k in range(int(n)):
        msg = b"From: a@example.org\r\nSubject: push %d\r\nMessage-ID: <push%d.%f@x>\r\n\r\nhello\r\n" % (k, k, time.time())
        dv.sendall(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        until(df, b"a ")
        t0 = time.monotonic()
        while True:
            line = gf.readline()
            if not line:
                raise SystemExit("gatepost closed the IDLE connection")
            if line.endswith(b"EXISTS\r\n"):
                break
        out.append(time.monotonic() - t0)
        time.sleep(0.05)
    gp.sendall(b"DONE\r\n")
    out.sort()
    p = lambda q: out[min(len(out) - 1, int(q * len(out)))]
    print("push %d p50 %.3f p99 %.3f max %.3f" % (len(out), statistics.median(out), p(0.99), out[-1]))


def idle(pid, seconds):
    tick = os.sysconf("SC_CLK_TCK")

    def cpu():
        fields = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    def rss():
        for line in open("/proc/%s/status" % pid):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    c0, r0 = cpu(), rss()
    time.sleep(float(seconds))
    c1, r1 = cpu(), rss()
    used = c1 - c0
    print("idle %s s cpu %.2f s (%.1f s/hour) rss %d MB -> %d MB" % (seconds, used, used * 3600 / float(seconds), r0, r1))


if __name__ == "__main__":
    {"latency": latency, "idle": idle}[sys.argv[1]](*sys.argv[2:])
