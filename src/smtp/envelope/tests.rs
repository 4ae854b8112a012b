//! Table tests of the MAIL/RCPT line parser.

use super::*;

fn mail(line: &str) -> Result<EnvelopeCommand, EnvelopeError> {
    parse(line.as_bytes(), Verb::Mail, false)
}

fn rcpt(line: &[u8], smtputf8: bool) -> Result<EnvelopeCommand, EnvelopeError> {
    parse(line, Verb::Rcpt, smtputf8)
}

fn p(keyword: &str, value: Option<&str>) -> Param {
    Param { keyword: keyword.into(), value: value.map(str::to_string) }
}

#[test]
fn paths_are_kept_exactly() {
    let cases: &[(&str, &str)] = &[
        ("MAIL FROM:<alice@example.com>\r\n", "alice@example.com"),
        ("mail from:<Alice@Example.COM>", "Alice@Example.COM"),
        ("MAIL FROM: <alice@example.com>\r\n", "alice@example.com"),
        ("MAIL FROM : <alice@example.com>\r\n", "alice@example.com"),
        ("MAIL FROM:<>\r\n", ""),
        ("MAIL FROM:<\"a b\"@example.com>\r\n", "\"a b\"@example.com"),
        ("MAIL FROM:<\"a>b\"@example.com>\r\n", "\"a>b\"@example.com"),
        ("MAIL FROM:<\"a\\\"b\"@example.com>\r\n", "\"a\\\"b\"@example.com"),
        ("MAIL FROM:<\"bob+2026-12-25\"@example.com>\r\n", "\"bob+2026-12-25\"@example.com"),
        ("MAIL FROM:<@relay.example,@b.example:alice@example.com>\r\n", "alice@example.com"),
        ("MAIL FROM:<alice@[192.0.2.1]>\r\n", "alice@[192.0.2.1]"),
        ("MAIL FROM:<alice@[IPv6:2001:db8::1]>\r\n", "alice@[IPv6:2001:db8::1]"),
        ("MAIL FROM:<john..doe@example.com>\r\n", "john..doe@example.com"),
    ];
    for (line, want) in cases {
        let got = mail(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
        assert_eq!(got.address, *want, "{line:?}");
        assert!(got.params.is_empty());
    }
}

#[test]
fn bad_lines_and_paths() {
    use EnvelopeError::{BadAddress, Syntax};
    let syntax = [
        "MAIL FROM:alice@example.com",
        "MAIL FROM <alice@example.com>",
        "MAIL TO:<alice@example.com>",
        "MAILFROM:<alice@example.com>",
        "MAIL FROM:<alice@example.com",
        "MAIL FROM:<alice@example.com>SIZE=10",
        "MAIL FROM:<\"alice@example.com>",
    ];
    for line in syntax {
        assert_eq!(mail(line), Err(Syntax), "{line:?}");
    }
    let bad = [
        "MAIL FROM:<alice>",
        "MAIL FROM:<alice@>",
        "MAIL FROM:<@example.com>",
        "MAIL FROM:<a b@example.com>",
        "MAIL FROM:<alice@exa mple.com>",
        "MAIL FROM:<alice@example..com>",
        "MAIL FROM:<alice@example.com.>",
        "MAIL FROM:<alice@[]>",
        "MAIL FROM:<\"\"@example.com>",
        "MAIL FROM:<\"a\"b@example.com>",
        "MAIL FROM:<@relay.example alice@example.com>",
        "MAIL FROM:<alice\x1b[31m@example.com>",
        "MAIL FROM:<alice\0@example.com>",
        "MAIL FROM:<alice\r@example.com>",
        "MAIL FROM:<\"a\tb\"@example.com>",
        "MAIL FROM:<alice@example.com\x7f>",
    ];
    for line in bad {
        assert!(matches!(mail(line), Err(BadAddress(_))), "{line:?}: {:?}", mail(line));
    }
    let long = format!("MAIL FROM:<{}@example.com>", "a".repeat(250));
    assert!(matches!(mail(&long), Err(BadAddress(_))));
    assert!(matches!(rcpt(b"RCPT TO:<>", false), Err(BadAddress(_))));
}

#[test]
fn parameters_in_order_and_never_twice() {
    let got =
        mail("MAIL FROM:<a@x.example> SIZE=1000  body=8BITMIME SMTPUTF8 HOLDUNTIL=2027-01-15T10:00:00.5+01:00\r\n")
            .unwrap();
    assert_eq!(
        got.params,
        vec![
            p("SIZE", Some("1000")),
            p("BODY", Some("8BITMIME")),
            p("SMTPUTF8", None),
            p("HOLDUNTIL", Some("2027-01-15T10:00:00.5+01:00")),
        ]
    );
    assert_eq!(got.param("holduntil").and_then(|p| p.value.as_deref()), Some("2027-01-15T10:00:00.5+01:00"));
    let twice = [
        ("MAIL FROM:<a@x.example> HOLDFOR=3600 HOLDFOR=5", "HOLDFOR"),
        ("MAIL FROM:<a@x.example> HOLDUNTIL=2027-01-15T10:00:00Z holduntil=2027-01-15T10:00:01Z", "HOLDUNTIL"),
        ("MAIL FROM:<a@x.example> SIZE=1 Size=2", "SIZE"),
        ("MAIL FROM:<a@x.example> SMTPUTF8 smtputf8", "SMTPUTF8"),
        ("MAIL FROM:<a@x.example> BODY=7BIT BODY=7BIT", "BODY"),
    ];
    for (line, name) in twice {
        assert_eq!(mail(line), Err(EnvelopeError::Duplicate(name.into())), "{line:?}");
    }
    assert_eq!(
        rcpt(b"RCPT TO:<b@y.example> NOTIFY=NEVER notify=SUCCESS", false),
        Err(EnvelopeError::Duplicate("NOTIFY".into()))
    );
    for line in [
        "MAIL FROM:<a@x.example> SIZE=",
        "MAIL FROM:<a@x.example> =5",
        "MAIL FROM:<a@x.example> -X=5",
        "MAIL FROM:<a@x.example> X_Y=5",
        "MAIL FROM:<a@x.example> ENVID=a=b",
        "MAIL FROM:<a@x.example> ENVID=a\tb",
        "MAIL FROM:<a@x.example> ENVID=\u{e9}",
    ] {
        assert!(matches!(mail(line), Err(EnvelopeError::BadParameter(_))), "{line:?}: {:?}", mail(line));
    }
}

/// RFC 6531 §3.5: 8-bit addresses only with SMTPUTF8, and then only as UTF-8.
#[test]
fn eight_bit_addresses() {
    assert_eq!(mail("MAIL FROM:<j\u{f6}rg@example.com>"), Err(EnvelopeError::EightBit));
    assert_eq!(
        mail("MAIL FROM:<j\u{f6}rg@example.com> SMTPUTF8").map(|c| c.address),
        Ok("j\u{f6}rg@example.com".to_string())
    );
    assert_eq!(parse(b"MAIL FROM:<j\xf6rg@example.com> SMTPUTF8", Verb::Mail, false), Err(EnvelopeError::NotUtf8));
    assert_eq!(rcpt(b"RCPT TO:<b\xc3\xb6b@example.net>", false), Err(EnvelopeError::EightBit));
    assert_eq!(rcpt(b"RCPT TO:<bob@b\xc3\xbccher.example>", false), Err(EnvelopeError::EightBit));
    assert_eq!(rcpt(b"RCPT TO:<b\xc3\xb6b@example.net>", true).map(|c| c.address), Ok("b\u{f6}b@example.net".into()));
    assert_eq!(rcpt(b"RCPT TO:<b\xf6b@example.net>", true), Err(EnvelopeError::NotUtf8));
    assert_eq!(
        rcpt(b"RCPT TO:<\"b\xc3\xb6 b\"@example.net>", true).map(|c| c.address),
        Ok("\"b\u{f6} b\"@example.net".into())
    );
    // SMTPUTF8 on a RCPT line does not count: it belongs to MAIL.
    assert_eq!(rcpt(b"RCPT TO:<b\xc3\xb6b@example.net> SMTPUTF8", false), Err(EnvelopeError::EightBit));
}

/// UTF-8 brings controls of its own: C1 and the bidi overrides are refused like C0 (a C1
/// control in an SMTPUTF8 address was found by fuzzing).
#[test]
fn utf8_controls_are_refused_with_smtputf8() {
    for line in
        ["RCPT TO:<\u{8a}@m.example>", "RCPT TO:<bob\u{202e}moc.live@example.com>", "RCPT TO:<a\u{2066}b@example.com>"]
    {
        assert_eq!(
            rcpt(line.as_bytes(), true),
            Err(EnvelopeError::BadAddress("contains a control character")),
            "{line:?}"
        );
    }
    assert!(rcpt("RCPT TO:<jöran@example.com>".as_bytes(), true).is_ok());
}

/// A parameter value under SMTPUTF8 may be UTF-8, but not its controls (found by fuzzing).
#[test]
fn utf8_controls_in_parameter_values_are_refused() {
    let line = "MAIL FROM:<alice@example.com> SMTPUTF8 ENVID=a\u{84}b".as_bytes();
    assert_eq!(parse(line, Verb::Mail, false), Err(EnvelopeError::BadParameter("ENVID".into())));
    let line = "MAIL FROM:<alice@example.com> SMTPUTF8 ENVID=jöran".as_bytes();
    assert!(parse(line, Verb::Mail, false).is_ok());
}
