//! `chill export` and `chill import`: jobs as JSON, idempotent by id.
//!
//! An export is a JSON array of jobs as the library serializes them (camelCase, every field:
//! configuration, statistics, audit). Importing it creates the jobs a store lacks (with their
//! statistics), updates those whose configuration differs, and leaves the rest unchanged.
//! Every entry is checked before anything is written: one invalid entry and nothing is
//! imported. Should a write fail all the same (the store goes away, another writer changes a
//! job meanwhile), the writes made before it are undone: created jobs purged, updated ones
//! given their configuration back. A created job whose next run has passed gets its next
//! slot after now.

use std::collections::HashSet;

use chill_core::store::{JobFilter, PageRequest};
use chill_core::{Chill, Job, JobId, JobPatch, JobSpec};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::AppError;

/// Every job of a store (soft-deleted ones left out), in creation order.
pub async fn export(chill: &Chill) -> Result<Vec<Job>, AppError> {
    let filter = JobFilter::default();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    let mut jobs = Vec::new();
    loop {
        let got = chill.list_jobs(&filter, &page).await?;
        jobs.extend(got.items);
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(PageRequest::MAX_LIMIT, cursor),
            None => return Ok(jobs),
        }
    }
}

/// The jobs of an export file; every problem is listed (`jobs[2]: …`), and any makes it an
/// error.
pub fn parse(text: &str) -> Result<Vec<Job>, AppError> {
    let value: Value = serde_json::from_str(text).map_err(|e| AppError::json("import", e))?;
    let entries = match value {
        Value::Array(entries) => entries,
        Value::Object(mut o) => match o.remove("jobs") {
            Some(Value::Array(entries)) => entries,
            _ => {
                return Err(AppError::InvalidImport(vec![
                    "expected a JSON array of jobs (or an object with a \"jobs\" array)".into(),
                ]));
            }
        },
        _ => {
            return Err(AppError::InvalidImport(vec![
                "expected a JSON array of jobs".into(),
            ]));
        }
    };
    let mut jobs = Vec::with_capacity(entries.len());
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (i, entry) in entries.into_iter().enumerate() {
        match serde_json::from_value::<Job>(entry) {
            Err(e) => problems.push(format!("jobs[{i}]: {e}")),
            Ok(job) => {
                if let Err(e) = job.validate() {
                    problems.push(format!("jobs[{i}] ({}): {e}", job.id));
                } else if !seen.insert(job.id) {
                    problems.push(format!("jobs[{i}]: id {} appears twice", job.id));
                } else {
                    jobs.push(job);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(jobs)
    } else {
        Err(AppError::InvalidImport(problems))
    }
}

/// What an import did (or, dry, would do), by job id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Jobs the store lacked.
    pub created: Vec<JobId>,
    /// Jobs whose configuration differed.
    pub updated: Vec<JobId>,
    /// Jobs already as in the file.
    pub unchanged: Vec<JobId>,
    /// Whether nothing was written.
    pub dry_run: bool,
}

impl ImportReport {
    /// `created 1, updated 0, unchanged 2` (with `(dry run)`).
    pub fn summary(&self) -> String {
        format!(
            "created {}, updated {}, unchanged {}{}",
            self.created.len(),
            self.updated.len(),
            self.unchanged.len(),
            if self.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        )
    }
}

/// A job's configuration: what an import compares and writes (not its statistics).
pub fn spec_of(job: &Job) -> JobSpec {
    JobSpec {
        id: Some(job.id),
        name: job.name.clone(),
        prompt: job.prompt.clone(),
        schedule: job.schedule.clone(),
        system_prompt: job.system_prompt.clone(),
        timezone: job.timezone.clone(),
        enabled: job.enabled,
        max_turns: job.max_turns,
        timeout: job.timeout,
        retry_policy: job.retry_policy,
        tags: job.tags.clone(),
        metadata: job.metadata.clone(),
        start_date: job.start_date,
        end_date: job.end_date,
        blackout_periods: job.blackout_periods.clone(),
        dst_policy: job.dst_policy,
        overlap_policy: job.overlap_policy,
        catch_up_policy: job.catch_up_policy,
        catch_up_window: job.catch_up_window,
        jitter: job.jitter,
        pause_note: job.pause_note.clone(),
        budget: job.budget,
        max_concurrency: job.max_concurrency,
        pause_after_failures: job.pause_after_failures,
        created_by: None,
    }
}

/// The patch that gives a job another's configuration.
fn patch_of(job: &Job) -> JobPatch {
    JobPatch {
        name: Some(job.name.clone()),
        prompt: Some(job.prompt.clone()),
        system_prompt: Some(job.system_prompt.clone()),
        schedule: Some(job.schedule.clone()),
        timezone: Some(job.timezone.clone()),
        enabled: Some(job.enabled),
        max_turns: Some(job.max_turns),
        timeout: Some(job.timeout),
        retry_policy: Some(job.retry_policy),
        tags: Some(job.tags.clone()),
        metadata: Some(job.metadata.clone()),
        start_date: Some(job.start_date),
        end_date: Some(job.end_date),
        blackout_periods: Some(job.blackout_periods.clone()),
        dst_policy: Some(job.dst_policy),
        overlap_policy: Some(job.overlap_policy),
        catch_up_policy: Some(job.catch_up_policy),
        catch_up_window: Some(job.catch_up_window),
        jitter: Some(job.jitter),
        pause_note: Some(job.pause_note.clone()),
        budget: Some(job.budget),
        max_concurrency: Some(job.max_concurrency),
        pause_after_failures: Some(job.pause_after_failures),
        updated_by: job.updated_by.clone(),
    }
}

/// An imported job as it is created: nothing running or buffered in this store, and a next
/// run that has not passed.
fn prepared(job: &Job) -> Result<Job, AppError> {
    let now = Utc::now();
    let mut job = job.clone();
    job.running_count = 0;
    job.buffered_execution_id = None;
    if !job.is_active() {
        job.next_run_at = None;
    } else if job.next_run_at.is_none_or(|t| t <= now) {
        job.next_run_at = job.timing()?.next_slot(now).map(|slot| slot.fire_at);
    }
    Ok(job)
}

/// Import jobs: plan every entry first (a job soft-deleted in the store is a problem that
/// stops the import), then write unless `dry_run`. A failed write undoes the ones before it.
pub async fn import(chill: &Chill, jobs: &[Job], dry_run: bool) -> Result<ImportReport, AppError> {
    enum Plan<'a> {
        Create(Box<Job>),
        Update { job: &'a Job, existing: Box<Job> },
        Unchanged,
    }
    let mut plans = Vec::with_capacity(jobs.len());
    let mut problems = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        match chill.get_job(&job.id).await? {
            None => plans.push((job.id, Plan::Create(Box::new(prepared(job)?)))),
            Some(existing) if existing.is_deleted() => problems.push(format!(
                "jobs[{i}] ({}): deleted in this store; purge it (chill jobs delete --hard) to import it again",
                job.id
            )),
            Some(existing) if spec_of(&existing) == spec_of(job) => {
                plans.push((job.id, Plan::Unchanged));
            }
            Some(existing) => plans.push((
                job.id,
                Plan::Update {
                    job,
                    existing: Box::new(existing),
                },
            )),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::InvalidImport(problems));
    }
    let mut report = ImportReport {
        dry_run,
        ..ImportReport::default()
    };
    let mut written = Vec::new();
    for (id, plan) in plans {
        let outcome = match plan {
            Plan::Create(job) => {
                report.created.push(id);
                if dry_run {
                    continue;
                }
                // A create whose reply was lost may have happened: undone all the same.
                written.push(Undo::Purge(id));
                chill
                    .store()
                    .create_job(&job)
                    .await
                    .map_err(|e| e.to_string())
            }
            Plan::Update { job, existing } => {
                report.updated.push(id);
                if dry_run {
                    continue;
                }
                written.push(Undo::Restore(existing));
                chill
                    .update_job(&id, &patch_of(job))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Plan::Unchanged => {
                report.unchanged.push(id);
                continue;
            }
        };
        if let Err(error) = outcome {
            return Err(AppError::ImportStopped {
                job: id.to_string(),
                error,
                undo: undo(chill, written).await,
            });
        }
    }
    Ok(report)
}

/// How to take back one write of an import.
enum Undo {
    /// The job was created: purge it.
    Purge(JobId),
    /// The job was updated: give it this configuration back.
    Restore(Box<Job>),
}

/// Takes back `written`, newest first; says what became of them.
async fn undo(chill: &Chill, written: Vec<Undo>) -> String {
    let total = written.len();
    let mut failed = Vec::new();
    for write in written.into_iter().rev() {
        let (id, result) = match write {
            Undo::Purge(id) => (id, chill.purge_job(&id).await.map(drop)),
            Undo::Restore(job) => (
                job.id,
                chill.update_job(&job.id, &patch_of(&job)).await.map(drop),
            ),
        };
        if let Err(e) = result {
            failed.push(format!("{id}: {e}"));
        }
    }
    let writes = if total == 1 {
        "the one write".to_string()
    } else {
        format!("the {total} writes")
    };
    if failed.is_empty() {
        format!("{writes} made by this import undone")
    } else {
        format!(
            "{} of {writes} made by this import could not be undone:\n{}",
            failed.len(),
            failed.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chill_core::testkit::{Faults, FaultyStore};
    use chill_core::{ChillOptions, JobSpec, MemoryStore, Store, SystemClock};

    use super::*;
    use crate::ai::NoAi;

    #[tokio::test]
    async fn a_write_that_fails_undoes_the_writes_before_it() {
        let faulty = Arc::new(FaultyStore::new(
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
            Faults::NONE,
            1,
        ));
        let chill = Chill::new(
            faulty.clone(),
            Arc::new(SystemClock),
            Arc::new(NoAi),
            ChillOptions::default(),
        );
        let kept = chill
            .create_job(JobSpec::new("kept", "p", "@daily"))
            .await
            .unwrap();
        let mut changed = kept.clone();
        changed.name = "changed by the import".into();
        changed.tags = vec!["imported".into()];
        let mut created = Job::create(JobSpec::new("new", "q", "@hourly"), Utc::now()).unwrap();
        created.total_runs = 3;
        // The create takes effect and then reports an error, as when a connection drops
        // during the commit.
        faulty.lose_next_reply("create_job");

        let error = import(&chill, &[changed, created.clone()], false)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains(&created.id.to_string()), "{message}");
        assert!(
            message.contains("the 2 writes made by this import undone"),
            "{message}"
        );
        assert!(
            chill.get_job(&created.id).await.unwrap().is_none(),
            "the created job is purged"
        );
        let restored = chill.get_job(&kept.id).await.unwrap().unwrap();
        assert_eq!(
            spec_of(&restored),
            spec_of(&kept),
            "the updated job has its configuration back"
        );
    }

    #[tokio::test]
    async fn a_dry_run_writes_nothing() {
        let store = Arc::new(MemoryStore::new());
        let chill = Chill::new(
            store.clone(),
            Arc::new(SystemClock),
            Arc::new(NoAi),
            ChillOptions::default(),
        );
        let job = Job::create(JobSpec::new("new", "q", "@hourly"), Utc::now()).unwrap();
        let report = import(&chill, std::slice::from_ref(&job), true)
            .await
            .unwrap();
        assert_eq!(report.created, [job.id]);
        assert!(store.get_job(&job.id).await.unwrap().is_none());
    }
}
