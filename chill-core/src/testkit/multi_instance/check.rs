//! The exactly-once check of what a store holds after engines ran jobs with a bounded window:
//! every slot recorded exactly once, no execution run twice, statistics equal to the tally.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::CountingAi;
use crate::model::{Execution, ExecutionId, ExecutionStatus, Job, JobId, Trigger};
use crate::store::{JobFilter, PageRequest, Store, StoreError};
use crate::testkit::sim::statistics_mismatch;

/// Most slots counted per job: a window longer than this is a mistake of the caller.
const MAX_SLOTS_PER_JOB: usize = 1_000_000;

/// What the store holds after a run, counted, and every invariant it breaks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Jobs checked.
    pub jobs: usize,
    /// Slots the jobs' schedules have from their creation to the end of their window.
    pub expected_slots: usize,
    /// Of these, slots with their record: the first attempt ran, or was skipped with a reason.
    pub slots: usize,
    /// Slots whose first attempt ran (success, failed, timeout or dead).
    pub slots_run: usize,
    /// Slots recorded as skipped, by reason (`errorType`).
    pub slots_skipped: BTreeMap<String, usize>,
    /// Executions of every kind.
    pub executions: usize,
    /// Executions that succeeded.
    pub successes: usize,
    /// Retry attempts.
    pub retries: usize,
    /// Manual runs.
    pub manual: usize,
    /// Executions recorded as skipped.
    pub skipped: usize,
    /// Executions still running.
    pub running: usize,
    /// Executions still pending.
    pub pending: usize,
    /// Executions the AI endpoint was called for.
    pub ai_calls: usize,
    /// Every broken invariant, for people.
    pub violations: Vec<String>,
}

impl Tally {
    /// Fail (panic) with every violation found, when there is one; `what` names the run.
    pub fn assert_clean(&self, what: impl std::fmt::Display) {
        assert!(
            self.violations.is_empty(),
            "{what}\n{} violations:\n{}",
            self.violations.len(),
            self.violations.join("\n")
        );
    }

    /// Slots recorded as skipped, whatever the reason.
    pub fn slots_skipped_total(&self) -> usize {
        self.slots_skipped.values().sum()
    }
}

/// Every job of `store`, deleted ones included, by id.
async fn all_jobs(store: &dyn Store) -> Result<HashMap<JobId, Job>, StoreError> {
    let filter = JobFilter {
        include_deleted: true,
        ..JobFilter::default()
    };
    let mut jobs = HashMap::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let p = store.list_jobs(&filter, &page).await?;
        jobs.extend(p.items.into_iter().map(|j| (j.id, j)));
        match p.next_cursor {
            Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
            None => return Ok(jobs),
        }
    }
}

async fn all_executions(store: &dyn Store, job: &JobId) -> Result<Vec<Execution>, StoreError> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let p = store.list_executions(job, &page).await?;
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
            None => return Ok(out),
        }
    }
}

/// Check the invariants over everything `store` holds for the jobs `created` (as created,
/// each with a window end), once the engines have stopped:
/// - every slot of every job from its creation to its window end has exactly one record, run
///   or skipped with a reason, and there is no scheduled execution for any other time;
/// - none ran twice: no execution called the AI more than once, no attempt chain succeeded
///   twice, no skipped slot called it, and the AI was called for no execution the store
///   does not hold;
/// - every retry belongs to a recorded chain, and nothing is left running or pending;
/// - each job's statistics equal the tally of its executions, and the store holds as many
///   successes as the AI answered.
///
/// Panics when the store cannot be read.
pub async fn check(store: &dyn Store, created: &[Job], ai: &CountingAi) -> Tally {
    let mut t = Tally::default();
    let calls = ai.calls();
    t.ai_calls = calls.len();
    for (id, n) in &calls {
        if *n > 1 {
            t.violations
                .push(format!("execution {id} called the AI {n} times"));
        }
    }
    let listed = all_jobs(store)
        .await
        .unwrap_or_else(|e| panic!("cannot list the jobs: {e}"));
    let mut held: HashSet<ExecutionId> = HashSet::new();
    let mut ai_successes = 0u64;
    for original in created {
        t.jobs += 1;
        let Some(job) = listed.get(&original.id) else {
            t.violations.push(format!("job {} vanished", original.id));
            continue;
        };
        let executions = all_executions(store, &job.id)
            .await
            .unwrap_or_else(|e| panic!("cannot list the executions of job {}: {e}", job.id));
        held.extend(executions.iter().map(|e| e.id));
        ai_successes += tally_executions(&mut t, job, &executions, &calls);
        check_slots(&mut t, original, job, &executions);
    }
    for id in calls.keys() {
        if !held.contains(id) {
            t.violations.push(format!(
                "the AI was called for execution {id}, which the store does not hold"
            ));
        }
    }
    if ai_successes != ai.successes() {
        t.violations.push(format!(
            "the AI answered {} calls with success, the store holds {ai_successes} successful executions that called it once",
            ai.successes()
        ));
    }
    t
}

/// Counts `job`'s executions into `t` and checks those of them that must not run twice;
/// returns how many succeeded after exactly one AI call.
fn tally_executions(
    t: &mut Tally,
    job: &Job,
    executions: &[Execution],
    calls: &HashMap<ExecutionId, u32>,
) -> u64 {
    let held: HashSet<ExecutionId> = executions.iter().map(|e| e.id).collect();
    let mut ai_successes = 0;
    // Successes per chain: a slot's chain has the slot's id as its root; a manual run's
    // chain its own.
    let mut per_chain: BTreeMap<ExecutionId, Vec<&Execution>> = BTreeMap::new();
    for e in executions {
        t.executions += 1;
        match e.trigger {
            Trigger::Retry => t.retries += 1,
            Trigger::Manual => t.manual += 1,
            Trigger::Scheduled => {}
        }
        if e.trigger == Trigger::Retry && !held.contains(&e.root_execution_id) {
            t.violations.push(format!(
                "job {}: retry {} belongs to chain {}, which the store does not hold",
                job.id, e.id, e.root_execution_id
            ));
        }
        match e.status {
            ExecutionStatus::Success => {
                t.successes += 1;
                per_chain.entry(e.root_execution_id).or_default().push(e);
                if calls.get(&e.id) == Some(&1) {
                    ai_successes += 1;
                } else {
                    t.violations.push(format!(
                        "execution {} succeeded with {:?} AI calls",
                        e.id,
                        calls.get(&e.id)
                    ));
                }
            }
            ExecutionStatus::Skipped => {
                t.skipped += 1;
                if calls.contains_key(&e.id) {
                    t.violations
                        .push(format!("execution {} was skipped but called the AI", e.id));
                }
            }
            ExecutionStatus::Running => {
                t.running += 1;
                t.violations.push(format!(
                    "job {}: execution {} ({}) is still running",
                    job.id, e.id, e.trigger
                ));
            }
            ExecutionStatus::Pending => {
                t.pending += 1;
                t.violations.push(format!(
                    "job {}: execution {} ({}, due {}) is still pending",
                    job.id, e.id, e.trigger, e.due_at
                ));
            }
            _ => {}
        }
    }
    if let Some(mismatch) = statistics_mismatch(job, executions) {
        t.violations.push(mismatch);
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
    ai_successes
}

/// Checks that every slot of `original`'s schedule, from its creation to its window end, has
/// exactly one record among `executions`, and that no scheduled execution is for another
/// time. `job` is the job as stored now.
fn check_slots(t: &mut Tally, original: &Job, job: &Job, executions: &[Execution]) {
    if original.end_date.is_none() {
        t.violations.push(format!(
            "job {}: no window end, so its slots cannot all be accounted for",
            job.id
        ));
        return;
    }
    if let Some(next) = job.next_run_at {
        t.violations.push(format!(
            "job {}: slots from {next} were never claimed",
            job.id
        ));
    }
    let timing = match original.timing() {
        Ok(timing) => timing,
        Err(e) => {
            t.violations
                .push(format!("job {}: schedule does not parse: {e}", job.id));
            return;
        }
    };
    let mut expected = HashMap::new();
    let mut slot = timing.next_slot(original.created_at);
    while let Some(s) = slot {
        if expected.len() == MAX_SLOTS_PER_JOB {
            t.violations.push(format!(
                "job {}: more than {MAX_SLOTS_PER_JOB} slots in its window; not counted further",
                job.id
            ));
            break;
        }
        expected.insert(
            ExecutionId::for_slot(&job.id, s.scheduled_for),
            s.scheduled_for,
        );
        slot = timing.next_slot(s.scheduled_for);
    }
    t.expected_slots += expected.len();

    let mut recorded = HashSet::new();
    for e in executions
        .iter()
        .filter(|e| e.trigger == Trigger::Scheduled)
    {
        if expected.get(&e.id) != Some(&e.scheduled_for) {
            t.violations.push(format!(
                "job {}: scheduled execution {} for {} is not a slot between the job's creation and its window end",
                job.id, e.id, e.scheduled_for
            ));
            continue;
        }
        if !recorded.insert(e.id) {
            t.violations.push(format!(
                "job {}: slot {} has more than one record",
                job.id, e.scheduled_for
            ));
            continue;
        }
        match (e.status, &e.error_type) {
            (s, _) if s.is_failure() || s == ExecutionStatus::Success => {
                t.slots += 1;
                t.slots_run += 1;
            }
            (ExecutionStatus::Skipped, Some(reason)) => {
                t.slots += 1;
                *t.slots_skipped.entry(reason.clone()).or_default() += 1;
            }
            (status, _) => t.violations.push(format!(
                "job {}: slot {} is {status}{}, neither run nor skipped with a reason",
                job.id,
                e.scheduled_for,
                if status == ExecutionStatus::Skipped {
                    " without a reason"
                } else {
                    ""
                }
            )),
        }
    }
    for (id, scheduled_for) in &expected {
        if !recorded.contains(id) {
            t.violations.push(format!(
                "job {}: slot {scheduled_for} was neither run nor recorded",
                job.id
            ));
        }
    }
}
