//! The crate's error: what can stop a command or the server, each with a message a person can
//! act on.

/// Why a `chill` command or the server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The store URL names no store this binary knows.
    #[error(
        "store: unknown URL scheme '{scheme}': expected sqlite:, postgres://, mysql:// or dynamodb://"
    )]
    UnknownStore {
        /// The scheme as given.
        scheme: String,
    },
    /// A `dynamodb://` URL could not be used; the message names the part.
    #[error("store: {0}")]
    DynamoUrl(String),
    /// The DynamoDB store could not be opened.
    #[error("store: {0}")]
    Dynamo(#[from] chill_store_dynamo::DynamoError),
    /// The SQL store could not be opened.
    #[error("store: {0}")]
    Sql(#[from] chill_store_sql::SqlError),
    /// The AI client could not be configured.
    #[error("AI endpoint: {0}")]
    AiConfig(#[from] chill_claude::ConfigError),
    /// The engine refused or failed an operation.
    #[error(transparent)]
    Chill(#[from] chill_core::Error),
    /// A store operation failed.
    #[error("store: {0}")]
    Store(#[from] chill_core::StoreError),
    /// A schedule did not parse.
    #[error("schedule: {0}")]
    Schedule(#[from] chill_core::ScheduleError),
    /// An input was invalid; the message names the field.
    #[error(transparent)]
    Invalid(#[from] chill_core::ValidationError),
    /// An argument could not be used (a value out of range, a malformed time).
    #[error("{0}")]
    Usage(String),
    /// A file or socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document could not be read.
    #[error("{context}: {source}")]
    Json {
        /// What was being read.
        context: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// An import file had invalid entries; nothing was imported.
    #[error("{} invalid entr{} in the import; nothing was imported:\n{}", .0.len(), if .0.len() == 1 { "y" } else { "ies" }, .0.join("\n"))]
    InvalidImport(Vec<String>),
    /// A write of an import failed; the writes made before it were undone (or, where that
    /// failed too, are listed).
    #[error("the import stopped at job {job}: {error}; {undo}")]
    ImportStopped {
        /// The job whose write failed.
        job: String,
        /// Why it failed.
        error: String,
        /// What became of the writes made before: undone, or which could not be.
        undo: String,
    },
    /// A job named by id does not exist.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// An execution ended other than expected, or the engine stopped first.
    #[error("{0}")]
    Execution(String),
}

impl AppError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> AppError {
        AppError::Io {
            context: context.into(),
            source,
        }
    }

    /// A JSON error with what was being read.
    pub fn json(context: impl Into<String>, source: serde_json::Error) -> AppError {
        AppError::Json {
            context: context.into(),
            source,
        }
    }
}
