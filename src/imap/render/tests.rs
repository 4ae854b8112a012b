use super::*;

fn render_env(header: &[u8]) -> String {
    let mut o = Out::default();
    envelope(&mut o, header);
    String::from_utf8(o.take()).unwrap()
}

#[test]
fn envelope_fields_in_order_with_defaults_and_groups() {
    let h = b"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
              From: \"Bob B.\" <bob@example.com>\r\nTo: alice@example.com, Team: carol@example.org;\r\n\
              Message-ID: <m1@example.com>\r\n\r\n";
    assert_eq!(
        render_env(h),
        "(\"Tue, 01 Dec 2026 10:00:00 +0100\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" \
         ((\"Bob B.\" NIL \"bob\" \"example.com\")) ((\"Bob B.\" NIL \"bob\" \"example.com\")) \
         ((\"Bob B.\" NIL \"bob\" \"example.com\")) \
         ((NIL NIL \"alice\" \"example.com\")(NIL NIL \"Team\" NIL)(NIL NIL \"carol\" \"example.org\")(NIL NIL NIL NIL)) \
         NIL NIL NIL \"<m1@example.com>\")"
    );
    assert_eq!(render_env(b"\r\n"), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", "a message without a header");
}

#[test]
fn non_ascii_names_go_back_as_encoded_words() {
    let env = render_env("From: Jürgen <j@example.de>\r\n\r\n".as_bytes());
    assert!(env.contains("\"=?utf-8?b?SsO8cmdlbg==?=\" NIL \"j\" \"example.de\""), "{env}");
}

#[test]
fn bodystructure_of_a_multipart_with_an_attached_message() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\nthere\r\n\
                --b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n";
    let s = Structure::of(raw);
    let mut o = Out::default();
    body_structure(&mut o, &s, raw, false);
    let body = String::from_utf8(o.take()).unwrap();
    assert_eq!(
        body,
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 9 2)\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 28 \
         (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1) 3) \"mixed\")"
    );
    body_structure(&mut o, &s, raw, true);
    let ext = String::from_utf8(o.take()).unwrap();
    assert!(ext.ends_with(" \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)"), "{ext}");
    assert_eq!(section(&s, raw, &Section::Part(vec![1])), b"hi\r\nthere");
    assert_eq!(section(&s, raw, &Section::Header(vec![2])), b"Subject: inner\r\n\r\n");
    assert_eq!(section(&s, raw, &Section::Text(vec![2])), b"inner body");
    assert_eq!(section(&s, raw, &Section::Mime(vec![1])), b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
    assert_eq!(section(&s, raw, &Section::Part(vec![9])), b"", "a part that is not there is empty");
    let fields = section(&s, raw, &Section::Fields(vec![], vec!["content-type".into()], false));
    assert_eq!(fields, b"Content-Type: multipart/mixed; boundary=b\r\n\r\n");
}
