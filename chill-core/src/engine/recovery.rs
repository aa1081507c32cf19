//! Recovery of executions left `running` with nobody running them: those whose lease
//! expired (their instance died), and those leased to this instance that it lost track of
//! (see [`super::lease_writes`]). Each is recorded `failed` (`lease_expired`) and its job's
//! retry policy applies.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Inner, executor, retry};
use crate::model::{ErrorType, Execution, ExecutionStatus};
use crate::store::StoreError;

/// One recovery round: expired leases, then this instance's orphans. How many were recovered.
pub(crate) async fn recover(inner: &Arc<Inner>) -> Result<usize, StoreError> {
    let expired = recover_expired(inner).await?;
    Ok(expired + recover_orphans(inner).await?)
}

/// Mark executions whose lease expired `failed` (`lease_expired`) and apply the retry policy.
async fn recover_expired(inner: &Arc<Inner>) -> Result<usize, StoreError> {
    let now = inner.now();
    let expired = inner
        .store
        .expired_leases(now, inner.options.claim_batch)
        .await?;
    let count = expired.len();
    for running in expired {
        let owner = running.lease_owner.clone().unwrap_or_default();
        let message = format!(
            "the lease of instance '{owner}' expired at {}; the instance is presumed dead",
            running
                .lease_expires_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        );
        tracing::warn!(execution_id = %running.id, job_id = %running.job_id, %owner, "recovering an execution whose lease expired");
        recover_one(inner, &running, message, now, Some(now)).await?;
    }
    Ok(count)
}

/// After a lease-granting write failed in a way that may have taken effect (or its caller
/// stopped waiting), look for executions leased to this instance that none of its tasks
/// runs or is about to run, and recover them now rather than when their lease expires.
///
/// A write that began at `since` leased until at most `since` + claim-ahead + a lease (its
/// lease was computed before it began), so the running executions whose lease ends before
/// that hold every orphan; the others among them are renewed past it within a heartbeat.
/// Executions that started before this engine was built are left to their lease: another
/// process with the same instance id may still run them. When the look was incomplete (a
/// full batch, a write under way for the job of an execution not running yet), the next
/// round looks again.
async fn recover_orphans(inner: &Arc<Inner>) -> Result<usize, StoreError> {
    let Some(since) = inner.lease_writes.take_unsure() else {
        return Ok(0);
    };
    let result = recover_orphans_since(inner, since).await;
    if !matches!(result, Ok((_, true))) {
        inner.lease_writes.mark_unsure(since);
    }
    result.map(|(count, _)| count)
}

/// The work of [`recover_orphans`]: how many were recovered, and whether the look was
/// complete.
async fn recover_orphans_since(
    inner: &Arc<Inner>,
    since: DateTime<Utc>,
) -> Result<(usize, bool), StoreError> {
    let now = inner.now();
    let leased_before =
        since + inner.ahead_length() + inner.lease_length() + TimeDelta::milliseconds(1);
    let limit = inner.options.claim_batch;
    let leased = inner.store.expired_leases(leased_before, limit).await?;
    let mut complete = leased.len() < limit;
    // Decided for all before any is recovered (which awaits the store): a run that ends
    // meanwhile leaves `running` only after its end is written, which fences the recovery.
    let mut orphans = Vec::new();
    for running in leased {
        let mine = running.lease_owner.as_deref() == Some(inner.options.instance_id.as_str());
        if !mine || running.started_at < inner.built_at {
            continue;
        }
        // In this order: a run leaves `under_way` only after it entered `running`.
        let under_way = inner.lease_writes.is_under_way(&running.job_id);
        if inner.running().contains_key(&running.id) {
            continue;
        }
        if under_way {
            complete = false;
        } else {
            orphans.push(running);
        }
    }
    let count = orphans.len();
    for orphan in orphans {
        let message = format!(
            "instance '{}' leased this execution but lost track of it (a store write whose outcome it could not know, or a run whose end it could not write); recovered by that instance",
            inner.options.instance_id
        );
        tracing::warn!(execution_id = %orphan.id, job_id = %orphan.job_id, "recovering an execution this instance lost track of");
        recover_one(inner, &orphan, message, now, None).await?;
    }
    Ok((count, complete))
}

/// Record `running` `failed` (`lease_expired`, with `message`) and apply its job's retry
/// policy, fenced on its lease (expired by `expired_by` when given).
async fn recover_one(
    inner: &Arc<Inner>,
    running: &Execution,
    message: String,
    now: DateTime<Utc>,
    expired_by: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let job = inner.store.get_job(&running.job_id).await?;
    let mut record = executor::ended_without_answer(
        running,
        ExecutionStatus::Failed,
        ErrorType::LeaseExpired,
        message,
        now,
    );
    let next = match &job {
        Some(job) if job.enabled && job.deleted_at.is_none() => {
            let decision = retry::decide(
                &job.retry_policy,
                running.attempt,
                &retry::Failure::LeaseExpired,
                now,
                &mut inner.rng(),
            );
            record.status = decision.status;
            decision.retry_at.map(|at| running.retry(at, now))
        }
        _ => None,
    };
    executor::finish(inner, record, next, running, expired_by).await;
    Ok(())
}
