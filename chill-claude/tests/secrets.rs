//! API keys never show: not in `Debug` output, not in errors, not in tracing fields.
//!
//! Alone in its test binary: it installs a thread-local tracing subscriber, and tracing caches
//! per call site whether anyone listens, a cache that tests in other threads would race with.

mod common;

use std::sync::{Arc, Mutex};

use chill_claude::HttpOptions;
use chill_core::AiClient;
use common::{KEY, Reply, Server, both_ok, messages_client, query_client, refusing_addr, request};
use serde_json::json;

#[tokio::test]
async fn the_key_never_appears_in_debug_output_errors_or_tracing_fields() {
    let seen = Arc::new(Mutex::new(String::new()));
    let _guard = tracing::subscriber::set_default(capture::Capture(seen.clone()));
    let server = Server::start(
        vec![
            Reply::json(200, both_ok("ok")),
            Reply::json(200, both_ok("ok")),
            Reply::json(401, json!({ "error": { "type": "authentication_error", "message": "invalid x-api-key" } })),
            Reply::json(401, json!({ "error": { "type": "authentication_error", "message": "invalid x-api-key" } })),
        ],
        None,
    )
    .await;
    let refused = format!("http://{}", refusing_addr().await);
    for base in [server.base(), server.base(), refused] {
        let query = query_client(&base, HttpOptions::default());
        let messages = messages_client(&base, HttpOptions::default());
        let shown = [format!("{query:?}"), format!("{messages:?}")];
        for debug in shown {
            assert!(
                !debug.contains(KEY) && debug.contains("[redacted]"),
                "{debug}"
            );
        }
        for outcome in [
            query.call(&request("p")).await,
            messages.call(&request("p")).await,
        ] {
            if let Err(e) = outcome {
                assert!(!format!("{e} {e:?}").contains(KEY), "{e:?}");
            }
        }
    }
    let seen = seen.lock().unwrap();
    assert!(seen.contains("AI endpoint answered"), "{seen}");
    assert!(seen.contains("AI endpoint call failed"), "{seen}");
    assert!(!seen.contains(KEY), "{seen}");
}

/// A tracing subscriber that writes every span field and event field into one string.
mod capture {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    pub(crate) struct Capture(pub(crate) Arc<Mutex<String>>);

    struct Writer<'a>(&'a mut String);

    impl Visit for Writer<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = writeln!(self.0, "{} = {:?}", field.name(), value);
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            span.record(&mut Writer(
                &mut self.0.lock().unwrap_or_else(|e| e.into_inner()),
            ));
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            values.record(&mut Writer(
                &mut self.0.lock().unwrap_or_else(|e| e.into_inner()),
            ));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            event.record(&mut Writer(
                &mut self.0.lock().unwrap_or_else(|e| e.into_inner()),
            ));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
