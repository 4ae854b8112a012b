//! Byte-exact storage: every fixture in tests/corpus/*.eml (regenerate them with
//! tests/corpus/make_corpus.py) is submitted over STARTTLS and must come back from the body
//! store exactly as it was written — 8-bit UTF-8 and Latin-1, leading dots, a 5000-octet
//! line, long folded headers, an S/MIME body — with one change: line ends are canonical (a bare
//! LF or a bare CR in the body is stored as CRLF, `message::canonical_line_ends`), once through
//! our own client and once through swaks.

use std::path::PathBuf;

use gatepost::store::sha256_hex;

use crate::peers::{PEER_TIMEOUT, queued_line, run};
use crate::support::*;

struct Fixture {
    name: String,
    raw: Vec<u8>,
}

impl Fixture {
    /// What the store must hold. SMTP's DATA can only end after a CRLF, so a message without
    /// a final CRLF necessarily gains one on the wire; then every line end is made CRLF (the
    /// one line-end rule); every other byte is kept exactly.
    fn expected(&self) -> Vec<u8> {
        let mut v = self.raw.clone();
        if !v.ends_with(b"\r\n") {
            v.extend_from_slice(b"\r\n");
        }
        gatepost::message::canonical_line_ends(&v).expect("fixture headers have no bare CR").into_owned()
    }
}

fn corpus_dir() -> PathBuf {
    repo().join("tests/corpus")
}

/// All fixtures, sorted by name. An empty or missing folder is a failure, never a pass.
fn corpus() -> Vec<Fixture> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()));
    let mut out: Vec<Fixture> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| Fixture {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            raw: std::fs::read(&p).unwrap(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!out.is_empty(), "no .eml fixtures in {}: run tests/corpus/make_corpus.py", dir.display());
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The corpus must keep covering the awkward cases; a regenerated corpus that lost them
/// (or a checkout that converted line endings) fails here rather than passing vacuously.
#[test]
fn corpus_covers_the_awkward_cases() {
    let all = corpus();
    let any = |f: &dyn Fn(&[u8]) -> bool| all.iter().any(|x| f(&x.raw));
    assert!(all.len() >= 12, "{} fixtures", all.len());
    assert!(any(&|r| contains(r, b"\r\n.\r\n")), "a line that is a lone dot");
    assert!(any(&|r| contains(r, b"\r\n..")), "a line starting with two dots");
    assert!(any(&|r| r.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r')), "a bare LF");
    assert!(any(&|r| !r.ends_with(b"\r\n")), "a message without a final CRLF");
    assert!(any(&|r| std::str::from_utf8(r).is_err()), "a non-UTF-8 (Latin-1) message");
    assert!(any(&|r| r.split(|&b| b == b'\n').any(|l| l.len() >= 5000)), "a line of 5000 octets");
    assert!(any(&|r| contains(r, b"multipart/signed")), "an S/MIME-like signed message");
    assert!(any(&|r| r.len() > 16 * 1024), "a message larger than one TLS record");
    for f in &all {
        assert!(f.raw.len() < 50_000, "{} is {} octets", f.name, f.raw.len());
        assert!(contains(&f.raw, b"alice@example.com"), "{}: From must be alice@example.com", f.name);
        // Outside the deliberate bare-LF fixture every LF is part of a CRLF.
        if !f.name.contains("bare-lf") {
            assert!(
                f.raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r') && f.raw.first() != Some(&b'\n'),
                "{} has LF line endings: was it converted on checkout? (see tests/corpus/.gitattributes)",
                f.name
            );
        }
    }
}

/// Compare stored and expected bodies, reporting the first difference rather than dumping
/// 40 KB of bytes.
fn assert_same(name: &str, via: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    let around = |v: &[u8]| {
        let from = at.saturating_sub(40);
        String::from_utf8_lossy(&v[from..(at + 40).min(v.len())]).escape_debug().to_string()
    };
    panic!(
        "{name} via {via}: stored body differs at octet {at} (stored {} octets, expected {})\n stored: …{}…\n expect: …{}…",
        got.len(),
        want.len(),
        around(got),
        around(want)
    );
}

fn check_stored(server: &TestServer, fixture: &Fixture, via: &str, reply: &str) {
    assert!(reply.starts_with("250 2.0.0 queued as "), "{} via {via}: {reply}", fixture.name);
    let id = queue_id(reply);
    let want = fixture.expected();
    let got = server.store().bodies().read(id.parse().unwrap()).unwrap();
    assert_same(&fixture.name, via, &got, &want);
    let rec = server.store().get_message(id.parse().unwrap()).unwrap().expect("record");
    assert_eq!(rec.size, want.len() as u64, "{}", fixture.name);
    assert_eq!(rec.body_sha256, sha256_hex(&want), "{}", fixture.name);
    assert_eq!(rec.sender, EMAIL);
    assert_eq!(rec.tls.as_deref(), Some("TLSv1.3"));
    if fixture.name.starts_with("03-") {
        // The encoded words are decoded for the record, while the body keeps them as sent.
        assert_eq!(rec.sender_name.as_deref(), Some("Ålice Ärger"), "{via}");
        assert_eq!(rec.subject.as_deref(), Some("Grüße aus Köln — 你好 und mehr"), "{via}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_is_stored_byte_exact() {
    let all = corpus();
    let server = TestServer::start().await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    for f in &all {
        let reply = c.submit(EMAIL, &["bob@example.net"], &f.raw).await;
        check_stored(&server, f, "Client", &reply);
    }
    assert_eq!(c.cmd("QUIT").await.get(..3), Some("221"));
    assert_eq!(server.store().message_count().unwrap(), all.len() as u64);
    server.stop().await;
}

/// The same corpus through swaks. With `--no-data-fixup` swaks sends `--data` verbatim and
/// adds only a CRLF: no dot-stuffing, no terminating dot, no line-ending repair. So we give it
/// the exact wire form (dot-stuffed, final CRLF, then ".") and swaks can send every fixture
/// exactly; none needs to be skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_swaks_is_stored_byte_exact() {
    if !peer("swaks") {
        return;
    }
    let all = corpus();
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    for f in &all {
        let mut wire = dot_stuff(&f.raw);
        wire.push(b'.');
        let path = tmp.path().join(&f.name);
        std::fs::write(&path, &wire).unwrap();
        let args: Vec<String> = [
            "-s",
            &server.submission.to_string(),
            "--timeout",
            "10s",
            "-tls",
            "-a",
            "PLAIN",
            "-au",
            USER,
            "-ap",
            PASSWORD,
            "-f",
            EMAIL,
            "-t",
            "bob@example.net",
            "--no-data-fixup",
            "--suppress-data",
            "--data",
            &format!("@{}", path.display()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ran = run("swaks", &args, PEER_TIMEOUT).await;
        assert_eq!(ran.code, Some(0), "{}: {ran}", f.name);
        check_stored(&server, f, "swaks", &queued_line(&ran.all()));
    }
    assert_eq!(server.store().message_count().unwrap(), all.len() as u64);
    server.stop().await;
}
