//! `gatepost store check`: is the store whole? The database file's integrity (redb verifies
//! every page checksum of the committed trees, as `serve` does after an unclean stop), then
//! every record and user decodes, every record has its body (with `--bodies`, one whose
//! SHA-256 matches), and which bodies have no record.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gatepost::store::{Integrity, Store, sha256_hex};
use indicatif::{ProgressBar, ProgressStyle};

use super::load_config;
use super::output::{self, value};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Verify the database file, every record and user, and the body files.
    Check {
        /// Also read every body and compare it with the SHA-256 in its record.
        #[arg(long)]
        bodies: bool,
    },
    /// Everything `check --bodies` does, then the mail store: every blob re-hashed, reference
    /// counts, memberships, mailbox counters and quota usage recounted. Runs beside `serve`.
    Verify,
    /// Delete blobs no message uses any more. With `serve` running it asks the server (the
    /// only process that writes blobs) and waits for it; otherwise it collects itself.
    Gc,
}

/// Problems listed one by one up to this many; beyond, counted.
const SHOWN: usize = 20;

pub fn run(config: &Path, cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Check { bodies } => check(config, bodies),
        StoreCommand::Gc => gc(config),
        StoreCommand::Verify => {
            let queue = check(config, true)?;
            let mail = verify_mail(config)?;
            Ok(if queue == ExitCode::SUCCESS { mail } else { queue })
        }
    }
}

fn gc(config: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let path = config.data_dir.join("mailstore.redb");
    if !path.exists() {
        output::println("mail store: none yet")?;
        return Ok(ExitCode::SUCCESS);
    }
    let db = gatepost::mailstore::MailDb::open(&path, gatepost::app::settings::quota_rule(&config))?;
    match gatepost::store::ServerLock::acquire(&config.data_dir) {
        Ok(_lock) => {
            let blobs = gatepost::blobs::files::FileBlobs::new(config.data_dir.join("blobs"));
            let c = db.collect(&blobs)?;
            output::println(&format!(
                "collected {} unreferenced blob(s), {} stray file(s), {} pack(s) ({} bytes)",
                c.blobs, c.debris, c.packs, c.pack_bytes
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(gatepost::store::LockError::Held { .. }) => {
            db.request_collection()?;
            output::println("asked the running server to collect")?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let (requested, last) = db.collection_state()?;
                if !requested {
                    output::println(&format!("collected {last} unreferenced blob(s)"))?;
                    return Ok(ExitCode::SUCCESS);
                }
            }
            anyhow::bail!("the server did not collect within 60 s; it will when it can (see its log)")
        }
        Err(e) => Err(e.into()),
    }
}

/// The mail store half of `store verify`.
fn verify_mail(config: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let path = config.data_dir.join("mailstore.redb");
    if !path.exists() {
        output::println("mail store: none yet (made at the first IMAP login)")?;
        return Ok(ExitCode::SUCCESS);
    }
    let db = gatepost::mailstore::MailDb::open(&path, gatepost::app::settings::quota_rule(&config))
        .with_context(|| format!("opening {}", path.display()))?;
    let blobs = gatepost::blobs::files::FileBlobs::new(config.data_dir.join("blobs"));
    let bar = progress(db.message_count()?);
    bar.set_message("messages");
    let report = db.verify(&blobs, || bar.inc(1))?;
    bar.finish_and_clear();
    let mut text = format!(
        "mail store: {} users, {} messages, {} blobs ({} bytes) re-hashed\n",
        report.users, report.messages, report.blobs, report.bytes
    );
    for p in report.problems.iter().take(SHOWN) {
        text += &format!("problem: {}\n", value(p));
    }
    if report.problems.len() > SHOWN {
        text += &format!("… and {} more problem(s)\n", report.problems.len() - SHOWN);
    }
    output::print(&text)?;
    if report.problems.is_empty() {
        output::println("mail store verify: OK")?;
        Ok(ExitCode::SUCCESS)
    } else {
        output::println(&format!("mail store verify: {} problem(s)", report.problems.len()))?;
        Ok(ExitCode::FAILURE)
    }
}

fn check(config: &Path, bodies: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let dir = &config.data_dir;
    let started = std::time::Instant::now();
    let store =
        Store::open_with(dir, Integrity::Verify).with_context(|| format!("checking the store in {}", dir.display()))?;
    output::println(&format!(
        "{}: integrity verified in {:.1} s",
        dir.join(gatepost::store::DB_FILE).display(),
        started.elapsed().as_secs_f64()
    ))?;
    let bar = progress(store.message_count()?);
    let mut problems: Vec<String> = Vec::new();
    let mut user_problems: Vec<String> = Vec::new();
    let (mut records, mut users) = (0u64, 0u64);
    store.scan_records(
        |id, rec| {
            records += 1;
            bar.inc(1);
            match rec {
                Err(e) => problems.push(format!("record {}: {e}", value(id))),
                Ok(rec) if bodies => match store.bodies().read(rec.id) {
                    Ok(b) if sha256_hex(&b) == rec.body_sha256 => {}
                    Ok(_) => problems.push(format!("record {}: its body does not match its SHA-256", value(id))),
                    Err(e) => problems.push(format!(
                        "record {}: body {}: {e}",
                        value(id),
                        store.bodies().path(rec.id).display()
                    )),
                },
                Ok(rec) if !store.bodies().exists(rec.id) => {
                    problems.push(format!("record {}: no body at {}", value(id), store.bodies().path(rec.id).display()))
                }
                Ok(_) => {}
            }
        },
        |name, user| {
            users += 1;
            if let Err(e) = user {
                user_problems.push(format!("user {}: {e}", value(name)));
            }
        },
    )?;
    bar.finish_and_clear();
    problems.extend(user_problems);
    let mut unrecorded = 0usize;
    store.bodies().scan(|shard| {
        let ids: Vec<&str> = shard.bodies.iter().map(|(id, _)| id.as_str()).collect();
        unrecorded += store.unknown_ids(ids).map_err(std::io::Error::other)?.len();
        Ok(())
    })?;
    let mut report = format!("{records} records, {users} users\n");
    if unrecorded > 0 {
        report += &format!(
            "{unrecorded} body file(s) without a record: debris of a crash (the next `serve` moves them to orphans/), or messages being submitted right now\n"
        );
    }
    for p in problems.iter().take(SHOWN) {
        report += &format!("problem: {p}\n");
    }
    if problems.len() > SHOWN {
        report += &format!("… and {} more problem(s)\n", problems.len() - SHOWN);
    }
    output::print(&report)?;
    if problems.is_empty() {
        output::println("store check: OK")?;
        Ok(ExitCode::SUCCESS)
    } else {
        output::println(&format!("store check: {} problem(s)", problems.len()))?;
        Ok(ExitCode::FAILURE)
    }
}

fn progress(total: u64) -> ProgressBar {
    if total < 10_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("checking records {bar:40} {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
