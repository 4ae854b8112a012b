//! Building the configured relay: `file://DIR`, or an SMTP relay with its password read from
//! a file or an environment variable (never from the config itself).

use std::path::PathBuf;
use std::sync::Arc;

use super::Relay;
use super::file::FileRelay;
use super::smtp::{SmtpRelay, SmtpRelayConfig, parse_url};
use crate::config::RelayConfig;

/// The relay `relay.url` names. Errors say which key or file is wrong.
pub fn from_config(cfg: &RelayConfig, helo_name: &str) -> Result<Arc<dyn Relay>, String> {
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
        assert!(from_config(&cfg("file://data/outbox"), "h").is_ok());
        assert!(from_config(&cfg("smtp://127.0.0.1:2525"), "h").is_ok());
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg("smtp+starttls://127.0.0.1:2525");
        c.username = Some("u".into());
        c.password_file = Some(dir.path().join("missing"));
        let err = from_config(&c, "h").err().unwrap();
        assert!(err.contains("relay.password_file") && err.contains("missing"), "{err}");
        std::fs::write(dir.path().join("pw"), "s3cret\nignored\n").unwrap();
        c.password_file = Some(dir.path().join("pw"));
        assert_eq!(read_password(&c).unwrap(), "s3cret");
        c.password_file = None;
        c.password_env = Some("GATEPOST_TEST_UNSET_VARIABLE".into());
        let err = from_config(&c, "h").err().unwrap();
        assert!(err.contains("GATEPOST_TEST_UNSET_VARIABLE"), "{err}");
        assert!(!err.contains("s3cret"));
    }
}
