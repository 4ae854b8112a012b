#!/usr/bin/env python3
"""Writes the golden inputs (<name>.in.eml) and their options (<name>.opts) of the rewrite
tests (src/rewrite/tests.rs). Deterministic: running it again changes nothing. Encoded bodies
come from Python's own quopri/base64, so the Rust decoders are checked against another
implementation. The expected outputs (<name>.out.eml) are NOT made here: they are written by
`GATEPOST_BLESS=1 cargo test rewrite` and must be reviewed by eye — they are the spec.

Line ends are CRLF unless a case is about something else (LF-only, no final line end).
"""
import base64
import os
import quopri

HERE = os.path.dirname(os.path.abspath(__file__))
cases = {}


def crlf(text: str, charset: str = "utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(charset)


def qp(text: str, charset: str = "utf-8") -> str:
    """Quoted-printable of text (LF line ends; crlf() turns them into CRLF later)."""
    return quopri.encodestring(text.encode(charset)).decode("ascii")


def b64(data: bytes) -> str:
    enc = base64.b64encode(data).decode("ascii")
    return "\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def case(name: str, data: bytes, opts: str = ""):
    cases[name] = (data, opts)


HEAD = (
    "From: Alice Example <alice@example.com>\n"
    "To: Bob Builder <bob@example.net>\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
)

case("01-plain-7bit", crlf(
    HEAD
    + "Subject: Lunch on Friday?\n"
    "Message-ID: <20261123101402.GA1234@alice-laptop.example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "Hi Bob,\n"
    "\n"
    "are we still on for lunch on Friday?\n"
    "\n"
    "Alice\n"
))

OUTLOOK_TEXT = (
    "Hi Bob,\n\n"
    "Please find the quarterly numbers below \u2013 revenue is up 12% on last quarter, and the "
    "forecast for Q1 looks \u201cvery good\u201d according to finance.\n\n"
    "Kind regards,\nAlice\n"
)
OUTLOOK_HTML = (
    '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
    'xmlns:w="urn:schemas-microsoft-com:office:word" xmlns="http://www.w3.org/TR/REC-html40">\n'
    "<head>\n"
    '<meta http-equiv="Content-Type" content="text/html; charset=Windows-1252">\n'
    '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n'
    "<style><!--\n"
    "/* Font Definitions */\n"
    "@font-face\n"
    "\t{font-family:\"Cambria Math\";\n"
    "\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n"
    "p.MsoNormal, li.MsoNormal, div.MsoNormal\n"
    "\t{margin:0cm;\n"
    "\tfont-size:11.0pt;\n"
    "\tfont-family:\"Calibri\",sans-serif;}\n"
    "--></style>\n"
    "</head>\n"
    '<body lang="EN-GB" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n'
    '<div class="WordSection1">\n'
    '<p class="MsoNormal">Hi Bob,<o:p></o:p></p>\n'
    '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
    '<p class="MsoNormal">Please find the quarterly numbers below \u2013 revenue is up 12% on last quarter, '
    "and the forecast for Q1 looks \u201cvery good\u201d according to finance.<o:p></o:p></p>\n"
    '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
    '<p class="MsoNormal">Kind regards,<o:p></o:p></p>\n'
    '<p class="MsoNormal">Alice<o:p></o:p></p>\n'
    "</div>\n"
    "</body>\n"
    "</html>\n"
)
case("02-outlook-alternative-qp", crlf(
    "From: Alice Example <alice@example.com>\n"
    'To: "Bob Builder" <bob+2026-12-25@example.net>\n'
    "Subject: Quarterly numbers\n"
    "Thread-Topic: Quarterly numbers\n"
    "Thread-Index: AdtD1x9QmVvXk2YbRkKp5fG3n7Hc4A==\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID:\n <DB9PR01MB92874C1E0A5F3B1D2E8C7A66D1234@DB9PR01MB9287.eurprd01.prod.outlook.com>\n"
    "Accept-Language: en-GB, en-US\n"
    "Content-Language: en-GB\n"
    "X-MS-Has-Attach:\n"
    "X-MS-TNEF-Correlator:\n"
    "Deliver-On: 2026-12-25 09:00\n"
    "Content-Type: multipart/alternative;\n"
    '\tboundary="_000_DB9PR01MB92874C1E0A5F3B1D2E8C7A66D1234DB9PR01MB9287eurp_"\n'
    "MIME-Version: 1.0\n"
    "\n"
    "--_000_DB9PR01MB92874C1E0A5F3B1D2E8C7A66D1234DB9PR01MB9287eurp_\n"
    'Content-Type: text/plain; charset="Windows-1252"\n'
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    + qp(OUTLOOK_TEXT, "cp1252")
    + "\n"
    "--_000_DB9PR01MB92874C1E0A5F3B1D2E8C7A66D1234DB9PR01MB9287eurp_\n"
    'Content-Type: text/html; charset="Windows-1252"\n'
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    + qp(OUTLOOK_HTML, "cp1252")
    + "\n"
    "--_000_DB9PR01MB92874C1E0A5F3B1D2E8C7A66D1234DB9PR01MB9287eurp_--\n"
), "tag = bob+2026-12-25@example.net bob@example.net\n")

case("03-thunderbird-flowed", crlf(
    "Message-ID: <6f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f@example.com>\n"
    "Date: Mon, 23 Nov 2026 11:02:45 +0100\n"
    "MIME-Version: 1.0\n"
    "User-Agent: Mozilla Thunderbird\n"
    "Content-Language: en-US\n"
    "To: Bob Builder <bob@example.net>\n"
    "From: Alice Example <alice@example.com>\n"
    "Subject: Notes from the meeting\n"
    "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Hi Bob,\n"
    "\n"
    "here are my notes from today\u2019s meeting. The long paragraphs are \n"
    "flowed, so your reader can rewrap them to any width it likes \u2014 \n"
    "that is what format=flowed is for.\n"
    "\n"
    "> Bob wrote: can we move the deadline?\n"
    "\n"
    "Yes, to the 15th.\n"
    "\n"
    "-- \n"
    "Alice\n"
), "footer_template = -- note\\n From gatepost: {address}\\n>quoted-looking line\\nFrom {name}\n")

APPLE_PLAIN = "Hi Bob,\n\nhere\u2019s the photo from Saturday \u2014 see you soon!\n\nAlice\n"
APPLE_HTML = (
    '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
    '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">'
    "Hi Bob,<div><br></div><div>here\u2019s the photo from Saturday \u2014 see you soon!</div>"
    "<div><br></div><div>Alice</div><div><br></div></body></html>"
)
JPEG = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes(range(256)) * 2 + bytes([0xFF, 0xD9])
case("04-apple-mixed-alternative-image", crlf(
    "From: Alice Example <alice@example.com>\n"
    "Content-Type: multipart/mixed;\n"
    '\tboundary="Apple-Mail=_4E1B7A2C-91D3-4F6A-B8E2-0C5D9F3A7E11"\n'
    "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.200.121\\))\n"
    "Subject: Photo\n"
    "Message-Id: <A1B2C3D4-E5F6-4789-ABCD-EF0123456789@example.com>\n"
    "Date: Mon, 23 Nov 2026 11:20:31 +0100\n"
    "To: Bob Builder <bob@example.net>\n"
    "X-Mailer: Apple Mail (2.3826.200.121)\n"
    "\n"
    "\n"
    "--Apple-Mail=_4E1B7A2C-91D3-4F6A-B8E2-0C5D9F3A7E11\n"
    "Content-Type: multipart/alternative;\n"
    '\tboundary="Apple-Mail=_0D7C6B5A-3E2F-4A1B-9C8D-7E6F5A4B3C2D"\n'
    "\n"
    "\n"
    "--Apple-Mail=_0D7C6B5A-3E2F-4A1B-9C8D-7E6F5A4B3C2D\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "Content-Type: text/plain;\n"
    "\tcharset=utf-8\n"
    "\n"
    + qp(APPLE_PLAIN)
    + "--Apple-Mail=_0D7C6B5A-3E2F-4A1B-9C8D-7E6F5A4B3C2D\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "Content-Type: text/html;\n"
    "\tcharset=utf-8\n"
    "\n"
    + qp(APPLE_HTML)
    + "\n"
    "--Apple-Mail=_0D7C6B5A-3E2F-4A1B-9C8D-7E6F5A4B3C2D--\n"
    "\n"
    "--Apple-Mail=_4E1B7A2C-91D3-4F6A-B8E2-0C5D9F3A7E11\n"
    "Content-Disposition: inline;\n"
    "\tfilename=IMG_0042.jpeg\n"
    "Content-Type: image/jpeg;\n"
    "\tx-unix-mode=0644;\n"
    "\tname=\"IMG_0042.jpeg\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64(JPEG)
    + "\n"
    "--Apple-Mail=_4E1B7A2C-91D3-4F6A-B8E2-0C5D9F3A7E11\n"
    "Content-Transfer-Encoding: 7bit\n"
    "Content-Type: text/html;\n"
    "\tcharset=us-ascii\n"
    "\n"
    "<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=us-ascii\"></head>"
    "<body><div><br></div></body></html>\n"
    "--Apple-Mail=_4E1B7A2C-91D3-4F6A-B8E2-0C5D9F3A7E11--\n"
))

GREEK = "Γεια σου Bob,\n\nτα λέμε την Παρασκευή στο γραφείο.\n\nAlice\n"
case("05-base64-plain", crlf(
    HEAD
    + "Subject: =?UTF-8?B?zpPOtc65zrEgz4POv8+F?=\n"
    "Message-ID: <CAF=xyz123+abc@mail.gmail.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: text/plain; charset="UTF-8"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64(GREEK.replace("\n", "\r\n").encode("utf-8"))
    + "\n"
), "system_intro = Ευχαριστώ — gatepost holds mail until the day you choose.\n")

LATIN = "Hallo Bob,\n\nviele Grüße aus Köln – äh, aus Düsseldorf natürlich.\n\nAlice\n".replace("–", "-")
case("06-latin1-qp", crlf(
    HEAD
    + "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\n"
    "Message-ID: <latin1-06@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=ISO-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    + qp(LATIN, "latin-1")
), "system_intro = Zustellung durch gatepost, Grüße aus Köln.\n")

case("07-latin1-qp-euro-switches-to-utf8", crlf(
    HEAD
    + "Subject: Invoice\n"
    "Message-ID: <latin1-07@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=\"iso-8859-1\"; format=fixed\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    + qp("Bonjour Bob,\n\nla facture est réglée, merci.\n\nAlice\n", "latin-1")
), "system_intro = Envoyé à l'heure prévue — coût : 0 €.\n")

case("08-7bit-gains-utf8-footer", crlf(
    HEAD
    + "Subject: Build results\n"
    "Message-ID: <build-08@ci.example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "Build #4711 passed. Settings: opt-level=3 lto=fat codegen-units=1 debug=line-tables-only panic=abort strip=symbols\n"
    "All 1,204 tests green.\n"
), "system_intro = Grüße von gatepost.\n")

case("09-bare-message-utf8-footer", crlf(
    "From: alice@example.com\n"
    "To: bob@example.net\n"
    "Subject: reminder\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <bare-09@example.com>\n"
    "\n"
    "Don't forget the key.\n"
), "sender_name = none\nsystem_intro = Zugestellt von gatepost — schöne Grüße.\n")

case("10-html-without-body-close", crlf(
    HEAD
    + "Subject: Fragment\n"
    "Message-ID: <fragment-10@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "<div dir=\"ltr\">Hi Bob,<br><br>the fragment has no <b>body</b> element & no closing tag.</div>"
), "system_intro = Tom & Jerry's <gateway> \"quoted\" — ok.\n")

case("11-html-uppercase-body-latin1", crlf(
    HEAD
    + "Subject: Old-school HTML\n"
    "Message-ID: <upper-11@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/html; charset=ISO-8859-1\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "<HTML>\n<HEAD><TITLE>Caf\u00e9</TITLE></HEAD>\n<BODY BGCOLOR=\"#FFFFFF\">\n<P>Un caf\u00e9 cr\u00e8me, s'il vous pla\u00eet.</P>\n</BODY >\n</HTML>\n",
    "latin-1",
), "system_intro = Caf\u00e9 via gatepost \u2014 \u20ac0.\n")

SIGNED_PART = (
    "Content-Type: text/plain; charset=us-ascii\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "This message is signed. Changing a single byte breaks the signature.\n"
)
case("12-multipart-signed", crlf(
    "From: Alice Example <alice@example.com>\n"
    "To: Bob Builder <bob+2026-12-25@example.net>\n"
    "Bcc: auditor@example.com\n"
    "Subject: Signed contract\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <signed-12@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\n'
    '\tboundary="----7A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D"\n'
    "\n"
    "This is an S/MIME signed message\n"
    "\n"
    "------7A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D\n"
    + SIGNED_PART
    + "\n"
    "------7A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D\n"
    'Content-Type: application/pkcs7-signature; name="smime.p7s"\n'
    "Content-Transfer-Encoding: base64\n"
    'Content-Disposition: attachment; filename="smime.p7s"\n'
    "\n"
    + b64(bytes(range(7, 200, 3)) * 3)
    + "\n"
    "\n"
    "------7A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D--\n"
    "\n"
), "tag = bob+2026-12-25@example.net bob@example.net\nnotes = Protected(\"multipart/signed\")\n")

case("13-smime-pkcs7-mime", crlf(
    "From: Alice Example <alice@example.com>\n"
    "To: Bob Builder <bob@example.net>\n"
    "Subject: Encrypted\n"
    "Deliver-On: 2027-01-04\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <smime-13@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\n'
    "Content-Transfer-Encoding: base64\n"
    'Content-Disposition: attachment; filename="smime.p7m"\n'
    "\n"
    + b64(bytes((i * 37 + 11) % 256 for i in range(400)))
    + "\n"
), "notes = Protected(\"application/pkcs7-mime\")\n")

case("14-forwarded-rfc822", crlf(
    HEAD
    + "Subject: Fwd: Original\n"
    "Message-ID: <fwd-14@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="------------fwd0A1B2C3D4E5F"\n'
    "\n"
    "This is a multi-part message in MIME format.\n"
    "--------------fwd0A1B2C3D4E5F\n"
    "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "Forwarding this, see below.\n"
    "\n"
    "--------------fwd0A1B2C3D4E5F\n"
    "Content-Type: message/rfc822\n"
    "Content-Disposition: inline\n"
    "\n"
    "From: Carol <carol@example.org>\n"
    "To: alice@example.com\n"
    "Bcc: secret@example.org\n"
    "Deliver-On: 2026-12-01\n"
    "Subject: Original\n"
    "Date: Sun, 22 Nov 2026 18:00:00 +0000\n"
    "Message-ID: <orig@example.org>\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "The original text. Its headers are body text of the forward and stay as they are.\n"
    "\n"
    "--------------fwd0A1B2C3D4E5F--\n"
))

case("15-bcc-and-deliver-on", crlf(
    "Received: from localhost by alice-laptop (msmtp); Mon, 23 Nov 2026 10:14:02 +0000\n"
    "From: Alice Example <alice@example.com>\n"
    "To: Bob Builder <bob@example.net>\n"
    "bcc: carol@example.org\n"
    "Subject: Surprise party\n"
    "BCC: dave@example.com,\n"
    "  erin@example.net,\n"
    "\tfrank@example.org\n"
    "Deliver-On: 2026-12-24\n"
    " 18:00 Europe/Berlin\n"
    "DELIVER-ON: +2d\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <party-15@example.com>\n"
    "X-Not-Bcc: stays\n"
    "Bcc:\n"
    "\n"
    "Bcc: this line is body text and stays.\n"
))

case("16-tags-in-to-and-cc", crlf(
    "From: Alice Example <alice@example.com>\n"
    'To: "Bob Builder" <bob+2026-12-25@example.net>, carol+2026-12-25@example.org (Carol, at work),\n'
    ' "Dave <dave+2026-12-25@example.com>" <Dave+2026-12-25@Example.com>\n'
    "Cc: Erin <erin@example.net>, =?UTF-8?Q?Fran=C3=A7ois?= <francois+2026-12-25@example.fr>\n"
    "cc: frank+notatag@example.net, team: bob+2026-12-25@example.net, gina@example.net;\n"
    "Subject: Plans for bob+2026-12-25@example.net\n"
    "Reply-To: bob+2026-12-25@example.net\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <tags-16@example.com>\n"
    "\n"
    "Tags leave To and Cc only.\n"
), "tag = bob+2026-12-25@example.net bob@example.net\n"
   "tag = carol+2026-12-25@example.org carol@example.org\n"
   "tag = dave+2026-12-25@example.com dave@example.com\n"
   "tag = francois+2026-12-25@example.fr francois@example.fr\n")

case("17-folded-headers", crlf(
    "Return-Path: <alice@example.com>\n"
    "From: Alice Example\n"
    "  (Head of Infrastructure, Example Corporation)\n"
    "  <alice@example.com>\n"
    "To: Bob Builder <bob@example.net>\n"
    "Subject: A subject that is long enough that the mail client folded it over\n"
    " two lines, and then\n"
    "\tonce more with a tab\n"
    "References: <a1@example.com> <a2@example.com> <a3@example.com>\n"
    " <a4@example.com> <a5@example.com>\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <folded-17@example.com>\n"
    "X-Empty:\n"
    "X-Spaces-Before-Colon : obsolete syntax\n"
    "\n"
    "Body.\n"
), "sender_name = Alice Example, Head of Infrastructure at Example Corporation International\n")

case("18-missing-date-and-message-id", crlf(
    "From: Alice Example <alice@example.com>\n"
    "To: bob@example.net\n"
    "Subject: sent by a script\n"
    "\n"
    "No Date, no Message-ID: gatepost adds both.\n"
))

case("19-existing-reply-to", crlf(
    "From: alice@example.com\n"
    "Reply-To: Support Desk <support@example.com>\n"
    "To: bob@example.net\n"
    "Subject: ticket 42\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <reply-19@example.com>\n"
    "\n"
    "Please answer to the support desk.\n"
), "sender_name = none\n")

case("20-non-ascii-display-name", crlf(
    "From: =?UTF-8?Q?Zo=C3=AB_=C3=9Cnal-=C3=87elik?= <alice@example.com>\n"
    "To: Bob Builder <bob@example.net>\n"
    "Subject: Merhaba\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Message-ID: <name-20@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Görüşürüz!\n"
), "sender_name = Zoë Ünal-Çelik from the Ünal-Çelik family office \"Zürich\"\n")

data = crlf(
    HEAD
    + "Subject: no final line end\n"
    "Message-ID: <nofinal-21@example.com>\n"
    "\n"
    "Thanks!"
)
case("21-no-trailing-crlf", data)

case("22-empty-body", crlf(
    HEAD
    + "Subject: (empty)\n"
    "Message-ID: <empty-22@example.com>\n"
    "\n"
))

case("23-rewrite-from-off-hidden-ip", crlf(
    HEAD
    + "Subject: own domain relay\n"
    "Message-ID: <off-23@example.com>\n"
    "\n"
    "The relay may send for example.com, so From stays.\n"
), "rewrite_from = false\nhide_client_ip = true\ntls = none\n")

case("24-headers-only-no-blank-line", crlf(
    "From: Alice Example <alice@example.com>\n"
    "To: bob@example.net\n"
    "Subject: ping\n"
))

case("25-ipv6-long-helo", crlf(
    HEAD
    + "Subject: from IPv6\n"
    "Message-ID: <v6-25@example.com>\n"
    "\n"
    "Sent over IPv6.\n"
), "client_ip = 2001:db8:85a3::8a2e:370:7334\n"
   "helo = a-rather-long-workstation-name.engineering.branch-office.example.com\n")

case("26-lf-line-ends", (
    HEAD
    + "Subject: LF only\n"
    "Message-ID: <lf-26@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="lf"\n'
    "\n"
    "--lf\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Written by a script with Unix line ends.\n"
    "--lf\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>Written by a script with Unix line ends.</p>\n"
    "--lf--\n"
).encode("utf-8"))

case("27-iso-2022-jp-non-ascii-footer", crlf(
    HEAD
    + "Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\n"
    "Message-ID: <jp-27@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=ISO-2022-JP\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n",
) + "こんにちは、ボブさん。\r\n".encode("iso-2022-jp") + b"\r\n",
    "system_intro = gatepost — ゲートウェイ\nnotes = Charset(\"iso-2022-jp\")\n")

case("28-related-html-inline-image", crlf(
    HEAD
    + "Subject: Newsletter\n"
    "Message-ID: <related-28@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/related; boundary="rel-28"; type="text/html"\n'
    "\n"
    "--rel-28\n"
    "Content-Type: text/html; charset=us-ascii\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    + qp('<html><body><p>Our logo:</p><img src="cid:logo@example.com" alt="logo"><p>See you!</p></body></html>\n')
    + "--rel-28\n"
    "Content-Type: image/png\n"
    "Content-ID: <logo@example.com>\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    + "\n"
    "--rel-28--\n"
))

case("29-base64-html-lf-content", crlf(
    HEAD
    + "Subject: base64 HTML\n"
    "Message-ID: <b64html-29@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/alternative; boundary=\"000000000000b64b64b64\"\n"
    "\n"
    "--000000000000b64b64b64\n"
    'Content-Type: text/plain; charset="UTF-8"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64("Grüß dich, Bob!\n".encode("utf-8"))
    + "\n"
    "--000000000000b64b64b64\n"
    'Content-Type: text/html; charset="UTF-8"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64('<div dir="ltr">Grüß dich, <b>Bob</b>!</div>\n<div>\n</div></body>\n'.encode("utf-8"))
    + "\n"
    "--000000000000b64b64b64--\n"
), "system_intro = Grüße von gatepost.\n")

case("30-attachment-first-and-text-attachment", crlf(
    HEAD
    + "Subject: Report\n"
    "Message-ID: <attach-30@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="mix-30"\n'
    "\n"
    "--mix-30\n"
    'Content-Type: application/pdf; name="report.pdf"\n'
    'Content-Disposition: attachment; filename="report.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
    + "\n"
    "--mix-30\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "The report is attached; the notes follow as a text file.\n"
    "--mix-30\n"
    'Content-Type: text/plain; charset=us-ascii; name="notes.txt"\n'
    "Content-Disposition: attachment\n"
    "\n"
    "notes: the attached text file gets no footer\n"
    "--mix-30--\n"
))

case("31-only-an-attachment", crlf(
    HEAD
    + "Subject: scan\n"
    "Message-ID: <scan-31@example.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: application/pdf; name="scan.pdf"\n'
    'Content-Disposition: attachment; filename="scan.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    + b64(b"%PDF-1.4\n%%EOF\n")
    + "\n"
), "notes = NoTextBody\n")

case("32-uuencoded-body", crlf(
    HEAD
    + "Subject: uuencoded\n"
    "Message-ID: <uu-32@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "Content-Transfer-Encoding: x-uuencode\n"
    "\n"
    "begin 644 hi.txt\n"
    "#:&D*\n"
    "`\n"
    "end\n"
), "notes = Encoding(\"x-uuencode\")\n")

case("33-sender-and-resent-removed", crlf(
    "From: Alice Example <alice@example.com>\n"
    "Sender: Alice's Assistant <assistant@example.com>\n"
    "To: Bob Builder <bob@example.net>\n"
    "Resent-From: Alice Example <alice@example.com>\n"
    "resent-sender : alice@example.com\n"
    "Resent-Date: Mon, 23 Nov 2026 10:13:00 +0000\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Subject: sent on behalf\n"
    "Message-ID: <sender-33@example.com>\n"
    "\n"
    "Sender and Resent-From/-Sender name the user next to the relay's From: they go.\n"
))

case("34-sender-kept-when-from-is-not-rewritten", crlf(
    "From: Alice Example <alice@example.com>\n"
    "Sender: alice@example.com\n"
    "To: Bob Builder <bob@example.net>\n"
    "Resent-From: alice@example.com\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Subject: own domain relay, sender kept\n"
    "Message-ID: <sender-34@example.com>\n"
    "\n"
    "From is not rewritten, so Sender and Resent-From stay as written.\n"
), "rewrite_from = false\n")

case("35-huge-display-name-shortened", crlf(
    "From: " + "A" * 1200 + " <alice@example.com>\n"
    "To: Bob Builder <bob@example.net>\n"
    "Date: Mon, 23 Nov 2026 10:14:02 +0000\n"
    "Subject: a display name of 1200 letters and no space\n"
    "Message-ID: <name-35@example.com>\n"
    "\n"
    "The rewritten From must stay within 998 octets per line.\n"
), "sender_name = " + "A" * 1200 + "\n")

for name, (data, opts) in cases.items():
    with open(os.path.join(HERE, name + ".in.eml"), "wb") as f:
        f.write(data)
    path = os.path.join(HERE, name + ".opts")
    if opts:
        with open(path, "w", encoding="utf-8") as f:
            f.write(opts)
    elif os.path.exists(path):
        os.remove(path)
print(f"{len(cases)} golden inputs written")
