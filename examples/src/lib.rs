//! ChillScheduler's reference app, the `chill` binary: the library wired for real.
//!
//! - `chill serve`: the GraphQL server of the requirements (queries, mutations, live
//!   subscriptions over WebSocket), an offline GraphQL IDE page, `/healthz` and Prometheus
//!   `/metrics`, over any store URL, with a demo AI endpoint when none is configured.
//! - `chill next|validate|jobs|executions|export|import|demo-ai`: the CLI.
//!
//! The pieces are public so that tests and host applications can reuse them; a server in
//! process, on an ephemeral port, over an in-memory SQLite database:
//!
//! ```no_run
//! use chill_examples::{AiChoice, ServeConfig, Server};
//!
//! # async fn run() -> Result<(), chill_examples::AppError> {
//! let config = ServeConfig {
//!     store_url: "sqlite::memory:".into(),
//!     listen: "127.0.0.1:0".into(),
//!     ai: AiChoice::query("http://127.0.0.1:3000/query")?,
//!     demo_jobs: false,
//! };
//! let server = Server::start(config).await?;
//! println!("GraphQL on http://{}/graphql", server.local_addr());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod ai;
pub mod cli;
pub mod commands;
pub mod demo_ai;
pub mod demo_jobs;
mod error;
pub mod graphql;
pub mod metrics;
pub mod output;
pub mod server;
pub mod store_url;
pub mod transfer;

pub use ai::AiChoice;
pub use error::AppError;
pub use server::{ServeConfig, Server};
