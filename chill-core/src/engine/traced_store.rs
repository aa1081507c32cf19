//! The store as the engine uses it: every call in a DEBUG `store` span naming the operation,
//! its failure recorded on the span and counted in `chill_store_errors_total`.
//!
//! Logging the failure is left to the caller, which knows whether it retries (WARN) or gives
//! up (ERROR).

use crate::store::forward::forward_store;
use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

use crate::store::{Store, StoreError};
use crate::telemetry;

/// A [`Store`] that traces and counts the calls to another.
pub(crate) struct TracedStore {
    inner: Arc<dyn Store>,
}

impl TracedStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> TracedStore {
        TracedStore { inner }
    }
}

/// Run one store call in its span; count and record its failure.
async fn traced<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let span = tracing::debug_span!("store", operation, error = tracing::field::Empty);
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        telemetry::store_error(operation, e);
        span.record("error", tracing::field::display(e));
    }
    result
}

forward_store!(TracedStore, |_this, op, _access, call| traced(op, call)
    .await);
