//! Writes queued at the same time keep their own outcomes. On SQLite the claims and finishes
//! queued for the writer connection run several to a transaction (group commit); a refused
//! claim, a fenced finish or an execution that exists already must still be reported to that
//! write alone, with nothing of it written, while the writes around it are committed. On the
//! other databases the same writes run one by one and must give the same outcomes.

#![allow(clippy::unwrap_used)]

mod common;

use chill_core::store::{Finish, FinishOutcome, SlotClaim, StatsDelta};
use chill_core::{
    Execution, ExecutionStatus, Job, JobId, JobSpec, Store, StoreError, schedule::Slot,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::on_each;
use futures_util::future::join_all;

const OWNER: &str = "engine-a";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// The running execution of `job`'s slot at `at`.
fn run_of(job: &Job, at: DateTime<Utc>) -> Execution {
    let slot = Slot {
        scheduled_for: at,
        fire_at: at,
        blackout: None,
    };
    Execution {
        status: ExecutionStatus::Running,
        lease_owner: Some(OWNER.into()),
        lease_expires_at: Some(at + TimeDelta::seconds(30)),
        ..Execution::scheduled(job, &slot, at)
    }
}

/// The claim of `job`'s slot at `at` (the job at `version`), moving it to the next minute.
fn claim_of(job: &Job, version: u64, at: DateTime<Utc>, run: Execution) -> SlotClaim {
    SlotClaim {
        job_id: job.id,
        expected_version: version,
        expected_next_run_at: at,
        expected_running: Some(0),
        next_run_at: Some(at + TimeDelta::minutes(1)),
        executions: vec![run],
        started: 1,
        buffered: None,
        started_at: at,
    }
}

/// The finish of `run` as `status`, by `owner`, with a retry attempt when given.
fn finish_of(
    run: &Execution,
    status: ExecutionStatus,
    owner: &str,
    next: Option<Execution>,
) -> Finish {
    let completed_at = run.started_at + TimeDelta::seconds(2);
    Finish {
        execution: Execution {
            status,
            completed_at: Some(completed_at),
            duration_ms: Some(2000),
            lease_expires_at: None,
            error_message: status.is_failure().then(|| "down".to_string()),
            ..run.clone()
        },
        owner: owner.into(),
        expired_by: None,
        stats: StatsDelta {
            status,
            counted: true,
            duration_ms: 2000,
            error: status.is_failure().then(|| "down".to_string()),
            input_tokens: 1,
            output_tokens: 2,
            cost_micro_usd: 3,
            completed_at,
        },
        next_attempt: next,
        promote: None,
    }
}

async fn job(store: &dyn Store, id: &JobId) -> Job {
    store.get_job(id).await.unwrap().unwrap()
}

async fn execution(store: &dyn Store, run: &Execution) -> Execution {
    store.get_execution(&run.id).await.unwrap().unwrap()
}

#[tokio::test]
async fn writes_queued_together_keep_their_own_outcomes() {
    on_each("group_commit", |db, store| async move {
        let kind = db.kind;
        let at = t0() + TimeDelta::minutes(1);
        let mut jobs = Vec::new();
        for n in 0..7 {
            let mut spec = JobSpec::new(format!("job {n}"), "p", "* * * * *");
            spec.tags = vec![format!("n{n}")];
            let job = Job::create(spec, t0()).unwrap();
            assert_eq!(job.next_run_at, Some(at));
            store.create_job(&job).await.unwrap();
            jobs.push(job);
        }
        // Job 3 ran its first slot already: its execution exists.
        let old = run_of(&jobs[3], at);
        assert!(
            store
                .claim_slots(&claim_of(&jobs[3], jobs[3].version, at, old.clone()))
                .await
                .unwrap()
        );
        let finished = store
            .finish(&finish_of(&old, ExecutionStatus::Success, OWNER, None))
            .await
            .unwrap();
        assert_eq!(finished, FinishOutcome::Finished { promoted: None });
        let job3 = job(&*store, &jobs[3].id).await;

        // Claims queued together: 3 claims its next slot with the execution it has already
        // (refused by the executions' key), 4 with a version that is not the job's (refused by
        // the condition), the others are claimed.
        let runs: Vec<Execution> = jobs.iter().map(|j| run_of(j, at)).collect();
        let next = at + TimeDelta::minutes(1);
        let claims = [
            claim_of(&jobs[0], jobs[0].version, at, runs[0].clone()),
            claim_of(&jobs[1], jobs[1].version, at, runs[1].clone()),
            claim_of(&job3, job3.version, next, old.clone()),
            claim_of(&jobs[2], jobs[2].version, at, runs[2].clone()),
            claim_of(&jobs[4], jobs[4].version + 7, at, runs[4].clone()),
            claim_of(&jobs[5], jobs[5].version, at, runs[5].clone()),
            claim_of(&jobs[6], jobs[6].version, at, runs[6].clone()),
        ];
        let claimed: Vec<bool> = join_all(claims.iter().map(|c| store.claim_slots(c)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            claimed,
            [true, true, false, true, false, true, true],
            "{kind:?}"
        );
        assert_eq!(
            job(&*store, &jobs[3].id).await,
            job3,
            "{kind:?}: refused claim wrote"
        );
        assert_eq!(job(&*store, &jobs[4].id).await, jobs[4], "{kind:?}");
        assert_eq!(store.get_execution(&runs[4].id).await.unwrap(), None);
        for n in [0, 1, 2, 5, 6] {
            let j = job(&*store, &jobs[n].id).await;
            assert_eq!(
                (j.version, j.next_run_at, j.running_count),
                (jobs[n].version + 1, Some(next), 1),
                "{kind:?}: job {n} claimed"
            );
            assert_eq!(execution(&*store, &runs[n]).await, runs[n], "{kind:?}");
        }

        // Finishes queued together: 2 and 6 fail with a retry attempt, 5 too but its
        // attempt's id is an execution that exists (job 3's), 0 succeeds, 1 is finished by
        // an owner that does not hold its lease.
        let retry = |n: usize| runs[n].retry(at + TimeDelta::minutes(5), at);
        let existing = Execution {
            id: old.id,
            ..retry(5)
        };
        let finishes = [
            finish_of(&runs[2], ExecutionStatus::Failed, OWNER, Some(retry(2))),
            finish_of(&runs[5], ExecutionStatus::Failed, OWNER, Some(existing)),
            finish_of(&runs[6], ExecutionStatus::Failed, OWNER, Some(retry(6))),
            finish_of(&runs[0], ExecutionStatus::Success, OWNER, None),
            finish_of(&runs[1], ExecutionStatus::Success, "engine-b", None),
        ];
        let before5 = job(&*store, &jobs[5].id).await;
        let before1 = job(&*store, &jobs[1].id).await;
        let outcomes = join_all(finishes.iter().map(|f| store.finish(f))).await;
        let done = FinishOutcome::Finished { promoted: None };
        assert_eq!(outcomes[0].as_ref().unwrap(), &done, "{kind:?}");
        assert!(
            matches!(&outcomes[1], Err(StoreError::AlreadyExists { .. })),
            "{kind:?}: {:?}",
            outcomes[1]
        );
        assert_eq!(outcomes[2].as_ref().unwrap(), &done, "{kind:?}");
        assert_eq!(outcomes[3].as_ref().unwrap(), &done, "{kind:?}");
        assert_eq!(
            outcomes[4].as_ref().unwrap(),
            &FinishOutcome::Fenced,
            "{kind:?}"
        );
        // Nothing of the refused finish and of the fenced one was written.
        assert_eq!(job(&*store, &jobs[5].id).await, before5, "{kind:?}");
        assert_eq!(execution(&*store, &runs[5]).await, runs[5], "{kind:?}");
        assert_eq!(
            execution(&*store, &old).await.status,
            ExecutionStatus::Success,
            "{kind:?}"
        );
        assert_eq!(job(&*store, &jobs[1].id).await, before1, "{kind:?}");
        assert_eq!(execution(&*store, &runs[1]).await, runs[1], "{kind:?}");
        // The others were.
        for (n, f) in [(2, &finishes[0]), (6, &finishes[2]), (0, &finishes[3])] {
            assert_eq!(execution(&*store, &runs[n]).await, f.execution, "{kind:?}");
            let j = job(&*store, &jobs[n].id).await;
            let failed = u64::from(n != 0);
            assert_eq!(
                (
                    j.running_count,
                    j.total_runs,
                    j.failure_count,
                    j.consecutive_failures
                ),
                (0, 1, failed, failed as u32),
                "{kind:?}: job {n} finished"
            );
            if let Some(attempt) = &f.next_attempt {
                assert_eq!(execution(&*store, attempt).await, *attempt, "{kind:?}");
            }
        }
    })
    .await;
}
