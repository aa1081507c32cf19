//! The GraphQL API: the requirements' schema (queries, mutations, subscriptions), kept name for
//! name and type for type, and extended with pages, events and schedule previews.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use chill_core::{Chill, ChillOptions, MemoryStore, SystemClock};
//! # struct Echo;
//! # #[async_trait::async_trait]
//! # impl chill_core::AiClient for Echo {
//! #     async fn call(&self, r: &chill_core::AiRequest) -> Result<chill_core::AiResponse, chill_core::AiError> {
//! #         Ok(chill_core::AiResponse::default())
//! #     }
//! # }
//! let chill = Chill::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), Arc::new(Echo), ChillOptions::default());
//! let schema = chill_examples::graphql::schema(chill);
//! let response = schema
//!     .execute(r#"mutation { createJob(input: {name: "n", prompt: "p", schedule: "61 * * * *"}) { id } }"#)
//!     .await;
//! assert_eq!(response.errors[0].message, "schedule: minute: 61 is out of range 0-59");
//! # });
//! ```

mod errors;
mod inputs;
mod mutation;
pub mod outbox;
mod query;
pub mod shared;
mod subscription;
mod types;
pub mod websocket;

use async_graphql::{Result, Schema};
use chill_core::{Chill, ExecutionId, JobId};

pub use inputs::{
    BlackoutInput, BudgetInput, CreateJobInput, JobFilterInput, RetryPolicyInput, UpdateJobInput,
};
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;
pub use types::{
    BlackoutObject, BudgetObject, DstPolicyObject, ExecutionEventObject, ExecutionObject,
    ExecutionPageObject, JobObject, JobPageObject, RetryPolicyObject, SpendObject,
};

/// The schema type.
pub type ChillSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema over an engine.
pub fn schema(chill: Chill) -> ChillSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(chill)
        .finish()
}

/// The schema in GraphQL SDL.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

/// A job id argument; the error names the argument.
pub(crate) fn job_id(field: &str, id: &async_graphql::ID) -> Result<JobId> {
    id.parse::<JobId>().map_err(|mut e| {
        e.field = field.to_string();
        errors::invalid(e)
    })
}

/// An execution id argument; the error names the argument.
pub(crate) fn execution_id(field: &str, id: &async_graphql::ID) -> Result<ExecutionId> {
    id.parse::<ExecutionId>().map_err(|mut e| {
        e.field = field.to_string();
        errors::invalid(e)
    })
}

/// A `limit` argument: `default` when absent, 1 to 1000.
pub(crate) fn limit_arg(field: &str, limit: Option<i32>, default: u32) -> Result<u32> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=1000).contains(&n) => Ok(n as u32),
        Some(n) => Err(errors::invalid(chill_core::ValidationError::new(
            field,
            format!("{n} is out of range 1-1000"),
        ))),
    }
}
