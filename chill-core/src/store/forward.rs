//! [`forward_store!`]: a [`Store`](crate::store::Store) for a wrapper around another store,
//! every method forwarded through one expression, so that no wrapper can forget a method (a
//! forgotten one silently falls back to the trait's default, which may be slower).

/// Whether a store call changes what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
    /// A write that may also lease an execution to the caller.
    GrantsLease,
}

/// Implement `Store` for `$wrapper`, whose field `inner: Arc<dyn Store>` is the wrapped store.
/// Each method binds `$this` (the wrapper), `$op` (the method's name, a `&'static str`),
/// `$access` (an [`Access`]) and `$call` (the inner store's future, not yet polled), then
/// evaluates `$around`, which must await `$call` and return the method's result.
///
/// ```ignore
/// forward_store!(TracedStore, |_this, op, _access, call| traced(op, call).await);
/// ```
macro_rules! forward_store {
    ($wrapper:ty, |$this:ident, $op:ident, $access:ident, $call:ident| $around:expr) => {
        $crate::store::forward::forward_store! { @impl $wrapper, |$this, $op, $access, $call| $around,
            create_job(job: &$crate::model::Job) -> (), Write;
            get_job(id: &$crate::model::JobId) -> Option<$crate::model::Job>, Read;
            inactive_jobs(ids: &[$crate::model::JobId]) -> Vec<$crate::model::JobId>, Read;
            update_job(job: &$crate::model::Job, expected_version: u64) -> (), Write;
            delete_job(id: &$crate::model::JobId) -> bool, Write;
            list_jobs(filter: &$crate::store::JobFilter, page: &$crate::store::PageRequest) -> $crate::store::Page<$crate::model::Job>, Read;
            get_execution(id: &$crate::model::ExecutionId) -> Option<$crate::model::Execution>, Read;
            list_executions(job_id: &$crate::model::JobId, page: &$crate::store::PageRequest) -> $crate::store::Page<$crate::model::Execution>, Read;
            due_jobs(now: ::chrono::DateTime<::chrono::Utc>, limit: usize) -> Vec<$crate::model::Job>, Read;
            due_attempts(now: ::chrono::DateTime<::chrono::Utc>, limit: usize) -> Vec<$crate::model::Execution>, Read;
            next_due_at() -> Option<::chrono::DateTime<::chrono::Utc>>, Read;
            claim_slots(claim: &$crate::store::SlotClaim) -> bool, GrantsLease;
            start_manual(execution: &$crate::model::Execution, require_idle: bool) -> $crate::store::ManualStart, GrantsLease;
            claim_attempt(id: &$crate::model::ExecutionId, lease: &$crate::store::Lease, now: ::chrono::DateTime<::chrono::Utc>) -> Option<$crate::model::Execution>, GrantsLease;
            renew_lease(id: &$crate::model::ExecutionId, owner: &str, expires_at: ::chrono::DateTime<::chrono::Utc>) -> bool, Write;
            finish(finish: &$crate::store::Finish) -> $crate::store::FinishOutcome, GrantsLease;
            expired_leases(now: ::chrono::DateTime<::chrono::Utc>, limit: usize) -> Vec<$crate::model::Execution>, Read;
            delete_executions_before(before: ::chrono::DateTime<::chrono::Utc>, limit: usize) -> u64, Write;
            list_finished(from: ::chrono::DateTime<::chrono::Utc>, to: ::chrono::DateTime<::chrono::Utc>, page: &$crate::store::PageRequest) -> $crate::store::Page<$crate::model::Execution>, Read;
            executions_before(before: ::chrono::DateTime<::chrono::Utc>, limit: usize) -> Vec<$crate::model::Execution>, Read;
            delete_executions(ids: &[$crate::model::ExecutionId]) -> u64, Write;
        }
    };
    (@impl $wrapper:ty, |$this:ident, $op:ident, $access:ident, $call:ident| $around:expr,
        $($method:ident($($arg:ident: $ty:ty),*) -> $out:ty, $kind:ident;)*) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $wrapper {
            $(
                async fn $method(&self, $($arg: $ty),*) -> Result<$out, $crate::store::StoreError> {
                    let $this = self;
                    let $op: &'static str = stringify!($method);
                    let $access = $crate::store::forward::Access::$kind;
                    let $call = self.inner.$method($($arg),*);
                    $around
                }
            )*
        }
    };
}

pub(crate) use forward_store;
