//! The crate's error (options, provisioning) and the mapping of SDK errors into
//! [`StoreError`], by error code (never by message text).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use chill_core::StoreError;

/// Why opening a store or provisioning its table failed. Store operations return
/// [`StoreError`]; this error covers what happens before.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DynamoError {
    /// An option has a value the store cannot use.
    #[error("option {option}: {message}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The table exists but lacks what the store needs (an index, the key schema).
    #[error("table {table}: {message}")]
    TableMismatch {
        /// The table.
        table: String,
        /// What is missing or different.
        message: String,
    },
    /// A DynamoDB request failed.
    #[error("{operation} failed: {source}")]
    Request {
        /// The operation (`CreateTable`, ...).
        operation: &'static str,
        /// The error, mapped like every store error.
        #[source]
        source: StoreError,
    },
}

/// Error codes that mean "try again later": throttling, server-side trouble, a transaction
/// that collided with another one on the same item.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// The contract's error for an SDK error of operation `op`. Throttling, 5xx, timeouts and
/// connection failures (already retried by the SDK's retry configuration) are `Unavailable`.
pub(crate) fn store_error<E, R>(op: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("unknown");
            let message = e.message().unwrap_or_default();
            if TRANSIENT_CODES.contains(&code) {
                StoreError::Unavailable(format!("{op}: {code}: {message}"))
            } else {
                StoreError::Backend(format!("{op}: {code}: {message}"))
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("{op}: {}", error_chain(&error)))
        }
        _ => StoreError::Backend(format!("{op}: {}", error_chain(&error))),
    }
}

/// The error code of a service error, if it is one.
pub(crate) fn service_code<E, R>(error: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// An error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An SDK builder that refused (a required field missing): a bug of this crate.
pub(crate) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("building a DynamoDB request: {e}"))
}
