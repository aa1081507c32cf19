//! `chill serve` end to end: the server in process on an ephemeral port, a real AI endpoint
//! started by the test, a SQLite file, and a GraphQL client over HTTP and WebSocket.

// Helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use common::{
    AiServer, Gql, Subscription, TempDb, canonical, changed_keys, eventually, start_server,
    started, without,
};
use serde_json::{Value, json};

const JOB_FIELDS: &str = "id name prompt schedule enabled timezone nextRunAt lastRunAt \
    lastRunStatus totalRuns successCount failureCount averageDuration \
    retryPolicy { maxRetries retryDelay }";

const EXECUTION_FIELDS: &str = "id jobId status trigger attempt retryCount scheduledFor \
    startedAt completedAt durationMs response errorMessage errorType";

/// Never fires during a test: runs happen only when triggered.
const YEARLY: &str = "0 0 1 1 *";

async fn create_job(gql: &Gql, input: Value) -> Value {
    let data = gql
        .data(
            &format!("mutation($input: CreateJobInput!) {{ createJob(input: $input) {{ {JOB_FIELDS} }} }}"),
            json!({"input": input}),
        )
        .await;
    data["createJob"].clone()
}

async fn get_job(gql: &Gql, id: &str) -> Value {
    gql.data(
        &format!("query($id: ID!) {{ getJob(id: $id) {{ {JOB_FIELDS} }} }}"),
        json!({"id": id}),
    )
    .await["getJob"]
        .clone()
}

/// A job with every field of the schema (`selection` from [`Gql::selection`]).
async fn whole_job(gql: &Gql, selection: &str, id: &str) -> Value {
    gql.data(
        &format!("query($id: ID!) {{ getJob(id: $id) {{ {selection} }} }}"),
        json!({"id": id}),
    )
    .await["getJob"]
        .clone()
}

/// Creates a job and returns it with every field.
async fn create_whole(gql: &Gql, selection: &str, input: Value) -> Value {
    gql.data(
        &format!(
            "mutation($input: CreateJobInput!) {{ createJob(input: $input) {{ {selection} }} }}"
        ),
        json!({"input": input}),
    )
    .await["createJob"]
        .clone()
}

/// `updateJob`'s whole response (`data` and `errors`), the job with every field.
async fn update_job(gql: &Gql, selection: &str, id: &str, input: Value) -> Value {
    gql.request(
        &format!(
            "mutation($id: ID!, $input: UpdateJobInput!) {{ updateJob(id: $id, input: $input) {{ {selection} }} }}"
        ),
        json!({"id": id, "input": input}),
    )
    .await
}

/// Runs a job now and waits for the run's end (on a subscription made before the trigger).
async fn run_now(gql: &Gql, addr: std::net::SocketAddr, id: &str) -> Value {
    let mut complete = completions(addr, Some(id)).await;
    let run = gql
        .data(
            "mutation($id: ID!) { triggerJob(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    let done = complete.next().await["onJobExecutionComplete"].clone();
    assert_eq!(done["id"], run["triggerJob"]["id"]);
    done
}

fn instant(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn executions(gql: &Gql, job_id: &str) -> Vec<Value> {
    let data = gql
        .data(
            &format!(
                "query($id: ID!) {{ listExecutions(jobId: $id, limit: 1000) {{ {EXECUTION_FIELDS} }} }}"
            ),
            json!({"id": job_id}),
        )
        .await;
    data["listExecutions"].as_array().unwrap().clone()
}

async fn completions(addr: std::net::SocketAddr, job_id: Option<&str>) -> Subscription {
    Subscription::start(
        addr,
        &format!(
            "subscription($id: ID) {{ onJobExecutionComplete(jobId: $id) {{ {EXECUTION_FIELDS} }} }}"
        ),
        json!({"id": job_id}),
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_executions_arrive_on_the_subscription_and_update_the_statistics() {
    let (_ai, _db, server, gql) = started("scheduled").await;

    // A configured AI endpoint: no demo jobs, even in an empty store.
    let jobs = gql.data("{ listJobs { id } }", json!({})).await;
    assert_eq!(jobs["listJobs"], json!([]));

    let mut complete = completions(server.local_addr(), None).await;
    let mut changes = Subscription::start(
        server.local_addr(),
        "subscription { onJobStatusChange { id name enabled totalRuns lastRunStatus } }",
        json!({}),
        false,
    )
    .await;
    let job = create_job(
        &gql,
        json!({"name": "every second", "prompt": "summarise", "schedule": "* * * * * *",
               "tags": ["e2e"], "metadata": {"team": "ops"}}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["enabled"], true);
    assert!(job["nextRunAt"].is_string());
    assert_eq!(job["totalRuns"], 0);

    let created = changes.next().await;
    assert_eq!(created["onJobStatusChange"]["id"], id.as_str());
    assert_eq!(created["onJobStatusChange"]["name"], "every second");

    let mut slots = HashSet::new();
    while slots.len() < 2 {
        let e = complete.next().await["onJobExecutionComplete"].clone();
        assert_eq!(e["jobId"], id.as_str());
        assert_eq!(e["trigger"], "scheduled");
        assert_eq!(e["status"], "success", "{e}");
        assert_eq!(e["response"]["result"], "answer: summarise");
        assert_eq!(e["response"]["toolsUsed"], json!(["slack"]));
        assert!(e["durationMs"].is_u64());
        assert!(slots.insert(e["scheduledFor"].as_str().unwrap().to_string()));
    }

    let job = get_job(&gql, &id).await;
    assert!(job["totalRuns"].as_u64().unwrap() >= 2, "{job}");
    assert!(job["successCount"].as_u64().unwrap() >= 2, "{job}");
    assert_eq!(job["failureCount"], 0);
    assert!(job["lastRunAt"].is_string());
    assert!(job["averageDuration"].is_u64());
    let history = executions(&gql, &id).await;
    assert!(history.len() >= 2);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_pause_and_resume() {
    let (ai, _db, server, gql) = started("trigger").await;
    let job = create_job(
        &gql,
        json!({"name": "on demand", "prompt": "report", "schedule": YEARLY,
               "budget": {"dailyMicroUsd": 5_000_000}, "pauseAfterFailures": 3}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    let limits = gql
        .data(
            "query($id: ID!) { getJob(id: $id) { budget { dailyMicroUsd monthlyMicroUsd } pauseAfterFailures maxConcurrency consecutiveFailures } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        limits["getJob"],
        json!({"budget": {"dailyMicroUsd": 5_000_000, "monthlyMicroUsd": null},
               "pauseAfterFailures": 3, "maxConcurrency": null, "consecutiveFailures": 0})
    );
    let mut complete = completions(server.local_addr(), Some(&id)).await;

    let run = gql
        .data(
            &format!("mutation($id: ID!) {{ triggerJob(id: $id) {{ {EXECUTION_FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await["triggerJob"]
        .clone();
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["jobId"], id.as_str());
    let done = complete.next().await["onJobExecutionComplete"].clone();
    assert_eq!(done["id"], run["id"]);
    assert_eq!(done["status"], "success");
    assert_eq!(ai.calls_of("report"), 1);

    let fetched = gql
        .data(
            "query($id: ID!) { getExecution(id: $id) { id status trigger job { id name } } }",
            json!({"id": run["id"]}),
        )
        .await;
    assert_eq!(fetched["getExecution"]["status"], "success");
    assert_eq!(fetched["getExecution"]["job"]["name"], "on demand");

    let paused = gql
        .data(
            "mutation($id: ID!) { pauseJob(id: $id, note: \"maintenance\") { enabled nextRunAt pauseNote } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        paused["pauseJob"],
        json!({"enabled": false, "nextRunAt": null, "pauseNote": "maintenance"})
    );
    let refused = gql
        .request(
            "mutation($id: ID!) { triggerJob(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "JOB_NOT_ACTIVE");
    assert_eq!(ai.calls_of("report"), 1);

    let resumed = gql
        .data(
            "mutation($id: ID!) { resumeJob(id: $id) { enabled nextRunAt pauseNote } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(resumed["resumeJob"]["enabled"], true);
    assert!(resumed["resumeJob"]["nextRunAt"].is_string());
    let run = gql
        .data(
            "mutation($id: ID!) { triggerJob(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    let done = complete.next().await["onJobExecutionComplete"].clone();
    assert_eq!(done["id"], run["triggerJob"]["id"]);
    assert_eq!(done["status"], "success");

    let job = get_job(&gql, &id).await;
    assert_eq!(job["totalRuns"], 2);
    assert_eq!(job["lastRunStatus"], "success");

    let deleted = gql
        .data(
            "mutation($id: ID!) { deleteJob(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["deleteJob"], true);
    let listed = gql.data("{ listJobs { id } }", json!({})).await;
    assert_eq!(listed["listJobs"], json!([]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_and_the_retry_is_an_execution() {
    let (_ai, _db, server, gql) = started("retry").await;
    let job = create_job(
        &gql,
        json!({"name": "flaky", "prompt": "fail-once then fine", "schedule": YEARLY,
               "retryPolicy": {"maxRetries": 2, "retryDelay": 1}}),
    )
    .await;
    assert_eq!(
        job["retryPolicy"],
        json!({"maxRetries": 2, "retryDelay": 1})
    );
    let id = job["id"].as_str().unwrap().to_string();
    let mut events = Subscription::start(
        server.local_addr(),
        "subscription($id: ID) { onExecutionEvent(jobId: $id) { kind execution { id trigger status attempt } } }",
        json!({"id": id}),
        false,
    )
    .await;
    let mut complete = completions(server.local_addr(), Some(&id)).await;
    gql.data(
        "mutation($id: ID!) { triggerJob(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;

    let first = complete.next().await["onJobExecutionComplete"].clone();
    assert_eq!(first["trigger"], "manual");
    assert_eq!(first["status"], "failed");
    assert_eq!(first["errorType"], "server_error");
    let retry = complete.next().await["onJobExecutionComplete"].clone();
    assert_eq!(retry["trigger"], "retry");
    assert_eq!(retry["status"], "success");
    assert_eq!(retry["attempt"], 2);
    assert_eq!(retry["retryCount"], 1);

    let mut kinds = Vec::new();
    while kinds.len() < 5 {
        let e = events.next().await["onExecutionEvent"].clone();
        kinds.push(e["kind"].as_str().unwrap().to_string());
    }
    assert_eq!(
        kinds,
        [
            "started",
            "finished",
            "retry_scheduled",
            "started",
            "finished"
        ]
    );

    let history = executions(&gql, &id).await;
    let triggers: HashSet<&str> = history
        .iter()
        .map(|e| e["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(history.len(), 2);
    assert_eq!(triggers, HashSet::from(["manual", "retry"]));
    let job = get_job(&gql, &id).await;
    assert_eq!(job["successCount"], 1);
    assert_eq!(job["failureCount"], 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_an_error_naming_the_field_and_stores_nothing() {
    let (_ai, _db, server, gql) = started("invalid").await;
    let create = "mutation($input: CreateJobInput!) { createJob(input: $input) { id } }";
    let cases = [
        (
            json!({"name": "n", "prompt": "p", "schedule": "61 * * * *"}),
            "schedule: minute: 61 is out of range 0-59",
            "schedule",
        ),
        (
            json!({"name": "n", "prompt": "p", "schedule": "@daily", "maxTurns": -1}),
            "maxTurns: -1 must not be negative",
            "maxTurns",
        ),
        (
            json!({"name": "  ", "prompt": "p", "schedule": "@daily"}),
            "name: must not be empty",
            "name",
        ),
        (
            json!({"name": "n", "prompt": "p", "schedule": "@daily", "overlapPolicy": "sometimes"}),
            "overlapPolicy:",
            "overlapPolicy",
        ),
        (
            json!({"name": "n", "prompt": "p", "schedule": "@daily", "timezone": "Mars/Olympus"}),
            "timezone",
            "timezone",
        ),
        (
            json!({"name": "n", "prompt": "p", "schedule": "@daily", "retryPolicy": {"maxRetries": 99}}),
            "retryPolicy.maxRetries:",
            "retryPolicy.maxRetries",
        ),
    ];
    for (input, message, field) in cases {
        let response = gql.request(create, json!({"input": input})).await;
        let error = &response["errors"][0];
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{input}: {response}"
        );
        assert_eq!(error["extensions"]["code"], "INVALID_INPUT", "{response}");
        assert_eq!(error["extensions"]["field"], field, "{response}");
        assert_eq!(response["data"], Value::Null);
    }
    let bad_id = gql
        .request("{ getJob(id: \"nope\") { id } }", json!({}))
        .await;
    assert!(
        bad_id["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("id: 'nope' is not a valid id")
    );
    let listed = gql
        .data(
            "{ listJobs(filter: {includeDeleted: true}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["listJobs"], json!([]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ide_page_health_and_prometheus_metrics() {
    let (_ai, _db, server, gql) = started("http").await;

    let page = gql.get("/graphql").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("graphql-transport-ws"));
    // Self-contained: no script, style sheet or image from anywhere else.
    for asset in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(!html.contains(asset), "the IDE page loads {asset}…");
    }

    let health = gql.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let job = create_job(
        &gql,
        json!({"name": "measured", "prompt": "count", "schedule": YEARLY}),
    )
    .await;
    let id = job["id"].as_str().unwrap();
    let mut complete = completions(server.local_addr(), Some(id)).await;
    gql.data(
        "mutation($id: ID!) { triggerJob(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    complete.next().await;

    let metrics = gql.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    // The server's own metrics and the library's, recorded by the engine (the run just
    // made counts), with their descriptions (chill-core's `describe_metrics`).
    for sample in [
        "chill_server_graphql_requests_total{outcome=\"ok\"} ",
        "chill_executions_total{status=\"success\"} ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(sample)),
            "{sample}: {text}"
        );
    }
    for line in [
        "# TYPE chill_server_graphql_requests_total counter\n",
        "# HELP chill_server_graphql_requests_total GraphQL requests served over HTTP\n",
        "# TYPE chill_executions_total counter\n",
        "# HELP chill_executions_total Executions that ended, by status\n",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_503_while_the_store_is_unreachable() {
    use chill_core::testkit::{Faults, FaultyStore};
    let store = Arc::new(FaultyStore::new(
        Arc::new(chill_core::MemoryStore::new()),
        Arc::new(chill_core::SystemClock),
        Faults::NONE,
        7,
    ));
    let chill = chill_core::Chill::new(
        store.clone(),
        Arc::new(chill_core::SystemClock),
        Arc::new(chill_examples::ai::NoAi),
        chill_core::ChillOptions::default(),
    );
    // The server's routes over that engine, served as `chill serve` serves them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gql = Gql::new(listener.local_addr().unwrap());
    let http = tokio::spawn(async move {
        axum::serve(listener, chill_examples::server::router(chill))
            .await
            .unwrap();
    });

    let health = gql.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    store.set_down(true);
    let health = gql.get("/healthz").await;
    assert_eq!(health.status(), 503);
    let body = health.text().await.unwrap();
    assert!(body.starts_with("store unreachable: "), "{body}");

    store.set_down(false);
    let health = gql.get("/healthz").await;
    assert_eq!(health.status(), 200);
    http.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_the_older_graphql_ws_protocol() {
    let (_ai, _db, server, gql) = started("legacy").await;
    let job = create_job(
        &gql,
        json!({"name": "legacy", "prompt": "old protocol", "schedule": YEARLY}),
    )
    .await;
    let id = job["id"].as_str().unwrap();
    let mut complete = Subscription::start(
        server.local_addr(),
        "subscription($id: ID) { onJobExecutionComplete(jobId: $id) { id status } }",
        json!({"id": id}),
        true,
    )
    .await;
    let run = gql
        .data(
            "mutation($id: ID!) { triggerJob(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    let done = complete.next().await;
    assert_eq!(
        done["onJobExecutionComplete"],
        json!({"id": run["triggerJob"]["id"], "status": "success"})
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_message_larger_than_the_read_buffer_is_served() {
    let (_ai, _db, server, gql) = started("big-subscribe").await;
    // Runs every second, so a run ends after the subscription is live, whenever that is.
    let job = create_job(
        &gql,
        json!({"name": "big", "prompt": "long query", "schedule": "* * * * * *"}),
    )
    .await;
    let id = job["id"].as_str().unwrap();
    // A comment makes the `subscribe` frame four read buffers long.
    let padding = "x".repeat(4 * chill_examples::server::WS_READ_BUFFER);
    let mut complete = Subscription::start(
        server.local_addr(),
        &format!(
            "# {padding}\nsubscription($id: ID) {{ onJobExecutionComplete(jobId: $id) {{ jobId status }} }}"
        ),
        json!({"id": id}),
        false,
    )
    .await;
    let done = complete.next().await;
    assert_eq!(
        done["onJobExecutionComplete"],
        json!({"jobId": id, "status": "success"})
    );
    server.shutdown().await;
}

/// What the engine changes on a job while it runs (claims and ends of runs): these may differ
/// between two reads of a running job, before and after a restart.
const RUN_FIELDS: &[&str] = &[
    "nextRunAt",
    "lastRunAt",
    "lastRunStatus",
    "lastRunDuration",
    "totalRuns",
    "successCount",
    "averageDuration",
    "totalDurationMs",
    "runningCount",
    "version",
    // The day and month of the spend are those of the last run, even at no cost.
    "spend",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_file_keeps_everything_and_runs_no_slot_twice() {
    const PROMPT: &str = "keep going";
    let (ai, db, server, gql) = started("restart").await;
    let all = gql.selection("Job").await;
    let job = create_whole(
        &gql,
        &all,
        json!({"name": "survivor", "prompt": PROMPT, "schedule": "* * * * * *",
               "systemPrompt": "stay", "tags": ["restart", "e2e"],
               "metadata": {"team": "ops", "n": [1, 2]}, "timezone": "Europe/Berlin",
               "maxTurns": 4, "timeout": 60, "catchUpPolicy": "run_all",
               "retryPolicy": {"maxRetries": 1, "retryDelay": 2}, "createdBy": "alice"}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    // A job that does not run around the restart, with every kind of field and statistics
    // from one run: it must come back exactly as it was.
    let dormant = create_whole(
        &gql,
        &all,
        json!({"name": "dormant", "prompt": "once", "schedule": YEARLY, "tags": ["restart"],
               "metadata": {"k": "v"}, "jitter": 5, "overlapPolicy": "buffer_one",
               "blackoutPeriods": [{"start": "2030-01-01T00:00:00Z",
                                    "end": "2030-01-02T00:00:00Z", "reason": "freeze"}],
               "budget": {"dailyMicroUsd": 100}, "pauseAfterFailures": 2,
               "createdBy": "alice"}),
    )
    .await;
    let dormant_id = dormant["id"].as_str().unwrap().to_string();
    run_now(&gql, server.local_addr(), &dormant_id).await;

    let mut complete = completions(server.local_addr(), Some(&id)).await;
    for _ in 0..2 {
        complete.next().await;
    }
    let survivor_before = whole_job(&gql, &all, &id).await;
    let dormant_before = whole_job(&gql, &all, &dormant_id).await;
    assert_eq!(dormant_before["totalRuns"], 1);
    let before = executions(&gql, &id).await;
    assert!(before.len() >= 2);
    server.shutdown().await;
    // The store was closed: its last connection folded the write-ahead log into the file.
    assert!(
        !db.dir.join("chill.db-wal").exists(),
        "the SQLite store was not closed on shutdown"
    );
    assert!(
        gql.http
            .get(format!("{}/healthz", gql.base))
            .send()
            .await
            .is_err(),
        "still serving"
    );

    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
    assert_eq!(whole_job(&gql, &all, &dormant_id).await, dormant_before);
    let survivor_after = whole_job(&gql, &all, &id).await;
    assert_eq!(
        without(&survivor_after, RUN_FIELDS),
        without(&survivor_before, RUN_FIELDS)
    );
    for counter in ["totalRuns", "successCount", "version"] {
        assert!(
            survivor_after[counter].as_u64() >= survivor_before[counter].as_u64(),
            "{counter} went back: {survivor_before} then {survivor_after}"
        );
    }

    let mut complete = completions(server.local_addr(), Some(&id)).await;
    for _ in 0..2 {
        let e = complete.next().await["onJobExecutionComplete"].clone();
        assert_eq!(e["status"], "success");
    }
    // Stop the job and let its last run end: then every call is on record.
    gql.data(
        "mutation($id: ID!) { pauseJob(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    let history = eventually("the paused job's runs to end", || {
        let gql = &gql;
        let id = &id;
        let all = &all;
        async move {
            let job = whole_job(gql, all, id).await;
            let history = executions(gql, id).await;
            let ended = history
                .iter()
                .all(|e| !["pending", "running"].contains(&e["status"].as_str().unwrap()));
            let idle = job["runningCount"] == 0;
            (ended && idle && job["enabled"] == false).then_some(history)
        }
    })
    .await;

    let scheduled: Vec<&str> = history
        .iter()
        .filter(|e| e["trigger"] == "scheduled" && e["status"] != "skipped")
        .map(|e| e["scheduledFor"].as_str().unwrap())
        .collect();
    let distinct: HashSet<&&str> = scheduled.iter().collect();
    assert_eq!(
        distinct.len(),
        scheduled.len(),
        "a slot ran twice: {history:?}"
    );
    let ids: HashSet<&str> = history.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), history.len());
    for old in &before {
        assert!(ids.contains(old["id"].as_str().unwrap()), "lost {old}");
    }
    // Every execution that was not skipped called the AI once (and this endpoint always
    // answers), and no call was made for a run that is not on record: a slot run again after
    // the restart would be a call more.
    let called: Vec<&Value> = history
        .iter()
        .filter(|e| e["status"] != "skipped")
        .collect();
    for e in &called {
        assert_eq!(e["status"], "success", "{e}");
    }
    assert_eq!(
        ai.calls_of(PROMPT) as usize,
        called.len(),
        "AI calls against executions: {history:?}"
    );
    let job = get_job(&gql, &id).await;
    assert_eq!(job["totalRuns"].as_u64().unwrap() as usize, called.len());
    assert_eq!(job["successCount"].as_u64().unwrap() as usize, called.len());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_after_the_store_opened_closes_the_store() {
    let ai = AiServer::start().await;
    let db = TempDb::new("start_fails");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let started = chill_examples::Server::start(chill_examples::ServeConfig {
        store_url: db.url("chill.db"),
        listen: taken.local_addr().unwrap().to_string(),
        ai: chill_examples::AiChoice::query(&ai.url()).unwrap(),
        demo_jobs: true,
    })
    .await;
    let error = started.expect_err("the address is taken").to_string();
    assert!(error.contains("cannot listen"), "{error}");
    // The store was opened (and migrated) before the listener failed, then closed.
    assert!(db.dir.join("chill.db").exists());
    assert!(
        !db.dir.join("chill.db-wal").exists(),
        "the store was left open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_job_changes_only_the_given_fields() {
    let (_ai, _db, server, gql) = started("update").await;
    let all = gql.selection("Job").await;
    let created = create_whole(
        &gql,
        &all,
        json!({"name": "original", "prompt": "first prompt", "systemPrompt": "be brief",
               "schedule": YEARLY, "tags": ["a", "b"], "metadata": {"team": "ops"},
               "startDate": "2020-01-01T00:00:00Z", "endDate": "2100-01-01T00:00:00Z",
               "retryPolicy": {"maxRetries": 2, "retryDelay": 7, "maxDelay": 100,
                               "retryOnTimeout": true},
               "createdBy": "alice"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();

    // Only the given fields change, with the version, the author and the time of the change.
    let response = update_job(
        &gql,
        &all,
        &id,
        json!({"name": "renamed", "prompt": "second prompt", "updatedBy": "bob"}),
    )
    .await;
    let renamed = response["data"]["updateJob"].clone();
    assert!(response.get("errors").is_none(), "{response}");
    assert_eq!(
        changed_keys(
            &without(&created, &["updatedAt"]),
            &without(&renamed, &["updatedAt"])
        ),
        BTreeSet::from(["name", "prompt", "updatedBy", "version"].map(String::from)),
        "{created}\n{renamed}"
    );
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["prompt"], "second prompt");
    assert_eq!(renamed["updatedBy"], "bob");
    assert_eq!(renamed["createdBy"], "alice");
    assert_eq!(renamed["version"], created["version"].as_u64().unwrap() + 1);
    assert!(instant(&renamed["updatedAt"]) >= instant(&created["updatedAt"]));
    // What the mutation answered is what was stored.
    assert_eq!(whole_job(&gql, &all, &id).await, renamed);

    // `null` clears the nullable fields (metadata becomes JSON null); `null` on a field that
    // cannot be empty leaves it as it is.
    let response = update_job(
        &gql,
        &all,
        &id,
        json!({"systemPrompt": null, "metadata": null, "endDate": null, "name": null,
               "updatedBy": "bob"}),
    )
    .await;
    assert!(response.get("errors").is_none(), "{response}");
    let cleared = response["data"]["updateJob"].clone();
    assert_eq!(
        changed_keys(
            &without(&renamed, &["updatedAt"]),
            &without(&cleared, &["updatedAt"])
        ),
        BTreeSet::from(["systemPrompt", "metadata", "endDate", "version"].map(String::from)),
        "{renamed}\n{cleared}"
    );
    assert_eq!(cleared["systemPrompt"], Value::Null);
    assert_eq!(cleared["metadata"], Value::Null);
    assert_eq!(cleared["endDate"], Value::Null);
    assert_eq!(
        instant(&cleared["startDate"]),
        instant(&json!("2020-01-01T00:00:00Z"))
    );
    assert_eq!(cleared["name"], "renamed");
    assert_eq!(whole_job(&gql, &all, &id).await, cleared);

    // A partial retry policy merges into the job's: the absent fields keep their values.
    let response = update_job(
        &gql,
        &all,
        &id,
        json!({"retryPolicy": {"retryDelay": 9}, "updatedBy": "bob"}),
    )
    .await;
    assert!(response.get("errors").is_none(), "{response}");
    let merged = response["data"]["updateJob"].clone();
    assert_eq!(
        merged["retryPolicy"],
        json!({"maxRetries": 2, "retryDelay": 9, "maxDelay": 100, "retryOnTimeout": true})
    );
    assert_eq!(
        changed_keys(
            &without(&cleared, &["updatedAt"]),
            &without(&merged, &["updatedAt"])
        ),
        BTreeSet::from(["retryPolicy", "version"].map(String::from))
    );
    assert_eq!(whole_job(&gql, &all, &id).await, merged);

    // Without `updatedBy` the change's author is unknown (the patch's contract), whatever
    // the last one was.
    let response = update_job(&gql, &all, &id, json!({"tags": ["c"]})).await;
    let retagged = response["data"]["updateJob"].clone();
    assert_eq!(retagged["tags"], json!(["c"]));
    assert_eq!(retagged["updatedBy"], Value::Null);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_update_is_an_error_naming_the_field_and_changes_nothing() {
    let (_ai, _db, server, gql) = started("bad-update").await;
    let all = gql.selection("Job").await;
    let created = create_whole(
        &gql,
        &all,
        json!({"name": "steady", "prompt": "p", "schedule": "0 9 * * *",
               "timezone": "Europe/Berlin", "startDate": "2020-01-01T00:00:00Z",
               "tags": ["keep"], "metadata": {"k": 1}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    // Each case also carries a valid change, which must not be applied either.
    let cases = [
        (
            json!({"name": "changed", "schedule": "61 * * * *"}),
            "schedule: minute: 61 is out of range 0-59",
            "schedule",
        ),
        (
            json!({"name": "changed", "timezone": "Mars/Olympus"}),
            "timezone",
            "timezone",
        ),
        (
            json!({"name": "changed", "maxTurns": -1}),
            "maxTurns: -1 must not be negative",
            "maxTurns",
        ),
        (
            json!({"name": "changed", "retryPolicy": {"maxRetries": 99}}),
            "retryPolicy.maxRetries:",
            "retryPolicy.maxRetries",
        ),
        (
            json!({"name": "changed", "endDate": "2019-01-01T00:00:00Z"}),
            "endDate: must be after startDate",
            "endDate",
        ),
        (
            json!({"name": "changed", "overlapPolicy": "sometimes"}),
            "overlapPolicy:",
            "overlapPolicy",
        ),
        (
            json!({"name": "changed", "dstPolicy": {"repeated": "thrice"}}),
            "dstPolicy:",
            "dstPolicy",
        ),
        (json!({"name": "  "}), "name: must not be empty", "name"),
    ];
    for (input, message, field) in cases {
        let response = update_job(&gql, &all, &id, input.clone()).await;
        let error = &response["errors"][0];
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{input}: {response}"
        );
        assert_eq!(error["extensions"]["code"], "INVALID_INPUT", "{response}");
        assert_eq!(error["extensions"]["field"], field, "{response}");
        assert_eq!(response["data"], Value::Null);
        assert_eq!(whole_job(&gql, &all, &id).await, created, "after {input}");
    }
    let missing = update_job(
        &gql,
        &all,
        &chill_core::JobId::new().to_string(),
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
    server.shutdown().await;
}

/// The first instant of `month`/`day` in the year after this one, UTC.
fn next_year(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(Utc::now().year() + 1, month, day, hour, 0, 0)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_input_round_trips_through_get_job() {
    let (_ai, _db, server, gql) = started("round-trip").await;
    let all = gql.selection("Job").await;
    let id = chill_core::JobId::new().to_string();
    let (start, end) = (next_year(6, 1, 0), next_year(12, 1, 0));
    let blackout = (next_year(7, 1, 0), next_year(7, 2, 0));
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let input = json!({
        "id": id,
        "name": "everything",
        "prompt": "say everything",
        "systemPrompt": "be thorough",
        "schedule": "0 9 * * *",
        "enabled": true,
        "maxTurns": 3,
        "timeout": 45,
        "retryPolicy": {"maxRetries": 4, "retryDelay": 7, "maxDelay": 600, "retryOnTimeout": true},
        "tags": ["a", "b"],
        "metadata": {"team": "ops", "nested": {"n": [1, 2.5, null]}},
        "timezone": "Europe/Berlin",
        "startDate": iso(start),
        "endDate": iso(end),
        "blackoutPeriods": [
            {"start": iso(blackout.0), "end": iso(blackout.1), "reason": "freeze"},
            {"start": iso(next_year(8, 1, 0)), "end": iso(next_year(8, 1, 6))},
        ],
        "dstPolicy": {"repeated": "twice", "skipped": "skip"},
        "overlapPolicy": "allow",
        "catchUpPolicy": "run_once",
        "catchUpWindow": 120,
        "jitter": 30,
        "pauseNote": "a note",
        "budget": {"dailyMicroUsd": 1000, "monthlyMicroUsd": 20000},
        "maxConcurrency": 2,
        "pauseAfterFailures": 5,
        "createdBy": "alice",
    });
    let created = create_whole(&gql, &all, input.clone()).await;
    let stored = whole_job(&gql, &all, &id).await;
    assert_eq!(stored, created);
    // What was given comes back; the second blackout's absent reason reads as null, and the
    // creation sets the rest.
    let mut expected = input.clone();
    expected["blackoutPeriods"][1]["reason"] = Value::Null;
    for (key, value) in json!({
        "updatedBy": "alice",
        "version": 1,
        "deletedAt": null,
        "totalRuns": 0,
        "lastRunAt": null,
    })
    .as_object()
    .unwrap()
    {
        expected[key] = value.clone();
    }
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(canonical(&stored[key]), canonical(value), "{key}: {stored}");
    }
    assert_eq!(stored["createdAt"], stored["updatedAt"]);
    // The first slot: 09:00 in Berlin (summer time, UTC+2) on the start date, plus the job's
    // fixed jitter of at most 30 s.
    let slot = next_year(6, 1, 7);
    let next = instant(&stored["nextRunAt"]);
    assert!(
        next >= slot && next <= slot + chrono::Duration::seconds(30),
        "{next} is not the first slot {slot} (+ jitter)"
    );

    // Absent inputs take the documented defaults.
    let plain = create_whole(
        &gql,
        &all,
        json!({"name": "plain", "prompt": "p", "schedule": YEARLY}),
    )
    .await;
    let defaults = json!({
        "systemPrompt": null, "enabled": true, "maxTurns": 10, "timeout": 300,
        "retryPolicy": {"maxRetries": 3, "retryDelay": 30, "maxDelay": 3600, "retryOnTimeout": false},
        "tags": [], "metadata": null, "timezone": "UTC", "startDate": null, "endDate": null,
        "blackoutPeriods": [], "dstPolicy": {"repeated": "auto", "skipped": "after_gap"},
        "overlapPolicy": "skip", "catchUpPolicy": "skip_missed", "catchUpWindow": 300,
        "jitter": 0, "pauseNote": null, "budget": null, "maxConcurrency": null,
        "pauseAfterFailures": null, "createdBy": null,
    });
    for (key, value) in defaults.as_object().unwrap() {
        assert_eq!(&plain[key], value, "{key}: {plain}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_and_execution_pages_give_everything_once() {
    let (_ai, _db, server, gql) = started("pages").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let job = create_job(
            &gql,
            json!({"name": format!("job {i}"), "prompt": format!("page {i}"), "schedule": YEARLY}),
        )
        .await;
        created.push(job["id"].as_str().unwrap().to_string());
    }

    // Jobs in creation order, two by two.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = gql
            .data(
                "query($after: String) { jobsPage(limit: 2, after: $after) { items { id } nextCursor } }",
                json!({"after": after}),
            )
            .await["jobsPage"]
            .clone();
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(|j| j["id"].as_str().unwrap().to_string()));
        after = page["nextCursor"].clone();
        if after.is_null() {
            break;
        }
        assert!(sizes.len() < 10, "the pages do not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, created);

    // Executions newest first, two by two: the same as one list, in the same order.
    let id = &created[0];
    for _ in 0..3 {
        run_now(&gql, server.local_addr(), id).await;
    }
    let mut pages = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = gql
            .data(
                "query($id: ID!, $after: String) { executionsPage(jobId: $id, limit: 2, after: $after) { items { id } nextCursor } }",
                json!({"id": id, "after": after}),
            )
            .await["executionsPage"]
            .clone();
        pages.push(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
        after = page["nextCursor"].clone();
        if after.is_null() {
            break;
        }
        assert!(pages.len() < 10, "the pages do not end");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let listed: Vec<String> = executions(&gql, id)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed.len(), 3);
    assert_eq!(pages.concat(), listed);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upcoming_runs_follow_the_time_zone_across_daylight_saving() {
    let (_ai, _db, server, gql) = started("upcoming").await;
    let query = "query($s: String!, $tz: String, $after: DateTime) { upcomingRuns(schedule: $s, timezone: $tz, after: $after, count: 3) }";
    let runs = |tz: Value, after: &str| {
        let gql = &gql;
        let variables = json!({"s": "30 2 * * *", "tz": tz, "after": after});
        async move { canonical(&gql.data(query, variables).await["upcomingRuns"]) }
    };
    // 02:30 in Berlin: 01:30Z in winter (UTC+1), 00:30Z in summer (UTC+2). On 30 March 2025
    // clocks jump from 02:00 to 03:00, so 02:30 does not exist: the run is at the first
    // instant after the gap, 03:00 CEST = 01:00Z.
    assert_eq!(
        runs(json!("Europe/Berlin"), "2025-03-29T00:00:00Z").await,
        json!([
            "2025-03-29T01:30:00Z",
            "2025-03-30T01:00:00Z",
            "2025-03-31T00:30:00Z"
        ])
    );
    // On 26 October 2025 clocks fall back from 03:00 to 02:00, so 02:30 happens twice: a
    // fixed hour runs once, at the first (CEST, 00:30Z).
    assert_eq!(
        runs(json!("Europe/Berlin"), "2025-10-25T00:00:00Z").await,
        json!([
            "2025-10-25T00:30:00Z",
            "2025-10-26T00:30:00Z",
            "2025-10-27T01:30:00Z"
        ])
    );
    // Without a time zone: UTC.
    assert_eq!(
        runs(Value::Null, "2025-03-29T00:00:00Z").await,
        json!([
            "2025-03-29T02:30:00Z",
            "2025-03-30T02:30:00Z",
            "2025-03-31T02:30:00Z"
        ])
    );
    let bad = gql
        .request(
            query,
            json!({"s": "30 2 * * *", "tz": "Mars/Olympus", "after": null}),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{bad}"
    );
    assert_eq!(bad["errors"][0]["extensions"]["field"], "timezone", "{bad}");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Mars/Olympus"),
        "{bad}"
    );
    let bad = gql
        .request(query, json!({"s": "30 2 * *", "tz": null, "after": null}))
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "schedule", "{bad}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_delete_keeps_the_history_and_a_hard_delete_removes_it() {
    let (_ai, _db, server, gql) = started("delete").await;
    let all = gql.selection("Job").await;
    let soft = create_job(
        &gql,
        json!({"name": "soft", "prompt": "soft run", "schedule": YEARLY}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hard = create_job(
        &gql,
        json!({"name": "hard", "prompt": "hard run", "schedule": YEARLY}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let soft_run = run_now(&gql, server.local_addr(), &soft).await["id"].clone();
    let hard_run = run_now(&gql, server.local_addr(), &hard).await["id"].clone();
    let delete = "mutation($id: ID!, $hard: Boolean) { deleteJob(id: $id, hard: $hard) }";
    let listed = |include_deleted: bool| {
        let gql = &gql;
        async move {
            let data = gql
                .data(
                    "query($all: Boolean) { listJobs(filter: {includeDeleted: $all}) { id } }",
                    json!({"all": include_deleted}),
                )
                .await;
            data["listJobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string())
                .collect::<BTreeSet<_>>()
        }
    };
    let get_execution = |id: Value| {
        let gql = &gql;
        async move {
            gql.data(
                "query($id: ID!) { getExecution(id: $id) { id status job { id deletedAt } } }",
                json!({"id": id}),
            )
            .await["getExecution"]
                .clone()
        }
    };

    // Soft: the job stops and is hidden from lists, but it and its history stay readable.
    let before = whole_job(&gql, &all, &soft).await;
    let deleted = gql.data(delete, json!({"id": soft, "hard": null})).await;
    assert_eq!(deleted["deleteJob"], true);
    let after = whole_job(&gql, &all, &soft).await;
    assert!(after["deletedAt"].is_string(), "{after}");
    assert_eq!(after["enabled"], false);
    assert_eq!(after["nextRunAt"], Value::Null);
    assert_eq!(
        without(
            &after,
            &["deletedAt", "enabled", "nextRunAt", "version", "updatedAt"]
        ),
        without(
            &before,
            &["deletedAt", "enabled", "nextRunAt", "version", "updatedAt"]
        ),
    );
    assert_eq!(listed(false).await, BTreeSet::from([hard.clone()]));
    assert_eq!(
        listed(true).await,
        BTreeSet::from([soft.clone(), hard.clone()])
    );
    assert_eq!(executions(&gql, &soft).await.len(), 1);
    let kept = get_execution(soft_run.clone()).await;
    assert_eq!(kept["status"], "success");
    assert_eq!(kept["job"]["deletedAt"], after["deletedAt"]);
    let refused = gql
        .request(
            "mutation($id: ID!) { triggerJob(id: $id) { id } }",
            json!({"id": soft}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    let refused = update_job(&gql, &all, &soft, json!({"name": "revived"})).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "NOT_FOUND");

    // Hard: the job and its history are gone, from every read.
    let purged = gql.data(delete, json!({"id": hard, "hard": true})).await;
    assert_eq!(purged["deleteJob"], true);
    let gone = gql
        .data(
            "query($id: ID!) { getJob(id: $id) { id } }",
            json!({"id": hard}),
        )
        .await;
    assert_eq!(gone["getJob"], Value::Null);
    assert_eq!(listed(true).await, BTreeSet::from([soft.clone()]));
    assert!(executions(&gql, &hard).await.is_empty());
    assert_eq!(get_execution(hard_run).await, Value::Null);
    // Deleting what is not there says so, either way.
    for how in [json!(true), Value::Null] {
        let again = gql.data(delete, json!({"id": hard, "hard": how})).await;
        assert_eq!(again["deleteJob"], false);
    }

    // A soft-deleted job can still be purged.
    let purged = gql.data(delete, json!({"id": soft, "hard": true})).await;
    assert_eq!(purged["deleteJob"], true);
    assert_eq!(listed(true).await, BTreeSet::new());
    assert_eq!(get_execution(soft_run).await, Value::Null);
    server.shutdown().await;
}
