//! `gatepost queue …`: list, show and cancel queued messages.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use gatepost::store::{MessageRecord, MessageState};

use super::open_store;

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
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a held message (recorded, never forgotten).
    Cancel { id: String },
}

pub fn run(config: &Path, cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(config)?;
    match cmd {
        QueueCommand::List { user, state, limit, json } => {
            let state = match state {
                Some(s) => Some(MessageState::parse(&s).ok_or_else(|| {
                    anyhow::anyhow!("unknown state {s:?}; use held, due, sending, sent, failed or cancelled")
                })?),
                None => None,
            };
            let recs = store.list_messages(user.as_deref(), state, limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&recs)?);
            } else {
                println!(
                    "{:<26} {:<10} {:<12} {:<22} {:<5} SUBJECT",
                    "ID", "STATE", "USER", "NEXT RELEASE (UTC)", "RCPTS"
                );
                for r in &recs {
                    let next = r.next_release().map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or("-".into());
                    let subject = r.subject.as_deref().unwrap_or("");
                    println!(
                        "{:<26} {:<10} {:<12} {:<22} {:<5} {subject}",
                        r.id,
                        r.state.as_str(),
                        r.user,
                        next,
                        r.recipients.len()
                    );
                }
            }
        }
        QueueCommand::Show { id, json } => {
            let Some(rec) = store.get_message(&id)? else {
                anyhow::bail!("no queued message {id}");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&rec)?);
            } else {
                print!("{}", show(&rec));
            }
        }
        QueueCommand::Cancel { id } => {
            let rec = gatepost::queue::cancel(&store, &id, "operator", jiff::Timestamp::now())?;
            println!("message {} cancelled (state {})", rec.id, rec.state.as_str());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(r: &MessageRecord) -> String {
    let tz = jiff::tz::TimeZone::get(&r.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let local = |t: jiff::Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
    let mut s = format!("queue id:     {}\nstate:        {}\nuser:         {}\n", r.id, r.state.as_str(), r.user);
    let name = r.sender_name.as_deref().map(|n| format!("\"{n}\" ")).unwrap_or_default();
    s += &format!("sender:       {name}<{}>\nsubject:      {}\n", r.sender, r.subject.as_deref().unwrap_or(""));
    s += &format!("message-id:   {}\nsize:         {} octets\n", r.message_id.as_deref().unwrap_or("-"), r.size);
    s += &format!("client:       {} via {} (HELO {})\n", r.client, r.tls.as_deref().unwrap_or("plaintext"), r.helo);
    s += &format!("submitted:    {}\nsession:      {}\nrecipients:\n", local(r.submitted_at), r.session_id);
    for rc in &r.recipients {
        s += &format!(
            "  {:<40} {:<10} release {} ({})\n",
            rc.address,
            rc.state.as_str(),
            local(rc.release_at),
            rc.source
        );
        if let Some(next) = rc.next_attempt_at.filter(|_| rc.state.is_pending()) {
            s += &format!("  {:<40} next attempt {}\n", "", local(next));
        }
        if let Some(err) = &rc.last_error {
            s += &format!("  {:<40} last error: {err}\n", "");
        }
    }
    if !r.attempts.is_empty() {
        s += "attempts:\n";
    }
    for (i, a) in r.attempts.iter().enumerate() {
        let ips = match (&a.relay_ip, &a.system_ip) {
            (Some(relay), Some(system)) => format!("relay {relay} from {system}"),
            _ => "no connection".into(),
        };
        let finished = a.finished_at.map(local).unwrap_or_else(|| "(unfinished)".into());
        s +=
            &format!("  {}. {} -> {}  {}  to {}\n", i + 1, local(a.started_at), finished, ips, a.recipients.join(", "));
        if let Some(reply) = &a.reply {
            s += &format!("     reply: {reply}\n");
        }
    }
    s += "timeline:\n";
    for e in &r.events {
        s += &format!("  {}  {:<10} {}\n", local(e.at), e.kind, e.detail);
    }
    s
}
