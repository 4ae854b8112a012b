//! Reading each section with the collecting reader, plus the checks that involve more
//! than one key. Defaults live here, next to the key that uses them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::reader::Reader;
use super::values::{
    Problem, SECRETS_HINT, address, boolean, count, describe, duration, duration_or_forever, env_var_name, hostname,
    integer, listen, log_format, nonempty_string, path, relay_url, size, size_or_zero, string, time_of_day, timezone,
    user_name,
};
use super::{
    Config, ConfigError, ConfigErrors, DEPRECATED_KEYS, DeliveryConfig, FORBIDDEN_KEYS, ImapConfig, IpNetwork,
    KNOWN_KEYS, LogConfig, LogFormat, LoginConfig, QuotaConfig, RelayConfig, RewriteConfig, ScheduleConfig,
    SecretsConfig, StoreConfig, SubmissionConfig, SyncConfig, TlsConfig, TraceConfig, TrustedNetwork, env, units,
};

/// Parse, override, read. Also returns the keys the reader asked for (for the drift test).
pub(super) fn read(text: &str, env: &[(String, String)]) -> (Result<Config, ConfigErrors>, Vec<String>) {
    let mut table: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return (Err(ConfigErrors(vec![syntax_error(text, &e)])), Vec::new()),
    };
    let mut errors = Vec::new();
    let sources = env::apply_env(&mut table, env, KNOWN_KEYS, FORBIDDEN_KEYS, &mut errors);
    let mut r = Reader::new(table, &sources);
    let config = read_config(&mut r);
    let (reader_errors, requested) = r.finish(KNOWN_KEYS);
    errors.extend(reader_errors);
    let result = if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) };
    (result, requested)
}

/// The file cannot be read key by key, so this is the only error reported for it.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().replace('\n', "; ");
    let location = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!(" at line {line}, column {column}")
        }
        None => String::new(),
    };
    ConfigError::new(
        "(file)",
        format!("TOML syntax error{location}: {message}"),
        "fix the syntax first; the keys are checked once the file parses",
    )
}

fn read_config(r: &mut Reader<'_>) -> Config {
    let data_dir = r.get("data_dir", PathBuf::from("data"), path);
    let hostname = r.get("hostname", "localhost".to_string(), hostname);
    let submission = read_submission(r);
    let login = read_login(r);
    let tls = TlsConfig {
        cert: r.get("tls.cert", data_dir.join("tls").join("cert.pem"), path),
        key: r.get("tls.key", data_dir.join("tls").join("key.pem"), path),
        generate_if_missing: r.get("tls.generate_if_missing", false, boolean),
    };
    let before = r.errors.len();
    let relay = read_relay(r, &data_dir);
    let relay_ok = r.errors.len() == before;
    let rewrite = read_rewrite(r);
    // Only when the relay section is otherwise right: one mistake, one message.
    if relay_ok && rewrite.rewrite_from && relay.from_address.is_none() && !relay.url.starts_with("file://") {
        r.error(
            "relay.from_address",
            "is required when rewrite.rewrite_from is on with an SMTP relay",
            "set the third-party mailbox gatepost sends from, or set rewrite.rewrite_from = false",
        );
    }
    let delivery = read_delivery(r);
    let schedule = read_schedule(r);
    let trace = TraceConfig { retention: r.get("trace.retention", None, duration_or_forever(86_400)) };
    let store = StoreConfig { min_free_disk: r.get("store.min_free_disk", 1 << 30, size_or_zero) };
    let imap = read_imap(r, &submission);
    let quota = QuotaConfig {
        initial: r.get("quota.initial", 30_000_000, size),
        grow_when_free_below: r.get("quota.grow_when_free_below", 2_000_000, size_or_zero),
        grow_by: r.get("quota.grow_by", 30_000_000, size),
        ceiling: r.get("quota.ceiling", None, size_or_none),
        reserve: r.get("quota.reserve", 5_000_000, size_or_zero),
    };
    let secrets = SecretsConfig {
        key_file: r.opt("secrets.key_file", path),
        generate_if_missing: r.get("secrets.generate_if_missing", false, boolean),
    };
    let log = LogConfig {
        level: r.get("log.level", "info".to_string(), nonempty_string),
        format: r.get("log.format", LogFormat::Text, log_format),
    };
    let warnings = std::mem::take(&mut r.warnings);
    Config {
        data_dir,
        hostname,
        submission,
        login,
        tls,
        relay,
        rewrite,
        delivery,
        schedule,
        trace,
        store,
        imap,
        quota,
        secrets,
        sync: SyncConfig {
            poll_interval: r.get("sync.poll_interval", Duration::from_secs(300), duration(1)),
            connections_per_account: r.get("sync.connections_per_account", 2, count(1)).min(100) as u32,
        },
        log,
        warnings,
    }
}

fn read_imap(r: &mut Reader<'_>, sub: &SubmissionConfig) -> ImapConfig {
    let before = r.errors.len();
    let starttls_listen = r.get("imap.starttls_listen", vec![addr("127.0.0.1:2143")], listen);
    let tls_listen = r.get("imap.tls_listen", vec![addr("127.0.0.1:2993")], listen);
    if r.errors.len() == before {
        let taken: Vec<&SocketAddr> = sub.starttls_listen.iter().chain(&sub.tls_listen).collect();
        for a in starttls_listen.iter().chain(&tls_listen) {
            if a.port() != 0 && taken.contains(&a) {
                r.error(
                    "imap",
                    format!("{a} is also a submission listener"),
                    "give IMAP its own ports (143/993 style)",
                );
            }
        }
        if !starttls_listen.is_empty() && starttls_listen.iter().any(|a| tls_listen.contains(a) && a.port() != 0) {
            r.error("imap.tls_listen", "an address is in both IMAP listener lists", "one address, one listener");
        }
    }
    let before = r.errors.len();
    let max_connections = r.get("imap.max_connections", 1000, count(1));
    let max_connections_per_ip = r.get("imap.max_connections_per_ip", 50, count(1));
    if r.errors.len() == before && max_connections_per_ip > max_connections {
        r.error(
            "imap.max_connections_per_ip",
            format!("{max_connections_per_ip} is more than imap.max_connections ({max_connections})"),
            "one client cannot hold more connections than the server accepts in total",
        );
    }
    let max_append_size = r.get("imap.max_append_size", 100 << 20, size);
    if max_append_size > u64::from(u32::MAX - (1 << 20)) {
        r.error("imap.max_append_size", "is larger than an IMAP literal gatepost accepts", "at most 4000MiB");
    }
    ImapConfig {
        starttls_listen,
        tls_listen,
        max_connections,
        max_connections_per_ip,
        max_connections_per_user: r.get("imap.max_connections_per_user", 20, count(1)),
        preauth_timeout: r.get("imap.preauth_timeout", Duration::from_secs(60), duration(1)),
        idle_timeout: r.get("imap.idle_timeout", Duration::from_secs(1800), duration(1800)),
        max_append_size,
    }
}

/// A size or `"none"`.
fn size_or_none(v: &Value) -> Result<Option<u64>, Problem> {
    if v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("none")) {
        return Ok(None);
    }
    size(v).map(Some)
}

fn read_submission(r: &mut Reader<'_>) -> SubmissionConfig {
    let before = r.errors.len();
    let starttls_listen = r.get("submission.starttls_listen", vec![addr("127.0.0.1:2587")], listen);
    let tls_listen = r.get("submission.tls_listen", vec![addr("127.0.0.1:2465")], listen);
    if r.errors.len() == before {
        check_listeners(r, &starttls_listen, &tls_listen);
    }
    let before = r.errors.len();
    let max_connections = r.get("submission.max_connections", 1000, count(1));
    let max_connections_per_ip = r.get("submission.max_connections_per_ip", 50, count(1));
    if r.errors.len() == before && max_connections_per_ip > max_connections {
        r.error(
            "submission.max_connections_per_ip",
            format!("{max_connections_per_ip} is more than submission.max_connections ({max_connections})"),
            "one client cannot hold more connections than the server accepts in total",
        );
    }
    SubmissionConfig {
        starttls_listen,
        tls_listen,
        max_message_size: r.get("submission.max_message_size", 25 << 20, size),
        max_recipients: r.get("submission.max_recipients", 100, count(1)),
        max_line_length: r.get("submission.max_line_length", 65536, count(1000)),
        command_timeout: r.get("submission.command_timeout", Duration::from_secs(300), duration(1)),
        data_timeout: r.get("submission.data_timeout", Duration::from_secs(600), duration(1)),
        preauth_timeout: r.get("submission.preauth_timeout", Duration::from_secs(30), duration(1)),
        max_connections,
        max_connections_per_ip,
        trusted_networks: read_trusted_networks(r),
        shutdown_grace: r.get("submission.shutdown_grace", Duration::from_secs(30), duration(0)),
    }
}

/// The `[login]` section, with the throttle keys that moved there from `[submission]`.
fn read_login(r: &mut Reader<'_>) -> LoginConfig {
    let failures = r.opt("login.failures_before_lockout", integer(1));
    let failures = moved(r, "submission.auth_failures_before_lockout", failures, integer(1));
    let lockout = r.opt("login.lockout", duration(1));
    let lockout = moved(r, "submission.auth_lockout", lockout, duration(1));
    LoginConfig {
        failures_before_lockout: failures.unwrap_or(10),
        lockout: lockout.unwrap_or(Duration::from_secs(900)),
        max_parallel_verifications: r.opt("login.max_parallel_verifications", count(1)),
        max_waiting_verifications: r.get("login.max_waiting_verifications", 32, count(0)),
        max_verification_wait: r.get("login.max_verification_wait", Duration::from_secs(2), duration(0)),
        cache_ttl: r.get("login.cache_ttl", Duration::from_secs(3600), duration(0)),
    }
}

/// A deprecated key: read it, warn naming its replacement, and use it only when the new key
/// (`new`, already read) is not set.
fn moved<T>(r: &mut Reader<'_>, old: &str, new: Option<T>, conv: impl Fn(&Value) -> Result<T, Problem>) -> Option<T> {
    let replacement = DEPRECATED_KEYS.iter().find(|(k, _)| *k == old).map(|(_, n)| *n).unwrap_or("?");
    let value = r.opt(old, conv);
    if value.is_some() {
        let (message, hint) = if new.is_some() {
            (format!("is deprecated and ignored: {replacement} is set"), format!("remove {old}"))
        } else {
            (
                format!("is deprecated: use {replacement}"),
                format!("move it to [login] as {replacement}; {old} is accepted for this release only"),
            )
        };
        r.warn(old, message, hint);
    }
    new.or(value)
}

/// An empty pair of lists would start a server nobody can reach; two listeners on one
/// address would fail at bind time with a less helpful message.
fn check_listeners(r: &mut Reader<'_>, starttls: &[SocketAddr], tls: &[SocketAddr]) {
    if starttls.is_empty() && tls.is_empty() {
        r.error(
            "submission",
            "no listener: submission.starttls_listen and submission.tls_listen are both empty",
            "set at least one, e.g. starttls_listen = \"127.0.0.1:2587\"",
        );
    }
    let all: Vec<(&str, SocketAddr)> = starttls
        .iter()
        .map(|a| ("submission.starttls_listen", *a))
        .chain(tls.iter().map(|a| ("submission.tls_listen", *a)))
        .collect();
    for (i, (key_a, a)) in all.iter().enumerate() {
        for (key_b, b) in &all[i + 1..] {
            if units::listeners_collide(*a, *b) {
                r.error(
                    key_b,
                    format!("{b} collides with {a} in {key_a}"),
                    "each listener needs its own address and port",
                );
            }
        }
    }
}

fn read_trusted_networks(r: &mut Reader<'_>) -> Vec<TrustedNetwork> {
    const KEY: &str = "submission.trusted_networks";
    let items = match r.take_raw(KEY) {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            r.error(
                KEY,
                format!("expected an array of tables, found {}", describe(&other)),
                "write each entry as [[submission.trusted_networks]] with network = \"…\" and user = \"…\"",
            );
            return Vec::new();
        }
    };
    let env = r.env();
    let mut networks = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Table(table) = item else {
            r.error(
                &format!("{KEY}[{i}]"),
                format!("expected a table, found {}", describe(&item)),
                "give each entry network = \"…\" and user = \"…\"",
            );
            continue;
        };
        let mut sub = Reader::nested(table, env, format!("{KEY}[{i}]."), format!("{KEY}[]."));
        let network = sub.required("network", "a CIDR network such as \"127.0.0.1/32\"", |v| {
            string(v)?
                .parse::<IpNetwork>()
                .map_err(|m| Problem::new(m, "e.g. \"10.0.0.0/8\", \"::1/128\" or a bare IP"))
        });
        let user = sub.required("user", "the gatepost user these programs submit as", user_name);
        r.absorb(sub, &["network", "user"]);
        if let (Some(network), Some(user)) = (network, user) {
            networks.push(TrustedNetwork { network, user });
        }
    }
    networks
}

fn read_relay(r: &mut Reader<'_>, data_dir: &Path) -> RelayConfig {
    let default_url = format!("file://{}", data_dir.join("outbox").display());
    let url = r.get("relay.url", default_url, relay_url);
    let inline_password = r.take_raw("relay.password").is_some();
    if inline_password {
        r.error("relay.password", "inline passwords are not allowed", SECRETS_HINT);
    }
    let before = r.errors.len();
    let username = r.opt("relay.username", nonempty_string);
    let password_file = r.opt("relay.password_file", path);
    let password_env = r.opt("relay.password_env", env_var_name);
    // After an inline password the missing source is the same mistake; say it once.
    if r.errors.len() == before && !inline_password {
        match (&username, password_file.is_some(), password_env.is_some()) {
            (_, true, true) => r.error(
                "relay.password_env",
                "is set together with relay.password_file",
                "set only one password source",
            ),
            (Some(_), false, false) => r.error(
                "relay.username",
                "is set but there is no password source",
                "set relay.password_file or relay.password_env",
            ),
            (None, true, _) | (None, _, true) => {
                let key = if password_file.is_some() { "relay.password_file" } else { "relay.password_env" };
                r.error(key, "is set but relay.username is not", "set relay.username, or remove the password source");
            }
            _ => {}
        }
    }
    let from_address = r.opt("relay.from_address", address);
    let ca_file = r.opt("relay.ca_file", path);
    let connect_timeout = r.get("relay.connect_timeout", Duration::from_secs(30), duration(1));
    let command_timeout = r.get("relay.command_timeout", Duration::from_secs(300), duration(1));
    let data_timeout = r.get("relay.data_timeout", Duration::from_secs(600), duration(1));
    RelayConfig {
        url,
        username,
        password_file,
        password_env,
        from_address,
        ca_file,
        connect_timeout,
        command_timeout,
        data_timeout,
    }
}

/// Default display name of a rewritten From.
pub const DEFAULT_DISPLAY_NAME: &str = "{name} via gatepost";
/// Default footer added to text parts.
pub const DEFAULT_FOOTER: &str = "--\nSent by {address} through gatepost. {intro}";
pub const DEFAULT_INTRO: &str = "gatepost delivers mail at the time its sender chose.";

fn read_rewrite(r: &mut Reader<'_>) -> RewriteConfig {
    RewriteConfig {
        rewrite_from: r.get("rewrite.rewrite_from", true, boolean),
        display_name: r.get("rewrite.display_name", DEFAULT_DISPLAY_NAME.to_string(), string),
        footer: r.get("rewrite.footer", DEFAULT_FOOTER.to_string(), string),
        system_intro: r.get("rewrite.system_intro", DEFAULT_INTRO.to_string(), string),
        hide_client_ip: r.get("rewrite.hide_client_ip", false, boolean),
    }
}

fn read_delivery(r: &mut Reader<'_>) -> DeliveryConfig {
    DeliveryConfig {
        concurrency: r.get("delivery.concurrency", 4, count(1)),
        messages_per_connection: r.get("delivery.messages_per_connection", 50, count(1)),
        retry_first: r.get("delivery.retry_first", Duration::from_secs(60), duration(1)),
        retry_max_interval: r.get("delivery.retry_max_interval", Duration::from_secs(4 * 3600), duration(1)),
        lifetime: r.get("delivery.lifetime", Duration::from_secs(5 * 24 * 3600), duration(60)),
    }
}

fn read_schedule(r: &mut Reader<'_>) -> ScheduleConfig {
    let (timezone, timezone_name) = r.get("schedule.timezone", (jiff::tz::TimeZone::UTC, "UTC".to_string()), timezone);
    ScheduleConfig {
        daily_hour: r.get("schedule.daily_hour", jiff::civil::time(8, 0, 0, 0), time_of_day),
        timezone,
        timezone_name,
        max_hold: r.get("schedule.max_hold", jiff::SignedDuration::from_hours(400 * 24), |v| {
            let d = duration(1)(v)?;
            jiff::SignedDuration::try_from(d)
                .map_err(|_| Problem::new("is too large", "use at most a few years, e.g. \"400d\""))
        }),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("default listener address is valid")
}
