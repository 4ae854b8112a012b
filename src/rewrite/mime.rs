//! Finding the parts that are the message body and adding the footer to them. Only those
//! parts' bytes (and, when the charset or transfer encoding must change, their MIME headers)
//! are replaced; every other byte of the body is copied as it came.

use std::ops::Range;

use super::Note;
use super::encoding::{self, Charset};
use super::footer::{self, Footer};
use super::headers::{self, Block, Edits, MimeValue};

/// Deeper nesting than any mail client writes; beyond it parts are left alone (and the walk
/// cannot be driven into a stack overflow).
const MAX_DEPTH: usize = 16;

/// Bodies that are signed or encrypted: any change would break the signature or is impossible.
const PROTECTED: [&str; 4] =
    ["multipart/signed", "multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"];

/// A replacement of `range` of the message by new bytes.
pub(super) type Splice = (Range<usize>, Vec<u8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    /// Not a body part (an attachment, an image, …): keep looking.
    Skipped,
    /// The body: decorated, or deliberately left alone.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cte {
    SevenBit,
    EightBit,
    QuotedPrintable,
    Base64,
}

/// What a part's MIME header says about it.
struct PartInfo {
    ctype: MimeValue,
    disposition: MimeValue,
    cte: String,
    ct_field: Option<usize>,
    cte_field: Option<usize>,
}

impl PartInfo {
    fn of(buf: &[u8], block: &Block, default_type: &str) -> PartInfo {
        let value = |i: usize| headers::parse_mime_value(buf, block.fields[i].value(buf));
        let ct_field = block.find(buf, "content-type");
        let cte_field = block.find(buf, "content-transfer-encoding");
        let mut ctype = ct_field.map(value).unwrap_or_default();
        if !ctype.main.contains('/') {
            ctype.main = default_type.to_string(); // RFC 2045 §5.2: a broken type counts as the default
        }
        let disposition = block.find(buf, "content-disposition").map(value).unwrap_or_default();
        let cte = cte_field.map(value).map_or_else(|| "7bit".to_string(), |v| v.main);
        PartInfo { ctype, disposition, cte, ct_field, cte_field }
    }

    /// An attachment: marked so, or carrying a file name (an inline image, a forwarded file).
    fn attachment(&self) -> bool {
        let named = |v: &MimeValue| {
            v.params
                .iter()
                .any(|p| ["name", "filename"].iter().any(|n| p.name == *n || p.name.starts_with(&format!("{n}*"))))
        };
        self.disposition.main == "attachment" || named(&self.disposition) || named(&self.ctype)
    }
}

/// Adds the footer to the body parts of the message whose header is `top`. Returns the body
/// splices and notes; edits to the top-level MIME header go into `top_edits`.
pub(super) fn decorate(buf: &[u8], top: &Block, footer: &Footer, top_edits: &mut Edits) -> (Vec<Splice>, Vec<Note>) {
    let mut walk = Walk { buf, footer, notes: Vec::new(), splices: Vec::new() };
    if walk.visit(top, top.body_start..buf.len(), "text/plain", 0, Some(top_edits)) == Visit::Skipped {
        walk.notes.push(Note::NoTextBody);
    }
    (walk.splices, walk.notes)
}

struct Walk<'a> {
    buf: &'a [u8],
    footer: &'a Footer,
    notes: Vec<Note>,
    splices: Vec<Splice>,
}

impl Walk<'_> {
    /// RFC 2046 reading of "the body": the single text part; every text alternative of
    /// multipart/alternative; the first body candidate of any other multipart (mixed, related,
    /// report); never inside message/rfc822, never an attachment.
    fn visit(
        &mut self,
        block: &Block,
        body: Range<usize>,
        default: &str,
        depth: usize,
        top: Option<&mut Edits>,
    ) -> Visit {
        let info = PartInfo::of(self.buf, block, default);
        let main = info.ctype.main.as_str();
        if PROTECTED.contains(&main) {
            self.notes.push(Note::Protected(main.to_string()));
            return Visit::Done;
        }
        if info.attachment() {
            return Visit::Skipped;
        }
        if let Some(sub) = main.strip_prefix("multipart/") {
            let boundary = info.ctype.param("boundary").map(|p| p.value.as_bytes()).filter(|b| !b.is_empty());
            let Some(children) =
                boundary.filter(|_| depth < MAX_DEPTH).and_then(|b| split_multipart(self.buf, body, b))
            else {
                return Visit::Skipped;
            };
            let child_default = if sub == "digest" { "message/rfc822" } else { "text/plain" };
            let mut result = Visit::Skipped;
            for range in children {
                let child = headers::parse_block(self.buf, range.start, range.end);
                if !child.separator {
                    continue; // no blank line: not a well-formed part, so not one to edit
                }
                if self.visit(&child, child.body_start..range.end, child_default, depth + 1, None) == Visit::Done {
                    result = Visit::Done;
                    if sub != "alternative" {
                        break;
                    }
                }
            }
            return result;
        }
        if main == "text/plain" || main == "text/html" {
            self.leaf(block, body, &info, top);
            return Visit::Done;
        }
        Visit::Skipped
    }

    /// Adds the footer to one text part: decode, insert, re-encode in the same transfer
    /// encoding (quoted-printable keeps its original encoded lines around the insertion).
    fn leaf(&mut self, block: &Block, body: Range<usize>, info: &PartInfo, top: Option<&mut Edits>) {
        let raw = &self.buf[body.clone()];
        let html = info.ctype.main == "text/html";
        let charset = Charset::classify(info.ctype.param("charset").map(|p| p.value.as_str()));
        if let Charset::Incompatible(name) = &charset {
            self.notes.push(Note::Charset(name.clone()));
            return;
        }
        let cte = match info.cte.as_str() {
            "7bit" => Cte::SevenBit,
            "8bit" | "binary" => Cte::EightBit,
            "quoted-printable" => Cte::QuotedPrintable,
            "base64" => Cte::Base64,
            other => return self.notes.push(Note::Encoding(other.to_string())),
        };
        let raw_eol = eol_of(raw, block.eol);
        let decoded = match cte {
            Cte::QuotedPrintable => encoding::qp_decode(raw),
            Cte::Base64 => match encoding::base64_decode(raw) {
                Some(d) => d,
                None => return self.notes.push(Note::Encoding("base64".to_string())),
            },
            Cte::SevenBit | Cte::EightBit => raw.to_vec(),
        };
        let eol = eol_of(&decoded, raw_eol);
        let (mut relabel, mut transcoded) = (false, None);
        let (at, insert) = if html {
            let snippet = self.footer.html(charset != Charset::Utf8);
            let close = footer::body_close(&decoded);
            (close.unwrap_or(decoded.len()), footer::html_insertion(&decoded, close, snippet.as_bytes(), eol))
        } else {
            let flowed = info.ctype.param("format").is_some_and(|p| p.value.eq_ignore_ascii_case("flowed"));
            let text = self.footer.plain(flowed, if eol == b"\n" { "\n" } else { "\r\n" });
            let bytes = match &charset {
                Charset::Utf8 => text.into_bytes(),
                _ if text.is_ascii() => text.into_bytes(),
                Charset::Ascii => {
                    relabel = true; // ASCII is UTF-8: only the label changes
                    text.into_bytes()
                }
                Charset::Latin1 | Charset::Windows1252 => match encoding::encode_single_byte(&text, &charset) {
                    Some(bytes) => bytes,
                    None => {
                        relabel = true;
                        transcoded = Some(encoding::single_byte_to_utf8(&decoded));
                        text.into_bytes()
                    }
                },
                Charset::OtherAscii(name) | Charset::Incompatible(name) => {
                    return self.notes.push(Note::Charset(name.clone()));
                }
            };
            let base = transcoded.as_deref().unwrap_or(&decoded);
            (base.len(), footer::plain_insertion(base, &bytes, eol))
        };
        let was_transcoded = transcoded.is_some();
        let content = transcoded.unwrap_or(decoded);
        let whole = || [&content[..at], &insert[..], &content[at..]].concat();
        let mut to_qp = false;
        let new_body = match cte {
            Cte::SevenBit if insert.is_ascii() => whole(),
            Cte::SevenBit => {
                to_qp = true; // RFC 2045: 7bit cannot carry the new 8-bit bytes
                encoding::qp_encode(&whole(), raw_eol, 0)
            }
            Cte::EightBit => whole(),
            Cte::QuotedPrintable if !was_transcoded => encoding::qp_splice(raw, at, &insert, raw_eol),
            Cte::QuotedPrintable => encoding::qp_encode(&whole(), raw_eol, 0),
            Cte::Base64 => encoding::base64_encode(&whole(), raw_eol, raw.last() == Some(&b'\n')),
        };
        self.splices.push((body, new_body));
        if relabel || to_qp {
            match top {
                Some(edits) => self.mime_header(block, info, relabel, to_qp, edits, true),
                None => {
                    let mut edits = Edits::new(block.fields.len());
                    self.mime_header(block, info, relabel, to_qp, &mut edits, false);
                    self.splices.push((block.start..block.end, edits.render(self.buf, block)));
                }
            }
        }
    }

    /// Records the header changes of a decorated part: charset=UTF-8 and/or quoted-printable,
    /// plus MIME-Version for a top-level part that had none (else readers ignore the rest).
    fn mime_header(&self, block: &Block, info: &PartInfo, relabel: bool, to_qp: bool, edits: &mut Edits, top: bool) {
        let eol = block.eol;
        let mut added = Vec::new();
        if top && block.find(self.buf, "mime-version").is_none() {
            added.extend_from_slice(b"MIME-Version: 1.0");
            added.extend_from_slice(eol);
        }
        if relabel {
            match info.ct_field {
                Some(i) => edits.replace(i, headers::set_param(self.buf, &block.fields[i], "charset", "UTF-8", eol)),
                None => {
                    added.extend_from_slice(b"Content-Type: text/plain; charset=UTF-8");
                    added.extend_from_slice(eol);
                }
            }
        }
        if to_qp {
            let line = match info.cte_field {
                Some(i) => [block.fields[i].name(self.buf), b": quoted-printable", eol].concat(),
                None => [&b"Content-Transfer-Encoding: quoted-printable"[..], eol].concat(),
            };
            match info.cte_field {
                Some(i) => edits.replace(i, line),
                None => added.extend_from_slice(&line),
            }
        }
        edits.append.extend_from_slice(&added);
    }
}

/// The line end `bytes` use (that of their first line), else `fallback`.
fn eol_of(bytes: &[u8], fallback: &'static [u8]) -> &'static [u8] {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && bytes[i - 1] == b'\r' => b"\r\n",
        Some(_) => b"\n",
        None => fallback,
    }
}

/// The body parts of a multipart body (RFC 2046 §5.1.1): the spans between delimiter lines,
/// each without the line end that belongs to the next delimiter. None without any delimiter.
/// A missing close delimiter lets the last part run to the end.
pub(super) fn split_multipart(buf: &[u8], body: Range<usize>, boundary: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut delimiters: Vec<(usize, usize, bool)> = Vec::new();
    let mut pos = body.start;
    while pos < body.end {
        let line_end = buf[pos..body.end].iter().position(|&b| b == b'\n').map_or(body.end, |i| pos + i + 1);
        let line = &buf[pos..line_end];
        if let Some(rest) = line.strip_prefix(b"--").and_then(|l| l.strip_prefix(boundary)) {
            let (close, rest) = match rest.strip_prefix(b"--") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            if rest.iter().all(u8::is_ascii_whitespace) {
                delimiters.push((pos, line_end, close));
                if close {
                    break;
                }
            }
        }
        pos = line_end;
    }
    let mut parts = Vec::new();
    for (k, &(_, start, close)) in delimiters.iter().enumerate() {
        if close {
            break;
        }
        let mut end = delimiters.get(k + 1).map_or(body.end, |d| d.0);
        if k + 1 < delimiters.len() && end > start && buf[end - 1] == b'\n' {
            end -= 1;
            if end > start && buf[end - 1] == b'\r' {
                end -= 1;
            }
        }
        parts.push(start..end.max(start));
    }
    (!delimiters.is_empty()).then_some(parts)
}
