//! A small engine world for the telemetry tests: a manual clock, a memory store behind a
//! fault-injecting store, a scripted AI, and an engine over them, driven on a current-thread
//! runtime.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chill_core::store::{PageRequest, Store};
use chill_core::testkit::{Faults, FaultyStore, ScriptedAi};
use chill_core::{Chill, ChillOptions, Execution, JobId, ManualClock, MemoryStore, RetryPolicy};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

/// 2026-06-01T00:00:00Z, when every test starts.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

/// `t0` plus minutes and seconds.
pub(crate) fn at(min: i64, sec: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(min) + TimeDelta::seconds(sec)
}

/// `n` retries, `delay` seconds apart.
pub(crate) fn retrying(max_retries: u32, delay: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        retry_delay: delay,
        max_delay: 3_600,
        retry_on_timeout: false,
    }
}

/// A current-thread runtime, as the engine tests use.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) struct World {
    pub(crate) clock: ManualClock,
    pub(crate) memory: Arc<MemoryStore>,
    pub(crate) store: Arc<FaultyStore>,
    pub(crate) ai: Arc<ScriptedAi>,
}

impl World {
    pub(crate) fn new() -> World {
        let clock = ManualClock::new(t0());
        let memory = Arc::new(MemoryStore::new());
        World {
            ai: Arc::new(ScriptedAi::new(Arc::new(clock.clone()))),
            store: Arc::new(FaultyStore::new(
                memory.clone(),
                Arc::new(clock.clone()),
                Faults::NONE,
                1,
            )),
            memory,
            clock,
        }
    }

    /// An engine over the (fault-free until told otherwise) store.
    pub(crate) fn engine(&self, options: ChillOptions) -> Chill {
        Chill::new(
            self.store.clone(),
            Arc::new(self.clock.clone()),
            self.ai.clone(),
            options.with_instance_id("a").with_seed(Some(7)),
        )
    }

    /// Advance the clock to `t`, letting every task run until it waits again on the way.
    pub(crate) async fn run_to(&self, t: DateTime<Utc>) {
        settle().await;
        self.clock.advance_to(t).await;
        settle().await;
    }

    /// Every execution of a job, by slot, then attempt.
    pub(crate) async fn executions(&self, job: &JobId) -> Vec<Execution> {
        let page = self
            .memory
            .list_executions(job, &PageRequest::first(PageRequest::MAX_LIMIT))
            .await
            .unwrap();
        let mut all = page.items;
        all.sort_by_key(|e| (e.scheduled_for, e.attempt));
        all
    }
}

/// Let spawned tasks run until they wait again.
pub(crate) async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
