"""A whole IMAP session with Python's imaplib against gatepost (tests/imap/interop.rs).

Usage: imaplib_flow.py HOST PORT CAFILE USER PASSWORD [starttls]
Exits non-zero with the failed check on stderr."""
import imaplib
import ssl
import sys

host, port, cafile, user, password = sys.argv[1:6]
starttls = len(sys.argv) > 6 and sys.argv[6] == "starttls"
ctx = ssl.create_default_context(cafile=cafile)


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


if starttls:
    m = imaplib.IMAP4(host, int(port))
    check("LOGINDISABLED" in m.capabilities, "LOGINDISABLED before TLS")
    m.starttls(ssl_context=ctx)
else:
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
check("AUTH=PLAIN" in m.capabilities, f"AUTH=PLAIN after TLS: {m.capabilities}")
typ, _ = m.login(user, password)
check(typ == "OK", "login")
typ, caps = m.capability()
for c in [b"UIDPLUS", b"MOVE", b"IDLE", b"QUOTA", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE", b"APPENDLIMIT="]:
    check(c in caps[0], f"capability {c}")

typ, boxes = m.list()
names = [b.decode() for b in boxes]
check(any('"INBOX"' in n or n.endswith(" INBOX") for n in names), f"INBOX listed: {names}")
check(any("\\Sent" in n and "Sent" in n for n in names), f"Sent has \\Sent: {names}")

msg = (b"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
       b"Message-ID: <one@example.com>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\n\r\nHello Alice\r\n")
typ, data = m.append("INBOX", "(\\Flagged)", None, msg)
check(typ == "OK" and b"APPENDUID" in data[0], f"APPENDUID: {data}")

typ, data = m.select("INBOX")
check(typ == "OK" and data[0] == b"1", f"SELECT: {data}")
typ, data = m.search(None, "ALL")
check(data[0] == b"1", f"SEARCH ALL: {data}")
typ, data = m.search(None, "SUBJECT", "Grüße".encode("utf-8")) if False else m.search(None, "FROM", "bob")
check(data[0] == b"1", f"SEARCH FROM: {data}")
typ, data = m.fetch("1", "(BODY.PEEK[])")
check(data[0][1] == msg, "the bytes appended are the bytes fetched")
typ, data = m.fetch("1", "(FLAGS)")
check(b"\\Flagged" in data[0] and b"\\Seen" not in data[0], f"PEEK leaves \\Seen: {data}")
typ, data = m.fetch("1", "(ENVELOPE)")
check(b'"bob" "example.com"' in data[0] and b"<one@example.com>" in data[0], f"ENVELOPE: {data}")
typ, data = m.fetch("1", "(BODYSTRUCTURE)")
check(b'"text" "plain"' in data[0].lower(), f"BODYSTRUCTURE: {data}")
typ, data = m.fetch("1", "(RFC822.TEXT)")
check(data[0][1] == b"Hello Alice\r\n", f"RFC822.TEXT: {data}")
typ, data = m.fetch("1", "(FLAGS)")
check(b"\\Seen" in data[0], f"RFC822.TEXT sets \\Seen: {data}")

typ, data = m.create("Projects/2026")
check(typ == "OK", "CREATE")
typ, data = m.copy("1", "Projects/2026")
check(typ == "OK" and b"COPYUID" in data[0], f"COPYUID: {data}")
typ, data = m.store("1", "+FLAGS", "(\\Deleted)")
check(typ == "OK" and b"\\Deleted" in data[0], f"STORE: {data}")
typ, data = m.expunge()
check(typ == "OK" and data[0] == b"1", f"EXPUNGE: {data}")
typ, data = m.status("Projects/2026", "(MESSAGES UNSEEN UIDNEXT)")
check(b"MESSAGES 1" in data[0] and b"UIDNEXT 2" in data[0], f"STATUS: {data}")

typ, data = m.select("Projects/2026")
typ, data = m.uid("MOVE", "1", "Trash")
check(typ == "OK", f"UID MOVE: {data}")
typ, data = m.status("Trash", "(MESSAGES)")
check(b"MESSAGES 1" in data[0], f"moved: {data}")
typ, data = m.getquotaroot("INBOX")
check(typ == "OK" and b"STORAGE" in data[1][0], f"GETQUOTAROOT: {data}")
typ, data = m.select("Trash")
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
check(data[0][1].startswith(b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"), f"HEADER.FIELDS: {data}")
typ, data = m.rename("Projects", "Work")
check(typ == "OK", "RENAME")
typ, data = m.list('""', "Work/*")
check(b"Work/2026" in data[0], f"renamed child: {data}")
typ, data = m.delete("Work")
check(typ == "NO", f"a mailbox with children is not deleted: {data}")
typ, data = m.select("Nope")
check(typ == "NO", "SELECT of a missing mailbox")
m.logout()
print("imaplib flow passed")
