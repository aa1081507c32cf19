//! Queries: the requirements' `getJob`, `listJobs`, `getExecution`, `listExecutions`, and
//! cursor pages and schedule previews beyond them.

use async_graphql::{Context, ID, Object, Result};
use chill_core::store::{Cursor, JobFilter, PageRequest};
use chrono::{DateTime, Utc};

use super::errors::{chill, invalid, to_gql};
use super::inputs::JobFilterInput;
use super::types::{ExecutionObject, ExecutionPageObject, JobObject, JobPageObject};
use super::{execution_id, job_id, limit_arg};

/// The root of queries.
pub struct QueryRoot;

fn filter_of(filter: Option<JobFilterInput>) -> Result<JobFilter> {
    filter
        .map(JobFilterInput::into_filter)
        .transpose()
        .map_err(invalid)
        .map(Option::unwrap_or_default)
}

fn page_of(limit: u32, after: Option<String>) -> PageRequest {
    match after {
        Some(cursor) => PageRequest::after(limit, Cursor::new(cursor)),
        None => PageRequest::first(limit),
    }
}

#[Object(name = "Query")]
impl QueryRoot {
    /// A job by id (`null` when there is none; soft-deleted jobs are returned with `deletedAt`).
    async fn get_job(&self, ctx: &Context<'_>, id: ID) -> Result<Option<JobObject>> {
        let id = job_id("id", &id)?;
        let job = chill(ctx)?.get_job(&id).await.map_err(to_gql)?;
        Ok(job.map(JobObject))
    }

    /// Jobs matching a filter, in creation order: the first `limit` (default 100, at most
    /// 1000). `jobsPage` continues past them.
    async fn list_jobs(
        &self,
        ctx: &Context<'_>,
        filter: Option<JobFilterInput>,
        limit: Option<i32>,
    ) -> Result<Vec<Option<JobObject>>> {
        let filter = filter_of(filter)?;
        let limit = limit_arg("limit", limit, 100)?;
        let page = chill(ctx)?
            .list_jobs(&filter, &PageRequest::first(limit))
            .await
            .map_err(to_gql)?;
        Ok(page.items.into_iter().map(|j| Some(JobObject(j))).collect())
    }

    /// An execution by id.
    async fn get_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ExecutionObject>> {
        let id = execution_id("id", &id)?;
        let execution = chill(ctx)?.get_execution(&id).await.map_err(to_gql)?;
        Ok(execution.map(ExecutionObject))
    }

    /// A job's executions, newest first: the first `limit` (default 20, at most 1000).
    async fn list_executions(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        limit: Option<i32>,
    ) -> Result<Vec<Option<ExecutionObject>>> {
        let id = super::job_id("jobId", &job_id)?;
        let limit = limit_arg("limit", limit, 20)?;
        let page = chill(ctx)?
            .list_executions(&id, &PageRequest::first(limit))
            .await
            .map_err(to_gql)?;
        Ok(page
            .items
            .into_iter()
            .map(|e| Some(ExecutionObject(e)))
            .collect())
    }

    /// A page of jobs: pass the previous page's `nextCursor` as `after`.
    async fn jobs_page(
        &self,
        ctx: &Context<'_>,
        filter: Option<JobFilterInput>,
        limit: Option<i32>,
        after: Option<String>,
    ) -> Result<JobPageObject> {
        let filter = filter_of(filter)?;
        let limit = limit_arg("limit", limit, 100)?;
        let page = chill(ctx)?
            .list_jobs(&filter, &page_of(limit, after))
            .await
            .map_err(to_gql)?;
        Ok(JobPageObject {
            items: page.items.into_iter().map(JobObject).collect(),
            next_cursor: page.next_cursor.map(|c| c.as_str().to_string()),
        })
    }

    /// A page of a job's executions, newest first: pass the previous page's `nextCursor` as
    /// `after`.
    async fn executions_page(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        limit: Option<i32>,
        after: Option<String>,
    ) -> Result<ExecutionPageObject> {
        let id = super::job_id("jobId", &job_id)?;
        let limit = limit_arg("limit", limit, 20)?;
        let page = chill(ctx)?
            .list_executions(&id, &page_of(limit, after))
            .await
            .map_err(to_gql)?;
        Ok(ExecutionPageObject {
            items: page.items.into_iter().map(ExecutionObject).collect(),
            next_cursor: page.next_cursor.map(|c| c.as_str().to_string()),
        })
    }

    /// The next `count` (default 5, at most 100) times a schedule fires after `after` (default
    /// now), in a time zone (default UTC). An invalid schedule is an error naming the problem.
    async fn upcoming_runs(
        &self,
        schedule: String,
        timezone: Option<String>,
        after: Option<DateTime<Utc>>,
        count: Option<i32>,
    ) -> Result<Vec<DateTime<Utc>>> {
        let count = match count {
            None => 5,
            Some(n) if (1..=100).contains(&n) => n as usize,
            Some(n) => {
                return Err(invalid(chill_core::ValidationError::new(
                    "count",
                    format!("{n} is out of range 1-100"),
                )));
            }
        };
        let tz = timezone.as_deref().unwrap_or("UTC");
        let parsed = chill_core::Schedule::parse_in(&schedule, tz).map_err(|e| {
            let field = match e {
                chill_core::ScheduleError::UnknownTimeZone(_) => "timezone",
                _ => "schedule",
            };
            invalid(chill_core::ValidationError::new(field, e.to_string()))
        })?;
        let after = after.unwrap_or_else(Utc::now);
        let runs = parsed.upcoming(after).take(count).collect();
        Ok(runs)
    }
}
