//! What can be set besides the AWS configuration.

use std::time::Duration;

use crate::{DynamoError, RequestCounter};

/// Settings of a [`DynamoStore`](crate::DynamoStore). Start from [`DynamoOptions::new`] with
/// the table name and change what you need:
///
/// ```
/// use std::time::Duration;
/// use chill_store_dynamo::DynamoOptions;
///
/// let options = DynamoOptions::new("scheduler")
///     .with_endpoint_url("http://127.0.0.1:8000")   // DynamoDB Local, moto, ...
///     .with_region("eu-central-1")
///     .with_due_buckets(8)
///     .with_retention(Duration::from_secs(90 * 24 * 3600));
/// assert_eq!(options.due_buckets, 8);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DynamoOptions {
    /// The table (3 to 255 letters, digits, `_`, `-`, `.`). Default `chill`.
    pub table_name: String,
    /// An endpoint instead of the region's (DynamoDB Local, moto, a VPC endpoint). `None`: the
    /// standard AWS configuration decides (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, the
    /// profile).
    pub endpoint_url: Option<String>,
    /// The region instead of the one the standard AWS configuration finds.
    pub region: Option<String>,
    /// Partitions of the due-work and lease indexes (default 4, 1 to 64). Each is a partition
    /// key of its own, so that 100,000 jobs due at 09:00 spread their index writes; each
    /// scheduler poll queries every bucket, so more buckets cost more reads per poll.
    pub due_buckets: u32,
    /// When set, ended executions carry a TTL attribute (`expiresAt`, epoch seconds) of their
    /// creation time plus this; DynamoDB deletes them some time after that, and the store
    /// treats them as gone from that moment on. Job statistics are kept. Default `None`.
    pub retention: Option<Duration>,
    /// Attempts per request, the first included, of the SDK's standard retry (exponential
    /// backoff with jitter) for throttling, 5xx and connection errors (default 5). When they
    /// are used up the operation fails with `StoreError::Unavailable`.
    pub max_attempts: u32,
    /// Counts the requests the store sends, by operation (see [`RequestCounter`]).
    pub request_counter: Option<RequestCounter>,
}

impl DynamoOptions {
    /// The defaults, for the table `table_name`.
    pub fn new(table_name: impl Into<String>) -> DynamoOptions {
        DynamoOptions {
            table_name: table_name.into(),
            ..DynamoOptions::default()
        }
    }

    /// Set [`DynamoOptions::endpoint_url`].
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> DynamoOptions {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Set [`DynamoOptions::region`].
    pub fn with_region(mut self, region: impl Into<String>) -> DynamoOptions {
        self.region = Some(region.into());
        self
    }

    /// Set [`DynamoOptions::due_buckets`].
    pub fn with_due_buckets(mut self, buckets: u32) -> DynamoOptions {
        self.due_buckets = buckets;
        self
    }

    /// Set [`DynamoOptions::retention`].
    pub fn with_retention(mut self, retention: Duration) -> DynamoOptions {
        self.retention = Some(retention);
        self
    }

    /// Set [`DynamoOptions::max_attempts`].
    pub fn with_max_attempts(mut self, attempts: u32) -> DynamoOptions {
        self.max_attempts = attempts;
        self
    }

    /// Set [`DynamoOptions::request_counter`].
    pub fn with_request_counter(mut self, counter: RequestCounter) -> DynamoOptions {
        self.request_counter = Some(counter);
        self
    }

    /// Refuse values the store cannot use.
    pub(crate) fn check(&self) -> Result<(), DynamoError> {
        let name_ok = (3..=255).contains(&self.table_name.len())
            && self
                .table_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(DynamoError::InvalidOption {
                option: "table_name",
                message: format!(
                    "'{}' must be 3 to 255 letters, digits, '_', '-' or '.'",
                    self.table_name.escape_debug()
                ),
            });
        }
        if !(1..=64).contains(&self.due_buckets) {
            return Err(DynamoError::InvalidOption {
                option: "due_buckets",
                message: format!("{} is out of range 1-64", self.due_buckets),
            });
        }
        if self.max_attempts == 0 {
            return Err(DynamoError::InvalidOption {
                option: "max_attempts",
                message: "must be at least 1".into(),
            });
        }
        if self.retention.is_some_and(|r| r.as_secs() == 0) {
            return Err(DynamoError::InvalidOption {
                option: "retention",
                message: "must be at least one second".into(),
            });
        }
        Ok(())
    }
}

impl Default for DynamoOptions {
    fn default() -> DynamoOptions {
        DynamoOptions {
            table_name: "chill".into(),
            endpoint_url: None,
            region: None,
            due_buckets: 4,
            retention: None,
            max_attempts: 5,
            request_counter: None,
        }
    }
}
