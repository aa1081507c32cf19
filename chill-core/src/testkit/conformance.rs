//! The store conformance suite: every behaviour the [`Store`] contract promises, one plain
//! `async fn` each, that panics with a message naming the behaviour when a store breaks it.
//!
//! Every backend runs all of them, with [`run_all`] on one store and, to pinpoint failures,
//! each on its own. A store may hold other data, and the behaviours may run one after another
//! on the same store: each works in its own corner of it (jobs with fresh ids and a unique tag,
//! its own year of timestamps), never asserts on results it has not filtered to its own ids,
//! and deletes its jobs when it passes. Timestamps have millisecond precision, as stores keep
//! them.
//!
//! Behaviours that race many tasks against one store take an `Arc<dyn Store>` (the tasks are
//! spawned, so they run in parallel on a multi-thread runtime); the others take `&dyn Store`.
//! What legitimately differs between backends is a field of [`Capabilities`]: it changes what
//! a behaviour checks, never whether it checks.
//!
//! ```
//! use std::sync::Arc;
//! use chill_core::MemoryStore;
//! use chill_core::testkit::conformance::{self, Capabilities};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! conformance::run_all(Arc::new(MemoryStore::new()), &Capabilities::default()).await;
//! # });
//! ```

use std::fmt::{Debug, Display};
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, TimeZone, Utc};
use serde_json::json;

use crate::model::{
    Budget, CatchUpPolicy, Execution, ExecutionId, ExecutionResponse, ExecutionStatus, Job, JobId,
    JobSpec, OverlapPolicy, RetryPolicy, Spend, Trigger,
};
use crate::schedule::{Blackout, DstPolicy, RepeatedTime, SkippedTime, Slot};
use crate::store::{
    Cursor, Finish, FinishOutcome, JobFilter, Lease, ManualStart, PageRequest, SlotClaim,
    StatsDelta, Store, StoreError,
};

use ExecutionStatus::{Cancelled, Dead, Failed, Pending, Running, Skipped, Success, Timeout};

/// What may differ between backends. Each field changes what a behaviour checks, never whether
/// it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether text can hold the NUL character (U+0000): job names, prompts, tags, metadata,
    /// execution results. When `false` (PostgreSQL's `text` and `jsonb` cannot hold it, and a
    /// backend may choose not to encode it), every write of such text must fail with
    /// [`StoreError::InvalidInput`] and write nothing; that is what the suite then checks.
    pub nul_in_text: bool,
    /// How many tasks race in the race behaviours (2 at the least are used).
    pub racers: usize,
}

impl Default for Capabilities {
    /// NUL stored like any other character; 16 racers.
    fn default() -> Capabilities {
        Capabilities {
            nul_in_text: true,
            racers: 16,
        }
    }
}

/// One `#[tokio::test]` per behaviour of the [conformance suite](crate::testkit::conformance),
/// each on a fresh store, so that a failure names the behaviour. The tests run on tokio's
/// multi-thread runtime (4 workers) with the default [`Capabilities`](crate::testkit::conformance::Capabilities);
/// the calling crate needs `tokio` (features `macros`, `rt-multi-thread`) among its
/// dev-dependencies.
///
/// The argument is a function `fresh(name: &str, test)` that gives `test` (an
/// `FnOnce(Arc<dyn Store>) -> impl Future<Output = ()>`, cloneable) a store of its own, as many
/// times as the backend has variants, and cleans up afterwards; `name` is the behaviour's.
///
/// ```no_run
/// use std::future::Future;
/// use std::sync::Arc;
/// use chill_core::{MemoryStore, Store};
///
/// async fn fresh<F, Fut>(_name: &str, test: F)
/// where
///     F: FnOnce(Arc<dyn Store>) -> Fut,
///     Fut: Future<Output = ()>,
/// {
///     test(Arc::new(MemoryStore::new())).await
/// }
///
/// chill_core::store_conformance_tests!(fresh);
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:expr) => {
        $crate::store_conformance_tests! { @each $fresh;
            by_ref job_round_trip,
            by_ref job_update,
            by_ref job_delete,
            by_ref inactive_jobs,
            by_ref list_jobs_pagination,
            by_ref list_jobs_filters,
            by_ref list_executions,
            by_ref claim_slots_conditions,
            by_ref claim_slots_effects,
            by_ref start_manual,
            by_ref renew_lease,
            by_ref expired_leases,
            by_ref finish_fencing,
            by_ref finish_effects,
            by_ref retry_attempts,
            by_ref buffer_promotion,
            by_ref due_jobs,
            by_ref next_due_at,
            by_ref retention,
            by_ref retention_batches,
            by_ref list_finished,
            by_ref statistics_tally,
            by_ref spend_and_streak,
            by_arc claim_slots_race,
            by_arc slot_and_manual_race,
            by_arc claim_attempt_race,
            by_arc concurrent_finishes,
        }
    };
    (@each $fresh:expr; $($kind:ident $name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                ($fresh)(
                    stringify!($name),
                    |store: ::std::sync::Arc<dyn $crate::Store>| async move {
                        $crate::store_conformance_tests!(@call $kind $name store);
                    },
                )
                .await;
            }
        )*
    };
    (@call by_ref $name:ident $store:ident) => {
        $crate::testkit::conformance::$name(
            &*$store,
            &$crate::testkit::conformance::Capabilities::default(),
        )
        .await
    };
    (@call by_arc $name:ident $store:ident) => {
        $crate::testkit::conformance::$name(
            $store,
            &$crate::testkit::conformance::Capabilities::default(),
        )
        .await
    };
}

/// Runs every behaviour of the suite on one store, one after another. The store is an `Arc`
/// because the race behaviours spawn tasks that share it.
pub async fn run_all(store: Arc<dyn Store>, caps: &Capabilities) {
    let s: &dyn Store = &*store;
    job_round_trip(s, caps).await;
    job_update(s, caps).await;
    job_delete(s, caps).await;
    inactive_jobs(s, caps).await;
    list_jobs_pagination(s, caps).await;
    list_jobs_filters(s, caps).await;
    list_executions(s, caps).await;
    claim_slots_conditions(s, caps).await;
    claim_slots_effects(s, caps).await;
    start_manual(s, caps).await;
    renew_lease(s, caps).await;
    expired_leases(s, caps).await;
    finish_fencing(s, caps).await;
    finish_effects(s, caps).await;
    retry_attempts(s, caps).await;
    buffer_promotion(s, caps).await;
    due_jobs(s, caps).await;
    next_due_at(s, caps).await;
    retention(s, caps).await;
    retention_batches(s, caps).await;
    list_finished(s, caps).await;
    statistics_tally(s, caps).await;
    spend_and_streak(s, caps).await;
    claim_slots_race(store.clone(), caps).await;
    slot_and_manual_race(store.clone(), caps).await;
    claim_attempt_race(store.clone(), caps).await;
    concurrent_finishes(store, caps).await;
}

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

/// `create_job` then `get_job` returns the job exactly, every field included: hostile text
/// (quotes, SQL, LIKE wildcards, unicode, emoji, control characters, and NUL when
/// [`Capabilities::nul_in_text`]) in the name, prompts, tags, metadata, pause note, blackout
/// reason and audit fields; `None` kept apart from `Some("")`; statistics and engine fields as
/// given. A duplicate id is [`StoreError::AlreadyExists`] (`what` `"job"`, the id) and changes
/// nothing; `get_job` of an id never created is `None`. NUL in each text field on its own:
/// stored exactly, or (without `nul_in_text`) refused with [`StoreError::InvalidInput`] and
/// nothing stored.
pub async fn job_round_trip(store: &dyn Store, caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "job_round_trip", 2031);
    let text = hostile_text(caps.nul_in_text);

    let full = full_job(&sb, &text);
    sb.create(full.clone()).await;
    sb.eq(
        sb.job(&full.id).await,
        full.clone(),
        "get_job returns a job with every field set exactly as created",
    );

    let mut minimal = sb.new_job("minimal");
    minimal.tags = Vec::new();
    minimal.enabled = false;
    minimal.deleted_at = Some(sb.at(2) + ms(1));
    sb.create(minimal.clone()).await;
    sb.eq(
        sb.job(&minimal.id).await,
        minimal,
        "get_job returns a job whose optional fields are all None (and soft-deleted) exactly",
    );

    let mut empty = sb.new_job("empty strings");
    empty.system_prompt = Some(String::new());
    empty.pause_note = Some(String::new());
    empty.created_by = Some(String::new());
    empty.updated_by = Some(String::new());
    empty.last_run_error = Some(String::new());
    empty.metadata = json!({});
    sb.create(empty.clone()).await;
    sb.eq(
        sb.job(&empty.id).await,
        empty,
        "get_job keeps Some(\"\") apart from None",
    );

    let duplicate = Job {
        name: "a second job with the same id".into(),
        version: 99,
        ..full.clone()
    };
    match store.create_job(&duplicate).await {
        Err(StoreError::AlreadyExists { what: "job", id }) if id == full.id.to_string() => {}
        other => sb.fail(format_args!(
            "create_job with a taken id must be AlreadyExists {{ what: \"job\", id: {} }}, got {other:?}",
            full.id
        )),
    }
    sb.eq(
        sb.job(&full.id).await,
        full,
        "a refused duplicate create_job changes nothing",
    );
    sb.eq(
        sb.ok(store.get_job(&JobId::new()).await, "get_job"),
        None,
        "get_job of an id never created",
    );

    for (field, job) in nul_variants(&sb) {
        let id = job.id;
        sb.jobs.push(id);
        let result = store.create_job(&job).await;
        let stored = sb.ok(store.get_job(&id).await, "get_job");
        if caps.nul_in_text {
            sb.ok(result, "create_job with NUL in text");
            sb.eq(
                stored,
                Some(job),
                &format!("NUL in {field} is stored exactly"),
            );
        } else {
            sb.invalid_input(result, &format!("create_job with NUL in {field}"));
            sb.eq(
                stored,
                None,
                &format!("a create_job refused for NUL in {field} stores nothing"),
            );
        }
    }
    sb.cleanup().await;
}

/// `update_job` at the right version writes every configuration field (name, prompts,
/// schedule, tags, metadata, enabled, `nextRunAt`, version, audit fields, `deletedAt`) and
/// keeps the statistics, running count and buffered execution as stored, whatever the passed
/// job says about them. A stale version is [`StoreError::VersionConflict`] with the id, the
/// expected and the actual version, and changes nothing. A missing job is
/// [`StoreError::NotFound`] (`what` `"job"`) and creates nothing.
pub async fn job_update(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "job_update", 2032);
    let mut job = sb.new_job("before the update");
    job.next_run_at = Some(sb.at(60));
    job.last_run_at = Some(sb.at(1) + ms(11));
    job.last_run_status = Some(Failed);
    job.last_run_duration = Some(321);
    job.last_run_error = Some("it broke".into());
    job.total_runs = 3;
    job.success_count = 2;
    job.failure_count = 1;
    job.average_duration = Some(107);
    job.total_duration_ms = 321;
    job.total_input_tokens = 30;
    job.total_output_tokens = 60;
    job.total_tokens = 90;
    job.total_cost_micro_usd = 1234;
    job.consecutive_failures = 1;
    job.spend = Spend {
        day: 20320101,
        day_micro_usd: 1234,
        month: 203201,
        month_micro_usd: 1234,
    };
    job.budget = Some(Budget::per_day_usd(1.5));
    job.pause_after_failures = Some(4);
    job.running_count = 1;
    job.buffered_execution_id = Some(ExecutionId::new_manual());
    let old = sb.create(job).await;

    let mut new = old.clone();
    new.name = "after the update: 'quoted' 🤖".into();
    new.prompt = "a new prompt; DROP TABLE jobs; --".into();
    new.system_prompt = None;
    new.schedule = "*/5 * * * *".into();
    new.timezone = "Asia/Kolkata".into();
    new.enabled = false;
    new.max_turns = 3;
    new.timeout = 99;
    new.retry_policy.max_retries = 0;
    new.tags = vec![sb.tag.clone(), "second tag".into()];
    new.metadata = json!({"version": 2, "note": "changed"});
    new.start_date = Some(sb.at(10));
    new.overlap_policy = OverlapPolicy::Skip;
    new.catch_up_policy = CatchUpPolicy::RunOnce;
    new.jitter = 5;
    new.pause_note = Some("paused for 'reasons'".into());
    new.budget = Some(Budget {
        daily_micro_usd: None,
        monthly_micro_usd: Some(99_000_000),
    });
    new.max_concurrency = Some(3);
    new.pause_after_failures = None;
    new.next_run_at = None;
    new.updated_at = sb.at(5) + ms(5);
    new.updated_by = Some("editor".into());
    new.version = old.version + 1;
    // Engine fields the update must not write.
    new.last_run_at = Some(sb.at(500));
    new.last_run_status = Some(Success);
    new.last_run_duration = Some(1);
    new.last_run_error = None;
    new.total_runs = 100;
    new.success_count = 100;
    new.failure_count = 0;
    new.average_duration = Some(1);
    new.total_duration_ms = 100;
    new.total_input_tokens = 1;
    new.total_output_tokens = 2;
    new.total_tokens = 3;
    new.total_cost_micro_usd = 4;
    new.consecutive_failures = 0;
    new.spend = Spend::default();
    new.running_count = 7;
    new.buffered_execution_id = None;
    sb.ok(store.update_job(&new, old.version).await, "update_job");
    let expected = Job {
        last_run_at: old.last_run_at,
        last_run_status: old.last_run_status,
        last_run_duration: old.last_run_duration,
        last_run_error: old.last_run_error.clone(),
        total_runs: old.total_runs,
        success_count: old.success_count,
        failure_count: old.failure_count,
        average_duration: old.average_duration,
        total_duration_ms: old.total_duration_ms,
        total_input_tokens: old.total_input_tokens,
        total_output_tokens: old.total_output_tokens,
        total_tokens: old.total_tokens,
        total_cost_micro_usd: old.total_cost_micro_usd,
        consecutive_failures: old.consecutive_failures,
        spend: old.spend,
        running_count: old.running_count,
        buffered_execution_id: old.buffered_execution_id,
        ..new.clone()
    };
    sb.eq(
        sb.job(&old.id).await,
        expected.clone(),
        "update_job writes the configuration and keeps the statistics, running count and buffered id",
    );

    let stale = Job {
        name: "a stale write".into(),
        version: old.version + 1,
        ..old.clone()
    };
    match store.update_job(&stale, old.version).await {
        Err(StoreError::VersionConflict {
            id,
            expected: e,
            actual: a,
        }) if id == old.id.to_string() && e == old.version && a == expected.version => {}
        other => sb.fail(format_args!(
            "update_job at stale version {} (stored {}) must be VersionConflict with both, got {other:?}",
            old.version, expected.version
        )),
    }
    sb.eq(
        sb.job(&old.id).await,
        expected.clone(),
        "a stale update_job changes nothing",
    );

    let deleted = Job {
        deleted_at: Some(sb.at(20) + ms(20)),
        version: expected.version + 1,
        ..expected.clone()
    };
    sb.ok(
        store.update_job(&deleted, expected.version).await,
        "update_job",
    );
    sb.eq(
        sb.job(&old.id).await,
        deleted.clone(),
        "update_job writes deletedAt (soft delete) and get_job still returns the job",
    );
    let restored = Job {
        deleted_at: None,
        enabled: true,
        next_run_at: Some(sb.at(120)),
        version: deleted.version + 1,
        ..deleted.clone()
    };
    sb.ok(
        store.update_job(&restored, deleted.version).await,
        "update_job",
    );
    sb.eq(
        sb.job(&old.id).await,
        restored,
        "update_job clears deletedAt and sets nextRunAt",
    );

    let ghost = sb.new_job("never created");
    sb.jobs.push(ghost.id);
    match store.update_job(&ghost, ghost.version).await {
        Err(StoreError::NotFound { what: "job", id }) if id == ghost.id.to_string() => {}
        other => sb.fail(format_args!(
            "update_job of a missing job must be NotFound {{ what: \"job\", id: {} }}, got {other:?}",
            ghost.id
        )),
    }
    sb.eq(
        sb.ok(store.get_job(&ghost.id).await, "get_job"),
        None,
        "update_job of a missing job creates nothing",
    );
    sb.cleanup().await;
}

/// `delete_job` removes the job and every execution of it (running, ended, pending retry,
/// buffered): `get_job` and `get_execution` return `None`, `list_executions` is empty, and none
/// of them shows in `due_jobs`, `due_attempts` or `expired_leases`. Another job and its
/// executions are untouched. It returns `true`, then `false` the second time and for an id
/// never created; a soft-deleted job is deleted too.
pub async fn job_delete(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "job_delete", 2033);
    let doomed = sb.create_due("doomed", sb.at(60)).await;
    let other = sb.create_due("bystander", sb.at(60)).await;

    let now = sb.at(61);
    let (doomed, first) = sb.start_run(&doomed, "owner-a", now, sb.at(65)).await;
    let skipped = skipped_slot(&doomed, sb.at(0), now);
    let (doomed, second) = sb.start_run(&doomed, "owner-a", now, sb.at(65)).await;
    let buffered = pending_slot(&doomed, doomed.next_run_at.unwrap_or(now), now);
    let claim = SlotClaim {
        buffered: Some(buffered.id),
        ..claim_of(&doomed, vec![skipped.clone(), buffered.clone()], None, now)
    };
    sb.must_claim(&claim, "claim a skipped record and a buffered run")
        .await;
    let attempt = sb.fail_with_retry(&first, sb.at(62), now).await;
    sb.start_run(&other, "owner-b", now, sb.at(65)).await;
    let bystander = sb.snapshot(&other.id).await;

    sb.eq(
        sb.ok(store.delete_job(&doomed.id).await, "delete_job"),
        true,
        "delete_job of an existing job returns true",
    );
    sb.eq(
        sb.ok(store.get_job(&doomed.id).await, "get_job"),
        None,
        "get_job after delete_job",
    );
    for e in [&first, &second, &skipped, &buffered, &attempt] {
        sb.absent(
            &e.id,
            "every execution of a deleted job is deleted (get_execution)",
        )
        .await;
    }
    let page = sb.ok(
        store
            .list_executions(&doomed.id, &PageRequest::first(100))
            .await,
        "list_executions",
    );
    sb.eq(
        (page.items.len(), page.next_cursor),
        (0, None),
        "list_executions of a deleted job is one empty page",
    );
    let late = sb.at(100_000);
    let due = sb.ok(store.due_jobs(late, 10_000).await, "due_jobs");
    sb.check(
        due.iter().all(|j| j.id != doomed.id),
        "due_jobs does not return a deleted job",
    );
    let attempts = sb.ok(store.due_attempts(late, 10_000).await, "due_attempts");
    sb.check(
        attempts.iter().all(|e| e.job_id != doomed.id),
        "due_attempts does not return a deleted job's retry attempt",
    );
    let leases = sb.ok(store.expired_leases(late, 10_000).await, "expired_leases");
    sb.check(
        leases.iter().all(|e| e.job_id != doomed.id),
        "expired_leases does not return a deleted job's running execution",
    );
    sb.unchanged(
        &bystander,
        "delete_job leaves other jobs and their executions alone",
    )
    .await;

    sb.eq(
        sb.ok(store.delete_job(&doomed.id).await, "delete_job"),
        false,
        "delete_job of a job already deleted returns false",
    );
    sb.eq(
        sb.ok(store.delete_job(&JobId::new()).await, "delete_job"),
        false,
        "delete_job of an id never created returns false",
    );
    let mut soft = sb.new_job("soft-deleted");
    soft.deleted_at = Some(sb.at(3));
    let soft = sb.create(soft).await;
    sb.eq(
        sb.ok(store.delete_job(&soft.id).await, "delete_job"),
        true,
        "delete_job of a soft-deleted job returns true",
    );
    sb.eq(
        sb.ok(store.get_job(&soft.id).await, "get_job"),
        None,
        "get_job after delete_job of a soft-deleted job",
    );
    sb.cleanup().await;
}

/// `inactive_jobs` names exactly those of the ids asked whose job is disabled, soft-deleted,
/// hard-deleted or was never created, also when an active id is asked twice and when the ids
/// are more than one query or batch of a backend holds (1,500 ids, most of them unknown); none
/// for no ids. It changes nothing.
pub async fn inactive_jobs(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "inactive_jobs", 2052);
    let active = sb.create(sb.new_job("active")).await;
    let mut disabled = sb.new_job("disabled");
    disabled.enabled = false;
    let disabled = sb.create(disabled).await;
    let mut soft = sb.new_job("soft-deleted");
    soft.deleted_at = Some(sb.at(1));
    let soft = sb.create(soft).await;
    let hard = sb.create(sb.new_job("hard-deleted")).await;
    sb.ok(store.delete_job(&hard.id).await, "delete_job");
    let before = sb.snapshot(&active.id).await;

    let unknown: Vec<JobId> = (0..1_495).map(|_| JobId::new()).collect();
    let mut ids = vec![active.id, disabled.id, soft.id, hard.id];
    ids.extend(&unknown[..700]);
    ids.push(active.id);
    ids.extend(&unknown[700..]);
    let mut expected: Vec<JobId> = vec![disabled.id, soft.id, hard.id];
    expected.extend(&unknown);
    expected.sort();
    let mut inactive = sb.ok(store.inactive_jobs(&ids).await, "inactive_jobs");
    inactive.sort();
    sb.check(
        inactive == expected,
        &format!(
            "inactive_jobs of 1,500 ids names the disabled, deleted and unknown jobs only ({} named, {} expected)",
            inactive.len(),
            expected.len()
        ),
    );
    sb.eq(
        sb.ok(store.inactive_jobs(&[active.id]).await, "inactive_jobs"),
        vec![],
        "inactive_jobs of one active job",
    );
    sb.eq(
        sb.ok(store.inactive_jobs(&[disabled.id]).await, "inactive_jobs"),
        vec![disabled.id],
        "inactive_jobs of one disabled job",
    );
    sb.eq(
        sb.ok(store.inactive_jobs(&[]).await, "inactive_jobs"),
        vec![],
        "inactive_jobs of no ids",
    );
    sb.eq(
        sb.snapshot(&active.id).await,
        before,
        "inactive_jobs changes nothing",
    );
    sb.cleanup().await;
}

/// `list_jobs` pages: 25 jobs in pages of 10 are 10, 10 and 5 jobs, in id order (the jobs are
/// created in the reverse order, with `createdAt` reversed too: the order is the id's), with no
/// duplicates, a cursor after each page but the last and none after the last (also when the
/// last page is exactly full). A limit of 0 is served as 1 and a limit above
/// [`PageRequest::MAX_LIMIT`] as the maximum (all 25). A cursor the store did not make is
/// [`StoreError::InvalidInput`] on field `cursor`, not a panic.
pub async fn list_jobs_pagination(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "list_jobs_pagination", 2034);
    let mut ids: Vec<JobId> = (0..25).map(|_| JobId::new()).collect();
    ids.sort();
    for (i, id) in ids.iter().enumerate().rev() {
        let mut job = sb.new_job(&format!("page job {i}"));
        job.id = *id;
        job.created_at = sb.at(100 - i as i64);
        job.updated_at = job.created_at;
        sb.create(job).await;
    }
    let filter = sb.own_jobs();

    let mut seen = Vec::new();
    let mut cursor = None;
    for (page_no, expected_len) in [10, 10, 5].into_iter().enumerate() {
        let request = PageRequest {
            limit: 10,
            cursor: cursor.take(),
        };
        let page = sb.ok(store.list_jobs(&filter, &request).await, "list_jobs");
        sb.eq(
            page.items.len(),
            expected_len,
            &format!("25 jobs in pages of 10: the length of page {}", page_no + 1),
        );
        seen.extend(page.items.iter().map(|j| j.id));
        if page_no < 2 {
            sb.check(
                page.next_cursor.is_some(),
                &format!("page {} of 3 has a next cursor", page_no + 1),
            );
        } else {
            sb.eq(
                page.next_cursor.clone(),
                None,
                "the last page has no cursor",
            );
        }
        cursor = page.next_cursor;
    }
    sb.eq(
        seen,
        ids.clone(),
        "the pages together list every job once, in id order",
    );

    let whole = sb.ok(
        store.list_jobs(&filter, &PageRequest::first(25)).await,
        "list_jobs",
    );
    sb.eq(
        (whole.items.len(), whole.next_cursor),
        (25, None),
        "a page exactly as long as what is left has no cursor",
    );
    let zero = PageRequest {
        limit: 0,
        cursor: None,
    };
    let one = sb.ok(store.list_jobs(&filter, &zero).await, "list_jobs");
    sb.eq(
        one.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[0]],
        "limit 0 is served as limit 1",
    );
    sb.check(
        one.next_cursor.is_some(),
        "limit 0 (served as 1) of 25 jobs has a next cursor",
    );
    let huge = PageRequest {
        limit: u32::MAX,
        cursor: None,
    };
    let all = sb.ok(store.list_jobs(&filter, &huge).await, "list_jobs");
    sb.eq(
        (all.items.len(), all.next_cursor),
        (25, None),
        "a limit above MAX_LIMIT is clamped, not refused",
    );

    let bogus = PageRequest::after(10, Cursor::new("not a cursor'; DROP TABLE jobs; --"));
    sb.invalid_cursor(
        store.list_jobs(&filter, &bogus).await.map(drop),
        "list_jobs",
    );
    sb.cleanup().await;
}

/// `list_jobs` filters, each alone and combined, always within this behaviour's tag: `enabled`;
/// `tag` as an exact match (not case-insensitive, not padded, `%` and `'` literal);
/// `name_contains` byte for byte (case-sensitive, accent-sensitive, composed and decomposed
/// forms apart, `%` and `_` literal, SQL in the text, emoji, NUL with
/// [`Capabilities::nul_in_text`], the empty text matching all); `last_status`; and soft-deleted
/// jobs left out unless `include_deleted`. Results are read in pages of 2.
pub async fn list_jobs_filters(store: &dyn Store, caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "list_jobs_filters", 2035);
    let tag = sb.tag.clone();
    let second_tag = format!("{tag}-2");
    let nul = if caps.nul_in_text { " \0" } else { "" };

    let a = sb
        .create(sb.new_job("Report 50%_off '; DROP TABLE jobs; --"))
        .await;
    let b = sb.create(sb.new_job("report 50 percent off")).await;
    let mut c = sb.new_job(&format!("R\u{e9}sum\u{e9} 🤖 na\u{ef}ve{nul}"));
    c.enabled = false;
    let c = sb.create(c).await;
    let mut d = sb.new_job("Report (deleted)");
    d.enabled = false;
    d.deleted_at = Some(sb.at(1));
    let d = sb.create(d).await;
    let mut e = sb.new_job("Re\u{301}sume\u{301} failed");
    e.last_run_status = Some(Failed);
    e.tags.push(second_tag.clone());
    let e = sb.create(e).await;
    let mut f = sb.new_job("outsider");
    f.tags = vec![
        format!("{tag} "),
        tag.to_uppercase(),
        format!("{tag}%"),
        format!("{tag}'; --"),
    ];
    let f = sb.create(f).await;

    let ids = |jobs: &[&Job]| {
        let mut ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        ids.sort();
        ids
    };
    let mine = |f: JobFilter| JobFilter {
        tag: Some(tag.clone()),
        ..f
    };
    let named = |text: &str| {
        mine(JobFilter {
            name_contains: Some(text.to_string()),
            ..JobFilter::default()
        })
    };
    let mut cases: Vec<(&str, JobFilter, Vec<JobId>)> = vec![
        (
            "tag only: soft-deleted jobs are left out",
            mine(JobFilter::default()),
            ids(&[&a, &b, &c, &e]),
        ),
        (
            "include_deleted",
            mine(JobFilter {
                include_deleted: true,
                ..JobFilter::default()
            }),
            ids(&[&a, &b, &c, &d, &e]),
        ),
        (
            "enabled: true",
            mine(JobFilter {
                enabled: Some(true),
                ..JobFilter::default()
            }),
            ids(&[&a, &b, &e]),
        ),
        (
            "enabled: false",
            mine(JobFilter {
                enabled: Some(false),
                ..JobFilter::default()
            }),
            ids(&[&c]),
        ),
        (
            "enabled: false with include_deleted",
            mine(JobFilter {
                enabled: Some(false),
                include_deleted: true,
                ..JobFilter::default()
            }),
            ids(&[&c, &d]),
        ),
        ("name_contains with % and _", named("50%_off"), ids(&[&a])),
        ("name_contains \"_\" is literal", named("_"), ids(&[&a])),
        ("name_contains \"%\" is literal", named("%"), ids(&[&a])),
        (
            "name_contains with SQL",
            named("'; DROP TABLE jobs; --"),
            ids(&[&a]),
        ),
        (
            "name_contains is case-sensitive",
            named("Report"),
            ids(&[&a]),
        ),
        ("name_contains lower case", named("report"), ids(&[&b])),
        (
            "name_contains with include_deleted",
            JobFilter {
                include_deleted: true,
                ..named("Report")
            },
            ids(&[&a, &d]),
        ),
        (
            "name_contains a composed é matches only the composed form",
            named("\u{e9}"),
            ids(&[&c]),
        ),
        (
            "name_contains a decomposed é matches only the decomposed form",
            named("e\u{301}"),
            ids(&[&e]),
        ),
        ("name_contains an emoji", named("🤖"), ids(&[&c])),
        (
            "name_contains the empty text matches every name",
            named(""),
            ids(&[&a, &b, &c, &e]),
        ),
        (
            "name_contains matching nothing",
            named("no such name"),
            vec![],
        ),
        (
            "last_status: failed",
            mine(JobFilter {
                last_status: Some(Failed),
                ..JobFilter::default()
            }),
            ids(&[&e]),
        ),
        (
            "last_status: success",
            mine(JobFilter {
                last_status: Some(Success),
                ..JobFilter::default()
            }),
            vec![],
        ),
        (
            "all filters combined",
            mine(JobFilter {
                enabled: Some(true),
                last_status: Some(Failed),
                name_contains: Some("sume".into()),
                include_deleted: false,
                tag: None,
            }),
            ids(&[&e]),
        ),
        (
            "a second tag",
            JobFilter {
                tag: Some(second_tag),
                ..JobFilter::default()
            },
            ids(&[&e]),
        ),
    ];
    if caps.nul_in_text {
        cases.push(("name_contains NUL", named("\0"), ids(&[&c])));
    }
    for variant in &f.tags {
        cases.push((
            "tag matches exactly: no case folding, padding or wildcards",
            JobFilter {
                tag: Some(variant.clone()),
                ..JobFilter::default()
            },
            ids(&[&f]),
        ));
    }
    for (what, filter, expected) in cases {
        let found: Vec<JobId> = sb.list_all(&filter, 2).await.iter().map(|j| j.id).collect();
        sb.eq(
            found,
            expected,
            &format!("list_jobs filter {what} ({filter:?})"),
        );
    }
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Executions
// ---------------------------------------------------------------------------------------------

/// `list_executions` lists one job's executions, newest first: by `createdAt` descending, and
/// for equal `createdAt` by id descending (the reverse of the ascending (`createdAt`, id)
/// order). 12 executions (inserted out of order, with ties) in pages of 5 are 5, 5 and 2, with
/// a cursor after each page but the last; another job's executions, interleaved in time, never
/// show. A job without executions, or unknown, has one empty page. A cursor the store did not
/// make is [`StoreError::InvalidInput`] on field `cursor`.
pub async fn list_executions(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "list_executions", 2036);
    let job = sb.create_due("listed", sb.at(10_000)).await;
    let other = sb.create_due("interleaved", sb.at(10_000)).await;
    let created = [5, 1, 9, 3, 3, 7, 11, 0, 3, 8, 2, 6];
    let records: Vec<Execution> = created
        .iter()
        .enumerate()
        .map(|(i, minute)| {
            let mut e = ended_slot(&job, sb.at(i as i64 * 60), sb.at(*minute), Success);
            e.created_at = sb.at(*minute) + ms(7);
            e
        })
        .collect();
    let (early, late) = records.split_at(6);
    sb.insert(&job, late.to_vec()).await;
    sb.insert(&job, early.to_vec()).await;
    let noise: Vec<Execution> = (0..4)
        .map(|i| ended_slot(&other, sb.at(i * 60), sb.at(i * 3), Failed))
        .collect();
    sb.insert(&other, noise).await;

    let mut expected = records.clone();
    expected.sort_by_key(|e| std::cmp::Reverse((e.created_at, e.id)));
    let mut listed = Vec::new();
    let mut cursor = None;
    for (page_no, expected_len) in [5, 5, 2].into_iter().enumerate() {
        let request = PageRequest {
            limit: 5,
            cursor: cursor.take(),
        };
        let page = sb.ok(
            store.list_executions(&job.id, &request).await,
            "list_executions",
        );
        sb.eq(
            page.items.len(),
            expected_len,
            &format!(
                "12 executions in pages of 5: the length of page {}",
                page_no + 1
            ),
        );
        sb.eq(
            page.next_cursor.is_some(),
            page_no < 2,
            &format!(
                "page {} of 3 has a next cursor unless it is the last",
                page_no + 1
            ),
        );
        listed.extend(page.items);
        cursor = page.next_cursor;
    }
    sb.eq(
        listed,
        expected,
        "list_executions pages list the job's executions newest first (createdAt desc, then id desc), each exactly as stored",
    );

    for id in [
        JobId::new(),
        sb.create(sb.new_job("no executions")).await.id,
    ] {
        let page = sb.ok(
            store.list_executions(&id, &PageRequest::first(5)).await,
            "list_executions",
        );
        sb.eq(
            (page.items.len(), page.next_cursor),
            (0, None),
            "list_executions of a job without executions is one empty page",
        );
    }
    let bogus = PageRequest::after(5, Cursor::new("1970:not-an-id"));
    sb.invalid_cursor(
        store.list_executions(&job.id, &bogus).await.map(drop),
        "list_executions",
    );
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

/// `claim_slots` returns `false` and changes nothing (the job and its executions as they were,
/// none of the claim's executions created) when any one condition fails: a stale version; a
/// stale `nextRunAt`; the job paused (with its `nextRunAt` left as claimed); the job
/// soft-deleted; `expected_running` not the running count; one of the executions already
/// existing; `buffered` while the job already has a buffered execution; no such job. With every
/// condition met, the same claim then succeeds.
pub async fn claim_slots_conditions(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "claim_slots_conditions", 2037);
    let mut job = sb.create_due("conditional", sb.at(60)).await;
    let now = sb.at(61);
    let owner = lease("owner-a", sb.at(70));
    let valid = |job: &Job| SlotClaim {
        expected_running: Some(job.running_count),
        ..claim_of(
            job,
            vec![running_slot(job, sb.at(60), now, &owner)],
            Some(sb.at(120)),
            now,
        )
    };

    let refusals = [
        (
            "a stale version",
            SlotClaim {
                expected_version: job.version + 1,
                ..valid(&job)
            },
        ),
        (
            "a stale nextRunAt",
            SlotClaim {
                expected_next_run_at: sb.at(59),
                ..valid(&job)
            },
        ),
        (
            "expected_running other than the running count",
            SlotClaim {
                expected_running: Some(job.running_count + 1),
                ..valid(&job)
            },
        ),
        (
            "no such job",
            SlotClaim {
                job_id: JobId::new(),
                ..valid(&job)
            },
        ),
    ];
    for (what, claim) in refusals {
        sb.refused(&claim, &job.id, what).await;
    }

    for (what, enabled, deleted) in [
        ("a paused job", false, None),
        ("a soft-deleted job", true, Some(sb.at(1))),
    ] {
        let changed = Job {
            enabled,
            deleted_at: deleted,
            version: job.version + 1,
            ..job.clone()
        };
        sb.ok(store.update_job(&changed, job.version).await, "update_job");
        sb.refused(&valid(&changed), &job.id, what).await;
        let back = Job {
            enabled: true,
            deleted_at: None,
            version: changed.version + 1,
            ..changed
        };
        sb.ok(store.update_job(&back, changed.version).await, "update_job");
        job = sb.job(&job.id).await;
    }

    // An execution that exists already: record the slot as skipped first.
    let skipped = skipped_slot(&job, sb.at(60), now);
    let taken = claim_of(&job, vec![skipped], Some(sb.at(90)), now);
    sb.must_claim(&taken, "claim a skipped record").await;
    job = sb.job(&job.id).await;
    let fresh = running_slot(&job, sb.at(90), now, &owner);
    let again = pending_slot(&job, sb.at(60), now);
    let duplicate = claim_of(&job, vec![fresh.clone(), again], Some(sb.at(120)), now);
    sb.refused(&duplicate, &job.id, "an execution id that exists already")
        .await;

    // A second buffered execution.
    sb.buffer(&job, sb.at(90), now, Some(sb.at(120))).await;
    job = sb.job(&job.id).await;
    let second = pending_slot(&job, sb.at(120), now);
    let second_buffer = SlotClaim {
        buffered: Some(second.id),
        ..claim_of(&job, vec![second], Some(sb.at(180)), now)
    };
    sb.refused(
        &second_buffer,
        &job.id,
        "buffered while the job has a buffered execution",
    )
    .await;

    let fine = SlotClaim {
        expected_running: Some(job.running_count),
        ..claim_of(
            &job,
            vec![running_slot(&job, sb.at(120), now, &owner)],
            Some(sb.at(180)),
            now,
        )
    };
    sb.must_claim(&fine, "a claim meeting every condition")
        .await;
    sb.cleanup().await;
}

/// What a successful `claim_slots` does: `nextRunAt` becomes the claim's (also `None`), the
/// running count grows by `started`, `lastRunStatus` becomes `running` and `lastRunAt` the
/// claim's `started_at` when `started > 0` (and both stay as they were when it is 0), the
/// buffered id is recorded, every execution (running, skipped, pending) is created exactly as
/// given, the job's version grows by one (so that a configuration update based on the job as
/// read before the claim is refused), and nothing else of the job changes.
pub async fn claim_slots_effects(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "claim_slots_effects", 2038);
    let job = sb.create_due("effects", sb.at(60)).await;
    let now = sb.at(121) + ms(250);
    let owner = lease("owner-a", sb.at(130));
    let runs = vec![
        running_slot(&job, sb.at(60), now, &owner),
        running_slot(&job, sb.at(120), now, &owner),
        skipped_slot(&job, sb.at(0), now),
    ];
    let claim = SlotClaim {
        expected_running: Some(0),
        ..claim_of(&job, runs.clone(), Some(sb.at(180)), now)
    };
    sb.eq(claim.started, 2, "suite: two runs started");
    sb.must_claim(&claim, "claim two runs and a skipped record")
        .await;
    let job = sb
        .expect_job(
            Job {
                next_run_at: Some(sb.at(180)),
                version: job.version + 1,
                ..started_job(&job, 2, now)
            },
            "after claiming two runs: nextRunAt moved, running count 2, lastRunStatus running, lastRunAt the start",
        )
        .await;
    for e in &runs {
        sb.eq(
            sb.execution(&e.id).await,
            e.clone(),
            "claim_slots creates every execution exactly as given",
        );
    }

    let later = sb.at(200);
    let skip_only = claim_of(
        &job,
        vec![skipped_slot(&job, sb.at(180), later)],
        Some(sb.at(240)),
        later,
    );
    sb.must_claim(&skip_only, "claim a skipped record only")
        .await;
    let job = sb
        .expect_job(
            Job {
                next_run_at: Some(sb.at(240)),
                version: job.version + 1,
                ..job
            },
            "a claim that starts nothing moves nextRunAt only (lastRunAt, lastRunStatus and running count stay)",
        )
        .await;

    let buffered = pending_slot(&job, sb.at(240), later);
    let buffer = SlotClaim {
        buffered: Some(buffered.id),
        ..claim_of(&job, vec![buffered.clone()], None, later)
    };
    sb.must_claim(&buffer, "claim a buffered run, with no next run")
        .await;
    sb.expect_job(
        Job {
            next_run_at: None,
            buffered_execution_id: Some(buffered.id),
            version: job.version + 1,
            ..job
        },
        "a buffered claim records the buffered id; nextRunAt None is written",
    )
    .await;
    sb.eq(
        sb.execution(&buffered.id).await,
        buffered,
        "the buffered execution is created pending, as given",
    );
    sb.cleanup().await;
}

/// `start_manual`: on an idle, enabled job it is `Started`, the execution is stored as given,
/// the running count grows by one and `lastRunStatus`/`lastRunAt` become `running` and the
/// execution's `startedAt`. While a run is in progress it is `Busy` with `require_idle` (nothing
/// changes) and `Started` without. A paused, soft-deleted or missing job is `NotActive`
/// (nothing created); a taken execution id is [`StoreError::AlreadyExists`] (`what`
/// `"execution"`) and changes nothing.
pub async fn start_manual(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "start_manual", 2039);
    let job = sb.create(sb.new_job("manual")).await;
    let owner = lease("owner-a", sb.at(30));
    let first = manual_run(&job, sb.at(10) + ms(10), &owner);
    sb.eq(
        sb.ok(store.start_manual(&first, true).await, "start_manual"),
        ManualStart::Started,
        "start_manual on an idle job",
    );
    sb.eq(
        sb.execution(&first.id).await,
        first.clone(),
        "start_manual stores the execution as given",
    );
    let job = sb
        .expect_job(
            started_job(&job, 1, first.started_at),
            "start_manual: running count +1, lastRunStatus running, lastRunAt its start",
        )
        .await;

    let second = manual_run(&job, sb.at(11), &owner);
    let before = sb.snapshot(&job.id).await;
    sb.eq(
        sb.ok(store.start_manual(&second, true).await, "start_manual"),
        ManualStart::Busy,
        "start_manual with require_idle while a run is in progress",
    );
    sb.unchanged(&before, "a Busy start_manual changes nothing")
        .await;
    sb.absent(&second.id, "a Busy start_manual creates nothing")
        .await;
    sb.eq(
        sb.ok(store.start_manual(&second, false).await, "start_manual"),
        ManualStart::Started,
        "start_manual without require_idle while a run is in progress",
    );
    let job = sb
        .expect_job(
            started_job(&job, 1, second.started_at),
            "a second start_manual: running count 2, lastRunAt its start",
        )
        .await;

    let before = sb.snapshot(&job.id).await;
    let mut reused = manual_run(&job, sb.at(12), &owner);
    reused.id = first.id;
    match store.start_manual(&reused, false).await {
        Err(StoreError::AlreadyExists { what: "execution", id }) if id == first.id.to_string() => {}
        other => sb.fail(format_args!(
            "start_manual with a taken execution id must be AlreadyExists {{ what: \"execution\", id: {} }}, got {other:?}",
            first.id
        )),
    }
    sb.unchanged(
        &before,
        "a start_manual refused for a taken id changes nothing",
    )
    .await;

    let mut paused = sb.new_job("paused");
    paused.enabled = false;
    let paused = sb.create(paused).await;
    let mut deleted = sb.new_job("deleted");
    deleted.deleted_at = Some(sb.at(1));
    let deleted = sb.create(deleted).await;
    let mut missing = sb.new_job("missing");
    missing.id = JobId::new();
    for (what, target) in [
        ("a paused job", &paused),
        ("a soft-deleted job", &deleted),
        ("a missing job", &missing),
    ] {
        let before = sb.snapshot(&target.id).await;
        let run = manual_run(target, sb.at(13), &owner);
        sb.eq(
            sb.ok(store.start_manual(&run, false).await, "start_manual"),
            ManualStart::NotActive,
            &format!("start_manual of {what}"),
        );
        sb.unchanged(&before, &format!("start_manual of {what} changes nothing"))
            .await;
        sb.absent(&run.id, &format!("start_manual of {what} creates nothing"))
            .await;
    }
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------------

/// `renew_lease` is `true` for the owner of a running execution and sets its lease expiry
/// (later, or earlier as a release at shutdown does) and nothing else; `false`, changing
/// nothing, for another owner, a pending execution, a finished one, and an unknown id.
pub async fn renew_lease(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "renew_lease", 2040);
    let (job, run) = sb.running_job("leased").await;
    for (what, until) in [
        ("later", sb.at(80) + ms(1)),
        ("earlier", sb.at(61) + ms(500)),
    ] {
        sb.eq(
            sb.renew(&run.id, "owner-a", until).await,
            true,
            &format!("renew_lease by the owner to a {what} time"),
        );
        sb.eq(
            sb.execution(&run.id).await,
            Execution {
                lease_expires_at: Some(until),
                ..run.clone()
            },
            &format!("renew_lease to a {what} time sets leaseExpiresAt and nothing else"),
        );
    }
    let run = sb.execution(&run.id).await;
    let attempt = sb.fail_with_retry(&run, sb.at(63), sb.at(62)).await;
    let (job, live) = sb.start_run(&job, "owner-a", sb.at(62), sb.at(70)).await;
    let before = sb.snapshot(&job.id).await;
    for (what, id, owner) in [
        ("a running execution, by another owner", live.id, "owner-b"),
        ("an unknown execution", ExecutionId::new_manual(), "owner-a"),
        ("a finished execution, by its owner", run.id, "owner-a"),
        ("a pending retry attempt", attempt.id, "owner-a"),
        ("a pending retry attempt, by no owner", attempt.id, ""),
    ] {
        sb.eq(
            sb.renew(&id, owner, sb.at(90)).await,
            false,
            &format!("renew_lease of {what}"),
        );
    }
    sb.unchanged(&before, "a refused renew_lease changes nothing")
        .await;
    sb.cleanup().await;
}

/// `expired_leases(now, limit)` returns the running executions whose lease expired strictly
/// before `now` (an expiry equal to `now` has not expired), earliest expiry first, at most
/// `limit`: not pending or finished ones (even with a lease time in the past), not live ones,
/// and no longer a renewed one. Every returned execution, this behaviour's or not, is running
/// with an expiry before `now`, in order.
pub async fn expired_leases(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "expired_leases", 1974);
    let job = sb.create_due("leases", sb.at(60)).await;
    let start = sb.at(61);
    let now = sb.at(100);
    let expiries = [
        sb.at(90) + ms(3),
        sb.at(80) + ms(1),
        now,
        sb.at(95) + ms(2),
        sb.at(200),
    ];
    let mut job = job;
    let mut runs = Vec::new();
    for (i, until) in expiries.iter().enumerate() {
        let (next, run) = sb
            .start_run(&job, &format!("owner-{i}"), start, *until)
            .await;
        job = next;
        runs.push(run);
    }
    // A finished execution that kept a lease time in the past.
    let (_, done) = sb.start_run(&job, "owner-done", start, sb.at(70)).await;
    let mut record = finish_of(&done, Success, 10);
    record.execution.lease_expires_at = Some(sb.at(70));
    sb.must_finish(&record, "finish").await;

    let expired = |runs: &[Execution]| {
        let mut v: Vec<Execution> = runs
            .iter()
            .filter(|e| e.lease_expires_at.is_some_and(|t| t < now))
            .cloned()
            .collect();
        v.sort_by_key(|e| e.lease_expires_at);
        v
    };
    let own_ids: Vec<ExecutionId> = runs.iter().map(|e| e.id).collect();
    let read = |found: Vec<Execution>| -> Vec<Execution> {
        found
            .into_iter()
            .filter(|e| own_ids.contains(&e.id) || e.id == done.id)
            .collect()
    };
    let found = sb.ok(store.expired_leases(now, 10_000).await, "expired_leases");
    sb.leases_in_order(&found, now);
    sb.eq(
        read(found),
        expired(&runs),
        "expired_leases returns exactly the running executions whose lease expired before now, earliest first",
    );

    let limited = sb.ok(store.expired_leases(now, 2).await, "expired_leases");
    sb.leases_in_order(&limited, now);
    let keys: Vec<DateTime<Utc>> = limited.iter().filter_map(|e| e.lease_expires_at).collect();
    let own: Vec<DateTime<Utc>> = expired(&runs)
        .iter()
        .filter_map(|e| e.lease_expires_at)
        .collect();
    sb.limited_earliest_first(&keys, &own, 2, "expired_leases");

    let renewed = &runs[1];
    sb.eq(
        sb.renew(&renewed.id, "owner-1", sb.at(300)).await,
        true,
        "renew_lease",
    );
    let mut after = runs.clone();
    after[1].lease_expires_at = Some(sb.at(300));
    let found = sb.ok(store.expired_leases(now, 10_000).await, "expired_leases");
    sb.eq(
        read(found),
        expired(&after),
        "a renewed lease is no longer expired",
    );
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Finishing
// ---------------------------------------------------------------------------------------------

/// `finish` is fenced on the lease: by another owner, or for recovery (`expired_by`) before the
/// lease expired (or after the owner renewed it), it is `Fenced` and nothing changes (no
/// statistics, no retry attempt created, no buffered run promoted); a second finish of the same
/// execution, and a finish of an unknown execution, are `Fenced` too. Recovery at or after the
/// expiry holds. On a soft-deleted job the finish is written with its statistics (the job
/// still exists: this is the "job deleted meanwhile" of the contract). After a hard
/// `delete_job` the execution is gone, so the finish is `Fenced` and writes nothing: no
/// execution, no attempt, and the job stays deleted.
pub async fn finish_fencing(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "finish_fencing", 2041);
    let (job, run) = sb.running_job("fenced").await;
    let now = sb.at(61);
    sb.buffer(&job, sb.at(120), now, Some(sb.at(180))).await;

    let done = finish_of(&run, Success, 1_000);
    let with_effects = Finish {
        next_attempt: Some(run.retry(sb.at(80), now)),
        promote: Some(lease("owner-c", sb.at(90))),
        ..done.clone()
    };
    let by_other = Finish {
        owner: "owner-b".into(),
        ..with_effects.clone()
    };
    sb.must_fence(&by_other, &job.id, "finish by another owner")
        .await;
    let too_early = Finish {
        expired_by: Some(sb.at(70) - ms(1)),
        ..with_effects
    };
    sb.must_fence(&too_early, &job.id, "recovery before the lease expired")
        .await;

    sb.must_finish(&done, "finish by the owner").await;
    sb.eq(
        sb.execution(&run.id).await,
        done.execution.clone(),
        "finish replaces the execution",
    );
    sb.must_fence(
        &done,
        &job.id,
        "a second finish of the same execution (counted once)",
    )
    .await;
    let mut ghost = done.clone();
    ghost.execution.id = ExecutionId::new_manual();
    sb.must_fence(&ghost, &job.id, "finish of an unknown execution")
        .await;
    sb.absent(
        &ghost.execution.id,
        "finish of an unknown execution creates nothing",
    )
    .await;

    // Recovery: a renewed lease is kept; an expired one can be taken over.
    let (job, live) = sb.running_job("recovered").await;
    sb.eq(
        sb.renew(&live.id, "owner-a", sb.at(75)).await,
        true,
        "renew_lease",
    );
    let live = sb.execution(&live.id).await;
    let mut recovery = finish_of(&live, Failed, 0);
    recovery.expired_by = Some(sb.at(70));
    sb.must_fence(
        &recovery,
        &job.id,
        "recovery of a lease its owner renewed past expired_by",
    )
    .await;
    recovery.expired_by = Some(sb.at(75));
    sb.must_finish(
        &recovery,
        "recovery with expired_by equal to the lease expiry",
    )
    .await;
    sb.eq(
        sb.execution(&live.id).await,
        recovery.execution.clone(),
        "recovery writes the execution",
    );

    // A soft-deleted job.
    let (job, run) = sb.start_run(&job, "owner-a", now, sb.at(70)).await;
    let deleted = Job {
        deleted_at: Some(sb.at(62)),
        enabled: false,
        version: job.version + 1,
        ..job.clone()
    };
    sb.ok(store.update_job(&deleted, job.version).await, "update_job");
    let done = finish_of(&run, Success, 40);
    sb.must_finish(
        &done,
        "finish of a run whose job was soft-deleted meanwhile",
    )
    .await;
    sb.eq(
        sb.execution(&run.id).await,
        done.execution.clone(),
        "finish writes the execution of a soft-deleted job",
    );
    sb.expect_job(
        tallied(&deleted, std::slice::from_ref(&done.stats)),
        "finish applies the statistics to a soft-deleted job",
    )
    .await;

    // A hard-deleted job.
    let (gone, run) = sb.running_job("hard-deleted").await;
    sb.eq(
        sb.ok(store.delete_job(&gone.id).await, "delete_job"),
        true,
        "delete_job",
    );
    let late = Finish {
        next_attempt: Some(run.retry(sb.at(80), now)),
        ..finish_of(&run, Failed, 40)
    };
    sb.must_fence(
        &late,
        &gone.id,
        "finish of a run whose job (and with it the run) was deleted",
    )
    .await;
    sb.absent(
        &run.id,
        "finish after delete_job does not recreate the execution",
    )
    .await;
    sb.cleanup().await;
}

/// What a `finish` writes: the execution replaced by the final record exactly (hostile text in
/// its result and error included, NUL per [`Capabilities::nul_in_text`]); the job's
/// statistics: `totalRuns`, success and failure counts, `totalDurationMs`, `averageDuration`
/// (`totalDurationMs / totalRuns`, rounded down), `lastRunStatus`, `lastRunDuration`,
/// `lastRunError`, token and cost sums, and the running count down by one; the next retry
/// attempt created exactly as given. An uncounted end (cancelled, `counted: false`) changes
/// only `lastRunStatus` and the running count: not the counts, sums, `lastRunDuration` or
/// `lastRunError`. Nothing else of the job changes (`lastRunAt`, `nextRunAt`, version).
pub async fn finish_effects(store: &dyn Store, caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "finish_effects", 2042);
    let job = sb.create_due("finished", sb.at(60)).await;
    let now = sb.at(61);
    let owner = lease("owner-a", sb.at(70));
    let runs: Vec<Execution> = (0..3)
        .map(|i| running_slot(&job, sb.at(60 + i * 60), now, &owner))
        .collect();
    sb.must_claim(
        &claim_of(&job, runs.clone(), Some(sb.at(240)), now),
        "claim three runs",
    )
    .await;
    let job = sb.job(&job.id).await;

    let mut success = finish_of(&runs[0], Success, 1_234);
    let text = hostile_text(false).join(" | ");
    if let Some(response) = &mut success.execution.response {
        response.result = text.clone();
        response.metadata = json!({ "echo": text.clone() });
    }
    if !caps.nul_in_text {
        let mut with_nul = success.clone();
        if let Some(response) = &mut with_nul.execution.response {
            response.result.push_str(" \0 NUL");
        }
        let before = sb.snapshot(&job.id).await;
        sb.invalid_input(
            store.finish(&with_nul).await.map(drop),
            "finish with NUL in the result",
        );
        sb.unchanged(&before, "a finish refused for NUL changes nothing")
            .await;
    } else if let Some(response) = &mut success.execution.response {
        response.result.push_str(" \0 NUL");
    }
    sb.must_finish(&success, "finish of a success").await;
    sb.eq(
        sb.execution(&runs[0].id).await,
        success.execution.clone(),
        "finish replaces the execution with the final record exactly",
    );
    let job = sb
        .expect_job(
            tallied(&job, std::slice::from_ref(&success.stats)),
            "finish of a success applies its statistics",
        )
        .await;
    sb.eq(
        (
            job.total_runs,
            job.success_count,
            job.failure_count,
            job.total_duration_ms,
            job.average_duration,
            job.last_run_duration,
            job.last_run_status,
            job.running_count,
        ),
        (1, 1, 0, 1_234, Some(1_234), Some(1_234), Some(Success), 2),
        "statistics after one success of 1234 ms",
    );
    sb.eq(
        (
            job.total_input_tokens,
            job.total_output_tokens,
            job.total_tokens,
            job.total_cost_micro_usd,
        ),
        (124, 62, 186, 3_707),
        "token and cost sums after one success",
    );

    let mut failure = finish_of(&runs[1], Failed, 766);
    let attempt = runs[1].retry(sb.at(90) + ms(9), sb.at(62));
    failure.next_attempt = Some(attempt.clone());
    sb.must_finish(&failure, "finish of a failure with a retry attempt")
        .await;
    sb.eq(
        sb.execution(&attempt.id).await,
        attempt,
        "finish creates the next attempt exactly as given",
    );
    let job = sb
        .expect_job(
            tallied(&job, std::slice::from_ref(&failure.stats)),
            "finish of a failure applies its statistics",
        )
        .await;
    sb.eq(
        (
            job.total_runs,
            job.failure_count,
            job.average_duration,
            job.last_run_error.clone(),
        ),
        (2, 1, Some(1_000), failure.stats.error.clone()),
        "statistics after a success of 1234 ms and a failure of 766 ms",
    );

    let cancelled = finish_of(&runs[2], Cancelled, 999);
    sb.must_finish(&cancelled, "finish of a cancelled run")
        .await;
    sb.expect_job(
        Job {
            last_run_status: Some(Cancelled),
            running_count: 0,
            ..job
        },
        "an uncounted (cancelled) finish changes lastRunStatus and the running count only",
    )
    .await;
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Retries and buffered runs
// ---------------------------------------------------------------------------------------------

/// Retry attempts: a pending attempt (trigger `retry`) shows in `due_attempts(now, ..)` once
/// `dueAt <= now` (the boundary included), earliest first, at most `limit`; buffered executions
/// (pending, trigger `scheduled`) never do. Every returned execution is a pending retry due by
/// `now`, in order. `claim_attempt` makes a pending attempt `running` under the lease with
/// `startedAt = now` (and nothing else changed), returns it, and adds one to the job's running
/// count with `lastRunStatus` running and `lastRunAt` now; the attempt then leaves
/// `due_attempts`. `claim_attempt` of a running or finished attempt, of a buffered execution,
/// or of an unknown id is `None` and changes nothing.
pub async fn retry_attempts(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "retry_attempts", 2043);
    let (job, first) = sb.running_job("retried").await;
    let (job, second) = sb.start_run(&job, "owner-a", sb.at(61), sb.at(70)).await;
    let late = sb
        .fail_with_retry(&first, sb.at(100) + ms(5), sb.at(62))
        .await;
    let early = sb
        .fail_with_retry(&second, sb.at(90) + ms(3), sb.at(63))
        .await;
    // A buffered run due long ago.
    let buffered = sb.buffer(&job, sb.at(0), sb.at(64), job.next_run_at).await;

    let own = [early.clone(), late.clone(), buffered.clone()];
    for (what, at, expected) in [
        ("before either attempt is due", sb.at(90) + ms(2), vec![]),
        (
            "exactly when the first is due",
            sb.at(90) + ms(3),
            vec![early.clone()],
        ),
        (
            "after both are due",
            sb.at(500),
            vec![early.clone(), late.clone()],
        ),
    ] {
        let found = sb.ok(store.due_attempts(at, 10_000).await, "due_attempts");
        sb.attempts_in_order(&found, at);
        let mine: Vec<Execution> = found
            .into_iter()
            .filter(|e| own.iter().any(|o| o.id == e.id))
            .collect();
        sb.eq(
            mine,
            expected,
            &format!("due_attempts {what}: the due retry attempts, earliest first, never the buffered run"),
        );
    }
    let limited = sb.ok(store.due_attempts(sb.at(500), 1).await, "due_attempts");
    sb.attempts_in_order(&limited, sb.at(500));
    let keys: Vec<DateTime<Utc>> = limited.iter().map(|e| e.due_at).collect();
    sb.limited_earliest_first(&keys, &[early.due_at, late.due_at], 1, "due_attempts");

    let job = sb.job(&job.id).await;
    let at = sb.at(95) + ms(1);
    let taker = lease("owner-b", sb.at(99));
    let claimed = sb.ok(
        store.claim_attempt(&early.id, &taker, at).await,
        "claim_attempt",
    );
    let expected = Execution {
        status: Running,
        started_at: at,
        lease_owner: Some(taker.owner.clone()),
        lease_expires_at: Some(taker.expires_at),
        ..early.clone()
    };
    sb.eq(
        claimed,
        Some(expected.clone()),
        "claim_attempt returns the attempt running under the lease since now",
    );
    sb.eq(
        sb.execution(&early.id).await,
        expected.clone(),
        "claim_attempt stores the attempt running",
    );
    let job = sb
        .expect_job(
            started_job(&job, 1, at),
            "claim_attempt: running count +1, lastRunStatus running, lastRunAt now",
        )
        .await;
    let found = sb.ok(store.due_attempts(sb.at(500), 10_000).await, "due_attempts");
    sb.check(
        found.iter().all(|e| e.id != early.id),
        "a claimed attempt leaves due_attempts",
    );

    sb.must_finish(&finish_of(&expected, Success, 10), "finish the attempt")
        .await;
    let before = sb.snapshot(&job.id).await;
    for (what, id) in [
        ("a finished attempt", early.id),
        ("a buffered (scheduled) pending execution", buffered.id),
        ("an unknown id", ExecutionId::new_manual()),
    ] {
        sb.eq(
            sb.ok(store.claim_attempt(&id, &taker, at).await, "claim_attempt"),
            None,
            &format!("claim_attempt of {what}"),
        );
    }
    sb.unchanged(&before, "a claim_attempt that returns None changes nothing")
        .await;
    let running = sb.ok(
        store.claim_attempt(&late.id, &taker, at).await,
        "claim_attempt",
    );
    sb.check(running.is_some(), "claim_attempt of the other due attempt");
    let before = sb.snapshot(&job.id).await;
    sb.eq(
        sb.ok(
            store.claim_attempt(&late.id, &taker, at).await,
            "claim_attempt",
        ),
        None,
        "claim_attempt of a running attempt",
    );
    sb.unchanged(
        &before,
        "claim_attempt of a running attempt changes nothing",
    )
    .await;
    sb.cleanup().await;
}

/// Buffer promotion: after a claim with `buffered`, the owner's `finish` with `promote` is
/// `Finished { promoted: Some(e) }` where `e` is the buffered execution, now running under the
/// promote lease with `startedAt` the finish's `completedAt`, and stored so; the job's buffered
/// id is cleared, its running count stays 1, its statistics take the finished run, and its
/// `lastRunStatus`/`lastRunAt` become running and that start. A finish without `promote`
/// leaves the buffered execution and id alone; a finish with `promote` and nothing buffered
/// has `promoted: None`.
pub async fn buffer_promotion(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "buffer_promotion", 2044);
    let mut job = sb.new_job("buffered");
    job.overlap_policy = OverlapPolicy::BufferOne;
    job.next_run_at = Some(sb.at(60));
    let job = sb.create(job).await;
    let now = sb.at(61);
    let (job, run) = sb.start_run(&job, "owner-a", now, sb.at(70)).await;
    let buffered = sb
        .buffer(&job, sb.at(120), sb.at(121), Some(sb.at(180)))
        .await;
    let job = sb.job(&job.id).await;
    sb.eq(
        (job.buffered_execution_id, job.running_count),
        (Some(buffered.id), 1),
        "the buffered claim",
    );

    let mut done = finish_of(&run, Success, 65 * 60_000);
    let next = lease("owner-b", sb.at(200));
    done.promote = Some(next.clone());
    let completed = done.execution.completed_at.unwrap_or(now);
    let promoted = Execution {
        status: Running,
        started_at: completed,
        lease_owner: Some(next.owner.clone()),
        lease_expires_at: Some(next.expires_at),
        ..buffered.clone()
    };
    sb.eq(
        sb.finish(&done).await,
        FinishOutcome::Finished {
            promoted: Some(Box::new(promoted.clone())),
        },
        "finish with promote starts the buffered run under the promote lease at the finish time",
    );
    sb.eq(
        sb.execution(&buffered.id).await,
        promoted.clone(),
        "the promoted run is stored running",
    );
    let job = sb
        .expect_job(
            Job {
                buffered_execution_id: None,
                ..started_job(&tallied(&job, std::slice::from_ref(&done.stats)), 1, completed)
            },
            "after a promotion: buffered id cleared, running count still 1, statistics of the finished run, lastRun* of the promoted one",
        )
        .await;

    // A finish without promote leaves a buffered run waiting.
    let waiting = sb
        .buffer(&job, sb.at(180), sb.at(181), Some(sb.at(240)))
        .await;
    let job = sb.job(&job.id).await;
    let plain = finish_of(&promoted, Failed, 20);
    sb.must_finish(&plain, "finish without promote").await;
    sb.eq(
        sb.execution(&waiting.id).await,
        waiting.clone(),
        "a finish without promote leaves the buffered run pending",
    );
    sb.expect_job(
        tallied(&job, std::slice::from_ref(&plain.stats)),
        "a finish without promote keeps the buffered id",
    )
    .await;

    // Nothing buffered: promote has nothing to start.
    let (fresh, alone) = sb.running_job("nothing buffered").await;
    let mut last = finish_of(&alone, Success, 5);
    last.promote = Some(next);
    sb.must_finish(&last, "finish with promote when nothing is buffered")
        .await;
    sb.expect_job(
        tallied(&fresh, std::slice::from_ref(&last.stats)),
        "finish with promote and nothing buffered",
    )
    .await;
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// The due index
// ---------------------------------------------------------------------------------------------

/// `due_jobs(now, limit)` returns the enabled, non-deleted jobs whose `nextRunAt` is at or
/// before `now` (the boundary included), earliest first, at most `limit`, each exactly as
/// stored: not paused, soft-deleted or later ones, nor one without a next run. Every returned
/// job, this behaviour's or not, is enabled, not deleted and due by `now`, in order.
pub async fn due_jobs(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "due_jobs", 1975);
    let now = sb.at(600);
    let first = sb.create_due("first", sb.at(100) + ms(1)).await;
    let boundary = sb.create_due("at now", now).await;
    let second = sb.create_due("second", sb.at(300) + ms(2)).await;
    let later = sb.create_due("later", now + ms(1)).await;
    let mut paused = sb.new_job("paused");
    paused.enabled = false;
    paused.next_run_at = Some(sb.at(50));
    let paused = sb.create(paused).await;
    let mut deleted = sb.new_job("deleted");
    deleted.deleted_at = Some(sb.at(1));
    deleted.next_run_at = Some(sb.at(60));
    let deleted = sb.create(deleted).await;
    let never = sb.create(sb.new_job("no next run")).await;
    let own = [
        &first, &boundary, &second, &later, &paused, &deleted, &never,
    ];

    let found = sb.ok(store.due_jobs(now, 10_000).await, "due_jobs");
    sb.jobs_in_order(&found, now);
    let mine: Vec<Job> = found
        .into_iter()
        .filter(|j| own.iter().any(|o| o.id == j.id))
        .collect();
    sb.eq(
        mine,
        vec![first.clone(), second.clone(), boundary.clone()],
        "due_jobs returns exactly the enabled, non-deleted jobs due by now, earliest first",
    );
    let limited = sb.ok(store.due_jobs(now, 2).await, "due_jobs");
    sb.jobs_in_order(&limited, now);
    let keys: Vec<DateTime<Utc>> = limited.iter().filter_map(|j| j.next_run_at).collect();
    let own_keys: Vec<DateTime<Utc>> = [&first, &second, &boundary]
        .iter()
        .filter_map(|j| j.next_run_at)
        .collect();
    sb.limited_earliest_first(&keys, &own_keys, 2, "due_jobs");

    // A claim moves a job out of the index; an update moves it back.
    let moving = claim_of(&first, Vec::new(), Some(sb.at(10_000)), sb.at(700));
    sb.must_claim(&moving, "a claim that only moves nextRunAt")
        .await;
    let moved = sb.job(&first.id).await;
    let found = sb.ok(store.due_jobs(now, 10_000).await, "due_jobs");
    sb.check(
        found.iter().all(|j| j.id != first.id),
        "a job whose nextRunAt a claim moved past now is no longer due",
    );
    let back = Job {
        next_run_at: Some(sb.at(10)),
        version: moved.version + 1,
        ..moved.clone()
    };
    sb.ok(store.update_job(&back, moved.version).await, "update_job");
    let found = sb.ok(store.due_jobs(now, 10_000).await, "due_jobs");
    let firsts: Vec<&Job> = found.iter().filter(|j| j.id == first.id).collect();
    sb.eq(
        firsts,
        vec![&back],
        "a job whose nextRunAt update_job moved back is due again, as stored",
    );
    sb.cleanup().await;
}

/// `next_due_at` is at or before the `nextRunAt` of every enabled, non-deleted job and the
/// `dueAt` of every pending retry attempt. As the store may hold earlier work of others, the
/// exclusions are checked by exact instants: it is never exactly the (odd, millisecond)
/// `nextRunAt` of a paused or soft-deleted job, nor the `dueAt` of a buffered, running, claimed
/// or finished execution, in a year (1973) earlier than the rest of the suite.
pub async fn next_due_at(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "next_due_at", 1973);
    let claim_at = sb.at(50_000) + ms(17);
    let job = sb.create_due("due", claim_at).await;
    sb.due_by(sb.next_due().await, claim_at, "an enabled job's nextRunAt");

    let start = sb.at(100);
    let (job, run) = sb.start_run(&job, "owner-a", start, sb.at(200)).await;
    let job_next = job.next_run_at.unwrap_or(claim_at);
    sb.due_by(
        sb.next_due().await,
        job_next,
        "an enabled job's new nextRunAt",
    );
    let attempt_due = sb.at(40_000) + ms(23);
    let attempt = sb.fail_with_retry(&run, attempt_due, sb.at(101)).await;
    sb.due_by(
        sb.next_due().await,
        attempt_due,
        "a pending retry attempt's dueAt",
    );

    let mut excluded = Vec::new();
    let mut paused = sb.new_job("paused");
    paused.enabled = false;
    paused.next_run_at = Some(sb.at(0) + ms(111));
    excluded.push(("a paused job's nextRunAt", sb.at(0) + ms(111)));
    sb.create(paused).await;
    let mut deleted = sb.new_job("soft-deleted");
    deleted.deleted_at = Some(sb.at(1));
    deleted.next_run_at = Some(sb.at(0) + ms(222));
    excluded.push(("a soft-deleted job's nextRunAt", sb.at(0) + ms(222)));
    sb.create(deleted).await;
    let other = sb.create_due("other", sb.at(0) + ms(333)).await;
    let mut buffered = pending_slot(&other, sb.at(5), sb.at(2));
    buffered.due_at = sb.at(0) + ms(444);
    let mut running = running_slot(&other, sb.at(6), sb.at(2), &lease("owner-a", sb.at(200)));
    running.due_at = sb.at(0) + ms(555);
    let claim = SlotClaim {
        buffered: Some(buffered.id),
        ..claim_of(&other, vec![buffered, running], None, sb.at(2))
    };
    sb.must_claim(&claim, "claim a buffered run and a running one")
        .await;
    excluded.push(("the nextRunAt a claim moved on", sb.at(0) + ms(333)));
    excluded.push(("a buffered execution's dueAt", sb.at(0) + ms(444)));
    excluded.push(("a running execution's dueAt", sb.at(0) + ms(555)));
    let found = sb.next_due().await;
    sb.due_by(found, attempt_due, "a pending retry attempt's dueAt");
    for (what, t) in &excluded {
        sb.due_not(found, *t, what);
    }

    let claimed = sb.ok(
        store
            .claim_attempt(&attempt.id, &lease("owner-b", sb.at(300)), sb.at(102))
            .await,
        "claim_attempt",
    );
    sb.check(claimed.is_some(), "claim_attempt of the pending attempt");
    excluded.push(("a claimed attempt's dueAt", attempt_due));
    excluded.push(("a finished execution's dueAt", claim_at));
    let found = sb.next_due().await;
    sb.due_by(found, job_next, "an enabled job's nextRunAt");
    for (what, t) in &excluded {
        sb.due_not(found, *t, what);
    }
    let job = sb.job(&job.id).await;
    let paused_job = Job {
        enabled: false,
        version: job.version + 1,
        ..job.clone()
    };
    sb.ok(
        store.update_job(&paused_job, job.version).await,
        "update_job",
    );
    excluded.push(("the nextRunAt of a job paused since", job_next));
    let found = sb.next_due().await;
    for (what, t) in &excluded {
        sb.due_not(found, *t, what);
    }
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Retention and statistics
// ---------------------------------------------------------------------------------------------

/// `delete_executions_before(before, limit)` deletes executions that ended (any status but
/// `running` and `pending`) and were created strictly before `before` (by `createdAt`, whatever
/// their start or end), at most `limit` per call, and returns how many it deleted: here 6
/// eligible executions with a limit of 4 take calls returning 4, 2 and 0. Running and pending
/// (buffered, retry attempt) executions, and later ones, stay exactly as they were, and the job's statistics do not change. This
/// behaviour's executions are created in 1972, before anything else of the suite; it assumes
/// no other ended execution in the store was created before its cut-off.
pub async fn retention(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "retention", 1972);
    let before = sb.at(100_000);
    let job = sb.create_due("retained", sb.at(10)).await;
    let old = |sb: &Sandbox<'_>, i: i64| sb.at(1_000 + i * 1_000);
    let mut doomed: Vec<Execution> = [Success, Failed, Timeout, Skipped, Cancelled, Dead]
        .iter()
        .enumerate()
        .map(|(i, status)| ended_slot(&job, old(&sb, i as i64), old(&sb, i as i64), *status))
        .collect();
    // Created before the cut-off, though it started and ended after it.
    doomed[0].started_at = before + minutes(5);
    doomed[0].completed_at = Some(before + minutes(6));
    let mut kept = vec![
        ended_slot(&job, before, before, Success),
        ended_slot(&job, before + minutes(60), before + minutes(1), Failed),
    ];
    // Created after the cut-off, though it started before it.
    kept[1].started_at = old(&sb, 0);
    let owner = lease("owner-a", before + minutes(600));
    let running = running_slot(&job, old(&sb, 7), old(&sb, 7), &owner);
    let buffered = pending_slot(&job, old(&sb, 8), old(&sb, 8));
    let attempt = running.retry(before + minutes(600), old(&sb, 9));
    kept.extend([running.clone(), buffered.clone(), attempt]);
    let mut records = doomed.clone();
    records.extend(kept.iter().cloned());
    let claim = SlotClaim {
        buffered: Some(buffered.id),
        ..claim_of(&job, records, None, old(&sb, 7))
    };
    sb.must_claim(&claim, "claim ended, running and buffered executions")
        .await;
    let job = sb.job(&job.id).await;

    for (call, expected) in [4u64, 2, 0].into_iter().enumerate() {
        let deleted = sb.ok(
            store.delete_executions_before(before, 4).await,
            "delete_executions_before",
        );
        sb.eq(
            deleted,
            expected,
            &format!(
                "delete_executions_before with limit 4, call {} of 3, over 6 eligible executions",
                call + 1
            ),
        );
        let mut left = 0;
        for e in &doomed {
            if sb
                .ok(store.get_execution(&e.id).await, "get_execution")
                .is_some()
            {
                left += 1;
            }
        }
        let deleted_so_far = [4, 6, 6][call];
        sb.eq(
            left,
            6 - deleted_so_far,
            &format!(
                "eligible executions left after call {} (the count returned is what was deleted)",
                call + 1
            ),
        );
    }
    for e in &kept {
        sb.eq(
            sb.execution(&e.id).await,
            e.clone(),
            "delete_executions_before keeps running, pending and later executions exactly",
        );
    }
    sb.expect_job(job, "delete_executions_before keeps the job's statistics")
        .await;
    sb.cleanup().await;
}

/// `executions_before(before, limit)` returns up to `limit` ended executions created strictly
/// before `before`, oldest first (by `createdAt`), never a `running` or `pending` one; then
/// `delete_executions(ids)` deletes exactly those of the ids that exist and ended, returns how
/// many, leaves running, pending and unknown ids alone (a repeat deletes nothing), and keeps the
/// job's statistics. This behaviour's executions are created in 1971, before anything else of
/// the suite; it assumes no other ended execution in the store was created before its cut-off.
pub async fn retention_batches(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "retention_batches", 1971);
    let before = sb.at(50_000);
    let job = sb.create_due("archived", sb.at(10)).await;
    let old = |i: i64| sb.at(1_000 + i * 1_000);
    // Created out of order, so that the oldest-first order is the store's doing.
    let ended: Vec<Execution> = [
        (3, Dead),
        (0, Success),
        (4, Skipped),
        (1, Failed),
        (2, Timeout),
    ]
    .iter()
    .map(|(i, status)| ended_slot(&job, old(*i), old(*i), *status))
    .collect();
    let mut oldest_first = ended.clone();
    oldest_first.sort_by_key(|e| e.created_at);
    let owner = lease("owner-a", before + minutes(600));
    let running = running_slot(&job, old(5), old(5), &owner);
    let buffered = pending_slot(&job, old(6), old(6));
    let later = ended_slot(&job, before, before, Success);
    let mut records = ended.clone();
    records.extend([running.clone(), buffered.clone(), later.clone()]);
    let claim = SlotClaim {
        buffered: Some(buffered.id),
        ..claim_of(&job, records, None, old(5))
    };
    sb.must_claim(
        &claim,
        "claim ended, running, buffered and later executions",
    )
    .await;
    let job = sb.job(&job.id).await;

    let first = sb.ok(
        store.executions_before(before, 3).await,
        "executions_before",
    );
    sb.eq(
        first,
        oldest_first[..3].to_vec(),
        "executions_before with limit 3 returns the 3 oldest ended executions, whole, oldest first",
    );
    let all = sb.ok(
        store.executions_before(before, 100).await,
        "executions_before",
    );
    sb.eq(
        all,
        oldest_first.clone(),
        "executions_before returns every ended execution before the cut-off and nothing running, pending or later",
    );
    let mut ids: Vec<ExecutionId> = oldest_first[..3].iter().map(|e| e.id).collect();
    ids.extend([running.id, buffered.id, ExecutionId::new_manual()]);
    let deleted = sb.ok(store.delete_executions(&ids).await, "delete_executions");
    sb.eq(
        deleted,
        3,
        "delete_executions deletes the 3 ended ones of 6 ids (running, pending and unknown ids stay)",
    );
    let again = sb.ok(store.delete_executions(&ids).await, "delete_executions");
    sb.eq(
        again,
        0,
        "delete_executions of the same ids again deletes nothing",
    );
    let none = sb.ok(store.delete_executions(&[]).await, "delete_executions");
    sb.eq(none, 0, "delete_executions of no ids deletes nothing");
    for e in &oldest_first[..3] {
        sb.eq(
            sb.ok(store.get_execution(&e.id).await, "get_execution"),
            None,
            "a deleted execution is gone",
        );
    }
    for e in oldest_first[3..]
        .iter()
        .chain([&running, &buffered, &later])
    {
        sb.eq(
            sb.execution(&e.id).await,
            e.clone(),
            "delete_executions keeps every execution it was not given, and running and pending ones",
        );
    }
    let rest = sb.ok(
        store.executions_before(before, 100).await,
        "executions_before",
    );
    sb.eq(
        rest,
        oldest_first[3..].to_vec(),
        "executions_before after the deletion returns the rest",
    );
    sb.expect_job(job, "delete_executions keeps the job's statistics")
        .await;
    sb.cleanup().await;
}

/// `list_finished(from, to, page)` returns the executions of every job whose `completedAt` is
/// at or after `from` and before `to`, ascending by `completedAt` then id, whole, in pages that
/// together hold each exactly once: executions ended at the same millisecond, one ended exactly
/// at `from` (in) and one exactly at `to` (out), one ended by a finish (in), a running and a
/// pending one (never). This behaviour's executions end in 2050, which nothing else uses.
pub async fn list_finished(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "list_finished", 2050);
    let (from, to) = (sb.at(1_000), sb.at(2_000));
    let a = sb.create_due("finished a", sb.at(10)).await;
    let b = sb.create_due("finished b", sb.at(10)).await;
    let ended_at = |job: &Job, slot: i64, done: DateTime<Utc>, status| {
        let mut e = ended_slot(job, sb.at(slot), sb.at(5), status);
        e.completed_at = Some(done);
        e
    };
    let same = from + minutes(100) + ms(7);
    let inside = vec![
        ended_at(&a, 1, from, Success),
        ended_at(&a, 2, same, Failed),
        ended_at(&b, 3, same, Skipped),
        ended_at(&b, 4, same, Dead),
        ended_at(&a, 5, to - ms(1), Cancelled),
        ended_at(&b, 6, from + minutes(500), Timeout),
    ];
    let outside = [
        ended_at(&a, 7, from - ms(1), Success),
        ended_at(&b, 8, to, Success),
    ];
    let owner = lease("owner-a", sb.at(100_000));
    let finished_run = running_slot(&a, sb.at(9), sb.at(900), &owner);
    let running = running_slot(&b, sb.at(9), sb.at(900), &owner);
    let pending = running.retry(from + minutes(10), sb.at(900));
    let mut for_a: Vec<Execution> = inside
        .iter()
        .chain(&outside)
        .filter(|e| e.job_id == a.id)
        .cloned()
        .collect();
    for_a.push(finished_run.clone());
    let mut for_b: Vec<Execution> = inside
        .iter()
        .chain(&outside)
        .filter(|e| e.job_id == b.id)
        .cloned()
        .collect();
    for_b.extend([running.clone(), pending.clone()]);
    sb.must_claim(
        &claim_of(&a, for_a, None, sb.at(900)),
        "claim a's executions",
    )
    .await;
    sb.must_claim(
        &claim_of(&b, for_b, None, sb.at(900)),
        "claim b's executions",
    )
    .await;
    let mut finish = finish_of(&finished_run, Success, 60_000);
    let finished_at = from + minutes(300);
    finish.execution.completed_at = Some(finished_at);
    finish.stats.completed_at = finished_at;
    sb.must_finish(&finish, "finish a run inside the range")
        .await;

    let mut expected = inside.clone();
    expected.push(finish.execution.clone());
    expected.sort_by_key(|e| (e.completed_at, e.id));
    for size in [1u32, 2, 3, 100] {
        let mut got = Vec::new();
        let mut page = PageRequest::first(size);
        for _ in 0..=expected.len() {
            let p = sb.ok(store.list_finished(from, to, &page).await, "list_finished");
            sb.check(
                p.items.len() <= size as usize,
                &format!("a page of list_finished holds at most {size} items"),
            );
            got.extend(p.items);
            match p.next_cursor {
                Some(c) => page = PageRequest::after(size, c),
                None => break,
            }
        }
        sb.eq(
            got,
            expected.clone(),
            &format!(
                "list_finished in pages of {size}: every execution ended in [from, to), once, by (completedAt, id)"
            ),
        );
    }
    let empty = sb.ok(
        store
            .list_finished(to + minutes(1), to + minutes(2), &PageRequest::first(10))
            .await,
        "list_finished",
    );
    sb.eq(
        (empty.items.len(), empty.next_cursor),
        (0, None),
        "list_finished of a range where nothing ended is one empty page",
    );
    sb.cleanup().await;
}

/// The finish keeps the job's spend per UTC day and month and its run of consecutive
/// failures: costs of counted finishes on the same day add up (a cancel's do not), a finish on a later day (or month)
/// starts that period from zero, and the tally of [`Spend::add`] holds after every finish; a
/// counted failure (failed, timeout, dead) adds one to `consecutiveFailures`, a success resets
/// it, a cancel leaves it.
pub async fn spend_and_streak(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "spend_and_streak", 2051);
    let job = sb.create_due("spending", sb.at(10)).await;
    let jan31 = sb.at(30 * 24 * 60);
    let ends = [
        (Failed, jan31 + minutes(10)),
        (Timeout, jan31 + minutes(1_438)),
        (Cancelled, jan31 + minutes(1_439)),
        (Dead, jan31 + minutes(1_440) + ms(1)),
        (Success, jan31 + minutes(1_500)),
        (Failed, jan31 + minutes(2_000)),
    ];
    let owner = lease("owner-a", sb.at(100_000));
    let runs: Vec<Execution> = (0..ends.len() as i64)
        .map(|i| running_slot(&job, sb.at(10) + minutes(i), sb.at(20), &owner))
        .collect();
    sb.must_claim(
        &claim_of(&job, runs.clone(), None, sb.at(20)),
        "claim six runs",
    )
    .await;
    let mut job = sb.job(&job.id).await;
    for (i, (run, (status, at))) in runs.iter().zip(ends).enumerate() {
        let mut f = finish_of(run, status, 1_000);
        f.execution.completed_at = Some(at);
        f.stats.completed_at = at;
        sb.must_finish(&f, "finish").await;
        job = sb
            .expect_job(
                tallied(&job, std::slice::from_ref(&f.stats)),
                &format!(
                    "spend and failure streak after finish {} ({status} at {at})",
                    i + 1
                ),
            )
            .await;
    }
    let cost = finish_of(&runs[0], Success, 1_000).stats.cost_micro_usd;
    sb.eq(
        (job.spend, job.consecutive_failures),
        (
            Spend {
                day: 20510201,
                day_micro_usd: 3 * cost,
                month: 205102,
                month_micro_usd: 3 * cost,
            },
            1,
        ),
        "three finishes on 1 February 2051 (of six since 31 January), and one failure since the last success",
    );
    sb.cleanup().await;
}

/// A sequence of finishes with mixed outcomes (success, failed, timeout, dead, and an
/// uncounted cancel), two runs in flight at a time and finished out of order, leaves the job's
/// counters equal to the tally after every step: 7 counted runs, 3 successes, 4 failures,
/// 811 ms in all, an average of 115 ms (rounded down), the last counted run's duration and
/// error, the token and cost sums, and no run in progress.
pub async fn statistics_tally(store: &dyn Store, _caps: &Capabilities) {
    let mut sb = Sandbox::new(store, "statistics_tally", 2045);
    let initial = sb.create_due("tallied", sb.at(60)).await;
    let outcomes = [
        (Success, 100),
        (Failed, 250),
        (Timeout, 400),
        (Success, 50),
        (Cancelled, 999),
        (Dead, 10),
        (Success, 1),
        (Failed, 0),
    ];
    let owner = lease("owner-a", sb.at(100_000));
    let mut job = initial.clone();
    let mut history = Vec::new();
    for (pair_no, pair) in outcomes.chunks(2).enumerate() {
        let now = sb.at(61 + 120 * pair_no as i64);
        let slot = job.next_run_at.unwrap_or(now);
        let runs: Vec<Execution> = (0..pair.len() as i64)
            .map(|i| running_slot(&job, slot + minutes(i * 60), now, &owner))
            .collect();
        let claim = claim_of(&job, runs.clone(), Some(slot + minutes(120)), now);
        sb.must_claim(&claim, "claim two runs").await;
        job = sb.job(&job.id).await;
        for (run, (status, duration)) in runs.iter().zip(pair).rev() {
            let f = finish_of(run, *status, *duration);
            sb.must_finish(&f, "finish").await;
            job = sb
                .expect_job(
                    tallied(&job, std::slice::from_ref(&f.stats)),
                    &format!("statistics after {} finishes", history.len() + 1),
                )
                .await;
            history.push(f.stats);
        }
    }
    let totals = tallied(
        &Job {
            running_count: 8,
            // One claim per pair of outcomes, each a new version.
            version: initial.version + outcomes.chunks(2).len() as u64,
            ..initial.clone()
        },
        &history,
    );
    sb.eq(
        Job {
            next_run_at: job.next_run_at,
            last_run_at: job.last_run_at,
            ..totals
        },
        job.clone(),
        "the statistics equal the tally of the whole history",
    );
    sb.eq(
        (
            job.total_runs,
            job.success_count,
            job.failure_count,
            job.total_duration_ms,
            job.average_duration,
            job.running_count,
        ),
        (7, 3, 4, 811, Some(115), 0),
        "7 counted runs of 811 ms in all",
    );
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------------------------

/// [`Capabilities::racers`] tasks claim the same slot at once, each with its own lease, three
/// slots in a row: each time exactly one claim is `true` and the others `false` (no errors),
/// the slot's execution exists once, as the winner wrote it, `nextRunAt` moved on once, and the
/// running count grew by one.
pub async fn claim_slots_race(store: Arc<dyn Store>, caps: &Capabilities) {
    let mut sb = Sandbox::new(&*store, "claim_slots_race", 2046);
    let mut job = sb.create_due("raced", sb.at(60)).await;
    for round in 0..3i64 {
        let slot = sb.at(60 + round * 60);
        let now = slot + ms(10);
        let claims: Vec<SlotClaim> = (0..caps.racers.max(2))
            .map(|i| {
                let l = lease(&format!("racer-{i}"), now + minutes(5));
                SlotClaim {
                    expected_running: Some(job.running_count),
                    ..claim_of(
                        &job,
                        vec![running_slot(&job, slot, now, &l)],
                        Some(slot + minutes(60)),
                        now,
                    )
                }
            })
            .collect();
        let results = race(claims.iter().map(|c| {
            let (store, c) = (Arc::clone(&store), c.clone());
            async move { store.claim_slots(&c).await }
        }))
        .await;
        let wins: Vec<usize> = results
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| sb.ok(r, "claim_slots").then_some(i))
            .collect();
        sb.eq(
            wins.len(),
            1,
            &format!("claims of slot {round} that won (of {})", claims.len()),
        );
        let winner = &claims[wins[0]].executions[0];
        sb.eq(
            sb.execution(&winner.id).await,
            winner.clone(),
            "the slot's execution is the winner's",
        );
        let listed = sb.executions_of(&job.id).await;
        sb.eq(
            listed.len(),
            round as usize + 1,
            "one execution per slot after the race",
        );
        job = sb
            .expect_job(
                Job {
                    next_run_at: Some(slot + minutes(60)),
                    version: job.version + 1,
                    ..started_job(&job, 1, now)
                },
                "after a race: nextRunAt moved on once, running count +1",
            )
            .await;
    }
    sb.cleanup().await;
}

/// Under the `skip` overlap policy a slot claim (with `expected_running: Some(0)`) and manual
/// starts (with `require_idle`) race on an idle job, half the racers each: exactly one of them
/// starts a run (the others: `false` or `Busy`), the running count is 1 and the job has one
/// execution.
pub async fn slot_and_manual_race(store: Arc<dyn Store>, caps: &Capabilities) {
    let mut sb = Sandbox::new(&*store, "slot_and_manual_race", 2047);
    let mut job = sb.new_job("skip overlap");
    job.overlap_policy = OverlapPolicy::Skip;
    job.next_run_at = Some(sb.at(60));
    let job = sb.create(job).await;
    let now = sb.at(60) + ms(5);
    let racers = caps.racers.max(2);
    let tasks = (0..racers).map(|i| {
        let store = Arc::clone(&store);
        let l = lease(&format!("racer-{i}"), now + minutes(5));
        let claim = SlotClaim {
            expected_running: Some(0),
            ..claim_of(
                &job,
                vec![running_slot(&job, sb.at(60), now, &l)],
                Some(sb.at(120)),
                now,
            )
        };
        let manual = manual_run(&job, now, &l);
        async move {
            if i % 2 == 0 {
                store.claim_slots(&claim).await.map(usize::from)
            } else {
                let started = store.start_manual(&manual, true).await?;
                Ok(usize::from(started == ManualStart::Started))
            }
        }
    });
    let started: usize = race(tasks)
        .await
        .into_iter()
        .map(|r| sb.ok(r, "claim_slots or start_manual"))
        .sum();
    sb.eq(
        started,
        1,
        "runs started by racing slot claims and manual starts",
    );
    let now_job = sb.job(&job.id).await;
    sb.eq(now_job.running_count, 1, "the running count after the race");
    sb.eq(
        sb.executions_of(&job.id).await.len(),
        1,
        "executions after the race",
    );
    sb.cleanup().await;
}

/// [`Capabilities::racers`] tasks claim the same due retry attempt at once, each with its own
/// lease: exactly one gets `Some`, the attempt is running under that lease since `now`, and the
/// job's running count grew by exactly one.
pub async fn claim_attempt_race(store: Arc<dyn Store>, caps: &Capabilities) {
    let mut sb = Sandbox::new(&*store, "claim_attempt_race", 2048);
    let (job, run) = sb.running_job("retried").await;
    let attempt = sb.fail_with_retry(&run, sb.at(65), sb.at(62)).await;
    let job = sb.job(&job.id).await;

    let now = sb.at(66) + ms(6);
    let leases: Vec<Lease> = (0..caps.racers.max(2))
        .map(|i| lease(&format!("racer-{i}"), now + minutes(5)))
        .collect();
    let results = race(leases.iter().map(|l| {
        let (store, l, id) = (Arc::clone(&store), l.clone(), attempt.id);
        async move { store.claim_attempt(&id, &l, now).await }
    }))
    .await;
    let wins: Vec<(usize, Execution)> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| sb.ok(r, "claim_attempt").map(|e| (i, e)))
        .collect();
    sb.eq(wins.len(), 1, "claims of one attempt that won");
    let (i, won) = &wins[0];
    let expected = Execution {
        status: Running,
        started_at: now,
        lease_owner: Some(leases[*i].owner.clone()),
        lease_expires_at: Some(leases[*i].expires_at),
        ..attempt
    };
    sb.eq(
        won.clone(),
        expected.clone(),
        "the winner's claimed attempt",
    );
    sb.eq(
        sb.execution(&expected.id).await,
        expected,
        "the attempt is stored running under the winner's lease",
    );
    sb.expect_job(
        started_job(&job, 1, now),
        "after the race: running count +1",
    )
    .await;
    sb.cleanup().await;
}

/// Concurrent finishes lose no update: [`Capabilities::racers`] runs of one job finished at
/// once by their owners leave the counters and sums equal to the tally of all of them, the
/// running count 0, and `lastRunStatus`/`lastRunDuration`/`lastRunError` all from one same
/// finish. Then that many identical finishes of one more run race: exactly one is `Finished`,
/// and its statistics count once.
pub async fn concurrent_finishes(store: Arc<dyn Store>, caps: &Capabilities) {
    let mut sb = Sandbox::new(&*store, "concurrent_finishes", 2049);
    let racers = caps.racers.max(2);
    let job = sb.create_due("finished at once", sb.at(60)).await;
    let now = sb.at(60) + ms(1);
    let runs: Vec<Execution> = (0..racers)
        .map(|i| {
            let l = lease(&format!("owner-{i}"), now + minutes(5));
            running_slot(&job, sb.at(60) + minutes(i as i64), now, &l)
        })
        .collect();
    sb.must_claim(
        &claim_of(&job, runs.clone(), Some(sb.at(100_000)), now),
        "claim every run",
    )
    .await;
    let job = sb.job(&job.id).await;
    let statuses = [Success, Failed, Timeout, Dead, Cancelled];
    let finishes: Vec<Finish> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| finish_of(r, statuses[i % statuses.len()], 10 * i as u64 + 1))
        .collect();
    let outcomes = race(finishes.iter().map(|f| {
        let (store, f) = (Arc::clone(&store), f.clone());
        async move { store.finish(&f).await }
    }))
    .await;
    for outcome in outcomes {
        sb.eq(
            sb.ok(outcome, "finish"),
            FinishOutcome::Finished { promoted: None },
            "each owner's concurrent finish",
        );
    }
    let after = sb.job(&job.id).await;
    let deltas: Vec<StatsDelta> = finishes.iter().map(|f| f.stats.clone()).collect();
    let last_counted = deltas.iter().find(|d| {
        d.counted
            && Some(d.duration_ms) == after.last_run_duration
            && d.error == after.last_run_error
    });
    let Some(last_counted) = last_counted else {
        sb.fail(format_args!(
            "lastRunDuration {:?} and lastRunError {:?} are not those of one counted finish",
            after.last_run_duration, after.last_run_error
        ))
    };
    // The order the store applied them in, as far as the statistics tell it.
    let mut ordered: Vec<StatsDelta> = deltas
        .iter()
        .filter(|d| *d != last_counted)
        .cloned()
        .collect();
    ordered.push(last_counted.clone());
    if let Some(i) = ordered
        .iter()
        .position(|d| !d.counted && Some(d.status) == after.last_run_status)
    {
        let last = ordered.remove(i);
        ordered.push(last);
    }
    let mut expected = tallied(&job, &ordered);
    // The run of consecutive failures depends on the order, which the statistics tell only
    // in part: it ends with the last counted finish, and holds at most every failure.
    let failures = deltas
        .iter()
        .filter(|d| d.counted && d.status.is_failure())
        .count() as u32;
    let streak = after.consecutive_failures;
    sb.check(
        if last_counted.status.is_failure() {
            (1..=job.consecutive_failures + failures).contains(&streak)
        } else {
            streak == 0
        },
        &format!(
            "consecutiveFailures {streak} ends with the last counted finish ({}) and counts at most the {failures} failures",
            last_counted.status
        ),
    );
    expected.consecutive_failures = streak;
    sb.eq(
        after.clone(),
        expected,
        "the statistics after concurrent finishes equal the tally of all of them",
    );

    let (_, extra) = sb
        .start_run(&after, "owner-x", sb.at(100_000), sb.at(100_005))
        .await;
    let job = sb.job(&after.id).await;
    let same = finish_of(&extra, Success, 7);
    let outcomes = race((0..racers).map(|_| {
        let (store, f) = (Arc::clone(&store), same.clone());
        async move { store.finish(&f).await }
    }))
    .await;
    let finished = outcomes
        .into_iter()
        .map(|r| sb.ok(r, "finish"))
        .filter(|o| *o == FinishOutcome::Finished { promoted: None })
        .count();
    sb.eq(
        finished,
        1,
        "identical concurrent finishes of one run that were written",
    );
    sb.expect_job(
        tallied(&job, std::slice::from_ref(&same.stats)),
        "identical concurrent finishes count once",
    )
    .await;
    sb.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/// One behaviour's corner of a shared store: its name (in every failure), a unique tag on its
/// jobs, its own year, and the jobs to delete when it passes.
struct Sandbox<'a> {
    store: &'a dyn Store,
    behaviour: &'static str,
    tag: String,
    t0: DateTime<Utc>,
    jobs: Vec<JobId>,
}

impl<'a> Sandbox<'a> {
    fn new(store: &'a dyn Store, behaviour: &'static str, year: i32) -> Sandbox<'a> {
        let Some(t0) = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single() else {
            panic!("store conformance, {behaviour}: no such year {year}");
        };
        let unique = uuid::Uuid::new_v4().simple().to_string();
        Sandbox {
            store,
            behaviour,
            tag: format!("cf-{behaviour}-{}", &unique[..12]),
            t0,
            jobs: Vec::new(),
        }
    }

    /// `minutes` after the start of this behaviour's year, to the millisecond.
    fn at(&self, minutes: i64) -> DateTime<Utc> {
        (self.t0 + TimeDelta::minutes(minutes)).trunc_subsecs(3)
    }

    #[track_caller]
    fn fail(&self, message: impl Display) -> ! {
        panic!("store conformance, {}: {message}", self.behaviour)
    }

    #[track_caller]
    fn check(&self, ok: bool, what: &str) {
        if !ok {
            self.fail(format_args!("{what}: does not hold"));
        }
    }

    #[track_caller]
    fn eq<T: PartialEq + Debug>(&self, actual: T, expected: T, what: &str) {
        if actual != expected {
            self.fail(format_args!(
                "{what}\n  expected: {expected:?}\n    actual: {actual:?}"
            ));
        }
    }

    #[track_caller]
    fn ok<T>(&self, result: Result<T, StoreError>, op: &str) -> T {
        match result {
            Ok(v) => v,
            Err(e) => self.fail(format_args!("{op} failed: {e} ({e:?})")),
        }
    }

    #[track_caller]
    fn invalid_input<T: Debug>(&self, result: Result<T, StoreError>, what: &str) {
        if !matches!(result, Err(StoreError::InvalidInput { .. })) {
            self.fail(format_args!(
                "{what} must be refused with InvalidInput, got {result:?}"
            ));
        }
    }

    #[track_caller]
    fn invalid_cursor(&self, result: Result<(), StoreError>, op: &str) {
        match result {
            Err(StoreError::InvalidInput { field, .. }) if field == "cursor" => {}
            other => self.fail(format_args!(
                "{op} with a cursor it did not make must be InvalidInput on field 'cursor', got {other:?}"
            )),
        }
    }

    /// Checks a limited, earliest-first read: at most `limit` keys, in order, at least as many
    /// as this behaviour alone has (up to the limit), the i-th no later than this behaviour's
    /// i-th (others' may come first).
    #[track_caller]
    fn limited_earliest_first(
        &self,
        keys: &[DateTime<Utc>],
        own: &[DateTime<Utc>],
        limit: usize,
        op: &str,
    ) {
        self.check(
            keys.len() <= limit,
            &format!("{op} returns at most limit ({limit})"),
        );
        self.check(
            keys.len() >= limit.min(own.len()),
            &format!("{op} returns limit ({limit}) items when at least that many qualify"),
        );
        self.check(
            keys.iter().zip(own).all(|(k, o)| k <= o),
            &format!("{op} returns the earliest first ({keys:?}, this behaviour's {own:?})"),
        );
    }

    #[track_caller]
    fn sorted(&self, keys: &[DateTime<Utc>], op: &str) {
        self.check(
            keys.windows(2).all(|w| w[0] <= w[1]),
            &format!("{op} returns the earliest first: {keys:?}"),
        );
    }

    #[track_caller]
    fn jobs_in_order(&self, jobs: &[Job], now: DateTime<Utc>) {
        for j in jobs {
            self.check(
                j.enabled && j.deleted_at.is_none() && j.next_run_at.is_some_and(|t| t <= now),
                &format!("due_jobs returns only enabled, non-deleted jobs due by now (got {j:?})"),
            );
        }
        let keys: Vec<_> = jobs.iter().filter_map(|j| j.next_run_at).collect();
        self.sorted(&keys, "due_jobs");
    }

    #[track_caller]
    fn attempts_in_order(&self, attempts: &[Execution], now: DateTime<Utc>) {
        for e in attempts {
            self.check(
                e.status == Pending && e.trigger == Trigger::Retry && e.due_at <= now,
                &format!("due_attempts returns only pending retry attempts due by now (got {e:?})"),
            );
        }
        let keys: Vec<_> = attempts.iter().map(|e| e.due_at).collect();
        self.sorted(&keys, "due_attempts");
    }

    #[track_caller]
    fn leases_in_order(&self, executions: &[Execution], now: DateTime<Utc>) {
        for e in executions {
            self.check(
                e.status == Running && e.lease_expires_at.is_some_and(|t| t < now),
                &format!("expired_leases returns only running executions whose lease expired before now (got {e:?})"),
            );
        }
        let keys: Vec<_> = executions
            .iter()
            .filter_map(|e| e.lease_expires_at)
            .collect();
        self.sorted(&keys, "expired_leases");
    }

    /// A valid, enabled job with this behaviour's tag, created at the start of its year, with
    /// no next run (so that it is never due unless a behaviour says so).
    fn new_job(&self, name: &str) -> Job {
        let spec = JobSpec {
            tags: vec![self.tag.clone()],
            overlap_policy: OverlapPolicy::Allow,
            ..JobSpec::new(name, format!("the prompt of {name}"), "0 * * * *")
        };
        match Job::create(spec, self.t0) {
            Ok(job) => Job {
                next_run_at: None,
                ..job
            },
            Err(e) => self.fail(format_args!("suite: job {name:?} does not validate: {e}")),
        }
    }

    /// The filter of this behaviour's jobs.
    fn own_jobs(&self) -> JobFilter {
        JobFilter {
            tag: Some(self.tag.clone()),
            ..JobFilter::default()
        }
    }

    async fn create(&mut self, job: Job) -> Job {
        self.jobs.push(job.id);
        self.ok(self.store.create_job(&job).await, "create_job");
        job
    }

    /// Creates an enabled job due at `next_run_at`.
    async fn create_due(&mut self, name: &str, next_run_at: DateTime<Utc>) -> Job {
        let job = Job {
            next_run_at: Some(next_run_at),
            ..self.new_job(name)
        };
        self.create(job).await
    }

    async fn job(&self, id: &JobId) -> Job {
        match self.ok(self.store.get_job(id).await, "get_job") {
            Some(job) => job,
            None => self.fail(format_args!("job {id} is missing")),
        }
    }

    /// Checks that the stored job is `expected`, and returns it.
    async fn expect_job(&self, expected: Job, what: &str) -> Job {
        self.eq(self.job(&expected.id).await, expected.clone(), what);
        expected
    }

    async fn execution(&self, id: &ExecutionId) -> Execution {
        match self.ok(self.store.get_execution(id).await, "get_execution") {
            Some(e) => e,
            None => self.fail(format_args!("execution {id} is missing")),
        }
    }

    async fn absent(&self, id: &ExecutionId, what: &str) {
        if let Some(e) = self.ok(self.store.get_execution(id).await, "get_execution") {
            self.fail(format_args!("{what}: but execution {id} exists: {e:?}"));
        }
    }

    /// Every job matching `filter`, read in pages of `limit`.
    async fn list_all(&self, filter: &JobFilter, limit: u32) -> Vec<Job> {
        let mut all = Vec::new();
        let mut cursor = None;
        for _ in 0..10_000 {
            let request = PageRequest {
                limit,
                cursor: cursor.take(),
            };
            let page = self.ok(self.store.list_jobs(filter, &request).await, "list_jobs");
            self.check(
                page.items.len() <= limit as usize,
                &format!("list_jobs returns at most limit ({limit}) jobs a page"),
            );
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return all,
            }
        }
        self.fail("list_jobs kept returning a next cursor")
    }

    /// Every execution of a job, newest first.
    async fn executions_of(&self, job: &JobId) -> Vec<Execution> {
        let mut all = Vec::new();
        let mut cursor = None;
        for _ in 0..10_000 {
            let request = PageRequest {
                limit: 100,
                cursor: cursor.take(),
            };
            let page = self.ok(
                self.store.list_executions(job, &request).await,
                "list_executions",
            );
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return all,
            }
        }
        self.fail("list_executions kept returning a next cursor")
    }

    async fn snapshot(&self, job: &JobId) -> Snapshot {
        Snapshot {
            id: *job,
            job: self.ok(self.store.get_job(job).await, "get_job"),
            executions: self.executions_of(job).await,
        }
    }

    /// Checks that a job and its executions are as in `before`.
    async fn unchanged(&self, before: &Snapshot, what: &str) {
        self.eq(&self.snapshot(&before.id).await, before, what);
    }

    async fn must_claim(&self, claim: &SlotClaim, what: &str) {
        let won = self.ok(self.store.claim_slots(claim).await, "claim_slots");
        self.check(won, &format!("claim_slots returns true for {what}"));
    }

    /// Checks that `claim` is refused (`false`) for `why`, and changes nothing.
    async fn refused(&self, claim: &SlotClaim, job: &JobId, why: &str) {
        let before = self.snapshot(job).await;
        let mut existing = Vec::new();
        for e in &claim.executions {
            existing.push(self.ok(self.store.get_execution(&e.id).await, "get_execution"));
        }
        let won = self.ok(self.store.claim_slots(claim).await, "claim_slots");
        self.check(!won, &format!("claim_slots returns false for {why}"));
        self.unchanged(
            &before,
            &format!("claim_slots refused for {why} changes nothing"),
        )
        .await;
        for (e, was) in claim.executions.iter().zip(existing) {
            let now = self.ok(self.store.get_execution(&e.id).await, "get_execution");
            self.eq(
                now,
                was,
                &format!("claim_slots refused for {why} creates and changes no execution"),
            );
        }
    }

    /// Inserts execution records of any status through a claim that keeps `nextRunAt`.
    async fn insert(&self, job: &Job, executions: Vec<Execution>) {
        let job = self.job(&job.id).await;
        let claim = claim_of(&job, executions, job.next_run_at, job.created_at);
        self.must_claim(&claim, "inserting execution records").await;
    }

    /// Claims the job's next slot with one run leased to `owner` until `until`, moving
    /// `nextRunAt` an hour on; returns the job as stored now, and the run.
    async fn start_run(
        &self,
        job: &Job,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> (Job, Execution) {
        let job = self.job(&job.id).await;
        let Some(slot) = job.next_run_at else {
            self.fail(format_args!(
                "suite: job {} has no next run to claim",
                job.id
            ))
        };
        let run = running_slot(&job, slot, now, &lease(owner, until));
        let claim = claim_of(&job, vec![run.clone()], Some(slot + minutes(60)), now);
        self.must_claim(&claim, "a run of the next slot").await;
        (self.job(&job.id).await, run)
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        self.ok(self.store.next_due_at().await, "next_due_at")
    }

    #[track_caller]
    fn due_by(&self, found: Option<DateTime<Utc>>, t: DateTime<Utc>, what: &str) {
        self.check(
            found.is_some_and(|f| f <= t),
            &format!("next_due_at ({found:?}) is at or before {what} ({t})"),
        );
    }

    #[track_caller]
    fn due_not(&self, found: Option<DateTime<Utc>>, t: DateTime<Utc>, what: &str) {
        self.check(
            found != Some(t),
            &format!("next_due_at ({found:?}) is not {what} ({t})"),
        );
    }

    async fn finish(&self, finish: &Finish) -> FinishOutcome {
        self.ok(self.store.finish(finish).await, "finish")
    }

    /// Finishes, requiring `Finished` with nothing promoted.
    async fn must_finish(&self, finish: &Finish, what: &str) {
        self.eq(
            self.finish(finish).await,
            FinishOutcome::Finished { promoted: None },
            what,
        );
    }

    /// Checks that `finish` is `Fenced` and changes nothing: the job, its executions, and no
    /// retry attempt created.
    async fn must_fence(&self, finish: &Finish, job: &JobId, what: &str) {
        let before = self.snapshot(job).await;
        self.eq(self.finish(finish).await, FinishOutcome::Fenced, what);
        self.unchanged(&before, &format!("{what}: fenced, and nothing changed"))
            .await;
        if let Some(next) = &finish.next_attempt {
            self.absent(&next.id, &format!("{what}: fenced, with no retry attempt"))
                .await;
        }
    }

    /// Finishes `run` as failed with a retry attempt due at `due_at` (created at `now`), and
    /// returns the attempt.
    async fn fail_with_retry(
        &self,
        run: &Execution,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Execution {
        let attempt = run.retry(due_at, now);
        let failing = Finish {
            next_attempt: Some(attempt.clone()),
            ..finish_of(run, Failed, 100)
        };
        self.must_finish(&failing, "finish of a failure with a retry attempt")
            .await;
        attempt
    }

    /// Claims one buffered (pending) run of the job's `slot`, created at `now`, moving
    /// `nextRunAt` to `next`; returns the buffered execution.
    async fn buffer(
        &self,
        job: &Job,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) -> Execution {
        let job = self.job(&job.id).await;
        let buffered = pending_slot(&job, slot, now);
        let claim = SlotClaim {
            buffered: Some(buffered.id),
            ..claim_of(&job, vec![buffered.clone()], next, now)
        };
        self.must_claim(&claim, "a buffered run").await;
        buffered
    }

    /// `renew_lease`'s answer.
    async fn renew(&self, id: &ExecutionId, owner: &str, until: DateTime<Utc>) -> bool {
        self.ok(
            self.store.renew_lease(id, owner, until).await,
            "renew_lease",
        )
    }

    /// A new job due at minute 60 with its slot claimed at minute 61: one run leased to
    /// `owner-a` until minute 70. Returns the job as stored and the run.
    async fn running_job(&mut self, name: &str) -> (Job, Execution) {
        let job = self.create_due(name, self.at(60)).await;
        self.start_run(&job, "owner-a", self.at(61), self.at(70))
            .await
    }

    /// Deletes this behaviour's jobs, and with them their executions.
    async fn cleanup(self) {
        for id in &self.jobs {
            self.ok(self.store.delete_job(id).await, "delete_job (cleanup)");
        }
    }
}

/// A job and its executions, to check that a refused operation changed nothing.
#[derive(Debug, PartialEq)]
struct Snapshot {
    id: JobId,
    job: Option<Job>,
    executions: Vec<Execution>,
}

/// Runs the futures at once, each in its own task, released together; their outputs in order.
async fn race<T, F>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let futures: Vec<F> = futures.into_iter().collect();
    let start = Arc::new(tokio::sync::Barrier::new(futures.len()));
    let tasks: Vec<_> = futures
        .into_iter()
        .map(|f| {
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                f.await
            })
        })
        .collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(output) => outputs.push(output),
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("store conformance: a racing task did not finish: {e}"),
            },
        }
    }
    outputs
}

fn ms(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn lease(owner: &str, expires_at: DateTime<Utc>) -> Lease {
    Lease {
        owner: owner.to_string(),
        expires_at,
    }
}

/// The pending first attempt at a job's slot (a buffered run), created at `now`.
fn pending_slot(job: &Job, slot: DateTime<Utc>, now: DateTime<Utc>) -> Execution {
    let slot = Slot {
        scheduled_for: slot,
        fire_at: slot,
        blackout: None,
    };
    Execution::scheduled(job, &slot, now)
}

/// An execution running under `lease` since `now`.
fn started(mut e: Execution, now: DateTime<Utc>, lease: &Lease) -> Execution {
    e.status = Running;
    e.started_at = now;
    e.lease_owner = Some(lease.owner.clone());
    e.lease_expires_at = Some(lease.expires_at);
    e
}

/// The first attempt at a job's slot, running under `lease` since `now`.
fn running_slot(job: &Job, slot: DateTime<Utc>, now: DateTime<Utc>, lease: &Lease) -> Execution {
    started(pending_slot(job, slot, now), now, lease)
}

/// A manual run of a job, running under `lease` since `now`.
fn manual_run(job: &Job, now: DateTime<Utc>, lease: &Lease) -> Execution {
    started(Execution::manual(job, now), now, lease)
}

/// A slot recorded at `now` with an ended status (skipped, or any other).
fn ended_slot(
    job: &Job,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
    status: ExecutionStatus,
) -> Execution {
    let mut e = pending_slot(job, slot, now);
    e.status = status;
    e.completed_at = Some(now);
    e.duration_ms = Some(0);
    e.error_type = Some("overlap".into());
    e.error_message = Some(format!("{status}: 'on purpose'"));
    e
}

/// A slot recorded as skipped at `now`.
fn skipped_slot(job: &Job, slot: DateTime<Utc>, now: DateTime<Utc>) -> Execution {
    ended_slot(job, slot, now, Skipped)
}

/// A claim of `executions` on the job as read (its version and `nextRunAt`), starting those
/// that run, with no running-count condition and nothing buffered.
fn claim_of(
    job: &Job,
    executions: Vec<Execution>,
    next_run_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> SlotClaim {
    let Some(expected_next_run_at) = job.next_run_at else {
        panic!(
            "store conformance: suite: job {} has no next run to claim",
            job.id
        );
    };
    SlotClaim {
        job_id: job.id,
        expected_version: job.version,
        expected_next_run_at,
        expected_running: None,
        next_run_at,
        started: executions.iter().filter(|e| e.status == Running).count() as u32,
        executions,
        buffered: None,
        started_at: now,
    }
}

/// The owner's finish of a running execution with `status` after `duration_ms`: the final
/// record (result or error, tokens, cost) and the statistics it adds.
fn finish_of(running: &Execution, status: ExecutionStatus, duration_ms: u64) -> Finish {
    let completed_at = running.started_at + ms(duration_ms as i64);
    let error = status
        .is_failure()
        .then(|| format!("{status} after {duration_ms} ms: 'quoted' \"text\""));
    let (input, output, cost) = (
        duration_ms / 10 + 1,
        duration_ms / 20 + 1,
        duration_ms * 3 + 5,
    );
    let mut record = running.clone();
    record.status = status;
    record.completed_at = Some(completed_at);
    record.duration_ms = Some(duration_ms);
    record.api_latency_ms = Some(duration_ms / 2);
    record.input_tokens = Some(input);
    record.output_tokens = Some(output);
    record.tokens_used = Some(input + output);
    record.cost_micro_usd = Some(cost);
    record.error_message = error.clone();
    record.error_type = error.as_ref().map(|_| "server_error".to_string());
    record.error_details = error
        .as_ref()
        .map(|_| json!({"status": 503, "body": "down"}));
    record.lease_expires_at = None;
    if status == Success {
        record.tools_executed_count = 2;
        record.response = Some(ExecutionResponse {
            result: format!("done in {duration_ms} ms"),
            tools_used: vec!["search".into(), "calendar".into()],
            conversation_turns: Some(3),
            metadata: json!({"model": "test", "stop": null}),
        });
    }
    Finish {
        owner: running.lease_owner.clone().unwrap_or_default(),
        expired_by: None,
        stats: StatsDelta {
            status,
            counted: status != Cancelled,
            duration_ms,
            error,
            input_tokens: input,
            output_tokens: output,
            cost_micro_usd: cost,
            completed_at,
        },
        execution: record,
        next_attempt: None,
        promote: None,
    }
}

/// The job after `runs` of it started at `at`: the running count that much higher,
/// `lastRunStatus` running and `lastRunAt` the start.
fn started_job(job: &Job, runs: u32, at: DateTime<Utc>) -> Job {
    Job {
        running_count: job.running_count + runs,
        last_run_status: Some(Running),
        last_run_at: Some(at),
        ..job.clone()
    }
}

/// The job after finishes adding `history`, in order, as the store contract defines the
/// statistics (computed here afresh, not by any store's code): counted ends add to the counts
/// (success, or failure for failed, timeout and dead), durations, tokens and cost, and set
/// `lastRunDuration`/`lastRunError`; every end sets `lastRunStatus` and takes one from the
/// running count; a counted end adds its cost to the spend of its day and month
/// ([`Spend::add`]); a
/// counted success resets `consecutiveFailures`, a counted failure adds one; `averageDuration` is `totalDurationMs / totalRuns`, rounded down.
fn tallied(before: &Job, history: &[StatsDelta]) -> Job {
    let counted: Vec<&StatsDelta> = history.iter().filter(|d| d.counted).collect();
    let sum = |field: fn(&StatsDelta) -> u64| counted.iter().map(|d| field(d)).sum::<u64>();
    let of = |wanted: fn(ExecutionStatus) -> bool| {
        counted.iter().filter(|d| wanted(d.status)).count() as u64
    };
    let total_runs = before.total_runs + counted.len() as u64;
    let total_duration_ms = before.total_duration_ms + sum(|d| d.duration_ms);
    let (input, output) = (sum(|d| d.input_tokens), sum(|d| d.output_tokens));
    let last_counted = counted.last();
    let mut spend = before.spend;
    for d in &counted {
        spend.add(d.completed_at, d.cost_micro_usd);
    }
    let consecutive_failures =
        history
            .iter()
            .fold(before.consecutive_failures, |n, d| match d.status {
                _ if !d.counted => n,
                Success => 0,
                Failed | Timeout | Dead => n + 1,
                _ => n,
            });
    Job {
        consecutive_failures,
        spend,
        last_run_status: history
            .last()
            .map_or(before.last_run_status, |d| Some(d.status)),
        last_run_duration: last_counted.map_or(before.last_run_duration, |d| Some(d.duration_ms)),
        last_run_error: last_counted
            .map_or_else(|| before.last_run_error.clone(), |d| d.error.clone()),
        total_runs,
        success_count: before.success_count + of(|s| s == Success),
        failure_count: before.failure_count + of(ExecutionStatus::is_failure),
        average_duration: if counted.is_empty() {
            before.average_duration
        } else {
            Some(total_duration_ms / total_runs)
        },
        total_duration_ms,
        total_input_tokens: before.total_input_tokens + input,
        total_output_tokens: before.total_output_tokens + output,
        total_tokens: before.total_tokens + input + output,
        total_cost_micro_usd: before.total_cost_micro_usd + sum(|d| d.cost_micro_usd),
        running_count: before.running_count.saturating_sub(history.len() as u32),
        ..before.clone()
    }
}

/// Text that breaks naive stores: quotes, SQL, LIKE wildcards, scripts, several scripts and
/// directions, emoji with joiners and modifiers, control and invisible characters, trailing
/// space, composed and decomposed accents; NUL with `nul`. Each at most 64 characters (a tag).
fn hostile_text(nul: bool) -> Vec<&'static str> {
    let mut text = vec![
        "it's \"quoted\" `back` \\ back\\slash",
        "'; DROP TABLE jobs; --",
        "Robert'); DELETE FROM executions WHERE ('1'='1",
        "50%_off [a-z]* ${HOME} {{x}} <script>alert(1)</script>",
        "Gr\u{fc}\u{df}e \u{65e5}\u{672c}\u{8a9e} \u{5e2}\u{5d1}\u{5e8}\u{5d9}\u{5ea} \u{395}\u{3bb}",
        "emoji 🤖🗓️👍🏽 family 👨\u{200d}👩\u{200d}👧",
        "line\nbreak\r\ttab \u{7f} \u{200b}zero-width \u{feff}bom",
        "trailing space ",
        "e\u{301} decomposed, \u{e9} composed",
    ];
    if nul {
        text.push("nul \0 inside");
    }
    text
}

/// A job with every field set, the text ones to hostile text.
fn full_job(sb: &Sandbox<'_>, text: &[&str]) -> Job {
    let all = text.join(" | ");
    let mut job = sb.new_job("full");
    job.name = format!("{} {} {}", text[1], text[5], text[text.len() - 1]);
    job.prompt = all.clone();
    job.system_prompt = Some(text.iter().rev().copied().collect::<Vec<_>>().join("\n"));
    job.schedule = "cron(0 12 ? * MON-FRI *)".into();
    job.timezone = "America/St_Johns".into();
    job.max_turns = 7;
    job.timeout = 42;
    job.retry_policy = RetryPolicy {
        max_retries: 5,
        retry_delay: 11,
        max_delay: 700,
        retry_on_timeout: true,
    };
    job.tags.extend(text.iter().map(|t| t.to_string()));
    let mut keyed = serde_json::Map::new();
    for (i, t) in text.iter().enumerate() {
        keyed.insert(t.to_string(), json!(i));
    }
    job.metadata = json!({
        "text": text,
        "keyed": keyed,
        "nested": {"deep": [1, -2, 0.1, -2.5, true, false, null, {"k": "v"}, []]},
        "u64max": u64::MAX,
        "i64min": i64::MIN,
        "beyond f64": 9_007_199_254_740_993u64,
        "empty": "",
    });
    job.start_date = Some(sb.at(1) + ms(1));
    job.end_date = Some(sb.at(300 * 24 * 60) + ms(999));
    job.blackout_periods = vec![
        Blackout {
            start: sb.at(60) + ms(5),
            end: sb.at(120),
            reason: Some(all.clone()),
        },
        Blackout {
            start: sb.at(240),
            end: sb.at(300) + ms(1),
            reason: None,
        },
    ];
    job.dst_policy = DstPolicy {
        repeated: RepeatedTime::Twice,
        skipped: SkippedTime::Skip,
    };
    job.overlap_policy = OverlapPolicy::BufferOne;
    job.catch_up_policy = CatchUpPolicy::RunAll;
    job.catch_up_window = 77;
    job.jitter = 13;
    job.pause_note = Some(all.clone());
    job.last_run_at = Some(sb.at(30) + ms(5));
    job.last_run_status = Some(Timeout);
    job.last_run_duration = Some(1_234);
    job.last_run_error = Some(all);
    job.next_run_at = Some(sb.at(90) + ms(7));
    job.total_runs = 9;
    job.success_count = 5;
    job.failure_count = 4;
    job.average_duration = Some(137);
    job.total_duration_ms = 1_233;
    job.total_input_tokens = 1_000_001;
    job.total_output_tokens = 2_000_002;
    job.total_tokens = 3_000_003;
    job.total_cost_micro_usd = 4_000_004_000;
    job.consecutive_failures = 4_000_000_000;
    job.spend = Spend {
        day: 20311231,
        day_micro_usd: 1_000_000_000_000_001,
        month: 203112,
        month_micro_usd: 4_000_004_000,
    };
    job.budget = Some(Budget {
        daily_micro_usd: Some(1),
        monthly_micro_usd: Some(1_000_000_000_000_000),
    });
    job.max_concurrency = Some(10_000);
    job.pause_after_failures = Some(1);
    job.running_count = 2;
    job.buffered_execution_id = Some(ExecutionId::new_manual());
    job.created_at = sb.at(0) + ms(123);
    job.updated_at = sb.at(24 * 60) + ms(456);
    job.created_by = Some(text[2].to_string());
    job.updated_by = Some(text[4].to_string());
    job.version = 17;
    job
}

/// Jobs with NUL in one text field each: name, prompt, system prompt, a tag, a metadata key and
/// value, the pause note.
fn nul_variants(sb: &Sandbox<'_>) -> Vec<(&'static str, Job)> {
    let base = |name: &str| sb.new_job(name);
    let mut name = base("name");
    name.name = "nul \0 in the name".into();
    let mut prompt = base("prompt");
    prompt.prompt = "nul \0 in the prompt".into();
    let mut system = base("system prompt");
    system.system_prompt = Some("\0".into());
    let mut tag = base("tag");
    tag.tags.push("nul\0tag".into());
    let mut metadata = base("metadata");
    metadata.metadata = json!({"nul\0key": "nul\0value"});
    let mut note = base("pause note");
    note.pause_note = Some("paused\0".into());
    vec![
        ("name", name),
        ("prompt", prompt),
        ("systemPrompt", system),
        ("tags", tag),
        ("metadata", metadata),
        ("pauseNote", note),
    ]
}
