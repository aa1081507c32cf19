//! Store URLs: one match from a URL's scheme to the store that serves it.
//!
//! | URL | store |
//! |---|---|
//! | `sqlite://chill.db`, `sqlite:chill.db`, `sqlite::memory:` | SQLite (chill-store-sql) |
//! | `postgres://…`, `postgresql://…` | PostgreSQL (chill-store-sql) |
//! | `mysql://…`, `mariadb://…` | MySQL / MariaDB (chill-store-sql) |
//! | `memory:` | the in-memory store (gone when the process ends) |
//! | `dynamodb://TABLE?endpoint=URL&region=R` | DynamoDB (chill-store-dynamo; the table and its indexes are created if missing) |

use std::sync::Arc;

use chill_core::{MemoryStore, Store};
use chill_store_sql::SqlStore;

use crate::AppError;

/// The kinds of store a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// SQLite, PostgreSQL or MySQL/MariaDB through chill-store-sql.
    Sql,
    /// The in-memory store.
    Memory,
    /// DynamoDB through chill-store-dynamo.
    DynamoDb,
}

/// The store kind a URL names, by its scheme.
///
/// ```
/// use chill_examples::store_url::{StoreKind, kind_of};
/// assert_eq!(kind_of("sqlite://chill.db").unwrap(), StoreKind::Sql);
/// assert_eq!(kind_of("dynamodb://jobs?region=eu-west-1").unwrap(), StoreKind::DynamoDb);
/// assert!(kind_of("redis://cache").is_err());
/// ```
pub fn kind_of(url: &str) -> Result<StoreKind, AppError> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb" => Ok(StoreKind::Sql),
        "memory" => Ok(StoreKind::Memory),
        "dynamodb" => Ok(StoreKind::DynamoDb),
        _ => Err(AppError::UnknownStore {
            scheme: scheme.chars().take(20).collect(),
        }),
    }
}

/// A store opened from a URL, with what closes its connections.
#[derive(Clone)]
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The same store when it is a SQL one: its pools are closed by [`OpenedStore::close`].
    sql: Option<Arc<SqlStore>>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("sql", &self.sql.is_some())
            .finish_non_exhaustive()
    }
}

impl OpenedStore {
    /// Close the store's connections: a SQL store's pools (a SQLite file's last connection
    /// checkpoints its write-ahead log into the file and removes it; a server's connections
    /// end with a goodbye, not a reset). The in-memory and DynamoDB stores hold nothing that
    /// needs closing. Operations on the store afterwards fail.
    pub async fn close(&self) {
        if let Some(sql) = &self.sql {
            sql.close().await;
        }
    }
}

/// Open the store a URL names (SQL stores run their migrations).
pub async fn open_store(url: &str) -> Result<OpenedStore, AppError> {
    Ok(match kind_of(url)? {
        StoreKind::Sql => {
            let sql = Arc::new(SqlStore::connect(url).await?);
            OpenedStore {
                store: sql.clone(),
                sql: Some(sql),
            }
        }
        StoreKind::Memory => OpenedStore {
            store: Arc::new(MemoryStore::new()),
            sql: None,
        },
        StoreKind::DynamoDb => {
            let store = chill_store_dynamo::DynamoStore::connect(dynamo_options(url)?).await?;
            store.ensure_table().await?;
            OpenedStore {
                store: Arc::new(store),
                sql: None,
            }
        }
    })
}

/// The DynamoDB options of a `dynamodb://TABLE?endpoint=URL&region=R` URL (both parameters
/// optional: the standard AWS configuration supplies the rest).
///
/// ```
/// use chill_examples::store_url::dynamo_options;
/// let o = dynamo_options("dynamodb://chill?endpoint=http://127.0.0.1:8000&region=eu-west-1").unwrap();
/// assert_eq!(o.table_name, "chill");
/// assert_eq!(o.endpoint_url.as_deref(), Some("http://127.0.0.1:8000"));
/// assert_eq!(o.region.as_deref(), Some("eu-west-1"));
/// assert!(dynamo_options("dynamodb://?region=x").unwrap_err().to_string().contains("table name"));
/// assert!(dynamo_options("dynamodb://t?colour=red").unwrap_err().to_string().contains("colour"));
/// ```
pub fn dynamo_options(url: &str) -> Result<chill_store_dynamo::DynamoOptions, AppError> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| AppError::DynamoUrl(format!("'{url}' is not dynamodb://TABLE?...")))?;
    let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
    if table.is_empty() {
        return Err(AppError::DynamoUrl(
            "dynamodb:// needs a table name: dynamodb://TABLE?endpoint=URL&region=R".into(),
        ));
    }
    let mut options = chill_store_dynamo::DynamoOptions::new(table);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("endpoint", v)) if !v.is_empty() => options = options.with_endpoint_url(v),
            Some(("region", v)) if !v.is_empty() => options = options.with_region(v),
            _ => {
                return Err(AppError::DynamoUrl(format!(
                    "dynamodb:// parameter '{pair}' is not endpoint=URL or region=R"
                )));
            }
        }
    }
    Ok(options)
}

/// A URL for logs: the password, if any, replaced by `***`.
///
/// ```
/// use chill_examples::store_url::redacted;
/// assert_eq!(redacted("postgres://app:s3cret@db/app"), "postgres://app:***@db/app");
/// assert_eq!(redacted("sqlite://chill.db"), "sqlite://chill.db");
/// ```
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
