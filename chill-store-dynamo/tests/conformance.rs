//! The store conformance suite of `chill_core::testkit` against a real DynamoDB server (moto):
//! each behaviour on a table of its own, and the whole suite twice on one table. DynamoDB
//! stores NUL in strings, so the suite runs with the default capabilities.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chill_core::Store;
use chill_core::testkit::conformance::{self, Capabilities};
use chill_store_dynamo::DynamoOptions;
use common::with_table;

/// One test per behaviour, each on a fresh table: `by_ref name` for a behaviour taking
/// `&dyn Store`, `by_arc name` for a race taking `Arc<dyn Store>`.
macro_rules! behaviours {
    ($($kind:ident $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                with_table(stringify!($name), DynamoOptions::default(), |table| async move {
                    let store = Arc::new(table.store().await);
                    behaviours!(@call $kind $name store);
                })
                .await;
            }
        )*
    };
    (@call by_ref $name:ident $store:ident) => {
        conformance::$name(&*$store, &Capabilities::default()).await
    };
    (@call by_arc $name:ident $store:ident) => {
        conformance::$name($store as Arc<dyn Store>, &Capabilities::default()).await
    };
}

behaviours! {
    by_ref job_round_trip,
    by_ref job_update,
    by_ref job_delete,
    by_ref list_jobs_pagination,
    by_ref list_jobs_filters,
    by_ref list_executions,
    by_ref claim_slots_conditions,
    by_ref claim_slots_effects,
    by_ref start_manual,
    by_ref renew_lease,
    by_ref expired_leases,
    by_ref finish_fencing,
    by_ref finish_effects,
    by_ref retry_attempts,
    by_ref buffer_promotion,
    by_ref due_jobs,
    by_ref next_due_at,
    by_ref retention,
    by_ref retention_batches,
    by_ref list_finished,
    by_ref statistics_tally,
    by_ref spend_and_streak,
    by_arc claim_slots_race,
    by_arc slot_and_manual_race,
    by_arc claim_attempt_race,
    by_arc concurrent_finishes,
}

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
