//! The crate's error (connecting, options, migrations) and the mapping of driver errors into
//! [`StoreError`].

use std::sync::Arc;

use chill_core::StoreError;

/// Why [`SqlStore::connect`](crate::SqlStore::connect) or a migration failed.
///
/// Store operations return [`StoreError`]; this error covers what happens before a store
/// exists: the URL, the options, the connection and the migrations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The URL names no database this crate knows.
    #[error(
        "unsupported database URL (scheme '{scheme}'): expected sqlite:, postgres:// or mysql://"
    )]
    UnsupportedUrl {
        /// The URL's scheme, as given.
        scheme: String,
    },
    /// The URL names a database whose cargo feature is not enabled.
    #[error("{backend} support is not compiled in: enable the chill-store-sql feature `{feature}`")]
    FeatureDisabled {
        /// The database.
        backend: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// An option has a value the store cannot use.
    #[error("option {option}: {message}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to {backend}: {source}")]
    Connect {
        /// The database.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A migration failed; the database keeps the migrations applied before it.
    #[error("migration {version} ({name}) failed: {message}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
        /// What the database reported.
        message: String,
    },
    /// A migration applied earlier differs from the one this version of the crate embeds.
    #[error(
        "migration {version} ({name}) was applied with checksum {applied}, but this version embeds {embedded}: the database was migrated by a different build"
    )]
    MigrationChanged {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
        /// The checksum recorded in the database.
        applied: String,
        /// The checksum of the embedded migration.
        embedded: String,
    },
}

impl SqlError {
    pub(crate) fn connect(backend: &'static str, source: sqlx::Error) -> SqlError {
        SqlError::Connect {
            backend,
            source: Box::new(source),
        }
    }
}

/// What went wrong inside a store operation: a driver error still to be classified, or an
/// outcome already expressed in the contract's terms.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Shared when one error ended several writes (see `batch`).
    Db(Arc<sqlx::Error>),
    Store(StoreError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Fail {
        Fail::Db(Arc::new(e))
    }
}

impl From<Arc<sqlx::Error>> for Fail {
    fn from(e: Arc<sqlx::Error>) -> Fail {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

/// The database's error code: SQLSTATE for PostgreSQL, the error number for MySQL, the
/// extended result code for SQLite.
enum Code {
    #[cfg(feature = "sqlite")]
    Sqlite(i64),
    #[cfg(feature = "postgres")]
    Postgres(String),
    #[cfg(feature = "mysql")]
    MySql(u16),
    Unknown,
}

fn code(e: &sqlx::Error) -> Code {
    let sqlx::Error::Database(db) = e else {
        return Code::Unknown;
    };
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return Code::MySql(my.number());
    }
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return Code::Postgres(pg.code().to_string());
    }
    // sqlx's SQLite errors and the direct reads' both give SQLite's extended result code.
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        || db
            .try_downcast_ref::<crate::direct::DirectError>()
            .is_some()
    {
        return Code::Sqlite(db.code().and_then(|c| c.parse().ok()).unwrap_or(0));
    }
    let _ = db;
    Code::Unknown
}

/// Whether the error is a unique-key violation (the row exists already).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether the whole transaction may simply be run again: a serialization failure or a
/// deadlock (the database rolled the transaction back), or a lock that was busy.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    match code(e) {
        #[cfg(feature = "sqlite")]
        // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
        Code::Sqlite(c) => matches!(c & 0xff, 5 | 6),
        #[cfg(feature = "postgres")]
        // serialization_failure, deadlock_detected, lock_not_available
        Code::Postgres(c) => matches!(c.as_str(), "40001" | "40P01" | "55P03"),
        #[cfg(feature = "mysql")]
        // ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK, ER_CHECKREAD (MariaDB snapshot conflict)
        Code::MySql(n) => matches!(n, 1205 | 1213 | 1020),
        Code::Unknown => false,
    }
}

/// Whether the error means the database cannot be used right now (transient).
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => return true,
        _ => {}
    }
    if is_retryable(e) {
        return true;
    }
    match code(e) {
        #[cfg(feature = "sqlite")]
        // SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PROTOCOL
        Code::Sqlite(c) => matches!(c & 0xff, 10 | 13 | 14 | 15),
        #[cfg(feature = "postgres")]
        // connection_exception (08), insufficient_resources (53), operator_intervention (57),
        // system_error (58)
        Code::Postgres(c) => {
            c.starts_with("08") || c.starts_with("53") || c.starts_with("57") || c.starts_with("58")
        }
        #[cfg(feature = "mysql")]
        // too many connections, server shutdown, connection killed, read-only, and the
        // client-side "server has gone away" family
        Code::MySql(n) => matches!(
            n,
            1040 | 1053 | 1077 | 1152 | 1158..=1161 | 1290 | 1927 | 2002 | 2003 | 2006 | 2013
        ),
        Code::Unknown => false,
    }
}

/// Whether the error means a value does not fit the database (too long, out of range).
fn is_too_big(e: &sqlx::Error) -> bool {
    match code(e) {
        #[cfg(feature = "sqlite")]
        // SQLITE_TOOBIG, SQLITE_RANGE
        Code::Sqlite(c) => matches!(c & 0xff, 18 | 25),
        #[cfg(feature = "postgres")]
        // string_data_right_truncation, numeric_value_out_of_range, datetime_field_overflow,
        // program_limit_exceeded (a row or value too large)
        Code::Postgres(c) => {
            matches!(c.as_str(), "22001" | "22003" | "22008") || c.starts_with("54")
        }
        #[cfg(feature = "mysql")]
        // ER_NET_PACKET_TOO_LARGE, ER_TOO_BIG_ROWSIZE, ER_WARN_DATA_OUT_OF_RANGE,
        // ER_DATA_TOO_LONG, ER_TOO_LONG_STRING
        Code::MySql(n) => matches!(n, 1153 | 1118 | 1264 | 1406 | 1301),
        Code::Unknown => false,
    }
}

/// The contract's error for a driver error met while writing or reading `what`.
pub(crate) fn to_store_error(e: &sqlx::Error, what: &str) -> StoreError {
    if is_too_big(e) {
        return StoreError::InvalidInput {
            field: what.to_string(),
            message: format!("a value is beyond the database's limits: {e}"),
        };
    }
    if is_unavailable(e) {
        return StoreError::Unavailable(format!("{what}: {e}"));
    }
    StoreError::Backend(format!("{what}: {e}"))
}

impl Fail {
    /// The contract's error.
    pub(crate) fn into_store_error(self, what: &str) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => to_store_error(&e, what),
        }
    }
}
