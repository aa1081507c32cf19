//! The store conformance suite of `chill_core::testkit` against a real DynamoDB server (moto):
//! each behaviour on a table of its own, and the whole suite twice on one table. DynamoDB
//! stores NUL in strings, so the suite runs with the default capabilities.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::sync::Arc;

use chill_core::Store;
use chill_core::testkit::conformance::{self, Capabilities};
use chill_store_dynamo::DynamoOptions;
use common::with_table;

/// Each behaviour on a fresh table.
async fn fresh<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_table(name, DynamoOptions::default(), |table| async move {
        test(Arc::new(table.store().await)).await
    })
    .await;
}

chill_core::store_conformance_tests!(fresh);

/// The whole suite, twice, on one table, with one bucket and with many (the sharded indexes
/// merge their buckets in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_twice_on_one_table() {
    for buckets in [1, 7] {
        let options = DynamoOptions::default().with_due_buckets(buckets);
        with_table("run_all", options, |table| async move {
            let store: Arc<dyn Store> = Arc::new(table.store().await);
            conformance::run_all(store.clone(), &Capabilities::default()).await;
            conformance::run_all(store, &Capabilities::default()).await;
        })
        .await;
    }
}
