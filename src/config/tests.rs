//! Config reading: defaults, every key, loading, the shipped files and docs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

pub(super) fn ok(text: &str, env: &[(&str, &str)]) -> Config {
    Config::from_toml(text, &owned(env)).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

pub(super) fn errs(text: &str, env: &[(&str, &str)]) -> Vec<ConfigError> {
    match Config::from_toml(text, &owned(env)) {
        Ok(c) => panic!("expected errors, got a valid config: {c:?}"),
        Err(ConfigErrors(e)) => e,
    }
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Files in the repository, found the same way in the gatepost crate and in a scratch
/// crate that links `config/` and `docs/` next to its manifest.
fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn empty_file_gives_documented_defaults() {
    let c = ok("", &[]);
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert_eq!(c.hostname, "localhost");
    let s = &c.submission;
    assert_eq!(s.starttls_listen, vec![sa("127.0.0.1:2587")]);
    assert_eq!(s.tls_listen, vec![sa("127.0.0.1:2465")]);
    assert_eq!(s.max_message_size, 25 * 1024 * 1024);
    assert_eq!(s.max_recipients, 100);
    assert_eq!(s.max_line_length, 65536);
    assert_eq!(s.command_timeout, Duration::from_secs(300));
    assert_eq!(s.data_timeout, Duration::from_secs(600));
    assert_eq!((s.max_connections, s.max_connections_per_ip), (1000, 50));
    assert_eq!(s.preauth_timeout, Duration::from_secs(30));
    let l = &c.login;
    assert_eq!((l.failures_before_lockout, l.lockout), (10, Duration::from_secs(900)));
    assert_eq!((l.max_parallel_verifications, l.max_waiting_verifications), (None, 32));
    assert_eq!((l.max_verification_wait, l.cache_ttl), (Duration::from_secs(2), Duration::from_secs(3600)));
    assert!(c.warnings.is_empty());
    assert!(s.trusted_networks.is_empty());
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.tls.cert, PathBuf::from("data/tls/cert.pem"));
    assert_eq!(c.tls.key, PathBuf::from("data/tls/key.pem"));
    assert!(!c.tls.generate_if_missing);
    assert_eq!(c.relay.url, "file://data/outbox");
    assert_eq!(
        (c.relay.username.clone(), c.relay.password_file.clone(), c.relay.password_env.clone()),
        (None, None, None)
    );
    assert_eq!(c.schedule.daily_hour, jiff::civil::time(8, 0, 0, 0));
    assert_eq!(c.schedule.timezone_name, "UTC");
    assert_eq!(c.schedule.timezone, jiff::tz::TimeZone::UTC);
    assert_eq!(c.schedule.max_hold, jiff::SignedDuration::from_hours(400 * 24));
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(Config::default().hostname, "localhost");
}

#[test]
fn data_dir_moves_the_derived_defaults() {
    let c = ok("data_dir = \"/var/lib/gp\"", &[]);
    assert_eq!(c.tls.cert, PathBuf::from("/var/lib/gp/tls/cert.pem"));
    assert_eq!(c.relay.url, "file:///var/lib/gp/outbox");
}

const FULL: &str = r#"
data_dir = "/srv/gp"
hostname = "mail.example.com"
[submission]
starttls_listen = ["127.0.0.1:587", "[::1]:587"]
tls_listen = []
max_message_size = "10MB"
max_recipients = 7
max_line_length = 1000
command_timeout = "1h30m"
data_timeout = "45s"
max_connections = 20
max_connections_per_ip = 20
preauth_timeout = "10s"
shutdown_grace = "0s"
[[submission.trusted_networks]]
network = "10.0.0.0/8"
user = "alice"
[[submission.trusted_networks]]
network = "::1"
user = "bob"
[login]
failures_before_lockout = 3
lockout = "2h"
max_parallel_verifications = 2
max_waiting_verifications = 0
max_verification_wait = "5s"
cache_ttl = "0s"
[tls]
cert = "c.pem"
key = "k.pem"
generate_if_missing = true
[relay]
url = "smtps://[2001:db8::1]:465"
username = "u@example.net"
password_env = "RELAY_PW"
from_address = "relay@example.net"
ca_file = "ca.pem"
connect_timeout = "5s"
command_timeout = "1m"
data_timeout = "2m"
[rewrite]
rewrite_from = false
display_name = "{name} (gp)"
footer = "-- {address}"
system_intro = "hi"
hide_client_ip = true
[delivery]
concurrency = 8
messages_per_connection = 10
retry_first = "30s"
retry_max_interval = "1h"
lifetime = "2d"
[schedule]
daily_hour = 07:30
timezone = "asia/shanghai"
max_hold = "1y"
[log]
level = "debug"
format = "json"
"#;

#[test]
fn every_key_is_read() {
    let c = ok(FULL, &[]);
    assert_eq!((c.data_dir, c.hostname.as_str()), (PathBuf::from("/srv/gp"), "mail.example.com"));
    let s = &c.submission;
    assert_eq!(s.starttls_listen, vec![sa("127.0.0.1:587"), sa("[::1]:587")]);
    assert!(s.tls_listen.is_empty());
    assert_eq!((s.max_message_size, s.max_recipients, s.max_line_length), (10_000_000, 7, 1000));
    assert_eq!((s.command_timeout, s.data_timeout), (Duration::from_secs(5400), Duration::from_secs(45)));
    assert_eq!((s.max_connections, s.max_connections_per_ip), (20, 20));
    assert_eq!((s.preauth_timeout, s.shutdown_grace), (Duration::from_secs(10), Duration::ZERO));
    let l = &c.login;
    assert_eq!((l.failures_before_lockout, l.lockout), (3, Duration::from_secs(7200)));
    assert_eq!((l.max_parallel_verifications, l.max_waiting_verifications), (Some(2), 0));
    assert_eq!((l.max_verification_wait, l.cache_ttl), (Duration::from_secs(5), Duration::ZERO));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let nets: Vec<String> = s.trusted_networks.iter().map(|t| format!("{}={}", t.network, t.user)).collect();
    assert_eq!(nets, ["10.0.0.0/8=alice", "::1/128=bob"]);
    assert_eq!((c.tls.cert, c.tls.key, c.tls.generate_if_missing), ("c.pem".into(), "k.pem".into(), true));
    assert_eq!(c.relay.url, "smtps://[2001:db8::1]:465");
    assert_eq!(c.relay.username.as_deref(), Some("u@example.net"));
    assert_eq!(c.relay.password_env.as_deref(), Some("RELAY_PW"));
    assert_eq!(c.relay.from_address.as_deref(), Some("relay@example.net"));
    assert_eq!(c.relay.ca_file, Some(PathBuf::from("ca.pem")));
    let timeouts = (c.relay.connect_timeout, c.relay.command_timeout, c.relay.data_timeout);
    assert_eq!(timeouts, (Duration::from_secs(5), Duration::from_secs(60), Duration::from_secs(120)));
    let w = &c.rewrite;
    assert_eq!((w.rewrite_from, w.display_name.as_str(), w.footer.as_str()), (false, "{name} (gp)", "-- {address}"));
    assert_eq!((w.system_intro.as_str(), w.hide_client_ip), ("hi", true));
    let d = &c.delivery;
    assert_eq!((d.concurrency, d.messages_per_connection), (8, 10));
    assert_eq!((d.retry_first, d.retry_max_interval), (Duration::from_secs(30), Duration::from_secs(3600)));
    assert_eq!(d.lifetime, Duration::from_secs(2 * 86400));
    assert_eq!(c.schedule.daily_hour, jiff::civil::time(7, 30, 0, 0));
    assert_eq!(c.schedule.timezone_name, "Asia/Shanghai");
    assert_eq!(c.schedule.max_hold, jiff::SignedDuration::from_hours(365 * 24));
    assert_eq!((c.log.level.as_str(), c.log.format), ("debug", LogFormat::Json));
    let c = ok(
        "[relay]\nurl = \"smtp+starttls://smtp.example.net:587\"\nusername = \"u\"\npassword_file = \"/run/pw\"\nfrom_address = \"gp@example.net\"\n[schedule]\ndaily_hour = \"8:05\"",
        &[],
    );
    assert_eq!(c.relay.password_file, Some(PathBuf::from("/run/pw")));
    assert_eq!(c.schedule.daily_hour, jiff::civil::time(8, 5, 0, 0));
}

/// Item 6: the throttle keys moved to [login]; the old ones work for one release, with a
/// warning naming the new key, and lose to the new key when both are set.
#[test]
fn old_auth_keys_still_work_with_a_warning() {
    let c = ok("[submission]\nauth_failures_before_lockout = 4\nauth_lockout = \"1h\"", &[]);
    assert_eq!((c.login.failures_before_lockout, c.login.lockout), (4, Duration::from_secs(3600)));
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("submission.auth_failures_before_lockout: is deprecated: use login.failures_before_lockout")
    );
    assert!(w[1].starts_with("submission.auth_lockout: is deprecated: use login.lockout"), "{w:?}");
    let c = ok("[submission]\nauth_lockout = \"1h\"\n[login]\nlockout = \"2h\"", &[]);
    assert_eq!(c.login.lockout, Duration::from_secs(7200));
    assert!(c.warnings[0].to_string().contains("ignored: login.lockout is set"), "{:?}", c.warnings);
    let docs = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    assert!(docs.contains(&format!("warning: {}\n", w[1])), "docs/configuration.md shows the real warning");
    let c = ok("", &[("GATEPOST__SUBMISSION__AUTH_LOCKOUT", "5m")]);
    assert_eq!(c.login.lockout, Duration::from_secs(300));
    assert!(c.warnings[0].to_string().contains("(set by GATEPOST__SUBMISSION__AUTH_LOCKOUT)"), "{:?}", c.warnings);
}

#[test]
fn smtp_relay_with_from_rewriting_needs_a_from_address() {
    let errs = errs("[relay]\nurl = \"smtp://relay.example.net\"", &[]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key, "relay.from_address");
    ok("[relay]\nurl = \"smtp://relay.example.net\"\n[rewrite]\nrewrite_from = false", &[]);
    ok("[relay]\nurl = \"file:///tmp/out\"", &[]);
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.toml");
    std::fs::write(&path, "hostname = \"mx.example.org\"\n").unwrap();
    assert_eq!(Config::load(&path).unwrap().hostname, "mx.example.org");
    let e = Config::load(&dir.path().join("missing.toml")).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].key, "(file)");
    assert!(e.0[0].message.contains("missing.toml"));
}

#[test]
fn shipped_development_config_loads() {
    let text = std::fs::read_to_string(repo_file("config/gatepost.toml")).unwrap();
    let c = ok(&text, &[]);
    assert_eq!(c.submission.starttls_listen, vec![sa("127.0.0.1:2587")]);
    assert_eq!(c.submission.tls_listen, vec![sa("127.0.0.1:2465")]);
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert_eq!((c.tls.cert, c.tls.key), ("data/tls/dev-cert.pem".into(), "data/tls/dev-key.pem".into()));
    assert!(c.tls.generate_if_missing);
    assert_eq!(c.relay.url, "file://data/outbox");
    assert_eq!((c.schedule.daily_hour, c.schedule.timezone_name.as_str()), (jiff::civil::time(8, 0, 0, 0), "UTC"));
    assert_eq!(c.schedule.max_hold, jiff::SignedDuration::from_hours(400 * 24));
}

#[test]
fn example_config_loads_and_the_reader_asks_for_exactly_the_known_keys() {
    let text = std::fs::read_to_string(repo_file("config/gatepost.example.toml")).unwrap();
    let (result, requested) = sections::read(&text, &[]);
    let c = result.unwrap_or_else(|e| panic!("example config invalid:\n{e}"));
    assert_eq!(c.submission.trusted_networks.len(), 1);
    let mut requested: Vec<&str> =
        requested.iter().map(String::as_str).filter(|k| !FORBIDDEN_KEYS.contains(k)).collect();
    requested.sort();
    requested.dedup();
    let mut known = KNOWN_KEYS.to_vec();
    known.sort();
    assert_eq!(requested, known, "KNOWN_KEYS and the reader disagree");
}

/// Each known key must be documented in the example (as `key =` or `# key =` under its
/// section header) and in docs/configuration.md (as `` `key` ``).
#[test]
fn example_and_docs_mention_every_known_key() {
    let example = std::fs::read_to_string(repo_file("config/gatepost.example.toml")).unwrap();
    let docs = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let mut found = Vec::new();
    let mut section = String::new();
    for line in example.lines().map(str::trim) {
        if let Some(h) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            found.push(h.to_string());
            section = format!("{h}[].");
        } else if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{h}.");
        } else if let Some((k, _)) = line.trim_start_matches(['#', ' ']).split_once('=') {
            found.push(format!("{section}{}", k.trim()));
        }
    }
    for key in KNOWN_KEYS {
        assert!(found.iter().any(|f| f == key), "{key} is not in config/gatepost.example.toml");
        assert!(docs.contains(&format!("`{key}`")), "{key} is not in docs/configuration.md");
    }
}

/// The three-error example in docs/configuration.md is real output.
#[test]
fn docs_check_config_example_matches_the_code() {
    let docs = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let section = docs.split("A file with three mistakes:").nth(1).expect("example section");
    let block = |fence: &str| -> String {
        let start = section.find(fence).expect(fence) + fence.len();
        section[start..].split("```").next().unwrap().trim_start_matches('\n').to_string()
    };
    let toml_text = block("```toml\n");
    // Skip the command line and the `<path>: 3 error(s)` header printed by the CLI.
    let shown: Vec<String> = block("```text\n").lines().skip(2).map(String::from).collect();
    let e = errs(&toml_text, &[]);
    assert_eq!(e.len(), 3);
    assert_eq!(ConfigErrors(e).to_string().lines().collect::<Vec<_>>(), shown);
}
