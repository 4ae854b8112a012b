//! The accounts' sync in `serve`: one task per active account, started, restarted or
//! stopped within two seconds of `account add|set|pause|resume|remove` (the records live in
//! `gatepost.redb`, written by the CLI beside the running server).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::account::{SyncEnv, run};
use crate::store::{ConnectedAccount, Store};

/// How often the account records are read for changes.
pub const LOOK_EVERY: Duration = Duration::from_secs(2);

struct Running {
    record: ConnectedAccount,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs until shutdown; then stops every account task and waits for them (briefly).
pub async fn supervise(env: Arc<SyncEnv>, store: Arc<Store>, mut shutdown: watch::Receiver<bool>) -> bool {
    let mut running: HashMap<(String, String), Running> = HashMap::new();
    loop {
        // The read is left behind at shutdown: a store met by damage must not hold it up.
        let s = store.clone();
        let accounts = tokio::select! {
            r = tokio::task::spawn_blocking(move || s.list_connected(None)) => r,
            _ = shutdown.changed() => break,
        };
        match accounts {
            Ok(Ok(accounts)) => reconcile(&env, &mut running, accounts),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the connected accounts"),
            Err(e) => tracing::warn!(error = %e, "cannot read the connected accounts"),
        }
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = shutdown.changed() => break,
        }
    }
    for (_, r) in running.drain() {
        let _ = r.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), r.task).await;
    }
    true
}

fn reconcile(env: &Arc<SyncEnv>, running: &mut HashMap<(String, String), Running>, accounts: Vec<ConnectedAccount>) {
    let mut wanted: HashMap<(String, String), ConnectedAccount> = HashMap::new();
    for a in accounts {
        let key = (a.user.clone(), a.name.clone());
        if a.paused || a.removed {
            note_inactive(env, &a);
            continue;
        }
        wanted.insert(key, a);
    }
    running.retain(|key, r| {
        let keep = wanted.get(key).is_some_and(|w| *w == r.record) && !r.task.is_finished();
        if !keep {
            tracing::info!(user = %key.0, account = %key.1, "account sync stopped (changed, paused or removed)");
            let _ = r.stop.send(true);
        }
        keep
    });
    for (key, record) in wanted {
        if running.contains_key(&key) {
            continue;
        }
        tracing::info!(user = %key.0, account = %key.1, "account sync started");
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(env.clone(), record.clone(), rx));
        running.insert(key, Running { record, stop, task });
    }
}

/// A paused or removed account's status says so (when it has synced before).
fn note_inactive(env: &SyncEnv, a: &ConnectedAccount) {
    let phase = if a.removed { "removed" } else { "paused" };
    let Ok(Some(user)) = env.store.db.find_user(&a.user) else { return };
    if let Ok(Some(sync)) = env.store.db.find_sync_account(user, &a.name)
        && sync.status.phase != phase
    {
        let _ = env.store.db.update_sync_status(user, &a.name, |s| s.phase = phase.to_string());
    }
}
