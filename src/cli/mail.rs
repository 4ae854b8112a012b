//! `gatepost mailbox list USER`, `gatepost quota show|set USER`: the mail store as the
//! operator sees it. They work beside a running server (the mail store is opened in
//! MultiWriter mode, decision D4).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use gatepost::mailstore::MailDb;

use super::open_store;
use super::output::{self, value};

#[derive(Subcommand)]
pub enum MailboxCommand {
    /// The user's mailboxes with their counts and sizes.
    List {
        user: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// The user's limit, usage and each time the limit grew.
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Set the user's own ceiling (a size such as "2GB"), or "none" for the operator's.
    Set {
        user: String,
        #[arg(long)]
        ceiling: String,
    },
}

fn open(config: &Path, user: &str) -> anyhow::Result<(MailDb, u32)> {
    let (config, store) = open_store(config)?;
    let record = store.get_user(user)?.ok_or_else(|| anyhow::anyhow!("no user {user:?}"))?;
    let db = MailDb::open(&config.data_dir.join("mailstore.redb"), gatepost::app::settings::quota_rule(&config))?;
    // A user who never logged in gets the store the first login would make.
    let id = db.user(&record.name, jiff::Timestamp::now())?;
    Ok((db, id))
}

fn size(n: u64) -> String {
    match n {
        n if n >= 10_000_000_000 => format!("{} GB", n / 1_000_000_000),
        n if n >= 10_000_000 => format!("{} MB", n / 1_000_000),
        n if n >= 10_000 => format!("{} KB", n / 1000),
        n => format!("{n} B"),
    }
}

pub fn mailbox(config: &Path, cmd: MailboxCommand) -> anyhow::Result<ExitCode> {
    let MailboxCommand::List { user, json } = cmd;
    let (db, id) = open(config, &user)?;
    let boxes = db.mailboxes(id)?;
    // An account folder's role at its source: shown, never advertised in LIST.
    let sources = db.source_roles(id)?;
    let role = |id: &u32, m: &gatepost::mailstore::db::Mailbox| match (&m.special_use, sources.get(id)) {
        (Some(r), _) => r.clone(),
        (None, Some(r)) => format!("({r})"),
        (None, None) => String::new(),
    };
    if json {
        let rows: Vec<_> = boxes
            .iter()
            .map(|(id, m)| {
                serde_json::json!({
                    "name": m.name, "special_use": m.special_use, "source_role": sources.get(id),
                    "messages": m.exists, "unseen": m.unseen,
                    "size": m.size, "uidvalidity": m.uidvalidity, "uidnext": m.uidnext,
                })
            })
            .collect();
        output::println(&output::json(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = format!("{:<40} {:<10} {:>9} {:>8} {:>10}\n", "MAILBOX", "ROLE", "MESSAGES", "UNSEEN", "SIZE");
    for (id, m) in &boxes {
        table += &format!(
            "{:<40} {:<10} {:>9} {:>8} {:>10}\n",
            value(&m.name),
            role(id, m),
            m.exists,
            m.unseen,
            size(m.size)
        );
    }
    output::print(&table)?;
    Ok(ExitCode::SUCCESS)
}

pub fn quota(config: &Path, cmd: QuotaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QuotaCommand::Show { user, json } => {
            let (db, id) = open(config, &user)?;
            let q = db.quota(id)?;
            if json {
                let growth: Vec<_> = q
                    .growth
                    .iter()
                    .map(|(t, old, new)| serde_json::json!({"at": t.to_string(), "from": old, "to": new}))
                    .collect();
                let v = serde_json::json!({"user": user, "limit": q.limit, "used": q.used, "growth": growth});
                output::println(&output::json(&v)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut text = format!(
                "user   {}\nlimit  {} ({} bytes)\nused   {} ({} bytes)\n",
                value(&user),
                size(q.limit),
                q.limit,
                size(q.used),
                q.used
            );
            if q.growth.is_empty() {
                text += "growth none yet\n";
            }
            for (t, old, new) in &q.growth {
                text += &format!("grew   {t}  {} -> {}\n", size(*old), size(*new));
            }
            output::print(&text)?;
        }
        QuotaCommand::Set { user, ceiling } => {
            let limit = if ceiling.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(gatepost::config::units::parse_size(&ceiling).map_err(|e| anyhow::anyhow!("--ceiling: {e}"))?)
            };
            let (db, id) = open(config, &user)?;
            db.set_ceiling(id, limit)?;
            match limit {
                Some(n) => output::println(&format!("ceiling of {} set to {} ({n} bytes)", value(&user), size(n)))?,
                None => output::println(&format!("ceiling of {} is the operator's again", value(&user)))?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
