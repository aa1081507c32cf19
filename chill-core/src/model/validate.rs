//! Validation of jobs at the library boundary: one error type naming the field, and the limits.

use std::fmt::{self, Display};
use std::marker::PhantomData;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};

use super::job::{Job, RetryPolicy};
use crate::schedule::{Blackout, ScheduleError};

/// Limits on the fields of a job, checked by [`Job::create`], [`Job::apply`] and
/// [`Job::validate`].
pub mod limits {
    /// Longest name, in characters, leading and trailing white space excluded.
    pub const MAX_NAME_CHARS: usize = 200;
    /// Longest prompt, in bytes of UTF-8.
    pub const MAX_PROMPT_BYTES: usize = 100_000;
    /// Longest system prompt, in bytes of UTF-8.
    pub const MAX_SYSTEM_PROMPT_BYTES: usize = 100_000;
    /// Longest schedule expression, in bytes.
    pub const MAX_SCHEDULE_BYTES: usize = 1_000;
    /// Fewest conversation turns.
    pub const MIN_MAX_TURNS: u32 = 1;
    /// Most conversation turns.
    pub const MAX_MAX_TURNS: u32 = 100;
    /// Shortest timeout, in seconds.
    pub const MIN_TIMEOUT_SECS: u32 = 1;
    /// Longest timeout, in seconds (one day).
    pub const MAX_TIMEOUT_SECS: u32 = 86_400;
    /// Most retries after the first attempt.
    pub const MAX_RETRIES: u32 = 20;
    /// Longest base retry delay, in seconds (one day).
    pub const MAX_RETRY_DELAY_SECS: u32 = 86_400;
    /// Longest cap of the exponential backoff, in seconds (one week). It must also be at least
    /// the base delay.
    pub const MAX_MAX_DELAY_SECS: u32 = 604_800;
    /// Most tags on a job.
    pub const MAX_TAGS: usize = 50;
    /// Longest tag, in characters (a tag has at least one).
    pub const MAX_TAG_CHARS: usize = 64;
    /// Largest metadata, in bytes of compact JSON.
    pub const MAX_METADATA_BYTES: usize = 65_536;
    /// Largest jitter, in seconds.
    pub const MAX_JITTER_SECS: u32 = 3_600;
    /// Longest catch-up window, in seconds (one week).
    pub const MAX_CATCH_UP_WINDOW_SECS: u32 = 604_800;
    /// Most blackout periods on a job.
    pub const MAX_BLACKOUT_PERIODS: usize = 100;
    /// Longest reason of a blackout period, in characters.
    pub const MAX_BLACKOUT_REASON_CHARS: usize = 500;
    /// Longest pause note, in characters.
    pub const MAX_PAUSE_NOTE_CHARS: usize = 1_000;
    /// Longest `createdBy` / `updatedBy`, in characters.
    pub const MAX_ACTOR_CHARS: usize = 200;
    /// Earliest date a job's window or blackout periods may name.
    pub const MIN_YEAR: i32 = 1970;
    /// Largest budget limit, in millionths of a US dollar (one billion dollars).
    pub const MAX_BUDGET_MICRO_USD: u64 = 1_000_000_000_000_000;
    /// Largest per-job concurrency limit.
    pub const MAX_CONCURRENCY: u32 = 10_000;
    /// Largest consecutive-failure pause threshold.
    pub const MAX_PAUSE_AFTER_FAILURES: u32 = 1_000;
    /// Latest year a job's window or blackout periods may name.
    pub const MAX_YEAR: i32 = 9999;
}

/// An input the library refuses, with the field (its JSON name) and why.
///
/// ```
/// use chill_core::{Job, JobSpec};
/// let err = Job::create(JobSpec::new("  ", "p", "@daily"), chrono::Utc::now()).unwrap_err();
/// assert_eq!(err.field, "name");
/// assert_eq!(err.to_string(), "name: must not be empty");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field as named in JSON: `name`, `retryPolicy.maxRetries`, `blackoutPeriods[1]`.
    pub field: String,
    /// What is wrong with it, for a person to act on.
    pub message: String,
}

impl ValidationError {
    /// An error on a field.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

type Result<T = ()> = std::result::Result<T, ValidationError>;

/// The longest excerpt of a rejected input repeated in a message, in characters.
const ECHO_CHARS: usize = 64;

/// A rejected input as repeated in a message: escaped, and cut to [`ECHO_CHARS`].
pub(crate) fn excerpt(input: &str) -> String {
    let mut chars = input.chars();
    let head: String = chars.by_ref().take(ECHO_CHARS).collect();
    let more = if chars.next().is_some() { "..." } else { "" };
    format!("{}{more}", head.escape_debug())
}

/// [`excerpt`] in single quotes.
pub(crate) fn echo(input: &str) -> String {
    format!("'{}'", excerpt(input))
}

/// The error for a string that is none of an enum's values.
pub(crate) fn unknown_value(field: &str, input: &str, expected: &[&str]) -> ValidationError {
    ValidationError::new(
        field,
        format!("{} is not one of {}", echo(input), expected.join(", ")),
    )
}

/// A serde visitor for the model's string values: parses with `FromStr` and keeps its message.
pub(crate) struct FromStrVisitor<T> {
    names: &'static [&'static str],
    target: PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    pub(crate) fn new(names: &'static [&'static str]) -> FromStrVisitor<T> {
        FromStrVisitor {
            names,
            target: PhantomData,
        }
    }
}

impl<T: FromStr<Err = ValidationError>> serde::de::Visitor<'_> for FromStrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {}", self.names.join(", "))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

/// An instant as messages show it: RFC 3339 in UTC (`2026-07-03T12:00:00Z`).
pub(crate) fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn range<T: PartialOrd + Display>(field: &str, value: T, min: T, max: T) -> Result {
    if value < min || value > max {
        return Err(ValidationError::new(
            field,
            format!("{value} is out of range {min}-{max}"),
        ));
    }
    Ok(())
}

fn at_most(field: &str, found: usize, max: usize, unit: &str) -> Result {
    if found > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} {unit}, found {found}"),
        ));
    }
    Ok(())
}

fn not_blank(field: &str, value: &str) -> Result {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    Ok(())
}

fn chars(field: &str, value: &str, max: usize) -> Result {
    at_most(field, value.chars().count(), max, "characters")
}

fn opt_chars(field: &str, value: Option<&str>, max: usize) -> Result {
    value.map_or(Ok(()), |v| chars(field, v, max))
}

fn date(field: &str, t: DateTime<Utc>) -> Result {
    use chrono::Datelike;
    let (year, min, max) = (t.year(), limits::MIN_YEAR, limits::MAX_YEAR);
    if !(min..=max).contains(&year) {
        return Err(ValidationError::new(
            field,
            format!("year {year} is out of range {min}-{max}"),
        ));
    }
    Ok(())
}

/// Bytes of a JSON value written compactly, counted without building the text.
fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Every check on a job's writable fields but its schedule (see [`schedule`]).
pub(crate) fn job_fields(job: &Job) -> Result {
    use limits::*;
    not_blank("name", &job.name)?;
    chars("name", job.name.trim(), MAX_NAME_CHARS)?;
    not_blank("prompt", &job.prompt)?;
    at_most("prompt", job.prompt.len(), MAX_PROMPT_BYTES, "bytes")?;
    if let Some(system) = &job.system_prompt {
        at_most(
            "systemPrompt",
            system.len(),
            MAX_SYSTEM_PROMPT_BYTES,
            "bytes",
        )?;
    }
    range("maxTurns", job.max_turns, MIN_MAX_TURNS, MAX_MAX_TURNS)?;
    range("timeout", job.timeout, MIN_TIMEOUT_SECS, MAX_TIMEOUT_SECS)?;
    retry_policy(&job.retry_policy)?;
    at_most("tags", job.tags.len(), MAX_TAGS, "tags")?;
    for (i, tag) in job.tags.iter().enumerate() {
        let field = format!("tags[{i}]");
        if tag.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        chars(&field, tag, MAX_TAG_CHARS)?;
    }
    at_most(
        "metadata",
        json_len(&job.metadata),
        MAX_METADATA_BYTES,
        "bytes of JSON",
    )?;
    range("jitter", job.jitter, 0, MAX_JITTER_SECS)?;
    range(
        "catchUpWindow",
        job.catch_up_window,
        0,
        MAX_CATCH_UP_WINDOW_SECS,
    )?;
    opt_chars("pauseNote", job.pause_note.as_deref(), MAX_PAUSE_NOTE_CHARS)?;
    if let Some(budget) = &job.budget {
        if let Some(v) = budget.daily_micro_usd {
            range("budget.dailyMicroUsd", v, 1, MAX_BUDGET_MICRO_USD)?;
        }
        if let Some(v) = budget.monthly_micro_usd {
            range("budget.monthlyMicroUsd", v, 1, MAX_BUDGET_MICRO_USD)?;
        }
    }
    if let Some(n) = job.max_concurrency {
        range("maxConcurrency", n, 1, MAX_CONCURRENCY)?;
    }
    if let Some(n) = job.pause_after_failures {
        range("pauseAfterFailures", n, 1, MAX_PAUSE_AFTER_FAILURES)?;
    }
    opt_chars("createdBy", job.created_by.as_deref(), MAX_ACTOR_CHARS)?;
    opt_chars("updatedBy", job.updated_by.as_deref(), MAX_ACTOR_CHARS)?;
    window(job.start_date, job.end_date)?;
    blackouts(&job.blackout_periods)
}

fn retry_policy(p: &RetryPolicy) -> Result {
    use limits::*;
    range("retryPolicy.maxRetries", p.max_retries, 0, MAX_RETRIES)?;
    range(
        "retryPolicy.retryDelay",
        p.retry_delay,
        0,
        MAX_RETRY_DELAY_SECS,
    )?;
    range("retryPolicy.maxDelay", p.max_delay, 0, MAX_MAX_DELAY_SECS)?;
    if p.max_delay < p.retry_delay {
        return Err(ValidationError::new(
            "retryPolicy.maxDelay",
            format!(
                "{} is less than retryPolicy.retryDelay ({})",
                p.max_delay, p.retry_delay
            ),
        ));
    }
    Ok(())
}

fn window(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result {
    if let Some(start) = start {
        date("startDate", start)?;
    }
    if let Some(end) = end {
        date("endDate", end)?;
    }
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        return Err(ValidationError::new("endDate", "must be after startDate"));
    }
    Ok(())
}

fn blackouts(periods: &[Blackout]) -> Result {
    use limits::*;
    at_most(
        "blackoutPeriods",
        periods.len(),
        MAX_BLACKOUT_PERIODS,
        "periods",
    )?;
    for (i, b) in periods.iter().enumerate() {
        let field = format!("blackoutPeriods[{i}]");
        date(&format!("{field}.start"), b.start)?;
        date(&format!("{field}.end"), b.end)?;
        if b.end <= b.start {
            return Err(ValidationError::new(field, "end must be after start"));
        }
        opt_chars(
            &format!("{field}.reason"),
            b.reason.as_deref(),
            MAX_BLACKOUT_REASON_CHARS,
        )?;
    }
    let mut order: Vec<usize> = (0..periods.len()).collect();
    order.sort_by_key(|&i| (periods[i].start, i));
    // Sorted by start, any overlap shows between neighbours. The end is exclusive: periods
    // that touch do not overlap.
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if periods[b].start < periods[a].end {
            let (first, second) = (a.min(b), a.max(b));
            return Err(ValidationError::new(
                format!("blackoutPeriods[{second}]"),
                format!("overlaps blackoutPeriods[{first}]"),
            ));
        }
    }
    Ok(())
}

/// The time zone, then the expression: `timezone: unknown time zone ...` or
/// `schedule: <why the expression is wrong>`.
pub(crate) fn schedule_error(job: &Job, err: ScheduleError) -> ValidationError {
    match err {
        ScheduleError::UnknownTimeZone(_) => ValidationError::new(
            "timezone",
            ScheduleError::UnknownTimeZone(excerpt(&job.timezone)).to_string(),
        ),
        err => ValidationError::new("schedule", err.to_string()),
    }
}

/// Checks on the schedule expression done before parsing it: its length, and that it is ASCII,
/// as every valid expression is (a pasted no-break space is refused here, with its name).
pub(crate) fn schedule_text(job: &Job) -> Result {
    let schedule = &job.schedule;
    at_most(
        "schedule",
        schedule.len(),
        limits::MAX_SCHEDULE_BYTES,
        "bytes",
    )?;
    match schedule.chars().find(|c| !c.is_ascii()) {
        Some(c) => Err(ValidationError::new(
            "schedule",
            format!(
                "{} (U+{:04X}) is not allowed: expressions are ASCII",
                echo(&c.to_string()),
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// The error of an enabled job whose timing has no slot after `now`.
pub(crate) fn never_fires(job: &Job, now: DateTime<Utc>) -> ValidationError {
    let message = match job.end_date {
        Some(end) => format!(
            "never fires between {} and endDate {}",
            instant(now),
            instant(end)
        ),
        None => format!("never fires after {}", instant(now)),
    };
    ValidationError::new("schedule", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_quotes_escapes_and_cuts() {
        assert_eq!(echo("abc"), "'abc'");
        assert_eq!(echo("a'b\0"), "'a\\'b\\0'");
        let long = "é".repeat(100);
        assert_eq!(echo(&long), format!("'{}...'", "é".repeat(64)));
    }

    #[test]
    fn json_len_matches_compact_text() {
        let v = serde_json::json!({"a": [1, "two", null], "b": {"c": "d\"e"}});
        assert_eq!(json_len(&v), serde_json::to_string(&v).unwrap().len());
    }
}
