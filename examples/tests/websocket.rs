//! GraphQL over WebSocket, end to end: the protocol's messages in both subprotocols, and
//! subscriptions shared by the connections that ask the same thing (each still gets its own
//! id, its own errors and its own `complete`).

// Helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Gql, RawSocket, started};
use serde_json::{Value, json};

const TRANSPORT: &str = "graphql-transport-ws";
const LEGACY: &str = "graphql-ws";

/// Never fires during a test: runs happen only when triggered.
const YEARLY: &str = "0 0 1 1 *";

const STARTED: &str =
    "subscription($id: ID) { onExecutionEvent(jobId: $id) { kind execution { id jobId } } }";

async fn create_job(gql: &Gql, name: &str) -> String {
    let data = gql
        .data(
            "mutation($input: CreateJobInput!) { createJob(input: $input) { id } }",
            json!({"input": {"name": name, "prompt": name, "schedule": YEARLY}}),
        )
        .await;
    data["createJob"]["id"].as_str().unwrap().to_string()
}

async fn trigger(gql: &Gql, job: &str) -> String {
    let data = gql
        .data(
            "mutation($id: ID!) { triggerJob(id: $id) { id } }",
            json!({"id": job}),
        )
        .await;
    data["triggerJob"]["id"].as_str().unwrap().to_string()
}

fn subscribe(id: &str, query: &str, variables: Value) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
}

/// The next `next` message of operation `id`, whose execution event is `kind`: its event.
async fn event(socket: &mut RawSocket, id: &str, kind: &str) -> Value {
    loop {
        let message = socket.recv().await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        let event = message["payload"]["data"]["onExecutionEvent"].clone();
        assert!(message["payload"].get("errors").is_none(), "{message}");
        if event["kind"] == kind {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_asking_the_same_share_it_yet_each_keeps_its_own_id_and_end() {
    let (_ai, _db, server, gql) = started("ws-shared").await;
    let a = create_job(&gql, "a").await;
    let b = create_job(&gql, "b").await;

    let mut first = RawSocket::initialised(server.local_addr(), TRANSPORT).await;
    let mut second = RawSocket::initialised(server.local_addr(), TRANSPORT).await;
    let mut other = RawSocket::initialised(server.local_addr(), TRANSPORT).await;
    first
        .send(subscribe("one", STARTED, json!({"id": a})))
        .await;
    second
        .send(subscribe("two", STARTED, json!({"id": a})))
        .await;
    other.send(subscribe("x", STARTED, json!({"id": b}))).await;
    // The subscriptions are live once a ping sent after them is answered.
    for socket in [&mut first, &mut second, &mut other] {
        socket.send(json!({"type": "ping"})).await;
        assert_eq!(socket.recv().await, json!({"type": "pong"}));
    }
    assert_eq!(
        server.shared_subscriptions().live(),
        2,
        "job a's two subscribers share one"
    );

    let run_a = trigger(&gql, &a).await;
    for (socket, id) in [(&mut first, "one"), (&mut second, "two")] {
        let started = event(socket, id, "started").await;
        assert_eq!(started["execution"], json!({"id": run_a, "jobId": a}));
        event(socket, id, "finished").await;
    }
    // The subscriber of job b got nothing of a's run: its first event is b's.
    let run_b = trigger(&gql, &b).await;
    let started = event(&mut other, "x", "started").await;
    assert_eq!(started["execution"], json!({"id": run_b, "jobId": b}));

    // One subscriber stops; the other, subscribed to the same, still receives.
    first.send(json!({"id": "one", "type": "complete"})).await;
    assert_eq!(first.recv().await, json!({"type": "complete", "id": "one"}));
    let run_a2 = trigger(&gql, &a).await;
    let started = event(&mut second, "two", "started").await;
    assert_eq!(started["execution"]["id"], run_a2);
    event(&mut second, "two", "finished").await;
    // And the stopped one can subscribe again, under the same id.
    first
        .send(subscribe("one", STARTED, json!({"id": a})))
        .await;
    first.send(json!({"type": "ping"})).await;
    assert_eq!(first.recv().await, json!({"type": "pong"}));
    let run_a3 = trigger(&gql, &a).await;
    let started = event(&mut first, "one", "started").await;
    assert_eq!(started["execution"]["id"], run_a3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_subscription_is_each_connections_own_error_then_complete() {
    let (_ai, _db, server, _gql) = started("ws-invalid").await;
    for (protocol, start, data) in [(TRANSPORT, "subscribe", "next"), (LEGACY, "start", "data")] {
        for _ in 0..2 {
            let mut socket = RawSocket::initialised(server.local_addr(), protocol).await;
            socket
                .send(json!({"id": "1", "type": start,
                    "payload": {"query": STARTED, "variables": {"id": "not-an-id"}}}))
                .await;
            let error = socket.recv().await;
            assert_eq!(error["type"], data, "{error}");
            assert_eq!(error["id"], "1", "{error}");
            let message = error["payload"]["errors"][0]["message"].as_str().unwrap();
            assert!(message.starts_with("jobId: "), "{error}");
            assert_eq!(socket.recv().await, json!({"type": "complete", "id": "1"}));
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_the_socket_is_answered_once_then_complete() {
    let (_ai, _db, server, gql) = started("ws-query").await;
    let job = create_job(&gql, "q").await;
    let mut socket = RawSocket::initialised(server.local_addr(), TRANSPORT).await;
    let query = "query($id: ID!) { getJob(id: $id) { name } }";
    socket.send(subscribe("q", query, json!({"id": job}))).await;
    assert_eq!(
        socket.recv().await,
        json!({"type": "next", "id": "q", "payload": {"data": {"getJob": {"name": "q"}}}})
    );
    assert_eq!(socket.recv().await, json!({"type": "complete", "id": "q"}));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_close_the_connection_with_their_code() {
    let (_ai, _db, server, _gql) = started("ws-protocol").await;
    let addr = server.local_addr();

    let mut early = RawSocket::connect(addr, TRANSPORT).await;
    early
        .send(subscribe("1", STARTED, json!({"id": null})))
        .await;
    assert_eq!(
        early.closed().await,
        (1011, "The handshake is not completed.".to_string())
    );

    let mut twice = RawSocket::initialised(addr, TRANSPORT).await;
    twice.send(json!({"type": "connection_init"})).await;
    assert_eq!(
        twice.closed().await,
        (4429, "Too many initialisation requests.".to_string())
    );

    let mut legacy_twice = RawSocket::initialised(addr, LEGACY).await;
    legacy_twice.send(json!({"type": "connection_init"})).await;
    let error = legacy_twice.recv().await;
    assert_eq!(error["type"], "connection_error", "{error}");

    let mut duplicate = RawSocket::initialised(addr, TRANSPORT).await;
    duplicate
        .send(subscribe("same", STARTED, json!({"id": null})))
        .await;
    duplicate
        .send(subscribe("same", STARTED, json!({"id": null})))
        .await;
    assert_eq!(
        duplicate.closed().await,
        (4409, "Subscriber for same already exists".to_string())
    );

    // A client's close is answered with a close frame.
    let mut leaving = RawSocket::initialised(addr, TRANSPORT).await;
    assert_eq!(leaving.close().await, Some(1000));

    let mut garbage = RawSocket::initialised(addr, TRANSPORT).await;
    garbage.send_text("{\"type\": \"no-such-message\"}").await;
    let (code, reason) = garbage.closed().await;
    assert_eq!(code, 1002);
    assert!(reason.contains("no-such-message"), "{reason}");

    // A request without a GraphQL subprotocol is refused before any upgrade.
    let refused = reqwest::Client::new()
        .get(format!("http://{addr}/graphql"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "chat")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_closes_the_connections_with_going_away() {
    let (_ai, _db, server, _gql) = started("ws-shutdown").await;
    let mut socket = RawSocket::initialised(server.local_addr(), TRANSPORT).await;
    socket
        .send(subscribe("1", STARTED, json!({"id": null})))
        .await;
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.recv().await, json!({"type": "pong"}));
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(
        socket.closed().await,
        (1001, "the server is shutting down".to_string())
    );
    tokio::time::timeout(std::time::Duration::from_secs(30), shutdown)
        .await
        .expect("the shutdown ends once the connection has closed")
        .unwrap();
}
