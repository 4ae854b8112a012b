//! The fuzz checks: one function per fuzz target, each turning arbitrary bytes into calls to
//! a public gatepost API and panicking only when an invariant breaks.
//!
//! This file is compiled twice: by the fuzz targets in `fuzz/fuzz_targets/` (through
//! `#[path = "../../tests/fuzz_seeds/checks.rs"] mod checks;`) and by the seed replay test
//! `tests/fuzz_seeds.rs`. Keep it free of dependencies other than gatepost itself and jiff,
//! which both crates have.
#![allow(dead_code)]

use std::sync::Arc;

use gatepost::accounts::LoginRefusal;
use gatepost::queue::Accepted;
use gatepost::smtp::data::DataReader;
use gatepost::smtp::session::{AuthOutcome, AuthedUser, ConnInfo, Session, SessionSettings, Step};
use gatepost::store::QueueRecord;
use jiff::{SignedDuration, Timestamp};

// ---------------------------------------------------------------------------------------------
// smtp_session
// ---------------------------------------------------------------------------------------------

/// The fixed time of every fuzzed session: 2026-11-23T10:00:00Z.
const NOW_SECS: i64 = 1_795_428_000;
const SESSION_ID: &str = "fz1";
/// Limits small enough that the fuzzer reaches them.
const MAX_MESSAGE_SIZE: u64 = 2000;
const MAX_RECIPIENTS: usize = 3;
const MAX_LINE_LENGTH: usize = 1000;
/// Header bytes of an `smtp_session` input: flags, then three split points.
pub const SESSION_HEADER: usize = 4;

/// `GATEPOST_FUZZ_VERBOSE=1` prints each session's dialogue to stderr (to read a crash input).
fn verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("GATEPOST_FUZZ_VERBOSE").is_some())
}

fn session_settings(rewrite_from: bool) -> Arc<SessionSettings> {
    Arc::new(SessionSettings {
        hostname: "gp.test".into(),
        max_message_size: MAX_MESSAGE_SIZE,
        max_recipients: MAX_RECIPIENTS,
        max_line_length: MAX_LINE_LENGTH,
        daily_hour: jiff::civil::time(8, 0, 0, 0),
        timezone: jiff::tz::TimeZone::UTC,
        timezone_name: "UTC".into(),
        max_hold: SignedDuration::from_hours(24 * 400),
        starttls_available: true,
        rewrite_from,
    })
}

fn alice() -> AuthedUser {
    AuthedUser { name: "alice".into(), addresses: vec!["alice@example.com".into()], timezone: None, send_as: vec![] }
}

/// Splits `body` into at most four chunks at the fractions given by `points` (each /255).
fn chunks<'a>(body: &'a [u8], points: &[u8]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|&p| p as usize * body.len() / 255).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        out.push(&body[start..cut]);
        start = cut;
    }
    out.push(&body[start..]);
    out
}

/// Checks the syntax of everything one `step` wrote: complete CRLF lines without other
/// control characters, each `DDD<SP or ->text`, continuation lines followed by the same code, and every error reply
/// naming the session on its last line.
fn check_replies(out: &[u8], input: &[u8]) {
    if out.is_empty() {
        return;
    }
    let show = || format!("output {:?} after input {:?}", String::from_utf8_lossy(out), String::from_utf8_lossy(input));
    assert!(out.ends_with(b"\r\n"), "output does not end with CRLF: {}", show());
    let mut lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
    assert_eq!(lines.pop(), Some(&b""[..]));
    let mut continued: Option<&[u8]> = None;
    for raw in lines {
        let line = raw.strip_suffix(b"\r").unwrap_or_else(|| panic!("bare LF in a reply: {}", show()));
        // RFC 5321 §2.3.8 and §4.2: CR only in CRLF, reply text is printable (UTF-8 allowed).
        assert!(
            !line.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f),
            "control character (CR, NUL, ESC, …) inside a reply line {:?}: {}",
            String::from_utf8_lossy(line),
            show()
        );
        assert!(
            line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && (line[3] == b' ' || line[3] == b'-'),
            "reply line {:?} does not start with a code: {}",
            String::from_utf8_lossy(line),
            show()
        );
        let code = &line[..3];
        if let Some(prev) = continued {
            assert_eq!(prev, code, "a multi-line reply changes its code: {}", show());
        }
        let last = line[3] == b' ';
        continued = if last { None } else { Some(code) };
        if last && (code[0] == b'4' || code[0] == b'5') {
            let text = String::from_utf8_lossy(line);
            assert!(text.contains("[session "), "error reply {text:?} does not name the session: {}", show());
        }
    }
    assert!(continued.is_none(), "output ends inside a multi-line reply: {}", show());
}

/// One client's whole input to a session. Byte 0: bit 0 set = implicit TLS from the start
/// (`tls: Some("TLSv1.3")`), bit 1 set = the queue fails every delivery, bit 2 set = From is
/// not rewritten (`rewrite_from = false`). Bytes 1..4: where the
/// rest is split into the chunks the session receives (fraction of the length, /255). The rest:
/// what the client sends. Requests are answered like the session tests do (only
/// alice/secret logs in). Returns the number of messages handed to the queue.
pub fn smtp_session(data: &[u8]) -> usize {
    let header = &data[..data.len().min(SESSION_HEADER)];
    let body = &data[header.len()..];
    let flags = header.first().copied().unwrap_or(0);
    let implicit_tls = flags & 1 != 0;
    let store_fails = flags & 2 != 0;
    let rewrite_from = flags & 4 == 0;
    let now = Timestamp::from_second(NOW_SECS).expect("valid time");
    let max_hold = SignedDuration::from_hours(24 * 400);

    let conn = ConnInfo {
        session_id: SESSION_ID.into(),
        peer: "192.0.2.7:40000".parse().expect("valid address"),
        tls: implicit_tls.then(|| "TLSv1.3".to_string()),
        trusted_user: None,
    };
    let mut s = Session::new(session_settings(rewrite_from), conn);

    let mut authed = false;
    let mut closed = false;
    let mut deliveries = 0;
    // The greeting, before the client says anything.
    let step = s.step(now);
    let greeting = s.take_output();
    assert!(greeting.starts_with(b"220 gp.test "), "greeting {:?}", String::from_utf8_lossy(&greeting));
    check_replies(&greeting, b"");
    assert!(matches!(step, Step::NeedInput), "greeting step {step:?}");

    for chunk in chunks(body, header.get(1..).unwrap_or(&[])) {
        if verbose() {
            eprintln!("C: {:?}", String::from_utf8_lossy(chunk));
        }
        s.receive(chunk);
        // Every request consumes at least one input line, so this bounds a healthy session.
        let mut budget = body.len() + 8;
        loop {
            budget = budget.checked_sub(1).expect("the session keeps asking without consuming input");
            let step = s.step(now);
            let out = s.take_output();
            if verbose() {
                eprintln!("S: {:?} then {step:?}", String::from_utf8_lossy(&out));
            }
            if closed {
                assert!(out.is_empty(), "output after Close: {:?}", String::from_utf8_lossy(&out));
                assert!(matches!(step, Step::Close), "step {step:?} after Close");
                break;
            }
            check_replies(&out, body);
            match step {
                Step::NeedInput => break,
                Step::Close => {
                    closed = true;
                    assert!(s.is_closed());
                    break;
                }
                Step::StartTls => {
                    assert!(!implicit_tls, "STARTTLS on an implicit-TLS connection");
                    assert!(
                        out.ends_with(b"220 2.0.0 ready to start TLS\r\n"),
                        "STARTTLS without 220: {:?}",
                        String::from_utf8_lossy(&out)
                    );
                    s.tls_started("TLSv1.3");
                    // RFC 3207 §4.2: the session starts over, unauthenticated.
                    authed = false;
                }
                Step::Authenticate { username, password } => {
                    let outcome = match (username.as_str(), password.as_str()) {
                        ("alice", "secret") => AuthOutcome::Accepted(alice()),
                        ("eve", _) => AuthOutcome::Throttled,
                        ("una", _) => AuthOutcome::Unavailable,
                        _ => AuthOutcome::Refused(LoginRefusal::BadCredentials),
                    };
                    authed = matches!(outcome, AuthOutcome::Accepted(_));
                    s.auth_done(outcome);
                }
                Step::Deliver(sub) => {
                    assert!(authed, "a message was queued without a successful AUTH: {sub:?}");
                    assert_eq!(sub.user, "alice", "queued for the wrong user");
                    assert_eq!(sub.sender.to_lowercase(), "alice@example.com", "queued with a foreign sender");
                    assert_eq!(sub.session_id, SESSION_ID);
                    assert!(sub.tls.is_some(), "queued over plaintext");
                    assert!(!sub.recipients.is_empty() && sub.recipients.len() <= MAX_RECIPIENTS, "{sub:?}");
                    assert!(sub.body.len() as u64 <= MAX_MESSAGE_SIZE, "body over the size limit queued");
                    for r in &sub.recipients {
                        assert!(r.release_at >= now && r.release_at <= now + max_hold, "release out of range: {r:?}");
                    }
                    check_queued_body(&sub.body, rewrite_from);
                    deliveries += 1;
                    if store_fails {
                        s.delivered(Err("disk full".into()));
                    } else {
                        let mut times: Vec<Timestamp> = sub.recipients.iter().map(|r| r.release_at).collect();
                        times.sort();
                        times.dedup();
                        s.delivered(Ok(Accepted {
                            id: "01JDTEST000000000000000000".parse().unwrap(),
                            release_times: times,
                        }));
                    }
                }
            }
        }
    }
    if !closed {
        // The client went quiet: the driver times the session out.
        assert!(matches!(s.timed_out(), Step::Close));
        let out = s.take_output();
        check_replies(&out, body);
        assert!(out.starts_with(b"421 "), "timeout reply {:?}", String::from_utf8_lossy(&out));
    }
    deliveries
}

/// What the queue receives is what the checks approved: canonical line ends (no bare CR or
/// LF), a header the rewrite accepts, exactly one From, every sender field alice's.
fn check_queued_body(body: &[u8], rewrite_from: bool) {
    let show = || String::from_utf8_lossy(body).into_owned();
    let canonical = gatepost::message::canonical_line_ends(body).expect("queued body has a bare CR in its header");
    assert_eq!(&*canonical, body, "queued body without canonical line ends: {:?}", show());
    assert!(gatepost::rewrite::header_of(body).is_ok(), "queued body the rewrite refuses: {:?}", show());
    let summary = gatepost::message::summarize(body);
    assert_eq!(summary.from_fields, 1, "queued with {} From fields: {:?}", summary.from_fields, show());
    assert!(summary.from_addresses.iter().all(|a| a == "alice@example.com"), "queued with From {summary:?}");
    if !rewrite_from {
        let ok = summary.sender_fields.iter().all(|(_, a)| !a.is_empty() && a.iter().all(|a| a == "alice@example.com"));
        assert!(ok, "queued with a foreign sender field, From not rewritten: {summary:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// smtp_envelope
// ---------------------------------------------------------------------------------------------

/// The MAIL/RCPT line parser: `smtp::envelope::fuzz_one` asserts its invariants itself.
pub fn smtp_envelope(data: &[u8]) {
    gatepost::smtp::envelope::fuzz_one(data);
}

// ---------------------------------------------------------------------------------------------
// smtp_data
// ---------------------------------------------------------------------------------------------

/// Header bytes of an `smtp_data` input: split point, line limit, size limit.
pub const DATA_HEADER: usize = 3;

/// What a reader says about one input: (consumed, done, finish()).
type DataResult = (usize, bool, Result<Vec<u8>, gatepost::smtp::data::DataProblem>);

fn read_whole(input: &[u8], max_size: u64, max_line: usize) -> DataResult {
    let mut r = DataReader::new(max_size, max_line);
    let (consumed, done) = r.feed(input);
    (consumed, done, r.finish())
}

fn read_split(input: &[u8], split: usize, max_size: u64, max_line: usize) -> DataResult {
    let mut r = DataReader::new(max_size, max_line);
    let (a, done_a) = r.feed(&input[..split]);
    assert!(a <= split, "consumed {a} of {split} bytes");
    let (consumed, done) = if done_a {
        (a, true)
    } else {
        assert_eq!(a, split, "stopped early without an end marker");
        let (b, done_b) = r.feed(&input[split..]);
        (split + b, done_b)
    };
    (consumed, done, r.finish())
}

/// A straightforward model of RFC 5321 §4.5.2: lines end at CRLF only, a line "." ends the
/// data, a leading "." of any other line is removed. Returns (consumed, body, longest line
/// including its line end) once the end marker is found; for the length limit a bare LF ends
/// a line too (it becomes CRLF when the message is stored).
fn model_data(input: &[u8]) -> Option<(usize, Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut start = 0;
    loop {
        let len = input[start..].windows(2).position(|w| w == b"\r\n")?;
        let line = &input[start..start + len];
        if line == b"." {
            let longest = body.split_inclusive(|&b| b == b'\n').map(<[u8]>::len).max().unwrap_or(0);
            return Some((start + 3, body, longest));
        }
        let line = line.strip_prefix(b".").unwrap_or(line);
        body.extend_from_slice(line);
        body.extend_from_slice(b"\r\n");
        start += len + 2;
    }
}

/// A DATA section. Byte 0: split point (fraction /255), byte 1: line limit (0xff = 1000),
/// byte 2: size limit in units of 16 octets (0xff = 1 MiB). The rest: what the client sends
/// after `354`, possibly with pipelined commands after the end marker.
pub fn smtp_data(data: &[u8]) {
    let header = &data[..data.len().min(DATA_HEADER)];
    let input = &data[header.len()..];
    let split = header.first().map_or(0, |&b| b as usize * input.len() / 255);
    let max_line = match header.get(1) {
        Some(0xff) | None => 1000,
        Some(&b) => b as usize,
    };
    let max_size = match header.get(2) {
        Some(0xff) | None => 1 << 20,
        Some(&b) => b as u64 * 16,
    };

    let whole = read_whole(input, max_size, max_line);
    let show = || {
        format!("input {:?} (max_size {max_size}, max_line {max_line}, split {split})", String::from_utf8_lossy(input))
    };
    let (consumed, done, ref result) = whole;
    assert!(consumed <= input.len(), "consumed {consumed} of {} bytes: {}", input.len(), show());
    if done {
        let prefix = &input[..consumed];
        assert!(
            prefix.ends_with(b"\r\n.\r\n") || prefix == b".\r\n",
            "ended without CRLF.CRLF: consumed {:?}: {}",
            String::from_utf8_lossy(prefix),
            show()
        );
    } else {
        assert_eq!(consumed, input.len(), "stopped early without an end marker: {}", show());
    }

    // Independent model: same end, same body, refused exactly when over a limit.
    match model_data(input) {
        None => assert!(!done, "reader found an end marker the model does not: {}", show()),
        Some((m_consumed, m_body, longest)) => {
            assert!(done, "reader missed the end marker: {}", show());
            assert_eq!(consumed, m_consumed, "end marker at a different place: {}", show());
            let over = m_body.len() as u64 > max_size || longest > max_line;
            match result {
                Ok(body) => {
                    assert!(!over, "accepted a body over a limit: {}", show());
                    assert_eq!(body, &m_body, "body differs from the model: {}", show());
                }
                Err(_) => assert!(over, "refused a body within the limits: {}", show()),
            }
        }
    }

    let parts = read_split(input, split, max_size, max_line);
    assert_eq!(parts, whole, "splitting the input at {split} changes the result: {}", show());
}

// ---------------------------------------------------------------------------------------------
// schedule
// ---------------------------------------------------------------------------------------------

/// `schedule::fuzz_one` asserts the release rules itself.
pub fn schedule(data: &[u8]) {
    gatepost::schedule::fuzz_one(data);
}

// ---------------------------------------------------------------------------------------------
// rewrite: the outgoing rewrite never panics, always leaves a header/body separator, exactly
// one From (the relay's), and no Bcc or Deliver-On (`gatepost::rewrite::fuzz_one` asserts it).

pub fn rewrite(data: &[u8]) {
    gatepost::rewrite::fuzz_one(data);
}

// ---------------------------------------------------------------------------------------------
// record_decode
// ---------------------------------------------------------------------------------------------

/// A stored queue record: decoding never panics, and what decodes survives a round trip.
/// Returns whether the input decoded.
pub fn record_decode(data: &[u8]) -> bool {
    let Ok(rec) = QueueRecord::decode(data) else {
        return false;
    };
    let encoded = rec.encode();
    let again = QueueRecord::decode(&encoded).unwrap_or_else(|e| {
        panic!("a decoded record does not decode after encode: {e}: {}", String::from_utf8_lossy(&encoded))
    });
    assert_eq!(again, rec, "round trip changes the record: {}", String::from_utf8_lossy(&encoded));
    assert_eq!(again.encode(), encoded, "encoding is not stable");
    true
}

// ---------------------------------------------------------------------------------------------
// message_summary
// ---------------------------------------------------------------------------------------------

/// Header summary of an arbitrary message: never panics, and its facts are well-formed. The
/// line-end rule (`message::canonical_line_ends`) runs first, as at the end of DATA: its output
/// has only CRLF line ends, running it again changes nothing, and a refusal points at a bare CR.
pub fn message_summary(data: &[u8]) {
    let show = || String::from_utf8_lossy(data).into_owned();
    match gatepost::message::canonical_line_ends(data) {
        Ok(canonical) => {
            let c: &[u8] = &canonical;
            for (i, &b) in c.iter().enumerate() {
                let bare_cr = b == b'\r' && c.get(i + 1) != Some(&b'\n');
                let bare_lf = b == b'\n' && (i == 0 || c[i - 1] != b'\r');
                assert!(!bare_cr && !bare_lf, "line end at {i} not CRLF after canonical_line_ends: {:?}", show());
            }
            let again = gatepost::message::canonical_line_ends(c).expect("canonical output refused");
            assert_eq!(&*again, c, "canonical_line_ends is not idempotent: {:?}", show());
            let stripped = |v: &[u8]| v.iter().filter(|&&b| b != b'\r' && b != b'\n').copied().collect::<Vec<u8>>();
            assert_eq!(stripped(c), stripped(data), "canonical_line_ends changed more than line ends: {:?}", show());
            summary_facts(c);
        }
        Err(e) => {
            let at = e.offset;
            assert!(
                data[at] == b'\r' && data.get(at + 1) != Some(&b'\n'),
                "refusal at {at} is no bare CR: {:?}",
                show()
            );
        }
    }
    summary_facts(data);
}

fn summary_facts(data: &[u8]) {
    let s = gatepost::message::summarize(data);
    for v in &s.deliver_on {
        // Unfolded: no line breaks left (a bare CR is not a line break, it stays as sent).
        assert!(!v.contains('\n'), "Deliver-On value not unfolded: {v:?}");
        assert_eq!(v.trim(), v, "Deliver-On value not trimmed: {v:?}");
    }
    if !s.from_addresses.is_empty() {
        assert!(s.from_fields >= 1, "From addresses without a From field: {s:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// trace_query
// ---------------------------------------------------------------------------------------------

/// The `gatepost trace` value parsers: never panic; a time that parses as both ends of a
/// range gives a non-empty range for a bare date and the same instant otherwise; an IP that
/// parses is canonical (parsing it again gives it back). The first byte picks the timezone.
pub fn trace_query(data: &[u8]) {
    use gatepost::audit::query::{End, parse_ip, parse_time};
    let Some((&pick, rest)) = data.split_first() else { return };
    let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe"];
    let tz = jiff::tz::TimeZone::get(zones[pick as usize % zones.len()]).expect("bundled zone");
    let text = String::from_utf8_lossy(rest);
    let now = Timestamp::from_second(NOW_SECS).expect("valid");
    let from = parse_time(&text, End::From, now, &tz);
    let to = parse_time(&text, End::To, now, &tz);
    assert_eq!(from.is_ok(), to.is_ok(), "{text:?}: one end parses, the other not");
    if let (Ok(f), Ok(t)) = (from, to) {
        assert!(f <= t, "{text:?}: from {f} after to {t}");
    }
    if let Err(e) = parse_time(&text, End::From, now, &tz) {
        assert!(e.contains("is not a time"), "{text:?}: {e}");
    }
    if let Ok(ip) = parse_ip(&text) {
        assert_eq!(parse_ip(&ip).as_ref(), Ok(&ip), "{text:?}: canonical form is not stable");
    }
}

// ---------------------------------------------------------------------------------------------
// quota: the growing quota's rule keeps its invariants for any numbers, huge ones included.
// Input: a scale byte (small numbers reach the interesting edges; large ones the overflow
// paths), a writer byte, then rule and state as little-endian u64s (missing bytes are 0).
// ---------------------------------------------------------------------------------------------

pub fn quota(data: &[u8]) {
    use gatepost::accounts::quota::{QuotaRule, Writer, decide};
    let (scale, rest) = data.split_first().map_or((0, &[][..]), |(s, r)| (*s, r));
    let (writer_byte, rest) = rest.split_first().map_or((0, &[][..]), |(w, r)| (*w, r));
    let mut words = rest.chunks(8).map(|c| {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        let n = u64::from_le_bytes(b);
        if scale % 2 == 0 { n % 1000 } else { n }
    });
    let mut next = || words.next().unwrap_or(0);
    let rule = QuotaRule {
        initial: next(),
        grow_when_free_below: next(),
        grow_by: next().max(1),
        ceiling: None,
        reserve: next(),
    };
    let ceiling = if writer_byte & 2 == 0 { None } else { Some(next()) };
    let (limit, used, size) = (next(), next(), next());
    let writer = if writer_byte & 1 == 0 { Writer::User } else { Writer::System };
    let at = format!("{rule:?} ceiling {ceiling:?} limit {limit} used {used} size {size} {writer:?}");
    let Ok(a) = decide(&rule, ceiling, limit, used, size, writer) else {
        // Refused: only a ceiling or sizes past u64 can refuse.
        assert!(ceiling.is_some() || used.checked_add(size).is_none(), "refused without a ceiling: {at}");
        return;
    };
    let after = used + size; // admitted, so it did not overflow
    assert!(a.limit >= limit, "the limit shrank: {at}");
    assert_eq!(a.grew, (a.limit > limit).then_some((limit, a.limit)), "{at}");
    match (writer, ceiling) {
        (Writer::User, _) | (Writer::System, None) => assert!(after <= a.limit, "admitted over the limit: {at}"),
        (Writer::System, Some(_)) => assert!(after <= a.limit.saturating_add(rule.reserve), "past the reserve: {at}"),
    }
    match ceiling {
        Some(c) => assert!(a.limit <= c.max(limit), "past the ceiling: {at}"),
        None if a.limit < u64::MAX => {
            assert_eq!((a.limit - limit) % rule.grow_by, 0, "not whole steps: {at}");
            let wanted = after.saturating_add(rule.grow_when_free_below);
            assert!(a.limit >= wanted, "free threshold not kept: {at}");
            assert!(a.limit == limit || a.limit - rule.grow_by < wanted, "more steps than needed: {at}");
        }
        None => {}
    }
}

// ---------------------------------------------------------------------------------------------
// blob_decode: stored blob bytes (damaged ones included) never panic the decoder nor make it
// allocate more than LZ4's ratio allows, and whatever is encoded decodes to itself.
// ---------------------------------------------------------------------------------------------

pub fn blob_decode(data: &[u8]) {
    use gatepost::blobs::BlobHash;
    use gatepost::blobs::codec::{decode, encode};
    // As stored: the fuzzer cannot forge SHA-256, so this is an error, but must not panic.
    if let Ok(raw) = decode(&BlobHash([0; 32]), data) {
        assert_eq!(BlobHash::of(&raw), BlobHash([0; 32]), "served bytes that do not match the name");
    }
    // As raw bytes: they come back exactly.
    let hash = BlobHash::of(data);
    let stored = encode(data);
    assert!(stored.len() <= data.len() + 1, "stored larger than raw plus the marker");
    assert_eq!(decode(&hash, &stored).expect("own encoding decodes"), data);
    pack_records(data);
}

/// As a pack (`blobs/packs.rs`): the walk never panics and returns only whole records that
/// decode to their names; a pack holding `data` then `data` again as a torn tail yields exactly
/// the one whole record.
fn pack_records(data: &[u8]) {
    use gatepost::blobs::codec::decode;
    use gatepost::blobs::packs::{pack_bytes, parse_records};
    for (hash, offset, len) in parse_records(data) {
        let stored = &data[offset as usize..offset as usize + len as usize];
        assert!(decode(&hash, stored).is_ok(), "a record that does not decode to its name");
    }
    let mut pack = pack_bytes(&[data]);
    let whole = pack.len();
    pack.extend_from_slice(&pack_bytes(&[data])[8..]);
    pack.truncate(whole + (pack.len() - whole) / 2);
    let records = parse_records(&pack);
    assert_eq!(records.len(), 1, "one whole record, the torn one ignored");
    let (_, offset, len) = records[0];
    assert_eq!(offset as usize + len as usize, whole);
}

// ---------------------------------------------------------------------------------------------
// structure: any bytes give a stored MIME structure whose ranges lie inside the message and
// inside their parent, nested no deeper than MAX_DEPTH, that survives its stored form, and
// whose every section lookup answers without panicking.
// ---------------------------------------------------------------------------------------------

pub fn structure(data: &[u8]) {
    use gatepost::mailstore::structure::{Kind, MAX_DEPTH, Part, Structure};
    fn depth(p: &Part) -> usize {
        1 + match &p.kind {
            Kind::Leaf => 0,
            Kind::Message(inner) => depth(inner),
            Kind::Multipart(c) => c.iter().map(depth).max().unwrap_or(0),
        }
    }
    fn ranges(p: &Part, within: (u32, u32)) {
        assert!(within.0 <= p.header.0 && p.header.0 <= p.header.1, "{p:?} within {within:?}");
        assert!(p.header.1 <= p.body.0 && p.body.0 <= p.body.1 && p.body.1 <= within.1, "{p:?} within {within:?}");
        assert!(!p.media_type.is_empty() && !p.subtype.is_empty());
    }
    /// The parts of a message (the root, or one encapsulated in a message/rfc822 part) as IMAP
    /// numbers them: a multipart's children, else the message's one part, itself.
    fn message(m: &Part, within: (u32, u32), path: &mut Vec<u32>, s: &Structure) {
        ranges(m, within);
        let parts: Vec<&Part> = match &m.kind {
            Kind::Multipart(c) => c.iter().collect(),
            _ => vec![m],
        };
        for (i, p) in parts.iter().enumerate() {
            path.push(i as u32 + 1);
            assert_eq!(s.section(path), Some(*p), "section {path:?}");
            below(p, if std::ptr::eq(*p, m) { within } else { m.body }, path, s);
            path.pop();
        }
    }
    /// What is numbered below part `p` (already found at `path`).
    fn below(p: &Part, within: (u32, u32), path: &mut Vec<u32>, s: &Structure) {
        ranges(p, within);
        match &p.kind {
            Kind::Leaf => {}
            Kind::Message(inner) => message(inner, p.body, path, s),
            Kind::Multipart(children) => {
                for (j, c) in children.iter().enumerate() {
                    path.push(j as u32 + 1);
                    assert_eq!(s.section(path), Some(c), "section {path:?}");
                    below(c, p.body, path, s);
                    path.pop();
                }
            }
        }
    }
    let s = Structure::of(data);
    assert_eq!(s.size as usize, data.len());
    let d = depth(&s.root);
    assert!(d <= MAX_DEPTH + 1, "nested {d} deep");
    message(&s.root, (0, data.len() as u32), &mut Vec::new(), &s);
    assert_eq!(Structure::decode(&s.encode()).expect("reads back"), s);
    let _ = s.section(&[0]);
    let _ = s.section(&[u32::MAX, 1]);
}

/// `imap_session`: any bytes a logged-in client sends get answers, never a panic; every
/// response ends with CRLF; a mail store shared across inputs (made once, with a small
/// ceiling so it cannot grow without bound) stays readable.
pub fn imap_session(data: &[u8]) {
    use std::sync::{Arc, OnceLock};
    static STORE: OnceLock<(Arc<gatepost::mailstore::MailStore>, std::path::PathBuf)> = OnceLock::new();
    let (store, _) = STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gatepost-fuzz-imap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let rule = gatepost::accounts::quota::QuotaRule {
            initial: 1 << 20,
            grow_when_free_below: 0,
            grow_by: 1 << 20,
            ceiling: Some(4 << 20),
            reserve: 0,
        };
        let db = gatepost::mailstore::MailDb::open(&dir.join("mailstore.redb"), rule).expect("mail store");
        let blobs = Arc::new(gatepost::blobs::memory::MemoryBlobs::default());
        (Arc::new(gatepost::mailstore::MailStore::with_blobs(db, blobs)), dir)
    });
    let out = gatepost::imap::script::run(store.clone(), "fuzz", data);
    if !out.is_empty() {
        assert!(out.ends_with(b"\r\n"), "a response ends without CRLF: {:?}", String::from_utf8_lossy(&out));
    }
    let user = store.db.find_user("fuzz").expect("readable").expect("made at login");
    store.db.mailboxes(user).expect("mailboxes readable");
}

// ---------------------------------------------------------------------------------------------
// mbox: any bytes, read in every format, never panic and never yield a message over the
// limit; and whatever mboxrd reads, written back as mboxrd, reads back the same (the one
// variant that round-trips).
// ---------------------------------------------------------------------------------------------

pub fn mbox(data: &[u8]) {
    use gatepost::sync::mbox::{MboxFormat, MboxItem, MboxReader};
    const LIMIT: u64 = 4096;
    for format in [MboxFormat::Mboxrd, MboxFormat::Mboxo, MboxFormat::Mboxcl2] {
        let mut read = Vec::new();
        for item in MboxReader::new(data, format, LIMIT) {
            match item {
                Ok(MboxItem::Message(m)) => {
                    assert!(m.raw.len() as u64 <= LIMIT, "a message over the limit");
                    read.push(m.raw);
                }
                Ok(MboxItem::TooLarge { .. }) => {}
                Err(_) => break,
            }
        }
        if format != MboxFormat::Mboxrd || read.iter().any(|m| m.contains(&b'\r') && !clean_crlf(m)) {
            continue;
        }
        let mut written = Vec::new();
        for m in &read {
            written.extend_from_slice(b"From fuzz Thu Dec  2 08:00:00 2026\n");
            let lines = m.strip_suffix(b"\r\n").unwrap_or(m);
            for line in lines.split(|&b| b == b'\n').take(if m.is_empty() { 0 } else { usize::MAX }) {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let gt = line.iter().take_while(|&&b| b == b'>').count();
                if line[gt..].starts_with(b"From ") {
                    written.push(b'>');
                }
                written.extend_from_slice(line);
                written.push(b'\n');
            }
            written.push(b'\n');
        }
        let again: Vec<Vec<u8>> = MboxReader::new(&written[..], MboxFormat::Mboxrd, LIMIT + 64)
            .map(|i| match i.expect("our own mboxrd reads") {
                MboxItem::Message(m) => m.raw,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(again, read, "mboxrd did not round-trip");
    }
}

/// Every CR is the CR of a CRLF.
fn clean_crlf(m: &[u8]) -> bool {
    m.iter().enumerate().all(|(i, &b)| b != b'\r' || m.get(i + 1) == Some(&b'\n'))
}

// ---------------------------------------------------------------------------------------------
// sync_plan
// ---------------------------------------------------------------------------------------------

/// Flags the fuzzer picks from: synced ones, unsynced ones, case variants, junk.
const PLAN_FLAGS: &[&str] = &[
    "\\Seen",
    "\\Answered",
    "\\Flagged",
    "\\Draft",
    "\\Deleted",
    "\\Recent",
    "$RemovedAtSource",
    "$Work",
    "$work",
    "\\seen",
    "",
    "a b",
    "(x)",
    "$Label1",
];

/// The sync planner over a listing and a map made from the bytes: every UID has one fate,
/// write-back never fights the source, a push turns what the source had into what gatepost
/// has; and the UID-set, batch and local-path helpers it relies on.
pub fn sync_plan(data: &[u8]) {
    use gatepost::mailstore::db::{Synced, same_flags};
    use gatepost::sync::plan::{Listing, batches, local_path, normalize, plan, uid_sets};
    use std::collections::BTreeSet;

    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let flags = |n: &mut dyn FnMut() -> Option<u8>| -> Vec<String> {
        let mask = u16::from(n().unwrap_or(0)) | (u16::from(n().unwrap_or(0)) << 8);
        PLAN_FLAGS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, f)| f.to_string()).collect()
    };
    let mut listing = Listing::default();
    let mut known: Vec<Synced> = Vec::new();
    while let Some(op) = next() {
        let uid = u32::from(next().unwrap_or(0) % 48) + 1;
        match op % 4 {
            0 => {
                listing.uids.insert(uid);
            }
            1 => {
                listing.uids.insert(uid);
                let f = flags(&mut next);
                listing.flags.insert(uid, f);
            }
            _ if known.iter().any(|k| k.uid == uid) => {}
            2 => {
                let seen = flags(&mut next);
                let local = flags(&mut next);
                known.push(Synced { uid, message: u64::from(uid), seen, local: Some(local) });
            }
            _ => {
                let seen = flags(&mut next);
                known.push(Synced { uid, message: u64::from(uid), seen, local: None });
            }
        }
    }
    known.sort_by_key(|k| k.uid);
    let p = plan(&listing, &known);
    let mapped: BTreeSet<u32> = known.iter().map(|k| k.uid).collect();
    assert!(p.fetch.windows(2).all(|w| w[0] < w[1]), "fetch ascending");
    for u in &p.fetch {
        assert!(listing.uids.contains(u) && !mapped.contains(u), "fetch {u}: listed and not mapped (tombstones too)");
    }
    for k in &known {
        let removed = p.changes.removed.contains(&k.uid);
        assert_eq!(removed, !listing.uids.contains(&k.uid), "uid {}: removed iff not listed", k.uid);
        let from = p.changes.from_source.iter().filter(|(u, _)| *u == k.uid).count();
        let push = p.push.iter().filter(|x| x.uid == k.uid).count();
        assert!(from + push <= 1 && !(removed && from + push > 0), "uid {}: one fate", k.uid);
        if push == 1 {
            assert!(k.local.is_some(), "nothing is pushed for a tombstone");
            if let Some(remote) = listing.flags.get(&k.uid) {
                assert!(same_flags(&normalize(remote), &normalize(&k.seen)), "a push while the source changed");
            }
        }
    }
    for (uid, f) in &p.changes.from_source {
        assert_eq!(f, &normalize(&listing.flags[uid]), "the source's flags, normalized");
    }
    for x in &p.push {
        let k = known.iter().find(|k| k.uid == x.uid).expect("a pushed uid is mapped");
        assert!(!x.add.is_empty() || !x.remove.is_empty(), "an empty push");
        assert!(x.add.iter().all(|a| !x.remove.iter().any(|r| r.eq_ignore_ascii_case(a))), "add and remove overlap");
        let mut after: Vec<String> = normalize(&k.seen);
        after.retain(|f| !x.remove.iter().any(|r| r.eq_ignore_ascii_case(f)));
        after.extend(x.add.iter().cloned());
        assert!(same_flags(&after, &x.result), "the push makes the source hold its result");
        assert!(same_flags(&x.result, &normalize(k.local.as_ref().unwrap())), "the result is the local flags");
        assert!(x.result.iter().all(|f| f != "$RemovedAtSource" && !f.eq_ignore_ascii_case("\\Deleted")));
    }

    // UID sets cover exactly their UIDs; batches keep order and bounds; local paths are names.
    let uids: Vec<u32> = listing.uids.iter().copied().collect();
    let max = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut back = Vec::new();
    for set in uid_sets(&uids, max) {
        for part in set.split(',') {
            let (a, b) = part.split_once(':').unwrap_or((part, part));
            back.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap());
        }
    }
    assert_eq!(back, uids, "uid sets");
    let sizes: Vec<(u32, u64)> = uids.iter().map(|&u| (u, u64::from(u) * 37 % 1000)).collect();
    let b = batches(&sizes, max, 2000);
    assert_eq!(b.concat(), uids, "batches keep every uid in order");
    assert!(b.iter().all(|x| !x.is_empty() && x.len() <= max), "batch bounds");
    let text = String::from_utf8_lossy(data);
    for delim in [Some("/"), Some("."), None] {
        let path = local_path("Acc", &text, delim);
        gatepost::mailstore::db::canonical_name(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(path.starts_with("Accounts/Acc/"));
    }
}

// ---------------------------------------------------------------------------------------------
// pop3_reply
// ---------------------------------------------------------------------------------------------

/// A POP3 server's lines: status, UIDL, LIST and byte-stuffing never panic, and what they
/// accept is what RFC 1939 allows.
pub fn pop3_reply(data: &[u8]) {
    use gatepost::sync::pop3::{list_line, status, uidl_line, unstuff};
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        match status(line) {
            Ok(rest) => assert!(line.starts_with("+OK") && line.contains(rest.trim_end_matches('\r'))),
            Err(_) => assert!(!line.starts_with("+OK")),
        }
        if let Some((n, uid)) = uidl_line(line) {
            assert!(n > 0 && !uid.is_empty() && uid.len() <= 70);
            assert!(uid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{uid:?}");
        }
        if let Some((n, _)) = list_line(line) {
            assert!(n > 0);
        }
    }
    for line in data.split(|&b| b == b'\n') {
        let u = unstuff(line);
        assert!(u.len() == line.len() || (u.len() + 1 == line.len() && line.starts_with(b"..")));
    }
}

// ---------------------------------------------------------------------------------------------
// autoconfig, dns_srv, http_response: discovery's parsers; each check lives beside its parser
// (`fuzz_one`), so the library's own tests can reach it too.
// ---------------------------------------------------------------------------------------------

/// An autoconfig file: never a panic; every server kept is usable as an account URL.
pub fn autoconfig(data: &[u8]) {
    gatepost::discover::autoconfig::fuzz_one(data);
}

/// A DNS answer read for SRV records: never a panic, names within bounds.
pub fn dns_srv(data: &[u8]) {
    gatepost::discover::dns::fuzz_one(data);
}

/// An HTTP answer (head, length, chunks): never a panic, a body never longer than the answer.
pub fn http_response(data: &[u8]) {
    gatepost::discover::https::fuzz_one(data);
}
