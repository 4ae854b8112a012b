#!/usr/bin/env python3
"""IDLE fan-out load for benches/idle_fanout.sh.

  idle_fanout.py HOST PORT CAFILE PASSWORD USERS SESSIONS

Opens USERS x SESSIONS TLS connections (users u000..), each LOGIN, SELECT INBOX, IDLE. Then,
over one more connection per user, APPENDs one message to that user's INBOX and records when
the APPEND's tagged OK arrived; every IDLE session records when its `* n EXISTS` arrived.
Prints the delivery latency percentiles (EXISTS time minus the time that user's APPEND was
sent: the durable commit included) and how many sessions saw it.
"""
import asyncio
import ssl
import sys
import time

host, port, cafile, password = sys.argv[1:5]
users, sessions = int(sys.argv[5]), int(sys.argv[6])
ctx = ssl.create_default_context(cafile=cafile)


async def line(r):
    l = await r.readline()
    if not l:
        raise ConnectionError("closed")
    return l


async def command(r, w, tag, text):
    w.write(tag + b" " + text + b"\r\n")
    await w.drain()
    while True:
        l = await line(r)
        if l.startswith(tag + b" "):
            if b" OK" not in l[:len(tag) + 4]:
                raise RuntimeError(l)
            return


async def idler(user, seen, ready, sem):
    async with sem:
        r, w = await asyncio.open_connection(host, int(port), ssl=ctx, server_hostname=host, limit=1 << 16)
        await line(r)
        await command(r, w, b"l", b'LOGIN %s "%s"' % (user.encode(), password.encode()))
        await command(r, w, b"s", b"SELECT INBOX")
        w.write(b"i IDLE\r\n")
        await w.drain()
        await line(r)  # + idling
    ready.append(1)
    while True:
        l = await line(r)
        if l.endswith(b" EXISTS\r\n"):
            seen.setdefault(user, []).append(time.monotonic())
            return w


async def main():
    seen, ready, appended, acknowledged = {}, [], {}, {}
    sem = asyncio.Semaphore(200)
    names = ["u%03d" % u for u in range(users)]
    start = time.monotonic()
    tasks = [asyncio.create_task(idler(n, seen, ready, sem)) for n in names for _ in range(sessions)]
    while len(ready) < len(tasks):
        await asyncio.sleep(0.2)
        if any(t.done() and t.exception() for t in tasks):
            raise [t.exception() for t in tasks if t.done() and t.exception()][0]
    print("connected %d IDLE sessions in %.1f s" % (len(ready), time.monotonic() - start), flush=True)
    await asyncio.sleep(2)
    print("ready", flush=True)
    sys.stdin.readline()  # the driver measures the server's RSS now, then says go

    async def append(n):
        r, w = await asyncio.open_connection(host, int(port), ssl=ctx, server_hostname=host)
        await line(r)
        await command(r, w, b"l", b'LOGIN %s "%s"' % (n.encode(), password.encode()))
        msg = b"Subject: fan-out\r\n\r\nhello\r\n"
        appended[n] = time.monotonic()
        w.write(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await w.drain()
        while not (await line(r)).startswith(b"a OK"):
            pass
        acknowledged[n] = time.monotonic()
        w.close()

    cpu0 = time.process_time()
    await asyncio.gather(*(append(n) for n in names))
    deadline = time.monotonic() + 30
    while sum(len(v) for v in seen.values()) < len(tasks) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    lat = sorted(t - appended[u] for u, ts in seen.items() for t in ts)
    n = len(lat)
    pct = lambda p: lat[min(n - 1, int(p * n))] * 1000 if n else float("nan")
    print("sessions that saw EXISTS: %d of %d" % (n, len(tasks)))
    print("latency ms: p50 %.1f p90 %.1f p99 %.1f max %.1f" % (pct(0.5), pct(0.9), pct(0.99), pct(1.0)))
    last = max(t for ts in seen.values() for t in ts) - min(appended.values()) if seen else float("nan")
    oks = sorted(acknowledged[u] - appended[u] for u in acknowledged)
    print("APPEND sent -> tagged OK ms: p50 %.1f max %.1f" % (oks[len(oks) // 2] * 1000, oks[-1] * 1000))
    print("load generator: %.2f s of CPU for the fan-out; last EXISTS %.2f s after the first APPEND was sent"
          % (time.process_time() - cpu0, last), flush=True)
    print("end", flush=True)
    sys.stdin.readline()  # the driver reads the server's CPU time, then lets the sessions go


asyncio.run(main())
