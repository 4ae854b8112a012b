//! Every kind of mistake is reported, once, at the key to edit.

use super::tests::errs;
use super::{ConfigError, ConfigErrors};

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
        ("[submission]\npreauth_timeout = \"0s\"", "submission.preauth_timeout"),
        ("[login]\nfailures_before_lockout = 0", "login.failures_before_lockout"),
        ("[login]\nlockout = \"soon\"", "login.lockout"),
        ("[login]\nmax_parallel_verifications = 0", "login.max_parallel_verifications"),
        ("[login]\nmax_waiting_verifications = -1", "login.max_waiting_verifications"),
        ("[login]\nmax_verification_wait = 2", "login.max_verification_wait"),
        ("[login]\ncache_ttl = \"1 hour\"", "login.cache_ttl"),
        ("login = 5", "login"),
        ("[submission]\nshutdown_grace = \"-1s\"", "submission.shutdown_grace"),
        ("[submission]\ntrusted_networks = \"10.0.0.0/8\"", "submission.trusted_networks"),
        ("[submission]\ntrusted_networks = [1]", "submission.trusted_networks[0]"),
        (
            "[[submission.trusted_networks]]\nnetwork = \"10.0.0.1/8\"\nuser = \"a\"",
            "submission.trusted_networks[0].network",
        ),
        ("[[submission.trusted_networks]]\nnetwork = \"10.0.0.0/8\"", "submission.trusted_networks[0].user"),
        ("[[submission.trusted_networks]]\nuser = \"a\"", "submission.trusted_networks[0].network"),
        ("[[submission.trusted_networks]]\nnetwork = \"::1\"\nuser = \"a b\"", "submission.trusted_networks[0].user"),
        (
            "[[submission.trusted_networks]]\nnetwork = \"::1\"\nuser = \"a\"\nusr = \"b\"",
            "submission.trusted_networks[0].usr",
        ),
        ("[submission]\nstarttls_listen = []\ntls_listen = []", "submission"),
        ("[submission]\nstarttls_listen = \"0.0.0.0:587\"\ntls_listen = \"127.0.0.1:587\"", "submission.tls_listen"),
        ("[submission]\nstarttls_listen = [\"127.0.0.1:25\", \"127.0.0.1:25\"]", "submission.starttls_listen"),
        ("[submission]\nstarttls_listen = \"[::]:25\"\ntls_listen = \"127.0.0.1:25\"", "submission.tls_listen"),
        // A bad listener must not also collide through its default with the other one.
        ("[submission]\nstarttls_listen = \"x\"\ntls_listen = \"127.0.0.1:2587\"", "submission.starttls_listen"),
        ("submission = 5", "submission"),
        ("[tls]\ncert = \"\"", "tls.cert"),
        ("[tls]\nkey = []", "tls.key"),
        ("[tls]\ngenerate_if_missing = \"yes\"", "tls.generate_if_missing"),
        ("[relay]\nurl = \"http://relay\"", "relay.url"),
        ("[relay]\nfrom_address = \"Relay <r@x.net>\"", "relay.from_address"),
        ("[relay]\nfrom_address = \"nobody\"", "relay.from_address"),
        ("[relay]\nconnect_timeout = \"soon\"", "relay.connect_timeout"),
        ("[rewrite]\nrewrite_from = \"yes\"", "rewrite.rewrite_from"),
        ("[rewrite]\nfooter = 5", "rewrite.footer"),
        ("[delivery]\nconcurrency = 0", "delivery.concurrency"),
        ("[delivery]\nlifetime = \"10s\"", "delivery.lifetime"),
        ("[relay]\nurl = \"smtp.example.com\"", "relay.url"),
        ("[relay]\nurl = \"smtp://\"", "relay.url"),
        ("[relay]\nurl = \"smtp://host:99999\"", "relay.url"),
        ("[relay]\nurl = \"smtp://host:0\"", "relay.url"),
        ("[relay]\nurl = \"smtps://host/path\"", "relay.url"),
        ("[relay]\nurl = \"file://\"", "relay.url"),
        ("[relay]\nurl = \"smtp://relay.example?x=1\"", "relay.url"),
        ("[relay]\nurl = \"smtp://[::g]:25\"", "relay.url"),
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
    for k in [
        "hostname",
        "submission.max_recipients",
        "submission.command_timeout",
        "schedule.daily_hours",
        "schedule.timezone",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let tz = e.iter().find(|e| e.key == "schedule.timezone").unwrap();
    assert_eq!(tz.hint, "did you mean \"Asia/Shanghai\"?");
}

#[test]
fn unknown_keys_get_suggestions() {
    let cases = [
        (
            "[schedule]\ndaily_hours = \"09:00\"",
            "schedule.daily_hours",
            "unknown key",
            "did you mean `schedule.daily_hour`?",
        ),
        ("max_recipients = 5", "max_recipients", "unknown key", "did you mean `submission.max_recipients`?"),
        ("[submission]\nhostname = \"x\"", "submission.hostname", "unknown key", "did you mean `hostname`?"),
        ("[shedule]\ntimezone = \"UTC\"", "shedule", "unknown section", "did you mean `schedule`?"),
        ("[TLS]\ncert = \"x\"", "TLS", "unknown section", "did you mean `tls`?"),
        ("[relay]\nurl2 = \"x\"", "relay.url2", "unknown key", "did you mean `relay.url`?"),
        ("[schedule]\ndaly_hours = 1", "schedule.daly_hours", "unknown key", "did you mean `schedule.daily_hour`?"),
        ("[log]\nfoo = 1", "log.foo", "unknown key", "see docs/configuration.md for the list of keys"),
        (
            "[[submission.trusted_networks]]\nnetwork = \"::1\"\nuser = \"a\"\nusr = \"b\"",
            "submission.trusted_networks[0].usr",
            "unknown key",
            "did you mean `user`?",
        ),
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
        assert_eq!(
            (e[0].key.as_str(), e[0].hint.as_str()),
            ("relay.url", "secrets are never inline: use relay.password_file or relay.password_env")
        );
        assert!(!ConfigErrors(e).to_string().contains("hunter2"));
    }
    // Whatever else is wrong with it, a URL with an `@` is never quoted back.
    for url in ["u:hunter2@relay.example", "ftp://u:hunter2@h", "smtp://relay.example/u:hunter2@x"] {
        let e = errs(&format!("[relay]\nurl = \"{url}\""), &[]);
        assert_eq!(e[0].key, "relay.url");
        assert!(!ConfigErrors(e).to_string().contains("hunter2"), "{url}");
    }
    let e = errs("[relay]\nurl = \"smtp://me@relay.example\"", &[]);
    assert_eq!((e[0].key.as_str(), e[0].hint.as_str()), ("relay.url", "put the user name in relay.username"));
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
fn range_errors_state_the_limit() {
    for (text, hint) in [
        ("[submission]\nmax_recipients = 0", "use a whole number of at least 1"),
        ("[submission]\nmax_line_length = 999", "use a whole number of at least 1000"),
        ("[submission]\nmax_connections = 4294967296", "use a whole number of at least 1"),
        ("[submission]\nmax_recipients = \"5\"", "use a whole number of at least 1, without quotes"),
    ] {
        let e = errs(text, &[]);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(e[0].hint, hint, "{text}");
    }
}
