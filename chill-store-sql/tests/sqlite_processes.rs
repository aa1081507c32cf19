//! Two processes (and the test's own process) claim the slots of the same jobs in one SQLite
//! file at the same time: every slot is claimed once, by exactly one of them.
//!
//! The child processes are this test binary again, running `child_claims_slots` with the
//! database in `CHILL_SQLITE_CHILD_DB`.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::process::Command;

use chill_core::store::{JobFilter, PageRequest, SlotClaim};
use chill_core::{Execution, ExecutionId, ExecutionStatus, Job, JobId, JobSpec, Store};
use chill_store_sql::SqlStore;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::{Kind, with_db};

const JOBS: u128 = 40;
const SLOTS: i64 = 30;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2032, 1, 1, 0, 0, 0).unwrap()
}

/// Claim due slots of every job until each has passed `SLOTS` slots; the number won.
async fn claim_all(store: &dyn Store, owner: &str) -> u64 {
    let end = t0() + TimeDelta::minutes(5 * SLOTS);
    let mut wins = 0;
    loop {
        let due = store.due_jobs(end, 1000).await.unwrap();
        let due: Vec<Job> = due
            .into_iter()
            .filter(|j| j.next_run_at.is_some_and(|t| t <= end))
            .collect();
        if due.is_empty() {
            return wins;
        }
        for job in due {
            let timing = job.timing().unwrap();
            let at = job.next_run_at.unwrap();
            let slot = timing.next_slot(at - TimeDelta::seconds(1)).unwrap();
            let next = timing.next_slot(slot.scheduled_for).unwrap();
            let execution = Execution {
                status: ExecutionStatus::Running,
                lease_owner: Some(owner.to_string()),
                lease_expires_at: Some(at + TimeDelta::minutes(1)),
                ..Execution::scheduled(&job, &slot, at)
            };
            let claim = SlotClaim {
                job_id: job.id,
                expected_version: job.version,
                expected_next_run_at: at,
                expected_running: None,
                next_run_at: Some(next.fire_at),
                executions: vec![execution],
                started: 1,
                buffered: None,
                started_at: at,
            };
            // A busy file is a transient error: the next round tries again.
            if let Ok(true) = store.claim_slots(&claim).await {
                wins += 1;
            }
        }
    }
}

/// The child's side: does nothing unless started by the parent test.
#[tokio::test]
async fn child_claims_slots() {
    let Ok(url) = std::env::var("CHILL_SQLITE_CHILD_DB") else {
        return;
    };
    let store = SqlStore::connect(&url).await.unwrap();
    let wins = claim_all(&store, &format!("child-{}", std::process::id())).await;
    println!("WINS {wins}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_claim_each_slot_once() {
    if std::env::var("CHILL_SQLITE_CHILD_DB").is_ok() {
        return;
    }
    with_db(Kind::SqliteFile, "processes", |db| async move {
        let store = db.store().await;
        let mut ids = Vec::new();
        for n in 0..JOBS {
            let spec = JobSpec {
                id: Some(JobId::from_uuid(uuid::Uuid::from_u128(0x7000 + n))),
                ..JobSpec::new(format!("job {n}"), "p", "*/5 * * * *")
            };
            let job = Job::create(spec, t0() - TimeDelta::seconds(1)).unwrap();
            store.create_job(&job).await.unwrap();
            ids.push(job.id);
        }
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..2)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "child_claims_slots",
                        "--exact",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env("CHILL_SQLITE_CHILD_DB", &db.url)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mine = claim_all(&store, "parent").await;
        let mut total = mine;
        let mut per_process = vec![mine];
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "a child failed: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            let after = text
                .split("WINS ")
                .nth(1)
                .unwrap_or_else(|| panic!("no WINS in {text}"));
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            let wins: u64 = digits.parse().unwrap();
            per_process.push(wins);
            total += wins;
        }
        // Every slot of every job was claimed exactly once.
        let mut executions = 0;
        for id in &ids {
            let page = store
                .list_executions(id, &PageRequest::first(1000))
                .await
                .unwrap();
            executions += page.items.len() as u64;
            let job = store.get_job(id).await.unwrap().unwrap();
            let timing = job.timing().unwrap();
            let mut slot = timing.next_slot(t0() - TimeDelta::seconds(1));
            for _ in 0..SLOTS {
                let s = slot.unwrap();
                let eid = ExecutionId::for_slot(id, s.scheduled_for);
                assert!(
                    page.items.iter().any(|e| e.id == eid),
                    "slot {} of {id} lost",
                    s.scheduled_for
                );
                slot = timing.next_slot(s.scheduled_for);
            }
            assert_eq!(job.running_count as i64, page.items.len() as i64);
        }
        println!("claims won per process: {per_process:?}");
        assert_eq!(executions, JOBS as u64 * SLOTS as u64 + JOBS as u64);
        assert_eq!(
            total, executions,
            "claims won ({per_process:?}) differ from executions stored"
        );
        let listed = store
            .list_jobs(&JobFilter::default(), &PageRequest::first(1000))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), JOBS as usize);
        store.close().await;
    })
    .await;
}
