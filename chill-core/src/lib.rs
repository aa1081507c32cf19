//! ChillScheduler core: the domain model, the schedule engine, and (in later modules) the
//! store and AI contracts and the engine that fires every slot exactly once.
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

pub mod model;
pub mod schedule;

pub use model::{
    CatchUpPolicy, ErrorType, Execution, ExecutionId, ExecutionResponse, ExecutionStatus, Job,
    JobId, JobPatch, JobSpec, OverlapPolicy, RequestOptions, RequestPayload, RetryPolicy, Trigger,
    ValidationError,
};

pub use schedule::{
    Blackout, CronField, DstPolicy, RepeatedTime, Schedule, ScheduleError, SkippedTime, Slot,
    Timing,
};
