//! Real local HTTP servers for the client tests, started by each test on 127.0.0.1 with an
//! ephemeral port: an axum server answering from a script (and recording what it received),
//! and a raw TCP server for what a well-behaved server never does (cut a response off, stall
//! in the middle of a body, close without answering).

// Each test file uses a part of this module; helpers unwrap as the tests do.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use chill_claude::{HttpOptions, MessagesClient, MessagesConfig, QueryClient, QueryConfig};
use chill_core::{AiClient, AiRequest, ExecutionId, JobId, RequestOptions, RequestPayload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The API key the tests configure; it must never show up in `Debug` output or logs.
pub(crate) const KEY: &str = "sk-test-0123456789-SECRET";

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Duration,
}

impl Reply {
    /// `status` with a JSON body.
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::raw(status, "application/json", body.to_string())
    }

    /// `status` with a body of `content_type`.
    pub(crate) fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", content_type.to_string())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// With another header.
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Answered after `delay`.
    pub(crate) fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: serde_json::Value,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    /// Answered once the script is used up.
    fallback: Mutex<Option<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// An axum server on 127.0.0.1 answering `POST /query` and `POST /v1/messages` from a script.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    script: Arc<Script>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    /// Answers `replies` in order, then `fallback` forever (a 500 if there is none).
    pub(crate) async fn start(replies: Vec<Reply>, fallback: Option<Reply>) -> Server {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            fallback: Mutex::new(fallback),
            received: Mutex::default(),
        });
        let app = Router::new()
            .route("/query", post(handle))
            .route("/v1/messages", post(handle))
            .with_state(script.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            addr,
            script,
            connections,
        }
    }

    /// Always answers `reply`.
    pub(crate) async fn always(reply: Reply) -> Server {
        Server::start(Vec::new(), Some(reply)).await
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn handle(
    State(script): State<Arc<Script>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let next = script.replies.lock().unwrap().pop_front();
    let reply = next
        .or_else(|| script.fallback.lock().unwrap().clone())
        .unwrap_or_else(|| Reply::raw(500, "text/plain", "script used up"));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

/// A raw TCP server on 127.0.0.1: every connection's request is read, then `answer` is
/// written to it and `then` decides what happens next.
pub(crate) async fn raw_server(answer: &'static [u8], then: After) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                read_request(&mut stream).await;
                stream.write_all(answer).await.unwrap();
                stream.flush().await.unwrap();
                match then {
                    After::Close => drop(stream),
                    After::Stall => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(stream);
                    }
                    After::Stream(chunk, count) => {
                        for _ in 0..count {
                            let line = format!("{:x}\r\n", chunk.len());
                            if stream.write_all(line.as_bytes()).await.is_err()
                                || stream.write_all(chunk).await.is_err()
                                || stream.write_all(b"\r\n").await.is_err()
                            {
                                return;
                            }
                        }
                        let _ = stream.write_all(b"0\r\n\r\n").await;
                    }
                }
            });
        }
    });
    addr
}

/// What the raw server does after writing its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum After {
    /// Close the connection.
    Close,
    /// Keep the connection open, sending nothing, for 30 s.
    Stall,
    /// Send this chunk this many times in chunked encoding, then the last chunk.
    Stream(&'static [u8], usize),
}

/// Read one HTTP request (headers and a `Content-Length` body).
async fn read_request(stream: &mut TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            return;
        }
    }
}

/// An address on which nothing listens (connections are refused).
pub(crate) async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// An environment of `vars`, as a lookup for the configurations' `from_lookup`.
pub(crate) fn env(
    vars: &'static [(&'static str, &'static str)],
) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// A request for `prompt` with a 10 s timeout.
pub(crate) fn request(prompt: &str) -> AiRequest {
    AiRequest {
        payload: RequestPayload {
            prompt: prompt.to_string(),
            system_prompt: None,
            options: RequestOptions { max_turns: 10 },
        },
        timeout: Duration::from_secs(10),
        job_id: JobId::new(),
        execution_id: ExecutionId::new_manual(),
    }
}

/// A `/query` client for `base`, with [`KEY`].
pub(crate) fn query_client(base: &str, http: HttpOptions) -> QueryClient {
    let config = QueryConfig::new(base)
        .unwrap()
        .with_api_key(KEY)
        .unwrap()
        .with_http(http);
    QueryClient::new(config).unwrap()
}

/// A Messages client for `base`, with [`KEY`].
pub(crate) fn messages_client(base: &str, http: HttpOptions) -> MessagesClient {
    let config = MessagesConfig::new(KEY)
        .unwrap()
        .with_base_url(base)
        .unwrap()
        .with_http(http);
    MessagesClient::new(config).unwrap()
}

/// Both clients for `base`, named.
pub(crate) fn both(base: &str, http: HttpOptions) -> Vec<(&'static str, Arc<dyn AiClient>)> {
    vec![
        ("query", Arc::new(query_client(base, http.clone()))),
        ("messages", Arc::new(messages_client(base, http))),
    ]
}

/// A successful `/query` answer.
pub(crate) fn query_ok(result: &str) -> serde_json::Value {
    serde_json::json!({ "result": result, "toolsUsed": [], "metadata": {}, "error": null })
}

/// A successful answer that both clients read: the `/query` fields and the Messages fields
/// side by side (each client ignores the other's).
pub(crate) fn both_ok(text: &str) -> serde_json::Value {
    let mut body = message_ok(text);
    let query = query_ok(text);
    for (k, v) in query.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// A successful Messages answer.
pub(crate) fn message_ok(text: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{ "type": "text", "text": text }],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": { "input_tokens": 12, "output_tokens": 34 }
    })
}
