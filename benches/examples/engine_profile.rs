//! A driver for profilers (callgrind, perf): one batch of the `engine` bench, K jobs due now run
//! to completion by a `Chill` engine over a `MemoryStore` with an AI client that answers at
//! once, on tokio's current-thread runtime (one thread, so callgrind's numbers add up).
//!
//! ```sh
//! cargo build --profile bench -p chill-benches --example engine_profile
//! valgrind --tool=callgrind target/release/examples/engine_profile 2000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -80
//! callgrind_annotate callgrind.out.<pid> | head -60     # self cost
//! ```
//!
//! The engine's work runs in spawned tasks, so collect the whole run (callgrind's
//! `--toggle-collect` on `run_engine` would see only the waiting); building the jobs
//! (`chill_benches::engine::due_jobs`, `MemoryStore::create_job`) shows separately and is
//! about 25 M instructions at K = 2000.
//!
//! Arguments: the number of jobs K (default 10000), then optionally `max_concurrent` and
//! `claim_batch` (default: the `ChillOptions` defaults). Prints the executions per second.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use chill_benches::engine::{InstantAi, due_jobs, run_to_completion, store_with};
use chill_core::{Chill, ChillOptions, MemoryStore, SystemClock};
use chrono::{SubsecRound, Utc};

/// Runs the engine on `store` until `k` executions finished. Not inlined, so that it shows in
/// a profile by name.
#[inline(never)]
async fn run_engine(store: Arc<MemoryStore>, k: usize, options: ChillOptions) -> Duration {
    let chill = Chill::new(store, Arc::new(SystemClock), Arc::new(InstantAi), options);
    run_to_completion(&chill, k).await
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let k = args.first().copied().unwrap_or(10_000);
    let mut options = ChillOptions::default()
        .with_instance_id("profile")
        .with_seed(Some(7))
        .with_event_capacity(2 * k + 64);
    if let Some(&m) = args.get(1) {
        options = options.with_max_concurrent(m);
    }
    if let Some(&b) = args.get(2) {
        options = options.with_claim_batch(b);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let elapsed = rt.block_on(async {
        let due = Utc::now().trunc_subsecs(3);
        let store = store_with(&due_jobs(k, due))
            .await
            .unwrap_or_else(|e| panic!("store: {e}"));
        run_engine(store, k, options).await
    });
    println!(
        "{k} executions in {:.1} ms: {:.0} executions/s",
        elapsed.as_secs_f64() * 1e3,
        k as f64 / elapsed.as_secs_f64()
    );
}
