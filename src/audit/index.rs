//! The tantivy index under `<data_dir>/trace/`. One process at a time may write it (tantivy's
//! lock file); any number may search it. `gatepost serve` holds the writer while it runs; a
//! command-line search while the server is down catches the index up itself first.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use tantivy::collector::sort_key::{SortByStaticFastValue, SortByString};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::error::LockError;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, TantivyError, Term};

use super::document::{Fields, SCHEMA_VERSION, address_terms, document, schema};
use super::query::TraceQuery;
use crate::store::{Store, StoreError, TraceChange};

const VERSION_FILE: &str = "gatepost-schema-version";
/// The writer's indexing memory: tantivy's minimum. Each commit starts a segment with a fresh
/// arena of this size, so bigger costs page faults every tick for no gain at our batch sizes.
const WRITER_MEMORY: usize = 15_000_000;
/// Changes applied per index commit.
pub const BATCH: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "the trace index is being written by another gatepost process (a running `gatepost serve` keeps it up to date)"
    )]
    Busy,
    #[error("trace index in {dir}: {why}")]
    Index { dir: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Query(String),
}

pub struct TraceIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
}

/// Matches in total and the ids of the newest `limit` of them, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHits {
    pub total: usize,
    pub ids: Vec<String>,
}

impl TraceIndex {
    /// Open the index, creating it when missing. An index of another schema version (or none)
    /// is started afresh, and the store is asked to feed it every record again.
    pub fn open(data_dir: &Path, store: &Store) -> Result<TraceIndex, IndexError> {
        let dir = data_dir.join("trace");
        let err = |why: String| IndexError::Index { dir: dir.display().to_string(), why };
        let version_path = dir.join(VERSION_FILE);
        let current = std::fs::read_to_string(&version_path).ok().and_then(|v| v.trim().parse::<u32>().ok());
        if current != Some(SCHEMA_VERSION) {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| err(format!("removing the old index: {e}")))?;
            }
            crate::store::integrity::private_dir_all(&dir).map_err(|e| err(e.to_string()))?;
            let (schema, _) = schema();
            Index::create_in_dir(&dir, schema).map_err(|e| err(e.to_string()))?;
            store.trace_request_rebuild()?;
            std::fs::write(&version_path, format!("{SCHEMA_VERSION}\n")).map_err(|e| err(e.to_string()))?;
            if current.is_some() {
                tracing::info!(from = ?current, to = SCHEMA_VERSION, "trace index schema changed: rebuilding it");
            }
        }
        let index = Index::open_in_dir(&dir).map_err(|e| err(e.to_string()))?;
        let (_, fields) = schema();
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(|e| err(e.to_string()))?;
        Ok(TraceIndex { index, reader, fields, dir })
    }

    fn err(&self, e: impl ToString) -> IndexError {
        IndexError::Index { dir: self.dir.display().to_string(), why: e.to_string() }
    }

    /// The writer, or `Busy` when another process holds it.
    pub fn writer(&self) -> Result<TraceWriter, IndexError> {
        match self.index.writer_with_num_threads::<TantivyDocument>(1, WRITER_MEMORY) {
            Ok(writer) => Ok(TraceWriter { writer, fields: self.fields.clone(), dir: self.dir.clone() }),
            Err(TantivyError::LockFailure(LockError::LockBusy, _)) => Err(IndexError::Busy),
            Err(e) => Err(self.err(e)),
        }
    }

    pub fn search(&self, q: &TraceQuery) -> Result<TraceHits, IndexError> {
        self.reader.reload().map_err(|e| self.err(e))?;
        let query = self.build(q)?;
        let searcher = self.reader.searcher();
        // Newest first by the full submission time, then by id: records submitted within the
        // same second (or microsecond) still come out in one stable, newest-first order.
        let newest = (
            (SortByStaticFastValue::<i64>::for_field("submitted"), Order::Desc),
            (SortByString::for_field("id"), Order::Desc),
        );
        let top = TopDocs::with_limit(q.limit.max(1)).order_by(newest);
        let (total, docs) = searcher.search(&query, &(Count, top)).map_err(|e| self.err(e))?;
        let ids = docs.into_iter().filter_map(|((_, id), _)| id).collect();
        Ok(TraceHits { total, ids })
    }

    fn build(&self, q: &TraceQuery) -> Result<Box<dyn Query>, IndexError> {
        let f = &self.fields;
        let mut must: Vec<Box<dyn Query>> = Vec::new();
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        if let Some(u) = &q.user {
            must.push(term(f.user, &u.to_lowercase()));
        }
        // An address, or `@domain` for every address there.
        for (field, value) in [(f.sender, &q.sender), (f.recipient, &q.recipient)] {
            if let Some(v) = value {
                must.push(term(field, &address_terms(v)[0]));
            }
        }
        for (field, value) in [(f.client_ip, &q.client_ip), (f.relay_ip, &q.relay_ip), (f.system_ip, &q.system_ip)] {
            if let Some(v) = value {
                must.push(term(field, v));
            }
        }
        if let Some(s) = q.state {
            must.push(term(f.state, s.as_str()));
        }
        if let Some(r) = &q.route {
            let system = r.eq_ignore_ascii_case(super::document::SYSTEM_ROUTE);
            must.push(term(f.route, if system { super::document::SYSTEM_ROUTE } else { r }));
        }
        if q.possibly_delivered {
            must.push(term(f.state, super::document::POSSIBLY_DELIVERED));
        }
        for (field, words, flag) in [(f.subject, &q.subject, "--subject"), (f.text, &q.text, "--text")] {
            if let Some(words) = words {
                let tokens = self.words(field, words)?;
                if tokens.is_empty() {
                    return Err(IndexError::Query(format!("{flag} {words:?} has no words to search for")));
                }
                must.extend(tokens.iter().map(|t| term(field, t)));
            }
        }
        for (field, from, to) in [(f.submitted, q.since, q.until), (f.sent, q.sent_since, q.sent_until)] {
            if from.is_some() || to.is_some() {
                let at = |t: jiff::Timestamp| Term::from_field_i64(field, t.as_microsecond());
                let lo = from.map_or(Bound::Unbounded, |t| Bound::Included(at(t)));
                let hi = to.map_or(Bound::Unbounded, |t| Bound::Excluded(at(t)));
                // A half-open range still needs the field to exist (`sent` only after a delivery).
                let lo = match lo {
                    Bound::Unbounded => Bound::Included(Term::from_field_i64(field, i64::MIN)),
                    b => b,
                };
                must.push(Box::new(RangeQuery::new(lo, hi)));
            }
        }
        Ok(match must.len() {
            0 => Box::new(AllQuery),
            1 => must.pop().expect("one"),
            _ => Box::new(BooleanQuery::new(must.into_iter().map(|q| (Occur::Must, q)).collect())),
        })
    }

    /// The words of `text` as the field's analyzer cuts them (lower-cased, like the index).
    fn words(&self, field: Field, text: &str) -> Result<Vec<String>, IndexError> {
        let mut analyzer = self.index.tokenizer_for_field(field).map_err(|e| self.err(e))?;
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while stream.advance() {
            words.push(stream.token().text.clone());
        }
        words.sort();
        words.dedup();
        Ok(words)
    }

    pub fn document_count(&self) -> Result<u64, IndexError> {
        self.reader.reload().map_err(|e| self.err(e))?;
        Ok(self.reader.searcher().num_docs())
    }
}

/// The write side, held by one process.
pub struct TraceWriter {
    writer: IndexWriter<TantivyDocument>,
    fields: Fields,
    dir: PathBuf,
}

impl TraceWriter {
    fn err(&self, e: impl ToString) -> IndexError {
        IndexError::Index { dir: self.dir.display().to_string(), why: e.to_string() }
    }

    /// Index these changes (replace each record's document, or drop it when the record is
    /// gone), commit the index, then tell the store they are done.
    pub fn apply(&mut self, store: &Store, changes: &[TraceChange]) -> Result<(), IndexError> {
        for c in changes {
            self.writer.delete_term(Term::from_field_text(self.fields.id, &c.id));
            if let Some(rec) = &c.record {
                let body = store.bodies().read(rec.id).ok();
                self.writer.add_document(document(&self.fields, rec, body.as_deref())).map_err(|e| self.err(e))?;
            }
        }
        self.writer.commit().map_err(|e| self.err(e))?;
        let done: Vec<(String, u64)> = changes.iter().map(|c| (c.id.clone(), c.token)).collect();
        store.trace_done(&done)?;
        Ok(())
    }

    /// Apply every pending change (first emptying the index when a rebuild was asked for).
    /// `progress` hears how many changes each batch applied. Returns the total.
    pub fn catch_up(&mut self, store: &Store, progress: impl FnMut(usize)) -> Result<usize, IndexError> {
        self.catch_up_until(store, progress, || false)
    }

    /// `catch_up`, stopping between batches once `stop` says so: the server's stop must not
    /// wait for a rebuild of a million records (what is left stays in the feed).
    pub fn catch_up_until(
        &mut self,
        store: &Store,
        mut progress: impl FnMut(usize),
        stop: impl Fn() -> bool,
    ) -> Result<usize, IndexError> {
        if store.trace_rebuild_requested()? {
            self.writer.delete_all_documents().map_err(|e| self.err(e))?;
            self.writer.commit().map_err(|e| self.err(e))?;
            store.trace_rebuild_started()?;
        }
        let mut total = 0;
        loop {
            let changes = if stop() { Vec::new() } else { store.trace_pending(BATCH)? };
            if changes.is_empty() {
                return Ok(total);
            }
            self.apply(store, &changes)?;
            total += changes.len();
            progress(changes.len());
        }
    }
}
