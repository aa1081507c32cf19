//! The scheduler loop: claim due slots and retry attempts, dispatch them.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tracing::Instrument;

use super::{Inner, ceil_millis, planner};
use crate::events::Event;
use crate::model::ErrorType;
use crate::ops::AlertKind;
use crate::store::StoreError;
use crate::telemetry;

/// Whether a tick found more due work than it could take.
#[derive(Debug, PartialEq, Eq)]
enum Tick {
    /// More may be due right now: tick again.
    More,
    /// Everything due was taken (or no capacity): sleep. `claimed` says whether this tick
    /// claimed anything.
    Done { claimed: bool },
}

/// Claim and dispatch due work until shutdown.
pub(crate) async fn scheduler_loop(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut progressed = true;
        let tick = tick(&inner).await;
        let result = match tick {
            Ok(Tick::More) => {
                failures = 0;
                continue;
            }
            Ok(Tick::Done { claimed }) => {
                progressed = claimed;
                inner.store.next_due_at().await
            }
            Err(e) => Err(e),
        };
        let now = inner.now();
        let wake_at = match result {
            Ok(next) => {
                failures = 0;
                let state = LoopState {
                    now,
                    next_due: next,
                    progressed,
                    capacity: inner.permits.available_permits() > 0,
                };
                match state.wake_at(inner.poll_length(), inner.ahead_length(), || {
                    inner.store_backoff(1)
                }) {
                    Some(at) => at,
                    None => continue,
                }
            }
            Err(e) => {
                failures += 1;
                let wait = inner.store_backoff(failures);
                tracing::warn!(error = %e, failures, wait_ms = wait.num_milliseconds(), "store error in the scheduler loop; backing off");
                now + wait
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            () = inner.wake.notified() => {}
            () = inner.clock.sleep_until(wake_at) => {}
        }
    }
    tracing::debug!("scheduler loop stopped");
}

/// What the scheduler loop knows after a round that took everything it could.
#[derive(Debug, Clone, Copy)]
struct LoopState {
    /// The time at store precision.
    now: DateTime<Utc>,
    /// The store's earliest due time.
    next_due: Option<DateTime<Utc>>,
    /// Whether the round claimed anything.
    progressed: bool,
    /// Whether a permit is free.
    capacity: bool,
}

impl LoopState {
    /// When to look again (`None`: at once). `poll` is the longest sleep, `ahead` the
    /// claim-ahead window, `backoff` the pause after a round that claimed nothing due.
    ///
    /// The time is rounded up to a whole millisecond: the loop compares due times with the
    /// clock cut to milliseconds, so a sleep until a due time with finer precision would end
    /// before the cut clock reached it, and the loop would wake again at once, forever on a
    /// clock that only moves when everyone sleeps.
    fn wake_at(
        self,
        poll: TimeDelta,
        ahead: TimeDelta,
        backoff: impl FnOnce() -> TimeDelta,
    ) -> Option<DateTime<Utc>> {
        let LoopState {
            now,
            next_due,
            progressed,
            capacity,
        } = self;
        let at = match next_due {
            Some(due) if due <= now && progressed && capacity => return None,
            // Due, but this round claimed nothing (lost every race, or a job that cannot be
            // claimed): do not spin; look again shortly.
            Some(due) if due <= now && capacity => now + backoff(),
            // Due but no capacity: wait for a running execution to end (it notifies).
            Some(due) if due <= now => now + poll,
            // Inside the claim-ahead window but not claimed (a slot decided when due, no
            // capacity, or a job that appeared after the query).
            Some(due) if due <= now + ahead && progressed => return None,
            Some(due) if due <= now + ahead => due.min(now + poll),
            Some(due) => (due - ahead).min(now + poll),
            None => now + poll,
        };
        Some(ceil_millis(at))
    }
}

/// One round: claim due retry attempts and due slots, as many as there is capacity for.
async fn tick(inner: &Arc<Inner>) -> Result<Tick, StoreError> {
    let free = inner
        .permits
        .available_permits()
        .min(inner.options.claim_batch);
    if free == 0 {
        return Ok(Tick::Done { claimed: false });
    }
    let now = inner.now();
    let span = tracing::debug_span!("claim", %now, free);
    claim_due(inner, now, free).instrument(span).await
}

/// The work of [`tick`] with capacity for `free` executions, inside its span.
async fn claim_due(
    inner: &Arc<Inner>,
    now: DateTime<Utc>,
    free: usize,
) -> Result<Tick, StoreError> {
    let batch = inner.options.claim_batch;
    let mut claimed = false;
    let attempts = inner.store.due_attempts(now, free).await?;
    let seen = attempts.len();
    telemetry::due_backlog(seen);
    let mut more = attempts.len() == free;
    for attempt in attempts {
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            return Ok(Tick::Done { claimed });
        };
        let lease = inner.lease();
        let _writing = inner.lease_writes.begin(attempt.job_id);
        if let Some(execution) = inner.store.claim_attempt(&attempt.id, &lease, now).await? {
            claimed = true;
            inner.dispatch_claimed(execution, permit).await;
        }
    }

    let free = inner.permits.available_permits().min(batch);
    if free == 0 {
        return Ok(Tick::Done { claimed });
    }
    // With claim-ahead, slots due up to `horizon` are claimed now and run at their due time.
    let horizon = now + inner.ahead_length();
    let jobs = inner.store.due_jobs(horizon, free).await?;
    telemetry::due_backlog(seen + jobs.len());
    let full = jobs.len() == free;
    let mut deferred = false;
    let gate = inner.global_gate(now);
    for job in jobs {
        // A job due ahead is planned as of its due time: its slot runs on time, not late.
        let at = job.next_run_at.map_or(now, |due| due.max(now));
        let lease = inner.lease_from(at);
        // Each slot needs at most one permit: a claim of no more slots than there are free
        // permits can always start its runs (a larger one could never be taken).
        let max_slots = inner
            .options
            .max_slots_per_claim
            .min(inner.permits.available_permits());
        let Some(plan) = planner::plan_gated(&job, at, &lease, max_slots, gate.as_deref()) else {
            continue;
        };
        if at > now && !plan.only_runs() {
            // Whether the slot overlaps a run, is buffered or blacked out is decided when it is
            // due, exactly as without claim-ahead.
            deferred = true;
            continue;
        }
        let mut permits = Vec::with_capacity(plan.runs.len());
        for _ in 0..plan.runs.len() {
            match inner.permits.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => return Ok(Tick::Done { claimed }),
            }
        }
        let _writing = inner.lease_writes.begin(job.id);
        if !inner.store.claim_slots(&plan.claim).await? {
            tracing::debug!(job_id = %job.id, "slot claimed elsewhere or job changed");
            continue;
        }
        claimed = true;
        // A claim that did not reach `now` (or the horizon) leaves the job due: look again.
        more |= plan.claim.next_run_at.is_some_and(|n| n <= horizon);
        for skipped in plan.skipped {
            tracing::info!(job_id = %job.id, scheduled_for = %skipped.scheduled_for, reason = skipped.error_type.as_deref().unwrap_or(""), "slot skipped");
            telemetry::execution_ended(&skipped);
            if skipped.error_type.as_deref() == Some(ErrorType::BudgetExceeded.as_str()) {
                let why = skipped.error_message.clone().unwrap_or_default();
                let message = format!(
                    "job {}: slot {} skipped: {why}",
                    job.id, skipped.scheduled_for
                );
                inner
                    .raise(AlertKind::BudgetExceeded, Some(job.id), message)
                    .await;
            }
            inner.emit(Event::ExecutionSkipped(skipped));
        }
        // The job goes to its last run; only the others take a copy.
        let mut runs: Vec<_> = plan.runs.into_iter().zip(permits).collect();
        if let Some((last, permit)) = runs.pop() {
            for (run, permit) in runs {
                inner.dispatch(run, job.clone(), Some(permit));
            }
            inner.dispatch(last, job, Some(permit));
        }
    }
    // A full batch may hide more due jobs; one with a slot decided when due stops the round
    // (everything due now sorts before it, so nothing due now is left behind).
    more |= full && !deferred;
    Ok(if more {
        Tick::More
    } else {
        Tick::Done { claimed }
    })
}

#[cfg(test)]
mod tests {
    use chrono::{SubsecRound, TimeZone};

    use super::*;

    fn at(ms: i64, extra_nanos: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, 26, 12, 0, 0).unwrap()
            + TimeDelta::milliseconds(ms)
            + TimeDelta::nanoseconds(extra_nanos)
    }

    fn idle(now: DateTime<Utc>, next_due: DateTime<Utc>) -> LoopState {
        LoopState {
            now,
            next_due: Some(next_due),
            progressed: false,
            capacity: true,
        }
    }

    const POLL: TimeDelta = TimeDelta::seconds(1);
    const AHEAD: TimeDelta = TimeDelta::seconds(20);

    fn no_backoff() -> TimeDelta {
        panic!("nothing is due yet: no backoff")
    }

    #[test]
    fn a_due_time_finer_than_a_millisecond_is_waited_for_not_spun_on() {
        // Due 20 s and a fraction of a millisecond ahead of the clock cut to milliseconds:
        // the claim-ahead window opens between this millisecond and the next.
        let due = at(51_129, 538_921);
        let now = at(31_129, 0);
        let wake = idle(now, due).wake_at(POLL, AHEAD, no_backoff).unwrap();
        assert_eq!(wake, at(31_130, 0), "the next whole millisecond");
        // At that millisecond the window is open: wait for the due time itself.
        let wake = idle(wake, due).wake_at(POLL, AHEAD, no_backoff).unwrap();
        assert_eq!(wake, at(32_130, 0), "one poll later, before the due time");
    }

    #[test]
    fn every_wake_up_is_a_whole_millisecond_after_the_cut_clock() {
        for nanos in [0, 1, 538_921, 999_999] {
            for due_ms in [-5_000, 0, 10_000, 20_000, 20_001, 40_000] {
                for progressed in [false, true] {
                    for capacity in [false, true] {
                        let now = at(0, 0);
                        let state = LoopState {
                            now,
                            next_due: Some(at(due_ms, nanos)),
                            progressed,
                            capacity,
                        };
                        let wake = state.wake_at(POLL, AHEAD, || TimeDelta::microseconds(100_500));
                        if let Some(wake) = wake {
                            assert!(wake > now, "{state:?}: {wake}");
                            assert_eq!(wake, wake.trunc_subsecs(3), "{state:?}: {wake}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_loop_goes_on_at_once_only_after_a_round_that_claimed() {
        let now = at(0, 0);
        let due_now = LoopState {
            progressed: true,
            ..idle(now, now)
        };
        assert_eq!(due_now.wake_at(POLL, AHEAD, no_backoff), None);
        let in_window = LoopState {
            progressed: true,
            ..idle(now, at(5_000, 0))
        };
        assert_eq!(in_window.wake_at(POLL, AHEAD, no_backoff), None);
        let stuck = idle(now, now);
        assert_eq!(
            stuck.wake_at(POLL, AHEAD, || TimeDelta::milliseconds(100)),
            Some(at(100, 0)),
            "due but nothing claimed: back off"
        );
        let full = LoopState {
            capacity: false,
            ..idle(now, now)
        };
        assert_eq!(full.wake_at(POLL, AHEAD, no_backoff), Some(at(1_000, 0)));
        let nothing = LoopState {
            next_due: None,
            ..idle(now, now)
        };
        assert_eq!(nothing.wake_at(POLL, AHEAD, no_backoff), Some(at(1_000, 0)));
    }
}
