//! A ChillScheduler [`Store`] over [sqlx](https://docs.rs/sqlx): SQLite (the embedded
//! default), PostgreSQL, and MySQL or MariaDB, chosen by the URL.
//!
//! | URL | database | cargo feature |
//! |---|---|---|
//! | `sqlite://path/to/file.db`, `sqlite:file.db` | a SQLite file, created if missing | `sqlite` (default) |
//! | `sqlite::memory:` | a private in-memory SQLite database | `sqlite` |
//! | `postgres://user:pass@host:5432/db` (or `postgresql://`) | PostgreSQL | `postgres` |
//! | `mysql://user:pass@host:3306/db` (or `mariadb://`) | MySQL 8 or MariaDB 10.6+ | `mysql` |
//!
//! Feature `tls` adds TLS to the PostgreSQL and MySQL connections (rustls with the Mozilla
//! roots of `webpki-roots`), asked for in the URL: `?sslmode=require` (PostgreSQL),
//! `?ssl-mode=required` (MySQL). MariaDB 10.11 is what the tests run against; MySQL 8 is
//! expected to work (same statements) but is not tested here.
//!
//! [`SqlStore::connect`] runs the embedded migrations (see [`Migration`]) unless
//! [`SqlOptions::migrate`] is off.
//!
//! How the contract's atomic operations are kept:
//!
//! - A claim is a single conditional `UPDATE` of the job (`WHERE version = ? AND next_run_at
//!   = ? AND enabled ...`; the database re-checks the condition on the latest committed row,
//!   so of two racing claims exactly one matches) and the `INSERT` of the slot's executions,
//!   whose primary key is derived from the job and the slot: a second claim of a slot cannot
//!   be written even by a writer that skipped the condition. No lock is held after it, none
//!   while the AI call runs.
//! - A finish is fenced the same way (`WHERE status = 'running' AND lease_owner = ?`); the
//!   job's statistics are computed by the database in the same write (`total_runs =
//!   total_runs + 1`, ...), never read and written back.
//! - Both are one round trip where the database allows it: on PostgreSQL one statement of
//!   data-modifying `WITH` queries (the fencing `UPDATE` first, the rest depending on what it
//!   returns); on SQLite a few statements that the writer connection's thread runs in one go,
//!   every statement carrying the condition and the deciding row written last. The claims and
//!   finishes queued for the writer at the same time share a transaction (group commit: up to
//!   16 writes of one kind in one `BEGIN IMMEDIATE ... COMMIT`), each with its own outcome: a
//!   write that fails is undone alone and reported to its caller alone. MySQL, which has neither `UPDATE ... RETURNING` nor writing
//!   `WITH` queries, runs them as a transaction that takes the job's row lock first (`SELECT
//!   ... FOR UPDATE`), the order every transaction locks in.
//! - Retention picks its rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL, so that
//!   instances cleaning up together do not wait for each other.
//! - Deadlocks, serialization failures and a busy SQLite file roll the transaction back; the
//!   store runs it again ([`SqlOptions::retries`]) before it reports `Unavailable`.
//!
//! On a SQLite file, the listings (`list_jobs`, `list_executions` and the other reads of many
//! rows) are read with [rusqlite](https://docs.rs/rusqlite) on connections of their own, over
//! the same bundled SQLite as sqlx's: each value is decoded where SQLite keeps it, without the
//! copy of every value sqlx's driver makes: a page of 1,000 jobs reads 2.5-3 times faster that
//! way. Every other statement, every read of an in-memory database, and every read of a file
//! whose URL asks for more than `mode=rwc` / `mode=rw` and `cache` run on sqlx.
//!
//! ```
//! use std::sync::Arc;
//! use chill_core::{Job, JobSpec, Store};
//! use chill_store_sql::SqlStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = SqlStore::connect("sqlite::memory:").await?;
//! let job = Job::create(JobSpec::new("digest", "Summarise the tickets", "0 9 * * MON-FRI"), chrono::Utc::now())?;
//! store.create_job(&job).await?;
//! assert_eq!(store.get_job(&job.id).await?.map(|j| j.name), Some("digest".to_string()));
//!
//! // Hand it to the engine as any store: `Chill::new(store, clock, ai, options)`.
//! let store: Arc<dyn Store> = Arc::new(store);
//! # let _ = store;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! What is stored how: ids as 16 bytes, instants as milliseconds since the Unix epoch, free text
//! (names, prompts, errors) as binary strings so that any string, NUL bytes included, comes
//! back byte for byte; JSON fields as text. The tables are `<prefix>jobs`,
//! `<prefix>executions` and `<prefix>migrations` (prefix `chill_` by default).

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("chill-store-sql needs at least one of the features `sqlite`, `postgres`, `mysql`");

#[cfg(feature = "sqlite")]
mod batch;
mod codec;
mod connect;
mod db;
#[cfg(feature = "sqlite")]
mod direct;
mod error;
mod migrate;
mod options;
mod script;
mod sql;
mod store;

use std::fmt;

pub use error::SqlError;
pub use migrate::Migration;
pub use options::SqlOptions;

/// The databases this crate speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite, a file or in memory (feature `sqlite`).
    Sqlite,
    /// PostgreSQL (feature `postgres`).
    Postgres,
    /// MySQL or MariaDB (feature `mysql`).
    MySql,
}

impl Backend {
    /// The database a URL names, by its scheme (whether or not its feature is enabled).
    ///
    /// ```
    /// use chill_store_sql::Backend;
    /// assert_eq!(Backend::from_url("sqlite::memory:").unwrap(), Backend::Sqlite);
    /// assert_eq!(Backend::from_url("postgresql://db/app").unwrap(), Backend::Postgres);
    /// assert_eq!(Backend::from_url("mariadb://db/app").unwrap(), Backend::MySql);
    /// assert!(Backend::from_url("redis://cache").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Backend, SqlError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(SqlError::UnsupportedUrl {
                scheme: scheme.chars().take(20).collect(),
            }),
        }
    }

    /// Its name for people: `SQLite`, `PostgreSQL`, `MySQL`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MySQL",
        }
    }

    /// The cargo feature that compiles its support in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A [`Store`](chill_core::Store) in a SQL database. Cheap to share: wrap it in an `Arc` and
/// hand it to as many engines as you like; every method may be called concurrently, from any
/// number of processes sharing the database.
///
/// Transient failures (a lost connection, a pool that stays exhausted, a SQLite file locked
/// by another process for longer than the busy timeout) are
/// [`StoreError::Unavailable`](chill_core::StoreError::Unavailable); deadlocks and
/// serialization failures are retried inside the store first.
pub struct SqlStore {
    pools: db::Pools,
    sql: sql::Statements,
    limits: codec::Limits,
    options: SqlOptions,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .field("table_prefix", &self.options.table_prefix)
            .field("schema", &self.options.schema)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connect with the default [`SqlOptions`] (migrations run, prefix `chill_`).
    pub async fn connect(url: &str) -> Result<SqlStore, SqlError> {
        SqlStore::connect_with(url, SqlOptions::default()).await
    }

    /// Connect with options. Runs the migrations when [`SqlOptions::migrate`] is set.
    pub async fn connect_with(url: &str, options: SqlOptions) -> Result<SqlStore, SqlError> {
        options.check()?;
        let backend = Backend::from_url(url)?;
        if options.schema.is_some() && backend != Backend::Postgres {
            return Err(SqlError::InvalidOption {
                option: "schema",
                message: format!(
                    "only PostgreSQL has schemas; for {backend} use table_prefix or another database"
                ),
            });
        }
        let (pools, max_value_bytes) = connect::pools(backend, url, &options).await?;
        let store = SqlStore {
            sql: sql::Statements::new(backend, &qualified_prefix(&options)),
            pools,
            limits: codec::Limits { max_value_bytes },
            options,
        };
        if store.options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Apply the embedded migrations the database lacks; how many were applied. Safe to call
    /// from several instances at once (they take a lock). [`SqlStore::connect`] calls it
    /// unless [`SqlOptions::migrate`] is off.
    pub async fn migrate(&self) -> Result<usize, SqlError> {
        migrate::run(
            &self.pools,
            self.options.schema.as_deref(),
            &self.options.table_prefix,
        )
        .await
    }

    /// The database.
    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqlOptions {
        &self.options
    }

    /// Close every connection; operations afterwards fail with
    /// [`StoreError::Unavailable`](chill_core::StoreError::Unavailable).
    pub async fn close(&self) {
        self.pools.close().await;
    }
}

/// The table prefix with its schema: `myschema.chill_` or `chill_`.
fn qualified_prefix(options: &SqlOptions) -> String {
    match &options.schema {
        Some(schema) => format!("{schema}.{}", options.table_prefix),
        None => options.table_prefix.clone(),
    }
}
