//! What the engine tells operators: metrics through the [`metrics`] facade, logs and spans
//! through [`tracing`], and what is kept out of them.
//!
//! # Metrics
//!
//! The library only records; the host installs a recorder (an exporter such as
//! `metrics-exporter-prometheus`) and may call [`describe_metrics`] once to attach the
//! descriptions and units below. Without a recorder every call is a no-op. Names follow the
//! Prometheus conventions; the constants of this module name them.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `chill_executions_total` | counter | `status`: `success`, `failed`, `timeout`, `dead`, `cancelled`, `skipped` | executions that ended, as written to the store (a skipped slot counts when its claim is written) |
//! | `chill_execution_duration_seconds` | histogram | `status` | how long an ended execution ran, from its start to its end (skipped slots are not sampled) |
//! | `chill_ai_latency_seconds` | histogram | — | how long the AI client took to answer (or to fail, or to time out) |
//! | `chill_active_jobs` | gauge | — | enabled, non-deleted jobs, as counted by the last metrics round of the maintenance task (every `metrics_interval`) |
//! | `chill_running_executions` | gauge | — | executions running on this process now |
//! | `chill_due_backlog` | gauge | — | due items (retry attempts plus jobs with due slots) the scheduler's last read found, at most the free capacity (and the claim batch) per kind: the queue depth as the scheduler sees it |
//! | `chill_retries_scheduled_total` | counter | — | retry attempts scheduled after a failure |
//! | `chill_breaker_state` | gauge | — | the AI circuit breaker: 0 closed, 1 half-open, 2 open |
//! | `chill_store_errors_total` | counter | `operation` (the `Store` method), `kind`: `unavailable`, `throttled`, `invalid_input`, `backend` | failed store calls; answers such as "not found" or "version conflict" are not errors here |
//! | `chill_tokens_total` | counter | `kind`: `input`, `output` | AI tokens of ended executions, when the AI reported them |
//! | `chill_cost_micro_usd_total` | counter | — | cost of ended executions in millionths of a US dollar, when priced |
//!
//! Counts are per process: several engine instances in one process add up.
//!
//! # Logs and spans
//!
//! - One span per execution, `execution` at INFO, with `job_id`, `execution_id` (the
//!   correlation id), `attempt` and `trigger`; every event of the run is inside it.
//! - `claim` at DEBUG for each scheduler round, `store` at DEBUG for each store call (with its
//!   `operation`, and `error` recorded on the span when the call fails).
//! - ERROR: something needs a person: an execution failed for good (no retry left, or not
//!   retryable), a store operation gave up, a stored schedule no longer parses.
//! - WARN: the engine copes but someone may want to know: a failure that will be retried, a
//!   transient store error, a lost lease, a recovered crashed execution.
//! - INFO: lifecycle: engine started/stopped, job created/changed/purged, execution
//!   started/succeeded, slot skipped.
//! - DEBUG: loop internals, claims lost to other instances, store calls, the AI error message,
//!   request sizes and the job's metadata with its secret keys masked.
//!
//! Never logged at any level by the engine: prompts, system prompts, AI responses, API keys.
//! The AI's error message may echo the prompt, so it is logged at DEBUG only (it is kept on
//! the execution's `errorMessage`, where the host controls who reads it); WARN and ERROR
//! events carry its `error_type` instead. Metadata values under a key listed in
//! [`crate::ChillOptions::redacted_metadata_keys`] are masked wherever metadata is logged.
//! Store error messages are logged at WARN/ERROR; stores put no stored values in them.

use metrics::{counter, gauge, histogram};

use crate::model::{Execution, ExecutionStatus};
use crate::store::StoreError;

/// Counter `chill_executions_total{status}`: executions that ended, by status.
pub const EXECUTIONS_TOTAL: &str = "chill_executions_total";
/// Histogram `chill_execution_duration_seconds{status}`: run time of ended executions.
pub const EXECUTION_DURATION_SECONDS: &str = "chill_execution_duration_seconds";
/// Histogram `chill_ai_latency_seconds`: time the AI client took to answer.
pub const AI_LATENCY_SECONDS: &str = "chill_ai_latency_seconds";
/// Gauge `chill_active_jobs`: enabled, non-deleted jobs.
pub const ACTIVE_JOBS: &str = "chill_active_jobs";
/// Gauge `chill_running_executions`: executions running on this process.
pub const RUNNING_EXECUTIONS: &str = "chill_running_executions";
/// Gauge `chill_due_backlog`: due items found by the scheduler's last read.
pub const DUE_BACKLOG: &str = "chill_due_backlog";
/// Counter `chill_retries_scheduled_total`: retry attempts scheduled.
pub const RETRIES_SCHEDULED_TOTAL: &str = "chill_retries_scheduled_total";
/// Gauge `chill_breaker_state`: [`BREAKER_CLOSED`], [`BREAKER_HALF_OPEN`] or [`BREAKER_OPEN`].
pub const BREAKER_STATE: &str = "chill_breaker_state";
/// Counter `chill_store_errors_total{operation,kind}`: failed store calls.
pub const STORE_ERRORS_TOTAL: &str = "chill_store_errors_total";
/// Counter `chill_tokens_total{kind}`: AI tokens, `kind` `input` or `output`.
pub const TOKENS_TOTAL: &str = "chill_tokens_total";
/// Counter `chill_cost_micro_usd_total`: cost in millionths of a US dollar.
pub const COST_MICRO_USD_TOTAL: &str = "chill_cost_micro_usd_total";

/// [`BREAKER_STATE`] while the breaker is closed (calls go through).
pub const BREAKER_CLOSED: u8 = 0;
/// [`BREAKER_STATE`] while the breaker lets a few probe calls through.
pub const BREAKER_HALF_OPEN: u8 = 1;
/// [`BREAKER_STATE`] while the breaker fails calls fast.
pub const BREAKER_OPEN: u8 = 2;

/// Register the descriptions and units of every metric with the installed recorder. Call it
/// once after installing the recorder; optional.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(EXECUTIONS_TOTAL, "Executions that ended, by status");
    describe_histogram!(
        EXECUTION_DURATION_SECONDS,
        Unit::Seconds,
        "Run time of ended executions, by status"
    );
    describe_histogram!(
        AI_LATENCY_SECONDS,
        Unit::Seconds,
        "Time the AI client took to answer"
    );
    describe_gauge!(ACTIVE_JOBS, "Enabled, non-deleted jobs");
    describe_gauge!(RUNNING_EXECUTIONS, "Executions running on this process");
    describe_gauge!(DUE_BACKLOG, "Due items found by the scheduler's last read");
    describe_counter!(RETRIES_SCHEDULED_TOTAL, "Retry attempts scheduled");
    describe_gauge!(
        BREAKER_STATE,
        "AI circuit breaker: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(
        STORE_ERRORS_TOTAL,
        "Failed store calls, by operation and kind"
    );
    describe_counter!(TOKENS_TOTAL, "AI tokens of ended executions, by kind");
    describe_counter!(
        COST_MICRO_USD_TOTAL,
        "Cost of ended executions in millionths of a US dollar"
    );
}

/// An execution's end was written (or a skipped slot was claimed): its status, duration, AI
/// latency, tokens and cost.
pub(crate) fn execution_ended(record: &Execution) {
    let status = record.status.as_str();
    counter!(EXECUTIONS_TOTAL, "status" => status).increment(1);
    if record.status != ExecutionStatus::Skipped {
        let seconds = record.duration_ms.unwrap_or(0) as f64 / 1000.0;
        histogram!(EXECUTION_DURATION_SECONDS, "status" => status).record(seconds);
    }
    if let Some(ms) = record.api_latency_ms {
        histogram!(AI_LATENCY_SECONDS).record(ms as f64 / 1000.0);
    }
    if let Some(n) = record.input_tokens.filter(|n| *n > 0) {
        counter!(TOKENS_TOTAL, "kind" => "input").increment(n);
    }
    if let Some(n) = record.output_tokens.filter(|n| *n > 0) {
        counter!(TOKENS_TOTAL, "kind" => "output").increment(n);
    }
    if let Some(cost) = record.cost_micro_usd.filter(|c| *c > 0) {
        counter!(COST_MICRO_USD_TOTAL).increment(cost);
    }
}

/// A retry attempt was written.
pub(crate) fn retry_scheduled() {
    counter!(RETRIES_SCHEDULED_TOTAL).increment(1);
}

/// The scheduler's last read found `n` due items.
pub(crate) fn due_backlog(n: usize) {
    gauge!(DUE_BACKLOG).set(n as f64);
}

/// Set [`ACTIVE_JOBS`]: the number of enabled, non-deleted jobs, as just counted.
pub(crate) fn set_active_jobs(n: usize) {
    gauge!(ACTIVE_JOBS).set(n as f64);
}

/// Set [`BREAKER_STATE`]: [`BREAKER_CLOSED`], [`BREAKER_HALF_OPEN`] or [`BREAKER_OPEN`].
pub(crate) fn breaker_state(code: u8) {
    gauge!(BREAKER_STATE).set(f64::from(code));
}

/// A store call failed. Answers (not found, already exists, version conflict) are not
/// counted: they are part of the protocol.
pub(crate) fn store_error(operation: &'static str, error: &StoreError) {
    let kind = match error {
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Throttled(_) => "throttled",
        StoreError::InvalidInput { .. } => "invalid_input",
        StoreError::Backend(_) => "backend",
        StoreError::NotFound { .. }
        | StoreError::AlreadyExists { .. }
        | StoreError::VersionConflict { .. } => return,
    };
    counter!(STORE_ERRORS_TOTAL, "operation" => operation, "kind" => kind).increment(1);
}

/// Counts one execution in [`RUNNING_EXECUTIONS`] while it lives: made when an execution is
/// dispatched, dropped when its task ends or is aborted.
#[derive(Debug)]
pub(crate) struct RunningExecution(());

impl RunningExecution {
    pub(crate) fn start() -> RunningExecution {
        gauge!(RUNNING_EXECUTIONS).increment(1.0);
        RunningExecution(())
    }
}

impl Drop for RunningExecution {
    fn drop(&mut self) {
        gauge!(RUNNING_EXECUTIONS).decrement(1.0);
    }
}

/// Metadata keys masked by default: see [`crate::ChillOptions::redacted_metadata_keys`].
pub const DEFAULT_REDACTED_METADATA_KEYS: &[&str] = &[
    "apiKey",
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "credential",
    "cookie",
    "privateKey",
];

/// What a masked value is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Lower case without `_`, `-`, `.` and spaces: `X-Api-Key` and `api_key` both become
/// `xapikey`/`apikey`.
fn normalized(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A copy of `metadata` fit for a log: every value (at any depth) whose key, normalized,
/// contains one of `keys`, normalized, is replaced by `[redacted]`.
pub(crate) fn redacted_metadata(
    metadata: &serde_json::Value,
    keys: &[String],
) -> serde_json::Value {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| normalized(k))
        .filter(|k| !k.is_empty())
        .collect();
    redact(metadata, &keys)
}

fn redact(value: &serde_json::Value, keys: &[String]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let name = normalized(k);
                    let shown = if keys.iter().any(|s| name.contains(s.as_str())) {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v, keys)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, keys)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_are_masked_at_any_depth_whatever_their_spelling() {
        let keys: Vec<String> = DEFAULT_REDACTED_METADATA_KEYS
            .iter()
            .map(|k| k.to_string())
            .collect();
        let metadata = json!({
            "channel": "#ops",
            "slackApiKey": "k1",
            "X-Api-Key": "k2",
            "nested": [{ "db_password": "p", "host": "h", "Authorization": { "bearer": "t" } }],
            "githubToken": "t2",
        });
        assert_eq!(
            redacted_metadata(&metadata, &keys),
            json!({
                "channel": "#ops",
                "slackApiKey": "[redacted]",
                "X-Api-Key": "[redacted]",
                "nested": [{ "db_password": "[redacted]", "host": "h", "Authorization": "[redacted]" }],
                "githubToken": "[redacted]",
            })
        );
        assert_eq!(
            redacted_metadata(&json!({ "customer": "c" }), &["Customer".into(), "".into()]),
            json!({ "customer": "[redacted]" })
        );
        assert_eq!(redacted_metadata(&json!("plain"), &keys), json!("plain"));
    }
}
