//! Four engines on the system clock over one database: 200 jobs firing every second for 20
//! seconds (their schedule window ends then), with manual triggers and retries, and the
//! engines kept running until every slot is recorded. Afterwards every slot has exactly one
//! record (run, or skipped with a reason), none ran twice, and every job's statistics equal
//! the tally of its executions. The test counts; it asserts no timing. The harness is the
//! testkit's `multi_instance`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;

use chill_core::Store;
use chill_core::testkit::multi_instance::MultiInstance;
use common::{Kind, with_db};

const ENGINES: usize = 4;

/// One multi-instance test at a time in this binary: each keeps the machine busy.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn four_engines(kind: Kind) {
    let _serial = SERIAL.lock().await;
    with_db(kind, "multi_instance", move |db| async move {
        let mut stores: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..ENGINES {
            stores.push(Arc::new(db.store().await));
        }
        let observer: Arc<dyn Store> = Arc::new(db.store().await);
        let report = MultiInstance::new().run(stores, observer).await;
        println!("{kind:?}: {report}");
        report.assert_clean(kind);
        let t = &report.tally;
        assert_eq!(t.slots, t.expected_slots, "{kind:?}: every slot recorded");
        assert!(
            t.retries > 0 && t.manual > 0,
            "{kind:?}: no retries or manual runs"
        );
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_sqlite_file() {
    four_engines(Kind::SqliteFile).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_postgres_database() {
    four_engines(Kind::Postgres).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_mysql_database() {
    four_engines(Kind::MySql).await;
}
