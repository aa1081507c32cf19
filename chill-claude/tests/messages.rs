//! The Messages API client against a real local HTTP server: the request it sends, the answer
//! it reads, and each documented error type and status classified for the retry table.

mod common;

use std::time::Duration;

use chill_claude::{ANTHROPIC_VERSION, ConfigError, HttpOptions, MessagesClient, MessagesConfig};
use chill_core::{AiClient, AiError, TokenUsage};
use common::{KEY, Reply, Server, env, messages_client, request};
use serde_json::json;

#[tokio::test]
async fn sends_a_message_and_reads_text_tools_usage_and_stop_reason() {
    let server = Server::always(
        Reply::json(
            200,
            json!({
                "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [
                    { "type": "text", "text": "Checking the board. " },
                    { "type": "tool_use", "id": "toolu_01", "name": "jira_search", "input": { "jql": "updated >= -1d" } },
                    { "type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {} },
                    { "type": "text", "text": "3 tickets moved." }
                ],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": { "input_tokens": 2095, "output_tokens": 503, "cache_read_input_tokens": 0 }
            }),
        )
        .header("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG"),
    )
    .await;
    let config = MessagesConfig::new(KEY)
        .unwrap()
        .with_base_url(&server.base())
        .unwrap()
        .with_model("claude-sonnet-4-5")
        .with_max_tokens(2048);
    let client = MessagesClient::new(config).unwrap();
    let mut req = request("Summarise yesterday's Jira tickets");
    req.payload.system_prompt = Some("You are terse.".into());

    let exchange = client.exchange(&req).await;

    assert_eq!(exchange.status, Some(200));
    let answer = exchange.outcome.unwrap();
    assert_eq!(answer.result, "Checking the board. 3 tickets moved.");
    assert_eq!(answer.tools_used, ["jira_search", "web_search"]);
    assert_eq!(
        answer.usage,
        Some(TokenUsage {
            input_tokens: 2095,
            output_tokens: 503
        })
    );
    assert_eq!(answer.conversation_turns, Some(1));
    assert_eq!(answer.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(answer.metadata["stopReason"], "end_turn");
    assert_eq!(answer.metadata["messageId"], "msg_014p7gG3wDgGV9EUtLvnow3U");
    assert_eq!(answer.metadata["requestId"], "req_018EeWyXxfu5pfWkrYcMdjWG");
    assert_eq!(answer.metadata["usage"]["cache_read_input_tokens"], 0);

    let got = &server.received()[0];
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(
        got.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 2048,
            "system": "You are terse.",
            "messages": [{ "role": "user", "content": "Summarise yesterday's Jira tickets" }]
        })
    );
    let header = |name: &str| got.headers.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("x-api-key"), KEY);
    assert_eq!(header("anthropic-version"), ANTHROPIC_VERSION);
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("x-chill-execution-id"), req.execution_id.to_string());
}

#[tokio::test]
async fn leaves_out_a_missing_system_prompt() {
    let server = Server::always(Reply::json(200, common::message_ok("hello"))).await;
    let client = messages_client(&server.base(), HttpOptions::default());

    let answer = client.call(&request("hi")).await.unwrap();

    assert_eq!(answer.result, "hello");
    let body = &server.received()[0].body;
    assert_eq!(body.get("system"), None);
    assert_eq!(body["model"], chill_claude::DEFAULT_MODEL);
    assert_eq!(body["max_tokens"], chill_claude::DEFAULT_MAX_TOKENS);
}

fn api_error(kind: &str, message: &str) -> serde_json::Value {
    json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_1" })
}

#[tokio::test]
async fn documented_errors_are_classified_by_type_and_status() {
    let server = Server::start(
        vec![
            Reply::json(
                429,
                api_error(
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit",
                ),
            )
            .header("retry-after", "17")
            .header("request-id", "req_429"),
            Reply::json(529, api_error("overloaded_error", "Overloaded")),
            Reply::json(
                400,
                api_error("invalid_request_error", "max_tokens: Field required"),
            ),
            Reply::json(401, api_error("authentication_error", "invalid x-api-key")),
            Reply::json(403, api_error("permission_error", "not allowed")),
            Reply::json(404, api_error("not_found_error", "model: claude-nope")),
            Reply::json(
                413,
                api_error("request_too_large", "Request exceeds the maximum size"),
            ),
            Reply::json(500, api_error("api_error", "Internal server error")),
            Reply::json(504, api_error("timeout_error", "Request timed out")),
            // A gateway in front of the API answering with the API's own type.
            Reply::json(503, api_error("overloaded_error", "Overloaded")),
        ],
        None,
    )
    .await;
    let client = messages_client(&server.base(), HttpOptions::default());
    let next = async || client.call(&request("p")).await.unwrap_err();

    assert_eq!(
        next().await,
        AiError::RateLimited {
            retry_after: Some(Duration::from_secs(17)),
            message: "rate_limit_error: Number of request tokens has exceeded your per-minute rate limit (request-id req_429)".into()
        }
    );
    assert_eq!(
        next().await,
        AiError::Server {
            status: Some(529),
            message: "overloaded_error: Overloaded".into()
        }
    );
    for status in [400, 401, 403, 404, 413] {
        let error = next().await;
        assert!(
            matches!(&error, AiError::InvalidRequest { status: Some(s), .. } if *s == status),
            "{status}: {error:?}"
        );
        assert!(!error.is_transient());
    }
    for status in [500, 504, 503] {
        let error = next().await;
        assert!(
            matches!(&error, AiError::Server { status: Some(s), .. } if *s == status),
            "{status}: {error:?}"
        );
        assert!(error.is_transient());
    }
}

#[tokio::test]
async fn an_error_object_in_a_200_is_an_api_error() {
    let server = Server::always(Reply::json(200, api_error("api_error", "stream broke"))).await;
    let client = messages_client(&server.base(), HttpOptions::default());

    let error = client.call(&request("p")).await.unwrap_err();

    assert!(
        matches!(&error, AiError::Api { message, .. } if message == "api_error: stream broke"),
        "{error:?}"
    );
}

#[test]
fn configuration_from_the_environment() {
    assert_eq!(
        MessagesConfig::from_lookup(env(&[("ANTHROPIC_API_KEY", "  ")])).unwrap_err(),
        ConfigError::MissingEnv {
            var: "ANTHROPIC_API_KEY"
        }
    );
    let default = MessagesConfig::from_lookup(env(&[("ANTHROPIC_API_KEY", KEY)])).unwrap();
    assert_eq!(
        default.url().as_str(),
        "https://api.anthropic.com/v1/messages"
    );
    assert_eq!(default.model(), chill_claude::DEFAULT_MODEL);
    let config = MessagesConfig::from_lookup(env(&[
        ("ANTHROPIC_API_KEY", KEY),
        ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/gateway/"),
        ("ANTHROPIC_MODEL", "claude-haiku-4-5"),
    ]))
    .unwrap();
    assert_eq!(
        config.url().as_str(),
        "http://127.0.0.1:9/gateway/v1/messages"
    );
    assert_eq!(config.model(), "claude-haiku-4-5");
    assert!(!format!("{config:?}").contains(KEY));
    let client = MessagesClient::new(config).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(matches!(
        MessagesConfig::new("key\r\nx-evil: 1"),
        Err(ConfigError::InvalidApiKey { .. })
    ));
}
