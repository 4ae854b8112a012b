//! `gatepost account …` (a user's connected accounts) and `gatepost secrets rotate`
//! (docs/accounts.md). `add` and `check` log in to the account's server before anything is
//! stored, and say which step failed and what to do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::secrets::{SealKey, Secret, owner};
use gatepost::store::{ConnectedAccount, ServerLock, Store};
use serde::Serialize;

use super::account_check::{check, check_smtp, find, parse_incoming, report_failure, report_smtp_failure, seal_key};
use super::output::{self, value};
use super::{account_set, account_sync, open_store};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add an external mailbox: finds its servers when not given, logs in first, then stores it.
    Add(super::account_add::AddArgs),
    /// Change an account; a new server, login, password or certificate is checked first.
    Set {
        user: String,
        name: String,
        #[arg(long)]
        address: Option<String>,
        #[arg(long, visible_alias = "imap")]
        incoming: Option<String>,
        /// `none` removes the outgoing server.
        #[arg(long)]
        smtp: Option<String>,
        #[arg(long)]
        login: Option<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Connections to the account's server at most.
        #[arg(long)]
        connections: Option<u32>,
        /// Copies of mail sent as this account in its own Sent folder: auto, append or none.
        #[arg(long)]
        sent_copy: Option<String>,
        /// POP3 accounts: delete mail from the server this many days after import.
        #[arg(long)]
        pop3_delete_after: Option<u32>,
    },
    /// A user's accounts.
    List { user: String },
    /// One account (never its password).
    Show {
        user: String,
        name: String,
        #[arg(long)]
        json: bool,
        /// Follow the sync's progress until its first import is done.
        #[arg(long)]
        follow: bool,
    },
    /// Log in to the account's server again and report each step.
    Check { user: String, name: String },
    /// Stop syncing the account for now.
    Pause { user: String, name: String },
    /// Sync the account again.
    Resume { user: String, name: String },
    /// Stop syncing for good; its mail stays, read-only, and the name stays taken —
    /// unless --delete-mail, which deletes Accounts/NAME and frees the name.
    Remove {
        user: String,
        name: String,
        #[arg(long)]
        delete_mail: bool,
    },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored credential under a new key, in one transaction; then point
    /// secrets.key_file at the new file.
    Rotate {
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

pub fn run(config_path: &Path, cmd: AccountCommand) -> anyhow::Result<ExitCode> {
    let (config, store) = open_store(config_path)?;
    let now = jiff::Timestamp::now();
    match cmd {
        AccountCommand::Add(args) => return super::account_add::add(config_path, &config, &store, args, now),
        AccountCommand::Set {
            user,
            name,
            address,
            incoming,
            smtp,
            login,
            password_file,
            ca_file,
            connections,
            sent_copy,
            pop3_delete_after,
        } => {
            let change = account_set::Change {
                address,
                incoming,
                smtp,
                login,
                password_file,
                ca_file,
                connections,
                sent_copy,
                pop3_delete_after,
            };
            return account_set::set(&config, &store, &user, &name, change);
        }
        AccountCommand::List { user } => {
            anyhow::ensure!(store.get_user(&user)?.is_some(), "no user {user:?}");
            let mut table = format!("{:<20} {:<32} {:<8} INCOMING\n", "NAME", "ADDRESS", "STATE");
            for a in store.list_connected(Some(&user))? {
                table += &format!(
                    "{:<20} {:<32} {:<8} {}\n",
                    value(&a.name),
                    value(&a.address),
                    state(&a),
                    value(&a.incoming)
                );
            }
            output::print(&table)?;
        }
        AccountCommand::Show { user, name, json, follow } => {
            let a = find(&store, &user, &name)?;
            if follow {
                return account_sync::follow(config_path, &config, &user, &name);
            }
            let mut view = View::of(&a);
            view.sync = account_sync::status(&config, &user, &name)?;
            if json {
                output::println(&output::json(&view)?)?;
            } else {
                let mut out = String::new();
                let running = ServerLock::server_seems_running(&config.data_dir);
                for (k, v) in view.lines().into_iter().chain(account_sync::lines(view.sync.as_ref(), running)) {
                    out += &format!("{k:<18} {}\n", value(&v));
                }
                output::print(&out)?;
            }
        }
        AccountCommand::Check { user, name } => {
            let a = find(&store, &user, &name)?;
            let key = seal_key(&config)?;
            let Secret::Password { password } = &key.open(&a.credential, &owner(&user, &name))?;
            let url = parse_incoming(&a.incoming)?;
            match check(&url, &a.login, password, a.ca_pem.as_deref())? {
                Ok(caps) => {
                    store.update_connected::<anyhow::Error>(&user, &name, |a| {
                        a.incoming_checked_at = Some(now);
                        Ok(())
                    })?;
                    output::println(&format!(
                        "{url}: DNS, TCP, TLS, login and capabilities fine ({})",
                        value(&caps.join(" "))
                    ))?;
                }
                Err(e) => return report_failure(&e),
            }
            if let Some(s) = &a.smtp {
                let s = ServerUrl::parse(s, &[Protocol::Smtp], "outgoing server").map_err(anyhow::Error::msg)?;
                let outcome = check_smtp(&config, &s, &a.login, password, a.ca_pem.as_deref())?;
                // The address may send through the route only while its login is accepted.
                let checked = outcome.is_ok().then_some(now);
                store.update_connected::<anyhow::Error>(&user, &name, |a| {
                    a.smtp_checked_at = checked;
                    Ok(())
                })?;
                match outcome {
                    Ok(()) => output::println(&format!("{s}: login fine; {} may send through it", a.address))?,
                    Err(why) => return report_smtp_failure(&s, &why),
                }
            }
        }
        AccountCommand::Pause { user, name } => set(&store, &user, &name, "paused", |a| a.paused = true)?,
        AccountCommand::Resume { user, name } => set(&store, &user, &name, "resumed", |a| a.paused = false)?,
        AccountCommand::Remove { user, name, delete_mail: false } => {
            set(&store, &user, &name, "removed (its mail stays)", |a| a.removed = true)?
        }
        AccountCommand::Remove { user, name, delete_mail: true } => {
            return account_set::remove_with_mail(&config, &store, &user, &name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn secrets(config_path: &Path, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    let (config, store) = open_store(config_path)?;
    match cmd {
        SecretsCommand::Rotate { new_key_file } => {
            let old = seal_key(&config)?;
            let new = SealKey::load(&new_key_file)?;
            anyhow::ensure!(old.fingerprint() != new.fingerprint(), "the new key is the key in use");
            let n = store.reseal_connected::<anyhow::Error>(|a| {
                let who = owner(&a.user, &a.name);
                let secret =
                    old.open(&a.credential, &who).with_context(|| format!("account {} of {}", a.name, a.user))?;
                Ok(new.seal(&secret, &who))
            })?;
            output::println(&format!(
                "re-sealed {n} credential(s) under key {}; now set secrets.key_file = {:?} and restart the server",
                new.fingerprint(),
                new_key_file.display().to_string()
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn set(store: &Store, user: &str, name: &str, done: &str, f: impl FnOnce(&mut ConnectedAccount)) -> anyhow::Result<()> {
    store
        .update_connected::<anyhow::Error>(user, name, |a| {
            f(a);
            Ok(())
        })?
        .ok_or_else(|| anyhow::anyhow!("{user} has no account named {name:?}"))?;
    output::println(&format!("account {} of {user} {done}", value(name)))?;
    Ok(())
}

fn state(a: &ConnectedAccount) -> &'static str {
    if a.removed {
        "removed"
    } else if a.paused {
        "paused"
    } else {
        "active"
    }
}

/// What `show` prints: everything but the credential, of which only the kind.
#[derive(Serialize)]
struct View {
    user: String,
    name: String,
    address: String,
    state: &'static str,
    incoming: String,
    smtp: Option<String>,
    login: String,
    credential: String,
    trusts_extra_certificate: bool,
    connections: u32,
    incoming_checked_at: Option<String>,
    smtp_checked_at: Option<String>,
    /// Whether the user may send as the address now (through the account's own server).
    sends: bool,
    /// `auto`, `append` or `none`, and whether copies are appended at the source now.
    sent_copy: String,
    sent_copy_appended: bool,
    created_at: String,
    /// The server's sync status (absent until the server has started syncing the account).
    sync: Option<gatepost::mailstore::db::SyncStatus>,
}

impl View {
    fn of(a: &ConnectedAccount) -> View {
        View {
            user: a.user.clone(),
            name: a.name.clone(),
            address: a.address.clone(),
            state: state(a),
            incoming: a.incoming.clone(),
            smtp: a.smtp.clone(),
            login: a.login.clone(),
            credential: format!("{} (sealed under key {})", a.credential.kind, a.credential.key),
            trusts_extra_certificate: a.ca_pem.is_some(),
            connections: a.connections,
            incoming_checked_at: a.incoming_checked_at.map(|t| t.to_string()),
            smtp_checked_at: a.smtp_checked_at.map(|t| t.to_string()),
            sends: a.sends(),
            sent_copy: serde_json::to_value(a.sent_copy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            sent_copy_appended: gatepost::filing::filer::appends(a),
            created_at: a.created_at.to_string(),
            sync: None,
        }
    }

    fn lines(&self) -> Vec<(&'static str, String)> {
        let never = || "never".to_string();
        vec![
            ("account", format!("{} of {}", self.name, self.user)),
            ("address", self.address.clone()),
            ("state", self.state.to_string()),
            ("incoming", self.incoming.clone()),
            ("outgoing", self.smtp.clone().unwrap_or_else(|| "none".into())),
            ("login", self.login.clone()),
            ("credential", self.credential.clone()),
            ("extra certificate", if self.trusts_extra_certificate { "trusted" } else { "none" }.into()),
            ("incoming checked", self.incoming_checked_at.clone().unwrap_or_else(never)),
            ("outgoing checked", self.smtp_checked_at.clone().unwrap_or_else(never)),
            (
                "sends as it",
                if self.sends { "yes, through its own server" } else { "no (no SMTP route whose login was accepted)" }
                    .into(),
            ),
            (
                "sent copies",
                format!(
                    "{} ({})",
                    self.sent_copy,
                    if self.sent_copy_appended { "appended to its Sent" } else { "not appended at the source" }
                ),
            ),
            ("added", self.created_at.clone()),
        ]
    }
}
