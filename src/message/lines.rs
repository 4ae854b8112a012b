//! The one rule for line ends. SMTP lines end in CRLF, but scripts send bare LF and some
//! software bare CR, and programs disagree about what those mean: a bare CR is a line end to
//! some relays and mail readers and text to most parsers, so `X-Foo: a\rFrom: ceo@bank` was one
//! field to the sender check and two at the recipient. gatepost decides once, at the end of
//! DATA, and stores the result, so the checks, the rewrite and the relay all read the same
//! canonical bytes:
//!
//! - CRLF stays;
//! - a bare LF is a line end and becomes CRLF (as Postfix's `smtpd_forbid_bare_newline =
//!   normalize`), so messages from scripts keep working;
//! - a bare CR in the header section (before the first empty line) is refused: any reading of
//!   it could hide a field from one side;
//! - a bare CR in the body becomes CRLF (it is a line end to the relay and mail readers; the
//!   rewrite then parses MIME on the same lines they will see).
//!
//! DATA's end marker is not affected: it is CRLF "." CRLF on the wire (`smtp::data`).

use std::borrow::Cow;

/// A bare CR in the header section; `offset` is where, in the message as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the header has a bare CR (a carriage return without line feed) at octet {offset}")]
pub struct BareCrInHeader {
    pub offset: usize,
}

/// `raw` with every line ending in CRLF, or the bare CR that makes its header ambiguous.
/// Borrowed when `raw` is already canonical (the usual case). Idempotent.
pub fn canonical_line_ends(raw: &[u8]) -> Result<Cow<'_, [u8]>, BareCrInHeader> {
    let Some(first) = first_irregular(raw) else {
        return Ok(Cow::Borrowed(raw));
    };
    // Where the header section ends, read with the canonical rule up to the first irregularity.
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 64 + 2);
    out.extend_from_slice(&raw[..first]);
    let mut in_header = !has_empty_line(&raw[..first]);
    let mut line_start = first == 0 || raw[first - 1] == b'\n';
    let mut i = first;
    while i < raw.len() {
        let b = raw[i];
        let line_end = match b {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                i += 1;
                true
            }
            b'\r' if in_header => return Err(BareCrInHeader { offset: i }),
            b'\r' | b'\n' => true,
            _ => false,
        };
        if line_end {
            out.extend_from_slice(b"\r\n");
            if line_start {
                in_header = false; // an empty line ends the header section
            }
            line_start = true;
        } else {
            out.push(b);
            line_start = false;
        }
        i += 1;
    }
    Ok(Cow::Owned(out))
}

/// The offset of the first bare CR or bare LF, if any.
fn first_irregular(raw: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether a CRLF-only prefix of a message contains an empty line (the end of its header).
fn has_empty_line(prefix: &[u8]) -> bool {
    prefix.starts_with(b"\r\n") || prefix.windows(4).any(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"A: b\r\n\r\nbody\r\n", b"A: b\r\n\r\nbody\r\n"),
            (b"A: b\n\nbody\n", b"A: b\r\n\r\nbody\r\n"),
            (b"A: b\r\n\nbody\rmore\r\n", b"A: b\r\n\r\nbody\r\nmore\r\n"),
            // A bare CR after the header's end is a line end like any other.
            (b"A: b\r\n\r\nx\r\r\n", b"A: b\r\n\r\nx\r\n\r\n"),
            (b"A: b\n\n\rFrom: x\n", b"A: b\r\n\r\n\r\nFrom: x\r\n"),
            // The empty line that ends the header may itself be a bare LF.
            (b"A: b\r\n\n\r", b"A: b\r\n\r\n\r\n"),
            (b"\r\nbody\r", b"\r\nbody\r\n"),
            (b"no line end", b"no line end"),
            (b"\xc3\xa9\n", b"\xc3\xa9\r\n"),
        ];
        for (raw, want) in ok {
            let got = canonical_line_ends(raw).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(raw)));
            assert_eq!(&*got, *want, "{:?}", String::from_utf8_lossy(raw));
            assert_eq!(&*canonical_line_ends(&got).unwrap(), *want, "idempotent");
            assert!(matches!(canonical_line_ends(want).unwrap(), Cow::Borrowed(_)), "canonical input is borrowed");
        }
        let refused: &[(&[u8], usize)] = &[
            (b"X-Foo: a\rFrom: ceo@bank.example\r\n\r\nbody\r\n", 8),
            (b"To: a@x\r\n\rBcc: b@y\r\n\r\n", 9),
            (b"A: b\n\rDeliver-On: 2027-01-01\n\n", 5),
            (b"A: b\r", 4),
            (b"\r", 0),
            (b"A: b\r\r\n\r\n", 4),
        ];
        for (raw, offset) in refused {
            assert_eq!(
                canonical_line_ends(raw),
                Err(BareCrInHeader { offset: *offset }),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
