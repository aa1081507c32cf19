//! What can be set besides the URL.

use std::time::Duration;

use crate::SqlError;

/// Settings of a [`SqlStore`](crate::SqlStore) besides its URL. Start from
/// [`SqlOptions::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use chill_store_sql::SqlOptions;
///
/// let options = SqlOptions::default()
///     .with_table_prefix("scheduler_")      // tables scheduler_jobs, scheduler_executions, ...
///     .with_migrations(false)               // the host runs the migrations itself
///     .with_max_connections(20)
///     .with_acquire_timeout(Duration::from_secs(2));
/// assert_eq!(options.table_prefix, "scheduler_");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlOptions {
    /// Run the embedded migrations when connecting (default `true`). Turn it off when the
    /// host migrates separately (see [`SqlStore::migrate`](crate::SqlStore::migrate) and the
    /// `migrations/` folder of this crate).
    pub migrate: bool,
    /// Prefix of every table and index name (default `chill_`): letters, digits and `_`.
    pub table_prefix: String,
    /// PostgreSQL only: the schema that holds the tables (created by the migrations when
    /// missing); `None` uses the connection's `search_path` (normally `public`). Letters,
    /// digits and `_`; PostgreSQL folds it to lower case.
    pub schema: Option<String>,
    /// Most connections to PostgreSQL or MySQL, and most reading connections to a SQLite file
    /// (which has one more, for all writes). Default 10.
    pub max_connections: u32,
    /// How long an operation waits for a free connection before it fails with
    /// `StoreError::Unavailable` (default 10 s).
    pub acquire_timeout: Duration,
    /// SQLite only: how long a write waits for another process's write lock on the same file
    /// (default 5 s).
    pub busy_timeout: Duration,
    /// Largest text or JSON value the store writes, in bytes (default 4 MiB). A larger value is
    /// refused with `StoreError::InvalidInput` naming the field, and nothing is written. For
    /// MySQL it is lowered at connect time to a quarter of the server's `max_allowed_packet`.
    pub max_value_bytes: usize,
    /// How many times an operation is run again after a deadlock, a serialization failure or a
    /// busy SQLite file before it fails with `StoreError::Unavailable` (default 8).
    pub retries: u32,
}

impl Default for SqlOptions {
    fn default() -> SqlOptions {
        SqlOptions {
            migrate: true,
            table_prefix: "chill_".into(),
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            max_value_bytes: 4 << 20,
            retries: 8,
        }
    }
}

impl SqlOptions {
    /// Set [`SqlOptions::migrate`].
    pub fn with_migrations(mut self, migrate: bool) -> SqlOptions {
        self.migrate = migrate;
        self
    }

    /// Set [`SqlOptions::table_prefix`].
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> SqlOptions {
        self.table_prefix = prefix.into();
        self
    }

    /// Set [`SqlOptions::schema`].
    pub fn with_schema(mut self, schema: impl Into<String>) -> SqlOptions {
        self.schema = Some(schema.into());
        self
    }

    /// Set [`SqlOptions::max_connections`].
    pub fn with_max_connections(mut self, max: u32) -> SqlOptions {
        self.max_connections = max;
        self
    }

    /// Set [`SqlOptions::acquire_timeout`].
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> SqlOptions {
        self.acquire_timeout = timeout;
        self
    }

    /// Set [`SqlOptions::busy_timeout`].
    pub fn with_busy_timeout(mut self, timeout: Duration) -> SqlOptions {
        self.busy_timeout = timeout;
        self
    }

    /// Set [`SqlOptions::max_value_bytes`].
    pub fn with_max_value_bytes(mut self, max: usize) -> SqlOptions {
        self.max_value_bytes = max;
        self
    }

    /// Set [`SqlOptions::retries`].
    pub fn with_retries(mut self, retries: u32) -> SqlOptions {
        self.retries = retries;
        self
    }

    /// Refuse values the store cannot use.
    pub(crate) fn check(&self) -> Result<(), SqlError> {
        let identifier = |option: &'static str, value: &str, allow_empty: bool| {
            let ok = (allow_empty || !value.is_empty())
                && value.len() <= 40
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !value.starts_with(|c: char| c.is_ascii_digit());
            if ok {
                Ok(())
            } else {
                Err(SqlError::InvalidOption {
                    option,
                    message: format!(
                        "'{}' must be at most 40 letters, digits or '_', not starting with a digit",
                        value.escape_debug()
                    ),
                })
            }
        };
        identifier("table_prefix", &self.table_prefix, true)?;
        if let Some(schema) = &self.schema {
            identifier("schema", schema, false)?;
        }
        if self.max_connections == 0 {
            return Err(SqlError::InvalidOption {
                option: "max_connections",
                message: "must be at least 1".into(),
            });
        }
        if self.max_value_bytes == 0 {
            return Err(SqlError::InvalidOption {
                option: "max_value_bytes",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}
