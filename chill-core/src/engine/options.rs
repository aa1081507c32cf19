//! Engine options.

use std::time::Duration;

use super::breaker::BreakerOptions;
use crate::model::Budget;
use crate::ops::{AlertRules, PriceTable};

/// At most `max` manual triggers of one job per `per` (counted on each instance).
///
/// ```
/// use std::time::Duration;
/// use chill_core::TriggerLimit;
/// let limit = TriggerLimit { max: 5, per: Duration::from_secs(60) };
/// # let _ = limit;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerLimit {
    /// Triggers allowed...
    pub max: u32,
    /// ...per this long.
    pub per: Duration,
}

/// How an engine instance behaves. Start from `ChillOptions::default()` and change fields with
/// the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use chill_core::ChillOptions;
/// let options = ChillOptions::default()
///     .with_instance_id("worker-1")
///     .with_max_concurrent(20)
///     .with_lease_duration(Duration::from_secs(60));
/// assert_eq!(options.max_concurrent, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChillOptions {
    /// This instance's id: the owner named in its leases. Unique per running instance
    /// (default: `chill-` and a random UUID). A fixed id must not be reused while a process
    /// that had it may still run executions (a rolling restart's old process in its grace
    /// period): leases cannot tell the two apart.
    pub instance_id: String,
    /// At most this many executions run at once on this instance (default 100).
    pub max_concurrent: usize,
    /// Due jobs (and due retry attempts) read per store query (default 100).
    pub claim_batch: usize,
    /// At most this many slots of one job in one claim (catch-up after downtime proceeds in
    /// claims of this size; default 25, within DynamoDB's transaction limit).
    pub max_slots_per_claim: usize,
    /// The longest the scheduler sleeps without asking the store what is due: how soon it
    /// sees jobs created or changed by other instances (default 1 s).
    pub poll_interval: Duration,
    /// How long before a slot's due time the scheduler may claim it (default 0: claim when
    /// due). With claim-ahead, the store work of a claim is done before the slot, and the
    /// execution waits on the clock until the slot's due time before it calls the AI, so that
    /// a herd of jobs due at the same instant starts on time. Only a slot that would run
    /// (the job idle or its overlap policy `allow`, no blackout) is claimed ahead; others are
    /// claimed when due. A slot claimed ahead is `running` from its claim: it holds a
    /// concurrency permit while it waits, its lease runs from the due time, a manual trigger
    /// under `skip` is refused meanwhile, and a pause or delete before the due time cancels it
    /// (recorded `cancelled`, not counted as a run). The runs claimed ahead for one instant
    /// (a herd: every job at 09:00) all call the AI before any of them writes its end, so a
    /// run that answers at once never delays the start of another.
    pub claim_ahead: Duration,
    /// How long a lease lasts without renewal (default 30 s).
    pub lease_duration: Duration,
    /// How often a running execution renews its lease (default 10 s).
    pub heartbeat_interval: Duration,
    /// How often expired leases are looked for (default 15 s). Nothing stays `running` longer
    /// than its lease plus this after its owner died. An execution leased to this instance
    /// that it lost track of (a store write took effect but its reply was lost) is recovered
    /// by the instance itself at the first round after the failure, without waiting for the
    /// lease.
    pub recovery_interval: Duration,
    /// How long [`crate::ChillHandle::shutdown`] waits for running executions (default 30 s).
    pub shutdown_grace: Duration,
    /// Events kept for slow subscribers before they lag (default 4096).
    pub event_capacity: usize,
    /// First wait after a transient store error (default 100 ms), doubling per failure...
    pub store_retry_initial: Duration,
    /// ...up to this (default 5 s).
    pub store_retry_max: Duration,
    /// How long one store write (a finish) is retried through transient errors before it is
    /// given up (default 2 min; the lease then expires and recovery takes over).
    pub store_retry_for: Duration,
    /// Seed of the jitter generator; `None` seeds from the time. Set it for reproducible
    /// simulations.
    pub seed: Option<u64>,
    /// Metadata keys whose values are masked wherever the engine logs metadata: a key is
    /// masked when its name, lower-cased without `_`, `-`, `.` and spaces, contains one of
    /// these (treated the same way), at any depth. Default:
    /// [`crate::telemetry::DEFAULT_REDACTED_METADATA_KEYS`] (`apiKey`, `token`, `password`,
    /// `secret`, `authorization`, ...). Prompts, responses and API keys are never logged
    /// whatever this says.
    pub redacted_metadata_keys: Vec<String>,
    /// The circuit breaker around the AI client (default: open after 5 failures in a row or
    /// half of the last 20 calls, 30 s cool-down).
    pub breaker: BreakerOptions,
    /// A limit on manual triggers per job (default none).
    pub manual_trigger_limit: Option<TriggerLimit>,
    /// Executions older than this are deleted by the maintenance (default 30 days; `None`
    /// keeps everything).
    pub retention: Option<Duration>,
    /// Executions deleted per retention batch (default 500)...
    pub retention_batch: usize,
    /// ...and at most this many batches per round (default 20).
    pub retention_batches_per_round: usize,
    /// How often retention runs (default one hour).
    pub retention_interval: Duration,
    /// How often the maintenance computes the alert window's statistics, raises alerts and
    /// reads the global spend (default 60 s).
    pub metrics_interval: Duration,
    /// When alerts are raised.
    pub alert_rules: AlertRules,
    /// Prices that turn tokens into cost (default empty: no cost computed).
    pub prices: PriceTable,
    /// A limit on what all jobs together spend per UTC day and month (default none). The
    /// engine knows the global spend as of its last maintenance round plus its own spending
    /// since, so several instances may overshoot by what runs between two rounds.
    pub global_budget: Option<Budget>,
}

impl Default for ChillOptions {
    fn default() -> ChillOptions {
        ChillOptions {
            instance_id: format!("chill-{}", uuid::Uuid::new_v4()),
            max_concurrent: 100,
            claim_batch: 100,
            max_slots_per_claim: 25,
            poll_interval: Duration::from_secs(1),
            claim_ahead: Duration::ZERO,
            lease_duration: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            recovery_interval: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(30),
            event_capacity: 4096,
            store_retry_initial: Duration::from_millis(100),
            store_retry_max: Duration::from_secs(5),
            store_retry_for: Duration::from_secs(120),
            seed: None,
            redacted_metadata_keys: crate::telemetry::DEFAULT_REDACTED_METADATA_KEYS
                .iter()
                .map(|k| (*k).to_string())
                .collect(),
            breaker: BreakerOptions::default(),
            manual_trigger_limit: None,
            retention: Some(Duration::from_secs(30 * 24 * 3_600)),
            retention_batch: 500,
            retention_batches_per_round: 20,
            retention_interval: Duration::from_secs(3_600),
            metrics_interval: Duration::from_secs(60),
            alert_rules: AlertRules::default(),
            prices: PriceTable::default(),
            global_budget: None,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)+) => {
        impl ChillOptions {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> ChillOptions {
                    self.$field = value;
                    self
                }
            )+
        }
    };
}

setters! {
    /// Set [`ChillOptions::max_concurrent`].
    with_max_concurrent: max_concurrent: usize;
    /// Set [`ChillOptions::claim_batch`].
    with_claim_batch: claim_batch: usize;
    /// Set [`ChillOptions::max_slots_per_claim`].
    with_max_slots_per_claim: max_slots_per_claim: usize;
    /// Set [`ChillOptions::poll_interval`].
    with_poll_interval: poll_interval: Duration;
    /// Set [`ChillOptions::claim_ahead`].
    with_claim_ahead: claim_ahead: Duration;
    /// Set [`ChillOptions::lease_duration`].
    with_lease_duration: lease_duration: Duration;
    /// Set [`ChillOptions::heartbeat_interval`].
    with_heartbeat_interval: heartbeat_interval: Duration;
    /// Set [`ChillOptions::recovery_interval`].
    with_recovery_interval: recovery_interval: Duration;
    /// Set [`ChillOptions::shutdown_grace`].
    with_shutdown_grace: shutdown_grace: Duration;
    /// Set [`ChillOptions::event_capacity`].
    with_event_capacity: event_capacity: usize;
    /// Set [`ChillOptions::store_retry_initial`].
    with_store_retry_initial: store_retry_initial: Duration;
    /// Set [`ChillOptions::store_retry_max`].
    with_store_retry_max: store_retry_max: Duration;
    /// Set [`ChillOptions::store_retry_for`].
    with_store_retry_for: store_retry_for: Duration;
    /// Set [`ChillOptions::seed`].
    with_seed: seed: Option<u64>;
    /// Set [`ChillOptions::redacted_metadata_keys`] (replacing the defaults).
    with_redacted_metadata_keys: redacted_metadata_keys: Vec<String>;
    /// Set [`ChillOptions::breaker`].
    with_breaker: breaker: BreakerOptions;
    /// Set [`ChillOptions::manual_trigger_limit`].
    with_manual_trigger_limit: manual_trigger_limit: Option<TriggerLimit>;
    /// Set [`ChillOptions::retention`].
    with_retention: retention: Option<Duration>;
    /// Set [`ChillOptions::retention_batch`].
    with_retention_batch: retention_batch: usize;
    /// Set [`ChillOptions::retention_batches_per_round`].
    with_retention_batches_per_round: retention_batches_per_round: usize;
    /// Set [`ChillOptions::retention_interval`].
    with_retention_interval: retention_interval: Duration;
    /// Set [`ChillOptions::metrics_interval`].
    with_metrics_interval: metrics_interval: Duration;
    /// Set [`ChillOptions::alert_rules`].
    with_alert_rules: alert_rules: AlertRules;
    /// Set [`ChillOptions::prices`].
    with_prices: prices: PriceTable;
    /// Set [`ChillOptions::global_budget`].
    with_global_budget: global_budget: Option<Budget>;
}

impl ChillOptions {
    /// Set [`ChillOptions::instance_id`].
    pub fn with_instance_id(mut self, id: impl Into<String>) -> ChillOptions {
        self.instance_id = id.into();
        self
    }
}
