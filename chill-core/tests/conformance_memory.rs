//! The store conformance suite on the reference backend, [`MemoryStore`]: every behaviour on a
//! fresh store of its own (so that a failure names it), and the whole suite on one store that
//! other data already shares.

use std::future::Future;
use std::sync::Arc;

use chill_core::testkit::conformance::{self, Capabilities};
use chill_core::{MemoryStore, Store};

/// Each behaviour on a fresh store.
async fn fresh<F, Fut>(_name: &str, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Arc::new(MemoryStore::new())).await
}

chill_core::store_conformance_tests!(fresh);

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
