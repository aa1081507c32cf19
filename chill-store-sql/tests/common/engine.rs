//! Engines over a SQL store on the system clock: an AI endpoint that counts its calls, and the
//! check of the exactly-once invariants on what the store holds afterwards.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chill_core::store::{JobFilter, PageRequest};
use chill_core::{
    AiClient, AiError, AiRequest, AiResponse, ChillOptions, Execution, ExecutionId,
    ExecutionStatus, Job, JobId, JobSpec, RetryPolicy, Store, TokenUsage, Trigger,
};

/// An AI endpoint that answers after a few milliseconds: mostly successes, some 503s
/// (retried), a few 400s (not retried). It counts its calls per execution.
pub(crate) struct CountingAi {
    state: Mutex<(u64, HashMap<ExecutionId, u32>)>,
    successes: AtomicU64,
    /// Percent of calls answered 503.
    pub(crate) server_errors: u64,
    /// Percent of calls answered 400.
    pub(crate) invalid: u64,
    /// Longest answer time, in milliseconds.
    pub(crate) max_latency_ms: u64,
}

impl CountingAi {
    pub(crate) fn new(seed: u64) -> CountingAi {
        CountingAi {
            state: Mutex::new((seed | 1, HashMap::new())),
            successes: AtomicU64::new(0),
            server_errors: 10,
            invalid: 3,
            max_latency_ms: 20,
        }
    }

    /// Calls per execution.
    pub(crate) fn calls(&self) -> HashMap<ExecutionId, u32> {
        self.state.lock().unwrap().1.clone()
    }

    /// Calls answered with success.
    pub(crate) fn successes(&self) -> u64 {
        self.successes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AiClient for CountingAi {
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
        let (roll, latency) = {
            let mut state = self.state.lock().unwrap();
            *state.1.entry(request.execution_id).or_default() += 1;
            // xorshift64
            let mut x = state.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            state.0 = x;
            (x % 100, (x >> 8) % (self.max_latency_ms + 1))
        };
        tokio::time::sleep(Duration::from_millis(latency)).await;
        if roll < self.server_errors {
            return Err(AiError::Server {
                status: Some(503),
                message: "overloaded".into(),
            });
        }
        if roll < self.server_errors + self.invalid {
            return Err(AiError::InvalidRequest {
                status: Some(400),
                message: "bad prompt".into(),
            });
        }
        self.successes.fetch_add(1, Ordering::SeqCst);
        Ok(AiResponse {
            result: format!("done: {}", request.payload.prompt),
            tools_used: vec!["slack".into()],
            usage: Some(TokenUsage {
                input_tokens: 10 + roll,
                output_tokens: 20 + latency,
            }),
            ..AiResponse::default()
        })
    }
}

/// Engine options for tests on the system clock: quick polls, short leases.
pub(crate) fn fast_options(instance: &str) -> ChillOptions {
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

/// Job `i` of a test: every second, retried twice one to two seconds later.
pub(crate) fn every_second(i: usize) -> JobSpec {
    JobSpec {
        retry_policy: RetryPolicy {
            max_retries: 2,
            retry_delay: 1,
            max_delay: 2,
            retry_on_timeout: false,
        },
        tags: vec![format!("group-{}", i % 7)],
        ..JobSpec::new(format!("job {i}"), format!("prompt {i}"), "* * * * * *")
    }
}

/// What the store holds after a run, counted.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) jobs: usize,
    /// Slots recorded (run or skipped): first attempts of scheduled runs.
    pub(crate) slots: usize,
    pub(crate) executions: usize,
    pub(crate) successes: usize,
    pub(crate) retries: usize,
    pub(crate) manual: usize,
    pub(crate) skipped: usize,
    pub(crate) running: usize,
    pub(crate) violations: Vec<String>,
}

async fn all_executions(store: &dyn Store, job: &JobId) -> Vec<Execution> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let p = store.list_executions(job, &page).await.unwrap();
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
            None => break,
        }
    }
    out
}

impl Tally {
    /// Fail the test with every violation found.
    pub(crate) fn assert_clean(&self, what: impl std::fmt::Debug) {
        assert!(
            self.violations.is_empty(),
            "{what:?}: {} violations:\n{}",
            self.violations.len(),
            self.violations.join("\n")
        );
    }
}

/// Check the invariants over everything the store holds for `jobs` (as created):
/// - no slot lost: every slot from the job's first up to its stored `nextRunAt` has a record;
/// - none executed twice: no execution called the AI more than once, no slot succeeded twice;
/// - the statistics equal the tally of the executions.
pub(crate) async fn check(store: &dyn Store, created: &[Job], ai: &CountingAi) -> Tally {
    let mut t = Tally::default();
    let calls = ai.calls();
    for (id, n) in &calls {
        if *n > 1 {
            t.violations
                .push(format!("execution {id} called the AI {n} times"));
        }
    }
    let listed: HashMap<JobId, Job> = {
        let mut map = HashMap::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let filter = JobFilter {
                include_deleted: true,
                ..JobFilter::default()
            };
            let p = store.list_jobs(&filter, &page).await.unwrap();
            map.extend(p.items.into_iter().map(|j| (j.id, j)));
            match p.next_cursor {
                Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
                None => break,
            }
        }
        map
    };
    let mut ai_successes = 0;
    for original in created {
        t.jobs += 1;
        let Some(job) = listed.get(&original.id) else {
            t.violations.push(format!("job {} vanished", original.id));
            continue;
        };
        let executions = all_executions(store, &job.id).await;
        t.executions += executions.len();
        let by_id: HashMap<ExecutionId, &Execution> =
            executions.iter().map(|e| (e.id, e)).collect();
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
        t.successes += successes;
        t.running += running;
        t.retries += executions
            .iter()
            .filter(|e| e.trigger == Trigger::Retry)
            .count();
        t.manual += executions
            .iter()
            .filter(|e| e.trigger == Trigger::Manual)
            .count();
        t.skipped += executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Skipped)
            .count();
        ai_successes += executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Success && calls.get(&e.id) == Some(&1))
            .count();
        if let Some(mismatch) = chill_core::testkit::sim::statistics_mismatch(job, &executions) {
            t.violations.push(mismatch);
        }
        // Successes per chain: a slot's chain has the slot's id as its root; a manual run's
        // chain its own.
        let mut per_chain: BTreeMap<ExecutionId, Vec<&Execution>> = BTreeMap::new();
        for e in &executions {
            if e.status == ExecutionStatus::Success {
                per_chain.entry(e.root_execution_id).or_default().push(e);
            }
            if e.status == ExecutionStatus::Success && calls.get(&e.id) != Some(&1) {
                t.violations.push(format!(
                    "execution {} succeeded with {:?} AI calls",
                    e.id,
                    calls.get(&e.id)
                ));
            }
        }
        for (root, chain) in per_chain {
            if chain.len() > 1 {
                let list: Vec<String> = chain
                    .iter()
                    .map(|e| {
                        format!(
                            "{} ({} attempt {}, {})",
                            e.id, e.trigger, e.attempt, e.scheduled_for
                        )
                    })
                    .collect();
                t.violations.push(format!(
                    "job {}: the chain of {root} succeeded {} times: {}",
                    job.id,
                    chain.len(),
                    list.join(", ")
                ));
            }
        }
        // No slot lost: every slot before the stored nextRunAt is recorded.
        let timing = original.timing().unwrap();
        let until = job
            .next_run_at
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        let mut slot = timing.next_slot(original.created_at);
        while let Some(s) = slot {
            if s.fire_at >= until {
                break;
            }
            if by_id.contains_key(&ExecutionId::for_slot(&job.id, s.scheduled_for)) {
                t.slots += 1;
            } else {
                t.violations.push(format!(
                    "job {}: slot {} (due {}) before nextRunAt {until} was neither run nor recorded",
                    job.id, s.scheduled_for, s.fire_at
                ));
            }
            slot = timing.next_slot(s.scheduled_for);
        }
    }
    if ai_successes as u64 != ai.successes() {
        t.violations.push(format!(
            "the AI answered {} calls with success, the store holds {ai_successes} successful executions",
            ai.successes()
        ));
    }
    t
}
