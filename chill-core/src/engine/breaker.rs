//! The circuit breaker around the AI client: after a run of failures (or too high a failure
//! rate) it opens, and executions fail fast with errorType `circuit_open` instead of calling an
//! endpoint that is down; after a cool-down it lets a few probe calls through (half-open) and
//! closes again on a success.
//!
//! Only failures that say something about the endpoint count: network errors, timeouts, 429
//! and 5xx ([`AiError::is_transient`] and timeouts). A 4xx or an API error is the request's
//! fault and counts as an answer. One breaker per engine instance, on the engine's clock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::ai::AiError;

/// When the breaker opens and how it recovers. `ChillOptions::breaker`.
///
/// ```
/// use std::time::Duration;
/// use chill_core::BreakerOptions;
/// let b = BreakerOptions::default();
/// assert_eq!((b.consecutive_failures, b.cool_down, b.half_open_probes), (5, Duration::from_secs(30), 1));
/// assert!(BreakerOptions::disabled().is_disabled());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerOptions {
    /// Open after this many failed calls in a row (0: never on a run of failures).
    pub consecutive_failures: u32,
    /// Open when at least this percentage of the last [`BreakerOptions::rate_window`] calls
    /// failed (0: no rate rule)...
    pub failure_rate_percent: u8,
    /// ...over this many most recent calls (the rule applies once the window is full).
    pub rate_window: u32,
    /// How long the breaker stays open before it lets probes through.
    pub cool_down: Duration,
    /// How many probe calls run at once while half-open; the first success closes the breaker,
    /// a failure opens it again for another cool-down.
    pub half_open_probes: u32,
}

impl Default for BreakerOptions {
    /// Open after 5 failures in a row or 50% of the last 20 calls; 30 s cool-down; 1 probe.
    fn default() -> BreakerOptions {
        BreakerOptions {
            consecutive_failures: 5,
            failure_rate_percent: 50,
            rate_window: 20,
            cool_down: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

impl BreakerOptions {
    /// A breaker that never opens.
    pub fn disabled() -> BreakerOptions {
        BreakerOptions {
            consecutive_failures: 0,
            failure_rate_percent: 0,
            ..BreakerOptions::default()
        }
    }

    /// Whether neither rule can open the breaker.
    pub fn is_disabled(&self) -> bool {
        self.consecutive_failures == 0 && (self.failure_rate_percent == 0 || self.rate_window == 0)
    }

    /// Set [`BreakerOptions::consecutive_failures`].
    pub fn with_consecutive_failures(mut self, n: u32) -> BreakerOptions {
        self.consecutive_failures = n;
        self
    }

    /// Set the rate rule: `percent` of the last `window` calls.
    pub fn with_failure_rate(mut self, percent: u8, window: u32) -> BreakerOptions {
        self.failure_rate_percent = percent.min(100);
        self.rate_window = window;
        self
    }

    /// Set [`BreakerOptions::cool_down`].
    pub fn with_cool_down(mut self, cool_down: Duration) -> BreakerOptions {
        self.cool_down = cool_down;
        self
    }

    /// Set [`BreakerOptions::half_open_probes`] (at least 1).
    pub fn with_half_open_probes(mut self, n: u32) -> BreakerOptions {
        self.half_open_probes = n.max(1);
        self
    }
}

/// The breaker's state, as events and metrics report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Probe calls go through; the others fail fast.
    HalfOpen,
    /// Every call fails fast until the cool-down ends.
    Open,
}

impl BreakerState {
    /// `closed`, `half_open` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }

    /// 0 closed, 1 half-open, 2 open: the value of the breaker-state gauge.
    pub fn code(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Call; report the outcome with [`Breaker::record`] (`probe`: a half-open probe).
    Call {
        /// Whether this call is a half-open probe.
        probe: bool,
    },
    /// Do not call: the breaker is open until then.
    Refused {
        /// When probes will be let through.
        until: DateTime<Utc>,
    },
}

/// A state change, to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: BreakerState,
    pub(crate) to: BreakerState,
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: DateTime<Utc> },
    HalfOpen { probes: u32 },
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive: u32,
    /// Outcomes of the most recent calls, `true` for a failure.
    window: VecDeque<bool>,
}

/// The circuit breaker of an engine instance.
#[derive(Debug)]
pub(crate) struct Breaker {
    options: BreakerOptions,
    inner: Mutex<Inner>,
    /// Whether `inner.state` is `Closed`: written under the lock whenever the state changes,
    /// read without it, so that admitting a call to a healthy endpoint takes no lock.
    closed: AtomicBool,
}

/// Whether an AI outcome counts against the endpoint.
pub(crate) fn counts_as_failure(outcome: &Result<(), &AiError>) -> bool {
    match outcome {
        Ok(()) => false,
        Err(e) => e.is_transient() || matches!(e, AiError::Timeout(_)),
    }
}

impl Breaker {
    pub(crate) fn new(options: BreakerOptions) -> Breaker {
        Breaker {
            options,
            inner: Mutex::new(Inner {
                state: State::Closed,
                consecutive: 0,
                window: VecDeque::new(),
            }),
            closed: AtomicBool::new(true),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state at `now` (an open breaker whose cool-down ended reads as half-open).
    pub(crate) fn state(&self, now: DateTime<Utc>) -> BreakerState {
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Ask to call at `now`. A call admitted as a probe must be reported with
    /// [`Breaker::record`] (or [`Breaker::abandon`]), or the breaker stays half-open.
    pub(crate) fn admit(&self, now: DateTime<Utc>) -> (Admission, Option<Transition>) {
        if self.options.is_disabled() || self.closed.load(Ordering::Acquire) {
            return (Admission::Call { probe: false }, None);
        }
        let mut inner = self.lock();
        match inner.state {
            State::Closed => (Admission::Call { probe: false }, None),
            State::Open { until } if now < until => (Admission::Refused { until }, None),
            State::Open { .. } => {
                inner.state = State::HalfOpen { probes: 1 };
                let t = Transition {
                    from: BreakerState::Open,
                    to: BreakerState::HalfOpen,
                };
                (Admission::Call { probe: true }, Some(t))
            }
            State::HalfOpen { probes } if probes < self.options.half_open_probes.max(1) => {
                inner.state = State::HalfOpen { probes: probes + 1 };
                (Admission::Call { probe: true }, None)
            }
            State::HalfOpen { .. } => {
                let until = now + self.cool_down() / 4;
                (Admission::Refused { until }, None)
            }
        }
    }

    fn cool_down(&self) -> TimeDelta {
        TimeDelta::from_std(self.options.cool_down).unwrap_or(TimeDelta::seconds(30))
    }

    /// Report the outcome of an admitted call at `now`.
    pub(crate) fn record(
        &self,
        probe: bool,
        failed: bool,
        now: DateTime<Utc>,
    ) -> Option<Transition> {
        if self.options.is_disabled() {
            return None;
        }
        let mut inner = self.lock();
        let window = self.options.rate_window as usize;
        if window > 0 {
            inner.window.push_back(failed);
            while inner.window.len() > window {
                inner.window.pop_front();
            }
        }
        inner.consecutive = if failed { inner.consecutive + 1 } else { 0 };
        let from = match inner.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        };
        let to = match (&inner.state, failed) {
            // A late answer of a call admitted before the breaker opened changes nothing.
            (State::Open { .. }, _) => return None,
            (State::HalfOpen { .. }, false) if probe => BreakerState::Closed,
            (State::HalfOpen { .. }, true) if probe => BreakerState::Open,
            (State::HalfOpen { .. }, _) => return None,
            (State::Closed, false) => return None,
            (State::Closed, true) if self.trips(&inner) => BreakerState::Open,
            (State::Closed, true) => return None,
        };
        inner.state = match to {
            BreakerState::Open => State::Open {
                until: now + self.cool_down(),
            },
            _ => {
                inner.window.clear();
                inner.consecutive = 0;
                State::Closed
            }
        };
        self.closed
            .store(matches!(inner.state, State::Closed), Ordering::Release);
        Some(Transition { from, to })
    }

    /// A probe admitted but never made (the execution was abandoned): let another probe go.
    pub(crate) fn abandon(&self, probe: bool) {
        if !probe {
            return;
        }
        let mut inner = self.lock();
        if let State::HalfOpen { probes } = inner.state {
            inner.state = State::HalfOpen {
                probes: probes.saturating_sub(1),
            };
        }
    }

    fn trips(&self, inner: &Inner) -> bool {
        let o = &self.options;
        if o.consecutive_failures > 0 && inner.consecutive >= o.consecutive_failures {
            return true;
        }
        let window = o.rate_window as usize;
        if o.failure_rate_percent == 0 || window == 0 || inner.window.len() < window {
            return false;
        }
        let failed = inner.window.iter().filter(|f| **f).count();
        failed * 100 >= window * usize::from(o.failure_rate_percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(secs)
    }

    fn breaker() -> Breaker {
        Breaker::new(
            BreakerOptions::default()
                .with_consecutive_failures(3)
                .with_failure_rate(0, 0)
                .with_cool_down(Duration::from_secs(10)),
        )
    }

    #[test]
    fn opens_after_a_run_of_failures_and_refuses_until_the_cool_down_ends() {
        let b = breaker();
        assert_eq!(b.record(false, true, t(0)), None);
        assert_eq!(
            b.record(false, false, t(1)),
            None,
            "a success resets the run"
        );
        assert_eq!(b.record(false, true, t(2)), None);
        assert_eq!(b.record(false, true, t(3)), None);
        let opened = b.record(false, true, t(4));
        assert_eq!(
            opened,
            Some(Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open
            })
        );
        assert_eq!(b.admit(t(5)).0, Admission::Refused { until: t(14) });
        assert_eq!(b.state(t(13)), BreakerState::Open);
        assert_eq!(b.state(t(14)), BreakerState::HalfOpen);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_its_success() {
        let b = breaker();
        for i in 0..3 {
            b.record(false, true, t(i));
        }
        let (admission, transition) = b.admit(t(20));
        assert_eq!(admission, Admission::Call { probe: true });
        assert_eq!(transition.map(|t| t.to), Some(BreakerState::HalfOpen));
        assert!(
            matches!(b.admit(t(20)).0, Admission::Refused { .. }),
            "one probe at a time"
        );
        let closed = b.record(true, false, t(21));
        assert_eq!(closed.map(|t| t.to), Some(BreakerState::Closed));
        assert_eq!(b.admit(t(21)).0, Admission::Call { probe: false });
    }

    #[test]
    fn a_failed_probe_opens_again_for_another_cool_down() {
        let b = breaker();
        for i in 0..3 {
            b.record(false, true, t(i));
        }
        let (admission, _) = b.admit(t(20));
        assert_eq!(admission, Admission::Call { probe: true });
        assert_eq!(
            b.record(true, true, t(21)).map(|t| (t.from, t.to)),
            Some((BreakerState::HalfOpen, BreakerState::Open))
        );
        assert_eq!(b.admit(t(22)).0, Admission::Refused { until: t(31) });
    }

    #[test]
    fn an_abandoned_probe_lets_another_through() {
        let b = breaker();
        for i in 0..3 {
            b.record(false, true, t(i));
        }
        assert_eq!(b.admit(t(20)).0, Admission::Call { probe: true });
        b.abandon(true);
        assert_eq!(b.admit(t(20)).0, Admission::Call { probe: true });
    }

    #[test]
    fn the_rate_rule_opens_once_the_window_is_full() {
        let b = Breaker::new(
            BreakerOptions::default()
                .with_consecutive_failures(0)
                .with_failure_rate(50, 4),
        );
        assert_eq!(b.record(false, true, t(0)), None);
        assert_eq!(b.record(false, false, t(1)), None);
        assert_eq!(b.record(false, true, t(2)), None, "window not full yet");
        let opened = b.record(false, false, t(3));
        assert_eq!(opened, None, "a success never opens");
        let opened = b.record(false, true, t(4));
        assert_eq!(
            opened.map(|t| t.to),
            Some(BreakerState::Open),
            "3 of the last 4 failed"
        );
    }

    #[test]
    fn a_disabled_breaker_always_admits() {
        let b = Breaker::new(BreakerOptions::disabled());
        for i in 0..100 {
            assert_eq!(b.record(false, true, t(i)), None);
        }
        assert_eq!(b.admit(t(100)).0, Admission::Call { probe: false });
    }

    #[test]
    fn only_endpoint_failures_count() {
        assert!(counts_as_failure(&Err(&AiError::Network("reset".into()))));
        assert!(counts_as_failure(&Err(&AiError::Timeout(
            Duration::from_secs(1)
        ))));
        assert!(!counts_as_failure(&Err(&AiError::InvalidRequest {
            status: Some(400),
            message: "bad".into()
        })));
        assert!(!counts_as_failure(&Ok(())));
    }
}
