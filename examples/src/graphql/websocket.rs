//! GraphQL over WebSocket: `graphql-transport-ws` and the older `graphql-ws`
//! (subscriptions-transport-ws), with subscriptions shared across connections
//! ([`super::shared`]).
//!
//! The messages are those of async-graphql's own WebSocket handler, which this replaces so
//! that a subscription result is resolved and encoded once for every connection that asked
//! the same thing, not once per connection:
//!
//! | client | server |
//! |---|---|
//! | `connection_init` | `connection_ack`; a second one closes the connection (4429) |
//! | `subscribe` / `start` `{id, payload}` | `next` / `data` `{id, payload}` per result, then `complete` `{id}` when the operation ends; before `connection_init` the connection closes (1011) |
//! | `complete` / `stop` `{id}` | `complete` `{id}`, and the operation stops |
//! | `ping` | `pong` |
//! | `connection_terminate` | the connection closes |
//! | a WebSocket close frame | a close frame in answer, then the connection ends |
//! | anything that is not one of these | the connection closes (1002) with the parse error |
//! | (the server shuts down) | the connection closes (1001, going away) |
//!
//! A shared subscription's results are written to the connection's socket by the
//! subscription's own tasks ([`super::outbox`]); what the socket cannot take at once waits in
//! the connection's queue, and while 4,096 messages wait there the client is not read from.
//!
//! Errors of an operation (an invalid document, a bad argument) come back in the `payload` of
//! its `next` / `data` message, as a GraphQL response with `errors`, followed by `complete`.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Response;
use async_graphql::http::{ClientMessage, WebSocketProtocols};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::future::FutureExt;
use futures_util::stream::{self, AbortHandle, Abortable, BoxStream, SelectAll, StreamExt};
use tokio::sync::watch;

use super::ChillSchema;
use super::outbox::{MAX_QUEUED, Offered, OperationResults, Outbox};
use super::shared::{
    EncodedResponse, Membership, SharedSubscriptions, Subscriber, SubscriptionKey, encode,
};

/// What an operation of a connection sends: a result, then its end.
enum Outcome {
    Result(EncodedResponse),
    End,
}

/// An operation of a connection: its id, and the start of its result messages.
struct Operation {
    id: String,
    /// `{"type":"next","id":ID,"payload":` (`data` in the older protocol).
    result_prefix: String,
}

impl Operation {
    fn new(id: String, protocol: WebSocketProtocols) -> Operation {
        let kind = match protocol {
            WebSocketProtocols::GraphQLWS => "next",
            WebSocketProtocols::SubscriptionsTransportWS => "data",
        };
        Operation {
            result_prefix: format!(r#"{{"type":"{kind}","id":{},"payload":"#, json_string(&id)),
            id,
        }
    }

    /// The message that carries `json`, a result of this operation.
    fn result(&self, json: &str) -> Message {
        let prefix = &self.result_prefix;
        let mut frame = String::with_capacity(prefix.len() + json.len() + 1);
        frame.push_str(prefix);
        frame.push_str(json);
        frame.push('}');
        Message::Text(frame.into())
    }
}

/// One connection's operations that are not shared, each a stream of its outcomes.
type Operations = SelectAll<BoxStream<'static, (Arc<Operation>, Outcome)>>;

/// An operation served by a shared subscription: the source's task writes its results to the
/// connection's socket itself.
struct SharedOperation {
    operation: Operation,
    outbox: Arc<Outbox>,
    results: OperationResults,
    /// Results are being skipped (the client does not read): logged once per spell.
    skipping: AtomicBool,
}

impl Subscriber for SharedOperation {
    fn result(&self, json: &EncodedResponse) {
        let offered = self
            .outbox
            .offer_result(&self.results, || self.operation.result(json));
        let skipped = offered == Offered::Full;
        if self.skipping.swap(skipped, Ordering::Relaxed) != skipped && skipped {
            tracing::warn!(
                id = %self.operation.id,
                "a GraphQL subscriber fell behind: results are skipped until it reads again"
            );
        }
    }

    fn end(&self) {
        self.outbox.end(&self.results, complete(&self.operation.id));
    }
}

/// An operation still running.
enum Running {
    /// Its own stream, in the connection's [`Operations`]: aborting stops it.
    Own(AbortHandle),
    /// A shared subscription: dropping the membership leaves it.
    Shared {
        operation: Arc<SharedOperation>,
        _membership: Membership,
    },
}

impl Running {
    fn is_live(&self) -> bool {
        match self {
            Running::Own(_) => true,
            Running::Shared { operation, .. } => !operation.results.has_ended(),
        }
    }
}

/// Serves one WebSocket connection until either side closes it, or `closing` turns true (the
/// connection then closes with code 1001, going away).
pub async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    schema: ChillSchema,
    shared: SharedSubscriptions,
    mut closing: watch::Receiver<bool>,
) {
    let outbox = Arc::new(Outbox::new(socket));
    let mut connection = Connection {
        protocol,
        schema,
        shared,
        outbox: outbox.clone(),
        initialised: false,
        operations: SelectAll::new(),
        running: HashMap::new(),
    };
    loop {
        // While the client leaves this many messages unread, neither its requests nor the
        // connection's own operations add to them.
        let room = outbox.queued() < MAX_QUEUED;
        let reply = tokio::select! {
            message = poll_fn(|cx| outbox.poll_read(cx)), if room => match message {
                Some(Ok(Message::Text(text))) => connection.on_message(text.as_bytes()),
                Some(Ok(Message::Binary(bytes))) => connection.on_message(&bytes),
                // The socket answers a close frame itself and then ends: read on until it has.
                Some(Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_))) => Reply::None,
                Some(Err(_)) | None => return,
            },
            written = poll_fn(|cx| outbox.poll_write(cx)) => match written {
                Ok(()) => Reply::None,
                Err(_) => return,
            },
            Some((operation, outcome)) = connection.operations.next(),
                if !connection.operations.is_empty() && room => {
                connection.on_outcome(&operation, outcome)
            }
            () = going_away(&mut closing) => {
                Reply::Close(1001, "the server is shutting down".into())
            }
        };
        let (message, close) = match reply {
            Reply::None => continue,
            Reply::Send(message) => (message, false),
            Reply::Close(code, reason) => (
                Message::Close(Some(CloseFrame {
                    code,
                    reason: close_reason(reason).into(),
                })),
                true,
            ),
            Reply::SendThenClose(message) => (message, true),
            Reply::Stop => return,
        };
        if outbox.queue(message) == Offered::Closed {
            return;
        }
        if close {
            // A client that reads nothing more does not keep the connection.
            let _ = tokio::time::timeout(CLOSING_PATIENCE, outbox.flush()).await;
            return;
        }
    }
}

/// Resolves once `closing` turns true; never, if its sender is gone without doing so.
async fn going_away(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How long a closing connection waits for what it has queued, its close frame last, to be
/// written.
const CLOSING_PATIENCE: Duration = Duration::from_secs(10);

/// What to do after a message.
enum Reply {
    None,
    Send(Message),
    SendThenClose(Message),
    Close(u16, String),
    Stop,
}

struct Connection {
    protocol: WebSocketProtocols,
    schema: ChillSchema,
    shared: SharedSubscriptions,
    outbox: Arc<Outbox>,
    initialised: bool,
    operations: Operations,
    /// The operations started and not stopped, by id.
    running: HashMap<String, Running>,
}

impl Connection {
    fn on_message(&mut self, bytes: &[u8]) -> Reply {
        let message = match ClientMessage::from_bytes(bytes) {
            Ok(message) => message,
            Err(e) => return Reply::Close(1002, e.to_string()),
        };
        match message {
            ClientMessage::ConnectionInit { .. } if self.initialised => match self.protocol {
                WebSocketProtocols::GraphQLWS => {
                    Reply::Close(4429, "Too many initialisation requests.".into())
                }
                WebSocketProtocols::SubscriptionsTransportWS => Reply::SendThenClose(text(
                    r#"{"type":"connection_error","payload":{"message":"Too many initialisation requests."}}"#,
                )),
            },
            ClientMessage::ConnectionInit { .. } => {
                self.initialised = true;
                Reply::Send(text(r#"{"type":"connection_ack"}"#))
            }
            ClientMessage::Start { .. } if !self.initialised => {
                Reply::Close(1011, "The handshake is not completed.".into())
            }
            ClientMessage::Start { id, payload } => {
                if self.protocol == WebSocketProtocols::GraphQLWS
                    && self.running.get(&id).is_some_and(Running::is_live)
                {
                    return Reply::Close(4409, format!("Subscriber for {id} already exists"));
                }
                self.start(id, payload);
                Reply::None
            }
            ClientMessage::Stop { id } => match self.running.remove(&id) {
                Some(Running::Own(handle)) => {
                    handle.abort();
                    Reply::Send(complete(&id))
                }
                // Its results not yet written are withdrawn; its `complete` goes out unless
                // the source ended it already.
                Some(Running::Shared { operation, .. }) => {
                    operation
                        .outbox
                        .stop(&operation.results, Some(complete(&id)));
                    Reply::None
                }
                None => Reply::None,
            },
            ClientMessage::ConnectionTerminate => Reply::Stop,
            ClientMessage::Ping { .. } => Reply::Send(text(r#"{"type":"pong"}"#)),
            ClientMessage::Pong { .. } => Reply::None,
        }
    }

    /// Starts operation `id`: a shared subscription when it can be one, else its own stream.
    fn start(&mut self, id: String, mut request: async_graphql::Request) {
        match self.running.remove(&id) {
            Some(Running::Own(old)) => old.abort(),
            // Replaced without a `complete`: the new operation has the same id.
            Some(Running::Shared { operation, .. }) => {
                operation.outbox.stop(&operation.results, None);
            }
            None => {}
        }
        // Shared operations their source ended leave their source now.
        self.running.retain(|_, running| running.is_live());
        let operation = Operation::new(id.clone(), self.protocol);
        let key = SubscriptionKey::of(&mut request);
        let mut own = self.schema.execute_stream(request);
        let results: BoxStream<'static, EncodedResponse> = match key {
            Some(key) => match own.next().now_or_never() {
                // Valid and live: share it.
                None => {
                    let operation = Arc::new(SharedOperation {
                        operation,
                        outbox: self.outbox.clone(),
                        results: OperationResults::new(),
                        skipping: AtomicBool::new(false),
                    });
                    let membership = self.shared.join(key, own, operation.clone());
                    self.running.insert(
                        id,
                        Running::Shared {
                            operation,
                            _membership: membership,
                        },
                    );
                    return;
                }
                // An error (or an immediate result) is this request's own.
                Some(Some(first)) => stream::once(async move { first })
                    .chain(own)
                    .map(|r: Response| encode(&r))
                    .boxed(),
                Some(None) => stream::empty().boxed(),
            },
            None => own.map(|r| encode(&r)).boxed(),
        };
        let (handle, registration) = AbortHandle::new_pair();
        self.running.insert(id, Running::Own(handle));
        let operation = Arc::new(operation);
        let last = operation.clone();
        let tagged = results
            .map(move |json| (operation.clone(), Outcome::Result(json)))
            .chain(stream::once(async move { (last, Outcome::End) }));
        self.operations
            .push(Abortable::new(tagged, registration).boxed());
    }

    fn on_outcome(&mut self, operation: &Operation, outcome: Outcome) -> Reply {
        match outcome {
            Outcome::Result(json) => Reply::Send(operation.result(&json)),
            Outcome::End => {
                self.running.remove(&operation.id);
                Reply::Send(complete(&operation.id))
            }
        }
    }
}

/// The longest close reason: a close frame's payload is at most 125 bytes, 2 of them the code.
const MAX_CLOSE_REASON: usize = 123;

/// `reason` cut to fit a close frame, at a character boundary.
fn close_reason(mut reason: String) -> String {
    if reason.len() > MAX_CLOSE_REASON {
        let mut end = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

fn text(s: &'static str) -> Message {
    Message::Text(s.into())
}

fn complete(id: &str) -> Message {
    Message::Text(format!(r#"{{"type":"complete","id":{}}}"#, json_string(id)).into())
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_close_reason_is_cut_at_a_character_boundary() {
        assert_eq!(close_reason("short".into()), "short");
        let long = "é".repeat(100);
        let cut = close_reason(long);
        assert!(cut.len() <= MAX_CLOSE_REASON && cut.len() >= MAX_CLOSE_REASON - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
