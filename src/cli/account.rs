//! `gatepost account …` (a user's connected accounts) and `gatepost secrets rotate`
//! (docs/accounts.md). `add` and `check` log in to the account's server before anything is
//! stored, and say which step failed and what to do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::secrets::{SealKey, Secret, owner};
use gatepost::store::{ConnectedAccount, SentCopy, ServerLock, Store, validate_account_name};
use serde::Serialize;

use super::account_check::{check, check_smtp, find, parse_incoming, report_failure, report_smtp_failure, seal_key};
use super::output::{self, value};
use super::{account_set, account_sync, open_store, read_password};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add an external mailbox: logs in to its server first, then stores it.
    Add {
        user: String,
        /// The folder under Accounts/ (e.g. Work).
        #[arg(long)]
        name: String,
        /// The address of the mailbox.
        #[arg(long)]
        address: String,
        /// The incoming server: imaps://, imap+starttls://, pop3s:// or pop3+starttls://host[:port].
        #[arg(long, visible_alias = "imap")]
        incoming: String,
        /// The outgoing server, for sending as this address: smtps:// or smtp+starttls://.
        #[arg(long)]
        smtp: Option<String>,
        /// The login at the server (default: the address).
        #[arg(long)]
        login: Option<String>,
        /// Read the password from this file instead of asking twice on the terminal.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Trust one extra CA, or exactly this self-signed certificate (PEM).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Return at once instead of following the first import.
        #[arg(long)]
        no_follow: bool,
    },
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
        AccountCommand::Add { user, name, address, incoming, smtp, login, password_file, ca_file, no_follow } => {
            let owner_record = store.get_user(&user)?.ok_or_else(|| anyhow::anyhow!("no user {user:?}"))?;
            validate_account_name(&name).map_err(anyhow::Error::msg)?;
            gatepost::accounts::validate_email(&address)?;
            let url = parse_incoming(&incoming)?;
            let smtp = smtp
                .map(|s| ServerUrl::parse(&s, &[Protocol::Smtp], "outgoing server").map_err(anyhow::Error::msg))
                .transpose()?;
            if let Some(s) =
                smtp.iter().find(|s| s.security == gatepost::net::server_url::Security::Plain && !s.is_loopback())
            {
                anyhow::bail!("{s}: plain text to another machine; use smtps:// or smtp+starttls://");
            }
            if store.connected(&user, &name)?.is_some() {
                anyhow::bail!("{user} already has an account named {name:?} (or had one whose mail is still kept)");
            }
            let key = seal_key(&config)?;
            let ca_pem = ca_file
                .map(|p| std::fs::read_to_string(&p).with_context(|| format!("--ca-file {}", p.display())))
                .transpose()?;
            let login = login.unwrap_or_else(|| address.clone());
            let password =
                zeroize::Zeroizing::new(read_password(password_file.as_deref(), &format!("Password of {address}: "))?);
            anyhow::ensure!(
                !gatepost::accounts::verify_password(&owner_record.password_hash, &password),
                "that is {user}'s own gatepost password: give the password of the account at {}",
                url.host
            );
            let caps = match check(&url, &login, &password, ca_pem.as_deref())? {
                Ok(caps) => caps,
                Err(e) => return report_failure(&e),
            };
            if let Some(s) = &smtp
                && let Err(why) = check_smtp(&config, s, &login, &password, ca_pem.as_deref())?
            {
                return report_smtp_failure(s, &why);
            }
            let account = ConnectedAccount {
                user: user.clone(),
                name: name.clone(),
                address: address.to_lowercase(),
                incoming: url.to_string(),
                smtp: smtp.as_ref().map(|s| s.to_string()),
                login,
                credential: key.seal(&Secret::Password { password: password.to_string() }, &owner(&user, &name)),
                ca_pem,
                connections: 2,
                sent_copy: SentCopy::Auto,
                pop3_delete_after_days: None,
                paused: false,
                removed: false,
                incoming_checked_at: Some(now),
                smtp_checked_at: smtp.is_some().then_some(now),
                created_at: now,
            };
            anyhow::ensure!(store.insert_connected(&account)?, "{user} already has an account named {name:?}");
            output::println(&format!(
                "added account {} for {user}: logged in to {url} ({})",
                value(&name),
                value(&caps.join(" "))
            ))?;
            if !ServerLock::server_seems_running(&config.data_dir) {
                output::println("the import starts when gatepost serve runs (only the server syncs)")?;
            } else if no_follow {
                output::println(&format!("the server imports it now: gatepost account show {user} {name} --follow"))?;
            } else {
                return account_sync::follow(config_path, &config, &user, &name);
            }
        }
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
            ("added", self.created_at.clone()),
        ]
    }
}
