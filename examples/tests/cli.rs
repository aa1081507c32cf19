//! The CLI, run as the built `chill` binary on SQLite files.

// Helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::{AiServer, TempDb};
use serde_json::{Value, json};

fn chill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chill"))
        .args(args)
        .env_remove("CHILL_STORE")
        .env_remove("CLAUDE_API_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env("CHILL_LOG", "error")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Runs and expects success; returns standard output.
fn ok(args: &[&str]) -> String {
    let output = chill(args);
    assert!(
        output.status.success(),
        "chill {args:?} failed: {}{}",
        stderr(&output),
        stdout(&output)
    );
    stdout(&output)
}

fn ok_json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

#[test]
fn next_prints_rfc3339_utc_times() {
    let out = ok(&[
        "next",
        "*/15 * * * *",
        "--after",
        "2026-01-01T00:00:00Z",
        "--count",
        "3",
    ]);
    assert_eq!(
        out,
        "2026-01-01T00:15:00Z\n2026-01-01T00:30:00Z\n2026-01-01T00:45:00Z\n"
    );
    let berlin = ok(&[
        "next",
        "0 9 * * MON-FRI",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-07-03T12:00:00Z",
        "--count",
        "1",
    ]);
    assert_eq!(berlin, "2026-07-06T07:00:00Z\n");
    let bad = chill(&["next", "0 9 * *", "--count", "1"]);
    assert!(!bad.status.success());
}

#[test]
fn validate_exits_0_with_the_next_run_or_1_with_the_error() {
    let good = chill(&["validate", "rate(5 minutes)"]);
    assert!(good.status.success());
    assert!(stdout(&good).starts_with("valid; next run: 20"));
    let bad = chill(&["validate", "61 * * * *"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(stderr(&bad), "schedule: minute: 61 is out of range 0-59\n");
    let zone = chill(&["validate", "@daily", "--tz", "Mars/Olympus"]);
    assert_eq!(zone.status.code(), Some(1));
    assert!(stderr(&zone).contains("Mars/Olympus"), "{}", stderr(&zone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_executions_commands() {
    let ai = AiServer::start().await;
    let db = TempDb::new("cli-jobs");
    let store = db.url("jobs.db");
    let s = store.as_str();

    let created = ok_json(&[
        "jobs",
        "create",
        "--store",
        s,
        "--json",
        "--name",
        "Digest",
        "--prompt",
        "summarise",
        "--schedule",
        "0 9 * * MON-FRI",
        "--tz",
        "Europe/Berlin",
        "--tag",
        "daily",
        "--tag",
        "ops",
        "--max-retries",
        "1",
        "--metadata",
        "{\"team\": \"ops\"}",
    ]);
    let id = created["id"].as_str().unwrap().to_string();
    // The command closed its store: the write-ahead log was folded into the file.
    assert!(!db.dir.join("jobs.db-wal").exists());
    assert_eq!(created["timezone"], "Europe/Berlin");
    assert_eq!(created["tags"], json!(["daily", "ops"]));
    assert_eq!(created["retryPolicy"]["maxRetries"], 1);
    assert_eq!(created["metadata"], json!({"team": "ops"}));

    let missing = chill(&[
        "jobs", "create", "--store", s, "--name", "x", "--prompt", "y",
    ]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("--schedule is required"));
    let invalid = chill(&[
        "jobs",
        "create",
        "--store",
        s,
        "--name",
        "x",
        "--prompt",
        "y",
        "--schedule",
        "61 * * * *",
    ]);
    assert!(!invalid.status.success());
    assert!(stderr(&invalid).contains("schedule: minute: 61 is out of range 0-59"));

    let table = ok(&["jobs", "list", "--store", s]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("Digest") && table.contains(&id), "{table}");
    let listed = ok_json(&["jobs", "list", "--store", s, "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let got = ok_json(&["jobs", "get", &id, "--store", s, "--json"]);
    assert_eq!(got["name"], "Digest");
    let updated = ok_json(&[
        "jobs",
        "update",
        &id,
        "--store",
        s,
        "--json",
        "--name",
        "Digest v2",
        "--timeout",
        "60",
    ]);
    assert_eq!(updated["name"], "Digest v2");
    assert_eq!(updated["timeout"], 60);
    assert_eq!(updated["tags"], json!(["daily", "ops"]));

    let paused = ok_json(&[
        "jobs", "pause", &id, "--store", s, "--json", "--note", "holiday",
    ]);
    assert_eq!(paused["enabled"], false);
    assert_eq!(paused["pauseNote"], "holiday");
    let refused = chill(&[
        "jobs",
        "trigger",
        &id,
        "--store",
        s,
        "--claude-url",
        &ai.url(),
    ]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("paused"), "{}", stderr(&refused));
    // An AI endpoint that is refused stops the command before it opens (or creates) a store.
    let elsewhere = db.dir.join("never.db");
    let bad_ai = chill(&[
        "jobs",
        "trigger",
        &id,
        "--store",
        &format!("sqlite://{}", elsewhere.display()),
        "--claude-url",
        "not a url",
    ]);
    assert!(!bad_ai.status.success());
    assert!(!elsewhere.exists());
    let resumed = ok_json(&["jobs", "resume", &id, "--store", s, "--json"]);
    assert_eq!(resumed["enabled"], true);

    let run = ok_json(&[
        "jobs",
        "trigger",
        &id,
        "--store",
        s,
        "--json",
        "--claude-url",
        &ai.url(),
    ]);
    assert_eq!(run["status"], "success");
    // The command closed its store once the execution's task had ended.
    assert!(!db.dir.join("jobs.db-wal").exists());
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["response"]["result"], "answer: summarise");
    assert_eq!(ai.calls_of("summarise"), 1);

    let history = ok_json(&["executions", "list", &id, "--store", s, "--json"]);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["id"], run["id"]);
    let history_table = ok(&["executions", "list", &id, "--store", s]);
    assert!(history_table.contains("manual") && history_table.contains("success"));
    let stats = ok_json(&["jobs", "get", &id, "--store", s, "--json"]);
    assert_eq!(stats["totalRuns"], 1);
    assert_eq!(stats["successCount"], 1);

    ok(&["jobs", "delete", &id, "--store", s]);
    assert_eq!(
        ok_json(&["jobs", "list", "--store", s, "--json"]),
        json!([])
    );
    let kept = ok_json(&["jobs", "list", "--store", s, "--json", "--all"]);
    assert!(kept[0]["deletedAt"].is_string());
    ok(&["jobs", "delete", &id, "--store", s, "--hard"]);
    assert_eq!(
        ok_json(&["jobs", "list", "--store", s, "--json", "--all"]),
        json!([])
    );
    let gone = chill(&["jobs", "get", &id, "--store", s]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_round_trips_every_field_and_is_idempotent() {
    let ai = AiServer::start().await;
    let db = TempDb::new("cli-transfer");
    let source = db.url("source.db");
    let target = db.url("target.db");
    let first = ok_json(&[
        "jobs",
        "create",
        "--store",
        &source,
        "--json",
        "--name",
        "First",
        "--prompt",
        "one",
        "--schedule",
        "0 0 1 1 *",
        "--system-prompt",
        "be brief",
        "--tag",
        "a",
        "--metadata",
        "{\"nested\": {\"n\": 1}}",
        "--overlap",
        "allow",
    ]);
    let second = ok_json(&[
        "jobs",
        "create",
        "--store",
        &source,
        "--json",
        "--name",
        "Second",
        "--prompt",
        "two",
        "--schedule",
        "rate(7 days)",
        "--paused",
    ]);
    ok(&[
        "jobs",
        "trigger",
        first["id"].as_str().unwrap(),
        "--store",
        &source,
        "--claude-url",
        &ai.url(),
    ]);

    let file = db.dir.join("export.json");
    let file = file.to_str().unwrap();
    ok(&["export", "--store", &source, "--out", file]);
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 2);
    assert_eq!(exported[0]["totalRuns"], 1);
    assert_eq!(exported[1]["id"], second["id"]);

    let dry = ok(&["import", file, "--store", &target, "--dry-run"]);
    assert!(
        dry.contains("created 2, updated 0, unchanged 0 (dry run"),
        "{dry}"
    );
    assert_eq!(
        ok_json(&["jobs", "list", "--store", &target, "--json"]),
        json!([])
    );

    let report = ok_json(&["import", file, "--store", &target, "--json"]);
    assert_eq!(report["created"].as_array().unwrap().len(), 2);
    let round_trip: Value = serde_json::from_str(&ok(&["export", "--store", &target])).unwrap();
    assert_eq!(round_trip, exported, "every field kept");

    let again = ok(&["import", file, "--store", &target]);
    assert!(
        again.contains("created 0, updated 0, unchanged 2"),
        "{again}"
    );

    let mut changed = exported.clone();
    changed[1]["name"] = json!("Second, renamed");
    std::fs::write(file, changed.to_string()).unwrap();
    let dry = ok(&["import", file, "--store", &target, "--dry-run"]);
    assert!(dry.contains("created 0, updated 1, unchanged 1"), "{dry}");
    let listed = ok_json(&["jobs", "list", "--store", &target, "--json"]);
    assert_eq!(listed[1]["name"], "Second");
    ok(&["import", file, "--store", &target]);
    let listed = ok_json(&["jobs", "list", "--store", &target, "--json"]);
    assert_eq!(listed[1]["name"], "Second, renamed");
    assert_eq!(listed[0], exported[0], "the unchanged job is untouched");

    // One invalid entry: every problem listed, nothing imported.
    let mut invalid = changed.clone();
    invalid[0]["name"] = json!("First, renamed");
    invalid[1]["schedule"] = json!("61 * * * *");
    invalid
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "no id"}));
    std::fs::write(file, invalid.to_string()).unwrap();
    let refused = chill(&["import", file, "--store", &target]);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(message.contains("2 invalid entries"), "{message}");
    assert!(
        message.contains("jobs[1]") && message.contains("schedule: minute: 61"),
        "{message}"
    );
    assert!(message.contains("jobs[2]"), "{message}");
    let listed = ok_json(&["jobs", "list", "--store", &target, "--json"]);
    assert_eq!(listed[0]["name"], "First", "nothing half-imported");
}

#[test]
fn store_urls_are_checked() {
    let bad = chill(&["jobs", "list", "--store", "dynamodb://jobs?colour=red"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("parameter 'colour=red'"),
        "{}",
        stderr(&bad)
    );
    let unknown = chill(&["jobs", "list", "--store", "redis://cache"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("unknown URL scheme 'redis'"));
}

/// A `dynamodb://` store URL against the DynamoDB server `scripts/test` starts (moto): the
/// table is created, a job written and listed back.
#[test]
fn a_dynamodb_url_opens_a_table_on_a_real_server() {
    let Ok(endpoint) = std::env::var("CHILL_TEST_DYNAMODB_ENDPOINT") else {
        assert!(
            std::env::var("CHILL_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "CHILL_TEST_DYNAMODB_ENDPOINT is not set and CHILL_REQUIRE_SERVICES=1"
        );
        eprintln!("skipping: no DynamoDB server (CHILL_TEST_DYNAMODB_ENDPOINT)");
        return;
    };
    let table = format!("cli{}", std::process::id());
    let url = format!("dynamodb://{table}?endpoint={endpoint}&region=us-east-1");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_chill"))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CHILL_LOG", "error")
            .output()
            .unwrap()
    };
    let created = run(&[
        "jobs",
        "create",
        "--store",
        &url,
        "--json",
        "--name",
        "On Dynamo",
        "--prompt",
        "p",
        "--schedule",
        "@daily",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let listed = run(&["jobs", "list", "--store", &url, "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed[0]["name"], "On Dynamo");
}

/// A long-running `chill` command: its log lines as they come.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_chill"))
            .args(args)
            .env_remove("CHILL_STORE")
            .env_remove("CLAUDE_API_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env("CHILL_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// The address in the first log line that has `marker` before it.
    fn address_after(&mut self, marker: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(common::PATIENCE)
                .expect("no address in the log");
            self.log.push(line.clone());
            if let Some(rest) = line.split(marker).nth(1) {
                return rest.split('/').next().unwrap().to_string();
            }
        }
    }

    /// SIGTERM, then the exit status and the rest of the log.
    async fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut child = self.child;
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        self.log.extend(self.lines.iter());
        (status, self.log)
    }
}

async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> (u16, Option<String>, Value) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    (status, retry_after, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_an_ai_endpoint_runs_the_demo_and_stops_on_sigterm() {
    let db = TempDb::new("cli-serve");
    let store = db.url("demo.db");
    let mut server = Running::start(&["serve", "--store", &store, "--listen", "127.0.0.1:0"]);
    let addr = server.address_after("GraphQL IDE: http://");
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("WARN") && l.contains("DEMO AI endpoint")),
        "{:#?}",
        server.log
    );
    let http = reqwest::Client::new();
    let (status, _, jobs) = post_json(
        &http,
        &format!("http://{addr}/graphql"),
        json!({"query": "{ listJobs { name schedule tags } }"}),
    )
    .await;
    assert_eq!(status, 200);
    let jobs = jobs["data"]["listJobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().all(|j| j["tags"] == json!(["demo"])));

    let (status, log) = server.terminate().await;
    assert!(status.success(), "{status:?}");
    assert!(
        log.iter().any(|l| l.contains("SIGTERM received")),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.ends_with("stopped")), "{log:#?}");
    assert!(!db.dir.join("demo.db-wal").exists(), "the store was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_ai_misbehaves_on_request() {
    let mut demo = Running::start(&["demo-ai", "--listen", "127.0.0.1:0"]);
    let addr = demo.address_after("POST http://");
    let url = format!("http://{addr}/query");
    let http = reqwest::Client::new();
    let ask = |prompt: &str| json!({"prompt": prompt, "options": {"maxTurns": 3}});

    let (status, _, body) = post_json(&http, &url, ask("hello")).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], "Demo answer: hello");
    assert_eq!(body["error"], Value::Null);
    let (status, _, body) = post_json(&http, &url, ask("slow:1 think")).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("Demo answer: slow:1 think"))
    );
    assert_eq!(post_json(&http, &url, ask("fail:500 x")).await.0, 500);
    assert_eq!(post_json(&http, &url, ask("fail:400 x")).await.0, 400);
    let (status, retry_after, _) = post_json(&http, &url, ask("ratelimit:7 x")).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("7")));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(post_json(&http, &url, ask("flaky:2 report")).await.0);
    }
    assert_eq!(statuses, [503, 503, 200, 503, 503]);
    let (status, _, body) = post_json(&http, &url, ask("error: broken")).await;
    assert_eq!(status, 200);
    assert!(body["error"]["message"].is_string());

    let (status, _) = demo.terminate().await;
    assert!(status.success());
}
