//! Which AI endpoint the engine calls: the requirements' `/query` endpoint, the Anthropic
//! Messages API, or the demo endpoint started in this process.

use std::sync::Arc;

use async_trait::async_trait;
use chill_claude::{MessagesClient, QueryClient, QueryConfig};
use chill_core::{AiClient, AiError, AiRequest, AiResponse};

use crate::AppError;
use crate::demo_ai::DemoAi;

/// The AI endpoint to use.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AiChoice {
    /// The requirements' `/query` endpoint: its URL, and its API key and default timeout when
    /// it has them ([`AiChoice::from_args`] reads them from `CLAUDE_API_KEY` and
    /// `CLAUDE_API_TIMEOUT`). Its `Debug` never shows the key.
    Query(Box<QueryConfig>),
    /// The Anthropic Messages API, configured from `ANTHROPIC_API_KEY` (and optionally
    /// `ANTHROPIC_BASE_URL`, `ANTHROPIC_MODEL`).
    Anthropic,
    /// The demo endpoint, started in this process on a free local port.
    Demo,
}

impl AiChoice {
    /// A `/query` endpoint at `url` (a base, to which `/query` is appended, or the full
    /// endpoint), without an API key.
    ///
    /// ```
    /// use chill_examples::AiChoice;
    /// assert!(AiChoice::query("http://127.0.0.1:3000/query").is_ok());
    /// assert!(AiChoice::query("not a url").is_err());
    /// ```
    pub fn query(url: &str) -> Result<AiChoice, AppError> {
        Ok(AiChoice::Query(Box::new(QueryConfig::new(url)?)))
    }

    /// The choice from the command line and the process environment: `--anthropic` wins,
    /// then `--claude-url` (`CLAUDE_API_URL`) with `CLAUDE_API_KEY` and `CLAUDE_API_TIMEOUT`,
    /// then an `ANTHROPIC_API_KEY`, else the demo endpoint. A URL or a variable that cannot
    /// be used is an error naming it.
    pub fn from_args(claude_url: Option<String>, anthropic: bool) -> Result<AiChoice, AppError> {
        AiChoice::from_lookup(claude_url, anthropic, |name| std::env::var(name).ok())
    }

    /// [`AiChoice::from_args`], reading the environment through `lookup`.
    fn from_lookup(
        claude_url: Option<String>,
        anthropic: bool,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<AiChoice, AppError> {
        if anthropic {
            return Ok(AiChoice::Anthropic);
        }
        Ok(match claude_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => AiChoice::Query(Box::new(query_config(&url, lookup)?)),
            None if lookup("ANTHROPIC_API_KEY").is_some() => AiChoice::Anthropic,
            None => AiChoice::Demo,
        })
    }
}

/// The AI client of an engine that runs no execution (a CLI command that only reads or
/// writes jobs, a schema built for introspection): every call is refused as an invalid
/// request, which is not retried.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use chill_core::{AiClient, AiRequest, ExecutionId, Job, JobSpec, RequestPayload};
/// use chill_examples::ai::NoAi;
/// let job = Job::create(JobSpec::new("n", "p", "@daily"), chrono::Utc::now()).unwrap();
/// let request = AiRequest {
///     payload: RequestPayload::for_job(&job),
///     timeout: std::time::Duration::from_secs(job.timeout.into()),
///     job_id: job.id,
///     execution_id: ExecutionId::new_manual(),
/// };
/// assert!(NoAi.call(&request).await.is_err());
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAi;

#[async_trait]
impl AiClient for NoAi {
    async fn call(&self, _request: &AiRequest) -> Result<AiResponse, AiError> {
        Err(AiError::InvalidRequest {
            status: None,
            message: "this engine runs no execution".into(),
        })
    }
}

/// An AI client ready for the engine, and the demo endpoint it talks to when it is the demo.
pub struct ConnectedAi {
    /// The client.
    pub client: Arc<dyn AiClient>,
    /// The demo endpoint running in this process, if that is what the client calls.
    pub demo: Option<DemoAi>,
}

impl std::fmt::Debug for ConnectedAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedAi")
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

/// The `/query` endpoint at `url`, with the rest of its settings (`CLAUDE_API_KEY`,
/// `CLAUDE_API_TIMEOUT`) read through `lookup`: the URL given on the command line wins over
/// `CLAUDE_API_URL`.
fn query_config(
    url: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<QueryConfig, chill_claude::ConfigError> {
    QueryConfig::from_lookup(|name| match name {
        "CLAUDE_API_URL" => Some(url.to_string()),
        _ => lookup(name),
    })
}

/// Build the client for a choice; for [`AiChoice::Demo`], start the demo endpoint first and
/// say so loudly in the log.
pub async fn connect(choice: &AiChoice) -> Result<ConnectedAi, AppError> {
    match choice {
        AiChoice::Query(config) => {
            let client = QueryClient::new(config.as_ref().clone())?;
            tracing::info!(url = %config.url(), "AI endpoint: /query");
            Ok(ConnectedAi {
                client: Arc::new(client),
                demo: None,
            })
        }
        AiChoice::Anthropic => {
            let client = MessagesClient::from_env()?;
            tracing::info!("AI endpoint: the Anthropic Messages API");
            Ok(ConnectedAi {
                client: Arc::new(client),
                demo: None,
            })
        }
        AiChoice::Demo => {
            let demo = DemoAi::start("127.0.0.1:0").await?;
            let url = format!("http://{}/query", demo.local_addr());
            tracing::warn!(
                url = %url,
                "NO AI ENDPOINT CONFIGURED: using the built-in DEMO AI endpoint, which answers \
                 canned text. Set CLAUDE_API_URL (or --claude-url) or ANTHROPIC_API_KEY \
                 (--anthropic) to call a real one."
            );
            let client = QueryClient::new(QueryConfig::new(&url)?)?;
            Ok(ConnectedAi {
                client: Arc::new(client),
                demo: Some(demo),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_endpoint_takes_its_key_and_timeout_from_the_environment() {
        let env = |name: &str| match name {
            "CLAUDE_API_URL" => Some("http://elsewhere:1/query".to_string()),
            "CLAUDE_API_KEY" => Some("secret".to_string()),
            "CLAUDE_API_TIMEOUT" => Some("1500".to_string()),
            _ => None,
        };
        let config = query_config("http://127.0.0.1:3000", env).unwrap();
        assert_eq!(config.url().as_str(), "http://127.0.0.1:3000/query");
        let shown = format!("{config:?}");
        assert!(shown.contains("api_key: Some"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(config.http().timeout.as_millis(), 1500);
    }

    #[test]
    fn the_flags_win_then_the_query_url_then_an_anthropic_key() {
        let anthropic_key = |name: &str| (name == "ANTHROPIC_API_KEY").then(|| "k".to_string());
        let url = || Some("http://127.0.0.1:3000".to_string());
        let choose = |url, anthropic, env: &dyn Fn(&str) -> Option<String>| {
            AiChoice::from_lookup(url, anthropic, env).unwrap()
        };
        assert!(matches!(
            choose(url(), true, &|_| None),
            AiChoice::Anthropic
        ));
        assert!(matches!(
            choose(url(), false, &anthropic_key),
            AiChoice::Query(_)
        ));
        assert!(matches!(
            choose(None, false, &anthropic_key),
            AiChoice::Anthropic
        ));
        assert!(matches!(
            choose(Some(" ".into()), false, &|_| None),
            AiChoice::Demo
        ));
        let bad = AiChoice::from_lookup(Some("not a url".into()), false, |_| None);
        assert!(bad.is_err());
    }

    #[test]
    fn a_bad_timeout_is_an_error_naming_the_variable() {
        let env = |name: &str| (name == "CLAUDE_API_TIMEOUT").then(|| "soon".to_string());
        let error = query_config("http://127.0.0.1:3000", env).unwrap_err();
        assert!(error.to_string().contains("CLAUDE_API_TIMEOUT"), "{error}");
    }

    #[test]
    fn without_the_variables_there_is_no_key_and_the_default_timeout() {
        let config = query_config("http://127.0.0.1:3000/query", |_| None).unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("api_key: None"), "{shown}");
        assert_eq!(
            config.http().timeout,
            chill_claude::HttpOptions::default().timeout
        );
    }
}
