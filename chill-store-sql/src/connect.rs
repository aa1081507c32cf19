//! Opening the pools of each database.

use crate::db::Pools;
use crate::{Backend, SqlError, SqlOptions};

/// The pools for `url`, and the largest value the store may write.
pub(crate) async fn pools(
    backend: Backend,
    url: &str,
    options: &SqlOptions,
) -> Result<(Pools, usize), SqlError> {
    match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => sqlite(url, options).await,
        #[cfg(feature = "postgres")]
        Backend::Postgres => postgres(url, options).await,
        #[cfg(feature = "mysql")]
        Backend::MySql => mysql(url, options).await,
        #[allow(unreachable_patterns)]
        other => Err(SqlError::FeatureDisabled {
            backend: other.name(),
            feature: other.feature(),
        }),
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite(url: &str, options: &SqlOptions) -> Result<(Pools, usize), SqlError> {
    use std::str::FromStr;

    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    let fail = |e| SqlError::connect("SQLite", e);
    // sqlx reads the scheme in lower case only.
    let url = &format!("sqlite:{}", url.get(7..).unwrap_or_default());
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(fail)?
        .create_if_missing(true)
        .busy_timeout(options.busy_timeout)
        .foreign_keys(false)
        // Rows of a listing wait in the channel from the connection's thread instead of
        // stopping that thread every 50 rows (the default) until the caller takes them.
        .row_buffer_size(1024);
    if in_memory {
        // One connection that lives as long as the store: the database lives in it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(fail)?;
        let pools = Pools::Sqlite {
            writes: crate::batch::Writes::new(pool.clone()),
            writer: pool.clone(),
            reader: pool,
            direct: None,
        };
        return Ok((pools, options.max_value_bytes));
    }
    // WAL: readers never block the writer nor each other; NORMAL synchronisation is durable
    // across process crashes (a power loss may lose the last transactions, never corrupt).
    let connect = connect
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let writer = sqlite_pool(&connect, 1, options).await.map_err(fail)?;
    let reader = sqlite_pool(&connect, options.max_connections, options)
        .await
        .map_err(fail)?;
    let direct = direct_reads_fit(url).then(|| {
        std::sync::Arc::new(crate::direct::DirectReads::new(
            connect.get_filename().to_path_buf(),
            options.max_connections,
            options.busy_timeout,
            options.acquire_timeout,
        ))
    });
    let pools = Pools::Sqlite {
        writes: crate::batch::Writes::new(writer.clone()),
        writer,
        reader,
        direct,
    };
    Ok((pools, options.max_value_bytes))
}

/// Whether the listings of the SQLite file of `url` may be read with rusqlite (`direct`), whose
/// connections are opened with sqlx's flags for a file read and written: only when the URL asks
/// for nothing else. A query parameter other than `mode=rwc` / `mode=rw` and `cache` (read-only,
/// immutable, another VFS, or anything spelled unusually) keeps every read on sqlx.
#[cfg(feature = "sqlite")]
fn direct_reads_fit(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .all(|pair| {
            matches!(
                pair.split_once('='),
                Some(("mode", "rwc" | "rw") | ("cache", "private" | "shared"))
            )
        })
}

/// A pool of up to `max_connections` connections to a SQLite file, opened again while the
/// file is busy, for up to the busy timeout.
///
/// The first connection switches a new file to WAL, which takes an exclusive lock that
/// SQLite's busy handler does not wait for: a process or store opening the same file at
/// that moment gets `SQLITE_BUSY` at once. Once the file is in WAL mode the switch is a
/// no-op, so waiting a little and opening again succeeds.
#[cfg(feature = "sqlite")]
async fn sqlite_pool(
    connect: &sqlx::sqlite::SqliteConnectOptions,
    max_connections: u32,
    options: &SqlOptions,
) -> Result<sqlx::SqlitePool, sqlx::Error> {
    // No ping before each use: a SQLite connection is a file handle, not a socket that can
    // break, and the ping is a round trip to the connection's worker thread.
    let open = || {
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
    };
    // A timeout too long for the clock: no deadline to wait for, no second try.
    let deadline = std::time::Instant::now().checked_add(options.busy_timeout);
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        match open().await {
            Err(e)
                if crate::error::is_retryable(&e)
                    && deadline.is_some_and(|d| std::time::Instant::now() < d) =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// How long a server connection may sit idle in the pool before it is pinged on its way out.
#[cfg(any(feature = "postgres", feature = "mysql"))]
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(5);

/// The pools' check of an idle connection before it is handed out: a ping only when it sat
/// idle for [`IDLE_BEFORE_PING`] or longer (a server restart or an idle timeout may have
/// closed it meanwhile). A connection in steady use goes out unchecked: a ping before every
/// statement was one more round trip per write. A connection that breaks anyway fails its
/// statement as `Unavailable`, which the engine retries on a new connection.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn ping_when_idle_long<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if meta.idle_for >= IDLE_BEFORE_PING {
            conn.ping().await?;
        }
        Ok(true)
    })
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str, options: &SqlOptions) -> Result<(Pools, usize), SqlError> {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    let fail = |e| SqlError::connect("PostgreSQL", e);
    let connect = PgConnectOptions::from_str(url).map_err(fail)?;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(ping_when_idle_long)
        .connect_with(connect)
        .await
        .map_err(fail)?;
    Ok((Pools::Postgres(pool), options.max_value_bytes))
}

#[cfg(feature = "mysql")]
async fn mysql(url: &str, options: &SqlOptions) -> Result<(Pools, usize), SqlError> {
    use std::str::FromStr;

    use sqlx::Executor;
    use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

    let fail = |e| SqlError::connect("MySQL", e);
    let connect = MySqlConnectOptions::from_str(url).map_err(fail)?;
    let pool = MySqlPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(ping_when_idle_long)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // READ COMMITTED: conditional updates see the latest committed row and take
                // no gap locks; strict mode: a value that does not fit is an error, never
                // silently cut.
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await?;
                conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                    .await?;
                Ok(())
            })
        })
        .connect_with(connect)
        .await
        .map_err(fail)?;
    let packet: i64 = sqlx::query_scalar("SELECT CAST(@@max_allowed_packet AS SIGNED)")
        .fetch_one(&pool)
        .await
        .map_err(fail)?;
    let max = usize::try_from(packet / 4)
        .unwrap_or(usize::MAX)
        .min(options.max_value_bytes);
    Ok((Pools::MySql(pool), max))
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::direct_reads_fit;

    #[test]
    fn direct_reads_only_where_they_open_the_file_as_sqlx_does() {
        assert!(direct_reads_fit("sqlite:chill.db"));
        assert!(direct_reads_fit("sqlite:file:/tmp/a.db"));
        assert!(direct_reads_fit("sqlite:/tmp/a.db?mode=rwc&cache=shared"));
        assert!(direct_reads_fit("sqlite:/tmp/a.db?mode=rw"));
        assert!(!direct_reads_fit("sqlite:/tmp/a.db?vfs=unix-dotfile"));
        assert!(!direct_reads_fit("sqlite:/tmp/a.db?%76fs=unix-dotfile"));
        assert!(!direct_reads_fit("sqlite:/tmp/a.db?mode=ro"));
        assert!(!direct_reads_fit("sqlite:/tmp/a.db?mode=rwc&immutable=1"));
    }
}
