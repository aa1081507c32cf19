//! Listings of a SQLite file read straight from SQLite's rows, on a blocking thread, instead of
//! through sqlx.
//!
//! sqlx's SQLite driver copies every value of every row (`sqlite3_value_dup`, an `Arc` per
//! value), hands the rows over a channel from its connection's thread, and frees each copy when
//! the row is dropped: for a page of 1,000 jobs of 52 columns that was most of the page's cost.
//! Here each value is read where SQLite keeps it (`sqlite3_column_*`) and decoded into the model
//! at once; the only copies are the model's own strings.
//!
//! Only the reads of many rows ([`crate::db::Pools::fetch_decoded`]) come here; everything else,
//! and every read of an in-memory database (which lives in sqlx's one connection), stays on
//! sqlx. The connections are opened on the same file with the same busy timeout, read-write
//! (as sqlx's readers, so that a reader may run WAL recovery) but with `query_only`, and kept
//! for the store's life.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::db::{Arg, Columns, FromColumns};
use crate::error::Fail;

/// Statements each connection keeps prepared: a listing's text depends on its filters.
const PREPARED_STATEMENTS: usize = 32;

/// Reader connections to one SQLite file.
#[derive(Debug)]
pub(crate) struct DirectReads {
    path: PathBuf,
    busy_timeout: Duration,
    acquire_timeout: Duration,
    /// Connections not in use.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection that may be open: as many as sqlx's reader pool.
    permits: Semaphore,
}

impl DirectReads {
    /// Readers of the file at `path`; connections are opened when first needed.
    pub(crate) fn new(
        path: PathBuf,
        max_connections: u32,
        busy_timeout: Duration,
        acquire_timeout: Duration,
    ) -> DirectReads {
        let permits = usize::try_from(max_connections.max(1)).unwrap_or(1);
        DirectReads {
            path,
            busy_timeout,
            acquire_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(permits),
        }
    }

    /// Run one reading statement and decode every row, on a blocking thread.
    pub(crate) async fn fetch_decoded<T: FromColumns>(
        self: &Arc<Self>,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<T>, Fail> {
        let permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(sqlx::Error::PoolClosed.into()),
            Err(_elapsed) => return Err(sqlx::Error::PoolTimedOut.into()),
        };
        let reads = Arc::clone(self);
        let sql = sql.to_string();
        let done = tokio::task::spawn_blocking(move || reads.run(&sql, &args)).await;
        drop(permit);
        done.map_err(|_panicked| Fail::from(sqlx::Error::WorkerCrashed))?
    }

    /// Stop: later reads fail as a closed pool, idle connections are closed.
    pub(crate) fn close(&self) {
        self.permits.close();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// On the blocking thread: take a connection, run, put the connection back.
    fn run<T: FromColumns>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>, Fail> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(database_error)?,
        };
        let read = read_all(&conn, sql, args);
        if !self.permits.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
        read
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        Ok(conn)
    }
}

/// Every row of `sql` with `args`, decoded.
fn read_all<T: FromColumns>(conn: &Connection, sql: &str, args: &[Arg]) -> Result<Vec<T>, Fail> {
    let mut statement = conn.prepare_cached(sql).map_err(database_error)?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(args.iter().map(value)))
        .map_err(database_error)?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(database_error)? {
        decoded.push(T::from_columns(row)?);
    }
    Ok(decoded)
}

/// A bound value as SQLite stores it (as sqlx's SQLite driver binds it).
fn value(arg: &Arg) -> Value {
    match arg {
        Arg::Int(v) => v.map_or(Value::Null, Value::Integer),
        Arg::Bool(v) => Value::Integer(i64::from(*v)),
        Arg::Bytes(v) => v.clone().map_or(Value::Null, Value::Blob),
        Arg::Text(v) => v.clone().map_or(Value::Null, Value::Text),
        Arg::Uuid(v) => v.map_or(Value::Null, |id| Value::Blob(id.as_bytes().to_vec())),
    }
}

impl Columns for rusqlite::Row<'_> {
    fn opt_i64(&self, idx: usize) -> Result<Option<i64>, String> {
        match value_ref(self, idx)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(v) => Ok(Some(v)),
            other => Err(mismatch("an integer", other)),
        }
    }

    fn bool(&self, idx: usize) -> Result<bool, String> {
        match value_ref(self, idx)? {
            ValueRef::Integer(v) => Ok(v != 0),
            other => Err(mismatch("a boolean (integer)", other)),
        }
    }

    fn opt_string(&self, idx: usize) -> Result<Option<String>, String> {
        self.with_opt_text(idx, str::to_owned)
    }

    fn with_opt_text<T>(
        &self,
        idx: usize,
        read: impl FnOnce(&str) -> T,
    ) -> Result<Option<T>, String> {
        match value_ref(self, idx)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) | ValueRef::Text(b) => std::str::from_utf8(b)
                .map(|s| Some(read(s)))
                .map_err(|e| e.to_string()),
            other => Err(mismatch("text", other)),
        }
    }

    fn opt_uuid(&self, idx: usize) -> Result<Option<Uuid>, String> {
        match value_ref(self, idx)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Uuid::from_slice(b).map(Some).map_err(|e| e.to_string()),
            other => Err(mismatch("a 16-byte id", other)),
        }
    }
}

fn value_ref<'r>(row: &'r rusqlite::Row<'_>, idx: usize) -> Result<ValueRef<'r>, String> {
    row.get_ref(idx).map_err(|e| e.to_string())
}

fn mismatch(expected: &str, found: ValueRef<'_>) -> String {
    format!("expected {expected}, found {:?}", found.data_type())
}

/// An error of SQLite met by a direct read, as the sqlx error the store's error mapping reads:
/// the extended result code is kept, so that a busy file is retried and a missing file is
/// `Unavailable`, as on sqlx's connections.
fn database_error(e: rusqlite::Error) -> Fail {
    let code = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code),
        _ => None,
    };
    Fail::from(sqlx::Error::Database(Box::new(DirectError {
        code,
        message: e.to_string(),
    })))
}

/// See [`database_error`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DirectError {
    /// SQLite's extended result code, when SQLite gave one.
    code: Option<i32>,
    message: String,
}

impl DirectError {
    /// SQLite's extended result code.
    pub(crate) fn extended_code(&self) -> Option<i32> {
        self.code
    }
}

impl sqlx::error::DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.map(|c| c.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chill_core::StoreError;

    use super::*;

    /// A row of the test table: an integer, free text and an id.
    #[derive(Debug, PartialEq)]
    struct Item(Option<i64>, Option<String>, Option<Uuid>);

    impl FromColumns for Item {
        fn from_columns(row: &impl Columns) -> Result<Item, StoreError> {
            let fail = |e: String| StoreError::Backend(e);
            Ok(Item(
                row.opt_i64(0).map_err(fail)?,
                row.opt_string(1).map_err(fail)?,
                row.opt_uuid(2).map_err(fail)?,
            ))
        }
    }

    fn temp_file(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "chill-direct-{name}-{}-{}.db",
            std::process::id(),
            Uuid::new_v4()
        ));
        let _ = std::fs::remove_file(&path);
        path
    }

    fn reads(path: PathBuf) -> Arc<DirectReads> {
        Arc::new(DirectReads::new(
            path,
            2,
            Duration::from_secs(1),
            Duration::from_secs(5),
        ))
    }

    /// The store error of a read that must fail.
    async fn failure(reads: &Arc<DirectReads>, sql: &str, args: Vec<Arg>) -> StoreError {
        reads
            .fetch_decoded::<Item>(sql, args)
            .await
            .unwrap_err()
            .into_store_error("reading")
    }

    #[tokio::test]
    async fn rows_are_read_with_bound_arguments_until_closed() {
        let path = temp_file("rows");
        let id = Uuid::new_v4();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE t (n INTEGER, s BLOB, id BLOB)")
                .unwrap();
            conn.execute(
                "INSERT INTO t VALUES (1, ?1, ?2), (2, NULL, NULL), (3, x'FF', NULL)",
                rusqlite::params![b"nul \0 and \xc3\xbc".as_slice(), id.as_bytes().as_slice()],
            )
            .unwrap();
        }
        let reads = reads(path.clone());
        let sql = "SELECT n, s, id FROM t WHERE n <= ? AND (id = ? OR id IS NULL) ORDER BY n";
        let args = || vec![Arg::Int(Some(2)), Arg::Uuid(Some(id))];
        let items: Vec<Item> = reads.fetch_decoded(sql, args()).await.unwrap();
        assert_eq!(
            items,
            [
                Item(Some(1), Some("nul \0 and ü".into()), Some(id)),
                Item(Some(2), None, None),
            ]
        );
        // Bytes that are not UTF-8 are an error naming the problem, not a panic.
        let bad = failure(&reads, "SELECT n, s, id FROM t WHERE n = 3", vec![]).await;
        assert!(
            matches!(&bad, StoreError::Backend(m) if m.contains("utf-8")),
            "{bad:?}"
        );
        // A statement SQLite refuses is the database's error.
        let wrong = failure(&reads, "SELECT nope FROM t", vec![]).await;
        assert!(
            matches!(&wrong, StoreError::Backend(m) if m.contains("nope")),
            "{wrong:?}"
        );
        // The connections write nothing.
        let write = failure(&reads, "DELETE FROM t RETURNING n, s, id", vec![]).await;
        assert!(
            matches!(&write, StoreError::Backend(m) if m.contains("readonly")),
            "{write:?}"
        );
        assert_eq!(
            reads
                .fetch_decoded::<Item>(sql, args())
                .await
                .unwrap()
                .len(),
            2
        );
        reads.close();
        let closed = failure(&reads, sql, args()).await;
        assert!(matches!(closed, StoreError::Unavailable(_)), "{closed:?}");
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_unavailable() {
        let path = temp_file("missing");
        let reads = reads(path.clone());
        let missing = failure(&reads, "SELECT 1, NULL, NULL", vec![]).await;
        assert!(matches!(missing, StoreError::Unavailable(_)), "{missing:?}");
        // Never created by a reader.
        assert!(!path.exists());
    }
}
