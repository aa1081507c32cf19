//! The engine's metrics, recorded by real runs on the manual clock into `metrics-util`'s
//! debugging recorder, installed for the test's thread only (the engine runs on a
//! current-thread runtime inside it).
#![allow(clippy::unwrap_used)]

mod world;

use std::collections::BTreeMap;

use chill_core::store::PageRequest;
use chill_core::telemetry::{
    AI_LATENCY_SECONDS, DUE_BACKLOG, EXECUTION_DURATION_SECONDS, EXECUTIONS_TOTAL,
    RETRIES_SCHEDULED_TOTAL, RUNNING_EXECUTIONS, STORE_ERRORS_TOTAL, TOKENS_TOTAL,
};
use chill_core::testkit::{Faults, Step};
use chill_core::{AiError, Blackout, BreakerOptions, ExecutionStatus, JobSpec};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use world::{World, at, options, retrying, runtime, secs};

/// `name{label=value,...}` → value, for every metric recorded since the last snapshot
/// (counters and gauges are reset by taking it).
fn values(snapshotter: &Snapshotter) -> BTreeMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

fn counter(values: &BTreeMap<String, DebugValue>, key: &str) -> u64 {
    match values.get(key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{key}: {other:?} in {values:?}"),
    }
}

fn gauge(values: &BTreeMap<String, DebugValue>, key: &str) -> f64 {
    match values.get(key) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{key}: {other:?} in {values:?}"),
    }
}

/// Histogram samples, sorted.
fn samples(values: &BTreeMap<String, DebugValue>, key: &str) -> Vec<f64> {
    match values.get(key) {
        Some(DebugValue::Histogram(v)) => {
            let mut v: Vec<f64> = v.iter().map(|x| x.into_inner()).collect();
            v.sort_by(f64::total_cmp);
            v
        }
        other => panic!("{key}: {other:?} in {values:?}"),
    }
}

/// Run `test` on a current-thread runtime with a debugging recorder for this thread; the
/// metrics recorded, read at the end. `test` gets a snapshotter to look in between.
fn recorded<F: Future<Output = ()>>(
    test: impl FnOnce(Snapshotter) -> F,
) -> BTreeMap<String, DebugValue> {
    let recorder = DebuggingRecorder::new();
    let during = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || runtime().block_on(test(during)));
    values(&recorder.snapshotter())
}

#[test]
fn runs_count_by_status_with_durations_latencies_tokens_retries_and_gauges() {
    let after = recorded(|snapshotter| async move {
        let w = World::new();
        let chill = w.engine_on(w.store(), options("a"));
        let one_shot = "at(2026-06-01T00:01:00)";
        // Succeeds after 2 s.
        w.ai.script("fine", vec![Step::ok("ok").after(secs(2))]);
        chill
            .create_job(JobSpec::new("fine", "fine", one_shot))
            .await
            .unwrap();
        // Fails after 1 s (retry in 30 s), then succeeds after 3 s.
        let server_error = AiError::Server {
            status: Some(503),
            message: "busy".into(),
        };
        w.ai.script(
            "flaky",
            vec![
                Step::err(server_error).after(secs(1)),
                Step::ok("ok").after(secs(3)),
            ],
        );
        let mut flaky = JobSpec::new("flaky", "flaky", one_shot);
        flaky.retry_policy = retrying(1, 30);
        let flaky = chill.create_job(flaky).await.unwrap();
        // Its slot falls in a blackout: recorded as skipped.
        let mut frozen = JobSpec::new("frozen", "frozen", one_shot);
        frozen.blackout_periods = vec![Blackout {
            start: at(0, 30),
            end: at(1, 30),
            reason: Some("release freeze".into()),
        }];
        chill.create_job(frozen).await.unwrap();
        let handle = chill.start();

        w.run_to(at(1, 0)).await;
        let during = values(&snapshotter);
        assert_eq!(
            gauge(&during, "chill_running_executions{}"),
            2.0,
            "{during:?}"
        );
        assert_eq!(
            gauge(&during, "chill_due_backlog{}"),
            3.0,
            "three jobs due at 00:01"
        );
        assert_eq!(
            counter(&during, "chill_executions_total{status=skipped}"),
            1
        );
        assert!(!during.contains_key("chill_executions_total{status=success}"));

        w.run_to(at(5, 0)).await;
        handle.shutdown().await;
        let statuses: Vec<_> = w
            .executions(&flaky.id)
            .await
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(
            statuses,
            [ExecutionStatus::Failed, ExecutionStatus::Success]
        );
    });
    let key = |name: &str, labels: &str| format!("{name}{{{labels}}}");
    assert_eq!(counter(&after, &key(EXECUTIONS_TOTAL, "status=success")), 2);
    assert_eq!(counter(&after, &key(EXECUTIONS_TOTAL, "status=failed")), 1);
    // Taking the first snapshot reset the counter: the skipped slot was counted once.
    assert_eq!(counter(&after, &key(EXECUTIONS_TOTAL, "status=skipped")), 0);
    assert_eq!(counter(&after, &key(RETRIES_SCHEDULED_TOTAL, "")), 1);
    assert_eq!(
        samples(&after, &key(EXECUTION_DURATION_SECONDS, "status=success")),
        [2.0, 3.0]
    );
    assert_eq!(
        samples(&after, &key(EXECUTION_DURATION_SECONDS, "status=failed")),
        [1.0]
    );
    assert_eq!(
        samples(&after, &key(AI_LATENCY_SECONDS, "")),
        [1.0, 2.0, 3.0]
    );
    // Two answers of 10 input and 20 output tokens each.
    assert_eq!(counter(&after, &key(TOKENS_TOTAL, "kind=input")), 20);
    assert_eq!(counter(&after, &key(TOKENS_TOTAL, "kind=output")), 40);
    // The first snapshot reset the gauge at 2: one run (the retry) started since, three ended.
    assert_eq!(gauge(&after, &key(RUNNING_EXECUTIONS, "")), -2.0);
    assert_eq!(gauge(&after, &key(DUE_BACKLOG, "")), 0.0);
    assert!(
        !after.keys().any(|k| k.starts_with(STORE_ERRORS_TOTAL)),
        "{after:?}"
    );
}

#[test]
fn failed_store_calls_are_counted_by_operation_and_kind_answers_are_not() {
    let after = recorded(|_| async {
        let w = World::new();
        let store = w.faulty(Faults::NONE, 1);
        let chill = w.engine_on(store.clone(), options("a"));
        let job = chill
            .create_job(JobSpec::new("j", "p", "@daily"))
            .await
            .unwrap();
        // A conflicting write and a missing job are answers, not failures.
        let mut stale = job.clone();
        stale.name = "renamed".into();
        assert!(
            chill
                .store()
                .update_job(&stale, job.version + 1)
                .await
                .is_err()
        );
        assert!(
            chill
                .get_job(&chill_core::JobId::new())
                .await
                .unwrap()
                .is_none()
        );

        store.set_down(true);
        assert!(chill.get_job(&job.id).await.is_err());
        assert!(chill.trigger_job(&job.id).await.is_err());
        assert!(
            chill
                .list_jobs(&Default::default(), &PageRequest::first(10))
                .await
                .is_err()
        );
        store.set_down(false);
        assert!(chill.get_job(&job.id).await.unwrap().is_some());
    });
    let errors: BTreeMap<&String, u64> = after
        .iter()
        .filter(|(k, _)| k.starts_with(STORE_ERRORS_TOTAL))
        .map(|(k, v)| match v {
            DebugValue::Counter(n) => (k, *n),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected = [
        (
            "chill_store_errors_total{kind=unavailable,operation=get_job}".to_string(),
            2,
        ),
        (
            "chill_store_errors_total{kind=unavailable,operation=list_jobs}".to_string(),
            1,
        ),
    ];
    assert_eq!(errors, expected.iter().map(|(k, n)| (k, *n)).collect());
}

#[test]
fn the_breaker_state_and_active_jobs_gauges_follow_the_engine() {
    let after = recorded(|_| async {
        let w = World::new();
        let breaker = BreakerOptions::default().with_consecutive_failures(1);
        let chill = w.engine_on(w.store(), options("a").with_breaker(breaker));
        let down = AiError::Server {
            status: Some(503),
            message: "down".into(),
        };
        w.ai.script("p", vec![Step::err(down)]);
        chill
            .create_job(JobSpec::new("p", "p", "at(2026-06-01T00:01:00)"))
            .await
            .unwrap();
        let paused = chill
            .create_job(JobSpec::new("q", "q", "@daily"))
            .await
            .unwrap();
        chill.pause_job(&paused.id, None).await.unwrap();
        chill
            .create_job(JobSpec::new("r", "r", "@daily"))
            .await
            .unwrap();
        let handle = chill.start();
        w.run_to(at(1, 30)).await;
        // Two jobs are active: the one-shot ran and has no next slot but stays enabled.
        chill.run_metrics_round().await.unwrap();
        handle.shutdown().await;
    });
    assert_eq!(gauge(&after, "chill_breaker_state{}"), 2.0, "open");
    assert_eq!(gauge(&after, "chill_active_jobs{}"), 2.0, "{after:?}");
}
