//! Unit tests of the pieces: the encoders (round trips against their own decoders and against
//! mail-parser), the header editor, address work, the footer and a few whole-message rules
//! that the golden files do not show.

use std::net::IpAddr;

use mail_parser::MessageParser;

use super::address::{self, from_field, phrase, strip_tags};
use super::encoding::*;
use super::footer::{body_close, render};
use super::headers::{Edits, fold_words, parse_block, parse_mime_value, set_param};
use super::mime::split_multipart;
use super::*;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// `data` without bare LFs: in MIME text every line break is a CRLF, and the encoder writes
/// a line break as the part's line end.
fn without_lf(mut data: Vec<u8>) -> Vec<u8> {
    data.retain(|&b| b != b'\n');
    data
}

fn assert_qp_shape(enc: &[u8]) {
    for line in enc.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(line.len() <= LINE_MAX, "QP line of {} chars: {:?}", line.len(), String::from_utf8_lossy(line));
        assert!(!matches!(line.last(), Some(b' ' | b'\t')), "trailing white space in QP");
        assert!(line.iter().all(|&b| (33..127).contains(&b) || b == b' ' || b == b'\t'), "raw byte in QP");
    }
}

#[test]
fn quoted_printable_round_trips() {
    for (seed, len) in [(1, 0), (2, 1), (3, 75), (4, 76), (5, 77), (6, 1000), (7, 5000)] {
        let mut data = without_lf(noise(seed, len));
        // Sprinkle CRLF line breaks, spaces before them and long runs without breaks.
        for (i, b) in data.iter_mut().enumerate() {
            if i % 97 == 50 {
                *b = b' ';
            }
        }
        let mut text = Vec::new();
        for (i, b) in data.iter().enumerate() {
            text.push(*b);
            if i % 131 == 51 {
                text.extend_from_slice(b"\r\n");
            }
        }
        let enc = qp_encode(&text, b"\r\n", 0);
        assert_qp_shape(&enc);
        assert_eq!(qp_decode(&enc), text, "seed {seed}");
    }
    let ascii = b"Hello = world \t\r\nsecond line  \r\n\r\nend ".to_vec();
    let enc = qp_encode(&ascii, b"\r\n", 0);
    assert_eq!(enc, b"Hello =3D world =09\r\nsecond line =20\r\n\r\nend=20".to_vec());
    assert_eq!(qp_decode(&enc), ascii);
}

#[test]
fn quoted_printable_prefers_breaking_after_spaces_and_honours_the_start_column() {
    let text = "word ".repeat(40);
    let enc = qp_encode(text.as_bytes(), b"\r\n", 0);
    assert_qp_shape(&enc);
    for line in enc.split(|&b| b == b'\n').filter(|l| l.ends_with(b"=\r")) {
        assert!(line.ends_with(b" =\r"), "soft break not after a space: {:?}", String::from_utf8_lossy(line));
    }
    let enc = qp_encode(&[b'x'; 10], b"\r\n", 70);
    assert_eq!(enc, b"xxxxx=\r\nxxxxx".to_vec());
    assert_eq!(qp_encode(b"a", b"\n", 76), b"=\na".to_vec());
}

#[test]
fn quoted_printable_decoding_is_lenient() {
    assert_eq!(qp_decode(b"soft=\r\nbreak"), b"softbreak");
    assert_eq!(qp_decode(b"lower =3d =c3=a9"), "lower = é".as_bytes());
    assert_eq!(qp_decode(b"bad =G1 =4"), b"bad =G1 =4");
    assert_eq!(qp_decode(b"padding   \r\nnext"), b"padding\r\nnext");
    assert_eq!(qp_decode(b"soft with padding=  \r\nx"), b"soft with paddingx");
    assert_eq!(qp_decode(b"lf\nonly\n"), b"lf\nonly\n");
    assert_eq!(qp_decode(b"dangling="), b"dangling");
}

#[test]
fn quoted_printable_splice_keeps_the_encoded_text_around_the_insertion() {
    let original = "<html><body><p>".to_string() + &"caf\u{e9} ".repeat(30) + "</p></body></html>\r\n";
    let enc = qp_encode(original.as_bytes(), b"\r\n", 0);
    let decoded = qp_decode(&enc);
    let at = body_close(&decoded).expect("</body>");
    let insert = "<p>fin \u{e9}t\u{e9}</p>\r\n".as_bytes();
    let out = qp_splice(&enc, at, insert, b"\r\n");
    assert_qp_shape(&out);
    let expected = [&decoded[..at], insert, &decoded[at..]].concat();
    assert_eq!(qp_decode(&out), expected);
    let cut = qp_offset(&enc, at);
    assert!(out.starts_with(&enc[..cut]) && out.ends_with(&enc[cut..]), "encoded text around the insertion changed");
    // Appending after text that ends in a soft break, in white space or in a literal '='.
    for enc in [&b"end=\r\n"[..], b"end  ", b"x==", b""] {
        let decoded = qp_decode(enc);
        let out = qp_splice(enc, decoded.len(), b"\r\nfooter\r\n", b"\r\n");
        assert_eq!(qp_decode(&out), [&decoded[..], b"\r\nfooter\r\n"].concat(), "after {enc:?}");
    }
}

#[test]
fn base64_round_trips_in_76_character_lines() {
    for len in [0, 1, 2, 3, 56, 57, 58, 114, 1000] {
        let data = noise(len as u64 + 9, len);
        let enc = base64_encode(&data, b"\r\n", true);
        assert!(enc.split(|&b| b == b'\n').all(|l| l.len() <= LINE_MAX + 1));
        assert_eq!(enc.is_empty(), data.is_empty());
        assert_eq!(base64_decode(&enc).as_deref(), Some(&data[..]));
        let bare = base64_encode(&data, b"\n", false);
        assert!(!bare.ends_with(b"\n"));
        assert_eq!(base64_decode(&bare).as_deref(), Some(&data[..]));
    }
    assert_eq!(base64_decode(b"aGV sbG8\r\n").as_deref(), Some(&b"hello"[..]), "no padding, white space");
    assert_eq!(base64_decode(b"not base64!"), None);
}

#[test]
fn single_byte_charsets() {
    assert_eq!(Charset::classify(None), Charset::Ascii);
    assert_eq!(Charset::classify(Some(" UTF8 ")), Charset::Utf8);
    assert_eq!(Charset::classify(Some("Latin1")), Charset::Latin1);
    assert_eq!(Charset::classify(Some("UTF-16LE")), Charset::Incompatible("utf-16le".into()));
    assert_eq!(Charset::classify(Some("koi8-r")), Charset::OtherAscii("koi8-r".into()));
    assert_eq!(encode_single_byte("caf\u{e9}", &Charset::Latin1), Some(b"caf\xe9".to_vec()));
    assert_eq!(encode_single_byte("5 \u{20ac}", &Charset::Latin1), None);
    assert_eq!(encode_single_byte("5 \u{20ac} \u{2014}", &Charset::Windows1252), Some(b"5 \x80 \x97".to_vec()));
    assert_eq!(encode_single_byte("\u{81}", &Charset::Windows1252), None, "C1 controls are not text");
    assert_eq!(single_byte_to_utf8(b"\x80 caf\xe9 \x81"), "\u{20ac} caf\u{e9} \u{81}".as_bytes());
}

#[test]
fn header_blocks_are_parsed_as_spans() {
    let m = b"Subject: one\r\n two\r\nX-Obs : v\r\nTo: a@b\nBcc: c\r\n\r\nbody";
    let b = parse_block(m, 0, m.len());
    let names: Vec<_> = b.fields.iter().map(|f| String::from_utf8_lossy(f.name(m)).into_owned()).collect();
    assert_eq!(names, ["Subject", "X-Obs", "To", "Bcc"]);
    assert_eq!(b.fields[0].bytes(m), b"Subject: one\r\n two\r\n");
    assert!(b.separator && b.eol == b"\r\n" && &m[b.body_start..] == b"body");
    let b = parse_block(b"A: 1\nB: 2", 0, 9);
    assert!(!b.separator && b.fields.len() == 2 && b.eol == b"\n");
    let m = b"A: 1\r\nnot a field\r\nBcc: x\r\n\r\n";
    let b = parse_block(m, 0, m.len());
    assert_eq!((b.fields.len(), b.separator, b.body_start), (1, false, 6), "a non-field line starts the body");
    assert!(parse_block(b"\r\nA: 1", 0, 6).fields.is_empty());
    let mbox = b"From alice@x Mon Nov 23 10:00:00 2026\n";
    assert!(parse_block(mbox, 0, mbox.len()).fields.is_empty());
}

#[test]
fn the_header_editor_copies_what_it_does_not_touch() {
    let m = b"A: 1\r\nB: 2\r\n folded\r\nC: 3";
    let b = parse_block(m, 0, m.len());
    let mut e = Edits::new(b.fields.len());
    e.remove(0);
    e.insert_after(1, b"B2: x\r\n");
    e.replace(2, b"C: new\r\n".to_vec());
    e.prepend = b"P: 0\r\n".to_vec();
    e.append = b"Z: end\r\n".to_vec();
    assert_eq!(e.render(m, &b), b"P: 0\r\nB: 2\r\n folded\r\nB2: x\r\nC: new\r\nZ: end\r\n".to_vec());
    let mut e = Edits::new(b.fields.len());
    e.append = b"Z: end\r\n".to_vec();
    assert_eq!(e.render(m, &b), b"A: 1\r\nB: 2\r\n folded\r\nC: 3\r\nZ: end\r\n".to_vec(), "last line ended first");
}

#[test]
fn folding_keeps_lines_short_and_unfolds_to_the_original() {
    let text = format!("Subject: {}", "lorem ipsum dolor ".repeat(12).trim_end());
    let folded = String::from_utf8(fold_words(&text, b"\r\n")).expect("utf-8");
    assert!(folded.split("\r\n").all(|l| l.len() <= 78), "{folded}");
    assert_eq!(folded.trim_end().replace("\r\n", ""), text);
    assert_eq!(fold_words("X: short", b"\n"), b"X: short\n".to_vec());
    let long = format!("X: {}", "y".repeat(100));
    assert_eq!(fold_words(&long, b"\r\n"), format!("{long}\r\n").into_bytes(), "never folds right after the name");
}

#[test]
fn mime_values_and_parameters() {
    let v = b"Content-Type: text/PLAIN (note); charset=\"iso-8859-1\"; format = flowed;\r\n name*=utf-8''a%20b\r\n";
    let b = parse_block(v, 0, v.len());
    let f = &b.fields[0];
    let p = parse_mime_value(v, f.value(v));
    assert_eq!(p.main, "text/plain");
    assert_eq!(p.param("charset").map(|p| p.value.as_str()), Some("iso-8859-1"));
    assert_eq!(p.param("format").map(|p| p.value.as_str()), Some("flowed"));
    assert!(p.param("name*").is_some());
    let set = set_param(v, f, "charset", "UTF-8", b"\r\n");
    assert_eq!(
        set,
        b"Content-Type: text/PLAIN (note); charset=\"UTF-8\"; format = flowed;\r\n name*=utf-8''a%20b\r\n".to_vec()
    );
    let v = b"Content-Type: text/plain;\r\n";
    let b = parse_block(v, 0, v.len());
    assert_eq!(
        set_param(v, &b.fields[0], "charset", "UTF-8", b"\r\n"),
        b"Content-Type: text/plain; charset=UTF-8\r\n".to_vec()
    );
    let v = format!("Content-Type: text/plain; x-long-parameter-name=\"{}\"\r\n", "v".repeat(30));
    let b = parse_block(v.as_bytes(), 0, v.len());
    let set = set_param(v.as_bytes(), &b.fields[0], "charset", "UTF-8", b"\r\n");
    assert!(set.ends_with(b"\";\r\n charset=UTF-8\r\n"), "{}", String::from_utf8_lossy(&set));
    for (v, want) in [
        (
            &b"Content-Type: text/plain; charset=\"us-ascii\r\n"[..],
            &b"Content-Type: text/plain; charset=\"UTF-8\r\n"[..],
        ),
        (b"Content-Type: text/plain; charset=\r\n", b"Content-Type: text/plain; charset=UTF-8\r\n"),
    ] {
        let b = parse_block(v, 0, v.len());
        assert_eq!(set_param(v, &b.fields[0], "charset", "UTF-8", b"\r\n"), want.to_vec(), "the line end stays");
    }
    let p = parse_mime_value(b"multipart/mixed; boundary=\"a\\\"b\"", 0..31);
    assert_eq!(p.param("boundary").map(|p| p.value.as_str()), Some("a\"b"));
}

#[test]
fn tags_are_stripped_only_from_whole_addresses_outside_quotes_and_comments() {
    let tags = [("bob+2026-12-25@example.net".to_string(), "bob@example.net".to_string())];
    let strip = |v: &str| strip_tags(v.as_bytes(), 3, &tags).map(|b| String::from_utf8(b).expect("utf-8"));
    assert_eq!(strip("To: <BOB+2026-12-25@Example.NET>").as_deref(), Some("To: <BOB@Example.NET>"));
    assert_eq!(strip("To: \"bob+2026-12-25@example.net\" <x@y>"), None);
    assert_eq!(strip("To: x@y (bob+2026-12-25@example.net)"), None);
    assert_eq!(strip("To: bob+2026-12-25@example.network, abob+2026-12-25@example.net"), None);
    assert_eq!(
        strip("To: bob+2026-12-25@example.net,bob+2026-12-25@example.net\r\n").as_deref(),
        Some("To: bob@example.net,bob@example.net\r\n")
    );
    let odd = [("bob+2026-12-25@example.net".to_string(), "robert@example.org".to_string())];
    assert_eq!(strip_tags(b"To: bob+2026-12-25@example.net", 3, &odd), Some(b"To: robert@example.org".to_vec()));
}

#[test]
fn display_names_are_quoted_or_encoded() {
    assert_eq!(phrase("Alice \"Al\" O\\Brien"), "\"Alice \\\"Al\\\" O\\\\Brien\"");
    let long = "Zoë ".repeat(30);
    for name in ["Zoë via gatepost", long.trim_end(), "日本語の名前 via gatepost"] {
        let field = from_field(name, "relay@thirdparty.example", b"\r\n");
        let text = String::from_utf8(field.clone()).expect("ascii");
        assert!(text.is_ascii() && text.split("\r\n").all(|l| l.len() <= 76), "{text}");
        let raw = [&field[..], b"\r\n"].concat();
        let msg = MessageParser::default().parse_headers(&raw).expect("parses");
        let from = msg.from().and_then(|a| a.first()).expect("a From address");
        assert_eq!(from.name(), Some(name));
        assert_eq!(from.address(), Some("relay@thirdparty.example"));
    }
    assert_eq!(from_field(" \r\n ", "relay@x.example", b"\n"), b"From: relay@x.example\n".to_vec());
    assert_eq!(
        from_field("A\r\nBcc: evil@x", "relay@x.example", b"\n"),
        b"From: \"A Bcc: evil@x\" <relay@x.example>\n".to_vec()
    );
}

/// A display name of any length gives a From whose lines fit RFC 5322's 998 octets: a long
/// name is shortened (and folded at its spaces); a short one is kept whole.
#[test]
fn huge_display_names_are_shortened() {
    for name in [
        "A".repeat(5000),
        "A ".repeat(3000),
        "\u{e9}".repeat(3000),
        format!("{}\"{}", "x".repeat(990), "y".repeat(990)),
    ] {
        let field = from_field(&name, "relay@thirdparty.example", b"\r\n");
        let text = String::from_utf8(field.clone()).expect("ascii");
        assert!(text.split("\r\n").all(|l| l.len() <= 998), "{} octets: {text}", text.len());
        let raw = [&field[..], b"\r\n"].concat();
        let msg = MessageParser::default().parse_headers(&raw).expect("parses");
        let from = msg.from().and_then(|a| a.first()).expect("a From address");
        assert_eq!(from.address(), Some("relay@thirdparty.example"), "{text}");
        let shown = from.name().expect("a name");
        assert!(shown.chars().count() <= address::MAX_NAME_CHARS && shown.ends_with("..."), "{shown}");
    }
    let exact = "B".repeat(address::MAX_NAME_CHARS);
    let field = String::from_utf8(from_field(&exact, "r@x.example", b"\n")).expect("ascii");
    assert_eq!(field, format!("From: \"{exact}\"\n <r@x.example>\n"));
}

#[test]
fn templates_and_body_close() {
    assert_eq!(
        render("{name} <{address}> {nope} {", &[("name", "{address}"), ("address", "a@b")]),
        "{address} <a@b> {nope} {"
    );
    assert_eq!(body_close(b"<body>x</BODY >y</body"), Some(7));
    assert_eq!(body_close(b"</body></body>"), Some(7));
    assert_eq!(body_close(b"<p>no close</p>"), None);
}

#[test]
fn multipart_bodies_split_at_delimiter_lines_only() {
    let m = b"preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b2\r\n--b \r\n\r\ntwo\r\n--b--\r\nepilogue\r\n--b\r\nnot a part";
    let parts = split_multipart(m, 0..m.len(), b"b").expect("parts");
    let texts: Vec<_> = parts.iter().map(|r| String::from_utf8_lossy(&m[r.clone()]).into_owned()).collect();
    assert_eq!(texts, ["A: 1\r\n\r\none\r\n--b2", "\r\ntwo"]);
    let parts = split_multipart(b"--b\nx\n", 0..6, b"b").expect("unclosed");
    assert_eq!((parts.len(), parts[0].clone()), (1, 4..6));
    assert_eq!(split_multipart(b"no delimiter", 0..12, b"b"), None);
}

fn env_with<'a>(tagged: &'a [(String, String)], name: Option<&'a str>, ip: IpAddr, helo: &'a str) -> Envelope<'a> {
    Envelope {
        queue_id: "Q1",
        user_address: "alice@example.com",
        sender_name: name,
        client_ip: ip,
        helo,
        tls: None,
        submitted_at: jiff::Timestamp::UNIX_EPOCH,
        tagged,
    }
}

fn policy(intro: &str) -> RewritePolicy {
    RewritePolicy {
        relay_address: "relay@r.example".into(),
        system_intro: intro.into(),
        hostname: "gw.example".into(),
        ..RewritePolicy::default()
    }
}

#[test]
fn whole_message_rules() {
    let env = env_with(&[], Some("Al"), IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]), "evil\r\nBcc: x (y)");
    let run = |m: &[u8], p: &RewritePolicy| String::from_utf8(rewrite(m, &env, p).expect("rewrites")).expect("utf-8");
    for bad in [&b""[..], b"\r\nbody", b"From alice Mon Nov 23\r\n\r\n", b" continuation\r\n\r\n"] {
        assert_eq!(rewrite(bad, &env, &policy("")), Err(RewriteError::NoHeader));
    }
    let out = run(b"From: a@x\r\nFrom: b@x\r\nTo: c@x\r\n\r\nhi\r\n", &policy(""));
    assert!(out.starts_with("Received: from evil__Bcc:_x__y_ ([192.0.2.1]) by gw.example (gatepost)\r\n with ESMTPA id Q1; Thu, 1 Jan 1970 00:00:00 +0000\r\n"), "{out}");
    assert_eq!(out.matches("From: ").count(), 1, "the second From goes: {out}");
    assert!(out.contains("From: \"Al via gatepost\" <relay@r.example>\r\nReply-To: alice@example.com\r\nTo: c@x\r\n"));
    let out = run(b"Subject: no from\r\n\r\nhi\r\n", &policy(""));
    assert!(out.contains("Subject: no from\r\nFrom: \"Al via gatepost\" <relay@r.example>\r\nReply-To: alice@example.com\r\nMessage-ID: <Q1@gw.example>\r\nDate: "), "{out}");
    let out = run(b"From: a@x\r\nbroken line\r\n", &policy(""));
    assert!(out.contains("\r\n\r\nbroken line\r\n\r\n--\r\nSent by alice@example.com"), "blank line inserted: {out}");
}

#[test]
fn parts_that_cannot_take_the_footer_are_left_alone_with_a_note() {
    let env = env_with(&[], None, IpAddr::from([192, 0, 2, 1]), "h");
    let cases: [(&[u8], Note); 4] = [
        (b"Content-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfeh\x00", Note::Charset("utf-16".into())),
        (b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!notbase64!!\r\n", Note::Encoding("base64".into())),
        (b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n\r\nsigned\r\n--s--\r\n--o--\r\n", Note::Protected("multipart/signed".into())),
        (b"Content-Type: image/png\r\n\r\nPNG", Note::NoTextBody),
    ];
    for (m, note) in cases {
        let r = rewrite_with_notes(m, &env, &policy("")).expect("rewrites");
        assert_eq!(r.notes, [note]);
        assert!(r.message.ends_with(&m[parse_block(m, 0, m.len()).body_start..]), "body changed");
    }
}

#[test]
fn a_child_part_gaining_utf8_gets_its_own_mime_header_edits() {
    let env = env_with(&[], None, IpAddr::from([192, 0, 2, 1]), "h");
    let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nplain = text\r\n--b--\r\n";
    let out = String::from_utf8(rewrite(m, &env, &policy("Gr\u{fc}\u{df}e")).expect("rewrites")).expect("utf-8");
    assert!(!out.contains("MIME-Version"), "only the top level gets MIME-Version: {out}");
    assert!(
        out.ends_with("--b\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nplain =3D text\r\n\r\n--\r\nSent by alice@example.com through gatepost. Gr=C3=BC=C3=9Fe\r\n--b--\r\n"),
        "{out}"
    );
}
