//! The store as the engine uses it: every call in a DEBUG `store` span naming the operation,
//! its failure recorded on the span and counted in `chill_store_errors_total`.
//!
//! Logging the failure is left to the caller, which knows whether it retries (WARN) or gives
//! up (ERROR).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::Instrument;

use crate::model::{Execution, ExecutionId, Job, JobId};
use crate::store::{
    Finish, FinishOutcome, JobFilter, Lease, ManualStart, Page, PageRequest, SlotClaim, Store,
    StoreError,
};
use crate::telemetry;

/// A [`Store`] that traces and counts the calls to another.
pub(crate) struct TracedStore {
    inner: Arc<dyn Store>,
}

impl TracedStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> TracedStore {
        TracedStore { inner }
    }
}

/// Run one store call in its span; count and record its failure.
async fn traced<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let span = tracing::debug_span!("store", operation, error = tracing::field::Empty);
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        telemetry::store_error(operation, e);
        span.record("error", tracing::field::display(e));
    }
    result
}

#[async_trait]
impl Store for TracedStore {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        traced("create_job", self.inner.create_job(job)).await
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        traced("get_job", self.inner.get_job(id)).await
    }

    async fn job_is_active(&self, id: &JobId) -> Result<bool, StoreError> {
        traced("job_is_active", self.inner.job_is_active(id)).await
    }

    async fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        traced("update_job", self.inner.update_job(job, expected_version)).await
    }

    async fn delete_job(&self, id: &JobId) -> Result<bool, StoreError> {
        traced("delete_job", self.inner.delete_job(id)).await
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        traced("list_jobs", self.inner.list_jobs(filter, page)).await
    }

    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        traced("get_execution", self.inner.get_execution(id)).await
    }

    async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        traced("list_executions", self.inner.list_executions(job_id, page)).await
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        traced("due_jobs", self.inner.due_jobs(now, limit)).await
    }

    async fn due_attempts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        traced("due_attempts", self.inner.due_attempts(now, limit)).await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        traced("next_due_at", self.inner.next_due_at()).await
    }

    async fn claim_slots(&self, claim: &SlotClaim) -> Result<bool, StoreError> {
        traced("claim_slots", self.inner.claim_slots(claim)).await
    }

    async fn start_manual(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> Result<ManualStart, StoreError> {
        traced(
            "start_manual",
            self.inner.start_manual(execution, require_idle),
        )
        .await
    }

    async fn claim_attempt(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>, StoreError> {
        traced("claim_attempt", self.inner.claim_attempt(id, lease, now)).await
    }

    async fn renew_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        traced("renew_lease", self.inner.renew_lease(id, owner, expires_at)).await
    }

    async fn finish(&self, finish: &Finish) -> Result<FinishOutcome, StoreError> {
        traced("finish", self.inner.finish(finish)).await
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        traced("expired_leases", self.inner.expired_leases(now, limit)).await
    }

    async fn delete_executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        traced(
            "delete_executions_before",
            self.inner.delete_executions_before(before, limit),
        )
        .await
    }

    async fn list_finished(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        traced("list_finished", self.inner.list_finished(from, to, page)).await
    }

    async fn executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        traced(
            "executions_before",
            self.inner.executions_before(before, limit),
        )
        .await
    }

    async fn delete_executions(&self, ids: &[ExecutionId]) -> Result<u64, StoreError> {
        traced("delete_executions", self.inner.delete_executions(ids)).await
    }
}
