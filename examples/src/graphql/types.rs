//! The GraphQL output types: `Job` and `JobExecution` with every field of their models, and
//! the small types around them.
//!
//! Fields of the requirements' models keep their names and nullability (`maxTurns: Int`,
//! `startedAt: DateTime!`); status and trigger values are the lowercase strings of the
//! requirements (`success`, `retry`).
//!
//! Every object resolves its fields one after the other (`serial`): they are read from the
//! model in memory, so async-graphql's default, a task set polling each field concurrently,
//! only added its bookkeeping to every field of every job in a list. The fields that read
//! the store (`Job.executions`, `JobExecution.job`) are one per object; items of a list are
//! still resolved concurrently.

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chill_core::store::PageRequest;
use chill_core::{Blackout, Execution, Job};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::errors::{chill, to_gql};

/// A job as GraphQL shows it.
pub struct JobObject(pub Job);

/// An execution as GraphQL shows it.
pub struct ExecutionObject(pub Execution);

/// The JSON of a serializable value (`null` when it cannot be written, which the model's
/// types never cause).
fn json_of<T: serde::Serialize>(value: &T) -> Json<Value> {
    Json(serde_json::to_value(value).unwrap_or(Value::Null))
}

/// A serializable enum's string (`"skip"`, `"buffer_one"`).
fn string_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// How failed attempts are retried.
#[derive(SimpleObject)]
#[graphql(name = "RetryPolicy", serial)]
pub struct RetryPolicyObject {
    /// Retries after the first attempt.
    pub max_retries: Option<u32>,
    /// Delay before the first retry, in seconds; each further retry doubles it.
    pub retry_delay: Option<u32>,
    /// Longest delay between attempts, in seconds.
    pub max_delay: u32,
    /// Whether an attempt that timed out is retried.
    pub retry_on_timeout: bool,
}

/// A period in which slots are recorded as skipped instead of run.
#[derive(SimpleObject)]
#[graphql(name = "BlackoutPeriod", serial)]
pub struct BlackoutObject {
    /// First instant (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Why.
    pub reason: Option<String>,
}

impl From<&Blackout> for BlackoutObject {
    fn from(b: &Blackout) -> BlackoutObject {
        BlackoutObject {
            start: b.start,
            end: b.end,
            reason: b.reason.clone(),
        }
    }
}

/// Spending limits, in millionths of a US dollar.
#[derive(SimpleObject)]
#[graphql(name = "Budget", serial)]
pub struct BudgetObject {
    /// Most spent per UTC day.
    pub daily_micro_usd: Option<u64>,
    /// Most spent per UTC month.
    pub monthly_micro_usd: Option<u64>,
}

/// What a job spent in its current UTC day and month, in millionths of a US dollar.
#[derive(SimpleObject)]
#[graphql(name = "Spend", serial)]
pub struct SpendObject {
    /// The day, as `YYYYMMDD` (0: none yet).
    pub day: u32,
    /// Spent on that day.
    pub day_micro_usd: u64,
    /// The month, as `YYYYMM` (0: none yet).
    pub month: u32,
    /// Spent in that month.
    pub month_micro_usd: u64,
}

/// How daylight-saving transitions are handled.
#[derive(SimpleObject)]
#[graphql(name = "DstPolicy", serial)]
pub struct DstPolicyObject {
    /// Local times that occur twice: `auto`, `once` or `twice`.
    pub repeated: String,
    /// Local times that do not exist: `after_gap` or `skip`.
    pub skipped: String,
}

#[Object(name = "Job", serial)]
impl JobObject {
    /// The id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// A name for people.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The instruction sent to the AI.
    async fn prompt(&self) -> &str {
        &self.0.prompt
    }
    /// System context sent with the prompt.
    async fn system_prompt(&self) -> Option<&str> {
        self.0.system_prompt.as_deref()
    }
    /// The schedule expression: cron (5 or 6 fields), `cron(...)`, `rate(...)` or `at(...)`.
    async fn schedule(&self) -> &str {
        &self.0.schedule
    }
    /// Whether the job runs on its schedule (false: paused).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Most AI conversation turns per execution.
    async fn max_turns(&self) -> Option<u32> {
        Some(self.0.max_turns)
    }
    /// Execution timeout, in seconds.
    async fn timeout(&self) -> Option<u32> {
        Some(self.0.timeout)
    }
    /// How failed attempts are retried.
    async fn retry_policy(&self) -> Option<RetryPolicyObject> {
        let p = self.0.retry_policy;
        Some(RetryPolicyObject {
            max_retries: Some(p.max_retries),
            retry_delay: Some(p.retry_delay),
            max_delay: p.max_delay,
            retry_on_timeout: p.retry_on_timeout,
        })
    }
    /// Labels to find jobs by.
    async fn tags(&self) -> Option<Vec<Option<&str>>> {
        Some(self.0.tags.iter().map(|t| Some(t.as_str())).collect())
    }
    /// Free JSON for the host application.
    async fn metadata(&self) -> Option<Json<Value>> {
        Some(Json(self.0.metadata.clone()))
    }
    /// When the last execution started.
    async fn last_run_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_run_at
    }
    /// The status of the last execution (`success`, `failed`, `timeout`, `running`, ...).
    async fn last_run_status(&self) -> Option<&'static str> {
        self.0.last_run_status.map(|s| s.as_str())
    }
    /// The duration of the last execution, in milliseconds.
    async fn last_run_duration(&self) -> Option<u64> {
        self.0.last_run_duration
    }
    /// The error message of the last execution, if it failed.
    async fn last_run_error(&self) -> Option<&str> {
        self.0.last_run_error.as_deref()
    }
    /// When the next slot is due.
    async fn next_run_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_run_at
    }
    /// Executions that ran to an outcome.
    async fn total_runs(&self) -> Option<u64> {
        Some(self.0.total_runs)
    }
    /// Executions that succeeded.
    async fn success_count(&self) -> Option<u64> {
        Some(self.0.success_count)
    }
    /// Executions that failed, timed out or died.
    async fn failure_count(&self) -> Option<u64> {
        Some(self.0.failure_count)
    }
    /// Mean duration of the runs, in milliseconds.
    async fn average_duration(&self) -> Option<u64> {
        self.0.average_duration
    }
    /// The job's executions, newest first (at most `limit`, default 20).
    async fn executions(
        &self,
        ctx: &Context<'_>,
        limit: Option<i32>,
    ) -> Result<Option<Vec<Option<ExecutionObject>>>> {
        let limit = super::limit_arg("limit", limit, 20)?;
        let page = chill(ctx)?
            .list_executions(&self.0.id, &PageRequest::first(limit))
            .await
            .map_err(to_gql)?;
        Ok(Some(
            page.items
                .into_iter()
                .map(|e| Some(ExecutionObject(e)))
                .collect(),
        ))
    }
    /// When the job was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the job was last changed by a person or program.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who created the job.
    async fn created_by(&self) -> Option<&str> {
        self.0.created_by.as_deref()
    }
    /// Who changed the job last.
    async fn updated_by(&self) -> Option<&str> {
        self.0.updated_by.as_deref()
    }

    // ---- beyond the requirements' model ----

    /// The IANA time zone the schedule is read in.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
    /// No slot before this instant runs.
    async fn start_date(&self) -> Option<DateTime<Utc>> {
        self.0.start_date
    }
    /// No slot after this instant runs.
    async fn end_date(&self) -> Option<DateTime<Utc>> {
        self.0.end_date
    }
    /// Periods in which slots are recorded as skipped.
    async fn blackout_periods(&self) -> Vec<BlackoutObject> {
        self.0.blackout_periods.iter().map(Into::into).collect()
    }
    /// How daylight-saving transitions are handled.
    async fn dst_policy(&self) -> DstPolicyObject {
        DstPolicyObject {
            repeated: string_of(&self.0.dst_policy.repeated),
            skipped: string_of(&self.0.dst_policy.skipped),
        }
    }
    /// A slot due while the job runs: `skip`, `buffer_one` or `allow`.
    async fn overlap_policy(&self) -> &'static str {
        self.0.overlap_policy.as_str()
    }
    /// Slots missed during downtime: `skip_missed`, `run_once` or `run_all`.
    async fn catch_up_policy(&self) -> &'static str {
        self.0.catch_up_policy.as_str()
    }
    /// Under `skip_missed`, a slot missed by at most this many seconds still runs.
    async fn catch_up_window(&self) -> u32 {
        self.0.catch_up_window
    }
    /// Largest delay, in seconds, added to every slot (fixed per job).
    async fn jitter(&self) -> u32 {
        self.0.jitter
    }
    /// Why the job is paused.
    async fn pause_note(&self) -> Option<&str> {
        self.0.pause_note.as_deref()
    }
    /// Spending limits; slots over budget are skipped (errorType `budget_exceeded`).
    async fn budget(&self) -> Option<BudgetObject> {
        self.0.budget.map(|b| BudgetObject {
            daily_micro_usd: b.daily_micro_usd,
            monthly_micro_usd: b.monthly_micro_usd,
        })
    }
    /// What the job spent in its current UTC day and month.
    async fn spend(&self) -> SpendObject {
        let s = self.0.spend;
        SpendObject {
            day: s.day,
            day_micro_usd: s.day_micro_usd,
            month: s.month,
            month_micro_usd: s.month_micro_usd,
        }
    }
    /// At most this many executions of the job at once.
    async fn max_concurrency(&self) -> Option<u32> {
        self.0.max_concurrency
    }
    /// The job is paused after this many consecutive failed attempts.
    async fn pause_after_failures(&self) -> Option<u32> {
        self.0.pause_after_failures
    }
    /// Failed attempts in a row, up to now.
    async fn consecutive_failures(&self) -> u32 {
        self.0.consecutive_failures
    }
    /// Summed duration of the runs, in milliseconds.
    async fn total_duration_ms(&self) -> u64 {
        self.0.total_duration_ms
    }
    /// Input tokens of all executions.
    async fn total_input_tokens(&self) -> u64 {
        self.0.total_input_tokens
    }
    /// Output tokens of all executions.
    async fn total_output_tokens(&self) -> u64 {
        self.0.total_output_tokens
    }
    /// Tokens of all executions.
    async fn total_tokens(&self) -> u64 {
        self.0.total_tokens
    }
    /// Cost of all executions, in millionths of a US dollar.
    async fn total_cost_micro_usd(&self) -> u64 {
        self.0.total_cost_micro_usd
    }
    /// Executions of this job running now.
    async fn running_count(&self) -> u32 {
        self.0.running_count
    }
    /// The execution waiting for the running one to end (overlap policy `buffer_one`).
    async fn buffered_execution_id(&self) -> Option<ID> {
        self.0.buffered_execution_id.map(|id| ID(id.to_string()))
    }
    /// Incremented by every change.
    async fn version(&self) -> u64 {
        self.0.version
    }
    /// When the job was soft-deleted.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

#[Object(name = "JobExecution", serial)]
impl ExecutionObject {
    /// The id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The job run.
    async fn job_id(&self) -> ID {
        ID(self.0.job_id.to_string())
    }
    /// The job run (`null` once it was deleted for good).
    async fn job(&self, ctx: &Context<'_>) -> Result<Option<JobObject>> {
        let job = chill(ctx)?.get_job(&self.0.job_id).await.map_err(to_gql)?;
        Ok(job.map(JobObject))
    }
    /// When it started (for a pending execution: when it was created).
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// When it ended.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// `success`, `failed`, `timeout`, and beyond the requirements `pending`, `running`,
    /// `skipped`, `cancelled`, `dead`.
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// `scheduled`, `manual` or `retry`.
    async fn trigger(&self) -> &'static str {
        self.0.trigger.as_str()
    }
    /// What was sent to the AI endpoint: `{prompt, systemPrompt, options: {maxTurns}}`.
    async fn request_payload(&self) -> Option<Json<Value>> {
        Some(json_of(&self.0.request_payload))
    }
    /// What the endpoint answered: `{result, toolsUsed, conversationTurns, metadata}`.
    async fn response(&self) -> Option<Json<Value>> {
        self.0.response.as_ref().map(json_of)
    }
    /// Time from start to end, in milliseconds.
    async fn duration_ms(&self) -> Option<u64> {
        self.0.duration_ms
    }
    /// Time the AI endpoint took to answer, in milliseconds.
    async fn api_latency_ms(&self) -> Option<u64> {
        self.0.api_latency_ms
    }
    /// How many tool calls the AI made.
    async fn tools_executed_count(&self) -> Option<u32> {
        Some(self.0.tools_executed_count)
    }
    /// Tokens used, when the endpoint reports them.
    async fn tokens_used(&self) -> Option<u64> {
        self.0.tokens_used
    }
    /// What went wrong, for people.
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    /// What went wrong, for programs: `timeout`, `api_error`, `network`, `rate_limited`, ...
    async fn error_type(&self) -> Option<&str> {
        self.0.error_type.as_deref()
    }
    /// Details of the error.
    async fn error_details(&self) -> Option<Json<Value>> {
        self.0.error_details.clone().map(Json)
    }
    /// Attempts before this one in its chain.
    async fn retry_count(&self) -> Option<u32> {
        Some(self.0.retry_count)
    }
    /// When the record was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    // ---- beyond the requirements' model ----

    /// The slot (the schedule's time); for a manual run, when it was asked for.
    async fn scheduled_for(&self) -> DateTime<Utc> {
        self.0.scheduled_for
    }
    /// When it may start: the slot with jitter, or a retry's backoff time.
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    /// The attempt number in its chain, from 1.
    async fn attempt(&self) -> u32 {
        self.0.attempt
    }
    /// The id of the chain's first attempt.
    async fn root_execution_id(&self) -> ID {
        ID(self.0.root_execution_id.to_string())
    }
    /// Input tokens, when reported.
    async fn input_tokens(&self) -> Option<u64> {
        self.0.input_tokens
    }
    /// Output tokens, when reported.
    async fn output_tokens(&self) -> Option<u64> {
        self.0.output_tokens
    }
    /// Cost in millionths of a US dollar, when known.
    async fn cost_micro_usd(&self) -> Option<u64> {
        self.0.cost_micro_usd
    }
    /// The instance holding the lease while it runs.
    async fn lease_owner(&self) -> Option<&str> {
        self.0.lease_owner.as_deref()
    }
    /// When the lease runs out unless renewed.
    async fn lease_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.lease_expires_at
    }
}

/// One page of jobs.
#[derive(SimpleObject)]
#[graphql(name = "JobPage", serial)]
pub struct JobPageObject {
    /// The jobs, in creation order.
    pub items: Vec<JobObject>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// One page of executions.
#[derive(SimpleObject)]
#[graphql(name = "JobExecutionPage", serial)]
pub struct ExecutionPageObject {
    /// The executions, newest first.
    pub items: Vec<ExecutionObject>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Something that happened to an execution.
#[derive(SimpleObject)]
#[graphql(name = "ExecutionEvent", serial)]
pub struct ExecutionEventObject {
    /// `started`, `finished`, `skipped` or `retry_scheduled`.
    pub kind: String,
    /// The execution as it is after the event.
    pub execution: ExecutionObject,
}
