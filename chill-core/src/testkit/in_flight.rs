//! A store wrapper that counts the calls in flight, so that the simulation can wait for a real
//! database's answers before it moves the clock.

use crate::store::forward::forward_store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::store::Store;

/// Wraps a store and counts its unanswered calls.
pub(crate) struct InFlight {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
}

/// Counts one call while it lives.
struct Call<'a>(&'a AtomicUsize);

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InFlight {
    pub(crate) fn new(inner: Arc<dyn Store>) -> InFlight {
        InFlight {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    fn call(&self) -> Call<'_> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Call(&self.calls)
    }

    /// Wait until no call is in flight and the tasks that got their answers ran on to their
    /// next wait. Returns at once when nothing is in flight, which is always the case for a
    /// store that answers within one poll (the in-memory store): then nothing changes.
    pub(crate) async fn quiesce(&self) {
        while self.calls.load(Ordering::SeqCst) > 0 {
            while self.calls.load(Ordering::SeqCst) > 0 {
                tokio::task::yield_now().await;
                // The answer comes from another thread (a database driver's): let it work.
                std::thread::sleep(Duration::from_micros(50));
            }
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
        }
    }
}

forward_store!(InFlight, |this, _op, _access, call| {
    let _call = this.call();
    call.await
});
