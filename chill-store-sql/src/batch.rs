//! Group commit on SQLite: the claims and finishes queued for the one writer connection run
//! together, several in one transaction and one hand-off to the connection's thread, each
//! keeping its own outcome.
//!
//! - A write is a body of statements that decide by themselves whether they apply (every
//!   statement carries the write's condition, see `script`) and return rows that say what
//!   happened.
//! - Whoever queues a write while no batch runs starts a task that takes everything queued,
//!   runs it, and looks again until the queue is empty (a task, so that a caller that gives up
//!   cannot stop a transaction half way). Writes queued together were concurrent, so any
//!   order between them is a valid one: the task runs the writes with the same text together,
//!   `BEGIN IMMEDIATE; <write>; <write>; ...; COMMIT`, in groups of 1, 2, 4, 8 or 16, so that
//!   the connection's cache of prepared statements soon holds every text.
//! - A statement that fails ends its write alone: the task undoes that write (its first
//!   statement failing undoes nothing else; a write that may fail later, an `INSERT` after an
//!   `UPDATE`, has a savepoint to roll back to), commits the writes before it and runs the
//!   ones after it again. The failing write gets the error, as it would alone (a unique
//!   violation is a refused claim or an existing execution). An error that ends the whole
//!   transaction (an I/O error, a full disk, a file busy at `BEGIN`) goes to every write of
//!   the group, none of which is committed.
//! - Replies go out after `COMMIT`: no write is reported before it is committed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::Executor;
use sqlx::sqlite::SqlitePool;
use tokio::sync::oneshot;

use crate::db::{Arg, Row, Written, bound};
use crate::script::Sql;

/// Most writes of one text in one transaction.
const MAX_GROUP: usize = 16;

/// A write whose script binds more values than this runs alone (a long catch-up claim): its
/// text is long, and the cache should not keep copies of it.
const MAX_GROUPED_ARGS: usize = 256;

/// What a write gets back: what it wrote, or the error that ended it (shared when it ended a
/// whole group).
pub(crate) type Reply = Result<Written, Arc<sqlx::Error>>;

struct Pending {
    script: Sql,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    draining: bool,
}

/// The queue of writes of one SQLite writer pool.
pub(crate) struct Writes {
    pool: SqlitePool,
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writes").finish_non_exhaustive()
    }
}

impl Writes {
    pub(crate) fn new(pool: SqlitePool) -> Arc<Writes> {
        Arc::new(Writes {
            pool,
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Queue a write (a body of `script.statements` statements) and wait for its outcome.
    pub(crate) async fn write(self: &Arc<Self>, script: Sql) -> Reply {
        let (reply, outcome) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.pending.push(Pending { script, reply });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).drain());
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(Arc::new(sqlx::Error::WorkerCrashed)))
    }

    /// Run batches until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let mut guard = Draining {
            writes: &self,
            done: false,
        };
        loop {
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.pending.is_empty() {
                    queue.draining = false;
                    guard.done = true;
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            self.run(batch).await;
        }
    }

    /// Run a batch: its writes grouped by text, each group in transactions of at most
    /// [`MAX_GROUP`] writes.
    async fn run(&self, batch: Vec<Pending>) {
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                let e = Arc::new(e);
                for p in batch {
                    let _ = p.reply.send(Err(Arc::clone(&e)));
                }
                return;
            }
        };
        let mut groups: Vec<VecDeque<Pending>> = Vec::new();
        for p in batch {
            match groups
                .iter_mut()
                .find(|g| g.front().is_some_and(|q| q.script.text == p.script.text))
            {
                Some(group) => group.push_back(p),
                None => groups.push(VecDeque::from([p])),
            }
        }
        for mut group in groups {
            while !group.is_empty() {
                let n = group_len(
                    group.len(),
                    group.front().map_or(0, |p| p.script.args.len()),
                );
                let chunk: Vec<Pending> = group.drain(..n).collect();
                let again = run_group(&mut conn, chunk).await;
                for p in again.into_iter().rev() {
                    group.push_front(p);
                }
            }
        }
    }
}

/// Resets the queue when a drain ends early (its task cancelled by a runtime shutting down,
/// or a panic): the writes still queued fail instead of waiting for ever.
struct Draining<'a> {
    writes: &'a Writes,
    done: bool,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut queue = self
                .writes
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.draining = false;
            queue.pending.clear();
        }
    }
}

/// How many of `queued` writes of one text, each binding `args` values, go in one
/// transaction: a power of two up to [`MAX_GROUP`], so that few texts are prepared.
fn group_len(queued: usize, args: usize) -> usize {
    if args > MAX_GROUPED_ARGS {
        return 1;
    }
    let mut n = 1;
    while n * 2 <= queued.min(MAX_GROUP) {
        n *= 2;
    }
    n
}

/// `BEGIN IMMEDIATE; <write>; ... COMMIT` for `n` writes, each write inside
/// `SAVEPOINT w; ...; RELEASE w` when it needs one.
fn group_text(body: &str, n: usize, savepoint: bool) -> String {
    let mut text = String::with_capacity((body.len() + 40) * n + 32);
    text.push_str("BEGIN IMMEDIATE; ");
    for _ in 0..n {
        if savepoint {
            text.push_str("SAVEPOINT w; ");
        }
        text.push_str(body);
        text.push_str(if savepoint { "; RELEASE w; " } else { "; " });
    }
    text.push_str("COMMIT");
    text
}

/// Where a statement of a group is: `BEGIN`, statement `j` of write `i` (counting its
/// `SAVEPOINT` and `RELEASE` when it has them), or `COMMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Begin,
    Write { i: usize, j: usize },
    Commit,
}

/// The layout of a group's statements.
#[derive(Debug, Clone, Copy)]
struct Layout {
    writes: usize,
    /// Statements of one write, with its savepoint's.
    per_write: usize,
    savepoint: bool,
}

impl Layout {
    fn place(&self, statement: usize) -> Place {
        match statement.checked_sub(1) {
            None => Place::Begin,
            Some(s) if s / self.per_write < self.writes => Place::Write {
                i: s / self.per_write,
                j: s % self.per_write,
            },
            Some(_) => Place::Commit,
        }
    }

    /// Whether statement `j` of a write is the last of its body (the one that decides).
    fn is_last_of_body(&self, j: usize) -> bool {
        j + 1 == self.per_write - usize::from(self.savepoint)
    }

    /// Whether statement `j` of a write is the first of its body.
    fn is_first_of_body(&self, j: usize) -> bool {
        j == usize::from(self.savepoint)
    }
}

/// Run writes of one text in one transaction and reply to them; the writes to run again
/// (those after a write that failed).
async fn run_group(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    mut chunk: Vec<Pending>,
) -> Vec<Pending> {
    use futures_util::TryStreamExt;

    let savepoint = chunk[0].script.may_fail_late;
    let layout = Layout {
        writes: chunk.len(),
        per_write: chunk[0].script.statements + 2 * usize::from(savepoint),
        savepoint,
    };
    let text = group_text(&chunk[0].script.text, layout.writes, savepoint);
    // Copies: the writes after one that fails run again with theirs.
    let args: Vec<Arg> = chunk
        .iter()
        .flat_map(|p| p.script.args.iter().cloned())
        .collect();
    let mut written: Vec<Written> = (0..layout.writes).map(|_| Written::default()).collect();
    let mut statement = 0;
    let failure = {
        let mut results = (&mut **conn).fetch_many(bound!(sqlx::Sqlite, &text, args));
        loop {
            let item = match results.try_next().await {
                Ok(Some(item)) => item,
                Ok(None) => break None,
                Err(e) => break Some(e),
            };
            let Place::Write { i, j } = layout.place(statement) else {
                if item.is_left() {
                    statement += 1;
                }
                continue;
            };
            match item {
                sqlx::Either::Left(done) => {
                    if layout.is_last_of_body(j) {
                        written[i].last_changes = done.rows_affected();
                    }
                    statement += 1;
                }
                sqlx::Either::Right(row) => written[i].rows.push(Row::Sqlite(row)),
            }
        }
    };
    let Some(error) = failure else {
        reply_all(chunk, written);
        return Vec::new();
    };
    let error = Arc::new(error);
    match layout.place(statement) {
        // Nothing was written.
        Place::Begin => fail_all(chunk, &error),
        Place::Write { i, j } => {
            // Write i failed: undo it alone, keep the writes before it, run the ones after it
            // again. Without a savepoint only its first statement may fail alone (the
            // statement is undone, and with it the whole write).
            let undo = if savepoint {
                "ROLLBACK TO w; RELEASE w; COMMIT"
            } else if layout.is_first_of_body(j) {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            let kept = undo != "ROLLBACK" && conn.execute(undo).await.is_ok();
            let mut failed = chunk.split_off(i);
            let again = failed.split_off(1);
            if kept {
                written.truncate(i);
                reply_all(chunk, written);
            } else {
                // The transaction is gone, and the writes before i with it.
                rollback(conn).await;
                fail_all(chunk, &error);
            }
            fail_all(failed, &error);
            return again;
        }
        Place::Commit => {
            rollback(conn).await;
            fail_all(chunk, &error);
        }
    }
    Vec::new()
}

fn reply_all(writes: Vec<Pending>, written: Vec<Written>) {
    for (p, w) in writes.into_iter().zip(written) {
        let _ = p.reply.send(Ok(w));
    }
}

fn fail_all(writes: Vec<Pending>, error: &Arc<sqlx::Error>) {
    for p in writes {
        let _ = p.reply.send(Err(Arc::clone(error)));
    }
}

/// Roll back whatever transaction is open (an error when none is, which is ignored).
async fn rollback(conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>) {
    if let Err(e) = conn.execute("ROLLBACK").await {
        tracing::trace!(error = %e, "rollback after a failed group of writes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_powers_of_two_up_to_the_limit() {
        assert_eq!(group_len(1, 10), 1);
        assert_eq!(group_len(3, 10), 2);
        assert_eq!(group_len(15, 10), 8);
        assert_eq!(group_len(16, 10), 16);
        assert_eq!(group_len(100, 10), 16);
        assert_eq!(group_len(100, MAX_GROUPED_ARGS + 1), 1);
    }

    #[test]
    fn a_group_is_one_transaction_with_a_savepoint_per_write_that_needs_one() {
        assert_eq!(
            group_text("UPDATE t SET a = ?", 2, true),
            "BEGIN IMMEDIATE; SAVEPOINT w; UPDATE t SET a = ?; RELEASE w; \
             SAVEPOINT w; UPDATE t SET a = ?; RELEASE w; COMMIT"
        );
        assert_eq!(
            group_text("INSERT 1; UPDATE 2", 2, false),
            "BEGIN IMMEDIATE; INSERT 1; UPDATE 2; INSERT 1; UPDATE 2; COMMIT"
        );
    }

    #[test]
    fn statements_are_placed_in_their_write() {
        // Two writes of three statements each, with savepoints: 1 + 2 * 5 + 1 statements.
        let layout = Layout {
            writes: 2,
            per_write: 5,
            savepoint: true,
        };
        assert_eq!(layout.place(0), Place::Begin);
        assert_eq!(layout.place(1), Place::Write { i: 0, j: 0 });
        assert_eq!(layout.place(4), Place::Write { i: 0, j: 3 });
        assert_eq!(layout.place(6), Place::Write { i: 1, j: 0 });
        assert_eq!(layout.place(10), Place::Write { i: 1, j: 4 });
        assert_eq!(layout.place(11), Place::Commit);
        assert!(layout.is_first_of_body(1) && !layout.is_first_of_body(0));
        assert!(layout.is_last_of_body(3) && !layout.is_last_of_body(4));
        let plain = Layout {
            writes: 1,
            per_write: 2,
            savepoint: false,
        };
        assert!(plain.is_first_of_body(0) && plain.is_last_of_body(1));
        assert_eq!(plain.place(3), Place::Commit);
    }
}
