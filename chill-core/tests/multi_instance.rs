//! The multi-instance harness of the testkit: a short real run over the in-memory store
//! records every slot exactly once, and its check finds a lost slot and a run that called the
//! AI twice. The run is on the system clock; it asserts counts, not timings.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use chill_core::store::{SlotClaim, Store};
use chill_core::testkit::multi_instance::{CountingAi, MultiInstance, check, every_second};
use chill_core::{
    AiClient, AiRequest, Execution, ExecutionStatus, Job, MemoryStore, RequestPayload,
};
use chrono::{SubsecRound, TimeDelta, Utc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_over_one_memory_store_record_every_slot_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fleet = MultiInstance::new()
        .with_jobs(40)
        .with_run(Duration::from_secs(3))
        .prepare(vec![store.clone(); 4], store)
        .await;
    // Every second after a job's creation, up to the window end inclusive.
    let end = fleet.window_end().timestamp();
    let expected: i64 = fleet
        .jobs()
        .iter()
        .map(|j| end - j.created_at.timestamp())
        .sum();
    let report = fleet.run().await;
    println!("memory: {report}");
    report.assert_clean("memory");
    let t = &report.tally;
    assert_eq!(t.expected_slots as i64, expected);
    assert_eq!(t.slots, t.expected_slots);
    assert_eq!(t.slots_run + t.slots_skipped_total(), t.slots);
    assert_eq!((t.running, t.pending), (0, 0));
    assert_eq!(t.manual, report.manual_started as usize);
}

/// A job of five slots in the store, its first `recorded` slots claimed as skipped (overlap)
/// and the rest claimed without a record: lost.
async fn job_with_recorded_slots(store: &MemoryStore, recorded: usize) -> (Job, Vec<Execution>) {
    let now = Utc::now().trunc_subsecs(0);
    let job = Job::create(every_second(0, now + TimeDelta::seconds(5)), now).unwrap();
    store.create_job(&job).await.unwrap();
    let timing = job.timing().unwrap();
    let mut slots = Vec::new();
    let mut slot = timing.next_slot(job.created_at);
    while let Some(s) = slot {
        slot = timing.next_slot(s.scheduled_for);
        slots.push(s);
    }
    assert_eq!(slots.len(), 5);
    let skipped: Vec<Execution> = slots[..recorded]
        .iter()
        .map(|s| {
            let mut e = Execution::scheduled(&job, s, now);
            e.status = ExecutionStatus::Skipped;
            e.completed_at = Some(now);
            e.duration_ms = Some(0);
            e.error_type = Some("overlap".into());
            e
        })
        .collect();
    let claim = SlotClaim {
        job_id: job.id,
        expected_version: job.version,
        expected_next_run_at: job.next_run_at.unwrap(),
        expected_running: None,
        next_run_at: None,
        executions: skipped.clone(),
        started: 0,
        buffered: None,
        started_at: now,
    };
    assert!(store.claim_slots(&claim).await.unwrap());
    (job, skipped)
}

#[tokio::test]
async fn check_passes_when_every_slot_is_recorded() {
    let store = MemoryStore::new();
    let (job, _) = job_with_recorded_slots(&store, 5).await;
    let t = check(&store, &[job], &CountingAi::new(1)).await;
    assert_eq!(t.violations, Vec::<String>::new());
    assert_eq!((t.expected_slots, t.slots, t.slots_run), (5, 5, 0));
    assert_eq!(t.slots_skipped.get("overlap"), Some(&5));
}

#[tokio::test]
async fn check_reports_every_lost_slot() {
    let store = MemoryStore::new();
    let (job, _) = job_with_recorded_slots(&store, 2).await;
    let t = check(&store, &[job], &CountingAi::new(1)).await;
    assert_eq!((t.expected_slots, t.slots), (5, 2));
    let lost = t
        .violations
        .iter()
        .filter(|v| v.contains("was neither run nor recorded"))
        .count();
    assert_eq!(lost, 3, "{:#?}", t.violations);
    assert_eq!(t.violations.len(), 3, "{:#?}", t.violations);
}

#[tokio::test]
async fn check_reports_an_execution_that_called_the_ai_twice() {
    let store = MemoryStore::new();
    let (job, skipped) = job_with_recorded_slots(&store, 5).await;
    let ai = CountingAi::new(1);
    let request = AiRequest {
        payload: RequestPayload::for_job(&job),
        timeout: Duration::from_secs(1),
        job_id: job.id,
        execution_id: skipped[0].id,
    };
    let _ = ai.call(&request).await;
    let _ = ai.call(&request).await;
    let t = check(&store, &[job], &ai).await;
    assert!(
        t.violations
            .iter()
            .any(|v| v.ends_with("called the AI 2 times")),
        "{:#?}",
        t.violations
    );
    assert!(
        t.violations
            .iter()
            .any(|v| v.ends_with("was skipped but called the AI")),
        "{:#?}",
        t.violations
    );
}
