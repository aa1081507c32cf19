//! Helpers of the end-to-end tests: a real AI endpoint, a GraphQL client over HTTP and over
//! WebSocket, temporary SQLite files.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest a test waits for one event before failing (a hang guard, not a measurement).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// An AI endpoint for the tests: `POST /query` answers `answer: PROMPT`; a prompt starting
/// with `fail-once` fails its first call with 503.
pub struct AiServer {
    pub addr: SocketAddr,
    pub calls: Arc<Mutex<HashMap<String, u32>>>,
}

impl AiServer {
    pub async fn start() -> AiServer {
        let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let app = axum::Router::new()
            .route("/query", axum::routing::post(answer))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        AiServer { addr, calls }
    }

    pub fn url(&self) -> String {
        format!("http://{}/query", self.addr)
    }

    pub fn calls_of(&self, prompt: &str) -> u32 {
        self.calls.lock().unwrap().get(prompt).copied().unwrap_or(0)
    }
}

async fn answer(
    State(calls): State<Arc<Mutex<HashMap<String, u32>>>>,
    Json(body): Json<Value>,
) -> Response {
    let prompt = body["prompt"].as_str().unwrap_or_default().to_string();
    let before = {
        let mut calls = calls.lock().unwrap();
        let n = calls.entry(prompt.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    if prompt.starts_with("fail-once") && before == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "try again"})),
        )
            .into_response();
    }
    Json(json!({
        "result": format!("answer: {prompt}"),
        "toolsUsed": ["slack"],
        "metadata": {"call": before + 1},
        "error": null,
    }))
    .into_response()
}

/// A SQLite file in a fresh temporary directory (removed with the value).
pub struct TempDb {
    pub dir: PathBuf,
}

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!(
            "chill-examples-{name}-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb { dir }
    }

    pub fn url(&self, file: &str) -> String {
        format!("sqlite://{}", self.dir.join(file).display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// `chill serve` in process on an ephemeral port, over the SQLite file `chill.db` of `db`,
/// with `ai` as its AI endpoint.
pub async fn start_server(db: &TempDb, ai: &AiServer) -> chill_examples::Server {
    chill_examples::Server::start(chill_examples::ServeConfig {
        store_url: db.url("chill.db"),
        listen: "127.0.0.1:0".into(),
        ai: chill_examples::AiChoice::query(&ai.url()).unwrap(),
        demo_jobs: true,
    })
    .await
    .unwrap()
}

/// A test's setup: an AI endpoint, a temporary SQLite file, `chill serve` over both (see
/// [`start_server`]) and a GraphQL client of it. Keep all four bound until the test ends.
pub async fn started(name: &str) -> (AiServer, TempDb, chill_examples::Server, Gql) {
    let ai = AiServer::start().await;
    let db = TempDb::new(name);
    let server = start_server(&db, &ai).await;
    let gql = Gql::new(server.local_addr());
    (ai, db, server, gql)
}

/// The introspection query of every type with its fields, their arguments and types: what
/// [`selection`] reads.
pub const SCHEMA_TYPES: &str = "{ __schema { types { name kind fields { name args { name } \
    type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

/// The types that are read from the store through a relation (`Job.executions`,
/// `JobExecution.job`): a selection does not follow them.
const RELATIONS: &[&str] = &["Job", "JobExecution"];

/// The innermost named type of a field's type (`[String!]!` → `String`).
fn named_type(ty: &Value) -> &Value {
    match ty["kind"].as_str() {
        Some("NON_NULL" | "LIST") => named_type(&ty["ofType"]),
        _ => ty,
    }
}

/// A selection of every field of `type_name`, nested objects with all their fields, from the
/// answer to [`SCHEMA_TYPES`] (`data.__schema.types`). Fields that take arguments and fields
/// that lead to another job or execution (a relation) are left out. Built from the schema, so
/// a field added later is selected too.
pub fn selection(types: &Value, type_name: &str) -> String {
    let ty = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == type_name)
        .unwrap_or_else(|| panic!("no type {type_name} in the schema"));
    let mut parts = Vec::new();
    for field in ty["fields"].as_array().unwrap() {
        if !field["args"].as_array().unwrap().is_empty() {
            continue;
        }
        let name = field["name"].as_str().unwrap();
        let named = named_type(&field["type"]);
        match (
            named["kind"].as_str().unwrap(),
            named["name"].as_str().unwrap(),
        ) {
            ("OBJECT", inner) if RELATIONS.contains(&inner) => {}
            ("OBJECT" | "INTERFACE", inner) => {
                parts.push(format!("{name} {{ {} }}", selection(types, inner)));
            }
            _ => parts.push(name.to_string()),
        }
    }
    parts.join(" ")
}

/// The names of the fields of `type_name` (all of them, relations and fields with arguments
/// included), from the answer to [`SCHEMA_TYPES`].
pub fn field_names(types: &Value, type_name: &str) -> std::collections::BTreeSet<String> {
    types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == type_name)
        .unwrap_or_else(|| panic!("no type {type_name} in the schema"))["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// `value` with every string that is an RFC 3339 instant written one way (`Z`, no trailing
/// zeros), so that instants compare as instants whatever their spelling (`+00:00`, `Z`).
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::String(s) => match s.parse::<chrono::DateTime<chrono::Utc>>() {
            Ok(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `value` (an object) without `keys`.
pub fn without(value: &Value, keys: &[&str]) -> Value {
    let mut object = value.as_object().expect("an object").clone();
    for key in keys {
        assert!(object.remove(*key).is_some(), "no field {key} in {value}");
    }
    Value::Object(object)
}

/// The keys whose values differ between two objects (a key missing on one side counts).
pub fn changed_keys(before: &Value, after: &Value) -> std::collections::BTreeSet<String> {
    let (b, a) = (before.as_object().unwrap(), after.as_object().unwrap());
    b.keys()
        .chain(a.keys())
        .filter(|k| b.get(*k) != a.get(*k))
        .cloned()
        .collect()
}

/// Polls `check` until it gives a value, failing the test after [`PATIENCE`] (a hang guard).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GraphQL client over HTTP.
pub struct Gql {
    pub base: String,
    pub http: reqwest::Client,
}

impl Gql {
    pub fn new(addr: SocketAddr) -> Gql {
        Gql {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// The whole response (`data` and `errors`).
    pub async fn request(&self, query: &str, variables: Value) -> Value {
        let body = json!({"query": query, "variables": variables}).to_string();
        let response = self
            .http
            .post(format!("{}/graphql", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    /// `data`, asserting there were no errors.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let response = self.request(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// A selection of every field of a type (see [`selection`]), from the server's schema.
    pub async fn selection(&self, type_name: &str) -> String {
        let data = self.data(SCHEMA_TYPES, json!({})).await;
        selection(&data["__schema"]["types"], type_name)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A GraphQL subscription over WebSocket, in either protocol.
pub struct Subscription {
    raw: RawSocket,
    legacy: bool,
    /// Messages that came before the pong that showed the subscription live.
    early: std::collections::VecDeque<Value>,
}

impl Subscription {
    /// Connect with `graphql-transport-ws` (or the older `graphql-ws` when `legacy`) and
    /// subscribe.
    pub async fn start(
        addr: SocketAddr,
        query: &str,
        variables: Value,
        legacy: bool,
    ) -> Subscription {
        let protocol = if legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        };
        let mut raw = RawSocket::initialised(addr, protocol).await;
        let kind = if legacy { "start" } else { "subscribe" };
        raw.send(
            json!({"id": "1", "type": kind, "payload": {"query": query, "variables": variables}}),
        )
        .await;
        // The server handles a connection's messages in order: once a ping sent after the
        // subscription is answered, the subscription is live (or its error is on the way).
        raw.send(json!({"type": "ping"})).await;
        let mut early = std::collections::VecDeque::new();
        loop {
            let message = raw.recv().await;
            if message["type"] == "pong" {
                break;
            }
            early.push_back(message);
        }
        Subscription { raw, legacy, early }
    }

    /// The next result's `data` (errors fail the test).
    pub async fn next(&mut self) -> Value {
        let data_type = if self.legacy { "data" } else { "next" };
        loop {
            let message = self.recv().await;
            match message["type"].as_str() {
                Some(t) if t == data_type => {
                    assert!(
                        message["payload"].get("errors").is_none(),
                        "subscription error: {message}"
                    );
                    return message["payload"]["data"].clone();
                }
                Some("ping") => self.raw.send(json!({"type": "pong"})).await,
                Some("ka" | "pong") => {}
                _ => panic!("unexpected message: {message}"),
            }
        }
    }

    /// The next error message of the subscription.
    pub async fn next_error(&mut self) -> Value {
        self.recv().await
    }

    async fn recv(&mut self) -> Value {
        match self.early.pop_front() {
            Some(message) => message,
            None => self.raw.recv().await,
        }
    }
}

/// A raw GraphQL WebSocket connection, for the protocol's own messages.
pub struct RawSocket {
    socket: Socket,
}

impl RawSocket {
    /// Connects with subprotocol `protocol` (no message sent yet).
    pub async fn connect(addr: SocketAddr, protocol: &str) -> RawSocket {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"]
                .to_str()
                .unwrap(),
            protocol
        );
        RawSocket { socket }
    }

    /// Connects with `protocol` and completes `connection_init`.
    pub async fn initialised(addr: SocketAddr, protocol: &str) -> RawSocket {
        let mut raw = RawSocket::connect(addr, protocol).await;
        raw.send(json!({"type": "connection_init", "payload": {}}))
            .await;
        assert_eq!(raw.recv().await, json!({"type": "connection_ack"}));
        raw
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_string().into()))
            .await
            .unwrap();
    }

    /// The next frame that is not a WebSocket ping or pong; `None` when the socket ended.
    async fn next_frame(&mut self) -> Option<Message> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("no WebSocket message in time");
            match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next text message as JSON (WebSocket pings and pongs skipped).
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = self.next_frame().await.expect("the WebSocket closed");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected WebSocket message: {other:?}"),
            }
        }
    }

    /// Closes the connection with code 1000; the server's answering close frame, if any.
    pub async fn close(&mut self) -> Option<u16> {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        self.socket
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await
            .unwrap();
        loop {
            match self.next_frame().await {
                Some(Message::Close(frame)) => return frame.map(|f| f.code.into()),
                Some(_) => {}
                None => return None,
            }
        }
    }

    /// The close frame's code and reason, after which the server ends the connection.
    pub async fn closed(&mut self) -> (u16, String) {
        match self.next_frame().await {
            Some(Message::Close(Some(frame))) => (frame.code.into(), frame.reason.to_string()),
            Some(Message::Close(None)) => panic!("a close frame without a code"),
            Some(other) => panic!("expected a close frame, got {other:?}"),
            None => panic!("the WebSocket ended without a close frame"),
        }
    }
}
