//! Executions: one attempt at running a job, from its slot to its outcome and metrics.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ExecutionId, JobId};
use super::job::Job;
use crate::schedule::Slot;

string_enum! {
    /// Where an execution is in its life.
    pub enum ExecutionStatus in "status" {
        /// Created and waiting for its due time: a retry attempt, or a slot not yet started.
        Pending = "pending",
        /// Leased to an instance and running.
        Running = "running",
        /// The AI call succeeded.
        Success = "success",
        /// The AI call failed (see the error fields); a retry may follow.
        Failed = "failed",
        /// The AI call took longer than the job's timeout; a retry may follow.
        Timeout = "timeout",
        /// Not run, on purpose: blackout, overlap, missed slot (see `errorType`).
        Skipped = "skipped",
        /// Stopped by a person or by shutdown before it finished.
        Cancelled = "cancelled",
        /// Failed with no retries left; the whole attempt chain is kept.
        Dead = "dead",
    }
}

impl ExecutionStatus {
    /// Whether the execution is over: anything but `pending` and `running`.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionStatus::Pending | ExecutionStatus::Running)
    }

    /// Whether the execution counts as a failure: `failed`, `timeout` or `dead`.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Failed | ExecutionStatus::Timeout | ExecutionStatus::Dead
        )
    }
}

string_enum! {
    /// Why an execution exists.
    pub enum Trigger in "trigger" {
        /// A slot of the job's schedule.
        Scheduled = "scheduled",
        /// Someone asked for a run now.
        Manual = "manual",
        /// A later attempt after a failure.
        Retry = "retry",
    }
}

string_enum! {
    /// The kinds of error recorded in [`Execution::error_type`]. The field is a string, so that
    /// records written by newer versions still read; these are the values this version writes.
    ///
    /// ```
    /// use chill_core::ErrorType;
    /// assert_eq!(ErrorType::RateLimited.as_str(), "rate_limited");
    /// assert_eq!("lease_expired".parse::<ErrorType>().unwrap(), ErrorType::LeaseExpired);
    /// ```
    #[non_exhaustive]
    pub enum ErrorType in "errorType" {
        /// The AI call exceeded the job's timeout.
        Timeout = "timeout",
        /// The AI endpoint answered with an error not covered below.
        ApiError = "api_error",
        /// The AI endpoint could not be reached (connection, DNS, TLS, reset).
        Network = "network",
        /// The AI endpoint answered 429.
        RateLimited = "rate_limited",
        /// The AI endpoint answered 5xx.
        ServerError = "server_error",
        /// The AI endpoint refused the request (4xx other than 429); not retried.
        InvalidRequest = "invalid_request",
        /// The instance running the execution stopped renewing its lease (crashed).
        LeaseExpired = "lease_expired",
        /// The circuit breaker around the AI endpoint was open.
        CircuitOpen = "circuit_open",
        /// A token or cost budget was exhausted.
        BudgetExceeded = "budget_exceeded",
        /// The job's per-job concurrency limit was reached (status `skipped`).
        ConcurrencyLimit = "concurrency_limit",
        /// The slot fell in a blackout period (status `skipped`).
        Blackout = "blackout",
        /// The slot came due while the job was running (status `skipped`).
        Overlap = "overlap",
        /// The slot passed while no instance ran (status `skipped`).
        Missed = "missed",
        /// The execution was cancelled.
        Cancelled = "cancelled",
    }
}

/// Options sent with a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOptions {
    /// Most conversation turns.
    pub max_turns: u32,
}

/// What is sent to the AI endpoint:
/// `{"prompt": ..., "systemPrompt": ..., "options": {"maxTurns": ...}}` (`systemPrompt` left
/// out when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestPayload {
    /// The instruction.
    pub prompt: String,
    /// System context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Options.
    pub options: RequestOptions,
}

impl RequestPayload {
    /// The request a job's execution sends.
    pub fn for_job(job: &Job) -> RequestPayload {
        RequestPayload {
            prompt: job.prompt.clone(),
            system_prompt: job.system_prompt.clone(),
            options: RequestOptions {
                max_turns: job.max_turns,
            },
        }
    }
}

/// What the AI endpoint answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionResponse {
    /// The AI's answer.
    pub result: String,
    /// The tools (MCP) it used.
    #[serde(default)]
    pub tools_used: Vec<String>,
    /// Conversation turns used, when known.
    #[serde(default)]
    pub conversation_turns: Option<u32>,
    /// Anything else the endpoint returned.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// One attempt at running a job: its slot, its request and response, its metrics and errors.
///
/// The first attempt at a slot has the id [`ExecutionId::for_slot`] and is its own root; retry
/// attempts share the root and have the ids [`ExecutionId::for_attempt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// The id.
    pub id: ExecutionId,
    /// The job run.
    pub job_id: JobId,
    /// The slot (the schedule's time, jitter excluded); for a manual run, when it was asked for.
    pub scheduled_for: DateTime<Utc>,
    /// When the execution may start: the slot's time with jitter, or a retry's backoff time.
    pub due_at: DateTime<Utc>,
    /// When it started (for a pending execution: when it was created).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// Where it is in its life.
    pub status: ExecutionStatus,
    /// Why it exists.
    pub trigger: Trigger,
    /// What was sent to the AI endpoint.
    pub request_payload: RequestPayload,
    /// What the endpoint answered.
    pub response: Option<ExecutionResponse>,
    /// Time from start to end, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Time the AI endpoint took to answer, in milliseconds.
    pub api_latency_ms: Option<u64>,
    /// How many tool calls the AI made.
    #[serde(default)]
    pub tools_executed_count: u32,
    /// Tokens used, when the endpoint reports them.
    pub tokens_used: Option<u64>,
    /// Input tokens, when reported.
    pub input_tokens: Option<u64>,
    /// Output tokens, when reported.
    pub output_tokens: Option<u64>,
    /// Cost in millionths of a US dollar, when known.
    pub cost_micro_usd: Option<u64>,
    /// What went wrong, for people.
    pub error_message: Option<String>,
    /// What went wrong, for programs: one of [`ErrorType`]'s strings.
    pub error_type: Option<String>,
    /// Details of the error (status code, body excerpt, ...).
    pub error_details: Option<serde_json::Value>,
    /// Attempts before this one in its chain (`attempt - 1`).
    #[serde(default)]
    pub retry_count: u32,
    /// The attempt number in the chain, from 1.
    pub attempt: u32,
    /// The id of the chain's first attempt (this execution's own id for attempt 1).
    pub root_execution_id: ExecutionId,
    /// The instance holding the lease while it runs.
    pub lease_owner: Option<String>,
    /// When the lease runs out unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
}

impl Execution {
    /// The first attempt at a slot of a job, `pending`, created at `now`.
    pub fn scheduled(job: &Job, slot: &Slot, now: DateTime<Utc>) -> Execution {
        let id = ExecutionId::for_slot(&job.id, slot.scheduled_for);
        Execution::first(
            job,
            id,
            Trigger::Scheduled,
            slot.scheduled_for,
            slot.fire_at,
            now,
        )
    }

    /// A manual run of a job asked for at `now`, `pending` and due at once.
    pub fn manual(job: &Job, now: DateTime<Utc>) -> Execution {
        Execution::first(
            job,
            ExecutionId::new_manual(),
            Trigger::Manual,
            now,
            now,
            now,
        )
    }

    /// The next attempt after this one, `pending` until `due_at`: same slot, root and request;
    /// attempt and retry count one more.
    pub fn retry(&self, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Execution {
        let attempt = self.attempt.saturating_add(1);
        Execution {
            id: ExecutionId::for_attempt(&self.root_execution_id, attempt),
            trigger: Trigger::Retry,
            due_at,
            attempt,
            retry_count: attempt - 1,
            ..Execution::new(
                self.job_id,
                self.root_execution_id,
                self.scheduled_for,
                self.request_payload.clone(),
                now,
            )
        }
    }

    fn first(
        job: &Job,
        id: ExecutionId,
        trigger: Trigger,
        scheduled_for: DateTime<Utc>,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Execution {
        Execution {
            id,
            trigger,
            due_at,
            ..Execution::new(job.id, id, scheduled_for, RequestPayload::for_job(job), now)
        }
    }

    /// A pending first attempt with nothing recorded yet.
    fn new(
        job_id: JobId,
        root: ExecutionId,
        scheduled_for: DateTime<Utc>,
        request_payload: RequestPayload,
        now: DateTime<Utc>,
    ) -> Execution {
        Execution {
            id: root,
            job_id,
            scheduled_for,
            due_at: scheduled_for,
            started_at: now,
            completed_at: None,
            status: ExecutionStatus::Pending,
            trigger: Trigger::Scheduled,
            request_payload,
            response: None,
            duration_ms: None,
            api_latency_ms: None,
            tools_executed_count: 0,
            tokens_used: None,
            input_tokens: None,
            output_tokens: None,
            cost_micro_usd: None,
            error_message: None,
            error_type: None,
            error_details: None,
            retry_count: 0,
            attempt: 1,
            root_execution_id: root,
            lease_owner: None,
            lease_expires_at: None,
            created_at: now,
        }
    }
}
