use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::link::{Link, MAX_REPLY_LINES, connect_any};
use super::session::Caps;
use super::transaction::dot_stuff;
use super::{Security, parse_url};

#[test]
fn parse_url_table() {
    use Security::*;
    let ok: &[(&str, &str, u16, Security)] = &[
        ("smtp://mx.example.com", "mx.example.com", 25, Plain),
        ("smtp://mx.example.com:2525", "mx.example.com", 2525, Plain),
        ("smtp+starttls://smtp.example.com", "smtp.example.com", 587, StartTls),
        ("smtp+starttls://smtp.example.com:25", "smtp.example.com", 25, StartTls),
        ("smtps://smtp.example.com", "smtp.example.com", 465, Implicit),
        ("smtps://smtp.example.com:4650/", "smtp.example.com", 4650, Implicit),
        ("SMTPS://smtp.example.com", "smtp.example.com", 465, Implicit),
        ("smtp://127.0.0.1:2525", "127.0.0.1", 2525, Plain),
        ("smtp://[::1]:2525", "::1", 2525, Plain),
        ("smtps://[2001:db8::1]", "2001:db8::1", 465, Implicit),
        ("smtp://localhost", "localhost", 25, Plain),
    ];
    for (url, host, port, sec) in ok {
        assert_eq!(parse_url(url), Ok((host.to_string(), *port, *sec)), "{url}");
    }
    let bad = [
        "mx.example.com",
        "http://mx.example.com",
        "file://data/outbox",
        "smtp://",
        "smtp://:25",
        "smtp://user@mx.example.com",
        "smtp://user:secret@mx.example.com",
        "smtp://mx.example.com:0",
        "smtp://mx.example.com:65536",
        "smtp://mx.example.com:+25",
        "smtp://mx.example.com:",
        "smtp://mx.example.com/path",
        "smtp://mx.example.com?x=1",
        "smtp://::1",
        "smtp://[::1",
        "smtp://[nothex]:25",
        "smtp://[::1]2525",
        "smtp://mx example.com",
    ];
    for url in bad {
        assert!(parse_url(url).is_err(), "{url} should be refused");
    }
    // The refusal never repeats a password.
    assert!(!parse_url("smtp://u:hunter2@mx.example.com").unwrap_err().contains("hunter2"));
}

#[test]
fn dot_stuffing_table() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"a\r\n", b"a\r\n"),
        (b"a", b"a\r\n"),
        (b".", b"..\r\n"),
        (b".\r\n", b"..\r\n"),
        (b"..\r\n", b"...\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n"),
        (b"a\r\n.b\r\n", b"a\r\n..b\r\n"),
        (b"a.b\r\n", b"a.b\r\n"),
        (b"a\r\n.", b"a\r\n..\r\n"),
        // Bare LF and bare CR become CRLF, and the next line is a line start.
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n"),
        (b"a\r.\rb", b"a\r\n..\r\nb\r\n"),
        (b"a\n\r\n.", b"a\r\n\r\n..\r\n"),
        // Smuggling attempts cannot end the data early.
        (b"x\n.\r\nMAIL FROM:<e@vil>\r\n", b"x\r\n..\r\nMAIL FROM:<e@vil>\r\n"),
        (b"x\r\n.\nRCPT", b"x\r\n..\r\nRCPT\r\n"),
        (b"\xc3\xa9\r\n", b"\xc3\xa9\r\n"),
    ];
    for (input, want) in cases {
        assert_eq!(dot_stuff(input), *want, "{:?}", String::from_utf8_lossy(input));
    }
    // No CRLF "." CRLF ever appears inside a stuffed body.
    let nasty = b".\r\n.\n.\r.\r\n\r\n.\r\n..\n";
    let out = dot_stuff(nasty);
    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(&out);
    assert!(!framed.windows(5).any(|w| w == b"\r\n.\r\n"));
}

#[test]
fn ehlo_capabilities() {
    let lines: Vec<String> = [
        "mx.example.com Hello",
        "PIPELINING",
        "size 10240000",
        "AUTH PLAIN LOGIN CRAM-MD5",
        "auth login",
        "STARTTLS",
        "8BITMIME",
        "SMTPUTF8",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let caps = Caps::parse(&lines);
    assert!(caps.pipelining && caps.starttls && caps.smtputf8 && caps.eight_bit_mime);
    assert_eq!(caps.size, Some(10_240_000));
    assert_eq!(caps.auth, ["PLAIN", "LOGIN", "CRAM-MD5"]);
    // The greeting line is not a keyword.
    assert_eq!(Caps::parse(&["PIPELINING".to_string()]), Caps::default());
}

fn link_over(bytes: &'static [u8]) -> Link {
    let (client, mut server) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        server.write_all(bytes).await.unwrap();
        // Keep the server end open until the client is done reading.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    Link::new(Box::new(client), Duration::from_millis(300), Duration::from_millis(300))
}

#[tokio::test]
async fn replies_are_read_whole_and_bounded() {
    let mut link = link_over(b"250-mx\r\n250-PIPELINING\n250 SIZE 5\r\n451 4.7.1 try later\r\n");
    let r = link.read_reply("EHLO").await.unwrap();
    assert_eq!(r.lines, ["mx", "PIPELINING", "SIZE 5"]);
    let r = link.read_reply("RCPT TO").await.unwrap();
    assert_eq!(r.text(), "451 4.7.1 try later");

    let mut link = link_over(b"250\r\n");
    assert_eq!(link.read_reply("x").await.unwrap().code(), 250);

    for bad in [&b"250-a\r\n251 b\r\n"[..], b"hello\r\n", b"25\r\n", b"250x\r\n", b"199 no\r\n"] {
        let leaked: &'static [u8] = Box::leak(bad.to_vec().into_boxed_slice());
        let e = link_over(leaked).read_reply("MAIL FROM").await.unwrap_err();
        assert!(e.0.contains("malformed reply during MAIL FROM"), "{e:?}");
    }

    let many: &'static [u8] = Box::leak("250-x\r\n".repeat(MAX_REPLY_LINES + 1).into_bytes().into_boxed_slice());
    assert!(link_over(many).read_reply("EHLO").await.unwrap_err().0.contains("overlong"));
    let long: &'static [u8] = Box::leak(format!("250 {}\r\n", "x".repeat(70_000)).into_bytes().into_boxed_slice());
    assert!(link_over(long).read_reply("EHLO").await.unwrap_err().0.contains("overlong"));

    // Half a reply, then silence: the command timeout.
    let e = link_over(b"250-half\r\n").read_reply("RSET").await.unwrap_err();
    assert!(e.0.contains("timed out") && e.0.contains("RSET"), "{e:?}");
}

#[tokio::test]
async fn connection_closed_mid_reply_is_lost() {
    let (client, mut server) = tokio::io::duplex(1024);
    server.write_all(b"250-a\r\n").await.unwrap();
    drop(server);
    let mut link = Link::new(Box::new(client), Duration::from_secs(1), Duration::from_secs(1));
    let e = link.read_reply("DATA").await.unwrap_err();
    assert!(e.0.contains("connection lost during DATA"), "{e:?}");
}

#[tokio::test]
async fn connect_falls_through_to_the_next_address() {
    // A port nobody listens on: bind, note it, close.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap();
    let s = connect_any(&[closed, open_addr], Duration::from_secs(2)).await.unwrap();
    assert_eq!(s.peer_addr().unwrap(), open_addr);

    let e = connect_any(&[closed], Duration::from_secs(2)).await.unwrap_err();
    assert!(e.contains("could not connect") && e.contains(&closed.to_string()), "{e}");
    assert!(connect_any(&[], Duration::from_secs(1)).await.unwrap_err().contains("no address"));
}
