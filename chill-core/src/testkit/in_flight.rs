//! A store wrapper that counts the calls in flight, so that the simulation can wait for a real
//! database's answers before it moves the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{Execution, ExecutionId, Job, JobId};
use crate::store::{
    Finish, FinishOutcome, JobFilter, Lease, ManualStart, Page, PageRequest, SlotClaim, Store,
    StoreError,
};

/// Wraps a store and counts its unanswered calls.
pub(crate) struct InFlight {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
}

/// Counts one call while it lives.
struct Call<'a>(&'a AtomicUsize);

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InFlight {
    pub(crate) fn new(inner: Arc<dyn Store>) -> InFlight {
        InFlight {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    fn call(&self) -> Call<'_> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Call(&self.calls)
    }

    /// Wait until no call is in flight and the tasks that got their answers ran on to their
    /// next wait. Returns at once when nothing is in flight, which is always the case for a
    /// store that answers within one poll (the in-memory store): then nothing changes.
    pub(crate) async fn quiesce(&self) {
        while self.calls.load(Ordering::SeqCst) > 0 {
            while self.calls.load(Ordering::SeqCst) > 0 {
                tokio::task::yield_now().await;
                // The answer comes from another thread (a database driver's): let it work.
                std::thread::sleep(Duration::from_micros(50));
            }
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
        }
    }
}

#[async_trait]
impl Store for InFlight {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        let _call = self.call();
        self.inner.create_job(job).await
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let _call = self.call();
        self.inner.get_job(id).await
    }

    async fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        let _call = self.call();
        self.inner.update_job(job, expected_version).await
    }

    async fn delete_job(&self, id: &JobId) -> Result<bool, StoreError> {
        let _call = self.call();
        self.inner.delete_job(id).await
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let _call = self.call();
        self.inner.list_jobs(filter, page).await
    }

    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        let _call = self.call();
        self.inner.get_execution(id).await
    }

    async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let _call = self.call();
        self.inner.list_executions(job_id, page).await
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let _call = self.call();
        self.inner.due_jobs(now, limit).await
    }

    async fn due_attempts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let _call = self.call();
        self.inner.due_attempts(now, limit).await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let _call = self.call();
        self.inner.next_due_at().await
    }

    async fn claim_slots(&self, claim: &SlotClaim) -> Result<bool, StoreError> {
        let _call = self.call();
        self.inner.claim_slots(claim).await
    }

    async fn start_manual(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> Result<ManualStart, StoreError> {
        let _call = self.call();
        self.inner.start_manual(execution, require_idle).await
    }

    async fn claim_attempt(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>, StoreError> {
        let _call = self.call();
        self.inner.claim_attempt(id, lease, now).await
    }

    async fn renew_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _call = self.call();
        self.inner.renew_lease(id, owner, expires_at).await
    }

    async fn finish(&self, finish: &Finish) -> Result<FinishOutcome, StoreError> {
        let _call = self.call();
        self.inner.finish(finish).await
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let _call = self.call();
        self.inner.expired_leases(now, limit).await
    }

    async fn delete_executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let _call = self.call();
        self.inner.delete_executions_before(before, limit).await
    }

    async fn list_finished(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let _call = self.call();
        self.inner.list_finished(from, to, page).await
    }

    async fn executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let _call = self.call();
        self.inner.executions_before(before, limit).await
    }

    async fn delete_executions(&self, ids: &[ExecutionId]) -> Result<u64, StoreError> {
        let _call = self.call();
        self.inner.delete_executions(ids).await
    }
}
