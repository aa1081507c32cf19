//! Time, behind a trait: the engine never reads the system clock or sleeps directly, so tests
//! run years of schedule in milliseconds on a [`ManualClock`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::oneshot;

/// A source of the current time and of sleeps until a time.
///
/// Used as `Arc<dyn Clock>`.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Returns once [`Clock::now`] is at or after `deadline`.
    async fn sleep_until(&self, deadline: DateTime<Utc>);

    /// Returns after `duration` has passed on this clock.
    async fn sleep(&self, duration: Duration) {
        let delta = TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX);
        let deadline = self
            .now()
            .checked_add_signed(delta)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.sleep_until(deadline).await;
    }
}

/// The system's wall clock, sleeping with tokio timers.
///
/// Sleeps are cut into pieces of at most [`SystemClock::MAX_NAP`] and the wall clock is read
/// again after each, so a wall clock that jumps (NTP, suspend) delays a wake-up by at most that.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The longest single sleep before the wall clock is read again.
    pub const MAX_NAP: Duration = Duration::from_secs(10);
}

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            let remaining = deadline - Utc::now();
            let Ok(remaining) = remaining.to_std() else {
                return;
            };
            if remaining.is_zero() {
                return;
            }
            tokio::time::sleep(remaining.min(Self::MAX_NAP)).await;
        }
    }
}

/// A clock that moves only when told to, for tests and simulations.
///
/// [`ManualClock::advance`] moves time forward through every pending deadline in order
/// (deadline, then the order the sleeps began), waking the sleepers of each deadline and
/// letting the woken tasks run before it moves on. On a current-thread runtime the same
/// calls therefore wake the same tasks in the same order every time.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use chill_core::{Clock, ManualClock};
/// use chrono::{TimeZone, Utc};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
/// let sleeper = {
///     let clock = clock.clone();
///     tokio::spawn(async move { clock.sleep(Duration::from_secs(3600)).await; clock.now() })
/// };
/// tokio::task::yield_now().await; // let the sleeper register
/// clock.advance(Duration::from_secs(7200)).await;
/// assert_eq!(sleeper.await.unwrap(), Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap());
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    next_seq: u64,
    sleepers: BTreeMap<(DateTime<Utc>, u64), oneshot::Sender<()>>,
}

/// How many times [`ManualClock::advance`] yields to the runtime after waking sleepers, so
/// that woken tasks run until they wait again.
const SETTLE_YIELDS: usize = 16;

impl ManualClock {
    /// A clock that reads `start` until it is advanced.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            inner: Arc::new(Mutex::new(ManualState {
                now: start,
                next_seq: 0,
                sleepers: BTreeMap::new(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, ManualState> {
        // A panic while holding this lock cannot leave the state inconsistent: every update
        // is a single assignment or map operation.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The earliest deadline anyone is sleeping until.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.state().sleepers.keys().next().map(|(t, _)| *t)
    }

    /// How many sleeps are pending.
    pub fn sleepers(&self) -> usize {
        self.state().sleepers.len()
    }

    /// Move time forward by `by`, waking sleepers in deadline order (see the type's docs).
    pub async fn advance(&self, by: Duration) {
        let target = self.now() + TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        self.advance_to(target).await;
    }

    /// Move time forward to `target` (no-op if it is in the past), waking sleepers in
    /// deadline order.
    pub async fn advance_to(&self, target: DateTime<Utc>) {
        loop {
            let woken = {
                let mut state = self.state();
                let Some(&(deadline, _)) = state.sleepers.keys().next() else {
                    break;
                };
                if deadline > target {
                    break;
                }
                state.now = state.now.max(deadline);
                // Every sleeper of this deadline wakes together, in the order they slept.
                let mut woken = Vec::new();
                while let Some(entry) = state.sleepers.first_entry() {
                    if entry.key().0 != deadline {
                        break;
                    }
                    woken.push(entry.remove());
                }
                woken
            };
            for tx in woken {
                let _ = tx.send(());
            }
            settle().await;
        }
        {
            let mut state = self.state();
            state.now = state.now.max(target);
        }
        settle().await;
    }

    /// Jump to the earliest pending deadline (if any) and wake its sleepers. Returns the new
    /// time, or `None` when nobody sleeps.
    pub async fn advance_to_next_deadline(&self) -> Option<DateTime<Utc>> {
        let next = self.next_deadline()?;
        self.advance_to(next).await;
        Some(next)
    }

    /// Set the time without waking anyone (a wall clock that jumps backwards, say).
    pub fn set(&self, now: DateTime<Utc>) {
        self.state().now = now;
    }
}

/// Yield to the runtime enough times for woken tasks to reach their next wait.
async fn settle() {
    for _ in 0..SETTLE_YIELDS {
        tokio::task::yield_now().await;
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let rx = {
            let mut state = self.state();
            if deadline <= state.now {
                return;
            }
            let (tx, rx) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.sleepers.insert((deadline, seq), tx);
            rx
        };
        // A dropped sender means the clock itself was dropped: nothing will ever wake us, but
        // returning is the kinder failure.
        let _ = rx.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn wakes_in_deadline_order_then_registration_order() {
        let clock = ManualClock::new(t0());
        let order = Arc::new(Mutex::new(Vec::new()));
        for (name, secs) in [("c", 30u64), ("a", 10), ("b", 10), ("d", 50)] {
            let (clock, order) = (clock.clone(), order.clone());
            tokio::spawn(async move {
                clock.sleep(Duration::from_secs(secs)).await;
                order.lock().unwrap().push((name, clock.now()));
            });
        }
        settle().await;
        assert_eq!(clock.sleepers(), 4);
        clock.advance(Duration::from_secs(40)).await;
        let got = order.lock().unwrap().clone();
        let at = |s| t0() + TimeDelta::seconds(s);
        assert_eq!(got, vec![("a", at(10)), ("b", at(10)), ("c", at(30))]);
        assert_eq!(clock.now(), at(40));
        assert_eq!(clock.next_deadline(), Some(at(50)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_past_deadline_returns_at_once_and_time_never_goes_back_on_advance() {
        let clock = ManualClock::new(t0());
        clock.sleep_until(t0() - TimeDelta::seconds(5)).await;
        clock.advance_to(t0() - TimeDelta::seconds(5)).await;
        assert_eq!(clock.now(), t0());
        assert_eq!(clock.advance_to_next_deadline().await, None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sleeper_that_sleeps_again_is_woken_within_one_advance() {
        let clock = ManualClock::new(t0());
        let ticks = Arc::new(Mutex::new(0u32));
        {
            let (clock, ticks) = (clock.clone(), ticks.clone());
            tokio::spawn(async move {
                loop {
                    clock.sleep(Duration::from_secs(1)).await;
                    *ticks.lock().unwrap() += 1;
                }
            });
        }
        settle().await;
        clock.advance(Duration::from_secs(100)).await;
        assert_eq!(*ticks.lock().unwrap(), 100);
    }

    #[tokio::test]
    async fn system_clock_sleeps_until_the_deadline() {
        let clock = SystemClock;
        let deadline = clock.now() + TimeDelta::milliseconds(30);
        clock.sleep_until(deadline).await;
        assert!(clock.now() >= deadline);
    }
}
