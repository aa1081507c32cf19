//! A WebSocket connection that any task can write to without waiting.
//!
//! A shared subscription's source ([`super::shared`]) delivers each result to every
//! subscribed connection itself: it frames the result and writes it to the connection's
//! socket there and then, when the socket takes it at once. A hundred subscribers are then a
//! hundred writes in one loop of one task, not a hundred tasks woken and scheduled, each to
//! write one message. Only what the socket cannot take at once is queued for the connection's
//! own task, which writes it when the socket is ready, in order.
//!
//! The connection's task reads the socket through the same [`Outbox`] and sends its own
//! messages (acknowledgements, `complete`, `pong`, close frames) through its queue, so every
//! message leaves in the order it was offered.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{Sink, Stream};

/// Messages a connection may have queued before the results offered to it are skipped (the
/// newest, logged by the caller): as many as the results an unshared subscription could fall
/// behind by. The connection's task also stops reading the client while that many wait, so
/// its own replies (`pong`, `complete`) are bounded too.
pub const MAX_QUEUED: usize = 4096;

/// What became of an offered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Written to the socket, or queued for the connection's task to write.
    Accepted,
    /// Not sent: the operation it belongs to has ended.
    Ended,
    /// Not sent: [`MAX_QUEUED`] messages are waiting already (a subscriber that does not read).
    Full,
    /// Not sent: the connection has failed or is closing.
    Closed,
}

/// Writing to the connection's socket failed: the connection is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFailed;

/// One operation whose results go through an [`Outbox`]: once it has ended, no result of it
/// is sent, and a stop withdraws those still queued.
#[derive(Debug)]
pub struct OperationResults {
    tag: u64,
    ended: AtomicBool,
}

static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

impl OperationResults {
    /// A running operation.
    pub fn new() -> OperationResults {
        OperationResults {
            tag: NEXT_TAG.fetch_add(1, Ordering::Relaxed),
            ended: AtomicBool::new(false),
        }
    }

    /// Its end (or stop) has been queued: no result of it follows.
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

impl Default for OperationResults {
    fn default() -> OperationResults {
        OperationResults::new()
    }
}

/// A WebSocket connection's socket, its queue of messages waiting to be written, and its
/// task's waker.
pub struct Outbox {
    state: Mutex<State>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Outbox")
            .field("queued", &state.queued.len())
            .field("unflushed", &state.unflushed)
            .field("closed", &state.closed)
            .finish_non_exhaustive()
    }
}

/// A queued message: the tag of the operation whose result it is (0 for the connection's
/// own messages), and the message.
type Queued = (u64, Message);

struct State {
    socket: WebSocket,
    /// Messages waiting for the socket, oldest first.
    queued: VecDeque<Queued>,
    /// The socket holds a written message it has not yet passed on whole.
    unflushed: bool,
    /// The connection's task, woken when it has writing to do.
    task: Option<Waker>,
    /// Writing failed, or a close frame was queued: nothing more is accepted.
    closed: bool,
    /// Writing failed.
    failed: bool,
}

impl State {
    fn has_work(&self) -> bool {
        self.unflushed || !self.queued.is_empty()
    }

    fn wake_task(&mut self) {
        if let Some(task) = &self.task {
            task.wake_by_ref();
        }
    }

    /// Writes `message` now if the socket takes it without waiting; gives it back otherwise.
    /// Only called with nothing queued and nothing unflushed, so it cannot overtake anything.
    fn write_now(&mut self, message: Message) -> Result<(), Message> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut socket = Pin::new(&mut self.socket);
        match socket.as_mut().poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                self.fail();
                return Ok(());
            }
            Poll::Pending => return Err(message),
        }
        if socket.as_mut().start_send(message).is_err() {
            self.fail();
            return Ok(());
        }
        match socket.poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => self.fail(),
            // The socket has it; the rest of it leaves when the task finds the socket ready.
            Poll::Pending => {
                self.unflushed = true;
                self.wake_task();
            }
        }
        Ok(())
    }

    fn fail(&mut self) {
        self.closed = true;
        self.failed = true;
        self.unflushed = false;
        self.queued.clear();
        self.wake_task();
    }

    /// Writes what is queued, with the task's context: `Ready(Ok)` once it has written
    /// something or flushed, whether or not more is left (the socket then holds the task's
    /// waker), `Pending` when it could do nothing.
    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WriteFailed>> {
        if self.failed {
            return Poll::Ready(Err(WriteFailed));
        }
        let written = self.write_queued(cx);
        if written.is_err() {
            self.fail();
        }
        match written {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => Poll::Pending,
            Err(_) => Poll::Ready(Err(WriteFailed)),
        }
    }

    /// Whether any progress was made.
    fn write_queued(&mut self, cx: &mut Context<'_>) -> Result<bool, axum::Error> {
        let mut socket = Pin::new(&mut self.socket);
        let mut progress = false;
        while !self.queued.is_empty() {
            match socket.as_mut().poll_ready(cx) {
                Poll::Ready(ready) => ready?,
                Poll::Pending => return Ok(progress),
            }
            if let Some((_, message)) = self.queued.pop_front() {
                socket.as_mut().start_send(message)?;
                self.unflushed = true;
                progress = true;
            }
        }
        if self.unflushed {
            match socket.poll_flush(cx) {
                Poll::Ready(flushed) => flushed?,
                Poll::Pending => return Ok(progress),
            }
            self.unflushed = false;
            progress = true;
        }
        Ok(progress)
    }
}

impl Outbox {
    /// An outbox over `socket`.
    pub fn new(socket: WebSocket) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                socket,
                queued: VecDeque::new(),
                unflushed: false,
                task: None,
                closed: false,
                failed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a result of `operation`: unless it has ended, written now when the socket
    /// takes it without waiting, else queued for the connection's task. Never waits. The
    /// message is made only when it is sent.
    pub fn offer_result(
        &self,
        operation: &OperationResults,
        message: impl FnOnce() -> Message,
    ) -> Offered {
        let mut state = self.lock();
        if state.closed {
            return Offered::Closed;
        }
        // Read under the lock that `end` and `stop` set it under: no result follows the end.
        if operation.has_ended() {
            return Offered::Ended;
        }
        if state.queued.len() >= MAX_QUEUED {
            return Offered::Full;
        }
        let mut message = message();
        if !state.has_work() {
            match state.write_now(message) {
                Ok(()) if state.failed => return Offered::Closed,
                Ok(()) => return Offered::Accepted,
                Err(unsent) => message = unsent,
            }
        }
        state.queued.push_back((operation.tag, message));
        state.wake_task();
        Offered::Accepted
    }

    /// Ends `operation` after its results: queues `complete` behind them, unless it had
    /// ended already. `false` if it had.
    pub fn end(&self, operation: &OperationResults, complete: Message) -> bool {
        self.finish(operation, false, Some(complete))
    }

    /// Stops `operation` now (the client asked): its results still queued are withdrawn,
    /// and `complete`, if any, is queued, unless it had ended already. `false` if it had.
    pub fn stop(&self, operation: &OperationResults, complete: Option<Message>) -> bool {
        self.finish(operation, true, complete)
    }

    fn finish(
        &self,
        operation: &OperationResults,
        withdraw: bool,
        complete: Option<Message>,
    ) -> bool {
        let mut state = self.lock();
        if withdraw {
            state.queued.retain(|(tag, _)| *tag != operation.tag);
        }
        if operation.ended.swap(true, Ordering::AcqRel) {
            return false;
        }
        if let Some(complete) = complete
            && !state.closed
        {
            state.queued.push_back((0, complete));
            state.wake_task();
        }
        true
    }

    /// Queues one of the connection's own messages. A close frame is the last message
    /// accepted.
    pub fn queue(&self, message: Message) -> Offered {
        let mut state = self.lock();
        if state.closed {
            return Offered::Closed;
        }
        let closing = matches!(message, Message::Close(_));
        state.queued.push_back((0, message));
        state.closed = closing;
        state.wake_task();
        Offered::Accepted
    }

    /// Nothing is waiting to be written.
    pub fn is_idle(&self) -> bool {
        !self.lock().has_work()
    }

    /// How many messages wait for the socket.
    pub fn queued(&self) -> usize {
        self.lock().queued.len()
    }

    /// For the connection's task: writes what is waiting. `Ready(Ok)` each time it wrote
    /// something (more may be left: poll again); `Pending` while the socket is not ready or
    /// there is nothing to write (the task is woken when there is); `Ready(Err)` once writing
    /// failed, here or in another task.
    pub fn poll_write(&self, cx: &mut Context<'_>) -> Poll<Result<(), WriteFailed>> {
        let mut state = self.lock();
        if !state.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            state.task = Some(cx.waker().clone());
        }
        if !state.has_work() && !state.failed {
            return Poll::Pending;
        }
        state.poll_write_queued(cx)
    }

    /// For the connection's task: waits until everything queued has been written.
    pub async fn flush(&self) -> Result<(), WriteFailed> {
        poll_fn(|cx| {
            let mut state = self.lock();
            loop {
                if !state.has_work() {
                    return Poll::Ready(Ok(()));
                }
                std::task::ready!(state.poll_write_queued(cx))?;
            }
        })
        .await
    }

    /// For the connection's task: the next message the client sent.
    pub fn poll_read(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, axum::Error>>> {
        Pin::new(&mut self.lock().socket).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::WebSocketUpgrade;
    use axum::routing::get;
    use futures_util::StreamExt;
    use tokio::net::{TcpListener, TcpSocket};
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::Message as ClientMessage;

    type Client = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

    /// A server-side WebSocket and its client, whose receive buffer is small so that the
    /// server's writes soon find the socket full while the client does not read.
    async fn pair() -> (WebSocket, Client) {
        let (sockets, mut accepted) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/",
            get(move |upgrade: WebSocketUpgrade| {
                let sockets = sockets.clone();
                async move {
                    upgrade.on_upgrade(move |socket| async move {
                        let _ = sockets.send(socket);
                    })
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (client, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
            .await
            .unwrap();
        (accepted.recv().await.unwrap(), client)
    }

    /// Does what the connection's task does for writing, until the outbox fails.
    fn drive(outbox: Arc<Outbox>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { while poll_fn(|cx| outbox.poll_write(cx)).await.is_ok() {} })
    }

    async fn next_text(client: &mut Client) -> String {
        let message = tokio::time::timeout(Duration::from_secs(30), client.next())
            .await
            .expect("a message within 30 s")
            .expect("the connection is open")
            .unwrap();
        match message {
            ClientMessage::Text(text) => text.to_string(),
            other => panic!("not text: {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_a_client_does_not_read_are_queued_in_order_until_the_queue_is_full() {
        let (socket, mut client) = pair().await;
        let outbox = Arc::new(Outbox::new(socket));
        let writer = drive(outbox.clone());
        let ended = OperationResults::new();
        let payload = "x".repeat(100);
        let mut accepted = 0;
        let full = loop {
            let offered = outbox.offer_result(&ended, || {
                Message::Text(format!("{accepted} {payload}").into())
            });
            match offered {
                Offered::Accepted => accepted += 1,
                other => break other,
            }
            assert!(accepted < 1_000_000, "the queue never filled");
        };
        assert_eq!(full, Offered::Full);
        assert!(
            accepted > MAX_QUEUED,
            "the socket took some at once: {accepted}"
        );
        assert!(!outbox.is_idle());
        // The connection's own message goes after them all, even with the queue full.
        assert_eq!(outbox.queue(Message::Text("own".into())), Offered::Accepted);
        for n in 0..accepted {
            assert_eq!(next_text(&mut client).await, format!("{n} {payload}"));
        }
        assert_eq!(next_text(&mut client).await, "own");
        // Drained: a result is written at once again.
        tokio::time::timeout(Duration::from_secs(30), async {
            while !outbox.is_idle() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert_eq!(
            outbox.offer_result(&ended, || Message::Text("again".into())),
            Offered::Accepted
        );
        assert!(outbox.is_idle(), "written at once");
        assert_eq!(next_text(&mut client).await, "again");
        writer.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_reading_while_results_are_offered_gets_every_accepted_one_in_order() {
        let (socket, mut client) = pair().await;
        let outbox = Arc::new(Outbox::new(socket));
        let writer = drive(outbox.clone());
        let offering = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let ended = OperationResults::new();
                let payload = "z".repeat(200);
                let mut accepted = Vec::new();
                for n in 0..20_000 {
                    let message = || Message::Text(format!("{n} {payload}").into());
                    if outbox.offer_result(&ended, message) == Offered::Accepted {
                        accepted.push(n);
                    }
                    if n % 500 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                outbox.queue(Message::Text("done".into()));
                accepted
            }
        });
        let mut received = Vec::new();
        loop {
            let text = next_text(&mut client).await;
            if text == "done" {
                break;
            }
            let n: u32 = text.split(' ').next().unwrap().parse().unwrap();
            received.push(n);
            if received.len() % 1000 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let accepted = offering.await.unwrap();
        assert_eq!(received, accepted);
        writer.abort();
    }

    #[tokio::test]
    async fn no_result_follows_an_operations_end_and_nothing_follows_a_close_frame() {
        let (socket, mut client) = pair().await;
        let outbox = Arc::new(Outbox::new(socket));
        let writer = drive(outbox.clone());
        let ended = OperationResults::new();
        let result = || Message::Text("result".into());
        assert_eq!(outbox.offer_result(&ended, result), Offered::Accepted);
        assert!(outbox.end(&ended, Message::Text("complete".into())));
        assert!(!outbox.end(&ended, Message::Text("complete again".into())));
        assert_eq!(outbox.offer_result(&ended, result), Offered::Ended);
        assert_eq!(next_text(&mut client).await, "result");
        assert_eq!(next_text(&mut client).await, "complete");

        let other = OperationResults::new();
        assert_eq!(outbox.queue(Message::Close(None)), Offered::Accepted);
        assert_eq!(outbox.offer_result(&other, result), Offered::Closed);
        assert_eq!(outbox.queue(Message::Text("late".into())), Offered::Closed);
        outbox.flush().await.unwrap();
        let last = client.next().await.unwrap().unwrap();
        assert!(matches!(last, ClientMessage::Close(_)), "{last:?}");
        writer.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_withdraws_the_operations_queued_results_and_keeps_the_others() {
        let (socket, mut client) = pair().await;
        let outbox = Arc::new(Outbox::new(socket));
        let stopped = OperationResults::new();
        let kept = OperationResults::new();
        let payload = "s".repeat(100);
        // Alternate results of the two until some wait in the queue.
        let mut n = 0;
        while outbox.queued() < 100 {
            for (name, operation) in [("stopped", &stopped), ("kept", &kept)] {
                let offered = outbox.offer_result(operation, || {
                    Message::Text(format!("{name} {n} {payload}").into())
                });
                assert_eq!(offered, Offered::Accepted);
            }
            n += 1;
            assert!(n < 100_000, "the queue never filled");
        }
        assert!(outbox.stop(&stopped, Some(Message::Text("complete".into()))));
        assert!(!outbox.stop(&stopped, Some(Message::Text("again".into()))));
        assert!(!outbox.end(&stopped, Message::Text("again".into())));
        assert_eq!(
            outbox.offer_result(&stopped, || Message::Text("late".into())),
            Offered::Ended
        );
        outbox.queue(Message::Text("done".into()));
        let writer = drive(outbox.clone());
        let (mut stopped_seen, mut kept_seen) = (Vec::new(), Vec::new());
        let mut completed = false;
        loop {
            let text = next_text(&mut client).await;
            let mut words = text.split(' ');
            match (words.next().unwrap(), words.next()) {
                ("done", None) => break,
                ("complete", None) => completed = true,
                ("stopped", Some(k)) => {
                    assert!(!completed, "a result after the stop's complete: {k}");
                    stopped_seen.push(k.parse::<u32>().unwrap());
                }
                ("kept", Some(k)) => kept_seen.push(k.parse::<u32>().unwrap()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(completed);
        assert_eq!(
            kept_seen,
            (0..n).collect::<Vec<_>>(),
            "every result of the other"
        );
        let before: Vec<u32> = (0..stopped_seen.len() as u32).collect();
        assert_eq!(
            stopped_seen, before,
            "the stopped one's first results, in order"
        );
        assert!(
            stopped_seen.len() < n as usize,
            "its queued results were withdrawn: {} of {n} arrived",
            stopped_seen.len()
        );
        writer.abort();
    }

    #[tokio::test]
    async fn a_failed_socket_is_reported_to_the_connections_task() {
        let (socket, client) = pair().await;
        let outbox = Arc::new(Outbox::new(socket));
        drop(client);
        let ended = OperationResults::new();
        let payload = "y".repeat(64 * 1024);
        // Writes to a socket whose peer has gone fail, sooner or later.
        let failed = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match outbox.offer_result(&ended, || Message::Text(payload.clone().into())) {
                    Offered::Closed => break,
                    Offered::Accepted | Offered::Full | Offered::Ended => {}
                }
                let wrote = poll_fn(|cx| outbox.poll_write(cx));
                if let Ok(Err(WriteFailed)) =
                    tokio::time::timeout(Duration::from_millis(10), wrote).await
                {
                    break;
                }
            }
        })
        .await;
        assert!(failed.is_ok(), "the failure was never reported");
        assert_eq!(
            poll_fn(|cx| outbox.poll_write(cx)).await,
            Err(WriteFailed),
            "and it is remembered"
        );
        assert_eq!(outbox.queue(Message::Text("late".into())), Offered::Closed);
    }
}
