//! Jobs and executions to columns and back.
//!
//! - Ids: 16 bytes (`UUID` in PostgreSQL, `BINARY(16)` in MySQL, `BLOB` in SQLite); byte order
//!   is the ids' order, so listings by id match the in-memory store.
//! - Instants: `BIGINT` milliseconds since the Unix epoch (sub-millisecond parts are dropped;
//!   the engine produces none).
//! - Free text (names, prompts, notes, error messages, lease owners): binary strings of the
//!   UTF-8 bytes (`BYTEA`, `LONGBLOB`, `BLOB`), so that anything, NUL bytes included, is
//!   returned byte for byte and compared byte for byte.
//! - JSON (metadata, tags, policies, request, response, error details): text written by
//!   `serde_json` (which escapes NUL and control characters), kept as written.
//! - Enumerations: their lowercase strings.
//! - Counts: `BIGINT`; a count beyond `i64::MAX` is refused.

use chill_core::{Execution, ExecutionId, ExecutionStatus, Job, JobId, Spend, StoreError, Trigger};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::db::{Arg, Columns, FromColumns};

/// The columns of the jobs table, in the order of [`job_args`] and [`job_from_row`].
pub(crate) const JOB_COLUMNS: &[&str] = &[
    "id",
    "name",
    "prompt",
    "system_prompt",
    "schedule",
    "timezone",
    "enabled",
    "max_turns",
    "timeout_secs",
    "retry_policy",
    "tags",
    "metadata",
    "start_date",
    "end_date",
    "blackout_periods",
    "dst_policy",
    "overlap_policy",
    "catch_up_policy",
    "catch_up_window",
    "jitter",
    "pause_note",
    "next_run_at",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "version",
    "deleted_at",
    "budget",
    "max_concurrency",
    "pause_after_failures",
    "due_at",
    // Statistics and engine state: not written by update_job.
    "last_run_at",
    "last_run_status",
    "last_run_duration",
    "last_run_error",
    "total_runs",
    "success_count",
    "failure_count",
    "average_duration",
    "total_duration_ms",
    "total_input_tokens",
    "total_output_tokens",
    "total_tokens",
    "total_cost_micro_usd",
    "running_count",
    "buffered_execution_id",
    "consecutive_failures",
    "spend_day",
    "spend_day_micro_usd",
    "spend_month",
    "spend_month_micro_usd",
];

/// How many leading columns of [`JOB_COLUMNS`] (after the id) [`Store::update_job`] writes.
///
/// [`Store::update_job`]: chill_core::Store::update_job
pub(crate) const JOB_CONFIG_COLUMNS: usize = 31;

/// The columns of the executions table, in the order of [`execution_args`] and
/// [`execution_from_row`].
pub(crate) const EXECUTION_COLUMNS: &[&str] = &[
    "id",
    "job_id",
    "scheduled_for",
    "due_at",
    "started_at",
    "completed_at",
    "status",
    "trigger_kind",
    "request_payload",
    "response",
    "duration_ms",
    "api_latency_ms",
    "tools_executed_count",
    "tokens_used",
    "input_tokens",
    "output_tokens",
    "cost_micro_usd",
    "error_message",
    "error_type",
    "error_details",
    "retry_count",
    "attempt",
    "root_execution_id",
    "lease_owner",
    "lease_expires_at",
    "created_at",
    "attempt_due_at",
    "lease_until",
];

/// Limits on what is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_value_bytes: usize,
}

fn invalid(field: &str, message: String) -> StoreError {
    StoreError::InvalidInput {
        field: field.to_string(),
        message,
    }
}

fn corrupt(column: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("column {column}: {message}"))
}

/// Millisecond timestamps.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn opt_ms(t: Option<DateTime<Utc>>) -> Arg {
    Arg::Int(t.map(ms))
}

pub(crate) fn int(field: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        invalid(
            field,
            format!(
                "{v} is larger than the largest integer the database stores ({})",
                i64::MAX
            ),
        )
    })
}

fn opt_int(field: &str, v: Option<u64>) -> Result<Arg, StoreError> {
    Ok(Arg::Int(v.map(|v| int(field, v)).transpose()?))
}

pub(crate) fn uuid_arg(id: Uuid) -> Arg {
    Arg::Uuid(Some(id))
}

pub(crate) fn job_id(id: &JobId) -> Arg {
    uuid_arg(*id.as_uuid())
}

pub(crate) fn execution_id(id: &ExecutionId) -> Arg {
    uuid_arg(*id.as_uuid())
}

impl Limits {
    fn check(&self, field: &str, len: usize) -> Result<(), StoreError> {
        if len > self.max_value_bytes {
            return Err(invalid(
                field,
                format!(
                    "{len} bytes is more than the store's limit of {} bytes",
                    self.max_value_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Free text as bytes.
    pub(crate) fn bytes(&self, field: &str, s: &str) -> Result<Arg, StoreError> {
        self.check(field, s.len())?;
        Ok(Arg::Bytes(Some(s.as_bytes().to_vec())))
    }

    pub(crate) fn opt_bytes(&self, field: &str, s: Option<&str>) -> Result<Arg, StoreError> {
        match s {
            Some(s) => self.bytes(field, s),
            None => Ok(Arg::Bytes(None)),
        }
    }

    fn json(&self, field: &str, value: &impl Serialize) -> Result<Arg, StoreError> {
        let text = serde_json::to_string(value)
            .map_err(|e| invalid(field, format!("cannot be written as JSON: {e}")))?;
        self.check(field, text.len())?;
        Ok(Arg::Text(Some(text)))
    }

    fn opt_json(&self, field: &str, value: Option<&impl Serialize>) -> Result<Arg, StoreError> {
        match value {
            Some(v) => self.json(field, v),
            None => Ok(Arg::Text(None)),
        }
    }
}

/// `nextRunAt` while the job is active (enabled, not deleted): the due index.
fn job_due_at(job: &Job) -> Option<i64> {
    job.next_run_at
        .filter(|_| job.enabled && job.deleted_at.is_none())
        .map(ms)
}

/// Every column of a job, in [`JOB_COLUMNS`] order.
pub(crate) fn job_args(job: &Job, limits: &Limits) -> Result<Vec<Arg>, StoreError> {
    let mut args = Vec::with_capacity(JOB_COLUMNS.len());
    args.push(job_id(&job.id));
    args.extend(job_config_args(job, limits)?);
    args.extend(stats_args(&Stats::of(job), limits)?);
    Ok(args)
}

/// The configuration columns (after the id), in [`JOB_COLUMNS`] order.
pub(crate) fn job_config_args(job: &Job, limits: &Limits) -> Result<Vec<Arg>, StoreError> {
    Ok(vec![
        limits.bytes("name", &job.name)?,
        limits.bytes("prompt", &job.prompt)?,
        limits.opt_bytes("systemPrompt", job.system_prompt.as_deref())?,
        limits.bytes("schedule", &job.schedule)?,
        limits.bytes("timezone", &job.timezone)?,
        Arg::Bool(job.enabled),
        Arg::Int(Some(i64::from(job.max_turns))),
        Arg::Int(Some(i64::from(job.timeout))),
        limits.json("retryPolicy", &job.retry_policy)?,
        limits.json("tags", &job.tags)?,
        limits.json("metadata", &job.metadata)?,
        opt_ms(job.start_date),
        opt_ms(job.end_date),
        limits.json("blackoutPeriods", &job.blackout_periods)?,
        limits.json("dstPolicy", &job.dst_policy)?,
        Arg::Text(Some(job.overlap_policy.as_str().to_string())),
        Arg::Text(Some(job.catch_up_policy.as_str().to_string())),
        Arg::Int(Some(i64::from(job.catch_up_window))),
        Arg::Int(Some(i64::from(job.jitter))),
        limits.opt_bytes("pauseNote", job.pause_note.as_deref())?,
        opt_ms(job.next_run_at),
        Arg::Int(Some(ms(job.created_at))),
        Arg::Int(Some(ms(job.updated_at))),
        limits.opt_bytes("createdBy", job.created_by.as_deref())?,
        limits.opt_bytes("updatedBy", job.updated_by.as_deref())?,
        Arg::Int(Some(int("version", job.version)?)),
        opt_ms(job.deleted_at),
        limits.opt_json("budget", job.budget.as_ref())?,
        opt_int("maxConcurrency", job.max_concurrency.map(u64::from))?,
        opt_int(
            "pauseAfterFailures",
            job.pause_after_failures.map(u64::from),
        )?,
        Arg::Int(job_due_at(job)),
    ])
}

/// Reads the columns of one row in order, naming the column in errors.
pub(crate) struct Reader<'r, R: ?Sized> {
    row: &'r R,
    columns: &'static [&'static str],
    next: usize,
}

impl<'r, R: Columns + ?Sized> Reader<'r, R> {
    pub(crate) fn new(row: &'r R, columns: &'static [&'static str]) -> Reader<'r, R> {
        Reader {
            row,
            columns,
            next: 0,
        }
    }

    fn step(&mut self) -> (usize, &'static str) {
        let i = self.next;
        self.next += 1;
        (i, self.columns.get(i).copied().unwrap_or("?"))
    }

    fn opt_i64(&mut self) -> Result<Option<i64>, StoreError> {
        let (i, c) = self.step();
        self.row.opt_i64(i).map_err(|e| corrupt(c, e))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_i64()?.ok_or_else(|| corrupt(c, "NULL"))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        let v = self.i64()?;
        u64::try_from(v).map_err(|_| corrupt(c, format!("negative count {v}")))
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_i64()?
            .map(|v| u64::try_from(v).map_err(|_| corrupt(c, format!("negative count {v}"))))
            .transpose()
    }

    fn opt_u32(&mut self) -> Result<Option<u32>, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_i64()?
            .map(|v| u32::try_from(v).map_err(|_| corrupt(c, format!("{v} is out of range"))))
            .transpose()
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        let v = self.i64()?;
        u32::try_from(v).map_err(|_| corrupt(c, format!("{v} is out of range")))
    }

    fn bool(&mut self) -> Result<bool, StoreError> {
        let (i, c) = self.step();
        self.row.bool(i).map_err(|e| corrupt(c, e))
    }

    fn opt_time(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_i64()?
            .map(|v| {
                DateTime::from_timestamp_millis(v)
                    .ok_or_else(|| corrupt(c, format!("{v} is not an instant")))
            })
            .transpose()
    }

    fn time(&mut self) -> Result<DateTime<Utc>, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_time()?.ok_or_else(|| corrupt(c, "NULL"))
    }

    fn opt_string(&mut self) -> Result<Option<String>, StoreError> {
        let (i, c) = self.step();
        self.row.opt_string(i).map_err(|e| corrupt(c, e))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_string()?.ok_or_else(|| corrupt(c, "NULL"))
    }

    /// A text column, handed to `read` (borrowed where the driver allows); `read`'s error is the
    /// column's.
    fn opt_text_read<T, E: std::fmt::Display>(
        &mut self,
        read: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        let (i, c) = self.step();
        self.row
            .with_opt_text(i, read)
            .map_err(|e| corrupt(c, e))?
            .map(|r| r.map_err(|e| corrupt(c, e)))
            .transpose()
    }

    fn parsed<T: std::str::FromStr>(&mut self) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_parsed()?.ok_or_else(|| corrupt(c, "NULL"))
    }

    fn opt_parsed<T: std::str::FromStr>(&mut self) -> Result<Option<T>, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        self.opt_text_read(str::parse)
    }

    fn opt_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, StoreError> {
        self.opt_text_read(|t| serde_json::from_str(t))
    }

    fn json<T: DeserializeOwned>(&mut self) -> Result<T, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_json()?.ok_or_else(|| corrupt(c, "NULL"))
    }

    fn opt_uuid(&mut self) -> Result<Option<Uuid>, StoreError> {
        let (i, c) = self.step();
        self.row.opt_uuid(i).map_err(|e| corrupt(c, e))
    }

    fn uuid(&mut self) -> Result<Uuid, StoreError> {
        let c = self.columns.get(self.next).copied().unwrap_or("?");
        self.opt_uuid()?.ok_or_else(|| corrupt(c, "NULL"))
    }

    fn skip(&mut self) {
        self.next += 1;
    }
}

impl FromColumns for Job {
    fn from_columns(row: &impl Columns) -> Result<Job, StoreError> {
        job_from_row(row)
    }
}

impl FromColumns for Execution {
    fn from_columns(row: &impl Columns) -> Result<Execution, StoreError> {
        execution_from_row(row)
    }
}

/// A job from a row of [`JOB_COLUMNS`].
pub(crate) fn job_from_row(row: &impl Columns) -> Result<Job, StoreError> {
    let mut r = Reader::new(row, JOB_COLUMNS);
    let id = JobId::from_uuid(r.uuid()?);
    let name = r.string()?;
    let prompt = r.string()?;
    let system_prompt = r.opt_string()?;
    let schedule = r.string()?;
    let timezone = r.string()?;
    let enabled = r.bool()?;
    let max_turns = r.u32()?;
    let timeout = r.u32()?;
    let retry_policy = r.json()?;
    let tags = r.json()?;
    let metadata = r.json()?;
    let start_date = r.opt_time()?;
    let end_date = r.opt_time()?;
    let blackout_periods = r.json()?;
    let dst_policy = r.json()?;
    let overlap_policy = r.parsed()?;
    let catch_up_policy = r.parsed()?;
    let catch_up_window = r.u32()?;
    let jitter = r.u32()?;
    let pause_note = r.opt_string()?;
    let next_run_at = r.opt_time()?;
    let created_at = r.time()?;
    let updated_at = r.time()?;
    let created_by = r.opt_string()?;
    let updated_by = r.opt_string()?;
    let version = r.u64()?;
    let deleted_at = r.opt_time()?;
    let budget = r.opt_json()?;
    let max_concurrency = r.opt_u32()?;
    let pause_after_failures = r.opt_u32()?;
    r.skip(); // due_at
    let stats = read_stats(&mut r)?;
    Ok(Job {
        id,
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
        next_run_at,
        created_at,
        updated_at,
        created_by,
        updated_by,
        version,
        deleted_at,
        budget,
        max_concurrency,
        pause_after_failures,
        last_run_at: stats.last_run_at,
        last_run_status: stats.last_run_status,
        last_run_duration: stats.last_run_duration,
        last_run_error: stats.last_run_error,
        total_runs: stats.total_runs,
        success_count: stats.success_count,
        failure_count: stats.failure_count,
        average_duration: stats.average_duration,
        total_duration_ms: stats.total_duration_ms,
        total_input_tokens: stats.total_input_tokens,
        total_output_tokens: stats.total_output_tokens,
        total_tokens: stats.total_tokens,
        total_cost_micro_usd: stats.total_cost_micro_usd,
        running_count: stats.running_count,
        buffered_execution_id: stats.buffered_execution_id,
        consecutive_failures: stats.consecutive_failures,
        spend: stats.spend,
    })
}

/// `dueAt` while the execution is a pending retry attempt: the attempts index.
fn attempt_due_at(e: &Execution) -> Option<i64> {
    (e.status == ExecutionStatus::Pending && e.trigger == Trigger::Retry).then(|| ms(e.due_at))
}

/// The lease's expiry while the execution runs: the lease index.
pub(crate) fn lease_until(e: &Execution) -> Option<i64> {
    e.lease_expires_at
        .filter(|_| e.status == ExecutionStatus::Running)
        .map(ms)
}

/// Every column of an execution, in [`EXECUTION_COLUMNS`] order.
pub(crate) fn execution_args(e: &Execution, limits: &Limits) -> Result<Vec<Arg>, StoreError> {
    Ok(vec![
        execution_id(&e.id),
        job_id(&e.job_id),
        Arg::Int(Some(ms(e.scheduled_for))),
        Arg::Int(Some(ms(e.due_at))),
        Arg::Int(Some(ms(e.started_at))),
        opt_ms(e.completed_at),
        Arg::Text(Some(e.status.as_str().to_string())),
        Arg::Text(Some(e.trigger.as_str().to_string())),
        limits.json("requestPayload", &e.request_payload)?,
        limits.opt_json("response", e.response.as_ref())?,
        opt_int("durationMs", e.duration_ms)?,
        opt_int("apiLatencyMs", e.api_latency_ms)?,
        Arg::Int(Some(i64::from(e.tools_executed_count))),
        opt_int("tokensUsed", e.tokens_used)?,
        opt_int("inputTokens", e.input_tokens)?,
        opt_int("outputTokens", e.output_tokens)?,
        opt_int("costMicroUsd", e.cost_micro_usd)?,
        limits.opt_bytes("errorMessage", e.error_message.as_deref())?,
        limits.opt_bytes("errorType", e.error_type.as_deref())?,
        limits.opt_json("errorDetails", e.error_details.as_ref())?,
        Arg::Int(Some(i64::from(e.retry_count))),
        Arg::Int(Some(i64::from(e.attempt))),
        execution_id(&e.root_execution_id),
        limits.opt_bytes("leaseOwner", e.lease_owner.as_deref())?,
        opt_ms(e.lease_expires_at),
        Arg::Int(Some(ms(e.created_at))),
        Arg::Int(attempt_due_at(e)),
        Arg::Int(lease_until(e)),
    ])
}

/// An execution from a row of [`EXECUTION_COLUMNS`].
pub(crate) fn execution_from_row(row: &impl Columns) -> Result<Execution, StoreError> {
    let mut r = Reader::new(row, EXECUTION_COLUMNS);
    Ok(Execution {
        id: ExecutionId::from_uuid(r.uuid()?),
        job_id: JobId::from_uuid(r.uuid()?),
        scheduled_for: r.time()?,
        due_at: r.time()?,
        started_at: r.time()?,
        completed_at: r.opt_time()?,
        status: r.parsed()?,
        trigger: r.parsed()?,
        request_payload: r.json()?,
        response: r.opt_json()?,
        duration_ms: r.opt_u64()?,
        api_latency_ms: r.opt_u64()?,
        tools_executed_count: r.u32()?,
        tokens_used: r.opt_u64()?,
        input_tokens: r.opt_u64()?,
        output_tokens: r.opt_u64()?,
        cost_micro_usd: r.opt_u64()?,
        error_message: r.opt_string()?,
        error_type: r.opt_string()?,
        error_details: r.opt_json()?,
        retry_count: r.u32()?,
        attempt: r.u32()?,
        root_execution_id: ExecutionId::from_uuid(r.uuid()?),
        lease_owner: r.opt_string()?,
        lease_expires_at: r.opt_time()?,
        created_at: r.time()?,
    })
}

/// The statistics and engine state of a job: the columns after the configuration.
pub(crate) const STATS_COLUMNS: &[&str] = JOB_COLUMNS.split_at(JOB_CONFIG_COLUMNS + 1).1;

/// A job's statistics and engine state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stats {
    pub(crate) last_run_at: Option<DateTime<Utc>>,
    pub(crate) last_run_status: Option<ExecutionStatus>,
    pub(crate) last_run_duration: Option<u64>,
    pub(crate) last_run_error: Option<String>,
    pub(crate) total_runs: u64,
    pub(crate) success_count: u64,
    pub(crate) failure_count: u64,
    pub(crate) average_duration: Option<u64>,
    pub(crate) total_duration_ms: u64,
    pub(crate) total_input_tokens: u64,
    pub(crate) total_output_tokens: u64,
    pub(crate) total_tokens: u64,
    pub(crate) total_cost_micro_usd: u64,
    pub(crate) running_count: u32,
    pub(crate) buffered_execution_id: Option<ExecutionId>,
    pub(crate) consecutive_failures: u32,
    pub(crate) spend: Spend,
}

impl Stats {
    /// A job's statistics.
    fn of(job: &Job) -> Stats {
        Stats {
            last_run_at: job.last_run_at,
            last_run_status: job.last_run_status,
            last_run_duration: job.last_run_duration,
            last_run_error: job.last_run_error.clone(),
            total_runs: job.total_runs,
            success_count: job.success_count,
            failure_count: job.failure_count,
            average_duration: job.average_duration,
            total_duration_ms: job.total_duration_ms,
            total_input_tokens: job.total_input_tokens,
            total_output_tokens: job.total_output_tokens,
            total_tokens: job.total_tokens,
            total_cost_micro_usd: job.total_cost_micro_usd,
            running_count: job.running_count,
            buffered_execution_id: job.buffered_execution_id,
            consecutive_failures: job.consecutive_failures,
            spend: job.spend,
        }
    }
}

/// Statistics from a row of [`STATS_COLUMNS`].
pub(crate) fn stats_from_row(row: &impl Columns) -> Result<Stats, StoreError> {
    read_stats(&mut Reader::new(row, STATS_COLUMNS))
}

fn read_stats<R: Columns + ?Sized>(r: &mut Reader<'_, R>) -> Result<Stats, StoreError> {
    Ok(Stats {
        last_run_at: r.opt_time()?,
        last_run_status: r.opt_parsed()?,
        last_run_duration: r.opt_u64()?,
        last_run_error: r.opt_string()?,
        total_runs: r.u64()?,
        success_count: r.u64()?,
        failure_count: r.u64()?,
        average_duration: r.opt_u64()?,
        total_duration_ms: r.u64()?,
        total_input_tokens: r.u64()?,
        total_output_tokens: r.u64()?,
        total_tokens: r.u64()?,
        total_cost_micro_usd: r.u64()?,
        running_count: r.u32()?,
        buffered_execution_id: r.opt_uuid()?.map(ExecutionId::from_uuid),
        consecutive_failures: r.u32()?,
        spend: Spend {
            day: r.u32()?,
            day_micro_usd: r.u64()?,
            month: r.u32()?,
            month_micro_usd: r.u64()?,
        },
    })
}

/// The statistics in [`STATS_COLUMNS`] order.
pub(crate) fn stats_args(s: &Stats, limits: &Limits) -> Result<Vec<Arg>, StoreError> {
    Ok(vec![
        opt_ms(s.last_run_at),
        Arg::Text(s.last_run_status.map(|s| s.as_str().to_string())),
        opt_int("lastRunDuration", s.last_run_duration)?,
        limits.opt_bytes("lastRunError", s.last_run_error.as_deref())?,
        Arg::Int(Some(int("totalRuns", s.total_runs)?)),
        Arg::Int(Some(int("successCount", s.success_count)?)),
        Arg::Int(Some(int("failureCount", s.failure_count)?)),
        opt_int("averageDuration", s.average_duration)?,
        Arg::Int(Some(int("totalDurationMs", s.total_duration_ms)?)),
        Arg::Int(Some(int("totalInputTokens", s.total_input_tokens)?)),
        Arg::Int(Some(int("totalOutputTokens", s.total_output_tokens)?)),
        Arg::Int(Some(int("totalTokens", s.total_tokens)?)),
        Arg::Int(Some(int("totalCostMicroUsd", s.total_cost_micro_usd)?)),
        Arg::Int(Some(i64::from(s.running_count))),
        Arg::Uuid(s.buffered_execution_id.map(|id| *id.as_uuid())),
        Arg::Int(Some(i64::from(s.consecutive_failures))),
        Arg::Int(Some(i64::from(s.spend.day))),
        Arg::Int(Some(int("spend.dayMicroUsd", s.spend.day_micro_usd)?)),
        Arg::Int(Some(i64::from(s.spend.month))),
        Arg::Int(Some(int("spend.monthMicroUsd", s.spend.month_micro_usd)?)),
    ])
}

/// The JSON written for a tag inside the `tags` column, for the tag filter: `"tag"` preceded
/// by `[` or `,` can only be a whole element of the array (inside a JSON string every `"` is
/// escaped, so neither `["` nor `,"` occurs there).
pub(crate) fn tag_needles(tag: &str) -> [String; 2] {
    let quoted = serde_json::to_string(tag).unwrap_or_default();
    [format!("[{quoted}"), format!(",{quoted}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_needles_find_whole_elements_only() {
        let tags = |t: &[&str]| serde_json::to_string(t).unwrap_or_default();
        let has = |json: &str, tag: &str| tag_needles(tag).iter().any(|n| json.contains(n));
        assert!(has(&tags(&["a", "b"]), "b"));
        assert!(has(&tags(&["a", "b"]), "a"));
        assert!(!has(&tags(&["a\"b"]), "b"));
        assert!(!has(&tags(&["x,\"b\""]), "b"));
        assert!(!has(&tags(&["ab"]), "a"));
        assert!(!has(&tags(&["x\\"]), "x"));
        assert!(has(&tags(&["x\\", "\u{0}"]), "\u{0}"));
        assert!(!has(&tags(&["x\\\"y"]), "x\\"));
        assert!(has(&tags(&["", "q"]), ""));
        assert!(!has(&tags(&["q"]), ""));
    }
}
