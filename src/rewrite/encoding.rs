//! Transfer encodings and the few charsets the footer needs. Written here rather than taken from
//! a crate because the rewrite must keep the original bytes: the quoted-printable decoder reports
//! where each decoded byte came from, so the footer can be spliced into the encoded text and
//! everything before and after it stays byte-identical.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Longest encoded line RFC 2045 allows for quoted-printable and base64, without its line end.
pub(super) const LINE_MAX: usize = 76;

/// Walks quoted-printable text, calling `f(start, end, decoded)` for every unit that yields
/// bytes: a literal byte, an `=XX` escape or a hard line break. Soft breaks and the transport
/// padding before a line end yield nothing. A malformed `=` is kept literally (RFC 2045 §6.7
/// recommends leniency). `f` returns false to stop the walk.
fn qp_walk(enc: &[u8], mut f: impl FnMut(usize, usize, &[u8]) -> bool) {
    let mut pos = 0;
    while pos < enc.len() {
        let newline = enc[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i);
        let line_end = newline.map_or(enc.len(), |i| i + 1);
        let eol_start = match newline {
            Some(i) if i > pos && enc[i - 1] == b'\r' => i - 1,
            Some(i) => i,
            None => enc.len(),
        };
        let mut content_end = eol_start;
        while content_end > pos && matches!(enc[content_end - 1], b' ' | b'\t') {
            content_end -= 1;
        }
        let soft = content_end > pos && enc[content_end - 1] == b'=';
        let text_end = if soft { content_end - 1 } else { content_end };
        let mut i = pos;
        while i < text_end {
            let escaped = (enc[i] == b'=' && i + 2 < text_end).then(|| hex_pair(enc[i + 1], enc[i + 2])).flatten();
            let keep_going = match escaped {
                Some(byte) => {
                    i += 3;
                    f(i - 3, i, &[byte])
                }
                None => {
                    i += 1;
                    f(i - 1, i, &enc[i - 1..i])
                }
            };
            if !keep_going {
                return;
            }
        }
        if !soft && newline.is_some() && !f(eol_start, line_end, &enc[eol_start..line_end]) {
            return;
        }
        pos = line_end;
    }
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(hi)? * 16 + digit(lo)?) as u8)
}

/// Decodes quoted-printable text; hard line breaks keep their original bytes (CRLF or LF).
pub(super) fn qp_decode(enc: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(enc.len());
    qp_walk(enc, |_, _, bytes| {
        out.extend_from_slice(bytes);
        true
    });
    out
}

/// Where decoded byte `index` starts in the encoded text; for the end of the decoded text, the
/// end of the last unit that yielded bytes (so trailing padding stays after an insertion).
pub(super) fn qp_offset(enc: &[u8], index: usize) -> usize {
    let (mut count, mut found, mut last_end) = (0, None, 0);
    qp_walk(enc, |start, end, bytes| {
        if count == index {
            found = Some(start);
            return false;
        }
        count += bytes.len();
        last_end = end;
        true
    });
    found.unwrap_or(last_end)
}

/// Quoted-printable encoding of `text`, starting at column `col` of the current encoded line:
/// lines of at most 76 characters, soft breaks after a space where the line has one, hard
/// breaks written as `eol`, white space before a line end escaped so that no decoder strips it.
pub(super) fn qp_encode(text: &[u8], eol: &[u8], col: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8 + 8);
    let break_at = |i: usize| match text.get(i) {
        Some(b'\n') => Some(1),
        Some(b'\r') if text.get(i + 1) == Some(&b'\n') => Some(2),
        _ => None,
    };
    let (mut line, mut taken) = (Vec::with_capacity(LINE_MAX), col);
    let mut i = 0;
    while i < text.len() {
        if let Some(len) = break_at(i) {
            out.append(&mut line);
            out.extend_from_slice(eol);
            taken = 0;
            i += len;
            continue;
        }
        let b = text[i];
        let line_end = i + 1 == text.len() || break_at(i + 1).is_some();
        let literal = matches!(b, b'!'..=b'<' | b'>'..=b'~') || (matches!(b, b' ' | b'\t') && !line_end);
        let width = if literal { 1 } else { 3 };
        let limit = if line_end { LINE_MAX } else { LINE_MAX - 1 };
        while taken + line.len() + width > limit && (taken > 0 || !line.is_empty()) {
            let cut = line.iter().rposition(|&c| c == b' ' || c == b'\t').map_or(line.len(), |p| p + 1);
            out.extend(line.drain(..cut));
            out.push(b'=');
            out.extend_from_slice(eol);
            taken = 0;
        }
        if literal {
            line.push(b);
        } else {
            line.extend_from_slice(format!("={b:02X}").as_bytes());
        }
        i += 1;
    }
    out.append(&mut line);
    out
}

/// Inserts `insert` (decoded bytes) at decoded position `index` of quoted-printable `enc`,
/// encoding only the inserted bytes: the encoded text before and after stays as it was.
pub(super) fn qp_splice(enc: &[u8], index: usize, insert: &[u8], eol: &[u8]) -> Vec<u8> {
    let at = qp_offset(enc, index);
    let (before, after) = enc.split_at(at);
    let mut col = before.len() - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut out = before.to_vec();
    // A hard break right after white space or a lone `=` would turn them into padding or a
    // soft break; a soft break first keeps them.
    let starts_with_break = insert.first() == Some(&b'\n') || insert.starts_with(b"\r\n");
    if col > 0 && starts_with_break && matches!(before.last(), Some(b' ' | b'\t' | b'=')) {
        out.push(b'=');
        out.extend_from_slice(eol);
        col = 0;
    }
    out.extend(qp_encode(insert, eol, col));
    out.extend_from_slice(after);
    out
}

fn base64_engine() -> GeneralPurpose {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    GeneralPurpose::new(&base64::alphabet::STANDARD, config)
}

/// Decodes a base64 body, ignoring line ends and white space; None when it is not base64.
pub(super) fn base64_decode(enc: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = enc.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    base64_engine().decode(clean).ok()
}

/// Base64 in lines of 76 characters separated by `eol`, with a final `eol` when asked.
pub(super) fn base64_encode(data: &[u8], eol: &[u8], final_eol: bool) -> Vec<u8> {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(text.len() + text.len() / LINE_MAX * eol.len() + eol.len());
    for (n, line) in text.as_bytes().chunks(LINE_MAX).enumerate() {
        if n > 0 {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(line);
    }
    if final_eol && !out.is_empty() {
        out.extend_from_slice(eol);
    }
    out
}

/// How a text part's charset takes the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Charset {
    Utf8,
    /// US-ASCII, also when no charset is given (RFC 2045's default).
    Ascii,
    Latin1,
    Windows1252,
    /// Any other charset that keeps ASCII as ASCII: only an ASCII footer may be appended.
    OtherAscii(String),
    /// UTF-16, UTF-32, UTF-7 and the like: appending ASCII bytes would corrupt the text.
    Incompatible(String),
}

impl Charset {
    pub(super) fn classify(name: Option<&str>) -> Charset {
        let name = name.unwrap_or("").trim().to_ascii_lowercase();
        match name.as_str() {
            "" | "us-ascii" | "ascii" | "us" | "ansi_x3.4-1968" | "iso646-us" => Charset::Ascii,
            "utf-8" | "utf8" => Charset::Utf8,
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" | "iso-ir-100" | "cp819" => {
                Charset::Latin1
            }
            "windows-1252" | "cp1252" | "x-cp1252" => Charset::Windows1252,
            n if ["utf-16", "utf16", "utf-32", "utf32", "ucs-", "ucs2", "ucs4", "utf-7", "utf7", "unicode"]
                .iter()
                .any(|p| n.starts_with(p)) =>
            {
                Charset::Incompatible(name)
            }
            _ => Charset::OtherAscii(name),
        }
    }
}

/// Windows-1252 characters in 0x80..=0x9F; the five unassigned bytes map to the C1 control of
/// the same value, as the WHATWG decoder does.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{2C6}', '\u{2030}',
    '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}',
    '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}',
    '\u{17E}', '\u{178}',
];

/// `text` in ISO-8859-1 or Windows-1252, or None if a character has no byte there. For
/// ISO-8859-1, 0x80..=0x9F are avoided: mail readers show them as Windows-1252.
pub(super) fn encode_single_byte(text: &str, charset: &Charset) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| match c as u32 {
            0..=0x7F | 0xA0..=0xFF => Some(c as u8),
            _ if *charset == Charset::Windows1252 => {
                CP1252_HIGH.iter().position(|&h| h == c && !(0x80..0xA0).contains(&(c as u32))).map(|i| 0x80 + i as u8)
            }
            _ => None,
        })
        .collect()
}

/// ISO-8859-1 / Windows-1252 text as UTF-8 (both read as Windows-1252, like mail readers do).
pub(super) fn single_byte_to_utf8(bytes: &[u8]) -> Vec<u8> {
    let text: String = bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect();
    text.into_bytes()
}
