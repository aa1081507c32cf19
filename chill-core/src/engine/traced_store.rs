//! The store as the engine uses it: every call in a DEBUG `store` span naming the operation,
//! its failure recorded on the span and counted in `chill_store_errors_total`.
//!
//! Logging the failure is left to the caller, which knows whether it retries (WARN) or gives
//! up (ERROR). A write that may lease an execution to this instance and that fails in a way
//! that may have taken effect anyway, or whose caller stops waiting for it, marks the
//! [`LeaseWrites`] unsure.

use crate::store::forward::{Access, forward_store};
use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

use super::lease_writes::LeaseWrites;
use crate::clock::Clock;
use crate::store::{Store, StoreError};
use crate::telemetry;

/// A [`Store`] that traces and counts the calls to another.
pub(crate) struct TracedStore {
    inner: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lease_writes: Arc<LeaseWrites>,
}

impl TracedStore {
    pub(crate) fn new(
        inner: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        lease_writes: Arc<LeaseWrites>,
    ) -> TracedStore {
        TracedStore {
            inner,
            clock,
            lease_writes,
        }
    }
}

/// Run one store call in its span; count and record its failure.
async fn traced<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let span = tracing::debug_span!("store", operation, error = tracing::field::Empty);
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        telemetry::store_error(operation, e);
        span.record("error", tracing::field::display(e));
    }
    result
}

/// A lease-granting write not yet known to have failed cleanly or succeeded: marks the lease
/// writes unsure (as of its start) when dropped so.
struct Unanswered<'a> {
    store: Option<&'a TracedStore>,
    started: chrono::DateTime<chrono::Utc>,
}

impl Unanswered<'_> {
    fn answered(&mut self) {
        self.store = None;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store {
            store.lease_writes.mark_unsure(self.started);
        }
    }
}

forward_store!(TracedStore, |this, op, access, call| {
    if access != Access::GrantsLease {
        return traced(op, call).await;
    }
    let mut unanswered = Unanswered {
        store: Some(this),
        started: this.clock.now(),
    };
    let result = traced(op, call).await;
    if result
        .as_ref()
        .map_or_else(|e| !e.may_have_taken_effect(), |_| true)
    {
        unanswered.answered();
    }
    result
});

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::executor::stats_of;
    use crate::model::{Execution, Job, JobSpec};
    use crate::store::{Finish, Lease};

    /// A store whose every call fails with `error`.
    struct Failing {
        inner: Arc<dyn Store>,
        error: StoreError,
    }

    forward_store!(Failing, |this, _op, _access, call| {
        drop(call);
        Err(this.error.clone())
    });

    fn traced_over(error: StoreError) -> (TracedStore, Arc<LeaseWrites>, ManualClock) {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap());
        let writes = Arc::new(LeaseWrites::default());
        let failing = Failing {
            inner: Arc::new(crate::MemoryStore::new()),
            error,
        };
        let store = TracedStore::new(Arc::new(failing), Arc::new(clock.clone()), writes.clone());
        (store, writes, clock)
    }

    fn execution(now: chrono::DateTime<Utc>) -> Execution {
        let job = Job::create(JobSpec::new("j", "p", "@daily"), now).unwrap();
        Execution::manual(&job, now)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lease_granting_write_that_may_have_taken_effect_marks_the_writes_unsure() {
        let (store, writes, clock) = traced_over(StoreError::Unavailable("cut".into()));
        let now = clock.now();
        let lease = Lease {
            owner: "a".into(),
            expires_at: now,
        };
        let running = execution(now);
        assert!(store.start_manual(&running, true).await.is_err());
        assert_eq!(writes.take_unsure(), Some(now), "start_manual");
        assert!(store.claim_attempt(&running.id, &lease, now).await.is_err());
        assert_eq!(writes.take_unsure(), Some(now), "claim_attempt");
        let finish = Finish {
            stats: stats_of(&running),
            owner: "a".into(),
            expired_by: None,
            execution: running.clone(),
            next_attempt: None,
            promote: Some(lease.clone()),
        };
        assert!(store.finish(&finish).await.is_err());
        assert_eq!(writes.take_unsure(), Some(now), "finish");
        // Reads and other writes do not.
        assert!(store.get_job(&running.job_id).await.is_err());
        assert!(store.renew_lease(&running.id, "a", now).await.is_err());
        assert_eq!(writes.take_unsure(), None);
    }

    /// A store whose calls never answer.
    struct Hanging {
        inner: Arc<dyn Store>,
    }

    forward_store!(Hanging, |_this, _op, _access, call| {
        drop(call);
        std::future::pending().await
    });

    #[tokio::test(flavor = "current_thread")]
    async fn a_lease_granting_write_abandoned_by_its_caller_marks_the_writes_unsure() {
        let (_, writes, clock) = traced_over(StoreError::Unavailable("unused".into()));
        let hanging = Hanging {
            inner: Arc::new(crate::MemoryStore::new()),
        };
        let store = TracedStore::new(Arc::new(hanging), Arc::new(clock.clone()), writes.clone());
        let running = execution(clock.now());
        tokio::select! {
            biased;
            _ = store.start_manual(&running, true) => panic!("the hanging store answered"),
            () = std::future::ready(()) => {}
        }
        assert_eq!(writes.take_unsure(), Some(clock.now()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_refused_outright_leaves_the_writes_sure() {
        let (store, writes, clock) = traced_over(StoreError::AlreadyExists {
            what: "execution",
            id: "x".into(),
        });
        assert!(
            store
                .start_manual(&execution(clock.now()), true)
                .await
                .is_err()
        );
        assert_eq!(writes.take_unsure(), None);
    }
}
