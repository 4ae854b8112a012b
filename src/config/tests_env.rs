//! `GATEPOST__*` environment overrides.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::tests::{errs, ok};

#[test]
fn overrides_nested_and_top_level_keys() {
    let file = "[schedule]\ndaily_hour = \"08:00\"\n[submission]\nmax_recipients = 10";
    let c = ok(
        file,
        &[
            ("GATEPOST__SCHEDULE__DAILY_HOUR", "09:00"),
            ("GATEPOST__DATA_DIR", "/var/lib/gatepost"),
            ("GATEPOST__SUBMISSION__MAX_RECIPIENTS", "50"),
            ("GATEPOST__tls__Generate_If_Missing", "true"),
            ("GATEPOST__RELAY__URL", "smtps://relay.example:465"),
            ("GATEPOST__RELAY__FROM_ADDRESS", "gp@relay.example"),
            ("GATEPOST__SUBMISSION__MAX_MESSAGE_SIZE", " 10MiB "),
            ("GATEPOST_DATA_DIR", "ignored: single underscore"),
            ("HOME", "/root"),
        ],
    );
    assert_eq!(c.schedule.daily_hour, jiff::civil::time(9, 0, 0, 0));
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/gatepost"));
    assert_eq!(c.submission.max_recipients, 50);
    assert!(c.tls.generate_if_missing);
    assert_eq!(c.relay.url, "smtps://relay.example:465");
    assert_eq!(c.submission.max_message_size, 10 << 20);
}

#[test]
fn overrides_lists_and_arrays_of_tables() {
    let c = ok(
        "",
        &[
            ("GATEPOST__SUBMISSION__STARTTLS_LISTEN", r#"["127.0.0.1:1587", "[::1]:1587"]"#),
            ("GATEPOST__SUBMISSION__TLS_LISTEN", "[]"),
            ("GATEPOST__SUBMISSION__TRUSTED_NETWORKS", r#"[{ network = "192.168.0.0/16", user = "cron" }]"#),
        ],
    );
    let want: Vec<SocketAddr> = vec!["127.0.0.1:1587".parse().unwrap(), "[::1]:1587".parse().unwrap()];
    assert_eq!(c.submission.starttls_listen, want);
    assert!(c.submission.tls_listen.is_empty());
    assert_eq!(c.submission.trusted_networks[0].network.to_string(), "192.168.0.0/16");
    let c = ok("", &[("GATEPOST__SUBMISSION__TLS_LISTEN", "127.0.0.1:3465")]);
    assert_eq!(c.submission.tls_listen, vec!["127.0.0.1:3465".parse::<SocketAddr>().unwrap()]);
}

/// A value that reads as TOML of the wrong type is used as its raw text instead.
#[test]
fn wrong_toml_type_falls_back_to_text() {
    let c = ok(
        "",
        &[("GATEPOST__LOG__LEVEL", "true"), ("GATEPOST__HOSTNAME", "2026"), ("GATEPOST__DATA_DIR", "2026-01-01")],
    );
    assert_eq!((c.log.level.as_str(), c.hostname.as_str()), ("true", "2026"));
    assert_eq!(c.data_dir, PathBuf::from("2026-01-01"));
}

#[test]
fn env_mistakes_name_the_variable() {
    let e = errs("", &[("GATEPOST__SCHEDULE__DAILY_HOURS", "09:00")]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "schedule.daily_hours");
    assert!(e[0].message.contains("unknown key") && e[0].message.contains("GATEPOST__SCHEDULE__DAILY_HOURS"), "{e:?}");
    assert_eq!(e[0].hint, "did you mean `schedule.daily_hour`?");

    let e = errs("", &[("GATEPOST__SUBMISSION__MAX_RECIPIENTS", "lots")]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "submission.max_recipients");
    assert!(e[0].message.ends_with("(set by GATEPOST__SUBMISSION__MAX_RECIPIENTS)"), "{e:?}");

    let e = errs("", &[("GATEPOST__SUBMISSION__TRUSTED_NETWORKS", r#"[{ network = "nope", user = "a" }]"#)]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "submission.trusted_networks[0].network");
    assert!(e[0].message.contains("GATEPOST__SUBMISSION__TRUSTED_NETWORKS"), "{e:?}");

    let cases = [
        (vec![("GATEPOST__SCHEDULE", "x")], "schedule"),
        (vec![("GATEPOST__SCHEDULE____DAILY_HOUR", "09:00")], "GATEPOST__SCHEDULE____DAILY_HOUR"),
        (vec![("GATEPOST__DATA_DIR", "a"), ("GATEPOST__data_dir", "b")], "data_dir"),
    ];
    for (env, key) in cases {
        let e = errs("", &env);
        assert_eq!(e.len(), 1, "{env:?} gave {e:#?}");
        assert_eq!(e[0].key, key, "{env:?} gave {e:#?}");
    }
    let e = errs("schedule = 1", &[("GATEPOST__SCHEDULE__TIMEZONE", "UTC")]);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e.iter().all(|e| e.key == "schedule"), "{e:#?}");
}

#[test]
fn env_errors_and_file_errors_are_reported_together() {
    let e = errs("hostname = \"a b\"", &[("GATEPOST__NOPE", "1"), ("GATEPOST__LOG__FORMAT", "xml")]);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["nope", "hostname", "log.format"]);
}
