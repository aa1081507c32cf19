//! A driver for profilers (callgrind, perf): the herd of `benches/herd.rs` for chill-core with
//! claim-ahead, on tokio's current-thread runtime (one thread, so callgrind's numbers add up).
//! K jobs are due at the same instant T on the system clock; the engine claims them ahead and
//! runs them at T with an AI client that answers at once.
//!
//! ```sh
//! cargo build --profile bench -p chill-benches --example herd_profile
//! valgrind --tool=callgrind target/release/examples/herd_profile 2000 claims
//! valgrind --tool=callgrind target/release/examples/herd_profile 2000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -80
//! ```
//!
//! With `claims` the program ends once every slot is claimed, before T; without it, once every
//! execution finished. The difference of the two profiles is the work done at T: the starts
//! and finishes of the executions.
//!
//! Arguments: the number of jobs K (default 2000), then optionally `claims`. The lead before T
//! is long (20 s + 10 ms per job) so that the claims end before T even under valgrind.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use chill_benches::engine::{InstantAi, bench_job, run_to_completion, store_with};
use chill_core::{Chill, ChillOptions, SystemClock};
use chrono::{SubsecRound, TimeDelta, Utc};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let k: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(2_000);
    let claims_only = args.iter().any(|a| a == "claims");
    let lead = Duration::from_secs(20) + Duration::from_millis(10 * k as u64);
    let options = ChillOptions::default()
        .with_instance_id("profile")
        .with_seed(Some(7))
        .with_event_capacity(2 * k + 64)
        .with_max_concurrent(k)
        .with_claim_batch(1_000)
        .with_claim_ahead(lead)
        .with_lease_duration(lead * 3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    rt.block_on(async {
        let now = Utc::now().trunc_subsecs(3);
        let due = now + TimeDelta::from_std(lead).unwrap_or(TimeDelta::seconds(20));
        let jobs: Vec<_> = (0..k)
            .map(|i| {
                let mut job = bench_job(i, chill_benches::engine::FAR_ONE_SHOT, now);
                job.next_run_at = Some(due);
                job
            })
            .collect();
        let store = store_with(&jobs)
            .await
            .unwrap_or_else(|e| panic!("store: {e}"));
        let chill = Chill::new(store, Arc::new(SystemClock), Arc::new(InstantAi), options);
        if claims_only {
            let handle = chill.start();
            while chill.running_executions() < k {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let left = due - Utc::now();
            println!(
                "{k} slots claimed, {} ms before they are due",
                left.num_milliseconds()
            );
            handle.abort();
        } else {
            let elapsed = run_to_completion(&chill, k).await;
            let late = Utc::now() - due;
            println!(
                "{k} executions finished {} ms after they were due ({:.1} s after start)",
                late.num_milliseconds(),
                elapsed.as_secs_f64()
            );
        }
    });
}
