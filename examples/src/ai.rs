//! Which AI endpoint the engine calls: the requirements' `/query` endpoint, the Anthropic
//! Messages API, or the demo endpoint started in this process.

use std::sync::Arc;

use chill_claude::{MessagesClient, QueryClient, QueryConfig};
use chill_core::AiClient;

use crate::AppError;
use crate::demo_ai::DemoAi;

/// The AI endpoint to use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AiChoice {
    /// A `/query` endpoint at this URL (`CLAUDE_API_URL`).
    Query(String),
    /// The Anthropic Messages API, configured from `ANTHROPIC_API_KEY` (and optionally
    /// `ANTHROPIC_BASE_URL`, `ANTHROPIC_MODEL`).
    Anthropic,
    /// The demo endpoint, started in this process on a free local port.
    Demo,
}

impl AiChoice {
    /// The choice from the command line: `--anthropic` wins, then `--claude-url`
    /// (`CLAUDE_API_URL`), then an `ANTHROPIC_API_KEY` in the environment, else the demo
    /// endpoint.
    pub fn from_args(claude_url: Option<String>, anthropic: bool) -> AiChoice {
        if anthropic {
            return AiChoice::Anthropic;
        }
        match claude_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => AiChoice::Query(url),
            None if std::env::var_os("ANTHROPIC_API_KEY").is_some() => AiChoice::Anthropic,
            None => AiChoice::Demo,
        }
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

/// Build the client for a choice; for [`AiChoice::Demo`], start the demo endpoint first and
/// say so loudly in the log.
pub async fn connect(choice: &AiChoice) -> Result<ConnectedAi, AppError> {
    match choice {
        AiChoice::Query(url) => {
            let client = QueryClient::new(QueryConfig::new(url)?)?;
            tracing::info!(url = %url, "AI endpoint: /query");
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
