//! The overhead of chill-claude's HTTP clients per call, against a local axum server that
//! answers at once.
//!
//! Three functions in the criterion group `claude_client`, all over one keep-alive connection
//! to the same server on 127.0.0.1, on one current-thread tokio runtime (the server and the
//! client take turns on one thread, so no cross-thread wake-ups blur the numbers):
//!
//! - `raw_http_baseline`: the least a client can do: write a prepared HTTP/1.1 request to a
//!   `TcpStream` and read the answer by its `Content-Length`. This is the server's own time
//!   plus the loopback round trip.
//! - `query`: `QueryClient::call`, the same request built from an `AiRequest` (JSON encoding,
//!   headers, reqwest and its pool, the body read in chunks with its limit, content-type check,
//!   JSON parse, metadata read).
//! - `messages`: `MessagesClient::call`, likewise for the Messages API.
//!
//! The client's own overhead is `query` (or `messages`) minus `raw_http_baseline`. Run with
//! `cargo bench -p chill-benches --bench claude_client -- --warm-up-time 1 --measurement-time 3`.

// A benchmark: a failure to set up should stop it loudly.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use chill_claude::{MessagesClient, MessagesConfig, QueryClient, QueryConfig};
use chill_core::{AiClient, AiRequest, ExecutionId, JobId, RequestOptions, RequestPayload};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// The answer: what both clients read (the `/query` fields and the Messages fields side by
/// side), about 500 bytes, like a short real answer.
const ANSWER: &str = r#"{"result":"Three tickets moved to Done yesterday: CHILL-12 (retry table), CHILL-14 (Retry-After dates) and CHILL-15 (pool reuse). Two are waiting for review.","toolsUsed":["jira"],"metadata":{"num_turns":2,"model":"claude-sonnet-4-5","usage":{"input_tokens":812,"output_tokens":64}},"error":null,"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Three tickets moved to Done yesterday."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":812,"output_tokens":64}}"#;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn server() -> SocketAddr {
    let answer = || async { ([(CONTENT_TYPE, "application/json")], ANSWER) };
    let app = Router::new()
        .route("/query", post(answer))
        .route("/v1/messages", post(answer));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn request() -> AiRequest {
    AiRequest {
        payload: RequestPayload {
            prompt: "Summarise yesterday's Jira tickets in two sentences.".into(),
            system_prompt: Some("You are a terse assistant.".into()),
            options: RequestOptions { max_turns: 10 },
        },
        timeout: Duration::from_secs(30),
        job_id: JobId::new(),
        execution_id: ExecutionId::new_manual(),
    }
}

/// A keep-alive HTTP/1.1 connection that sends one prepared request and reads the answer.
struct RawClient {
    stream: TcpStream,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl RawClient {
    async fn connect(addr: SocketAddr, payload: &RequestPayload) -> RawClient {
        let body = serde_json::to_vec(payload).unwrap();
        let mut request = format!(
            "POST /query HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient {
            stream,
            request,
            buf: Vec::with_capacity(4096),
        }
    }

    /// One exchange; returns the body's length.
    async fn call(&mut self) -> usize {
        self.stream.write_all(&self.request).await.unwrap();
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let mut need = None;
        loop {
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            if need.is_none()
                && let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n")
            {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().unwrap())
                    })
                    .unwrap();
                need = Some((end + 4, length));
            }
            if let Some((start, length)) = need
                && self.buf.len() >= start + length
            {
                return length;
            }
        }
    }
}

fn claude_client(c: &mut Criterion) {
    let rt = runtime();
    let addr = rt.block_on(server());
    let base = format!("http://{addr}");
    let req = request();
    let query = QueryClient::new(
        QueryConfig::new(&base)
            .unwrap()
            .with_api_key("bench-key")
            .unwrap(),
    )
    .unwrap();
    let messages = MessagesClient::new(
        MessagesConfig::new("bench-key")
            .unwrap()
            .with_base_url(&base)
            .unwrap(),
    )
    .unwrap();
    let mut raw = rt.block_on(RawClient::connect(addr, &req.payload));
    // Each client answers correctly before it is timed.
    assert_eq!(rt.block_on(raw.call()), ANSWER.len());
    assert_eq!(rt.block_on(query.call(&req)).unwrap().tools_used, ["jira"]);
    assert_eq!(
        rt.block_on(messages.call(&req))
            .unwrap()
            .usage
            .unwrap()
            .output_tokens,
        64
    );

    let mut group = c.benchmark_group("claude_client");
    group.bench_function("raw_http_baseline", |b| {
        b.iter(|| rt.block_on(raw.call()));
    });
    group.bench_function("query", |b| {
        b.iter(|| rt.block_on(query.call(black_box(&req))).unwrap());
    });
    group.bench_function("messages", |b| {
        b.iter(|| rt.block_on(messages.call(black_box(&req))).unwrap());
    });
    group.finish();
}

criterion_group!(benches, claude_client);
criterion_main!(benches);
