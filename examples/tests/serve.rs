//! `chill serve` end to end: the server in process on an ephemeral port, a real AI endpoint
//! started by the test, a SQLite file, and a GraphQL client over HTTP and WebSocket.

// Helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{AiServer, Gql, Subscription, TempDb, start_server};
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
    let ai = AiServer::start().await;
    let db = TempDb::new("scheduled");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());

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
    let ai = AiServer::start().await;
    let db = TempDb::new("trigger");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
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
    let ai = AiServer::start().await;
    let db = TempDb::new("retry");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
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
    let ai = AiServer::start().await;
    let db = TempDb::new("invalid");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
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
    let ai = AiServer::start().await;
    let db = TempDb::new("http");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());

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
    assert!(
        text.lines()
            .any(|l| l.starts_with("chill_server_graphql_requests_total{outcome=\"ok\"} ")),
        "{text}"
    );
    assert!(
        text.contains("# TYPE chill_server_graphql_requests_total counter"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_the_older_graphql_ws_protocol() {
    let ai = AiServer::start().await;
    let db = TempDb::new("legacy");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
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
    let ai = AiServer::start().await;
    let db = TempDb::new("big-subscribe");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_file_keeps_everything_and_runs_no_slot_twice() {
    let ai = AiServer::start().await;
    let db = TempDb::new("restart");
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
    let job = create_job(
        &gql,
        json!({"name": "survivor", "prompt": "keep going", "schedule": "* * * * * *"}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    let mut complete = completions(server.local_addr(), Some(&id)).await;
    for _ in 0..2 {
        complete.next().await;
    }
    let before = executions(&gql, &id).await;
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
    let kept = get_job(&gql, &id).await;
    assert_eq!(kept["name"], "survivor");
    assert!(kept["totalRuns"].as_u64().unwrap() >= 2);
    assert!(before.len() >= 2);

    let mut complete = completions(server.local_addr(), Some(&id)).await;
    for _ in 0..2 {
        let e = complete.next().await["onJobExecutionComplete"].clone();
        assert_eq!(e["status"], "success");
    }
    let history = executions(&gql, &id).await;
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
        ai: chill_examples::AiChoice::Query(ai.url()),
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
