//! Running one execution: the AI call under the job's timeout while the lease is renewed, the
//! outcome classified by the retry table, and the fenced finish.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::Instrument;

use super::Inner;
use super::retry::{self, Failure};
use crate::ai::{AiError, AiRequest, AiResponse};
use crate::events::Event;
use crate::model::{ErrorType, Execution, ExecutionResponse, ExecutionStatus, Job};
use crate::store::{Finish, FinishOutcome, StatsDelta};

/// How an AI call ended, as the executor sees it.
enum CallEnd {
    Answered(Result<AiResponse, AiError>),
    /// Another instance took the execution over: stop, write nothing.
    LeaseLost,
}

/// Run a `running` execution leased to this instance, to its end.
pub(crate) async fn run(inner: Arc<Inner>, execution: Execution, job: Job) {
    let span = tracing::info_span!(
        "execution",
        job_id = %execution.job_id,
        execution_id = %execution.id,
        attempt = execution.attempt,
        trigger = %execution.trigger,
    );
    run_in_span(inner, execution, job).instrument(span).await;
}

async fn run_in_span(inner: Arc<Inner>, execution: Execution, job: Job) {
    tracing::info!(scheduled_for = %execution.scheduled_for, "execution started");
    inner.emit(Event::ExecutionStarted(execution.clone()));
    let timeout = Duration::from_secs(u64::from(job.timeout));
    let request = AiRequest {
        payload: execution.request_payload.clone(),
        timeout,
        job_id: execution.job_id,
        execution_id: execution.id,
    };
    let deadline = inner.clock.now() + TimeDelta::from_std(timeout).unwrap_or(TimeDelta::MAX);
    let called_at = inner.clock.now();
    let end = tokio::select! {
        biased;
        answer = inner.ai.call(&request) => CallEnd::Answered(answer),
        () = inner.clock.sleep_until(deadline) => CallEnd::Answered(Err(AiError::Timeout(timeout))),
        () = heartbeat(&inner, &execution) => CallEnd::LeaseLost,
    };
    let now = inner.now();
    let answer = match end {
        CallEnd::LeaseLost => {
            tracing::warn!("lease lost to another instance; abandoning the execution");
            return;
        }
        CallEnd::Answered(answer) => answer,
    };
    let latency = (now - called_at).num_milliseconds().max(0) as u64;
    let (record, next_attempt) = conclude(&inner, &execution, &job, answer, latency, now);
    // Boxed: keeps the spawned execution future small (tokio moves it several times).
    Box::pin(finish(&inner, record, next_attempt, &execution, None)).await;
}

/// Renew the lease every heartbeat interval; returns only when the lease is lost.
pub(crate) async fn heartbeat(inner: &Inner, execution: &Execution) {
    let owner = &inner.options.instance_id;
    loop {
        inner.clock.sleep(inner.options.heartbeat_interval).await;
        let expires_at = inner.now() + inner.lease_length();
        match inner
            .store
            .renew_lease(&execution.id, owner, expires_at)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed; trying again at the next beat")
            }
        }
    }
}

/// The final record of an execution and its next attempt, from the AI's answer.
fn conclude(
    inner: &Inner,
    execution: &Execution,
    job: &Job,
    answer: Result<AiResponse, AiError>,
    latency_ms: u64,
    now: DateTime<Utc>,
) -> (Execution, Option<Execution>) {
    let mut record = execution.clone();
    record.completed_at = Some(now);
    record.duration_ms = Some((now - execution.started_at).num_milliseconds().max(0) as u64);
    record.api_latency_ms = Some(latency_ms);
    record.lease_expires_at = None;
    match answer {
        Ok(response) => {
            record.status = ExecutionStatus::Success;
            record.tools_executed_count = response.tools_used.len() as u32;
            if let Some(usage) = response.usage {
                record.input_tokens = Some(usage.input_tokens);
                record.output_tokens = Some(usage.output_tokens);
                record.tokens_used = Some(usage.total());
            }
            record.response = Some(ExecutionResponse {
                result: response.result,
                tools_used: response.tools_used,
                conversation_turns: response.conversation_turns,
                metadata: response.metadata,
            });
            tracing::info!(latency_ms, "execution succeeded");
            (record, None)
        }
        Err(error) => {
            let decision = retry::decide(
                &job.retry_policy,
                execution.attempt,
                &Failure::Ai(&error),
                now,
                &mut inner.rng(),
            );
            record.status = decision.status;
            record.error_type = Some(error.error_type().to_string());
            record.error_message = Some(error.to_string());
            record.error_details = Some(error_details(&error));
            log_failure(&record, decision.retry_at);
            let next = decision.retry_at.map(|at| execution.retry(at, now));
            (record, next)
        }
    }
}

fn log_failure(record: &Execution, retry_at: Option<DateTime<Utc>>) {
    let error_type = record.error_type.as_deref().unwrap_or("");
    match retry_at {
        Some(at) => {
            tracing::warn!(error_type, status = %record.status, retry_at = %at, "execution failed; retry scheduled")
        }
        None => tracing::error!(error_type, status = %record.status, "execution failed; no retry"),
    }
}

/// Structured details of an AI error for the execution's `errorDetails`.
fn error_details(error: &AiError) -> serde_json::Value {
    let mut details = serde_json::json!({ "kind": error.error_type() });
    match error {
        AiError::RateLimited {
            retry_after: Some(after),
            ..
        } => details["retryAfterSecs"] = after.as_secs().into(),
        AiError::Server {
            status: Some(s), ..
        }
        | AiError::InvalidRequest {
            status: Some(s), ..
        } => details["status"] = (*s).into(),
        AiError::Api {
            details: Some(d), ..
        } => details["error"] = d.clone(),
        AiError::Timeout(t) => details["timeoutSecs"] = t.as_secs().into(),
        _ => {}
    }
    details
}

/// What an ended execution adds to its job's statistics.
pub(crate) fn stats_of(record: &Execution) -> StatsDelta {
    StatsDelta {
        status: record.status,
        counted: record.status != ExecutionStatus::Cancelled,
        duration_ms: record.duration_ms.unwrap_or(0),
        error: record.error_message.clone(),
        input_tokens: record.input_tokens.unwrap_or(0),
        output_tokens: record.output_tokens.unwrap_or(0),
        cost_micro_usd: record.cost_micro_usd.unwrap_or(0),
        completed_at: record.completed_at.unwrap_or(record.started_at),
    }
}

/// Write the end of an execution, fenced on the lease (`running` under this instance, or for
/// recovery, under `recovering`'s owner with an expired lease), retrying transient store
/// errors. Runs a promoted buffered execution, and publishes the events.
pub(crate) async fn finish(
    inner: &Arc<Inner>,
    record: Execution,
    next_attempt: Option<Execution>,
    running: &Execution,
    recovering: Option<DateTime<Utc>>,
) {
    let finish = Finish {
        stats: stats_of(&record),
        owner: running
            .lease_owner
            .clone()
            .unwrap_or_else(|| inner.options.instance_id.clone()),
        expired_by: recovering,
        execution: record,
        next_attempt,
        promote: Some(inner.lease()),
    };
    let outcome = inner
        .retry_store("finish", || inner.store.finish(&finish))
        .await;
    match outcome {
        Some(FinishOutcome::Finished { promoted }) => {
            inner.emit(Event::ExecutionFinished(finish.execution.clone()));
            if let Some(next) = finish.next_attempt.clone() {
                inner.emit(Event::RetryScheduled(next));
                inner.wake.notify_one();
            }
            if let Some(promoted) = promoted {
                Box::pin(inner.dispatch_with_job(*promoted)).await;
            }
        }
        Some(FinishOutcome::Fenced) => {
            tracing::warn!(execution_id = %finish.execution.id, "finish fenced: the lease was taken over; nothing written");
        }
        None => {}
    }
}

/// The final record of an execution that is recorded without a successful answer: lease
/// expired (crashed owner) or cancelled.
pub(crate) fn ended_without_answer(
    running: &Execution,
    status: ExecutionStatus,
    kind: ErrorType,
    message: String,
    now: DateTime<Utc>,
) -> Execution {
    let mut record = running.clone();
    record.status = status;
    record.completed_at = Some(now);
    record.duration_ms = Some((now - running.started_at).num_milliseconds().max(0) as u64);
    record.error_type = Some(kind.as_str().to_string());
    record.error_message = Some(message);
    record.lease_expires_at = None;
    record
}
