//! The reference backend: everything in memory behind one lock, with the indexes a database
//! would have (due jobs, due attempts, leases, executions per job).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Cursor, Finish, FinishOutcome, JobFilter, Lease, ManualStart, Page, PageRequest, SlotClaim,
    StatsDelta, Store, StoreError,
};
use crate::model::{Execution, ExecutionId, ExecutionStatus, Job, JobId, Trigger};

/// A [`Store`] in memory: the reference implementation of the contract, correct under
/// concurrent use from many tasks (every operation holds one lock for its whole effect).
///
/// ```
/// use std::sync::Arc;
/// use chill_core::{MemoryStore, Store};
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// # let _ = store;
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    jobs: BTreeMap<JobId, Job>,
    /// `(nextRunAt, id)` of enabled, non-deleted jobs.
    due: BTreeSet<(DateTime<Utc>, JobId)>,
    executions: HashMap<ExecutionId, Execution>,
    /// `(createdAt, id)` per job.
    by_job: HashMap<JobId, BTreeSet<(DateTime<Utc>, ExecutionId)>>,
    /// `(dueAt, id)` of pending retry attempts.
    attempts: BTreeSet<(DateTime<Utc>, ExecutionId)>,
    /// `(leaseExpiresAt, id)` of running executions.
    leases: BTreeSet<(DateTime<Utc>, ExecutionId)>,
    /// `(createdAt, id)` of every execution.
    by_created: BTreeSet<(DateTime<Utc>, ExecutionId)>,
    /// `(completedAt, id)` of every ended execution.
    by_completed: BTreeSet<(DateTime<Utc>, ExecutionId)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every operation validates before it mutates, so a panic cannot leave half a write.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of jobs stored (deleted ones included).
    pub fn job_count(&self) -> usize {
        self.state().jobs.len()
    }

    /// Number of executions stored.
    pub fn execution_count(&self) -> usize {
        self.state().executions.len()
    }
}

fn due_key(job: &Job) -> Option<(DateTime<Utc>, JobId)> {
    match job.next_run_at {
        Some(t) if job.enabled && job.deleted_at.is_none() => Some((t, job.id)),
        _ => None,
    }
}

impl State {
    fn put_job(&mut self, job: Job) {
        if let Some(old) = self.jobs.get(&job.id).and_then(due_key) {
            self.due.remove(&old);
        }
        if let Some(key) = due_key(&job) {
            self.due.insert(key);
        }
        self.jobs.insert(job.id, job);
    }

    fn put_execution(&mut self, e: Execution) {
        if let Some(old) = self.executions.get(&e.id) {
            let (id, due, lease) = (old.id, old.due_at, old.lease_expires_at);
            if let Some(done) = old.completed_at {
                self.by_completed.remove(&(done, id));
            }
            self.attempts.remove(&(due, id));
            if let Some(lease) = lease {
                self.leases.remove(&(lease, id));
            }
        } else {
            self.by_job
                .entry(e.job_id)
                .or_default()
                .insert((e.created_at, e.id));
            self.by_created.insert((e.created_at, e.id));
        }
        if e.status == ExecutionStatus::Pending && e.trigger == Trigger::Retry {
            self.attempts.insert((e.due_at, e.id));
        }
        if let Some(done) = e.completed_at {
            self.by_completed.insert((done, e.id));
        }
        if e.status == ExecutionStatus::Running
            && let Some(lease) = e.lease_expires_at
        {
            self.leases.insert((lease, e.id));
        }
        self.executions.insert(e.id, e);
    }

    fn remove_execution(&mut self, id: &ExecutionId) {
        if let Some(e) = self.executions.remove(id) {
            self.attempts.remove(&(e.due_at, e.id));
            if let Some(lease) = e.lease_expires_at {
                self.leases.remove(&(lease, e.id));
            }
            self.by_created.remove(&(e.created_at, e.id));
            if let Some(done) = e.completed_at {
                self.by_completed.remove(&(done, e.id));
            }
            if let Some(set) = self.by_job.get_mut(&e.job_id) {
                set.remove(&(e.created_at, e.id));
            }
        }
    }

    fn mark_started(job: &mut Job, count: u32, at: DateTime<Utc>) {
        if count > 0 {
            job.running_count += count;
            job.last_run_status = Some(ExecutionStatus::Running);
            job.last_run_at = Some(at);
        }
    }

    /// Start a pending execution under a lease.
    fn start(e: &mut Execution, lease: &Lease, now: DateTime<Utc>) {
        e.status = ExecutionStatus::Running;
        e.started_at = now;
        e.lease_owner = Some(lease.owner.clone());
        e.lease_expires_at = Some(lease.expires_at);
    }
}

/// Apply an execution's end to its job's statistics.
pub(crate) fn apply_stats(job: &mut Job, stats: &StatsDelta) {
    job.running_count = job.running_count.saturating_sub(1);
    job.last_run_status = Some(stats.status);
    job.consecutive_failures = stats.consecutive_failures_after(job.consecutive_failures);
    if !stats.counted {
        return;
    }
    job.spend.add(stats.completed_at, stats.cost_micro_usd);
    job.total_runs += 1;
    if stats.status == ExecutionStatus::Success {
        job.success_count += 1;
    } else {
        job.failure_count += 1;
    }
    job.last_run_duration = Some(stats.duration_ms);
    job.last_run_error = stats.error.clone();
    job.total_duration_ms += stats.duration_ms;
    job.average_duration = Some(job.total_duration_ms / job.total_runs);
    job.total_input_tokens += stats.input_tokens;
    job.total_output_tokens += stats.output_tokens;
    job.total_tokens += stats.input_tokens + stats.output_tokens;
    job.total_cost_micro_usd += stats.cost_micro_usd;
}

/// Copy everything but the statistics and engine-maintained fields from `new` onto `old`.
fn with_config_of(old: &Job, new: &Job) -> Job {
    let mut job = new.clone();
    job.last_run_at = old.last_run_at;
    job.last_run_status = old.last_run_status;
    job.last_run_duration = old.last_run_duration;
    job.last_run_error = old.last_run_error.clone();
    job.total_runs = old.total_runs;
    job.success_count = old.success_count;
    job.failure_count = old.failure_count;
    job.average_duration = old.average_duration;
    job.total_duration_ms = old.total_duration_ms;
    job.consecutive_failures = old.consecutive_failures;
    job.spend = old.spend;
    job.total_input_tokens = old.total_input_tokens;
    job.total_output_tokens = old.total_output_tokens;
    job.total_tokens = old.total_tokens;
    job.total_cost_micro_usd = old.total_cost_micro_usd;
    job.running_count = old.running_count;
    job.buffered_execution_id = old.buffered_execution_id;
    job
}

fn filter_matches(filter: &JobFilter, job: &Job) -> bool {
    (filter.include_deleted || job.deleted_at.is_none())
        && filter.enabled.is_none_or(|e| job.enabled == e)
        && filter.tag.as_ref().is_none_or(|t| job.tags.contains(t))
        && filter
            .name_contains
            .as_ref()
            .is_none_or(|n| job.name.contains(n.as_str()))
        && filter
            .last_status
            .is_none_or(|s| job.last_run_status == Some(s))
}

/// Execution cursors: `<createdAt millis>:<id>` (or `completedAt` for finished listings).
fn execution_cursor_at(at: DateTime<Utc>, e: &Execution) -> Cursor {
    Cursor::new(format!("{}:{}", at.timestamp_millis(), e.id))
}

fn execution_cursor(e: &Execution) -> Cursor {
    execution_cursor_at(e.created_at, e)
}

fn has_ended(e: &Execution) -> bool {
    !matches!(
        e.status,
        ExecutionStatus::Running | ExecutionStatus::Pending
    )
}

fn parse_execution_cursor(c: &Cursor) -> Result<(DateTime<Utc>, ExecutionId), StoreError> {
    let bad = || StoreError::InvalidInput {
        field: "cursor".into(),
        message: format!("'{c}' is not a cursor of this listing"),
    };
    let (ms, id) = c.as_str().split_once(':').ok_or_else(bad)?;
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_millis(ms).ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.jobs.contains_key(&job.id) {
            return Err(StoreError::AlreadyExists {
                what: "job",
                id: job.id.to_string(),
            });
        }
        s.put_job(job.clone());
        Ok(())
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.state().jobs.get(id).cloned())
    }

    async fn inactive_jobs(&self, ids: &[JobId]) -> Result<Vec<JobId>, StoreError> {
        let state = self.state();
        Ok(ids
            .iter()
            .filter(|id| !state.jobs.get(id).is_some_and(Job::is_active))
            .copied()
            .collect())
    }

    async fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        let mut s = self.state();
        let Some(old) = s.jobs.get(&job.id) else {
            return Err(StoreError::NotFound {
                what: "job",
                id: job.id.to_string(),
            });
        };
        if old.version != expected_version {
            return Err(StoreError::VersionConflict {
                id: job.id.to_string(),
                expected: expected_version,
                actual: old.version,
            });
        }
        let updated = with_config_of(old, job);
        s.put_job(updated);
        Ok(())
    }

    async fn delete_job(&self, id: &JobId) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some(job) = s.jobs.get(id).cloned() else {
            return Ok(false);
        };
        if let Some(key) = due_key(&job) {
            s.due.remove(&key);
        }
        s.jobs.remove(id);
        let ids: Vec<ExecutionId> = s
            .by_job
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        for e in ids {
            s.remove_execution(&e);
        }
        Ok(true)
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let s = self.state();
        let start = match &page.cursor {
            None => None,
            Some(c) => Some(
                c.as_str()
                    .parse::<JobId>()
                    .map_err(|_| StoreError::InvalidInput {
                        field: "cursor".into(),
                        message: format!("'{c}' is not a cursor of this listing"),
                    })?,
            ),
        };
        let range = match start {
            None => s.jobs.range(..),
            Some(after) => s
                .jobs
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
        };
        let limit = page.max_items();
        let mut items: Vec<Job> = range
            .map(|(_, j)| j)
            .filter(|j| filter_matches(filter, j))
            .take(limit + 1)
            .cloned()
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|j| Cursor::new(j.id.to_string()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        Ok(self.state().executions.get(id).cloned())
    }

    async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let s = self.state();
        let before = page
            .cursor
            .as_ref()
            .map(parse_execution_cursor)
            .transpose()?;
        let Some(set) = s.by_job.get(job_id) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let limit = page.max_items();
        let iter: Box<dyn Iterator<Item = &(DateTime<Utc>, ExecutionId)>> = match before {
            None => Box::new(set.iter().rev()),
            Some(key) => Box::new(set.range(..key).rev()),
        };
        let mut items: Vec<Execution> = iter
            .take(limit + 1)
            .filter_map(|(_, id)| s.executions.get(id).cloned())
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(execution_cursor)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let s = self.state();
        Ok(s.due
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(limit)
            .filter_map(|(_, id)| s.jobs.get(id).cloned())
            .collect())
    }

    async fn due_attempts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let s = self.state();
        Ok(s.attempts
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(limit)
            .filter_map(|(_, id)| s.executions.get(id).cloned())
            .collect())
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let s = self.state();
        let job = s.due.first().map(|(t, _)| *t);
        let attempt = s.attempts.first().map(|(t, _)| *t);
        Ok(match (job, attempt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    async fn claim_slots(&self, claim: &SlotClaim) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some(job) = s.jobs.get(&claim.job_id) else {
            return Ok(false);
        };
        let holds = job.version == claim.expected_version
            && job.next_run_at == Some(claim.expected_next_run_at)
            && job.enabled
            && job.deleted_at.is_none()
            && claim
                .expected_running
                .is_none_or(|r| job.running_count == r)
            && (claim.buffered.is_none() || job.buffered_execution_id.is_none())
            && claim
                .executions
                .iter()
                .all(|e| !s.executions.contains_key(&e.id));
        if !holds {
            return Ok(false);
        }
        let mut job = job.clone();
        job.next_run_at = claim.next_run_at;
        job.version += 1;
        State::mark_started(&mut job, claim.started, claim.started_at);
        if claim.buffered.is_some() {
            job.buffered_execution_id = claim.buffered;
        }
        s.put_job(job);
        for e in &claim.executions {
            s.put_execution(e.clone());
        }
        Ok(true)
    }

    async fn start_manual(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> Result<ManualStart, StoreError> {
        let mut s = self.state();
        let Some(job) = s.jobs.get(&execution.job_id) else {
            return Ok(ManualStart::NotActive);
        };
        if !job.enabled || job.deleted_at.is_some() {
            return Ok(ManualStart::NotActive);
        }
        if require_idle && job.running_count > 0 {
            return Ok(ManualStart::Busy);
        }
        if s.executions.contains_key(&execution.id) {
            return Err(StoreError::AlreadyExists {
                what: "execution",
                id: execution.id.to_string(),
            });
        }
        let mut job = job.clone();
        State::mark_started(&mut job, 1, execution.started_at);
        s.put_job(job);
        s.put_execution(execution.clone());
        Ok(ManualStart::Started)
    }

    async fn claim_attempt(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>, StoreError> {
        let mut s = self.state();
        let Some(e) = s.executions.get(id) else {
            return Ok(None);
        };
        if e.status != ExecutionStatus::Pending || e.trigger != Trigger::Retry {
            return Ok(None);
        }
        let mut e = e.clone();
        State::start(&mut e, lease, now);
        if let Some(job) = s.jobs.get(&e.job_id) {
            let mut job = job.clone();
            State::mark_started(&mut job, 1, now);
            s.put_job(job);
        }
        s.put_execution(e.clone());
        Ok(Some(e))
    }

    async fn renew_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some(e) = s.executions.get(id) else {
            return Ok(false);
        };
        if e.status != ExecutionStatus::Running || e.lease_owner.as_deref() != Some(owner) {
            return Ok(false);
        }
        let mut e = e.clone();
        e.lease_expires_at = Some(expires_at);
        s.put_execution(e);
        Ok(true)
    }

    async fn finish(&self, finish: &Finish) -> Result<FinishOutcome, StoreError> {
        let mut s = self.state();
        let id = finish.execution.id;
        let Some(current) = s.executions.get(&id) else {
            return Ok(FinishOutcome::Fenced);
        };
        let fenced_out = current.status != ExecutionStatus::Running
            || current.lease_owner.as_deref() != Some(finish.owner.as_str())
            || finish
                .expired_by
                .is_some_and(|t| current.lease_expires_at.is_none_or(|l| l > t));
        if fenced_out {
            return Ok(FinishOutcome::Fenced);
        }
        if let Some(next) = &finish.next_attempt
            && s.executions.contains_key(&next.id)
        {
            return Err(StoreError::AlreadyExists {
                what: "execution",
                id: next.id.to_string(),
            });
        }
        s.put_execution(finish.execution.clone());
        if let Some(next) = &finish.next_attempt {
            s.put_execution(next.clone());
        }
        let mut promoted = None;
        // The job is updated in place: the statistics and the buffered run never move its
        // place in the due index.
        let state = &mut *s;
        if let Some(job) = state.jobs.get_mut(&finish.execution.job_id) {
            apply_stats(job, &finish.stats);
            if let (Some(lease), Some(buffered)) = (&finish.promote, job.buffered_execution_id) {
                job.buffered_execution_id = None;
                if let Some(b) = state.executions.get(&buffered) {
                    let now = finish
                        .execution
                        .completed_at
                        .unwrap_or(finish.execution.started_at);
                    let mut b = b.clone();
                    State::start(&mut b, lease, now);
                    State::mark_started(job, 1, now);
                    promoted = Some(Box::new(b));
                }
            }
        }
        if let Some(b) = &promoted {
            s.put_execution((**b).clone());
        }
        Ok(FinishOutcome::Finished { promoted })
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let s = self.state();
        Ok(s.leases
            .iter()
            .take_while(|(t, _)| *t < now)
            .take(limit)
            .filter_map(|(_, id)| s.executions.get(id).cloned())
            .collect())
    }

    async fn delete_executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let ids: Vec<ExecutionId> = self
            .executions_before(before, limit)
            .await?
            .iter()
            .map(|e| e.id)
            .collect();
        self.delete_executions(&ids).await
    }

    async fn list_finished(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let s = self.state();
        let lower = match page
            .cursor
            .as_ref()
            .map(parse_execution_cursor)
            .transpose()?
        {
            Some(after) if after >= (from, ExecutionId::from_uuid(uuid::Uuid::nil())) => {
                Excluded(after)
            }
            _ => Included((from, ExecutionId::from_uuid(uuid::Uuid::nil()))),
        };
        let limit = page.max_items();
        let mut items: Vec<Execution> = s
            .by_completed
            .range((lower, Unbounded))
            .take_while(|(t, _)| *t < to)
            .take(limit + 1)
            .filter_map(|(_, id)| s.executions.get(id).cloned())
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|e| execution_cursor_at(e.completed_at.unwrap_or(e.created_at), e))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let s = self.state();
        Ok(s.by_created
            .iter()
            .take_while(|(t, _)| *t < before)
            .filter_map(|(_, id)| s.executions.get(id).filter(|e| has_ended(e)))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn delete_executions(&self, ids: &[ExecutionId]) -> Result<u64, StoreError> {
        let mut s = self.state();
        let mut deleted = 0;
        for id in ids {
            if s.executions.get(id).is_some_and(has_ended) {
                s.remove_execution(id);
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
