//! The AI client contract: one call takes the requirements' request payload and returns the
//! response, or an [`AiError`] whose kind drives the engine's retry decisions.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{ExecutionId, JobId, RequestPayload};

/// One call to the AI endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct AiRequest {
    /// What is sent: `{prompt, systemPrompt, options: {maxTurns}}`.
    pub payload: RequestPayload,
    /// How long the call may take; the engine also enforces it on its clock.
    pub timeout: Duration,
    /// The job, for correlation (headers, logs).
    pub job_id: JobId,
    /// The execution, for correlation (headers, logs).
    pub execution_id: ExecutionId,
}

/// Token counts reported by the endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Tokens of the prompt (input).
    pub input_tokens: u64,
    /// Tokens of the answer (output).
    pub output_tokens: u64,
}

impl TokenUsage {
    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// A successful answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AiResponse {
    /// The answer text.
    pub result: String,
    /// Names of the tools (MCP servers) the endpoint used.
    pub tools_used: Vec<String>,
    /// Conversation turns used, when reported.
    pub conversation_turns: Option<u32>,
    /// Anything else the endpoint reported.
    pub metadata: serde_json::Value,
    /// Token counts, when reported.
    pub usage: Option<TokenUsage>,
    /// The model that answered, when reported (used to price tokens).
    pub model: Option<String>,
}

/// Why an AI call failed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AiError {
    /// Connection refused or reset, DNS failure, a response cut off: retried with backoff.
    #[error("network error: {0}")]
    Network(String),
    /// No answer within the timeout: retried only when the job's policy says so.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// HTTP 429: retried after `retry_after` (or the backoff), counting toward maxRetries.
    #[error("rate limited{}: {message}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The `Retry-After` the endpoint asked for.
        retry_after: Option<Duration>,
        /// What the endpoint said.
        message: String,
    },
    /// HTTP 5xx (and 529 overloaded): retried with backoff.
    #[error("server error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Server {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the endpoint said.
        message: String,
    },
    /// HTTP 4xx other than 429: the request itself is wrong; not retried.
    #[error("invalid request{}: {message}", status.map(|s| format!(" ({s})")).unwrap_or_default())]
    InvalidRequest {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the endpoint said.
        message: String,
    },
    /// The endpoint answered but reported an error (`error` set in a 200 response): not
    /// retried.
    #[error("API error: {message}")]
    Api {
        /// What the endpoint said.
        message: String,
        /// The error object, when there was one.
        details: Option<serde_json::Value>,
    },
}

impl AiError {
    /// The execution's `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            AiError::Network(_) => "network",
            AiError::Timeout(_) => "timeout",
            AiError::RateLimited { .. } => "rate_limited",
            AiError::Server { .. } => "server_error",
            AiError::InvalidRequest { .. } => "invalid_request",
            AiError::Api { .. } => "api_error",
        }
    }

    /// Whether the retry table retries this error (timeouts depend on the job's policy and
    /// are not included).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AiError::Network(_) | AiError::RateLimited { .. } | AiError::Server { .. }
        )
    }
}

/// An AI endpoint. Used as `Arc<dyn AiClient>`.
///
/// Implementations classify every failure into an [`AiError`]; they need not enforce
/// `request.timeout` exactly (the engine does, on its clock) but should not wait much longer.
///
/// ```
/// use async_trait::async_trait;
/// use chill_core::{AiClient, AiError, AiRequest, AiResponse};
///
/// /// Answers every prompt with its own text.
/// struct Echo;
///
/// #[async_trait]
/// impl AiClient for Echo {
///     async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
///         Ok(AiResponse { result: request.payload.prompt.clone(), ..Default::default() })
///     }
/// }
/// let client: std::sync::Arc<dyn AiClient> = std::sync::Arc::new(Echo);
/// # let _ = client;
/// ```
#[async_trait]
pub trait AiClient: Send + Sync {
    /// Send one request and wait for the answer.
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError>;
}
