//! Several engines on the system clock over one shared store, and the exactly-once check of
//! what the store holds afterwards.
//!
//! [`MultiInstance`] creates jobs firing every second (200 by default) spread over one engine
//! per store client given, starts the engines and triggers jobs by hand through each in turn
//! while the jobs' slots come due (20 s by default); the AI ([`CountingAi`]) fails some calls,
//! so retries run too. The run is bounded: every job's schedule window ends at the same
//! instant, the manual triggers stop then, and the engines keep running until no job has a
//! slot, a run or a retry left, however long the store takes to catch up (up to
//! [`MultiInstance::drain_deadline`]). Slots the engines reach late are recorded as skipped
//! (overlap, missed) by the job's policies: they count as recorded, not lost. So every slot
//! is accounted for whatever the store's speed, and [`check`] asserts exact counts, not
//! timings: every slot from a job's creation to its window end has exactly one record, no
//! execution ran twice, and each job's statistics equal the tally of its executions.
//!
//! A store backend runs it with one store client per engine (as separate processes would
//! have), over a store that holds nothing else: waiting for the engines to finish reads
//! [`Store::next_due_at`], which covers the whole store. Its parts serve tests that set up
//! engines their own way (a connection cut, say): [`CountingAi`], [`fast_options`],
//! [`every_second`], [`wait_until_finished`] and [`check`].
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use chill_core::{MemoryStore, Store};
//! use chill_core::testkit::multi_instance::MultiInstance;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let report = MultiInstance::new()
//!     .with_jobs(4)
//!     .with_run(Duration::from_secs(2))
//!     .run(vec![store.clone(); 2], store)
//!     .await;
//! report.assert_clean("memory");
//! assert_eq!(report.tally.slots, report.tally.expected_slots);
//! # });
//! ```

mod check;
mod counting_ai;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

pub use check::{Tally, check};
pub use counting_ai::CountingAi;

use crate::clock::SystemClock;
use crate::engine::{Chill, ChillOptions};
use crate::model::{Job, JobSpec, RetryPolicy};
use crate::store::Store;

/// How often, at the most, the store is read while waiting for the engines to finish.
const DRAIN_POLL: Duration = Duration::from_millis(500);

/// How long the store and the engines must look finished before the engines stop.
const DRAIN_QUIET: Duration = Duration::from_secs(1);

/// Engine options for runs on the system clock: quick polls, short leases.
pub fn fast_options(instance: &str) -> ChillOptions {
    ChillOptions::default()
        .with_instance_id(instance)
        .with_poll_interval(Duration::from_millis(100))
        .with_lease_duration(Duration::from_secs(6))
        .with_heartbeat_interval(Duration::from_secs(2))
        .with_recovery_interval(Duration::from_secs(2))
        .with_store_retry_initial(Duration::from_millis(50))
        .with_store_retry_max(Duration::from_millis(500))
        .with_shutdown_grace(Duration::from_secs(30))
}

/// Job `i` of a run: every second until `end` (inclusive; its window end), retried twice one
/// to two seconds later, tagged `group-{i % 7}`.
pub fn every_second(i: usize, end: DateTime<Utc>) -> JobSpec {
    JobSpec {
        retry_policy: RetryPolicy {
            max_retries: 2,
            retry_delay: 1,
            max_delay: 2,
            retry_on_timeout: false,
        },
        tags: vec![format!("group-{}", i % 7)],
        end_date: Some(end),
        ..JobSpec::new(format!("job {i}"), format!("prompt {i}"), "* * * * * *")
    }
}

/// A multi-instance run: how many jobs, for how long. Start from [`MultiInstance::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiInstance {
    /// Jobs created, spread over the engines ([`every_second`]; default 200).
    pub jobs: usize,
    /// How long the jobs' slots come due: each job's window ends this long after the jobs
    /// start being created, on a whole second (default 20 s).
    pub run: Duration,
    /// Time between manual triggers, through each engine in turn, until the window end
    /// (default 40 ms).
    pub trigger_every: Duration,
    /// How long after the window end the engines may take to record every slot and finish
    /// every run and retry (default 180 s); beyond it the run stops them and reports a
    /// violation.
    pub drain_deadline: Duration,
    /// Seed of the AI's answers (default 7).
    pub seed: u64,
}

impl Default for MultiInstance {
    fn default() -> MultiInstance {
        MultiInstance::new()
    }
}

impl MultiInstance {
    /// 200 jobs firing every second for 20 s, a manual trigger every 40 ms, 180 s to finish.
    pub fn new() -> MultiInstance {
        MultiInstance {
            jobs: 200,
            run: Duration::from_secs(20),
            trigger_every: Duration::from_millis(40),
            drain_deadline: Duration::from_secs(180),
            seed: 7,
        }
    }

    /// Set the number of jobs.
    pub fn with_jobs(mut self, jobs: usize) -> MultiInstance {
        self.jobs = jobs;
        self
    }

    /// Set how long the jobs' slots come due.
    pub fn with_run(mut self, run: Duration) -> MultiInstance {
        self.run = run;
        self
    }

    /// Set how long the engines may take to finish after the window end.
    pub fn with_drain_deadline(mut self, deadline: Duration) -> MultiInstance {
        self.drain_deadline = deadline;
        self
    }

    /// Build one engine over each of `stores` (its instance id `engine-N`) and create the
    /// jobs through them in turn; nothing runs yet. `observer` is the store the run reads
    /// through (while waiting for the engines, and for the check), so that its reads are not
    /// counted with the engines'. Panics when `stores` is empty or a job cannot be created.
    pub async fn prepare(&self, stores: Vec<Arc<dyn Store>>, observer: Arc<dyn Store>) -> Fleet {
        assert!(
            !stores.is_empty(),
            "a multi-instance run needs a store per engine"
        );
        let ai = Arc::new(CountingAi::new(self.seed));
        let engines: Vec<Chill> = stores
            .into_iter()
            .enumerate()
            .map(|(n, store)| {
                Chill::new(
                    store,
                    Arc::new(SystemClock),
                    ai.clone(),
                    fast_options(&format!("engine-{n}")),
                )
            })
            .collect();
        let end =
            (Utc::now() + TimeDelta::from_std(self.run).unwrap_or(TimeDelta::MAX)).trunc_subsecs(0);
        let mut jobs = Vec::with_capacity(self.jobs);
        for i in 0..self.jobs {
            let engine = &engines[i % engines.len()];
            let job = engine
                .create_job(every_second(i, end))
                .await
                .unwrap_or_else(|e| panic!("creating job {i} failed: {e}"));
            jobs.push(job);
        }
        Fleet {
            config: self.clone(),
            engines,
            jobs,
            ai,
            observer,
            end,
        }
    }

    /// [`MultiInstance::prepare`], then [`Fleet::run`].
    pub async fn run(&self, stores: Vec<Arc<dyn Store>>, observer: Arc<dyn Store>) -> Report {
        self.prepare(stores, observer).await.run().await
    }
}

/// Engines and their jobs, ready to run: from [`MultiInstance::prepare`].
pub struct Fleet {
    config: MultiInstance,
    engines: Vec<Chill>,
    jobs: Vec<Job>,
    ai: Arc<CountingAi>,
    observer: Arc<dyn Store>,
    end: DateTime<Utc>,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("config", &self.config)
            .field("engines", &self.engines)
            .field("jobs", &self.jobs.len())
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// The engines, one per store.
    pub fn engines(&self) -> &[Chill] {
        &self.engines
    }

    /// The jobs, as created.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// The AI endpoint of the engines.
    pub fn ai(&self) -> &CountingAi {
        &self.ai
    }

    /// Every job's window end: its last slot.
    pub fn window_end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Start the engines, trigger jobs by hand until the window end, wait until no job has a
    /// slot, a run or a retry left (at most [`MultiInstance::drain_deadline`]), stop the
    /// engines gracefully, and [`check`] what the store holds.
    pub async fn run(self) -> Report {
        let started = Instant::now();
        let handles: Vec<_> = self.engines.iter().map(Chill::start).collect();
        let (manual_started, manual_refused) = self.trigger_until_end().await;
        let scheduled = started.elapsed();
        let drain_started = Instant::now();
        let drained = wait_until_finished(
            self.observer.as_ref(),
            &self.engines,
            self.config.drain_deadline,
        )
        .await;
        let drain_time = drain_started.elapsed();
        let stops: Vec<_> = handles
            .into_iter()
            .map(|h| tokio::spawn(h.shutdown()))
            .collect();
        for stop in stops {
            if let Err(e) = stop.await {
                panic!("an engine's shutdown failed: {e}");
            }
        }
        let mut tally = check(self.observer.as_ref(), &self.jobs, &self.ai).await;
        let drained = match drained {
            Ok(quiet_after) => quiet_after,
            Err(outstanding) => {
                tally.violations.push(format!(
                    "{} s after the window end the engines had not finished: {outstanding}",
                    self.config.drain_deadline.as_secs()
                ));
                drain_time
            }
        };
        if tally.manual != manual_started as usize {
            tally.violations.push(format!(
                "{manual_started} manual runs started, the store holds {}",
                tally.manual
            ));
        }
        Report {
            engines: self.engines.len(),
            tally,
            manual_started,
            manual_refused,
            scheduled,
            drained,
        }
    }

    /// Trigger the jobs by hand through each engine in turn until the window end; returns how
    /// many runs started and how many triggers were refused (the job was running).
    async fn trigger_until_end(&self) -> (u32, u32) {
        let (mut started, mut refused) = (0u32, 0u32);
        let mut n = 0usize;
        while Utc::now() < self.end {
            let engine = &self.engines[n % self.engines.len()];
            let job = &self.jobs[(n * 37) % self.jobs.len().max(1)];
            match engine.trigger_job(&job.id).await {
                Ok(_) => started += 1,
                Err(_) => refused += 1,
            }
            n += 1;
            tokio::time::sleep(self.config.trigger_every).await;
        }
        (started, refused)
    }
}

/// Waits until `store` has nothing due (no job with a next slot, no pending retry: the jobs'
/// windows have ended and every slot is claimed) and nothing `running` (an execution leased
/// but run by no engine, such as one whose claim's reply was lost, counts until it is
/// recovered), and `engines` run nothing, seen for [`DRAIN_QUIET`] (one second, longer than
/// the shortest retry delay of [`every_second`]'s jobs, so that a retry created between two
/// reads shows). The store must hold nothing else: [`Store::next_due_at`] and
/// [`Store::expired_leases`] cover all of it. Returns how long that took (to the first quiet
/// read), or, once `deadline` has passed, what was still outstanding. A store error while
/// reading counts as outstanding.
///
/// The reads are spaced by at least three times what the previous one took, so that on a
/// test server that answers one request at a time they take at most a quarter of its time
/// from the engines.
pub async fn wait_until_finished(
    store: &dyn Store,
    engines: &[Chill],
    deadline: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        let read = Instant::now();
        match outstanding(store, engines).await {
            None => {
                let since = *quiet_since.get_or_insert(read);
                if since.elapsed() >= DRAIN_QUIET {
                    return Ok(since - start);
                }
            }
            Some(what) if start.elapsed() >= deadline => return Err(what),
            Some(_) => quiet_since = None,
        }
        tokio::time::sleep(DRAIN_POLL.max(read.elapsed() * 3)).await;
    }
}

/// What is still to do, as `store` and `engines` show it: `None` when nothing.
async fn outstanding(store: &dyn Store, engines: &[Chill]) -> Option<String> {
    let next_due = store.next_due_at().await;
    let running: usize = engines.iter().map(Chill::running_executions).sum();
    match next_due {
        Err(e) => return Some(format!("the next due time could not be read: {e}")),
        Ok(Some(due)) => {
            return Some(format!(
                "work due from {} (a slot or a retry), {running} executions running",
                due.to_rfc3339()
            ));
        }
        Ok(None) if running > 0 => return Some(format!("{running} executions running")),
        Ok(None) => {}
    }
    // Every running execution's lease ends within a day of now.
    let leased = store
        .expired_leases(Utc::now() + TimeDelta::days(1), 1)
        .await;
    match leased.as_deref() {
        Err(e) => Some(format!("running executions could not be read: {e}")),
        Ok([running, ..]) => Some(format!(
            "execution {} is running in the store (leased to {}) but on no engine",
            running.id,
            running.lease_owner.as_deref().unwrap_or("nobody")
        )),
        Ok([]) => None,
    }
}

/// The outcome of a run: the check's tally, and what the run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Engines that ran.
    pub engines: usize,
    /// What the store holds, counted, with every broken invariant (the run's own included:
    /// manual runs started but not recorded, engines that did not finish in time).
    pub tally: Tally,
    /// Manual triggers that started a run.
    pub manual_started: u32,
    /// Manual triggers refused (the job was running).
    pub manual_refused: u32,
    /// From the engines' start to the window end.
    pub scheduled: Duration,
    /// From the window end until every slot was recorded and nothing ran or waited (the
    /// deadline, when it passed first).
    pub drained: Duration,
}

impl Report {
    /// Fail (panic) with this report and every violation found, when there is one.
    pub fn assert_clean(&self, what: impl fmt::Debug) {
        self.tally.assert_clean(format!("{what:?}: {self}"));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let reasons: Vec<String> = t
            .slots_skipped
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        write!(
            f,
            "{} engines, {} jobs: {} of {} slots recorded ({} run, {} skipped: {}), {} executions ({} successes, {} retries, {} manual of {} started / {} refused, {} skipped, {} running, {} pending), {} AI calls; slots due for {:.1} s, all recorded and finished {:.1} s after",
            self.engines,
            t.jobs,
            t.slots,
            t.expected_slots,
            t.slots_run,
            t.slots_skipped_total(),
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join(", ")
            },
            t.executions,
            t.successes,
            t.retries,
            t.manual,
            self.manual_started,
            self.manual_refused,
            t.skipped,
            t.running,
            t.pending,
            t.ai_calls,
            self.scheduled.as_secs_f64(),
            self.drained.as_secs_f64(),
        )
    }
}
