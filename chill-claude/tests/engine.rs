//! The engine with the real HTTP clients over a real local server, on a manual clock: HTTP
//! runs in real time, and the test moves the engine's clock to each retry's due time once the
//! engine has scheduled it, so the retry delays cost no waiting and are exact.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chill_claude::HttpOptions;
use chill_core::events::EventStream;
use chill_core::{
    AiClient, Chill, ChillOptions, Event, Execution, ExecutionStatus, JobSpec, ManualClock,
    MemoryStore, RetryPolicy, Trigger,
};
use chrono::{TimeDelta, TimeZone, Utc};
use common::{Reply, Server, message_ok, messages_client, query_client, query_ok};
use serde_json::json;

/// An engine on a manual clock calling `ai`, with one job that only runs when triggered.
async fn engine_with_job(
    ai: Arc<dyn AiClient>,
    retry_delay: u32,
) -> (Chill, ManualClock, chill_core::Job) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let chill = Chill::new(
        Arc::new(MemoryStore::new()),
        Arc::new(clock.clone()),
        ai,
        ChillOptions::default().with_seed(Some(7)),
    );
    let job = chill
        .create_job(JobSpec {
            retry_policy: RetryPolicy {
                max_retries: 3,
                retry_delay,
                max_delay: 3600,
                retry_on_timeout: false,
            },
            ..JobSpec::new("digest", "Summarise yesterday's Jira tickets", "0 0 1 1 *")
        })
        .await
        .expect("a valid job");
    (chill, clock, job)
}

/// Follow the engine's events until an execution succeeds, moving the clock to each retry's
/// due time once it is scheduled. Returns every finished execution, in order.
async fn run_to_success(clock: &ManualClock, events: &mut EventStream) -> Vec<Execution> {
    let mut finished = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("the engine stalled")
            .expect("the event stream ended or lagged");
        match event {
            Event::ExecutionFinished(execution) => {
                let done = execution.status == ExecutionStatus::Success;
                assert!(
                    matches!(
                        execution.status,
                        ExecutionStatus::Success | ExecutionStatus::Failed
                    ),
                    "{execution:?}"
                );
                finished.push(execution);
                if done {
                    return finished;
                }
            }
            Event::RetryScheduled(next) => clock.advance_to(next.due_at).await,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_job_whose_endpoint_fails_twice_with_503_succeeds_after_two_retries() {
    let server = Server::start(
        vec![
            Reply::raw(503, "text/plain", "warming up"),
            Reply::raw(503, "text/plain", "warming up"),
        ],
        Some(Reply::json(
            200,
            json!({ "result": "3 tickets", "toolsUsed": ["jira"], "error": null,
                    "metadata": { "usage": { "input_tokens": 10, "output_tokens": 5 } } }),
        )),
    )
    .await;
    let ai = Arc::new(query_client(&server.base(), HttpOptions::default()));
    let (chill, clock, job) = engine_with_job(ai, 1).await;
    let mut events = chill.subscribe();
    let engine = chill.start();

    let first_id = chill.trigger_job(&job.id).await.unwrap();
    let finished = run_to_success(&clock, &mut events).await;

    let statuses: Vec<_> = finished.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [
            ExecutionStatus::Failed,
            ExecutionStatus::Failed,
            ExecutionStatus::Success
        ]
    );
    assert_eq!(finished[0].id, first_id);
    for failed in &finished[..2] {
        assert_eq!(failed.error_type.as_deref(), Some("server_error"));
        assert_eq!(failed.error_details.as_ref().unwrap()["status"], 503);
    }
    let last = &finished[2];
    assert_eq!((last.attempt, last.retry_count), (3, 2));
    assert_eq!(last.trigger, Trigger::Retry);
    assert_eq!(last.root_execution_id, first_id);
    assert_eq!(last.response.as_ref().unwrap().result, "3 tickets");
    assert_eq!(last.tokens_used, Some(15));
    // Exponential backoff from retryDelay = 1 s: at least 1 s, then at least 2 s.
    for (pair, least) in finished.windows(2).zip([1, 2]) {
        let waited = pair[1].started_at - pair[0].completed_at.unwrap();
        assert!(waited >= TimeDelta::seconds(least), "{waited}");
    }
    // Each call carried its execution's id.
    let sent: Vec<_> = server
        .received()
        .iter()
        .map(|r| {
            r.headers["x-chill-execution-id"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let ids: Vec<_> = finished.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(sent, ids);
    let job = chill.get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(job.last_run_status, Some(ExecutionStatus::Success));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_429_with_retry_after_2_is_retried_no_earlier_than_2_s() {
    let server = Server::start(
        vec![Reply::json(429, json!({ "error": "rate limited" })).header("retry-after", "2")],
        Some(Reply::json(200, query_ok("done"))),
    )
    .await;
    let ai = Arc::new(query_client(&server.base(), HttpOptions::default()));
    // A backoff of a minute: a retry after about 2 s can only come from Retry-After.
    let (chill, clock, job) = engine_with_job(ai, 60).await;
    let mut events = chill.subscribe();
    let engine = chill.start();

    chill.trigger_job(&job.id).await.unwrap();
    let finished = run_to_success(&clock, &mut events).await;

    assert_eq!(finished.len(), 2);
    let (limited, retry) = (&finished[0], &finished[1]);
    assert_eq!(limited.error_type.as_deref(), Some("rate_limited"));
    assert_eq!(limited.error_details.as_ref().unwrap()["retryAfterSecs"], 2);
    let waited = retry.started_at - limited.completed_at.unwrap();
    assert!(waited >= TimeDelta::seconds(2), "{waited}");
    assert!(waited < TimeDelta::seconds(60), "{waited}");
    assert_eq!(retry.status, ExecutionStatus::Success);
    engine.shutdown().await;
}

#[tokio::test]
async fn an_overloaded_messages_api_is_retried_like_a_server_error() {
    let overloaded = json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } });
    let server = Server::start(
        vec![Reply::json(529, overloaded)],
        Some(Reply::json(200, message_ok("fine"))),
    )
    .await;
    let ai = Arc::new(messages_client(&server.base(), HttpOptions::default()));
    let (chill, clock, job) = engine_with_job(ai, 1).await;
    let mut events = chill.subscribe();
    let engine = chill.start();

    chill.trigger_job(&job.id).await.unwrap();
    let finished = run_to_success(&clock, &mut events).await;

    assert_eq!(finished.len(), 2);
    assert_eq!(finished[0].error_type.as_deref(), Some("server_error"));
    assert_eq!(finished[0].error_details.as_ref().unwrap()["status"], 529);
    let done = &finished[1];
    assert_eq!(done.response.as_ref().unwrap().result, "fine");
    assert_eq!(
        (done.input_tokens, done.output_tokens),
        (Some(12), Some(34))
    );
    engine.shutdown().await;
}
