#!/usr/bin/env python3
"""Realistic messages for mail-store benchmarks: the same bytes for gatepost and Dovecot.

Usage: mailgen.py OUT_DIR [--count 10000] [--seed 1]

Writes OUT_DIR/00001.eml … deterministic for a seed. The mix, by count: 45% plain text
(1-30 KB, some UTF-8 quoted-printable), 25% multipart/alternative (text + HTML), 22%
multipart/mixed with a base64 attachment (random bytes: photos and PDFs barely compress),
8% with non-ASCII encoded-word headers and an 8-bit body. Mean size about 75 KB, as the
mail-store issue asks; CRLF line ends, one Message-ID each.
"""
import base64
import os
import random
import sys

WORDS = (
    "the of and to in is that for it with as was on be at by this had not are but from or have an "
    "they which one you were her all she there would their we him been has when who will more no "
    "if out so said what up its about into than them can only other new some could time these two "
    "may then do first any my now such like our over man me even most made after also did many "
    "before must through back years where much your way well down should because each just those "
    "meeting invoice quarterly figures project deadline schedule report attached please review "
    "thanks regards tomorrow morning budget customer delivery contract update draft final"
).split()
NON_ASCII = ["Grüße", "café", "naïve", "Zürich", "München", "São Paulo", "東京", "привет", "señor", "Ångström"]
NAMES = ["Alice Martin", "Bob Chen", "Carol Dupont", "Dmitri Ivanov", "Eva Müller", "Farid Haddad", "Grace Kim"]


def words(rng, n, non_ascii=False):
    out = []
    for _ in range(n):
        out.append(rng.choice(NON_ASCII) if non_ascii and rng.random() < 0.05 else rng.choice(WORDS))
    return out


def paragraphs(rng, size, non_ascii=False):
    lines, total = [], 0
    while total < size:
        line = " ".join(words(rng, rng.randint(8, 14), non_ascii))
        lines.append(line[0].upper() + line[1:] + ".")
        total += len(line) + 2
        if rng.random() < 0.15:
            lines.append("")
    return "\r\n".join(lines) + "\r\n"


def qp(text):
    out = []
    for line in text.split("\r\n"):
        enc = "".join(c if (32 <= ord(c) < 127 and c != "=") else "".join(f"={b:02X}" for b in c.encode()) for c in line)
        while len(enc) > 75:
            cut = 75 if enc[72:75].find("=") < 0 else 72 + enc[72:75].find("=")
            out.append(enc[:cut] + "=")
            enc = enc[cut:]
        out.append(enc)
    return "\r\n".join(out)


def encoded_word(text):
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def header(rng, n, subject, extra=""):
    sender, to = rng.sample(NAMES, 2)
    return (
        f"From: {sender} <{sender.split()[0].lower()}@example.com>\r\n"
        f"To: {to} <{to.split()[0].lower()}@example.org>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Tue, {1 + n % 28} Dec 2026 {n % 24:02d}:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <gen.{n}.{rng.getrandbits(32):08x}@example.com>\r\n"
        f"MIME-Version: 1.0\r\n{extra}"
    )


def message(rng, n):
    kind = rng.random()
    subject = " ".join(words(rng, rng.randint(3, 8))).capitalize()
    if kind < 0.45:
        utf8 = rng.random() < 0.3
        body = paragraphs(rng, rng.randint(1_000, 30_000), utf8)
        if utf8:
            return header(rng, n, subject, "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: quoted-printable\r\n") + "\r\n" + qp(body) + "\r\n"
        return header(rng, n, subject, "Content-Type: text/plain; charset=us-ascii\r\n") + "\r\n" + body
    if kind < 0.70:
        text = paragraphs(rng, rng.randint(3_000, 40_000))
        html = "<html><body>" + "".join(f"<p>{p}</p>\r\n" for p in text.split("\r\n") if p) + "</body></html>\r\n"
        b = f"alt{n}"
        return (header(rng, n, subject, f'Content-Type: multipart/alternative; boundary="{b}"\r\n') + "\r\n"
                f"--{b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}"
                f"--{b}\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n{html}--{b}--\r\n")
    if kind < 0.92:
        text = paragraphs(rng, rng.randint(500, 4_000))
        size = int(rng.lognormvariate(11.75, 0.9))  # median ~127 KB, a long tail
        size = max(5_000, min(size, 2_000_000))
        data = base64.encodebytes(rng.randbytes(size)).decode().replace("\n", "\r\n")
        name, ctype = rng.choice([("photo.jpg", "image/jpeg"), ("report.pdf", "application/pdf"),
                                  ("data.zip", "application/zip")])
        b = f"mix{n}"
        return (header(rng, n, subject, f'Content-Type: multipart/mixed; boundary="{b}"\r\n') + "\r\n"
                f"--{b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}"
                f'--{b}\r\nContent-Type: {ctype}; name="{name}"\r\nContent-Transfer-Encoding: base64\r\n'
                f'Content-Disposition: attachment; filename="{name}"\r\n\r\n{data}--{b}--\r\n')
    subj = encoded_word(" ".join(words(rng, 4, True)) + " " + rng.choice(NON_ASCII))
    body = paragraphs(rng, rng.randint(1_000, 20_000), True)
    return header(rng, n, subj, "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n") + "\r\n" + body


def main():
    out = sys.argv[1]
    count = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else 10_000
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    total = 0
    for n in range(1, count + 1):
        data = message(rng, n).encode()
        total += len(data)
        with open(os.path.join(out, f"{n:05d}.eml"), "wb") as f:
            f.write(data)
    print(f"{count} messages, {total} bytes, mean {total // count} bytes")


if __name__ == "__main__":
    main()
