//! Configuration: one TOML file plus `GATEPOST__*` environment overrides.
//!
//! The file is read into a `toml::Table` and then consumed key by key by a collecting
//! reader, so `gatepost check-config` can list every mistake in one run instead of
//! making the operator fix them one at a time. See `docs/configuration.md`.

mod env;
mod reader;
mod sections;
mod suggest;
pub mod units;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_env;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_units;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use sections::{DEFAULT_DISPLAY_NAME, DEFAULT_FOOTER, DEFAULT_INTRO};
pub use units::{parse_duration, parse_size};

/// Every key the reader understands, as dotted paths; `[]` marks the elements of an
/// array of tables. Tests check that the reader asks for exactly these keys and that the
/// example config and `docs/configuration.md` mention each one, so they cannot drift.
pub const KNOWN_KEYS: &[&str] = &[
    "data_dir",
    "hostname",
    "submission.starttls_listen",
    "submission.tls_listen",
    "submission.max_message_size",
    "submission.max_recipients",
    "submission.max_line_length",
    "submission.command_timeout",
    "submission.data_timeout",
    "submission.max_connections",
    "submission.max_connections_per_ip",
    "submission.preauth_timeout",
    "submission.auth_failures_before_lockout",
    "submission.auth_lockout",
    "submission.trusted_networks",
    "submission.trusted_networks[].network",
    "submission.trusted_networks[].user",
    "submission.shutdown_grace",
    "login.failures_before_lockout",
    "login.lockout",
    "login.max_parallel_verifications",
    "login.max_waiting_verifications",
    "login.max_verification_wait",
    "login.cache_ttl",
    "tls.cert",
    "tls.key",
    "tls.generate_if_missing",
    "relay.url",
    "relay.username",
    "relay.password_file",
    "relay.password_env",
    "relay.from_address",
    "relay.ca_file",
    "relay.connect_timeout",
    "relay.command_timeout",
    "relay.data_timeout",
    "rewrite.rewrite_from",
    "rewrite.display_name",
    "rewrite.footer",
    "rewrite.system_intro",
    "rewrite.hide_client_ip",
    "delivery.concurrency",
    "delivery.messages_per_connection",
    "delivery.retry_first",
    "delivery.retry_max_interval",
    "delivery.lifetime",
    "schedule.daily_hour",
    "schedule.timezone",
    "schedule.max_hold",
    "trace.retention",
    "store.min_free_disk",
    "imap.starttls_listen",
    "imap.tls_listen",
    "imap.max_connections",
    "imap.max_connections_per_ip",
    "imap.max_connections_per_user",
    "imap.preauth_timeout",
    "imap.idle_timeout",
    "imap.max_append_size",
    "quota.initial",
    "quota.grow_when_free_below",
    "quota.grow_by",
    "quota.ceiling",
    "quota.reserve",
    "secrets.key_file",
    "secrets.generate_if_missing",
    "sync.poll_interval",
    "sync.connections_per_account",
    "log.level",
    "log.format",
];

/// Keys that are read only to be refused with a pointed hint (secrets never sit inline).
const FORBIDDEN_KEYS: &[&str] = &["relay.password"];

/// Keys still accepted for one release, each with the key that replaces it. Using one is a
/// warning (`Config::warnings`) that `check-config` and `serve` both show.
pub const DEPRECATED_KEYS: &[(&str, &str)] = &[
    ("submission.auth_failures_before_lockout", "login.failures_before_lockout"),
    ("submission.auth_lockout", "login.lockout"),
];

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "GATEPOST__";

#[derive(Debug, Clone)]
pub struct Config {
    /// Embedded store, outbox, generated dev certificates.
    pub data_dir: PathBuf,
    /// Our own name in the SMTP greeting and in `Received:` headers.
    pub hostname: String,
    pub submission: SubmissionConfig,
    pub login: LoginConfig,
    pub tls: TlsConfig,
    pub relay: RelayConfig,
    pub rewrite: RewriteConfig,
    pub delivery: DeliveryConfig,
    pub schedule: ScheduleConfig,
    pub trace: TraceConfig,
    pub store: StoreConfig,
    pub imap: ImapConfig,
    pub quota: QuotaConfig,
    pub secrets: SecretsConfig,
    pub sync: SyncConfig,
    pub log: LogConfig,
    /// Things that work but should be changed (deprecated keys): `check-config` prints them
    /// and `serve` logs them.
    pub warnings: Vec<ConfigError>,
}

/// The login door shared by every protocol (`docs/login.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// Failed logins from one IP before it is refused for `lockout`; each failure before that
    /// also adds a growing delay.
    pub failures_before_lockout: u32,
    pub lockout: Duration,
    /// Password checks (argon2, 19 MiB each) at once. None: the number of cores.
    pub max_parallel_verifications: Option<usize>,
    /// Attempts that may wait for a check, per lane; beyond that they are refused at once.
    pub max_waiting_verifications: usize,
    /// Longest wait for a check before the attempt is refused as busy.
    pub max_verification_wait: Duration,
    /// How long a password argon2 accepted is remembered (zero: never).
    pub cache_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// Finished messages (sent, failed, cancelled) are deleted, record and body, this long
    /// after their last event. None: kept for good (the default).
    pub retention: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct SubmissionConfig {
    /// Port 587 style: plain connect, then STARTTLS. Empty disables it.
    pub starttls_listen: Vec<SocketAddr>,
    /// Port 465 style ("submissions"): TLS from the first byte. Empty disables it.
    pub tls_listen: Vec<SocketAddr>,
    /// Advertised in SIZE and enforced during DATA/BDAT.
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Longest DATA line in octets including CRLF; RFC 5321 requires at least 1000.
    pub max_line_length: usize,
    /// Time to send one command line, and idle time between commands.
    pub command_timeout: Duration,
    /// Time for the whole DATA transfer.
    pub data_timeout: Duration,
    /// Time from connecting to a successful AUTH.
    pub preauth_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Local programs that may submit without AUTH, as the named user.
    pub trusted_networks: Vec<TrustedNetwork>,
    /// How long in-flight sessions may finish after SIGTERM.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedNetwork {
    pub network: IpNetwork,
    pub user: String,
}

/// Minimal CIDR type so the crate needs no extra dependency: v4 and v6,
/// `"10.0.0.0/8"`, `"::1/128"`, a bare IP means /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    pub addr: IpAddr,
    pub prefix: u8,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Create a self-signed pair when the files are absent (development only).
    pub generate_if_missing: bool,
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `smtp://`, `smtp+starttls://` or `smtps://` `host[:port]`, or `file://` directory.
    pub url: String,
    pub username: Option<String>,
    /// File holding the relay password, so the secret stays out of the config.
    pub password_file: Option<PathBuf>,
    /// Name of an environment variable holding the relay password.
    pub password_env: Option<String>,
    /// The third-party mailbox gatepost sends from (envelope sender, and From when rewriting).
    pub from_address: Option<String>,
    /// Extra CA certificate (PEM) to trust for a private relay.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
}

/// What gatepost changes in a message before relaying it (docs/rewrite.md).
#[derive(Debug, Clone)]
pub struct RewriteConfig {
    /// From becomes the relay's address with a "via" name; Reply-To the user's.
    pub rewrite_from: bool,
    /// `{name}` is the sender's display name (else their address).
    pub display_name: String,
    /// `{address}` is the user's address, `{intro}` the system introduction.
    pub footer: String,
    pub system_intro: String,
    /// Leave the client IP out of the Received header gatepost adds.
    pub hide_client_ip: bool,
}

/// How released mail is handed to the relay, and retried.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Relay connections at once.
    pub concurrency: usize,
    /// Messages sent over one relay connection (RSET between them).
    pub messages_per_connection: usize,
    /// Wait after the first temporary failure; doubles each time.
    pub retry_first: Duration,
    /// Longest wait between attempts.
    pub retry_max_interval: Duration,
    /// Give up (and tell the sender) this long after the release time.
    pub lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Local time of day at which date-only schedules are released.
    pub daily_hour: jiff::civil::Time,
    pub timezone: jiff::tz::TimeZone,
    /// Canonical IANA name of `timezone`, for messages and logs.
    pub timezone_name: String,
    /// Schedules further away than this are rejected, so a typo in the year cannot park
    /// a message for a decade.
    pub max_hold: jiff::SignedDuration,
}

/// The IMAP server (`docs/imap.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapConfig {
    /// Port 143 style: plain connect, then STARTTLS. Empty disables it.
    pub starttls_listen: Vec<SocketAddr>,
    /// Port 993 style: TLS from the first byte. Empty disables it.
    pub tls_listen: Vec<SocketAddr>,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_connections_per_user: usize,
    /// From connecting to a successful login.
    pub preauth_timeout: Duration,
    /// IDLE (and the wait for a command once logged in) ends after this; at least 30
    /// minutes (RFC 3501 §5.4).
    pub idle_timeout: Duration,
    /// Largest APPEND literal, advertised as APPENDLIMIT (RFC 7889).
    pub max_append_size: u64,
}

/// The quota that grows (SPEC §7, `accounts::quota`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    pub initial: u64,
    pub grow_when_free_below: u64,
    pub grow_by: u64,
    pub ceiling: Option<u64>,
    pub reserve: u64,
}

/// The key that seals connected accounts' credentials (`crate::secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsConfig {
    /// 64 hex digits, mode 0600. None: no credentials can be stored (`account add` refuses).
    pub key_file: Option<PathBuf>,
    /// Make the key at the first use when the file is missing (the development config only).
    pub generate_if_missing: bool,
}

/// Connected accounts' sync (`docs/accounts.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// How often folders other than the source INBOX (which is pushed by IDLE) are polled.
    pub poll_interval: Duration,
    /// At most this many connections to one account's server (providers limit them).
    pub connections_per_account: u32,
}

/// The data file system (`docs/configuration.md`, `[store]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Below this many free bytes no new mail is taken (SMTP 452 4.3.1); 0 turns it off.
    pub min_free_disk: u64,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `tracing` EnvFilter directives, e.g. `"info,gatepost=debug"`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// One problem, pinned to the key path the operator has to edit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}{}", hint_suffix(.hint))]
pub struct ConfigError {
    pub key: String,
    pub message: String,
    pub hint: String,
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() { String::new() } else { format!(" (hint: {hint})") }
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Self {
        ConfigError { key: key.into(), message: message.into(), hint: hint.into() }
    }
}

/// All problems found in one pass; never empty when returned as an error.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Read the file, apply `GATEPOST__*` overrides from the process environment, validate.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "(file)",
                format!("cannot read {}: {e}", path.display()),
                "pass the path of an existing config file, e.g. config/gatepost.toml",
            )])
        })?;
        let mut env = Vec::new();
        let mut bad_env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(v) => env.push((name.to_string(), v)),
                Err(_) => {
                    bad_env.push(ConfigError::new(name, "value is not valid UTF-8", "config values must be UTF-8 text"))
                }
            }
        }
        match Config::from_toml(&text, &env) {
            Ok(c) if bad_env.is_empty() => Ok(c),
            Ok(_) => Err(ConfigErrors(bad_env)),
            Err(ConfigErrors(mut errs)) => {
                errs.extend(bad_env);
                Err(ConfigErrors(errs))
            }
        }
    }

    /// Same from text with an explicit environment (tests use this). Variables not
    /// starting with `GATEPOST__` are ignored.
    pub fn from_toml(text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        sections::read(text, env).0
    }
}

impl Default for Config {
    /// The configuration of an empty file.
    fn default() -> Self {
        Config::from_toml("", &[]).expect("the empty config is valid")
    }
}
