//! The demo AI endpoint: the requirements' `POST /query` API answering canned text, so that
//! anyone can run ChillScheduler without an AI service, and watch retries and timeouts happen.
//!
//! A prompt starting with one of these prefixes changes the answer:
//!
//! | prompt starts with | the endpoint |
//! |---|---|
//! | `slow:SECS ` | waits SECS seconds, then answers (longer than the job's timeout: a `timeout`) |
//! | `fail:STATUS ` | answers that HTTP status: 500/503 are retried, 400 is not |
//! | `ratelimit:SECS ` | answers 429 with `Retry-After: SECS` (retried after it) |
//! | `flaky:N ` | fails N calls in a row with 503, answers the next, and again (per prompt): a run succeeds at attempt N+1 |
//! | `error: ` | answers 200 with an `error` in the body (failed, not retried) |
//!
//! Anything else is answered at once with `Demo answer: …`, the tool `demo` and a token count.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::AppError;

/// The longest `slow:` wait, in seconds.
pub const MAX_SLOW_SECS: u64 = 3_600;

/// What a prompt asks the demo endpoint to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Answer at once.
    Answer,
    /// Wait this long, then answer.
    Slow(Duration),
    /// Answer this HTTP status.
    Fail(StatusCode),
    /// Answer 429 with this `Retry-After`, in seconds.
    RateLimit(u64),
    /// Fail this many calls with 503, answer the next, and again.
    Flaky(u32),
    /// Answer 200 with an error in the body.
    Error,
}

impl Behaviour {
    /// The behaviour a prompt's prefix asks for.
    ///
    /// ```
    /// use std::time::Duration;
    /// use chill_examples::demo_ai::Behaviour;
    /// assert_eq!(Behaviour::of("slow:2 think"), Behaviour::Slow(Duration::from_secs(2)));
    /// assert_eq!(Behaviour::of("flaky:1 try"), Behaviour::Flaky(1));
    /// assert_eq!(Behaviour::of("hello"), Behaviour::Answer);
    /// ```
    pub fn of(prompt: &str) -> Behaviour {
        let word = prompt.split_whitespace().next().unwrap_or_default();
        let Some((kind, arg)) = word.split_once(':') else {
            return Behaviour::Answer;
        };
        match (kind, arg.parse::<u64>().ok()) {
            ("slow", Some(secs)) => Behaviour::Slow(Duration::from_secs(secs.min(MAX_SLOW_SECS))),
            ("fail", Some(code)) => u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .map_or(Behaviour::Answer, Behaviour::Fail),
            ("ratelimit", Some(secs)) => Behaviour::RateLimit(secs),
            ("flaky", Some(n)) => Behaviour::Flaky(u32::try_from(n).unwrap_or(u32::MAX)),
            ("error", _) => Behaviour::Error,
            _ => Behaviour::Answer,
        }
    }
}

/// Calls seen per prompt (for `flaky:`).
#[derive(Default)]
struct Calls {
    by_prompt: Mutex<HashMap<String, u32>>,
}

impl Calls {
    /// Count a call of a prompt; returns how many came before it.
    fn count(&self, prompt: &str) -> u32 {
        let mut map = self.by_prompt.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(prompt.to_string()).or_insert(0);
        let before = *n;
        *n = n.saturating_add(1);
        before
    }
}

/// The demo endpoint's routes: `POST /query`.
pub fn router() -> axum::Router {
    axum::Router::new()
        .route("/query", post(query))
        .with_state(Arc::new(Calls::default()))
}

async fn query(
    State(calls): State<Arc<Calls>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body with a prompt",
        );
    };
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "prompt: missing");
    };
    let before = calls.count(prompt);
    match Behaviour::of(prompt) {
        Behaviour::Answer => answer(prompt, before),
        Behaviour::Slow(wait) => {
            tokio::time::sleep(wait).await;
            answer(prompt, before)
        }
        Behaviour::Fail(status) => error(status, &format!("demo failure {}", status.as_u16())),
        Behaviour::RateLimit(secs) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "demo rate limit");
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Behaviour::Flaky(n) if before % (n.saturating_add(1)) < n => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("demo flaky failure {} of {n}", before % (n + 1) + 1),
        ),
        Behaviour::Flaky(_) => answer(prompt, before),
        Behaviour::Error => Json(json!({
            "result": "",
            "toolsUsed": [],
            "metadata": {"demo": true},
            "error": {"message": "demo error reported in the body"},
        }))
        .into_response(),
    }
}

fn answer(prompt: &str, before: u32) -> Response {
    let excerpt: String = prompt.chars().take(200).collect();
    Json(json!({
        "result": format!("Demo answer: {excerpt}"),
        "toolsUsed": ["demo"],
        "metadata": {"demo": true, "call": before + 1, "usage": {"input_tokens": prompt.len() / 4 + 1, "output_tokens": 12}},
        "error": null,
    }))
    .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// The demo endpoint running in this process.
#[derive(Debug)]
pub struct DemoAi {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl DemoAi {
    /// Serve the demo endpoint on `listen` (`127.0.0.1:0` for a free port).
    pub async fn start(listen: &str) -> Result<DemoAi, AppError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| AppError::io(format!("demo AI endpoint: cannot listen on {listen}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::io("demo AI endpoint", e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "demo AI endpoint stopped");
            }
        });
        Ok(DemoAi {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and wait for the open requests to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
