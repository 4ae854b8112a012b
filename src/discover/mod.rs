//! Finding an address's servers when `account add` is not given them (docs/accounts.md,
//! "Discovery"), in the order mail clients use: the built-in provider table, autoconfig over
//! HTTPS only, SRV records (RFC 6186, RFC 8314), then `imap.` / `mail.<domain>`. Each step
//! is reported as it ends, lasts at most `step_limit` (5 s), and all of them `total_limit`
//! (15 s). A server outside the address's domain found by the network (autoconfig, SRV) is
//! used only when the user accepts it (`--accept-server`, RFC 6186 §6): anyone who can
//! answer for the domain's DNS could otherwise send the password elsewhere. The name server
//! and the HTTPS base are settings, so tests run offline against local peers.

pub mod autoconfig;
pub mod dns;
pub mod https;
pub mod providers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use rustls::ClientConfig;
use tokio::time::Instant;

use crate::net::server_url::Security;
use providers::Provider;

pub const STEP_LIMIT: Duration = Duration::from_secs(5);
pub const TOTAL_LIMIT: Duration = Duration::from_secs(15);

pub struct Settings {
    /// Where SRV questions go (`/etc/resolv.conf`'s first name server by default).
    pub nameserver: SocketAddr,
    /// Fetch autoconfig from this `https://host[:port]` instead of the domain's own hosts.
    pub https_base: Option<String>,
    pub tls: Arc<ClientConfig>,
    pub step_limit: Duration,
    pub total_limit: Duration,
    /// Hosts outside the domain the user accepts (`--accept-server`), lower case.
    pub accept: Vec<String>,
}

/// Servers found, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub incoming: String,
    pub smtp: Option<String>,
    /// The login the source suggests (autoconfig's username), if any.
    pub login: Option<String>,
    /// `provider table (Gmail)`, `autoconfig`, `SRV`, `guess`.
    pub via: String,
    /// What the user should know (app passwords).
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovered {
    Found(Found),
    /// Found, but gatepost cannot log in there (OAuth2 only, or no IMAP at all).
    Unsupported {
        name: String,
        why: String,
    },
    NothingFound,
}

/// Whether `host` is the domain or under it.
pub fn inside(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// The autoconfig URLs to try, in order (or under the injected base).
pub fn autoconfig_urls(address: &str, domain: &str, base: Option<&str>) -> [String; 2] {
    let encoded: String = address
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (first, second) = match base {
        Some(b) => (b.trim_end_matches('/').to_string(), b.trim_end_matches('/').to_string()),
        None => (format!("https://autoconfig.{domain}"), format!("https://{domain}")),
    };
    [
        format!("{first}/mail/config-v1.1.xml?emailaddress={encoded}"),
        format!("{second}/.well-known/autoconfig/mail/config-v1.1.xml"),
    ]
}

/// Find `address`'s servers; `say` hears each step's outcome.
pub async fn discover(address: &str, s: &Settings, say: &mut (dyn FnMut(String) + Send)) -> Discovered {
    let Some((_, domain)) = address.rsplit_once('@') else { return Discovered::NothingFound };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let deadline = Instant::now() + s.total_limit;
    let step = || s.step_limit.min(deadline.saturating_duration_since(Instant::now()));
    let accepted = |host: &str| inside(host, &domain) || s.accept.iter().any(|a| a.eq_ignore_ascii_case(host));

    match providers::lookup(&domain) {
        Some(Provider::Servers { name, incoming, smtp, note }) => {
            say(format!("provider table: {name}"));
            return Discovered::Found(Found {
                incoming: incoming.to_string(),
                smtp: Some(smtp.to_string()),
                login: None,
                via: format!("provider table ({name})"),
                note: Some(note.to_string()),
            });
        }
        Some(Provider::Unsupported { name, why }) => {
            say(format!("provider table: {name}: not supported yet"));
            return Discovered::Unsupported { name: name.to_string(), why: why.to_string() };
        }
        None => say(format!("provider table: nothing for {domain}")),
    }

    for url in autoconfig_urls(address, &domain, s.https_base.as_deref()) {
        if step().is_zero() {
            break;
        }
        let started = Instant::now();
        let body = https::get(&url, &s.tls, step()).await;
        let took = started.elapsed().as_secs_f32();
        let servers = body.and_then(|b| autoconfig::parse(&String::from_utf8_lossy(&b), address));
        let servers = match servers {
            Ok(servers) => servers,
            Err(e) => {
                say(format!("autoconfig {url}: {e} ({took:.1} s)"));
                continue;
            }
        };
        let (incoming, outgoing) = autoconfig::choose(&servers);
        let Some(incoming) = incoming else {
            say(format!("autoconfig {url}: no server gatepost can use (TLS and a password)"));
            continue;
        };
        if incoming.oauth_only {
            say(format!("autoconfig {url}: {} takes only OAuth2", incoming.host));
            let why = format!("{}'s servers accept only OAuth2 sign-in, which gatepost does not support yet", domain);
            return Discovered::Unsupported { name: domain.clone(), why };
        }
        if !accepted(&incoming.host) {
            say(format!(
                "autoconfig {url}: names {}, outside {domain}: give --accept-server {} to use it",
                incoming.host, incoming.host
            ));
            continue;
        }
        let smtp = outgoing.filter(|o| !o.oauth_only).and_then(|o| {
            if accepted(&o.host) {
                Some(o.url())
            } else {
                say(format!(
                    "autoconfig: outgoing {} is outside {domain}: give --accept-server {} to use it",
                    o.host, o.host
                ));
                None
            }
        });
        say(format!("autoconfig {url}: {} ({took:.1} s)", incoming.url()));
        return Discovered::Found(Found {
            incoming: incoming.url(),
            smtp,
            login: incoming.username.clone(),
            via: "autoconfig".into(),
            note: None,
        });
    }

    if !step().is_zero()
        && let Some(found) = srv(&domain, s, step(), &accepted, say).await
    {
        return Discovered::Found(found);
    }
    if !step().is_zero()
        && let Some(found) = guess(&domain, step(), say).await
    {
        return Discovered::Found(found);
    }
    Discovered::NothingFound
}

/// SRV records: incoming `_imaps`, `_imap` (STARTTLS), `_pop3s`; outgoing `_submissions`,
/// `_submission` (STARTTLS). All asked at once.
async fn srv(
    domain: &str,
    s: &Settings,
    limit: Duration,
    accepted: &(dyn Fn(&str) -> bool + Sync),
    say: &mut (dyn FnMut(String) + Send),
) -> Option<Found> {
    const NAMES: [(&str, &str, Security); 5] = [
        ("_imaps._tcp", "imaps", Security::Implicit),
        ("_imap._tcp", "imap+starttls", Security::StartTls),
        ("_pop3s._tcp", "pop3s", Security::Implicit),
        ("_submissions._tcp", "smtps", Security::Implicit),
        ("_submission._tcp", "smtp+starttls", Security::StartTls),
    ];
    let names: Vec<String> = NAMES.iter().map(|(n, _, _)| format!("{n}.{domain}")).collect();
    let answers = join_all(names.iter().map(|n| dns::lookup_srv(s.nameserver, n, limit))).await;
    let mut incoming = None;
    let mut smtp = None;
    for ((name, scheme, _), answer) in NAMES.iter().zip(answers) {
        let record = match answer {
            Ok(records) => records.into_iter().find(|r| !r.target.is_empty() && r.port != 0),
            Err(e) => {
                say(format!("SRV {name}.{domain}: {e}"));
                continue;
            }
        };
        let Some(r) = record else {
            say(format!("SRV {name}.{domain}: none"));
            continue;
        };
        if !accepted(&r.target) {
            say(format!(
                "SRV {name}.{domain}: {}, outside {domain}: give --accept-server {} to use it",
                r.target, r.target
            ));
            continue;
        }
        say(format!("SRV {name}.{domain}: {}:{}", r.target, r.port));
        let url = format!("{scheme}://{}:{}", r.target, r.port);
        let slot = if scheme.starts_with("smtp") { &mut smtp } else { &mut incoming };
        slot.get_or_insert(url);
    }
    Some(Found { incoming: incoming?, smtp, login: None, via: "SRV".into(), note: None })
}

/// The usual names, by a TCP connection within the step: `imap.`/`mail.<domain>` on 993 (or
/// 143 with STARTTLS), `smtp.`/`mail.<domain>` on 465 (or 587 with STARTTLS).
async fn guess(domain: &str, limit: Duration, say: &mut (dyn FnMut(String) + Send)) -> Option<Found> {
    let incoming = candidates(domain, "imap", ("imaps", 993), ("imap+starttls", 143));
    let outgoing = candidates(domain, "smtp", ("smtps", 465), ("smtp+starttls", 587));
    let reach = |(scheme, host, port): (&'static str, String, u16)| async move {
        let ok = tokio::time::timeout(limit, tokio::net::TcpStream::connect((host.as_str(), port))).await;
        (matches!(ok, Ok(Ok(_))), format!("{scheme}://{host}:{port}"))
    };
    let (inc, out) = tokio::join!(join_all(incoming.into_iter().map(reach)), join_all(outgoing.into_iter().map(reach)));
    for (ok, url) in inc.iter().chain(&out) {
        say(format!("guess {url}: {}", if *ok { "answers" } else { "no answer" }));
    }
    let first = |v: &[(bool, String)]| v.iter().find(|(ok, _)| *ok).map(|(_, u)| u.clone());
    Some(Found { incoming: first(&inc)?, smtp: first(&out), login: None, via: "guess".into(), note: None })
}

/// `<first>.<domain>` and `mail.<domain>`, on the implicit-TLS port, then on the STARTTLS one.
fn candidates(
    domain: &str,
    first: &str,
    implicit: (&'static str, u16),
    starttls: (&'static str, u16),
) -> Vec<(&'static str, String, u16)> {
    let hosts = [format!("{first}.{domain}"), format!("mail.{domain}")];
    [implicit, starttls]
        .into_iter()
        .flat_map(|(scheme, port)| hosts.iter().map(move |h| (scheme, h.clone(), port)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_rule_and_the_urls() {
        assert!(inside("imap.example.org", "example.org") && inside("example.org.", "example.org"));
        assert!(!inside("imap.example.org.evil", "example.org") && !inside("badexample.org", "example.org"));
        let [a, b] = autoconfig_urls("al+x@example.org", "example.org", None);
        assert_eq!(a, "https://autoconfig.example.org/mail/config-v1.1.xml?emailaddress=al%2Bx@example.org");
        assert_eq!(b, "https://example.org/.well-known/autoconfig/mail/config-v1.1.xml");
        let [a, _] = autoconfig_urls("a@example.org", "example.org", Some("https://localhost:8443/"));
        assert!(a.starts_with("https://localhost:8443/mail/config-v1.1.xml?"), "{a}");
        let c = candidates("example.org", "imap", ("imaps", 993), ("imap+starttls", 143));
        assert_eq!(c[0], ("imaps", "imap.example.org".to_string(), 993));
        assert_eq!(c[1], ("imaps", "mail.example.org".to_string(), 993));
        assert_eq!(c[3], ("imap+starttls", "mail.example.org".to_string(), 143));
    }
}
