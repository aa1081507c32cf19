//! A store wrapper that injects faults: seeded random errors and latency, and outages.

use crate::store::forward::{Access, forward_store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::rng::Rng;
use crate::store::{Store, StoreError};

/// How often and how a [`FaultyStore`] fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability (0..=1) that a call fails with a transient error *before* reaching the
    /// store.
    pub error_rate: f64,
    /// Probability that a write reaches the store and *then* reports a transient error (the
    /// caller cannot tell whether it happened: the hardest case for exactly-once).
    pub lost_reply_rate: f64,
    /// Each call waits a random time up to this on the clock first.
    pub max_latency: Duration,
}

impl Faults {
    /// No faults.
    pub const NONE: Faults = Faults {
        error_rate: 0.0,
        lost_reply_rate: 0.0,
        max_latency: Duration::ZERO,
    };
}

/// Wraps a store; fails calls at a seeded rate, adds latency on the clock, can slow chosen
/// operations down by a fixed time ([`FaultyStore::set_delay`]), and can be taken down
/// entirely ([`FaultyStore::set_down`]) to simulate an outage.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    faults: Mutex<Faults>,
    /// Per operation (a [`Store`] method name): its delay and how often it was called.
    operations: Mutex<HashMap<String, Operation>>,
    rng: Mutex<Rng>,
    down: AtomicBool,
    injected: AtomicU64,
}

/// What a [`FaultyStore`] keeps about one operation.
#[derive(Debug, Default, Clone, Copy)]
struct Operation {
    /// Waited on the clock before each call (zero: none).
    delay: Duration,
    /// Calls so far, failed ones included.
    calls: u64,
    /// How many of the next successful calls lose their reply.
    lose_replies: u64,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("faults", &self.faults())
            .field("down", &self.down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// Wrap `inner`; faults are drawn from `seed`.
    pub fn new(
        inner: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        faults: Faults,
        seed: u64,
    ) -> FaultyStore {
        FaultyStore {
            inner,
            clock,
            faults: Mutex::new(faults),
            operations: Mutex::new(HashMap::new()),
            rng: Mutex::new(Rng::new(seed)),
            down: AtomicBool::new(false),
            injected: AtomicU64::new(0),
        }
    }

    /// Change the fault rates.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    fn faults(&self) -> Faults {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make every call of one operation (a [`Store`] method name, such as `"claim_slots"`)
    /// wait `delay` on the clock before it reaches the store: a slow round trip, so that other
    /// tasks act in between, deterministically. `Duration::ZERO` removes the delay.
    pub fn set_delay(&self, operation: &str, delay: Duration) {
        self.operations()
            .entry(operation.to_string())
            .or_default()
            .delay = delay;
    }

    /// Make the next successful call of one operation (a write, such as `"claim_slots"`)
    /// take effect and then report a transient error, as when the connection drops during
    /// the commit. Each call of this adds one such lost reply.
    pub fn lose_next_reply(&self, operation: &str) {
        self.operations()
            .entry(operation.to_string())
            .or_default()
            .lose_replies += 1;
    }

    /// How many times an operation (a [`Store`] method name) was called so far, failed calls
    /// included.
    pub fn calls(&self, operation: &str) -> u64 {
        self.operations().get(operation).map_or(0, |o| o.calls)
    }

    fn operations(&self) -> std::sync::MutexGuard<'_, HashMap<String, Operation>> {
        self.operations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take the store down (every call fails with [`StoreError::Unavailable`]) or bring it
    /// back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// A uniform draw in [0, 1).
    fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).unit()
    }

    fn fault(&self, what: &str) -> StoreError {
        self.injected.fetch_add(1, Ordering::Relaxed);
        if self.draw() < 0.5 {
            StoreError::Unavailable(format!("injected fault in {what}"))
        } else {
            StoreError::Throttled(format!("injected fault in {what}"))
        }
    }

    /// Latency and failures before a call.
    async fn before(&self, what: &str) -> Result<(), StoreError> {
        let delay = {
            let mut operations = self.operations();
            // The name is copied once per operation, at its first call.
            match operations.get_mut(what) {
                Some(op) => {
                    op.calls += 1;
                    op.delay
                }
                None => {
                    let first = Operation {
                        calls: 1,
                        ..Operation::default()
                    };
                    operations.insert(what.to_string(), first);
                    Duration::ZERO
                }
            }
        };
        if !delay.is_zero() {
            self.clock.sleep(delay).await;
        }
        let faults = self.faults();
        if !faults.max_latency.is_zero() {
            let nanos = (faults.max_latency.as_nanos() as f64 * self.draw()) as u64;
            self.clock.sleep(Duration::from_nanos(nanos)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable(format!("store down ({what})")));
        }
        if self.draw() < faults.error_rate {
            return Err(self.fault(what));
        }
        Ok(())
    }

    /// A write's reply, possibly lost after it took effect.
    fn after<T>(&self, what: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok()
            && (self.take_lost_reply(what) || self.draw() < self.faults().lost_reply_rate)
        {
            return Err(self.fault(what));
        }
        result
    }

    /// Whether a lost reply was asked for `operation` ([`FaultyStore::lose_next_reply`]); takes it.
    fn take_lost_reply(&self, operation: &str) -> bool {
        let mut operations = self.operations();
        match operations.get_mut(operation) {
            Some(o) if o.lose_replies > 0 => {
                o.lose_replies -= 1;
                true
            }
            _ => false,
        }
    }
}

// Reads and writes are delayed and may fail before they reach the store; a write may also
// lose its reply after it took effect.
forward_store!(FaultyStore, |this, op, access, call| {
    this.before(op).await?;
    let result = call.await;
    match access {
        Access::Write | Access::GrantsLease => this.after(op, result),
        Access::Read => result,
    }
});
