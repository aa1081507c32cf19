//! The Prometheus recorder for the `metrics` facade: whatever the library and this server
//! record is rendered as Prometheus text on `GET /metrics`, with the descriptions (`# HELP`)
//! of the library's metrics ([`chill_core::telemetry::describe_metrics`]) and of this server's.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Counter of GraphQL requests served over HTTP (`POST /graphql`), by outcome (`ok`, `error`).
pub const GRAPHQL_REQUESTS: &str = "chill_server_graphql_requests_total";
/// Gauge of open GraphQL WebSocket connections.
pub const WEBSOCKETS_OPEN: &str = "chill_server_websockets_open";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed as the global `metrics` recorder on first use,
/// with the descriptions of the library's metrics and of this server's registered.
///
/// If another global recorder was installed first, the handle renders only what is recorded
/// through it (nothing), and a warning says so.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if ::metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a global metrics recorder was installed before the Prometheus one; /metrics will be empty"
                );
            }
            chill_core::telemetry::describe_metrics();
            ::metrics::describe_counter!(GRAPHQL_REQUESTS, "GraphQL requests served over HTTP");
            ::metrics::describe_gauge!(WEBSOCKETS_OPEN, "Open GraphQL WebSocket connections");
            handle
        })
        .clone()
}

/// The Prometheus text of everything recorded so far.
pub fn render() -> String {
    let handle = prometheus();
    handle.run_upkeep();
    handle.render()
}
