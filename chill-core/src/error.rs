//! The crate's error type for the engine's API.

use crate::model::{ExecutionId, JobId, ValidationError};
use crate::store::StoreError;

/// Why a call on the engine failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is invalid; the message names the field and the problem.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// No such job (or it was hard-deleted).
    #[error("job {0} not found")]
    JobNotFound(JobId),
    /// No such execution.
    #[error("execution {0} not found")]
    ExecutionNotFound(ExecutionId),
    /// The job is paused or deleted, so it cannot be triggered.
    #[error("job {0} is paused or deleted")]
    JobNotActive(JobId),
    /// A run of the job is in progress and its overlap policy `skip` refuses another.
    #[error("job {0} has a run in progress and its overlap policy 'skip' refuses another")]
    Busy(JobId),
    /// The job changed since it was read: read it again and retry.
    #[error("job {id} was changed concurrently: expected version {expected}, found {actual}")]
    VersionConflict {
        /// The job.
        id: JobId,
        /// The version the caller expected.
        expected: u64,
        /// The version stored.
        actual: u64,
    },
    /// The job has as many runs in progress as its `maxConcurrency` allows.
    #[error("job {job_id} has {running} runs in progress, its maxConcurrency is {limit}")]
    AtConcurrencyLimit {
        /// The job.
        job_id: JobId,
        /// Runs in progress.
        running: u32,
        /// The job's limit.
        limit: u32,
    },
    /// Too many manual triggers of the job recently.
    #[error("job {job_id} was triggered {max} times within {per:?}: try again in {retry_after:?}")]
    TriggerLimited {
        /// The job.
        job_id: JobId,
        /// The limit...
        max: u32,
        /// ...per this long.
        per: std::time::Duration,
        /// When the next trigger is allowed.
        retry_after: std::time::Duration,
    },
    /// The job's (or the global) budget is spent for the current period.
    #[error("job {job_id} cannot run: {reason}")]
    BudgetExceeded {
        /// The job.
        job_id: JobId,
        /// Which budget.
        reason: String,
    },
    /// Only a failed, timed-out or dead execution can be retried by hand.
    #[error(
        "execution {execution_id} is {status}: only failed, timeout or dead executions can be retried"
    )]
    NotRetryable {
        /// The execution.
        execution_id: ExecutionId,
        /// Its status.
        status: crate::model::ExecutionStatus,
    },
    /// A retry of this execution exists already (the retry policy scheduled one, or it was
    /// retried by hand).
    #[error("execution {0} has been retried already")]
    AlreadyRetried(ExecutionId),
    /// The engine is shutting down and takes no new work.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
