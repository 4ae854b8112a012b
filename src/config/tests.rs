//! Config reading: defaults, every key, every kind of mistake, shipped files.

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
    assert_eq!(s.auth_failures_before_lockout, 10);
    assert_eq!(s.auth_lockout, Duration::from_secs(900));
    assert!(s.trusted_networks.is_empty());
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.tls.cert, PathBuf::from("data/tls/cert.pem"));
    assert_eq!(c.tls.key, PathBuf::from("data/tls/key.pem"));
    assert!(!c.tls.generate_if_missing);
    assert_eq!(c.relay.url, "file://data/outbox");
    assert_eq!((c.relay.username.clone(), c.relay.password_file.clone(), c.relay.password_env.clone()), (None, None, None));
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
auth_failures_before_lockout = 3
auth_lockout = "2h"
shutdown_grace = "0s"
[[submission.trusted_networks]]
network = "10.0.0.0/8"
user = "alice"
[[submission.trusted_networks]]
network = "::1"
user = "bob"
[tls]
cert = "c.pem"
key = "k.pem"
generate_if_missing = true
[relay]
url = "smtps://[2001:db8::1]:465"
username = "u@example.net"
password_env = "RELAY_PW"
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
    assert_eq!((s.max_connections, s.max_connections_per_ip, s.auth_failures_before_lockout), (20, 20, 3));
    assert_eq!((s.auth_lockout, s.shutdown_grace), (Duration::from_secs(7200), Duration::ZERO));
    let nets: Vec<String> = s.trusted_networks.iter().map(|t| format!("{}={}", t.network, t.user)).collect();
    assert_eq!(nets, ["10.0.0.0/8=alice", "::1/128=bob"]);
    assert_eq!((c.tls.cert, c.tls.key, c.tls.generate_if_missing), ("c.pem".into(), "k.pem".into(), true));
    assert_eq!(c.relay.url, "smtps://[2001:db8::1]:465");
    assert_eq!(c.relay.username.as_deref(), Some("u@example.net"));
    assert_eq!(c.relay.password_env.as_deref(), Some("RELAY_PW"));
    assert_eq!(c.schedule.daily_hour, jiff::civil::time(7, 30, 0, 0));
    assert_eq!(c.schedule.timezone_name, "Asia/Shanghai");
    assert_eq!(c.schedule.max_hold, jiff::SignedDuration::from_hours(365 * 24));
    assert_eq!((c.log.level.as_str(), c.log.format), ("debug", LogFormat::Json));
    let c = ok("[relay]\nurl = \"smtp+starttls://smtp.example.net:587\"\nusername = \"u\"\npassword_file = \"/run/pw\"\n[schedule]\ndaily_hour = \"8:05\"", &[]);
    assert_eq!(c.relay.password_file, Some(PathBuf::from("/run/pw")));
    assert_eq!(c.schedule.daily_hour, jiff::civil::time(8, 5, 0, 0));
}

/// Each snippet holds one mistake and must give exactly one error, at that key.
#[test]
fn each_bad_value_gives_one_error_at_its_key() {
    let cases: &[(&str, &str)] = &[
        ("data_dir = \"\"", "data_dir"),
        ("data_dir = 5", "data_dir"),
        ("hostname = \"mail example.com\"", "hostname"),
        ("hostname = \"-bad.example\"", "hostname"),
        ("[submission]\nstarttls_listen = \"localhost:587\"", "submission.starttls_listen"),
        ("[submission]\ntls_listen = [\"127.0.0.1:1\", 2, \"x\"]", "submission.tls_listen"),
        ("[submission]\ntls_listen = \"\"", "submission.tls_listen"),
        ("[submission]\nmax_message_size = \"10M\"", "submission.max_message_size"),
        ("[submission]\nmax_message_size = 0", "submission.max_message_size"),
        ("[submission]\nmax_message_size = -1", "submission.max_message_size"),
        ("[submission]\nmax_message_size = 1.5", "submission.max_message_size"),
        ("[submission]\nmax_recipients = 0", "submission.max_recipients"),
        ("[submission]\nmax_recipients = \"100\"", "submission.max_recipients"),
        ("[submission]\nmax_line_length = 999", "submission.max_line_length"),
        ("[submission]\ncommand_timeout = 300", "submission.command_timeout"),
        ("[submission]\ncommand_timeout = \"5 minutes\"", "submission.command_timeout"),
        ("[submission]\ndata_timeout = \"0s\"", "submission.data_timeout"),
        ("[submission]\nmax_connections = 0", "submission.max_connections"),
        ("[submission]\nmax_connections_per_ip = 5000000000", "submission.max_connections_per_ip"),
        ("[submission]\nmax_connections_per_ip = 2000", "submission.max_connections_per_ip"),
        ("[submission]\nauth_failures_before_lockout = 0", "submission.auth_failures_before_lockout"),
        ("[submission]\nauth_lockout = \"soon\"", "submission.auth_lockout"),
        ("[submission]\nshutdown_grace = \"-1s\"", "submission.shutdown_grace"),
        ("[submission]\ntrusted_networks = \"10.0.0.0/8\"", "submission.trusted_networks"),
        ("[submission]\ntrusted_networks = [1]", "submission.trusted_networks[0]"),
        ("[[submission.trusted_networks]]\nnetwork = \"10.0.0.1/8\"\nuser = \"a\"", "submission.trusted_networks[0].network"),
        ("[[submission.trusted_networks]]\nnetwork = \"10.0.0.0/8\"", "submission.trusted_networks[0].user"),
        ("[[submission.trusted_networks]]\nuser = \"a\"", "submission.trusted_networks[0].network"),
        ("[[submission.trusted_networks]]\nnetwork = \"::1\"\nuser = \"a b\"", "submission.trusted_networks[0].user"),
        ("[[submission.trusted_networks]]\nnetwork = \"::1\"\nuser = \"a\"\nusr = \"b\"", "submission.trusted_networks[0].usr"),
        ("[submission]\nstarttls_listen = []\ntls_listen = []", "submission"),
        ("[submission]\nstarttls_listen = \"0.0.0.0:587\"\ntls_listen = \"127.0.0.1:587\"", "submission.tls_listen"),
        ("[submission]\nstarttls_listen = [\"127.0.0.1:25\", \"127.0.0.1:25\"]", "submission.starttls_listen"),
        ("[submission]\nstarttls_listen = \"[::]:25\"\ntls_listen = \"127.0.0.1:25\"", "submission.tls_listen"),
        ("submission = 5", "submission"),
        ("[tls]\ncert = \"\"", "tls.cert"),
        ("[tls]\nkey = []", "tls.key"),
        ("[tls]\ngenerate_if_missing = \"yes\"", "tls.generate_if_missing"),
        ("[relay]\nurl = \"http://relay\"", "relay.url"),
        ("[relay]\nurl = \"smtp.example.com\"", "relay.url"),
        ("[relay]\nurl = \"smtp://\"", "relay.url"),
        ("[relay]\nurl = \"smtp://host:99999\"", "relay.url"),
        ("[relay]\nurl = \"smtp://host:0\"", "relay.url"),
        ("[relay]\nurl = \"smtps://host/path\"", "relay.url"),
        ("[relay]\nurl = \"file://\"", "relay.url"),
        ("[relay]\nurl = \"smtp://user@host\"", "relay.url"),
        ("[relay]\nusername = \"\"", "relay.username"),
        ("[relay]\nusername = \"u\"", "relay.username"),
        ("[relay]\npassword_file = \"/pw\"", "relay.password_file"),
        ("[relay]\nusername = \"u\"\npassword_env = \"1BAD\"", "relay.password_env"),
        ("[relay]\nusername = \"u\"\npassword_env = \"PW\"\npassword_file = \"/pw\"", "relay.password_env"),
        ("[schedule]\ndaily_hour = \"25:00\"", "schedule.daily_hour"),
        ("[schedule]\ndaily_hour = \"8am\"", "schedule.daily_hour"),
        ("[schedule]\ndaily_hour = \"08:0\"", "schedule.daily_hour"),
        ("[schedule]\ndaily_hour = 08:00:30", "schedule.daily_hour"),
        ("[schedule]\ndaily_hour = 8", "schedule.daily_hour"),
        ("[schedule]\ntimezone = \"Mars/Olympus\"", "schedule.timezone"),
        ("[schedule]\ntimezone = \"+08:00\"", "schedule.timezone"),
        ("[schedule]\nmax_hold = \"0d\"", "schedule.max_hold"),
        ("[schedule]\nmax_hold = \"400\"", "schedule.max_hold"),
        ("[schedule]\nmax_hold = \"999999999999999999y\"", "schedule.max_hold"),
        ("[log]\nlevel = \"\"", "log.level"),
        ("[log]\nformat = \"xml\"", "log.format"),
        ("[log]\nformat = \"JSON\"", "log.format"),
        ("colour = \"blue\"", "colour"),
        ("[smtp]\nport = 25", "smtp"),
    ];
    for (text, key) in cases {
        let e = errs(text, &[]);
        assert_eq!(e.len(), 1, "{text:?} gave {e:#?}");
        assert_eq!(e[0].key, *key, "{text:?} gave {e:#?}");
        assert!(!e[0].message.is_empty() && !e[0].hint.is_empty(), "{text:?} gave {e:#?}");
    }
}

#[test]
fn all_five_mistakes_are_reported_at_once() {
    let text = r#"
hostname = "bad host"
[submission]
max_recipients = -3
command_timeout = "5"
[schedule]
daily_hours = "09:00"
timezone = "Asia/Shangai"
"#;
    let e = errs(text, &[]);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys.len(), 5, "{e:#?}");
    for k in ["hostname", "submission.max_recipients", "submission.command_timeout", "schedule.daily_hours", "schedule.timezone"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let tz = e.iter().find(|e| e.key == "schedule.timezone").unwrap();
    assert_eq!(tz.hint, "did you mean \"Asia/Shanghai\"?");
}

#[test]
fn unknown_keys_get_suggestions() {
    let cases = [
        ("[schedule]\ndaily_hours = \"09:00\"", "schedule.daily_hours", "unknown key", "did you mean `schedule.daily_hour`?"),
        ("max_recipients = 5", "max_recipients", "unknown key", "did you mean `submission.max_recipients`?"),
        ("[shedule]\ntimezone = \"UTC\"", "shedule", "unknown section", "did you mean `schedule`?"),
        ("[TLS]\ncert = \"x\"", "TLS", "unknown section", "did you mean `tls`?"),
        ("[relay]\nurl2 = \"x\"", "relay.url2", "unknown key", "did you mean `relay.url`?"),
        ("[log]\nfoo = 1", "log.foo", "unknown key", "see docs/configuration.md for the list of keys"),
        ("[[submission.trusted_networks]]\nnetwork = \"::1\"\nuser = \"a\"\nusr = \"b\"", "submission.trusted_networks[0].usr", "unknown key", "did you mean `user`?"),
    ];
    for (text, key, message, hint) in cases {
        let e = errs(text, &[]);
        assert_eq!(e, vec![ConfigError::new(key, message, hint)], "{text:?}");
    }
}

#[test]
fn syntax_error_is_one_error_with_position() {
    let e = errs("hostname = \"x\"\nbad = = 2\n[tls]\ncert = 5", &[("GATEPOST__NOPE", "1")]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "(file)");
    assert!(e[0].message.starts_with("TOML syntax error at line 2, column 7: "), "{}", e[0].message);
    assert!(!e[0].message.contains('\n'));
    let e = errs("a = 1\na = 2\n", &[]);
    assert!(e[0].message.contains("line 2"), "{e:?}");
}

#[test]
fn inline_secrets_are_refused_without_echoing_them() {
    let e = errs("[relay]\nurl = \"smtp://relay.example\"\npassword = \"hunter2\"", &[]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "relay.password");
    assert_eq!(e[0].hint, "secrets are never inline: use relay.password_file or relay.password_env");
    for url in ["smtp://u:hunter2@relay.example", "smtps://u:hunter2@relay.example:465", "smtp+starttls://:hunter2@h"] {
        let e = errs(&format!("[relay]\nurl = \"{url}\""), &[]);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!((e[0].key.as_str(), e[0].hint.as_str()), ("relay.url", "secrets are never inline: use relay.password_file or relay.password_env"));
        assert!(!ConfigErrors(e).to_string().contains("hunter2"));
    }
    let e = errs("", &[("GATEPOST__RELAY__PASSWORD", "hunter2")]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "relay.password");
    assert!(e[0].message.contains("GATEPOST__RELAY__PASSWORD") && !e[0].message.contains("hunter2"));
}

#[test]
fn display_is_one_line_per_error() {
    let e = ConfigErrors(vec![ConfigError::new("a.b", "bad", "fix it"), ConfigError::new("(file)", "gone", "")]);
    assert_eq!(e.to_string(), "a.b: bad (hint: fix it)\n(file): gone");
    let _: &dyn std::error::Error = &e;
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
    let mut requested: Vec<&str> = requested.iter().map(String::as_str).filter(|k| !FORBIDDEN_KEYS.contains(k)).collect();
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
