//! Store writes that may lease an execution to this instance (a slot claim, a retry attempt's
//! claim, a manual start, a finish that promotes a buffered run), tracked so that an
//! execution leased to this instance but run by none of its tasks can be told apart from one
//! about to start.
//!
//! Such an orphan appears when a write took effect but its reply was lost (the connection
//! dropped during the commit): the engine saw an error, so it never ran what it leased. The
//! write's failure marks the writes *unsure*; recovery then looks for the orphans (see
//! `recovery::recover_orphans`) instead of waiting for their leases to expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::JobId;

/// The lease-granting writes under way per job, and whether one failed since the last look.
#[derive(Debug, Default)]
pub(crate) struct LeaseWrites {
    under_way: Mutex<HashMap<JobId, usize>>,
    unsure: AtomicBool,
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

    /// A lease-granting write failed: it may have taken effect anyway.
    pub(crate) fn mark_unsure(&self) {
        self.unsure.store(true, Ordering::SeqCst);
    }

    /// Whether a lease-granting write failed since the last call (which clears the mark).
    pub(crate) fn take_unsure(&self) -> bool {
        self.unsure.swap(false, Ordering::SeqCst)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, usize>> {
        self.under_way.lock().unwrap_or_else(|e| e.into_inner())
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
    fn the_unsure_mark_is_taken_once() {
        let writes = LeaseWrites::default();
        assert!(!writes.take_unsure());
        writes.mark_unsure();
        writes.mark_unsure();
        assert!(writes.take_unsure());
        assert!(!writes.take_unsure(), "taking the mark clears it");
    }
}
