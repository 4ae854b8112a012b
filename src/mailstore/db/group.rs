//! Group commit for new messages and `\Recent` claims: what arrives while one commits is
//! committed together in the next transaction. redb has one writer at a time and each commit costs two
//! fsyncs, so 100 clients appending at once waited for 100 commits one after the other
//! (~0.4 s on the benchmark machine, most of the IDLE fan-out's budget); now they wait for
//! two or three. The same for the `\Recent` claims of the sessions those arrivals wake (one
//! per user and mailbox). Each job is still decided on its own (quota, mailbox), in order,
//! over the state the jobs before it in the batch left; a refusal refuses that job only.
//!
//! Leader and followers, as in the queue's group committer but synchronous (callers are on
//! the blocking pool): a caller queues its filing; if no commit is running it leads — takes
//! everything queued, commits it, hands out the results — else it waits for its result or
//! for the lead.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use jiff::Timestamp;
use redb::ReadableTable;

use super::write::Work;
use super::*;
use crate::accounts::quota::Writer;
use crate::blobs::{BlobHash, Place};

/// One message to file, its blob already durable.
pub(super) struct Filing {
    pub user: u32,
    pub mailbox: u32,
    pub hash: BlobHash,
    pub place: Place,
    pub size: u64,
    pub internaldate: Timestamp,
    /// Shared flags (`\Deleted` is per membership: `deleted`).
    pub flags: Vec<String>,
    pub deleted: bool,
    pub writer: Writer,
    pub origin: Origin,
    pub message_id: Option<String>,
    /// The parsed structure, encoded (made before the writer is taken: parsing a message is
    /// the one costly step, and no other filing should wait for it). `None`: parsed when
    /// first wanted (bulk import, decision D44).
    pub structure: Option<Vec<u8>>,
    /// A second membership of the same message (the INBOX pair: a source INBOX message is
    /// also in the unified `INBOX`).
    pub pair: Option<u32>,
}

/// What one caller asks to commit.
#[allow(clippy::large_enum_variant)] // one per caller, never stored in bulk
pub(super) enum Job {
    File(Filing),
    /// Claim the mailbox's arrivals as `\Recent` (RFC 3501 §2.3.2): the answer is the first
    /// UID claimed (UIDNEXT when there was nothing to claim).
    ClaimRecent {
        user: u32,
        mailbox: u32,
    },
}

pub(super) enum Done {
    Filed(Appended),
    Claimed(u32),
}

type Outcome = Result<Done, MailError>;

#[derive(Default)]
struct Queue {
    next: u64,
    waiting: Vec<(u64, Job)>,
    done: HashMap<u64, Outcome>,
    leading: bool,
}

#[derive(Default)]
pub(super) struct Filings {
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// The lead of one batch. Handing over gives each job its outcome; a lead dropped without
/// it (the commit panicked) fails the batch and frees the lead, so one panic never leaves
/// every later filing waiting for a leader that is gone.
struct Lead<'a> {
    group: &'a Filings,
    tickets: Vec<u64>,
    handed_over: bool,
}

impl<'a> Lead<'a> {
    fn hand_over(mut self, outcomes: impl Iterator<Item = (u64, Outcome)>) -> std::sync::MutexGuard<'a, Queue> {
        let mut q = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.leading = false;
        q.done.extend(outcomes);
        self.group.changed.notify_all();
        self.handed_over = true;
        q
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        let mut q = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.leading = false;
        for t in self.tickets.drain(..) {
            q.done.insert(t, Err(MailError::Db("the commit of this batch panicked".into())));
        }
        self.group.changed.notify_all();
    }
}

impl MailDb {
    /// Commit one job together with whatever else is being committed at the same moment.
    pub(super) fn grouped(&self, job: Job) -> Outcome {
        self.grouped_all(vec![job]).pop().expect("one outcome per job")
    }

    /// Commit jobs (in order, each decided on its own) together with whatever else is being
    /// committed at the same moment: a bulk import's batch is one commit, not one per message.
    pub(super) fn grouped_all(&self, jobs: Vec<Job>) -> Vec<Outcome> {
        let group = &self.filings;
        let mut q = group.queue.lock().unwrap_or_else(|e| e.into_inner());
        let first = q.next;
        let count = jobs.len() as u64;
        for job in jobs {
            let ticket = q.next;
            q.next += 1;
            q.waiting.push((ticket, job));
        }
        loop {
            if (first..first + count).all(|t| q.done.contains_key(&t)) {
                return (first..first + count).map(|t| q.done.remove(&t).expect("just checked")).collect();
            }
            if !q.leading {
                q.leading = true;
                let batch = std::mem::take(&mut q.waiting);
                drop(q);
                let lead = Lead { group, tickets: batch.iter().map(|(t, _)| *t).collect(), handed_over: false };
                let outcomes = self.commit_jobs(&batch);
                q = lead.hand_over(batch.into_iter().map(|(t, _)| t).zip(outcomes));
                continue;
            }
            q = group.changed.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// One transaction for the batch; if it cannot commit, every job in it fails.
    fn commit_jobs(&self, batch: &[(u64, Job)]) -> Vec<Outcome> {
        let committed = (|| {
            let txn = self.write()?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for (_, job) in batch {
                outcomes.push(match job {
                    Job::File(f) => self.apply_filing(&txn, f)?.map(Done::Filed),
                    Job::ClaimRecent { user, mailbox } => claim_recent(&txn, *user, *mailbox)?.map(Done::Claimed),
                });
            }
            txn.commit()?;
            Ok::<_, MailError>(outcomes)
        })();
        match committed {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "mail store commit failed");
                batch.iter().map(|_| Err(MailError::Db(e.to_string()))).collect()
            }
        }
    }

    /// One filing inside the batch's transaction. The outer error fails the batch; the inner
    /// one (no such mailbox, over quota) refuses this filing before it has written anything.
    pub(super) fn apply_filing(
        &self,
        txn: &redb::WriteTransaction,
        f: &Filing,
    ) -> Result<Result<Appended, MailError>, MailError> {
        let mut work = Work::open(txn, f.user, self.expunge_keep)?;
        let uidvalidity = match work.mailbox(f.mailbox) {
            Ok(m) => m.uidvalidity,
            Err(e @ MailError::NoMailbox(_)) => return Ok(Err(e)),
            Err(e) => return Err(e),
        };
        match work.charge(&self.rule, f.size, f.writer, f.internaldate) {
            Ok(()) => {}
            Err(e @ MailError::OverQuota(_)) => return Ok(Err(e)),
            Err(e) => return Err(e),
        }
        let (uid, modseq) = work.new_message(
            f.mailbox,
            &f.hash,
            Some(f.place),
            f.size,
            f.internaldate,
            f.flags.clone(),
            f.origin.clone(),
            f.message_id.clone(),
        )?;
        let modseq = if f.deleted {
            let id = work.member(f.mailbox, uid)?.map(|m| m.0).unwrap_or_default();
            work.set_deleted(f.mailbox, uid, id, f.size, true)?
        } else {
            modseq
        };
        if let Some(pair) = f.pair.filter(|p| *p != f.mailbox) {
            let id = work.member(f.mailbox, uid)?.map(|m| m.0).unwrap_or_default();
            let mut msg = work.message(id)?;
            work.add_member(pair, id, &mut msg, false)?;
            work.put_message(id, &msg)?;
        }
        work.finish()?;
        if let Some(structure) = &f.structure {
            let mut structures = txn.open_table(STRUCTURES)?;
            if structures.get(&f.hash.0)?.is_none() {
                structures.insert(&f.hash.0, structure.as_slice())?;
            }
        }
        Ok(Ok(Appended { uidvalidity, uid, modseq }))
    }
}

/// The claim inside the batch's transaction; a mailbox gone since is this job's refusal.
fn claim_recent(txn: &redb::WriteTransaction, user: u32, mailbox: u32) -> Result<Result<u32, MailError>, MailError> {
    let mut boxes = txn.open_table(MAILBOXES)?;
    let Some(v) = boxes.get((user, mailbox))? else { return Ok(Err(MailError::NoMailbox(mailbox.to_string()))) };
    let mut rec: Mailbox = read("mailbox", v.value())?;
    drop(v);
    let from = rec.recent_from;
    if from != rec.uidnext {
        rec.recent_from = rec.uidnext;
        boxes.insert((user, mailbox), json(&rec).as_slice())?;
    }
    Ok(Ok(from))
}
