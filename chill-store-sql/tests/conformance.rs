//! The store conformance suite of `chill_core::testkit` on every database compiled in: each
//! behaviour in a database of its own (a SQLite memory database and file, a PostgreSQL schema,
//! a MySQL database), and the whole suite on one database. Every database stores NUL in text
//! (free text is kept as bytes), so the suite runs with the default capabilities everywhere.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::sync::Arc;

use chill_core::Store;
use chill_core::testkit::conformance::{self, Capabilities};
use common::{Kind, on_each, with_db};

/// Each behaviour on a fresh database of each kind.
async fn fresh<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    on_each(name, move |_db, store| test.clone()(store)).await
}

chill_core::store_conformance_tests!(fresh);

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
