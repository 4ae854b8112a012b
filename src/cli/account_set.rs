//! `gatepost account set` and `account remove --delete-mail` (docs/accounts.md, "Commands").
//! A change that affects the login (server, login, password, certificate) is checked against
//! the server before it is stored, as `add` is; a running server restarts the account's sync
//! within two seconds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use gatepost::config::Config;
use gatepost::net::server_url::{Protocol, Security, ServerUrl};
use gatepost::secrets::{Secret, owner};
use gatepost::store::{SentCopy, ServerLock, Store};

use super::account_check::{check, check_smtp, find, parse_incoming, report_failure, seal_key};
use super::output::{self, value};
use super::read_password;

pub struct Change {
    pub address: Option<String>,
    pub incoming: Option<String>,
    pub smtp: Option<String>,
    pub login: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub connections: Option<u32>,
    pub sent_copy: Option<String>,
    pub pop3_delete_after: Option<u32>,
}

fn sent_copy(s: &str) -> anyhow::Result<SentCopy> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(SentCopy::Auto),
        "append" => Ok(SentCopy::Append),
        "none" => Ok(SentCopy::None),
        _ => anyhow::bail!("--sent-copy {s:?}: auto, append or none"),
    }
}

pub fn set(config: &Config, store: &Store, user: &str, name: &str, c: Change) -> anyhow::Result<ExitCode> {
    let mut a = find(store, user, name)?;
    anyhow::ensure!(!a.removed, "account {name:?} of {user} was removed; add a new one");
    let mut changed = Vec::new();
    if let Some(address) = c.address {
        gatepost::accounts::validate_email(&address)?;
        a.address = address.to_lowercase();
        changed.push("address");
    }
    if let Some(smtp) = c.smtp {
        if smtp.eq_ignore_ascii_case("none") {
            a.smtp = None;
        } else {
            let u = ServerUrl::parse(&smtp, &[Protocol::Smtp], "outgoing server").map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                u.security != Security::Plain || u.is_loopback(),
                "{u}: plain text to another machine; use smtps:// or smtp+starttls://"
            );
            a.smtp = Some(u.to_string());
        }
        // The route is checked below before the address may send through it.
        a.smtp_checked_at = None;
        changed.push("outgoing server");
    }
    if let Some(n) = c.connections {
        anyhow::ensure!((1..=10).contains(&n), "--connections {n}: 1 to 10");
        a.connections = n;
        changed.push("connections");
    }
    if let Some(s) = c.sent_copy {
        a.sent_copy = sent_copy(&s)?;
        changed.push("sent copies");
    }
    if let Some(days) = c.pop3_delete_after {
        a.pop3_delete_after_days = Some(days);
        changed.push("POP3 deletion");
    }
    let login_changes = c.incoming.is_some() || c.login.is_some() || c.password_file.is_some() || c.ca_file.is_some();
    if login_changes {
        if let Some(incoming) = &c.incoming {
            a.incoming = parse_incoming(incoming)?.to_string();
        }
        if let Some(login) = c.login {
            a.login = login;
        }
        if let Some(ca) = &c.ca_file {
            a.ca_pem = Some(std::fs::read_to_string(ca).with_context(|| format!("--ca-file {}", ca.display()))?);
        }
        let key = seal_key(config)?;
        let who = owner(user, name);
        if let Some(pw) = &c.password_file {
            let password = zeroize::Zeroizing::new(read_password(Some(pw), "")?);
            let own = store.get_user(user)?.ok_or_else(|| anyhow::anyhow!("no user {user:?}"))?;
            anyhow::ensure!(
                !gatepost::accounts::verify_password(&own.password_hash, &password),
                "that is {user}'s own gatepost password: give the password of the account"
            );
            a.credential = key.seal(&Secret::Password { password: password.to_string() }, &who);
        }
        let Secret::Password { password } = &key.open(&a.credential, &who)?;
        let url = parse_incoming(&a.incoming)?;
        if let Err(e) = check(&url, &a.login, password, a.ca_pem.as_deref())? {
            return report_failure(&e);
        }
        a.incoming_checked_at = Some(jiff::Timestamp::now());
        changed.push("login");
    }
    // A new outgoing server, login, password or certificate: the SMTP route is checked too.
    if let Some(s) = a.smtp.clone()
        && (a.smtp_checked_at.is_none() || login_changes)
    {
        let key = seal_key(config)?;
        let Secret::Password { password } = &key.open(&a.credential, &owner(user, name))?;
        let url = ServerUrl::parse(&s, &[Protocol::Smtp], "outgoing server").map_err(anyhow::Error::msg)?;
        if let Err(why) = check_smtp(config, &url, &a.login, password, a.ca_pem.as_deref())? {
            output::eprintln(&format!("gatepost: outgoing server {url} refused the login: {}", value(&why)));
            return Ok(ExitCode::FAILURE);
        }
        a.smtp_checked_at = Some(jiff::Timestamp::now());
    }
    anyhow::ensure!(!changed.is_empty(), "nothing to change: give at least one option");
    store
        .update_connected::<anyhow::Error>(user, name, |rec| {
            *rec = a.clone();
            Ok(())
        })?
        .ok_or_else(|| anyhow::anyhow!("{user} has no account named {name:?}"))?;
    output::println(&format!("account {} of {user} changed: {}", value(name), changed.join(", ")))?;
    Ok(ExitCode::SUCCESS)
}

/// Stop the account, delete `Accounts/<NAME>/` with its mail and the sync state, and free
/// the name. Messages the user copied or moved out of the tree stay.
pub fn remove_with_mail(config: &Config, store: &Store, user: &str, name: &str) -> anyhow::Result<ExitCode> {
    find(store, user, name)?;
    store
        .update_connected::<anyhow::Error>(user, name, |a| {
            a.removed = true;
            Ok(())
        })?
        .ok_or_else(|| anyhow::anyhow!("{user} has no account named {name:?}"))?;
    if ServerLock::server_seems_running(&config.data_dir) {
        // The server stops the account's sync within two seconds of the change.
        std::thread::sleep(gatepost::sync::supervisor::LOOK_EVERY * 2);
    }
    let path = config.data_dir.join("mailstore.redb");
    let mut deleted = 0;
    if path.exists() {
        let db = gatepost::mailstore::MailDb::open(&path, gatepost::app::settings::quota_rule(config))?;
        if let Some(id) = db.find_user(user)? {
            db.forget_sync_account(id, name)?;
            deleted = db.delete_tree(id, &format!("Accounts/{name}"))?;
        }
    }
    store.delete_connected(user, name)?;
    output::println(&format!(
        "account {} of {user} removed with its mail ({deleted} folder(s) deleted); the name is free",
        value(name)
    ))?;
    Ok(ExitCode::SUCCESS)
}
