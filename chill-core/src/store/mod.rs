//! The store contract: what a backend must do, and which of its effects are atomic.
//!
//! Every backend (memory, SQL, DynamoDB) implements [`Store`] and passes the conformance
//! suite in `chill_core::testkit` (feature `testkit`). The engine relies on exactly these
//! guarantees for its exactly-once protocol:
//!
//! - [`Store::claim_slots`] is one conditional write: the job's `nextRunAt` moves on and the
//!   slot's executions are created, or nothing happens (another instance was first).
//! - [`Store::finish`] is one write fenced on the lease: the execution's result, the job's
//!   statistics and the next retry attempt, or nothing (the lease was taken over).
//!
//! Timestamps are stored with millisecond precision; the engine only produces such values.

mod error;
pub(crate) mod forward;
mod memory;
mod page;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{Execution, ExecutionId, ExecutionStatus, Job, JobId};

pub use error::StoreError;
pub use memory::MemoryStore;
pub use page::{Cursor, JobFilter, Page, PageRequest};

/// Who holds an execution, until when.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The engine instance (its id) that runs the execution.
    pub owner: String,
    /// When the lease runs out unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// The atomic claim of a job's due slots (see [`Store::claim_slots`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SlotClaim {
    /// The job.
    pub job_id: JobId,
    /// The claim holds only if the job's `version` is still this (no concurrent update).
    pub expected_version: u64,
    /// ...and its `nextRunAt` is still this (no other instance claimed the slot).
    pub expected_next_run_at: DateTime<Utc>,
    /// ...and, when set, its running count is still this (used under the `skip` overlap
    /// policy, so that a manual trigger and a slot cannot both start, and when a slot is
    /// buffered, so that it is not buffered behind a run that already ended).
    pub expected_running: Option<u32>,
    /// The job's new `nextRunAt` (`None`: no more runs).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Executions to create, each with an id no execution has yet: the runs (status
    /// `running`, leased to the claimer), skipped/missed records, and a buffered run.
    pub executions: Vec<Execution>,
    /// How many of `executions` are `running`: added to the job's running count, and the
    /// job's `lastRunStatus` becomes `running`, `lastRunAt` `started_at`.
    pub started: u32,
    /// When set, the id of a `pending` execution in `executions` that waits for the running
    /// one to end (overlap policy `buffer_one`). The claim then also requires that the job
    /// has no buffered execution yet.
    pub buffered: Option<ExecutionId>,
    /// When the started runs started.
    pub started_at: DateTime<Utc>,
}

/// What an execution's end adds to its job's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsDelta {
    /// The final status (also the job's new `lastRunStatus`).
    pub status: ExecutionStatus,
    /// Whether the execution counts as a run (`totalRuns`, success/failure counts, durations,
    /// tokens). Cancelled executions do not.
    pub counted: bool,
    /// Run time in milliseconds.
    pub duration_ms: u64,
    /// The error message (`lastRunError`), if it failed.
    pub error: Option<String>,
    /// Input tokens used.
    pub input_tokens: u64,
    /// Output tokens used.
    pub output_tokens: u64,
    /// Cost in millionths of a US dollar.
    pub cost_micro_usd: u64,
    /// When the execution ended: the cost of a counted execution counts in the job's [`Spend`](crate::Spend) for this day and
    /// month ([`Spend::add`](crate::Spend::add)).
    pub completed_at: DateTime<Utc>,
}

impl StatsDelta {
    /// The job's `consecutiveFailures` after this delta: a counted success resets it, a
    /// counted failure (failed, timeout, dead) adds one, anything else keeps it. Every store
    /// applies this rule.
    ///
    /// ```
    /// # use chill_core::{ExecutionStatus, store::StatsDelta};
    /// # let at = chrono::Utc::now();
    /// let mut d = StatsDelta { status: ExecutionStatus::Failed, counted: true, duration_ms: 5, error: None,
    ///     input_tokens: 0, output_tokens: 0, cost_micro_usd: 0, completed_at: at };
    /// assert_eq!(d.consecutive_failures_after(2), 3);
    /// d.status = ExecutionStatus::Success;
    /// assert_eq!(d.consecutive_failures_after(2), 0);
    /// d.status = ExecutionStatus::Cancelled; d.counted = false;
    /// assert_eq!(d.consecutive_failures_after(2), 2);
    /// ```
    pub fn consecutive_failures_after(&self, previous: u32) -> u32 {
        match self.status {
            _ if !self.counted => previous,
            ExecutionStatus::Success => 0,
            s if s.is_failure() => previous.saturating_add(1),
            _ => previous,
        }
    }
}

/// The fenced end of a running execution (see [`Store::finish`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// The execution's final record: a terminal status, `completedAt`, result or error.
    pub execution: Execution,
    /// The lease holder that finishes it: the write holds only if the stored execution is
    /// still `running` under this owner.
    pub owner: String,
    /// For recovery of a crashed instance's execution: the write holds only if the stored
    /// lease expired at or before this time (so a live owner that renewed keeps it).
    pub expired_by: Option<DateTime<Utc>>,
    /// What to add to the job's statistics; the job's running count drops by one.
    pub stats: StatsDelta,
    /// The next retry attempt (status `pending`, trigger `retry`) to create, if any.
    pub next_attempt: Option<Execution>,
    /// When set and the job has a buffered execution, start that one under this lease (it
    /// becomes `running`, starting at `started_at` of the lease's holder: the finish time).
    pub promote: Option<Lease>,
}

/// What [`Store::finish`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FinishOutcome {
    /// Written. `promoted` is the buffered execution that now runs under the promote lease.
    Finished {
        /// The buffered execution started by this finish.
        promoted: Option<Box<Execution>>,
    },
    /// Nothing written: the execution is no longer running under this owner (its lease was
    /// taken over, or it was finished already).
    Fenced,
}

/// What [`Store::start_manual`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManualStart {
    /// The execution was created, running.
    Started,
    /// The job does not exist, is deleted or is paused.
    NotActive,
    /// The job has a running execution and `require_idle` was set.
    Busy,
}

/// A storage backend for jobs and executions. Used as `Arc<dyn Store>`.
///
/// All methods are safe to call concurrently from many tasks and many processes sharing the
/// same database. Transient failures (connection lost, throttling) are
/// [`StoreError::Unavailable`] / [`StoreError::Throttled`]; the engine retries them.
#[async_trait]
pub trait Store: Send + Sync {
    /// Insert a new job. Atomic; [`StoreError::AlreadyExists`] when the id is taken.
    async fn create_job(&self, job: &Job) -> Result<(), StoreError>;

    /// A job by id, deleted (soft) or not; `None` when there is no such job.
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError>;

    /// Those of `ids` whose job is missing, disabled or deleted (soft), in no particular order;
    /// empty when every one is active. Asked by the engine at the instant the runs claimed ahead
    /// of their slot start, for many runs at once (a run that joins its group late asks for its
    /// own job alone). A read; it need not be atomic across the ids. The default reads each
    /// whole job with [`Store::get_job`]; a backend should answer with one query per batch of
    /// ids.
    async fn inactive_jobs(&self, ids: &[JobId]) -> Result<Vec<JobId>, StoreError> {
        let mut inactive = Vec::new();
        for id in ids {
            if !self.get_job(id).await?.is_some_and(|job| job.is_active()) {
                inactive.push(*id);
            }
        }
        Ok(inactive)
    }

    /// Replace a job's configuration, conditioned on its `version` being `expected_version`
    /// (atomic compare-and-set; a claim also changes the version, see
    /// [`Store::claim_slots`]). Writes every field *except* the statistics (`lastRun*`,
    /// counts, durations, tokens, cost), `runningCount` and the buffered execution, which
    /// only [`Store::claim_slots`], [`Store::start_manual`], [`Store::claim_attempt`] and
    /// [`Store::finish`] change. [`StoreError::VersionConflict`] when the version differs,
    /// [`StoreError::NotFound`] when there is no such job.
    async fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError>;

    /// Delete a job and all its executions for good. Returns whether the job existed. The
    /// job goes first (atomically), so nothing runs it afterwards; its executions may be
    /// removed in several steps.
    async fn delete_job(&self, id: &JobId) -> Result<bool, StoreError>;

    /// Jobs matching a filter, in creation order (by id), one page at a time.
    async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError>;

    /// An execution by id.
    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError>;

    /// A job's executions, newest first (by `createdAt`, then id), one page at a time.
    async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError>;

    /// Up to `limit` enabled, non-deleted jobs whose `nextRunAt` is at or before `now`,
    /// earliest first. A read; nothing is claimed.
    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError>;

    /// Up to `limit` retry attempts (status `pending`, trigger `retry`) whose `dueAt` is at or
    /// before `now`, earliest first. A read.
    async fn due_attempts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError>;

    /// The earliest time anything becomes due: the smallest `nextRunAt` of an enabled,
    /// non-deleted job, or `dueAt` of a pending retry attempt.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Claim a job's due slots. **Atomic and conditional**: if the job still has the expected
    /// version, `nextRunAt` (and running count, when given), is enabled and not deleted, and
    /// none of the executions exists yet (and, with `buffered`, the job has no buffered
    /// execution), then all of: the job's `nextRunAt` is set, its `version` grows by one,
    /// its running count grows by `started`, `lastRunStatus`/`lastRunAt` are set when
    /// `started > 0`, the buffered id is recorded, and every execution is created. Otherwise
    /// nothing changes and the result is `false`: another instance claimed first, or the job
    /// changed.
    ///
    /// The version grows because `nextRunAt` is part of what [`Store::update_job`] writes: a
    /// configuration change based on the job as read before the claim must be refused, or it
    /// would set `nextRunAt` back to a slot already claimed.
    async fn claim_slots(&self, claim: &SlotClaim) -> Result<bool, StoreError>;

    /// Start a manual run. **Atomic and conditional**: if the job exists, is enabled and not
    /// deleted, and (with `require_idle`) has no running execution, the execution (status
    /// `running`) is created and the job's running count, `lastRunStatus` and `lastRunAt`
    /// are updated. [`StoreError::AlreadyExists`] when the execution id is taken.
    async fn start_manual(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> Result<ManualStart, StoreError>;

    /// Claim a due retry attempt. **Atomic and conditional**: if the execution is still
    /// `pending`, it becomes `running` under the lease with `startedAt = now`, and its job's
    /// running count, `lastRunStatus` and `lastRunAt` are updated. `None` when another
    /// instance claimed it first (or it no longer exists).
    async fn claim_attempt(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>, StoreError>;

    /// Extend a lease. **Atomic and conditional** on the execution being `running` under
    /// `owner`. `false` means the lease is lost: stop working on the execution.
    async fn renew_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// End a running execution. **Atomic and fenced**: if the stored execution is `running`
    /// under `finish.owner` (and, with `expired_by`, its lease expired by then), then all of:
    /// the execution is replaced by `finish.execution`, the job's statistics take
    /// `finish.stats` and its running count drops by one, `finish.next_attempt` is created,
    /// and with `promote` the job's buffered execution (if any) starts under that lease.
    /// Otherwise nothing changes and the result is [`FinishOutcome::Fenced`]. If the job
    /// was deleted meanwhile, the execution is still written.
    async fn finish(&self, finish: &Finish) -> Result<FinishOutcome, StoreError>;

    /// Up to `limit` running executions whose lease expired before `now` (crashed owners),
    /// earliest expiry first. A read.
    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError>;

    /// Delete up to `limit` executions that ended (any status but `running` and `pending`)
    /// and were created before `before`. Returns how many were deleted. Job statistics are
    /// kept.
    async fn delete_executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError>;

    /// Executions that ended (`completedAt` set) at or after `from` and before `to`, across
    /// all jobs, ascending by `completedAt` then id, one page at a time. A read; used by the
    /// metrics aggregation, which reads it incrementally.
    async fn list_finished(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError>;

    /// Up to `limit` executions that ended (any status but `running` and `pending`) and were
    /// created before `before`, oldest first. A read: retention hands them to the archive
    /// hook, then deletes them with [`Store::delete_executions`].
    async fn executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError>;

    /// Delete those of `ids` that exist and ended (never a `running` or `pending` one).
    /// Returns how many were deleted. Job statistics are kept.
    async fn delete_executions(&self, ids: &[ExecutionId]) -> Result<u64, StoreError>;
}
