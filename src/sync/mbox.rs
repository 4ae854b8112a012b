//! Reading mbox files for `gatepost import --mbox` (docs/accounts.md, "Files"). Three
//! variants, because mbox is a family, not a format:
//! - **mboxrd** (default): a body line matching `>*From ` was written with one more `>`;
//!   reading removes one. The only variant that round-trips every message exactly.
//! - **mboxo**: only `From ` was quoted (as `>From `), so a body line `>From ` is ambiguous;
//!   reading removes the `>` of exactly `>From ` (what the writer most likely added).
//! - **mboxcl2**: no quoting; each message's `Content-Length:` says where its body ends.
//!
//! A message starts at a `From ` line at the start of the file or after an empty line (and,
//! for mboxcl2, after the previous message's counted body). The empty line that separates
//! messages is not part of either. Line ends become CRLF (IMAP serves what is stored, and
//! RFC 3501 wants CRLF); nothing else is changed. A message larger than the caller's limit
//! is reported by position and skipped, never truncated.

use std::io::{BufRead, Read};

use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MboxFormat {
    Mboxrd,
    Mboxo,
    Mboxcl2,
}

impl std::str::FromStr for MboxFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mboxrd" => Ok(MboxFormat::Mboxrd),
            "mboxo" => Ok(MboxFormat::Mboxo),
            "mboxcl2" => Ok(MboxFormat::Mboxcl2),
            other => Err(format!("unknown mbox format {other:?}: mboxrd, mboxo or mboxcl2")),
        }
    }
}

/// One message read from an mbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// The message, CRLF line ends.
    pub raw: Vec<u8>,
    /// The date of its `From ` line, when it has a readable one (INTERNALDATE).
    pub from_date: Option<Timestamp>,
    /// 1-based line of its `From ` line (for reports).
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MboxItem {
    Message(MboxMessage),
    /// A message over the limit: skipped, reported with its `From ` line.
    TooLarge {
        line: u64,
        size: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MboxError {
    #[error("reading the mbox: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {0}: this is not an mbox (the first line is not a `From ` line)")]
    NotMbox(u64),
}

/// The messages of an mbox, one at a time; memory is bounded by `max_message` (plus a line).
pub struct MboxReader<R> {
    input: R,
    format: MboxFormat,
    max_message: u64,
    line_no: u64,
    /// The `From ` line that starts the next message, already read.
    pending_from: Option<(Vec<u8>, u64)>,
    started: bool,
}

fn is_from_line(line: &[u8]) -> bool {
    line.starts_with(b"From ")
}

/// Strip the line end (LF or CRLF).
fn content(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// `From sender Thu Dec  2 08:00:00 2026` (asctime, optionally with a zone before the year,
/// as some writers add): the date in UTC when it reads.
pub fn from_line_date(line: &[u8]) -> Option<Timestamp> {
    let text = std::str::from_utf8(content(line)).ok()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    // From, sender, then weekday month day time [zone] year.
    let rest = words.get(2..)?;
    let (month, day, time, year) = match rest {
        [_, m, d, t, y] | [_, m, d, t, _, y] => (*m, *d, *t, *y),
        _ => return None,
    };
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| m.eq_ignore_ascii_case(month))? as i8 + 1;
    let day: i8 = day.parse().ok()?;
    let year: i16 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<i8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next().flatten().unwrap_or(0));
    let dt = jiff::civil::DateTime::new(year, month, day, h, m, s, 0).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R, format: MboxFormat, max_message: u64) -> Self {
        MboxReader { input, format, max_message, line_no: 0, pending_from: None, started: false }
    }

    fn read_line(&mut self, buf: &mut Vec<u8>) -> Result<bool, MboxError> {
        buf.clear();
        // A line is read at most as long as a message may be: a hostile file's endless line
        // arrives in pieces, each counted against the message it is in.
        let n = (&mut self.input).take(self.max_message.saturating_add(2)).read_until(b'\n', buf)?;
        if n > 0 {
            self.line_no += 1;
        }
        Ok(n > 0)
    }

    fn unquote<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        match self.format {
            MboxFormat::Mboxrd => {
                let gt = line.iter().take_while(|&&b| b == b'>').count();
                if gt > 0 && line[gt..].starts_with(b"From ") { &line[1..] } else { line }
            }
            MboxFormat::Mboxo if line.starts_with(b">From ") => &line[1..],
            _ => line,
        }
    }

    fn next_item(&mut self) -> Result<Option<MboxItem>, MboxError> {
        let mut line = Vec::new();
        let (from, start) = match self.pending_from.take() {
            Some(p) => p,
            None => loop {
                if !self.read_line(&mut line)? {
                    return Ok(None);
                }
                if is_from_line(&line) {
                    break (line.clone(), self.line_no);
                }
                if !self.started && !content(&line).is_empty() {
                    return Err(MboxError::NotMbox(self.line_no));
                }
            },
        };
        self.started = true;
        let from_date = from_line_date(&from);
        let mut raw = Vec::new();
        let mut size: u64 = 0;
        let mut too_large = false;
        let mut push = |raw: &mut Vec<u8>, body: &[u8], max: u64| {
            size += body.len() as u64 + 2;
            if size > max {
                too_large = true;
                raw.clear();
            } else if !too_large {
                raw.extend_from_slice(body);
                raw.extend_from_slice(b"\r\n");
            }
        };
        let max = self.max_message;
        if self.format == MboxFormat::Mboxcl2 {
            let mut length: Option<u64> = None;
            loop {
                if !self.read_line(&mut line)? {
                    break;
                }
                let c = content(&line).to_vec();
                if let Some(v) = c.strip_prefix(b"Content-Length:").or_else(|| c.strip_prefix(b"content-length:")) {
                    length = std::str::from_utf8(v).ok().and_then(|v| v.trim().parse().ok());
                }
                push(&mut raw, &c, max);
                if c.is_empty() {
                    break;
                }
            }
            let mut left = length.unwrap_or(0);
            while left > 0 && self.read_line(&mut line)? {
                left = left.saturating_sub(line.len() as u64);
                let c = content(&line).to_vec();
                push(&mut raw, &c, max);
            }
            // Then empty lines up to the next From line.
            while self.read_line(&mut line)? {
                if is_from_line(&line) {
                    self.pending_from = Some((line.clone(), self.line_no));
                    break;
                }
            }
        } else {
            let mut blank_before = false;
            while self.read_line(&mut line)? {
                if blank_before && is_from_line(&line) {
                    self.pending_from = Some((line.clone(), self.line_no));
                    break;
                }
                let c = content(&line);
                if blank_before {
                    push(&mut raw, b"", max); // the held-back empty line was the message's
                }
                blank_before = c.is_empty();
                if !blank_before {
                    let c = self.unquote(c).to_vec();
                    push(&mut raw, &c, max);
                }
            }
            // The empty line before the next From line (or the end) is the separator's.
        }
        if too_large {
            return Ok(Some(MboxItem::TooLarge { line: start, size }));
        }
        Ok(Some(MboxItem::Message(MboxMessage { raw, from_date, line: start })))
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = Result<MboxItem, MboxError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: MboxFormat) -> Vec<MboxItem> {
        MboxReader::new(text.as_bytes(), format, 1 << 20).collect::<Result<_, _>>().unwrap()
    }

    fn messages(text: &str, format: MboxFormat) -> Vec<String> {
        read(text, format)
            .into_iter()
            .map(|i| match i {
                MboxItem::Message(m) => String::from_utf8(m.raw).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    const RD: &str = "From alice@example.com Thu Dec  2 08:00:00 2026\n\
Subject: one\n\
\n\
>From the start\n\
>>From deeper\n\
\n\
From bob@example.com Fri Dec  3 09:30:15 2026\n\
Subject: two\n\
\n\
last line\n\
\n";

    #[test]
    fn mboxrd_unquotes_one_level_and_keeps_inner_empty_lines() {
        let m = messages(RD, MboxFormat::Mboxrd);
        assert_eq!(m, ["Subject: one\r\n\r\nFrom the start\r\n>From deeper\r\n", "Subject: two\r\n\r\nlast line\r\n"]);
        let items = read(RD, MboxFormat::Mboxrd);
        let MboxItem::Message(first) = &items[0] else { panic!() };
        assert_eq!(first.from_date, Some("2026-12-02T08:00:00Z".parse().unwrap()));
        assert_eq!(first.line, 1);
        let MboxItem::Message(second) = &items[1] else { panic!() };
        assert_eq!((second.line, second.from_date), (7, Some("2026-12-03T09:30:15Z".parse().unwrap())));
    }

    #[test]
    fn mboxo_unquotes_only_the_first_level_and_a_from_without_blank_line_is_body() {
        let m = messages(RD, MboxFormat::Mboxo);
        assert_eq!(m[0], "Subject: one\r\n\r\nFrom the start\r\n>>From deeper\r\n");
        let glued = "From a Thu Dec  2 08:00:00 2026\nSubject: x\n\nbody\nFrom here on, text\n";
        assert_eq!(messages(glued, MboxFormat::Mboxo), ["Subject: x\r\n\r\nbody\r\nFrom here on, text\r\n"]);
    }

    #[test]
    fn mboxcl2_counts_the_body_and_quotes_nothing() {
        let text = "From a Thu Dec  2 08:00:00 2026\nContent-Length: 23\nSubject: x\n\nFrom inside\n\n>From too\n\n\
From b Thu Dec  2 08:00:00 2026\nContent-Length: 3\n\nhi\n";
        assert_eq!(
            messages(text, MboxFormat::Mboxcl2),
            [
                "Content-Length: 23\r\nSubject: x\r\n\r\nFrom inside\r\n\r\n>From too\r\n",
                "Content-Length: 3\r\n\r\nhi\r\n"
            ]
        );
    }

    #[test]
    fn crlf_input_stays_crlf_and_bad_input_is_named() {
        let text = "From a Thu Dec  2 08:00:00 2026\r\nSubject: x\r\n\r\nbody\r\n";
        assert_eq!(messages(text, MboxFormat::Mboxrd), ["Subject: x\r\n\r\nbody\r\n"]);
        let e = MboxReader::new("Subject: not an mbox\n".as_bytes(), MboxFormat::Mboxrd, 100).next().unwrap();
        assert!(matches!(e, Err(MboxError::NotMbox(1))));
        assert!(MboxReader::new("".as_bytes(), MboxFormat::Mboxrd, 100).next().is_none(), "empty: no messages");
    }

    #[test]
    fn a_message_over_the_limit_is_reported_and_the_next_one_still_read() {
        let big = format!(
            "From a Thu Dec  2 08:00:00 2026\nSubject: big\n\n{}\n\nFrom b Thu Dec  2 08:00:00 2026\nSubject: small\n\nok\n",
            "x".repeat(500)
        );
        let items: Vec<MboxItem> =
            MboxReader::new(big.as_bytes(), MboxFormat::Mboxrd, 200).collect::<Result<_, _>>().unwrap();
        assert!(matches!(items[0], MboxItem::TooLarge { line: 1, size } if size > 200), "{items:?}");
        assert!(matches!(&items[1], MboxItem::Message(m) if m.raw == b"Subject: small\r\n\r\nok\r\n"), "{items:?}");
    }

    #[test]
    fn from_line_dates() {
        for (line, want) in [
            ("From a@b Thu Dec  2 08:00:00 2026", Some("2026-12-02T08:00:00Z")),
            ("From a@b Thu Dec 2 08:00 2026", Some("2026-12-02T08:00:00Z")),
            ("From a@b Thu Dec  2 08:00:00 +0100 2026", Some("2026-12-02T08:00:00Z")),
            ("From a@b nonsense", None),
            ("From a@b Thu Foo  2 08:00:00 2026", None),
            ("From a@b Thu Feb 30 08:00:00 2026", None),
        ] {
            assert_eq!(from_line_date(line.as_bytes()), want.map(|w| w.parse().unwrap()), "{line}");
        }
    }
}
