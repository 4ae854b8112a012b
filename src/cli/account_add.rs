//! `gatepost account add` (docs/accounts.md, "Commands" and "Discovery"): the servers given,
//! or found from the address; every server logged in to before anything is stored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use gatepost::config::Config;
use gatepost::discover::{self, Discovered};
use gatepost::net::server_url::{Protocol, Security, ServerUrl};
use gatepost::secrets::{Secret, owner};
use gatepost::store::{ConnectedAccount, SentCopy, ServerLock, Store, validate_account_name};

use super::account_check::{check, check_smtp, parse_incoming, report_failure, report_smtp_failure, seal_key, tls_for};
use super::output::{self, value};
use super::{account_sync, read_password};

/// Test hooks (docs/accounts.md, "Discovery"): where SRV questions go, and a
/// `https://host:port` to fetch autoconfig from instead of the domain's own hosts.
const NAMESERVER_ENV: &str = "GATEPOST_DISCOVERY_NAMESERVER";
const HTTPS_BASE_ENV: &str = "GATEPOST_DISCOVERY_HTTPS_BASE";

#[derive(clap::Args)]
pub struct AddArgs {
    user: String,
    /// The folder under Accounts/ (e.g. Work).
    #[arg(long)]
    name: String,
    /// The address of the mailbox.
    #[arg(long)]
    address: String,
    /// The incoming server: imaps://, imap+starttls://, pop3s:// or pop3+starttls://host[:port].
    /// Omitted: found from the address (provider table, autoconfig, SRV, usual names).
    #[arg(long, visible_alias = "imap")]
    incoming: Option<String>,
    /// The outgoing server, for sending as this address: smtps:// or smtp+starttls://.
    #[arg(long)]
    smtp: Option<String>,
    /// The login at the server (default: what discovery suggests, else the address).
    #[arg(long)]
    login: Option<String>,
    /// Read the password from this file instead of asking twice on the terminal.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Trust one extra CA, or exactly this self-signed certificate (PEM).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Use a discovered server outside the address's domain (RFC 6186 §6); repeatable.
    #[arg(long)]
    accept_server: Vec<String>,
    /// Return at once instead of following the first import.
    #[arg(long)]
    no_follow: bool,
}

pub fn add(
    config_path: &Path,
    config: &Config,
    store: &Store,
    a: AddArgs,
    now: jiff::Timestamp,
) -> anyhow::Result<ExitCode> {
    let owner_record = store.get_user(&a.user)?.ok_or_else(|| anyhow::anyhow!("no user {:?}", a.user))?;
    validate_account_name(&a.name).map_err(anyhow::Error::msg)?;
    gatepost::accounts::validate_email(&a.address)?;
    if store.connected(&a.user, &a.name)?.is_some() {
        anyhow::bail!("{} already has an account named {:?} (or had one whose mail is still kept)", a.user, a.name);
    }
    let ca_pem = a
        .ca_file
        .as_ref()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("--ca-file {}", p.display())))
        .transpose()?;
    let given_smtp = a.smtp.as_deref().map(parse_smtp).transpose()?;
    // The servers: given, or found.
    let (incoming, found_smtp, suggested_login) = match &a.incoming {
        Some(url) => (parse_incoming(url)?, None, None),
        None => match find(&a.address, ca_pem.as_deref(), &a.accept_server)? {
            Ok(found) => found,
            Err(code) => return Ok(code),
        },
    };
    let key = seal_key(config)?;
    let login = a.login.or(suggested_login).unwrap_or_else(|| a.address.clone());
    let password =
        zeroize::Zeroizing::new(read_password(a.password_file.as_deref(), &format!("Password of {}: ", a.address))?);
    anyhow::ensure!(
        !gatepost::accounts::verify_password(&owner_record.password_hash, &password),
        "that is {}'s own gatepost password: give the password of the account at {}",
        a.user,
        incoming.host
    );
    let caps = match check(&incoming, &login, &password, ca_pem.as_deref())? {
        Ok(caps) => caps,
        Err(e) => return report_failure(&e),
    };
    // A route the user gave must work; one discovery found is dropped (with a word) if not.
    let smtp = match (given_smtp, found_smtp) {
        (Some(s), _) => match check_smtp(config, &s, &login, &password, ca_pem.as_deref())? {
            Ok(()) => Some(s),
            Err(why) => return report_smtp_failure(&s, &why),
        },
        (None, Some(s)) => match check_smtp(config, &s, &login, &password, ca_pem.as_deref())? {
            Ok(()) => Some(s),
            Err(why) => {
                output::eprintln(&format!(
                    "note: the discovered outgoing server {s} refused the login ({}); the account is added without \
                     one (add it later with account set --smtp)",
                    value(&why)
                ));
                None
            }
        },
        (None, None) => None,
    };
    let account = ConnectedAccount {
        user: a.user.clone(),
        name: a.name.clone(),
        address: a.address.to_lowercase(),
        incoming: incoming.to_string(),
        smtp: smtp.as_ref().map(|s| s.to_string()),
        login,
        credential: key.seal(&Secret::Password { password: password.to_string() }, &owner(&a.user, &a.name)),
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
    anyhow::ensure!(store.insert_connected(&account)?, "{} already has an account named {:?}", a.user, a.name);
    let (user, name) = (&a.user, &a.name);
    output::println(&format!(
        "added account {} for {user}: logged in to {incoming} ({})",
        value(name),
        value(&caps.join(" "))
    ))?;
    if let Some(s) = &smtp {
        output::println(&format!("{} may send as {} through {s}", value(user), value(&account.address)))?;
    }
    if !ServerLock::server_seems_running(&config.data_dir) {
        output::println("the import starts when gatepost serve runs (only the server syncs)")?;
    } else if a.no_follow {
        output::println(&format!("the server imports it now: gatepost account show {user} {name} --follow"))?;
    } else {
        return account_sync::follow(config_path, config, user, name);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_smtp(url: &str) -> anyhow::Result<ServerUrl> {
    let s = ServerUrl::parse(url, &[Protocol::Smtp], "outgoing server").map_err(anyhow::Error::msg)?;
    if s.security == Security::Plain && !s.is_loopback() {
        anyhow::bail!("{s}: plain text to another machine; use smtps:// or smtp+starttls://");
    }
    Ok(s)
}

type Servers = (ServerUrl, Option<ServerUrl>, Option<String>);

/// Discovery, each step told on stderr; the servers, or the exit code of a clear refusal.
fn find(address: &str, ca_pem: Option<&str>, accept: &[String]) -> anyhow::Result<Result<Servers, ExitCode>> {
    let nameserver = match std::env::var(NAMESERVER_ENV) {
        Ok(v) => v.parse().with_context(|| format!("{NAMESERVER_ENV}={v:?}: not an address:port"))?,
        Err(_) => discover::dns::system_nameserver(),
    };
    let settings = discover::Settings {
        nameserver,
        https_base: std::env::var(HTTPS_BASE_ENV).ok(),
        tls: tls_for(ca_pem)?,
        step_limit: discover::STEP_LIMIT,
        total_limit: discover::TOTAL_LIMIT,
        accept: accept.iter().map(|h| h.to_ascii_lowercase()).collect(),
    };
    output::eprintln(&format!("no --incoming: looking for {}'s servers", value(address)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut say = |line: String| output::eprintln(&format!("  {}", value(&line)));
    match runtime.block_on(discover::discover(address, &settings, &mut say)) {
        Discovered::Found(f) => {
            output::eprintln(&format!(
                "found by {}: incoming {}{}",
                f.via,
                f.incoming,
                f.smtp.as_deref().map(|s| format!(", outgoing {s}")).unwrap_or_default()
            ));
            if let Some(note) = &f.note {
                output::eprintln(&format!("note: {note}"));
            }
            let incoming = parse_incoming(&f.incoming)?;
            let smtp = f.smtp.as_deref().and_then(|s| parse_smtp(s).ok());
            Ok(Ok((incoming, smtp, f.login)))
        }
        Discovered::Unsupported { name, why } => {
            output::eprintln(&format!("gatepost: {}: not supported yet: {}", value(&name), value(&why)));
            Ok(Err(ExitCode::FAILURE))
        }
        Discovered::NothingFound => {
            output::eprintln(
                "gatepost: no servers found for this address\n  what to do: give them with --incoming (and --smtp); \
                 your provider's help pages name them",
            );
            Ok(Err(ExitCode::FAILURE))
        }
    }
}
