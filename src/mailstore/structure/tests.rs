use super::*;

fn bytes(raw: &[u8], range: (u32, u32)) -> &[u8] {
    &raw[range.0 as usize..range.1 as usize]
}

#[test]
fn a_plain_message_is_one_leaf() {
    let raw = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\nworld\r\n";
    let s = Structure::of(raw);
    assert_eq!(s.size as usize, raw.len());
    let p = &s.root;
    assert_eq!((p.media_type.as_str(), p.subtype.as_str(), &p.kind), ("text", "plain", &Kind::Leaf));
    assert_eq!(bytes(raw, p.header), b"From: a@example.com\r\nSubject: hi\r\n\r\n");
    assert_eq!(bytes(raw, p.body), b"hello\r\nworld\r\n");
    assert_eq!(p.lines, 2);
    assert_eq!(s.section(&[1]), Some(p), "a non-multipart is its own part 1");
    assert_eq!(s.section(&[2]), None);
}

#[test]
fn multipart_children_are_numbered_and_exclude_the_boundary_crlf() {
    let raw = b"Subject: x\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\npreamble\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\nplain words\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\nsecond line\r\n--b--\r\nepilogue\r\n";
    let s = Structure::of(raw);
    assert_eq!((s.root.media_type.as_str(), s.root.subtype.as_str()), ("multipart", "alternative"));
    assert_eq!(s.root.params, [("boundary".to_string(), "b".to_string())]);
    let one = s.section(&[1]).unwrap();
    assert_eq!(bytes(raw, one.body), b"plain words");
    assert_eq!(
        bytes(raw, one.header),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n"
    );
    assert_eq!((one.lines, one.encoding.as_deref()), (1, Some("quoted-printable")));
    assert_eq!(one.params, [("charset".to_string(), "utf-8".to_string())]);
    let two = s.section(&[2]).unwrap();
    assert_eq!(bytes(raw, two.body), b"<p>html</p>\r\nsecond line");
    assert_eq!((two.subtype.as_str(), two.lines), ("html", 2));
    assert_eq!(s.section(&[3]), None);
    assert_eq!(s.section(&[0]), None);
}

#[test]
fn an_attached_message_has_its_own_parts() {
    let raw = b"Subject: fwd\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\r\nsee below\r\n\
--o\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"m.eml\"\r\n\r\n\
Subject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\ninner one\r\n--i\r\n\r\ninner two\r\n--i--\r\n\
--o--\r\n";
    let s = Structure::of(raw);
    let first = s.section(&[1]).unwrap();
    assert_eq!((first.media_type.as_str(), first.subtype.as_str()), ("text", "plain"), "the default type");
    assert_eq!(bytes(raw, first.body), b"see below");
    let msg = s.section(&[2]).unwrap();
    assert_eq!((msg.media_type.as_str(), msg.subtype.as_str()), ("message", "rfc822"));
    assert_eq!(msg.disposition, Some(("attachment".into(), vec![("filename".into(), "m.eml".into())])));
    assert!(matches!(msg.kind, Kind::Message(_)));
    assert_eq!(bytes(raw, s.section(&[2, 1]).unwrap().body), b"inner one");
    assert_eq!(bytes(raw, s.section(&[2, 2]).unwrap().body), b"inner two");
    assert!(bytes(raw, msg.body).starts_with(b"Subject: inner\r\n"));
}

#[test]
fn every_range_nests_inside_its_parent_for_the_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        check_nesting(&Structure::of(&raw).root, (0, raw.len() as u32));
        n += 1;
    }
    assert!(n >= 10, "the corpus is there");
}

/// Ranges in order and inside the parent's; used by the fuzz target too.
pub fn check_nesting(p: &Part, within: (u32, u32)) {
    assert!(within.0 <= p.header.0 && p.header.0 <= p.header.1, "{p:?} within {within:?}");
    assert!(p.header.1 <= p.body.0 && p.body.0 <= p.body.1 && p.body.1 <= within.1, "{p:?} within {within:?}");
    match &p.kind {
        Kind::Leaf => {}
        Kind::Multipart(children) => children.iter().for_each(|c| check_nesting(c, p.body)),
        Kind::Message(inner) => check_nesting(inner, p.body),
    }
}

#[test]
fn nesting_is_bounded() {
    let mut raw = Vec::new();
    for i in 0..200 {
        raw.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\nleaf\r\n");
    let s = Structure::of(&raw);
    let mut depth = 0;
    let mut p = &s.root;
    while let Kind::Multipart(c) = &p.kind {
        let Some(first) = c.first() else { break };
        p = first;
        depth += 1;
    }
    assert!(depth <= MAX_DEPTH, "{depth}");
    check_nesting(&s.root, (0, raw.len() as u32));
}

#[test]
fn stored_form_round_trips() {
    let raw = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/02-multipart-mixed-attachment.eml"),
    )
    .unwrap();
    let s = Structure::of(&raw);
    assert_eq!(Structure::decode(&s.encode()).unwrap(), s);
    assert!(Structure::decode(b"{\"size\": 1}").is_err());
}
