//! `chill export` and `chill import`: jobs as JSON, idempotent by id.
//!
//! An export is a JSON array of jobs as the library serializes them (camelCase, every field:
//! configuration, statistics, audit). Importing it creates the jobs a store lacks (with their
//! statistics), updates those whose configuration differs, and leaves the rest unchanged.
//! Every entry is checked before anything is written, updates applied to the stored job as
//! the store would: one invalid entry and nothing is imported. Should a write fail all the
//! same (the store goes away, or another writer creates or deletes one of the jobs
//! meanwhile), the import's earlier writes are undone: jobs it created are purged, jobs it
//! updated get their configuration back, unless another writer changed them since (those are
//! left as they are and listed). An update is by `chill import` (`updatedBy`); a created job
//! keeps every field of the file, audit fields included. A created job whose next run has
//! passed gets its next slot after now.

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

/// The patch that gives a job `job`'s configuration, written by `author`.
fn patch_of(job: &Job, author: Option<String>) -> JobPatch {
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
        updated_by: author,
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
            Some(existing) => match existing.apply(&patch_of(job, importer()), Utc::now()) {
                // What the store would refuse (a changed timing that never fires again).
                Err(e) => problems.push(format!("jobs[{i}] ({}): {e}", job.id)),
                Ok(_) => plans.push((
                    job.id,
                    Plan::Update {
                        job,
                        existing: Box::new(existing),
                    },
                )),
            },
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
        let (outcome, undo) = match plan {
            Plan::Create(job) => {
                report.created.push(id);
                if dry_run {
                    continue;
                }
                let outcome = chill.store().create_job(&job).await;
                let happened = match &outcome {
                    Ok(()) => true,
                    Err(e) => e.may_have_taken_effect(),
                };
                let undo = happened.then(|| Written {
                    id,
                    imported: spec_of(&job),
                    before: None,
                });
                (outcome.map_err(|e| e.to_string()), undo)
            }
            Plan::Update { job, existing } => {
                report.updated.push(id);
                if dry_run {
                    continue;
                }
                let outcome = chill.update_job(&id, &patch_of(job, importer())).await;
                let happened = match &outcome {
                    Ok(_) => true,
                    Err(chill_core::Error::Store(e)) => e.may_have_taken_effect(),
                    Err(_) => false,
                };
                let undo = happened.then(|| Written {
                    id,
                    imported: spec_of(job),
                    before: Some(existing),
                });
                (outcome.map(drop).map_err(|e| e.to_string()), undo)
            }
            Plan::Unchanged => {
                report.unchanged.push(id);
                continue;
            }
        };
        written.extend(undo);
        if let Err(error) = outcome {
            return Err(AppError::ImportStopped {
                job: id.to_string(),
                error,
                undo: undo_all(chill, written).await,
            });
        }
    }
    Ok(report)
}

/// Who an import's updates are by.
fn importer() -> Option<String> {
    Some("chill import".to_string())
}

/// A write of an import (or one that may have happened, its reply lost), for undoing it.
struct Written {
    /// The job.
    id: JobId,
    /// The configuration the import wrote.
    imported: JobSpec,
    /// The job before the write; `None` when the import created it.
    before: Option<Box<Job>>,
}

impl Written {
    /// Takes the write back if the job still has the configuration the import gave it: a
    /// created job is purged, an updated one gets its configuration back. A job another
    /// writer changed since (or deleted) is left as it is, and said so.
    async fn undo(self, chill: &Chill) -> Result<(), String> {
        let id = self.id;
        let current = chill.get_job(&id).await.map_err(|e| e.to_string())?;
        let Some(current) = current else {
            return match self.before {
                // Created, or its lost create never happened: nothing to take back.
                None => Ok(()),
                Some(_) => Err("deleted by another writer since".into()),
            };
        };
        if spec_of(&current) != self.imported {
            return Err("changed by another writer since; left as it is".into());
        }
        let undone = match &self.before {
            None => chill.purge_job(&id).await.map(drop),
            Some(before) => chill
                .update_job_at(
                    &id,
                    current.version,
                    &patch_of(before, before.updated_by.clone()),
                )
                .await
                .map(drop),
        };
        undone.map_err(|e| e.to_string())
    }
}

/// Takes back `written`, newest first; says what became of them.
async fn undo_all(chill: &Chill, written: Vec<Written>) -> String {
    let total = written.len();
    let mut failed = Vec::new();
    for write in written.into_iter().rev() {
        let id = write.id;
        if let Err(e) = write.undo(chill).await {
            failed.push(format!("{id}: {e}"));
        }
    }
    let writes = match total {
        0 => return "nothing had been written".to_string(),
        1 => "the one write".to_string(),
        _ => format!("the {total} writes"),
    };
    if failed.is_empty() {
        format!("{writes} made by this import undone")
    } else {
        format!(
            "{} of {writes} made by this import not undone:\n{}",
            failed.len(),
            failed.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chill_core::testkit::{Faults, FaultyStore};
    use chill_core::{ChillOptions, Clock, JobSpec, ManualClock, MemoryStore, Store, SystemClock};

    use super::*;
    use crate::ai::NoAi;

    fn faulty_engine(
        clock: Arc<dyn chill_core::Clock>,
    ) -> (Arc<MemoryStore>, Arc<FaultyStore>, Chill) {
        let memory = Arc::new(MemoryStore::new());
        let faulty = Arc::new(FaultyStore::new(
            memory.clone(),
            clock.clone(),
            Faults::NONE,
            1,
        ));
        let chill = Chill::new(
            faulty.clone(),
            clock,
            Arc::new(NoAi),
            ChillOptions::default(),
        );
        (memory, faulty, chill)
    }

    #[tokio::test]
    async fn a_write_that_fails_undoes_the_writes_before_it() {
        let (_, faulty, chill) = faulty_engine(Arc::new(SystemClock));
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
        assert_eq!(restored.updated_by, kept.updated_by);
    }

    #[tokio::test]
    async fn a_job_another_writer_created_meanwhile_is_not_undone() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let (memory, faulty, chill) = faulty_engine(clock.clone());
        let job = Job::create(JobSpec::new("from the file", "q", "@hourly"), clock.now()).unwrap();
        // The import's create waits on the clock: the other writer comes first.
        faulty.set_delay("create_job", std::time::Duration::from_secs(1));
        let importing = tokio::spawn({
            let (chill, job) = (chill.clone(), job.clone());
            async move { import(&chill, &[job], false).await }
        });
        while faulty.calls("create_job") == 0 {
            tokio::task::yield_now().await;
        }
        let mut theirs = job.clone();
        theirs.name = "another writer's".into();
        memory.create_job(&theirs).await.unwrap();
        clock.advance(std::time::Duration::from_secs(1)).await;

        let message = importing.await.unwrap().unwrap_err().to_string();
        assert!(message.contains("nothing had been written"), "{message}");
        let kept = memory.get_job(&job.id).await.unwrap().expect("not purged");
        assert_eq!(kept.name, "another writer's");
    }

    #[tokio::test]
    async fn an_update_that_would_never_fire_is_refused_before_anything_is_written() {
        let (memory, _, chill) = faulty_engine(Arc::new(SystemClock));
        let first = Job::create(JobSpec::new("first", "p", "@daily"), Utc::now()).unwrap();
        let existing = chill
            .create_job(JobSpec::new("second", "p", "@daily"))
            .await
            .unwrap();
        let mut never = existing.clone();
        never.schedule = "at(2020-01-01T00:00:00)".into();

        let error = import(&chill, &[first.clone(), never], false)
            .await
            .unwrap_err();
        assert!(matches!(error, AppError::InvalidImport(_)), "{error}");
        assert!(
            error.to_string().contains(&existing.id.to_string()),
            "{error}"
        );
        assert!(memory.get_job(&first.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_dry_run_writes_nothing() {
        let (store, _, chill) = faulty_engine(Arc::new(SystemClock));
        let job = Job::create(JobSpec::new("new", "q", "@hourly"), Utc::now()).unwrap();
        let report = import(&chill, std::slice::from_ref(&job), true)
            .await
            .unwrap();
        assert_eq!(report.created, [job.id]);
        assert!(store.get_job(&job.id).await.unwrap().is_none());
    }
}
