//! Engine errors as GraphQL errors: the message is the engine's (it names the field and the
//! problem for invalid input), and the extensions carry a `code` and, for invalid input, the
//! `field`.

use async_graphql::{Context, ErrorExtensions, Result};
use chill_core::{Chill, ValidationError};

/// The engine behind a request.
pub(crate) fn chill<'a>(ctx: &Context<'a>) -> Result<&'a Chill> {
    ctx.data::<Chill>()
}

/// An invalid input as a GraphQL error (code `INVALID_INPUT`, with its `field`).
pub(crate) fn invalid(err: ValidationError) -> async_graphql::Error {
    async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
        ext.set("code", "INVALID_INPUT");
        ext.set("field", err.field.clone());
    })
}

/// An engine error as a GraphQL error.
pub(crate) fn to_gql(err: chill_core::Error) -> async_graphql::Error {
    let code = match &err {
        chill_core::Error::Validation(v) => return invalid(v.clone()),
        chill_core::Error::JobNotFound(_) | chill_core::Error::ExecutionNotFound(_) => "NOT_FOUND",
        chill_core::Error::JobNotActive(_) => "JOB_NOT_ACTIVE",
        chill_core::Error::Busy(_) => "BUSY",
        chill_core::Error::VersionConflict { .. } => "VERSION_CONFLICT",
        chill_core::Error::ShuttingDown => "SHUTTING_DOWN",
        chill_core::Error::AtConcurrencyLimit { .. } => "AT_CONCURRENCY_LIMIT",
        chill_core::Error::TriggerLimited { .. } => "TRIGGER_LIMITED",
        chill_core::Error::BudgetExceeded { .. } => "BUDGET_EXCEEDED",
        chill_core::Error::NotRetryable { .. } => "NOT_RETRYABLE",
        chill_core::Error::AlreadyRetried(_) => "ALREADY_RETRIED",
        chill_core::Error::Store(_) => "STORE_ERROR",
        // A kind added to the engine later.
        _ => "ENGINE_ERROR",
    };
    let retry_after = match &err {
        chill_core::Error::TriggerLimited { retry_after, .. } => Some(retry_after.as_secs_f64()),
        _ => None,
    };
    async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
        ext.set("code", code);
        if let Some(seconds) = retry_after {
            ext.set("retryAfterSeconds", seconds);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chill_core::{Error, ExecutionId, ExecutionStatus, JobId};

    fn code_of(err: Error) -> (String, async_graphql::Value) {
        let error = to_gql(err);
        let extensions = error.extensions.expect("extensions");
        let code = match extensions.get("code") {
            Some(async_graphql::Value::String(code)) => code.clone(),
            other => panic!("no code: {other:?}"),
        };
        let retry_after = extensions
            .get("retryAfterSeconds")
            .cloned()
            .unwrap_or(async_graphql::Value::Null);
        (code, retry_after)
    }

    #[test]
    fn each_refusal_has_its_own_code() {
        let job_id = JobId::new();
        let execution_id = ExecutionId::new_manual();
        let cases = [
            (
                Error::AtConcurrencyLimit {
                    job_id,
                    running: 2,
                    limit: 2,
                },
                "AT_CONCURRENCY_LIMIT",
            ),
            (
                Error::BudgetExceeded {
                    job_id,
                    reason: "the job's daily budget is spent".into(),
                },
                "BUDGET_EXCEEDED",
            ),
            (
                Error::NotRetryable {
                    execution_id,
                    status: ExecutionStatus::Success,
                },
                "NOT_RETRYABLE",
            ),
            (Error::AlreadyRetried(execution_id), "ALREADY_RETRIED"),
            (Error::Busy(job_id), "BUSY"),
            (Error::JobNotFound(job_id), "NOT_FOUND"),
        ];
        for (err, code) in cases {
            assert_eq!(code_of(err).0, code);
        }
    }

    #[test]
    fn a_limited_trigger_says_when_to_try_again() {
        let (code, retry_after) = code_of(Error::TriggerLimited {
            job_id: JobId::new(),
            max: 10,
            per: std::time::Duration::from_secs(60),
            retry_after: std::time::Duration::from_millis(2500),
        });
        assert_eq!(code, "TRIGGER_LIMITED");
        assert_eq!(retry_after, async_graphql::Value::from(2.5));
    }
}
