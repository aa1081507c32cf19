//! Test databases: each test gets its own (a SQLite file or memory database, a PostgreSQL
//! schema, a MySQL database), created here and dropped when the test ends, pass or fail.
//!
//! Servers: `CHILL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! `CHILL_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). A server that does not
//! answer skips the test with a notice, unless `CHILL_REQUIRE_SERVICES=1`: then it fails.

// Each test file uses a part of this module; helpers unwrap as tests do.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stdout)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use chill_store_sql::{SqlOptions, SqlStore};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SqliteMemory,
    SqliteFile,
    Postgres,
    MySql,
}

impl Kind {
    /// The databases compiled in.
    pub(crate) fn all() -> Vec<Kind> {
        let mut kinds = Vec::new();
        if cfg!(feature = "sqlite") {
            kinds.extend([Kind::SqliteMemory, Kind::SqliteFile]);
        }
        if cfg!(feature = "postgres") {
            kinds.push(Kind::Postgres);
        }
        if cfg!(feature = "mysql") {
            kinds.push(Kind::MySql);
        }
        kinds
    }
}

/// How to drop a test database.
#[derive(Debug, Clone)]
enum Cleanup {
    Nothing,
    File(PathBuf),
    #[cfg(feature = "postgres")]
    PgSchema {
        admin: String,
        schema: String,
    },
    #[cfg(feature = "mysql")]
    MyDatabase {
        admin: String,
        database: String,
    },
}

/// A test's own database.
#[derive(Debug, Clone)]
pub(crate) struct TestDb {
    pub(crate) kind: Kind,
    /// The URL the store connected to.
    pub(crate) url: String,
    /// The options it connected with (schema included).
    pub(crate) options: SqlOptions,
    cleanup: Cleanup,
}

fn unique(name: &str) -> String {
    let short: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .collect();
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("chill_t_{short}_{}", &rand[..8]).to_ascii_lowercase()
}

fn required() -> bool {
    std::env::var("CHILL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn unreachable(what: &str, url: &str, error: impl std::fmt::Display) -> Option<TestDb> {
    if required() {
        panic!("{what} at {url} is required (CHILL_REQUIRE_SERVICES=1) but unreachable: {error}");
    }
    println!(
        "SKIPPED: {what} at {url} is unreachable ({error}); set CHILL_REQUIRE_SERVICES=1 to fail instead"
    );
    None
}

pub(crate) fn postgres_url() -> String {
    std::env::var("CHILL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub(crate) fn mysql_url() -> String {
    std::env::var("CHILL_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// `url` with its database (path) replaced.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDb {
    /// A fresh database of `kind` for test `name`; `None` when its server is unreachable.
    pub(crate) async fn create(kind: Kind, name: &str) -> Option<TestDb> {
        let id = unique(name);
        match kind {
            Kind::SqliteMemory => Some(TestDb {
                kind,
                url: "sqlite::memory:".into(),
                options: SqlOptions::default(),
                cleanup: Cleanup::Nothing,
            }),
            Kind::SqliteFile => {
                let path = std::env::temp_dir().join(format!("{id}.db"));
                Some(TestDb {
                    kind,
                    url: format!("sqlite://{}", path.display()),
                    options: SqlOptions::default(),
                    cleanup: Cleanup::File(path),
                })
            }
            #[cfg(feature = "postgres")]
            Kind::Postgres => {
                use sqlx::Connection;
                let admin = postgres_url();
                match sqlx::PgConnection::connect(&admin).await {
                    Ok(conn) => {
                        let _ = conn.close().await;
                    }
                    Err(e) => return unreachable("PostgreSQL", &admin, e),
                }
                Some(TestDb {
                    kind,
                    url: admin.clone(),
                    options: SqlOptions::default().with_schema(id.clone()),
                    cleanup: Cleanup::PgSchema { admin, schema: id },
                })
            }
            #[cfg(feature = "mysql")]
            Kind::MySql => {
                use sqlx::{Connection, Executor};
                let admin = mysql_url();
                let mut conn = match sqlx::MySqlConnection::connect(&admin).await {
                    Ok(conn) => conn,
                    Err(e) => return unreachable("MySQL", &admin, e),
                };
                conn.execute(format!("CREATE DATABASE {id}").as_str())
                    .await
                    .unwrap();
                let _ = conn.close().await;
                Some(TestDb {
                    kind,
                    url: with_database(&admin, &id),
                    options: SqlOptions::default(),
                    cleanup: Cleanup::MyDatabase {
                        admin,
                        database: id,
                    },
                })
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// A store on this database (each call opens new connections).
    pub(crate) async fn store(&self) -> SqlStore {
        self.store_with(self.options.clone()).await
    }

    /// A store on this database with other options (the schema is kept).
    pub(crate) async fn store_with(&self, options: SqlOptions) -> SqlStore {
        let mut options = options;
        options.schema = self.options.schema.clone();
        SqlStore::connect_with(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("connecting to {:?} failed: {e}", self.kind))
    }

    /// Drop the database.
    pub(crate) async fn drop_all(&self) {
        match &self.cleanup {
            Cleanup::Nothing => {}
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            #[cfg(feature = "postgres")]
            Cleanup::PgSchema { admin, schema } => {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
                conn.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                    .await
                    .unwrap();
                let _ = conn.close().await;
            }
            #[cfg(feature = "mysql")]
            Cleanup::MyDatabase { admin, database } => {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::MySqlConnection::connect(admin).await.unwrap();
                conn.execute(format!("DROP DATABASE IF EXISTS {database}").as_str())
                    .await
                    .unwrap();
                let _ = conn.close().await;
            }
        }
    }
}

/// Run `test` on a fresh database of `kind` (skipped when its server is unreachable), and drop
/// the database afterwards, also when the test panics.
pub(crate) async fn with_db<F, Fut>(kind: Kind, name: &str, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::create(kind, name).await else {
        return;
    };
    let result = tokio::spawn(test(db.clone())).await;
    db.drop_all().await;
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

/// Run `test` with a store on a fresh database of each kind compiled in.
pub(crate) async fn on_each<F, Fut>(name: &str, test: F)
where
    F: Fn(TestDb, Arc<SqlStore>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    for kind in Kind::all() {
        let test = test.clone();
        with_db(kind, name, move |db| async move {
            let store = Arc::new(db.store().await);
            test(db, store.clone()).await;
            store.close().await;
        })
        .await;
    }
}
