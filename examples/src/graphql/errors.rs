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
        _ => "STORE_ERROR",
    };
    async_graphql::Error::new(err.to_string()).extend_with(|_, ext| ext.set("code", code))
}
