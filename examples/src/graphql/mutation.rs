//! Mutations: the requirements' `createJob`, `updateJob`, `deleteJob`, `pauseJob`,
//! `resumeJob`, `triggerJob`, with optional arguments beyond them (a pause note, hard delete).

use async_graphql::{Context, ID, Object, Result};

use super::errors::{chill, invalid, to_gql};
use super::inputs::{CreateJobInput, UpdateJobInput};
use super::job_id;
use super::types::{ExecutionObject, JobObject};

/// The root of mutations.
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Create a job. Invalid input is an error naming the field and the problem, and nothing
    /// is stored.
    async fn create_job(&self, ctx: &Context<'_>, input: CreateJobInput) -> Result<JobObject> {
        let spec = input.into_spec().map_err(invalid)?;
        let job = chill(ctx)?.create_job(spec).await.map_err(to_gql)?;
        Ok(JobObject(job))
    }

    /// Change a job: absent fields stay as they are. A new schedule takes effect from now.
    async fn update_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateJobInput,
    ) -> Result<JobObject> {
        let id = job_id("id", &id)?;
        let chill = chill(ctx)?;
        let current = chill
            .get_job(&id)
            .await
            .map_err(to_gql)?
            .filter(|j| j.deleted_at.is_none())
            .ok_or_else(|| to_gql(chill_core::Error::JobNotFound(id)))?;
        let patch = input.into_patch(&current).map_err(invalid)?;
        let job = chill.update_job(&id, &patch).await.map_err(to_gql)?;
        Ok(JobObject(job))
    }

    /// Delete a job: by default softly (it stops running, its history stays); with
    /// `hard: true` together with its history. `false` when there was no such job.
    async fn delete_job(&self, ctx: &Context<'_>, id: ID, hard: Option<bool>) -> Result<bool> {
        let id = job_id("id", &id)?;
        let chill = chill(ctx)?;
        if hard.unwrap_or(false) {
            return chill.purge_job(&id).await.map_err(to_gql);
        }
        match chill.delete_job(&id).await {
            Ok(_) => Ok(true),
            Err(chill_core::Error::JobNotFound(_)) => Ok(false),
            Err(e) => Err(to_gql(e)),
        }
    }

    /// Pause a job, with an optional note saying why.
    async fn pause_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: Option<String>,
    ) -> Result<JobObject> {
        let id = job_id("id", &id)?;
        let job = chill(ctx)?.pause_job(&id, note).await.map_err(to_gql)?;
        Ok(JobObject(job))
    }

    /// Resume a paused job from its next slot after now.
    async fn resume_job(&self, ctx: &Context<'_>, id: ID) -> Result<JobObject> {
        let id = job_id("id", &id)?;
        let job = chill(ctx)?.resume_job(&id).await.map_err(to_gql)?;
        Ok(JobObject(job))
    }

    /// Run a job now. Returns the execution (status `running`) at once; its end arrives on
    /// `onJobExecutionComplete`. Refused for a paused job, and while a run is in progress
    /// under the overlap policy `skip`.
    async fn trigger_job(&self, ctx: &Context<'_>, id: ID) -> Result<ExecutionObject> {
        let id = job_id("id", &id)?;
        let chill = chill(ctx)?;
        let execution_id = chill.trigger_job(&id).await.map_err(to_gql)?;
        let execution = chill
            .get_execution(&execution_id)
            .await
            .map_err(to_gql)?
            .ok_or_else(|| to_gql(chill_core::Error::ExecutionNotFound(execution_id)))?;
        Ok(ExecutionObject(execution))
    }
}
