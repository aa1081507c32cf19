//! ChillScheduler's AI clients over HTTP: [`QueryClient`] for the requirements' `POST /query`
//! endpoint and [`MessagesClient`] for the Anthropic Messages API. Both implement
//! [`chill_core::AiClient`] and classify every failure into the [`chill_core::AiError`] kind
//! that drives the engine's retry table.
//!
//! Wiring the engine to the `/query` endpoint:
//!
//! ```
//! use std::sync::Arc;
//! use chill_claude::{QueryClient, QueryConfig};
//! use chill_core::{Chill, ChillOptions, MemoryStore, SystemClock};
//!
//! // Or `QueryClient::from_env()?`, from CLAUDE_API_URL, CLAUDE_API_KEY, CLAUDE_API_TIMEOUT.
//! let config = QueryConfig::new("http://claude.internal:3000/query")?.with_api_key("secret-key")?;
//! let ai = QueryClient::new(config)?;
//! assert!(!format!("{ai:?}").contains("secret-key")); // keys never show
//! let chill = Chill::new(
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(SystemClock),
//!     Arc::new(ai),
//!     ChillOptions::default(),
//! );
//! # let _ = chill;
//! # Ok::<(), chill_claude::ConfigError>(())
//! ```
//!
//! Or the Messages API, from `ANTHROPIC_API_KEY` (and optionally `ANTHROPIC_BASE_URL`,
//! `ANTHROPIC_MODEL`):
//!
//! ```no_run
//! let ai = chill_claude::MessagesClient::from_env()?;
//! # Ok::<(), chill_claude::ConfigError>(())
//! ```
//!
//! | outcome | [`AiError`] kind | the engine |
//! |---|---|---|
//! | 2xx with an answer | — (success) | `success` |
//! | 2xx whose body reports an error, or is not usable JSON (wrong content type, malformed, over the size limit) | `Api` | `failed`, no retry (the endpoint did the work; a retry could repeat its tools' effects) |
//! | 429 | `RateLimited` with `Retry-After` (seconds or HTTP date) | retried after it |
//! | 5xx, 529 | `Server` | retried with backoff |
//! | other 4xx, a redirect | `InvalidRequest` | `failed`, no retry |
//! | connection refused or reset, DNS failure, response cut off | `Network` | retried with backoff |
//! | no complete answer within the timeout | `Timeout` | `timeout` |
//!
//! Each request carries the execution and job ids in `x-chill-execution-id` and
//! `x-chill-job-id`. API keys are kept in header values marked sensitive and never appear in
//! `Debug` output, errors or tracing fields. Connections are pooled per client; clone a
//! client to share its pool.

mod classify;
mod error;
mod http;
mod messages;
mod query;
mod settings;

use std::time::Duration;

use chill_core::{AiError, AiResponse};

pub use error::ConfigError;
pub use messages::{
    ANTHROPIC_VERSION, DEFAULT_BASE_URL, DEFAULT_MAX_TOKENS, DEFAULT_MODEL, MessagesClient,
    MessagesConfig,
};
pub use query::{QueryClient, QueryConfig};
pub use settings::HttpOptions;

/// One call's exchange with an endpoint: the classified outcome, the time from sending the
/// request to the last byte of the answer (or to the failure), and the HTTP status when a
/// response came.
///
/// [`chill_core::AiClient::call`] returns only the outcome; the engine measures the latency
/// it records on its own clock.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Exchange {
    /// The answer, or why there is none.
    pub outcome: Result<AiResponse, AiError>,
    /// Wall-clock time of the exchange.
    pub latency: Duration,
    /// The HTTP status, when a response came.
    pub status: Option<u16>,
}

impl Exchange {
    fn from_posted(
        posted: http::Posted,
        answer: impl FnOnce(http::Received) -> Result<AiResponse, AiError>,
    ) -> Exchange {
        Exchange {
            outcome: posted.outcome.and_then(answer),
            latency: posted.latency,
            status: posted.status,
        }
    }

    fn unsent(error: AiError) -> Exchange {
        Exchange {
            outcome: Err(error),
            latency: Duration::ZERO,
            status: None,
        }
    }
}
