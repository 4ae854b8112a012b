//! What the trace index needs from the store: a change feed and record removal.
//!
//! `trace_pending`: queue id → change token. Every transaction that writes a record also
//! writes a fresh random token here, so the feed is exactly as durable as the record it
//! points at. The indexer reads records and tokens in one snapshot, indexes them, and then
//! removes only the entries whose token is unchanged: a record written again meanwhile stays
//! pending, so the index can lag but never miss a change (not even across a crash).

use jiff::Timestamp;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::tables::{QueueTables, TRACE_PENDING, new_token};
use super::{MESSAGES, Store, StoreError};
use crate::store::{QueueId, QueueRecord};

/// Small settings of the trace side (`rebuild` → 1 while a full rebuild is asked for).
pub(super) const TRACE_META: TableDefinition<&str, u64> = TableDefinition::new("trace_meta");

/// One pending change: the record as it is now (`None`: it was removed).
#[derive(Debug)]
pub struct TraceChange {
    pub id: String,
    pub token: u64,
    pub record: Option<QueueRecord>,
}

impl Store {
    /// Up to `limit` pending changes, with each record as it is in the same snapshot.
    pub fn trace_pending(&self, limit: usize) -> Result<Vec<TraceChange>, StoreError> {
        let txn = self.db.begin_read()?;
        let pending = txn.open_table(TRACE_PENDING)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in pending.iter()?.take(limit) {
            let (k, v) = entry?;
            let id = k.value().to_string();
            let record = match messages.get(id.as_str())? {
                Some(bytes) => match QueueRecord::decode(bytes.value()) {
                    Ok(rec) => Some(rec),
                    Err(e) => {
                        // A damaged record cannot be indexed; it stays in the store for the operator.
                        tracing::warn!(id = %id, error = %e, "trace: record does not decode; left out of the index");
                        None
                    }
                },
                None => None,
            };
            out.push(TraceChange { id, token: v.value(), record });
        }
        Ok(out)
    }

    pub fn trace_pending_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TRACE_PENDING)?.len()?)
    }

    /// Forget the changes that are now indexed, unless written again since they were read.
    pub fn trace_done(&self, done: &[(String, u64)]) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        {
            let mut pending = txn.open_table(TRACE_PENDING)?;
            for (id, token) in done {
                let current = pending.get(id.as_str())?.map(|v| v.value());
                if current == Some(*token) {
                    pending.remove(id.as_str())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Ask for a full rebuild: every record becomes pending and the flag tells the indexer to
    /// drop what it has first. Works while `gatepost serve` runs (its indexer does the work).
    pub fn trace_request_rebuild(&self) -> Result<u64, StoreError> {
        let txn = self.write_txn()?;
        let mut n = 0;
        {
            let messages = txn.open_table(MESSAGES)?;
            let mut pending = txn.open_table(TRACE_PENDING)?;
            for entry in messages.iter()? {
                let (k, _) = entry?;
                pending.insert(k.value(), new_token())?;
                n += 1;
            }
            txn.open_table(TRACE_META)?.insert("rebuild", 1)?;
        }
        txn.commit()?;
        Ok(n)
    }

    pub fn trace_rebuild_requested(&self) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TRACE_META)?.get("rebuild")?.is_some_and(|v| v.value() == 1))
    }

    pub fn trace_rebuild_started(&self) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        txn.open_table(TRACE_META)?.remove("rebuild")?;
        txn.commit()?;
        Ok(())
    }

    /// Finished messages (sent, failed, cancelled) whose last event is before `cutoff`, in
    /// submission order, at most `limit`: what retention removes.
    pub fn expired_records(&self, cutoff: Timestamp, limit: usize) -> Result<Vec<QueueId>, StoreError> {
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in messages.iter()? {
            let (k, v) = entry?;
            // Ids are ULIDs: once submission time passes the cutoff, no later record can qualify.
            if k.value().parse::<QueueId>().is_ok_and(|id| id.timestamp_ms() as i64 > cutoff.as_millisecond()) {
                break;
            }
            let Ok(rec) = QueueRecord::decode(v.value()) else { continue };
            let last = rec.events.last().map(|e| e.at).unwrap_or(rec.submitted_at);
            if !rec.state.is_pending() && rec.state != super::QueueState::Sending && last < cutoff {
                out.push(rec.id);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Delete records and their bodies for good (retention). The trace feed notes each, so
    /// the index drops them too. Bodies go after the commit: a crash between leaves an
    /// orphan body, which recovery moves aside, never a record without its body.
    pub fn remove_messages(&self, ids: &[QueueId]) -> Result<usize, StoreError> {
        let txn = self.write_txn()?;
        let mut removed = Vec::new();
        {
            let mut tables = QueueTables::open(&txn)?;
            for &id in ids {
                if tables.remove(id)? {
                    removed.push(id);
                }
            }
        }
        txn.commit()?;
        for &id in &removed {
            let _ = std::fs::remove_file(self.bodies.path(id));
        }
        Ok(removed.len())
    }
}
