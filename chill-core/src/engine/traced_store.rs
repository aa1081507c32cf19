//! The store as the engine uses it: every call in a DEBUG `store` span naming the operation,
//! its failure recorded on the span and counted in `chill_store_errors_total`.
//!
//! Logging the failure is left to the caller, which knows whether it retries (WARN) or gives
//! up (ERROR). A failed write that may lease an execution to this instance marks the
//! [`LeaseWrites`] unsure: it may have taken effect anyway.

use crate::store::forward::forward_store;
use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

use super::lease_writes::LeaseWrites;
use crate::store::{Store, StoreError};
use crate::telemetry;

/// The store operations that may lease an execution to the calling instance.
const LEASE_GRANTING: [&str; 4] = ["claim_slots", "claim_attempt", "start_manual", "finish"];

/// A [`Store`] that traces and counts the calls to another.
pub(crate) struct TracedStore {
    inner: Arc<dyn Store>,
    lease_writes: Arc<LeaseWrites>,
}

impl TracedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, lease_writes: Arc<LeaseWrites>) -> TracedStore {
        TracedStore {
            inner,
            lease_writes,
        }
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

forward_store!(TracedStore, |this, op, _access, call| {
    let result = traced(op, call).await;
    if result.is_err() && LEASE_GRANTING.contains(&op) {
        this.lease_writes.mark_unsure();
    }
    result
});
