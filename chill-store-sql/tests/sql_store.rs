//! What is particular to the SQL store: URLs and options, migrations and table prefixes,
//! hostile strings stored byte for byte, and values beyond the database's limits refused with
//! nothing written. On every database compiled in.

#![allow(clippy::unwrap_used)]

mod common;

use chill_core::store::{Finish, JobFilter, PageRequest, SlotClaim, StatsDelta};
use chill_core::{Execution, ExecutionResponse, ExecutionStatus, Job, JobSpec, Store, StoreError};
use chill_store_sql::{Backend, Migration, SqlError, SqlOptions, SqlStore};
use chrono::{TimeDelta, TimeZone, Utc};
use common::{Kind, on_each, with_db};

const HOSTILE: &[&str] = &[
    "it's \"quoted\" `back` ",
    "'; DROP TABLE chill_jobs; --",
    "Robert'); DELETE FROM chill_executions WHERE ('1'='1",
    "%_\\%\\_ LIKE wildcards",
    "nul \0 in the middle\0",
    "\0",
    "ünïcødé ∑ 中文 🎉👩‍👩‍👧 \u{FEFF}\u{200B}",
    "control \u{1}\u{7}\u{1b}[31m \r\n\t",
    "$1 ? :name @p0 {}",
    "   ",
    "",
];

fn job_with(name: &str, text: &str, n: usize) -> Job {
    let spec = JobSpec::new("x", "p", "@daily");
    let mut job = Job::create(spec, Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()).unwrap();
    // Past validation: a store keeps whatever it is given.
    job.system_prompt = Some(text.to_string());
    job.tags = vec![text.to_string(), format!("t{n}")];
    job.metadata = serde_json::json!({ text: [text, n], "n": n });
    job.pause_note = Some(text.to_string());
    job.created_by = Some(text.to_string());
    job.name = name.to_string();
    job.prompt = text.to_string();
    job.last_run_error = Some(text.to_string());
    job
}

#[tokio::test]
async fn hostile_strings_are_stored_and_found_byte_for_byte() {
    on_each("hostile", |db, store| async move {
        let kind = db.kind;
        let mut jobs = Vec::new();
        for (n, text) in HOSTILE.iter().enumerate() {
            let job = job_with(&format!("{n}:{text}"), text, n);
            store.create_job(&job).await.unwrap();
            assert_eq!(
                store.get_job(&job.id).await.unwrap().as_ref(),
                Some(&job),
                "{kind:?}: {text:?}"
            );
            jobs.push(job);
        }
        for (n, text) in HOSTILE.iter().enumerate() {
            // name_contains: exactly the jobs whose name has the text.
            let filter = JobFilter {
                name_contains: Some(text.to_string()),
                ..JobFilter::default()
            };
            let found = store
                .list_jobs(&filter, &PageRequest::first(100))
                .await
                .unwrap();
            // Whole jobs: a listing decodes every column as a single read does.
            let expected: Vec<_> = jobs.iter().filter(|j| j.name.contains(text)).collect();
            assert_eq!(
                found.items.iter().collect::<Vec<_>>(),
                expected,
                "{kind:?}: name {text:?}"
            );
            // tag: exactly the job carrying it.
            let filter = JobFilter {
                tag: Some(text.to_string()),
                ..JobFilter::default()
            };
            let found = store
                .list_jobs(&filter, &PageRequest::first(100))
                .await
                .unwrap();
            let expected: Vec<_> = jobs
                .iter()
                .filter(|j| j.tags.iter().any(|t| t == text))
                .map(|j| j.id)
                .collect();
            assert_eq!(
                found.items.iter().map(|j| j.id).collect::<Vec<_>>(),
                expected,
                "{kind:?}: tag {text:?} ({n})"
            );
        }
        // Execution text: error message, error type, lease owner, response.
        let job = &jobs[4];
        let mut executions = Vec::new();
        for (n, text) in HOSTILE.iter().enumerate() {
            let mut e = Execution::manual(
                job,
                Utc.with_ymd_and_hms(2030, 1, 2, 0, 0, n as u32).unwrap(),
            );
            e.status = ExecutionStatus::Running;
            e.lease_owner = Some(text.to_string());
            e.lease_expires_at = Some(e.started_at + TimeDelta::seconds(30));
            e.error_message = Some(text.to_string());
            e.error_type = Some(text.to_string());
            e.error_details = Some(serde_json::json!({ "body": text }));
            e.response = Some(ExecutionResponse {
                result: text.to_string(),
                tools_used: vec![text.to_string()],
                conversation_turns: None,
                metadata: serde_json::json!(text),
            });
            store.start_manual(&e, false).await.unwrap();
            assert_eq!(
                store.get_execution(&e.id).await.unwrap().as_ref(),
                Some(&e),
                "{kind:?}: {text:?}"
            );
            assert!(
                store
                    .renew_lease(&e.id, text, e.started_at + TimeDelta::seconds(60))
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .renew_lease(&e.id, &format!("{text}x"), e.started_at)
                    .await
                    .unwrap()
            );
            executions.push(store.get_execution(&e.id).await.unwrap().unwrap());
        }
        // Listed, the executions are the ones read singly, field for field.
        let mut listed = store
            .list_executions(&job.id, &PageRequest::first(100))
            .await
            .unwrap()
            .items;
        listed.sort_by_key(|e| e.id);
        executions.sort_by_key(|e| e.id);
        assert_eq!(listed, executions, "{kind:?}");
        // The tables are intact.
        let all = store
            .list_jobs(&JobFilter::default(), &PageRequest::first(100))
            .await
            .unwrap();
        let mut all = all.items;
        all.sort_by_key(|j| j.id);
        let mut read = Vec::new();
        for job in &jobs {
            read.push(store.get_job(&job.id).await.unwrap().unwrap());
        }
        read.sort_by_key(|j| j.id);
        assert_eq!(all, read, "{kind:?}");
    })
    .await;
}

fn stats(status: ExecutionStatus) -> StatsDelta {
    StatsDelta {
        status,
        counted: true,
        duration_ms: 5,
        error: None,
        input_tokens: 1,
        output_tokens: 1,
        cost_micro_usd: 1,
        completed_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn values_beyond_the_limits_are_refused_and_nothing_is_written() {
    on_each("limits", |db, store| async move {
        let kind = db.kind;
        let invalid = |r: Result<(), StoreError>, field: &str| match r {
            Err(StoreError::InvalidInput { field: f, .. }) if f == field => {}
            other => panic!("{kind:?}: expected InvalidInput on {field}, got {other:?}"),
        };
        // A count beyond the database's integers.
        let mut job = job_with("big", "text", 1);
        job.total_tokens = u64::MAX;
        invalid(store.create_job(&job).await, "totalTokens");
        assert_eq!(store.get_job(&job.id).await.unwrap(), None, "{kind:?}");
        job.total_tokens = i64::MAX as u64;
        store.create_job(&job).await.unwrap();
        assert_eq!(
            store.get_job(&job.id).await.unwrap().unwrap().total_tokens,
            i64::MAX as u64
        );

        // An update with a version beyond the limit changes nothing.
        let before = store.get_job(&job.id).await.unwrap().unwrap();
        let mut changed = before.clone();
        changed.name = "changed".into();
        changed.version = u64::MAX;
        invalid(store.update_job(&changed, before.version).await, "version");
        assert_eq!(store.get_job(&job.id).await.unwrap().unwrap(), before);

        // A claim with an execution that cannot be stored is not applied at all.
        let at = before.next_run_at.unwrap();
        let slot = before
            .timing()
            .unwrap()
            .next_slot(at - TimeDelta::seconds(1))
            .unwrap();
        let mut run = Execution::scheduled(&before, &slot, at);
        run.status = ExecutionStatus::Running;
        run.lease_owner = Some("me".into());
        run.lease_expires_at = Some(at + TimeDelta::seconds(30));
        let mut bad = run.clone();
        bad.tokens_used = Some(u64::MAX);
        let claim = SlotClaim {
            job_id: before.id,
            expected_version: before.version,
            expected_next_run_at: at,
            expected_running: None,
            next_run_at: Some(at + TimeDelta::days(1)),
            executions: vec![bad.clone()],
            started: 1,
            buffered: None,
            started_at: at,
        };
        invalid(store.claim_slots(&claim).await.map(drop), "tokensUsed");
        assert_eq!(
            store.get_job(&job.id).await.unwrap().unwrap(),
            before,
            "{kind:?}"
        );
        assert_eq!(store.get_execution(&run.id).await.unwrap(), None);
        assert!(
            store
                .claim_slots(&SlotClaim {
                    executions: vec![run.clone()],
                    ..claim
                })
                .await
                .unwrap()
        );

        // A finish whose record cannot be stored leaves the execution running.
        let mut done = run.clone();
        done.status = ExecutionStatus::Success;
        done.completed_at = Some(at + TimeDelta::seconds(1));
        done.cost_micro_usd = Some(u64::MAX);
        let finish = Finish {
            execution: done,
            owner: "me".into(),
            expired_by: None,
            stats: stats(ExecutionStatus::Success),
            next_attempt: None,
            promote: None,
        };
        invalid(store.finish(&finish).await.map(drop), "costMicroUsd");
        assert_eq!(store.get_execution(&run.id).await.unwrap().unwrap(), run);

        // Text beyond the store's limit.
        let small = db
            .store_with(SqlOptions::default().with_max_value_bytes(1000))
            .await;
        let mut long = job_with("long", "text", 2);
        long.prompt = "x".repeat(1001);
        invalid(small.create_job(&long).await, "prompt");
        assert_eq!(small.get_job(&long.id).await.unwrap(), None);
        long.prompt = "é".repeat(500);
        small.create_job(&long).await.unwrap();
        long.id = chill_core::JobId::new();
        long.metadata = serde_json::json!("x".repeat(1000));
        invalid(small.create_job(&long).await, "metadata");
        small.close().await;
    })
    .await;
}

#[tokio::test]
async fn urls_and_options_are_checked() {
    assert!(matches!(
        SqlStore::connect("redis://127.0.0.1/0").await,
        Err(SqlError::UnsupportedUrl { .. })
    ));
    let prefix = SqlStore::connect_with(
        "sqlite::memory:",
        SqlOptions::default().with_table_prefix("x; DROP"),
    )
    .await;
    assert!(
        matches!(
            prefix,
            Err(SqlError::InvalidOption {
                option: "table_prefix",
                ..
            })
        ),
        "{prefix:?}"
    );
    let schema =
        SqlStore::connect_with("sqlite::memory:", SqlOptions::default().with_schema("s")).await;
    assert!(
        matches!(
            schema,
            Err(SqlError::InvalidOption {
                option: "schema",
                ..
            })
        ),
        "{schema:?}"
    );
    assert_eq!(Backend::from_url("SQLite:x.db").unwrap(), Backend::Sqlite);
    #[cfg(not(feature = "postgres"))]
    assert!(matches!(
        SqlStore::connect("postgres://127.0.0.1/x").await,
        Err(SqlError::FeatureDisabled {
            feature: "postgres",
            ..
        })
    ));
    #[cfg(not(feature = "mysql"))]
    assert!(matches!(
        SqlStore::connect("mysql://127.0.0.1/x").await,
        Err(SqlError::FeatureDisabled {
            feature: "mysql",
            ..
        })
    ));
    // Every database's migrations split into statements with the prefix filled in.
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        for m in Migration::all(backend) {
            assert!(m.statements("p_", "p_").iter().all(|s| s.contains("p_")));
        }
    }
}

#[tokio::test]
async fn migrations_run_once_and_prefixes_keep_stores_apart() {
    for kind in Kind::all() {
        if kind == Kind::SqliteMemory {
            continue; // a memory database is private to its store
        }
        with_db(kind, "migrations", move |db| async move {
            let a = db.store().await;
            assert_eq!(a.migrate().await.unwrap(), 0, "{kind:?}: migrated twice");
            let again = db.store().await;
            assert_eq!(again.migrate().await.unwrap(), 0);
            again.close().await;

            // Another prefix in the same database: its own tables.
            let b = db
                .store_with(SqlOptions::default().with_table_prefix("other_"))
                .await;
            let job = job_with("a", "a", 0);
            a.create_job(&job).await.unwrap();
            assert_eq!(b.get_job(&job.id).await.unwrap(), None, "{kind:?}");
            b.create_job(&job).await.unwrap();
            assert!(b.delete_job(&job.id).await.unwrap());
            assert!(a.get_job(&job.id).await.unwrap().is_some());

            // Without migrations a fresh prefix has no tables until migrate() runs.
            let c = db
                .store_with(
                    SqlOptions::default()
                        .with_table_prefix("late_")
                        .with_migrations(false),
                )
                .await;
            assert!(
                matches!(c.get_job(&job.id).await, Err(StoreError::Backend(_))),
                "{kind:?}"
            );
            assert_eq!(
                c.migrate().await.unwrap(),
                Migration::all(c.backend()).len()
            );
            assert_eq!(c.get_job(&job.id).await.unwrap(), None);
            for s in [a, b, c] {
                s.close().await;
            }
        })
        .await;
    }
}

/// Stores opening a new SQLite file at the same moment all connect: the one switching the
/// file to WAL holds a lock SQLite's busy handler does not wait for, and the others open
/// again until the switch is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_stores_opening_a_new_file_together_all_connect() {
    for round in 0..10 {
        with_db(Kind::SqliteFile, "open_together", move |db| async move {
            let stores: Vec<_> = (0..8)
                .map(|_| {
                    let db = db.clone();
                    tokio::spawn(async move { db.store().await })
                })
                .collect();
            let mut opened = Vec::new();
            for s in stores {
                opened.push(s.await.unwrap());
            }
            for (i, s) in opened.iter().enumerate() {
                s.create_job(&job_with(&format!("r{round}-{i}"), "p", 0))
                    .await
                    .unwrap();
            }
            let listed = opened[0]
                .list_jobs(&JobFilter::default(), &PageRequest::first(100))
                .await
                .unwrap();
            assert_eq!(listed.items.len(), 8, "round {round}");
            for s in opened {
                s.close().await;
            }
        })
        .await;
    }
}

/// Closing a store on a SQLite file closes every connection, also one that a write or a read
/// has just let go of (sqlx returns it to its pool in a task of its own): the last connection
/// closed folds the write-ahead log back into the file and removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_sqlite_file_store_right_after_a_write_leaves_no_write_ahead_log() {
    for round in 0..40 {
        with_db(
            Kind::SqliteFile,
            "close_after_write",
            move |db| async move {
                let store = db.store().await;
                let job = job_with(&format!("r{round}"), "p", round);
                store.create_job(&job).await.unwrap();
                store.close().await;
                let path = db.url.strip_prefix("sqlite://").unwrap();
                let wal = format!("{path}-wal");
                assert!(
                    !std::path::Path::new(&wal).exists(),
                    "round {round}: {wal} is still there after close"
                );
                // Nothing was lost: the job is in the file itself.
                let again = db.store().await;
                assert_eq!(again.get_job(&job.id).await.unwrap(), Some(job));
                again.close().await;
            },
        )
        .await;
    }
}

#[tokio::test]
async fn concurrent_connects_migrate_once() {
    for kind in Kind::all() {
        if kind == Kind::SqliteMemory {
            continue;
        }
        with_db(kind, "concurrent_migrate", move |db| async move {
            let stores: Vec<_> = (0..4)
                .map(|_| {
                    let db = db.clone();
                    tokio::spawn(async move { db.store().await })
                })
                .collect();
            for s in stores {
                let s = s.await.unwrap();
                s.create_job(&job_with("c", "c", 0)).await.unwrap();
                s.close().await;
            }
        })
        .await;
    }
}
