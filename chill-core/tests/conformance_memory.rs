//! The store conformance suite on the reference backend, [`MemoryStore`]: every behaviour on a
//! fresh store of its own (so that a failure names it), and the whole suite on one store that
//! other data already shares.

use std::sync::Arc;

use chill_core::testkit::conformance::{self, Capabilities};
use chill_core::{MemoryStore, Store};

/// One test per behaviour, each on a fresh store: `name` for a behaviour taking `&dyn Store`,
/// `arc name` for a race taking `Arc<dyn Store>`.
macro_rules! behaviours {
    ($($kind:ident $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                behaviours!(@call $kind $name);
            }
        )*
    };
    (@call by_ref $name:ident) => {
        conformance::$name(&MemoryStore::new(), &Capabilities::default()).await
    };
    (@call by_arc $name:ident) => {
        conformance::$name(Arc::new(MemoryStore::new()), &Capabilities::default()).await
    };
}

behaviours! {
    by_ref job_round_trip,
    by_ref job_update,
    by_ref job_delete,
    by_ref list_jobs_pagination,
    by_ref list_jobs_filters,
    by_ref list_executions,
    by_ref claim_slots_conditions,
    by_ref claim_slots_effects,
    by_ref start_manual,
    by_ref renew_lease,
    by_ref expired_leases,
    by_ref finish_fencing,
    by_ref finish_effects,
    by_ref retry_attempts,
    by_ref buffer_promotion,
    by_ref due_jobs,
    by_ref next_due_at,
    by_ref retention,
    by_ref retention_batches,
    by_ref list_finished,
    by_ref statistics_tally,
    by_ref spend_and_streak,
    by_arc claim_slots_race,
    by_arc slot_and_manual_race,
    by_arc claim_attempt_race,
    by_arc concurrent_finishes,
}

/// The whole suite, twice, on one store that already holds other jobs and executions: the
/// behaviours must isolate themselves from each other and from foreign data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_shared_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    foreign_data(&*store).await;
    conformance::run_all(store.clone(), &Capabilities::default()).await;
    conformance::run_all(store, &Capabilities::default()).await;
}

/// The suite checks the refusal of NUL for backends that cannot store it; the memory store
/// stores it, so the checks of `nul_in_text: false` must fail on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "must be refused with InvalidInput")]
async fn nul_refusal_is_checked_not_skipped() {
    let caps = Capabilities {
        nul_in_text: false,
        ..Capabilities::default()
    };
    conformance::job_round_trip(&MemoryStore::new(), &caps).await;
}

/// Jobs and executions of someone else, in years the suite also uses: due jobs, a running
/// execution with a live lease and a pending retry attempt.
async fn foreign_data(store: &dyn Store) {
    use chill_core::{Execution, Job, JobSpec, Slot};
    use chrono::{TimeZone, Utc};

    let now = Utc.with_ymd_and_hms(2040, 6, 1, 0, 0, 0).unwrap();
    for i in 0..5 {
        let spec = JobSpec {
            tags: vec!["foreign".into()],
            ..JobSpec::new(format!("foreign {i}"), "not the suite's", "*/5 * * * *")
        };
        let job = Job::create(spec, now).expect("a valid job");
        store.create_job(&job).await.expect("create_job");
        let slot = job.next_run_at.expect("an enabled job has a next run");
        let mut run = Execution::scheduled(
            &job,
            &Slot {
                scheduled_for: slot,
                fire_at: slot,
                blackout: None,
            },
            slot,
        );
        run.status = chill_core::ExecutionStatus::Running;
        run.lease_owner = Some("foreign".into());
        run.lease_expires_at = Some(Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap());
        let retry = run.retry(Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(), slot);
        let claim = chill_core::store::SlotClaim {
            job_id: job.id,
            expected_version: job.version,
            expected_next_run_at: slot,
            expected_running: None,
            next_run_at: Some(slot + chrono::TimeDelta::minutes(5)),
            executions: vec![run, retry],
            started: 1,
            buffered: None,
            started_at: slot,
        };
        assert!(store.claim_slots(&claim).await.expect("claim_slots"));
    }
}
