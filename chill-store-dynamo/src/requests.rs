//! Counting the requests a store sends: an SDK interceptor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// Counts the HTTP requests a [`DynamoStore`](crate::DynamoStore) sends, by DynamoDB operation
/// (`GetItem`, `TransactWriteItems`, ...), retries included. Cheap to clone; clones share the
/// counts. Give it to the store with
/// [`DynamoOptions::with_request_counter`](crate::DynamoOptions::with_request_counter).
///
/// ```
/// use chill_store_dynamo::RequestCounter;
/// let counter = RequestCounter::new();
/// assert_eq!(counter.total(), 0);
/// assert!(counter.counts().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounter {
    /// A counter at zero.
    pub fn new() -> RequestCounter {
        RequestCounter::default()
    }

    /// Requests sent so far, by operation.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.lock().clone()
    }

    /// Requests sent so far.
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    /// Requests of the operations that write (`PutItem`, `UpdateItem`, `DeleteItem`,
    /// `BatchWriteItem`, `TransactWriteItems`).
    pub fn writes(&self) -> u64 {
        self.lock()
            .iter()
            .filter(|(op, _)| is_write(op))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests of the operations that read (`GetItem`, `BatchGetItem`, `Query`, `Scan`,
    /// `TransactGetItems`).
    pub fn reads(&self) -> u64 {
        self.lock()
            .iter()
            .filter(|(op, _)| is_read(op))
            .map(|(_, n)| n)
            .sum()
    }

    /// Set every count back to zero.
    pub fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn is_write(op: &str) -> bool {
    matches!(
        op,
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
    )
}

fn is_read(op: &str) -> bool {
    matches!(
        op,
        "GetItem" | "BatchGetItem" | "Query" | "Scan" | "TransactGetItems"
    )
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "chill-store-dynamo request counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.GetItem`.
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string();
        *self.lock().entry(operation).or_default() += 1;
        Ok(())
    }
}
