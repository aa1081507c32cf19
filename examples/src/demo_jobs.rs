//! The two demo jobs created in an empty store when the demo AI endpoint is in use, so that a
//! newcomer sees executions stream in within a minute.

use chill_core::store::{JobFilter, PageRequest};
use chill_core::{Chill, Job, JobSpec, RetryPolicy};

use crate::AppError;

/// The demo jobs: a quick one every 20 seconds, and a flaky one every minute whose first
/// attempts fail, so that retries show up as executions with trigger `retry`.
pub fn specs() -> Vec<JobSpec> {
    vec![
        JobSpec {
            tags: vec!["demo".into()],
            ..JobSpec::new(
                "Demo: heartbeat digest",
                "Summarise what happened in the last 20 seconds",
                "*/20 * * * * *",
            )
        },
        JobSpec {
            tags: vec!["demo".into()],
            retry_policy: RetryPolicy {
                max_retries: 3,
                retry_delay: 5,
                ..RetryPolicy::default()
            },
            ..JobSpec::new(
                "Demo: flaky report (retries)",
                "flaky:2 Write the minute's report; the demo endpoint fails the first two calls",
                "0 * * * * *",
            )
        },
    ]
}

/// Create the demo jobs when the store has no job at all; returns the jobs created.
pub async fn create_if_empty(chill: &Chill) -> Result<Vec<Job>, AppError> {
    let any = JobFilter {
        include_deleted: true,
        ..JobFilter::default()
    };
    if !chill
        .list_jobs(&any, &PageRequest::first(1))
        .await?
        .items
        .is_empty()
    {
        return Ok(Vec::new());
    }
    let mut created = Vec::new();
    for spec in specs() {
        let job = chill.create_job(spec).await?;
        tracing::info!(job_id = %job.id, name = %job.name, schedule = %job.schedule, "demo job created");
        created.push(job);
    }
    Ok(created)
}
