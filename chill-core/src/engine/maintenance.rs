//! The maintenance loop: lease recovery, the alert window's statistics and alerts, the global
//! spend, and retention, each on its own interval of the engine's clock.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::{Inner, recovery};
use crate::events::Event;
use crate::model::{Execution, JobId};
use crate::ops::{Alert, AlertKind, Summary};
use crate::store::{JobFilter, PageRequest, StoreError};

/// What all jobs spent in the current UTC day and month, as of the last read, plus what this
/// instance spent since.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GlobalSpend {
    pub(crate) day: u32,
    pub(crate) day_micro_usd: u64,
    pub(crate) month: u32,
    pub(crate) month_micro_usd: u64,
}

impl GlobalSpend {
    /// Add what this instance spent at `at`.
    pub(crate) fn add(&mut self, at: DateTime<Utc>, micro_usd: u64) {
        let mut spend = crate::model::Spend {
            day: self.day,
            day_micro_usd: self.day_micro_usd,
            month: self.month,
            month_micro_usd: self.month_micro_usd,
        };
        spend.add(at, micro_usd);
        *self = GlobalSpend {
            day: spend.day,
            day_micro_usd: spend.day_micro_usd,
            month: spend.month,
            month_micro_usd: spend.month_micro_usd,
        };
    }

    fn as_spend(&self) -> crate::model::Spend {
        crate::model::Spend {
            day: self.day,
            day_micro_usd: self.day_micro_usd,
            month: self.month,
            month_micro_usd: self.month_micro_usd,
        }
    }
}

/// When each alert (kind, job) was last raised: raised at most once per alert window.
pub(crate) type Raised = HashMap<(AlertKind, Option<JobId>), DateTime<Utc>>;

impl Inner {
    /// Why slots must not run now because all jobs together spent the global budget.
    pub(crate) fn global_gate(&self, now: DateTime<Utc>) -> Option<String> {
        let budget = self.options.global_budget?;
        let spend = self.spend().as_spend();
        let period = budget.exceeded_by(&spend, now)?;
        Some(format!("the global {period} budget is spent"))
    }

    /// Raise an alert unless the same (kind, job) was raised within the alert window.
    pub(crate) async fn raise(&self, kind: AlertKind, job_id: Option<JobId>, message: String) {
        let now = self.now();
        let window =
            TimeDelta::from_std(self.options.alert_rules.window).unwrap_or(TimeDelta::hours(1));
        {
            let mut raised = self.raised();
            if raised
                .get(&(kind, job_id))
                .is_some_and(|last| now - *last < window)
            {
                return;
            }
            raised.insert((kind, job_id), now);
        }
        tracing::warn!(alert = kind.as_str(), job_id = ?job_id, %message, "alert");
        let alert = Alert {
            kind,
            job_id,
            message,
            at: now,
            instance_id: self.options.instance_id.clone(),
        };
        if let Some(sink) = &self.alert_sink {
            sink.alert(&alert).await;
        }
        self.emit(Event::Alert(alert));
    }
}

/// Run the maintenance tasks until shutdown.
pub(crate) async fn maintenance_loop(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let every = |d: std::time::Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::minutes(1));
    let start = inner.now();
    let mut recovery_at = start + every(inner.options.recovery_interval);
    // The metrics round runs at once, so the global spend is known before the first claims.
    let mut metrics_at = start;
    let mut retention_at = start + every(inner.options.retention_interval);
    loop {
        let wake_at = recovery_at.min(metrics_at).min(retention_at);
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            () = inner.clock.sleep_until(wake_at) => {}
        }
        if *shutdown.borrow() {
            break;
        }
        let now = inner.now();
        if now >= recovery_at {
            if let Err(e) = recovery::recover(&inner).await {
                tracing::warn!(error = %e, "lease recovery failed; trying again next round");
            }
            recovery_at = inner.now() + every(inner.options.recovery_interval);
        }
        if now >= metrics_at {
            if let Err(e) = metrics_round(&inner).await {
                tracing::warn!(error = %e, "metrics round failed; trying again next round");
            }
            metrics_at = inner.now() + every(inner.options.metrics_interval);
        }
        if now >= retention_at {
            match retention_round(&inner).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "retention deleted old executions"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention failed; trying again next round"),
            }
            retention_at = inner.now() + every(inner.options.retention_interval);
        }
    }
    tracing::debug!("maintenance loop stopped");
}

/// Read the global spend, compute the alert window's statistics and raise alerts.
pub(crate) async fn metrics_round(inner: &Arc<Inner>) -> Result<Summary, StoreError> {
    let now = inner.now();
    // Read every job: the global spend, and the active jobs gauge.
    let spend = global_spend(inner, now).await?;
    if inner.options.global_budget.is_some() {
        *inner.spend() = spend;
    }
    let window =
        TimeDelta::from_std(inner.options.alert_rules.window).unwrap_or(TimeDelta::hours(1));
    let summary = summarize(inner, now - window, now).await?;
    let rules = inner.options.alert_rules;
    for (job_id, stats) in &summary.jobs {
        if stats.runs < rules.min_runs.max(1) {
            continue;
        }
        let checks = [
            (
                AlertKind::ProblematicJob,
                "failed",
                stats.failures,
                stats.failure_percent(),
                rules.failure_percent,
            ),
            (
                AlertKind::HighTimeoutRate,
                "timed out",
                stats.timeouts,
                stats.timeout_percent(),
                rules.timeout_percent,
            ),
        ];
        for (kind, what, count, percent, threshold) in checks {
            if percent > u64::from(threshold) {
                let message = format!(
                    "job {job_id}: {count} of {} runs {what} in the last {} min ({percent}%, threshold {threshold}%)",
                    stats.runs,
                    window.num_minutes(),
                );
                inner.raise(kind, Some(*job_id), message).await;
            }
        }
    }
    Ok(summary)
}

/// What every job (deleted ones too: their money is spent) spent in the current day and month.
async fn global_spend(inner: &Inner, now: DateTime<Utc>) -> Result<GlobalSpend, StoreError> {
    let (day, month) = crate::model::Spend::keys(now);
    let mut total = GlobalSpend {
        day,
        day_micro_usd: 0,
        month,
        month_micro_usd: 0,
    };
    let filter = JobFilter {
        include_deleted: true,
        ..JobFilter::default()
    };
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    let mut active = 0;
    loop {
        let jobs = inner.store.list_jobs(&filter, &page).await?;
        for job in &jobs.items {
            active += usize::from(job.enabled && job.deleted_at.is_none());
            let (d, m) = job.spend.at(now);
            total.day_micro_usd = total.day_micro_usd.saturating_add(d);
            total.month_micro_usd = total.month_micro_usd.saturating_add(m);
        }
        match jobs.next_cursor {
            Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
            None => {
                crate::telemetry::set_active_jobs(active);
                return Ok(total);
            }
        }
    }
}

/// Every execution that ended in `[from, to)`, summarized.
pub(crate) async fn summarize(
    inner: &Inner,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Summary, StoreError> {
    let mut executions: Vec<Execution> = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let p = inner.store.list_finished(from, to, &page).await?;
        executions.extend(p.items);
        match p.next_cursor {
            Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
            None => return Ok(Summary::of(from, to, &executions)),
        }
    }
}

/// Delete executions older than the retention, in bounded batches, archiving each batch
/// first when there is an archive hook. Returns how many were deleted.
pub(crate) async fn retention_round(inner: &Arc<Inner>) -> Result<u64, StoreError> {
    let Some(keep) = inner.options.retention else {
        return Ok(0);
    };
    let before = inner.now() - TimeDelta::from_std(keep).unwrap_or(TimeDelta::MAX);
    let batch = inner.options.retention_batch.max(1);
    let mut deleted = 0;
    for _ in 0..inner.options.retention_batches_per_round.max(1) {
        let n = match &inner.archive {
            None => inner.store.delete_executions_before(before, batch).await?,
            Some(archive) => {
                let old = inner.store.executions_before(before, batch).await?;
                if old.is_empty() {
                    0
                } else if let Err(why) = archive.archive(&old).await {
                    tracing::warn!(reason = %why, count = old.len(), "the archive hook refused a batch; it stays in the store");
                    return Ok(deleted);
                } else {
                    let ids: Vec<_> = old.iter().map(|e| e.id).collect();
                    inner.store.delete_executions(&ids).await?
                }
            }
        };
        deleted += n;
        if n < batch as u64 {
            break;
        }
    }
    Ok(deleted)
}
