//! The world the engine tests run in: one manual clock, one memory store and one scripted AI
//! shared by the engines of a test, and helpers to read what happened.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use chill_core::store::{JobFilter, Page, PageRequest, Store};
use chill_core::testkit::{Faults, FaultyStore, ScriptedAi, Step};
use chill_core::{
    AiError, Chill, ChillHandle, ChillOptions, Event, EventStream, Execution, ExecutionId,
    ExecutionStatus, Job, JobId, JobSpec, ManualClock, MemoryStore, RetryPolicy,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use ExecutionStatus::{Skipped, Success};

// --- the world the tests run in ------------------------------------------------------------

/// 2026-06-01T00:00:00Z, when every test starts.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

/// `t0` plus minutes and seconds.
pub fn at(min: i64, sec: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(min) + TimeDelta::seconds(sec)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Engine options with the defaults that matter spelled out: poll 1 s, lease 30 s, heartbeat
/// 10 s, recovery every 15 s, shutdown grace 30 s.
pub fn options(id: &str) -> ChillOptions {
    ChillOptions::default()
        .with_instance_id(id)
        .with_seed(Some(7))
        .with_poll_interval(secs(1))
        .with_lease_duration(secs(30))
        .with_heartbeat_interval(secs(10))
        .with_recovery_interval(secs(15))
        .with_shutdown_grace(secs(30))
}

/// A spec whose name is its prompt (the scripted AI answers by prompt).
pub fn spec(prompt: &str, schedule: &str) -> JobSpec {
    JobSpec::new(prompt, prompt, schedule)
}

/// [`spec`] with [`retrying`]`(max_retries, retry_delay)`.
pub fn retried_spec(prompt: &str, schedule: &str, max_retries: u32, retry_delay: u32) -> JobSpec {
    JobSpec {
        retry_policy: retrying(max_retries, retry_delay),
        ..spec(prompt, schedule)
    }
}

pub fn retrying(max_retries: u32, retry_delay: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        retry_delay,
        max_delay: 3_600,
        retry_on_timeout: false,
    }
}

/// A success answering "done" after `n` seconds (10 input and 20 output tokens).
pub fn ok_after(n: u64) -> Step {
    Step::ok("done").after(secs(n))
}

pub fn server_error() -> Step {
    Step::err(AiError::Server {
        status: Some(503),
        message: "unavailable".into(),
    })
}

/// Let spawned tasks run until they wait again.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// Ends the test process when a test does not finish in time. An engine stuck in a loop that
/// never yields blocks the current-thread runtime, so no timer inside it could fire: without
/// this, such a bug hangs the test run instead of failing it.
pub struct Watchdog {
    _done: mpsc::Sender<()>,
}

impl Watchdog {
    const LIMIT: Duration = Duration::from_secs(120);

    pub fn new() -> Watchdog {
        let (done, wait) = mpsc::channel::<()>();
        let test = std::thread::current().name().unwrap_or("?").to_string();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(Self::LIMIT) {
                // Straight to stderr: the test harness captures `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "{test}: not finished after {:?}; the engine is stuck (a loop that never yields?)",
                    Self::LIMIT
                );
                std::process::exit(101);
            }
        });
        Watchdog { _done: done }
    }
}

/// One manual clock, one memory store and one scripted AI, shared by the engines of a test.
pub struct World {
    pub clock: ManualClock,
    pub memory: Arc<MemoryStore>,
    pub ai: Arc<ScriptedAi>,
    _watchdog: Watchdog,
}

impl World {
    pub fn new() -> World {
        let clock = ManualClock::new(t0());
        World {
            ai: Arc::new(ScriptedAi::new(Arc::new(clock.clone()))),
            memory: Arc::new(MemoryStore::new()),
            clock,
            _watchdog: Watchdog::new(),
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.memory.clone()
    }

    /// An engine on the memory store.
    pub fn engine(&self, id: &str) -> Chill {
        self.engine_on(self.store(), options(id))
    }

    pub fn engine_on(&self, store: Arc<dyn Store>, options: ChillOptions) -> Chill {
        Chill::new(
            store,
            Arc::new(self.clock.clone()),
            self.ai.clone(),
            options,
        )
    }

    /// An engine with `options` on `store`, with a job from `spec` created just before it
    /// starts.
    pub async fn start_on(
        &self,
        store: Arc<dyn Store>,
        options: ChillOptions,
        spec: JobSpec,
    ) -> (Chill, ChillHandle, Job) {
        let chill = self.engine_on(store, options);
        let job = chill.create_job(spec).await.unwrap();
        let handle = chill.start();
        (chill, handle, job)
    }

    /// Engine "a" on the memory store, with a job from `spec`, started.
    pub async fn start_with(&self, spec: JobSpec) -> (Chill, ChillHandle, Job) {
        self.start_on(self.store(), options("a"), spec).await
    }

    /// A fault-free [`FaultyStore`] over the memory store, to delay or take down.
    pub fn faulty(&self, faults: Faults, seed: u64) -> Arc<FaultyStore> {
        Arc::new(FaultyStore::new(
            self.store(),
            Arc::new(self.clock.clone()),
            faults,
            seed,
        ))
    }

    /// Advance the clock to `t`, waking every sleeper on the way in order. Tasks spawned
    /// since the last wait first run until they sleep, so that no deadline is jumped over.
    pub async fn run_to(&self, t: DateTime<Utc>) {
        settle().await;
        self.clock.advance_to(t).await;
        settle().await;
    }

    pub async fn job(&self, id: &JobId) -> Job {
        self.memory.get_job(id).await.unwrap().unwrap()
    }

    pub async fn execution(&self, id: &ExecutionId) -> Execution {
        self.memory.get_execution(id).await.unwrap().unwrap()
    }

    /// Every execution of a job, by slot, then attempt.
    pub async fn executions(&self, job: &JobId) -> Vec<Execution> {
        let page = self
            .memory
            .list_executions(job, &PageRequest::first(PageRequest::MAX_LIMIT))
            .await
            .unwrap();
        assert!(page.next_cursor.is_none(), "more than one page");
        let mut all = page.items;
        all.sort_by_key(|e| (e.scheduled_for, e.attempt, e.started_at));
        all
    }

    /// `(slot, status, errorType)` of every execution of a job.
    pub async fn outcomes(
        &self,
        job: &JobId,
    ) -> Vec<(DateTime<Utc>, ExecutionStatus, Option<String>)> {
        self.executions(job)
            .await
            .into_iter()
            .map(|e| (e.scheduled_for, e.status, e.error_type))
            .collect()
    }
}

pub fn success_at(slot: DateTime<Utc>) -> (DateTime<Utc>, ExecutionStatus, Option<String>) {
    (slot, Success, None)
}

pub fn skipped_at(
    slot: DateTime<Utc>,
    why: &str,
) -> (DateTime<Utc>, ExecutionStatus, Option<String>) {
    (slot, Skipped, Some(why.to_string()))
}

/// `(attempt, status)` of each execution of a chain.
pub fn attempts(chain: &[Execution]) -> Vec<(u32, ExecutionStatus)> {
    chain.iter().map(|e| (e.attempt, e.status)).collect()
}

/// The ids of a listing, all pages of `limit`, each page as a list.
pub async fn pages(chill: &Chill, filter: &JobFilter, limit: u32) -> Vec<Vec<JobId>> {
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    loop {
        let Page { items, next_cursor } = chill.list_jobs(filter, &request).await.unwrap();
        out.push(items.iter().map(|j| j.id).collect());
        match next_cursor {
            Some(c) => request = PageRequest::after(limit, c),
            None => return out,
        }
    }
}

pub async fn listed(chill: &Chill, filter: JobFilter) -> Vec<JobId> {
    pages(chill, &filter, PageRequest::MAX_LIMIT).await.concat()
}

/// Every event waiting in a stream.
pub fn drain(events: &mut EventStream) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv().map(|r| r.unwrap())).collect()
}

/// The most executions running at the same instant, from their start and end times.
pub fn max_concurrency(executions: &[Execution]) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for e in executions.iter().filter(|e| e.status != Skipped) {
        edges.push((e.started_at, 1));
        edges.push((e.completed_at.unwrap(), -1));
    }
    // Ends before starts at the same instant.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// A current-thread runtime like `#[tokio::test]`'s, for tests that run one inside something
/// else (a thread-local metrics recorder or tracing subscriber).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
