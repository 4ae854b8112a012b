//! Server URLs: the relay's (`relay.url`) and a connected account's incoming and outgoing
//! servers (`account add --incoming imaps://… --smtp smtps://…`, docs/accounts.md). One
//! grammar: `scheme://host[:port]`, IPv6 literals in brackets, no user, password or path
//! (credentials live in files, never in a URL). `+starttls` means STARTTLS is required:
//! nothing is sent in clear if the server does not offer it.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text, no STARTTLS attempted (plain means plain).
    Plain,
    /// STARTTLS is required; nothing is sent in clear if it fails.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub protocol: Protocol,
    pub security: Security,
    /// Without brackets for an IPv6 literal.
    pub host: String,
    pub port: u16,
}

/// (scheme, protocol, security, default port); the first scheme of a pair is how it is written back.
const SCHEMES: &[(&str, Protocol, Security, u16)] = &[
    ("imaps", Protocol::Imap, Security::Implicit, 993),
    ("imap+starttls", Protocol::Imap, Security::StartTls, 143),
    ("imap", Protocol::Imap, Security::Plain, 143),
    ("pop3s", Protocol::Pop3, Security::Implicit, 995),
    ("pop3+starttls", Protocol::Pop3, Security::StartTls, 110),
    ("pop3", Protocol::Pop3, Security::Plain, 110),
    ("smtps", Protocol::Smtp, Security::Implicit, 465),
    ("smtp+starttls", Protocol::Smtp, Security::StartTls, 587),
    ("smtp", Protocol::Smtp, Security::Plain, 25),
];

impl ServerUrl {
    /// Parse a URL of one of `allowed` protocols; `what` names it in errors ("relay",
    /// "incoming server").
    pub fn parse(url: &str, allowed: &[Protocol], what: &str) -> Result<ServerUrl, String> {
        let schemes = || SCHEMES.iter().filter(|s| allowed.contains(&s.1)).map(|s| s.0).collect::<Vec<_>>().join(", ");
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!(
                "a {what} URL looks like {}://host[:port]",
                SCHEMES.iter().find(|s| allowed.contains(&s.1)).map_or("imaps", |s| s.0)
            )
        })?;
        let scheme = scheme.to_ascii_lowercase();
        let &(_, protocol, security, default_port) =
            SCHEMES
                .iter()
                .find(|s| s.0 == scheme && allowed.contains(&s.1))
                .ok_or_else(|| format!("unsupported {what} scheme {scheme:?}: use {}", schemes()))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('@') {
            return Err(format!("the {what} URL must not contain a user name or password"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(format!("a {what} URL is scheme://host[:port], without a path"));
        }
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (v6, tail) = after.split_once(']').ok_or_else(|| format!("unclosed [ in the {what} URL"))?;
            v6.parse::<std::net::Ipv6Addr>().map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or("expected :port after the IPv6 address")?),
            };
            (v6.to_string(), port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
                return Err(format!("{host:?} is not a valid {what} host name"));
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("{p:?} is not a valid port")),
            },
        };
        Ok(ServerUrl { protocol, security, host, port })
    }

    /// A loopback address or `localhost`: the only place plain text may go for an account.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    fn scheme(&self) -> &'static str {
        SCHEMES.iter().find(|s| s.1 == self.protocol && s.2 == self.security).map_or("?", |s| s.0)
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme(), self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Protocol::*;
    use Security::*;

    #[test]
    fn urls_parse_to_protocol_security_host_and_port() {
        let incoming = [Imap, Pop3];
        let table: &[(&str, Protocol, Security, &str, u16)] = &[
            ("imaps://imap.example.com", Imap, Implicit, "imap.example.com", 993),
            ("IMAPS://Imap.Example.com:1993/", Imap, Implicit, "imap.example.com", 1993),
            ("imap+starttls://mail.example.com", Imap, StartTls, "mail.example.com", 143),
            ("imap://127.0.0.1:2143", Imap, Plain, "127.0.0.1", 2143),
            ("pop3s://pop.example.com", Pop3, Implicit, "pop.example.com", 995),
            ("pop3+starttls://[::1]", Pop3, StartTls, "::1", 110),
        ];
        for (url, p, s, h, port) in table {
            let u = ServerUrl::parse(url, &incoming, "incoming server").unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((u.protocol, u.security, u.host.as_str(), u.port), (*p, *s, *h, *port), "{url}");
            assert_eq!(ServerUrl::parse(&u.to_string(), &incoming, "x").unwrap(), u, "round trip of {url}");
        }
        let out = ServerUrl::parse("smtp+starttls://smtp.example.com", &[Smtp], "outgoing server").unwrap();
        assert_eq!((out.security, out.port), (StartTls, 587));
        assert_eq!(ServerUrl::parse("smtps://s.example.com", &[Smtp], "x").unwrap().port, 465);
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let incoming = [Imap, Pop3];
        for (url, want) in [
            ("imap.example.com", "looks like imaps://"),
            ("smtps://s.example.com", "use imaps, imap+starttls, imap, pop3s"),
            ("imaps://user:pw@imap.example.com", "user name or password"),
            ("imaps://imap.example.com/INBOX", "without a path"),
            ("imaps://", "not a valid"),
            ("imaps://bad_host!", "not a valid"),
            ("imaps://h:0", "not a valid port"),
            ("imaps://h:+993", "not a valid port"),
            ("imaps://[::1", "unclosed ["),
            ("imaps://[nope]", "not an IPv6 address"),
        ] {
            let e = ServerUrl::parse(url, &incoming, "incoming server").unwrap_err();
            assert!(e.contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn only_loopback_counts_as_loopback() {
        let is = |u: &str| ServerUrl::parse(u, &[Imap], "x").unwrap().is_loopback();
        assert!(is("imap://127.0.0.1") && is("imap://[::1]") && is("imap://localhost") && is("imap://127.8.9.1"));
        assert!(!is("imap://10.0.0.1") && !is("imap://localhost.example.com") && !is("imap://example.com"));
    }
}
