//! Start-up recovery. A crash can leave only three kinds of debris, by construction of the
//! submission order (body create → write → fsync → dir fsync → record commit → 250):
//! - `.tmp` bodies (left by earlier builds, which wrote through a temporary name): never
//!   acknowledged; removed.
//! - bodies with no record: the crash came before the commit (perhaps mid-write, so the
//!   file may be short), so the client got no 250 and will retry; moved to `orphans/`
//!   (kept for the operator, never delivered).
//! - records with no body: only possible through outside damage; the record is marked failed
//!   with an event saying why, so nothing is silently forgotten.

use jiff::Timestamp;

use crate::store::{EventKind, QueueId, QueueState, Store, StoreError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    pub temp_files_removed: usize,
    pub orphan_bodies: Vec<String>,
    pub records_without_body: Vec<String>,
}

impl RecoveryReport {
    pub fn is_clean(&self) -> bool {
        self.temp_files_removed == 0 && self.orphan_bodies.is_empty() && self.records_without_body.is_empty()
    }
}

/// Streams: bodies one shard directory at a time, record ids one at a time, so memory stays
/// flat with a million held messages.
pub fn recover(store: &Store, now: Timestamp) -> Result<RecoveryReport, StoreError> {
    let mut report = RecoveryReport::default();
    let orphan_dir = store.data_dir().join("orphans");
    store
        .bodies()
        .scan(|shard| {
            for tmp in &shard.temps {
                std::fs::remove_file(tmp)?;
                report.temp_files_removed += 1;
            }
            let unknown = store
                .unknown_ids(shard.bodies.iter().map(|(id, _)| id.as_str()))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            for (id, from) in shard.bodies.iter().filter(|(id, _)| unknown.contains(&id.as_str())) {
                crate::store::integrity::private_dir_all(&orphan_dir)?;
                std::fs::rename(from, orphan_dir.join(format!("{id}.eml")))?;
                report.orphan_bodies.push(id.clone());
            }
            Ok(())
        })
        .map_err(StoreError::io("scanning bodies"))?;
    let (mut missing, mut bad_keys) = (Vec::new(), Vec::new());
    store.for_each_message_id(|key| match key.parse::<QueueId>() {
        Ok(id) if !store.bodies().exists(id) => missing.push(id),
        Ok(_) => {}
        Err(e) => bad_keys.push(e.to_string()),
    })?;
    if let Some(bad) = bad_keys.first() {
        return Err(StoreError::Damaged(format!("queue table key: {bad}")));
    }
    for &id in &missing {
        let rec = store.get_message(id)?;
        if rec.as_ref().is_some_and(|r| r.state.is_pending() || r.state == QueueState::Sending) {
            store.update_message(id, |r| {
                for rcpt in r.recipients.iter_mut().filter(|x| x.state.is_pending() || x.state == QueueState::Sending) {
                    rcpt.state = QueueState::Failed;
                }
                r.state = r.derive_state();
                r.push_event(now, EventKind::Failed, "body file missing at start-up; the message cannot be sent");
                Ok(())
            })?;
            report.records_without_body.push(id.to_string());
        }
    }
    report.orphan_bodies.sort();
    report.records_without_body.sort();
    Ok(report)
}
