//! `chill serve`: the engine and its HTTP face.
//!
//! | route | what |
//! |---|---|
//! | `POST /graphql` | GraphQL queries and mutations |
//! | `GET /graphql` | the GraphQL IDE page (self-contained: works with no internet access) |
//! | `GET /graphql` + WebSocket upgrade | subscriptions, protocols `graphql-transport-ws` and `graphql-ws` |
//! | `GET /healthz` | 200 `ok` when the store answers, 503 with the error otherwise |
//! | `GET /metrics` | Prometheus text of the `metrics` recorded in this process |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use chill_core::{Chill, ChillHandle, ChillOptions, Store, SystemClock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::ai::{self, AiChoice};
use crate::demo_ai::DemoAi;
use crate::graphql::shared::SharedSubscriptions;
use crate::graphql::{self, ChillSchema};
use crate::store_url::{self, OpenedStore};
use crate::{AppError, demo_jobs, metrics};

/// The IDE page served on `GET /graphql`.
pub const IDE_PAGE: &str = include_str!("ide.html");

/// The read buffer of a WebSocket connection. Subscription clients send a few small
/// messages (`connection_init`, `subscribe`, `pong`); a larger frame still arrives whole, its
/// buffer grown to its length. tungstenite's default, 128 KiB, is zeroed on every read of the
/// socket: with 100 subscribers that zeroing was the server's largest cost per event.
pub const WS_READ_BUFFER: usize = 4 * 1024;

/// How long a shutdown waits for the WebSocket connections to close: a little longer than a
/// closing connection waits for a client that does not read.
pub const WEBSOCKETS_CLOSING: Duration = Duration::from_secs(12);

/// What `chill serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The store URL (see [`crate::store_url`]).
    pub store_url: String,
    /// The address to listen on (`127.0.0.1:0` for a free port).
    pub listen: String,
    /// The AI endpoint.
    pub ai: AiChoice,
    /// Create the demo jobs in an empty store when the demo AI endpoint is used.
    pub demo_jobs: bool,
}

/// The shared state of the routes.
#[derive(Clone)]
struct AppState {
    schema: ChillSchema,
    store: Arc<dyn Store>,
    /// Subscriptions shared by the WebSocket connections that ask the same thing.
    shared: SharedSubscriptions,
    /// Turns true when the server shuts down: the WebSocket connections then close. Each
    /// connection holds a clone until it ends.
    closing: watch::Receiver<bool>,
}

/// A running server: its engine, its listener and, without an AI endpoint configured, the
/// demo endpoint.
pub struct Server {
    addr: SocketAddr,
    chill: Chill,
    engine: ChillHandle,
    stop_http: oneshot::Sender<()>,
    http: JoinHandle<()>,
    demo: Option<DemoAi>,
    shared: SharedSubscriptions,
    store: OpenedStore,
    close_websockets: watch::Sender<bool>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("chill", &self.chill)
            .finish_non_exhaustive()
    }
}

/// `listener` with `TCP_NODELAY` on every connection it accepts. Events are small frames,
/// often two in quick succession (an execution's start and end): with Nagle's algorithm the
/// second would wait for the first one's acknowledgement, which the client may delay.
fn without_nagle(listener: TcpListener) -> impl Listener<Io = TcpStream, Addr = SocketAddr> {
    listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    })
}

/// The routes over an engine.
pub fn router(chill: Chill) -> Router {
    // No sender: the connections never close on their own account; they end when the
    // client leaves or the runtime stops (a host's graceful shutdown does not track them).
    let (_, closing) = watch::channel(false);
    routes(chill, SharedSubscriptions::new(), closing)
}

/// The routes over an engine, its WebSocket subscriptions shared through `shared` (which must
/// serve no other engine: a subscription's key does not name its engine) and closed when
/// `closing` turns true.
fn routes(chill: Chill, shared: SharedSubscriptions, closing: watch::Receiver<bool>) -> Router {
    let state = AppState {
        store: chill.store().clone(),
        schema: graphql::schema(chill),
        shared,
        closing,
    };
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/graphql") }),
        )
        .with_state(state)
}

async fn graphql_post(State(state): State<AppState>, request: GraphQLRequest) -> GraphQLResponse {
    let response = state.schema.execute(request.into_inner()).await;
    let outcome = if response.is_ok() { "ok" } else { "error" };
    ::metrics::counter!(metrics::GRAPHQL_REQUESTS, "outcome" => outcome).increment(1);
    response.into()
}

/// A WebSocket upgrade with a GraphQL protocol starts a subscription connection; a plain GET
/// is answered with the IDE page.
async fn graphql_get(
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return Html(IDE_PAGE).into_response();
    };
    let upgrade = upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .protocols(ALL_WEBSOCKET_PROTOCOLS);
    let protocol = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(|p| p.parse::<WebSocketProtocols>().ok());
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "expected the WebSocket subprotocol graphql-transport-ws or graphql-ws",
        )
            .into_response();
    };
    upgrade.on_upgrade(move |socket| async move {
        ::metrics::gauge!(metrics::WEBSOCKETS_OPEN).increment(1.0);
        graphql::websocket::serve(socket, protocol, state.schema, state.shared, state.closing)
            .await;
        ::metrics::gauge!(metrics::WEBSOCKETS_OPEN).decrement(1.0);
    })
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.next_due_at().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unreachable: {e}\n"),
        )
            .into_response(),
    }
}

async fn prometheus() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
        .into_response()
}

impl Server {
    /// Open the store, connect the AI endpoint (starting the demo one if none is
    /// configured), create the demo jobs if asked and the store is empty, start the engine
    /// and serve HTTP.
    pub async fn start(config: ServeConfig) -> Result<Server, AppError> {
        Server::start_with(config, ChillOptions::default()).await
    }

    /// [`Server::start`] with engine options.
    pub async fn start_with(
        config: ServeConfig,
        options: ChillOptions,
    ) -> Result<Server, AppError> {
        metrics::prometheus();
        let store = store_url::open_store(&config.store_url).await?;
        tracing::info!(store = %store_url::redacted(&config.store_url), "store opened");
        match Server::start_over(store.clone(), config, options).await {
            Ok(server) => Ok(server),
            Err(e) => {
                // Not started (no AI endpoint, the address taken, ...): nothing keeps the
                // store's connections open.
                store.close().await;
                Err(e)
            }
        }
    }

    /// The rest of [`Server::start_with`], over the opened `store`.
    async fn start_over(
        store: OpenedStore,
        config: ServeConfig,
        options: ChillOptions,
    ) -> Result<Server, AppError> {
        let connected = ai::connect(&config.ai).await?;
        let chill = Chill::new(
            store.store.clone(),
            Arc::new(SystemClock),
            connected.client,
            options,
        );
        if connected.demo.is_some() && config.demo_jobs {
            demo_jobs::create_if_empty(&chill).await?;
        }
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| AppError::io(format!("cannot listen on {}", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::io("listener", e))?;
        let engine = chill.start();
        let (stop_http, stopped) = oneshot::channel::<()>();
        let shared = SharedSubscriptions::new();
        let (close_websockets, closing) = watch::channel(false);
        let app = routes(chill.clone(), shared.clone(), closing);
        let listener = without_nagle(listener);
        let http = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!("GraphQL IDE: http://{addr}/graphql  (health: /healthz, metrics: /metrics)");
        Ok(Server {
            addr,
            chill,
            engine,
            stop_http,
            http,
            demo: connected.demo,
            shared,
            store,
            close_websockets,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine.
    pub fn chill(&self) -> &Chill {
        &self.chill
    }

    /// The subscriptions shared by its WebSocket connections (connections that subscribe
    /// with the same document and variables share one).
    pub fn shared_subscriptions(&self) -> &SharedSubscriptions {
        &self.shared
    }

    /// Stop gracefully: stop taking HTTP requests, then stop the engine (running executions
    /// finish within its grace period or are released for another instance, and their events
    /// still reach the subscribers), then close the WebSocket connections (close code 1001,
    /// going away; at most [`WEBSOCKETS_CLOSING`] is waited for), then the demo AI endpoint,
    /// then close the store's connections.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let _ = self.stop_http.send(());
        let _ = self.http.await;
        self.engine.shutdown().await;
        let _ = self.close_websockets.send(true);
        if tokio::time::timeout(WEBSOCKETS_CLOSING, self.close_websockets.closed())
            .await
            .is_err()
        {
            tracing::warn!("WebSocket connections still open after {WEBSOCKETS_CLOSING:?}");
        }
        if let Some(demo) = self.demo {
            demo.shutdown().await;
        }
        self.store.close().await;
        tracing::info!("stopped");
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_frames_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = without_nagle(listener);
        let client = TcpStream::connect(addr).await.unwrap();
        let (accepted, peer) = listener.accept().await;
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set");
        assert!(
            !client.nodelay().unwrap(),
            "a plain connection has Nagle on"
        );
    }
}
