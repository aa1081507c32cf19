//! Subscriptions: the requirements' `onJobStatusChange` and `onJobExecutionComplete`, and
//! `onExecutionEvent` with every execution event, all fed by the engine's event stream.

use async_graphql::{Context, ID, Result, Subscription};
use chill_core::{Chill, Event, EventError, EventStream, JobId};
use futures_util::Stream;
use futures_util::stream::{self, StreamExt};

use super::errors::chill;
use super::job_id;
use super::types::{ExecutionEventObject, ExecutionObject, JobObject};

/// The root of subscriptions.
pub struct SubscriptionRoot;

/// The engine's events as a stream; a subscriber that falls behind skips what it missed.
fn events(events: EventStream) -> impl Stream<Item = Event> {
    stream::unfold(events, |mut events| async move {
        loop {
            match events.recv().await {
                Ok(event) => return Some((event, events)),
                Err(EventError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a GraphQL subscriber fell behind");
                }
                Err(_) => return None,
            }
        }
    })
}

fn wanted(filter: Option<JobId>, event: &Event) -> bool {
    filter.is_none_or(|id| event.job_id() == Some(id))
}

fn optional_job_id(field: &str, id: Option<ID>) -> Result<Option<JobId>> {
    id.map(|id| job_id(field, &id)).transpose()
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// A job (or any job, without `id`) as it is after each change: created, updated, paused,
    /// resumed, deleted, and each execution start and end (its `lastRun*` and statistics).
    async fn on_job_status_change(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> Result<impl Stream<Item = Option<JobObject>>> {
        let filter = optional_job_id("id", id)?;
        let chill: Chill = chill(ctx)?.clone();
        let stream = events(chill.subscribe())
            .filter(move |e| std::future::ready(wanted(filter, e)))
            .filter_map(move |event| {
                let chill = chill.clone();
                async move {
                    match event {
                        Event::JobCreated(job)
                        | Event::JobUpdated(job)
                        | Event::JobPaused(job)
                        | Event::JobResumed(job) => Some(Some(JobObject(job))),
                        Event::JobDeleted { hard: true, .. } => None,
                        other => match other.job_id() {
                            // Alerts about no job, breaker changes: not a job's status.
                            None => None,
                            Some(id) => match chill.get_job(&id).await {
                                Ok(job) => job.map(|j| Some(JobObject(j))),
                                Err(e) => {
                                    tracing::warn!(error = %e, "cannot read a job for a subscriber");
                                    None
                                }
                            },
                        },
                    }
                }
            });
        Ok(stream)
    }

    /// Each execution of a job (or of any job, without `jobId`) as it ends: success, failed,
    /// timeout, dead or cancelled. A failed attempt with retries left arrives too, followed by
    /// its retry (trigger `retry`) when that ends.
    async fn on_job_execution_complete(
        &self,
        ctx: &Context<'_>,
        job_id: Option<ID>,
    ) -> Result<impl Stream<Item = Option<ExecutionObject>>> {
        let filter = optional_job_id("jobId", job_id)?;
        let stream = events(chill(ctx)?.subscribe()).filter_map(move |event| {
            std::future::ready(match event {
                Event::ExecutionFinished(e) if filter.is_none_or(|id| e.job_id == id) => {
                    Some(Some(ExecutionObject(e)))
                }
                _ => None,
            })
        });
        Ok(stream)
    }

    /// Every execution event of a job (or of any job): `started`, `finished`, `skipped`,
    /// `retry_scheduled`.
    async fn on_execution_event(
        &self,
        ctx: &Context<'_>,
        job_id: Option<ID>,
    ) -> Result<impl Stream<Item = ExecutionEventObject>> {
        let filter = optional_job_id("jobId", job_id)?;
        let stream = events(chill(ctx)?.subscribe()).filter_map(move |event| {
            let item = match event {
                Event::ExecutionStarted(e) => Some(("started", e)),
                Event::ExecutionFinished(e) => Some(("finished", e)),
                Event::ExecutionSkipped(e) => Some(("skipped", e)),
                Event::RetryScheduled(e) => Some(("retry_scheduled", e)),
                _ => None,
            };
            std::future::ready(
                item.filter(|(_, e)| filter.is_none_or(|id| e.job_id == id))
                    .map(|(kind, e)| ExecutionEventObject {
                        kind: kind.to_string(),
                        execution: ExecutionObject(e),
                    }),
            )
        });
        Ok(stream)
    }
}
