//! `gatepost trace …`: search the audit trail, show one message's timeline, rebuild the index.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gatepost::audit::document::POSSIBLY_DELIVERED;
use gatepost::audit::query::{End, check_range, parse_ip, parse_time};
use gatepost::audit::{IndexError, TraceIndex, TraceQuery};
use gatepost::store::{EventKind, QueueId, QueueRecord, QueueState, Store};
use indicatif::{ProgressBar, ProgressStyle};

use super::open_store;
use super::output::{self, value};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: Option<TraceCommand>,
    #[command(flatten)]
    filters: Filters,
}

#[derive(Subcommand)]
enum TraceCommand {
    /// The whole record and timeline of one message.
    Show {
        id: QueueId,
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the search index from the store (also while `gatepost serve` runs).
    Reindex,
}

/// Times: 2026-11-23 (whole day), 2026-11-23 14:30, an RFC 3339 instant, now, today,
/// yesterday, or an age like 12h / 7d; local times are in the configured schedule.timezone.
#[derive(Args, Default)]
struct Filters {
    /// Envelope sender, or @domain.
    #[arg(long)]
    sender: Option<String>,
    /// Any recipient (as typed or without its date tag), or @domain.
    #[arg(long)]
    recipient: Option<String>,
    /// gatepost user name.
    #[arg(long)]
    user: Option<String>,
    /// Submitted (composed) at or after.
    #[arg(long)]
    since: Option<String>,
    /// Submitted before (a date: through its end).
    #[arg(long)]
    until: Option<String>,
    /// Delivered to the relay at or after.
    #[arg(long)]
    sent_since: Option<String>,
    /// Delivered to the relay before.
    #[arg(long)]
    sent_until: Option<String>,
    #[arg(long)]
    client_ip: Option<String>,
    #[arg(long)]
    relay_ip: Option<String>,
    #[arg(long)]
    system_ip: Option<String>,
    /// Words that must all be in the subject.
    #[arg(long)]
    subject: Option<String>,
    /// Words that must all be in the subject or the text of the message.
    #[arg(long)]
    text: Option<String>,
    /// held, due, sending, sent, failed or cancelled; or possibly-delivered.
    #[arg(long)]
    state: Option<String>,
    /// `system` (the system relay), or the connected account the mail was sent as.
    #[arg(long)]
    route: Option<String>,
    /// Most records shown, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Path, args: TraceArgs) -> anyhow::Result<ExitCode> {
    let (config, store) = open_store(config)?;
    match args.command {
        Some(TraceCommand::Show { id, json }) => {
            let Some(rec) = store.get_message(id)? else {
                anyhow::bail!("no record of message {id} (never submitted, or removed by trace.retention)");
            };
            if json {
                output::println(&output::json(&rec)?)?;
            } else {
                output::print(&super::view::timeline(&rec))?;
            }
        }
        Some(TraceCommand::Reindex) => {
            let index = TraceIndex::open(&config.data_dir, &store)?;
            let n = store.trace_request_rebuild()?;
            match index.writer() {
                Ok(mut writer) => {
                    let bar = progress(n, "indexing");
                    writer.catch_up(&store, |k| bar.inc(k as u64))?;
                    bar.finish_and_clear();
                    output::println(&format!("trace index rebuilt: {} records", index.document_count()?))?;
                }
                Err(IndexError::Busy) => output::println(&format!(
                    "the running gatepost serve holds the index; it will rebuild it ({n} records) within seconds"
                ))?,
                Err(e) => return Err(e.into()),
            }
        }
        None => return search(&config, &store, args.filters),
    }
    Ok(ExitCode::SUCCESS)
}

fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// Every bad filter reported at once.
fn build_query(f: &Filters, tz: &jiff::tz::TimeZone) -> Result<TraceQuery, Vec<String>> {
    let now = jiff::Timestamp::now();
    let mut errors = Vec::new();
    let mut time = |flag: &str, v: &Option<String>, end: End| {
        v.as_deref().and_then(|v| parse_time(v, end, now, tz).map_err(|e| errors.push(format!("--{flag}: {e}"))).ok())
    };
    let (since, until) = (time("since", &f.since, End::From), time("until", &f.until, End::To));
    let (sent_since, sent_until) =
        (time("sent-since", &f.sent_since, End::From), time("sent-until", &f.sent_until, End::To));
    let mut ip = |flag: &str, v: &Option<String>| {
        v.as_deref().and_then(|v| parse_ip(v).map_err(|e| errors.push(format!("--{flag}: {e}"))).ok())
    };
    let (client_ip, relay_ip, system_ip) =
        (ip("client-ip", &f.client_ip), ip("relay-ip", &f.relay_ip), ip("system-ip", &f.system_ip));
    let possibly_delivered = f.state.as_deref() == Some(POSSIBLY_DELIVERED);
    let state = f.state.as_deref().filter(|_| !possibly_delivered).and_then(|s| {
        QueueState::parse(s).or_else(|| {
            errors.push(format!(
                "--state: unknown state {s:?}; use held, due, sending, sent, failed, cancelled or possibly-delivered"
            ));
            None
        })
    });
    for (what, from, to) in [("--since/--until", since, until), ("--sent-since/--sent-until", sent_since, sent_until)] {
        if let Err(e) = check_range(what, from, to) {
            errors.push(e);
        }
    }
    if f.limit == 0 {
        errors.push("--limit: must be at least 1".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(TraceQuery {
        user: f.user.clone(),
        sender: f.sender.clone(),
        recipient: f.recipient.clone(),
        since,
        until,
        sent_since,
        sent_until,
        client_ip,
        relay_ip,
        system_ip,
        subject: f.subject.clone(),
        text: f.text.clone(),
        state,
        route: f.route.clone(),
        possibly_delivered,
        limit: f.limit,
    })
}

fn search(config: &gatepost::config::Config, store: &Store, f: Filters) -> anyhow::Result<ExitCode> {
    let query = match build_query(&f, &config.schedule.timezone) {
        Ok(q) => q,
        Err(errors) => {
            for e in errors {
                output::eprintln(&format!("gatepost trace: {e}"));
            }
            return Ok(ExitCode::from(2));
        }
    };
    let index = TraceIndex::open(&config.data_dir, store)?;
    // Server down: bring the index up to date first. Server up: it does so every two seconds.
    match index.writer() {
        Ok(mut writer) => {
            let pending = store.trace_pending_count()?;
            let bar =
                if pending > 10_000 { progress(pending, "updating the trace index") } else { ProgressBar::hidden() };
            writer.catch_up(store, |k| bar.inc(k as u64))?;
            bar.finish_and_clear();
        }
        Err(IndexError::Busy) => {
            let pending = store.trace_pending_count()?;
            if pending > 0 {
                output::eprintln(&format!(
                    "note: {pending} recent change(s) are still being indexed by the running server"
                ));
            }
        }
        Err(e) => return Err(e.into()),
    }
    let hits = match index.search(&query) {
        Ok(hits) => hits,
        // A filter the index cannot use (`--text '!!!'`: no words) is a bad filter like the others.
        Err(IndexError::Query(e)) => {
            output::eprintln(&format!("gatepost trace: {e}"));
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let mut records = Vec::with_capacity(hits.ids.len());
    for id in hits.ids.iter().filter_map(|id| id.parse::<QueueId>().ok()) {
        if let Some(rec) = store.get_message(id)? {
            records.push(rec);
        }
    }
    if f.json {
        let out = serde_json::json!({ "total": hits.total, "shown": records.len(), "records": records });
        output::println(&output::json(&out)?)?;
    } else {
        output::print(&table(&records, &config.schedule.timezone))?;
        output::eprintln(&format!("{} of {} matching record(s), newest first", records.len(), hits.total));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(records: &[QueueRecord], tz: &jiff::tz::TimeZone) -> String {
    let when = |t: jiff::Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
    let mut s = format!(
        "{:<26} {:<16} {:<9} {:<28} {:<28} {:<16} SUBJECT\n",
        "ID", "SUBMITTED", "STATE", "SENDER", "RECIPIENTS", "SENT"
    );
    for r in records {
        let mut rcpts = r.recipients.first().map(|x| value(&x.address).into_owned()).unwrap_or_default();
        if r.recipients.len() > 1 {
            rcpts += &format!(" +{}", r.recipients.len() - 1);
        }
        let sent =
            r.events.iter().rev().find(|e| e.kind == EventKind::Delivered).map(|e| when(e.at)).unwrap_or("-".into());
        s += &format!(
            "{:<26} {:<16} {:<9} {:<28} {:<28} {:<16} {}\n",
            r.id,
            when(r.submitted_at),
            r.state.as_str(),
            value(&r.sender),
            rcpts,
            sent,
            value(r.subject.as_deref().unwrap_or(""))
        );
    }
    s
}
