#!/usr/bin/env python3
"""Regenerates the byte-exact storage corpus (tests/corpus/*.eml) used by
tests/submission/corpus.rs. Deterministic: run it again and nothing changes.

Every fixture is From alice@example.com (the test user). Line endings are CRLF
unless a fixture exists to test something else (bare LF, missing final CRLF).
"""
import base64
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20261123)


def crlf(text: str) -> bytes:
    """UTF-8 text with every \\n turned into CRLF."""
    return text.replace("\n", "\r\n").encode("utf-8")


def b64_lines(data: bytes) -> str:
    enc = base64.b64encode(data).decode("ascii")
    return "\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


HEAD = (
    "From: Alice <alice@example.com>\n"
    "To: Bob <bob@example.net>\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
)

fixtures = {}

fixtures["01-multipart-alternative.eml"] = crlf(
    HEAD
    + "Subject: alternative parts\n"
    "Message-ID: <corpus-01@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="=_alt_01"\n'
    "\n"
    "This is a multi-part message in MIME format.\n"
    "\n"
    "--=_alt_01\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "Hello Bob,\n"
    "\n"
    "the plain text part.\n"
    "\n"
    "--=_alt_01\n"
    "Content-Type: text/html; charset=us-ascii\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "<html><body><p>Hello Bob,</p><p>the <b>HTML</b> part.</p></body></html>\n"
    "\n"
    "--=_alt_01--\n"
)

attachment = bytes(rng.getrandbits(8) for _ in range(3000))
fixtures["02-multipart-mixed-attachment.eml"] = crlf(
    HEAD
    + "Subject: report with attachment\n"
    "Message-ID: <corpus-02@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="----=_mixed_02"\n'
    "\n"
    "------=_mixed_02\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "The numbers are attached.\n"
    "\n"
    "------=_mixed_02\n"
    'Content-Type: application/octet-stream; name="numbers.bin"\n'
    'Content-Disposition: attachment; filename="numbers.bin"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64_lines(attachment)
    + "\n"
    "\n"
    "------=_mixed_02--\n"
)

fixtures["03-rfc2047-headers.eml"] = crlf(
    "From: =?UTF-8?Q?=C3=85lice_=C3=84rger?= <alice@example.com>\n"
    "To: =?ISO-8859-1?Q?Bj=F6rn_M=FCller?= <bjorn@example.net>,\n"
    " =?UTF-8?B?5p2O5bCP6b6Z?= <li@example.cn>\n"
    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4g4oCUIOS9oOWlvQ==?=\n"
    " =?UTF-8?Q?_und_mehr?=\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
    "Message-ID: <corpus-03@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "Encoded words only in the header.\n"
)

fixtures["04-utf8-8bit.eml"] = crlf(
    HEAD
    + "Subject: raw UTF-8 body\n"
    "Message-ID: <corpus-04@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Grüße aus Köln — schöne Feiertage!\n"
    "你好，世界。こんにちは。안녕하세요.\n"
    "Ελληνικά, русский, עברית, العربية.\n"
    "Emoji: 🎄🎁✉️ and a non-breaking\u00a0space.\n"
)

fixtures["05-latin1-8bit.eml"] = (
    HEAD.replace("\n", "\r\n").encode("ascii")
    + b"Subject: raw Latin-1 body\r\n"
    b"Message-ID: <corpus-05@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"X-Note: caf\xe9 cr\xe8me br\xfbl\xe9e\r\n"
    b"\r\n"
    + "Grüße aus Köln, Zürich und Malmö.\nÀ bientôt, garçon! ¿Qué tal? ½ ± ÿ\n".replace("\n", "\r\n").encode("latin-1")
)

fixtures["06-leading-dots.eml"] = crlf(
    HEAD
    + "Subject: dots at line starts\n"
    "Message-ID: <corpus-06@example.com>\n"
    "\n"
    ".starts with one dot\n"
    "..starts with two dots\n"
    "...three\n"
    ".\n"
    "..\n"
    ". \n"
    ".\t\n"
    "a lone . inside a line, and one at the end .\n"
    "next line is a lone dot again\n"
    ".\n"
    "and the last line is a dot too\n"
    ".\n"
)

fixtures["07-long-line.eml"] = crlf(
    HEAD
    + "Subject: one line of 5000 characters\n"
    "Message-ID: <corpus-07@example.com>\n"
    "\n"
    "before\n"
    + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(4999))
    + "x\n"
    "after\n"
)

fixtures["08-bare-lf.eml"] = (
    crlf(
        HEAD
        + "Subject: bare LF and bare CR in the body\n"
        "Message-ID: <corpus-08@example.com>\n"
        "\n"
    )
    + b"line one\nstill line one after a bare LF\r\n"
    + b"a bare LF then a dot:\n.\r\n"
    + b"a bare LF then dot CR LF dot:\n.\r\n..\r\n"
    + b"a bare CR\rin the middle\r\n"
    + b"two bare LFs\n\nthen CRLF\r\n"
    + b"ends with a bare LF before the final CRLF\n\r\n"
)

fixtures["09-no-final-crlf.eml"] = crlf(
    HEAD
    + "Subject: no CRLF at the very end\n"
    "Message-ID: <corpus-09@example.com>\n"
    "\n"
    "first line\n"
    "the last line has no line break"
).rstrip(b"\r\n")

signature = bytes(rng.getrandbits(8) for _ in range(1100))
fixtures["10-smime-signed.eml"] = crlf(
    HEAD
    + "Subject: signed message\n"
    "Message-ID: <corpus-10@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\n'
    ' micalg=sha-256; boundary="----=_signed_10"\n'
    "\n"
    "This is an S/MIME signed message\n"
    "\n"
    "------=_signed_10\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Signed text. Trailing spaces matter to the signature:   \n"
    "=C3=A9t=C3=A9 =3D summer\n"
    "\n"
    "------=_signed_10\n"
    'Content-Type: application/pkcs7-signature; name="smime.p7s"\n'
    "Content-Transfer-Encoding: base64\n"
    'Content-Disposition: attachment; filename="smime.p7s"\n'
    "\n"
    + b64_lines(signature)
    + "\n"
    "\n"
    "------=_signed_10--\n"
    "\n"
)

fixtures["11-empty-body.eml"] = crlf(
    HEAD
    + "Subject: nothing after the header\n"
    "Message-ID: <corpus-11@example.com>\n"
    "\n"
)

refs = " ".join(f"<thread-{i:04d}.{rng.getrandbits(48):012x}@lists.example.org>" for i in range(120))
folded_refs = []
line = "References:"
for word in refs.split(" "):
    if len(line) + 1 + len(word) > 76:
        folded_refs.append(line)
        line = ""
    line += " " + word
folded_refs.append(line)
fixtures["12-long-folded-header.eml"] = crlf(
    HEAD
    + "Subject: a subject that goes on and on, folded over several lines because\n"
    "\tit is far longer than seventy-eight characters and a mail client would fold\n"
    "  it with tabs or with spaces, both of which must be kept exactly as they are\n"
    "Message-ID: <corpus-12@example.com>\n"
    + "\n".join(folded_refs)
    + "\n"
    "\n"
    "Short body.\n"
)

fixtures["13-whitespace.eml"] = crlf(
    HEAD
    + "Subject:   spaces before and after   \n"
    "X-Empty:\n"
    "X-Tab:\tvalue\t\n"
    "Message-ID: <corpus-13@example.com>\n"
    "\n"
    "\n"
    "body starts with an empty line; trailing spaces   \n"
    "\ttab-indented line\t\n"
    "    \n"
    "\n"
    "\n"
)

# Bigger than one TLS record (16 KiB) and than typical read buffers, so the server's DATA
# reader sees the message in several pieces, with line ends and dots across the cuts.
big = bytes(rng.getrandbits(8) for _ in range(26000))
fixtures["14-large-attachment.eml"] = crlf(
    HEAD
    + "Subject: a larger attachment\n"
    "Message-ID: <corpus-14@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="b14"\n'
    "\n"
    "--b14\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    + "".join(f".line {i} starts with a dot\n" for i in range(200))
    + "\n"
    "--b14\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64_lines(big)
    + "\n"
    "--b14--\n"
)

for name in os.listdir(HERE):
    if name.endswith(".eml") and name not in fixtures:
        os.remove(os.path.join(HERE, name))
for name, data in sorted(fixtures.items()):
    assert len(data) < 50_000, name
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    print(f"{name:40} {len(data):6} bytes")
