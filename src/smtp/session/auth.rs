//! SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) as pure decoding steps.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    Cancelled,
    Malformed(&'static str),
}

/// Decode one base64 client response; "*" cancels (RFC 4954 §4).
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_end_matches(['\r', '\n']).trim();
    if line == "*" {
        return Err(SaslError::Cancelled);
    }
    STANDARD.decode(line).map_err(|_| SaslError::Malformed("response is not valid base64"))
}

/// PLAIN: `authzid NUL authcid NUL passwd`. An authzid naming someone else is refused:
/// gatepost has no proxy logins.
pub fn decode_plain(raw: &[u8]) -> Result<(String, String), SaslError> {
    let mut parts = raw.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(pass), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(SaslError::Malformed("PLAIN response must be authzid NUL authcid NUL password"));
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed("credentials are not UTF-8"));
    let (authz, authc, pass) = (text(authz)?, text(authc)?, text(pass)?);
    if authc.is_empty() {
        return Err(SaslError::Malformed("empty user name"));
    }
    if !authz.is_empty() && authz != authc {
        return Err(SaslError::Malformed("authorization identity must be empty or equal to the user name"));
    }
    Ok((authc, pass))
}

pub fn utf8(raw: Vec<u8>) -> Result<String, SaslError> {
    String::from_utf8(raw).map_err(|_| SaslError::Malformed("credentials are not UTF-8"))
}

/// "Username:" and "Password:" prompts of AUTH LOGIN.
pub const LOGIN_USER_PROMPT: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASS_PROMPT: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_table() {
        assert_eq!(decode_plain(b"\0alice\0pw"), Ok(("alice".into(), "pw".into())));
        assert_eq!(decode_plain(b"alice\0alice\0pw"), Ok(("alice".into(), "pw".into())));
        assert!(decode_plain(b"bob\0alice\0pw").is_err());
        assert!(decode_plain(b"alice\0pw").is_err());
        assert!(decode_plain(b"\0\0pw").is_err());
        assert!(decode_plain(b"\0a\0b\0c").is_err());
        assert_eq!(decode_response("*\r\n"), Err(SaslError::Cancelled));
        assert!(decode_response("!!!").is_err());
        assert_eq!(decode_response("YWxpY2U=\r\n"), Ok(b"alice".to_vec()));
    }
}
