//! The domain model through its public API: JSON forms, defaults, validation, patches and the
//! next run.
#![allow(clippy::unwrap_used)]

use chill_core::model::limits;
use chill_core::{
    Blackout, CatchUpPolicy, DstPolicy, ErrorType, Execution, ExecutionId, ExecutionStatus, Job,
    JobId, JobPatch, JobSpec, OverlapPolicy, RequestPayload, RetryPolicy, Trigger, ValidationError,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};

fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// 2026-07-03T12:00:00Z, a Friday.
fn now() -> DateTime<Utc> {
    t(2026, 7, 3, 12, 0)
}

fn spec() -> JobSpec {
    JobSpec::new("Digest", "Summarise the tickets", "0 9 * * *")
}

fn fixed_id() -> JobId {
    "0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60".parse().unwrap()
}

fn create(spec: JobSpec) -> Job {
    Job::create(spec, now()).unwrap()
}

fn create_err(spec: JobSpec) -> String {
    Job::create(spec, now()).unwrap_err().to_string()
}

fn patch(json: Value) -> JobPatch {
    serde_json::from_value(json).unwrap()
}

/// Asserts that a JSON object has exactly these keys, in any order.
fn assert_keys(v: &Value, expected: &[&str]) {
    let mut found: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = expected.to_vec();
    found.sort_unstable();
    expected.sort_unstable();
    assert_eq!(found, expected);
}

// ---- JSON forms --------------------------------------------------------------------------

#[test]
fn job_json_uses_the_camel_case_names() {
    let job = create(JobSpec {
        system_prompt: Some("be brief".into()),
        ..spec()
    });
    let v = serde_json::to_value(&job).unwrap();
    assert_keys(
        &v,
        &[
            "id",
            "name",
            "prompt",
            "systemPrompt",
            "schedule",
            "timezone",
            "enabled",
            "maxTurns",
            "timeout",
            "retryPolicy",
            "tags",
            "metadata",
            "startDate",
            "endDate",
            "blackoutPeriods",
            "dstPolicy",
            "overlapPolicy",
            "catchUpPolicy",
            "catchUpWindow",
            "jitter",
            "pauseNote",
            "budget",
            "maxConcurrency",
            "pauseAfterFailures",
            "lastRunAt",
            "lastRunStatus",
            "lastRunDuration",
            "lastRunError",
            "nextRunAt",
            "totalRuns",
            "successCount",
            "failureCount",
            "averageDuration",
            "totalDurationMs",
            "totalInputTokens",
            "totalOutputTokens",
            "totalTokens",
            "totalCostMicroUsd",
            "consecutiveFailures",
            "spend",
            "runningCount",
            "bufferedExecutionId",
            "createdAt",
            "updatedAt",
            "createdBy",
            "updatedBy",
            "version",
            "deletedAt",
        ],
    );
    assert_eq!(
        v["retryPolicy"],
        json!({"maxRetries": 3, "retryDelay": 30, "maxDelay": 3600, "retryOnTimeout": false})
    );
    assert_eq!(v["overlapPolicy"], "skip");
    assert_eq!(v["catchUpPolicy"], "skip_missed");
    assert_eq!(v["systemPrompt"], "be brief");
    assert_eq!(v["createdAt"], "2026-07-03T12:00:00Z");
    assert_eq!(v["nextRunAt"], "2026-07-04T09:00:00Z");
    assert_eq!(
        v["dstPolicy"],
        json!({"repeated": "auto", "skipped": "after_gap"})
    );
    let text = serde_json::to_string(&job).unwrap();
    assert!(text.contains(r#""maxTurns":10,"timeout":300,"#), "{text}");
    let back: Job = serde_json::from_str(&text).unwrap();
    assert_eq!(back, job);
}

#[test]
fn a_stored_job_with_only_the_required_fields_reads_with_defaults() {
    let job: Job = serde_json::from_value(json!({
        "id": "0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60",
        "name": "n", "prompt": "p", "schedule": "@daily",
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
    }))
    .unwrap();
    assert_eq!(job.timezone, "UTC");
    assert!(job.enabled);
    assert_eq!(
        (job.max_turns, job.timeout, job.catch_up_window),
        (10, 300, 300)
    );
    assert_eq!(job.retry_policy, RetryPolicy::default());
    assert_eq!(job.version, 1);
    assert_eq!(job.metadata, Value::Null);
    assert_eq!(job.last_run_status, None);
    job.validate().unwrap();
}

#[test]
fn enum_strings() {
    let statuses: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "pending",
            "running",
            "success",
            "failed",
            "timeout",
            "skipped",
            "cancelled",
            "dead"
        ]
    );
    for s in ExecutionStatus::ALL {
        let json = serde_json::to_string(s).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<ExecutionStatus>(&json).unwrap(), *s);
        assert_eq!(s.as_str().parse::<ExecutionStatus>().unwrap(), *s);
    }
    let terminal: Vec<_> = ExecutionStatus::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        terminal,
        [
            "success",
            "failed",
            "timeout",
            "skipped",
            "cancelled",
            "dead"
        ]
    );
    let failures: Vec<_> = ExecutionStatus::ALL
        .iter()
        .filter(|s| s.is_failure())
        .map(|s| s.as_str())
        .collect();
    assert_eq!(failures, ["failed", "timeout", "dead"]);

    assert_eq!(
        "Success"
            .parse::<ExecutionStatus>()
            .unwrap_err()
            .to_string(),
        "status: 'Success' is not one of pending, running, success, failed, timeout, skipped, cancelled, dead"
    );
    let err = serde_json::from_str::<OverlapPolicy>("\"never\"").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("overlapPolicy: 'never' is not one of skip, buffer_one, allow"),
        "{err}"
    );
    let err = serde_json::from_str::<Trigger>("3").unwrap_err();
    assert!(
        err.to_string()
            .contains("expected one of scheduled, manual, retry"),
        "{err}"
    );

    let pairs = [
        (OverlapPolicy::Skip, "skip"),
        (OverlapPolicy::BufferOne, "buffer_one"),
        (OverlapPolicy::Allow, "allow"),
    ];
    for (p, s) in pairs {
        assert_eq!((p.as_str(), p.to_string()), (s, s.to_string()));
        assert_eq!(s.parse::<OverlapPolicy>().unwrap(), p);
    }
    let pairs = [
        (CatchUpPolicy::SkipMissed, "skip_missed"),
        (CatchUpPolicy::RunOnce, "run_once"),
        (CatchUpPolicy::RunAll, "run_all"),
    ];
    for (p, s) in pairs {
        assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{s}\""));
        assert_eq!(s.parse::<CatchUpPolicy>().unwrap(), p);
    }
    assert_eq!(OverlapPolicy::default(), OverlapPolicy::Skip);
    assert_eq!(CatchUpPolicy::default(), CatchUpPolicy::SkipMissed);
    let triggers: Vec<_> = Trigger::ALL.iter().map(|t| t.to_string()).collect();
    assert_eq!(triggers, ["scheduled", "manual", "retry"]);
    let errors: Vec<_> = ErrorType::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(
        errors,
        [
            "timeout",
            "api_error",
            "network",
            "rate_limited",
            "server_error",
            "invalid_request",
            "lease_expired",
            "circuit_open",
            "budget_exceeded",
            "concurrency_limit",
            "blackout",
            "overlap",
            "missed",
            "cancelled"
        ]
    );
}

#[test]
fn request_payload_json_is_exact() {
    let job = create(JobSpec {
        max_turns: 4,
        ..spec()
    });
    let p = RequestPayload::for_job(&job);
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        r#"{"prompt":"Summarise the tickets","options":{"maxTurns":4}}"#
    );
    let p = RequestPayload {
        system_prompt: Some("sys".into()),
        ..p
    };
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        r#"{"prompt":"Summarise the tickets","systemPrompt":"sys","options":{"maxTurns":4}}"#
    );
}

#[test]
fn execution_json_uses_the_camel_case_names() {
    let job = create(spec());
    let slot = job.timing().unwrap().next_slot(now()).unwrap();
    let mut e = Execution::scheduled(&job, &slot, now());
    e.status = ExecutionStatus::Success;
    e.response = Some(chill_core::ExecutionResponse {
        result: "done".into(),
        tools_used: vec!["search".into()],
        conversation_turns: Some(2),
        metadata: json!({"model": "x"}),
    });
    e.error_type = Some(ErrorType::RateLimited.as_str().into());
    let v = serde_json::to_value(&e).unwrap();
    assert_keys(
        &v,
        &[
            "id",
            "jobId",
            "scheduledFor",
            "dueAt",
            "startedAt",
            "completedAt",
            "status",
            "trigger",
            "requestPayload",
            "response",
            "durationMs",
            "apiLatencyMs",
            "toolsExecutedCount",
            "tokensUsed",
            "inputTokens",
            "outputTokens",
            "costMicroUsd",
            "errorMessage",
            "errorType",
            "errorDetails",
            "retryCount",
            "attempt",
            "rootExecutionId",
            "leaseOwner",
            "leaseExpiresAt",
            "createdAt",
        ],
    );
    assert_eq!(v["status"], "success");
    assert_eq!(v["trigger"], "scheduled");
    assert_eq!(v["errorType"], "rate_limited");
    assert_eq!(v["scheduledFor"], "2026-07-04T09:00:00Z");
    assert_eq!(
        v["response"],
        json!({"result": "done", "toolsUsed": ["search"], "conversationTurns": 2, "metadata": {"model": "x"}})
    );
    let back: Execution = serde_json::from_value(v).unwrap();
    assert_eq!(back, e);
}

// ---- executions ---------------------------------------------------------------------------

#[test]
fn execution_constructors_follow_the_id_rules() {
    let job = create(JobSpec {
        jitter: 600,
        ..spec()
    });
    let slot = job.timing().unwrap().next_slot(now()).unwrap();
    let first = Execution::scheduled(&job, &slot, now());
    assert_eq!(first.id, ExecutionId::for_slot(&job.id, slot.scheduled_for));
    assert_eq!(first.root_execution_id, first.id);
    assert_eq!((first.attempt, first.retry_count), (1, 0));
    assert_eq!(first.status, ExecutionStatus::Pending);
    assert_eq!(first.trigger, Trigger::Scheduled);
    assert_eq!(
        (first.scheduled_for, first.due_at),
        (slot.scheduled_for, slot.fire_at)
    );
    assert_eq!(first.request_payload, RequestPayload::for_job(&job));

    let later = now() + TimeDelta::hours(30);
    let second = first.retry(later, now());
    assert_eq!(second.id, ExecutionId::for_attempt(&first.id, 2));
    assert_eq!(second.root_execution_id, first.id);
    assert_eq!((second.attempt, second.retry_count), (2, 1));
    assert_eq!(
        (second.trigger, second.status, second.due_at),
        (Trigger::Retry, ExecutionStatus::Pending, later)
    );
    assert_eq!(second.scheduled_for, first.scheduled_for);
    let third = second.retry(later, now());
    assert_eq!(third.id, ExecutionId::for_attempt(&first.id, 3));
    assert_eq!((third.attempt, third.retry_count), (3, 2));

    let manual = Execution::manual(&job, now());
    assert_eq!(manual.trigger, Trigger::Manual);
    assert_eq!((manual.scheduled_for, manual.due_at), (now(), now()));
    assert_eq!(manual.root_execution_id, manual.id);
    assert_ne!(manual.id, Execution::manual(&job, now()).id);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let p = RetryPolicy {
        max_retries: 20,
        retry_delay: 30,
        max_delay: 200,
        retry_on_timeout: true,
    };
    let delays: Vec<u32> = (1..=5).map(|n| p.backoff_secs(n)).collect();
    assert_eq!(delays, [30, 60, 120, 200, 200]);
    assert_eq!(p.backoff_secs(0), 30);
    assert_eq!(p.backoff_secs(u32::MAX), 200);
    let big = RetryPolicy {
        retry_delay: 86_400,
        max_delay: 604_800,
        ..p
    };
    assert_eq!(big.backoff_secs(40), 604_800);
}

// ---- create: defaults and next run ---------------------------------------------------------

#[test]
fn create_fills_the_defaults() {
    let job = create(spec());
    assert_eq!(job.version, 1);
    assert_eq!((job.created_at, job.updated_at), (now(), now()));
    assert_eq!(job.timezone, "UTC");
    assert!(job.enabled && job.is_active() && !job.is_deleted());
    assert_eq!((job.max_turns, job.timeout), (10, 300));
    assert_eq!(job.retry_policy, RetryPolicy::default());
    assert_eq!(
        (
            job.overlap_policy,
            job.catch_up_policy,
            job.catch_up_window,
            job.jitter
        ),
        (OverlapPolicy::Skip, CatchUpPolicy::SkipMissed, 300, 0)
    );
    assert_eq!(job.dst_policy, DstPolicy::default());
    assert_eq!(
        (job.total_runs, job.running_count, job.total_cost_micro_usd),
        (0, 0, 0)
    );
    assert_eq!(job.id.as_uuid().get_version_num(), 7);
    assert_eq!(job.next_run_at, Some(t(2026, 7, 4, 9, 0)));

    let from_json: JobSpec = serde_json::from_value(json!({
        "name": "Digest", "prompt": "Summarise the tickets", "schedule": "0 9 * * *"
    }))
    .unwrap();
    assert_eq!(from_json, spec());
    let with_id = create(JobSpec {
        id: Some(fixed_id()),
        created_by: Some("ana".into()),
        ..spec()
    });
    assert_eq!(with_id.id, fixed_id());
    assert_eq!(
        (with_id.created_by.as_deref(), with_id.updated_by.as_deref()),
        (Some("ana"), Some("ana"))
    );
}

#[test]
fn spec_json_refuses_unknown_fields() {
    let err = serde_json::from_value::<JobSpec>(json!({
        "name": "n", "prompt": "p", "schedule": "@daily", "maxTurn": 3
    }))
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `maxTurn`"), "{err}");
    let err = serde_json::from_value::<JobPatch>(json!({"totalRuns": 3})).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `totalRuns`"),
        "{err}"
    );
}

#[test]
fn next_run_follows_the_time_zone() {
    let job = create(JobSpec {
        timezone: "America/New_York".into(),
        ..spec()
    });
    assert_eq!(job.next_run_at, Some(t(2026, 7, 3, 13, 0))); // 09:00 EDT, after 12:00Z
}

#[test]
fn next_run_includes_the_jitter() {
    let job = create(JobSpec {
        id: Some(fixed_id()),
        jitter: 3_600,
        ..spec()
    });
    let slot = t(2026, 7, 4, 9, 0);
    let next = job.next_run_at.unwrap();
    assert!(next >= slot && next <= slot + TimeDelta::hours(1), "{next}");
    assert_ne!(next, slot, "this id's offset is not zero");
    let offset = next - slot;
    assert_eq!(job.timing().unwrap().jitter(), offset);
    // Stable for the id, different for another.
    let again = create(JobSpec {
        id: Some(fixed_id()),
        jitter: 3_600,
        ..spec()
    });
    assert_eq!(again.next_run_at, Some(next));
    let offsets: std::collections::HashSet<_> = (0..20)
        .map(|_| {
            create(JobSpec {
                jitter: 3_600,
                ..spec()
            })
            .next_run_at
        })
        .collect();
    assert!(offsets.len() > 10, "{offsets:?}");
    // The due time maps back to the slot.
    let timing = job.timing().unwrap();
    assert_eq!(timing.slot_due_at(next).scheduled_for, slot);
}

#[test]
fn next_run_respects_the_window() {
    let job = create(JobSpec {
        start_date: Some(t(2026, 8, 1, 0, 0)),
        end_date: Some(t(2026, 9, 1, 0, 0)),
        ..spec()
    });
    assert_eq!(job.next_run_at, Some(t(2026, 8, 1, 9, 0)));
    // Inclusive start.
    let job = create(JobSpec {
        start_date: Some(t(2026, 8, 1, 9, 0)),
        ..spec()
    });
    assert_eq!(job.next_run_at, Some(t(2026, 8, 1, 9, 0)));
}

#[test]
fn rate_counts_from_the_creation_or_the_start_date() {
    let now = t(2026, 7, 3, 12, 7) + TimeDelta::seconds(13);
    let job = Job::create(JobSpec::new("r", "p", "rate(10 minutes)"), now).unwrap();
    assert_eq!(job.next_run_at, Some(now + TimeDelta::minutes(10)));
    let start = t(2026, 7, 3, 11, 0) + TimeDelta::seconds(30);
    let job = Job::create(
        JobSpec {
            start_date: Some(start),
            ..JobSpec::new("r", "p", "rate(10 minutes)")
        },
        now,
    )
    .unwrap();
    assert_eq!(
        job.next_run_at,
        Some(t(2026, 7, 3, 12, 10) + TimeDelta::seconds(30))
    );
}

#[test]
fn a_job_that_never_fires_again_is_refused_unless_paused() {
    assert_eq!(
        create_err(JobSpec::new("n", "p", "at(2026-01-01T09:00:00)")),
        "schedule: never fires after 2026-07-03T12:00:00Z"
    );
    assert_eq!(
        create_err(JobSpec::new("n", "p", "at(2026-07-03T12:00:00)")),
        "schedule: never fires after 2026-07-03T12:00:00Z",
        "strictly after now"
    );
    let job = create(JobSpec::new("n", "p", "at(2026-07-03T12:00:01)"));
    assert_eq!(job.next_run_at, Some(now() + TimeDelta::seconds(1)));
    assert_eq!(
        create_err(JobSpec {
            start_date: Some(t(2026, 1, 1, 0, 0)),
            end_date: Some(t(2026, 7, 1, 0, 0)),
            ..spec()
        }),
        "schedule: never fires between 2026-07-03T12:00:00Z and endDate 2026-07-01T00:00:00Z"
    );
    // The window's last slot is before now, though the window ends after it.
    assert_eq!(
        create_err(JobSpec {
            end_date: Some(t(2026, 7, 4, 8, 0)),
            ..spec()
        }),
        "schedule: never fires between 2026-07-03T12:00:00Z and endDate 2026-07-04T08:00:00Z"
    );
    let paused = create(JobSpec {
        enabled: false,
        ..JobSpec::new("n", "p", "at(2026-01-01T09:00:00)")
    });
    assert_eq!(paused.next_run_at, None);
    assert!(!paused.is_active());
}

// ---- validation ------------------------------------------------------------------------------

fn blackout(start: DateTime<Utc>, end: DateTime<Utc>) -> Blackout {
    Blackout {
        start,
        end,
        reason: None,
    }
}

#[test]
fn each_validation_error_names_the_field() {
    let d = |day| t(2026, 8, day, 0, 0);
    let cases: Vec<(JobSpec, &str)> = vec![
        (
            JobSpec {
                name: "".into(),
                ..spec()
            },
            "name: must not be empty",
        ),
        (
            JobSpec {
                name: " \t\n".into(),
                ..spec()
            },
            "name: must not be empty",
        ),
        (
            JobSpec {
                name: "é".repeat(201),
                ..spec()
            },
            "name: must be at most 200 characters, found 201",
        ),
        (
            JobSpec {
                prompt: "".into(),
                ..spec()
            },
            "prompt: must not be empty",
        ),
        (
            JobSpec {
                prompt: "a".repeat(100_001),
                ..spec()
            },
            "prompt: must be at most 100000 bytes, found 100001",
        ),
        (
            JobSpec {
                system_prompt: Some("é".repeat(50_001)),
                ..spec()
            },
            "systemPrompt: must be at most 100000 bytes, found 100002",
        ),
        (
            JobSpec {
                max_turns: 0,
                ..spec()
            },
            "maxTurns: 0 is out of range 1-100",
        ),
        (
            JobSpec {
                max_turns: 101,
                ..spec()
            },
            "maxTurns: 101 is out of range 1-100",
        ),
        (
            JobSpec {
                timeout: 0,
                ..spec()
            },
            "timeout: 0 is out of range 1-86400",
        ),
        (
            JobSpec {
                timeout: 86_401,
                ..spec()
            },
            "timeout: 86401 is out of range 1-86400",
        ),
        (
            JobSpec {
                retry_policy: RetryPolicy {
                    max_retries: 25,
                    ..RetryPolicy::default()
                },
                ..spec()
            },
            "retryPolicy.maxRetries: 25 is out of range 0-20",
        ),
        (
            JobSpec {
                budget: Some(chill_core::Budget {
                    daily_micro_usd: Some(0),
                    monthly_micro_usd: None,
                }),
                ..spec()
            },
            "budget.dailyMicroUsd: 0 is out of range 1-1000000000000000",
        ),
        (
            JobSpec {
                budget: Some(chill_core::Budget {
                    daily_micro_usd: None,
                    monthly_micro_usd: Some(u64::MAX),
                }),
                ..spec()
            },
            "budget.monthlyMicroUsd: 18446744073709551615 is out of range 1-1000000000000000",
        ),
        (
            JobSpec {
                max_concurrency: Some(0),
                ..spec()
            },
            "maxConcurrency: 0 is out of range 1-10000",
        ),
        (
            JobSpec {
                pause_after_failures: Some(1_001),
                ..spec()
            },
            "pauseAfterFailures: 1001 is out of range 1-1000",
        ),
        (
            JobSpec {
                retry_policy: RetryPolicy {
                    retry_delay: 86_401,
                    max_delay: 90_000,
                    ..RetryPolicy::default()
                },
                ..spec()
            },
            "retryPolicy.retryDelay: 86401 is out of range 0-86400",
        ),
        (
            JobSpec {
                retry_policy: RetryPolicy {
                    max_delay: 604_801,
                    ..RetryPolicy::default()
                },
                ..spec()
            },
            "retryPolicy.maxDelay: 604801 is out of range 0-604800",
        ),
        (
            JobSpec {
                retry_policy: RetryPolicy {
                    retry_delay: 60,
                    max_delay: 10,
                    ..RetryPolicy::default()
                },
                ..spec()
            },
            "retryPolicy.maxDelay: 10 is less than retryPolicy.retryDelay (60)",
        ),
        (
            JobSpec {
                tags: vec!["t".into(); 51],
                ..spec()
            },
            "tags: must be at most 50 tags, found 51",
        ),
        (
            JobSpec {
                tags: vec!["ok".into(), "".into()],
                ..spec()
            },
            "tags[1]: must not be empty",
        ),
        (
            JobSpec {
                tags: vec!["x".repeat(65)],
                ..spec()
            },
            "tags[0]: must be at most 64 characters, found 65",
        ),
        (
            JobSpec {
                metadata: json!({"k": "x".repeat(65_536)}),
                ..spec()
            },
            "metadata: must be at most 65536 bytes of JSON, found 65544",
        ),
        (
            JobSpec {
                jitter: 3_601,
                ..spec()
            },
            "jitter: 3601 is out of range 0-3600",
        ),
        (
            JobSpec {
                catch_up_window: 604_801,
                ..spec()
            },
            "catchUpWindow: 604801 is out of range 0-604800",
        ),
        (
            JobSpec {
                pause_note: Some("n".repeat(1_001)),
                ..spec()
            },
            "pauseNote: must be at most 1000 characters, found 1001",
        ),
        (
            JobSpec {
                created_by: Some("u".repeat(201)),
                ..spec()
            },
            "createdBy: must be at most 200 characters, found 201",
        ),
        (
            JobSpec {
                start_date: Some(d(2)),
                end_date: Some(d(1)),
                ..spec()
            },
            "endDate: must be after startDate",
        ),
        (
            JobSpec {
                start_date: Some(d(2)),
                end_date: Some(d(2)),
                ..spec()
            },
            "endDate: must be after startDate",
        ),
        (
            JobSpec {
                start_date: Some(Utc.with_ymd_and_hms(1969, 12, 31, 0, 0, 0).unwrap()),
                ..spec()
            },
            "startDate: year 1969 is out of range 1970-9999",
        ),
        (
            JobSpec {
                blackout_periods: vec![blackout(d(1), d(2)); 101],
                ..spec()
            },
            "blackoutPeriods: must be at most 100 periods, found 101",
        ),
        (
            JobSpec {
                blackout_periods: vec![blackout(d(1), d(2)), blackout(d(3), d(3))],
                ..spec()
            },
            "blackoutPeriods[1]: end must be after start",
        ),
        (
            JobSpec {
                blackout_periods: vec![blackout(d(1), d(3)), blackout(d(2), d(4))],
                ..spec()
            },
            "blackoutPeriods[1]: overlaps blackoutPeriods[0]",
        ),
        (
            // Found after sorting by start; the later index is the one named.
            JobSpec {
                blackout_periods: vec![
                    blackout(d(10), d(12)),
                    blackout(d(1), d(2)),
                    blackout(d(5), d(6)),
                    blackout(d(11), d(20)),
                ],
                ..spec()
            },
            "blackoutPeriods[3]: overlaps blackoutPeriods[0]",
        ),
        (
            JobSpec {
                blackout_periods: vec![blackout(d(5), d(9)), blackout(d(6), d(7))],
                ..spec()
            },
            "blackoutPeriods[1]: overlaps blackoutPeriods[0]",
        ),
        (
            JobSpec {
                blackout_periods: vec![Blackout {
                    reason: Some("r".repeat(501)),
                    ..blackout(d(1), d(2))
                }],
                ..spec()
            },
            "blackoutPeriods[0].reason: must be at most 500 characters, found 501",
        ),
        (
            JobSpec {
                timezone: "Mars/Olympus".into(),
                ..spec()
            },
            "timezone: unknown time zone 'Mars/Olympus': expected an IANA name such as Europe/Berlin or UTC",
        ),
        (
            JobSpec {
                timezone: "".into(),
                ..spec()
            },
            "timezone: unknown time zone '': expected an IANA name such as Europe/Berlin or UTC",
        ),
        (
            JobSpec {
                schedule: "61 * * * *".into(),
                ..spec()
            },
            "schedule: minute: 61 is out of range 0-59",
        ),
        (
            JobSpec {
                schedule: "".into(),
                ..spec()
            },
            "schedule: the expression is empty",
        ),
        (
            JobSpec {
                schedule: "0 0 31 2 *".into(),
                ..spec()
            },
            "schedule: the expression never fires: no date matches its day, month and year fields",
        ),
        (
            JobSpec {
                schedule: format!("0 0 * * * {}", " ".repeat(1_000)),
                ..spec()
            },
            "schedule: must be at most 1000 bytes, found 1010",
        ),
        (
            JobSpec {
                schedule: "0 9\u{a0}* * *".into(),
                ..spec()
            },
            "schedule: '\\u{a0}' (U+00A0) is not allowed: expressions are ASCII",
        ),
        (
            // Non-ASCII text is refused before the parser sees it.
            JobSpec {
                schedule: "Aa\u{cf1}".into(),
                ..spec()
            },
            "schedule: 'ೱ' (U+0CF1) is not allowed: expressions are ASCII",
        ),
    ];
    for (spec, expected) in cases {
        assert_eq!(Job::create(spec, now()).unwrap_err().to_string(), expected);
    }
}

#[test]
fn validation_limits_are_inclusive() {
    let d = |day| t(2026, 8, day, 0, 0);
    let job = create(JobSpec {
        name: format!("  {}  ", "é".repeat(limits::MAX_NAME_CHARS)),
        prompt: "a".repeat(limits::MAX_PROMPT_BYTES),
        system_prompt: Some(String::new()),
        max_turns: 100,
        timeout: 86_400,
        retry_policy: RetryPolicy {
            max_retries: 20,
            retry_delay: 86_400,
            max_delay: 604_800,
            retry_on_timeout: true,
        },
        tags: vec!["x".repeat(64); 50],
        jitter: 3_600,
        catch_up_window: 604_800,
        // Periods that touch do not overlap: the end is exclusive.
        blackout_periods: vec![blackout(d(2), d(3)), blackout(d(1), d(2))],
        ..spec()
    });
    assert_eq!(job.tags.len(), 50);
    let zero = create(JobSpec {
        retry_policy: RetryPolicy {
            max_retries: 0,
            retry_delay: 0,
            max_delay: 0,
            retry_on_timeout: false,
        },
        ..spec()
    });
    assert_eq!(zero.retry_policy.backoff_secs(1), 0);
}

#[test]
fn the_error_type_exposes_field_and_message() {
    let err = Job::create(
        JobSpec {
            max_turns: 0,
            ..spec()
        },
        now(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ValidationError::new("maxTurns", "0 is out of range 1-100")
    );
}

#[test]
fn hostile_strings_are_kept_byte_for_byte() {
    let name = "Robert'); DROP TABLE jobs;-- \"\0 ünï©ødé 🚀 \u{202e}";
    let prompt = "line1\nline2\r\n\t\0 <script>alert(1)</script> ${{x}} %s %n \\ ' \"";
    let tags = vec![
        "'; DELETE FROM x;".to_string(),
        "\0".into(),
        "日本語".into(),
    ];
    let job = create(JobSpec {
        name: name.into(),
        prompt: prompt.into(),
        system_prompt: Some("\0\u{feff}".into()),
        tags: tags.clone(),
        pause_note: Some("\"quoted\"".into()),
        metadata: json!({"\0key": "v\u{0}"}),
        ..spec()
    });
    assert_eq!((job.name.as_str(), job.prompt.as_str()), (name, prompt));
    assert_eq!(job.tags, tags);
    assert_eq!(job.system_prompt.as_deref(), Some("\0\u{feff}"));
    let back: Job = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
    assert_eq!(back, job);
    assert_eq!(back.name.as_bytes(), name.as_bytes());
    // A rejected hostile value is echoed escaped and cut short.
    let err = create_err(JobSpec {
        timezone: format!("x'\0{}", "y".repeat(100)),
        ..spec()
    });
    assert_eq!(
        err,
        format!(
            "timezone: unknown time zone 'x\\'\\0{}...': expected an IANA name such as Europe/Berlin or UTC",
            "y".repeat(61)
        )
    );
}

// ---- patches -------------------------------------------------------------------------------

#[test]
fn patch_tells_absent_null_and_value_apart() {
    let job = create(JobSpec {
        system_prompt: Some("sys".into()),
        pause_note: Some("note".into()),
        metadata: json!({"a": 1}),
        start_date: Some(t(2026, 7, 1, 0, 0)),
        ..spec()
    });
    // Absent: unchanged.
    let same = job.apply(&patch(json!({})), now()).unwrap();
    assert_eq!(same.system_prompt.as_deref(), Some("sys"));
    assert_eq!(same.pause_note.as_deref(), Some("note"));
    assert_eq!(same.metadata, json!({"a": 1}));
    assert_eq!(same.start_date, Some(t(2026, 7, 1, 0, 0)));
    // Null: cleared.
    let p = patch(json!({
        "systemPrompt": null, "pauseNote": null, "metadata": null, "startDate": null
    }));
    assert_eq!(
        (p.system_prompt.clone(), p.metadata.clone()),
        (Some(None), Some(Value::Null))
    );
    let cleared = job.apply(&p, now()).unwrap();
    assert_eq!(cleared.system_prompt, None);
    assert_eq!(cleared.pause_note, None);
    assert_eq!(cleared.metadata, Value::Null);
    assert_eq!(cleared.start_date, None);
    // Value: set.
    let set = job
        .apply(
            &patch(json!({
                "systemPrompt": "new", "pauseNote": "why", "metadata": [1],
                "endDate": "2027-01-01T00:00:00Z", "name": "Renamed", "tags": ["a"]
            })),
            now(),
        )
        .unwrap();
    assert_eq!(set.system_prompt.as_deref(), Some("new"));
    assert_eq!(set.pause_note.as_deref(), Some("why"));
    assert_eq!(set.metadata, json!([1]));
    assert_eq!(set.end_date, Some(t(2027, 1, 1, 0, 0)));
    assert_eq!(
        (set.name.as_str(), set.tags.clone()),
        ("Renamed", vec!["a".into()])
    );
    // Null on a field that cannot be empty: unchanged.
    let kept = job
        .apply(&patch(json!({"name": null, "maxTurns": null})), now())
        .unwrap();
    assert_eq!((kept.name.as_str(), kept.max_turns), ("Digest", 10));
}

#[test]
fn patch_serializes_only_what_it_changes() {
    let p = JobPatch {
        max_turns: Some(3),
        system_prompt: Some(None),
        pause_note: Some(Some("x".into())),
        ..JobPatch::default()
    };
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({"systemPrompt": null, "maxTurns": 3, "pauseNote": "x"})
    );
    let back: JobPatch = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    assert_eq!(
        serde_json::to_value(JobPatch::default()).unwrap(),
        json!({})
    );
}

#[test]
fn apply_bumps_the_version_and_the_audit_fields() {
    let job = create(JobSpec {
        created_by: Some("ana".into()),
        ..spec()
    });
    let later = now() + TimeDelta::minutes(5);
    let v2 = job
        .apply(&patch(json!({"maxTurns": 5, "updatedBy": "bo"})), later)
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!((v2.created_at, v2.updated_at), (now(), later));
    assert_eq!(
        (v2.created_by.as_deref(), v2.updated_by.as_deref()),
        (Some("ana"), Some("bo"))
    );
    assert_eq!(v2.id, job.id);
    let v3 = v2.apply(&JobPatch::default(), later).unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(v3.updated_by, None);
    // A refused patch leaves nothing changed (the original is borrowed) and says why.
    let err = v3.apply(&patch(json!({"timeout": 0})), later).unwrap_err();
    assert_eq!(err.to_string(), "timeout: 0 is out of range 1-86400");
    assert_eq!(v3.version, 3);
}

#[test]
fn apply_keeps_statistics() {
    let mut job = create(spec());
    job.total_runs = 7;
    job.success_count = 6;
    job.total_cost_micro_usd = 1_234;
    job.last_run_status = Some(ExecutionStatus::Success);
    let next = job.apply(&patch(json!({"name": "x"})), now()).unwrap();
    assert_eq!(
        (
            next.total_runs,
            next.success_count,
            next.total_cost_micro_usd,
            next.last_run_status
        ),
        (7, 6, 1_234, Some(ExecutionStatus::Success))
    );
}

#[test]
fn apply_recomputes_the_next_run_only_when_timing_changes() {
    let job = create(spec());
    let later = t(2026, 7, 4, 10, 0);
    // The engine has advanced the next run; a change of name leaves it alone.
    let mut claimed = job.clone();
    claimed.next_run_at = Some(t(2026, 7, 5, 9, 0));
    let renamed = claimed.apply(&patch(json!({"name": "n2"})), later).unwrap();
    assert_eq!(renamed.next_run_at, Some(t(2026, 7, 5, 9, 0)));
    // Writing the same schedule back is no change either.
    let same = claimed
        .apply(
            &patch(json!({"schedule": "0 9 * * *", "timezone": "UTC"})),
            later,
        )
        .unwrap();
    assert_eq!(same.next_run_at, Some(t(2026, 7, 5, 9, 0)));

    let cases = [
        (
            json!({"schedule": "30 * * * *"}),
            Some(t(2026, 7, 4, 10, 30)),
        ),
        (json!({"timezone": "Asia/Tokyo"}), Some(t(2026, 7, 5, 0, 0))),
        (
            json!({"startDate": "2026-08-01T00:00:00Z"}),
            Some(t(2026, 8, 1, 9, 0)),
        ),
        (
            json!({"blackoutPeriods": [{"start": "2026-07-05T00:00:00Z", "end": "2026-07-06T00:00:00Z"}]}),
            Some(t(2026, 7, 5, 9, 0)), // a blacked-out slot is still due: it is recorded as skipped
        ),
        (
            json!({"dstPolicy": {"repeated": "twice"}}),
            Some(t(2026, 7, 5, 9, 0)),
        ),
        (json!({"enabled": false}), None),
    ];
    for (p, expected) in cases {
        let next = claimed.apply(&patch(p.clone()), later).unwrap();
        assert_eq!(next.next_run_at, expected, "{p}");
    }
    let jittered = claimed
        .apply(&patch(json!({"jitter": 600})), later)
        .unwrap();
    let next = jittered.next_run_at.unwrap();
    assert!(
        next > t(2026, 7, 5, 9, 0) && next <= t(2026, 7, 5, 9, 10),
        "{next}"
    );

    // Pause, then resume: the next run is computed from the time of resuming.
    let paused = claimed
        .apply(
            &patch(json!({"enabled": false, "pauseNote": "holiday"})),
            later,
        )
        .unwrap();
    assert_eq!(
        (paused.next_run_at, paused.pause_note.as_deref()),
        (None, Some("holiday"))
    );
    let resumed = paused
        .apply(&patch(json!({"enabled": true})), t(2026, 7, 10, 9, 0))
        .unwrap();
    assert_eq!(resumed.next_run_at, Some(t(2026, 7, 11, 9, 0)));
}

#[test]
fn apply_refuses_a_change_that_would_never_fire() {
    let job = create(spec());
    let err = job
        .apply(
            &patch(json!({"schedule": "at(2026-07-01T00:00:00)"})),
            now(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "schedule: never fires after 2026-07-03T12:00:00Z"
    );
    // A finished one-shot job can still be renamed, and paused.
    let one_shot = create(JobSpec::new("n", "p", "at(2026-07-04T00:00:00)"));
    let after = t(2026, 7, 5, 0, 0);
    let renamed = one_shot
        .apply(&patch(json!({"name": "done"})), after)
        .unwrap();
    assert_eq!(renamed.name, "done");
    let paused = one_shot
        .apply(&patch(json!({"enabled": false})), after)
        .unwrap();
    assert_eq!(paused.next_run_at, None);
    assert_eq!(
        paused
            .apply(&patch(json!({"enabled": true})), after)
            .unwrap_err()
            .to_string(),
        "schedule: never fires after 2026-07-05T00:00:00Z"
    );
}

#[test]
fn deleted_jobs_are_not_active() {
    let mut job = create(spec());
    job.deleted_at = Some(now());
    assert!(job.is_deleted() && !job.is_active());
    let changed = job
        .apply(&patch(json!({"schedule": "@hourly"})), now())
        .unwrap();
    assert_eq!(changed.next_run_at, None);
}

// ---- never a panic ---------------------------------------------------------------------------

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn create_never_panics_and_keeps_strings(
            name in any::<String>(),
            prompt in any::<String>(),
            schedule in prop_oneof![
                any::<String>(),
                "[ -~]{0,40}",
                "(cron|rate|at|CRON|@)[( -~]{0,30}\\)?",
                "[0-9*/,LW#?-]{1,6}( [0-9*/,A-Z?-]{1,6}){4,6}",
            ],
            timezone in prop_oneof![any::<String>(), Just("Europe/Berlin".to_string())],
            tags in proptest::collection::vec(any::<String>(), 0..4),
            jitter in 0u32..5_000,
            start in proptest::option::of(-100_000_000_000i64..300_000_000_000),
            end in proptest::option::of(-100_000_000_000i64..300_000_000_000),
        ) {
            let spec = JobSpec {
                name: name.clone(),
                prompt: prompt.clone(),
                schedule,
                timezone,
                tags: tags.clone(),
                jitter,
                start_date: start.and_then(|s| DateTime::from_timestamp(s, 0)),
                end_date: end.and_then(|s| DateTime::from_timestamp(s, 0)),
                ..JobSpec::default()
            };
            if let Ok(job) = Job::create(spec, now()) {
                prop_assert_eq!(&job.name, &name);
                prop_assert_eq!(&job.prompt, &prompt);
                prop_assert_eq!(&job.tags, &tags);
                prop_assert!(job.next_run_at.is_some_and(|n| n > now()));
                let back: Job = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
                prop_assert_eq!(back, job);
            }
        }

        #[test]
        fn parsing_ids_and_enums_never_panics(s in any::<String>()) {
            let _ = s.parse::<JobId>();
            let _ = s.parse::<ExecutionId>();
            let _ = s.parse::<ExecutionStatus>();
            let _ = serde_json::from_str::<JobPatch>(&s);
            let _ = serde_json::from_str::<JobSpec>(&s);
        }
    }
}
