//! Jobs: what to ask the AI, when, and under which policies; how they are created and updated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::budget::{Budget, Spend};
use super::execution::ExecutionStatus;
use super::ids::{ExecutionId, JobId};
use super::validate::{self, ValidationError};
use crate::schedule::{Blackout, DstPolicy, Schedule, ScheduleError, Timing};

/// The defaults of a job's fields, used when an input leaves them out.
pub mod defaults {
    /// Time zone of the schedule.
    pub const TIMEZONE: &str = "UTC";
    /// Most AI conversation turns per execution.
    pub const MAX_TURNS: u32 = 10;
    /// Execution timeout, in seconds.
    pub const TIMEOUT_SECS: u32 = 300;
    /// Retries after a failed attempt.
    pub const MAX_RETRIES: u32 = 3;
    /// Base delay before a retry, in seconds.
    pub const RETRY_DELAY_SECS: u32 = 30;
    /// Cap of the exponential backoff, in seconds.
    pub const MAX_DELAY_SECS: u32 = 3_600;
    /// How late a missed slot may still run under [`CatchUpPolicy::SkipMissed`], in seconds.
    ///
    /// [`CatchUpPolicy::SkipMissed`]: super::CatchUpPolicy::SkipMissed
    pub const CATCH_UP_WINDOW_SECS: u32 = 300;

    pub(super) fn timezone() -> String {
        TIMEZONE.to_string()
    }
    pub(super) fn max_turns() -> u32 {
        MAX_TURNS
    }
    pub(super) fn timeout() -> u32 {
        TIMEOUT_SECS
    }
    pub(super) fn catch_up_window() -> u32 {
        CATCH_UP_WINDOW_SECS
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn version() -> u64 {
        1
    }
}

string_enum! {
    /// What to do with a slot that comes due while an execution of the same job is running.
    #[derive(Default)]
    pub enum OverlapPolicy in "overlapPolicy" {
        /// Do not run it; record it as skipped (errorType `overlap`).
        #[default]
        Skip = "skip",
        /// Keep the latest such slot and run it when the running execution ends; skip the others.
        BufferOne = "buffer_one",
        /// Run it alongside.
        Allow = "allow",
    }
}

string_enum! {
    /// What to do with the slots that passed while no instance was running (after downtime).
    #[derive(Default)]
    pub enum CatchUpPolicy in "catchUpPolicy" {
        /// Run a missed slot only if it is at most [`Job::catch_up_window`] seconds late; record
        /// the others as skipped (errorType `missed`).
        #[default]
        SkipMissed = "skip_missed",
        /// Run the latest missed slot once; record the others as skipped.
        RunOnce = "run_once",
        /// Run every missed slot.
        RunAll = "run_all",
    }
}

/// How failed attempts are retried: exponential backoff from `retry_delay`, capped at `max_delay`.
///
/// ```
/// use chill_core::RetryPolicy;
/// let p = RetryPolicy::default();
/// assert_eq!((p.max_retries, p.retry_delay, p.max_delay, p.retry_on_timeout), (3, 30, 3600, false));
/// assert_eq!([1, 2, 3].map(|n| p.backoff_secs(n)), [30, 60, 120]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Delay before the first retry, in seconds; each further retry doubles it.
    pub retry_delay: u32,
    /// Longest delay between attempts, in seconds.
    pub max_delay: u32,
    /// Whether an attempt that timed out is retried.
    pub retry_on_timeout: bool,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: defaults::MAX_RETRIES,
            retry_delay: defaults::RETRY_DELAY_SECS,
            max_delay: defaults::MAX_DELAY_SECS,
            retry_on_timeout: false,
        }
    }
}

impl RetryPolicy {
    /// Seconds to wait before retry number `retry` (1-based): `retry_delay * 2^(retry-1)`,
    /// at most `max_delay`. The engine adds its own jitter.
    pub fn backoff_secs(&self, retry: u32) -> u32 {
        let doublings = retry.saturating_sub(1).min(32);
        let delay = u64::from(self.retry_delay) << doublings;
        u32::try_from(delay.min(u64::from(self.max_delay))).unwrap_or(self.max_delay)
    }
}

/// A job: a prompt sent to the AI on a schedule, its policies, its statistics and its audit
/// fields.
///
/// Create one with [`Job::create`] from a [`JobSpec`] and change it with [`Job::apply`] and a
/// [`JobPatch`]; both validate. The statistics are maintained by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The id.
    pub id: JobId,
    /// A name for people, 1 to 200 characters (kept as given).
    pub name: String,
    /// The instruction sent to the AI.
    pub prompt: String,
    /// Optional system context sent with the prompt.
    pub system_prompt: Option<String>,
    /// The schedule expression: cron, `cron(...)`, `rate(...)` or `at(...)` (see
    /// [`Schedule`]).
    pub schedule: String,
    /// The IANA time zone the schedule is read in.
    #[serde(default = "defaults::timezone")]
    pub timezone: String,
    /// Whether the job runs on its schedule (false = paused).
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Most AI conversation turns per execution.
    #[serde(default = "defaults::max_turns")]
    pub max_turns: u32,
    /// Execution timeout, in seconds.
    #[serde(default = "defaults::timeout")]
    pub timeout: u32,
    /// How failed attempts are retried.
    #[serde(default)]
    pub retry_policy: RetryPolicy,
    /// Labels to find jobs by.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free JSON for the host application.
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// No slot before this instant runs (inclusive).
    pub start_date: Option<DateTime<Utc>>,
    /// No slot after this instant runs (inclusive).
    pub end_date: Option<DateTime<Utc>>,
    /// Periods in which slots are recorded as skipped instead of run.
    #[serde(default)]
    pub blackout_periods: Vec<Blackout>,
    /// How daylight-saving transitions are handled.
    #[serde(default)]
    pub dst_policy: DstPolicy,
    /// What to do with a slot due while the job is running.
    #[serde(default)]
    pub overlap_policy: OverlapPolicy,
    /// What to do with slots missed during downtime.
    #[serde(default)]
    pub catch_up_policy: CatchUpPolicy,
    /// Under [`CatchUpPolicy::SkipMissed`], a slot missed by at most this many seconds still
    /// runs.
    #[serde(default = "defaults::catch_up_window")]
    pub catch_up_window: u32,
    /// Largest delay, in seconds, added to every slot; the delay is fixed per job (derived
    /// from its id), so jobs scheduled for the same minute spread out.
    #[serde(default)]
    pub jitter: u32,
    /// Why the job is paused, for people.
    pub pause_note: Option<String>,
    /// Spending limits; slots over budget are skipped (errorType `budget_exceeded`).
    #[serde(default)]
    pub budget: Option<Budget>,
    /// At most this many executions of the job at once (with overlap policy `allow`; slots
    /// beyond it are skipped with errorType `concurrency_limit`). `None`: no per-job limit.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Pause the job after this many consecutive failed attempts, with a note saying why.
    #[serde(default)]
    pub pause_after_failures: Option<u32>,

    /// When the last execution started.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The status of the last execution.
    pub last_run_status: Option<ExecutionStatus>,
    /// The duration of the last execution, in milliseconds.
    pub last_run_duration: Option<u64>,
    /// The error message of the last execution, if it failed.
    pub last_run_error: Option<String>,
    /// When the next slot is due (jitter included); `None` when the job is paused, deleted, or
    /// its schedule has no more runs.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Executions that ran to an outcome: success, failed, timeout or dead (skipped and
    /// cancelled executions are not runs).
    #[serde(default)]
    pub total_runs: u64,
    /// Executions that succeeded.
    #[serde(default)]
    pub success_count: u64,
    /// Executions that failed, timed out or died.
    #[serde(default)]
    pub failure_count: u64,
    /// Mean duration of the runs, in milliseconds (`totalDurationMs / totalRuns`).
    pub average_duration: Option<u64>,
    /// Summed duration of the runs, in milliseconds.
    #[serde(default)]
    pub total_duration_ms: u64,
    /// Input tokens of all executions.
    #[serde(default)]
    pub total_input_tokens: u64,
    /// Output tokens of all executions.
    #[serde(default)]
    pub total_output_tokens: u64,
    /// Tokens of all executions.
    #[serde(default)]
    pub total_tokens: u64,
    /// Cost of all executions, in millionths of a US dollar (an integer, so sums are exact).
    #[serde(default)]
    pub total_cost_micro_usd: u64,
    /// Failed, timed-out or dead attempts since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Spent in the current UTC day and month (for the budget).
    #[serde(default)]
    pub spend: Spend,
    /// Executions of this job running now, maintained by the engine.
    #[serde(default)]
    pub running_count: u32,
    /// The execution waiting for the running one to end (overlap policy `buffer_one`),
    /// maintained by the engine.
    #[serde(default)]
    pub buffered_execution_id: Option<ExecutionId>,

    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// When the job was last changed by a person or program (not by the engine's statistics).
    pub updated_at: DateTime<Utc>,
    /// Who created the job.
    pub created_by: Option<String>,
    /// Who changed the job last.
    pub updated_by: Option<String>,
    /// Incremented by every change (each claim of its slots included, as it moves
    /// `nextRunAt`); stores refuse a write based on an older version.
    #[serde(default = "defaults::version")]
    pub version: u64,
    /// When the job was soft-deleted; a deleted job does not run.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The input that creates a job: `name`, `prompt` and `schedule` are required, every other
/// field has a default.
///
/// In JSON, absent fields take their defaults and unknown fields are refused (so that a typo
/// is not silently ignored). In Rust:
///
/// ```
/// use chill_core::{JobSpec, OverlapPolicy};
/// let spec = JobSpec {
///     overlap_policy: OverlapPolicy::Allow,
///     tags: vec!["reports".into()],
///     ..JobSpec::new("Weekly report", "Write the weekly report", "0 8 * * MON")
/// };
/// assert!(spec.enabled);
/// assert_eq!((spec.timezone.as_str(), spec.max_turns, spec.timeout), ("UTC", 10, 300));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct JobSpec {
    /// The id to create the job with, so that an import can be repeated; a new one when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<JobId>,
    /// See [`Job::name`].
    pub name: String,
    /// See [`Job::prompt`].
    pub prompt: String,
    /// See [`Job::schedule`].
    pub schedule: String,
    /// See [`Job::system_prompt`].
    pub system_prompt: Option<String>,
    /// See [`Job::timezone`]; default `UTC`.
    pub timezone: String,
    /// See [`Job::enabled`]; default `true`.
    pub enabled: bool,
    /// See [`Job::max_turns`]; default 10.
    pub max_turns: u32,
    /// See [`Job::timeout`]; default 300 seconds.
    pub timeout: u32,
    /// See [`Job::retry_policy`].
    pub retry_policy: RetryPolicy,
    /// See [`Job::tags`].
    pub tags: Vec<String>,
    /// See [`Job::metadata`]; default `null`.
    pub metadata: serde_json::Value,
    /// See [`Job::start_date`].
    pub start_date: Option<DateTime<Utc>>,
    /// See [`Job::end_date`].
    pub end_date: Option<DateTime<Utc>>,
    /// See [`Job::blackout_periods`].
    pub blackout_periods: Vec<Blackout>,
    /// See [`Job::dst_policy`].
    pub dst_policy: DstPolicy,
    /// See [`Job::overlap_policy`]; default `skip`.
    pub overlap_policy: OverlapPolicy,
    /// See [`Job::catch_up_policy`]; default `skip_missed`.
    pub catch_up_policy: CatchUpPolicy,
    /// See [`Job::catch_up_window`]; default 300 seconds.
    pub catch_up_window: u32,
    /// See [`Job::jitter`]; default 0.
    pub jitter: u32,
    /// See [`Job::pause_note`].
    pub pause_note: Option<String>,
    /// See [`Job::budget`]; default none.
    pub budget: Option<Budget>,
    /// See [`Job::max_concurrency`]; default none.
    pub max_concurrency: Option<u32>,
    /// See [`Job::pause_after_failures`]; default none.
    pub pause_after_failures: Option<u32>,
    /// Who creates the job; also the first `updatedBy`.
    pub created_by: Option<String>,
}

impl Default for JobSpec {
    /// Every default, with an empty name, prompt and schedule (which do not validate).
    fn default() -> JobSpec {
        JobSpec {
            id: None,
            name: String::new(),
            prompt: String::new(),
            schedule: String::new(),
            system_prompt: None,
            timezone: defaults::timezone(),
            enabled: true,
            max_turns: defaults::MAX_TURNS,
            timeout: defaults::TIMEOUT_SECS,
            retry_policy: RetryPolicy::default(),
            tags: Vec::new(),
            metadata: serde_json::Value::Null,
            start_date: None,
            end_date: None,
            blackout_periods: Vec::new(),
            dst_policy: DstPolicy::default(),
            overlap_policy: OverlapPolicy::default(),
            catch_up_policy: CatchUpPolicy::default(),
            catch_up_window: defaults::CATCH_UP_WINDOW_SECS,
            jitter: 0,
            pause_note: None,
            budget: None,
            max_concurrency: None,
            pause_after_failures: None,
            created_by: None,
        }
    }
}

impl JobSpec {
    /// A spec with the required fields and every default.
    pub fn new(
        name: impl Into<String>,
        prompt: impl Into<String>,
        schedule: impl Into<String>,
    ) -> JobSpec {
        JobSpec {
            name: name.into(),
            prompt: prompt.into(),
            schedule: schedule.into(),
            ..JobSpec::default()
        }
    }
}

/// A change to a job: every field is optional, and an absent field is left as it is.
///
/// The fields that may be empty on a job (`systemPrompt`, `startDate`, `endDate`, `pauseNote`,
/// `budget`, `maxConcurrency`, `pauseAfterFailures`) are cleared by `null`; `metadata: null` sets the metadata to `null`. `null` on any other
/// field leaves it unchanged. Lists (`tags`, `blackoutPeriods`) and the `retryPolicy` and
/// `dstPolicy` objects are replaced whole. Statistics and audit fields are not writable, and
/// unknown fields are refused.
///
/// ```
/// use chill_core::JobPatch;
/// let p: JobPatch = serde_json::from_str(r#"{"name": "Renamed", "pauseNote": null}"#).unwrap();
/// assert_eq!(p.name.as_deref(), Some("Renamed"));
/// assert_eq!(p.pause_note, Some(None)); // clear
/// assert_eq!(p.system_prompt, None); // unchanged
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct JobPatch {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// A new system prompt (`Some(None)`: none).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<Option<String>>,
    /// A new schedule expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// A new time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Pause (`false`) or resume (`true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// A new turn limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// A new timeout, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// A new retry policy (replaces the whole policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// New tags (replace all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// New metadata (`null` is a value here: it sets the metadata to `null`).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// A new start of the window (`Some(None)`: none).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub start_date: Option<Option<DateTime<Utc>>>,
    /// A new end of the window (`Some(None)`: none).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub end_date: Option<Option<DateTime<Utc>>>,
    /// New blackout periods (replace all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blackout_periods: Option<Vec<Blackout>>,
    /// A new DST policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_policy: Option<DstPolicy>,
    /// A new overlap policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_policy: Option<OverlapPolicy>,
    /// A new catch-up policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up_policy: Option<CatchUpPolicy>,
    /// A new catch-up window, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up_window: Option<u32>,
    /// A new jitter, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u32>,
    /// A new pause note (`Some(None)`: none).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub pause_note: Option<Option<String>>,
    /// A new budget (`Some(None)`: none).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub budget: Option<Option<Budget>>,
    /// A new per-job concurrency limit (`Some(None)`: none).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Option<u32>>,
    /// A new consecutive-failure pause threshold (`Some(None)`: never pause).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub pause_after_failures: Option<Option<u32>>,
    /// Who makes this change: becomes the job's `updatedBy` (`None` leaves it unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// Deserializes a field that is present, `null` included, as `Some`; with `#[serde(default)]`
/// an absent field stays `None`. So `Option<Option<T>>` tells absent, `null` and a value apart.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl Job {
    /// A new job from a spec at `now`: validated, defaults filled in, version 1, and its next
    /// run computed (the first slot strictly after `now`, jitter included).
    ///
    /// An enabled job whose schedule has no run after `now` (an `at(...)` in the past, a window
    /// that ended) is refused: `schedule: never fires after 2026-07-03T12:00:00Z`.
    pub fn create(spec: JobSpec, now: DateTime<Utc>) -> Result<Job, ValidationError> {
        let mut job = Job {
            id: spec.id.unwrap_or_default(),
            name: spec.name,
            prompt: spec.prompt,
            system_prompt: spec.system_prompt,
            schedule: spec.schedule,
            timezone: spec.timezone,
            enabled: spec.enabled,
            max_turns: spec.max_turns,
            timeout: spec.timeout,
            retry_policy: spec.retry_policy,
            tags: spec.tags,
            metadata: spec.metadata,
            start_date: spec.start_date,
            end_date: spec.end_date,
            blackout_periods: spec.blackout_periods,
            dst_policy: spec.dst_policy,
            overlap_policy: spec.overlap_policy,
            catch_up_policy: spec.catch_up_policy,
            catch_up_window: spec.catch_up_window,
            jitter: spec.jitter,
            pause_note: spec.pause_note,
            budget: spec.budget,
            max_concurrency: spec.max_concurrency,
            pause_after_failures: spec.pause_after_failures,
            last_run_at: None,
            last_run_status: None,
            last_run_duration: None,
            last_run_error: None,
            next_run_at: None,
            total_runs: 0,
            success_count: 0,
            failure_count: 0,
            average_duration: None,
            total_duration_ms: 0,
            total_input_tokens: 0,
            total_output_tokens: 0,
            total_tokens: 0,
            total_cost_micro_usd: 0,
            consecutive_failures: 0,
            spend: Spend::default(),
            running_count: 0,
            buffered_execution_id: None,
            created_at: now,
            updated_at: now,
            updated_by: spec.created_by.clone(),
            created_by: spec.created_by,
            version: 1,
            deleted_at: None,
        };
        let timing = job.checked_timing()?;
        job.next_run_at = job.first_run_after(&timing, now)?;
        Ok(job)
    }

    /// This job with a patch applied at `now`: validated, version incremented, `updatedAt` set
    /// to `now` and `updatedBy` to the patch's. When the patch changes when the job runs
    /// (schedule, time zone, window, blackout periods, jitter, DST policy, or enabled), the
    /// next run is computed again from `now`, and an enabled job that would never fire is
    /// refused as in [`Job::create`].
    pub fn apply(&self, patch: &JobPatch, now: DateTime<Utc>) -> Result<Job, ValidationError> {
        let mut job = self.clone();
        macro_rules! set {
            ($($field:ident),+) => {
                $(if let Some(value) = &patch.$field {
                    job.$field = value.clone();
                })+
            };
        }
        set!(
            name,
            prompt,
            system_prompt,
            schedule,
            timezone,
            enabled,
            max_turns,
            timeout,
            retry_policy,
            tags,
            metadata,
            start_date,
            end_date,
            blackout_periods,
            dst_policy,
            overlap_policy,
            catch_up_policy,
            catch_up_window,
            jitter,
            pause_note,
            budget,
            max_concurrency,
            pause_after_failures
        );
        job.updated_by = patch.updated_by.clone();
        job.updated_at = now;
        job.version = self.version.saturating_add(1);
        let timing = job.checked_timing()?;
        if !job.same_timing(self) {
            job.next_run_at = job.first_run_after(&timing, now)?;
        }
        Ok(job)
    }

    /// Checks every writable field against the [`limits`](super::limits) and the schedule
    /// against its time zone. [`Job::create`] and [`Job::apply`] call it; a store may call it
    /// on what it reads.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.checked_timing().map(drop)
    }

    /// The job's timing: its schedule in its time zone, with its DST policy, `rate(...)`
    /// anchored at the start date (or the creation time), its window, blackout periods and
    /// jitter (keyed by the job id).
    pub fn timing(&self) -> Result<Timing, ScheduleError> {
        let schedule = Schedule::parse_in(&self.schedule, &self.timezone)?
            .with_dst_policy(self.dst_policy)
            .with_anchor(self.start_date.unwrap_or(self.created_at));
        Ok(Timing::new(schedule)
            .with_window(self.start_date, self.end_date)
            .with_blackouts(self.blackout_periods.clone())
            .with_jitter(&self.id.to_string(), self.jitter))
    }

    /// Whether the job was soft-deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Whether the job runs on its schedule: enabled and not deleted.
    pub fn is_active(&self) -> bool {
        self.enabled && !self.is_deleted()
    }

    /// Validates every field, then builds the timing.
    fn checked_timing(&self) -> Result<Timing, ValidationError> {
        validate::job_fields(self)?;
        validate::schedule_text(self)?;
        self.timing()
            .map_err(|err| validate::schedule_error(self, err))
    }

    /// The due time of the first slot after `now`; `None` for an inactive job; an error for an
    /// active job with no slot left.
    fn first_run_after(
        &self,
        timing: &Timing,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ValidationError> {
        if !self.is_active() {
            return Ok(None);
        }
        match timing.next_slot(now) {
            Some(slot) => Ok(Some(slot.fire_at)),
            None => Err(validate::never_fires(self, now)),
        }
    }

    /// Whether two versions of a job run at the same times: the same schedule, time zone,
    /// enabled flag, window, blackout periods, jitter and DST policy.
    fn same_timing(&self, other: &Job) -> bool {
        self.schedule == other.schedule
            && self.timezone == other.timezone
            && self.enabled == other.enabled
            && self.start_date == other.start_date
            && self.end_date == other.end_date
            && self.blackout_periods == other.blackout_periods
            && self.jitter == other.jitter
            && self.dst_policy == other.dst_policy
    }
}
