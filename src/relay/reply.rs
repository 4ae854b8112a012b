//! An SMTP reply as received from a relay.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReply {
    pub code: u16,
    /// RFC 3463 enhanced code, when the relay sent one.
    pub enhanced: Option<String>,
    /// The text of all lines, joined with a space.
    pub text: String,
}

impl RelayReply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Parse complete reply lines (`250-…` … `250 …`), CRLF or LF.
    pub fn parse(lines: &[&str]) -> Option<RelayReply> {
        let mut code = None;
        let mut enhanced = None;
        let mut texts = Vec::new();
        for line in lines {
            let line = line.trim_end_matches(['\r', '\n']);
            let c: u16 = line.get(..3)?.parse().ok()?;
            if !(200..600).contains(&c) || code.is_some_and(|k| k != c) {
                return None;
            }
            code = Some(c);
            let rest = line.get(4..).unwrap_or("");
            let (enh, text) = split_enhanced(rest);
            if enhanced.is_none() {
                enhanced = enh;
            }
            texts.push(text.to_string());
        }
        Some(RelayReply { code: code?, enhanced, text: texts.join(" ").trim().to_string() })
    }
}

/// `2.0.0 Ok` → (Some("2.0.0"), "Ok").
fn split_enhanced(rest: &str) -> (Option<String>, &str) {
    let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let parts: Vec<&str> = first.split('.').collect();
    let is_code = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..].iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    if is_code { (Some(first.to_string()), tail) } else { (None, rest) }
}

impl fmt::Display for RelayReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let r = RelayReply::parse(&["250 2.0.0 Ok: queued as 4ABC\r\n"]).unwrap();
        assert_eq!((r.code, r.enhanced.as_deref(), r.text.as_str()), (250, Some("2.0.0"), "Ok: queued as 4ABC"));
        let r = RelayReply::parse(&["250-mx.example\r\n", "250-PIPELINING\r\n", "250 SIZE 10\r\n"]).unwrap();
        assert_eq!((r.code, r.enhanced, r.text.as_str()), (250, None, "mx.example PIPELINING SIZE 10"));
        assert!(RelayReply::parse(&["451 4.7.1 greylisted"]).unwrap().is_transient());
        assert!(RelayReply::parse(&["250-a", "251 b"]).is_none());
        assert!(RelayReply::parse(&["hello"]).is_none());
        assert!(RelayReply::parse(&[]).is_none());
        assert_eq!(RelayReply::parse(&["554 5.7.1 no"]).unwrap().to_string(), "554 5.7.1 no");
        assert_eq!(RelayReply::parse(&["220 9.9.9 x"]).unwrap().enhanced, None);
    }
}
