//! The audit trail's search side (`gatepost trace`). The records themselves live in the
//! store and carry their own timeline (events, attempts); this module keeps a tantivy index
//! of them in step with the store, through the store's change feed (`store::trace`), so a
//! search by any field or by a word of the content answers from the index instead of a scan
//! of every record.
//!
//! - `document`: what of a record goes into the index, and under which field
//! - `query`: a trace query and its command-line forms (pure)
//! - `index`: the tantivy index: apply changes, rebuild, search
//! - `indexer`: the task in `gatepost serve` that follows the change feed and applies retention

pub mod document;
pub mod index;
pub mod indexer;
pub mod query;

pub use index::{IndexError, TraceHits, TraceIndex};
pub use query::TraceQuery;

#[cfg(test)]
mod tests;
