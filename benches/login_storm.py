#!/usr/bin/env python3
"""A storm of wrong logins with one rightful login in the middle of it.

Usage: login_storm.py HOST PORT USER PASSWORD_FILE WRONG ADDRESSES GOOD_ADDRESS [--prime]

Opens WRONG connections to PORT (implicit TLS, port 465 style) spread over ADDRESSES source
addresses 127.0.0.2, 127.0.0.3, ..., and sends AUTH PLAIN with a wrong password on each,
all at once. Once every storm connection has sent its AUTH, one connection from GOOD_ADDRESS
logs in as USER with the right password. Prints one JSON line:
  {"good_auth_s": seconds from its AUTH to the 235, "good_total_s": from its connect,
   "good_reply": the reply, "wrong": {reply code: count}, "storm_s": until every wrong
   login was answered}
--prime: only log in once from GOOD_ADDRESS (a previously successful pair), then exit.
"""
import asyncio
import base64
import json
import ssl
import sys
import time
from collections import Counter


def make_ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


# One context for every connection: making one per connection (loading the CA store each
# time) cost the client ~15 ms each, so the storm measured the client, not the server.
CTX = make_ctx()


async def read_reply(reader):
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            return b"".join(lines).decode(errors="replace")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines).decode(errors="replace")


async def login(host, port, source, user, password, sent=None):
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port, ssl=CTX, local_addr=(source, 0),
                                                   server_hostname="localhost")
    try:
        await read_reply(reader)
        writer.write(b"EHLO storm.test\r\n")
        await read_reply(reader)
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        writer.write(f"AUTH PLAIN {token}\r\n".encode())
        await writer.drain()
        t1 = time.monotonic()
        if sent is not None:
            sent()
        reply = await read_reply(reader)
        t2 = time.monotonic()
        writer.write(b"QUIT\r\n")
        return reply.strip(), t2 - t1, t2 - t0
    finally:
        writer.close()


async def main():
    host, port, user, pwfile, wrong, addresses, good = sys.argv[1:8]
    port, wrong, addresses = int(port), int(wrong), int(addresses)
    password = open(pwfile).read().splitlines()[0]
    if "--prime" in sys.argv:
        reply, _, _ = await login(host, port, good, user, password)
        print(json.dumps({"prime": reply}))
        return 0 if reply.startswith("235") else 1
    all_sent = asyncio.Event()
    count = 0

    def one_sent():
        nonlocal count
        count += 1
        if count == wrong:
            all_sent.set()

    async def storm_one(i):
        source = f"127.0.0.{2 + i % addresses}"
        try:
            reply, _, _ = await login(host, port, source, user, "wrong " + password, one_sent)
            return reply[:3] or "eof"
        except Exception as e:  # noqa: BLE001 - a refused or reset connection is an outcome
            one_sent()
            return type(e).__name__

    t0 = time.monotonic()
    storm = [asyncio.create_task(storm_one(i)) for i in range(wrong)]
    try:
        await asyncio.wait_for(all_sent.wait(), 120)
    except asyncio.TimeoutError:
        pass
    reply, auth_s, total_s = await login(host, port, good, user, password)
    outcomes = Counter(await asyncio.gather(*storm))
    print(json.dumps({"good_auth_s": round(auth_s, 3), "good_total_s": round(total_s, 3), "good_reply": reply,
                      "wrong": dict(outcomes), "storm_s": round(time.monotonic() - t0, 2),
                      "auth_sent_before_good": count}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
