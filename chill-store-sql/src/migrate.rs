//! The embedded migrations and their runner.
//!
//! Each database has its own folder of numbered SQL files (`migrations/sqlite`,
//! `migrations/postgres`, `migrations/mysql`), embedded in the crate. In them `${q}` stands for
//! the (schema-qualified) table prefix and `${p}` for the bare prefix, used in index names.
//! Applied migrations are recorded in the table `<prefix>migrations` with a checksum of their
//! text, so stores with different prefixes live side by side in one database.
//!
//! The runner holds a lock while it works, so that instances starting together migrate once:
//! SQLite's write lock, a PostgreSQL transaction-level advisory lock, or MySQL's `GET_LOCK`.

use chrono::Utc;

use crate::db::{Arg, Pools};
use crate::{Backend, SqlError};

/// One embedded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number: migrations run in this order, once each.
    pub version: i64,
    /// What it does.
    pub name: &'static str,
    /// Its SQL, with `${q}` (qualified table prefix) and `${p}` (bare prefix) to fill in.
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "create_jobs_and_executions",
        sql: include_str!("../migrations/sqlite/0001_create_jobs_and_executions.sql"),
    },
    Migration {
        version: 2,
        name: "operations",
        sql: include_str!("../migrations/sqlite/0002_operations.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "create_jobs_and_executions",
        sql: include_str!("../migrations/postgres/0001_create_jobs_and_executions.sql"),
    },
    Migration {
        version: 2,
        name: "operations",
        sql: include_str!("../migrations/postgres/0002_operations.sql"),
    },
];

const MYSQL: &[Migration] = &[
    Migration {
        version: 1,
        name: "create_jobs_and_executions",
        sql: include_str!("../migrations/mysql/0001_create_jobs_and_executions.sql"),
    },
    Migration {
        version: 2,
        name: "operations",
        sql: include_str!("../migrations/mysql/0002_operations.sql"),
    },
];

impl Migration {
    /// The embedded migrations of a database, in order.
    pub fn all(backend: Backend) -> &'static [Migration] {
        match backend {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
            Backend::MySql => MYSQL,
        }
    }

    /// A checksum of the migration's text (64-bit FNV-1a, hex).
    pub fn checksum(&self) -> String {
        fnv(self.sql)
    }

    /// The migration's statements for a table prefix, `qualified` being the prefix with its
    /// schema (`myschema.chill_`) or the bare prefix.
    pub fn statements(&self, qualified: &str, prefix: &str) -> Vec<String> {
        let sql = self.sql.replace("${q}", qualified).replace("${p}", prefix);
        let mut out = Vec::new();
        let mut current = String::new();
        for line in sql.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with("--") {
                continue;
            }
            current.push_str(line);
            current.push('\n');
            if trimmed.ends_with(';') {
                let statement = current.trim().trim_end_matches(';').to_string();
                out.push(statement);
                current.clear();
            }
        }
        if !current.trim().is_empty() {
            out.push(current.trim().to_string());
        }
        out
    }
}

fn migrations_table(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        ),
        Backend::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {table} (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        ),
        Backend::MySql => format!(
            "CREATE TABLE IF NOT EXISTS {table} (version BIGINT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, checksum VARCHAR(64) NOT NULL, applied_at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        ),
    }
}

/// Apply every embedded migration the database lacks. Returns how many were applied.
pub(crate) async fn run(
    pools: &Pools,
    schema: Option<&str>,
    prefix: &str,
) -> Result<usize, SqlError> {
    let backend = pools.backend();
    let qualified = match schema {
        Some(s) => format!("{s}.{prefix}"),
        None => prefix.to_string(),
    };
    let table = format!("{qualified}migrations");
    let failed = |version: i64, name: &str, e: sqlx::Error| SqlError::Migration {
        version,
        name: name.to_string(),
        message: e.to_string(),
    };
    let setup = |e| failed(0, "setup", e);

    let mut tx = pools.begin().await.map_err(setup)?;
    match backend {
        Backend::Sqlite => {}
        Backend::Postgres => {
            let key = i64::from_str_radix(&fnv(&table)[..15], 16).unwrap_or(0);
            tx.execute(
                &backend.placeholders("SELECT pg_advisory_xact_lock(?)"),
                vec![Arg::Int(Some(key))],
            )
            .await
            .map_err(setup)?;
            if let Some(schema) = schema {
                tx.execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"), vec![])
                    .await
                    .map_err(setup)?;
            }
        }
        Backend::MySql => {
            let row = tx
                .fetch_optional(
                    "SELECT CAST(GET_LOCK(?, 60) AS SIGNED)",
                    vec![Arg::Text(Some(format!("chill-migrate-{table}")))],
                )
                .await
                .map_err(setup)?;
            let locked = row.map(|r| r.opt_i64(0)).transpose().map_err(setup)?;
            if locked.flatten() != Some(1) {
                return Err(SqlError::Migration {
                    version: 0,
                    name: "setup".into(),
                    message: "another instance held the migration lock for 60 s".into(),
                });
            }
        }
    }
    tx.execute(&migrations_table(backend, &table), vec![])
        .await
        .map_err(setup)?;
    let rows = tx
        .fetch_all(&format!("SELECT version, checksum FROM {table}"), vec![])
        .await
        .map_err(setup)?;
    let mut applied = Vec::new();
    for row in rows {
        let version = row.i64(0).map_err(setup)?;
        let checksum = row.opt_text(1).map_err(setup)?.unwrap_or_default();
        applied.push((version, checksum));
    }
    let mut count = 0;
    for m in Migration::all(backend) {
        if let Some((_, checksum)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *checksum != m.checksum() {
                return Err(SqlError::MigrationChanged {
                    version: m.version,
                    name: m.name.to_string(),
                    applied: checksum.clone(),
                    embedded: m.checksum(),
                });
            }
            continue;
        }
        for statement in m.statements(&qualified, prefix) {
            tx.execute(&statement, vec![])
                .await
                .map_err(|e| failed(m.version, m.name, e))?;
        }
        tx.execute(
            &backend.placeholders(&format!(
                "INSERT INTO {table} (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)"
            )),
            vec![
                Arg::Int(Some(m.version)),
                Arg::Text(Some(m.name.to_string())),
                Arg::Text(Some(m.checksum())),
                Arg::Int(Some(Utc::now().timestamp_millis())),
            ],
        )
        .await
        .map_err(|e| failed(m.version, m.name, e))?;
        count += 1;
    }
    if backend == Backend::MySql {
        tx.execute(
            "SELECT RELEASE_LOCK(?)",
            vec![Arg::Text(Some(format!("chill-migrate-{table}")))],
        )
        .await
        .map_err(setup)?;
    }
    tx.commit().await.map_err(setup)?;
    Ok(count)
}

/// 64-bit FNV-1a of a text, hex.
fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_and_prefixed() {
        for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
            let m = Migration::all(backend)[0];
            let statements = m.statements("s.x_", "x_");
            assert!(statements.len() >= 2, "{backend:?}");
            assert!(statements.iter().all(|s| !s.contains("${")));
            assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS s.x_jobs"));
            assert!(statements.iter().all(|s| !s.trim_end().ends_with(';')));
        }
    }
}
