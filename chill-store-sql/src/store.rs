//! The [`Store`] contract over SQL: every operation one transaction, every condition checked
//! by the database (conditional `UPDATE`s, the executions' primary key), deadlocks and
//! serialization failures retried.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chill_core::store::{
    Cursor, Finish, FinishOutcome, JobFilter, Lease, ManualStart, Page, PageRequest, SlotClaim,
    StatsDelta,
};
use chill_core::{Execution, ExecutionId, ExecutionStatus, Job, JobId, Store, StoreError};
use chrono::{DateTime, Utc};

use crate::codec::{
    self, EXECUTION_COLUMNS, Limits, Stats, execution_args, execution_from_row, execution_id, int,
    job_args, job_config_args, job_from_row, job_id, lease_until, ms, stats_args, stats_from_row,
    tag_needles,
};
use crate::db::{Arg, Tx};
use crate::error::{Fail, is_retryable, is_unique_violation};
use crate::script::{self, ClaimUpdate};
use crate::{Backend, SqlStore};

/// Most rows in one multi-row `INSERT` or `DELETE ... IN` (well under every database's limit
/// of bound parameters).
const CHUNK: usize = 64;
/// Ids bound to one `IN (...)` lookup: far below every database's limit on bound values.
const IDS_PER_QUERY: usize = 1_000;

type Result<T> = std::result::Result<T, Fail>;

fn limit(n: usize) -> Arg {
    Arg::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn bad_cursor(c: &Cursor) -> StoreError {
    StoreError::InvalidInput {
        field: "cursor".into(),
        message: format!("'{c}' is not a cursor of this listing"),
    }
}

/// Execution cursors: `<createdAt millis>:<id>`, as the in-memory store writes them.
fn execution_cursor(e: &Execution) -> Cursor {
    Cursor::new(format!("{}:{}", e.created_at.timestamp_millis(), e.id))
}

fn parse_execution_cursor(c: &Cursor) -> std::result::Result<(i64, ExecutionId), StoreError> {
    let (at, id) = c.as_str().split_once(':').ok_or_else(|| bad_cursor(c))?;
    let at: i64 = at.parse().map_err(|_| bad_cursor(c))?;
    DateTime::from_timestamp_millis(at).ok_or_else(|| bad_cursor(c))?;
    Ok((at, id.parse().map_err(|_| bad_cursor(c))?))
}

/// A job's statistics after an execution ended (the in-memory store's rule).
fn apply_stats(s: &mut Stats, d: &StatsDelta) {
    s.running_count = s.running_count.saturating_sub(1);
    s.last_run_status = Some(d.status);
    s.consecutive_failures = d.consecutive_failures_after(s.consecutive_failures);
    if !d.counted {
        return;
    }
    s.spend.add(d.completed_at, d.cost_micro_usd);
    s.total_runs = s.total_runs.saturating_add(1);
    if d.status == ExecutionStatus::Success {
        s.success_count = s.success_count.saturating_add(1);
    } else {
        s.failure_count = s.failure_count.saturating_add(1);
    }
    s.last_run_duration = Some(d.duration_ms);
    s.last_run_error = d.error.clone();
    s.total_duration_ms = s.total_duration_ms.saturating_add(d.duration_ms);
    s.average_duration = Some(s.total_duration_ms / s.total_runs);
    s.total_input_tokens = s.total_input_tokens.saturating_add(d.input_tokens);
    s.total_output_tokens = s.total_output_tokens.saturating_add(d.output_tokens);
    s.total_tokens = s
        .total_tokens
        .saturating_add(d.input_tokens.saturating_add(d.output_tokens));
    s.total_cost_micro_usd = s.total_cost_micro_usd.saturating_add(d.cost_micro_usd);
}

fn mark_started(s: &mut Stats, count: u32, at: DateTime<Utc>) {
    if count > 0 {
        s.running_count = s.running_count.saturating_add(count);
        s.last_run_status = Some(ExecutionStatus::Running);
        s.last_run_at = Some(at);
    }
}

/// A small random pause before running a transaction again.
fn backoff(attempt: u32) -> Duration {
    let base = 2u64 << attempt.min(6);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % base;
    Duration::from_millis(base + jitter)
}

impl SqlStore {
    /// Run an operation, again after a deadlock, serialization failure or busy file, and map
    /// what remains to the contract's errors.
    async fn run<T, F, Fut>(
        &self,
        what: &'static str,
        mut op: F,
    ) -> std::result::Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(Fail::Db(e)) if is_retryable(&e) && attempt < self.options.retries => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, what, "retrying a store transaction");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(f) => return Err(f.into_store_error(what)),
            }
        }
    }

    /// Jobs read by one statement.
    async fn read_jobs(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Job>> {
        self.pools.fetch_decoded(sql, args).await
    }

    /// Executions read by one statement.
    async fn read_executions(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Execution>> {
        self.pools.fetch_decoded(sql, args).await
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Insert encoded executions in chunks; `Ok(false)` when one of them exists already.
    async fn insert_executions(&self, tx: &mut Tx, rows: Vec<Vec<Arg>>) -> Result<bool> {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Arg>> = rows.by_ref().take(CHUNK).collect();
            let sql = self.sql.insert_executions(chunk.len());
            match tx.execute(&sql, chunk.concat()).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    async fn create_job_once(&self, job: &Job) -> Result<()> {
        let args = job_args(job, self.limits())?;
        match self.pools.execute(&self.sql.insert_job, args).await {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                what: "job",
                id: job.id.to_string(),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_job_once(&self, job: &Job, expected_version: u64) -> Result<()> {
        let mut args = job_config_args(job, self.limits())?;
        args.push(job_id(&job.id));
        args.push(Arg::Int(Some(int("version", expected_version)?)));
        if self.pools.execute(&self.sql.update_job, args).await? == 1 {
            return Ok(());
        }
        let row = self
            .pools
            .fetch_optional(&self.sql.job_version, vec![job_id(&job.id)])
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: "job",
                id: job.id.to_string(),
            }
            .into());
        };
        let actual = row.i64(0)?;
        Err(StoreError::VersionConflict {
            id: job.id.to_string(),
            expected: expected_version,
            actual: u64::try_from(actual).unwrap_or_default(),
        }
        .into())
    }

    async fn delete_job_once(&self, id: &JobId) -> Result<bool> {
        let existed = self
            .pools
            .execute(&self.sql.delete_job, vec![job_id(id)])
            .await?
            > 0;
        self.pools
            .execute(&self.sql.delete_job_executions, vec![job_id(id)])
            .await?;
        Ok(existed)
    }

    async fn list_jobs_once(&self, filter: &JobFilter, page: &PageRequest) -> Result<Page<Job>> {
        let backend = self.sql.backend;
        let mut sql = format!(
            "SELECT {} FROM {} WHERE 1 = 1",
            self.sql.job_columns, self.sql.jobs
        );
        let mut args = Vec::new();
        if let Some(c) = &page.cursor {
            let after: JobId = c.as_str().parse().map_err(|_| bad_cursor(c))?;
            sql.push_str(" AND id > ?");
            args.push(job_id(&after));
        }
        if !filter.include_deleted {
            sql.push_str(" AND deleted_at IS NULL");
        }
        if let Some(enabled) = filter.enabled {
            sql.push_str(" AND enabled = ?");
            args.push(Arg::Bool(enabled));
        }
        if let Some(tag) = &filter.tag {
            let contains = backend.contains("tags");
            sql.push_str(&format!(" AND ({contains} OR {contains})"));
            args.extend(tag_needles(tag).map(|n| Arg::Text(Some(n))));
        }
        if let Some(name) = &filter.name_contains {
            sql.push_str(&format!(" AND {}", backend.contains("name")));
            args.push(Arg::Bytes(Some(name.as_bytes().to_vec())));
        }
        if let Some(status) = filter.last_status {
            sql.push_str(" AND last_run_status = ?");
            args.push(Arg::Text(Some(status.as_str().to_string())));
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        let max = page.max_items();
        args.push(limit(max + 1));
        let mut items = self.read_jobs(&backend.placeholders(&sql), args).await?;
        let next_cursor = if items.len() > max {
            items.truncate(max);
            items.last().map(|j| Cursor::new(j.id.to_string()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn list_executions_once(
        &self,
        job: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>> {
        let mut sql = format!(
            "SELECT {} FROM {} WHERE job_id = ?",
            self.sql.execution_columns, self.sql.executions
        );
        let mut args = vec![job_id(job)];
        if let Some(c) = &page.cursor {
            let (at, id) = parse_execution_cursor(c)?;
            // `created_at <= ?` bounds the index range; the rest drops the rows at or
            // after the cursor within its millisecond.
            sql.push_str(" AND created_at <= ? AND (created_at < ? OR id < ?)");
            args.extend([Arg::Int(Some(at)), Arg::Int(Some(at)), execution_id(&id)]);
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        let max = page.max_items();
        args.push(limit(max + 1));
        let mut items = self
            .read_executions(&self.sql.backend.placeholders(&sql), args)
            .await?;
        let next_cursor = if items.len() > max {
            items.truncate(max);
            items.last().map(execution_cursor)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn claim_slots_once(&self, claim: &SlotClaim) -> Result<bool> {
        let update = ClaimUpdate::new(claim)?;
        // Encode everything before anything is sent: a value the database cannot take fails
        // here, with nothing written.
        let rows = claim
            .executions
            .iter()
            .map(|e| execution_args(e, self.limits()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if self.sql.backend == Backend::MySql || rows.len() > script::MAX_SCRIPT_EXECUTIONS {
            return self.claim_in_transaction(update, rows).await;
        }
        let script = script::claim(&self.sql, update, &rows).for_backend(self.sql.backend);
        match self.pools.write(script).await {
            // PostgreSQL returns a row when the job was claimed, SQLite's last statement
            // changes the job's row.
            Ok(written) => Ok(written.last_changes > 0),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A claim as a transaction of several statements (MySQL, and very large claims).
    async fn claim_in_transaction(&self, update: ClaimUpdate, rows: Vec<Vec<Arg>>) -> Result<bool> {
        let (sql, args) = update.update(&self.sql).build(self.sql.backend);
        let mut tx = self.pools.begin().await?;
        if tx.execute(&sql, args).await? == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if !self.insert_executions(&mut tx, rows).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn start_manual_once(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> Result<ManualStart> {
        let args = execution_args(execution, self.limits())?;
        let mut tx = self.pools.begin().await?;
        let sql = if require_idle {
            &self.sql.start_manual_idle
        } else {
            &self.sql.start_manual
        };
        let started = tx
            .execute(
                sql,
                vec![
                    Arg::Int(Some(ms(execution.started_at))),
                    job_id(&execution.job_id),
                ],
            )
            .await?;
        if started == 0 {
            let row = tx
                .fetch_optional(&self.sql.job_state, vec![job_id(&execution.job_id)])
                .await?;
            tx.rollback().await?;
            let Some(row) = row else {
                return Ok(ManualStart::NotActive);
            };
            let active = row.bool(0)? && row.opt_i64(1)?.is_none();
            return Ok(if active && require_idle {
                ManualStart::Busy
            } else {
                ManualStart::NotActive
            });
        }
        match tx.execute(&self.sql.insert_executions(1), args).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::AlreadyExists {
                    what: "execution",
                    id: execution.id.to_string(),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(ManualStart::Started)
    }

    async fn claim_attempt_once(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>> {
        let owner = self.limits().bytes("leaseOwner", &lease.owner)?;
        let Some(row) = self
            .pools
            .fetch_optional(&self.sql.execution_job, vec![execution_id(id)])
            .await?
        else {
            return Ok(None);
        };
        let job = row.opt_uuid(0)?.map(JobId::from_uuid);
        let mut tx = self.pools.begin().await?;
        let expires = ms(lease.expires_at);
        let claimed = tx
            .execute(
                &self.sql.claim_attempt,
                vec![
                    Arg::Int(Some(ms(now))),
                    owner,
                    Arg::Int(Some(expires)),
                    Arg::Int(Some(expires)),
                    execution_id(id),
                ],
            )
            .await?;
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        if let Some(job) = job {
            tx.execute(
                &self.sql.mark_started,
                vec![Arg::Int(Some(ms(now))), job_id(&job)],
            )
            .await?;
        }
        let row = tx
            .fetch_optional(&self.sql.get_execution, vec![execution_id(id)])
            .await?;
        let execution = row.as_ref().map(execution_from_row).transpose()?;
        tx.commit().await?;
        Ok(execution)
    }

    async fn renew_lease_once(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let expires = ms(expires_at);
        let renewed = self
            .pools
            .execute(
                &self.sql.renew_lease,
                vec![
                    Arg::Int(Some(expires)),
                    Arg::Int(Some(expires)),
                    execution_id(id),
                    Arg::Bytes(Some(owner.as_bytes().to_vec())),
                ],
            )
            .await?;
        Ok(renewed > 0)
    }

    async fn finish_once(&self, finish: &Finish) -> Result<FinishOutcome> {
        if self.sql.backend == Backend::MySql {
            return self.finish_in_transaction(finish).await;
        }
        let script =
            script::finish(&self.sql, finish, self.limits())?.for_backend(self.sql.backend);
        let written = match self.pools.write(script).await {
            Ok(written) => written,
            Err(e) if is_unique_violation(&e) => {
                let id = finish.next_attempt.as_ref().map(|n| n.id.to_string());
                return Err(StoreError::AlreadyExists {
                    what: "execution",
                    id: id.unwrap_or_default(),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        let promoted = if self.sql.backend == Backend::Postgres {
            // One row: with a promotion, the promoted execution's columns (all NULL when none
            // started) and then how many executions were finished; else only that count.
            let Some(row) = written.rows.first() else {
                return Ok(FinishOutcome::Fenced);
            };
            let finished = if finish.promote.is_some() {
                EXECUTION_COLUMNS.len()
            } else {
                0
            };
            if row.i64(finished)? == 0 {
                return Ok(FinishOutcome::Fenced);
            }
            match finish.promote {
                Some(_) if row.opt_uuid(0)?.is_some() => Some(execution_from_row(row)?),
                _ => None,
            }
        } else {
            // The last statement changes the execution's row unless fenced; the promoted
            // execution's row, if one started.
            if written.last_changes == 0 {
                return Ok(FinishOutcome::Fenced);
            }
            match written.rows.first() {
                Some(row) => Some(execution_from_row(row)?),
                None => None,
            }
        };
        Ok(FinishOutcome::Finished {
            promoted: promoted.map(Box::new),
        })
    }

    /// A finish as a transaction of several statements (MySQL).
    async fn finish_in_transaction(&self, finish: &Finish) -> Result<FinishOutcome> {
        let record = &finish.execution;
        let mut args = execution_args(record, self.limits())?;
        args.remove(0); // the id goes into the condition
        args.push(execution_id(&record.id));
        args.push(Arg::Bytes(Some(finish.owner.as_bytes().to_vec())));
        let sql = match finish.expired_by {
            Some(t) => {
                args.push(Arg::Int(Some(ms(t))));
                &self.sql.finish_expired
            }
            None => &self.sql.finish,
        };
        let next_attempt = finish
            .next_attempt
            .as_ref()
            .map(|n| Ok::<_, StoreError>((n, execution_args(n, self.limits())?)))
            .transpose()?;
        let promote_owner = finish
            .promote
            .as_ref()
            .map(|l| self.limits().bytes("leaseOwner", &l.owner))
            .transpose()?;

        let mut tx = self.pools.begin().await?;
        // The job first, then its executions: the order every transaction locks them in.
        let stats_row = tx
            .fetch_optional(&self.sql.job_stats_locked, vec![job_id(&record.job_id)])
            .await?;
        if tx.execute(sql, args).await? == 0 {
            tx.rollback().await?;
            return Ok(FinishOutcome::Fenced);
        }
        if let Some((next, row)) = next_attempt
            && !self.insert_executions(&mut tx, vec![row]).await?
        {
            tx.rollback().await?;
            return Err(StoreError::AlreadyExists {
                what: "execution",
                id: next.id.to_string(),
            }
            .into());
        }
        let mut promoted = None;
        if let Some(row) = stats_row {
            let mut stats = stats_from_row(&row)?;
            apply_stats(&mut stats, &finish.stats);
            if let (Some(lease), Some(buffered)) = (&finish.promote, stats.buffered_execution_id) {
                stats.buffered_execution_id = None;
                let row = tx
                    .fetch_optional(
                        &self.sql.get_execution_locked,
                        vec![execution_id(&buffered)],
                    )
                    .await?;
                if let Some(row) = row {
                    let now = record.completed_at.unwrap_or(record.started_at);
                    let mut b = execution_from_row(&row)?;
                    b.status = ExecutionStatus::Running;
                    b.started_at = now;
                    b.lease_owner = Some(lease.owner.clone());
                    b.lease_expires_at = Some(lease.expires_at);
                    tx.execute(
                        &self.sql.start_buffered,
                        vec![
                            Arg::Text(Some(b.status.as_str().to_string())),
                            Arg::Int(Some(ms(now))),
                            promote_owner.clone().unwrap_or(Arg::Bytes(None)),
                            Arg::Int(Some(ms(lease.expires_at))),
                            Arg::Int(lease_until(&b)),
                            Arg::Int(None),
                            execution_id(&buffered),
                        ],
                    )
                    .await?;
                    mark_started(&mut stats, 1, now);
                    promoted = Some(Box::new(b));
                }
            }
            let mut args = stats_args(&stats, self.limits())?;
            args.push(job_id(&record.job_id));
            tx.execute(&self.sql.update_stats, args).await?;
        }
        tx.commit().await?;
        Ok(FinishOutcome::Finished { promoted })
    }

    async fn list_finished_once(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Execution>> {
        let mut sql = format!(
            "SELECT {} FROM {} WHERE completed_at < ?",
            self.sql.execution_columns, self.sql.executions
        );
        let mut args = vec![Arg::Int(Some(ms(to)))];
        match page
            .cursor
            .as_ref()
            .map(parse_execution_cursor)
            .transpose()?
        {
            Some((at, id)) if at >= ms(from) => {
                // `completed_at >= ?` bounds the index range; the rest drops the rows at or
                // before the cursor within its millisecond.
                sql.push_str(" AND completed_at >= ? AND (completed_at > ? OR id > ?)");
                args.extend([Arg::Int(Some(at)), Arg::Int(Some(at)), execution_id(&id)]);
            }
            _ => {
                sql.push_str(" AND completed_at >= ?");
                args.push(Arg::Int(Some(ms(from))));
            }
        }
        sql.push_str(" ORDER BY completed_at, id LIMIT ?");
        let max = page.max_items();
        args.push(limit(max + 1));
        let mut items = self
            .read_executions(&self.sql.backend.placeholders(&sql), args)
            .await?;
        let next_cursor = if items.len() > max {
            items.truncate(max);
            items.last().map(|e| {
                let at = e.completed_at.unwrap_or(e.created_at);
                Cursor::new(format!("{}:{}", at.timestamp_millis(), e.id))
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn delete_executions_once(&self, ids: &[ExecutionId]) -> Result<u64> {
        let mut deleted = 0;
        for chunk in ids.chunks(CHUNK * 4) {
            let args = chunk.iter().map(execution_id).collect();
            deleted += self
                .pools
                .execute(&self.sql.delete_ended_executions(chunk.len()), args)
                .await?;
        }
        Ok(deleted)
    }

    async fn inactive_jobs_once(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        let mut active = std::collections::HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let args = chunk.iter().map(job_id).collect();
            let rows = self
                .pools
                .fetch_all(&self.sql.active_jobs(chunk.len()), args)
                .await?;
            for row in &rows {
                if let Some(id) = row.opt_uuid(0)? {
                    active.insert(id);
                }
            }
        }
        Ok(ids
            .iter()
            .filter(|id| !active.contains(id.as_uuid()))
            .copied()
            .collect())
    }

    async fn delete_executions_before_once(
        &self,
        before: DateTime<Utc>,
        max: usize,
    ) -> Result<u64> {
        let mut tx = self.pools.begin().await?;
        let rows = tx
            .fetch_all(
                &self.sql.retention_candidates,
                vec![Arg::Int(Some(ms(before))), limit(max)],
            )
            .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(id) = row.opt_uuid(0)? {
                ids.push(id);
            }
        }
        let mut deleted = 0;
        for chunk in ids.chunks(CHUNK * 4) {
            let args = chunk.iter().map(|id| codec::uuid_arg(*id)).collect();
            deleted += tx
                .execute(&self.sql.delete_executions(chunk.len()), args)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_job(&self, job: &Job) -> std::result::Result<(), StoreError> {
        self.run("create_job", || self.create_job_once(job)).await
    }

    async fn get_job(&self, id: &JobId) -> std::result::Result<Option<Job>, StoreError> {
        self.run("get_job", || async move {
            let row = self
                .pools
                .fetch_optional(&self.sql.get_job, vec![job_id(id)])
                .await?;
            Ok(row.as_ref().map(job_from_row).transpose()?)
        })
        .await
    }

    async fn inactive_jobs(&self, ids: &[JobId]) -> std::result::Result<Vec<JobId>, StoreError> {
        self.run("inactive_jobs", || self.inactive_jobs_once(ids))
            .await
    }

    async fn update_job(
        &self,
        job: &Job,
        expected_version: u64,
    ) -> std::result::Result<(), StoreError> {
        self.run("update_job", || self.update_job_once(job, expected_version))
            .await
    }

    async fn delete_job(&self, id: &JobId) -> std::result::Result<bool, StoreError> {
        self.run("delete_job", || self.delete_job_once(id)).await
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> std::result::Result<Page<Job>, StoreError> {
        self.run("list_jobs", || self.list_jobs_once(filter, page))
            .await
    }

    async fn get_execution(
        &self,
        id: &ExecutionId,
    ) -> std::result::Result<Option<Execution>, StoreError> {
        self.run("get_execution", || async move {
            let row = self
                .pools
                .fetch_optional(&self.sql.get_execution, vec![execution_id(id)])
                .await?;
            Ok(row.as_ref().map(execution_from_row).transpose()?)
        })
        .await
    }

    async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> std::result::Result<Page<Execution>, StoreError> {
        self.run("list_executions", || {
            self.list_executions_once(job_id, page)
        })
        .await
    }

    async fn due_jobs(
        &self,
        now: DateTime<Utc>,
        max: usize,
    ) -> std::result::Result<Vec<Job>, StoreError> {
        self.run("due_jobs", || {
            self.read_jobs(
                &self.sql.due_jobs,
                vec![Arg::Int(Some(ms(now))), limit(max)],
            )
        })
        .await
    }

    async fn due_attempts(
        &self,
        now: DateTime<Utc>,
        max: usize,
    ) -> std::result::Result<Vec<Execution>, StoreError> {
        self.run("due_attempts", || {
            self.read_executions(
                &self.sql.due_attempts,
                vec![Arg::Int(Some(ms(now))), limit(max)],
            )
        })
        .await
    }

    async fn next_due_at(&self) -> std::result::Result<Option<DateTime<Utc>>, StoreError> {
        self.run("next_due_at", || async move {
            let row = self
                .pools
                .fetch_optional(&self.sql.next_due_at, vec![])
                .await?;
            let Some(row) = row else { return Ok(None) };
            let earliest = match (row.opt_i64(0)?, row.opt_i64(1)?) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Ok(earliest.and_then(DateTime::from_timestamp_millis))
        })
        .await
    }

    async fn claim_slots(&self, claim: &SlotClaim) -> std::result::Result<bool, StoreError> {
        self.run("claim_slots", || self.claim_slots_once(claim))
            .await
    }

    async fn start_manual(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> std::result::Result<ManualStart, StoreError> {
        self.run("start_manual", || {
            self.start_manual_once(execution, require_idle)
        })
        .await
    }

    async fn claim_attempt(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> std::result::Result<Option<Execution>, StoreError> {
        self.run("claim_attempt", || self.claim_attempt_once(id, lease, now))
            .await
    }

    async fn renew_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> std::result::Result<bool, StoreError> {
        self.run("renew_lease", || {
            self.renew_lease_once(id, owner, expires_at)
        })
        .await
    }

    async fn finish(&self, finish: &Finish) -> std::result::Result<FinishOutcome, StoreError> {
        self.run("finish", || self.finish_once(finish)).await
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        max: usize,
    ) -> std::result::Result<Vec<Execution>, StoreError> {
        self.run("expired_leases", || {
            self.read_executions(
                &self.sql.expired_leases,
                vec![Arg::Int(Some(ms(now))), limit(max)],
            )
        })
        .await
    }

    async fn delete_executions_before(
        &self,
        before: DateTime<Utc>,
        max: usize,
    ) -> std::result::Result<u64, StoreError> {
        self.run("delete_executions_before", || {
            self.delete_executions_before_once(before, max)
        })
        .await
    }

    async fn list_finished(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> std::result::Result<Page<Execution>, StoreError> {
        self.run("list_finished", || self.list_finished_once(from, to, page))
            .await
    }

    async fn executions_before(
        &self,
        before: DateTime<Utc>,
        max: usize,
    ) -> std::result::Result<Vec<Execution>, StoreError> {
        self.run("executions_before", || {
            self.read_executions(
                &self.sql.executions_before,
                vec![Arg::Int(Some(ms(before))), limit(max)],
            )
        })
        .await
    }

    async fn delete_executions(&self, ids: &[ExecutionId]) -> std::result::Result<u64, StoreError> {
        self.run("delete_executions", || self.delete_executions_once(ids))
            .await
    }
}
