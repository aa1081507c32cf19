//! The engine's seeded simulation (instances, crashes, store faults and outages, AI failures,
//! simulated days on a manual clock) over a SQLite file instead of the in-memory store.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;

use chill_core::testkit::sim::{SimConfig, simulate_with};
use common::{Kind, TestDb};

/// Seeds run in CI; replay one with `CHILL_SQL_SIM_SEEDS=42`.
fn seeds() -> Vec<u64> {
    match std::env::var("CHILL_SQL_SIM_SEEDS") {
        Ok(list) => list.split(',').map(|s| s.trim().parse().unwrap()).collect(),
        Err(_) => vec![1, 2, 3, 4],
    }
}

#[test]
fn simulation_over_sqlite_keeps_every_invariant() {
    let mut failures = Vec::new();
    for seed in seeds() {
        // A current-thread runtime, as the in-memory simulation uses; with timers, which the
        // database pool needs.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let report = runtime.block_on(async {
            let db = TestDb::create(Kind::SqliteFile, "sim").await.unwrap();
            let store = Arc::new(db.store().await);
            let report = simulate_with(&SimConfig::new(seed).with_days(1), store.clone()).await;
            store.close().await;
            db.drop_all().await;
            report
        });
        println!("{report}");
        if !report.violations.is_empty() {
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "seeds with violations over SQLite: {failures:?}"
    );
}
