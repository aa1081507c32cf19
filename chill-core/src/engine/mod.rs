//! The engine: the [`Chill`] facade over a store, a clock and an AI client; the scheduler loop
//! that claims each due slot exactly once across instances; the executor; recovery.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use chill_core::{AiClient, AiError, AiRequest, AiResponse, Chill, ChillOptions, JobSpec, MemoryStore, SystemClock};
//!
//! struct Echo;
//! #[async_trait]
//! impl AiClient for Echo {
//!     async fn call(&self, r: &AiRequest) -> Result<AiResponse, AiError> {
//!         Ok(AiResponse { result: r.payload.prompt.clone(), ..Default::default() })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let chill = Chill::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), Arc::new(Echo), ChillOptions::default());
//! let job = chill.create_job(JobSpec::new("digest", "Summarise the day", "0 9 * * MON-FRI")).await.unwrap();
//! let handle = chill.start();
//! let run = chill.trigger_job(&job.id).await.unwrap();
//! # let _ = run;
//! handle.shutdown().await;
//! # });
//! ```

mod breaker;
mod executor;
mod lease_writes;
mod maintenance;
mod options;
mod planner;
mod recovery;
mod retry;
mod scheduler;
mod start_groups;
mod traced_store;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::Instrument;

pub use breaker::{BreakerOptions, BreakerState};
pub use options::{ChillOptions, TriggerLimit};
#[cfg(feature = "testkit")]
pub(crate) use retry::min_retry_delay;

use crate::ai::AiClient;
use crate::clock::Clock;
use crate::error::Error;
use crate::events::{Event, EventStream};
use crate::model::{
    Execution, ExecutionId, ExecutionStatus, Job, JobId, JobPatch, JobSpec, OverlapPolicy,
};
use crate::ops::{AlertSink, ArchiveSink, Summary, WindowStats};
use crate::rng::Rng;
use crate::store::{JobFilter, Lease, ManualStart, Page, PageRequest, Store, StoreError};
use std::time::Duration;

/// A ChillScheduler engine instance: job and execution API, event stream, and (after
/// [`Chill::start`]) the scheduler.
///
/// Cheap to clone; clones share the instance. Any number of instances may share one store:
/// each slot runs exactly once among them.
#[derive(Clone)]
pub struct Chill {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Chill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chill")
            .field("instance_id", &self.inner.options.instance_id)
            .finish_non_exhaustive()
    }
}

/// The shared state of an engine instance.
pub(crate) struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ai: Arc<dyn AiClient>,
    options: ChillOptions,
    events: broadcast::Sender<Event>,
    /// Wakes the scheduler loop: a job changed here, a retry was scheduled, capacity freed.
    wake: Notify,
    /// The global concurrency limit.
    permits: Arc<Semaphore>,
    rng: Mutex<Rng>,
    /// Executions running on this instance, to wait for or abort at shutdown.
    running: Mutex<HashMap<ExecutionId, AbortHandle>>,
    /// Notified whenever an execution of this instance ends.
    idle: Notify,
    /// Set when a shutdown begins: no new work is taken.
    stopping: watch::Sender<bool>,
    /// The circuit breaker around the AI client.
    breaker: breaker::Breaker,
    alert_sink: Option<Arc<dyn AlertSink>>,
    archive: Option<Arc<dyn ArchiveSink>>,
    /// Recent manual triggers per job, for the trigger limit.
    triggers: Mutex<HashMap<JobId, VecDeque<DateTime<Utc>>>>,
    /// The global spend, for the global budget.
    spend: Mutex<maintenance::GlobalSpend>,
    /// When each alert was last raised.
    raised: Mutex<maintenance::Raised>,
    /// Runs claimed ahead, grouped by the instant they are due.
    start_groups: start_groups::StartGroups,
    /// Store writes under way that may lease executions to this instance.
    lease_writes: Arc<lease_writes::LeaseWrites>,
    /// When this instance was built: it runs nothing that started before.
    built_at: DateTime<Utc>,
}

/// `at` rounded up to a whole millisecond, the precision of the stores (see [`Inner::now`]).
fn ceil_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    let cut = at.trunc_subsecs(3);
    if cut == at {
        at
    } else {
        cut + TimeDelta::milliseconds(1)
    }
}

impl Inner {
    /// The current time at store precision (milliseconds).
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(3)
    }

    fn lease_length(&self) -> TimeDelta {
        TimeDelta::from_std(self.options.lease_duration).unwrap_or(TimeDelta::seconds(30))
    }

    fn poll_length(&self) -> TimeDelta {
        TimeDelta::from_std(self.options.poll_interval).unwrap_or(TimeDelta::seconds(1))
    }

    /// How far ahead of their due time slots are claimed ([`ChillOptions::claim_ahead`]).
    fn ahead_length(&self) -> TimeDelta {
        TimeDelta::from_std(self.options.claim_ahead).unwrap_or(TimeDelta::zero())
    }

    /// A lease for this instance starting now.
    fn lease(&self) -> Lease {
        self.lease_from(self.now())
    }

    /// A lease for this instance starting at `start` (a slot claimed ahead: its lease covers
    /// the wait until the slot and a whole lease after it).
    fn lease_from(&self, start: DateTime<Utc>) -> Lease {
        Lease {
            owner: self.options.instance_id.clone(),
            expires_at: start + self.lease_length(),
        }
    }

    fn rng(&self) -> MutexGuard<'_, Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> MutexGuard<'_, HashMap<ExecutionId, AbortHandle>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spend(&self) -> MutexGuard<'_, maintenance::GlobalSpend> {
        self.spend.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn raised(&self) -> MutexGuard<'_, maintenance::Raised> {
        self.raised.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count a manual trigger of `job` at `now` against the trigger limit; the error says
    /// when the next one is allowed.
    fn admit_trigger(&self, job: &JobId, now: DateTime<Utc>) -> Result<(), Error> {
        let Some(limit) = self.options.manual_trigger_limit else {
            return Ok(());
        };
        let per = TimeDelta::from_std(limit.per).unwrap_or(TimeDelta::MAX);
        let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        let recent = triggers.entry(*job).or_default();
        while recent.front().is_some_and(|t| now - *t >= per) {
            recent.pop_front();
        }
        if recent.len() >= limit.max as usize {
            let next = recent.front().map_or(now, |t| *t + per);
            return Err(Error::TriggerLimited {
                job_id: *job,
                max: limit.max,
                per: limit.per,
                retry_after: (next - now).to_std().unwrap_or_default(),
            });
        }
        recent.push_back(now);
        Ok(())
    }

    fn emit(&self, event: Event) {
        // No subscribers is fine; a slow one lags (broadcast never blocks the sender).
        let _ = self.events.send(event);
    }

    /// [`Inner::emit`] for an event that is costly to build (a clone of an execution): built
    /// only when someone subscribes.
    fn emit_with(&self, event: impl FnOnce() -> Event) {
        if self.events.receiver_count() > 0 {
            self.emit(event());
        }
    }

    /// Exponential backoff for the `n`-th consecutive store failure of a loop.
    fn store_backoff(&self, n: u32) -> TimeDelta {
        let base = TimeDelta::from_std(self.options.store_retry_initial)
            .unwrap_or(TimeDelta::milliseconds(100));
        let max =
            TimeDelta::from_std(self.options.store_retry_max).unwrap_or(TimeDelta::seconds(5));
        let factor = 1i32 << n.saturating_sub(1).min(16);
        let delay = (base * factor).min(max);
        delay
            + TimeDelta::milliseconds(
                self.rng().up_to(delay.num_milliseconds().max(0) as u64 / 5) as i64
            )
    }

    /// Run a store operation, retrying transient errors with backoff for up to
    /// `store_retry_for`. `None` when it kept failing (the error is logged).
    async fn retry_store<T, F, Fut>(&self, what: &str, mut op: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let give_up = self.clock.now()
            + TimeDelta::from_std(self.options.store_retry_for).unwrap_or(TimeDelta::minutes(2));
        let mut failures = 0;
        loop {
            match op().await {
                Ok(v) => return Some(v),
                Err(e) if e.is_transient() && self.clock.now() < give_up => {
                    failures += 1;
                    let wait = self.store_backoff(failures);
                    tracing::warn!(operation = what, error = %e, failures, "transient store error; retrying");
                    self.clock.sleep(wait.to_std().unwrap_or_default()).await;
                }
                Err(e) => {
                    tracing::error!(operation = what, error = %e, "store operation failed");
                    return None;
                }
            }
        }
    }

    /// Run a claimed execution on this instance: holds a concurrency permit (taken here if
    /// not given) for its whole run.
    fn dispatch(
        self: &Arc<Self>,
        execution: Execution,
        job: Job,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let id = execution.id;
        let inner = self.clone();
        let mut running = self.running();
        let counted = crate::telemetry::RunningExecution::start();
        // Boxed so that spawning moves a pointer, not the whole execution future.
        let task = tokio::spawn(Box::pin(async move {
            let _counted = counted;
            // Waiting for capacity can take longer than a lease: renew it meanwhile, or the
            // execution would be recovered as crashed while it waits.
            let permit = match permit {
                Some(p) => Some(Ok(p)),
                None => tokio::select! {
                    p = inner.permits.clone().acquire_owned() => Some(p),
                    () = executor::heartbeat(&inner, &execution) => None,
                },
            };
            match permit {
                Some(permit) => {
                    executor::run(inner.clone(), execution, job).await;
                    drop(permit);
                }
                None => {
                    tracing::warn!(execution_id = %id, "lease lost while waiting for capacity; abandoning the execution");
                }
            }
            inner.running().remove(&id);
            inner.idle.notify_waiters();
            inner.wake.notify_one();
        }));
        running.insert(id, task.abort_handle());
    }

    /// Dispatch an execution claimed without its job at hand (a retry attempt, a promoted
    /// buffered run): read the job; if it is gone or paused, cancel the execution; if the
    /// store cannot tell, leave the execution to recovery.
    async fn dispatch_with_job(self: &Arc<Self>, execution: Execution) {
        self.dispatch_claimed_inner(execution, None).await;
    }

    async fn dispatch_claimed(
        self: &Arc<Self>,
        execution: Execution,
        permit: OwnedSemaphorePermit,
    ) {
        self.dispatch_claimed_inner(execution, Some(permit)).await;
    }

    async fn dispatch_claimed_inner(
        self: &Arc<Self>,
        execution: Execution,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let job = self
            .retry_store("get_job", || self.store.get_job(&execution.job_id))
            .await;
        match job {
            Some(Some(job)) if job.enabled && job.deleted_at.is_none() => {
                self.dispatch(execution, job, permit);
            }
            None => {
                // The store kept failing: the job may well be active. Leave the execution to
                // recovery, which fails it and applies the retry policy.
                tracing::warn!(execution_id = %execution.id, "could not read the job of a claimed execution; it will be recovered");
                self.lease_writes.mark_unsure(self.clock.now());
            }
            Some(_) => executor::cancel_unstarted(self, &execution).await,
        }
    }
}

/// A started engine: stop it with [`ChillHandle::shutdown`].
#[derive(Debug)]
pub struct ChillHandle {
    chill: Chill,
    loops: Vec<JoinHandle<()>>,
}

impl ChillHandle {
    /// The engine this handle runs.
    pub fn chill(&self) -> &Chill {
        &self.chill
    }

    /// Stop gracefully: stop claiming, let running executions finish within the grace period
    /// ([`ChillOptions::shutdown_grace`]), then release the leases of the rest so another
    /// instance takes them over.
    pub async fn shutdown(self) {
        let inner = &self.chill.inner;
        inner.stopping.send_replace(true);
        for task in self.loops {
            let _ = task.await;
        }
        let grace_end = inner.clock.now()
            + TimeDelta::from_std(inner.options.shutdown_grace).unwrap_or(TimeDelta::zero());
        loop {
            // Registered before the check, so an execution ending in between still wakes us.
            let idle = inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if inner.running().is_empty() {
                break;
            }
            tokio::select! {
                () = idle => {}
                () = inner.clock.sleep_until(grace_end) => break,
            }
        }
        // Aborted before they leave `running`: nothing looks lost while it still runs.
        let rest: Vec<(ExecutionId, AbortHandle)> = {
            let mut running = inner.running();
            running.values().for_each(AbortHandle::abort);
            running.drain().collect()
        };
        let now = inner.now();
        for (id, _) in rest {
            tracing::warn!(execution_id = %id, "shutdown grace over; releasing the lease for another instance");
            let owner = inner.options.instance_id.clone();
            if let Err(e) = inner.store.renew_lease(&id, &owner, now).await {
                tracing::warn!(execution_id = %id, error = %e, "could not release the lease; it will expire");
            }
        }
        tracing::info!(instance = %inner.options.instance_id, "engine stopped");
    }

    /// Stop at once without writing anything, as a crash would: running executions keep
    /// their leases until they expire and another instance recovers them. For tests and
    /// simulations.
    pub fn abort(self) {
        let inner = &self.chill.inner;
        inner.stopping.send_replace(true);
        for task in &self.loops {
            task.abort();
        }
        for (_, task) in inner.running().drain() {
            task.abort();
        }
    }
}

/// Builds a [`Chill`] with hooks: from [`Chill::builder`].
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use chill_core::{Alert, AlertSink, AiClient, AiError, AiRequest, AiResponse, Chill, ChillOptions, MemoryStore, SystemClock};
///
/// struct Echo;
/// #[async_trait]
/// impl AiClient for Echo {
///     async fn call(&self, r: &AiRequest) -> Result<AiResponse, AiError> {
///         Ok(AiResponse { result: r.payload.prompt.clone(), ..Default::default() })
///     }
/// }
/// struct Pager;
/// #[async_trait]
/// impl AlertSink for Pager {
///     async fn alert(&self, alert: &Alert) { eprintln!("{}", alert.message) }
/// }
/// let chill = Chill::builder(Arc::new(MemoryStore::new()), Arc::new(SystemClock), Arc::new(Echo))
///     .options(ChillOptions::default().with_max_concurrent(10))
///     .alert_sink(Arc::new(Pager))
///     .build();
/// # let _ = chill;
/// ```
pub struct ChillBuilder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ai: Arc<dyn AiClient>,
    options: ChillOptions,
    alert_sink: Option<Arc<dyn AlertSink>>,
    archive: Option<Arc<dyn ArchiveSink>>,
}

impl std::fmt::Debug for ChillBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChillBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ChillBuilder {
    /// The options (default: `ChillOptions::default()`).
    pub fn options(mut self, options: ChillOptions) -> ChillBuilder {
        self.options = options;
        self
    }

    /// Where alerts go (besides the event stream).
    pub fn alert_sink(mut self, sink: Arc<dyn AlertSink>) -> ChillBuilder {
        self.alert_sink = Some(sink);
        self
    }

    /// What retention hands each batch of old executions to before deleting it.
    pub fn archive(mut self, archive: Arc<dyn ArchiveSink>) -> ChillBuilder {
        self.archive = Some(archive);
        self
    }

    /// The engine instance.
    pub fn build(self) -> Chill {
        let mut options = self.options;
        if options.heartbeat_interval * 2 > options.lease_duration {
            // A lease must survive a late heartbeat: renew at least twice per lease.
            options.heartbeat_interval = options.lease_duration / 3;
            tracing::warn!(
                heartbeat_ms = options.heartbeat_interval.as_millis() as u64,
                "heartbeat interval too long for the lease duration; using a third of the lease"
            );
        }
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let seed = options.seed.unwrap_or_else(|| {
            let t = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
            t ^ uuid::Uuid::new_v4().as_u64_pair().0
        });
        let permits = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
        let lease_writes = Arc::new(lease_writes::LeaseWrites::default());
        Chill {
            inner: Arc::new(Inner {
                store: Arc::new(traced_store::TracedStore::new(
                    self.store,
                    self.clock.clone(),
                    lease_writes.clone(),
                )),
                built_at: self.clock.now(),
                clock: self.clock,
                ai: self.ai,
                events,
                wake: Notify::new(),
                permits,
                rng: Mutex::new(Rng::new(seed)),
                running: Mutex::new(HashMap::new()),
                idle: Notify::new(),
                stopping: watch::channel(false).0,
                breaker: breaker::Breaker::new(options.breaker),
                alert_sink: self.alert_sink,
                archive: self.archive,
                triggers: Mutex::new(HashMap::new()),
                spend: Mutex::new(maintenance::GlobalSpend::default()),
                raised: Mutex::new(HashMap::new()),
                start_groups: start_groups::StartGroups::default(),
                lease_writes,
                options,
            }),
        }
    }
}

impl Chill {
    /// An engine instance over a store, a clock and an AI client. Nothing runs until
    /// [`Chill::start`]; the job API works at once. A heartbeat interval longer than half
    /// the lease duration is shortened to a third of it. For alert and archive hooks, use
    /// [`Chill::builder`].
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ai: Arc<dyn AiClient>,
        options: ChillOptions,
    ) -> Chill {
        Chill::builder(store, clock, ai).options(options).build()
    }

    /// A builder, for an engine with hooks (alert sink, archive).
    pub fn builder(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ai: Arc<dyn AiClient>,
    ) -> ChillBuilder {
        ChillBuilder {
            store,
            clock,
            ai,
            options: ChillOptions::default(),
            alert_sink: None,
            archive: None,
        }
    }

    /// This instance's id (the owner of its leases).
    pub fn instance_id(&self) -> &str {
        &self.inner.options.instance_id
    }

    /// The options.
    pub fn options(&self) -> &ChillOptions {
        &self.inner.options
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Start the scheduler and maintenance loops on the current tokio runtime.
    pub fn start(&self) -> ChillHandle {
        let inner = &self.inner;
        inner.stopping.send_replace(false);
        let span = tracing::info_span!("chill", instance = %inner.options.instance_id);
        let scheduler = tokio::spawn(
            scheduler::scheduler_loop(inner.clone(), inner.stopping.subscribe())
                .instrument(span.clone()),
        );
        let maintenance = tokio::spawn(
            maintenance::maintenance_loop(inner.clone(), inner.stopping.subscribe())
                .instrument(span),
        );
        tracing::info!(instance = %inner.options.instance_id, "engine started");
        ChillHandle {
            chill: self.clone(),
            loops: vec![scheduler, maintenance],
        }
    }

    /// Subscribe to this instance's events.
    pub fn subscribe(&self) -> EventStream {
        EventStream::new(self.inner.events.subscribe())
    }

    /// Create a job. Validates the spec (the error names the field and the problem) and
    /// stores nothing when it is invalid.
    pub async fn create_job(&self, spec: JobSpec) -> Result<Job, Error> {
        let job = Job::create(spec, self.inner.now())?;
        self.inner.store.create_job(&job).await?;
        tracing::info!(job_id = %job.id, name = %job.name, "job created");
        self.inner.emit(Event::JobCreated(job.clone()));
        self.inner.wake.notify_one();
        Ok(job)
    }

    /// A job by id (soft-deleted jobs too); `None` when there is none.
    pub async fn get_job(&self, id: &JobId) -> Result<Option<Job>, Error> {
        Ok(self.inner.store.get_job(id).await?)
    }

    /// A page of jobs matching a filter.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, Error> {
        Ok(self.inner.store.list_jobs(filter, page).await?)
    }

    async fn existing_job(&self, id: &JobId) -> Result<Job, Error> {
        match self.inner.store.get_job(id).await? {
            Some(job) if job.deleted_at.is_none() => Ok(job),
            _ => Err(Error::JobNotFound(*id)),
        }
    }

    /// Apply a patch to a job. A concurrent change is merged by re-reading the job and
    /// applying the patch again (the patch's fields win).
    pub async fn update_job(&self, id: &JobId, patch: &JobPatch) -> Result<Job, Error> {
        self.change_job(
            id,
            None,
            |job, now| Ok(job.apply(patch, now)?),
            Event::JobUpdated,
        )
        .await
    }

    /// Apply a patch only if the job is still at `version` ([`Error::VersionConflict`]
    /// otherwise). Claiming a slot moves the job's next run and so changes its version too.
    pub async fn update_job_at(
        &self,
        id: &JobId,
        version: u64,
        patch: &JobPatch,
    ) -> Result<Job, Error> {
        self.change_job(
            id,
            Some(version),
            |job, now| Ok(job.apply(patch, now)?),
            Event::JobUpdated,
        )
        .await
    }

    /// Pause a job, with a note saying why. Its slots do not run until it is resumed.
    pub async fn pause_job(&self, id: &JobId, note: Option<String>) -> Result<Job, Error> {
        let patch = JobPatch {
            enabled: Some(false),
            pause_note: Some(note),
            ..JobPatch::default()
        };
        self.change_job(
            id,
            None,
            |job, now| Ok(job.apply(&patch, now)?),
            Event::JobPaused,
        )
        .await
    }

    /// Resume a paused job: it runs from its next slot after now (slots of the paused period
    /// are not caught up).
    pub async fn resume_job(&self, id: &JobId) -> Result<Job, Error> {
        let patch = JobPatch {
            enabled: Some(true),
            pause_note: Some(None),
            ..JobPatch::default()
        };
        self.change_job(
            id,
            None,
            |job, now| Ok(job.apply(&patch, now)?),
            Event::JobResumed,
        )
        .await
    }

    /// Soft-delete a job: it stops running and disappears from listings, its history stays.
    pub async fn delete_job(&self, id: &JobId) -> Result<Job, Error> {
        let job = self
            .change_job(
                id,
                None,
                |job, now| {
                    let mut job = job.clone();
                    job.deleted_at = Some(now);
                    job.enabled = false;
                    job.next_run_at = None;
                    job.version += 1;
                    job.updated_at = now;
                    Ok(job)
                },
                |job| Event::JobDeleted {
                    job_id: job.id,
                    hard: false,
                },
            )
            .await?;
        Ok(job)
    }

    /// Delete a job and its whole history for good. Returns whether it existed.
    pub async fn purge_job(&self, id: &JobId) -> Result<bool, Error> {
        let existed = self.inner.store.delete_job(id).await?;
        if existed {
            tracing::info!(job_id = %id, "job purged");
            self.inner.emit(Event::JobDeleted {
                job_id: *id,
                hard: true,
            });
        }
        Ok(existed)
    }

    /// Read-modify-write of a job with optimistic concurrency.
    async fn change_job(
        &self,
        id: &JobId,
        expected_version: Option<u64>,
        change: impl Fn(&Job, DateTime<Utc>) -> Result<Job, Error>,
        event: impl Fn(Job) -> Event,
    ) -> Result<Job, Error> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let job = self.existing_job(id).await?;
            if let Some(v) = expected_version.filter(|v| *v != job.version) {
                return Err(Error::VersionConflict {
                    id: *id,
                    expected: v,
                    actual: job.version,
                });
            }
            let updated = change(&job, self.inner.now())?;
            match self.inner.store.update_job(&updated, job.version).await {
                Ok(()) => {
                    tracing::info!(job_id = %id, version = updated.version, "job changed");
                    self.inner.emit(event(updated.clone()));
                    self.inner.wake.notify_one();
                    return Ok(updated);
                }
                Err(StoreError::VersionConflict {
                    expected, actual, ..
                }) if expected_version.is_some() || attempt == ATTEMPTS => {
                    return Err(Error::VersionConflict {
                        id: *id,
                        expected,
                        actual,
                    });
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => return Err(Error::JobNotFound(*id)),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Run a job now. Returns the execution's id at once; the run proceeds in the
    /// background. Refused with [`Error::Busy`] while a run is in progress under the `skip`
    /// overlap policy, and with [`Error::JobNotActive`] for a paused job.
    pub async fn trigger_job(&self, id: &JobId) -> Result<ExecutionId, Error> {
        if *self.inner.stopping.borrow() {
            return Err(Error::ShuttingDown);
        }
        let job = self.existing_job(id).await?;
        let now = self.inner.now();
        self.check_can_start(&job, now)?;
        self.inner.admit_trigger(id, now)?;
        let execution = Execution::manual(&job, now);
        self.start_by_hand(job, execution, now).await
    }

    /// Refuse to start a run of `job` by hand when it is at its concurrency limit or over its
    /// (or the global) budget.
    fn check_can_start(&self, job: &Job, now: DateTime<Utc>) -> Result<(), Error> {
        if let Some(limit) = job.max_concurrency
            && job.running_count >= limit
        {
            return Err(Error::AtConcurrencyLimit {
                job_id: job.id,
                running: job.running_count,
                limit,
            });
        }
        let over = job
            .budget
            .and_then(|b| b.exceeded_by(&job.spend, now))
            .map(|period| format!("the job's {period} budget is spent"))
            .or_else(|| self.inner.global_gate(now));
        match over {
            Some(reason) => Err(Error::BudgetExceeded {
                job_id: job.id,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Start `execution` (a manual run or a manual retry) now under this instance's lease
    /// and run it in the background.
    async fn start_by_hand(
        &self,
        job: Job,
        mut execution: Execution,
        now: DateTime<Utc>,
    ) -> Result<ExecutionId, Error> {
        let id = job.id;
        let lease = self.inner.lease();
        execution.status = ExecutionStatus::Running;
        execution.started_at = now;
        execution.lease_owner = Some(lease.owner);
        execution.lease_expires_at = Some(lease.expires_at);
        let require_idle = job.overlap_policy == OverlapPolicy::Skip;
        let _writing = self.inner.lease_writes.begin(id);
        match self
            .inner
            .store
            .start_manual(&execution, require_idle)
            .await?
        {
            ManualStart::Started => {
                tracing::info!(job_id = %id, execution_id = %execution.id, "manual run started");
                let execution_id = execution.id;
                self.inner.dispatch(execution, job, None);
                Ok(execution_id)
            }
            ManualStart::Busy => Err(Error::Busy(id)),
            _ => Err(Error::JobNotActive(id)),
        }
    }

    /// Retry a failed, timed-out or dead execution by hand: a new attempt in its chain
    /// (trigger `retry`, the next attempt number, the same root), started now. Refused when
    /// the execution has a retry already, and for the reasons [`Chill::trigger_job`] refuses.
    pub async fn retry_execution(&self, id: &ExecutionId) -> Result<ExecutionId, Error> {
        if *self.inner.stopping.borrow() {
            return Err(Error::ShuttingDown);
        }
        let failed = self
            .inner
            .store
            .get_execution(id)
            .await?
            .ok_or(Error::ExecutionNotFound(*id))?;
        if !failed.status.is_failure() {
            return Err(Error::NotRetryable {
                execution_id: *id,
                status: failed.status,
            });
        }
        let job = self.existing_job(&failed.job_id).await?;
        let now = self.inner.now();
        self.check_can_start(&job, now)?;
        let attempt = failed.retry(now, now);
        match self.start_by_hand(job, attempt, now).await {
            Err(Error::Store(StoreError::AlreadyExists { .. })) => Err(Error::AlreadyRetried(*id)),
            other => other,
        }
    }

    /// The state of this instance's circuit breaker around the AI client.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state(self.inner.clock.now())
    }

    /// Statistics of every execution that ended in `[from, to)`: in all and per job.
    pub async fn summary(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Summary, Error> {
        Ok(maintenance::summarize(&self.inner, from, to).await?)
    }

    /// The summary of one UTC day.
    pub async fn daily_summary(&self, day: chrono::NaiveDate) -> Result<Summary, Error> {
        let from = day.and_time(chrono::NaiveTime::MIN).and_utc();
        self.summary(from, from + TimeDelta::days(1)).await
    }

    /// The summary of the seven UTC days from `first_day`.
    pub async fn weekly_summary(&self, first_day: chrono::NaiveDate) -> Result<Summary, Error> {
        let from = first_day.and_time(chrono::NaiveTime::MIN).and_utc();
        self.summary(from, from + TimeDelta::days(7)).await
    }

    /// One job's statistics over the last `window` (an hour, a day, a week...): its
    /// executions that ended since `now - window`.
    pub async fn job_stats(&self, job_id: &JobId, window: Duration) -> Result<WindowStats, Error> {
        let now = self.inner.now();
        let from = now - TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX);
        // An execution ends at most its timeout after it starts, and starts (as a retry) at
        // most a backoff after it is created: look a little further back than the window.
        let created_after = from - TimeDelta::days(8);
        let mut ended = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        'pages: loop {
            let p = self.inner.store.list_executions(job_id, &page).await?;
            for e in p.items {
                if e.created_at < created_after {
                    break 'pages;
                }
                if e.completed_at.is_some_and(|t| t >= from && t <= now) {
                    ended.push(e);
                }
            }
            match p.next_cursor {
                Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
                None => break,
            }
        }
        Ok(WindowStats::of(&ended))
    }

    /// Run the metrics round now (it also runs every metrics interval once started): reads
    /// the global spend, computes the alert window's statistics and raises alerts.
    pub async fn run_metrics_round(&self) -> Result<Summary, Error> {
        Ok(maintenance::metrics_round(&self.inner).await?)
    }

    /// Run retention now (it also runs every retention interval once started). Returns how
    /// many executions were deleted.
    pub async fn run_retention(&self) -> Result<u64, Error> {
        Ok(maintenance::retention_round(&self.inner).await?)
    }

    /// An execution by id.
    pub async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, Error> {
        Ok(self.inner.store.get_execution(id).await?)
    }

    /// A page of a job's executions, newest first.
    pub async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>, Error> {
        Ok(self.inner.store.list_executions(job_id, page).await?)
    }

    /// How many executions this instance is running now.
    pub fn running_executions(&self) -> usize {
        self.inner.running().len()
    }

    /// Run lease recovery once now (it also runs every recovery interval once started):
    /// executions whose lease expired, and those leased to this instance that it lost track
    /// of (see [`ChillOptions::recovery_interval`]). Returns how many were recovered.
    pub async fn recover_expired_leases(&self) -> Result<usize, Error> {
        Ok(recovery::recover(&self.inner).await?)
    }
}
