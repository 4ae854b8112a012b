//! One sync pass over an account's folders (docs/accounts.md, "Sync"): LIST, then per folder
//! SELECT, list UIDs and flags (all of them, or with CONDSTORE those changed since the last
//! pass), plan (`plan.rs`), apply, write flags back, and fetch what is new in ranged batches
//! filed one commit per batch. Every command has a deadline (async-imap has none of its own),
//! and each stage commits before the next, so a pass cut anywhere resumes where it stopped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;

use super::connect::{COMMAND_BUDGET, Session};
use super::plan::{self, Listing};
use crate::mailstore::MailStore;
use crate::mailstore::db::{Destination, FolderSync, Imported, MailError, RemoteMessage, TOO_LARGE_LISTED};

/// A command's deadline; a FETCH stream's deadline per response.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// A fetch batch: at most this many messages and (past the first) this many bytes in memory.
pub const BATCH_MESSAGES: usize = 500;
pub const BATCH_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the source server: {0}")]
    Server(String),
    #[error("timed out waiting for the source server")]
    Timeout,
    #[error(transparent)]
    Store(#[from] MailError),
}

impl From<async_imap::error::Error> for SyncError {
    fn from(e: async_imap::error::Error) -> Self {
        SyncError::Server(super::connect::escape(&e.to_string()))
    }
}

pub(super) async fn timed<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, SyncError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(SyncError::Timeout),
    }
}

/// Everything a pass needs to know about the account it syncs.
pub struct Ctx {
    pub store: Arc<MailStore>,
    pub user: u32,
    pub account_name: String,
    pub account: u32,
    /// The unified INBOX: a source INBOX message is a member there too.
    pub inbox: u32,
    /// `[imap] max_append_size`: larger messages are listed in the status, not fetched.
    pub max_size: u64,
    pub condstore: bool,
    /// Each command's deadline, and each FETCH response's ([`COMMAND_TIMEOUT`]).
    pub timeout: Duration,
    /// gatepost's host name, for the notices it files.
    pub hostname: String,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub filed: u64,
    pub found: u64,
    pub bytes: u64,
    pub removed: u64,
    pub from_source: u64,
    pub pushed: u64,
    /// The user's quota stopped the import; the rest waits for room.
    pub quota_full: bool,
}

/// A source folder as LIST names it.
#[derive(Debug, Clone)]
pub struct RemoteFolder {
    pub name: String,
    pub delimiter: Option<String>,
    pub role: Option<String>,
}

pub(super) fn db<T>(
    ctx: &Ctx,
    f: impl FnOnce(&crate::mailstore::MailDb) -> Result<T, MailError> + Send + 'static,
) -> impl Future<Output = Result<T, SyncError>>
where
    T: Send + 'static,
{
    let store = ctx.store.clone();
    async move {
        match tokio::task::spawn_blocking(move || f(&store.db)).await {
            Ok(r) => Ok(r?),
            Err(e) => Err(SyncError::Store(MailError::Db(format!("sync task failed: {e}")))),
        }
    }
}

/// EXAMINE a folder; its EXISTS.
pub(super) async fn examine(session: &mut Session, ctx: &Ctx, name: &str) -> Result<u32, SyncError> {
    session.get_mut().allow(COMMAND_BUDGET);
    timed(ctx.timeout, session.examine(name)).await.map(|m| m.exists)
}

/// EXAMINE the source INBOX (before IDLE).
pub async fn select_inbox(session: &mut Session, limit: Duration) -> Result<(), SyncError> {
    session.get_mut().allow(COMMAND_BUDGET);
    timed(limit, session.examine("INBOX")).await.map(|_| ())
}

fn flag_text(f: &async_imap::types::Flag<'_>) -> String {
    use async_imap::types::Flag;
    match f {
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::Recent => "\\Recent".into(),
        Flag::MayCreate => "\\*".into(),
        Flag::Custom(c) => c.to_string(),
    }
}

/// Collect a FETCH response stream, each response within the deadline.
async fn collect_fetches<S>(limit: Duration, mut stream: S) -> Result<Vec<async_imap::types::Fetch>, SyncError>
where
    S: futures_util::Stream<Item = Result<async_imap::types::Fetch, async_imap::error::Error>> + Unpin,
{
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(limit, stream.next()).await {
            Ok(Some(f)) => out.push(f?),
            Ok(None) => return Ok(out),
            Err(_) => return Err(SyncError::Timeout),
        }
    }
}

pub(super) async fn uid_fetch(
    session: &mut Session,
    limit: Duration,
    set: &str,
    query: &str,
) -> Result<Vec<async_imap::types::Fetch>, SyncError> {
    uid_fetch_within(session, limit, COMMAND_BUDGET, set, query).await
}

/// [`uid_fetch`], reading at most `budget` bytes (a batch of bodies: what the sizes said).
async fn uid_fetch_within(
    session: &mut Session,
    limit: Duration,
    budget: u64,
    set: &str,
    query: &str,
) -> Result<Vec<async_imap::types::Fetch>, SyncError> {
    session.get_mut().allow(budget);
    let stream = timed(limit, session.uid_fetch(set, query)).await?;
    collect_fetches(limit, stream).await
}

/// One folder: select, list, plan, apply, push, fetch. Returns the updated record.
pub async fn sync_folder(
    session: &mut Session,
    ctx: &Ctx,
    folder: &RemoteFolder,
    mut rec: FolderSync,
    report: &mut Report,
) -> Result<FolderSync, SyncError> {
    let (user, account, mailbox) = (ctx.user, ctx.account, rec.mailbox);
    session.get_mut().allow(COMMAND_BUDGET);
    let selected = if ctx.condstore {
        timed(ctx.timeout, session.select_condstore(&folder.name)).await?
    } else {
        timed(ctx.timeout, session.examine(&folder.name)).await?
    };
    let uidvalidity = selected.uid_validity.unwrap_or(0);
    let uidnext = selected.uid_next.unwrap_or(0);
    let highest = selected.highest_modseq.unwrap_or(0);
    if rec.uidvalidity != 0 && rec.uidvalidity != uidvalidity {
        tracing::info!(account = %ctx.account_name, folder = %folder.name, old = rec.uidvalidity, new = uidvalidity,
            "UIDVALIDITY changed at the source: re-listing the folder, matching by content");
        rec = FolderSync { uidvalidity, uidnext: 0, highestmodseq: 0, exists: 0, ..rec };
        let (name, r) = (folder.name.clone(), rec.clone());
        db(ctx, move |d| d.reset_sync_folder(user, account, &name, &r)).await?;
    }
    if rec.uidvalidity == 0 {
        // Recorded before anything is fetched, so a change after a crash is still noticed.
        rec.uidvalidity = uidvalidity;
        let (name, r) = (folder.name.clone(), rec.clone());
        db(ctx, move |d| d.put_sync_folder(user, account, &name, &r)).await?;
    }
    let incremental = ctx.condstore && highest != 0 && rec.highestmodseq != 0 && rec.uidvalidity == uidvalidity;
    // Nothing changed at the source since the last pass, and nothing here waits to go there.
    let known = db(ctx, move |d| d.synced(user, mailbox)).await?;
    let quiet = incremental
        && highest == rec.highestmodseq
        && uidnext == rec.uidnext
        && selected.exists == rec.exists
        && known.iter().all(|k| {
            k.local
                .as_ref()
                .is_none_or(|l| crate::mailstore::db::same_flags(&plan::normalize(l), &plan::normalize(&k.seen)))
        });
    if quiet {
        return Ok(rec);
    }
    let mut listing = Listing::default();
    if selected.exists > 0 {
        // A listing is about 100 bytes a message.
        let budget = COMMAND_BUDGET + u64::from(selected.exists) * 200;
        session.get_mut().allow(budget);
        if incremental {
            listing.uids = timed(ctx.timeout, session.uid_search("ALL")).await?.into_iter().collect();
            let changed = uid_fetch_within(
                session,
                ctx.timeout,
                budget,
                "1:*",
                &format!("(UID FLAGS) (CHANGEDSINCE {})", rec.highestmodseq),
            )
            .await?;
            for f in changed {
                if let Some(uid) = f.uid {
                    listing.flags.insert(uid, f.flags().map(|f| flag_text(&f)).collect());
                }
            }
        } else {
            for f in uid_fetch_within(session, ctx.timeout, budget, "1:*", "(UID FLAGS)").await? {
                if let Some(uid) = f.uid {
                    listing.uids.insert(uid);
                    listing.flags.insert(uid, f.flags().map(|f| flag_text(&f)).collect());
                }
            }
        }
    }
    let mut the_plan = plan::plan(&listing, &known);
    report.removed += the_plan.changes.removed.len() as u64;
    report.from_source += the_plan.changes.from_source.len() as u64;
    let changes = std::mem::take(&mut the_plan.changes);
    db(ctx, move |d| d.apply_sync(user, mailbox, &changes)).await?;
    if !the_plan.push.is_empty() {
        push_flags(session, ctx, folder, mailbox, &the_plan.push, report).await?;
    }
    if !the_plan.fetch.is_empty() {
        fetch_new(session, ctx, folder, &rec, &the_plan.fetch, report).await?;
    }
    if !report.quota_full {
        rec = FolderSync { uidvalidity, uidnext, highestmodseq: highest, exists: selected.exists, ..rec };
        let (name, r) = (folder.name.clone(), rec.clone());
        db(ctx, move |d| d.put_sync_folder(user, account, &name, &r)).await?;
    }
    Ok(rec)
}

/// Write local flag changes to the source (the one write gatepost makes there besides the
/// send-as Sent copy). The folder was selected read-write only if CONDSTORE made it so; a
/// read-only EXAMINE is re-done as SELECT first.
async fn push_flags(
    session: &mut Session,
    ctx: &Ctx,
    folder: &RemoteFolder,
    mailbox: u32,
    push: &[plan::Push],
    report: &mut Report,
) -> Result<(), SyncError> {
    if !ctx.condstore {
        timed(ctx.timeout, session.select(&folder.name)).await?;
    }
    let mut done = Vec::new();
    for p in push {
        session.get_mut().allow(COMMAND_BUDGET);
        for (op, flags) in [("+FLAGS.SILENT", &p.add), ("-FLAGS.SILENT", &p.remove)] {
            if flags.is_empty() {
                continue;
            }
            let stream =
                timed(ctx.timeout, session.uid_store(p.uid.to_string(), format!("{op} ({})", flags.join(" ")))).await?;
            collect_fetches(ctx.timeout, stream).await?;
        }
        done.push((p.uid, p.result.clone()));
    }
    report.pushed += done.len() as u64;
    let user = ctx.user;
    let changes = crate::mailstore::db::FolderChanges { written_back: done, ..Default::default() };
    db(ctx, move |d| d.apply_sync(user, mailbox, &changes)).await
}

/// Fetch the new UIDs in batches and file each batch in one commit.
async fn fetch_new(
    session: &mut Session,
    ctx: &Ctx,
    folder: &RemoteFolder,
    rec: &FolderSync,
    uids: &[u32],
    report: &mut Report,
) -> Result<(), SyncError> {
    let mut sizes = Vec::with_capacity(uids.len());
    for set in plan::uid_sets(uids, 2000) {
        for f in uid_fetch(session, ctx.timeout, &set, "(UID RFC822.SIZE)").await? {
            if let (Some(uid), Some(size)) = (f.uid, f.size) {
                sizes.push((uid, u64::from(size)));
            }
        }
    }
    sizes.sort_unstable();
    let sizes_of: BTreeMap<u32, u64> = sizes.iter().copied().collect();
    let (fits, too_large): (Vec<_>, Vec<_>) = sizes.into_iter().partition(|(_, s)| *s <= ctx.max_size);
    let (user, name) = (ctx.user, ctx.account_name.clone());
    if !too_large.is_empty() {
        let folder_name = folder.name.clone();
        db(ctx, move |d| {
            d.update_sync_status(user, &name, |s| {
                for (uid, size) in too_large {
                    if s.too_large.len() < TOO_LARGE_LISTED
                        && !s.too_large.iter().any(|t| t.0 == folder_name && t.1 == uid)
                    {
                        s.too_large.push((folder_name.clone(), uid, size));
                    }
                }
            })
        })
        .await?;
    }
    let (pass_messages, pass_bytes) = (fits.len() as u64, fits.iter().map(|s| s.1).sum::<u64>());
    let name = ctx.account_name.clone();
    db(ctx, move |d| {
        d.update_sync_status(user, &name, |s| {
            s.pass_messages += pass_messages;
            s.pass_bytes += pass_bytes;
        })
    })
    .await?;
    let pair = folder.name.eq_ignore_ascii_case("INBOX").then_some(ctx.inbox);
    // One batch is filed (hashed, compressed, made durable, committed: on the blocking pool)
    // while the next is fetched; at most two batches are in memory.
    let mut filing: Option<tokio::task::JoinHandle<Result<Filed, MailError>>> = None;
    for batch in plan::batches(&fits, BATCH_MESSAGES, BATCH_BYTES) {
        let set = plan::uid_sets(&batch, batch.len()).remove(0);
        // What the sizes announced, plus room for the responses around the bodies.
        let budget = batch.iter().map(|u| sizes_of.get(u).copied().unwrap_or(0) + 1024).sum::<u64>() + (1 << 20);
        let mut fetched =
            uid_fetch_within(session, ctx.timeout, budget, &set, "(UID FLAGS INTERNALDATE BODY.PEEK[])").await?;
        // The responses themselves go to the filing thread: their bodies are not copied.
        fetched.retain(|f| f.uid.is_some() && f.body().is_some());
        fetched.sort_by_key(|f| f.uid);
        if let Some(previous) = filing.take() {
            settle_batch(previous, report).await?;
            if report.quota_full {
                return Ok(());
            }
        }
        let to = (ctx.account, rec.mailbox, pair, folder.name.clone(), rec.uidvalidity);
        filing = Some(tokio::task::spawn_blocking({
            let (store, name) = (ctx.store.clone(), ctx.account_name.clone());
            move || file_batch(&store, user, &name, to, fetched)
        }));
    }
    if let Some(previous) = filing.take() {
        settle_batch(previous, report).await?;
    }
    Ok(())
}

/// What filing one batch did.
struct Filed {
    filed: u64,
    found: u64,
    bytes: u64,
    quota_full: bool,
    failed: Option<MailError>,
}

/// File a fetched batch, counted in the status by the same commit (blocking: hashing,
/// compression, fsync).
fn file_batch(
    store: &MailStore,
    user: u32,
    name: &str,
    (account, mailbox, pair, remote, uidvalidity): (u32, u32, Option<u32>, String, u32),
    fetched: Vec<async_imap::types::Fetch>,
) -> Result<Filed, MailError> {
    let batch: Vec<RemoteMessage<'_>> = fetched
        .iter()
        .filter_map(|f| {
            let (uid, raw) = (f.uid?, f.body()?);
            let internaldate = f
                .internal_date()
                .and_then(|d| Timestamp::from_second(d.timestamp()).ok())
                .unwrap_or_else(Timestamp::now);
            let flags = plan::normalize(&f.flags().map(|f| flag_text(&f)).collect::<Vec<_>>());
            Some(RemoteMessage { uid, raw, flags, internaldate })
        })
        .collect();
    let to = Destination { name, account, mailbox, pair, folder: &remote, uidvalidity };
    let outcomes = store.db.file_remote(store.blobs.as_ref(), user, &to, &batch)?;
    store.changed(user);
    let mut out = Filed { filed: 0, found: 0, bytes: 0, quota_full: false, failed: None };
    for (o, m) in outcomes.into_iter().zip(&batch) {
        match o {
            Ok(Imported::Filed) => {
                out.filed += 1;
                out.bytes += m.raw.len() as u64;
            }
            Ok(Imported::Found | Imported::Tombstone) => out.found += 1,
            Err(MailError::OverQuota(_)) => out.quota_full = true,
            Err(e) => out.failed = Some(e),
        }
    }
    Ok(out)
}

async fn settle_batch(
    filing: tokio::task::JoinHandle<Result<Filed, MailError>>,
    report: &mut Report,
) -> Result<(), SyncError> {
    let done = match filing.await {
        Ok(r) => r?,
        Err(e) => return Err(SyncError::Store(MailError::Db(format!("a filing task failed: {e}")))),
    };
    report.filed += done.filed;
    report.found += done.found;
    report.bytes += done.bytes;
    report.quota_full |= done.quota_full;
    match done.failed {
        Some(e) => Err(SyncError::Store(e)),
        None => Ok(()),
    }
}
