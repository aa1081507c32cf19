//! Metrics over a window of executions: runs, success rate, failures and timeouts, p50/p95
//! durations and AI latencies, tokens and cost.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Execution, ExecutionStatus, JobId};

/// What the executions that ended in a window add up to.
///
/// ```
/// use chill_core::WindowStats;
/// let empty = WindowStats::default();
/// assert_eq!((empty.runs, empty.success_rate()), (0, None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStats {
    /// Executions that ran to an outcome (success, failed, timeout, dead).
    pub runs: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Of which failed or died (timeouts not included).
    pub failures: u64,
    /// Of which timed out.
    pub timeouts: u64,
    /// Slots recorded as skipped (not runs).
    pub skipped: u64,
    /// Executions cancelled (not runs).
    pub cancelled: u64,
    /// Median run duration, in milliseconds.
    pub p50_duration_ms: Option<u64>,
    /// 95th percentile of the run durations, in milliseconds.
    pub p95_duration_ms: Option<u64>,
    /// Median AI latency, in milliseconds.
    pub p50_ai_latency_ms: Option<u64>,
    /// 95th percentile of the AI latencies, in milliseconds.
    pub p95_ai_latency_ms: Option<u64>,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost, in millionths of a US dollar.
    pub cost_micro_usd: u64,
}

impl WindowStats {
    /// The statistics of `executions` (any order).
    ///
    /// ```
    /// # use chill_core::{WindowStats, ExecutionStatus};
    /// # let job = chill_core::Job::create(chill_core::JobSpec::new("j", "p", "* * * * *"), chrono::Utc::now()).unwrap();
    /// let mut runs = Vec::new();
    /// for (status, ms) in [(ExecutionStatus::Success, 100), (ExecutionStatus::Failed, 300), (ExecutionStatus::Timeout, 200)] {
    ///     let mut e = chill_core::Execution::manual(&job, chrono::Utc::now());
    ///     e.status = status;
    ///     e.duration_ms = Some(ms);
    ///     runs.push(e);
    /// }
    /// let s = WindowStats::of(&runs);
    /// assert_eq!((s.runs, s.successes, s.failures, s.timeouts), (3, 1, 1, 1));
    /// assert_eq!((s.p50_duration_ms, s.p95_duration_ms), (Some(200), Some(300)));
    /// ```
    pub fn of<'a>(executions: impl IntoIterator<Item = &'a Execution>) -> WindowStats {
        let mut s = WindowStats::default();
        let mut durations = Vec::new();
        let mut latencies = Vec::new();
        for e in executions {
            match e.status {
                ExecutionStatus::Skipped => s.skipped += 1,
                ExecutionStatus::Cancelled => s.cancelled += 1,
                ExecutionStatus::Success
                | ExecutionStatus::Failed
                | ExecutionStatus::Timeout
                | ExecutionStatus::Dead => {
                    s.runs += 1;
                    match e.status {
                        ExecutionStatus::Success => s.successes += 1,
                        ExecutionStatus::Timeout => s.timeouts += 1,
                        _ => s.failures += 1,
                    }
                    durations.extend(e.duration_ms);
                    latencies.extend(e.api_latency_ms);
                    s.input_tokens += e.input_tokens.unwrap_or(0);
                    s.output_tokens += e.output_tokens.unwrap_or(0);
                    s.cost_micro_usd += e.cost_micro_usd.unwrap_or(0);
                }
                _ => {}
            }
        }
        durations.sort_unstable();
        latencies.sort_unstable();
        s.p50_duration_ms = percentile(&durations, 50);
        s.p95_duration_ms = percentile(&durations, 95);
        s.p50_ai_latency_ms = percentile(&latencies, 50);
        s.p95_ai_latency_ms = percentile(&latencies, 95);
        s
    }

    /// Successes per run, 0 to 1; `None` without runs.
    pub fn success_rate(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.successes as f64 / self.runs as f64)
    }

    /// Failures (failed, dead) per run, in percent; 0 without runs.
    pub fn failure_percent(&self) -> u64 {
        (self.failures * 100).checked_div(self.runs).unwrap_or(0)
    }

    /// Timeouts per run, in percent; 0 without runs.
    pub fn timeout_percent(&self) -> u64 {
        (self.timeouts * 100).checked_div(self.runs).unwrap_or(0)
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The statistics of a time window: in all and per job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Start of the window (inclusive).
    pub from: DateTime<Utc>,
    /// End of the window (exclusive).
    pub to: DateTime<Utc>,
    /// Every job together.
    pub total: WindowStats,
    /// Each job with executions that ended in the window, by job id.
    pub jobs: Vec<(JobId, WindowStats)>,
}

impl Summary {
    /// The summary of `executions` that ended in `[from, to)`.
    pub fn of(from: DateTime<Utc>, to: DateTime<Utc>, executions: &[Execution]) -> Summary {
        let mut by_job: std::collections::BTreeMap<JobId, Vec<&Execution>> =
            std::collections::BTreeMap::new();
        for e in executions {
            by_job.entry(e.job_id).or_default().push(e);
        }
        Summary {
            from,
            to,
            total: WindowStats::of(executions),
            jobs: by_job
                .into_iter()
                .map(|(id, es)| (id, WindowStats::of(es)))
                .collect(),
        }
    }

    /// One job's statistics (empty when it had no execution in the window).
    pub fn job(&self, id: &JobId) -> WindowStats {
        self.jobs
            .iter()
            .find(|(j, _)| j == id)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[], 50), None);
    }
}
