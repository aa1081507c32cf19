//! Store writes that may lease an execution to this instance (a slot claim, a retry attempt's
//! claim, a manual start, a finish that promotes a buffered run), tracked so that an
//! execution leased to this instance but run by none of its tasks can be told apart from one
//! about to start.
//!
//! Such an orphan appears when a write took effect but its reply was lost (the connection
//! dropped during the commit, or the caller gave up waiting): the engine saw an error or
//! nothing, so it never ran what it leased. Such a write marks the writes *unsure* with its
//! time; recovery then looks for the orphans (see `recovery`) instead of waiting for their
//! leases to expire.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::model::JobId;

/// The lease-granting writes under way per job, and the latest one that failed since the
/// last look.
#[derive(Debug, Default)]
pub(crate) struct LeaseWrites {
    under_way: Mutex<HashMap<JobId, usize>>,
    unsure_since: Mutex<Option<DateTime<Utc>>>,
}

impl LeaseWrites {
    /// A lease-granting write for `job` begins: until the returned guard drops, an execution
    /// of `job` leased to this instance may be on its way to a task and is not an orphan.
    /// Drop the guard only once what the write leased runs (is in the engine's running set).
    pub(crate) fn begin(&self, job: JobId) -> UnderWay<'_> {
        *self.counts().entry(job).or_insert(0) += 1;
        UnderWay { writes: self, job }
    }

    /// Whether a lease-granting write for `job` is under way.
    pub(crate) fn is_under_way(&self, job: &JobId) -> bool {
        self.counts().contains_key(job)
    }

    /// A lease-granting write that began no later than `at` failed or was abandoned: it may
    /// have taken effect anyway.
    pub(crate) fn mark_unsure(&self, at: DateTime<Utc>) {
        let mut since = self.since();
        *since = Some(since.map_or(at, |t| t.max(at)));
    }

    /// The time of the latest write marked unsure since the last call, which clears the mark.
    pub(crate) fn take_unsure(&self) -> Option<DateTime<Utc>> {
        self.since().take()
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<JobId, usize>> {
        self.under_way.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn since(&self) -> MutexGuard<'_, Option<DateTime<Utc>>> {
        self.unsure_since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A lease-granting write under way (see [`LeaseWrites::begin`]); ends when dropped.
#[derive(Debug)]
pub(crate) struct UnderWay<'a> {
    writes: &'a LeaseWrites,
    job: JobId,
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        let mut counts = self.writes.counts();
        if let Some(n) = counts.get_mut(&self.job) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn a_job_is_under_way_until_its_last_write_ends() {
        let writes = LeaseWrites::default();
        let (a, b) = (JobId::new(), JobId::new());
        let first = writes.begin(a);
        let second = writes.begin(a);
        assert!(writes.is_under_way(&a));
        assert!(!writes.is_under_way(&b));
        drop(first);
        assert!(
            writes.is_under_way(&a),
            "one write of the job is still under way"
        );
        drop(second);
        assert!(!writes.is_under_way(&a));
    }

    #[test]
    fn the_unsure_mark_keeps_the_latest_time_and_is_taken_once() {
        let writes = LeaseWrites::default();
        let t = Utc::now();
        assert_eq!(writes.take_unsure(), None);
        writes.mark_unsure(t + TimeDelta::seconds(5));
        writes.mark_unsure(t);
        assert_eq!(writes.take_unsure(), Some(t + TimeDelta::seconds(5)));
        assert_eq!(writes.take_unsure(), None, "taking the mark clears it");
    }
}
