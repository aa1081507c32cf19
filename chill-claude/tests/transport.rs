//! What both clients share, run for each of them against real local servers: network
//! failures, timeouts, responses cut off, malformed and oversized bodies, wrong content types,
//! redirects, and concurrent calls over one pooled client.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chill_claude::HttpOptions;
use chill_core::AiError;
use common::{After, Reply, Server, both, both_ok, raw_server, refusing_addr, request};
use serde_json::json;

fn network(error: &AiError) -> &str {
    match error {
        AiError::Network(message) => message,
        other => panic!("expected a network error, got {other:?}"),
    }
}

fn api(error: &AiError) -> &str {
    match error {
        AiError::Api { message, .. } => message,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error() {
    let addr = refusing_addr().await;
    for (name, client) in both(&format!("http://{addr}"), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        let message = network(&error);
        assert!(
            message.contains("could not connect to"),
            "{name}: {message}"
        );
        assert!(message.contains(&addr.to_string()), "{name}: {message}");
        assert!(error.is_transient());
    }
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_a_network_error() {
    let addr = raw_server(b"", After::Close).await;
    for (name, client) in both(&format!("http://{addr}"), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        assert!(!network(&error).is_empty(), "{name}");
    }
}

#[tokio::test]
async fn a_response_cut_off_mid_body_is_a_network_error() {
    let addr = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"result\": \"the first",
        After::Close,
    )
    .await;
    for (name, client) in both(&format!("http://{addr}"), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        let message = network(&error);
        assert!(message.contains("cut off"), "{name}: {message}");
    }
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server =
        Server::always(Reply::json(200, both_ok("late")).after(Duration::from_secs(10))).await;
    for (name, client) in both(&server.base(), HttpOptions::default()) {
        let mut req = request("p");
        req.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = client.call(&req).await.unwrap_err();
        assert_eq!(
            error,
            AiError::Timeout(Duration::from_millis(300)),
            "{name}"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{name}: {took:?}"
        );
    }
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_times_out() {
    let addr = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"res",
        After::Stall,
    )
    .await;
    for (name, client) in both(&format!("http://{addr}"), HttpOptions::default()) {
        let mut req = request("p");
        req.timeout = Duration::from_millis(300);
        let error = client.call(&req).await.unwrap_err();
        assert_eq!(
            error,
            AiError::Timeout(Duration::from_millis(300)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_an_api_error_quoting_the_body() {
    let server = Server::always(Reply::raw(
        200,
        "application/json",
        "{\"result\": \"unterminated",
    ))
    .await;
    for (name, client) in both(&server.base(), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        let message = api(&error);
        assert!(
            message.contains("not the expected JSON"),
            "{name}: {message}"
        );
        assert!(message.contains("unterminated"), "{name}: {message}");
        assert!(!error.is_transient());
        let AiError::Api { details, .. } = &error else {
            unreachable!()
        };
        assert_eq!(details.as_ref().unwrap()["kind"], "malformed_response");
    }
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_an_api_error() {
    let server = Server::always(Reply::json(200, json!({ "result": 42, "content": "nope" }))).await;
    for (name, client) in both(&server.base(), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        assert!(api(&error).contains("invalid type"), "{name}: {error:?}");
    }
}

#[tokio::test]
async fn an_empty_body_is_an_api_error() {
    let server = Server::always(Reply::raw(200, "application/json", "")).await;
    for (name, client) in both(&server.base(), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        assert!(api(&error).contains("body is empty"), "{name}: {error:?}");
    }
}

#[tokio::test]
async fn a_wrong_content_type_is_an_api_error_naming_it() {
    let server = Server::always(Reply::raw(
        200,
        "text/html; charset=utf-8",
        "<html><body>Welcome to the proxy</body></html>",
    ))
    .await;
    for (name, client) in both(&server.base(), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        let message = api(&error);
        assert!(message.contains("\"text/html\""), "{name}: {message}");
        assert!(
            message.contains("Welcome to the proxy"),
            "{name}: {message}"
        );
    }
}

#[tokio::test]
async fn a_json_body_without_a_content_type_is_accepted() {
    let mut reply = Reply::json(200, both_ok("fine"));
    reply.headers.clear();
    let server = Server::always(reply).await;
    for (name, client) in both(&server.base(), HttpOptions::default()) {
        let answer = client.call(&request("p")).await.unwrap();
        assert_eq!(answer.result, "fine", "{name}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_an_api_error_naming_the_limit() {
    let big = json!({ "result": "x".repeat(4096), "error": null, "content": [] });
    let server = Server::always(Reply::json(200, big)).await;
    let http = HttpOptions::default().with_max_response_bytes(1024);
    for (name, client) in both(&server.base(), http) {
        let error = client.call(&request("p")).await.unwrap_err();
        let message = api(&error);
        assert!(message.contains("limit of 1024 bytes"), "{name}: {message}");
        assert!(message.contains("Content-Length"), "{name}: {message}");
    }
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_cut_at_the_limit() {
    // Chunked encoding, no Content-Length: the limit is found while reading.
    static CHUNK: [u8; 1000] = [b' '; 1000];
    let addr = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        After::Stream(&CHUNK, 1000),
    )
    .await;
    let http = HttpOptions::default().with_max_response_bytes(64 * 1024);
    for (name, client) in both(&format!("http://{addr}"), http) {
        let error = client.call(&request("p")).await.unwrap_err();
        let message = api(&error);
        assert!(
            message.contains("limit of 65536 bytes"),
            "{name}: {message}"
        );
        assert!(message.contains("still streaming"), "{name}: {message}");
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = Server::always(
        Reply::raw(307, "text/plain", "").header("location", "http://elsewhere.invalid/query"),
    )
    .await;
    for (name, client) in both(&server.base(), HttpOptions::default()) {
        let error = client.call(&request("p")).await.unwrap_err();
        assert!(
            matches!(&error, AiError::InvalidRequest { status: Some(307), message } if message.contains("elsewhere.invalid")),
            "{name}: {error:?}"
        );
    }
    assert_eq!(server.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_pooled_client() {
    const CALLS: usize = 64;
    // A fresh server per client, answering every call after a short delay so that calls
    // overlap.
    for which in ["query", "messages"] {
        let server =
            Server::always(Reply::json(200, both_ok("same")).after(Duration::from_millis(20)))
                .await;
        let client = both(&server.base(), HttpOptions::default())
            .into_iter()
            .find(|(name, _)| *name == which)
            .unwrap()
            .1;
        let calls: Vec<_> = (0..CALLS)
            .map(|i| {
                let client = Arc::clone(&client);
                tokio::spawn(async move { client.call(&request(&format!("prompt {i}"))).await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap().result, "same", "{which}");
        }
        let mut prompts: Vec<String> = server
            .received()
            .iter()
            .map(|r| {
                r.body
                    .get("prompt")
                    .or_else(|| r.body.pointer("/messages/0/content"))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        prompts.sort();
        let mut expected: Vec<String> = (0..CALLS).map(|i| format!("prompt {i}")).collect();
        expected.sort();
        assert_eq!(prompts, expected, "{which}");
        let opened = server.connections();
        assert!((1..=CALLS).contains(&opened), "{which}: {opened}");
        // Calls one after another reuse the pooled connections: none is opened.
        for i in 0..10 {
            client.call(&request(&format!("again {i}"))).await.unwrap();
        }
        assert_eq!(server.connections(), opened, "{which}");
    }
}
