//! A ChillScheduler [`Store`](chill_core::Store) over Amazon DynamoDB
//! ([aws-sdk-dynamodb](https://docs.rs/aws-sdk-dynamodb)), in one table.
//!
//! ```no_run
//! use std::sync::Arc;
//! use chill_core::{Job, JobSpec, Store};
//! use chill_store_dynamo::{DynamoOptions, DynamoStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Credentials and region from the standard AWS chain (environment, profile, SSO,
//! // instance role); the endpoint can be overridden (DynamoDB Local, moto).
//! let store = DynamoStore::connect(DynamoOptions::new("chill")).await?;
//! store.ensure_table().await?; // creates the table and its indexes once, enables TTL
//! let job = Job::create(JobSpec::new("digest", "Summarise the tickets", "0 9 * * MON-FRI"), chrono::Utc::now())?;
//! store.create_job(&job).await?;
//! let store: Arc<dyn Store> = Arc::new(store); // hand it to `Chill::new`
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Table layout
//!
//! One table, key `pk` (string, partition) and `sk` (string, sort), on-demand billing.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | job | `JOB#<job id>` | `JOB` | `cfg` (the configuration, JSON), `stats` (the statistics, JSON), `version`, `nextRunAt`, `enabled`, `deletedAt`, `runningCount`, `bufferedExecutionId`, `lastRunStatus`, `lastRunAt`, `statsRev`, and the index attributes below |
//! | execution | `EXEC#<execution id>` | `EXEC` | `doc` (the record, JSON), `status`, `trigger`, `startedAt`, `leaseOwner`, `leaseExpiresAt`, `jobId`, `expiresAt` (TTL), and the index attributes below |
//!
//! Instants are epoch milliseconds (numbers), except the TTL (`expiresAt`, epoch seconds).
//! Everything that no condition or index needs is kept as JSON text, so that free JSON
//! (metadata with `u64::MAX`, `0.1`, NUL characters, empty strings) comes back exactly.
//!
//! Global secondary indexes (all project keys only; the store reads the items themselves
//! with a consistent `BatchGetItem` after a query, so a lagging index never makes it act on
//! stale data; every write is conditioned on the base item anyway):
//!
//! | index | partition key | sort key | holds |
//! |---|---|---|---|
//! | `due` | `dueShard`: `job#<b>` / `try#<b>` | `dueAt` (N) | enabled, non-deleted jobs with a next run (`dueAt` = `nextRunAt`), and pending retry attempts (`dueAt` = their due time); `b` = id mod [`DynamoOptions::due_buckets`] |
//! | `lease` | `leaseShard`: `lease#<b>` | `leaseExpiresAt` (N) | running executions with a lease |
//! | `jobs` | `listShard`: `jobs` | `listKey`: the job id | every job, in id (creation) order, for `list_jobs` |
//! | `byJob` | `jobId` | `created`: `<createdAt>#<id>` | every execution, per job, newest first |
//! | `ended` | `endedShard`: `ended#<b>` | `created` | ended executions, oldest first: retention |
//! | `finished` | `doneHour`: `done#<hour since the epoch>` | `done`: `<completedAt>#<id>` | ended executions by completion time, an hour per partition |
//!
//! `<instant>#<id>` keys are 16 hex digits of the epoch milliseconds (sign bit flipped, so
//! that they sort as numbers) and the id. The `due` and `lease` partitions are sharded so
//! that 100,000 jobs due at 09:00 do not make one hot partition; each poll queries every
//! bucket.
//!
//! # How the contract's atomic operations are kept
//!
//! - A claim is one `TransactWriteItems`: the job's update conditioned on its `version`,
//!   `nextRunAt`, `enabled`, no `deletedAt` (and its `runningCount`, and no buffered
//!   execution, when the claim asks), and a put of each execution conditioned on
//!   `attribute_not_exists(pk)` (the id derives from the slot). A cancellation whose reasons
//!   include `ConditionalCheckFailed` is a lost race (`false`); other reasons are errors.
//! - A finish is one transaction: the final record put conditioned on `status = running`
//!   and `leaseOwner` (and the lease's expiry, for recovery): its `ConditionalCheckFailed`
//!   is [`FinishOutcome::Fenced`](chill_core::store::FinishOutcome::Fenced); the next
//!   attempt put conditioned on not existing; the job's statistics, computed from a
//!   consistent read of the job and conditioned on its `statsRev` (which every write of the
//!   statistics or running count increments): when another finish came between, the finish
//!   reads and tries again.
//! - Starts (manual, retry attempts, buffered runs) are transactions of the execution and
//!   the job's running count, likewise conditioned.
//!
//! Requests per scheduled execution in steady state: the claim (1 `TransactWriteItems`),
//! the finish (1 `GetItem` of the job, 1 `TransactWriteItems`), and the execution's share
//! of the poll's `Query` per bucket and `BatchGetItem`. Measured with [`RequestCounter`]
//! over 1,000 executions of 100 jobs firing every second: 2.00 writes and 1.17 reads each.
//!
//! `list_finished` reads the `finished` index one hour partition at a time: a range costs at
//! least one `Query` per hour it spans, so read it incrementally (as the metrics aggregation
//! does), not from the beginning of time.
//!
//! # Limits
//!
//! DynamoDB's own limits are enforced here, so that the store behaves the same on the
//! service as on a test server: at most 100 items per transaction (a claim of more is
//! refused with `InvalidInput` on `executions`), 25 per `BatchWriteItem`, 100 keys per
//! `BatchGetItem`, unprocessed items sent again, query pages followed until there is no
//! `LastEvaluatedKey`, every name and value in expressions through placeholders.
//!
//! Items stay under DynamoDB's 400 KB: a job or a new execution that would not fit is refused
//! with `InvalidInput` naming its largest field. A finished execution whose AI response does
//! not fit is stored **truncated**, never refused after the AI call succeeded: the response's
//! `result` is cut first (then `errorMessage`, `errorDetails`, the response metadata), and the
//! response's `metadata` gets the key [`TRUNCATED_MARKER`] (`chillTruncated`):
//! `{"fields": {"result": <original length in bytes>}, "limitBytes": <limit>}`.
//!
//! # Retention
//!
//! With [`DynamoOptions::retention`], ended executions carry the TTL attribute `expiresAt`
//! (creation time plus the retention, epoch seconds); [`DynamoStore::ensure_table`] enables
//! TTL on it. DynamoDB deletes expired items lazily (within days), so every read skips
//! items whose `expiresAt` has passed.
//!
//! # Errors
//!
//! Throttling, 5xx answers, timeouts and connection failures are retried by the SDK's
//! standard retry configuration ([`DynamoOptions::max_attempts`]); when they persist the
//! operation fails with `StoreError::Unavailable`. Errors are told apart by their codes,
//! never their messages.

mod db;
mod error;
mod expr;
mod item;
mod options;
mod requests;
mod store;
mod table;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;

pub use error::DynamoError;
pub use item::TRUNCATED_MARKER;
pub use options::DynamoOptions;
pub use requests::RequestCounter;

/// A [`Store`](chill_core::Store) in a DynamoDB table. Cheap to share: wrap it in an `Arc`
/// and hand it to as many engines as you like, in as many processes as you like.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    options: DynamoOptions,
    codec: item::Codec,
}

/// The HTTPS client the store uses unless the AWS configuration brings one: hyper with
/// rustls (ring) and the platform's root certificates.
fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

impl DynamoStore {
    /// Connect through the standard AWS configuration chain (environment, shared config and
    /// credentials files, SSO, container and instance roles), with the options' endpoint and
    /// region overrides. Does not create the table: see [`DynamoStore::ensure_table`].
    pub async fn connect(options: DynamoOptions) -> Result<DynamoStore, DynamoError> {
        options.check()?;
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let config = loader.load().await;
        DynamoStore::from_sdk_config(&config, options)
    }

    /// A store from an AWS configuration the host loaded itself.
    pub fn from_sdk_config(
        config: &SdkConfig,
        options: DynamoOptions,
    ) -> Result<DynamoStore, DynamoError> {
        options.check()?;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(config)
            .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts));
        if config.http_client().is_none() {
            builder = builder.http_client(https_client());
        }
        if let Some(url) = &options.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        if let Some(region) = &options.region {
            builder = builder.region(Region::new(region.clone()));
        }
        if let Some(counter) = &options.request_counter {
            builder = builder.interceptor(counter.clone());
        }
        DynamoStore::from_client(Client::from_conf(builder.build()), options)
    }

    /// A store over a DynamoDB client the host built (its endpoint, region, retry and
    /// interceptor settings are used as they are).
    pub fn from_client(client: Client, options: DynamoOptions) -> Result<DynamoStore, DynamoError> {
        options.check()?;
        Ok(DynamoStore {
            client,
            codec: item::Codec {
                buckets: options.due_buckets,
                retention: options.retention,
            },
            options,
        })
    }

    /// Create the table with its indexes (on-demand billing) when it does not exist, wait
    /// until it is active, and enable TTL on `expiresAt`. Safe to call from several
    /// instances at once; an existing table is checked for the indexes the store needs.
    ///
    /// Needs `dynamodb:CreateTable`, `DescribeTable`, `DescribeTimeToLive` and
    /// `UpdateTimeToLive` (see the README's IAM section); hosts that provision the table
    /// elsewhere need not call it.
    pub async fn ensure_table(&self) -> Result<(), DynamoError> {
        table::ensure_table(&self.client, &self.options.table_name).await
    }

    /// Delete the table and everything in it (for tests and tear-down).
    pub async fn delete_table(&self) -> Result<(), DynamoError> {
        table::delete_table(&self.client, &self.options.table_name).await
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &DynamoOptions {
        &self.options
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
