//! The simulation harness: several engine instances over one store and one [`ManualClock`],
//! a seeded random mix of jobs (every schedule kind and policy), AI failures of every class,
//! store faults and outages, instance crashes and restarts, over simulated days. After the run
//! it checks the engine's invariants.
//!
//! ```
//! use chill_core::testkit::sim::{SimConfig, simulate};
//! let report = simulate(&SimConfig::new(7).with_days(1).with_jobs(4));
//! assert!(report.violations.is_empty(), "{report}");
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::faulty_store::{Faults, FaultyStore};
use super::in_flight::InFlight;
use crate::ai::{AiClient, AiError, AiRequest, AiResponse, TokenUsage};
use crate::clock::{Clock, ManualClock};
use crate::engine::{Chill, ChillHandle, ChillOptions};
use crate::model::{
    Budget, CatchUpPolicy, Execution, ExecutionId, ExecutionStatus, Job, JobId, JobSpec,
    OverlapPolicy, RetryPolicy, Trigger,
};
use crate::ops::{ModelPrice, PriceTable};
use crate::rng::Rng;
use crate::schedule::Blackout;
use crate::store::{JobFilter, MemoryStore, PageRequest, Store};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of every random choice: the same seed replays the same run.
    pub seed: u64,
    /// Engine instances sharing the store.
    pub instances: usize,
    /// Simulated days.
    pub days: u32,
    /// Jobs created at the start.
    pub jobs: usize,
    /// Inject store errors, lost replies and outages.
    pub store_faults: bool,
    /// Crash and restart instances.
    pub crashes: bool,
}

impl SimConfig {
    /// Three instances, two days, twelve jobs, with faults and crashes.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            instances: 3,
            days: 2,
            jobs: 12,
            store_faults: true,
            crashes: true,
        }
    }

    /// Set the number of simulated days.
    pub fn with_days(mut self, days: u32) -> SimConfig {
        self.days = days;
        self
    }

    /// Set the number of jobs.
    pub fn with_jobs(mut self, jobs: usize) -> SimConfig {
        self.jobs = jobs;
        self
    }

    /// Set the number of instances.
    pub fn with_instances(mut self, instances: usize) -> SimConfig {
        self.instances = instances;
        self
    }
}

/// What a simulation did and which invariants it broke.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Execution records at the end.
    pub executions: usize,
    /// Of those, successful ones.
    pub successes: usize,
    /// Of those, skipped slots.
    pub skipped: usize,
    /// Of those, retry attempts.
    pub retries: usize,
    /// Calls the AI received.
    pub ai_calls: usize,
    /// Instance crashes.
    pub crashes: usize,
    /// Store faults injected.
    pub store_faults: u64,
    /// Every broken invariant, described.
    pub violations: Vec<String>,
}

impl SimReport {
    /// The command that replays this seed.
    pub fn reproduce_command(&self) -> String {
        format!(
            "CHILL_SIM_SEED={} cargo test -p chill-core --features testkit --test simulation -- --ignored replay_seed_from_env --nocapture",
            self.seed
        )
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {} executions ({} successes, {} skipped, {} retries), {} AI calls, {} crashes, {} store faults",
            self.seed,
            self.executions,
            self.successes,
            self.skipped,
            self.retries,
            self.ai_calls,
            self.crashes,
            self.store_faults
        )?;
        if !self.violations.is_empty() {
            write!(f, "\n{} violations:", self.violations.len())?;
            for v in self.violations.iter().take(20) {
                write!(f, "\n  - {v}")?;
            }
            write!(f, "\nreproduce with: {}", self.reproduce_command())?;
        }
        Ok(())
    }
}

/// An AI endpoint with seeded answers of every class, and a record of calls per execution.
struct SimAi {
    clock: Arc<dyn Clock>,
    rng: Mutex<Rng>,
    calls: Mutex<HashMap<ExecutionId, u32>>,
}

#[async_trait]
impl AiClient for SimAi {
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
        let (latency, outcome) = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            *self
                .calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(request.execution_id)
                .or_default() += 1;
            let roll = rng.below(100);
            let quick = Duration::from_secs(rng.below(30));
            match roll {
                0..=64 => (
                    Duration::from_secs(rng.below(120)),
                    Ok(AiResponse {
                        result: format!("done: {}", request.payload.prompt),
                        tools_used: vec!["slack".into()],
                        usage: Some(TokenUsage {
                            input_tokens: 100 + rng.below(100),
                            output_tokens: 200 + rng.below(300),
                        }),
                        ..AiResponse::default()
                    }),
                ),
                65..=72 => (
                    quick,
                    Err(AiError::Server {
                        status: Some(503),
                        message: "unavailable".into(),
                    }),
                ),
                73..=79 => (quick, Err(AiError::Network("connection reset".into()))),
                80..=84 => (
                    quick,
                    Err(AiError::RateLimited {
                        retry_after: rng
                            .chance(0.6)
                            .then(|| Duration::from_secs(30 + rng.below(270))),
                        message: "slow down".into(),
                    }),
                ),
                85..=89 => (
                    quick,
                    Err(AiError::InvalidRequest {
                        status: Some(400),
                        message: "bad prompt".into(),
                    }),
                ),
                90..=92 => (
                    quick,
                    Err(AiError::Api {
                        message: "tool failed".into(),
                        details: None,
                    }),
                ),
                // Slower than any job's timeout.
                _ => (
                    request.timeout + Duration::from_secs(60),
                    Err(AiError::Network("late".into())),
                ),
            }
        };
        self.clock.sleep(latency).await;
        outcome
    }
}

const SCHEDULES: &[&str] = &[
    "*/15 * * * *",
    "0 * * * *",
    "30 */2 * * *",
    "0 9 * * MON-FRI",
    "0 0 * * *",
    "*/20 9-17 * * *",
    "0 30 */3 * * *",
    "cron(0/30 * ? * * *)",
    "cron(15 10 ? * 6L *)",
    "rate(45 minutes)",
    "rate(2 hours)",
    "0 2 * * *",
    "30 1 * * *",
    "@hourly",
    "0 12 L * *",
    "*/5 * * * *",
];
const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
];

/// Engine options for the simulation: long intervals, so that simulated days pass quickly.
fn sim_options(id: String, seed: u64) -> ChillOptions {
    ChillOptions::default()
        .with_instance_id(id)
        .with_seed(Some(seed))
        .with_max_concurrent(8)
        .with_poll_interval(Duration::from_secs(60))
        .with_lease_duration(Duration::from_secs(90))
        .with_heartbeat_interval(Duration::from_secs(30))
        .with_recovery_interval(Duration::from_secs(60))
        .with_store_retry_max(Duration::from_secs(30))
        .with_prices(PriceTable::default().with_default(ModelPrice::usd_per_mtok(3.0, 15.0)))
}

/// A random job spec.
fn random_spec(rng: &mut Rng, index: usize, start: DateTime<Utc>, end: DateTime<Utc>) -> JobSpec {
    let span = (end - start).num_seconds().max(1) as u64;
    let at = |secs: u64| start + TimeDelta::seconds(secs as i64);
    let schedule = if rng.chance(0.08) {
        let t = at(rng.below(span)).naive_utc();
        format!("at({})", t.format("%Y-%m-%dT%H:%M:%S"))
    } else {
        rng.pick(SCHEDULES).to_string()
    };
    let mut spec = JobSpec::new(format!("job {index}"), format!("prompt {index}"), schedule);
    spec.id = Some(JobId::from(uuid::Uuid::from_u64_pair(
        rng.next_u64(),
        index as u64,
    )));
    spec.timezone = rng.pick(ZONES).to_string();
    spec.overlap_policy = *rng.pick(&[
        OverlapPolicy::Skip,
        OverlapPolicy::BufferOne,
        OverlapPolicy::Allow,
    ]);
    spec.catch_up_policy = *rng.pick(&[
        CatchUpPolicy::SkipMissed,
        CatchUpPolicy::RunOnce,
        CatchUpPolicy::RunAll,
    ]);
    spec.catch_up_window = 60 + rng.below(600) as u32;
    spec.retry_policy = RetryPolicy {
        max_retries: rng.below(4) as u32,
        retry_delay: 5 + rng.below(120) as u32,
        max_delay: 600,
        retry_on_timeout: rng.chance(0.5),
    };
    spec.timeout = 60 + rng.below(240) as u32;
    spec.jitter = if rng.chance(0.3) {
        rng.below(120) as u32
    } else {
        0
    };
    if rng.chance(0.3) {
        let b = at(rng.below(span));
        spec.blackout_periods = vec![Blackout {
            start: b,
            end: b + TimeDelta::hours(3),
            reason: Some("maintenance".into()),
        }];
    }
    if rng.chance(0.25) {
        // A few runs a day (a run costs 0.3 to 0.8 cents): some slots are skipped for it.
        spec.budget = Some(Budget {
            daily_micro_usd: Some(10_000 + rng.below(40_000)),
            monthly_micro_usd: None,
        });
    }
    if rng.chance(0.2) {
        let s = at(rng.below(span / 2));
        spec.start_date = Some(s);
        spec.end_date = Some(s + TimeDelta::seconds((span / 2) as i64));
    }
    spec
}

/// A pause of a job: when it began and when it ended (if it did).
type Pause = (JobId, DateTime<Utc>, Option<DateTime<Utc>>);

/// A running instance, or when it will come back.
enum Instance {
    Up(ChillHandle),
    Down { until: DateTime<Utc> },
}

/// Run one simulation on a fresh current-thread runtime over a [`MemoryStore`] (deterministic
/// for a seed).
pub fn simulate(config: &SimConfig) -> SimReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"));
    runtime.block_on(simulate_with(config, Arc::new(MemoryStore::new())))
}

/// Run one simulation over `store` (a new, empty one) on the calling runtime; a
/// current-thread runtime keeps it deterministic as far as the store is. With a
/// [`MemoryStore`] this is [`simulate`].
///
/// A store that answers later than within one poll (a database) is waited for: before the
/// simulated clock moves on, every call in flight has its answer, so that the engines see time
/// pass as they would over memory. Such a store may need the runtime's timers
/// (`enable_time`).
pub async fn simulate_with(config: &SimConfig, store: Arc<dyn Store>) -> SimReport {
    let mut rng = Rng::new(config.seed);
    let starts = [
        Utc.with_ymd_and_hms(2026, 3, 7, 12, 0, 0),
        Utc.with_ymd_and_hms(2026, 10, 24, 12, 0, 0),
        Utc.with_ymd_and_hms(2026, 10, 31, 12, 0, 0),
        Utc.with_ymd_and_hms(2026, 4, 4, 0, 0, 0),
    ];
    let start = rng.pick(&starts).single().unwrap_or_else(Utc::now);
    let end = start + TimeDelta::days(i64::from(config.days));
    let clock = ManualClock::new(start);
    let dyn_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let memory = store;
    let in_flight = Arc::new(InFlight::new(memory.clone()));
    let faults = Faults {
        error_rate: if config.store_faults { 0.02 } else { 0.0 },
        lost_reply_rate: if config.store_faults { 0.01 } else { 0.0 },
        max_latency: Duration::from_millis(200),
    };
    let faulty = Arc::new(FaultyStore::new(
        in_flight.clone(),
        dyn_clock.clone(),
        faults,
        rng.next_u64(),
    ));
    let store: Arc<dyn Store> = faulty.clone();
    let ai = Arc::new(SimAi {
        clock: dyn_clock.clone(),
        rng: Mutex::new(Rng::new(rng.next_u64())),
        calls: Mutex::new(HashMap::new()),
    });
    let new_instance = |n: usize, rng: &mut Rng| {
        Chill::new(
            store.clone(),
            dyn_clock.clone(),
            ai.clone(),
            sim_options(format!("instance-{n}"), rng.next_u64()),
        )
    };

    // Jobs, created through the API of an instance that does not run the scheduler (so that
    // creation is free of faults).
    let admin = Chill::new(
        memory.clone(),
        dyn_clock.clone(),
        ai.clone(),
        sim_options("admin".into(), rng.next_u64()),
    );
    let mut jobs = Vec::new();
    for i in 0..config.jobs {
        let spec = random_spec(&mut rng, i, start, end);
        match admin.create_job(spec).await {
            Ok(job) => jobs.push(job),
            // An at() or window entirely in the past is refused at creation: fine.
            Err(crate::Error::Validation(_)) => {}
            Err(e) => panic!("creating a job failed: {e}"),
        }
    }

    let mut instances: Vec<Instance> = (0..config.instances.max(1))
        .map(|n| Instance::Up(new_instance(n, &mut rng).start()))
        .collect();
    let mut next_instance_number = instances.len();
    let mut report = SimReport {
        seed: config.seed,
        ..SimReport::default()
    };
    // Pauses: job → (paused at, resumed at).
    let mut pauses: Vec<Pause> = Vec::new();
    let mut outage_until: Option<DateTime<Utc>> = None;
    let step = TimeDelta::minutes(5);
    let mut next_event = start + step;

    while clock.now() < end {
        let target = clock
            .next_deadline()
            .map_or(next_event, |d| d.min(next_event))
            .min(end);
        clock.advance_to(target).await;
        in_flight.quiesce().await;
        let now = clock.now();
        if now < next_event {
            continue;
        }
        next_event = now + step;

        // Restart crashed instances whose downtime is over.
        for slot in instances.iter_mut() {
            if let Instance::Down { until } = slot
                && *until <= now
            {
                *slot = Instance::Up(new_instance(next_instance_number, &mut rng).start());
                next_instance_number += 1;
            }
        }
        // Crash one.
        if config.crashes && rng.chance(0.01) {
            let n = rng.below(instances.len() as u64) as usize;
            let until = now + TimeDelta::minutes(1 + rng.below(30) as i64);
            if let Instance::Up(handle) =
                std::mem::replace(&mut instances[n], Instance::Down { until })
            {
                handle.abort();
                report.crashes += 1;
            }
        }
        // Store outages.
        if config.store_faults {
            match outage_until {
                Some(until) if until <= now => {
                    faulty.set_down(false);
                    outage_until = None;
                }
                None if rng.chance(0.004) => {
                    faulty.set_down(true);
                    outage_until = Some(now + TimeDelta::minutes(1 + rng.below(10) as i64));
                }
                _ => {}
            }
        }
        // Manual triggers, pauses and resumes through an instance's API.
        if !jobs.is_empty()
            && rng.chance(0.05)
            && let Some(Instance::Up(handle)) =
                instances.iter().find(|i| matches!(i, Instance::Up(_)))
        {
            // Spawned: the store's latency runs on the clock this loop advances.
            let (chill, job) = (handle.chill().clone(), rng.pick(&jobs).id);
            tokio::spawn(async move { chill.trigger_job(&job).await });
        }
        if !jobs.is_empty() && rng.chance(0.01) {
            let job = rng.pick(&jobs).id;
            let open = pauses.iter().any(|(j, _, r)| *j == job && r.is_none());
            let result = if open {
                admin.resume_job(&job).await.map(|_| false)
            } else {
                admin
                    .pause_job(&job, Some("simulated pause".into()))
                    .await
                    .map(|_| true)
            };
            match result {
                Ok(true) => pauses.push((job, now, None)),
                Ok(false) => {
                    if let Some(p) = pauses.iter_mut().find(|(j, _, r)| *j == job && r.is_none()) {
                        p.2 = Some(now);
                    }
                }
                Err(_) => {}
            }
        }
    }

    // Settle: no more faults, every instance up, and time for everything due to be taken.
    faulty.set_down(false);
    faulty.set_faults(Faults::NONE);
    for slot in instances.iter_mut() {
        if matches!(slot, Instance::Down { .. }) {
            *slot = Instance::Up(new_instance(next_instance_number, &mut rng).start());
            next_instance_number += 1;
        }
    }
    let settle_end = end + TimeDelta::hours(3);
    while clock.now() < settle_end {
        let target = clock
            .next_deadline()
            .map_or(settle_end, |d| d.min(settle_end));
        clock.advance_to(target).await;
        in_flight.quiesce().await;
    }
    report.store_faults = faulty.injected();

    check(
        &memory,
        &jobs,
        &pauses,
        start,
        end,
        &clock,
        &ai,
        &mut report,
    )
    .await;
    for slot in instances {
        if let Instance::Up(handle) = slot {
            handle.abort();
        }
    }
    report
}

/// Whether a job's statistics equal the tally of its executions: `None` when they do, else a
/// message naming both. Runs are executions that ended success, failed, timeout or dead.
pub fn statistics_mismatch(job: &Job, executions: &[Execution]) -> Option<String> {
    let runs: Vec<&Execution> = executions
        .iter()
        .filter(|e| {
            matches!(
                e.status,
                ExecutionStatus::Success
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Timeout
                    | ExecutionStatus::Dead
            )
        })
        .collect();
    let successes = runs
        .iter()
        .filter(|e| e.status == ExecutionStatus::Success)
        .count();
    let running = executions
        .iter()
        .filter(|e| e.status == ExecutionStatus::Running)
        .count();
    let tokens: u64 = runs
        .iter()
        .map(|e| e.input_tokens.unwrap_or(0) + e.output_tokens.unwrap_or(0))
        .sum();
    let durations: u64 = runs.iter().map(|e| e.duration_ms.unwrap_or(0)).sum();
    let cost: u64 = runs.iter().map(|e| e.cost_micro_usd.unwrap_or(0)).sum();
    let expected = (
        runs.len() as u64,
        successes as u64,
        (runs.len() - successes) as u64,
        running as u32,
        tokens,
        durations,
        cost,
    );
    let actual = (
        job.total_runs,
        job.success_count,
        job.failure_count,
        job.running_count,
        job.total_tokens,
        job.total_duration_ms,
        job.total_cost_micro_usd,
    );
    (expected != actual).then(|| {
        format!(
            "job {}: statistics (runs, successes, failures, running, tokens, duration, cost) are {actual:?}, the executions tally {expected:?}",
            job.id
        )
    })
}

/// Every execution of a job, oldest first.
async fn all_executions(store: &Arc<dyn Store>, job: &JobId) -> Vec<Execution> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let Ok(p) = store.list_executions(job, &page).await else {
            break;
        };
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
            None => break,
        }
    }
    out.reverse();
    out
}

#[allow(clippy::too_many_arguments)]
async fn check(
    store: &Arc<dyn Store>,
    created: &[Job],
    pauses: &[Pause],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    clock: &ManualClock,
    ai: &SimAi,
    report: &mut SimReport,
) {
    let now = clock.now();
    let v = &mut report.violations;
    let calls = ai.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report.ai_calls = calls.values().map(|n| *n as usize).sum();
    for (id, n) in &calls {
        if *n > 1 {
            v.push(format!("execution {id} called the AI {n} times"));
        }
    }
    let options = sim_options(String::new(), 0);
    let stuck_after = TimeDelta::from_std(options.recovery_interval + options.poll_interval)
        .unwrap_or(TimeDelta::minutes(2));

    let listed = store
        .list_jobs(
            &JobFilter {
                include_deleted: true,
                ..JobFilter::default()
            },
            &PageRequest::first(PageRequest::MAX_LIMIT),
        )
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    for original in created {
        let Some(job) = listed.iter().find(|j| j.id == original.id) else {
            v.push(format!("job {} vanished", original.id));
            continue;
        };
        let executions = all_executions(store, &job.id).await;
        report.executions += executions.len();
        let by_id: HashMap<ExecutionId, &Execution> =
            executions.iter().map(|e| (e.id, e)).collect();

        // Statistics equal the tally.
        let counted = |e: &&Execution| {
            matches!(
                e.status,
                ExecutionStatus::Success
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Timeout
                    | ExecutionStatus::Dead
            )
        };
        let runs: Vec<&Execution> = executions.iter().filter(counted).collect();
        let successes = runs
            .iter()
            .filter(|e| e.status == ExecutionStatus::Success)
            .count();
        report.successes += successes;
        report.skipped += executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Skipped)
            .count();
        report.retries += executions
            .iter()
            .filter(|e| e.trigger == Trigger::Retry)
            .count();
        if let Some(mismatch) = statistics_mismatch(job, &executions) {
            v.push(mismatch);
        }
        // Only a job with a budget has slots skipped for it (the simulation sets no global
        // budget), and its spend of a day never exceeds what its runs cost.
        let over_budget = executions
            .iter()
            .filter(|e| e.error_type.as_deref() == Some("budget_exceeded"))
            .count();
        if over_budget > 0 && job.budget.is_none() {
            v.push(format!(
                "job {} has no budget but {over_budget} slots were skipped for it",
                job.id
            ));
        }
        let cost: u64 = runs.iter().map(|e| e.cost_micro_usd.unwrap_or(0)).sum();
        if job.spend.day_micro_usd > job.spend.month_micro_usd || job.spend.month_micro_usd > cost {
            v.push(format!(
                "job {}: spend {:?} does not fit its runs' cost {cost}",
                job.id, job.spend
            ));
        }

        // At most one success per slot; chains consistent; retries not early; nothing stuck.
        let mut successes_per_slot: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
        for e in &executions {
            if e.status == ExecutionStatus::Success && e.trigger != Trigger::Manual {
                *successes_per_slot.entry(e.scheduled_for).or_default() += 1;
            }
            if e.status == ExecutionStatus::Running
                && let Some(lease) = e.lease_expires_at
                && lease + stuck_after < now
            {
                v.push(format!(
                    "execution {} still running, its lease expired at {lease}",
                    e.id
                ));
            }
            if e.status == ExecutionStatus::Pending
                && e.trigger == Trigger::Retry
                && e.due_at + stuck_after < now
            {
                v.push(format!(
                    "retry attempt {} due at {} was never claimed",
                    e.id, e.due_at
                ));
            }
            if e.attempt > 1 {
                let previous_id = if e.attempt == 2 {
                    e.root_execution_id
                } else {
                    ExecutionId::for_attempt(&e.root_execution_id, e.attempt - 1)
                };
                match by_id.get(&previous_id) {
                    None => v.push(format!(
                        "attempt {} of {} has no previous attempt",
                        e.attempt, e.root_execution_id
                    )),
                    Some(prev) => {
                        if !matches!(
                            prev.status,
                            ExecutionStatus::Failed | ExecutionStatus::Timeout
                        ) || prev.scheduled_for != e.scheduled_for
                            || e.trigger != Trigger::Retry
                        {
                            v.push(format!(
                                "attempt {} ({}) does not follow a failed attempt ({} is {})",
                                e.id, e.attempt, prev.id, prev.status
                            ));
                        }
                        let completed = prev.completed_at.unwrap_or(prev.started_at);
                        let backoff = crate::engine::min_retry_delay(&job.retry_policy, prev);
                        if e.due_at < completed + backoff {
                            v.push(format!(
                                "attempt {} due at {} is earlier than {} + backoff {}s",
                                e.id,
                                e.due_at,
                                completed,
                                backoff.num_seconds()
                            ));
                        }
                        if e.status != ExecutionStatus::Pending && e.started_at < e.due_at {
                            v.push(format!(
                                "attempt {} started at {} before it was due at {}",
                                e.id, e.started_at, e.due_at
                            ));
                        }
                    }
                }
            }
            if e.status == ExecutionStatus::Dead && e.attempt != job.retry_policy.max_retries + 1 {
                v.push(format!(
                    "execution {} is dead after attempt {} of {}",
                    e.id,
                    e.attempt,
                    job.retry_policy.max_retries + 1
                ));
            }
        }
        for (slot, n) in successes_per_slot {
            if n > 1 {
                v.push(format!("job {}: slot {slot} succeeded {n} times", job.id));
            }
        }

        // No slot lost: every slot due while the job was active is executed or recorded.
        let Ok(timing) = original.timing() else {
            continue;
        };
        let job_pauses: Vec<(DateTime<Utc>, DateTime<Utc>)> = pauses
            .iter()
            .filter(|(j, _, _)| *j == job.id)
            .map(|(_, p, r)| {
                (
                    *p - TimeDelta::hours(1),
                    r.unwrap_or(DateTime::<Utc>::MAX_UTC),
                )
            })
            .collect();
        let mut slot = timing.next_slot(original.created_at);
        while let Some(s) = slot {
            if s.fire_at > end {
                break;
            }
            let paused = job_pauses
                .iter()
                .any(|(a, b)| *a <= s.fire_at && s.scheduled_for <= *b);
            if !paused
                && s.fire_at >= start
                && !by_id.contains_key(&ExecutionId::for_slot(&job.id, s.scheduled_for))
            {
                v.push(format!(
                    "job {} ({} in {}): slot {} (due {}) was neither run nor recorded",
                    job.id, job.schedule, job.timezone, s.scheduled_for, s.fire_at
                ));
            }
            slot = timing.next_slot(s.scheduled_for);
        }
    }
}
