//! What went wrong reaching an account, in words a user can act on. Pure: the connection code
//! names the step and hands over the server's or the TLS library's words; this decides which
//! problem it is and what to do (table-tested).

use std::fmt;

/// The steps of reaching an account's server, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Dns,
    Tcp,
    Tls,
    Greeting,
    StartTls,
    Login,
    Capabilities,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Dns => "DNS",
            Step::Tcp => "TCP",
            Step::Tls => "TLS",
            Step::Greeting => "greeting",
            Step::StartTls => "STARTTLS",
            Step::Login => "login",
            Step::Capabilities => "capabilities",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    NoSuchHost,
    Unreachable,
    Timeout,
    CertExpired,
    CertWrongHost,
    CertUnknownIssuer,
    TlsOther,
    PlainText,
    NoStartTls,
    Refused,
    WrongPassword,
    AppPasswordNeeded,
    AccountDisabled,
    Unavailable,
    LoginRefused,
    Protocol,
    Unsupported,
}

impl Problem {
    /// What the user can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Problem::NoSuchHost => "check the server name (or omit it to let gatepost look it up)",
            Problem::Unreachable => "check the server name and port; the server may be down or a firewall in the way",
            Problem::Timeout => "the server did not answer in time: check the port, or try again later",
            Problem::CertExpired => "the server's certificate has expired: tell its operator",
            Problem::CertWrongHost => "the certificate is for another name: use the name the provider documents",
            Problem::CertUnknownIssuer => {
                "the certificate is not from a known authority: if you trust it, pass --ca-file with it"
            }
            Problem::TlsOther => "TLS could not be set up with this server",
            Problem::PlainText => "use imaps:// or imap+starttls:// (plain text only to this machine)",
            Problem::NoStartTls => "the server does not offer STARTTLS: use imaps:// (port 993)",
            Problem::Refused => "the server refused the connection: try again later",
            Problem::WrongPassword => "check the login and password",
            Problem::AppPasswordNeeded => {
                "this provider wants an app password: create one in its security settings and use it here"
            }
            Problem::AccountDisabled => {
                "the provider has disabled or locked this account, or IMAP is off in its settings"
            }
            Problem::Unavailable => "the server is busy or down for now: gatepost will try again",
            Problem::LoginRefused => "the server refused the login: see its words",
            Problem::Protocol => "the server did not speak IMAP as expected",
            Problem::Unsupported => "this server is not supported",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::NoSuchHost => "no such host",
            Problem::Unreachable => "cannot connect",
            Problem::Timeout => "timed out",
            Problem::CertExpired => "certificate expired",
            Problem::CertWrongHost => "certificate for another host name",
            Problem::CertUnknownIssuer => "certificate from an unknown issuer",
            Problem::TlsOther => "TLS failed",
            Problem::PlainText => "plain text to a remote server",
            Problem::NoStartTls => "STARTTLS refused",
            Problem::Refused => "refused",
            Problem::WrongPassword => "wrong login or password",
            Problem::AppPasswordNeeded => "app password needed",
            Problem::AccountDisabled => "account disabled",
            Problem::Unavailable => "server unavailable",
            Problem::LoginRefused => "login refused",
            Problem::Protocol => "protocol error",
            Problem::Unsupported => "unsupported server",
        })
    }
}

/// A refused login, from the server's reply: response codes first (RFC 5530), then the words
/// large providers are known to use.
pub fn classify_login(reply: &str) -> Problem {
    let r = reply.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| r.contains(n));
    if has(&[
        "application-specific password",
        "app password",
        "app-specific password",
        "[webalert",
        "web login required",
    ]) {
        Problem::AppPasswordNeeded
    } else if has(&["[unavailable]", "[limit]", "[inuse]", "temporarily", "try again later"]) {
        Problem::Unavailable
    } else if has(&[
        "[authorizationfailed]",
        "[expired]",
        "[contactadmin]",
        "disabled",
        "suspended",
        "locked",
        "not enabled",
    ]) {
        Problem::AccountDisabled
    } else if has(&[
        "[authenticationfailed]",
        "invalid credentials",
        "authentication failed",
        "login failed",
        "bad password",
        "incorrect",
    ]) {
        Problem::WrongPassword
    } else {
        Problem::LoginRefused
    }
}

/// A failed handshake, from rustls' error.
pub fn classify_tls(e: &rustls::Error) -> Problem {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => Problem::CertExpired,
            C::NotValidForName | C::NotValidForNameContext { .. } => Problem::CertWrongHost,
            C::UnknownIssuer => Problem::CertUnknownIssuer,
            _ => Problem::TlsOther,
        },
        _ => Problem::TlsOther,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_refusals_are_told_apart() {
        for (reply, want) in [
            (
                "no response: code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")",
                Problem::WrongPassword,
            ),
            ("NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)", Problem::WrongPassword),
            ("NO LOGIN failed.", Problem::WrongPassword),
            (
                "NO [ALERT] Application-specific password required: https://support.google.com/…",
                Problem::AppPasswordNeeded,
            ),
            ("NO [WEBALERT https://accounts.google.com/…] Web login required.", Problem::AppPasswordNeeded),
            ("NO [AUTHORIZATIONFAILED] Account disabled", Problem::AccountDisabled),
            ("NO [ALERT] Your account is not enabled for IMAP use.", Problem::AccountDisabled),
            ("NO [UNAVAILABLE] Temporary authentication failure", Problem::Unavailable),
            ("NO [LIMIT] too many connections", Problem::Unavailable),
            ("NO something else entirely", Problem::LoginRefused),
        ] {
            assert_eq!(classify_login(reply), want, "{reply}");
        }
    }

    #[test]
    fn certificate_problems_are_named() {
        use rustls::CertificateError as C;
        let cert = |c| rustls::Error::InvalidCertificate(c);
        assert_eq!(classify_tls(&cert(C::Expired)), Problem::CertExpired);
        assert_eq!(classify_tls(&cert(C::NotValidForName)), Problem::CertWrongHost);
        assert_eq!(classify_tls(&cert(C::UnknownIssuer)), Problem::CertUnknownIssuer);
        assert_eq!(classify_tls(&cert(C::BadSignature)), Problem::TlsOther);
        assert_eq!(classify_tls(&rustls::Error::HandshakeNotComplete), Problem::TlsOther);
        for p in [Problem::WrongPassword, Problem::CertUnknownIssuer, Problem::PlainText] {
            assert!(!p.hint().is_empty() && !p.to_string().is_empty());
        }
    }
}
