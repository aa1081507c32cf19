//! The store conformance suite of `chill_core::testkit` on every database compiled in: each
//! behaviour in a database of its own (a SQLite memory database and file, a PostgreSQL schema,
//! a MySQL database), and the whole suite on one database. Every database stores NUL in text
//! (free text is kept as bytes), so the suite runs with the default capabilities everywhere.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chill_core::Store;
use chill_core::testkit::conformance::{self, Capabilities};
use common::{Kind, on_each, with_db};

/// One test per behaviour, run on a fresh database of each kind: `by_ref name` for a behaviour
/// taking `&dyn Store`, `by_arc name` for a race taking `Arc<dyn Store>`.
macro_rules! behaviours {
    ($($kind:ident $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                on_each(stringify!($name), |_db, store| async move {
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

/// The whole suite, twice, on one database per kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_twice_on_one_database() {
    for kind in Kind::all() {
        with_db(kind, "run_all", move |db| async move {
            let store: Arc<dyn Store> = Arc::new(db.store().await);
            conformance::run_all(store.clone(), &Capabilities::default()).await;
            conformance::run_all(store, &Capabilities::default()).await;
        })
        .await;
    }
}
