//! The CLI, run as the built `chill` binary on SQLite files.

// Helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::{AiServer, TempDb};
use serde_json::{Value, json};

fn chill(args: &[&str]) -> Output {
    chill_with_env(args, &[])
}

/// `chill` with these environment variables set (and none of its own inherited).
fn chill_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().unwrap()
}

/// The `chill` command with `args`, none of the environment variables it reads inherited,
/// and `env` set.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chill"));
    command.args(args);
    for name in [
        "CHILL_STORE",
        "CHILL_LISTEN",
        "CLAUDE_API_URL",
        "CLAUDE_API_KEY",
        "CLAUDE_API_TIMEOUT",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_MODEL",
    ] {
        command.env_remove(name);
    }
    command.env("CHILL_LOG", "error").envs(env.iter().copied());
    command
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

    let ai_url = ai.url();
    let trigger = || {
        ok_json(&[
            "jobs",
            "trigger",
            &id,
            "--store",
            s,
            "--json",
            "--claude-url",
            &ai_url,
        ])
    };
    let run = trigger();
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
    // A second run: newest first, and --limit keeps the newest.
    let second = trigger();
    let history = ok_json(&["executions", "list", &id, "--store", s, "--json"]);
    let ids: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, [&second["id"], &run["id"]]);
    let newest = ok_json(&[
        "executions",
        "list",
        &id,
        "--store",
        s,
        "--json",
        "--limit",
        "1",
    ]);
    assert_eq!(newest.as_array().unwrap().len(), 1);
    assert_eq!(newest[0]["id"], second["id"]);

    assert_eq!(
        ok_json(&["jobs", "delete", &id, "--store", s, "--json"]),
        json!({"id": id, "deleted": "soft"})
    );
    assert_eq!(
        ok_json(&["jobs", "list", "--store", s, "--json"]),
        json!([])
    );
    let kept = ok_json(&["jobs", "list", "--store", s, "--json", "--all"]);
    assert!(kept[0]["deletedAt"].is_string());
    let purged = ok(&["jobs", "delete", &id, "--store", s, "--hard"]);
    assert_eq!(purged, format!("deleted {id} and its history\n"));
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

    // Every field away from its default (configuration, statistics, audit): imported into a
    // fresh store and exported again, it comes back exactly.
    let mut full = exported.clone();
    let config = json!({
        "timezone": "Europe/Berlin",
        "maxTurns": 7,
        "timeout": 90,
        "retryPolicy": {"maxRetries": 4, "retryDelay": 15, "maxDelay": 600, "retryOnTimeout": true},
        "startDate": "2026-01-01T00:00:00Z",
        "endDate": "2036-01-01T00:00:00Z",
        "blackoutPeriods": [
            {"start": "2030-12-24T00:00:00Z", "end": "2030-12-27T00:00:00Z", "reason": "holidays"}
        ],
        "dstPolicy": {"repeated": "twice", "skipped": "skip"},
        "catchUpPolicy": "run_all",
        "catchUpWindow": 120,
        "jitter": 30,
        "budget": {"dailyMicroUsd": 5_000_000, "monthlyMicroUsd": 90_000_000},
        "maxConcurrency": 2,
        "pauseAfterFailures": 3,
    });
    let statistics_and_audit = json!({
        "totalInputTokens": 1200,
        "totalOutputTokens": 300,
        "totalTokens": 1500,
        "totalCostMicroUsd": 4200,
        "spend": {"day": 20260101, "dayMicroUsd": 4200, "month": 202601, "monthMicroUsd": 4200},
        "createdBy": "ops-bot",
        "updatedBy": "ops-bot 2",
    });
    for fields in [&config, &statistics_and_audit] {
        for (field, value) in fields.as_object().unwrap() {
            assert!(full[0].get(field).is_some(), "{field} is in the export");
            assert_ne!(&full[0][field], value, "{field} is set to something new");
            full[0][field] = value.clone();
        }
    }
    full[1]["pauseNote"] = json!("on hold");
    let full_file = db.dir.join("full.json");
    std::fs::write(&full_file, full.to_string()).unwrap();
    let full_file = full_file.to_str().unwrap();
    let fresh = db.url("fresh.db");
    ok(&["import", full_file, "--store", &fresh]);
    let kept: Value = serde_json::from_str(&ok(&["export", "--store", &fresh])).unwrap();
    assert_eq!(kept, full, "every field kept");

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

    let again = command(&["import", "-", "--store", &target], &[])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let again = stdout(&again);
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

    // Imported over existing jobs, every configuration field is updated.
    let updated = ok(&["import", full_file, "--store", &target]);
    assert!(
        updated.contains("created 0, updated 2, unchanged 0"),
        "{updated}"
    );
    let listed = ok_json(&["jobs", "list", "--store", &target, "--json"]);
    for (field, value) in config.as_object().unwrap() {
        assert_eq!(&listed[0][field], value, "{field} updated");
    }
    assert_eq!(listed[1]["name"], "Second", "renamed back, as in the file");
    assert_eq!(listed[1]["pauseNote"], "on hold");
    assert_eq!(
        listed[0]["updatedBy"], "chill import",
        "the import is the author"
    );
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

/// The value of `var`, which `scripts/test` sets when it has the service running; `None`
/// (the test skips) when it is not set, a failure under `CHILL_REQUIRE_SERVICES=1`.
fn service(var: &str) -> Option<String> {
    let value = std::env::var(var).ok();
    if value.is_none() {
        assert!(
            std::env::var("CHILL_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{var} is not set and CHILL_REQUIRE_SERVICES=1"
        );
        eprintln!("skipping: {var} is not set");
    }
    value
}

/// Writes a paused job with this run's own tag to the store at `url` (`env`: what the store
/// needs), finds it by the tag, purges it and finds nothing.
fn a_job_round_trips_through(url: &str, env: &[(&str, &str)]) {
    let run = |args: &[&str]| -> Value {
        let output = chill_with_env(args, env);
        assert!(
            output.status.success(),
            "{url}: {args:?}: {}",
            stderr(&output)
        );
        serde_json::from_str(&stdout(&output)).unwrap()
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("cli-{}-{nanos}", std::process::id());
    let created = run(&[
        "jobs",
        "create",
        "--store",
        url,
        "--json",
        "--name",
        "On a server",
        "--prompt",
        "p",
        "--schedule",
        "@daily",
        "--tag",
        &tag,
        "--paused",
    ]);
    let id = created["id"].as_str().unwrap();
    let listed = run(&["jobs", "list", "--store", url, "--json", "--tag", &tag]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{url}: {listed}");
    assert_eq!(listed[0]["id"], created["id"], "{url}");
    assert_eq!(listed[0]["name"], "On a server", "{url}");
    run(&["jobs", "delete", id, "--store", url, "--hard", "--json"]);
    let listed = run(&[
        "jobs", "list", "--store", url, "--json", "--tag", &tag, "--all",
    ]);
    assert_eq!(listed, json!([]), "{url}");
}

/// `postgres://` and `mysql://` store URLs against the servers `scripts/test` checks (the
/// tables are the default `chill_` ones of the `test` database; the job is paused, so one a
/// failed run leaves never runs).
#[test]
fn postgres_and_mysql_urls_open_a_store_on_a_real_server() {
    for var in ["CHILL_TEST_POSTGRES_URL", "CHILL_TEST_MYSQL_URL"] {
        if let Some(url) = service(var) {
            a_job_round_trips_through(&url, &[]);
        }
    }
}

/// A `dynamodb://` store URL against the DynamoDB server `scripts/test` starts (moto): the
/// table is created, a job written, listed back and purged.
#[test]
fn a_dynamodb_url_opens_a_table_on_a_real_server() {
    let Some(endpoint) = service("CHILL_TEST_DYNAMODB_ENDPOINT") else {
        return;
    };
    let table = format!("cli{}", std::process::id());
    a_job_round_trips_through(
        &format!("dynamodb://{table}?endpoint={endpoint}&region=us-east-1"),
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
}

/// A long-running `chill` command: its log lines as they come.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        Running::start_with_env(args, &[])
    }

    /// [`Running::start`] with these environment variables set.
    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Running {
        use std::io::{BufRead, BufReader};
        let mut child = command(args, env)
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
    async fn terminate(self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal("-TERM").await
    }

    /// `signal` (`-TERM`, `-INT`: what Ctrl-C sends), then the exit status and the rest of
    /// the log.
    async fn signal(mut self, signal: &str) -> (std::process::ExitStatus, Vec<String>) {
        let killed = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let patience = std::time::Instant::now() + common::PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < patience,
                "still running after {signal}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let mut log = std::mem::take(&mut self.log);
        log.extend(self.lines.iter());
        (status, log)
    }
}

impl Running {
    /// Sends `signal` and checks a graceful stop: exit 0, the log names the signal
    /// (`received`) and says `stopped`, and the SQLite store's write-ahead log `wal` is gone
    /// (the store was closed).
    async fn stops_gracefully_on(self, signal: &str, received: &str, wal: &std::path::Path) {
        let (status, log) = self.signal(signal).await;
        assert!(status.success(), "{status:?}");
        assert!(log.iter().any(|l| l.contains(received)), "{log:#?}");
        assert!(log.iter().any(|l| l.ends_with("stopped")), "{log:#?}");
        assert!(!wal.exists(), "the store was closed");
    }
}

/// A test that fails leaves no process behind.
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
    // A newcomer sees executions within a minute.
    let patience = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, _, runs) = post_json(
            &http,
            &format!("http://{addr}/graphql"),
            json!({"query": "{ listJobs { totalRuns } }"}),
        )
        .await;
        let runs: u64 = runs["data"]["listJobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["totalRuns"].as_u64().unwrap())
            .sum();
        if runs > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < patience,
            "no demo execution within a minute"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    server
        .stops_gracefully_on("-TERM", "SIGTERM received", &db.dir.join("demo.db-wal"))
        .await;
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
    let asked = std::time::Instant::now();
    let (status, _, body) = post_json(&http, &url, ask("slow:1 think")).await;
    assert!(
        asked.elapsed() >= std::time::Duration::from_secs(1),
        "slow:1 answers after a second"
    );
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

/// The path and API key of one call to a [`KeyedAi`].
type Call = (String, Option<String>);

/// An AI endpoint with both APIs, `POST /query` (the requirements') and `POST /v1/messages`
/// (Anthropic's), that notes the path and the `x-api-key` of every call.
struct KeyedAi {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl KeyedAi {
    async fn start() -> KeyedAi {
        use axum::routing::post;
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let app = axum::Router::new()
            .route("/query", post(keyed_query))
            .route("/v1/messages", post(keyed_messages))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        KeyedAi { addr, calls }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn query_url(&self) -> String {
        format!("{}/query", self.base())
    }

    /// The calls so far, as `(path, key)`.
    fn calls(&self) -> Vec<(&'static str, Option<String>)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(path, key)| {
                let path: &'static str = if path == "/query" {
                    "/query"
                } else {
                    "/v1/messages"
                };
                (path, key.clone())
            })
            .collect()
    }
}

type Calls = axum::extract::State<Arc<Mutex<Vec<Call>>>>;

fn note_call(calls: &Calls, path: &str, headers: &axum::http::HeaderMap) {
    let key = headers
        .get("x-api-key")
        .map(|k| k.to_str().unwrap().to_string());
    calls.lock().unwrap().push((path.to_string(), key));
}

async fn keyed_query(
    calls: Calls,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    note_call(&calls, "/query", &headers);
    axum::Json(json!({
        "result": format!("answer: {}", body["prompt"].as_str().unwrap_or_default()),
        "toolsUsed": [],
        "metadata": {},
        "error": null,
    }))
}

async fn keyed_messages(
    calls: Calls,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    note_call(&calls, "/v1/messages", &headers);
    let prompt = body["messages"][0]["content"].as_str().unwrap_or_default();
    axum::Json(json!({
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": format!("message: {prompt}")}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }))
}

/// `jobs trigger` (and `serve`, which chooses the same way) calls the endpoint that the flags
/// and environment choose, with the key the environment gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_trigger_calls_the_ai_endpoint_the_flags_and_environment_choose_with_its_key() {
    let ai = KeyedAi::start().await;
    let db = TempDb::new("cli-ai");
    let store = db.url("ai.db");
    let created = ok_json(&[
        "jobs",
        "create",
        "--store",
        &store,
        "--json",
        "--name",
        "Keyed",
        "--prompt",
        "hello",
        "--schedule",
        "0 0 1 1 *",
    ]);
    let id = created["id"].as_str().unwrap();
    let (base, query) = (ai.base(), ai.query_url());
    let trigger = |flags: &[&str], env: &[(&str, &str)]| -> Value {
        let mut args = vec!["jobs", "trigger", id, "--store", &store, "--json"];
        args.extend_from_slice(flags);
        let output = chill_with_env(&args, env);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    };

    let run = trigger(
        &["--claude-url", &query],
        &[("CLAUDE_API_KEY", "query-key")],
    );
    assert_eq!(run["response"]["result"], "answer: hello");
    trigger(&[], &[("CLAUDE_API_URL", &query)]);
    let messages = [
        ("ANTHROPIC_API_KEY", "messages-key"),
        ("ANTHROPIC_BASE_URL", base.as_str()),
    ];
    let run = trigger(&[], &messages);
    assert_eq!(run["response"]["result"], "message: hello");
    // --anthropic wins over a /query endpoint.
    trigger(&["--anthropic", "--claude-url", &query], &messages);
    let bad = chill_with_env(
        &[
            "jobs",
            "trigger",
            id,
            "--store",
            &store,
            "--claude-url",
            &query,
        ],
        &[("CLAUDE_API_TIMEOUT", "soon")],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("CLAUDE_API_TIMEOUT"),
        "{}",
        stderr(&bad)
    );

    let key = |k: &str| Some(k.to_string());
    assert_eq!(
        ai.calls(),
        [
            ("/query", key("query-key")),
            ("/query", None),
            ("/v1/messages", key("messages-key")),
            ("/v1/messages", key("messages-key")),
        ]
    );
}

/// `chill serve` configured by its environment variables alone, stopped by SIGINT (what
/// Ctrl-C sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_its_settings_from_the_environment_and_stops_on_ctrl_c() {
    let ai = KeyedAi::start().await;
    let db = TempDb::new("cli-serve-env");
    let store = db.url("env.db");
    let query = ai.query_url();
    let mut server = Running::start_with_env(
        &["serve"],
        &[
            ("CHILL_STORE", &store),
            ("CHILL_LISTEN", "127.0.0.1:0"),
            ("CLAUDE_API_URL", &query),
            ("CLAUDE_API_KEY", "serve-key"),
        ],
    );
    let addr = server.address_after("GraphQL IDE: http://");
    assert!(
        !server.log.iter().any(|l| l.contains("DEMO AI")),
        "{:#?}",
        server.log
    );
    let graphql = format!("http://{addr}/graphql");
    let http = reqwest::Client::new();
    let ask = |query: &str, variables: Value| json!({"query": query, "variables": variables});
    let (_, _, listed) = post_json(&http, &graphql, ask("{ listJobs { id } }", json!({}))).await;
    assert_eq!(
        listed["data"]["listJobs"],
        json!([]),
        "no demo jobs with a real AI endpoint"
    );
    let (_, _, created) = post_json(
        &http,
        &graphql,
        ask(
            "mutation { createJob(input: {name: \"E\", prompt: \"from env\", schedule: \"0 0 1 1 *\"}) { id } }",
            json!({}),
        ),
    )
    .await;
    let job = created["data"]["createJob"]["id"].clone();
    let (_, _, triggered) = post_json(
        &http,
        &graphql,
        ask(
            "mutation($id: ID!) { triggerJob(id: $id) { id } }",
            json!({"id": job}),
        ),
    )
    .await;
    let execution = triggered["data"]["triggerJob"]["id"].clone();
    let patience = std::time::Instant::now() + common::PATIENCE;
    loop {
        let (_, _, got) = post_json(
            &http,
            &graphql,
            ask(
                "query($id: ID!) { getExecution(id: $id) { status response } }",
                json!({"id": execution}),
            ),
        )
        .await;
        let got = &got["data"]["getExecution"];
        if got["status"] == "success" {
            assert_eq!(got["response"]["result"], "answer: from env");
            break;
        }
        assert!(std::time::Instant::now() < patience, "{got}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ai.calls(), [("/query", Some("serve-key".to_string()))]);
    assert!(
        db.dir.join("env.db").exists(),
        "CHILL_STORE named the store"
    );

    server
        .stops_gracefully_on("-INT", "Ctrl-C received", &db.dir.join("env.db-wal"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_no_demo_jobs_leaves_an_empty_store_empty() {
    let db = TempDb::new("cli-serve-empty");
    let store = db.url("empty.db");
    let mut server = Running::start(&[
        "serve",
        "--store",
        &store,
        "--listen",
        "127.0.0.1:0",
        "--no-demo-jobs",
    ]);
    let addr = server.address_after("GraphQL IDE: http://");
    assert!(
        server.log.iter().any(|l| l.contains("DEMO AI endpoint")),
        "the demo endpoint still runs: {:#?}",
        server.log
    );
    let (status, _, jobs) = post_json(
        &reqwest::Client::new(),
        &format!("http://{addr}/graphql"),
        json!({"query": "{ listJobs { id } }"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(jobs["data"]["listJobs"], json!([]));
    let (status, _) = server.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// With no `--store` and no `CHILL_STORE`, a command works on `chill.db` in the current
/// directory, created there; `serve`'s help shows its defaults and variables.
#[test]
fn the_defaults_are_chill_db_here_and_port_8080() {
    let db = TempDb::new("cli-defaults");
    let listed = command(&["jobs", "list", "--json"], &[])
        .current_dir(&db.dir)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(stdout(&listed), "[]\n");
    assert!(db.dir.join("chill.db").exists());
    let help = ok(&["serve", "--help"]);
    for shown in [
        "[env: CHILL_STORE=]",
        "[default: sqlite://chill.db]",
        "[env: CHILL_LISTEN=]",
        "[default: 127.0.0.1:8080]",
        "[env: CLAUDE_API_URL=]",
        "--no-demo-jobs",
        "--anthropic",
    ] {
        assert!(help.contains(shown), "{shown} in {help}");
    }
}
