//! Named SMTP replies. Every reply gatepost sends is built from one of these, so the
//! mapping from situation to code lives in one place (RFC 5321 §4.2, RFC 3463 enhanced codes).

/// A reply code with its enhanced status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub basic: u16,
    pub enhanced: Option<(u8, u16, u16)>,
}

const fn code(basic: u16, class: u8, subject: u16, detail: u16) -> Code {
    Code { basic, enhanced: Some((class, subject, detail)) }
}

impl Code {
    /// Positive (2xx/3xx) replies carry no session id; errors always do.
    pub fn is_error(&self) -> bool {
        self.basic >= 400
    }
    pub fn enhanced_text(&self) -> Option<String> {
        self.enhanced.map(|(c, s, d)| format!("{c}.{s}.{d}"))
    }
}

// 2xx
/// RFC 5321 §4.2.2: service ready (greeting).
pub const READY: Code = Code { basic: 220, enhanced: None };
/// RFC 3207: ready to start TLS.
pub const TLS_READY: Code = code(220, 2, 0, 0);
pub const CLOSING: Code = code(221, 2, 0, 0);
/// RFC 4954: authentication succeeded.
pub const AUTH_OK: Code = code(235, 2, 7, 0);
pub const OK: Code = code(250, 2, 0, 0);
pub const SENDER_OK: Code = code(250, 2, 1, 0);
pub const RECIPIENT_OK: Code = code(250, 2, 1, 5);
pub const HELP: Code = code(214, 2, 0, 0);
/// RFC 5321 §3.5.3: cannot verify, but will accept.
pub const CANNOT_VRFY: Code = code(252, 2, 5, 0);
// 3xx
pub const AUTH_CONTINUE: Code = Code { basic: 334, enhanced: None };
pub const START_DATA: Code = Code { basic: 354, enhanced: None };
// 4xx
pub const SHUTTING_DOWN: Code = code(421, 4, 3, 2);
pub const TOO_MANY_CONNECTIONS: Code = code(421, 4, 7, 0);
pub const TIMEOUT: Code = code(421, 4, 4, 2);
pub const TOO_MANY_ERRORS: Code = code(421, 4, 7, 0);
/// The session's account changed on the server (disabled, new password): the session ends.
pub const ACCOUNT_CHANGED: Code = code(421, 4, 7, 0);
/// Storage trouble: the client keeps the message and retries.
pub const STORE_FAILED: Code = code(451, 4, 3, 0);
/// RFC 3463 4.3.1 "mail system full": free disk below `store.min_free_disk`.
pub const INSUFFICIENT_STORAGE: Code = code(452, 4, 3, 1);
/// RFC 5321 §4.5.3.1.10: too many recipients is a temporary 452.
pub const TOO_MANY_RECIPIENTS: Code = code(452, 4, 5, 3);
/// RFC 4954: temporary authentication failure (throttled).
pub const AUTH_THROTTLED: Code = code(454, 4, 7, 0);
pub const TLS_UNAVAILABLE: Code = code(454, 4, 7, 0);
// 5xx
pub const UNKNOWN_COMMAND: Code = code(500, 5, 5, 1);
pub const LINE_TOO_LONG: Code = code(500, 5, 5, 2);
pub const SYNTAX_ERROR: Code = code(501, 5, 5, 4);
pub const BAD_SENDER_SYNTAX: Code = code(501, 5, 1, 7);
pub const BAD_RECIPIENT_SYNTAX: Code = code(501, 5, 1, 3);
/// RFC 4865 §5: a HOLDUNTIL/HOLDFOR that cannot be honoured.
pub const BAD_HOLD: Code = code(501, 5, 5, 4);
pub const AUTH_CANCELLED: Code = code(501, 5, 0, 0);
pub const NOT_IMPLEMENTED: Code = code(502, 5, 5, 1);
pub const BAD_SEQUENCE: Code = code(503, 5, 5, 1);
pub const UNSUPPORTED_MECHANISM: Code = code(504, 5, 5, 4);
/// RFC 4954 §6: authentication required before MAIL.
pub const AUTH_REQUIRED: Code = code(530, 5, 7, 0);
/// RFC 4954 §6: credentials invalid.
pub const AUTH_FAILED: Code = code(535, 5, 7, 8);
/// RFC 4954 §6: mechanism needs TLS first.
pub const ENCRYPTION_REQUIRED: Code = code(538, 5, 7, 11);
/// The sender is not one the user may use: gatepost is never an open relay.
pub const SENDER_NOT_ALLOWED: Code = code(550, 5, 7, 1);
/// A dated plus-address tag that names no real or allowed date.
pub const BAD_RECIPIENT_DATE: Code = code(553, 5, 1, 3);
/// RFC 6531 §3.5: a non-ASCII sender in a transaction without SMTPUTF8.
pub const NON_ASCII_SENDER: Code = code(550, 5, 6, 7);
/// RFC 6531 §3.5: a non-ASCII recipient in a transaction without SMTPUTF8.
pub const NON_ASCII_RECIPIENT: Code = code(553, 5, 6, 7);
pub const MESSAGE_TOO_BIG: Code = code(552, 5, 3, 4);
/// Content the gateway refuses: bad Deliver-On, overlong line, bare CR in the header, several
/// From fields, no header at all.
pub const BAD_CONTENT: Code = code(554, 5, 6, 0);
pub const NO_VALID_RECIPIENTS: Code = code(554, 5, 5, 1);

/// One reply: a code and its human sentence. Multi-line replies are built by the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    pub text: String,
}

impl Reply {
    pub fn new(code: Code, text: impl Into<String>) -> Self {
        Reply { code, text: text.into() }
    }

    /// Serialise; error replies name the session so a user's report can be matched to the logs.
    /// `\n` in the text separates the lines of a multi-line reply; every other control
    /// character is written as `?`.
    pub fn write_to(&self, out: &mut Vec<u8>, session_id: &str) {
        let lines: Vec<&str> = self.text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{}", self.code.basic, sep).as_bytes());
            if let Some(enh) = self.code.enhanced_text() {
                out.extend_from_slice(enh.as_bytes());
                out.push(b' ');
            }
            // Reply text often quotes the client (addresses, dates, names); a CR or other
            // control character there could forge a reply line or drive a terminal.
            out.extend(line.bytes().map(|b| if b.is_ascii_control() { b'?' } else { b }));
            if self.code.is_error() && i + 1 == lines.len() {
                out.extend_from_slice(format!(" [session {session_id}]").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// EHLO/HELO replies carry no enhanced code (RFC 2034 §3: only after EHLO is it negotiated).
pub const HELLO: Code = Code { basic: 250, enhanced: None };
/// RFC 5321 §4.1.1.11: MAIL/RCPT parameter not recognised.
pub const PARAM_NOT_SUPPORTED: Code = code(555, 5, 5, 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_never_carry_control_characters() {
        let mut out = Vec::new();
        Reply::new(SENDER_NOT_ALLOWED, "From <m@x\r250 2.0.0 fake\0\x1b[31m> is not yours").write_to(&mut out, "s1");
        assert_eq!(out, b"550 5.7.1 From <m@x?250 2.0.0 fake??[31m> is not yours [session s1]\r\n");
        let mut out = Vec::new();
        Reply::new(HELLO, "a\nb").write_to(&mut out, "s1");
        assert_eq!(out, b"250-a\r\n250 b\r\n");
    }
}
