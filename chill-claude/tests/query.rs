//! The `/query` client against a real local HTTP server: the requirements' request and
//! response formats, and each status the requirements name classified for the retry table.

mod common;

use std::time::{Duration, SystemTime};

use chill_claude::{ConfigError, HttpOptions, QueryClient, QueryConfig};
use chill_core::{AiClient, AiError, TokenUsage};
use common::{KEY, Reply, Server, env, query_client, query_ok, request};
use serde_json::json;

#[tokio::test]
async fn sends_the_requirements_request_and_reads_the_answer() {
    let server = Server::always(Reply::json(
        200,
        json!({
            "result": "3 tickets summarised",
            "toolsUsed": ["jira", "slack"],
            "metadata": {
                "num_turns": 4,
                "model": "claude-sonnet-4-5",
                "usage": { "input_tokens": 120, "output_tokens": 45, "cache_read_input_tokens": 9000 },
                "total_cost_usd": 0.0123
            },
            "error": null
        }),
    ))
    .await;
    let client = query_client(&server.base(), HttpOptions::default());
    let mut req = request("Summarise yesterday's Jira tickets");
    req.payload.system_prompt = Some("You are terse.".into());
    req.payload.options.max_turns = 7;

    let exchange = client.exchange(&req).await;

    assert_eq!(exchange.status, Some(200));
    assert!(exchange.latency > Duration::ZERO);
    let answer = exchange.outcome.unwrap();
    assert_eq!(answer.result, "3 tickets summarised");
    assert_eq!(answer.tools_used, ["jira", "slack"]);
    assert_eq!(answer.conversation_turns, Some(4));
    assert_eq!(
        answer.usage,
        Some(TokenUsage {
            input_tokens: 120,
            output_tokens: 45
        })
    );
    assert_eq!(answer.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(answer.metadata["total_cost_usd"], json!(0.0123));

    let received = server.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.path, "/query");
    assert_eq!(
        got.body,
        json!({
            "prompt": "Summarise yesterday's Jira tickets",
            "systemPrompt": "You are terse.",
            "options": { "maxTurns": 7 }
        })
    );
    let header = |name: &str| got.headers.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("x-api-key"), KEY);
    assert_eq!(header("x-chill-execution-id"), req.execution_id.to_string());
    assert_eq!(header("x-chill-job-id"), req.job_id.to_string());
}

#[tokio::test]
async fn leaves_out_a_missing_system_prompt_and_reads_minimal_answers() {
    let server = Server::always(Reply::json(200, json!({ "result": "ok", "error": null }))).await;
    let client = query_client(&server.base(), HttpOptions::default());

    let answer = client.call(&request("hi")).await.unwrap();

    assert_eq!(answer.result, "ok");
    assert!(answer.tools_used.is_empty());
    assert_eq!(
        (answer.usage, answer.conversation_turns, answer.model),
        (None, None, None)
    );
    assert_eq!(
        server.received()[0].body,
        json!({ "prompt": "hi", "options": { "maxTurns": 10 } })
    );
}

#[tokio::test]
async fn reads_tokens_and_turns_from_the_other_documented_places() {
    let server = Server::start(
        vec![
            Reply::json(
                200,
                json!({ "result": "a", "toolsUsed": [{"name": "github"}], "error": null,
                        "metadata": { "inputTokens": 5, "outputTokens": 6, "conversationTurns": 2 } }),
            ),
            Reply::json(
                200,
                json!({ "result": "b", "error": null, "metadata": { "tokensUsed": 77 } }),
            ),
        ],
        None,
    )
    .await;
    let client = query_client(&server.base(), HttpOptions::default());

    let a = client.call(&request("a")).await.unwrap();
    assert_eq!(a.tools_used, ["github"]);
    assert_eq!(a.conversation_turns, Some(2));
    assert_eq!(
        a.usage.map(|u| (u.input_tokens, u.output_tokens)),
        Some((5, 6))
    );

    let b = client.call(&request("b")).await.unwrap();
    assert_eq!(b.usage.map(|u| u.total()), Some(77));
}

#[tokio::test]
async fn an_error_in_a_200_is_an_api_error() {
    let server = Server::start(
        vec![
            Reply::json(200, json!({ "result": null, "error": "MCP server jira unavailable" })),
            Reply::json(
                200,
                json!({ "result": "", "error": { "type": "tool_error", "message": "slack: channel not found" } }),
            ),
        ],
        None,
    )
    .await;
    let client = query_client(&server.base(), HttpOptions::default());

    let first = client.call(&request("p")).await.unwrap_err();
    assert_eq!(
        first,
        AiError::Api {
            message: "MCP server jira unavailable".into(),
            details: Some(json!("MCP server jira unavailable")),
        }
    );
    assert!(!first.is_transient());

    let second = client.call(&request("p")).await.unwrap_err();
    let AiError::Api { message, details } = second else {
        panic!("{second:?}")
    };
    assert_eq!(message, "tool_error: slack: channel not found");
    assert_eq!(details.unwrap()["type"], "tool_error");
}

#[tokio::test]
async fn a_400_is_an_invalid_request_with_the_servers_message() {
    let server = Server::always(Reply::json(
        400,
        json!({ "error": "prompt must not be empty" }),
    ))
    .await;
    let client = query_client(&server.base(), HttpOptions::default());

    let error = client.call(&request("")).await.unwrap_err();

    assert_eq!(
        error,
        AiError::InvalidRequest {
            status: Some(400),
            message: "prompt must not be empty".into()
        }
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_429_is_rate_limited_with_retry_after_in_seconds_or_as_a_date() {
    let in_an_hour = httpdate_in(3600);
    let server = Server::start(
        vec![
            Reply::json(429, json!({ "error": "slow down" })).header("retry-after", "2"),
            Reply::json(429, json!({ "error": "slow down" })).header("retry-after", in_an_hour),
            Reply::raw(429, "text/plain", "Too many requests"),
        ],
        None,
    )
    .await;
    let client = query_client(&server.base(), HttpOptions::default());

    let seconds = client.call(&request("p")).await.unwrap_err();
    assert_eq!(
        seconds,
        AiError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
            message: "slow down".into()
        }
    );
    let AiError::RateLimited {
        retry_after: Some(date),
        ..
    } = client.call(&request("p")).await.unwrap_err()
    else {
        panic!("no Retry-After from the date")
    };
    assert!(
        (Duration::from_secs(3590)..=Duration::from_secs(3601)).contains(&date),
        "{date:?}"
    );
    assert_eq!(
        client.call(&request("p")).await.unwrap_err(),
        AiError::RateLimited {
            retry_after: None,
            message: "Too many requests".into()
        }
    );
}

fn httpdate_in(secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(secs))
}

#[tokio::test]
async fn a_5xx_is_a_server_error() {
    let server = Server::start(
        vec![
            Reply::json(500, json!({ "error": "internal" })),
            Reply::raw(502, "text/html", "<html><body>Bad gateway</body></html>"),
            Reply::raw(503, "text/plain", ""),
        ],
        None,
    )
    .await;
    let client = query_client(&server.base(), HttpOptions::default());

    for (status, message) in [
        (500, "internal"),
        (502, "<html><body>Bad gateway</body></html>"),
        (503, "Service Unavailable"),
    ] {
        let error = client.call(&request("p")).await.unwrap_err();
        assert_eq!(
            error,
            AiError::Server {
                status: Some(status),
                message: message.into()
            }
        );
        assert!(error.is_transient());
    }
}

#[tokio::test]
async fn the_configured_timeout_applies_when_the_request_names_none() {
    let server =
        Server::always(Reply::json(200, query_ok("late")).after(Duration::from_secs(5))).await;
    let client = query_client(
        &server.base(),
        HttpOptions::default().with_timeout(Duration::from_millis(200)),
    );
    let mut req = request("p");
    req.timeout = Duration::ZERO;

    let started = std::time::Instant::now();
    let error = client.call(&req).await.unwrap_err();

    assert_eq!(error, AiError::Timeout(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_200_without_result_or_error_names_what_is_missing() {
    let server = Server::always(Reply::json(200, json!({ "toolsUsed": [] }))).await;
    let client = query_client(&server.base(), HttpOptions::default());

    let error = client.call(&request("p")).await.unwrap_err();

    let AiError::Api { message, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("neither a `result` nor an `error`"),
        "{message}"
    );
}

#[test]
fn configuration_from_the_environment() {
    assert_eq!(
        QueryConfig::from_lookup(env(&[])).unwrap_err(),
        ConfigError::MissingEnv {
            var: "CLAUDE_API_URL"
        }
    );
    assert!(matches!(
        QueryConfig::from_lookup(env(&[
            (
                "CLAUDE_API_URL",
                "http://claude.chinchilla-ai.com:3000/query"
            ),
            ("CLAUDE_API_TIMEOUT", "five minutes")
        ])),
        Err(ConfigError::InvalidEnv {
            var: "CLAUDE_API_TIMEOUT",
            ..
        })
    ));
    let config = QueryConfig::from_lookup(env(&[
        (
            "CLAUDE_API_URL",
            "http://claude.chinchilla-ai.com:3000/query",
        ),
        ("CLAUDE_API_TIMEOUT", "300000"),
        ("CLAUDE_API_KEY", KEY),
    ]))
    .unwrap();
    assert_eq!(
        config.url().as_str(),
        "http://claude.chinchilla-ai.com:3000/query"
    );
    assert_eq!(config.http().timeout, Duration::from_secs(300));
    assert!(!format!("{config:?}").contains(KEY));
    let client = QueryClient::new(config).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(matches!(
        QueryConfig::new("claude.chinchilla-ai.com:3000"),
        Err(ConfigError::InvalidUrl { .. })
    ));
    assert!(matches!(
        QueryClient::new(
            QueryConfig::new("http://h")
                .unwrap()
                .with_timeout(Duration::ZERO)
        ),
        Err(ConfigError::InvalidSetting { .. })
    ));
}
