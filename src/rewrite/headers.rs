//! Header blocks as byte spans: a field is kept by copying its original bytes, so every header
//! the rewrite does not name stays byte-identical (folding, spelling, order and all).

use std::ops::Range;

pub(super) use crate::message::header::{Block, Field, parse_block};

/// Changes to one header block; rendering copies every untouched field's original bytes.
#[derive(Debug, Default)]
pub(super) struct Edits {
    /// Per field: replacement bytes (empty: removed).
    replace: Vec<Option<Vec<u8>>>,
    /// Per field: fields inserted right after it.
    after: Vec<Vec<u8>>,
    pub prepend: Vec<u8>,
    pub append: Vec<u8>,
}

impl Edits {
    pub fn new(fields: usize) -> Edits {
        Edits { replace: vec![None; fields], after: vec![Vec::new(); fields], ..Edits::default() }
    }

    pub fn remove(&mut self, field: usize) {
        self.replace[field] = Some(Vec::new());
    }

    pub fn replace(&mut self, field: usize, bytes: Vec<u8>) {
        self.replace[field] = Some(bytes);
    }

    pub fn insert_after(&mut self, field: usize, bytes: &[u8]) {
        self.after[field].extend_from_slice(bytes);
    }

    /// The block's fields (`buf[block.start..block.end]`) with the edits applied.
    pub fn render(&self, buf: &[u8], block: &Block) -> Vec<u8> {
        let mut out = self.prepend.clone();
        for (i, field) in block.fields.iter().enumerate() {
            match &self.replace[i] {
                Some(bytes) => out.extend_from_slice(bytes),
                None => out.extend_from_slice(field.bytes(buf)),
            }
            if !self.after[i].is_empty() {
                end_line(&mut out, block.eol);
                out.extend_from_slice(&self.after[i]);
            }
        }
        if !self.append.is_empty() {
            end_line(&mut out, block.eol);
            out.extend_from_slice(&self.append);
        }
        out
    }
}

/// Ends the last line of `out` (a field that ended the input without a line end).
pub(super) fn end_line(out: &mut Vec<u8>, eol: &[u8]) {
    if !out.is_empty() && out.last() != Some(&b'\n') {
        out.extend_from_slice(eol);
    }
}

/// Longest header line the rewrite writes when it can fold (RFC 5322 §2.1.1's "SHOULD").
pub(super) const FOLD_AT: usize = 78;

/// Joins `pieces` (each after the first starting with white space) into a field, folding
/// before a piece that would take the line past 78 characters. Never folds right after the
/// field name, and a piece longer than a line simply stays long.
pub(super) fn fold(pieces: &[String], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = 0;
    for (n, piece) in pieces.iter().enumerate() {
        let after_name_only = n == 1 && pieces[0].ends_with(':');
        if n > 0 && !after_name_only && line + piece.len() > FOLD_AT {
            out.extend_from_slice(eol);
            line = 0;
        }
        out.extend_from_slice(piece.as_bytes());
        line += piece.len();
    }
    out.extend_from_slice(eol);
    out
}

/// Splits a field at its spaces into pieces for [`fold`].
pub(super) fn fold_words(text: &str, eol: &[u8]) -> Vec<u8> {
    let mut pieces: Vec<String> = Vec::new();
    for (n, word) in text.split(' ').enumerate() {
        match (n, pieces.last_mut()) {
            (0, _) => pieces.push(word.to_string()),
            (_, Some(last)) if word.is_empty() || last.trim().is_empty() => last.push_str(&format!(" {word}")),
            _ => pieces.push(format!(" {word}")),
        }
    }
    fold(&pieces, eol)
}

/// A MIME parameter; `span` locates its value's text (inside any quotes) in the message.
#[derive(Debug, Clone)]
pub(super) struct Param {
    pub name: String,
    pub value: String,
    pub span: Range<usize>,
}

/// A parsed Content-Type or Content-Disposition value: `text/plain`, `attachment`, ….
#[derive(Debug, Clone, Default)]
pub(super) struct MimeValue {
    pub main: String,
    pub params: Vec<Param>,
}

impl MimeValue {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Skips folding white space and (nested) comments from `i`.
fn skip_cfws(v: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < v.len() {
        match v[i] {
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b'\\' if depth > 0 => i += 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth > 0 => {}
            _ => break,
        }
        i += 1;
    }
    i.min(v.len())
}

/// Parses the value of a field (`buf[range]`) as RFC 2045 `main; name=value; …`, leniently.
pub(super) fn parse_mime_value(buf: &[u8], range: Range<usize>) -> MimeValue {
    let v = &buf[range.clone()];
    let token_end = |from: usize| {
        from + v[from..].iter().take_while(|&&b| !matches!(b, b';' | b'(' | b' ' | b'\t' | b'\r' | b'\n')).count()
    };
    let mut out = MimeValue::default();
    let mut i = skip_cfws(v, 0);
    while i < v.len() && v[i] != b';' {
        let end = token_end(i).max(i + 1);
        out.main.push_str(&String::from_utf8_lossy(&v[i..end]).to_ascii_lowercase());
        i = skip_cfws(v, end);
    }
    while i < v.len() {
        i = skip_cfws(v, i + 1); // past the ';'
        let name_end = i + v[i..].iter().take_while(|&&b| !matches!(b, b'=' | b';' | b' ' | b'\t')).count();
        let name = String::from_utf8_lossy(&v[i..name_end]).to_ascii_lowercase();
        i = skip_cfws(v, name_end);
        if v.get(i) != Some(&b'=') {
            while i < v.len() && v[i] != b';' {
                i += 1;
            }
            continue;
        }
        let after_equals = i + 1;
        i = skip_cfws(v, after_equals);
        let (value, span) = if v.get(i) == Some(&b'"') {
            let (mut value, mut j) = (Vec::new(), i + 1);
            while j < v.len() && v[j] != b'"' {
                j += usize::from(v[j] == b'\\' && j + 1 < v.len());
                value.push(v[j]);
                j += 1;
            }
            let span = i + 1..j;
            i = (j + 1).min(v.len());
            (value, span)
        } else {
            let end = token_end(i);
            // An empty value's span sits right after the '=', never after a line end.
            let span = if end > i { i..end } else { after_equals..after_equals };
            i = end;
            (v[span.clone()].to_vec(), span)
        };
        let span = range.start + span.start..range.start + span.end;
        out.params.push(Param { name, value: String::from_utf8_lossy(&value).into_owned(), span });
        while i < v.len() && v[i] != b';' {
            i += 1;
        }
    }
    out
}

/// `field` (a Content-Type field's bytes starting at message offset `offset`) with parameter
/// `name` set to `value`: its old value replaced in place, or `; name=value` added at the end.
pub(super) fn set_param(buf: &[u8], field: &Field, name: &str, value: &str, eol: &[u8]) -> Vec<u8> {
    let bytes = field.bytes(buf);
    let parsed = parse_mime_value(buf, field.value(buf));
    if let Some(p) = parsed.param(name) {
        let (a, b) = (p.span.start - field.start, p.span.end - field.start);
        return [&bytes[..a], value.as_bytes(), &bytes[b..]].concat();
    }
    let mut keep = bytes.len();
    while keep > field.value_start - field.start && bytes[keep - 1].is_ascii_whitespace() {
        keep -= 1;
    }
    let mut out = bytes[..keep].to_vec();
    if out.last() != Some(&b';') {
        out.push(b';');
    }
    let line = out.len() - out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let addition = format!(" {name}={value}");
    if line + addition.len() > FOLD_AT {
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(addition.as_bytes());
    out.extend_from_slice(eol);
    out
}
