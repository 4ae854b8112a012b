//! Keeping one account in sync while `serve` runs (docs/accounts.md, "Push and polling"): log
//! in, a full pass over every folder, then wait on the source INBOX (`push`: IDLE, or a NOOP
//! every 15 s where the server has no IDLE), a pass over INBOX when it speaks, over the
//! folders holding local flag changes when the user makes some, and over everything every
//! poll interval. A failure is recorded in the status with its time and retried with backoff
//! and jitter.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::connect::{CheckError, Session, Target, connect};
use super::pass::{self, Ctx, RemoteFolder, Report, SyncError};
use crate::mailstore::MailStore;
use crate::mailstore::db::{FolderSync, MailError};
use crate::net::server_url::ServerUrl;
use crate::secrets::{SealKey, owner};
use crate::store::ConnectedAccount;

pub use super::push::IDLE_RENEW;
use super::push::{Woke, idle_until, noop_until, wait_until};
/// Reconnect backoff: from this, doubling, to `BACKOFF_MAX`, with ±25 % jitter.
const BACKOFF_MIN: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Local flag changes wait this long for more before they are written back together.
const WRITE_BACK_DEBOUNCE: Duration = Duration::from_millis(300);

/// What every account task shares.
pub struct SyncEnv {
    pub store: Arc<MailStore>,
    pub key: Option<SealKey>,
    pub poll_interval: Duration,
    pub max_size: u64,
    pub step_timeout: Duration,
    pub hostname: String,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("{0}")]
    Check(CheckError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("{0}")]
    Setup(String),
}

impl From<CheckError> for Stopped {
    fn from(e: CheckError) -> Self {
        Stopped::Check(e)
    }
}

impl From<MailError> for Stopped {
    fn from(e: MailError) -> Self {
        Stopped::Sync(SyncError::Store(e))
    }
}

impl From<async_imap::error::Error> for Stopped {
    fn from(e: async_imap::error::Error) -> Self {
        Stopped::Sync(e.into())
    }
}

fn set_phase(env: &SyncEnv, user: u32, name: &str, phase: &str) {
    let phase = phase.to_string();
    if let Err(e) = env.store.db.update_sync_status(user, name, |s| {
        s.phase = phase;
        s.updated_at = Some(Timestamp::now());
    }) {
        tracing::warn!(error = %e, account = name, "cannot record an account's sync status");
    }
}

/// The account's task: runs until `stop` turns true. Never returns an error: problems are
/// the account's status.
pub async fn run(env: Arc<SyncEnv>, account: ConnectedAccount, mut stop: watch::Receiver<bool>) {
    let name = account.name.clone();
    let setup = (|| {
        let user = env.store.db.user(&account.user, Timestamp::now())?;
        let sync = env.store.db.sync_account(user, &name)?;
        Ok::<_, MailError>((user, sync.id))
    })();
    let (user, id) = match setup {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, account = %name, user = %account.user, "cannot start an account's sync");
            return;
        }
    };
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        set_phase(&env, user, &name, "connecting");
        // A stop during a pass ends it where it is: every stage has committed before the next.
        let mut inner = stop.clone();
        let outcome = tokio::select! {
            r = connected(&env, &account, user, id, &mut inner) => r,
            _ = stop.changed() => Ok(()),
        };
        match outcome {
            Ok(()) => return,
            Err(e) => {
                failures = failures.saturating_add(1);
                let what = e.to_string();
                tracing::warn!(account = %name, user = %account.user, failures, problem = %what, "account sync stopped; will retry");
                let _ = env.store.db.update_sync_status(user, &name, |s| {
                    if s.problem.is_none() {
                        s.problem_since = Some(Timestamp::now());
                    }
                    s.problem = Some(what);
                    s.phase = "failing".into();
                    s.updated_at = Some(Timestamp::now());
                });
                let wait = backoff(failures);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// The wait before reconnect attempt `n` (1-based): doubling from 5 s to 15 min, ±25 %.
pub fn backoff(n: u32) -> Duration {
    let base = BACKOFF_MIN.saturating_mul(1 << n.saturating_sub(1).min(16)).min(BACKOFF_MAX);
    let jitter = ring_random_u32() % 501; // 0..=500 ‰ of half the base: ±25 %
    base.mul_f64(0.75 + f64::from(jitter) / 1000.0)
}

fn ring_random_u32() -> u32 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u32::from_le_bytes(b)
}

/// One connection's life: log in, pass, then push and polling until something fails.
async fn connected(
    env: &SyncEnv,
    account: &ConnectedAccount,
    user: u32,
    id: u32,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Stopped> {
    let key =
        env.key.as_ref().ok_or_else(|| Stopped::Setup("no [secrets] key_file: cannot open the password".into()))?;
    let secret = key
        .open(&account.credential, &owner(&account.user, &account.name))
        .map_err(|e| Stopped::Setup(format!("cannot open the stored password: {e}")))?;
    let crate::secrets::Secret::Password { password } = &secret;
    use crate::net::server_url::Protocol;
    let url = ServerUrl::parse(&account.incoming, &[Protocol::Imap, Protocol::Pop3], "incoming server")
        .map_err(Stopped::Setup)?;
    let tls =
        crate::relay::trust::account_client_config(account.ca_pem.as_deref(), "ca_pem").map_err(Stopped::Setup)?;
    if url.protocol == Protocol::Pop3 {
        return pop3_polling(env, account, user, id, password, &url, Arc::new(tls), stop).await;
    }
    let target = Target {
        url: &url,
        login: &account.login,
        password: password.as_str(),
        tls: Arc::new(tls),
        step_timeout: env.step_timeout,
    };
    let c = connect(&target).await?;
    drop(secret);
    let caps = c.capabilities;
    let has = |cap: &str| caps.iter().any(|c| c.eq_ignore_ascii_case(cap));
    let mut session = c.session;
    let inbox = env.store.db.mailbox_id(user, "INBOX")?;
    let ctx = Ctx {
        store: env.store.clone(),
        user,
        account_name: account.name.clone(),
        account: id,
        inbox,
        max_size: env.max_size,
        condstore: has("CONDSTORE"),
        timeout: pass::COMMAND_TIMEOUT,
        hostname: env.hostname.clone(),
    };
    let idle = has("IDLE");
    let mut changes = env.store.signals.subscribe(user);
    // How far local changes are known to need no write-back (in memory: no commit per wake).
    let mut scanned = 0u64;
    loop {
        full_pass(&mut session, &ctx).await?;
        let next_poll = tokio::time::Instant::now() + env.poll_interval;
        // Between full passes: the INBOX by push, local changes as they come.
        loop {
            if tokio::time::Instant::now() >= next_poll {
                break;
            }
            let inbox_folder = inbox_of(&ctx).await?;
            // Changes from here on wake the wait; those before it are written back now.
            changes.borrow_and_update();
            write_back(&mut session, &ctx).await?;
            super::sent_copy::append_pending(&mut session, &ctx).await?;
            let woke = if idle {
                let (s, woke) =
                    idle_until(session, &ctx, &mut scanned, ctx.timeout, next_poll, &mut changes, stop).await?;
                session = s;
                woke
            } else if inbox_folder.is_some() {
                noop_until(&mut session, &ctx, &mut scanned, next_poll, &mut changes, stop).await?
            } else {
                wait_until(next_poll, &mut changes, stop).await
            };
            if *stop.borrow() {
                let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
                return Ok(());
            }
            match woke {
                Woke::Source => {
                    if let Some((folder, rec)) = inbox_folder {
                        let mut report = Report::default();
                        pass::sync_folder(&mut session, &ctx, &folder, rec, &mut report).await?;
                        // One folder is not a whole pass: only a new quota pause is settled
                        // here (a pause, or a first import not yet done, ends with a full pass).
                        if report.quota_full {
                            settle(&ctx, &report);
                        } else {
                            ctx.store.db.update_sync_status(user, &ctx.account_name, |s| {
                                s.last_sync = Some(Timestamp::now());
                            })?;
                        }
                    }
                }
                // Written back at the top of the loop, after a moment for more to come.
                Woke::Local => tokio::time::sleep(WRITE_BACK_DEBOUNCE).await,
                Woke::Timer => {}
            }
        }
    }
}

/// A POP3 account: a pass every poll interval, each on a connection of its own (a POP3
/// server applies deletions at QUIT, and holds a mailbox lock while connected).
#[allow(clippy::too_many_arguments)]
async fn pop3_polling(
    env: &SyncEnv,
    account: &ConnectedAccount,
    user: u32,
    id: u32,
    password: &str,
    url: &ServerUrl,
    tls: Arc<rustls::ClientConfig>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Stopped> {
    let inbox = env.store.db.mailbox_id(user, "INBOX")?;
    let ctx = Ctx {
        store: env.store.clone(),
        user,
        account_name: account.name.clone(),
        account: id,
        inbox,
        max_size: env.max_size,
        condstore: false,
        timeout: pass::COMMAND_TIMEOUT,
        hostname: env.hostname.clone(),
    };
    loop {
        let c = super::pop3::Pop3::connect(url, &tls, &account.login, password, env.step_timeout).await?;
        ctx.store.db.update_sync_status(user, &account.name, |s| {
            s.phase = if s.first_import_done { "syncing".into() } else { "importing".into() };
            s.pass_started = Some(Timestamp::now());
            (s.pass_messages, s.pass_bytes, s.done_messages, s.done_bytes) = (0, 0, 0, 0);
        })?;
        let report = super::pop3_pass::pop3_pass(c, &ctx, account.pop3_delete_after_days).await?;
        if !report.quota_full {
            ctx.store.db.update_sync_status(user, &account.name, |s| s.inbox_ready = true)?;
        }
        settle(&ctx, &report);
        tokio::select! {
            _ = tokio::time::sleep(env.poll_interval) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// The INBOX's folder record, if the source has one.
async fn inbox_of(ctx: &Ctx) -> Result<Option<(RemoteFolder, FolderSync)>, Stopped> {
    let folders = ctx.store.db.sync_folders(ctx.user, ctx.account)?;
    Ok(folders
        .into_iter()
        .find(|(n, r)| n.eq_ignore_ascii_case("INBOX") && !r.gone)
        .map(|(name, rec)| (RemoteFolder { name, delimiter: None, role: rec.role.clone() }, rec)))
}

/// Every folder: LIST, record, sync each (INBOX first); status as it goes.
pub async fn full_pass(session: &mut Session, ctx: &Ctx) -> Result<Report, SyncError> {
    let (user, name) = (ctx.user, ctx.account_name.clone());
    ctx.store.db.update_sync_status(user, &name, |s| {
        s.phase = if s.first_import_done { "syncing".into() } else { "importing".into() };
        s.pass_started = Some(Timestamp::now());
        s.pass_messages = 0;
        s.pass_bytes = 0;
        s.done_messages = 0;
        s.done_bytes = 0;
    })?;
    let since = ctx.store.db.modseq(user)?;
    let remote = super::folders::list_folders(session, ctx.timeout).await?;
    let folders = super::folders::open_folders(session, ctx, &remote).await?;
    let mut report = Report::default();
    for (folder, rec) in folders {
        pass::sync_folder(session, ctx, &folder, rec, &mut report).await?;
        if folder.name.eq_ignore_ascii_case("INBOX") && !report.quota_full {
            ctx.store.db.update_sync_status(user, &name, |s| s.inbox_ready = true)?;
        }
        if report.quota_full {
            break;
        }
    }
    // Every local change up to the pass's start was compared with the source by the pass.
    ctx.store.db.set_written_back(user, &name, since)?;
    settle(ctx, &report);
    Ok(report)
}

/// After a pass: the status says it is done, or why the import paused (and the first time
/// it pauses, a notice goes to the user's INBOX).
fn settle(ctx: &Ctx, report: &Report) {
    let now = Timestamp::now();
    let quota_full = report.quota_full;
    let mut newly_paused = false;
    let r = ctx.store.db.update_sync_status(ctx.user, &ctx.account_name, |s| {
        newly_paused = quota_full && s.quota_paused_since.is_none();
        s.last_sync = Some(now);
        s.updated_at = Some(now);
        s.problem = None;
        s.problem_since = None;
        if quota_full {
            s.phase = "paused".into();
            s.quota_paused_since.get_or_insert(now);
        } else {
            s.phase = "idle".into();
            s.quota_paused_since = None;
            s.first_import_done = true;
        }
    });
    if let Err(e) = r {
        tracing::warn!(error = %e, account = %ctx.account_name, "cannot record an account's sync status");
    }
    if newly_paused {
        tracing::warn!(account = %ctx.account_name, user = ctx.user, "import paused: the user's quota is full");
        let raw = super::notice::quota_paused(&ctx.account_name, &ctx.hostname, now);
        let new = crate::mailstore::db::NewMessage {
            raw: &raw,
            flags: &[],
            internaldate: now,
            writer: crate::accounts::quota::Writer::System,
        };
        let origin = crate::mailstore::db::Origin::Notice { queue: format!("sync-{}", ctx.account) };
        match ctx.store.db.file(ctx.store.blobs.as_ref(), ctx.user, ctx.inbox, &new, origin) {
            Ok(_) => ctx.store.changed(ctx.user),
            Err(e) => tracing::warn!(error = %e, account = %ctx.account_name, "cannot file the quota notice"),
        }
    }
    if report.filed > 0 || report.removed > 0 || report.from_source > 0 {
        tracing::info!(account = %ctx.account_name, filed = report.filed, found = report.found,
            removed = report.removed, flags_in = report.from_source, flags_out = report.pushed, "account synced");
    }
}

/// Local flag changes since the cursor, written back by a pass over the folders they are in.
async fn write_back(session: &mut Session, ctx: &Ctx) -> Result<(), SyncError> {
    let sync = ctx.store.db.sync_account(ctx.user, &ctx.account_name)?;
    let (pending, cursor) = ctx.store.db.pending_write_back(ctx.user, ctx.account, sync.written_back)?;
    if !pending.is_empty() {
        let folders = ctx.store.db.sync_folders(ctx.user, ctx.account)?;
        let mut report = Report::default();
        for (name, rec) in folders {
            if rec.gone || !pending.iter().any(|p| p.0 == rec.mailbox) {
                continue;
            }
            let folder = RemoteFolder { name, delimiter: None, role: rec.role.clone() };
            pass::sync_folder(session, ctx, &folder, rec, &mut report).await?;
        }
    }
    ctx.store.db.set_written_back(ctx.user, &ctx.account_name, cursor)?;
    Ok(())
}
