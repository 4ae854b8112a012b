//! Writing responses. imap-next frames what clients send; what gatepost answers is written
//! here, directly into the session's output buffer, so a FETCH of a large message is one copy
//! of its bytes and nothing else (the rendering rules of RFC 3501 §4 and §9: atoms, quoted
//! strings, literals, NIL).

/// Response codes gatepost uses (RFC 5530 and the extension RFCs), named once.
pub mod code {
    pub const ALREADYEXISTS: &str = "ALREADYEXISTS";
    pub const NONEXISTENT: &str = "NONEXISTENT";
    pub const CANNOT: &str = "CANNOT";
    pub const OVERQUOTA: &str = "OVERQUOTA";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const SERVERBUG: &str = "SERVERBUG";
    pub const AUTHENTICATIONFAILED: &str = "AUTHENTICATIONFAILED";
    pub const AUTHORIZATIONFAILED: &str = "AUTHORIZATIONFAILED";
    pub const PRIVACYREQUIRED: &str = "PRIVACYREQUIRED";
    pub const LIMIT: &str = "LIMIT";
    pub const TOOBIG: &str = "TOOBIG";
    pub const CLIENTBUG: &str = "CLIENTBUG";
    pub const TRYCREATE: &str = "TRYCREATE";
    pub const NOPERM: &str = "NOPERM";
    pub const INUSE: &str = "INUSE";
    pub const CONTACTADMIN: &str = "CONTACTADMIN";
    pub const EXPUNGEISSUED: &str = "EXPUNGEISSUED";
}

#[derive(Debug, Default)]
pub struct Out {
    pub buf: Vec<u8>,
}

impl Out {
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    pub fn num(&mut self, n: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.buf, "{n}");
        self
    }

    pub fn crlf(&mut self) -> &mut Self {
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// A string: quoted when it can be, a literal otherwise (8-bit, CR, LF, or long).
    pub fn string(&mut self, s: &[u8]) -> &mut Self {
        let quotable = s.len() < 1024 && s.iter().all(|&b| (0x20..0x7f).contains(&b));
        if quotable {
            self.buf.push(b'"');
            for &b in s {
                if b == b'"' || b == b'\\' {
                    self.buf.push(b'\\');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.literal(s);
        }
        self
    }

    pub fn literal(&mut self, s: &[u8]) -> &mut Self {
        self.raw("{").num(s.len()).raw("}\r\n").bytes(s)
    }

    /// A string or NIL.
    pub fn nstring(&mut self, s: Option<&[u8]>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.raw("NIL"),
        }
    }

    /// An astring: an atom when the text is one (mailbox names read better so), else a string.
    pub fn astring(&mut self, s: &str) -> &mut Self {
        let atom = !s.is_empty()
            && s.bytes().all(|b| {
                (0x21..0x7f).contains(&b) && !matches!(b, b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\')
            });
        if atom { self.raw(s) } else { self.string(s.as_bytes()) }
    }

    /// `tag OK|NO|BAD [code] text` — the text ends with the session id (docs/imap.md).
    pub fn tagged(&mut self, tag: &str, status: &str, code: Option<&str>, text: &str) -> &mut Self {
        self.raw(tag).raw(" ").raw(status).raw(" ");
        if let Some(c) = code {
            self.raw("[").raw(c).raw("] ");
        }
        self.raw(&printable(text)).crlf()
    }

    /// `* OK|NO|BAD|BYE [code] text`.
    pub fn untagged(&mut self, status: &str, code: Option<&str>, text: &str) -> &mut Self {
        self.tagged("*", status, code, text)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Response text is one line of printable ASCII: anything else (a client's bytes echoed back,
/// a file name) is replaced, so a reply cannot be split or carry escapes.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).take(400).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_atoms_and_literals() {
        let mut o = Out::default();
        o.string(b"a \"q\" \\").raw(" ").string("Büro".as_bytes()).raw(" ").astring("INBOX").raw(" ").astring("My Box");
        o.raw(" ").nstring(None).raw(" ").string(b"");
        assert_eq!(String::from_utf8(o.take()).unwrap(), "\"a \\\"q\\\" \\\\\" {5}\r\nBüro INBOX \"My Box\" NIL \"\"");
        o.tagged("a1", "NO", Some(code::CANNOT), "bad\r\nthing");
        assert_eq!(o.take(), b"a1 NO [CANNOT] bad??thing\r\n");
    }
}
