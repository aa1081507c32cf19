//! Subscriptions shared by every connection that asks the same thing.
//!
//! A hundred dashboards subscribed to `onExecutionEvent(jobId: X)` with the same selection
//! would otherwise each receive every engine event, resolve the same selection over it and
//! encode the same JSON. Here the first such subscription becomes the *source*: one task
//! resolves its stream and encodes each result once; its *lanes* (the source's task itself,
//! and tasks that the runtime's workers share) hand the encoded result (an `Arc<str>`) to
//! every subscriber, a
//! [`Subscriber`], which frames it for its socket and writes it there and then
//! ([`super::outbox`]). A source ends when its last subscriber leaves, or when its stream ends
//! (each subscriber is then told, after the last result).
//!
//! Two subscriptions are the same when their document, operation name and variables are the
//! same text. A request with extensions is never shared (they may change what it resolves).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use async_graphql::{Request, Response};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Results a stream subscriber ([`SharedSubscriptions::subscribe`]) may fall behind by before
/// it skips some (logged): as many as the engine's events an unshared subscription could fall
/// behind by (`ChillOptions::event_capacity` by default).
const STREAM_BACKLOG: usize = 4096;

/// One result of a subscription, encoded: the JSON of a GraphQL response.
pub type EncodedResponse = Arc<str>;

/// A response as JSON. Encoding a `Response` cannot fail (its map keys are strings); should it
/// ever, the subscriber gets a response that says so rather than nothing.
pub fn encode(response: &Response) -> EncodedResponse {
    match serde_json::to_string(response) {
        Ok(json) => json.into(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a GraphQL response");
            Arc::from(r#"{"data":null,"errors":[{"message":"the response could not be encoded"}]}"#)
        }
    }
}

/// What identifies a shareable subscription: its document, operation and variables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionKey(String);

impl SubscriptionKey {
    /// The key of `request` when it is a subscription that can be shared: a subscription
    /// operation, without extensions. `None` for queries, mutations, documents that do not
    /// parse (their error is the request's own) and requests with extensions.
    pub fn of(request: &mut Request) -> Option<SubscriptionKey> {
        if !request.extensions.is_empty() {
            return None;
        }
        let name = request.operation_name.clone();
        let document = request.parsed_query().ok()?;
        let operation = match name.as_deref() {
            Some(name) => {
                document
                    .operations
                    .iter()
                    .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))?
                    .1
            }
            None => {
                let mut operations = document.operations.iter();
                let only = operations.next()?.1;
                if operations.next().is_some() {
                    return None;
                }
                only
            }
        };
        if operation.node.ty != async_graphql::parser::types::OperationType::Subscription {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).ok()?;
        Some(SubscriptionKey(format!(
            "{}\u{0}{}\u{0}{variables}",
            request.query,
            name.unwrap_or_default()
        )))
    }
}

/// Where a shared subscription delivers one subscriber's results. Both calls come from the
/// source's task, one subscriber after another, so each must return at once: a write that
/// does not wait, a channel send that does not block.
pub trait Subscriber: Send + Sync + 'static {
    /// One result, encoded.
    fn result(&self, json: &EncodedResponse);
    /// The source ended (its stream ended, or a resolver panicked): no result follows.
    fn end(&self);
}

/// The live shared subscriptions of one schema. Cloning is cheap; clones share the sources.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use async_graphql::{Request, Response, Value};
/// use chill_examples::graphql::shared::{SharedSubscriptions, SubscriptionKey};
/// use futures_util::stream::{self, StreamExt};
///
/// let shared = SharedSubscriptions::new();
/// let mut request = Request::new("subscription { onExecutionEvent { kind } }");
/// let key = SubscriptionKey::of(&mut request).expect("a subscription");
/// // Each subscriber brings its own stream of results; only the first one's is resolved.
/// let results = || stream::iter([Response::new(Value::from("started"))]).chain(stream::pending());
/// let mut first = Box::pin(shared.subscribe(key.clone(), results().boxed()));
/// let mut second = Box::pin(shared.subscribe(key, results().boxed()));
/// assert_eq!(shared.live(), 1);
/// assert_eq!(&*first.next().await.unwrap(), r#"{"data":"started"}"#);
/// assert_eq!(&*second.next().await.unwrap(), r#"{"data":"started"}"#);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct SharedSubscriptions {
    sources: Arc<Mutex<Sources>>,
}

impl std::fmt::Debug for SharedSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSubscriptions")
            .field("live", &self.live())
            .finish()
    }
}

type Sources = HashMap<SubscriptionKey, (u64, Weak<Source>)>;

/// The subscribers of a lane, as its task reads them: a snapshot it can deliver to without
/// holding the lock while joins and leaves replace it.
type Snapshot = Arc<[Arc<dyn Subscriber>]>;

/// The subscribers of a source, each in one lane (see [`run_lane`]) for as long as it stays.
struct Members {
    list: Vec<(u64, Arc<dyn Subscriber>)>,
    /// How many subscribers each lane has.
    counts: Vec<usize>,
    /// The subscribers of each lane, made when a lane delivers after a change.
    snapshots: Vec<Option<Snapshot>>,
    next: u64,
    /// The source ended: nobody joins any more.
    ended: bool,
}

impl Members {
    fn new(lanes: usize) -> Members {
        Members {
            list: Vec::new(),
            counts: vec![0; lanes],
            snapshots: vec![None; lanes],
            next: 0,
            ended: false,
        }
    }

    fn lanes(&self) -> usize {
        self.snapshots.len()
    }

    fn join(&mut self, subscriber: Arc<dyn Subscriber>) -> u64 {
        let member = self.next;
        self.next += 1;
        self.list.push((member, subscriber));
        let lane = self.lane_of(member);
        self.counts[lane] += 1;
        self.snapshots[lane] = None;
        member
    }

    fn leave(&mut self, member: u64) {
        let before = self.list.len();
        self.list.retain(|(m, _)| *m != member);
        let lane = self.lane_of(member);
        self.counts[lane] -= before - self.list.len();
        self.snapshots[lane] = None;
    }

    fn lane_of(&self, member: u64) -> usize {
        (member % self.lanes() as u64) as usize
    }

    /// The subscribers of `lane`.
    fn snapshot(&mut self, lane: usize) -> Snapshot {
        if let Some(snapshot) = &self.snapshots[lane] {
            return snapshot.clone();
        }
        let snapshot: Snapshot = self
            .list
            .iter()
            .filter(|(m, _)| self.lane_of(*m) == lane)
            .map(|(_, s)| s.clone())
            .collect();
        self.snapshots[lane] = Some(snapshot.clone());
        snapshot
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running source: the task that resolves, encodes and delivers, and its subscribers.
struct Source {
    id: u64,
    key: SubscriptionKey,
    members: Arc<Mutex<Members>>,
    task: AbortHandle,
    sources: Weak<Mutex<Sources>>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(sources) = self.sources.upgrade() {
            forget(&sources, &self.key, self.id);
        }
    }
}

/// Removes `key`'s entry if it is still source `id`'s.
fn forget(sources: &Mutex<Sources>, key: &SubscriptionKey, id: u64) {
    let mut sources = lock(sources);
    if sources.get(key).is_some_and(|(current, _)| *current == id) {
        sources.remove(key);
    }
}

static NEXT_SOURCE: AtomicU64 = AtomicU64::new(0);

/// A subscriber's place in a shared subscription: it gets the results until this is
/// dropped. The source stops when the last of them is.
pub struct Membership {
    source: Arc<Source>,
    member: u64,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("source", &self.source.id)
            .field("member", &self.member)
            .finish()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        lock(&self.source.members).leave(self.member);
    }
}

impl SharedSubscriptions {
    /// No shared subscription yet.
    pub fn new() -> SharedSubscriptions {
        SharedSubscriptions::default()
    }

    /// How many shared subscriptions are live (each with one or more subscribers).
    pub fn live(&self) -> usize {
        lock(&self.sources)
            .values()
            .filter(|(_, source)| source.strong_count() > 0)
            .count()
    }

    /// Delivers the results of the subscription `key`, from now on, to `subscriber`, until
    /// the returned membership is dropped or the source ends ([`Subscriber::end`]). `stream`
    /// is this subscriber's own stream of it, already polled once (so the request is known
    /// to be valid and its subscription live): it becomes the source when there is none, and
    /// is dropped otherwise. A subscriber that joins a source may also get the results of
    /// events the source received just before the join but had not yet resolved.
    pub fn join(
        &self,
        key: SubscriptionKey,
        stream: BoxStream<'static, Response>,
        subscriber: Arc<dyn Subscriber>,
    ) -> Membership {
        let mut sources = lock(&self.sources);
        let existing = sources.get(&key).and_then(|(_, s)| s.upgrade());
        if let Some(source) = &existing {
            let mut members = lock(&source.members);
            if !members.ended {
                let member = members.join(subscriber);
                return Membership {
                    source: source.clone(),
                    member,
                };
            }
        }
        let id = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed);
        let members = Arc::new(Mutex::new(Members::new(lanes())));
        let member = lock(&members).join(subscriber);
        let task = tokio::spawn(run_source(
            stream,
            members.clone(),
            Arc::downgrade(&self.sources),
            key.clone(),
            id,
        ))
        .abort_handle();
        let source = Arc::new(Source {
            id,
            key: key.clone(),
            members,
            task,
            sources: Arc::downgrade(&self.sources),
        });
        sources.insert(key, (id, Arc::downgrade(&source)));
        drop(sources);
        // An ended source's last reference forgets its key: not under the lock.
        drop(existing);
        Membership { source, member }
    }

    /// [`SharedSubscriptions::join`] as a stream of the encoded results, which ends when the
    /// source ends; dropping it unsubscribes. A stream that falls more than 4,096 results
    /// behind skips results (logged).
    pub fn subscribe(
        &self,
        key: SubscriptionKey,
        stream: BoxStream<'static, Response>,
    ) -> impl Stream<Item = EncodedResponse> + Send + 'static {
        let (sender, receiver) = mpsc::channel(STREAM_BACKLOG);
        let membership = self.join(
            key,
            stream,
            Arc::new(StreamSubscriber(Mutex::new(Some(sender)))),
        );
        futures_util::stream::unfold(
            (receiver, membership),
            |(mut receiver, membership)| async move {
                let json = receiver.recv().await?;
                Some((json, (receiver, membership)))
            },
        )
    }
}

/// A subscriber that forwards to a channel; its end closes the channel.
struct StreamSubscriber(Mutex<Option<mpsc::Sender<EncodedResponse>>>);

impl Subscriber for StreamSubscriber {
    fn result(&self, json: &EncodedResponse) {
        if let Some(sender) = &*lock(&self.0)
            && let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(json.clone())
        {
            tracing::warn!("a GraphQL subscriber fell behind: a result was skipped");
        }
    }

    fn end(&self) {
        lock(&self.0).take();
    }
}

/// How many lanes a source delivers through: two per worker of the runtime, so that every
/// worker can take some while one of them takes more.
fn lanes() -> usize {
    let workers = tokio::runtime::Handle::try_current()
        .map(|runtime| runtime.metrics().num_workers())
        .unwrap_or(1);
    (2 * workers).max(1)
}

/// Results a lane may fall behind its source by before it skips some (logged): as many as
/// the engine's events an unshared subscription could fall behind by. A lane never waits for
/// a socket, so only a machine out of CPU makes it fall behind.
const LANE_BACKLOG: usize = 4096;

/// Resolves a shared subscription and encodes each result once; its lanes deliver it.
///
/// A result is delivered by writing it to each subscriber's socket, which on a busy machine
/// is most of the cost of an event. So the subscribers are spread over lanes: the source's
/// task delivers to the first lane itself, and each other lane is a task of its own (started
/// when it first has a subscriber) that delivers, in order, every result to the subscribers
/// of that lane. The runtime's workers take lanes from each other, and a hundred subscribers
/// are written by all of them at once rather than by one after another. A subscriber stays in
/// one lane, so its results keep their order; a source whose subscribers are all in its own
/// lane (one subscriber, the first to join) writes to them without a hop through another
/// task.
async fn run_source(
    mut stream: BoxStream<'static, Response>,
    members: Arc<Mutex<Members>>,
    sources: Weak<Mutex<Sources>>,
    key: SubscriptionKey,
    id: u64,
) {
    let mut end = SourceEnd {
        lanes: (0..lock(&members).lanes()).map(|_| None).collect(),
        members: members.clone(),
        sources,
        key,
        id,
    };
    while let Some(response) = stream.next().await {
        let json = encode(&response);
        let own = {
            let mut guard = lock(&members);
            // The other lanes first, so that other workers can take them meanwhile.
            for (lane, sender) in end.lanes.iter_mut().enumerate().skip(1) {
                if guard.counts[lane] == 0 {
                    continue;
                }
                let sender = sender.get_or_insert_with(|| {
                    let (sender, receiver) = mpsc::channel(LANE_BACKLOG);
                    tokio::spawn(run_lane(members.clone(), lane, receiver));
                    sender
                });
                if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(json.clone()) {
                    tracing::warn!(
                        lane,
                        "a shared subscription's lane fell behind: a result was skipped"
                    );
                }
            }
            guard.snapshot(0)
        };
        for subscriber in own.iter() {
            subscriber.result(&json);
        }
    }
}

/// Delivers a source's results to the subscribers of one lane, in order; once the source
/// has ended (its channel closed), ends them.
async fn run_lane(
    members: Arc<Mutex<Members>>,
    lane: usize,
    mut results: mpsc::Receiver<EncodedResponse>,
) {
    while let Some(json) = results.recv().await {
        let subscribers = lock(&members).snapshot(lane);
        for subscriber in subscribers.iter() {
            subscriber.result(&json);
        }
    }
    let subscribers = lock(&members).snapshot(lane);
    for subscriber in subscribers.iter() {
        subscriber.end();
    }
}

/// Ends a source however its task ends (its stream ended, it was aborted, a resolver
/// panicked): no new subscriber may join it, and the subscribers of the lanes without a task
/// (the source's own, and any never started) are ended. The lanes' tasks then end theirs,
/// after the results sent before.
struct SourceEnd {
    /// The channel to each lane's task, once started (never for the source's own lane, the
    /// first). Dropped after the source has ended, so a lane that sees its channel close
    /// ends every subscriber it will ever have.
    lanes: Vec<Option<mpsc::Sender<EncodedResponse>>>,
    members: Arc<Mutex<Members>>,
    sources: Weak<Mutex<Sources>>,
    key: SubscriptionKey,
    id: u64,
}

impl Drop for SourceEnd {
    fn drop(&mut self) {
        if let Some(sources) = self.sources.upgrade() {
            forget(&sources, &self.key, self.id);
        }
        // The lanes without a task of their own: the source's, after the results it
        // delivered, and those never started. The others end theirs when their channel closes.
        let unstarted: Vec<Snapshot> = {
            let mut members = lock(&self.members);
            members.ended = true;
            self.lanes
                .iter()
                .enumerate()
                .filter(|(_, sender)| sender.is_none())
                .map(|(lane, _)| members.snapshot(lane))
                .collect()
        };
        for subscriber in unstarted.iter().flat_map(|lane| lane.iter()) {
            subscriber.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(query: &str, variables: serde_json::Value) -> Option<SubscriptionKey> {
        let mut request =
            Request::new(query).variables(async_graphql::Variables::from_json(variables));
        SubscriptionKey::of(&mut request)
    }

    #[test]
    fn only_subscriptions_are_shared_and_the_key_holds_document_and_variables() {
        let q = "subscription($id: ID) { onExecutionEvent(jobId: $id) { kind } }";
        let a = key(q, serde_json::json!({"id": "a"})).expect("a subscription");
        assert_eq!(key(q, serde_json::json!({"id": "a"})), Some(a.clone()));
        assert_ne!(key(q, serde_json::json!({"id": "b"})), Some(a));
        assert_eq!(key("{ listJobs { id } }", serde_json::json!({})), None);
        assert_eq!(key("mutation { x }", serde_json::json!({})), None);
        assert_eq!(key("subscription {", serde_json::json!({})), None);
    }

    #[test]
    fn the_named_operation_decides() {
        let doc = "query Q { a } subscription S { b }";
        let named = |name: &str| {
            let mut request = Request::new(doc).operation_name(name);
            SubscriptionKey::of(&mut request)
        };
        assert!(named("S").is_some());
        assert!(named("Q").is_none());
        assert!(named("missing").is_none());
        let mut unnamed = Request::new(doc);
        assert!(SubscriptionKey::of(&mut unnamed).is_none(), "ambiguous");
    }

    /// A stream of the responses sent on the returned sender.
    fn channel() -> (
        tokio::sync::mpsc::UnboundedSender<Response>,
        BoxStream<'static, Response>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        (tx, stream.boxed())
    }

    fn results(items: &[&str]) -> BoxStream<'static, Response> {
        let items: Vec<Response> = items
            .iter()
            .map(|s| Response::new(async_graphql::Value::String((*s).to_string())))
            .collect();
        futures_util::stream::iter(items)
            .chain(futures_util::stream::pending())
            .boxed()
    }

    #[tokio::test]
    async fn subscribers_of_one_key_share_one_source_until_the_last_leaves() {
        let shared = SharedSubscriptions::new();
        let q = "subscription { onExecutionEvent { kind } }";
        let k = key(q, serde_json::json!({})).unwrap();
        let (tx, rx) = channel();
        let first = shared.subscribe(k.clone(), rx);
        // The second subscriber's own stream is dropped: it would yield "not shared".
        let second = shared.subscribe(k.clone(), results(&["not shared"]));
        assert_eq!(shared.live(), 1);
        let mut first = Box::pin(first);
        let mut second = Box::pin(second);
        tx.send(Response::new(async_graphql::Value::from("one")))
            .unwrap();
        assert_eq!(&*first.next().await.unwrap(), r#"{"data":"one"}"#);
        assert_eq!(&*second.next().await.unwrap(), r#"{"data":"one"}"#);
        drop(first);
        assert_eq!(shared.live(), 1, "one subscriber is left");
        drop(second);
        assert_eq!(
            shared.live(),
            0,
            "the source ended with its last subscriber"
        );
        tokio::task::yield_now().await;
        assert!(tx.is_closed(), "the source's stream was dropped");
    }

    #[tokio::test]
    async fn a_source_whose_stream_ends_completes_every_subscriber_and_a_new_one_starts_afresh() {
        let shared = SharedSubscriptions::new();
        let k = key("subscription { a }", serde_json::json!({})).unwrap();
        let (tx, rx) = channel();
        let mut first = Box::pin(shared.subscribe(k.clone(), rx));
        let mut second = Box::pin(shared.subscribe(k.clone(), results(&[])));
        tx.send(Response::new(async_graphql::Value::from(1)))
            .unwrap();
        drop(tx);
        assert_eq!(&*first.next().await.unwrap(), r#"{"data":1}"#);
        assert!(first.next().await.is_none());
        assert_eq!(&*second.next().await.unwrap(), r#"{"data":1}"#);
        assert!(second.next().await.is_none());
        let mut third = Box::pin(shared.subscribe(k, results(&["fresh"])));
        assert_eq!(&*third.next().await.unwrap(), r#"{"data":"fresh"}"#);
    }

    #[tokio::test]
    async fn a_source_that_panics_completes_its_subscribers_and_is_not_joined_again() {
        let shared = SharedSubscriptions::new();
        let k = key("subscription { a }", serde_json::json!({})).unwrap();
        let panicking = futures_util::stream::poll_fn(|_| -> std::task::Poll<Option<Response>> {
            panic!("a resolver failed")
        })
        .boxed();
        let mut first = Box::pin(shared.subscribe(k.clone(), panicking));
        let ended = tokio::time::timeout(std::time::Duration::from_secs(30), first.next()).await;
        assert!(matches!(ended, Ok(None)), "completed, not left waiting");
        assert_eq!(shared.live(), 0);
        let mut second = Box::pin(shared.subscribe(k, results(&["fresh"])));
        assert_eq!(&*second.next().await.unwrap(), r#"{"data":"fresh"}"#);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscribers_in_every_lane_get_every_result_in_order_then_the_end() {
        let shared = SharedSubscriptions::new();
        let k = key("subscription { a }", serde_json::json!({})).unwrap();
        let (tx, rx) = channel();
        let mut subscribers = vec![Box::pin(shared.subscribe(k.clone(), rx))];
        for _ in 0..9 {
            subscribers.push(Box::pin(shared.subscribe(k.clone(), results(&[]))));
        }
        assert!(
            lanes() >= 2,
            "a multi-thread runtime has lanes to spread over"
        );
        assert_eq!(shared.live(), 1);
        for n in 0..1_000 {
            tx.send(Response::new(async_graphql::Value::from(n)))
                .unwrap();
        }
        drop(tx);
        for subscriber in &mut subscribers {
            for n in 0..1_000 {
                let json = subscriber.next().await.unwrap();
                assert_eq!(&*json, format!(r#"{{"data":{n}}}"#));
            }
            assert!(
                subscriber.next().await.is_none(),
                "the end follows the results"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_that_ends_before_any_result_ends_the_subscribers_of_every_lane() {
        let shared = SharedSubscriptions::new();
        let k = key("subscription { a }", serde_json::json!({})).unwrap();
        let (tx, rx) = channel();
        let mut subscribers = vec![Box::pin(shared.subscribe(k.clone(), rx))];
        for _ in 0..5 {
            subscribers.push(Box::pin(shared.subscribe(k.clone(), results(&[]))));
        }
        drop(tx);
        for subscriber in &mut subscribers {
            let ended =
                tokio::time::timeout(std::time::Duration::from_secs(30), subscriber.next()).await;
            assert!(matches!(ended, Ok(None)), "ended, not left waiting");
        }
    }

    #[tokio::test]
    async fn different_keys_are_different_sources() {
        let shared = SharedSubscriptions::new();
        let a = key(
            "subscription($i: ID) { a(i: $i) }",
            serde_json::json!({"i": 1}),
        )
        .unwrap();
        let b = key(
            "subscription($i: ID) { a(i: $i) }",
            serde_json::json!({"i": 2}),
        )
        .unwrap();
        let mut sa = Box::pin(shared.subscribe(a, results(&["a"])));
        let mut sb = Box::pin(shared.subscribe(b, results(&["b"])));
        assert_eq!(shared.live(), 2);
        assert_eq!(&*sa.next().await.unwrap(), r#"{"data":"a"}"#);
        assert_eq!(&*sb.next().await.unwrap(), r#"{"data":"b"}"#);
    }
}
