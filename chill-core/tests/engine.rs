//! The engine's behaviour through its public API, on a [`ManualClock`] inside a current-thread
//! runtime: job CRUD, scheduled and manual runs, the retry table, overlap and catch-up
//! policies, blackouts and windows, crash recovery and fencing, exactly-once across instances,
//! events, graceful shutdown and store outages. Nothing sleeps for real: every wait is on the
//! manual clock, and every outcome is exact.
//!
//! Store calls that wait on the clock (a [`FaultyStore`] with a delay) are only ever awaited in
//! spawned tasks, never by the test task that advances the clock.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chill_core::store::{Finish, FinishOutcome, JobFilter, PageRequest, StatsDelta, Store};
use chill_core::testkit::{Faults, Step};
use chill_core::{
    AiError, AiResponse, Blackout, CatchUpPolicy, ChillOptions, Clock, Error, Event, EventError,
    ExecutionId, ExecutionStatus, JobId, JobPatch, JobSpec, OverlapPolicy, RequestOptions,
    RequestPayload, RetryPolicy, TokenUsage, Trigger,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use ExecutionStatus::{Dead, Failed, Pending, Running, Skipped, Success, Timeout};

mod world;

use world::*;

// --- CRUD ----------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn create_refuses_an_invalid_spec_naming_the_field_and_stores_nothing() {
    let w = World::new();
    let chill = w.engine("a");
    let mut events = chill.subscribe();
    let daily = || spec("p", "@daily");
    let cases = [
        (spec("p", "61 * * * *"), "schedule"),
        (spec("p", "0 0 31 2 *"), "schedule"),
        (JobSpec::new("  ", "p", "@daily"), "name"),
        (
            JobSpec {
                timeout: 0,
                ..daily()
            },
            "timeout",
        ),
        (
            JobSpec {
                timezone: "Mars/Olympus_Mons".into(),
                ..daily()
            },
            "timezone",
        ),
        (
            JobSpec {
                retry_policy: retrying(99, 30),
                ..daily()
            },
            "retryPolicy.maxRetries",
        ),
    ];
    for (spec, field) in cases {
        match chill.create_job(spec).await {
            Err(Error::Validation(e)) => assert_eq!(e.field, field, "{e}"),
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
    let err = chill.create_job(spec("p", "61 * * * *")).await.unwrap_err();
    assert_eq!(err.to_string(), "schedule: minute: 61 is out of range 0-59");

    assert_eq!(w.memory.job_count(), 0);
    let everything = JobFilter {
        include_deleted: true,
        ..JobFilter::default()
    };
    assert!(listed(&chill, everything).await.is_empty());
    assert!(events.try_recv().is_none(), "no event for a refused job");
}

#[tokio::test(flavor = "current_thread")]
async fn get_and_list_with_filters_and_cursor_pages() {
    let w = World::new();
    let chill = w.engine("a");
    let mut ids = Vec::new();
    for i in 0..7 {
        let tags = if i % 2 == 0 {
            vec!["even".into()]
        } else {
            vec![]
        };
        let job = chill
            .create_job(JobSpec {
                tags,
                ..JobSpec::new(format!("report {i}"), format!("prompt {i}"), "@daily")
            })
            .await
            .unwrap();
        ids.push(job.id);
    }
    let got = chill.get_job(&ids[3]).await.unwrap().unwrap();
    assert_eq!((got.name.as_str(), got.version), ("report 3", 1));
    assert_eq!(got.next_run_at, Some(t0() + TimeDelta::days(1)));
    assert_eq!(chill.get_job(&JobId::new()).await.unwrap(), None);

    chill.pause_job(&ids[1], None).await.unwrap();
    chill.pause_job(&ids[2], None).await.unwrap();
    chill.delete_job(&ids[4]).await.unwrap();
    // A run to a status, for the status filter (the engine need not be started for it).
    chill.trigger_job(&ids[3]).await.unwrap();
    settle().await;

    let id = |i: usize| ids[i];
    // Pages of three in creation order; the deleted job is left out; the last page says so.
    assert_eq!(
        pages(&chill, &JobFilter::default(), 3).await,
        vec![vec![id(0), id(1), id(2)], vec![id(3), id(5), id(6)]]
    );
    assert_eq!(
        pages(&chill, &JobFilter::default(), 4).await,
        vec![vec![id(0), id(1), id(2), id(3)], vec![id(5), id(6)]]
    );
    let cases = [
        (
            JobFilter {
                enabled: Some(true),
                ..JobFilter::default()
            },
            vec![id(0), id(3), id(5), id(6)],
        ),
        (
            JobFilter {
                enabled: Some(false),
                ..JobFilter::default()
            },
            vec![id(1), id(2)],
        ),
        (
            JobFilter {
                tag: Some("even".into()),
                ..JobFilter::default()
            },
            vec![id(0), id(2), id(6)],
        ),
        (
            JobFilter {
                tag: Some("even".into()),
                include_deleted: true,
                ..JobFilter::default()
            },
            vec![id(0), id(2), id(4), id(6)],
        ),
        (
            JobFilter {
                name_contains: Some("report 5".into()),
                ..JobFilter::default()
            },
            vec![id(5)],
        ),
        (
            JobFilter {
                last_status: Some(Success),
                ..JobFilter::default()
            },
            vec![id(3)],
        ),
        (
            JobFilter {
                include_deleted: true,
                ..JobFilter::default()
            },
            ids.clone(),
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(listed(&chill, filter.clone()).await, expected, "{filter:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn update_patches_fields_and_update_at_refuses_a_stale_version() {
    let w = World::new();
    let chill = w.engine("a");
    let job = chill
        .create_job(JobSpec {
            tags: vec!["a".into()],
            ..spec("p1", "*/5 * * * *")
        })
        .await
        .unwrap();
    let mut events = chill.subscribe();
    w.run_to(at(1, 0)).await;

    let renamed = JobPatch {
        name: Some("renamed".into()),
        prompt: Some("p2".into()),
        ..JobPatch::default()
    };
    let v2 = chill.update_job(&job.id, &renamed).await.unwrap();
    assert_eq!((v2.name.as_str(), v2.prompt.as_str()), ("renamed", "p2"));
    assert_eq!((v2.version, v2.updated_at), (2, at(1, 0)));
    assert_eq!(v2.tags, vec!["a".to_string()]);
    assert_eq!(
        (v2.schedule.as_str(), v2.next_run_at),
        ("*/5 * * * *", Some(at(5, 0)))
    );
    assert_eq!(w.job(&job.id).await, v2);
    assert_eq!(drain(&mut events), vec![Event::JobUpdated(v2.clone())]);

    // A schedule change computes the next run again.
    let hourly = JobPatch {
        schedule: Some("0 * * * *".into()),
        ..JobPatch::default()
    };
    let v3 = chill.update_job(&job.id, &hourly).await.unwrap();
    assert_eq!((v3.version, v3.next_run_at), (3, Some(at(60, 0))));

    // A write based on version 2 is refused and changes nothing.
    let stale = JobPatch {
        name: Some("stale".into()),
        ..JobPatch::default()
    };
    assert_eq!(
        chill.update_job_at(&job.id, 2, &stale).await,
        Err(Error::VersionConflict {
            id: job.id,
            expected: 2,
            actual: 3
        })
    );
    assert_eq!(w.job(&job.id).await, v3);
    let v4 = chill.update_job_at(&job.id, 3, &stale).await.unwrap();
    assert_eq!((v4.version, v4.name.as_str()), (4, "stale"));

    // An invalid patch names the field and stores nothing.
    let invalid = JobPatch {
        max_turns: Some(0),
        ..JobPatch::default()
    };
    match chill.update_job(&job.id, &invalid).await {
        Err(Error::Validation(e)) => assert_eq!(e.field, "maxTurns"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(w.job(&job.id).await, v4);
    let nobody = JobId::new();
    assert_eq!(
        chill.update_job(&nobody, &stale).await,
        Err(Error::JobNotFound(nobody))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn pause_stops_runs_and_resume_runs_from_the_next_slot_without_catching_up() {
    let w = World::new();
    let (chill, handle, job) = w.start_with(spec("p", "*/5 * * * *")).await;
    w.run_to(at(10, 30)).await;

    let paused = chill
        .pause_job(&job.id, Some("quota exhausted".into()))
        .await
        .unwrap();
    assert!(!paused.enabled);
    assert_eq!(paused.pause_note.as_deref(), Some("quota exhausted"));
    assert_eq!(paused.next_run_at, None);
    w.run_to(at(30, 30)).await;
    assert_eq!(w.executions(&job.id).await.len(), 2, "no run while paused");
    assert_eq!(
        chill.trigger_job(&job.id).await,
        Err(Error::JobNotActive(job.id))
    );

    let resumed = chill.resume_job(&job.id).await.unwrap();
    assert!(resumed.enabled);
    assert_eq!(resumed.pause_note, None);
    assert_eq!(resumed.next_run_at, Some(at(35, 0)));
    w.run_to(at(40, 30)).await;
    assert_eq!(
        w.outcomes(&job.id).await,
        [5, 10, 35, 40].map(|m| success_at(at(m, 0))).to_vec(),
        "the paused slots 15..30 are neither run nor recorded"
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn soft_delete_stops_runs_keeps_history_and_hides_the_job() {
    let w = World::new();
    let (chill, handle, job) = w.start_with(spec("p", "*/5 * * * *")).await;
    w.run_to(at(10, 30)).await;

    let deleted = chill.delete_job(&job.id).await.unwrap();
    assert_eq!(deleted.deleted_at, Some(at(10, 30)));
    assert_eq!((deleted.enabled, deleted.next_run_at), (false, None));
    w.run_to(at(30, 0)).await;

    let history = w.executions(&job.id).await;
    assert_eq!(
        history.iter().map(|e| e.scheduled_for).collect::<Vec<_>>(),
        vec![at(5, 0), at(10, 0)]
    );
    let page = chill
        .list_executions(&job.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2, "history kept");
    assert_eq!(
        chill.get_job(&job.id).await.unwrap().unwrap().deleted_at,
        Some(at(10, 30))
    );
    assert!(listed(&chill, JobFilter::default()).await.is_empty());
    let with_deleted = JobFilter {
        include_deleted: true,
        ..JobFilter::default()
    };
    assert_eq!(listed(&chill, with_deleted).await, vec![job.id]);
    assert_eq!(
        chill.trigger_job(&job.id).await,
        Err(Error::JobNotFound(job.id))
    );
    assert_eq!(
        chill.delete_job(&job.id).await,
        Err(Error::JobNotFound(job.id))
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn purge_removes_the_job_and_its_history() {
    let w = World::new();
    let (chill, handle, job) = w.start_with(spec("p", "*/5 * * * *")).await;
    w.run_to(at(10, 30)).await;
    let first = ExecutionId::for_slot(&job.id, at(5, 0));
    assert_eq!(w.execution(&first).await.status, Success);

    assert_eq!(chill.purge_job(&job.id).await, Ok(true));
    assert_eq!(chill.get_job(&job.id).await.unwrap(), None);
    assert_eq!(chill.get_execution(&first).await.unwrap(), None);
    assert!(w.executions(&job.id).await.is_empty());
    assert_eq!((w.memory.job_count(), w.memory.execution_count()), (0, 0));
    w.run_to(at(30, 0)).await;
    assert_eq!(w.memory.execution_count(), 0, "nothing runs a purged job");
    assert_eq!(chill.purge_job(&job.id).await, Ok(false));
    handle.abort();
}

// --- scheduled and manual runs -------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn a_five_minute_job_runs_twelve_times_an_hour_with_full_records_and_statistics() {
    let w = World::new();
    w.ai.script(
        "report",
        vec![Step {
            latency: secs(7),
            outcome: Ok(AiResponse {
                result: "all green".into(),
                tools_used: vec!["jira".into(), "slack".into()],
                conversation_turns: Some(3),
                metadata: json!({"model": "test"}),
                usage: Some(TokenUsage {
                    input_tokens: 100,
                    output_tokens: 50,
                }),
                model: None,
            }),
        }],
    );
    let (_chill, handle, job) = w
        .start_with(JobSpec {
            system_prompt: Some("be brief".into()),
            max_turns: 4,
            ..spec("report", "*/5 * * * *")
        })
        .await;
    assert_eq!(job.next_run_at, Some(at(5, 0)));
    w.run_to(at(61, 0)).await;

    let runs = w.executions(&job.id).await;
    assert_eq!(runs.len(), 12);
    let payload = RequestPayload {
        prompt: "report".into(),
        system_prompt: Some("be brief".into()),
        options: RequestOptions { max_turns: 4 },
    };
    for (n, e) in (1..=12).zip(&runs) {
        let slot = at(5 * n, 0);
        assert_eq!(e.id, ExecutionId::for_slot(&job.id, slot));
        assert_eq!(
            (e.scheduled_for, e.due_at, e.started_at),
            (slot, slot, slot)
        );
        assert_eq!(e.completed_at, Some(slot + TimeDelta::seconds(7)));
        assert_eq!((e.status, e.trigger), (Success, Trigger::Scheduled));
        assert_eq!(
            (e.attempt, e.retry_count, e.root_execution_id),
            (1, 0, e.id)
        );
        assert_eq!(e.request_payload, payload);
        let response = e.response.as_ref().unwrap();
        assert_eq!(response.result, "all green");
        assert_eq!(response.tools_used, vec!["jira", "slack"]);
        assert_eq!(response.conversation_turns, Some(3));
        assert_eq!(response.metadata, json!({"model": "test"}));
        assert_eq!(e.tools_executed_count, 2);
        assert_eq!(
            (e.tokens_used, e.input_tokens, e.output_tokens),
            (Some(150), Some(100), Some(50))
        );
        assert_eq!(
            (e.duration_ms, e.api_latency_ms),
            (Some(7_000), Some(7_000))
        );
        assert_eq!(
            (&e.error_type, &e.error_message, e.lease_expires_at),
            (&None, &None, None)
        );
        assert_eq!(e.lease_owner.as_deref(), Some("a"));
    }
    let calls: Vec<DateTime<Utc>> = w.ai.calls().iter().map(|c| c.at).collect();
    assert_eq!(calls, (1..=12).map(|n| at(5 * n, 0)).collect::<Vec<_>>());

    let stats = w.job(&job.id).await;
    assert_eq!(
        (stats.total_runs, stats.success_count, stats.failure_count),
        (12, 12, 0)
    );
    assert_eq!(
        (stats.average_duration, stats.total_duration_ms),
        (Some(7_000), 84_000)
    );
    assert_eq!(
        (
            stats.last_run_at,
            stats.last_run_status,
            stats.last_run_duration
        ),
        (Some(at(60, 0)), Some(Success), Some(7_000))
    );
    assert_eq!(stats.last_run_error, None);
    assert_eq!(
        (
            stats.total_input_tokens,
            stats.total_output_tokens,
            stats.total_tokens
        ),
        (1_200, 600, 1_800)
    );
    assert_eq!(
        (stats.next_run_at, stats.running_count),
        (Some(at(65, 0)), 0)
    );
    // Each claim moves `nextRunAt`, so it counts as a change (see `Store::claim_slots`).
    assert_eq!(stats.version, job.version + 12);
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_manual_trigger_returns_at_once_runs_and_is_refused_while_running_under_skip() {
    let w = World::new();
    w.ai.script("manual", vec![ok_after(30)]);
    let (chill, handle, job) = w.start_with(spec("manual", "0 0 1 1 *")).await;
    w.run_to(at(1, 0)).await;

    let id = chill.trigger_job(&job.id).await.unwrap();
    assert_eq!(
        w.clock.now(),
        at(1, 0),
        "returned without waiting for the AI"
    );
    let e = chill.get_execution(&id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.trigger, e.attempt),
        (Running, Trigger::Manual, 1)
    );
    assert_eq!((e.scheduled_for, e.started_at), (at(1, 0), at(1, 0)));
    assert_eq!(e.lease_owner.as_deref(), Some("a"));
    settle().await;
    assert_eq!(w.ai.calls_for("manual").len(), 1);
    assert_eq!(w.ai.calls()[0].execution_id, id);

    assert_eq!(chill.trigger_job(&job.id).await, Err(Error::Busy(job.id)));
    w.run_to(at(1, 30)).await;
    let e = w.execution(&id).await;
    assert_eq!(
        (e.status, e.completed_at, e.duration_ms),
        (Success, Some(at(1, 30)), Some(30_000))
    );
    assert_eq!(w.job(&job.id).await.total_runs, 1);

    // Once the run ended, another is accepted.
    let again = chill.trigger_job(&job.id).await.unwrap();
    w.run_to(at(2, 0)).await;
    assert_eq!(w.execution(&again).await.status, Success);
    assert_eq!(w.executions(&job.id).await.len(), 2);
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_manual_trigger_runs_alongside_under_allow_and_is_refused_for_a_paused_job() {
    let w = World::new();
    w.ai.script("manual", vec![ok_after(30)]);
    let (chill, handle, job) = w
        .start_with(JobSpec {
            overlap_policy: OverlapPolicy::Allow,
            ..spec("manual", "0 0 1 1 *")
        })
        .await;
    let first = chill.trigger_job(&job.id).await.unwrap();
    let second = chill.trigger_job(&job.id).await.unwrap();
    settle().await;
    assert_ne!(first, second);
    assert_eq!(w.ai.calls_for("manual").len(), 2, "both calls in flight");
    assert_eq!(w.job(&job.id).await.running_count, 2);
    assert_eq!(chill.running_executions(), 2);
    w.run_to(at(0, 30)).await;
    for id in [first, second] {
        assert_eq!(w.execution(&id).await.status, Success);
    }
    assert_eq!(w.job(&job.id).await.running_count, 0);

    chill.pause_job(&job.id, None).await.unwrap();
    assert_eq!(
        chill.trigger_job(&job.id).await,
        Err(Error::JobNotActive(job.id))
    );
    handle.abort();
}

// --- the retry table -----------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn server_errors_are_retried_with_exponential_backoff_until_success() {
    let w = World::new();
    w.ai.script(
        "flaky",
        vec![server_error(), server_error(), Step::ok("fine")],
    );
    let (_chill, handle, job) = w
        .start_with(retried_spec("flaky", "5 0 * * *", 3, 10))
        .await;
    w.run_to(at(10, 0)).await;

    let chain = w.executions(&job.id).await;
    let shape: Vec<_> = chain
        .iter()
        .map(|e| (e.attempt, e.status, e.trigger, e.retry_count))
        .collect();
    assert_eq!(
        shape,
        vec![
            (1, Failed, Trigger::Scheduled, 0),
            (2, Failed, Trigger::Retry, 1),
            (3, Success, Trigger::Retry, 2)
        ]
    );
    let root = ExecutionId::for_slot(&job.id, at(5, 0));
    for (n, e) in (1..).zip(&chain) {
        assert_eq!(e.id, ExecutionId::for_attempt(&root, n));
        assert_eq!((e.root_execution_id, e.scheduled_for), (root, at(5, 0)));
    }
    assert_eq!(chain[0].error_type.as_deref(), Some("server_error"));
    assert_eq!(
        chain[0].error_message.as_deref(),
        Some("server error 503: unavailable")
    );
    assert_eq!(
        chain[0].error_details,
        Some(json!({"kind": "server_error", "status": 503}))
    );
    let calls = w.ai.calls_for("flaky");
    assert_eq!(calls.len(), 3);
    for n in 1..3 {
        let (previous, attempt) = (&chain[n - 1], &chain[n]);
        // Retry n waits retryDelay * 2^(n-1), plus at most a fifth of it as jitter.
        let backoff = TimeDelta::seconds(10 << (n - 1));
        let failed_at = previous.completed_at.unwrap();
        assert!(
            attempt.due_at >= failed_at + backoff && attempt.due_at <= failed_at + backoff * 6 / 5,
            "attempt {} due {} after failing at {failed_at}",
            n + 1,
            attempt.due_at
        );
        assert_eq!(
            attempt.started_at, attempt.due_at,
            "claimed when due, not before"
        );
        assert_eq!(
            (calls[n].at, calls[n].execution_id),
            (attempt.due_at, attempt.id)
        );
    }
    let stats = w.job(&job.id).await;
    assert_eq!(
        (stats.total_runs, stats.success_count, stats.failure_count),
        (3, 1, 2)
    );
    assert_eq!(
        (stats.last_run_status, stats.last_run_error),
        (Some(Success), None)
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_rate_limited_call_is_retried_after_retry_after() {
    let w = World::new();
    w.ai.script(
        "limited",
        vec![
            Step::err(AiError::RateLimited {
                retry_after: Some(secs(2)),
                message: "slow down".into(),
            }),
            Step::ok("fine"),
        ],
    );
    let (_chill, handle, job) = w
        .start_with(retried_spec("limited", "5 0 * * *", 3, 60))
        .await;
    w.run_to(at(6, 0)).await;

    let chain = w.executions(&job.id).await;
    assert_eq!(attempts(&chain), vec![(1, Failed), (2, Success)]);
    assert_eq!(chain[0].error_type.as_deref(), Some("rate_limited"));
    assert_eq!(
        chain[0].error_details,
        Some(json!({"kind": "rate_limited", "retryAfterSecs": 2}))
    );
    let failed_at = chain[0].completed_at.unwrap();
    assert_eq!(failed_at, at(5, 0));
    // Retry-After, not the 60 s backoff; and not a moment earlier.
    assert_eq!(chain[1].due_at, failed_at + TimeDelta::seconds(2));
    assert_eq!(chain[1].started_at, chain[1].due_at);
    assert_eq!(w.ai.calls_for("limited")[1].at, at(5, 2));
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn invalid_requests_and_api_errors_fail_without_retry() {
    let w = World::new();
    w.ai.script(
        "bad",
        vec![Step::err(AiError::InvalidRequest {
            status: Some(400),
            message: "prompt too long".into(),
        })],
    );
    w.ai.script(
        "api",
        vec![Step::err(AiError::Api {
            message: "tool failed".into(),
            details: Some(json!({"code": "tool_error"})),
        })],
    );
    let chill = w.engine("a");
    let handle = chill.start();
    let mut jobs = Vec::new();
    for prompt in ["bad", "api"] {
        let job = chill
            .create_job(retried_spec(prompt, "5 0 * * *", 3, 5))
            .await
            .unwrap();
        jobs.push(job.id);
    }
    w.run_to(at(60, 0)).await;

    let expected = [
        (
            "bad",
            "invalid_request",
            json!({"kind": "invalid_request", "status": 400}),
        ),
        (
            "api",
            "api_error",
            json!({"kind": "api_error", "error": {"code": "tool_error"}}),
        ),
    ];
    for (job, (prompt, kind, details)) in jobs.iter().zip(expected) {
        let chain = w.executions(job).await;
        assert_eq!(chain.len(), 1, "{prompt}: no retry");
        assert_eq!(chain[0].status, Failed);
        assert_eq!(chain[0].error_type.as_deref(), Some(kind));
        assert_eq!(chain[0].error_details, Some(details));
        assert_eq!(w.ai.calls_for(prompt).len(), 1);
        let stats = w.job(job).await;
        assert_eq!(
            (stats.failure_count, stats.last_run_status),
            (1, Some(Failed))
        );
        assert_eq!(stats.last_run_error, chain[0].error_message);
    }
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_answer_times_out_and_is_retried_only_when_the_policy_says_so() {
    let w = World::new();
    w.ai.script("slow", vec![ok_after(120)]);
    w.ai.script("slow-retried", vec![ok_after(120), ok_after(1)]);
    let chill = w.engine("a");
    let handle = chill.start();
    let plain = chill
        .create_job(JobSpec {
            timeout: 60,
            retry_policy: retrying(3, 10),
            ..spec("slow", "5 0 * * *")
        })
        .await
        .unwrap();
    let retried = chill
        .create_job(JobSpec {
            timeout: 60,
            retry_policy: RetryPolicy {
                retry_on_timeout: true,
                ..retrying(3, 10)
            },
            ..spec("slow-retried", "5 0 * * *")
        })
        .await
        .unwrap();
    w.run_to(at(30, 0)).await;

    let chain = w.executions(&plain.id).await;
    assert_eq!(chain.len(), 1, "a timeout is not retried by default");
    let e = &chain[0];
    assert_eq!(
        (e.status, e.error_type.as_deref()),
        (Timeout, Some("timeout"))
    );
    assert_eq!(
        e.error_details,
        Some(json!({"kind": "timeout", "timeoutSecs": 60}))
    );
    assert_eq!(
        (e.completed_at, e.duration_ms),
        (Some(at(6, 0)), Some(60_000))
    );
    assert_eq!(e.response, None);

    let chain = w.executions(&retried.id).await;
    assert_eq!(attempts(&chain), vec![(1, Timeout), (2, Success)]);
    assert!(chain[1].due_at >= at(6, 10));
    assert_eq!(chain[1].started_at, chain[1].due_at);
    let stats = w.job(&retried.id).await;
    assert_eq!((stats.total_runs, stats.failure_count), (2, 1));
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn exhausted_attempts_end_dead_with_the_whole_chain_kept() {
    let w = World::new();
    w.ai.script("down", vec![server_error()]);
    let (_chill, handle, job) = w.start_with(retried_spec("down", "5 0 * * *", 2, 5)).await;
    w.run_to(at(30, 0)).await;

    let chain = w.executions(&job.id).await;
    let root = ExecutionId::for_slot(&job.id, at(5, 0));
    assert_eq!(
        chain
            .iter()
            .map(|e| (e.attempt, e.status, e.root_execution_id))
            .collect::<Vec<_>>(),
        vec![(1, Failed, root), (2, Failed, root), (3, Dead, root)]
    );
    assert_eq!(chain[2].error_type.as_deref(), Some("server_error"));
    assert_eq!(w.ai.calls_for("down").len(), 3);
    let stats = w.job(&job.id).await;
    assert_eq!(
        (stats.total_runs, stats.failure_count, stats.last_run_status),
        (3, 3, Some(Dead))
    );
    handle.abort();
}

// --- overlap -------------------------------------------------------------------------------

/// A job every minute whose first run takes 150 s and later ones 10 s, run to 05:30.
async fn overlapping(policy: OverlapPolicy) -> (World, JobId) {
    let w = World::new();
    w.ai.script("long", vec![ok_after(150), ok_after(10)]);
    let (_chill, handle, job) = w
        .start_with(JobSpec {
            overlap_policy: policy,
            ..spec("long", "* * * * *")
        })
        .await;
    w.run_to(at(2, 30)).await;
    if policy == OverlapPolicy::BufferOne {
        let buffered = ExecutionId::for_slot(&job.id, at(2, 0));
        assert_eq!(w.execution(&buffered).await.status, Pending);
        assert_eq!(w.job(&job.id).await.buffered_execution_id, Some(buffered));
    }
    w.run_to(at(5, 30)).await;
    handle.abort();
    (w, job.id)
}

#[tokio::test(flavor = "current_thread")]
async fn overlap_skip_records_the_overlapping_slots_as_skipped() {
    let (w, job) = overlapping(OverlapPolicy::Skip).await;
    assert_eq!(
        w.outcomes(&job).await,
        vec![
            success_at(at(1, 0)),
            skipped_at(at(2, 0), "overlap"),
            skipped_at(at(3, 0), "overlap"),
            success_at(at(4, 0)),
            success_at(at(5, 0)),
        ]
    );
    let skipped = w.execution(&ExecutionId::for_slot(&job, at(2, 0))).await;
    assert_eq!(
        skipped.error_message.as_deref(),
        Some("a run was in progress and the overlap policy is skip")
    );
    assert_eq!(
        (
            skipped.started_at,
            skipped.completed_at,
            skipped.duration_ms
        ),
        (at(2, 0), Some(at(2, 0)), Some(0))
    );
    assert_eq!(w.ai.calls().len(), 3);
    assert_eq!(
        w.job(&job).await.total_runs,
        3,
        "skipped slots are not runs"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn overlap_buffer_one_runs_one_waiting_slot_when_the_run_ends() {
    let (w, job) = overlapping(OverlapPolicy::BufferOne).await;
    assert_eq!(
        w.outcomes(&job).await,
        vec![
            success_at(at(1, 0)),
            success_at(at(2, 0)),
            skipped_at(at(3, 0), "overlap"),
            success_at(at(4, 0)),
            success_at(at(5, 0)),
        ]
    );
    let buffered = w.execution(&ExecutionId::for_slot(&job, at(2, 0))).await;
    assert_eq!(
        (buffered.started_at, buffered.completed_at),
        (at(3, 30), Some(at(3, 40))),
        "started as the first run ended"
    );
    let calls: Vec<_> = w.ai.calls().iter().map(|c| c.at).collect();
    assert_eq!(calls, vec![at(1, 0), at(3, 30), at(4, 0), at(5, 0)]);
    let stats = w.job(&job).await;
    assert_eq!(
        (stats.buffered_execution_id, stats.running_count),
        (None, 0)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn overlap_allow_runs_overlapping_slots_concurrently() {
    let w = World::new();
    w.ai.script("long", vec![ok_after(150)]);
    let (chill, handle, job) = w
        .start_with(JobSpec {
            overlap_policy: OverlapPolicy::Allow,
            ..spec("long", "* * * * *")
        })
        .await;
    w.run_to(at(3, 10)).await;
    assert_eq!(w.job(&job.id).await.running_count, 3);
    assert_eq!(chill.running_executions(), 3);
    assert_eq!(
        w.outcomes(&job.id).await,
        [1, 2, 3].map(|m| (at(m, 0), Running, None)).to_vec()
    );
    w.run_to(at(5, 40)).await;
    let done: Vec<_> = w.executions(&job.id).await.into_iter().take(3).collect();
    for (m, e) in (1..).zip(&done) {
        assert_eq!(e.status, Success);
        assert_eq!(
            (e.started_at, e.completed_at),
            (at(m, 0), Some(at(m + 2, 30)))
        );
    }
    assert_eq!(max_concurrency(&done), 3);
    handle.abort();
}

// --- catch-up after downtime ---------------------------------------------------------------

/// Create jobs on a stopped engine, let two hours and two minutes pass, start it.
async fn after_downtime(specs: Vec<JobSpec>, options: ChillOptions) -> (World, Vec<JobId>) {
    let w = World::new();
    w.ai.set_default(ok_after(0));
    let chill = w.engine_on(w.store(), options);
    let mut ids = Vec::new();
    for spec in specs {
        ids.push(chill.create_job(spec).await.unwrap().id);
    }
    w.run_to(at(122, 0)).await;
    let handle = chill.start();
    w.run_to(at(124, 30)).await;
    handle.abort();
    (w, ids)
}

#[tokio::test(flavor = "current_thread")]
async fn catch_up_skip_missed_runs_the_recent_slots_and_records_the_old_ones() {
    let specs = vec![JobSpec {
        catch_up_window: 900,
        overlap_policy: OverlapPolicy::Allow,
        ..spec("p", "*/5 * * * *")
    }];
    let (w, ids) = after_downtime(specs, options("a")).await;
    let executions = w.executions(&ids[0]).await;
    assert_eq!(executions.len(), 24);
    for (n, e) in (1..).zip(&executions) {
        let slot = at(5 * n, 0);
        assert_eq!(e.scheduled_for, slot);
        if n >= 22 {
            // 01:50, 01:55, 02:00 are at most 15 minutes late at 02:02.
            assert_eq!((e.status, e.started_at), (Success, at(122, 0)), "{slot}");
        } else {
            assert_eq!(
                (e.status, e.error_type.as_deref()),
                (Skipped, Some("missed"))
            );
            let late = (at(122, 0) - slot).num_seconds();
            assert_eq!(
                e.error_message.as_deref(),
                Some(format!("missed by {late}s, more than the catch-up window of 900s").as_str())
            );
        }
    }
    assert_eq!(w.job(&ids[0]).await.next_run_at, Some(at(125, 0)));
}

#[tokio::test(flavor = "current_thread")]
async fn catch_up_run_once_runs_only_the_latest_slot_across_claims() {
    // 122 missed slots, more than one claim holds (25): still exactly one run, the latest.
    let specs = vec![JobSpec {
        catch_up_policy: CatchUpPolicy::RunOnce,
        ..spec("p", "* * * * *")
    }];
    let (w, ids) = after_downtime(specs, options("a")).await;
    let executions = w.executions(&ids[0]).await;
    // Slots 00:01 .. 02:04: 122 missed or run at 02:02, then 02:03 and 02:04 on time.
    assert_eq!(executions.len(), 124);
    let runs: Vec<_> = executions
        .iter()
        .filter(|e| e.status == Success)
        .map(|e| (e.scheduled_for, e.started_at))
        .collect();
    assert_eq!(
        runs,
        vec![
            (at(122, 0), at(122, 0)),
            (at(123, 0), at(123, 0)),
            (at(124, 0), at(124, 0))
        ]
    );
    assert!(
        executions[..121]
            .iter()
            .all(|e| e.status == Skipped && e.error_type.as_deref() == Some("missed"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn catch_up_run_all_runs_every_slot_subject_to_overlap() {
    let run_all = |policy| JobSpec {
        catch_up_policy: CatchUpPolicy::RunAll,
        overlap_policy: policy,
        ..spec("p", "*/5 * * * *")
    };
    let specs = vec![run_all(OverlapPolicy::Allow), run_all(OverlapPolicy::Skip)];
    let (w, ids) = after_downtime(specs, options("a")).await;
    let slots = (1..=24).map(|n| at(5 * n, 0));
    assert_eq!(
        w.outcomes(&ids[0]).await,
        slots.clone().map(success_at).collect::<Vec<_>>()
    );
    let skip = w.outcomes(&ids[1]).await;
    assert_eq!(skip[0], success_at(at(5, 0)));
    assert_eq!(
        skip[1..].to_vec(),
        slots
            .skip(1)
            .map(|s| skipped_at(s, "overlap"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_global_concurrency_limit_caps_runs_and_catch_up_still_completes() {
    let w = World::new();
    w.ai.set_default(ok_after(10));
    let chill = w.engine_on(w.store(), options("a").with_max_concurrent(2));
    let job = chill
        .create_job(JobSpec {
            catch_up_policy: CatchUpPolicy::RunAll,
            overlap_policy: OverlapPolicy::Allow,
            ..spec("p", "*/5 * * * *")
        })
        .await
        .unwrap();
    w.run_to(at(122, 0)).await;
    let handle = chill.start();
    w.run_to(at(124, 30)).await;
    assert_eq!(
        w.outcomes(&job.id).await,
        (1..=24)
            .map(|n| success_at(at(5 * n, 0)))
            .collect::<Vec<_>>()
    );
    let executions = w.executions(&job.id).await;
    assert_eq!(max_concurrency(&executions), 2);
    // Two at a time, ten seconds each: the last pair ends two minutes after the start.
    let last = executions.iter().filter_map(|e| e.completed_at).max();
    assert_eq!(last, Some(at(124, 0)));
    handle.abort();
}

// --- blackouts, windows, one-shot ----------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn slots_in_a_blackout_are_recorded_as_skipped_with_the_reason() {
    let w = World::new();
    let (_chill, handle, job) = w
        .start_with(JobSpec {
            blackout_periods: vec![Blackout {
                start: at(20, 0),
                end: at(35, 0),
                reason: Some("release freeze".into()),
            }],
            ..spec("p", "*/5 * * * *")
        })
        .await;
    w.run_to(at(45, 30)).await;
    let outcomes = w.outcomes(&job.id).await;
    let expected: Vec<_> = (1..=9)
        .map(|n| {
            let slot = at(5 * n, 0);
            if (4..=6).contains(&n) {
                skipped_at(slot, "blackout")
            } else {
                success_at(slot)
            }
        })
        .collect();
    assert_eq!(outcomes, expected, "start inclusive, end exclusive");
    let skipped = w
        .execution(&ExecutionId::for_slot(&job.id, at(20, 0)))
        .await;
    assert_eq!(
        skipped.error_message.as_deref(),
        Some("inside a blackout period (release freeze)")
    );
    assert_eq!(w.ai.calls().len(), 6);
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn the_window_bounds_the_runs_and_a_one_shot_runs_once() {
    let w = World::new();
    let chill = w.engine("a");
    let windowed = chill
        .create_job(JobSpec {
            start_date: Some(at(30, 0)),
            end_date: Some(at(50, 0)),
            ..spec("windowed", "*/10 * * * *")
        })
        .await
        .unwrap();
    assert_eq!(windowed.next_run_at, Some(at(30, 0)));
    let once = chill
        .create_job(spec("once", "at(2026-06-01T00:30:00)"))
        .await
        .unwrap();
    assert_eq!(once.next_run_at, Some(at(30, 0)));
    let handle = chill.start();
    w.run_to(at(180, 0)).await;

    assert_eq!(
        w.outcomes(&windowed.id).await,
        [30, 40, 50].map(|m| success_at(at(m, 0))).to_vec()
    );
    assert_eq!(w.outcomes(&once.id).await, vec![success_at(at(30, 0))]);
    for id in [windowed.id, once.id] {
        assert_eq!(w.job(&id).await.next_run_at, None);
    }
    handle.abort();
}

// --- crash recovery and fencing -------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn a_crashed_instance_execution_is_recovered_by_another_and_retried() {
    let w = World::new();
    w.ai.script("crash", vec![ok_after(600), Step::ok("second try")]);
    let a = w.engine("a");
    let job = a
        .create_job(retried_spec("crash", "30 0 * * *", 3, 10))
        .await
        .unwrap();
    let handle_a = a.start();
    w.run_to(at(30, 1)).await;
    let root = ExecutionId::for_slot(&job.id, at(30, 0));
    let running = w.execution(&root).await;
    assert_eq!(running.status, Running);
    assert_eq!(
        (running.lease_owner.as_deref(), running.lease_expires_at),
        (Some("a"), Some(at(30, 30)))
    );
    let b = w.engine("b");
    let handle_b = b.start();
    w.run_to(at(30, 5)).await;
    handle_a.abort();

    // Not before the lease expires...
    w.run_to(at(30, 30)).await;
    assert_eq!(w.execution(&root).await.status, Running);
    // ...and no later than the next recovery round after it.
    w.run_to(at(30, 45)).await;
    let recovered = w.execution(&root).await;
    assert_eq!(recovered.status, Failed);
    assert_eq!(recovered.error_type.as_deref(), Some("lease_expired"));
    assert_eq!(recovered.completed_at, Some(at(30, 31)));
    assert!(
        recovered
            .error_message
            .as_deref()
            .unwrap()
            .starts_with("the lease of instance 'a' expired"),
        "{:?}",
        recovered.error_message
    );

    w.run_to(at(32, 0)).await;
    let chain = w.executions(&job.id).await;
    assert_eq!(
        chain
            .iter()
            .map(|e| (e.attempt, e.status, e.trigger, e.lease_owner.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            (1, Failed, Trigger::Scheduled, Some("a")),
            (2, Success, Trigger::Retry, Some("b"))
        ]
    );
    assert!(chain[1].due_at >= at(30, 41));
    assert_eq!(w.ai.calls_for("crash").len(), 2);
    let stats = w.job(&job.id).await;
    assert_eq!(
        (
            stats.total_runs,
            stats.success_count,
            stats.failure_count,
            stats.running_count
        ),
        (2, 1, 1, 0)
    );

    // Fencing: the crashed instance can neither renew nor finish the recovered execution.
    assert_eq!(w.memory.renew_lease(&root, "a", at(40, 0)).await, Ok(false));
    let mut late = recovered.clone();
    late.status = Success;
    late.error_type = None;
    let zombie = Finish {
        stats: StatsDelta {
            status: Success,
            counted: true,
            duration_ms: 600_000,
            error: None,
            input_tokens: 0,
            output_tokens: 0,
            cost_micro_usd: 0,
            completed_at: at(40, 0),
        },
        execution: late,
        owner: "a".into(),
        expired_by: None,
        next_attempt: None,
        promote: None,
    };
    assert_eq!(w.memory.finish(&zombie).await, Ok(FinishOutcome::Fenced));
    assert_eq!(w.execution(&root).await, recovered);
    assert_eq!(w.job(&job.id).await, stats);
    handle_b.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_zombie_instance_cannot_overwrite_an_execution_recovered_elsewhere() {
    let w = World::new();
    w.ai.script("zombie", vec![ok_after(60), Step::ok("retried")]);
    // Instance a reaches the store through a link that will fail; b directly.
    let link = w.faulty(Faults::NONE, 1);
    let a = w.engine_on(link.clone(), options("a"));
    let mut a_events = a.subscribe();
    let job = a
        .create_job(retried_spec("zombie", "30 0 * * *", 3, 10))
        .await
        .unwrap();
    let handle_a = a.start();
    w.run_to(at(30, 1)).await;
    let handle_b = w.engine("b").start();
    w.run_to(at(30, 5)).await;
    link.set_down(true);
    // a cannot renew its lease; b recovers the execution and runs the retry.
    w.run_to(at(31, 0)).await;
    let root = ExecutionId::for_slot(&job.id, at(30, 0));
    let recovered = w.execution(&root).await;
    assert_eq!(
        (recovered.status, recovered.error_type.as_deref()),
        (Failed, Some("lease_expired"))
    );
    // a's AI call answered at 00:31:00; its finish waits for the store. Bring it back.
    w.run_to(at(32, 0)).await;
    link.set_down(false);
    w.run_to(at(34, 0)).await;

    assert_eq!(
        w.execution(&root).await,
        recovered,
        "the zombie wrote nothing"
    );
    let chain = w.executions(&job.id).await;
    assert_eq!(
        chain
            .iter()
            .map(|e| (e.attempt, e.status, e.lease_owner.as_deref()))
            .collect::<Vec<_>>(),
        vec![(1, Failed, Some("a")), (2, Success, Some("b"))]
    );
    let stats = w.job(&job.id).await;
    assert_eq!((stats.total_runs, stats.running_count), (2, 0));
    let finished: Vec<_> = drain(&mut a_events)
        .into_iter()
        .filter(|e| matches!(e, Event::ExecutionFinished(_)))
        .collect();
    assert!(finished.is_empty(), "a reported a finish: {finished:?}");
    handle_a.abort();
    handle_b.abort();
}

// --- exactly once across instances ---------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn three_instances_run_every_slot_of_twenty_jobs_exactly_once() {
    twenty_jobs_on_three_instances([(Duration::ZERO, 100); 3]).await;
}

#[tokio::test(flavor = "current_thread")]
async fn instances_with_and_without_claim_ahead_run_every_slot_exactly_once_never_early() {
    // The instances claiming ahead take five slots each per minute (their concurrency
    // limit); the one claiming when due takes the rest.
    twenty_jobs_on_three_instances([(secs(3), 5), (Duration::ZERO, 100), (secs(20), 5)]).await;
}

/// Twenty jobs running every minute for an hour on three instances (each with its claim-ahead
/// and concurrency limit) that race through store latency: every slot runs once, with one AI
/// call, never before its due time, and every instance takes part.
async fn twenty_jobs_on_three_instances(instances: [(Duration, usize); 3]) {
    let w = World::new();
    w.ai.set_default(ok_after(5));
    let admin = w.engine("admin");
    let mut jobs = Vec::new();
    for i in 0..20 {
        jobs.push(
            admin
                .create_job(spec(&format!("job {i}"), "* * * * *"))
                .await
                .unwrap()
                .id,
        );
    }
    // Each instance sees the store with its own random latency, so that they race.
    let latency = Faults {
        max_latency: Duration::from_millis(300),
        ..Faults::NONE
    };
    let handles: Vec<_> = (0..3)
        .map(|n| {
            let store = w.faulty(latency, 100 + n);
            let (claim_ahead, max_concurrent) = instances[n as usize];
            let options = options(&format!("i{n}"))
                .with_seed(Some(n))
                .with_claim_ahead(claim_ahead)
                .with_max_concurrent(max_concurrent);
            w.engine_on(store, options).start()
        })
        .collect();
    w.run_to(at(60, 30)).await;

    let mut executions = Vec::new();
    for job in &jobs {
        let all = w.executions(job).await;
        let slots: Vec<_> = all.iter().map(|e| (e.id, e.status, e.attempt)).collect();
        let expected: Vec<_> = (1..=60)
            .map(|m| (ExecutionId::for_slot(job, at(m, 0)), Success, 1))
            .collect();
        assert_eq!(slots, expected);
        executions.extend(all);
    }
    let calls = w.ai.calls();
    assert_eq!(calls.len(), 1_200, "one AI call per execution");
    let called: HashSet<ExecutionId> = calls.iter().map(|c| c.execution_id).collect();
    let ran: HashSet<ExecutionId> = executions.iter().map(|e| e.id).collect();
    assert_eq!(called, ran);
    let due: BTreeMap<ExecutionId, DateTime<Utc>> =
        executions.iter().map(|e| (e.id, e.due_at)).collect();
    for call in &calls {
        assert!(call.at >= due[&call.execution_id], "called early: {call:?}");
    }
    let mut per_owner: BTreeMap<String, usize> = BTreeMap::new();
    for e in &executions {
        *per_owner.entry(e.lease_owner.clone().unwrap()).or_default() += 1;
    }
    assert!(
        per_owner.len() == 3 && per_owner.keys().all(|o| o.starts_with('i')),
        "every instance took part: {per_owner:?}"
    );
    for handle in handles {
        handle.abort();
    }
}

// --- events --------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn events_report_job_changes_and_every_step_of_an_execution() {
    let w = World::new();
    w.ai.script("evented", vec![server_error(), ok_after(90)]);
    let chill = w.engine("a");
    let mut events = chill.subscribe();
    let created = chill
        .create_job(retried_spec("evented", "* * * * *", 3, 5))
        .await
        .unwrap();
    let id = created.id;
    let renamed = JobPatch {
        name: Some("renamed".into()),
        ..JobPatch::default()
    };
    let updated = chill.update_job(&id, &renamed).await.unwrap();
    let paused = chill.pause_job(&id, Some("hold".into())).await.unwrap();
    let resumed = chill.resume_job(&id).await.unwrap();
    assert_eq!(
        drain(&mut events),
        vec![
            Event::JobCreated(created),
            Event::JobUpdated(updated),
            Event::JobPaused(paused),
            Event::JobResumed(resumed)
        ]
    );

    // 00:01 fails and schedules a retry; the retry runs 90 s; 00:02 overlaps it.
    let handle = chill.start();
    w.run_to(at(2, 40)).await;
    let root = ExecutionId::for_slot(&id, at(1, 0));
    let retry = ExecutionId::for_attempt(&root, 2);
    let overlapped = ExecutionId::for_slot(&id, at(2, 0));
    let steps = |events: &[Event]| -> Vec<(&'static str, ExecutionId, ExecutionStatus)> {
        events
            .iter()
            .map(|e| match e {
                Event::ExecutionStarted(x) => ("started", x.id, x.status),
                Event::ExecutionFinished(x) => ("finished", x.id, x.status),
                Event::ExecutionSkipped(x) => ("skipped", x.id, x.status),
                Event::RetryScheduled(x) => ("retry", x.id, x.status),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    let seen = drain(&mut events);
    assert_eq!(
        steps(&seen),
        vec![
            ("started", root, Running),
            ("finished", root, Failed),
            ("retry", retry, Pending),
            ("started", retry, Running),
            ("skipped", overlapped, Skipped),
            ("finished", retry, Success),
        ]
    );
    // The payloads are the records: a finish carries the final execution.
    let Event::ExecutionFinished(finished) = &seen[5] else {
        panic!("{seen:?}");
    };
    assert_eq!(*finished, w.execution(&retry).await);
    let Event::RetryScheduled(scheduled) = &seen[2] else {
        panic!("{seen:?}");
    };
    assert_eq!((scheduled.attempt, scheduled.trigger), (2, Trigger::Retry));
    assert_eq!(scheduled.due_at, w.execution(&retry).await.due_at);

    // A manual run at 00:02:40 takes 90 s; the slots 00:03 and 00:04 overlap it.
    let manual = chill.trigger_job(&id).await.unwrap();
    w.run_to(at(4, 30)).await;
    assert_eq!(
        steps(&drain(&mut events)),
        vec![
            ("started", manual, Running),
            ("skipped", ExecutionId::for_slot(&id, at(3, 0)), Skipped),
            ("skipped", ExecutionId::for_slot(&id, at(4, 0)), Skipped),
            ("finished", manual, Success),
        ]
    );
    handle.abort();

    chill.delete_job(&id).await.unwrap();
    chill.purge_job(&id).await.unwrap();
    assert_eq!(
        drain(&mut events),
        vec![
            Event::JobDeleted {
                job_id: id,
                hard: false
            },
            Event::JobDeleted {
                job_id: id,
                hard: true
            }
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_subscriber_lags_and_never_blocks_the_engine() {
    let w = World::new();
    let chill = w.engine_on(w.store(), options("a").with_event_capacity(4));
    let job = chill.create_job(spec("p", "* * * * *")).await.unwrap();
    let mut slow = chill.subscribe();
    let handle = chill.start();
    w.run_to(at(10, 30)).await;

    // Ten runs, two events each, all while nobody read.
    let executions = w.executions(&job.id).await;
    assert_eq!(
        executions.iter().map(|e| e.status).collect::<Vec<_>>(),
        vec![Success; 10]
    );
    assert_eq!(slow.recv().await, Err(EventError::Lagged(16)));
    let kept: Vec<(bool, DateTime<Utc>)> = drain(&mut slow)
        .iter()
        .map(|e| match e {
            Event::ExecutionStarted(x) => (true, x.scheduled_for),
            Event::ExecutionFinished(x) => (false, x.scheduled_for),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            (true, at(9, 0)),
            (false, at(9, 0)),
            (true, at(10, 0)),
            (false, at(10, 0))
        ]
    );
    handle.abort();
}

// --- graceful shutdown ---------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn shutdown_finishes_short_runs_releases_long_ones_and_refuses_new_work() {
    let w = World::new();
    w.ai.script("quick", vec![ok_after(10)]);
    w.ai.script("long", vec![ok_after(600), ok_after(5)]);
    let a = w.engine("a");
    let mut ids = Vec::new();
    for (prompt, schedule) in [
        ("quick", "30 0 * * *"),
        ("long", "30 0 * * *"),
        ("later", "31 0 * * *"),
    ] {
        let job = a
            .create_job(retried_spec(prompt, schedule, 3, 10))
            .await
            .unwrap();
        ids.push(job.id);
    }
    let (quick, long, later) = (ids[0], ids[1], ids[2]);
    let handle_a = a.start();
    w.run_to(at(30, 1)).await;
    assert_eq!(a.running_executions(), 2);
    let handle_b = w.engine("b").start();
    w.run_to(at(30, 2)).await;

    let stopping = tokio::spawn(handle_a.shutdown());
    settle().await;
    assert_eq!(a.trigger_job(&later).await, Err(Error::ShuttingDown));

    // The short run ends inside the grace period and is written.
    w.run_to(at(30, 10)).await;
    let q = w.execution(&ExecutionId::for_slot(&quick, at(30, 0))).await;
    assert_eq!((q.status, q.completed_at), (Success, Some(at(30, 10))));
    assert_eq!(q.lease_owner.as_deref(), Some("a"));
    assert!(!stopping.is_finished(), "waiting for the long run");

    // At the end of the grace period the long run is released, not failed.
    w.run_to(at(30, 32)).await;
    assert!(stopping.is_finished());
    stopping.await.unwrap();
    assert_eq!(a.running_executions(), 0);
    let long_root = ExecutionId::for_slot(&long, at(30, 0));
    let released = w.execution(&long_root).await;
    assert_eq!(
        (released.status, released.lease_expires_at),
        (Running, Some(at(30, 32)))
    );

    // b recovers it at its next recovery round and runs the retry; b alone claims new slots.
    w.run_to(at(33, 0)).await;
    let chain = w.executions(&long).await;
    assert_eq!(
        chain
            .iter()
            .map(|e| (
                e.attempt,
                e.status,
                e.error_type.as_deref(),
                e.lease_owner.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![
            (1, Failed, Some("lease_expired"), Some("a")),
            (2, Success, None, Some("b"))
        ]
    );
    assert_eq!(chain[0].completed_at, Some(at(30, 46)));
    let next = w.execution(&ExecutionId::for_slot(&later, at(31, 0))).await;
    assert_eq!(
        (next.status, next.lease_owner.as_deref()),
        (Success, Some("b"))
    );
    assert_eq!(a.trigger_job(&later).await, Err(Error::ShuttingDown));
    handle_b.abort();
}

// --- store outage --------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn a_store_outage_loses_and_duplicates_no_slot() {
    let w = World::new();
    w.ai.script("steady", vec![ok_after(20)]);
    let store = w.faulty(Faults::NONE, 3);
    let (_chill, handle, job) = w
        .start_on(
            store.clone(),
            options("a"),
            JobSpec {
                overlap_policy: OverlapPolicy::Allow,
                ..spec("steady", "* * * * *")
            },
        )
        .await;
    w.run_to(at(10, 15)).await;
    // Down from 00:10:15 to 00:13:15: the run of 00:10 cannot write its end (it gives up
    // after two minutes and its lease expires), the slots 00:11..00:13 cannot be claimed.
    store.set_down(true);
    w.run_to(at(13, 15)).await;
    assert!(store.injected() > 0);
    store.set_down(false);
    w.run_to(at(20, 30)).await;

    let executions = w.executions(&job.id).await;
    let mut chains: BTreeMap<DateTime<Utc>, Vec<(u32, ExecutionStatus)>> = BTreeMap::new();
    for e in &executions {
        chains
            .entry(e.scheduled_for)
            .or_default()
            .push((e.attempt, e.status));
    }
    let expected: BTreeMap<_, _> = (1..=20)
        .map(|m| {
            let chain = if m == 10 {
                vec![(1, Failed), (2, Success)]
            } else {
                vec![(1, Success)]
            };
            (at(m, 0), chain)
        })
        .collect();
    assert_eq!(chains, expected);
    let interrupted = w
        .execution(&ExecutionId::for_slot(&job.id, at(10, 0)))
        .await;
    assert_eq!(interrupted.error_type.as_deref(), Some("lease_expired"));
    for m in 11..=13 {
        let late = w.execution(&ExecutionId::for_slot(&job.id, at(m, 0))).await;
        assert!(late.started_at >= at(13, 15), "{m}: {}", late.started_at);
    }
    let calls = w.ai.calls();
    let called: HashSet<ExecutionId> = calls.iter().map(|c| c.execution_id).collect();
    assert_eq!(
        (calls.len(), called.len()),
        (executions.len(), executions.len())
    );
    let stats = w.job(&job.id).await;
    assert_eq!(
        (
            stats.total_runs,
            stats.success_count,
            stats.failure_count,
            stats.running_count
        ),
        (21, 20, 1, 0)
    );
    handle.abort();
}

/// The message of an execution recovered by the instance that lost track of it.
const LOST_TRACK: &str = "lost track of it";

#[tokio::test(flavor = "current_thread")]
async fn a_claim_whose_reply_was_lost_is_recovered_before_its_lease_expires() {
    let w = World::new();
    let store = w.faulty(Faults::NONE, 8);
    let (_chill, handle, job) = w
        .start_on(
            store.clone(),
            options("a"),
            retried_spec("lost", "30 0 * * *", 2, 10),
        )
        .await;
    w.run_to(at(29, 59)).await;
    // The claim of 00:30 takes effect, but the engine sees an error: it runs nothing.
    store.lose_next_reply("claim_slots");
    w.run_to(at(30, 1)).await;
    let root = ExecutionId::for_slot(&job.id, at(30, 0));
    assert_eq!(w.execution(&root).await.status, Running);
    assert!(
        w.ai.calls().is_empty(),
        "the engine ran what it did not know it had claimed"
    );

    // The recovery round of 00:30:15 finds it, 15 s before its lease (to 00:30:30) expires.
    w.run_to(at(30, 16)).await;
    let recovered = w.execution(&root).await;
    assert_eq!(
        (recovered.status, recovered.error_type.as_deref()),
        (Failed, Some("lease_expired"))
    );
    let message = recovered.error_message.clone().unwrap_or_default();
    assert!(message.contains(LOST_TRACK), "{message}");
    assert!(recovered.completed_at.unwrap() < at(30, 30));

    // Its retry runs: the slot ran once, on the second attempt.
    w.run_to(at(31, 0)).await;
    let chain = w.executions(&job.id).await;
    assert_eq!(attempts(&chain), vec![(1, Failed), (2, Success)]);
    assert_eq!(w.ai.calls().len(), 1);
    let stats = w.job(&job.id).await;
    assert_eq!(
        (
            stats.total_runs,
            stats.success_count,
            stats.failure_count,
            stats.running_count
        ),
        (2, 1, 1, 0)
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_manual_start_whose_reply_was_lost_is_recovered_and_a_run_on_its_way_is_not() {
    let w = World::new();
    w.ai.script("flaky", vec![server_error(), Step::ok("done")]);
    let store = w.faulty(Faults::NONE, 9);
    let (chill, handle, flaky) = w
        .start_on(
            store.clone(),
            options("a"),
            retried_spec("flaky", "30 0 * * *", 1, 5),
        )
        .await;
    let manual = chill
        .create_job(retried_spec("manual", "0 0 1 1 *", 1, 5))
        .await
        .unwrap();
    // 00:30: the flaky job fails; its retry is due about 5 s later.
    w.run_to(at(30, 1)).await;
    // The retry is claimed at about 00:30:05, then waits 25 s for its job to be read: leased
    // to this instance until about 00:30:35, not yet running.
    store.set_delay("get_job", secs(25));
    w.run_to(at(30, 6)).await;
    store.set_delay("get_job", Duration::ZERO);
    // A manual start takes effect but its reply is lost: the caller gets the error. The
    // recovery round of 00:30:15 looks at the runs leased until before 00:30:36: both.
    store.lose_next_reply("start_manual");
    let err = chill.trigger_job(&manual.id).await.unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    let lost = w.executions(&manual.id).await;
    assert_eq!(attempts(&lost), vec![(1, Running)]);
    w.run_to(at(31, 30)).await;

    let manual_chain = w.executions(&manual.id).await;
    assert_eq!(attempts(&manual_chain), vec![(1, Failed), (2, Success)]);
    let message = manual_chain[0].error_message.clone().unwrap_or_default();
    assert!(message.contains(LOST_TRACK), "{message}");
    // The flaky job's retry was on its way, not lost: it ran and succeeded.
    let flaky_chain = w.executions(&flaky.id).await;
    assert_eq!(attempts(&flaky_chain), vec![(1, Failed), (2, Success)]);
    assert_eq!(flaky_chain[0].error_type.as_deref(), Some("server_error"));
    let prompts: Vec<String> = w.ai.calls().iter().map(|c| c.prompt.clone()).collect();
    assert_eq!(prompts, ["flaky", "flaky", "manual"]);
    handle.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_instance_recovers_only_what_it_leased_itself_not_an_older_process_with_its_id() {
    let w = World::new();
    w.ai.script("long", vec![ok_after(60)]);
    // The old process "a" runs the 00:30 slot of a job for a minute.
    let (_old, old_handle, long) = w
        .start_on(w.store(), options("a"), spec("long", "30 0 * * *"))
        .await;
    w.run_to(at(30, 20)).await;
    // A new process with the same id starts meanwhile; a manual start of its loses its reply.
    // Its recovery round at 00:30:22 looks for runs leased until before 00:30:50: the old
    // run's lease, renewed at 00:30:20, is among them.
    let store = w.faulty(Faults::NONE, 10);
    let new = w.engine_on(store.clone(), options("a").with_recovery_interval(secs(2)));
    let manual = new
        .create_job(retried_spec("manual", "0 0 1 1 *", 1, 5))
        .await
        .unwrap();
    let new_handle = new.start();
    store.lose_next_reply("start_manual");
    assert!(new.trigger_job(&manual.id).await.is_err());
    w.run_to(at(31, 30)).await;

    // The new process recovered its own lost run, and left the old process's run alone.
    let manual_chain = w.executions(&manual.id).await;
    assert_eq!(attempts(&manual_chain), vec![(1, Failed), (2, Success)]);
    let message = manual_chain[0].error_message.clone().unwrap_or_default();
    assert!(message.contains(LOST_TRACK), "{message}");
    let long_chain = w.executions(&long.id).await;
    assert_eq!(attempts(&long_chain), vec![(1, Success)]);
    new_handle.shutdown().await;
    old_handle.shutdown().await;
}

// --- races with a slow store ---------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn an_update_racing_a_claim_does_not_send_the_job_back_to_a_claimed_slot() {
    let w = World::new();
    let store = w.faulty(Faults::NONE, 4);
    let (chill, handle, job) = w
        .start_on(store.clone(), options("a"), spec("p", "* * * * *"))
        .await;
    w.run_to(at(0, 58)).await;

    // The update reads the job (next run 00:01) at 00:00:58, but its write takes five
    // seconds: the scheduler claims 00:01 in between.
    store.set_delay("update_job", secs(5));
    let update = tokio::spawn({
        let chill = chill.clone();
        async move {
            let renamed = JobPatch {
                name: Some("renamed".into()),
                ..JobPatch::default()
            };
            chill.update_job(&job.id, &renamed).await
        }
    });
    w.run_to(at(1, 30)).await;
    assert!(update.is_finished());
    let updated = update.await.unwrap().unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.next_run_at, Some(at(2, 0)), "not the claimed 00:01");
    store.set_delay("update_job", Duration::ZERO);

    w.run_to(at(3, 30)).await;
    assert_eq!(
        w.outcomes(&job.id).await,
        [1, 2, 3].map(|m| success_at(at(m, 0))).to_vec()
    );
    let stored = w.job(&job.id).await;
    assert_eq!(
        (stored.name.as_str(), stored.next_run_at),
        ("renamed", Some(at(4, 0)))
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_slot_buffered_as_the_run_ends_is_not_left_waiting() {
    let w = World::new();
    w.ai.script("buffered", vec![ok_after(57), ok_after(10)]);
    let store = w.faulty(Faults::NONE, 5);
    // Every claim takes five seconds to reach the store.
    store.set_delay("claim_slots", secs(5));
    let (_chill, handle, job) = w
        .start_on(
            store,
            options("a"),
            JobSpec {
                overlap_policy: OverlapPolicy::BufferOne,
                ..spec("buffered", "1,2 0 * * *")
            },
        )
        .await;
    // 00:01 runs from 00:01:05 to 00:02:02. At 00:02 the scheduler sees it running and plans
    // to buffer 00:02, but by the time that claim lands (00:02:05) the run is over.
    w.run_to(at(10, 0)).await;

    assert_eq!(
        w.outcomes(&job.id).await,
        vec![success_at(at(1, 0)), success_at(at(2, 0))]
    );
    let executions = w.executions(&job.id).await;
    assert_eq!(executions[0].completed_at, Some(at(2, 2)));
    assert!(executions[1].started_at >= at(2, 2), "never two at once");
    let stats = w.job(&job.id).await;
    assert_eq!(
        (stats.buffered_execution_id, stats.running_count),
        (None, 0)
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_manual_run_waiting_for_capacity_keeps_its_lease() {
    let w = World::new();
    w.ai.script("long", vec![ok_after(300)]);
    let chill = w.engine_on(w.store(), options("a").with_max_concurrent(1));
    let long = chill.create_job(spec("long", "1 0 * * *")).await.unwrap();
    let manual = chill.create_job(spec("manual", "0 0 1 1 *")).await.unwrap();
    let handle = chill.start();
    w.run_to(at(1, 30)).await;

    // The only slot of capacity is taken until 00:06: the manual run waits for it.
    let id = chill.trigger_job(&manual.id).await.unwrap();
    w.run_to(at(5, 0)).await;
    let waiting = w.execution(&id).await;
    assert_eq!(waiting.status, Running, "{waiting:?}");
    assert!(w.ai.calls_for("manual").is_empty());
    w.run_to(at(7, 0)).await;

    assert_eq!(w.outcomes(&long.id).await, vec![success_at(at(1, 0))]);
    let done = w.executions(&manual.id).await;
    assert_eq!(
        done.iter().map(|e| (e.id, e.status)).collect::<Vec<_>>(),
        vec![(id, Success)]
    );
    let calls = w.ai.calls_for("manual");
    assert_eq!(
        calls
            .iter()
            .map(|c| (c.at, c.execution_id))
            .collect::<Vec<_>>(),
        vec![(at(6, 0), id)]
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_store_outage_while_a_retry_starts_does_not_cancel_it() {
    let w = World::new();
    w.ai.script(
        "retried",
        vec![
            Step::err(AiError::RateLimited {
                retry_after: Some(secs(10)),
                message: "slow down".into(),
            }),
            Step::ok("fine"),
        ],
    );
    let store = w.faulty(Faults::NONE, 6);
    let (_chill, handle, job) = w
        .start_on(
            store.clone(),
            options("a"),
            retried_spec("retried", "5 0 * * *", 3, 10),
        )
        .await;
    w.run_to(at(5, 1)).await;
    // The retry is claimed at 00:05:10; reading its job then takes five seconds, and the store
    // goes down in between, until 00:08: longer than the engine retries the read (two
    // minutes), and back before the lease of the claimed attempt is recovered.
    store.set_delay("get_job", secs(5));
    w.run_to(at(5, 12)).await;
    let root = ExecutionId::for_slot(&job.id, at(5, 0));
    let second = ExecutionId::for_attempt(&root, 2);
    assert_eq!(w.execution(&second).await.status, Running);
    store.set_down(true);
    w.run_to(at(8, 0)).await;
    store.set_down(false);
    store.set_delay("get_job", Duration::ZERO);
    w.run_to(at(10, 0)).await;

    // The attempt could not start: it is recovered like a crashed one and retried, never
    // cancelled as if the job had been paused.
    let chain = w.executions(&job.id).await;
    assert_eq!(
        chain
            .iter()
            .map(|e| (e.attempt, e.status, e.error_type.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            (1, Failed, Some("rate_limited")),
            (2, Failed, Some("lease_expired")),
            (3, Success, None)
        ]
    );
    assert_eq!(w.ai.calls_for("retried").len(), 2, "attempt 2 never called");
    assert_eq!(w.job(&job.id).await.running_count, 0);
    handle.abort();
}

// --- claim-ahead ---------------------------------------------------------------------------

/// [`options`] with slots claimed five seconds before their due time.
fn ahead(id: &str) -> ChillOptions {
    options(id).with_claim_ahead(secs(5))
}

#[tokio::test(flavor = "current_thread")]
async fn runs_claimed_ahead_for_one_instant_are_checked_together_and_all_start_before_any_finishes()
{
    // Forty jobs due at 00:30, claimed ahead. At 00:30 the engine asks the store once whether
    // their jobs are still active (the answer takes 250 ms), then every run calls the AI at
    // that same instant, and none finishes before the last of them started. (Each run's
    // lease, held from its claim, covers the minute of waiting.)
    let w = World::new();
    w.ai.set_default(ok_after(0));
    let admin = w.engine("admin");
    for i in 0..40 {
        admin
            .create_job(spec(&format!("job {i}"), "30 0 * * *"))
            .await
            .unwrap();
    }
    let store = w.faulty(Faults::NONE, 7);
    store.set_delay("inactive_jobs", Duration::from_millis(250));
    let chill = w.engine_on(store.clone(), options("a").with_claim_ahead(secs(60)));
    let mut events = chill.subscribe();
    let handle = chill.start();
    w.run_to(at(31, 0)).await;

    let order: Vec<&str> = drain(&mut events)
        .iter()
        .filter_map(|e| match e {
            Event::ExecutionStarted(_) => Some("started"),
            Event::ExecutionFinished(e) if e.status == Success => Some("finished"),
            _ => None,
        })
        .collect();
    assert_eq!(
        order.len(),
        80,
        "forty runs started and succeeded: {order:?}"
    );
    assert_eq!(store.calls("inactive_jobs"), 1, "one check for the forty");
    let call_times: HashSet<DateTime<Utc>> = w.ai.calls().iter().map(|c| c.at).collect();
    assert_eq!(
        call_times,
        HashSet::from([at(30, 0) + TimeDelta::milliseconds(250)]),
        "every run called the AI once the check answered"
    );
    let last_start = order.iter().rposition(|k| *k == "started");
    let first_finish = order.iter().position(|k| *k == "finished");
    assert!(
        first_finish > last_start,
        "a run finished before the last of its instant started: {order:?}"
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_slot_claimed_ahead_is_claimed_before_its_due_time_and_calls_the_ai_at_it() {
    let w = World::new();
    w.ai.script("ahead", vec![ok_after(10)]);
    let (chill, handle, job) = w
        .start_on(w.store(), ahead("a"), spec("ahead", "30 0 * * *"))
        .await;
    let mut events = chill.subscribe();
    let slot = ExecutionId::for_slot(&job.id, at(30, 0));

    w.run_to(at(29, 54)).await;
    assert!(
        w.memory.get_execution(&slot).await.unwrap().is_none(),
        "not claimed before the window"
    );
    w.run_to(at(29, 56)).await;
    let claimed = w.execution(&slot).await;
    assert_eq!(
        (
            claimed.status,
            claimed.started_at,
            claimed.lease_owner.as_deref()
        ),
        (Running, at(30, 0), Some("a"))
    );
    assert_eq!(
        claimed.lease_expires_at,
        Some(at(30, 30)),
        "the lease covers the wait and a whole lease after the due time"
    );
    let stored = w.job(&job.id).await;
    assert_eq!(
        (stored.running_count, stored.next_run_at),
        (1, Some(at(30, 0) + TimeDelta::days(1)))
    );
    assert!(w.ai.calls().is_empty(), "no call before the due time");
    assert!(
        !drain(&mut events)
            .iter()
            .any(|e| matches!(e, Event::ExecutionStarted(_))),
        "started is reported when the run starts"
    );

    w.run_to(at(30, 0)).await;
    let call_times: Vec<_> = w.ai.calls().iter().map(|c| c.at).collect();
    assert_eq!(call_times, vec![at(30, 0)]);
    assert!(
        drain(&mut events)
            .iter()
            .any(|e| matches!(e, Event::ExecutionStarted(e) if e.id == slot))
    );
    w.run_to(at(31, 0)).await;
    let done = w.execution(&slot).await;
    assert_eq!(
        (done.status, done.completed_at, done.duration_ms),
        (Success, Some(at(30, 10)), Some(10_000))
    );
    let stats = w.job(&job.id).await;
    assert_eq!(
        (stats.total_runs, stats.success_count, stats.running_count),
        (1, 1, 0)
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_pause_or_delete_after_a_claim_ahead_cancels_the_run_and_a_resume_or_update_keeps_it() {
    let w = World::new();
    let chill = w.engine_on(w.store(), ahead("a"));
    let mut ids = Vec::new();
    for prompt in ["paused", "deleted", "resumed", "updated"] {
        let job = chill.create_job(spec(prompt, "30 0 * * *")).await.unwrap();
        ids.push(job.id);
    }
    let (paused, deleted, resumed, updated) = (ids[0], ids[1], ids[2], ids[3]);
    let handle = chill.start();
    w.run_to(at(29, 56)).await;
    assert_eq!(chill.running_executions(), 4, "all four claimed ahead");

    chill.pause_job(&paused, Some("hold".into())).await.unwrap();
    chill.delete_job(&deleted).await.unwrap();
    chill.pause_job(&resumed, None).await.unwrap();
    let back = chill.resume_job(&resumed).await.unwrap();
    assert_eq!(
        back.next_run_at,
        Some(at(30, 0) + TimeDelta::days(1)),
        "never back to the slot claimed ahead"
    );
    let hourly = JobPatch {
        schedule: Some("30 * * * *".into()),
        ..JobPatch::default()
    };
    let changed = chill.update_job(&updated, &hourly).await.unwrap();
    assert_eq!(
        changed.next_run_at,
        Some(at(90, 0)),
        "the next hour, not the slot claimed ahead"
    );
    w.run_to(at(31, 0)).await;

    // Paused or deleted when the slot came: cancelled, not a run, the AI never called.
    for job in [paused, deleted] {
        let e = w.execution(&ExecutionId::for_slot(&job, at(30, 0))).await;
        assert_eq!(
            (e.status, e.error_type.as_deref(), e.completed_at),
            (
                ExecutionStatus::Cancelled,
                Some("cancelled"),
                Some(at(30, 0))
            )
        );
        let stats = w.job(&job).await;
        assert_eq!(
            (stats.total_runs, stats.failure_count, stats.running_count),
            (0, 0, 0),
            "a cancelled run is not a run"
        );
    }
    // Active again (or still) when the slot came: it runs, once.
    for job in [resumed, updated] {
        assert_eq!(w.outcomes(&job).await, vec![success_at(at(30, 0))]);
    }
    let mut called: Vec<String> = w.ai.calls().into_iter().map(|c| c.prompt).collect();
    called.sort();
    assert_eq!(called, ["resumed", "updated"]);

    // And the updated job goes on with its new schedule.
    w.run_to(at(91, 0)).await;
    assert_eq!(
        w.outcomes(&updated).await,
        vec![success_at(at(30, 0)), success_at(at(90, 0))]
    );
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_running_job_is_not_claimed_ahead_and_its_overlap_is_decided_when_due() {
    let w = World::new();
    // 00:01 ends at 00:01:58, before 00:02 is due; 00:02 is still running when 00:03 is due.
    w.ai.script("busy", vec![ok_after(58), ok_after(63), ok_after(1)]);
    let (_chill, handle, job) = w
        .start_on(w.store(), ahead("a"), spec("busy", "1-4 0 * * *"))
        .await;
    w.run_to(at(1, 56)).await;
    let second = ExecutionId::for_slot(&job.id, at(2, 0));
    assert!(
        w.memory.get_execution(&second).await.unwrap().is_none(),
        "00:02 is in the window, but 00:01 is running: not claimed (it would be skipped)"
    );
    w.run_to(at(5, 0)).await;
    assert_eq!(
        w.outcomes(&job.id).await,
        vec![
            success_at(at(1, 0)),
            success_at(at(2, 0)),
            skipped_at(at(3, 0), "overlap"),
            success_at(at(4, 0)),
        ]
    );
    let runs = w.executions(&job.id).await;
    assert_eq!(runs[1].started_at, at(2, 0));
    assert_eq!(
        runs[2].started_at,
        at(3, 0),
        "skipped when due, as without claim-ahead"
    );
    let calls: Vec<_> = w.ai.calls().iter().map(|c| c.at).collect();
    assert_eq!(calls, vec![at(1, 0), at(2, 0), at(4, 0)]);
    handle.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_during_the_wait_runs_the_slot_within_the_grace_or_releases_it() {
    let w = World::new();
    w.ai.script("graceful", vec![ok_after(10)]);

    // Within the grace period: the claimed slot runs at its due time, then the engine stops.
    let a = w.engine_on(w.store(), ahead("a"));
    let graceful = a.create_job(spec("graceful", "30 0 * * *")).await.unwrap();
    let handle_a = a.start();
    w.run_to(at(29, 56)).await;
    assert_eq!(a.running_executions(), 1);
    let stopping = tokio::spawn(handle_a.shutdown());
    w.run_to(at(29, 59)).await;
    assert!(!stopping.is_finished(), "waiting for the claimed slot");
    assert!(w.ai.calls().is_empty());
    w.run_to(at(30, 10)).await;
    assert!(stopping.is_finished());
    stopping.await.unwrap();
    assert_eq!(w.outcomes(&graceful.id).await, vec![success_at(at(30, 0))]);

    // A grace shorter than the wait: the lease is released, another instance recovers the
    // execution and the retry policy runs the slot.
    let b = w.engine_on(w.store(), ahead("b").with_shutdown_grace(secs(1)));
    let released = b
        .create_job(retried_spec("released", "40 0 * * *", 3, 10))
        .await
        .unwrap();
    let handle_b = b.start();
    w.run_to(at(39, 56)).await;
    assert_eq!(b.running_executions(), 1);
    let stopping = tokio::spawn(handle_b.shutdown());
    w.run_to(at(39, 58)).await;
    assert!(stopping.is_finished());
    stopping.await.unwrap();
    let root = ExecutionId::for_slot(&released.id, at(40, 0));
    let e = w.execution(&root).await;
    assert_eq!((e.status, e.lease_expires_at), (Running, Some(at(39, 57))));
    assert!(w.ai.calls_for("released").is_empty());

    let handle_c = w.engine("c").start();
    w.run_to(at(42, 0)).await;
    let chain = w.executions(&released.id).await;
    assert_eq!(
        chain
            .iter()
            .map(|e| (e.attempt, e.status, e.error_type.as_deref()))
            .collect::<Vec<_>>(),
        vec![(1, Failed, Some("lease_expired")), (2, Success, None)]
    );
    assert_eq!(w.ai.calls_for("released").len(), 1);
    let stats = w.job(&released.id).await;
    assert_eq!(
        (stats.total_runs, stats.running_count),
        (2, 0),
        "the recovered attempt and its retry"
    );
    handle_c.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_herd_claimed_ahead_calls_the_ai_at_the_due_time_within_the_concurrency_limit() {
    let w = World::new();
    let chill = w.engine_on(
        w.store(),
        ahead("a").with_max_concurrent(40).with_claim_batch(16),
    );
    let mut jobs = Vec::new();
    for i in 0..50 {
        let job = chill
            .create_job(spec(&format!("herd {i}"), "30 0 * * *"))
            .await
            .unwrap();
        jobs.push(job.id);
    }
    let handle = chill.start();
    w.run_to(at(29, 59)).await;
    assert_eq!(
        chill.running_executions(),
        40,
        "claimed ahead in batches up to the limit"
    );
    w.run_to(at(30, 1)).await;
    let calls = w.ai.calls();
    assert_eq!(calls.len(), 50);
    assert!(
        calls.iter().all(|c| c.at == at(30, 0)),
        "all at the due time: those claimed ahead and the rest, claimed as permits freed"
    );
    for job in &jobs {
        assert_eq!(w.outcomes(job).await, vec![success_at(at(30, 0))]);
    }
    handle.abort();
}
