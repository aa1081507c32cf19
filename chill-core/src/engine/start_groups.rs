//! Runs claimed ahead for the same instant start before any of them finishes.
//!
//! When thousands of slots are due at one instant (every job at 09:00), the runs claimed ahead
//! wake together at that instant. A run whose AI call answers at once would otherwise write its
//! end (the fenced finish, its events) while the others still wait to start, and each start
//! would queue behind the finishes before it. A run of a group therefore waits, after its AI
//! call, until every run of its group has started (or given up starting). Starts never wait
//! for finishes, so the wait cannot deadlock; it only delays the writes of the first results
//! by the time the whole group takes to start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::clock::Clock;

/// The groups of runs claimed ahead, by the instant they are due.
#[derive(Debug, Default)]
pub(crate) struct StartGroups {
    groups: Mutex<HashMap<DateTime<Utc>, Arc<Group>>>,
}

/// The runs due at one instant: whether the instant came, and how many have not started yet.
#[derive(Debug, Default)]
struct Group {
    due: AtomicBool,
    came: Notify,
    pending: AtomicUsize,
    all_started: Notify,
}

/// Wait on `notify` until `flag` holds.
async fn wait_for(flag: impl Fn() -> bool, notify: &Notify) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so a notification between the two is not lost.
        notified.as_mut().enable();
        if flag() {
            return;
        }
        notified.await;
    }
}

impl StartGroups {
    /// Join the group of the runs due at `at`, as a run claimed ahead that has not started.
    /// A new group gets one timer on `clock` that wakes all its runs at `at` (one timer for
    /// the herd instead of one per run). Groups whose runs all started are dropped here.
    pub(crate) fn join(&self, at: DateTime<Utc>, clock: &Arc<dyn Clock>) -> PendingStart {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.retain(|_, g| g.pending.load(Ordering::Acquire) > 0);
        let group = groups
            .entry(at)
            .or_insert_with(|| {
                let group = Arc::new(Group::default());
                let (timer, clock) = (group.clone(), clock.clone());
                tokio::spawn(async move {
                    clock.sleep_until(at).await;
                    timer.due.store(true, Ordering::Release);
                    timer.came.notify_waiters();
                });
                group
            })
            .clone();
        group.pending.fetch_add(1, Ordering::AcqRel);
        PendingStart {
            group,
            started: false,
        }
    }
}

/// A run's place in its group: it counts as not started until [`PendingStart::started`] or
/// until it is dropped (the run was cancelled or aborted before it started).
#[derive(Debug)]
pub(crate) struct PendingStart {
    group: Arc<Group>,
    started: bool,
}

impl PendingStart {
    /// This run has started (or will not start): one fewer for the group to wait for.
    pub(crate) fn started(&mut self) {
        if !std::mem::replace(&mut self.started, true)
            && self.group.pending.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.group.all_started.notify_waiters();
        }
    }

    /// Returns once the group's instant came (on the clock given to [`StartGroups::join`]).
    pub(crate) async fn due(&self) {
        let group = &self.group;
        wait_for(|| group.due.load(Ordering::Acquire), &group.came).await;
    }

    /// Returns once every run of the group has started.
    pub(crate) async fn all_started(&mut self) {
        self.started();
        let group = &self.group;
        wait_for(
            || group.pending.load(Ordering::Acquire) == 0,
            &group.all_started,
        )
        .await;
    }
}

impl Drop for PendingStart {
    fn drop(&mut self) {
        self.started();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, s).unwrap()
    }

    fn clock() -> (ManualClock, Arc<dyn Clock>) {
        let manual = ManualClock::new(at(0) - chrono::TimeDelta::minutes(1));
        (manual.clone(), Arc::new(manual))
    }

    async fn let_others_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_runs_of_a_group_are_woken_together_when_its_instant_comes() {
        let (manual, clock) = clock();
        let groups = StartGroups::default();
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let pending = groups.join(at(0), &clock);
                tokio::spawn(async move { pending.due().await })
            })
            .collect();
        let_others_run().await;
        manual
            .advance_to(at(0) - chrono::TimeDelta::milliseconds(1))
            .await;
        let_others_run().await;
        assert!(
            waiting.iter().all(|w| !w.is_finished()),
            "not before the instant"
        );
        manual.advance_to(at(0)).await;
        for w in waiting {
            w.await.unwrap();
        }
    }

    #[tokio::test]
    async fn finishes_wait_for_every_start_of_their_group_only() {
        let (_manual, clock) = clock();
        let groups = StartGroups::default();
        let mut a = groups.join(at(0), &clock);
        let mut b = groups.join(at(0), &clock);
        let mut later = groups.join(at(1), &clock);
        let waiting = tokio::spawn(async move { a.all_started().await });
        let_others_run().await;
        assert!(!waiting.is_finished(), "a waits for b to start");
        later.all_started().await; // alone in its group: no wait
        b.started();
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn a_dropped_run_counts_as_started() {
        let (_manual, clock) = clock();
        let groups = StartGroups::default();
        let mut a = groups.join(at(0), &clock);
        let b = groups.join(at(0), &clock);
        drop(b);
        a.all_started().await;
        drop(a);
        let _c = groups.join(at(5), &clock);
        assert_eq!(
            groups.groups.lock().unwrap().len(),
            1,
            "groups whose runs all started are dropped"
        );
    }
}
