//! Shared pieces of the engine benchmarks: an AI client that answers at once, so that the
//! engine (scheduler, store, executor) is what is timed, and stores of jobs that are due now.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chill_core::{
    AiClient, AiError, AiRequest, AiResponse, Chill, Event, EventError, Job, JobSpec, MemoryStore,
    Store, StoreError,
};
use chrono::{DateTime, Utc};

/// An AI client that answers every call at once with an empty response.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstantAi;

#[async_trait]
impl AiClient for InstantAi {
    async fn call(&self, _request: &AiRequest) -> Result<AiResponse, AiError> {
        Ok(AiResponse::default())
    }
}

/// A one-shot schedule far in the future. A job with it whose `nextRunAt` is set to a past
/// instant has exactly one due slot (at that instant); claiming it moves `nextRunAt` to 2099,
/// so the job runs exactly once during a benchmark.
pub const FAR_ONE_SHOT: &str = "at(2099-01-01T00:00:00)";

/// Job `i` of a benchmark, created at `now` with `schedule`, not yet due.
pub fn bench_job(i: usize, schedule: &str, now: DateTime<Utc>) -> Job {
    let spec = JobSpec::new(
        format!("bench-{i}"),
        "Summarise yesterday's tickets",
        schedule,
    );
    Job::create(spec, now).unwrap_or_else(|e| panic!("bench job {i} ({schedule}): {e}"))
}

/// `k` jobs, each with exactly one slot due at `due` (see [`FAR_ONE_SHOT`]).
pub fn due_jobs(k: usize, due: DateTime<Utc>) -> Vec<Job> {
    (0..k)
        .map(|i| {
            let mut job = bench_job(i, FAR_ONE_SHOT, due);
            job.next_run_at = Some(due);
            job
        })
        .collect()
}

/// A memory store holding `jobs`.
pub async fn store_with(jobs: &[Job]) -> Result<Arc<MemoryStore>, StoreError> {
    let store = Arc::new(MemoryStore::new());
    for job in jobs {
        store.create_job(job).await?;
    }
    Ok(store)
}

/// Starts `chill`, waits until `k` executions have finished (counted from its event stream),
/// and shuts it down. Returns the time from `start()` to the `k`-th `ExecutionFinished`; the
/// shutdown is not included.
///
/// # Panics
///
/// If the event stream lags (give the engine an `event_capacity` of at least `2 * k`: each
/// execution sends a started and a finished event) or closes.
pub async fn run_to_completion(chill: &Chill, k: usize) -> Duration {
    let mut events = chill.subscribe();
    let started = Instant::now();
    let handle = chill.start();
    let mut finished = 0;
    while finished < k {
        match events.recv().await {
            Ok(Event::ExecutionFinished(e)) => {
                black_box(&e);
                finished += 1;
            }
            Ok(_) => {}
            Err(EventError::Lagged(n)) => panic!("the counting subscriber lagged by {n}"),
            Err(e) => panic!("event stream: {e}"),
        }
    }
    let elapsed = started.elapsed();
    handle.shutdown().await;
    elapsed
}
