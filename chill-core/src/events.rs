//! The engine's event stream: what happened to jobs and executions on this instance.

use tokio::sync::broadcast;

use chrono::{DateTime, Utc};

use crate::engine::BreakerState;
use crate::model::{Execution, Job, JobId};
use crate::ops::Alert;

/// Something that happened, as seen by this engine instance.
///
/// Events describe actions of this instance (its API calls and the executions it runs);
/// other instances sharing the store publish their own.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A job was created.
    JobCreated(Job),
    /// A job's configuration changed.
    JobUpdated(Job),
    /// A job was paused.
    JobPaused(Job),
    /// A job was resumed.
    JobResumed(Job),
    /// A job was deleted: `hard` means it and its history are gone.
    JobDeleted {
        /// The job.
        job_id: JobId,
        /// Whether the job was removed for good (with its executions).
        hard: bool,
    },
    /// An execution started running.
    ExecutionStarted(Execution),
    /// An execution ended (success, failed, timeout, dead, cancelled).
    ExecutionFinished(Execution),
    /// A slot was recorded without running: blacked out, missed, or refused by the overlap
    /// policy.
    ExecutionSkipped(Execution),
    /// A retry attempt was scheduled (status `pending`, with its due time).
    RetryScheduled(Execution),
    /// The maintenance raised an alert (also handed to the alert sink).
    Alert(Alert),
    /// The circuit breaker around the AI client changed state.
    BreakerChanged {
        /// The state before.
        from: BreakerState,
        /// The state now.
        to: BreakerState,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The job the event is about, if it is about one.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Event::JobCreated(j)
            | Event::JobUpdated(j)
            | Event::JobPaused(j)
            | Event::JobResumed(j) => Some(j.id),
            Event::JobDeleted { job_id, .. } => Some(*job_id),
            Event::ExecutionStarted(e)
            | Event::ExecutionFinished(e)
            | Event::ExecutionSkipped(e)
            | Event::RetryScheduled(e) => Some(e.job_id),
            Event::Alert(a) => a.job_id,
            Event::BreakerChanged { .. } => None,
        }
    }
}

/// A subscription to the event stream, from `Chill::subscribe`.
///
/// A subscriber that falls behind by more than the channel's capacity loses the oldest
/// events and is told how many with [`EventError::Lagged`]; the engine never waits for it.
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<Event>,
}

/// Why [`EventStream::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The subscriber was too slow: this many events were dropped for it. The next call
    /// returns the oldest event still kept.
    #[error("the subscriber fell behind and missed {0} events")]
    Lagged(u64),
    /// The engine is gone.
    #[error("the engine was dropped")]
    Closed,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<Event>) -> EventStream {
        EventStream { rx }
    }

    /// The next event.
    pub async fn recv(&mut self) -> Result<Event, EventError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => EventError::Lagged(n),
            broadcast::error::RecvError::Closed => EventError::Closed,
        })
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Result<Event, EventError>> {
        match self.rx.try_recv() {
            Ok(e) => Some(Ok(e)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(EventError::Lagged(n))),
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(EventError::Closed)),
        }
    }
}
