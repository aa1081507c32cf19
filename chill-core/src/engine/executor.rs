//! Running one execution: the AI call under the job's timeout while the lease is renewed, the
//! outcome classified by the retry table, and the fenced finish.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::Instrument;

use super::Inner;
use super::breaker::{self, Admission, BreakerState, Transition};
use super::retry::{self, Failure};
use crate::ai::{AiError, AiRequest, AiResponse};
use crate::events::Event;
use crate::model::{ErrorType, Execution, ExecutionResponse, ExecutionStatus, Job, JobPatch};
use crate::ops::AlertKind;
use crate::store::{Finish, FinishOutcome, StatsDelta};
use crate::telemetry;

/// How an AI call ended, as the executor sees it.
enum CallEnd {
    Answered(Result<AiResponse, AiError>),
    /// Another instance took the execution over: stop, write nothing.
    LeaseLost,
    /// The circuit breaker is open until then: no call was made.
    Refused(DateTime<Utc>),
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
    let timeout = Duration::from_secs(u64::from(job.timeout));
    let request = AiRequest {
        payload: execution.request_payload.clone(),
        timeout,
        job_id: execution.job_id,
        execution_id: execution.id,
    };
    let mut group = None;
    if execution.started_at > inner.now() {
        // Claimed ahead of its slot (the request is ready): wait for the slot's due time, then
        // make sure the job was not paused or deleted meanwhile.
        let pending = group.insert(inner.start_groups.join(
            execution.started_at,
            execution.job_id,
            &inner.clock,
            &inner.store,
        ));
        let active = match pending.due().await {
            Some(active) => active,
            None => still_active(&inner, &execution).await,
        };
        if !active {
            pending.started();
            tracing::info!("job paused or deleted after its slot was claimed ahead; run cancelled");
            cancel_unstarted(&inner, &execution).await;
            return;
        }
        pending.started();
    }
    tracing::info!(scheduled_for = %execution.scheduled_for, "execution started");
    tracing::debug!(prompt_chars = execution.request_payload.prompt.chars().count(), system_prompt_chars = execution.request_payload.system_prompt.as_ref().map_or(0, |p| p.chars().count()), metadata = %telemetry::redacted_metadata(&job.metadata, &inner.options.redacted_metadata_keys), "request");
    inner.emit_with(|| Event::ExecutionStarted(execution.clone()));
    let called_at = inner.clock.now();
    let deadline = called_at + TimeDelta::from_std(timeout).unwrap_or(TimeDelta::MAX);
    let (admission, transition) = inner.breaker.admit(called_at);
    on_breaker(&inner, transition).await;
    let end = match admission {
        Admission::Refused { until } => CallEnd::Refused(until),
        Admission::Call { probe } => {
            let mut call = inner.ai.call(&request);
            // A client that answers at once needs no timeout timer nor heartbeat: poll it
            // once before arming them (what the biased `select!` below polls first anyway).
            let end = match poll_once(call.as_mut()).await {
                Some(answer) => CallEnd::Answered(answer),
                None => tokio::select! {
                    biased;
                    answer = &mut call => CallEnd::Answered(answer),
                    () = inner.clock.sleep_until(deadline) => CallEnd::Answered(Err(AiError::Timeout(timeout))),
                    () = heartbeat(&inner, &execution) => CallEnd::LeaseLost,
                },
            };
            drop(call);
            match &end {
                CallEnd::Answered(answer) => {
                    let failed = breaker::counts_as_failure(&answer.as_ref().map(|_| ()));
                    let transition = inner.breaker.record(probe, failed, inner.clock.now());
                    on_breaker(&inner, transition).await;
                }
                _ => inner.breaker.abandon(probe),
            }
            end
        }
    };
    let now = inner.now();
    let answer = match end {
        CallEnd::LeaseLost => {
            tracing::warn!("lease lost to another instance; abandoning the execution");
            return;
        }
        CallEnd::Refused(until) => {
            let (record, next_attempt) = refused(&inner, &execution, &job, until, now);
            Box::pin(finish(&inner, record, next_attempt, &execution, None)).await;
            return;
        }
        CallEnd::Answered(answer) => answer,
    };
    // Let the executions due at the same instant call the AI before this one writes its end:
    // a run claimed ahead waits for its whole group to start; any other yields once, so that
    // with a herd each start waits for fewer finishes.
    match &mut group {
        Some(pending) => pending.all_started().await,
        None => tokio::task::yield_now().await,
    }
    let latency = (now - called_at).num_milliseconds().max(0) as u64;
    let (record, next_attempt) = conclude(&inner, &execution, &job, answer, latency, now);
    // Boxed: keeps the spawned execution future small (tokio moves it several times).
    Box::pin(finish(&inner, record, next_attempt, &execution, None)).await;
}

/// Poll `future` once: its output if it is ready, `None` (and the waker registered) if not.
async fn poll_once<F: std::future::Future + ?Sized>(
    mut future: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Whether the job of an execution claimed ahead is still active (enabled, not deleted).
/// Asked once: when the store cannot tell, the claim stands and the run goes ahead.
async fn still_active(inner: &Inner, execution: &Execution) -> bool {
    match inner.store.inactive_jobs(&[execution.job_id]).await {
        Ok(inactive) => inactive.is_empty(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the job before a run claimed ahead; running it");
            true
        }
    }
}

/// Record a claimed execution that never called the AI as `cancelled`: its job was paused or
/// deleted before the run started. Not counted as a run in the job's statistics.
pub(crate) async fn cancel_unstarted(inner: &Arc<Inner>, execution: &Execution) {
    let record = ended_without_answer(
        execution,
        ExecutionStatus::Cancelled,
        ErrorType::Cancelled,
        "the job was paused or deleted before this run started".into(),
        inner.now(),
    );
    Box::pin(finish(inner, record, None, execution, None)).await;
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
                let model = response
                    .model
                    .as_deref()
                    .or_else(|| job.metadata.get("model").and_then(|m| m.as_str()));
                record.cost_micro_usd = inner.options.prices.cost_micro_usd(model, &usage);
            }
            record.response = Some(ExecutionResponse {
                result: response.result,
                tools_used: response.tools_used,
                conversation_turns: response.conversation_turns,
                metadata: response.metadata,
            });
            tracing::info!(latency_ms, "execution succeeded");
            tracing::debug!(result_chars = record.response.as_ref().map_or(0, |r| r.result.chars().count()), metadata = %telemetry::redacted_metadata(record.response.as_ref().map_or(&serde_json::Value::Null, |r| &r.metadata), &inner.options.redacted_metadata_keys), "response");
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

/// The record of an execution the open circuit breaker refused, and its next attempt.
fn refused(
    inner: &Inner,
    execution: &Execution,
    job: &Job,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Execution, Option<Execution>) {
    let mut record = ended_without_answer(
        execution,
        ExecutionStatus::Failed,
        ErrorType::CircuitOpen,
        format!(
            "the circuit breaker around the AI endpoint is open until {}; no call was made",
            until.to_rfc3339()
        ),
        now,
    );
    let decision = retry::decide(
        &job.retry_policy,
        execution.attempt,
        &Failure::CircuitOpen { until },
        now,
        &mut inner.rng(),
    );
    record.status = decision.status;
    record.error_details = Some(serde_json::json!({
        "kind": ErrorType::CircuitOpen.as_str(),
        "openUntil": until.to_rfc3339(),
    }));
    log_failure(&record, decision.retry_at);
    let next = decision.retry_at.map(|at| execution.retry(at, now));
    (record, next)
}

/// Publish a breaker state change; an opening is also an `ai_unreachable` alert.
async fn on_breaker(inner: &Inner, transition: Option<Transition>) {
    let Some(Transition { from, to }) = transition else {
        return;
    };
    let at = inner.now();
    tracing::warn!(%from, %to, "circuit breaker changed state");
    telemetry::breaker_state(to.code());
    inner.emit(Event::BreakerChanged { from, to, at });
    if to == BreakerState::Open {
        let message = format!(
            "the AI endpoint looks unreachable: the circuit breaker opened for {:?} after repeated failures",
            inner.options.breaker.cool_down
        );
        inner.raise(AlertKind::AiUnreachable, None, message).await;
    }
}

fn log_failure(record: &Execution, retry_at: Option<DateTime<Utc>>) {
    let error_type = record.error_type.as_deref().unwrap_or("");
    // The message may echo the prompt: DEBUG only (see the telemetry module).
    tracing::debug!(
        error = record.error_message.as_deref().unwrap_or(""),
        "AI error"
    );
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
    // The finish may start the job's buffered run under this instance's lease.
    let _writing = inner.lease_writes.begin(running.job_id);
    let outcome = inner
        .retry_store("finish", || inner.store.finish(&finish))
        .await;
    match outcome {
        Some(FinishOutcome::Finished { promoted }) => {
            telemetry::execution_ended(&finish.execution);
            if finish.stats.counted && finish.stats.cost_micro_usd > 0 {
                inner
                    .spend()
                    .add(finish.stats.completed_at, finish.stats.cost_micro_usd);
            }
            inner.emit_with(|| Event::ExecutionFinished(finish.execution.clone()));
            if finish.stats.counted && finish.stats.status.is_failure() {
                pause_if_failing(inner, &finish.execution).await;
            }
            if let Some(next) = finish.next_attempt.clone() {
                telemetry::retry_scheduled();
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

/// Pause the job of a failed execution when its run of consecutive failures reached its
/// `pauseAfterFailures`, with a note saying why, and raise an alert.
async fn pause_if_failing(inner: &Inner, failed: &Execution) {
    for _ in 0..3 {
        let job = match inner.store.get_job(&failed.job_id).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the job to check its failure streak");
                return;
            }
        };
        let Some(limit) = job.pause_after_failures else {
            return;
        };
        if !job.is_active() || job.consecutive_failures < limit {
            return;
        }
        let note = format!(
            "paused by the engine after {} consecutive failures (last: {}; its message is on execution {})",
            job.consecutive_failures,
            // The type, not the AI's message: that may echo the prompt, and alerts are logged.
            failed.error_type.as_deref().unwrap_or("unknown"),
            failed.id
        );
        let patch = JobPatch {
            enabled: Some(false),
            pause_note: Some(Some(note.chars().take(1_000).collect())),
            updated_by: Some(format!("chill:{}", inner.options.instance_id)),
            ..JobPatch::default()
        };
        let Ok(paused) = job.apply(&patch, inner.now()) else {
            return;
        };
        match inner.store.update_job(&paused, job.version).await {
            Ok(()) => {
                tracing::warn!(job_id = %job.id, failures = job.consecutive_failures, "job paused after consecutive failures");
                inner.emit(Event::JobPaused(paused));
                let message = format!("job {}: {note}", job.id);
                inner
                    .raise(AlertKind::JobPausedAfterFailures, Some(job.id), message)
                    .await;
                return;
            }
            Err(crate::store::StoreError::VersionConflict { .. }) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "could not pause the failing job");
                return;
            }
        }
    }
}
