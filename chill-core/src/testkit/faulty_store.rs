//! A store wrapper that injects faults: seeded random errors and latency, and outages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::model::{Execution, ExecutionId, Job, JobId};
use crate::rng::Rng;
use crate::store::{
    Finish, FinishOutcome, JobFilter, Lease, ManualStart, Page, PageRequest, SlotClaim, Store,
    StoreError,
};

/// How often and how a [`FaultyStore`] fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability (0..=1) that a call fails with a transient error *before* reaching the
    /// store.
    pub error_rate: f64,
    /// Probability that a write reaches the store and *then* reports a transient error (the
    /// caller cannot tell whether it happened: the hardest case for exactly-once).
    pub lost_reply_rate: f64,
    /// Each call waits a random time up to this on the clock first.
    pub max_latency: Duration,
}

impl Faults {
    /// No faults.
    pub const NONE: Faults = Faults {
        error_rate: 0.0,
        lost_reply_rate: 0.0,
        max_latency: Duration::ZERO,
    };
}

/// Wraps a store; fails calls at a seeded rate, adds latency on the clock, can slow chosen
/// operations down by a fixed time ([`FaultyStore::set_delay`]), and can be taken down
/// entirely ([`FaultyStore::set_down`]) to simulate an outage.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    faults: Mutex<Faults>,
    delays: Mutex<HashMap<String, Duration>>,
    rng: Mutex<Rng>,
    down: AtomicBool,
    injected: AtomicU64,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("faults", &self.faults())
            .field("down", &self.down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// Wrap `inner`; faults are drawn from `seed`.
    pub fn new(
        inner: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        faults: Faults,
        seed: u64,
    ) -> FaultyStore {
        FaultyStore {
            inner,
            clock,
            faults: Mutex::new(faults),
            delays: Mutex::new(HashMap::new()),
            rng: Mutex::new(Rng::new(seed)),
            down: AtomicBool::new(false),
            injected: AtomicU64::new(0),
        }
    }

    /// Change the fault rates.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    fn faults(&self) -> Faults {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make every call of one operation (a [`Store`] method name, such as `"claim_slots"`)
    /// wait `delay` on the clock before it reaches the store: a slow round trip, so that other
    /// tasks act in between, deterministically. `Duration::ZERO` removes the delay.
    pub fn set_delay(&self, operation: &str, delay: Duration) {
        let mut delays = self.delays.lock().unwrap_or_else(|e| e.into_inner());
        if delay.is_zero() {
            delays.remove(operation);
        } else {
            delays.insert(operation.to_string(), delay);
        }
    }

    /// Take the store down (every call fails with [`StoreError::Unavailable`]) or bring it
    /// back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// A uniform draw in [0, 1).
    fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).unit()
    }

    fn fault(&self, what: &str) -> StoreError {
        self.injected.fetch_add(1, Ordering::Relaxed);
        if self.draw() < 0.5 {
            StoreError::Unavailable(format!("injected fault in {what}"))
        } else {
            StoreError::Throttled(format!("injected fault in {what}"))
        }
    }

    /// Latency and failures before a call.
    async fn before(&self, what: &str) -> Result<(), StoreError> {
        let delay = self
            .delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(what)
            .copied();
        if let Some(delay) = delay {
            self.clock.sleep(delay).await;
        }
        let faults = self.faults();
        if !faults.max_latency.is_zero() {
            let nanos = (faults.max_latency.as_nanos() as f64 * self.draw()) as u64;
            self.clock.sleep(Duration::from_nanos(nanos)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable(format!("store down ({what})")));
        }
        if self.draw() < faults.error_rate {
            return Err(self.fault(what));
        }
        Ok(())
    }

    /// A write's reply, possibly lost after it took effect.
    fn after<T>(&self, what: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() && self.draw() < self.faults().lost_reply_rate {
            return Err(self.fault(what));
        }
        result
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        self.before("create_job").await?;
        let r = self.inner.create_job(job).await;
        self.after("create_job", r)
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.before("get_job").await?;
        self.inner.get_job(id).await
    }

    async fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        self.before("update_job").await?;
        let r = self.inner.update_job(job, expected_version).await;
        self.after("update_job", r)
    }

    async fn delete_job(&self, id: &JobId) -> Result<bool, StoreError> {
        self.before("delete_job").await?;
        let r = self.inner.delete_job(id).await;
        self.after("delete_job", r)
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        self.before("list_jobs").await?;
        self.inner.list_jobs(filter, page).await
    }

    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.before("get_execution").await?;
        self.inner.get_execution(id).await
    }

    async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        self.before("list_executions").await?;
        self.inner.list_executions(job_id, page).await
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.before("due_jobs").await?;
        self.inner.due_jobs(now, limit).await
    }

    async fn due_attempts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.before("due_attempts").await?;
        self.inner.due_attempts(now, limit).await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.before("next_due_at").await?;
        self.inner.next_due_at().await
    }

    async fn claim_slots(&self, claim: &SlotClaim) -> Result<bool, StoreError> {
        self.before("claim_slots").await?;
        let r = self.inner.claim_slots(claim).await;
        self.after("claim_slots", r)
    }

    async fn start_manual(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> Result<ManualStart, StoreError> {
        self.before("start_manual").await?;
        let r = self.inner.start_manual(execution, require_idle).await;
        self.after("start_manual", r)
    }

    async fn claim_attempt(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>, StoreError> {
        self.before("claim_attempt").await?;
        let r = self.inner.claim_attempt(id, lease, now).await;
        self.after("claim_attempt", r)
    }

    async fn renew_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.before("renew_lease").await?;
        let r = self.inner.renew_lease(id, owner, expires_at).await;
        self.after("renew_lease", r)
    }

    async fn finish(&self, finish: &Finish) -> Result<FinishOutcome, StoreError> {
        self.before("finish").await?;
        let r = self.inner.finish(finish).await;
        self.after("finish", r)
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.before("expired_leases").await?;
        self.inner.expired_leases(now, limit).await
    }

    async fn delete_executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.before("delete_executions_before").await?;
        let r = self.inner.delete_executions_before(before, limit).await;
        self.after("delete_executions_before", r)
    }

    async fn list_finished(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        self.before("list_finished").await?;
        let r = self.inner.list_finished(from, to, page).await;
        self.after("list_finished", r)
    }

    async fn executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.before("executions_before").await?;
        let r = self.inner.executions_before(before, limit).await;
        self.after("executions_before", r)
    }

    async fn delete_executions(&self, ids: &[ExecutionId]) -> Result<u64, StoreError> {
        self.before("delete_executions").await?;
        let r = self.inner.delete_executions(ids).await;
        self.after("delete_executions", r)
    }
}
