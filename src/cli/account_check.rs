//! Checking a connected account's servers for the CLI (`account add|check|set`): the
//! incoming server's steps (`sync::connect`, or POP3's), the SMTP route's login, and how a
//! failure is told to the operator.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gatepost::config::Config;
use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::secrets::SealKey;
use gatepost::store::{ConnectedAccount, Store};
use gatepost::sync::connect::{CheckError, Target, connect};

use super::output::{self, value};

/// Each step of `add` and `check` (docs/accounts.md, "Checking an account").
pub(super) const STEP_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn seal_key(config: &Config) -> anyhow::Result<SealKey> {
    SealKey::from_config(config.secrets.key_file.as_deref(), config.secrets.generate_if_missing)
        .context("cannot seal or open account passwords")
}

pub(super) fn parse_incoming(url: &str) -> anyhow::Result<ServerUrl> {
    ServerUrl::parse(url, &[Protocol::Imap, Protocol::Pop3], "incoming server").map_err(anyhow::Error::msg)
}

pub(super) fn tls_for(ca_pem: Option<&str>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let config = gatepost::relay::trust::account_client_config(ca_pem, "--ca-file");
    Ok(Arc::new(config.map_err(anyhow::Error::msg)?))
}

/// Log in and list the capabilities, or the failed step.
pub(super) fn check(
    url: &ServerUrl,
    login: &str,
    password: &str,
    ca_pem: Option<&str>,
) -> anyhow::Result<Result<Vec<String>, CheckError>> {
    let tls = tls_for(ca_pem)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if url.protocol == Protocol::Pop3 {
        return Ok(runtime.block_on(async {
            let c = gatepost::sync::pop3::Pop3::connect(url, &tls, login, password, STEP_TIMEOUT).await?;
            let _ = c.quit().await;
            Ok(vec!["POP3 USER UIDL".to_string()])
        }));
    }
    Ok(runtime.block_on(async {
        let t = Target { url, login, password, tls, step_timeout: STEP_TIMEOUT };
        let mut c = connect(&t).await?;
        let _ = c.session.logout().await;
        Ok(c.capabilities)
    }))
}

/// Log in to the account's SMTP server (the send-as route) and leave; why not, if not.
pub(super) fn check_smtp(
    config: &Config,
    url: &ServerUrl,
    login: &str,
    password: &str,
    ca_pem: Option<&str>,
) -> anyhow::Result<Result<(), String>> {
    let tls = tls_for(ca_pem)?;
    let relay = gatepost::relay::smtp::SmtpRelayConfig {
        host: url.host.clone(),
        port: url.port,
        security: url.security,
        credentials: Some((login.to_string(), password.to_string())),
        ca_file: None,
        helo_name: config.hostname.clone(),
        connect_timeout: STEP_TIMEOUT,
        command_timeout: STEP_TIMEOUT,
        data_timeout: STEP_TIMEOUT,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(gatepost::relay::smtp::check_login(&relay, &tls)))
}

pub(super) fn report_smtp_failure(url: &ServerUrl, why: &str) -> anyhow::Result<ExitCode> {
    output::eprintln(&format!(
        "gatepost: outgoing server {url} refused the login: {}\n  what to do: check --smtp, the login and the \
         password (the account's own; most providers use the same for IMAP and SMTP), or add the account \
         without --smtp and send through the system relay",
        value(why)
    ));
    Ok(ExitCode::FAILURE)
}

pub(super) fn report_failure(e: &CheckError) -> anyhow::Result<ExitCode> {
    output::eprintln(&format!(
        "gatepost: {} step failed: {}\n  the server said: {}\n  what to do: {}",
        e.step,
        e.problem,
        value(&e.detail),
        e.problem.hint()
    ));
    Ok(ExitCode::FAILURE)
}

pub(super) fn find(store: &Store, user: &str, name: &str) -> anyhow::Result<ConnectedAccount> {
    store.connected(user, name)?.ok_or_else(|| anyhow::anyhow!("{user} has no account named {name:?}"))
}
