#!/usr/bin/env python3
"""Submission load the way mail clients send: STARTTLS + AUTH PLAIN over smtplib.

Usage: submit_load.py HOST PORT USER PASSWORD_FILE COUNT CONNECTIONS SIZE MODE FROM RCPT

MODE persistent: CONNECTIONS threads each open one connection (EHLO, STARTTLS, EHLO, AUTH)
    and send their share of COUNT messages over it (Thunderbird, phones).
MODE per-message: CONNECTIONS threads each send their share, every message over a new
    connection with its own TLS handshake and login (Outlook's habit).

Every message is SIZE bytes of header and text, sent with sendmail(); any refusal is an
error (exit 1). Prints one line "elapsed_s client_cpu_s sent" for the timed part; the
client's own CPU time tells whether the load generator saturated its core.
"""
import os
import smtplib
import ssl
import sys
import threading
import time


def message(size, sender, rcpt, n):
    head = (
        f"From: Bench <{sender}>\r\nTo: <{rcpt}>\r\nSubject: bench {n}\r\n"
        f"Message-ID: <bench-{n}-{os.getpid()}@bench.test>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\n"
    )
    line = "The quick brown fox jumps over the lazy dog, again and again. 0123456789\r\n"
    body = line * max(1, (size - len(head)) // len(line) + 1)
    return (head + body)[:size].rsplit("\r\n", 1)[0] + "\r\n"


def main():
    host, port, user, pwfile, count, conns, size, mode, sender, rcpt = sys.argv[1:11]
    port, count, conns, size = int(port), int(count), int(conns), int(size)
    password = open(pwfile).read().splitlines()[0]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # both servers use the same certificate; the client's
    # cost of checking it would be the same on both sides and is not what is measured
    body = message(size, sender, rcpt, 0)
    errors = []
    shares = [count // conns + (1 if i < count % conns else 0) for i in range(conns)]

    def session():
        s = smtplib.SMTP(host, port, timeout=60)
        s.ehlo("bench.client")
        s.starttls(context=ctx)
        s.ehlo("bench.client")
        s.login(user, password)
        return s

    def worker(n):
        try:
            if mode == "persistent":
                s = session()
                for _ in range(n):
                    refused = s.sendmail(sender, [rcpt], body)
                    if refused:
                        raise RuntimeError(f"refused: {refused}")
                s.quit()
            else:
                for _ in range(n):
                    s = session()
                    refused = s.sendmail(sender, [rcpt], body)
                    if refused:
                        raise RuntimeError(f"refused: {refused}")
                    s.quit()
        except Exception as e:  # noqa: BLE001 - every failure ends the benchmark
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in shares]
    c0, t0 = time.process_time(), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1, c1 = time.monotonic(), time.process_time()
    if errors:
        print(f"{len(errors)} connection(s) failed, first: {errors[0]}", file=sys.stderr)
        sys.exit(1)
    print(f"{t1 - t0:.3f} {c1 - c0:.3f} {count}")


if __name__ == "__main__":
    main()
