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
    /// The engine is shutting down and takes no new work.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
