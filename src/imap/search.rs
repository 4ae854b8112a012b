//! SEARCH (RFC 3501 §6.4.4; MODSEQ from RFC 7162 §3.1.5). Keys are evaluated per message;
//! the bytes are read only when a key needs the header or the text, once per message.
//! Text matching is case-insensitive substring over the raw bytes and, for headers, over the
//! decoded value too (so `SUBJECT Büro` finds an encoded-word subject).

use imap_types::search::SearchKey;

use super::sequence::resolve;
use crate::mailstore::db::Member;
use crate::message::header::parse_block;

/// One message as SEARCH sees it.
pub struct Candidate<'a> {
    pub msn: u32,
    pub member: &'a Member,
    pub recent: bool,
    /// Every UID of the view (for UID and sequence-set keys).
    pub view: &'a [u32],
    /// Reads the raw bytes on first need.
    pub raw: &'a dyn Fn() -> Option<Vec<u8>>,
}

/// Whether a key needs the message's bytes.
pub fn needs_raw(key: &SearchKey<'_>) -> bool {
    use SearchKey as K;
    match key {
        K::And(keys) => keys.as_ref().iter().any(needs_raw),
        K::Not(k) => needs_raw(k),
        K::Or(a, b) => needs_raw(a) || needs_raw(b),
        K::Bcc(_) | K::Body(_) | K::Cc(_) | K::From(_) | K::Header(..) | K::Subject(_) | K::Text(_) | K::To(_) => true,
        K::SentBefore(_) | K::SentOn(_) | K::SentSince(_) => true,
        _ => false,
    }
}

pub fn uses_modseq(key: &SearchKey<'_>) -> bool {
    use SearchKey as K;
    match key {
        K::And(keys) => keys.as_ref().iter().any(uses_modseq),
        K::Not(k) => uses_modseq(k),
        K::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        K::ModSequence { .. } => true,
        _ => false,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let needle: Vec<u8> = needle.to_ascii_lowercase();
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(&needle))
}

fn contains_text(hay: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    hay.to_lowercase().contains(&needle)
}

fn date_of(d: &imap_types::datetime::NaiveDate) -> Option<jiff::civil::Date> {
    d.as_ref().to_string().parse().ok()
}

struct Lazy<'a> {
    c: &'a Candidate<'a>,
    raw: Option<Option<Vec<u8>>>,
}

impl Lazy<'_> {
    fn raw(&mut self) -> &[u8] {
        if self.raw.is_none() {
            self.raw = Some((self.c.raw)());
        }
        self.raw.as_ref().and_then(|r| r.as_deref()).unwrap_or_default()
    }

    /// The values of a header field: raw (unfolded) and decoded.
    fn field(&mut self, name: &str) -> Vec<(Vec<u8>, String)> {
        let raw = self.raw().to_vec();
        let block = parse_block(&raw, 0, raw.len());
        let header = &raw[..block.body_start.min(raw.len())];
        let parsed = mail_parser::MessageParser::default().parse_headers(header);
        let mut out = Vec::new();
        for f in block.fields.iter().filter(|f| f.is(&raw, name)) {
            let v: Vec<u8> = raw[f.value(&raw)].iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
            out.push((v, String::new()));
        }
        if let Some(p) = parsed {
            let decoded: Vec<String> = p
                .header_values(name)
                .map(|v| match v {
                    mail_parser::HeaderValue::Text(t) => t.to_string(),
                    mail_parser::HeaderValue::TextList(l) => l.join(" "),
                    mail_parser::HeaderValue::Address(a) => a
                        .iter()
                        .map(|a| {
                            format!("{} <{}>", a.name.as_deref().unwrap_or(""), a.address.as_deref().unwrap_or(""))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => String::new(),
                })
                .collect();
            for (i, d) in decoded.into_iter().enumerate() {
                if let Some(slot) = out.get_mut(i) {
                    slot.1 = d;
                }
            }
        }
        out
    }

    fn header_has(&mut self, name: &str, needle: &[u8]) -> bool {
        let values = self.field(name);
        if needle.is_empty() {
            return !values.is_empty();
        }
        values.iter().any(|(raw, decoded)| contains(raw, needle) || contains_text(decoded, needle))
    }

    fn sent_date(&mut self) -> Option<jiff::civil::Date> {
        let values = self.field("Date");
        let (raw, _) = values.first()?;
        let text = String::from_utf8_lossy(raw);
        let dt = mail_parser::DateTime::parse_rfc822(text.trim())?;
        let ts = jiff::Timestamp::from_second(dt.to_timestamp()).ok()?;
        // SENT* compare the date as written, ignoring the zone (RFC 3501 §6.4.4).
        let offset = i64::from(dt.tz_hour) * 3600 + i64::from(dt.tz_minute) * 60;
        let offset = if dt.tz_before_gmt { -offset } else { offset };
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(offset as i32).ok()?);
        Some(ts.to_zoned(tz).date())
    }
}

/// Whether `c` matches every key of `keys`.
pub fn matches(keys: &[SearchKey<'_>], c: &Candidate<'_>) -> bool {
    let mut lazy = Lazy { c, raw: None };
    keys.iter().all(|k| eval(k, &mut lazy))
}

fn has(c: &Candidate<'_>, flag: &str) -> bool {
    c.member.flags().any(|f| f.eq_ignore_ascii_case(flag))
}

fn eval(key: &SearchKey<'_>, l: &mut Lazy<'_>) -> bool {
    use SearchKey as K;
    let c = l.c;
    let internal = || c.member.message.internaldate.to_zoned(jiff::tz::TimeZone::UTC).date();
    match key {
        K::And(keys) => keys.as_ref().iter().all(|k| eval(k, l)),
        K::Or(a, b) => eval(a, l) || eval(b, l),
        K::Not(k) => !eval(k, l),
        K::All => true,
        K::SequenceSet(set) => {
            resolve(set, c.view, false).map(|u| u.binary_search(&c.member.uid).is_ok()).unwrap_or(false)
        }
        K::Uid(set) => resolve(set, c.view, true).map(|u| u.binary_search(&c.member.uid).is_ok()).unwrap_or(false),
        K::Answered => has(c, "\\Answered"),
        K::Unanswered => !has(c, "\\Answered"),
        K::Deleted => c.member.deleted,
        K::Undeleted => !c.member.deleted,
        K::Draft => has(c, "\\Draft"),
        K::Undraft => !has(c, "\\Draft"),
        K::Flagged => has(c, "\\Flagged"),
        K::Unflagged => !has(c, "\\Flagged"),
        K::Seen => has(c, "\\Seen"),
        K::Unseen => !has(c, "\\Seen"),
        K::Recent => c.recent,
        K::Old => !c.recent,
        K::New => c.recent && !has(c, "\\Seen"),
        K::Keyword(k) => has(c, k.as_ref()),
        K::Unkeyword(k) => !has(c, k.as_ref()),
        K::Larger(n) => c.member.message.size > u64::from(*n),
        K::Smaller(n) => c.member.message.size < u64::from(*n),
        K::Before(d) => date_of(d).is_some_and(|d| internal() < d),
        K::On(d) => date_of(d).is_some_and(|d| internal() == d),
        K::Since(d) => date_of(d).is_some_and(|d| internal() >= d),
        K::SentBefore(d) => date_of(d).zip(l.sent_date()).is_some_and(|(d, s)| s < d),
        K::SentOn(d) => date_of(d).zip(l.sent_date()).is_some_and(|(d, s)| s == d),
        K::SentSince(d) => date_of(d).zip(l.sent_date()).is_some_and(|(d, s)| s >= d),
        K::From(s) => l.header_has("From", s.as_ref()),
        K::To(s) => l.header_has("To", s.as_ref()),
        K::Cc(s) => l.header_has("Cc", s.as_ref()),
        K::Bcc(s) => l.header_has("Bcc", s.as_ref()),
        K::Subject(s) => l.header_has("Subject", s.as_ref()),
        K::Header(name, s) => {
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            l.header_has(&name, s.as_ref())
        }
        K::Body(s) => {
            let raw = l.raw();
            let body = parse_block(raw, 0, raw.len()).body_start.min(raw.len());
            contains(&raw[body..], s.as_ref())
        }
        K::Text(s) => contains(l.raw(), s.as_ref()),
        K::ModSequence { modseq, .. } => c.member.modseq >= *modseq,
    }
}
