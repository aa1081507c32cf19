//! The error every store returns.

/// Why a store operation failed. Adapters map their driver errors into it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// `job` or `execution`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// An insert found the id taken.
    #[error("{what} {id} already exists")]
    AlreadyExists {
        /// `job` or `execution`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A conditional update found another version: someone else changed the job first.
    #[error("job {id} was changed concurrently: expected version {expected}, found {actual}")]
    VersionConflict {
        /// The job id.
        id: String,
        /// The version the caller read.
        expected: u64,
        /// The version stored now.
        actual: u64,
    },
    /// The backend cannot be reached or did not answer in time. Transient: retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend refused for load (throttling). Transient: retry with backoff.
    #[error("store throttled: {0}")]
    Throttled(String),
    /// A value the backend cannot store (too long, out of its range). Nothing was written.
    #[error("{field}: {message}")]
    InvalidInput {
        /// The field, by its JSON name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Anything else the backend reported. Not retried.
    #[error("store error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Throttled(_))
    }

    /// Whether a write that failed with this error may have taken effect anyway (its reply
    /// was lost, or the backend's report does not say): every error but a refusal before
    /// anything was written (not found, already exists, version conflict, invalid input).
    ///
    /// ```
    /// use chill_core::store::StoreError;
    /// assert!(StoreError::Unavailable("connection reset".into()).may_have_taken_effect());
    /// assert!(!StoreError::NotFound { what: "job", id: "j".into() }.may_have_taken_effect());
    /// ```
    pub fn may_have_taken_effect(&self) -> bool {
        !matches!(
            self,
            StoreError::NotFound { .. }
                | StoreError::AlreadyExists { .. }
                | StoreError::VersionConflict { .. }
                | StoreError::InvalidInput { .. }
        )
    }
}
