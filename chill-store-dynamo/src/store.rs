//! The [`Store`] contract over the single table.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chill_core::store::{
    Cursor, Finish, FinishOutcome, JobFilter, Lease, ManualStart, Page, PageRequest, SlotClaim,
    StatsDelta,
};
use chill_core::{Execution, ExecutionId, ExecutionStatus, Job, JobId, Store, StoreError, Trigger};
use chrono::{DateTime, Utc};

use crate::DynamoStore;
use crate::db::{IndexQuery, Range, Tx};
use crate::error::{service_code, store_error};
use crate::expr::{Expr, Update};
use crate::item::{
    self, Item, attr, check_execution_size, execution_key, expired, fit_execution, index, job_key,
    job_shard, lease_shard, ms, n, s, sortable,
};

/// How often a finish re-reads the job when another write changed its statistics between
/// its read and its write.
const FINISH_ROUNDS: u32 = 64;

/// Apply an execution's end to a job's statistics (the contract's rule, as the in-memory
/// reference store applies it).
fn apply_stats(job: &mut Job, d: &StatsDelta) {
    job.running_count = job.running_count.saturating_sub(1);
    job.last_run_status = Some(d.status);
    job.consecutive_failures = d.consecutive_failures_after(job.consecutive_failures);
    if !d.counted {
        return;
    }
    job.spend.add(d.completed_at, d.cost_micro_usd);
    job.total_runs = job.total_runs.saturating_add(1);
    if d.status == ExecutionStatus::Success {
        job.success_count = job.success_count.saturating_add(1);
    } else {
        job.failure_count = job.failure_count.saturating_add(1);
    }
    job.last_run_duration = Some(d.duration_ms);
    job.last_run_error = d.error.clone();
    job.total_duration_ms = job.total_duration_ms.saturating_add(d.duration_ms);
    job.average_duration = Some(job.total_duration_ms / job.total_runs);
    job.total_input_tokens = job.total_input_tokens.saturating_add(d.input_tokens);
    job.total_output_tokens = job.total_output_tokens.saturating_add(d.output_tokens);
    job.total_tokens = job
        .total_tokens
        .saturating_add(d.input_tokens.saturating_add(d.output_tokens));
    job.total_cost_micro_usd = job.total_cost_micro_usd.saturating_add(d.cost_micro_usd);
}

fn filter_matches(filter: &JobFilter, job: &Job) -> bool {
    (filter.include_deleted || job.deleted_at.is_none())
        && filter.enabled.is_none_or(|e| job.enabled == e)
        && filter.tag.as_ref().is_none_or(|t| job.tags.contains(t))
        && filter
            .name_contains
            .as_ref()
            .is_none_or(|name| job.name.contains(name.as_str()))
        && filter
            .last_status
            .is_none_or(|st| job.last_run_status == Some(st))
}

fn bad_cursor(c: &Cursor) -> StoreError {
    StoreError::InvalidInput {
        field: "cursor".into(),
        message: format!("'{c}' is not a cursor of this listing"),
    }
}

/// An execution cursor is the `created` key of the last item: 16 hex digits, `#`, the id.
fn execution_cursor(c: &Cursor) -> Result<String, StoreError> {
    let (hex, id) = c.as_str().split_once('#').ok_or_else(|| bad_cursor(c))?;
    let ok = hex.len() == 16
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && id.parse::<ExecutionId>().is_ok();
    if ok {
        Ok(c.as_str().to_string())
    } else {
        Err(bad_cursor(c))
    }
}

/// The instant of a `<instant>#<id>` key.
fn cursor_instant(key: &str) -> Option<DateTime<Utc>> {
    let hex = key.get(..16)?;
    let bits = u64::from_str_radix(hex, 16).ok()? ^ (1 << 63);
    DateTime::from_timestamp_millis(bits as i64)
}

fn status(st: ExecutionStatus) -> AttributeValue {
    s(st.as_str())
}

/// The table key (`pk`, `sk`) of an index key.
fn base_key(key: Item) -> Item {
    key.into_iter()
        .filter(|(name, _)| name == attr::PK || name == attr::SK)
        .collect()
}

fn pk_of(key: &Item) -> String {
    key.get(attr::PK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

impl DynamoStore {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn buckets(&self) -> u32 {
        self.options.due_buckets
    }

    /// A job and its `statsRev`, read consistently.
    async fn job_and_rev(&self, id: &JobId, op: &str) -> Result<Option<(Job, u64)>, StoreError> {
        match self.get(job_key(id), op).await? {
            Some(item) => self.codec.job_from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn execution_now(
        &self,
        id: &ExecutionId,
        op: &str,
    ) -> Result<Option<Execution>, StoreError> {
        match self.get(execution_key(id), op).await? {
            Some(item) if !expired(&item, self.now()) => {
                self.codec.execution_from_item(&item).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The base items of index keys, read consistently, in the keys' order; missing and
    /// expired ones left out.
    async fn items_of(&self, keys: Vec<Item>, op: &str) -> Result<Vec<Item>, StoreError> {
        // BatchGetItem refuses duplicate keys.
        let mut seen = HashSet::new();
        let keys: Vec<Item> = keys.into_iter().filter(|k| seen.insert(pk_of(k))).collect();
        let order: Vec<String> = keys.iter().map(pk_of).collect();
        let base: Vec<Item> = keys.into_iter().map(base_key).collect();
        let mut found = self.batch_get(base, op).await?;
        let now = self.now();
        Ok(order
            .iter()
            .filter_map(|pk| found.remove(pk))
            .filter(|item| !expired(item, now))
            .collect())
    }

    /// The earliest `limit` keys of the `due`/`lease` style indexes over every bucket, sorted
    /// by their sort key (numbers).
    async fn earliest(
        &self,
        index: &str,
        hash_attr: &str,
        shard: impl Fn(u32) -> String,
        range: Option<(&str, &str, AttributeValue)>,
        limit: usize,
        op: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut keys = Vec::new();
        for b in 0..self.buckets() {
            let q = IndexQuery {
                index,
                hash_attr,
                hash: shard(b),
                range: range.as_ref().map(|(a, o, v)| Range {
                    attr: a,
                    op: o,
                    value: v.clone(),
                }),
                forward: true,
            };
            keys.extend(self.query(&q, limit, None, op).await?.0);
        }
        let sort_attr = range.as_ref().map_or(attr::DUE_AT, |(a, ..)| *a);
        let number = |k: &Item| -> i64 {
            k.get(sort_attr)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(i64::MAX)
        };
        keys.sort_by_key(|k| number(k));
        keys.truncate(limit);
        Ok(keys)
    }

    /// A job's claim, start or finish adds `count` runs: `lastRunStatus`, `lastRunAt`.
    fn mark_started(u: &mut Update, x: &mut Expr, at: DateTime<Utc>) {
        u.set(x, attr::LAST_RUN_STATUS, status(ExecutionStatus::Running))
            .set(x, attr::LAST_RUN_AT, ms(at));
    }

    /// The update that starts a pending execution under a lease.
    fn start_update(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
        x: &mut Expr,
    ) -> String {
        let mut u = Update::default();
        u.set(x, attr::STATUS, status(ExecutionStatus::Running))
            .set(x, attr::STARTED_AT, ms(now))
            .set(x, attr::LEASE_OWNER, s(lease.owner.clone()))
            .set(x, attr::LEASE_EXPIRES_AT, ms(lease.expires_at))
            .set(x, attr::LEASE_SHARD, s(lease_shard(id, self.buckets())))
            .remove(x, attr::DUE_SHARD)
            .remove(x, attr::DUE_AT);
        u.build()
    }

    async fn delete_all_executions(&self, id: &JobId) -> Result<(), StoreError> {
        // The index may lag behind the table: look again until it shows nothing.
        for _ in 0..100 {
            let q = IndexQuery {
                index: index::BY_JOB,
                hash_attr: attr::JOB_ID,
                hash: id.to_string(),
                range: None,
                forward: true,
            };
            let (keys, _) = self.query(&q, 1000, None, "delete_job").await?;
            if keys.is_empty() {
                return Ok(());
            }
            let keys = keys.into_iter().map(base_key).collect();
            self.batch_delete(keys, "delete_job").await?;
        }
        Err(StoreError::Unavailable(format!(
            "delete_job: executions of job {id} kept appearing"
        )))
    }

    /// Ended executions created before `before`, oldest first, at most `limit`.
    async fn ended_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        op: &str,
    ) -> Result<Vec<Execution>, StoreError> {
        // `<before>#` sorts after every key created earlier and before every key created at
        // `before` or later.
        let cutoff = s(sortable(before, &""));
        let mut keys = Vec::new();
        for b in 0..self.buckets() {
            let q = IndexQuery {
                index: index::ENDED,
                hash_attr: attr::ENDED_SHARD,
                hash: format!("ended#{b}"),
                range: Some(Range {
                    attr: attr::CREATED,
                    op: "<",
                    value: cutoff.clone(),
                }),
                forward: true,
            };
            keys.extend(self.query(&q, limit, None, op).await?.0);
        }
        let created = |k: &Item| {
            k.get(attr::CREATED)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        keys.sort_by_key(|k| created(k));
        keys.truncate(limit);
        let mut out = Vec::new();
        for item in self.items_of(keys, op).await? {
            let e = self.codec.execution_from_item(&item)?;
            if e.status.is_terminal() && e.created_at < before {
                out.push(e);
            }
        }
        out.sort_by_key(|e| (e.created_at, e.id));
        Ok(out)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        let item = self.codec.job_item(job)?;
        let mut x = Expr::default();
        let condition = x.absent(attr::PK);
        let result = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(x.names())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => {
                Err(StoreError::AlreadyExists {
                    what: "job",
                    id: job.id.to_string(),
                })
            }
            Err(e) => Err(store_error("create_job", e)),
        }
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.job_and_rev(id, "get_job").await?.map(|(job, _)| job))
    }

    async fn inactive_jobs(&self, ids: &[JobId]) -> Result<Vec<JobId>, StoreError> {
        let keys = ids.iter().map(job_key).collect();
        let mut active = HashSet::new();
        for item in self.items_of(keys, "inactive_jobs").await? {
            let (job, _) = self.codec.job_from_item(&item)?;
            if job.is_active() {
                active.insert(job.id);
            }
        }
        Ok(ids
            .iter()
            .filter(|id| !active.contains(*id))
            .copied()
            .collect())
    }

    async fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        // Validates the size of the whole item as create_job would.
        self.codec.job_item(job)?;
        let (_, cfg, _) = self.codec.job_parts(job)?;
        let mut x = Expr::default();
        let mut u = Update::default();
        u.set(&mut x, attr::CFG, cfg)
            .set(&mut x, attr::VERSION, n(job.version))
            .set(&mut x, attr::ENABLED, AttributeValue::Bool(job.enabled))
            .set_or_remove(&mut x, attr::NEXT_RUN_AT, job.next_run_at.map(ms))
            .set_or_remove(&mut x, attr::DELETED_AT, job.deleted_at.map(ms));
        match item::job_due_at(job) {
            Some(t) => u
                .set(
                    &mut x,
                    attr::DUE_SHARD,
                    s(job_shard(&job.id, self.buckets())),
                )
                .set(&mut x, attr::DUE_AT, ms(t)),
            None => u
                .remove(&mut x, attr::DUE_SHARD)
                .remove(&mut x, attr::DUE_AT),
        };
        let condition = format!(
            "{} AND {}",
            x.exists(attr::PK),
            x.eq(attr::VERSION, n(expected_version))
        );
        let result = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(job_key(&job.id)))
            .update_expression(u.build())
            .condition_expression(condition)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => {
                match self.job_and_rev(&job.id, "update_job").await? {
                    None => Err(StoreError::NotFound {
                        what: "job",
                        id: job.id.to_string(),
                    }),
                    Some((stored, _)) => Err(StoreError::VersionConflict {
                        id: job.id.to_string(),
                        expected: expected_version,
                        actual: stored.version,
                    }),
                }
            }
            Err(e) => Err(store_error("update_job", e)),
        }
    }

    async fn delete_job(&self, id: &JobId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table())
            .set_key(Some(job_key(id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("delete_job", e))?;
        let existed = out.attributes.is_some_and(|a| !a.is_empty());
        self.delete_all_executions(id).await?;
        Ok(existed)
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let after = match &page.cursor {
            None => None,
            Some(c) => Some(c.as_str().parse::<JobId>().map_err(|_| bad_cursor(c))?),
        };
        let limit = page.max_items();
        let q = IndexQuery {
            index: index::JOBS,
            hash_attr: attr::LIST_SHARD,
            hash: "jobs".into(),
            range: after.map(|id| Range {
                attr: attr::LIST_KEY,
                op: ">",
                value: s(id.to_string()),
            }),
            forward: true,
        };
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (keys, next) = self.query(&q, 100, start, "list_jobs").await?;
            for item in self.items_of(keys, "list_jobs").await? {
                let (job, _) = self.codec.job_from_item(&item)?;
                if filter_matches(filter, &job) {
                    items.push(job);
                }
            }
            if items.len() > limit || next.is_none() {
                break;
            }
            start = next;
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|j| Cursor::new(j.id.to_string()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.execution_now(id, "get_execution").await
    }

    async fn list_executions(
        &self,
        job_id: &JobId,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let before = page.cursor.as_ref().map(execution_cursor).transpose()?;
        let limit = page.max_items();
        let q = IndexQuery {
            index: index::BY_JOB,
            hash_attr: attr::JOB_ID,
            hash: job_id.to_string(),
            range: before.map(|b| Range {
                attr: attr::CREATED,
                op: "<",
                value: s(b),
            }),
            forward: false,
        };
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (keys, next) = self
                .query(
                    &q,
                    limit + 1 - items.len().min(limit),
                    start,
                    "list_executions",
                )
                .await?;
            for item in self.items_of(keys, "list_executions").await? {
                items.push(self.codec.execution_from_item(&item)?);
            }
            if items.len() > limit || next.is_none() {
                break;
            }
            start = next;
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|e| Cursor::new(sortable(e.created_at, &e.id)))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = self
            .earliest(
                index::DUE,
                attr::DUE_SHARD,
                |b| format!("job#{b}"),
                Some((attr::DUE_AT, "<=", ms(now))),
                limit,
                "due_jobs",
            )
            .await?;
        let mut jobs = Vec::new();
        for item in self.items_of(keys, "due_jobs").await? {
            let (job, _) = self.codec.job_from_item(&item)?;
            if item::job_due_at(&job).is_some_and(|t| t <= now) {
                jobs.push(job);
            }
        }
        jobs.sort_by_key(|j| (j.next_run_at, j.id));
        Ok(jobs)
    }

    async fn due_attempts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = self
            .earliest(
                index::DUE,
                attr::DUE_SHARD,
                |b| format!("try#{b}"),
                Some((attr::DUE_AT, "<=", ms(now))),
                limit,
                "due_attempts",
            )
            .await?;
        let mut attempts = Vec::new();
        for item in self.items_of(keys, "due_attempts").await? {
            let e = self.codec.execution_from_item(&item)?;
            if e.status == ExecutionStatus::Pending
                && e.trigger == Trigger::Retry
                && e.due_at <= now
            {
                attempts.push(e);
            }
        }
        attempts.sort_by_key(|e| (e.due_at, e.id));
        Ok(attempts)
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut earliest: Option<i64> = None;
        for b in 0..self.buckets() {
            for shard in [format!("job#{b}"), format!("try#{b}")] {
                let q = IndexQuery {
                    index: index::DUE,
                    hash_attr: attr::DUE_SHARD,
                    hash: shard,
                    range: None,
                    forward: true,
                };
                let (keys, _) = self.query(&q, 1, None, "next_due_at").await?;
                let first = keys
                    .first()
                    .and_then(|k| k.get(attr::DUE_AT))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok());
                if let Some(t) = first {
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
            }
        }
        Ok(earliest.and_then(DateTime::from_timestamp_millis))
    }

    async fn claim_slots(&self, claim: &SlotClaim) -> Result<bool, StoreError> {
        let mut seen = HashSet::new();
        if let Some(dup) = claim.executions.iter().find(|e| !seen.insert(e.id)) {
            return Err(StoreError::InvalidInput {
                field: "executions".into(),
                message: format!("execution {} appears twice in one claim", dup.id),
            });
        }
        let mut x = Expr::default();
        let mut condition = vec![
            x.exists(attr::PK),
            x.eq(attr::VERSION, n(claim.expected_version)),
            x.eq(attr::NEXT_RUN_AT, ms(claim.expected_next_run_at)),
            x.eq(attr::ENABLED, AttributeValue::Bool(true)),
            x.absent(attr::DELETED_AT),
        ];
        if let Some(running) = claim.expected_running {
            condition.push(x.eq(attr::RUNNING_COUNT, n(running)));
        }
        if claim.buffered.is_some() {
            condition.push(x.absent(attr::BUFFERED));
        }
        let mut u = Update::default();
        u.set(&mut x, attr::VERSION, n(claim.expected_version + 1));
        match claim.next_run_at {
            Some(t) => u
                .set(&mut x, attr::NEXT_RUN_AT, ms(t))
                .set(
                    &mut x,
                    attr::DUE_SHARD,
                    s(job_shard(&claim.job_id, self.buckets())),
                )
                .set(&mut x, attr::DUE_AT, ms(t)),
            None => u
                .remove(&mut x, attr::NEXT_RUN_AT)
                .remove(&mut x, attr::DUE_SHARD)
                .remove(&mut x, attr::DUE_AT),
        };
        if claim.started > 0 {
            Self::mark_started(&mut u, &mut x, claim.started_at);
            u.add(&mut x, attr::RUNNING_COUNT, n(claim.started))
                .add(&mut x, attr::STATS_REV, n(1));
        }
        if let Some(b) = claim.buffered {
            u.set(&mut x, attr::BUFFERED, s(b.to_string()));
        }
        let mut items = vec![self.update_item(
            job_key(&claim.job_id),
            u.build(),
            Some(condition.join(" AND ")),
            &x,
        )?];
        for e in &claim.executions {
            let item = self.codec.execution_item(e)?;
            check_execution_size(e, &item)?;
            let mut x = Expr::default();
            let condition = x.absent(attr::PK);
            items.push(self.put_item(item, Some(condition), &x)?);
        }
        match self.transact(items, "claim_slots").await? {
            Tx::Done => Ok(true),
            Tx::Cancelled(codes) => {
                if codes.iter().any(|c| c == crate::db::CONDITION_FAILED) {
                    return Ok(false);
                }
                Err(Tx::other_failure("claim_slots", &codes)
                    .unwrap_or_else(|| StoreError::Backend("claim_slots: cancelled".into())))
            }
        }
    }

    async fn start_manual(
        &self,
        execution: &Execution,
        require_idle: bool,
    ) -> Result<ManualStart, StoreError> {
        let exec_item = self.codec.execution_item(execution)?;
        check_execution_size(execution, &exec_item)?;
        for _ in 0..FINISH_ROUNDS {
            let mut x = Expr::default();
            let mut condition = vec![
                x.exists(attr::PK),
                x.eq(attr::ENABLED, AttributeValue::Bool(true)),
                x.absent(attr::DELETED_AT),
            ];
            if require_idle {
                condition.push(x.eq(attr::RUNNING_COUNT, n(0)));
            }
            let mut u = Update::default();
            Self::mark_started(&mut u, &mut x, execution.started_at);
            u.add(&mut x, attr::RUNNING_COUNT, n(1))
                .add(&mut x, attr::STATS_REV, n(1));
            let job = self.update_item(
                job_key(&execution.job_id),
                u.build(),
                Some(condition.join(" AND ")),
                &x,
            )?;
            let mut x = Expr::default();
            let absent = x.absent(attr::PK);
            let put = self.put_item(exec_item.clone(), Some(absent), &x)?;
            match self.transact(vec![job, put], "start_manual").await? {
                Tx::Done => return Ok(ManualStart::Started),
                Tx::Cancelled(codes) => {
                    if let Some(e) = Tx::other_failure("start_manual", &codes) {
                        return Err(e);
                    }
                    if Tx::lost(&codes, 0) {
                        match self.job_and_rev(&execution.job_id, "start_manual").await? {
                            None => return Ok(ManualStart::NotActive),
                            Some((job, _)) if !job.enabled || job.deleted_at.is_some() => {
                                return Ok(ManualStart::NotActive);
                            }
                            Some((job, _)) if require_idle && job.running_count > 0 => {
                                return Ok(ManualStart::Busy);
                            }
                            // Changed back meanwhile: try again.
                            Some(_) => continue,
                        }
                    }
                    return Err(StoreError::AlreadyExists {
                        what: "execution",
                        id: execution.id.to_string(),
                    });
                }
            }
        }
        Err(StoreError::Unavailable(
            "start_manual: the job kept changing".into(),
        ))
    }

    async fn claim_attempt(
        &self,
        id: &ExecutionId,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>, StoreError> {
        let Some(mut e) = self.execution_now(id, "claim_attempt").await? else {
            return Ok(None);
        };
        if e.status != ExecutionStatus::Pending || e.trigger != Trigger::Retry {
            return Ok(None);
        }
        let mut with_job = true;
        for _ in 0..2 {
            let mut x = Expr::default();
            let condition = format!(
                "{} AND {}",
                x.eq(attr::STATUS, status(ExecutionStatus::Pending)),
                x.eq(attr::TRIGGER, s(Trigger::Retry.as_str()))
            );
            let update = self.start_update(id, lease, now, &mut x);
            let mut items =
                vec![self.update_item(execution_key(id), update, Some(condition), &x)?];
            if with_job {
                let mut x = Expr::default();
                let mut u = Update::default();
                Self::mark_started(&mut u, &mut x, now);
                u.add(&mut x, attr::RUNNING_COUNT, n(1))
                    .add(&mut x, attr::STATS_REV, n(1));
                let condition = x.exists(attr::PK);
                items.push(self.update_item(job_key(&e.job_id), u.build(), Some(condition), &x)?);
            }
            match self.transact(items, "claim_attempt").await? {
                Tx::Done => {
                    e.status = ExecutionStatus::Running;
                    e.started_at = now;
                    e.lease_owner = Some(lease.owner.clone());
                    e.lease_expires_at = Some(lease.expires_at);
                    return Ok(Some(e));
                }
                Tx::Cancelled(codes) => {
                    if let Some(err) = Tx::other_failure("claim_attempt", &codes) {
                        return Err(err);
                    }
                    if Tx::lost(&codes, 0) {
                        return Ok(None);
                    }
                    // The job is gone: claim the attempt alone.
                    with_job = false;
                }
            }
        }
        Ok(None)
    }

    async fn renew_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut x = Expr::default();
        let condition = format!(
            "{} AND {}",
            x.eq(attr::STATUS, status(ExecutionStatus::Running)),
            x.eq(attr::LEASE_OWNER, s(owner))
        );
        let mut u = Update::default();
        u.set(&mut x, attr::LEASE_EXPIRES_AT, ms(expires_at));
        let result = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(execution_key(id)))
            .update_expression(u.build())
            .condition_expression(condition)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(store_error("renew_lease", e)),
        }
    }

    async fn finish(&self, finish: &Finish) -> Result<FinishOutcome, StoreError> {
        let record = &finish.execution;
        let record_item = fit_execution(&self.codec, record)?;
        let next_item = match &finish.next_attempt {
            Some(next) => {
                let item = self.codec.execution_item(next)?;
                check_execution_size(next, &item)?;
                Some(item)
            }
            None => None,
        };
        for round in 0..FINISH_ROUNDS {
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(
                    (2u64 << round.min(6)).min(100),
                ))
                .await;
            }
            let mut items = Vec::new();
            // 0: the record, fenced on the lease.
            let mut x = Expr::default();
            let mut fence = vec![
                x.eq(attr::STATUS, status(ExecutionStatus::Running)),
                x.eq(attr::LEASE_OWNER, s(finish.owner.clone())),
            ];
            if let Some(t) = finish.expired_by {
                let name = x.n(attr::LEASE_EXPIRES_AT);
                let value = x.v(ms(t));
                fence.push(format!("{name} <= {value}"));
            }
            items.push(self.put_item(record_item.clone(), Some(fence.join(" AND ")), &x)?);
            // 1: the next attempt.
            let next_index = next_item.as_ref().map(|_| items.len());
            if let Some(next) = &next_item {
                let mut x = Expr::default();
                let absent = x.absent(attr::PK);
                items.push(self.put_item(next.clone(), Some(absent), &x)?);
            }
            // The job's statistics, conditioned on the revision read; the buffered run.
            let mut promoted = None;
            if let Some((job, rev)) = self.job_and_rev(&record.job_id, "finish").await? {
                let mut after = job.clone();
                apply_stats(&mut after, &finish.stats);
                let mut x = Expr::default();
                let mut u = Update::default();
                if let (Some(lease), Some(buffered)) = (&finish.promote, job.buffered_execution_id)
                {
                    u.remove(&mut x, attr::BUFFERED);
                    if let Some(b) = self.execution_now(&buffered, "finish").await?
                        && b.status == ExecutionStatus::Pending
                    {
                        let now = record.completed_at.unwrap_or(record.started_at);
                        let mut bx = Expr::default();
                        let condition = bx.eq(attr::STATUS, status(ExecutionStatus::Pending));
                        let update = self.start_update(&buffered, lease, now, &mut bx);
                        items.push(self.update_item(
                            execution_key(&buffered),
                            update,
                            Some(condition),
                            &bx,
                        )?);
                        after.running_count = after.running_count.saturating_add(1);
                        after.last_run_status = Some(ExecutionStatus::Running);
                        after.last_run_at = Some(now);
                        let mut b = b;
                        b.status = ExecutionStatus::Running;
                        b.started_at = now;
                        b.lease_owner = Some(lease.owner.clone());
                        b.lease_expires_at = Some(lease.expires_at);
                        promoted = Some(Box::new(b));
                    }
                }
                let (_, _, stats) = self.codec.job_parts(&after)?;
                u.set(&mut x, attr::STATS, stats)
                    .set(&mut x, attr::RUNNING_COUNT, n(after.running_count))
                    .set(&mut x, attr::STATS_REV, n(rev + 1))
                    .set_or_remove(
                        &mut x,
                        attr::LAST_RUN_STATUS,
                        after.last_run_status.map(status),
                    )
                    .set_or_remove(&mut x, attr::LAST_RUN_AT, after.last_run_at.map(ms));
                let condition = x.eq(attr::STATS_REV, n(rev));
                items.push(self.update_item(
                    job_key(&record.job_id),
                    u.build(),
                    Some(condition),
                    &x,
                )?);
            }
            match self.transact(items, "finish").await? {
                Tx::Done => return Ok(FinishOutcome::Finished { promoted }),
                Tx::Cancelled(codes) => {
                    if let Some(e) = Tx::other_failure("finish", &codes) {
                        return Err(e);
                    }
                    if Tx::lost(&codes, 0) {
                        return Ok(FinishOutcome::Fenced);
                    }
                    if let (Some(next), Some(i)) = (&finish.next_attempt, next_index)
                        && Tx::lost(&codes, i)
                    {
                        return Err(StoreError::AlreadyExists {
                            what: "execution",
                            id: next.id.to_string(),
                        });
                    }
                    // The job's statistics (or its buffered run) changed since the read.
                    tracing::debug!(execution_id = %record.id, round, "finish: statistics changed meanwhile; again");
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "finish: the statistics of job {} kept changing",
            record.job_id
        )))
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = self
            .earliest(
                index::LEASE,
                attr::LEASE_SHARD,
                |b| format!("lease#{b}"),
                Some((attr::LEASE_EXPIRES_AT, "<", ms(now))),
                limit,
                "expired_leases",
            )
            .await?;
        let mut out = Vec::new();
        for item in self.items_of(keys, "expired_leases").await? {
            let e = self.codec.execution_from_item(&item)?;
            if e.status == ExecutionStatus::Running && e.lease_expires_at.is_some_and(|t| t < now) {
                out.push(e);
            }
        }
        out.sort_by_key(|e| (e.lease_expires_at, e.id));
        Ok(out)
    }

    async fn delete_executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let ids: Vec<ExecutionId> = self
            .executions_before(before, limit)
            .await?
            .iter()
            .map(|e| e.id)
            .collect();
        self.delete_executions(&ids).await
    }

    async fn list_finished(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let after = page.cursor.as_ref().map(execution_cursor).transpose()?;
        let limit = page.max_items();
        let mut items = Vec::new();
        let mut next_cursor = None;
        if from < to {
            // `<from>#` sorts before every key completed at `from`, `<to>#` after every key
            // completed before `to` and before those completed at `to`.
            let low = sortable(from, &"");
            let low = match &after {
                Some(a) if *a > low => a.clone(),
                _ => low,
            };
            let high = sortable(to, &"");
            let first_hour = cursor_instant(&low).map_or(from, |t| t.max(from));
            let mut hour = first_hour.timestamp().div_euclid(3600);
            let last_hour = (to - chrono::TimeDelta::milliseconds(1))
                .timestamp()
                .div_euclid(3600);
            let mut keys = Vec::new();
            while hour <= last_hour && keys.len() <= limit {
                let q = IndexQuery {
                    index: index::FINISHED,
                    hash_attr: attr::DONE_HOUR,
                    hash: format!("done#{hour}"),
                    range: Some(Range {
                        attr: attr::DONE,
                        op: "BETWEEN",
                        value: s(low.clone()),
                    }),
                    forward: true,
                };
                let mut start = None;
                loop {
                    let (found, next) = self
                        .query_between(&q, &high, limit + 1, start, "list_finished")
                        .await?;
                    keys.extend(found.into_iter().filter(|k| {
                        k.get(attr::DONE).and_then(|v| v.as_s().ok()) != after.as_ref()
                    }));
                    if next.is_none() || keys.len() > limit {
                        break;
                    }
                    start = next;
                }
                hour += 1;
            }
            for item in self.items_of(keys, "list_finished").await? {
                let e = self.codec.execution_from_item(&item)?;
                if e.completed_at.is_some_and(|t| from <= t && t < to) {
                    items.push(e);
                }
            }
            if items.len() > limit {
                items.truncate(limit);
                next_cursor = items.last().and_then(|e| {
                    e.completed_at
                        .map(|done| Cursor::new(sortable(done, &e.id)))
                });
            }
        }
        Ok(Page { items, next_cursor })
    }

    async fn executions_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.ended_before(before, limit, "executions_before").await
    }

    async fn delete_executions(&self, ids: &[ExecutionId]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for id in ids {
            let mut x = Expr::default();
            let condition = format!(
                "{} AND NOT ({} IN ({}, {}))",
                x.exists(attr::PK),
                x.n(attr::STATUS),
                x.v(status(ExecutionStatus::Pending)),
                x.v(status(ExecutionStatus::Running))
            );
            let result = self
                .client
                .delete_item()
                .table_name(self.table())
                .set_key(Some(execution_key(id)))
                .condition_expression(condition)
                .set_expression_attribute_names(x.names())
                .set_expression_attribute_values(x.values())
                .send()
                .await;
            match result {
                Ok(_) => deleted += 1,
                // Missing, or not ended: left as it is.
                Err(err) if service_code(&err) == Some("ConditionalCheckFailedException") => {}
                Err(err) => return Err(store_error("delete_executions", err)),
            }
        }
        Ok(deleted)
    }
}
