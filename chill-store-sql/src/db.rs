//! One thin layer over the three sqlx drivers: pools, transactions, bound arguments and rows,
//! so that the store's logic is written once.
//!
//! Statements are written with `?` placeholders; [`Backend::placeholders`] rewrites them to
//! `$1, $2, ...` for PostgreSQL.

use std::sync::Arc;

use uuid::Uuid;

use crate::Backend;
use crate::error::Fail;
use crate::script::Sql;

/// A bound value. Nulls carry their type, which PostgreSQL needs.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Bool(bool),
    Bytes(Option<Vec<u8>>),
    Text(Option<String>),
    Uuid(Option<Uuid>),
}

/// Build a query of database `$db` from SQL text and arguments.
macro_rules! bound {
    ($db:ty, $sql:expr, $args:expr) => {{
        let mut q = sqlx::query::<$db>($sql);
        for arg in $args {
            q = match arg {
                Arg::Int(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::Uuid(v) => q.bind(v),
            };
        }
        q
    }};
}
#[cfg(feature = "sqlite")]
pub(crate) use bound;

/// What a write returned: the rows of its statements, and how many rows its last statement
/// changed (SQLite; elsewhere how many rows it returned).
#[derive(Default)]
pub(crate) struct Written {
    pub(crate) rows: Vec<Row>,
    pub(crate) last_changes: u64,
}

/// The connection pools of a store.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// SQLite: one connection for all writes (so writers queue in the process instead of
    /// contending for the file lock), and a pool of readers. For an in-memory database both are
    /// the same single connection.
    #[cfg(feature = "sqlite")]
    Sqlite {
        writer: sqlx::SqlitePool,
        reader: sqlx::SqlitePool,
        /// The claims and finishes queued for the writer.
        writes: Arc<crate::batch::Writes>,
        /// Listings read without sqlx: on a file whose URL asks for nothing more (`connect.rs`,
        /// `direct_reads_fit`); never on an in-memory database.
        direct: Option<Arc<crate::direct::DirectReads>>,
    },
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

/// An open transaction.
pub(crate) enum Tx {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

/// A result row.
pub(crate) enum Row {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::sqlite::SqliteRow),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::postgres::PgRow),
    #[cfg(feature = "mysql")]
    MySql(sqlx::mysql::MySqlRow),
}

type Result<T> = std::result::Result<T, sqlx::Error>;

/// The fewest rows of a result that [`Pools::fetch_decoded`] frees on a blocking thread.
const FREE_IN_BACKGROUND: usize = 64;

impl Pools {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { .. } => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pools::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            Pools::MySql(_) => Backend::MySql,
        }
    }

    /// Begin a write transaction (SQLite: `BEGIN IMMEDIATE`, so that the write lock is taken
    /// at once and a transaction never has to upgrade its lock).
    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { writer, .. } => Tx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => Tx::Postgres(p.begin().await?),
            #[cfg(feature = "mysql")]
            Pools::MySql(p) => Tx::MySql(p.begin().await?),
        })
    }

    /// Run one reading statement outside a transaction.
    pub(crate) async fn fetch_all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { reader, .. } => bound!(sqlx::Sqlite, sql, args)
                .fetch_all(reader)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => bound!(sqlx::Postgres, sql, args)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
            #[cfg(feature = "mysql")]
            Pools::MySql(p) => bound!(sqlx::MySql, sql, args)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(Row::MySql)
                .collect(),
        })
    }

    /// Run one reading statement outside a transaction and decode every row.
    ///
    /// On a SQLite file the rows are read without sqlx (see `direct`). Elsewhere each row is
    /// decoded as it arrives, so that decoding overlaps with the database producing the next
    /// rows, and the rows of a large result are then freed on a blocking thread: a page of
    /// jobs is tens of thousands of small frees the caller need not wait for.
    pub(crate) async fn fetch_decoded<T: FromColumns>(
        &self,
        sql: &str,
        args: Vec<Arg>,
    ) -> std::result::Result<Vec<T>, Fail> {
        use futures_util::TryStreamExt;
        let mut decoded = Vec::new();
        let mut rows = Vec::new();
        macro_rules! each_row {
            ($db:ty, $pool:expr, $wrap:path) => {{
                let mut stream = bound!($db, sql, args).fetch($pool);
                while let Some(row) = stream.try_next().await? {
                    let row = $wrap(row);
                    decoded.push(T::from_columns(&row)?);
                    rows.push(row);
                }
            }};
        }
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite {
                direct: Some(direct),
                ..
            } => return direct.fetch_decoded(sql, args).await,
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { reader, .. } => each_row!(sqlx::Sqlite, reader, Row::Sqlite),
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => each_row!(sqlx::Postgres, p, Row::Postgres),
            #[cfg(feature = "mysql")]
            Pools::MySql(p) => each_row!(sqlx::MySql, p, Row::MySql),
        }
        if rows.len() >= FREE_IN_BACKGROUND {
            drop(tokio::task::spawn_blocking(move || drop(rows)));
        }
        Ok(decoded)
    }

    /// Run one reading statement outside a transaction; its first row.
    pub(crate) async fn fetch_optional(&self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { reader, .. } => bound!(sqlx::Sqlite, sql, args)
                .fetch_optional(reader)
                .await?
                .map(Row::Sqlite),
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => bound!(sqlx::Postgres, sql, args)
                .fetch_optional(p)
                .await?
                .map(Row::Postgres),
            #[cfg(feature = "mysql")]
            Pools::MySql(p) => bound!(sqlx::MySql, sql, args)
                .fetch_optional(p)
                .await?
                .map(Row::MySql),
        })
    }

    /// Run one writing statement on its own (autocommit); the rows it affected.
    pub(crate) async fn execute(&self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { writer, .. } => bound!(sqlx::Sqlite, sql, args)
                .execute(writer)
                .await?
                .rows_affected(),
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => bound!(sqlx::Postgres, sql, args)
                .execute(p)
                .await?
                .rows_affected(),
            #[cfg(feature = "mysql")]
            Pools::MySql(p) => bound!(sqlx::MySql, sql, args)
                .execute(p)
                .await?
                .rows_affected(),
        })
    }

    /// Run a write in one round trip: on SQLite a body of statements queued for the writer
    /// connection, which runs it in a transaction (together with other writes queued at the
    /// same time, see `batch`), elsewhere one statement (autocommit).
    pub(crate) async fn write(
        &self,
        script: Sql,
    ) -> std::result::Result<Written, Arc<sqlx::Error>> {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite { writes, .. } => writes.write(script).await,
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            _ => {
                let rows = self
                    .fetch_all(&script.text, script.args)
                    .await
                    .map_err(Arc::new)?;
                Ok(Written {
                    last_changes: rows.len() as u64,
                    rows,
                })
            }
        }
    }

    /// Close every connection.
    pub(crate) async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite {
                writer,
                reader,
                direct,
                ..
            } => {
                if let Some(direct) = direct {
                    direct.close().await;
                }
                close_pool(reader).await;
                close_pool(writer).await;
            }
            #[cfg(feature = "postgres")]
            Pools::Postgres(p) => close_pool(p).await,
            #[cfg(feature = "mysql")]
            Pools::MySql(p) => close_pool(p).await,
        }
    }
}

/// How long closing a pool waits for the connections sqlx's `Pool::close` left open.
const CLOSE_STRAGGLERS: std::time::Duration = std::time::Duration::from_secs(5);

/// Close `pool` and every connection of it.
///
/// sqlx 0.8's `Pool::close` can return with a connection still open (launchbadge/sqlx#3217,
/// fixed after 0.8.6). A connection on its way back to the pool (a task sqlx spawns when the
/// statement's caller lets go of it, which pings the connection before putting it back) can
/// reach the idle queue after `close` last looked there, and nothing closes it then; and the
/// permits `close` waits for can be counted twice. On a SQLite file, that connection keeps the
/// last one `close` closed from folding the write-ahead log back into the file and removing
/// it. So the pool is closed again, after a short pause, until no connection is left, for up
/// to [`CLOSE_STRAGGLERS`] after the first `close`; what is still open then is logged and
/// left. Like sqlx's own `close`, each `close` waits for the connections callers hold (the
/// store's operations hold one only while they run).
async fn close_pool<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    pool.close().await;
    let deadline = tokio::time::Instant::now() + CLOSE_STRAGGLERS;
    let mut pause = std::time::Duration::from_millis(1);
    while pool.size() > 0 {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                open = pool.size(),
                "connections still open after their pool was closed"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
        pool.close().await;
    }
}

impl Tx {
    /// Run a statement; the rows it affected.
    pub(crate) async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => bound!(sqlx::Sqlite, sql, args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => bound!(sqlx::Postgres, sql, args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => bound!(sqlx::MySql, sql, args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Run a statement; its rows.
    pub(crate) async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => bound!(sqlx::Sqlite, sql, args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => bound!(sqlx::Postgres, sql, args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => bound!(sqlx::MySql, sql, args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::MySql)
                .collect(),
        })
    }

    /// Run a statement; its first row.
    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Option<Row>> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => bound!(sqlx::Sqlite, sql, args)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => bound!(sqlx::Postgres, sql, args)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => bound!(sqlx::MySql, sql, args)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::MySql),
        })
    }

    /// Commit.
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.commit().await,
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => tx.commit().await,
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => tx.commit().await,
        }
    }

    /// Roll back (dropping a transaction rolls it back too, later).
    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.rollback().await,
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => tx.rollback().await,
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => tx.rollback().await,
        }
    }
}

/// Decode column `$idx` of `$row` as `$ty`.
macro_rules! get {
    ($row:expr, $ty:ty, $idx:expr) => {{
        use sqlx::Row as _;
        match $row {
            #[cfg(feature = "sqlite")]
            Row::Sqlite(r) => r.try_get::<$ty, _>($idx),
            #[cfg(feature = "postgres")]
            Row::Postgres(r) => r.try_get::<$ty, _>($idx),
            #[cfg(feature = "mysql")]
            Row::MySql(r) => r.try_get::<$ty, _>($idx),
        }
    }};
}

impl Row {
    pub(crate) fn opt_i64(&self, idx: usize) -> Result<Option<i64>> {
        get!(self, Option<i64>, idx)
    }

    pub(crate) fn i64(&self, idx: usize) -> Result<i64> {
        get!(self, i64, idx)
    }

    pub(crate) fn bool(&self, idx: usize) -> Result<bool> {
        get!(self, bool, idx)
    }

    pub(crate) fn opt_bytes(&self, idx: usize) -> Result<Option<Vec<u8>>> {
        get!(self, Option<Vec<u8>>, idx)
    }

    pub(crate) fn opt_text(&self, idx: usize) -> Result<Option<String>> {
        #[cfg(feature = "mysql")]
        if let Row::MySql(r) = self {
            // A column with a binary collation (`utf8mb4_bin`) is flagged binary, which sqlx
            // refuses to decode as a string: read its bytes.
            use sqlx::Row as _;
            return r
                .try_get::<Option<Vec<u8>>, _>(idx)?
                .map(|b| {
                    String::from_utf8(b).map_err(|e| sqlx::Error::ColumnDecode {
                        index: idx.to_string(),
                        source: Box::new(e),
                    })
                })
                .transpose();
        }
        get!(self, Option<String>, idx)
    }

    pub(crate) fn opt_uuid(&self, idx: usize) -> Result<Option<Uuid>> {
        get!(self, Option<Uuid>, idx)
    }
}

/// The values of one result row, read by column index, as the codec reads them. Errors are
/// messages; the codec names the column.
pub(crate) trait Columns {
    /// An integer, or NULL.
    fn opt_i64(&self, idx: usize) -> std::result::Result<Option<i64>, String>;
    /// A boolean.
    fn bool(&self, idx: usize) -> std::result::Result<bool, String>;
    /// Free text kept as UTF-8 bytes, or NULL.
    fn opt_string(&self, idx: usize) -> std::result::Result<Option<String>, String>;
    /// A text column (JSON, enumerations), or NULL, handed to `read`.
    fn with_opt_text<T>(
        &self,
        idx: usize,
        read: impl FnOnce(&str) -> T,
    ) -> std::result::Result<Option<T>, String>;
    /// A 16-byte id, or NULL.
    fn opt_uuid(&self, idx: usize) -> std::result::Result<Option<Uuid>, String>;
}

impl Columns for Row {
    fn opt_i64(&self, idx: usize) -> std::result::Result<Option<i64>, String> {
        Row::opt_i64(self, idx).map_err(|e| e.to_string())
    }

    fn bool(&self, idx: usize) -> std::result::Result<bool, String> {
        Row::bool(self, idx).map_err(|e| e.to_string())
    }

    fn opt_string(&self, idx: usize) -> std::result::Result<Option<String>, String> {
        Row::opt_bytes(self, idx)
            .map_err(|e| e.to_string())?
            .map(|b| String::from_utf8(b).map_err(|e| e.to_string()))
            .transpose()
    }

    fn with_opt_text<T>(
        &self,
        idx: usize,
        read: impl FnOnce(&str) -> T,
    ) -> std::result::Result<Option<T>, String> {
        Ok(Row::opt_text(self, idx)
            .map_err(|e| e.to_string())?
            .map(|t| read(&t)))
    }

    fn opt_uuid(&self, idx: usize) -> std::result::Result<Option<Uuid>, String> {
        Row::opt_uuid(self, idx).map_err(|e| e.to_string())
    }
}

/// A model read from a whole row ([`Pools::fetch_decoded`]).
pub(crate) trait FromColumns: Sized + Send + 'static {
    /// Decode one row.
    fn from_columns(row: &impl Columns) -> std::result::Result<Self, chill_core::StoreError>;
}

impl Backend {
    /// The statement for this database: `?` placeholders become `$1, $2, ...` for PostgreSQL
    /// (no statement of this crate has a `?` anywhere else).
    pub(crate) fn placeholders(self, sql: &str) -> String {
        if self != Backend::Postgres {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// `FOR UPDATE` where the database has row locks (a SQLite write transaction holds the
    /// whole file already).
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres | Backend::MySql => " FOR UPDATE",
        }
    }

    /// The function that gives the smaller of two integers.
    pub(crate) fn least(self) -> &'static str {
        match self {
            Backend::Sqlite => "min",
            Backend::Postgres | Backend::MySql => "LEAST",
        }
    }

    /// The function that gives the larger of two integers.
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Backend::Sqlite => "max",
            Backend::Postgres | Backend::MySql => "GREATEST",
        }
    }

    /// The operator of integer division.
    pub(crate) fn int_div(self) -> &'static str {
        match self {
            Backend::Sqlite | Backend::Postgres => "/",
            Backend::MySql => "DIV",
        }
    }

    /// An expression that is true when binary string `haystack` contains the bound `?`,
    /// byte for byte.
    pub(crate) fn contains(self, haystack: &str) -> String {
        match self {
            Backend::Sqlite => format!("instr({haystack}, ?) > 0"),
            Backend::Postgres => format!("position(? in {haystack}) > 0"),
            Backend::MySql => format!("LOCATE(?, {haystack}) > 0"),
        }
    }
}
