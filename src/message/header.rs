//! The one header-field reader of gatepost. The submission checks (`message::summarize`) and
//! the outgoing rewrite (`rewrite`) both read a message's fields with it, so what the checks
//! approve is exactly what the rewrite edits and the relay sends: a field the checks could not
//! see cannot reach a recipient.
//!
//! Fields are byte spans: a field is kept by copying its original bytes, so every header the
//! rewrite does not name stays byte-identical (folding, spelling, order and all).

use std::ops::Range;

/// One header field, continuation lines included; offsets into the whole message.
#[derive(Debug, Clone)]
pub struct Field {
    pub start: usize,
    pub name_end: usize,
    /// Just after the colon.
    pub value_start: usize,
    /// Just after the field's last line end (or the end of the input).
    pub end: usize,
}

impl Field {
    pub fn is(&self, buf: &[u8], name: &str) -> bool {
        buf[self.start..self.name_end].eq_ignore_ascii_case(name.as_bytes())
    }

    pub fn name<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.name_end]
    }

    pub fn bytes<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }

    /// The value's span without the field's final line end, so that editing a value (even a
    /// malformed one, like an unterminated quote) can never remove that line end.
    pub fn value(&self, buf: &[u8]) -> Range<usize> {
        let mut end = self.end;
        if end > self.value_start && buf[end - 1] == b'\n' {
            end -= 1;
            if end > self.value_start && buf[end - 1] == b'\r' {
                end -= 1;
            }
        }
        self.value_start..end
    }
}

/// A header block: its fields, where they end, and the blank line separating it from the body.
#[derive(Debug, Clone)]
pub struct Block {
    pub fields: Vec<Field>,
    pub start: usize,
    /// End of the last field: the start of the blank line, or of the first line that is no field.
    pub end: usize,
    pub body_start: usize,
    /// Whether a blank line ended the block (else the input ended, or a non-field line did).
    pub separator: bool,
    /// The line end the block uses, for the lines the rewrite adds.
    pub eol: &'static [u8],
}

impl Block {
    pub fn find(&self, buf: &[u8], name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.is(buf, name))
    }
}

/// Parses the header block of `buf[start..limit]`. Lines end at LF (with or without CR), as
/// most mail software reads them, so a field hidden behind a bare LF is still seen and can be
/// removed. The block ends at the first empty line, or at the first line that is neither a
/// field nor a continuation (which then starts the body, as Postfix treats it).
pub fn parse_block(buf: &[u8], start: usize, limit: usize) -> Block {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = start;
    let (end, body_start, separator) = loop {
        if pos >= limit {
            break (limit, limit, false);
        }
        let line_end = buf[pos..limit].iter().position(|&b| b == b'\n').map_or(limit, |i| pos + i + 1);
        let line = &buf[pos..line_end];
        if line == b"\n" || line == b"\r\n" {
            break (pos, line_end, true);
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some(last) = fields.last_mut() {
                last.end = line_end;
                pos = line_end;
                continue;
            }
        } else if let Some((name_end, colon)) = field_name(line) {
            fields.push(Field { start: pos, name_end: pos + name_end, value_start: pos + colon + 1, end: line_end });
            pos = line_end;
            continue;
        }
        break (pos, pos, false);
    };
    let eol: &'static [u8] = match buf[start..end.max(body_start)].iter().position(|&b| b == b'\n') {
        Some(i) if i == 0 || buf[start + i - 1] != b'\r' => b"\n",
        _ => b"\r\n",
    };
    Block { fields, start, end, body_start, separator, eol }
}

/// A field name (printable ASCII but colon, RFC 5322 §3.6.8), optional white space (obsolete
/// syntax), then a colon: the name's length and the colon's index.
fn field_name(line: &[u8]) -> Option<(usize, usize)> {
    let name = line.iter().take_while(|&&b| b.is_ascii_graphic() && b != b':').count();
    let colon = name + line[name..].iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    (name > 0 && line.get(colon) == Some(&b':')).then_some((name, colon))
}
