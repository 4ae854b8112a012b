//! An account's sync as the CLI shows it: the status the syncing server writes to the mail
//! store (`account show`), and following it with a progress bar (`account add`, `account
//! show --follow`). Only `serve` syncs; these only read.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use gatepost::config::Config;
use gatepost::mailstore::MailDb;
use gatepost::mailstore::db::SyncStatus;
use indicatif::{ProgressBar, ProgressStyle};

use super::output;

fn open_mail(config: &Config) -> anyhow::Result<MailDb> {
    Ok(MailDb::open(&config.data_dir.join("mailstore.redb"), gatepost::app::settings::quota_rule(config))?)
}

/// The account's sync status, if the server has started syncing it.
pub fn status(config: &Config, user: &str, name: &str) -> anyhow::Result<Option<SyncStatus>> {
    if !config.data_dir.join("mailstore.redb").exists() {
        return Ok(None);
    }
    let db = open_mail(config)?;
    let Some(id) = db.find_user(user)? else { return Ok(None) };
    Ok(db.find_sync_account(id, name)?.map(|s| s.status))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// `account show`'s lines about sync.
pub fn lines(status: Option<&SyncStatus>, server_running: bool) -> Vec<(&'static str, String)> {
    let Some(s) = status else {
        let why = if server_running { "not started yet" } else { "not started: sync runs in gatepost serve" };
        return vec![("sync", why.to_string())];
    };
    let mut out = vec![("sync", s.phase.clone())];
    if let Some(p) = &s.problem {
        let since = s.problem_since.map(|t| format!(" since {t}")).unwrap_or_default();
        out.push(("problem", format!("{p}{since}")));
    }
    if let Some(t) = s.quota_paused_since {
        out.push(("import paused", format!("the quota is full since {t}; resumes when there is room")));
    }
    out.push(("first import", if s.first_import_done { "done" } else { "in progress" }.into()));
    if s.pass_messages > 0 && s.done_messages < s.pass_messages {
        out.push((
            "this pass",
            format!(
                "{} of {} messages, {} of {}",
                s.done_messages,
                s.pass_messages,
                mib(s.done_bytes),
                mib(s.pass_bytes)
            ),
        ));
    }
    out.push(("imported", format!("{} messages, {}", s.imported_messages, mib(s.imported_bytes))));
    out.push(("last sync", s.last_sync.map_or_else(|| "never".into(), |t| t.to_string())));
    for (folder, uid, size) in &s.too_large {
        out.push(("too large", format!("{folder} UID {uid}: {} (over [imap] max_append_size)", mib(*size))));
    }
    out
}

/// Follow the account's sync until its first import is done (or a problem is reported).
pub fn follow(config_path: &Path, config: &Config, user: &str, name: &str) -> anyhow::Result<ExitCode> {
    let _ = config_path;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} messages, {bytes_per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("waiting for the server to start the account's sync");
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        if let Some(s) = status(config, user, name)? {
            if s.phase == "failing"
                && let Some(p) = &s.problem
            {
                bar.finish_and_clear();
                output::eprintln(&format!("gatepost: sync of {name} failing: {}", output::value(p)));
                return Ok(ExitCode::FAILURE);
            }
            bar.set_length(s.pass_messages);
            bar.set_position(s.done_messages);
            bar.set_message(format!("{} {}", s.phase, mib(s.done_bytes)));
            if s.first_import_done && s.pass_messages == s.done_messages {
                bar.finish_and_clear();
                let paused = s.quota_paused_since.map(|_| " (paused: the quota is full)").unwrap_or_default();
                output::println(&format!(
                    "{name}: first import done, {} messages, {}{paused}",
                    s.imported_messages,
                    mib(s.imported_bytes)
                ))?;
                return Ok(ExitCode::SUCCESS);
            }
            if s.quota_paused_since.is_some() {
                bar.finish_and_clear();
                output::println(&format!("{name}: import paused, the quota is full; it resumes when there is room"))?;
                return Ok(ExitCode::SUCCESS);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
