//! ChillScheduler core: the domain model, the schedule engine, the store, clock and AI
//! contracts, and the engine that fires every scheduled slot exactly once across any number of
//! instances sharing a store.
//!
//! ```
//! use chill_core::Schedule;
//! use chrono::{TimeZone, Utc};
//!
//! // Every weekday at 09:00 Berlin time.
//! let schedule = Schedule::parse_in("0 9 * * MON-FRI", "Europe/Berlin")?;
//! let next = schedule.next_after(Utc.with_ymd_and_hms(2026, 7, 3, 12, 0, 0).unwrap()).unwrap();
//! assert_eq!(next.to_rfc3339(), "2026-07-06T07:00:00+00:00"); // Monday, 09:00 CEST
//! # Ok::<(), chill_core::ScheduleError>(())
//! ```
//!
//! The engine, wired with the in-memory store, the system clock and an AI client:
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use chill_core::{AiClient, AiError, AiRequest, AiResponse, Chill, ChillOptions, JobSpec, MemoryStore, SystemClock};
//!
//! struct Echo;
//! #[async_trait]
//! impl AiClient for Echo {
//!     async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
//!         Ok(AiResponse { result: request.payload.prompt.clone(), ..Default::default() })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let chill = Chill::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), Arc::new(Echo), ChillOptions::default());
//! let job = chill
//!     .create_job(JobSpec::new("digest", "Summarise yesterday's Jira tickets", "0 9 * * MON-FRI"))
//!     .await?;
//! let engine = chill.start();
//! // ... the host runs; at shutdown:
//! engine.shutdown().await;
//! # Ok::<(), chill_core::Error>(())
//! # }).unwrap();
//! ```

pub mod ai;
pub mod clock;
mod engine;
mod error;
pub mod events;
pub mod model;
mod rng;
pub mod schedule;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use ai::{AiClient, AiError, AiRequest, AiResponse, TokenUsage};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Chill, ChillHandle, ChillOptions};
pub use error::Error;
pub use events::{Event, EventError, EventStream};
pub use model::{
    Budget, CatchUpPolicy, ErrorType, Execution, ExecutionId, ExecutionResponse, ExecutionStatus,
    Job, JobId, JobPatch, JobSpec, OverlapPolicy, RequestOptions, RequestPayload, RetryPolicy,
    Spend, Trigger, ValidationError,
};
pub use schedule::{
    Blackout, CronField, DstPolicy, RepeatedTime, Schedule, ScheduleError, SkippedTime, Slot,
    Timing,
};
pub use store::{MemoryStore, Store, StoreError};
