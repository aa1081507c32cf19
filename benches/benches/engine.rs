//! Engine throughput: executions per second of a `Chill` engine over a `MemoryStore`, the
//! `SystemClock` and an AI client that answers at once, so that the scheduler, the store and
//! the executor are what is timed.
//!
//! Each criterion iteration builds a store holding `K` jobs that each have exactly one slot due
//! now (a far one-shot schedule whose `nextRunAt` is set to the present, see
//! `chill_benches::engine::due_jobs`), starts the engine, and times from `start()` until `K`
//! `ExecutionFinished` events have arrived. Building the store is not timed; the shutdown is not
//! timed. Criterion reports the time per batch and, from `Throughput::Elements(K)`, executions
//! per second.
//!
//! Variants (criterion ids `engine_throughput/<options>/<runtime>/<K>`):
//! - options `default`: `ChillOptions::default()` (max_concurrent 100, claim_batch 100);
//! - options `tuned`: max_concurrent 1000, claim_batch 1000;
//! - runtime `mt2`: tokio's multi-thread runtime with 2 workers (the machine has 2 cores);
//!   `ct`: the current-thread runtime.
//!
//! Run with `cargo bench -p chill-benches --bench engine`.

use std::sync::Arc;
use std::time::Duration;

use chill_benches::engine::{InstantAi, due_jobs, run_to_completion, store_with};
use chill_core::{Chill, ChillOptions, SystemClock};
use chrono::{SubsecRound, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Jobs (= executions) per timed batch.
const BATCHES: [usize; 2] = [1_000, 10_000];

/// The engine options of a variant, with an event channel big enough that the counting
/// subscriber never lags (two events per execution: started and finished).
fn options(name: &str, k: usize) -> ChillOptions {
    let base = ChillOptions::default()
        .with_seed(Some(7))
        .with_event_capacity(2 * k + 64)
        .with_shutdown_grace(Duration::from_secs(5));
    match name {
        "tuned" => base.with_max_concurrent(1_000).with_claim_batch(1_000),
        _ => base,
    }
}

fn runtime(name: &str) -> Runtime {
    let mut builder = match name {
        "ct" => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    builder
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

/// Runs one batch of `k` due jobs to completion; returns the time from `start()` until the
/// `k`-th `ExecutionFinished`.
fn run_batch(rt: &Runtime, k: usize, options: &ChillOptions) -> Duration {
    rt.block_on(async {
        let due = Utc::now().trunc_subsecs(3);
        let jobs = due_jobs(k, due);
        let store = store_with(&jobs)
            .await
            .unwrap_or_else(|e| panic!("store: {e}"));
        drop(jobs);
        let options = options.clone().with_instance_id("bench");
        let chill = Chill::new(store, Arc::new(SystemClock), Arc::new(InstantAi), options);
        run_to_completion(&chill, k).await
    })
}

fn engine_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_throughput");
    group.sample_size(10);
    for rt_name in ["mt2", "ct"] {
        let rt = runtime(rt_name);
        for opt_name in ["default", "tuned"] {
            for k in BATCHES {
                let options = options(opt_name, k);
                group.throughput(Throughput::Elements(k as u64));
                group.bench_with_input(
                    BenchmarkId::new(format!("{opt_name}/{rt_name}"), k),
                    &k,
                    |b, &k| {
                        b.iter_custom(|iters| {
                            (0..iters).map(|_| run_batch(&rt, k, &options)).sum()
                        });
                    },
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, engine_throughput);
criterion_main!(benches);
