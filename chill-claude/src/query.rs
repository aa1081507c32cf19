//! The client of the requirements' endpoint: `POST {base}/query`.
//!
//! Request (exactly the requirements' format; `systemPrompt` left out when there is none):
//!
//! ```json
//! {"prompt": "...", "systemPrompt": "...", "options": {"maxTurns": 10}}
//! ```
//!
//! Response: `{"result": "...", "toolsUsed": ["slack", "jira"], "metadata": {}, "error": null}`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chill_core::{AiClient, AiError, AiRequest, AiResponse, TokenUsage};
use reqwest::header::{HeaderMap, HeaderName};
use serde::Deserialize;
use serde_json::Value;

use crate::Exchange;
use crate::classify::{body_message, error_object_message, status_error};
use crate::error::ConfigError;
use crate::http::{Received, Transport, parse_json};
use crate::settings::{self, ApiKey, HttpOptions};

/// Configuration of a [`QueryClient`]. Its `Debug` never shows the API key.
///
/// ```
/// use std::time::Duration;
/// use chill_claude::QueryConfig;
/// let config = QueryConfig::new("http://claude.internal:3000")?
///     .with_api_key("secret-key")?
///     .with_timeout(Duration::from_secs(120));
/// assert_eq!(config.url().as_str(), "http://claude.internal:3000/query");
/// assert!(!format!("{config:?}").contains("secret-key"));
/// # Ok::<(), chill_claude::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct QueryConfig {
    url: reqwest::Url,
    api_key: Option<ApiKey>,
    api_key_header: HeaderName,
    http: HttpOptions,
}

impl QueryConfig {
    /// The default header carrying the API key.
    pub const DEFAULT_API_KEY_HEADER: &'static str = "x-api-key";

    /// The endpoint at `url`: a base (`http://host:3000`, to which `/query` is appended) or
    /// the full endpoint (`http://host:3000/query`, as the requirements' `CLAUDE_API_URL`).
    /// No API key; [`HttpOptions::default`].
    pub fn new(url: &str) -> Result<QueryConfig, ConfigError> {
        Ok(QueryConfig {
            url: settings::endpoint(url, "/query")?,
            api_key: None,
            api_key_header: HeaderName::from_static(Self::DEFAULT_API_KEY_HEADER),
            http: HttpOptions::default(),
        })
    }

    /// From the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `CLAUDE_API_URL` | the endpoint, required (e.g. `http://claude.chinchilla-ai.com:3000/query`) |
    /// | `CLAUDE_API_KEY` | an API key, optional |
    /// | `CLAUDE_API_TIMEOUT` | the default timeout in milliseconds, optional (default 300000) |
    ///
    /// Blank variables count as unset.
    pub fn from_env() -> Result<QueryConfig, ConfigError> {
        QueryConfig::from_lookup(settings::process_env)
    }

    /// As [`QueryConfig::from_env`], reading variables through `lookup`.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use chill_claude::QueryConfig;
    /// let vars = HashMap::from([("CLAUDE_API_URL", "http://127.0.0.1:3000/query"), ("CLAUDE_API_TIMEOUT", "60000")]);
    /// let config = QueryConfig::from_lookup(|name| vars.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(config.http().timeout.as_secs(), 60);
    /// # Ok::<(), chill_claude::ConfigError>(())
    /// ```
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<QueryConfig, ConfigError> {
        let mut config = QueryConfig::new(&settings::required(&lookup, "CLAUDE_API_URL")?)?;
        if let Some(key) = settings::var(&lookup, "CLAUDE_API_KEY") {
            config = config.with_api_key(&key)?;
        }
        if let Some(ms) = settings::number::<u64>(&lookup, "CLAUDE_API_TIMEOUT")? {
            config.http.timeout = Duration::from_millis(ms);
        }
        Ok(config)
    }

    /// Send `key` with every request, in [`QueryConfig::with_api_key_header`]'s header
    /// (`x-api-key` by default). For `Authorization`, include the scheme: `"Bearer ..."`.
    pub fn with_api_key(mut self, key: &str) -> Result<QueryConfig, ConfigError> {
        self.api_key = Some(ApiKey::new(key)?);
        Ok(self)
    }

    /// The header that carries the API key.
    pub fn with_api_key_header(mut self, header: HeaderName) -> QueryConfig {
        self.api_key_header = header;
        self
    }

    /// Set the default timeout (used when a request names none).
    pub fn with_timeout(mut self, timeout: Duration) -> QueryConfig {
        self.http.timeout = timeout;
        self
    }

    /// Replace the HTTP options.
    pub fn with_http(mut self, http: HttpOptions) -> QueryConfig {
        self.http = http;
        self
    }

    /// The endpoint.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The HTTP options.
    pub fn http(&self) -> &HttpOptions {
        &self.http
    }
}

/// An [`AiClient`] for the requirements' `POST /query` endpoint, over one pooled HTTP client.
/// Cheap to clone (clones share the pool). Its `Debug` never shows the API key.
///
/// Outcomes: 200 with `"error": null` is a success; 200 with an `error` an
/// [`AiError::Api`]; 400 (and other 4xx) [`AiError::InvalidRequest`]; 429
/// [`AiError::RateLimited`] with `Retry-After`; 5xx [`AiError::Server`]; connection refused,
/// reset or cut off [`AiError::Network`]; no complete answer within the timeout
/// [`AiError::Timeout`]; a 200 whose body is not JSON, not the expected JSON, or over
/// [`HttpOptions::max_response_bytes`] an [`AiError::Api`] naming the problem.
///
/// From the response's `metadata` (all optional):
/// - tokens: `usage.input_tokens`/`usage.output_tokens` (or `inputTokens`/`outputTokens`
///   inside `usage`), else `inputTokens`/`outputTokens` (or `input_tokens`/`output_tokens`),
///   else `tokensUsed`, a total, which is reported as output tokens (the contract has no
///   field for an unsplit total, so a price computed from it is an upper bound). Cache tokens
///   are not added; they stay in the metadata.
/// - conversation turns: `conversationTurns`, else `num_turns` (the Claude Agent SDK's name),
///   else `numTurns`, else a top-level `conversationTurns`.
/// - the model: `model`.
///
/// The timeout of a call is the request's (the job's), or the configured default when the
/// request's is zero.
#[derive(Clone)]
pub struct QueryClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    headers: HeaderMap,
    has_key: bool,
}

impl QueryClient {
    /// A client for `config`.
    pub fn new(config: QueryConfig) -> Result<QueryClient, ConfigError> {
        let transport = Transport::new(config.url, &config.http)?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.api_key {
            headers.insert(config.api_key_header, key.header_value().clone());
        }
        Ok(QueryClient {
            inner: Arc::new(Inner {
                transport,
                headers,
                has_key: config.api_key.is_some(),
            }),
        })
    }

    /// A client configured from the environment ([`QueryConfig::from_env`]).
    pub fn from_env() -> Result<QueryClient, ConfigError> {
        QueryClient::new(QueryConfig::from_env()?)
    }

    /// Send one request: the classified outcome, with the time it took and the HTTP status.
    pub async fn exchange(&self, request: &AiRequest) -> Exchange {
        let body = match serde_json::to_vec(&request.payload) {
            Ok(body) => body,
            Err(e) => return Exchange::unsent(invalid_payload(e)),
        };
        let transport = &self.inner.transport;
        let posted = transport
            .post(request, self.inner.headers.clone(), body)
            .await;
        Exchange::from_posted(posted, answer)
    }
}

fn invalid_payload(e: serde_json::Error) -> AiError {
    AiError::InvalidRequest {
        status: None,
        message: format!("the request could not be encoded: {e}"),
    }
}

#[async_trait]
impl AiClient for QueryClient {
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
        self.exchange(request).await.outcome
    }
}

impl fmt::Debug for QueryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = &self.inner.transport;
        f.debug_struct("QueryClient")
            .field("url", &transport.shown_url())
            .field("api_key", &self.inner.has_key.then_some("[redacted]"))
            .field("http", transport.options())
            .finish()
    }
}

/// The response format of the requirements.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryBody {
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    tools_used: Option<Vec<Tool>>,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    conversation_turns: Option<u32>,
}

/// A tool: its name, or an object with a `name`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Tool {
    Name(String),
    Named { name: String },
}

/// The outcome of a response that came back.
fn answer(received: Received) -> Result<AiResponse, AiError> {
    if !received.status.is_success() {
        let (message, _) = body_message(received.status, &received.body);
        return Err(status_error(
            received.status,
            &received.headers,
            message,
            SystemTime::now(),
        ));
    }
    let body: QueryBody = parse_json(&received)?;
    if let Some(error) = body.error {
        let message = match &error {
            Value::String(s) => s.clone(),
            other => error_object_message(other),
        };
        return Err(AiError::Api {
            message,
            details: Some(error),
        });
    }
    let Some(result) = body.result else {
        return Err(crate::http::malformed(
            received.status,
            "the response has neither a `result` nor an `error`".into(),
            serde_json::json!({ "kind": "malformed_response" }),
        ));
    };
    let metadata = body.metadata;
    Ok(AiResponse {
        result,
        tools_used: body
            .tools_used
            .unwrap_or_default()
            .into_iter()
            .map(|t| match t {
                Tool::Name(n) | Tool::Named { name: n } => n,
            })
            .collect(),
        conversation_turns: turns(&metadata).or(body.conversation_turns),
        usage: usage(&metadata),
        model: metadata
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
        metadata,
    })
}

/// The first of `keys` in `object` that is a whole number.
fn first_number(object: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter()
        .find_map(|k| object.get(k).and_then(Value::as_u64))
}

fn turns(metadata: &Value) -> Option<u32> {
    first_number(metadata, &["conversationTurns", "num_turns", "numTurns"])
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn usage(metadata: &Value) -> Option<TokenUsage> {
    let split = |object: &Value| {
        let input = first_number(object, &["input_tokens", "inputTokens"]);
        let output = first_number(object, &["output_tokens", "outputTokens"]);
        (input.is_some() || output.is_some()).then(|| TokenUsage {
            input_tokens: input.unwrap_or(0),
            output_tokens: output.unwrap_or(0),
        })
    };
    metadata
        .get("usage")
        .and_then(split)
        .or_else(|| split(metadata))
        .or_else(|| {
            first_number(metadata, &["tokensUsed"]).map(|total| TokenUsage {
                input_tokens: 0,
                output_tokens: total,
            })
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_are_read_from_each_documented_place() {
        let u = |m: Value| usage(&m).map(|u| (u.input_tokens, u.output_tokens));
        assert_eq!(
            u(
                json!({"usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 100}})
            ),
            Some((3, 4))
        );
        assert_eq!(
            u(json!({"usage": {"inputTokens": 5, "outputTokens": 6}})),
            Some((5, 6))
        );
        assert_eq!(
            u(json!({"inputTokens": 7, "outputTokens": 8})),
            Some((7, 8))
        );
        assert_eq!(u(json!({"tokensUsed": 9})), Some((0, 9)));
        assert_eq!(u(json!({})), None);
        assert_eq!(u(Value::Null), None);
    }

    #[test]
    fn turns_are_read_from_each_documented_place() {
        assert_eq!(turns(&json!({"conversationTurns": 3})), Some(3));
        assert_eq!(turns(&json!({"num_turns": 4})), Some(4));
        assert_eq!(turns(&json!({"numTurns": 5})), Some(5));
        assert_eq!(turns(&json!({"turns": "many"})), None);
    }
}
