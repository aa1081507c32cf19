//! What is particular to DynamoDB: the 400 KB item limit (responses truncated with a marker,
//! oversized jobs refused), the transaction limit, TTL retention, provisioning, and errors
//! when the server cannot be reached.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chill_core::store::{Finish, FinishOutcome, SlotClaim, StatsDelta};
use chill_core::{
    Execution, ExecutionResponse, ExecutionStatus, Job, JobSpec, Slot, Store, StoreError,
};
use chill_store_dynamo::{DynamoError, DynamoOptions, DynamoStore, TRUNCATED_MARKER};
use chrono::{DateTime, SubsecRound, TimeDelta, TimeZone, Utc};
use common::{sdk_config, with_table};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 6, 7, 0, 0).unwrap()
}

fn due_job(name: &str) -> Job {
    let mut job = Job::create(JobSpec::new(name, "a prompt", "* * * * *"), t0()).unwrap();
    job.next_run_at = Some(t0() + TimeDelta::minutes(1));
    job
}

fn slot_run(job: &Job, slot: DateTime<Utc>, owner: &str) -> Execution {
    let mut e = Execution::scheduled(
        job,
        &Slot {
            scheduled_for: slot,
            fire_at: slot,
            blackout: None,
        },
        slot,
    );
    e.status = ExecutionStatus::Running;
    e.lease_owner = Some(owner.into());
    e.lease_expires_at = Some(slot + TimeDelta::minutes(5));
    e
}

fn claim(job: &Job, executions: Vec<Execution>) -> SlotClaim {
    SlotClaim {
        job_id: job.id,
        expected_version: job.version,
        expected_next_run_at: job.next_run_at.unwrap(),
        expected_running: None,
        next_run_at: job.next_run_at.map(|t| t + TimeDelta::minutes(1)),
        started: executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Running)
            .count() as u32,
        executions,
        buffered: None,
        started_at: job.next_run_at.unwrap(),
    }
}

fn success(run: &Execution, result: String) -> Finish {
    let mut record = run.clone();
    record.status = ExecutionStatus::Success;
    record.completed_at = Some(run.started_at + TimeDelta::seconds(2));
    record.duration_ms = Some(2_000);
    record.response = Some(ExecutionResponse {
        result,
        tools_used: vec!["slack".into()],
        conversation_turns: Some(3),
        metadata: serde_json::json!({"model": "test"}),
    });
    Finish {
        execution: record,
        owner: run.lease_owner.clone().unwrap(),
        expired_by: None,
        stats: StatsDelta {
            status: ExecutionStatus::Success,
            counted: true,
            duration_ms: 2_000,
            error: None,
            input_tokens: 1,
            output_tokens: 2,
            cost_micro_usd: 3,
            completed_at: run.started_at + TimeDelta::seconds(2),
        },
        next_attempt: None,
        promote: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_is_stored_truncated_with_a_marker() {
    with_table("truncated", DynamoOptions::default(), |table| async move {
        let store = table.store().await;
        let job = due_job("big answers");
        store.create_job(&job).await.unwrap();
        let run = slot_run(&job, job.next_run_at.unwrap(), "owner");
        assert!(
            store
                .claim_slots(&claim(&job, vec![run.clone()]))
                .await
                .unwrap()
        );

        // 600 KB of text with quotes and newlines (which JSON escaping makes larger still).
        let result = "a \"quoted\" line\n".repeat(600 * 1024 / 16);
        let finish = success(&run, result.clone());
        let outcome = store.finish(&finish).await.unwrap();
        assert_eq!(outcome, FinishOutcome::Finished { promoted: None });

        let stored = store.get_execution(&run.id).await.unwrap().unwrap();
        let response = stored.response.clone().unwrap();
        assert!(response.result.len() < 400 * 1024, "the result was cut");
        assert!(
            result.starts_with(&response.result),
            "the result's start is kept"
        );
        assert_eq!(response.metadata["model"], "test", "the metadata is kept");
        let marker = &response.metadata[TRUNCATED_MARKER];
        assert_eq!(marker["fields"]["result"], result.len(), "{marker}");
        assert!(marker["limitBytes"].as_u64().unwrap() <= 400 * 1024);
        assert_eq!(stored.status, ExecutionStatus::Success);
        assert_eq!(response.tools_used, vec!["slack".to_string()]);
        let job = store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!(
            (job.total_runs, job.success_count, job.running_count),
            (1, 1, 0)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_fits_is_stored_exactly() {
    with_table("fits", DynamoOptions::default(), |table| async move {
        let store = table.store().await;
        let job = due_job("fits");
        store.create_job(&job).await.unwrap();
        let run = slot_run(&job, job.next_run_at.unwrap(), "owner");
        assert!(
            store
                .claim_slots(&claim(&job, vec![run.clone()]))
                .await
                .unwrap()
        );
        let finish = success(&run, "x".repeat(300 * 1024));
        store.finish(&finish).await.unwrap();
        assert_eq!(
            store.get_execution(&run.id).await.unwrap().unwrap(),
            finish.execution
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_job_is_refused_naming_the_field() {
    with_table(
        "oversized_job",
        DynamoOptions::default(),
        |table| async move {
            let store = table.store().await;
            let mut job = due_job("huge prompt");
            job.prompt = "p".repeat(500 * 1024);
            match store.create_job(&job).await {
                Err(StoreError::InvalidInput { field, message }) => {
                    assert_eq!(field, "prompt", "{message}");
                    assert!(message.contains("400 KB"), "{message}");
                }
                other => panic!("an oversized job must be InvalidInput, got {other:?}"),
            }
            assert_eq!(store.get_job(&job.id).await.unwrap(), None);

            let small = due_job("small");
            store.create_job(&small).await.unwrap();
            let mut grown = small.clone();
            grown.system_prompt = Some("s".repeat(500 * 1024));
            grown.version += 1;
            match store.update_job(&grown, small.version).await {
                Err(StoreError::InvalidInput { field, .. }) => assert_eq!(field, "systemPrompt"),
                other => panic!("an oversized update must be InvalidInput, got {other:?}"),
            }
            assert_eq!(store.get_job(&small.id).await.unwrap(), Some(small));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_beyond_the_transaction_limit_is_refused_and_writes_nothing() {
    with_table(
        "transaction_limit",
        DynamoOptions::default(),
        |table| async move {
            let store = table.store().await;
            let job = due_job("many slots");
            store.create_job(&job).await.unwrap();
            let slot = job.next_run_at.unwrap();
            let mut records = Vec::new();
            for i in 0..100 {
                let mut e = slot_run(&job, slot + TimeDelta::minutes(i), "owner");
                e.status = ExecutionStatus::Skipped;
                e.lease_owner = None;
                e.lease_expires_at = None;
                e.completed_at = Some(slot);
                records.push(e);
            }
            // 100 executions and the job: 101 items.
            match store.claim_slots(&claim(&job, records.clone())).await {
                Err(StoreError::InvalidInput { field, message }) => {
                    assert_eq!(field, "executions");
                    assert!(message.contains("100"), "{message}");
                }
                other => panic!("a claim of 101 items must be InvalidInput, got {other:?}"),
            }
            assert_eq!(store.get_job(&job.id).await.unwrap(), Some(job.clone()));
            assert_eq!(store.get_execution(&records[0].id).await.unwrap(), None);
            // 99 executions and the job: allowed.
            records.truncate(99);
            assert!(store.claim_slots(&claim(&job, records)).await.unwrap());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_past_their_ttl_are_gone_for_reads() {
    let options = DynamoOptions::default().with_retention(Duration::from_secs(3600));
    with_table("ttl", options, |table| async move {
        let store = table.store().await;
        // Stores keep milliseconds.
        let now = Utc::now().trunc_subsecs(3);
        let mut job = due_job("retained");
        job.next_run_at = Some(now - TimeDelta::hours(3));
        store.create_job(&job).await.unwrap();
        // One ended two hours ago (past its TTL), one ended now, one still running.
        let mut old = slot_run(&job, now - TimeDelta::hours(2), "owner");
        old.status = ExecutionStatus::Success;
        old.completed_at = Some(old.started_at);
        let mut fresh = slot_run(&job, now - TimeDelta::seconds(1), "owner");
        fresh.status = ExecutionStatus::Failed;
        fresh.completed_at = Some(now);
        let running = slot_run(
            &job,
            now - TimeDelta::hours(2) - TimeDelta::minutes(1),
            "owner",
        );
        let records = vec![old.clone(), fresh.clone(), running.clone()];
        assert!(store.claim_slots(&claim(&job, records)).await.unwrap());

        assert_eq!(store.get_execution(&old.id).await.unwrap(), None);
        assert_eq!(
            store.get_execution(&fresh.id).await.unwrap(),
            Some(fresh.clone())
        );
        assert_eq!(
            store.get_execution(&running.id).await.unwrap(),
            Some(running.clone())
        );
        let listed: Vec<_> = store
            .list_executions(&job.id, &Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(listed, vec![fresh.id, running.id]);
        // The TTL attribute is on the ended items only, in epoch seconds.
        let raw = store
            .client()
            .get_item()
            .table_name(&table.options.table_name)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("EXEC#{}", fresh.id)),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("EXEC".into()),
            )
            .send()
            .await
            .unwrap();
        let ttl: i64 = raw.item().unwrap()["expiresAt"]
            .as_n()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(ttl, fresh.created_at.timestamp() + 3600);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_table_is_idempotent_and_enables_ttl() {
    with_table(
        "ensure_table",
        DynamoOptions::default(),
        |table| async move {
            let store = table.store().await;
            // with_table created it; again is fine.
            store.ensure_table().await.unwrap();
            let ttl = store
                .client()
                .describe_time_to_live()
                .table_name(&table.options.table_name)
                .send()
                .await
                .unwrap();
            let description = ttl.time_to_live_description().unwrap();
            assert_eq!(description.attribute_name(), Some("expiresAt"));
            let described = store
                .client()
                .describe_table()
                .table_name(&table.options.table_name)
                .send()
                .await
                .unwrap();
            let t = described.table().unwrap();
            assert_eq!(
                t.billing_mode_summary().and_then(|b| b.billing_mode()),
                Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            );
            let mut indexes: Vec<_> = t
                .global_secondary_indexes()
                .iter()
                .filter_map(|i| i.index_name())
                .collect();
            indexes.sort_unstable();
            assert_eq!(
                indexes,
                ["byJob", "due", "ended", "finished", "jobs", "lease"]
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_table_is_named_not_used() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let name = common::table_name("foreign");
    let options = DynamoOptions::new(&name).with_endpoint_url(&endpoint);
    let store = DynamoStore::from_sdk_config(&sdk_config().await, options).unwrap();
    let key = |n: &str| {
        aws_sdk_dynamodb::types::KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
            .build()
            .unwrap()
    };
    store
        .client()
        .create_table()
        .table_name(&name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key("id"))
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let result = store.ensure_table().await;
    store.delete_table().await.unwrap();
    match result {
        Err(DynamoError::TableMismatch { table, message }) => {
            assert_eq!(table, name);
            assert!(message.contains("due"), "{message}");
        }
        other => panic!("a table without the indexes must be TableMismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_after_the_retries() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = DynamoOptions::new("nowhere")
        .with_endpoint_url(format!("http://127.0.0.1:{port}"))
        .with_max_attempts(2);
    let store = DynamoStore::from_sdk_config(&sdk_config().await, options).unwrap();
    match store.get_job(&chill_core::JobId::new()).await {
        Err(e @ StoreError::Unavailable(_)) => assert!(e.is_transient()),
        other => panic!("an unreachable server must be Unavailable, got {other:?}"),
    }
    match store.ensure_table().await {
        Err(DynamoError::Request {
            source: StoreError::Unavailable(_),
            ..
        }) => {}
        other => panic!("provisioning without a server must fail Unavailable, got {other:?}"),
    }
}

#[test]
fn options_are_checked() {
    for (options, field) in [
        (DynamoOptions::new("x"), "table_name"),
        (DynamoOptions::new("has space"), "table_name"),
        (DynamoOptions::default().with_due_buckets(0), "due_buckets"),
        (DynamoOptions::default().with_due_buckets(65), "due_buckets"),
        (
            DynamoOptions::default().with_max_attempts(0),
            "max_attempts",
        ),
        (
            DynamoOptions::default().with_retention(Duration::ZERO),
            "retention",
        ),
    ] {
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .build(),
        );
        match DynamoStore::from_client(client, options) {
            Err(DynamoError::InvalidOption { option, .. }) => assert_eq!(option, field),
            other => panic!("{field}: expected InvalidOption, got {other:?}"),
        }
    }
}
