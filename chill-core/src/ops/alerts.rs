//! Alerts: what the engine's maintenance detects and hands to the host, and the rules that
//! decide it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::JobId;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// A job's failure rate over the alert window is above the threshold.
    ProblematicJob,
    /// A job's timeout rate over the alert window is above the threshold.
    HighTimeoutRate,
    /// The AI endpoint looks unreachable: the circuit breaker opened.
    AiUnreachable,
    /// A job (or all jobs together) spent its budget; its slots are skipped.
    BudgetExceeded,
    /// A job was paused after too many consecutive failures.
    JobPausedAfterFailures,
}

impl AlertKind {
    /// The kind's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ProblematicJob => "problematic_job",
            AlertKind::HighTimeoutRate => "high_timeout_rate",
            AlertKind::AiUnreachable => "ai_unreachable",
            AlertKind::BudgetExceeded => "budget_exceeded",
            AlertKind::JobPausedAfterFailures => "job_paused_after_failures",
        }
    }
}

/// One alert. Raised once when its condition starts to hold (per kind and job); raised again
/// only after the condition stopped holding for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// The job, when it is about one.
    pub job_id: Option<JobId>,
    /// For people: what happened, with the numbers.
    pub message: String,
    /// When it was raised.
    pub at: DateTime<Utc>,
    /// The engine instance that raised it.
    pub instance_id: String,
}

/// Where alerts go: a pager, a chat channel, a log. Called from the engine's maintenance; a
/// slow sink delays maintenance, so hand the alert off quickly.
///
/// ```
/// use async_trait::async_trait;
/// use chill_core::{Alert, AlertSink};
///
/// struct LogAlerts;
///
/// #[async_trait]
/// impl AlertSink for LogAlerts {
///     async fn alert(&self, alert: &Alert) {
///         eprintln!("[{}] {}", alert.kind.as_str(), alert.message);
///     }
/// }
/// ```
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// Deliver one alert.
    async fn alert(&self, alert: &Alert);
}

/// When the maintenance raises alerts. `ChillOptions::alert_rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlertRules {
    /// The window the rates are computed over (default one hour).
    pub window: Duration,
    /// A job whose failures (failed, dead) exceed this percentage of its runs in the window
    /// is problematic (default 25).
    pub failure_percent: u8,
    /// A job whose timeouts exceed this percentage of its runs in the window alerts (default
    /// 25).
    pub timeout_percent: u8,
    /// Rates are judged only for jobs with at least this many runs in the window (default 4).
    pub min_runs: u64,
}

impl Default for AlertRules {
    fn default() -> AlertRules {
        AlertRules {
            window: Duration::from_secs(3_600),
            failure_percent: 25,
            timeout_percent: 25,
            min_runs: 4,
        }
    }
}

impl AlertRules {
    /// Set [`AlertRules::window`].
    pub fn with_window(mut self, window: Duration) -> AlertRules {
        self.window = window;
        self
    }

    /// Set [`AlertRules::failure_percent`] and [`AlertRules::timeout_percent`].
    pub fn with_thresholds(mut self, failure_percent: u8, timeout_percent: u8) -> AlertRules {
        self.failure_percent = failure_percent.min(100);
        self.timeout_percent = timeout_percent.min(100);
        self
    }

    /// Set [`AlertRules::min_runs`].
    pub fn with_min_runs(mut self, runs: u64) -> AlertRules {
        self.min_runs = runs;
        self
    }
}
