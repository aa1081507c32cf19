//! Runs claimed ahead for the same instant start before any of them finishes.
//!
//! When thousands of slots are due at one instant (every job at 09:00), the runs claimed ahead
//! wake together at that instant. A run whose AI call answers at once would otherwise write its
//! end (the fenced finish, its events) while the others still wait to start, and each start
//! would queue behind the finishes before it. A run of a group therefore waits, after its AI
//! call, until every run of its group has started (or given up starting). Starts never wait
//! for finishes, so the wait cannot deadlock; it only delays the writes of the first results
//! by the time the whole group takes to start.
//!
//! Before a run claimed ahead starts, its job must still be active (not paused or deleted
//! since the claim). The group asks the store at the instant, for many runs at once
//! ([`Store::inactive_jobs`]), instead of one read per run as each wakes. Its runs wait in
//! [`SHARDS`] shards (by the order they joined in); at the instant the group's timer checks and
//! wakes them a few shards at a time, at least [`CHECK_BATCH`] runs per store call, so that
//! the first runs start while the jobs of the last are still being checked.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::model::JobId;
use crate::store::Store;

/// The groups of runs claimed ahead, by the instant they are due.
#[derive(Debug, Default)]
pub(crate) struct StartGroups {
    groups: Mutex<HashMap<DateTime<Utc>, Arc<Group>>>,
}

/// The runs due at one instant, in shards: whether each shard's turn came and which of its
/// jobs were found inactive then, and how many runs have not started yet.
#[derive(Debug)]
struct Group {
    /// Per shard: its runs were checked and may start.
    due: [AtomicBool; SHARDS],
    /// Per shard: the runs waiting for `due`.
    came: [Notify; SHARDS],
    /// Per shard: the jobs its check found paused or deleted since their runs were claimed.
    /// Set before `due`.
    inactive: [OnceLock<Arc<HashSet<JobId>>>; SHARDS],
    /// How many runs joined: the next one's shard.
    joined: AtomicUsize,
    pending: AtomicUsize,
    all_started: Notify,
    /// The jobs of the runs that joined before the instant, with their shards, to check when
    /// it comes; `None` once taken for that check.
    members: Mutex<Option<Vec<(usize, JobId)>>>,
}

/// How many shards a group's runs wait in.
const SHARDS: usize = 64;
/// The fewest runs whose jobs the group checks in one store call (all of them when fewer).
const CHECK_BATCH: usize = 256;

impl Group {
    fn new() -> Group {
        Group {
            due: std::array::from_fn(|_| AtomicBool::new(false)),
            came: std::array::from_fn(|_| Notify::new()),
            inactive: std::array::from_fn(|_| OnceLock::new()),
            joined: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            all_started: Notify::new(),
            members: Mutex::new(Some(Vec::new())),
        }
    }
}

/// A lock that a panic elsewhere does not poison (nothing here is left half-written).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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

impl Group {
    /// At the instant: check the members' jobs and wake their runs, a few shards at a time.
    async fn come(&self, store: &dyn Store) {
        // Should the check not finish (a store that panics), every shard still comes, without
        // a verdict: its runs ask the store themselves instead of waiting forever.
        let _unwound = ComeAnyway(self);
        let members = lock(&self.members).take().unwrap_or_default();
        let per_shard = members.len().div_ceil(SHARDS).max(1);
        let shards_per_check = CHECK_BATCH.div_ceil(per_shard).clamp(1, SHARDS);
        let mut by_shard = vec![Vec::new(); SHARDS];
        for (shard, job) in members {
            by_shard[shard].push(job);
        }
        for first in (0..SHARDS).step_by(shards_per_check) {
            let shards = first..(first + shards_per_check).min(SHARDS);
            let ids: Vec<JobId> = by_shard[shards.clone()].concat();
            let inactive = if ids.is_empty() {
                HashSet::new()
            } else {
                match store.inactive_jobs(&ids).await {
                    Ok(inactive) => inactive.into_iter().collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, runs = ids.len(), "could not check the jobs of runs claimed ahead; running them");
                        HashSet::new()
                    }
                }
            };
            let inactive = Arc::new(inactive);
            for shard in shards {
                let _ = self.inactive[shard].set(inactive.clone());
                self.due[shard].store(true, Ordering::Release);
                self.came[shard].notify_waiters();
            }
            // Let the woken runs start before the next check.
            tokio::task::yield_now().await;
        }
    }
}

/// Wakes every shard of a group that has not come yet, when dropped.
struct ComeAnyway<'a>(&'a Group);

impl Drop for ComeAnyway<'_> {
    fn drop(&mut self) {
        let group = self.0;
        for shard in 0..SHARDS {
            if !group.due[shard].swap(true, Ordering::AcqRel) {
                group.came[shard].notify_waiters();
            }
        }
    }
}

impl StartGroups {
    /// Join the group of the runs due at `at`, as a run of `job` claimed ahead that has not
    /// started. A new group gets one timer on `clock` that, at `at`, checks its runs' jobs on
    /// `store` and wakes them (one timer and one read for the herd instead of one per run).
    /// Groups whose runs all started are dropped here.
    pub(crate) fn join(
        &self,
        at: DateTime<Utc>,
        job: JobId,
        clock: &Arc<dyn Clock>,
        store: &Arc<dyn Store>,
    ) -> PendingStart {
        let mut groups = lock(&self.groups);
        groups.retain(|_, g| g.pending.load(Ordering::Acquire) > 0);
        let group = groups
            .entry(at)
            .or_insert_with(|| {
                let group = Arc::new(Group::new());
                let (timer, clock, store) = (group.clone(), clock.clone(), store.clone());
                tokio::spawn(async move {
                    clock.sleep_until(at).await;
                    timer.come(store.as_ref()).await;
                });
                group
            })
            .clone();
        group.pending.fetch_add(1, Ordering::AcqRel);
        let shard = group.joined.fetch_add(1, Ordering::Relaxed) % SHARDS;
        let checked = match lock(&group.members).as_mut() {
            Some(members) => {
                members.push((shard, job));
                true
            }
            None => false,
        };
        PendingStart {
            group,
            job,
            shard,
            checked,
            started: false,
        }
    }
}

/// A run's place in its group: it counts as not started until [`PendingStart::started`] or
/// until it is dropped (the run was cancelled or aborted before it started).
#[derive(Debug)]
pub(crate) struct PendingStart {
    group: Arc<Group>,
    job: JobId,
    /// The shard of the group's runs this one waits in.
    shard: usize,
    /// Whether the job is part of the group's check at the instant.
    checked: bool,
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

    /// Returns once the group's instant came (on the clock given to [`StartGroups::join`]),
    /// with whether the run's job is still active by the group's check: `None` when the run
    /// joined after that check began, or the check ended without a verdict for its shard, and
    /// it must ask the store itself.
    pub(crate) async fn due(&self) -> Option<bool> {
        let group = &self.group;
        let shard = self.shard;
        wait_for(
            || group.due[shard].load(Ordering::Acquire),
            &group.came[shard],
        )
        .await;
        if !self.checked {
            return None;
        }
        // No verdict: the check ended without one (see `Group::come`).
        let inactive = group.inactive[shard].get()?;
        Some(inactive.is_empty() || !inactive.contains(&self.job))
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
    use crate::model::{Job, JobSpec};
    use crate::store::MemoryStore;
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, s).unwrap()
    }

    fn clock() -> (ManualClock, Arc<dyn Clock>) {
        let manual = ManualClock::new(at(0) - chrono::TimeDelta::minutes(1));
        (manual.clone(), Arc::new(manual))
    }

    /// A store with one active job, whose id is returned.
    async fn store() -> (Arc<dyn Store>, JobId) {
        let store = MemoryStore::new();
        let job = Job::create(JobSpec::new("j", "p", "0 9 * * *"), at(0)).unwrap();
        store.create_job(&job).await.unwrap();
        (Arc::new(store), job.id)
    }

    /// Three runs of `job` in the group of `at(0)`, each waiting in a task for its instant.
    fn three_waiting(
        groups: &StartGroups,
        job: JobId,
        clock: &Arc<dyn Clock>,
        store: &Arc<dyn Store>,
    ) -> Vec<tokio::task::JoinHandle<Option<bool>>> {
        (0..3)
            .map(|_| {
                let pending = groups.join(at(0), job, clock, store);
                tokio::spawn(async move { pending.due().await })
            })
            .collect()
    }

    async fn let_others_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_runs_of_a_group_are_woken_together_when_its_instant_comes() {
        let (manual, clock) = clock();
        let (store, job) = store().await;
        let groups = StartGroups::default();
        let waiting = three_waiting(&groups, job, &clock, &store);
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
            assert_eq!(w.await.unwrap(), Some(true), "the job is active");
        }
    }

    #[tokio::test]
    async fn the_group_checks_its_jobs_at_the_instant_and_late_joiners_check_alone() {
        let (manual, clock) = clock();
        let (store, active) = store().await;
        let gone = JobId::new();
        let groups = StartGroups::default();
        let a = groups.join(at(0), active, &clock, &store);
        let b = groups.join(at(0), gone, &clock, &store);
        manual.advance_to(at(0)).await;
        assert_eq!(a.due().await, Some(true));
        assert_eq!(b.due().await, Some(false), "a missing job is not active");
        // Joined after the group's check: told to ask the store itself.
        let late = groups.join(at(0), active, &clock, &store);
        assert_eq!(late.due().await, None);
    }

    /// A store whose `inactive_jobs` panics (a broken backend).
    struct PanickingCheck {
        inner: Arc<dyn Store>,
    }

    crate::store::forward::forward_store!(PanickingCheck, |_this, op, _access, call| {
        assert_ne!(op, "inactive_jobs", "the check panics");
        call.await
    });

    #[tokio::test]
    async fn a_check_that_panics_still_wakes_every_run_without_a_verdict() {
        let (manual, clock) = clock();
        let (inner, job) = store().await;
        let store: Arc<dyn Store> = Arc::new(PanickingCheck { inner });
        let groups = StartGroups::default();
        let waiting = three_waiting(&groups, job, &clock, &store);
        manual.advance_to(at(0)).await;
        let_others_run().await;
        assert!(
            waiting.iter().all(|w| w.is_finished()),
            "every run was woken"
        );
        for w in waiting {
            assert_eq!(
                w.await.unwrap(),
                None,
                "woken, and told to ask the store itself"
            );
        }
    }

    #[tokio::test]
    async fn finishes_wait_for_every_start_of_their_group_only() {
        let (_manual, clock) = clock();
        let (store, job) = store().await;
        let groups = StartGroups::default();
        let mut a = groups.join(at(0), job, &clock, &store);
        let mut b = groups.join(at(0), job, &clock, &store);
        let mut later = groups.join(at(1), job, &clock, &store);
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
        let (store, job) = store().await;
        let groups = StartGroups::default();
        let mut a = groups.join(at(0), job, &clock, &store);
        let b = groups.join(at(0), job, &clock, &store);
        drop(b);
        a.all_started().await;
        drop(a);
        let _c = groups.join(at(5), job, &clock, &store);
        assert_eq!(
            groups.groups.lock().unwrap().len(),
            1,
            "groups whose runs all started are dropped"
        );
    }
}
