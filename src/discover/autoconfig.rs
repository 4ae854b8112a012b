//! Mozilla's autoconfig format (`config-v1.1.xml`): the servers a domain publishes for mail
//! clients. Read with roxmltree (no DTDs, so no entity expansion), pure and fuzzed
//! (`autoconfig`). Only servers gatepost may use are kept: TLS (`SSL` or `STARTTLS`), and a
//! password or OAuth2 login (OAuth2-only servers are told apart: "not supported yet").

use crate::net::server_url::Security;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Imap,
    Pop3,
    Smtp,
}

/// One server of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub kind: Kind,
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Only OAuth2 is offered: a password will not do.
    pub oauth_only: bool,
    /// The login, `%EMAILADDRESS%` / `%EMAILLOCALPART%` filled in.
    pub username: Option<String>,
}

impl Server {
    /// As an account's server URL (`imaps://host:port`, …).
    pub fn url(&self) -> String {
        let scheme = match (self.kind, self.security) {
            (Kind::Imap, Security::Implicit) => "imaps",
            (Kind::Imap, _) => "imap+starttls",
            (Kind::Pop3, Security::Implicit) => "pop3s",
            (Kind::Pop3, _) => "pop3+starttls",
            (Kind::Smtp, Security::Implicit) => "smtps",
            (Kind::Smtp, _) => "smtp+starttls",
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// The usable servers of a file, in its order, for `address`.
pub fn parse(xml: &str, address: &str) -> Result<Vec<Server>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not an autoconfig file: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "clientConfig" {
        return Err("not an autoconfig file: no clientConfig".into());
    }
    let local = address.split('@').next().unwrap_or(address);
    let mut out = Vec::new();
    for provider in root.children().filter(|n| n.has_tag_name("emailProvider")) {
        for server in
            provider.children().filter(|n| n.has_tag_name("incomingServer") || n.has_tag_name("outgoingServer"))
        {
            let kind = match server.attribute("type") {
                Some("imap") => Kind::Imap,
                Some("pop3") => Kind::Pop3,
                Some("smtp") => Kind::Smtp,
                _ => continue,
            };
            let text = |tag: &str| {
                server.children().find(|n| n.has_tag_name(tag)).and_then(|n| n.text()).map(|t| t.trim().to_string())
            };
            let security = match text("socketType").as_deref() {
                Some("SSL") => Security::Implicit,
                Some("STARTTLS") => Security::StartTls,
                _ => continue, // plain text to a provider: never
            };
            let (Some(host), Some(port)) = (text("hostname"), text("port").and_then(|p| p.parse::<u16>().ok())) else {
                continue;
            };
            let host = host.to_ascii_lowercase();
            if port == 0 || host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                continue;
            }
            let auths: Vec<String> = server
                .children()
                .filter(|n| n.has_tag_name("authentication"))
                .filter_map(|n| n.text())
                .map(|t| t.trim().to_string())
                .collect();
            let oauth_only = !auths.is_empty() && auths.iter().all(|a| a.eq_ignore_ascii_case("OAuth2"));
            let username = text("username")
                .map(|u| u.replace("%EMAILADDRESS%", address).replace("%EMAILLOCALPART%", local))
                .filter(|u| !u.is_empty() && !u.contains('%') && !u.chars().any(char::is_control));
            out.push(Server { kind, host, port, security, oauth_only, username });
        }
    }
    Ok(out)
}

/// The incoming server to use (IMAP before POP3, implicit TLS before STARTTLS, passwords
/// before OAuth2) and the outgoing one.
pub fn choose(servers: &[Server]) -> (Option<&Server>, Option<&Server>) {
    let rank = |s: &&Server| (s.oauth_only, s.kind == Kind::Pop3, s.security != Security::Implicit);
    let incoming = servers.iter().filter(|s| s.kind != Kind::Smtp).min_by_key(rank);
    let outgoing = servers.iter().filter(|s| s.kind == Kind::Smtp).min_by_key(rank);
    (incoming, outgoing)
}

/// Fuzz check: any text never panics, and what is kept is usable.
pub fn fuzz_one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(servers) = parse(text, "alice@example.org") {
        for s in &servers {
            assert!(s.port != 0 && !s.host.is_empty(), "{s:?}");
            assert!(
                crate::net::server_url::ServerUrl::parse(
                    &s.url(),
                    &[
                        crate::net::server_url::Protocol::Imap,
                        crate::net::server_url::Protocol::Pop3,
                        crate::net::server_url::Protocol::Smtp
                    ],
                    "x"
                )
                .is_ok(),
                "{s:?}"
            );
        }
        let _ = choose(&servers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.org">
    <domain>example.org</domain>
    <incomingServer type="pop3">
      <hostname>pop.example.org</hostname><port>995</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>plain.example.org</hostname><port>143</port><socketType>plain</socketType>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>IMAP.example.org</hostname><port>143</port><socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILLOCALPART%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>oauth.example.org</hostname><port>993</port><socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.org</hostname><port>465</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;

    #[test]
    fn tls_servers_are_kept_and_the_best_chosen() {
        let servers = parse(FILE, "alice@example.org").unwrap();
        assert_eq!(servers.len(), 4, "the plain-text one is dropped: {servers:?}");
        let (incoming, outgoing) = choose(&servers);
        let incoming = incoming.unwrap();
        assert_eq!(incoming.url(), "imap+starttls://imap.example.org:143", "IMAP with a password wins");
        assert_eq!(incoming.username.as_deref(), Some("alice"));
        assert_eq!(outgoing.unwrap().url(), "smtps://smtp.example.org:465");
        assert!(servers.iter().any(|s| s.oauth_only && s.host == "oauth.example.org"));
    }

    #[test]
    fn oauth_only_is_told_apart_and_junk_refused() {
        let only = FILE.replace("password-cleartext", "OAuth2");
        let servers = parse(&only, "a@example.org").unwrap();
        assert!(choose(&servers).0.unwrap().oauth_only);
        for bad in [
            "",
            "<html><body>not here</body></html>",
            "<clientConfig>",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><clientConfig/>",
        ] {
            assert!(parse(bad, "a@example.org").is_err(), "{bad:?}");
        }
        assert!(parse("<clientConfig/>", "a@example.org").unwrap().is_empty());
    }
}
