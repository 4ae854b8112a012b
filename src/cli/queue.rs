//! `gatepost queue …`: list, show and cancel queued messages.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use gatepost::store::{QueueId, QueueState};

use super::open_store;
use super::output::{self, value};

#[derive(Subcommand)]
pub enum QueueCommand {
    /// List messages, newest first.
    List {
        #[arg(long)]
        user: Option<String>,
        /// held, due, sending, sent, failed or cancelled
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one message's record and timeline.
    Show {
        id: QueueId,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a held message (recorded, never forgotten).
    Cancel { id: QueueId },
}

pub fn run(config: &Path, cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(config)?;
    match cmd {
        QueueCommand::List { user, state, limit, json } => {
            let state = match state {
                Some(s) => Some(QueueState::parse(&s).ok_or_else(|| {
                    anyhow::anyhow!("unknown state {s:?}; use held, due, sending, sent, failed or cancelled")
                })?),
                None => None,
            };
            let recs = store.list_messages(user.as_deref(), state, limit)?;
            if json {
                output::println(&output::json(&recs)?)?;
            } else {
                let mut table = format!(
                    "{:<26} {:<10} {:<12} {:<22} {:<5} SUBJECT\n",
                    "ID", "STATE", "USER", "NEXT RELEASE (UTC)", "RCPTS"
                );
                for r in &recs {
                    let next = r.next_release().map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or("-".into());
                    table += &format!(
                        "{:<26} {:<10} {:<12} {:<22} {:<5} {}\n",
                        r.id,
                        r.state.as_str(),
                        value(&r.user),
                        next,
                        r.recipients.len(),
                        value(r.subject.as_deref().unwrap_or(""))
                    );
                }
                output::print(&table)?;
            }
        }
        QueueCommand::Show { id, json } => {
            let Some(rec) = store.get_message(id)? else {
                anyhow::bail!("no queued message {id}");
            };
            if json {
                output::println(&output::json(&rec)?)?;
            } else {
                output::print(&super::view::timeline(&rec))?;
            }
        }
        QueueCommand::Cancel { id } => {
            let rec = gatepost::queue::cancel(&store, id, "operator", jiff::Timestamp::now())?;
            output::println(&format!("message {} cancelled (state {})", rec.id, rec.state.as_str()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
