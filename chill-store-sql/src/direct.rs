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
//! sqlx, as does a file whose URL asks for more than sqlx's defaults (`connect.rs`,
//! `direct_reads_fit`). The connections are opened on the same file with sqlx's flags for it
//! (read-write, no mutex, URI filenames), the same busy timeout and `query_only`; at most as
//! many as the reader pool are open, and each is replaced after [`MAX_LIFETIME`], as sqlx's
//! readers are, so that a file replaced on disk is eventually read again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::db::{Arg, Columns, FromColumns};
use crate::error::Fail;

/// Statements each connection keeps prepared: a listing's text depends on its filters.
const PREPARED_STATEMENTS: usize = 32;

/// How long a connection is used before it is closed and a new one opened (sqlx's default
/// `max_lifetime`).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Reader connections to one SQLite file.
#[derive(Debug)]
pub(crate) struct DirectReads {
    path: PathBuf,
    busy_timeout: Duration,
    acquire_timeout: Duration,
    /// Connections not in use, with when each was opened.
    idle: Mutex<Vec<(Connection, Instant)>>,
    /// As many permits as connections may be open (the reader pool's size). A read holds one
    /// until its blocking work is done, also when its caller stopped waiting for it.
    permits: Arc<Semaphore>,
    max_connections: u32,
}

impl DirectReads {
    /// Readers of the file at `path`; connections are opened when first needed.
    pub(crate) fn new(
        path: PathBuf,
        max_connections: u32,
        busy_timeout: Duration,
        acquire_timeout: Duration,
    ) -> DirectReads {
        let max_connections = max_connections.max(1);
        DirectReads {
            path,
            busy_timeout,
            acquire_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(
                usize::try_from(max_connections).unwrap_or(1),
            )),
            max_connections,
        }
    }

    /// Run one reading statement and decode every row, on a blocking thread. A panic there
    /// is resumed in the caller, as it would be on sqlx's path.
    pub(crate) async fn fetch_decoded<T: FromColumns>(
        self: &Arc<Self>,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<T>, Fail> {
        let acquire = Arc::clone(&self.permits).acquire_owned();
        let permit = match tokio::time::timeout(self.acquire_timeout, acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(sqlx::Error::PoolClosed.into()),
            Err(_elapsed) => return Err(sqlx::Error::PoolTimedOut.into()),
        };
        let reads = Arc::clone(self);
        let sql = sql.to_string();
        let done = tokio::task::spawn_blocking(move || {
            let read = reads.run(&sql, args);
            drop(permit);
            read
        })
        .await;
        match done {
            Ok(read) => read,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_cancelled) => Err(sqlx::Error::WorkerCrashed.into()),
        }
    }

    /// Stop: wait for the reads under way, then close every connection; later reads fail as
    /// on a closed pool.
    pub(crate) async fn close(&self) {
        let all = self.permits.acquire_many(self.max_connections).await;
        self.permits.close();
        drop(all);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// On the blocking thread: take a connection, run, put the connection back.
    fn run<T: FromColumns>(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>, Fail> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (conn, opened) = match idle {
            Some(idle) => idle,
            None => (self.open().map_err(database_error)?, Instant::now()),
        };
        let read = read_all(&conn, sql, args);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.permits.is_closed() && opened.elapsed() < MAX_LIFETIME {
            idle.push((conn, opened));
        }
        read
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        Ok(conn)
    }
}

/// Every row of `sql` with `args`, decoded.
fn read_all<T: FromColumns>(conn: &Connection, sql: &str, args: Vec<Arg>) -> Result<Vec<T>, Fail> {
    let mut statement = conn.prepare_cached(sql).map_err(database_error)?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(args.into_iter().map(value)))
        .map_err(database_error)?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(database_error)? {
        decoded.push(T::from_columns(row)?);
    }
    Ok(decoded)
}

/// A bound value as SQLite stores it (as sqlx's SQLite driver binds it).
fn value(arg: Arg) -> Value {
    match arg {
        Arg::Int(v) => v.map_or(Value::Null, Value::Integer),
        Arg::Bool(v) => Value::Integer(i64::from(v)),
        Arg::Bytes(v) => v.map_or(Value::Null, Value::Blob),
        Arg::Text(v) => v.map_or(Value::Null, Value::Text),
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
    let code = e.sqlite_error().map(|failure| failure.extended_code);
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

    /// A new SQLite file in the temporary directory, set up by `sql`.
    fn file_with(name: &str, sql: &str) -> PathBuf {
        let path = temp_file(name);
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
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
        let path = file_with("rows", "CREATE TABLE t (n INTEGER, s BLOB, id BLOB)");
        let id = Uuid::new_v4();
        {
            let conn = Connection::open(&path).unwrap();
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
        reads.close().await;
        assert!(reads.idle.lock().unwrap().is_empty());
        let closed = failure(&reads, sql, args()).await;
        assert!(matches!(closed, StoreError::Unavailable(_)), "{closed:?}");
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_read_whose_caller_stopped_waiting_keeps_its_connection_until_done() {
        let path = file_with("cancelled", "CREATE TABLE t (n INTEGER)");
        let reads = Arc::new(DirectReads::new(
            path.clone(),
            1,
            Duration::from_secs(1),
            Duration::from_secs(60),
        ));
        // A statement that runs for a while: counting a few million rows.
        let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                    WHERE x < 20000000) SELECT count(*), NULL, NULL FROM c";
        let started = reads.fetch_decoded::<Item>(slow, vec![]);
        // Polled once (the read starts on its blocking thread), then dropped.
        assert!(futures_util::FutureExt::now_or_never(started).is_none());
        // The permit went with the blocking work, not with the dropped caller: the one
        // connection allowed is still taken, and the next read waits for it.
        assert_eq!(reads.permits.available_permits(), 0);
        let next: Vec<Item> = reads
            .fetch_decoded("SELECT 7, NULL, NULL", vec![])
            .await
            .unwrap();
        assert_eq!(next, [Item(Some(7), None, None)]);
        // One connection was opened in all, and it is idle again.
        assert_eq!(reads.idle.lock().unwrap().len(), 1);
        reads.close().await;
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_uri_filename_is_opened_as_sqlx_opens_it() {
        let path = file_with(
            "uri",
            "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (5)",
        );
        let reads = reads(PathBuf::from(format!("file:{}", path.display())));
        let items: Vec<Item> = reads
            .fetch_decoded("SELECT n, NULL, NULL FROM t", vec![])
            .await
            .unwrap();
        assert_eq!(items, [Item(Some(5), None, None)]);
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
