//! `MAIL FROM:<path> params` and `RCPT TO:<path> params`, read from the raw command line
//! (RFC 5321 §4.1.1.2, §4.1.1.3, §4.1.2, §4.1.3). Sans-IO and pure.
//!
//! Our own parser rather than smtp-proto's for these two commands, because smtp-proto keeps
//! only the last of a parameter given twice (`HOLDFOR=3600 HOLDFOR=5` held for 5 s), turns
//! HOLDUNTIL into whole seconds (truncating `.512`), drops the quotes of a quoted local part
//! (`"a b"@x` became `a b@x`, another mailbox) and replaces 8-bit bytes with U+FFFD before
//! anyone can see them (relaying to a different address than the one accepted). Here:
//!
//! - the mailbox is kept exactly as sent, quotes included; a source route is dropped
//!   (RFC 5321 §4.1.1.3 / appendix C);
//! - parameters are listed in order, with their values as sent, and a keyword given twice
//!   (in any case) is an error naming it;
//! - 8-bit bytes in the address are refused unless the transaction asked for SMTPUTF8
//!   (RFC 6531 §3.5); with it, the address must be UTF-8;
//! - control characters are refused anywhere in the line.

/// Which command the line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Mail,
    Rcpt,
}

/// One ESMTP parameter (RFC 5321 §4.1.2 `esmtp-param`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Upper case.
    pub keyword: String,
    /// As sent.
    pub value: Option<String>,
}

/// A parsed MAIL or RCPT command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeCommand {
    /// The mailbox exactly as sent (quotes kept), without angle brackets or source route;
    /// empty for the null path `<>`.
    pub address: String,
    pub params: Vec<Param>,
}

impl EnvelopeCommand {
    pub fn param(&self, keyword: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.keyword.eq_ignore_ascii_case(keyword))
    }
}

/// Why a MAIL or RCPT line was refused; the session chooses the reply code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not `MAIL FROM:<path> [params]` / `RCPT TO:<path> [params]`.
    Syntax,
    /// The path is not a mailbox; the text says why.
    BadAddress(&'static str),
    /// 8-bit bytes in the address of a transaction without SMTPUTF8.
    EightBit,
    /// With SMTPUTF8, address bytes that are not UTF-8.
    NotUtf8,
    /// This parameter (upper case) was given twice.
    Duplicate(String),
    /// This parameter is not `keyword[=value]` with a printable value.
    BadParameter(String),
}

/// Longest path (RFC 5321 §4.5.3.1.3: 256 octets including the angle brackets).
pub const MAX_PATH: usize = 256;

/// Parses one MAIL or RCPT line (with or without its CRLF). `smtputf8`: the transaction
/// asked for SMTPUTF8 (for MAIL, a `SMTPUTF8` parameter on the same line also counts).
pub fn parse(line: &[u8], verb: Verb, smtputf8: bool) -> Result<EnvelopeCommand, EnvelopeError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = prefix(line, verb).ok_or(EnvelopeError::Syntax)?;
    let close = closing_bracket(rest).ok_or(EnvelopeError::Syntax)?;
    let (path, after) = (&rest[..close], &rest[close + 1..]);
    if !(after.is_empty() || after.starts_with(b" ")) {
        return Err(EnvelopeError::Syntax);
    }
    let tokens: Vec<&[u8]> = after.split(|&b| b == b' ').filter(|t| !t.is_empty()).collect();
    let utf8 = smtputf8 || (verb == Verb::Mail && tokens.iter().any(|t| t.eq_ignore_ascii_case(b"SMTPUTF8")));
    let params = params(&tokens, utf8)?;
    let address = mailbox(path, utf8)?;
    if verb == Verb::Rcpt && address.is_empty() {
        return Err(EnvelopeError::BadAddress("a recipient cannot be the null path <>"));
    }
    Ok(EnvelopeCommand { address, params })
}

/// The line after `MAIL FROM:<` / `RCPT TO:<` (case-insensitive; spaces allowed around the
/// colon, as clients send them).
fn prefix(line: &[u8], verb: Verb) -> Option<&[u8]> {
    let (command, word) = match verb {
        Verb::Mail => (&b"MAIL"[..], &b"FROM"[..]),
        Verb::Rcpt => (&b"RCPT"[..], &b"TO"[..]),
    };
    let rest = strip_word(line, command)?;
    let rest = rest.strip_prefix(b" ").map(trim_spaces)?;
    let rest = trim_spaces(strip_word(rest, word)?);
    let rest = trim_spaces(rest.strip_prefix(b":")?);
    rest.strip_prefix(b"<")
}

fn strip_word<'a>(line: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    let head = line.get(..word.len())?;
    head.eq_ignore_ascii_case(word).then(|| &line[word.len()..])
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

/// The index of the `>` that closes the path, skipping quoted strings.
fn closing_bracket(rest: &[u8]) -> Option<usize> {
    let (mut quoted, mut i) = (false, 0);
    while i < rest.len() {
        match rest[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The parameters, in order; every keyword at most once.
fn params(tokens: &[&[u8]], utf8: bool) -> Result<Vec<Param>, EnvelopeError> {
    let mut out: Vec<Param> = Vec::with_capacity(tokens.len());
    for token in tokens {
        let (keyword, value) = match token.iter().position(|&b| b == b'=') {
            Some(eq) => (&token[..eq], Some(&token[eq + 1..])),
            None => (*token, None),
        };
        let keyword_ok = keyword.first().is_some_and(u8::is_ascii_alphanumeric)
            && keyword.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-');
        let shown = String::from_utf8_lossy(keyword).to_ascii_uppercase();
        if !keyword_ok {
            return Err(EnvelopeError::BadParameter(printable(&shown)));
        }
        // esmtp-value: printable ASCII but "=", and UTF-8 under SMTPUTF8 (RFC 6531 §3.3).
        let value = match value {
            None => None,
            Some(v) => {
                let printable = v.iter().all(|&b| (b'!'..=b'~').contains(&b) && b != b'=' || (utf8 && b >= 0x80));
                match std::str::from_utf8(v) {
                    // UTF-8's own controls (C1, bidi) are no more printable than C0 (fuzzing).
                    Ok(text) if printable && !v.is_empty() && !text.chars().any(is_control) => Some(text.to_string()),
                    _ => return Err(EnvelopeError::BadParameter(shown)),
                }
            }
        };
        if out.iter().any(|p| p.keyword == shown) {
            return Err(EnvelopeError::Duplicate(shown));
        }
        out.push(Param { keyword: shown, value });
    }
    Ok(out)
}

/// Controls, as the operator's terminal must never see them raw: C0, DEL, C1, and the bidi
/// embeddings, overrides and isolates.
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A keyword for a reply: printable ASCII only, and short.
fn printable(text: &str) -> String {
    text.chars().take(32).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// The mailbox of a path, exactly as written: `Local-part "@" ( Domain / address-literal )`
/// after an optional source route, or empty for `<>`.
fn mailbox(path: &[u8], utf8: bool) -> Result<String, EnvelopeError> {
    use EnvelopeError::BadAddress;
    if path.len() + 2 > MAX_PATH {
        return Err(BadAddress("longer than 256 octets (RFC 5321)"));
    }
    if path.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(BadAddress("contains a control character"));
    }
    if path.iter().any(|&b| b >= 0x80) {
        if !utf8 {
            return Err(EnvelopeError::EightBit);
        }
        let Ok(text) = std::str::from_utf8(path) else {
            return Err(EnvelopeError::NotUtf8);
        };
        // UTF-8 brings its own controls: C1 (U+0080-U+009F) and the bidi overrides that make
        // an address read differently from what it is (found by fuzzing).
        if text.chars().any(is_control) {
            return Err(BadAddress("contains a control character"));
        }
    }
    let path = match path.first() {
        None => return Ok(String::new()),
        // A source route (`@a,@b:`) is obsolete and ignored (RFC 5321 §4.1.1.3, appendix C).
        Some(b'@') => match path.iter().position(|&b| b == b':') {
            Some(colon) if route_ok(&path[..colon]) => &path[colon + 1..],
            _ => return Err(BadAddress("malformed source route")),
        },
        Some(_) => path,
    };
    let at = local_part_end(path)?;
    if path.get(at) != Some(&b'@') {
        return Err(BadAddress("must be a full address like bob@example.com"));
    }
    domain(&path[at + 1..])?;
    // Checked above: ASCII, or UTF-8 under SMTPUTF8.
    String::from_utf8(path.to_vec()).map_err(|_| EnvelopeError::NotUtf8)
}

fn route_ok(route: &[u8]) -> bool {
    route.split(|&b| b == b',').all(|hop| hop.strip_prefix(b"@").is_some_and(|d| domain(d).is_ok()))
}

/// Where the local part ends: after a whole quoted string, or at the first byte that cannot
/// stand in a dot-string.
fn local_part_end(path: &[u8]) -> Result<usize, EnvelopeError> {
    use EnvelopeError::BadAddress;
    if path.first() == Some(&b'"') {
        let mut i = 1;
        while i < path.len() {
            match path[i] {
                b'\\' if path.get(i + 1).is_some_and(|&b| b >= 0x20) => i += 2,
                b'\\' => return Err(BadAddress("malformed quoted local part")),
                b'"' => return if i > 1 { Ok(i + 1) } else { Err(BadAddress("empty quoted local part")) },
                _ => i += 1,
            }
        }
        return Err(BadAddress("unterminated quoted local part"));
    }
    // Dot-string, leniently: dots anywhere (some real addresses have `..`).
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80;
    let end = path.iter().take_while(|&&b| atext(b)).count();
    if end == 0 {
        return Err(BadAddress("must be a full address like bob@example.com"));
    }
    Ok(end)
}

/// A domain name (labels of letters, digits, `-`, `_`, or UTF-8 under SMTPUTF8) or an address
/// literal in brackets.
fn domain(d: &[u8]) -> Result<(), EnvelopeError> {
    use EnvelopeError::BadAddress;
    if let Some(inner) = d.strip_prefix(b"[") {
        let ok = inner
            .strip_suffix(b"]")
            .is_some_and(|l| !l.is_empty() && l.iter().all(|&b| (b'!'..=b'~').contains(&b) && !b"[]\\".contains(&b)));
        return if ok { Ok(()) } else { Err(BadAddress("malformed address literal")) };
    }
    let label_ok =
        |l: &[u8]| !l.is_empty() && l.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80);
    if d.is_empty() || !d.split(|&b| b == b'.').all(label_ok) {
        return Err(BadAddress("the domain is not a valid host name"));
    }
    Ok(())
}

/// Fuzz entry point (target `smtp_envelope`). Byte 0: bit 0 set = RCPT (else MAIL), bit 1
/// set = the transaction has SMTPUTF8. The rest: the command line. Never panics; an accepted address is the exact
/// bytes of the line (quotes kept), free of control characters, ASCII unless SMTPUTF8 applies,
/// and a full address (or `<>` for MAIL); parameters are upper-case and never repeat; the
/// line's CRLF makes no difference.
pub fn fuzz_one(data: &[u8]) {
    let Some((&flags, line)) = data.split_first() else { return };
    let verb = if flags & 1 != 0 { Verb::Rcpt } else { Verb::Mail };
    let smtputf8 = flags & 2 != 0;
    let show = || String::from_utf8_lossy(line).into_owned();
    let result = parse(line, verb, smtputf8);
    if !line.ends_with(b"\n") && !line.ends_with(b"\r") {
        let with_crlf = [line, b"\r\n"].concat();
        assert_eq!(parse(&with_crlf, verb, smtputf8), result, "CRLF changes the parse of {:?}", show());
    }
    match result {
        Ok(cmd) => {
            let a = cmd.address.as_bytes();
            assert!(line.windows(a.len().max(1)).any(|w| w == a) || a.is_empty(), "address not as sent: {:?}", show());
            assert!(!cmd.address.chars().any(is_control), "control character accepted: {:?}", show());
            let utf8_asked = smtputf8 || (verb == Verb::Mail && cmd.param("SMTPUTF8").is_some());
            assert!(utf8_asked || cmd.address.is_ascii(), "8-bit address without SMTPUTF8: {:?}", show());
            assert!(cmd.address.contains('@') || (cmd.address.is_empty() && verb == Verb::Mail), "{:?}", show());
            assert!(cmd.address.len() <= 254, "address over the path limit: {:?}", show());
            let mut seen: Vec<&str> = Vec::new();
            for p in &cmd.params {
                assert_eq!(p.keyword, p.keyword.to_ascii_uppercase(), "keyword not upper case: {:?}", show());
                assert!(!seen.contains(&p.keyword.as_str()), "parameter {} twice: {:?}", p.keyword, show());
                seen.push(&p.keyword);
                if let Some(v) = &p.value {
                    assert!(
                        !v.is_empty() && !v.chars().any(|c| is_control(c) || c == ' '),
                        "value {v:?}: {:?}",
                        show()
                    );
                }
            }
        }
        Err(EnvelopeError::Duplicate(name)) => {
            let upper = String::from_utf8_lossy(line).to_ascii_uppercase();
            assert!(upper.matches(name.as_str()).count() >= 2, "{name} reported twice: {:?}", show());
        }
        Err(EnvelopeError::EightBit) => assert!(line.iter().any(|&b| b >= 0x80), "{:?}", show()),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests;
