//! Turning a due job into one atomic claim: which of its due slots run, which are recorded as
//! skipped (blacked out, missed, refused by the overlap policy) and which waits (buffered).
//!
//! A pure function of the job, the time and the lease, so it is tested without a store.

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{CatchUpPolicy, ErrorType, Execution, ExecutionStatus, Job, OverlapPolicy};
use crate::schedule::Slot;
use crate::store::{Lease, SlotClaim};

/// A claim and what it contains, by role.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// The store operation.
    pub(crate) claim: SlotClaim,
    /// Executions that start running under the lease if the claim wins.
    pub(crate) runs: Vec<Execution>,
    /// Slots recorded as skipped.
    pub(crate) skipped: Vec<Execution>,
}

/// What happens to one due slot.
enum Fate {
    Run,
    Buffer,
    Skip(ErrorType, String),
}

/// Plan the claim of a job's due slots at `now`: every slot due at or before `now`, at most
/// `max_slots` of them; the claim advances `nextRunAt` past them. `None` when nothing is due.
#[cfg(test)]
pub(crate) fn plan(job: &Job, now: DateTime<Utc>, lease: &Lease, max_slots: usize) -> Option<Plan> {
    plan_gated(job, now, lease, max_slots, None)
}

/// [`plan`], where every slot that would run is skipped instead when `gate` says why (the
/// global budget is spent), and so is every slot of a job over its own budget.
pub(crate) fn plan_gated(
    job: &Job,
    now: DateTime<Utc>,
    lease: &Lease,
    max_slots: usize,
    gate: Option<&str>,
) -> Option<Plan> {
    let expected = job.next_run_at?;
    if expected > now || !job.enabled || job.deleted_at.is_some() {
        return None;
    }
    let empty = |next_run_at| SlotClaim {
        job_id: job.id,
        expected_version: job.version,
        expected_next_run_at: expected,
        expected_running: None,
        next_run_at,
        executions: Vec::new(),
        started: 0,
        buffered: None,
        started_at: now,
    };
    let Ok(timing) = job.timing() else {
        // A stored job whose schedule no longer parses (say, a time zone dropped from the
        // database): stop scheduling it rather than fail every tick.
        tracing::error!(job_id = %job.id, schedule = %job.schedule, "stored schedule does not parse; the job will not run again until updated");
        return Some(Plan {
            claim: empty(None),
            runs: Vec::new(),
            skipped: Vec::new(),
        });
    };

    let mut due: Vec<Slot> = Vec::new();
    let mut next = Some(timing.slot_due_at(expected));
    while let Some(slot) = next.take() {
        if slot.fire_at > now || due.len() == max_slots.max(1) {
            next = Some(slot);
            break;
        }
        next = timing.next_slot(slot.scheduled_for);
        due.push(slot);
    }
    // Whether the last slot of this batch is the last one due now.
    let batch_reaches_now = next.as_ref().is_none_or(|s| s.fire_at > now);
    let window = TimeDelta::seconds(i64::from(job.catch_up_window));

    let over_budget = gate.map(str::to_string).or_else(|| {
        let budget = job.budget?;
        let period = budget.exceeded_by(&job.spend, now)?;
        Some(format!("the job's {period} budget is spent"))
    });
    let mut running = job.running_count;
    let mut buffered = job.buffered_execution_id.is_some();
    let mut plan = Plan {
        claim: empty(next.map(|s| s.fire_at)),
        runs: Vec::new(),
        skipped: Vec::new(),
    };
    let last = due.len().saturating_sub(1);
    for (i, slot) in due.iter().enumerate() {
        let late = now - slot.fire_at;
        let mut fate = if let Some(b) = &slot.blackout {
            let why = b.reason.as_deref().unwrap_or("no reason given");
            Fate::Skip(
                ErrorType::Blackout,
                format!("inside a blackout period ({why})"),
            )
        } else {
            match job.catch_up_policy {
                CatchUpPolicy::SkipMissed if late > window => Fate::Skip(
                    ErrorType::Missed,
                    format!(
                        "missed by {}s, more than the catch-up window of {}s",
                        late.num_seconds(),
                        window.num_seconds()
                    ),
                ),
                CatchUpPolicy::RunOnce if i < last || !batch_reaches_now => Fate::Skip(
                    ErrorType::Missed,
                    "missed; the catch-up policy run_once runs only the latest due slot".into(),
                ),
                _ => Fate::Run,
            }
        };
        if let (Fate::Run, Some(why)) = (&fate, &over_budget) {
            fate = Fate::Skip(ErrorType::BudgetExceeded, why.clone());
        }
        if matches!(fate, Fate::Run) && running > 0 {
            fate = match job.overlap_policy {
                OverlapPolicy::Allow => match job.max_concurrency {
                    Some(limit) if running >= limit => Fate::Skip(
                        ErrorType::ConcurrencyLimit,
                        format!("{running} runs in progress, the job's limit is {limit}"),
                    ),
                    _ => Fate::Run,
                },
                OverlapPolicy::BufferOne if !buffered => Fate::Buffer,
                _ => Fate::Skip(
                    ErrorType::Overlap,
                    format!(
                        "a run was in progress and the overlap policy is {}",
                        job.overlap_policy
                    ),
                ),
            };
        }
        let mut e = Execution::scheduled(job, slot, now);
        match fate {
            Fate::Run => {
                e.status = ExecutionStatus::Running;
                e.started_at = now;
                e.lease_owner = Some(lease.owner.clone());
                e.lease_expires_at = Some(lease.expires_at);
                running += 1;
                plan.claim.started += 1;
                plan.runs.push(e.clone());
            }
            Fate::Buffer => {
                buffered = true;
                plan.claim.buffered = Some(e.id);
            }
            Fate::Skip(kind, message) => {
                e.status = ExecutionStatus::Skipped;
                e.started_at = now;
                e.completed_at = Some(now);
                e.duration_ms = Some(0);
                e.error_type = Some(kind.as_str().to_string());
                e.error_message = Some(message);
                plan.skipped.push(e.clone());
            }
        }
        plan.claim.executions.push(e);
    }
    // Under `skip`, a manual run and a slot must not both start. A buffered slot waits for
    // the run in progress to end: if that run ended between the read and the claim, nothing
    // would ever start the buffered slot, so the claim must fail and be planned again.
    if ((job.overlap_policy == OverlapPolicy::Skip || job.max_concurrency.is_some())
        && plan.claim.started > 0)
        || plan.claim.buffered.is_some()
    {
        plan.claim.expected_running = Some(job.running_count);
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobSpec;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, h, m, s).unwrap()
    }

    fn lease() -> Lease {
        Lease {
            owner: "me".into(),
            expires_at: t(23, 0, 0),
        }
    }

    fn job(schedule: &str) -> Job {
        Job::create(JobSpec::new("j", "p", schedule), t(8, 0, 0)).unwrap()
    }

    fn statuses(p: &Plan) -> Vec<(DateTime<Utc>, ExecutionStatus)> {
        p.claim
            .executions
            .iter()
            .map(|e| (e.scheduled_for, e.status))
            .collect()
    }

    #[test]
    fn nothing_due_means_no_plan() {
        assert!(plan(&job("0 9 * * *"), t(8, 59, 59), &lease(), 25).is_none());
    }

    #[test]
    fn a_due_slot_runs_and_next_run_moves_on() {
        let j = job("0 9 * * *");
        let p = plan(&j, t(9, 0, 1), &lease(), 25).unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Running)]);
        assert_eq!(p.claim.next_run_at, Some(t(9, 0, 0) + TimeDelta::days(1)));
        assert_eq!(p.claim.expected_next_run_at, t(9, 0, 0));
        assert_eq!(p.claim.started, 1);
        assert_eq!(p.claim.expected_running, Some(0));
        assert_eq!(p.runs[0].lease_owner.as_deref(), Some("me"));
    }

    #[test]
    fn skip_missed_records_old_slots_and_runs_recent_ones() {
        let j = job("*/1 * * * *"); // every minute; catch-up window 300 s
        let p = plan(&j, t(8, 10, 30), &lease(), 25).unwrap();
        let s = statuses(&p);
        assert_eq!(s.len(), 10); // 08:01 .. 08:10
        // 08:01..08:05 are more than 300 s late.
        assert!(s[..5].iter().all(|(_, st)| *st == ExecutionStatus::Skipped));
        assert_eq!(s[5], (t(8, 6, 0), ExecutionStatus::Running));
        // Under `skip`, the later ones overlap the run just started.
        assert!(s[6..].iter().all(|(_, st)| *st == ExecutionStatus::Skipped));
        assert_eq!(p.skipped[0].error_type.as_deref(), Some("missed"));
        assert_eq!(
            p.skipped.last().unwrap().error_type.as_deref(),
            Some("overlap")
        );
        assert_eq!(p.claim.next_run_at, Some(t(8, 11, 0)));
    }

    #[test]
    fn run_once_runs_only_the_latest_and_run_all_runs_every_slot() {
        let mut j = job("*/1 * * * *");
        j.catch_up_policy = CatchUpPolicy::RunOnce;
        let p = plan(&j, t(8, 3, 0), &lease(), 25).unwrap();
        assert_eq!(
            statuses(&p),
            vec![
                (t(8, 1, 0), ExecutionStatus::Skipped),
                (t(8, 2, 0), ExecutionStatus::Skipped),
                (t(8, 3, 0), ExecutionStatus::Running)
            ]
        );
        // A batch that does not reach `now` runs nothing yet.
        let p = plan(&j, t(8, 3, 0), &lease(), 2).unwrap();
        assert!(p.runs.is_empty());
        assert_eq!(p.claim.next_run_at, Some(t(8, 3, 0)));

        j.catch_up_policy = CatchUpPolicy::RunAll;
        j.overlap_policy = OverlapPolicy::Allow;
        let p = plan(&j, t(8, 3, 0), &lease(), 25).unwrap();
        assert_eq!(p.runs.len(), 3);
        assert_eq!(p.claim.expected_running, None);
    }

    #[test]
    fn overlap_policies_decide_what_happens_while_running() {
        let mut j = job("0 9 * * *");
        j.running_count = 1;
        let p = plan(&j, t(9, 0, 0), &lease(), 25).unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Skipped)]);
        assert_eq!(p.claim.started, 0);

        j.overlap_policy = OverlapPolicy::BufferOne;
        let p = plan(&j, t(9, 0, 0), &lease(), 25).unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Pending)]);
        assert_eq!(p.claim.buffered, Some(p.claim.executions[0].id));
        assert_eq!(p.claim.expected_running, Some(1), "buffered behind a run");

        j.buffered_execution_id = p.claim.buffered;
        let p = plan(&j, t(9, 0, 0), &lease(), 25).unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Skipped)]);

        j.overlap_policy = OverlapPolicy::Allow;
        let p = plan(&j, t(9, 0, 0), &lease(), 25).unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Running)]);
    }

    #[test]
    fn blackout_slots_are_skipped_with_the_reason() {
        let mut j = job("0 9 * * *");
        j.blackout_periods = vec![crate::Blackout {
            start: t(8, 30, 0),
            end: t(9, 30, 0),
            reason: Some("release freeze".into()),
        }];
        let p = plan(&j, t(9, 0, 0), &lease(), 25).unwrap();
        assert_eq!(p.skipped[0].error_type.as_deref(), Some("blackout"));
        assert!(
            p.skipped[0]
                .error_message
                .as_deref()
                .unwrap()
                .contains("release freeze")
        );
    }

    #[test]
    fn one_shot_jobs_end_after_their_slot() {
        let j = job("at(2026-06-01T09:00:00)");
        let p = plan(&j, t(9, 0, 0), &lease(), 25).unwrap();
        assert_eq!(p.runs.len(), 1);
        assert_eq!(p.claim.next_run_at, None);
    }

    #[test]
    fn a_job_over_its_budget_records_its_slots_as_skipped() {
        let mut j = job("0 9 * * *");
        j.budget = Some(crate::model::Budget::per_day_usd(1.0));
        j.spend.add(t(8, 0, 0), 1_000_000);
        let p = plan(&j, t(9, 0, 1), &lease(), 25).unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Skipped)]);
        assert_eq!(p.skipped[0].error_type.as_deref(), Some("budget_exceeded"));
        assert_eq!(
            p.skipped[0].error_message.as_deref(),
            Some("the job's daily budget is spent")
        );
        assert_eq!(p.claim.next_run_at, Some(t(9, 0, 0) + TimeDelta::days(1)));
        // Yesterday's spend does not count today.
        j.spend = crate::model::Spend::default();
        j.spend.add(t(8, 0, 0) - TimeDelta::days(1), 5_000_000);
        let p = plan(&j, t(9, 0, 1), &lease(), 25).unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Running)]);
    }

    #[test]
    fn a_gate_skips_what_would_run() {
        let j = job("0 9 * * *");
        let p = plan_gated(
            &j,
            t(9, 0, 1),
            &lease(),
            25,
            Some("the global daily budget is spent"),
        )
        .unwrap();
        assert_eq!(statuses(&p), vec![(t(9, 0, 0), ExecutionStatus::Skipped)]);
        assert_eq!(p.claim.started, 0);
        assert!(p.runs.is_empty());
    }

    #[test]
    fn the_per_job_limit_skips_slots_beyond_it_under_allow() {
        let mut j = job("* * * * *");
        j.overlap_policy = OverlapPolicy::Allow;
        j.max_concurrency = Some(2);
        j.running_count = 1;
        j.catch_up_policy = CatchUpPolicy::RunAll;
        let p = plan(&j, t(8, 3, 0), &lease(), 25).unwrap();
        assert_eq!(
            statuses(&p),
            vec![
                (t(8, 1, 0), ExecutionStatus::Running),
                (t(8, 2, 0), ExecutionStatus::Skipped),
                (t(8, 3, 0), ExecutionStatus::Skipped),
            ]
        );
        assert_eq!(
            p.skipped[0].error_type.as_deref(),
            Some("concurrency_limit")
        );
        assert_eq!(
            p.claim.expected_running,
            Some(1),
            "the limit holds only if nothing else started"
        );
    }
}
