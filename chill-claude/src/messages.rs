//! The client of the Anthropic Messages API: `POST {base}/v1/messages`.
//!
//! The job's system prompt becomes `system`, its prompt the one user message; `maxTurns` does
//! not apply (one request is one turn). The answer's text blocks, concatenated, are the
//! result; the names of its `tool_use`, `server_tool_use` and `mcp_tool_use` blocks the tools.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chill_core::{AiClient, AiError, AiRequest, AiResponse, TokenUsage};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Exchange;
use crate::classify::{body_message, error_object_message, retry_after, status_error};
use crate::error::ConfigError;
use crate::http::{Received, Transport, parse_json};
use crate::settings::{self, ApiKey, HttpOptions};

/// The API's public base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The model used unless another is configured.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
/// The `anthropic-version` header sent.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The `max_tokens` sent unless another is configured.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
const VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");
const REQUEST_ID_HEADER: &str = "request-id";

/// Configuration of a [`MessagesClient`]. Its `Debug` never shows the API key.
///
/// ```
/// use chill_claude::MessagesConfig;
/// let config = MessagesConfig::new("sk-ant-secret")?
///     .with_model("claude-haiku-4-5")
///     .with_max_tokens(1024);
/// assert_eq!(config.url().as_str(), "https://api.anthropic.com/v1/messages");
/// assert!(!format!("{config:?}").contains("sk-ant-secret"));
/// # Ok::<(), chill_claude::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessagesConfig {
    url: reqwest::Url,
    api_key: ApiKey,
    model: String,
    max_tokens: u32,
    http: HttpOptions,
}

impl MessagesConfig {
    /// The public API with `api_key`, [`DEFAULT_MODEL`], [`DEFAULT_MAX_TOKENS`] and
    /// [`HttpOptions::default`].
    pub fn new(api_key: &str) -> Result<MessagesConfig, ConfigError> {
        Ok(MessagesConfig {
            url: settings::endpoint(DEFAULT_BASE_URL, "/v1/messages")?,
            api_key: ApiKey::new(api_key)?,
            model: DEFAULT_MODEL.to_string(),
            max_tokens: DEFAULT_MAX_TOKENS,
            http: HttpOptions::default(),
        })
    }

    /// From the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `ANTHROPIC_API_KEY` | the API key, required |
    /// | `ANTHROPIC_BASE_URL` | the base URL, optional (default [`DEFAULT_BASE_URL`]) |
    /// | `ANTHROPIC_MODEL` | the model, optional (default [`DEFAULT_MODEL`]) |
    ///
    /// Blank variables count as unset.
    pub fn from_env() -> Result<MessagesConfig, ConfigError> {
        MessagesConfig::from_lookup(settings::process_env)
    }

    /// As [`MessagesConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<MessagesConfig, ConfigError> {
        let mut config = MessagesConfig::new(&settings::required(&lookup, "ANTHROPIC_API_KEY")?)?;
        if let Some(base) = settings::var(&lookup, "ANTHROPIC_BASE_URL") {
            config = config.with_base_url(&base)?;
        }
        if let Some(model) = settings::var(&lookup, "ANTHROPIC_MODEL") {
            config = config.with_model(model.trim());
        }
        Ok(config)
    }

    /// Another base URL (a proxy, a gateway, a test server); `/v1/messages` is appended.
    pub fn with_base_url(mut self, base: &str) -> Result<MessagesConfig, ConfigError> {
        self.url = settings::endpoint(base, "/v1/messages")?;
        Ok(self)
    }

    /// The model to ask.
    pub fn with_model(mut self, model: impl Into<String>) -> MessagesConfig {
        self.model = model.into();
        self
    }

    /// The most tokens an answer may have.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> MessagesConfig {
        self.max_tokens = max_tokens;
        self
    }

    /// Set the default timeout (used when a request names none).
    pub fn with_timeout(mut self, timeout: Duration) -> MessagesConfig {
        self.http.timeout = timeout;
        self
    }

    /// Replace the HTTP options.
    pub fn with_http(mut self, http: HttpOptions) -> MessagesConfig {
        self.http = http;
        self
    }

    /// The endpoint.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The model.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The HTTP options.
    pub fn http(&self) -> &HttpOptions {
        &self.http
    }
}

/// An [`AiClient`] for the Anthropic Messages API, over one pooled HTTP client. Cheap to
/// clone (clones share the pool). Its `Debug` never shows the API key.
///
/// A success fills [`AiResponse`] with the concatenated text blocks, the tool names,
/// `usage.input_tokens`/`output_tokens` (cache tokens stay in the metadata), the model, one
/// conversation turn, and the metadata `{"messageId", "model", "stopReason", "stopSequence",
/// "usage", "requestId"}`.
///
/// Errors, by status and by the body's `error.type`: `rate_limit_error` (429) is
/// [`AiError::RateLimited`] with `retry-after`; `overloaded_error` (529), `api_error` (500)
/// and other 5xx are [`AiError::Server`]; `invalid_request_error` (400),
/// `authentication_error` (401), `permission_error` (403), `not_found_error` (404),
/// `request_too_large` (413) and other 4xx are [`AiError::InvalidRequest`]; transport
/// failures, timeouts and unusable answers as for [`crate::QueryClient`]. Messages name the
/// error type and the `request-id`.
#[derive(Clone)]
pub struct MessagesClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    headers: HeaderMap,
    model: String,
    max_tokens: u32,
}

impl MessagesClient {
    /// A client for `config`.
    pub fn new(config: MessagesConfig) -> Result<MessagesClient, ConfigError> {
        let transport = Transport::new(config.url, &config.http)?;
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, config.api_key.header_value().clone());
        headers.insert(VERSION_HEADER, HeaderValue::from_static(ANTHROPIC_VERSION));
        Ok(MessagesClient {
            inner: Arc::new(Inner {
                transport,
                headers,
                model: config.model,
                max_tokens: config.max_tokens,
            }),
        })
    }

    /// A client configured from the environment ([`MessagesConfig::from_env`]).
    pub fn from_env() -> Result<MessagesClient, ConfigError> {
        MessagesClient::new(MessagesConfig::from_env()?)
    }

    /// Send one request: the classified outcome, with the time it took and the HTTP status.
    pub async fn exchange(&self, request: &AiRequest) -> Exchange {
        let inner = &self.inner;
        let payload = &request.payload;
        let body = MessagesRequest {
            model: &inner.model,
            max_tokens: inner.max_tokens,
            system: payload.system_prompt.as_deref(),
            messages: [Message {
                role: "user",
                content: &payload.prompt,
            }],
        };
        let body = match serde_json::to_vec(&body) {
            Ok(body) => body,
            Err(e) => {
                return Exchange::unsent(AiError::InvalidRequest {
                    status: None,
                    message: format!("the request could not be encoded: {e}"),
                });
            }
        };
        let posted = inner
            .transport
            .post(request, inner.headers.clone(), body)
            .await;
        Exchange::from_posted(posted, answer)
    }
}

#[async_trait]
impl AiClient for MessagesClient {
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
        self.exchange(request).await.outcome
    }
}

impl fmt::Debug for MessagesClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = &self.inner.transport;
        f.debug_struct("MessagesClient")
            .field("url", &transport.shown_url())
            .field("api_key", &"[redacted]")
            .field("model", &self.inner.model)
            .field("max_tokens", &self.inner.max_tokens)
            .field("http", transport.options())
            .finish()
    }
}

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: [Message<'a>; 1],
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Deserialize)]
struct MessagesBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn answer(received: Received) -> Result<AiResponse, AiError> {
    let request_id = received
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !received.status.is_success() {
        return Err(api_error(&received, request_id.as_deref()));
    }
    let body: MessagesBody = parse_json(&received)?;
    if body.kind.as_deref() == Some("error") {
        let error = body.error.unwrap_or(Value::Null);
        return Err(AiError::Api {
            message: with_request_id(error_object_message(&error), request_id.as_deref()),
            details: Some(error),
        });
    }
    let mut result = String::new();
    let mut tools_used = Vec::new();
    for block in body.content {
        match (block.kind.as_str(), block.text, block.name) {
            ("text", Some(text), _) => result.push_str(&text),
            ("tool_use" | "server_tool_use" | "mcp_tool_use", _, Some(name)) => {
                tools_used.push(name)
            }
            _ => {}
        }
    }
    let usage = body.usage.as_ref().and_then(|u| {
        Some(TokenUsage {
            input_tokens: u.get("input_tokens")?.as_u64()?,
            output_tokens: u.get("output_tokens")?.as_u64()?,
        })
    });
    Ok(AiResponse {
        result,
        tools_used,
        conversation_turns: Some(1),
        metadata: json!({
            "messageId": body.id,
            "model": body.model,
            "stopReason": body.stop_reason,
            "stopSequence": body.stop_sequence,
            "usage": body.usage,
            "requestId": request_id,
        }),
        usage,
        model: body.model,
    })
}

/// A non-success status, classified by status and by the documented error types (which win
/// when they disagree with the status).
fn api_error(received: &Received, request_id: Option<&str>) -> AiError {
    let (message, json) = body_message(received.status, &received.body);
    let message = with_request_id(message, request_id);
    let kind = json
        .as_ref()
        .and_then(|j| j.pointer("/error/type"))
        .and_then(Value::as_str);
    let status = Some(received.status.as_u16());
    match kind {
        Some("rate_limit_error") => AiError::RateLimited {
            retry_after: retry_after(&received.headers, SystemTime::now()),
            message,
        },
        Some("overloaded_error" | "api_error" | "timeout_error") => {
            AiError::Server { status, message }
        }
        _ => status_error(
            received.status,
            &received.headers,
            message,
            SystemTime::now(),
        ),
    }
}

fn with_request_id(message: String, request_id: Option<&str>) -> String {
    match request_id {
        Some(id) => format!("{message} (request-id {id})"),
        None => message,
    }
}
