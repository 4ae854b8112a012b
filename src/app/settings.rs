//! The config translated into each module's own settings, in one place: no module below the
//! wiring reads `Config` (decision D36). Secrets named by the
//! config (the relay's password file or variable) are read here, when the relay is built.

use std::path::PathBuf;
use std::sync::Arc;

use crate::accounts::login::LoginSettings;
use crate::accounts::pool::PoolSettings;
use crate::config::{Config, RelayConfig};
use crate::queue::attempts::RetryPolicy;
use crate::queue::dispatch::DispatchSettings;
use crate::relay::Relay;
use crate::relay::file::FileRelay;
use crate::relay::smtp::{SmtpRelay, SmtpRelayConfig, parse_url};
use crate::rewrite::RewritePolicy;
use crate::smtp::driver::Timeouts;
use crate::smtp::session::SessionSettings;

/// The rewrite policy. The relay address defaults to `gatepost@<hostname>`, which only a
/// `file://` relay may use (check-config insists on `relay.from_address` for SMTP).
pub fn rewrite_policy(config: &Config) -> RewritePolicy {
    RewritePolicy {
        rewrite_from: config.rewrite.rewrite_from,
        relay_address: relay_address(config),
        display_name_template: config.rewrite.display_name.clone(),
        footer_template: config.rewrite.footer.clone(),
        system_intro: config.rewrite.system_intro.clone(),
        hide_client_ip: config.rewrite.hide_client_ip,
        hostname: config.hostname.clone(),
    }
}

pub fn relay_address(config: &Config) -> String {
    config.relay.from_address.clone().unwrap_or_else(|| format!("gatepost@{}", config.hostname))
}

/// The envelope sender at the relay: the third-party address when From is rewritten (so
/// SPF/DMARC align with the relay's domain), else the user's own.
pub fn envelope_sender(config: &Config) -> Option<String> {
    config.rewrite.rewrite_from.then(|| relay_address(config))
}

/// What a submission session needs to know.
pub fn session(config: &Config) -> SessionSettings {
    let sub = &config.submission;
    SessionSettings {
        hostname: config.hostname.clone(),
        max_message_size: sub.max_message_size,
        max_recipients: sub.max_recipients,
        max_line_length: sub.max_line_length,
        daily_hour: config.schedule.daily_hour,
        timezone: config.schedule.timezone.clone(),
        timezone_name: config.schedule.timezone_name.clone(),
        max_hold: config.schedule.max_hold,
        starttls_available: true,
        rewrite_from: config.rewrite.rewrite_from,
    }
}

pub fn session_timeouts(config: &Config) -> Timeouts {
    let sub = &config.submission;
    Timeouts { command: sub.command_timeout, data: sub.data_timeout, preauth: sub.preauth_timeout }
}

/// How the dispatcher delivers; connected accounts' own servers get the relay's timeouts.
pub fn dispatch(config: &Config, store: &Arc<crate::store::Store>) -> DispatchSettings {
    let d = &config.delivery;
    let accounts = crate::relay::accounts::AccountRoutes {
        store: store.clone(),
        key: seal_key(config, "connected accounts cannot send"),
        helo_name: config.hostname.clone(),
        connect_timeout: config.relay.connect_timeout,
        command_timeout: config.relay.command_timeout,
        data_timeout: config.relay.data_timeout,
    };
    DispatchSettings {
        accounts: Some(Arc::new(accounts)),
        concurrency: d.concurrency,
        per_connection: d.messages_per_connection,
        retry: RetryPolicy { first: d.retry_first, max_interval: d.retry_max_interval, lifetime: d.lifetime },
        envelope_sender: envelope_sender(config),
        hostname: config.hostname.clone(),
    }
}

/// The `[login]` section as the login door takes it; the pool defaults to one check per core.
pub fn login(config: &Config) -> LoginSettings {
    let l = &config.login;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    LoginSettings {
        failures_before_lockout: l.failures_before_lockout,
        lockout: l.lockout,
        pool: PoolSettings {
            max_running: l.max_parallel_verifications.unwrap_or(cores),
            max_waiting: l.max_waiting_verifications,
            max_wait: l.max_verification_wait,
        },
        cache_ttl: l.cache_ttl,
    }
}

/// The relay `relay.url` names. Errors say which key or file is wrong.
pub fn relay(cfg: &RelayConfig, helo_name: &str) -> Result<Arc<dyn Relay>, String> {
    if let Some(dir) = cfg.url.strip_prefix("file://") {
        return Ok(Arc::new(FileRelay::new(PathBuf::from(dir))));
    }
    let (host, port, security) = parse_url(&cfg.url).map_err(|e| format!("relay.url: {e}"))?;
    let credentials = match &cfg.username {
        Some(user) => Some((user.clone(), read_password(cfg)?)),
        None => None,
    };
    let relay = SmtpRelay::new(SmtpRelayConfig {
        host,
        port,
        security,
        credentials,
        ca_file: cfg.ca_file.clone(),
        helo_name: helo_name.to_string(),
        connect_timeout: cfg.connect_timeout,
        command_timeout: cfg.command_timeout,
        data_timeout: cfg.data_timeout,
    })
    .map_err(|e| format!("relay: {e}"))?;
    Ok(Arc::new(relay))
}

/// The first line of the password file, or the variable's value.
fn read_password(cfg: &RelayConfig) -> Result<String, String> {
    if let Some(path) = &cfg.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("relay.password_file {}: cannot read it: {e}", path.display()))?;
        let pw = text.lines().next().unwrap_or_default().to_string();
        if pw.is_empty() {
            return Err(format!("relay.password_file {}: the first line is empty", path.display()));
        }
        return Ok(pw);
    }
    if let Some(var) = &cfg.password_env {
        return std::env::var(var).map_err(|_| format!("relay.password_env: the variable {var} is not set"));
    }
    Err("relay.username is set but no password source is".into())
}

/// `[quota]` as the mail store's rule.
pub fn quota_rule(config: &Config) -> crate::accounts::quota::QuotaRule {
    let q = &config.quota;
    crate::accounts::quota::QuotaRule {
        initial: q.initial,
        grow_when_free_below: q.grow_when_free_below,
        grow_by: q.grow_by.max(1),
        ceiling: q.ceiling,
        reserve: q.reserve,
    }
}

/// `[imap]` as the sessions' settings.
pub fn imap(config: &Config) -> crate::imap::ImapSettings {
    let i = &config.imap;
    crate::imap::ImapSettings {
        max_append_size: u32::try_from(i.max_append_size).unwrap_or(u32::MAX),
        max_connections_per_user: i.max_connections_per_user,
        preauth_timeout: i.preauth_timeout,
        idle_timeout: i.idle_timeout,
        command_timeout: i.idle_timeout,
    }
}

/// The `[secrets]` key, if one is set and readable; its problem is logged (`what` cannot happen).
fn seal_key(config: &Config, what: &str) -> Option<crate::secrets::SealKey> {
    let path = config.secrets.key_file.as_ref()?;
    match crate::secrets::SealKey::from_config(Some(path), config.secrets.generate_if_missing) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::error!(error = %e, "{what}: the [secrets] key cannot be read");
            None
        }
    }
}

/// What the accounts' sync tasks share. Without a usable `[secrets]` key no account can log
/// in: each says so in its status (and the key's problem is logged once here).
pub fn sync_env(config: &Config, store: Arc<crate::mailstore::MailStore>) -> crate::sync::account::SyncEnv {
    let key = seal_key(config, "connected accounts cannot sync");
    crate::sync::account::SyncEnv {
        store,
        key,
        poll_interval: config.sync.poll_interval,
        max_size: config.imap.max_append_size,
        step_timeout: std::time::Duration::from_secs(30),
        hostname: config.hostname.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cfg(url: &str) -> RelayConfig {
        RelayConfig {
            url: url.into(),
            username: None,
            password_file: None,
            password_env: None,
            from_address: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            data_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn builds_each_kind_and_reports_secret_problems() {
        assert!(relay(&cfg("file://data/outbox"), "h").is_ok());
        assert!(relay(&cfg("smtp://127.0.0.1:2525"), "h").is_ok());
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg("smtp+starttls://127.0.0.1:2525");
        c.username = Some("u".into());
        c.password_file = Some(dir.path().join("missing"));
        let err = relay(&c, "h").err().unwrap();
        assert!(err.contains("relay.password_file") && err.contains("missing"), "{err}");
        std::fs::write(dir.path().join("pw"), "s3cret\nignored\n").unwrap();
        c.password_file = Some(dir.path().join("pw"));
        assert_eq!(read_password(&c).unwrap(), "s3cret");
        c.password_file = None;
        c.password_env = Some("GATEPOST_TEST_UNSET_VARIABLE".into());
        let err = relay(&c, "h").err().unwrap();
        assert!(err.contains("GATEPOST_TEST_UNSET_VARIABLE"), "{err}");
        assert!(!err.contains("s3cret"));
    }
}
