//! The GraphQL inputs and their conversion into the library's `JobSpec`, `JobPatch` and
//! `JobFilter`. Numbers arrive as GraphQL `Int`s; a negative one is refused here, naming the
//! field, and everything else is validated by the library (which names the field too).

use async_graphql::{ID, InputObject, Json, MaybeUndefined};
use chill_core::store::JobFilter;
use chill_core::{
    Blackout, Budget, CatchUpPolicy, DstPolicy, ExecutionStatus, Job, JobPatch, JobSpec,
    OverlapPolicy, RetryPolicy, ValidationError,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How failed attempts are retried; absent fields keep their current (or default) values.
#[derive(InputObject, Debug, Clone, Default)]
pub struct RetryPolicyInput {
    /// Retries after the first attempt (default 3).
    pub max_retries: Option<i32>,
    /// Delay before the first retry, in seconds (default 30); each further retry doubles it.
    pub retry_delay: Option<i32>,
    /// Longest delay between attempts, in seconds (default 3600).
    pub max_delay: Option<i32>,
    /// Whether an attempt that timed out is retried (default false).
    pub retry_on_timeout: Option<bool>,
}

/// A period in which slots are recorded as skipped instead of run.
#[derive(InputObject, Debug, Clone)]
pub struct BlackoutInput {
    /// First instant (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Why.
    pub reason: Option<String>,
}

/// Spending limits, in millionths of a US dollar.
#[derive(InputObject, Debug, Clone, Default)]
pub struct BudgetInput {
    /// Most spent per UTC day.
    pub daily_micro_usd: Option<u64>,
    /// Most spent per UTC month.
    pub monthly_micro_usd: Option<u64>,
}

impl BudgetInput {
    fn to_budget(&self) -> Budget {
        Budget {
            daily_micro_usd: self.daily_micro_usd,
            monthly_micro_usd: self.monthly_micro_usd,
        }
    }
}

/// A new job: the requirements' writable fields, and ChillScheduler's.
#[derive(InputObject, Debug, Clone)]
pub struct CreateJobInput {
    /// A name for people.
    pub name: String,
    /// The instruction sent to the AI.
    pub prompt: String,
    /// System context sent with the prompt.
    pub system_prompt: Option<String>,
    /// Cron (5 or 6 fields, macros), `cron(...)`, `rate(...)` or `at(...)`.
    pub schedule: String,
    /// Whether the job runs on its schedule (default true).
    pub enabled: Option<bool>,
    /// Most AI conversation turns per execution (default 10).
    pub max_turns: Option<i32>,
    /// Execution timeout, in seconds (default 300).
    pub timeout: Option<i32>,
    /// How failed attempts are retried.
    pub retry_policy: Option<RetryPolicyInput>,
    /// Labels to find jobs by.
    pub tags: Option<Vec<String>>,
    /// Free JSON for the host application.
    pub metadata: Option<Json<Value>>,
    /// The IANA time zone the schedule is read in (default UTC).
    pub timezone: Option<String>,
    /// No slot before this instant runs.
    pub start_date: Option<DateTime<Utc>>,
    /// No slot after this instant runs.
    pub end_date: Option<DateTime<Utc>>,
    /// Periods in which slots are skipped.
    pub blackout_periods: Option<Vec<BlackoutInput>>,
    /// `{"repeated": "auto"|"once"|"twice", "skipped": "after_gap"|"skip"}`.
    pub dst_policy: Option<Json<Value>>,
    /// `skip` (default), `buffer_one` or `allow`.
    pub overlap_policy: Option<String>,
    /// `skip_missed` (default), `run_once` or `run_all`.
    pub catch_up_policy: Option<String>,
    /// Under `skip_missed`, how late (seconds) a missed slot may still run (default 300).
    pub catch_up_window: Option<i32>,
    /// Largest delay, in seconds, added to every slot (fixed per job).
    pub jitter: Option<i32>,
    /// Why the job is paused.
    pub pause_note: Option<String>,
    /// Spending limits; slots over budget are skipped (errorType `budget_exceeded`).
    pub budget: Option<BudgetInput>,
    /// At most this many executions of the job at once (with overlap policy `allow`).
    pub max_concurrency: Option<i32>,
    /// Pause the job after this many consecutive failed attempts.
    pub pause_after_failures: Option<i32>,
    /// Who creates the job.
    pub created_by: Option<String>,
    /// The id to create the job with (a new one when absent).
    pub id: Option<ID>,
}

/// A change to a job: absent fields stay as they are; `null` clears `systemPrompt`,
/// `startDate`, `endDate` and `pauseNote`, and sets `metadata` to null.
#[derive(InputObject, Debug, Clone, Default)]
pub struct UpdateJobInput {
    /// A new name.
    pub name: Option<String>,
    /// A new prompt.
    pub prompt: Option<String>,
    /// A new system prompt (`null`: none).
    pub system_prompt: MaybeUndefined<String>,
    /// A new schedule.
    pub schedule: Option<String>,
    /// Pause (false) or resume (true).
    pub enabled: Option<bool>,
    /// A new turn limit.
    pub max_turns: Option<i32>,
    /// A new timeout, in seconds.
    pub timeout: Option<i32>,
    /// Changes to the retry policy (absent fields keep their values).
    pub retry_policy: Option<RetryPolicyInput>,
    /// New tags (replace all).
    pub tags: Option<Vec<String>>,
    /// New metadata (`null` sets it to null).
    pub metadata: MaybeUndefined<Json<Value>>,
    /// A new time zone.
    pub timezone: Option<String>,
    /// A new start of the window (`null`: none).
    pub start_date: MaybeUndefined<DateTime<Utc>>,
    /// A new end of the window (`null`: none).
    pub end_date: MaybeUndefined<DateTime<Utc>>,
    /// New blackout periods (replace all).
    pub blackout_periods: Option<Vec<BlackoutInput>>,
    /// A new DST policy.
    pub dst_policy: Option<Json<Value>>,
    /// A new overlap policy.
    pub overlap_policy: Option<String>,
    /// A new catch-up policy.
    pub catch_up_policy: Option<String>,
    /// A new catch-up window, in seconds.
    pub catch_up_window: Option<i32>,
    /// A new jitter, in seconds.
    pub jitter: Option<i32>,
    /// A new pause note (`null`: none).
    pub pause_note: MaybeUndefined<String>,
    /// New spending limits (`null`: none).
    pub budget: MaybeUndefined<BudgetInput>,
    /// A new per-job concurrency limit (`null`: none).
    pub max_concurrency: MaybeUndefined<i32>,
    /// A new failure streak that pauses the job (`null`: never pause).
    pub pause_after_failures: MaybeUndefined<i32>,
    /// Who makes this change.
    pub updated_by: Option<String>,
}

/// Which jobs `listJobs` returns.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "JobFilter")]
pub struct JobFilterInput {
    /// Only enabled (true) or paused (false) jobs.
    pub enabled: Option<bool>,
    /// Only jobs carrying this tag.
    pub tag: Option<String>,
    /// Only jobs whose name contains this text.
    pub name_contains: Option<String>,
    /// Only jobs whose last run ended with this status (`success`, `failed`, ...).
    pub last_status: Option<String>,
    /// Include soft-deleted jobs.
    pub include_deleted: Option<bool>,
}

type Checked<T> = Result<T, ValidationError>;

/// A non-negative `Int`.
fn unsigned(field: &str, value: i32) -> Checked<u32> {
    u32::try_from(value)
        .map_err(|_| ValidationError::new(field, format!("{value} must not be negative")))
}

fn unsigned_opt(field: &str, value: Option<i32>) -> Checked<Option<u32>> {
    value.map(|v| unsigned(field, v)).transpose()
}

fn retry_policy(input: &RetryPolicyInput, base: RetryPolicy) -> Checked<RetryPolicy> {
    Ok(RetryPolicy {
        max_retries: unsigned_opt("retryPolicy.maxRetries", input.max_retries)?
            .unwrap_or(base.max_retries),
        retry_delay: unsigned_opt("retryPolicy.retryDelay", input.retry_delay)?
            .unwrap_or(base.retry_delay),
        max_delay: unsigned_opt("retryPolicy.maxDelay", input.max_delay)?.unwrap_or(base.max_delay),
        retry_on_timeout: input.retry_on_timeout.unwrap_or(base.retry_on_timeout),
    })
}

fn blackouts(input: &[BlackoutInput]) -> Vec<Blackout> {
    input
        .iter()
        .map(|b| Blackout {
            start: b.start,
            end: b.end,
            reason: b.reason.clone(),
        })
        .collect()
}

fn dst_policy(value: &Value) -> Checked<DstPolicy> {
    serde_json::from_value(value.clone())
        .map_err(|e| ValidationError::new("dstPolicy", e.to_string()))
}

impl CreateJobInput {
    /// The library's spec; a negative number or an unknown policy is refused naming the field.
    pub fn into_spec(self) -> Checked<JobSpec> {
        let defaults = JobSpec::default();
        Ok(JobSpec {
            id: self
                .id
                .map(|id| {
                    id.parse::<chill_core::JobId>().map_err(|mut e| {
                        e.field = "id".into();
                        e
                    })
                })
                .transpose()?,
            max_turns: unsigned_opt("maxTurns", self.max_turns)?.unwrap_or(defaults.max_turns),
            timeout: unsigned_opt("timeout", self.timeout)?.unwrap_or(defaults.timeout),
            retry_policy: match &self.retry_policy {
                Some(p) => retry_policy(p, RetryPolicy::default())?,
                None => RetryPolicy::default(),
            },
            dst_policy: self
                .dst_policy
                .as_ref()
                .map(|v| dst_policy(&v.0))
                .transpose()?
                .unwrap_or_default(),
            overlap_policy: self
                .overlap_policy
                .as_deref()
                .map(str::parse::<OverlapPolicy>)
                .transpose()?
                .unwrap_or_default(),
            catch_up_policy: self
                .catch_up_policy
                .as_deref()
                .map(str::parse::<CatchUpPolicy>)
                .transpose()?
                .unwrap_or_default(),
            catch_up_window: unsigned_opt("catchUpWindow", self.catch_up_window)?
                .unwrap_or(defaults.catch_up_window),
            jitter: unsigned_opt("jitter", self.jitter)?.unwrap_or(0),
            blackout_periods: self
                .blackout_periods
                .as_deref()
                .map(blackouts)
                .unwrap_or_default(),
            name: self.name,
            prompt: self.prompt,
            schedule: self.schedule,
            system_prompt: self.system_prompt,
            timezone: self.timezone.unwrap_or(defaults.timezone),
            enabled: self.enabled.unwrap_or(true),
            tags: self.tags.unwrap_or_default(),
            metadata: self.metadata.map(|m| m.0).unwrap_or(Value::Null),
            start_date: self.start_date,
            end_date: self.end_date,
            budget: self.budget.as_ref().map(BudgetInput::to_budget),
            max_concurrency: unsigned_opt("maxConcurrency", self.max_concurrency)?,
            pause_after_failures: unsigned_opt("pauseAfterFailures", self.pause_after_failures)?,
            pause_note: self.pause_note,
            created_by: self.created_by,
        })
    }
}

fn maybe<T, U>(value: MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(f(v))),
    }
}

fn maybe_unsigned(field: &str, value: MaybeUndefined<i32>) -> Checked<Option<Option<u32>>> {
    maybe(value, |v| unsigned(field, v))
        .map(Option::transpose)
        .transpose()
}

impl UpdateJobInput {
    /// The library's patch for a job as it is now (the retry policy's absent fields keep the
    /// job's values).
    pub fn into_patch(self, current: &Job) -> Checked<JobPatch> {
        Ok(JobPatch {
            max_turns: unsigned_opt("maxTurns", self.max_turns)?,
            timeout: unsigned_opt("timeout", self.timeout)?,
            retry_policy: self
                .retry_policy
                .as_ref()
                .map(|p| retry_policy(p, current.retry_policy))
                .transpose()?,
            dst_policy: self
                .dst_policy
                .as_ref()
                .map(|v| dst_policy(&v.0))
                .transpose()?,
            overlap_policy: self
                .overlap_policy
                .as_deref()
                .map(str::parse::<OverlapPolicy>)
                .transpose()?,
            catch_up_policy: self
                .catch_up_policy
                .as_deref()
                .map(str::parse::<CatchUpPolicy>)
                .transpose()?,
            catch_up_window: unsigned_opt("catchUpWindow", self.catch_up_window)?,
            jitter: unsigned_opt("jitter", self.jitter)?,
            blackout_periods: self.blackout_periods.as_deref().map(blackouts),
            name: self.name,
            prompt: self.prompt,
            system_prompt: maybe(self.system_prompt, |s| s),
            schedule: self.schedule,
            timezone: self.timezone,
            enabled: self.enabled,
            tags: self.tags,
            metadata: match self.metadata {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(Value::Null),
                MaybeUndefined::Value(v) => Some(v.0),
            },
            start_date: maybe(self.start_date, |d| d),
            end_date: maybe(self.end_date, |d| d),
            pause_note: maybe(self.pause_note, |s| s),
            budget: maybe(self.budget, |b| b.to_budget()),
            max_concurrency: maybe_unsigned("maxConcurrency", self.max_concurrency)?,
            pause_after_failures: maybe_unsigned("pauseAfterFailures", self.pause_after_failures)?,
            updated_by: self.updated_by,
        })
    }
}

impl JobFilterInput {
    /// The library's filter.
    pub fn into_filter(self) -> Checked<JobFilter> {
        Ok(JobFilter {
            enabled: self.enabled,
            tag: self.tag,
            name_contains: self.name_contains,
            last_status: self
                .last_status
                .as_deref()
                .map(|s| {
                    s.parse::<ExecutionStatus>().map_err(|mut e| {
                        e.field = "filter.lastStatus".into();
                        e
                    })
                })
                .transpose()?,
            include_deleted: self.include_deleted.unwrap_or(false),
        })
    }
}
