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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// The groups of runs claimed ahead, by the instant they are due.
#[derive(Debug, Default)]
pub(crate) struct StartGroups {
    groups: Mutex<HashMap<DateTime<Utc>, Arc<Group>>>,
}

/// The runs due at one instant that have not started yet.
#[derive(Debug, Default)]
struct Group {
    pending: AtomicUsize,
    all_started: Notify,
}

impl StartGroups {
    /// Join the group of the runs due at `at`, as a run claimed ahead that has not started.
    /// Groups whose runs all started are dropped here.
    pub(crate) fn join(&self, at: DateTime<Utc>) -> PendingStart {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.retain(|_, g| g.pending.load(Ordering::Acquire) > 0);
        let group = groups.entry(at).or_default().clone();
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

    /// Returns once every run of the group has started.
    pub(crate) async fn all_started(&mut self) {
        self.started();
        loop {
            let notified = self.group.all_started.notified();
            tokio::pin!(notified);
            // Registered before the check, so a notification between the two is not lost.
            notified.as_mut().enable();
            if self.group.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
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
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, s).unwrap()
    }

    async fn let_others_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn finishes_wait_for_every_start_of_their_group_only() {
        let groups = StartGroups::default();
        let mut a = groups.join(at(0));
        let mut b = groups.join(at(0));
        let mut later = groups.join(at(1));
        let waiting = tokio::spawn(async move { a.all_started().await });
        let_others_run().await;
        assert!(!waiting.is_finished(), "a waits for b to start");
        later.all_started().await; // alone in its group: no wait
        b.started();
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn a_dropped_run_counts_as_started() {
        let groups = StartGroups::default();
        let mut a = groups.join(at(0));
        let b = groups.join(at(0));
        drop(b);
        a.all_started().await;
        drop(a);
        let _c = groups.join(at(5));
        assert_eq!(
            groups.groups.lock().unwrap().len(),
            1,
            "groups whose runs all started are dropped"
        );
    }
}
