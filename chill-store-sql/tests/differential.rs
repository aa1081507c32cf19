//! The same script of store operations on the in-memory reference store and on each SQL
//! database: every result and every record read back must be identical.

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Debug;

use chill_core::store::{Finish, JobFilter, Lease, PageRequest, SlotClaim, StatsDelta};
use chill_core::{
    Execution, ExecutionId, ExecutionStatus, Job, JobId, JobPatch, JobSpec, MemoryStore,
    OverlapPolicy, Store, Trigger,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use common::{Kind, with_db};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 4, 10, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn job(n: u128, name: &str, tags: &[&str], overlap: OverlapPolicy) -> Job {
    let spec = JobSpec {
        id: Some(JobId::from_uuid(uuid::Uuid::from_u128(0x1000 + n))),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        overlap_policy: overlap,
        metadata: serde_json::json!({"n": n as u64, "s": "it's; DROP TABLE jobs; --", "f": 0.1}),
        ..JobSpec::new(name, format!("prompt {n}"), "*/5 * * * *")
    };
    Job::create(spec, t0()).unwrap()
}

/// Records every result of the script, in order.
struct Log(Vec<String>);

impl Log {
    fn push(&mut self, what: &str, value: impl Debug) {
        self.0.push(format!("{what}: {value:?}"));
    }
}

fn running(e: Execution, owner: &str, lease_until: DateTime<Utc>, now: DateTime<Utc>) -> Execution {
    Execution {
        status: ExecutionStatus::Running,
        started_at: now,
        lease_owner: Some(owner.to_string()),
        lease_expires_at: Some(lease_until),
        ..e
    }
}

fn fixed_id(e: Execution, n: u128) -> Execution {
    let id = ExecutionId::from_uuid(uuid::Uuid::from_u128(0x5000 + n));
    Execution {
        id,
        root_execution_id: id,
        ..e
    }
}

fn ended(e: &Execution, status: ExecutionStatus, now: DateTime<Utc>) -> Execution {
    Execution {
        status,
        completed_at: Some(now),
        duration_ms: Some((now - e.started_at).num_milliseconds() as u64),
        input_tokens: Some(10),
        output_tokens: Some(20),
        tokens_used: Some(30),
        cost_micro_usd: Some(7),
        error_message: (status != ExecutionStatus::Success).then(|| "boom \0 'x'".to_string()),
        error_type: (status != ExecutionStatus::Success).then(|| "server_error".to_string()),
        error_details: Some(serde_json::json!({"status": 503})),
        response: Some(chill_core::ExecutionResponse {
            result: "ok \u{1F600}".into(),
            tools_used: vec!["slack".into()],
            conversation_turns: Some(2),
            metadata: serde_json::json!({"k": [1, 2]}),
        }),
        ..e.clone()
    }
}

fn delta(status: ExecutionStatus, counted: bool) -> StatsDelta {
    StatsDelta {
        status,
        counted,
        duration_ms: 1500,
        error: (status != ExecutionStatus::Success).then(|| "boom".to_string()),
        input_tokens: 10,
        output_tokens: 20,
        cost_micro_usd: 7,
        completed_at: at(600),
    }
}

async fn script(store: &dyn Store) -> Vec<String> {
    let mut log = Log(Vec::new());
    let a = job(
        1,
        "alpha ' \" ; DROP TABLE x; -- %_",
        &["red", "a\"b"],
        OverlapPolicy::Skip,
    );
    let b = job(
        2,
        "beta \u{0} nul ünïcødé 🎉",
        &["blue"],
        OverlapPolicy::BufferOne,
    );
    let c = job(3, "gamma", &["red", ","], OverlapPolicy::Allow);
    for j in [&a, &b, &c] {
        log.push("create", store.create_job(j).await);
    }
    log.push("create dup", store.create_job(&a).await);
    log.push("get a", store.get_job(&a.id).await);
    log.push("get b", store.get_job(&b.id).await);
    log.push(
        "get none",
        store
            .get_job(&JobId::from_uuid(uuid::Uuid::from_u128(9)))
            .await,
    );

    // update: ok, conflict, not found; statistics are not written by update_job
    let patch: JobPatch =
        serde_json::from_str(r#"{"prompt": "new \u0000 prompt", "tags": ["red", "green"]}"#)
            .unwrap();
    let mut a2 = a.apply(&patch, at(1)).unwrap();
    a2.total_runs = 99;
    a2.running_count = 5;
    log.push("update", store.update_job(&a2, a.version).await);
    log.push("update conflict", store.update_job(&a2, a.version).await);
    let ghost = job(7, "ghost", &[], OverlapPolicy::Skip);
    log.push("update missing", store.update_job(&ghost, 1).await);
    log.push("get a2", store.get_job(&a.id).await);

    // listings
    let filters = [
        JobFilter::default(),
        JobFilter {
            tag: Some("red".into()),
            ..JobFilter::default()
        },
        JobFilter {
            tag: Some("a\"b".into()),
            ..JobFilter::default()
        },
        JobFilter {
            tag: Some("b".into()),
            ..JobFilter::default()
        },
        JobFilter {
            tag: Some(",".into()),
            ..JobFilter::default()
        },
        JobFilter {
            name_contains: Some("\u{0} nul".into()),
            ..JobFilter::default()
        },
        JobFilter {
            name_contains: Some("%_".into()),
            ..JobFilter::default()
        },
        JobFilter {
            name_contains: Some("AL".into()),
            ..JobFilter::default()
        },
        JobFilter {
            name_contains: Some(String::new()),
            ..JobFilter::default()
        },
        JobFilter {
            enabled: Some(false),
            ..JobFilter::default()
        },
    ];
    for f in &filters {
        let page = store.list_jobs(f, &PageRequest::first(2)).await.unwrap();
        log.push("list", page.items.iter().map(|j| j.id).collect::<Vec<_>>());
        if let Some(c) = page.next_cursor.clone() {
            let next = store.list_jobs(f, &PageRequest::after(2, c)).await.unwrap();
            log.push(
                "list next",
                (
                    next.items.iter().map(|j| j.id).collect::<Vec<_>>(),
                    next.next_cursor,
                ),
            );
        }
    }
    log.push(
        "bad cursor",
        store
            .list_jobs(
                &JobFilter::default(),
                &PageRequest::after(2, chill_core::store::Cursor::new("x")),
            )
            .await,
    );

    // due jobs and claims
    log.push(
        "due",
        store
            .due_jobs(at(3600), 10)
            .await
            .map(|v| v.iter().map(|j| j.id).collect::<Vec<_>>()),
    );
    log.push("next due", store.next_due_at().await);
    let a_now = store.get_job(&a.id).await.unwrap().unwrap();
    let slot = a_now.timing().unwrap().next_slot(t0()).unwrap();
    let first = running(
        Execution::scheduled(&a_now, &slot, slot.fire_at),
        "i1",
        slot.fire_at + TimeDelta::seconds(60),
        slot.fire_at,
    );
    let after = a_now
        .timing()
        .unwrap()
        .next_slot(slot.scheduled_for)
        .unwrap();
    let claim = SlotClaim {
        job_id: a.id,
        expected_version: a_now.version,
        expected_next_run_at: a_now.next_run_at.unwrap(),
        expected_running: Some(0),
        next_run_at: Some(after.fire_at),
        executions: vec![first.clone()],
        started: 1,
        buffered: None,
        started_at: slot.fire_at,
    };
    log.push("claim", store.claim_slots(&claim).await);
    log.push("claim again", store.claim_slots(&claim).await);
    log.push(
        "claim stale version",
        store
            .claim_slots(&SlotClaim {
                expected_version: 1,
                ..claim.clone()
            })
            .await,
    );
    log.push("job after claim", store.get_job(&a.id).await);
    log.push("execution", store.get_execution(&first.id).await);

    // manual starts
    let manual = fixed_id(
        running(Execution::manual(&a_now, at(400)), "i2", at(460), at(400)),
        1,
    );
    log.push("manual busy", store.start_manual(&manual, true).await);
    log.push("manual", store.start_manual(&manual, false).await);
    log.push("manual dup", store.start_manual(&manual, false).await);
    let ghost_manual = fixed_id(
        running(Execution::manual(&ghost, at(400)), "i2", at(460), at(400)),
        2,
    );
    log.push(
        "manual missing",
        store.start_manual(&ghost_manual, false).await,
    );

    // leases
    log.push(
        "renew wrong owner",
        store.renew_lease(&first.id, "i9", at(999)).await,
    );
    log.push("renew", store.renew_lease(&first.id, "i1", at(500)).await);
    log.push(
        "renew same",
        store.renew_lease(&first.id, "i1", at(500)).await,
    );
    log.push(
        "expired",
        store
            .expired_leases(at(470), 10)
            .await
            .map(|v| v.iter().map(|e| e.id).collect::<Vec<_>>()),
    );

    // finish: fenced, expired_by too early, then a failure with a retry attempt
    let failed = ended(&first, ExecutionStatus::Failed, at(420));
    let retry = failed.retry(at(480), at(420));
    let finish = Finish {
        execution: failed.clone(),
        owner: "i1".into(),
        expired_by: None,
        stats: delta(ExecutionStatus::Failed, true),
        next_attempt: Some(retry.clone()),
        promote: None,
    };
    log.push(
        "finish wrong owner",
        store
            .finish(&Finish {
                owner: "i9".into(),
                ..finish.clone()
            })
            .await,
    );
    log.push(
        "finish not expired",
        store
            .finish(&Finish {
                expired_by: Some(at(100)),
                ..finish.clone()
            })
            .await,
    );
    log.push("finish", store.finish(&finish).await);
    log.push("finish again", store.finish(&finish).await);
    log.push("job after finish", store.get_job(&a.id).await);
    log.push("due attempts early", store.due_attempts(at(479), 10).await);
    log.push("due attempts", store.due_attempts(at(480), 10).await);
    log.push("next due 2", store.next_due_at().await);
    let lease = Lease {
        owner: "i3".into(),
        expires_at: at(600),
    };
    log.push(
        "claim attempt",
        store.claim_attempt(&retry.id, &lease, at(481)).await,
    );
    log.push(
        "claim attempt again",
        store.claim_attempt(&retry.id, &lease, at(482)).await,
    );
    log.push(
        "claim attempt missing",
        store
            .claim_attempt(
                &ExecutionId::from_uuid(uuid::Uuid::from_u128(3)),
                &lease,
                at(482),
            )
            .await,
    );
    let claimed = store.get_execution(&retry.id).await.unwrap().unwrap();
    let dead = ended(&claimed, ExecutionStatus::Dead, at(700));
    log.push(
        "finish expired",
        store
            .finish(&Finish {
                execution: dead,
                owner: "i3".into(),
                expired_by: Some(at(650)),
                stats: delta(ExecutionStatus::Dead, true),
                next_attempt: None,
                promote: None,
            })
            .await,
    );
    let done = ended(&manual, ExecutionStatus::Success, at(410));
    log.push(
        "finish manual with an existing attempt",
        store
            .finish(&Finish {
                execution: done,
                owner: "i2".into(),
                expired_by: None,
                stats: delta(ExecutionStatus::Success, true),
                next_attempt: Some(retry.clone()),
                promote: None,
            })
            .await,
    );
    log.push(
        "execution after refused finish",
        store.get_execution(&manual.id).await,
    );
    log.push(
        "finish manual",
        store
            .finish(&Finish {
                execution: ended(&manual, ExecutionStatus::Success, at(410)),
                owner: "i2".into(),
                expired_by: None,
                stats: delta(ExecutionStatus::Success, true),
                next_attempt: None,
                promote: Some(Lease {
                    owner: "i2".into(),
                    expires_at: at(999),
                }),
            })
            .await,
    );
    log.push("job stats", store.get_job(&a.id).await);

    // buffer_one: a running slot, a buffered slot, promotion at finish
    let b_now = store.get_job(&b.id).await.unwrap().unwrap();
    let timing = b_now.timing().unwrap();
    let s1 = timing.next_slot(t0()).unwrap();
    let s2 = timing.next_slot(s1.scheduled_for).unwrap();
    let s3 = timing.next_slot(s2.scheduled_for).unwrap();
    let r1 = running(
        Execution::scheduled(&b_now, &s1, s1.fire_at),
        "i1",
        at(5000),
        s1.fire_at,
    );
    log.push(
        "claim b1",
        store
            .claim_slots(&SlotClaim {
                job_id: b.id,
                expected_version: b_now.version,
                expected_next_run_at: b_now.next_run_at.unwrap(),
                expected_running: None,
                next_run_at: Some(s2.fire_at),
                executions: vec![r1.clone()],
                started: 1,
                buffered: None,
                started_at: s1.fire_at,
            })
            .await,
    );
    let pending = Execution::scheduled(&b_now, &s2, s2.fire_at);
    let buffered_claim = SlotClaim {
        job_id: b.id,
        expected_version: b_now.version,
        expected_next_run_at: s2.fire_at,
        expected_running: None,
        next_run_at: Some(s3.fire_at),
        executions: vec![pending.clone()],
        started: 0,
        buffered: Some(pending.id),
        started_at: s2.fire_at,
    };
    log.push(
        "claim b2 buffered",
        store.claim_slots(&buffered_claim).await,
    );
    let skipped = Execution {
        status: ExecutionStatus::Skipped,
        error_type: Some("overlap".into()),
        ..Execution::scheduled(&b_now, &s3, s3.fire_at)
    };
    log.push(
        "claim b3 second buffer refused",
        store
            .claim_slots(&SlotClaim {
                expected_next_run_at: s3.fire_at,
                next_run_at: None,
                executions: vec![skipped.clone()],
                buffered: Some(skipped.id),
                ..buffered_claim.clone()
            })
            .await,
    );
    log.push(
        "claim b3 skipped",
        store
            .claim_slots(&SlotClaim {
                expected_next_run_at: s3.fire_at,
                next_run_at: None,
                executions: vec![skipped.clone()],
                buffered: None,
                ..buffered_claim.clone()
            })
            .await,
    );
    log.push("job b", store.get_job(&b.id).await);
    log.push(
        "due after b",
        store
            .due_jobs(at(99_999), 10)
            .await
            .map(|v| v.iter().map(|j| j.id).collect::<Vec<_>>()),
    );
    log.push(
        "finish b1 promotes",
        store
            .finish(&Finish {
                execution: ended(
                    &r1,
                    ExecutionStatus::Cancelled,
                    s2.fire_at + TimeDelta::seconds(5),
                ),
                owner: "i1".into(),
                expired_by: None,
                stats: delta(ExecutionStatus::Cancelled, false),
                next_attempt: None,
                promote: Some(Lease {
                    owner: "i1".into(),
                    expires_at: at(9000),
                }),
            })
            .await,
    );
    log.push("job b after", store.get_job(&b.id).await);

    // history and pagination
    let mut cursor = None;
    loop {
        let page = match cursor.take() {
            None => PageRequest::first(1),
            Some(c) => PageRequest::after(1, c),
        };
        let page = store.list_executions(&a.id, &page).await.unwrap();
        log.push(
            "history",
            page.items
                .iter()
                .map(|e| (e.id, e.status, e.trigger == Trigger::Retry))
                .collect::<Vec<_>>(),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    log.push(
        "history missing job",
        store
            .list_executions(&ghost.id, &PageRequest::first(10))
            .await,
    );

    // retention and deletes
    log.push(
        "retention none",
        store.delete_executions_before(at(0), 100).await,
    );
    log.push(
        "retention one",
        store.delete_executions_before(at(100_000), 1).await,
    );
    log.push(
        "retention rest",
        store.delete_executions_before(at(100_000), 100).await,
    );
    log.push(
        "left of a",
        store
            .list_executions(&a.id, &PageRequest::first(100))
            .await
            .map(|p| p.items.len()),
    );
    log.push(
        "left of b",
        store
            .list_executions(&b.id, &PageRequest::first(100))
            .await
            .map(|p| p.items.len()),
    );
    log.push("delete b", store.delete_job(&b.id).await);
    log.push("delete b again", store.delete_job(&b.id).await);
    log.push(
        "b executions gone",
        store
            .list_executions(&b.id, &PageRequest::first(100))
            .await
            .map(|p| p.items.len()),
    );
    // soft delete hides from listings and due
    let mut c2 = store.get_job(&c.id).await.unwrap().unwrap();
    let cv = c2.version;
    c2.deleted_at = Some(at(5));
    c2.version += 1;
    log.push("soft delete", store.update_job(&c2, cv).await);
    log.push(
        "list after soft delete",
        store
            .list_jobs(&JobFilter::default(), &PageRequest::first(10))
            .await
            .map(|p| p.items.len()),
    );
    log.push(
        "list deleted",
        store
            .list_jobs(
                &JobFilter {
                    include_deleted: true,
                    ..JobFilter::default()
                },
                &PageRequest::first(10),
            )
            .await
            .map(|p| p.items.len()),
    );
    log.push(
        "due at end",
        store.due_jobs(at(99_999), 10).await.map(|v| v.len()),
    );
    log.0
}

async fn compare(kind: Kind) {
    let expected = script(&MemoryStore::new()).await;
    if std::env::var("CHILL_DIFF_PRINT").is_ok() {
        for line in &expected {
            eprintln!("{line}");
        }
    }
    with_db(kind, "differential", move |db| async move {
        let store = db.store().await;
        let got = script(&store).await;
        for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
            assert_eq!(g, e, "{kind:?}: step {i} differs from the in-memory store");
        }
        assert_eq!(got.len(), expected.len());
        store.close().await;
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_memory_matches_the_reference() {
    compare(Kind::SqliteMemory).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_file_matches_the_reference() {
    compare(Kind::SqliteFile).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_matches_the_reference() {
    compare(Kind::Postgres).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_matches_the_reference() {
    compare(Kind::MySql).await;
}
