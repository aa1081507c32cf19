//! What the engine logs, captured from real runs on the manual clock by a `tracing-subscriber`
//! formatter writing every event (TRACE and up, with the fields of its spans, and each span's
//! close) into memory: the execution span carries the correlation ids, and prompts, system
//! prompts, responses, AI error messages and metadata under secret keys never show at INFO or
//! above.
//!
//! One test in its own binary: it installs a subscriber for its thread, and tracing caches per
//! call site whether anyone listens, a cache that tests in other threads would race with.
#![allow(clippy::unwrap_used)]

mod world;

use std::io::Write;
use std::sync::{Arc, Mutex};

use chill_core::testkit::Step;
use chill_core::{AiError, ExecutionStatus, JobSpec};
use serde_json::json;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use world::{World, at, options, retrying, runtime, secs};

/// Every formatted event with its level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(Level, String)>>>);

/// The writer of one event: the formatter writes the event's line into it, dropping it files
/// the line under the event's level.
struct EventWriter {
    level: Level,
    line: Vec<u8>,
    sink: Captured,
}

impl Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.sink.0.lock().unwrap().push((self.level, line));
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        self.writer(Level::TRACE)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventWriter {
        self.writer(*meta.level())
    }
}

impl Captured {
    fn writer(&self, level: Level) -> EventWriter {
        EventWriter {
            level,
            line: Vec::new(),
            sink: self.clone(),
        }
    }
}

const PROMPT: &str = "prompt-secret-6b1f";
const SYSTEM_PROMPT: &str = "system-secret-93ac";
const RESPONSE: &str = "response-secret-04d2";
const API_KEY: &str = "meta-apikey-secret-c7e0";
const CUSTOM: &str = "meta-custom-secret-58aa";
const AI_ERROR: &str = "ai-error-secret-2e9b";
const AI_ERROR_FINAL: &str = "ai-error-secret-final-d41c";
const SECRETS: [&str; 7] = [
    PROMPT,
    SYSTEM_PROMPT,
    RESPONSE,
    API_KEY,
    CUSTOM,
    AI_ERROR,
    AI_ERROR_FINAL,
];

#[test]
fn secrets_stay_out_of_logs_at_info_and_above_and_spans_carry_the_correlation_ids() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .without_time()
        .finish();
    let (flaky, broken) = tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            let w = World::new();
            let mut options = options("a");
            options.redacted_metadata_keys.push("customerRef".into());
            let chill = w.engine_on(w.store(), options);

            // Fails (retryable, the message echoes the prompt), then answers on the retry.
            let prompt = format!("Summarise the tickets; use {PROMPT}");
            let echo = AiError::Server {
                status: Some(503),
                message: format!("overloaded while reading '{prompt}' ({AI_ERROR})"),
            };
            w.ai.script(
                prompt.clone(),
                vec![
                    Step::err(echo).after(secs(1)),
                    Step::ok(RESPONSE).after(secs(2)),
                ],
            );
            let mut flaky = JobSpec::new("digest", prompt, "at(2026-06-01T00:01:00)");
            flaky.system_prompt = Some(format!("You are terse. {SYSTEM_PROMPT}"));
            flaky.metadata = json!({
                "channel": "#ops-visible",
                "slack": { "apiKey": API_KEY },
                "customer_ref": CUSTOM,
            });
            flaky.retry_policy = retrying(2, 30);
            let flaky = chill.create_job(flaky).await.unwrap();

            // Refused for good: no retry.
            let refusal = AiError::InvalidRequest {
                status: Some(400),
                message: format!("cannot do that ({AI_ERROR_FINAL})"),
            };
            w.ai.script("refused", vec![Step::err(refusal)]);
            // ...and the job is paused for it, with an alert.
            let mut refused = JobSpec::new("refused", "refused", "at(2026-06-01T00:01:00)");
            refused.pause_after_failures = Some(1);
            let broken = chill.create_job(refused).await.unwrap();

            let handle = chill.start();
            w.run_to(at(5, 0)).await;
            handle.shutdown().await;
            (
                w.executions(&flaky.id).await,
                w.executions(&broken.id).await,
            )
        })
    });
    let statuses =
        |runs: &[chill_core::Execution]| runs.iter().map(|e| e.status).collect::<Vec<_>>();
    assert_eq!(
        statuses(&flaky),
        [ExecutionStatus::Failed, ExecutionStatus::Success]
    );
    assert_eq!(statuses(&broken), [ExecutionStatus::Failed]);

    let lines = captured.0.lock().unwrap().clone();
    let loud: Vec<&String> = lines
        .iter()
        .filter(|(level, _)| *level <= Level::INFO)
        .map(|(_, line)| line)
        .collect();
    let all = |level: Level| -> Vec<&String> {
        lines
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, line)| line)
            .collect()
    };
    let text = |lines: &[&String]| lines.iter().map(|l| l.as_str()).collect::<String>();

    // Nothing secret at INFO, WARN or ERROR.
    for secret in SECRETS {
        for line in &loud {
            assert!(!line.contains(secret), "{secret} logged: {line}");
        }
    }
    // Prompts, responses and masked metadata not at any level either, except where the AI's
    // error message echoes the prompt: that message is logged at DEBUG only. The rest of the
    // metadata is shown.
    for (level, line) in &lines {
        for secret in [PROMPT, SYSTEM_PROMPT, RESPONSE, API_KEY, CUSTOM] {
            let echoed = secret == PROMPT && line.contains(AI_ERROR) && *level == Level::DEBUG;
            assert!(!line.contains(secret) || echoed, "{secret} logged: {line}");
        }
    }
    let debug = text(&all(Level::DEBUG));
    assert!(
        debug.contains(AI_ERROR) && debug.contains(AI_ERROR_FINAL),
        "{debug}"
    );
    assert!(
        debug.contains("#ops-visible") && debug.contains("[redacted]"),
        "{debug}"
    );

    // Every execution's events sit in its span, with the job and execution ids.
    for run in flaky.iter().chain(&broken) {
        let ids = format!("execution{{job_id={} execution_id={}", run.job_id, run.id);
        let started = loud
            .iter()
            .find(|l| l.contains(&ids) && l.contains("execution started"));
        assert!(started.is_some(), "no start of {ids} in:\n{}", text(&loud));
        assert!(
            !started.unwrap().contains("claim{"),
            "outside the claim span"
        );
    }
    // The requirements' levels: a retried failure warns, a final one is an error.
    let warn = text(&all(Level::WARN));
    let error = text(&all(Level::ERROR));
    assert!(warn.contains("execution failed; retry scheduled"), "{warn}");
    assert!(error.contains("execution failed; no retry"), "{error}");
    assert!(
        warn.contains("job paused after consecutive failures"),
        "{warn}"
    );
    assert!(text(&loud).contains("execution succeeded"));
    // Claims and store calls have DEBUG spans.
    assert!(debug.contains("claim{"), "{debug}");
    for operation in ["due_jobs", "claim_slots", "claim_attempt", "finish"] {
        let span = format!("store{{operation=\"{operation}\"");
        assert!(debug.contains(&span), "no {span} in\n{debug}");
    }
}
