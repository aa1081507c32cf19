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
    let dynamo = chill(&[
        "jobs",
        "list",
        "--store",
        "dynamodb://jobs?region=eu-west-1",
    ]);
    assert!(!dynamo.status.success());
    assert!(
        stderr(&dynamo).contains("not built in yet"),
        "{}",
        stderr(&dynamo)
    );
    let unknown = chill(&["jobs", "list", "--store", "redis://cache"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("unknown URL scheme 'redis'"));
}
