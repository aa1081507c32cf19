//! The DynamoDB server of the tests, and a table of its own for each test.
//!
//! Server: `CHILL_TEST_DYNAMODB_ENDPOINT` (scripts/test starts one and exports it); when it is
//! not set, the first test of the binary starts moto itself on a free port, through
//! `tests/moto_server.py` (moto with one request at a time: see that file for why), and the
//! server stops when the test binary ends. When no server can be had the test is skipped with
//! a notice, unless `CHILL_REQUIRE_SERVICES=1`: then it fails.

// Each test file uses a part of this module; helpers unwrap as tests do.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stdout)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use chill_store_dynamo::{DynamoOptions, DynamoStore};

fn required() -> bool {
    std::env::var("CHILL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The endpoint of the DynamoDB server, started once per test binary when needed.
pub(crate) fn endpoint() -> Option<String> {
    static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();
    let found = ENDPOINT.get_or_init(|| match std::env::var("CHILL_TEST_DYNAMODB_ENDPOINT") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_moto(),
    });
    match found {
        Ok(url) => Some(url.clone()),
        Err(why) if required() => {
            panic!("DynamoDB (moto) is required (CHILL_REQUIRE_SERVICES=1) but unavailable: {why}")
        }
        Err(why) => {
            println!(
                "SKIPPED: no DynamoDB server ({why}); set CHILL_REQUIRE_SERVICES=1 to fail instead"
            );
            None
        }
    }
}

/// Starts `tests/moto_server.py` on a free port and waits until it answers.
fn start_moto() -> Result<String, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/moto_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("CHILL_MOTO_PARENT_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run python3 {script}: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(format!("http://127.0.0.1:{port}"));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "python3 {script} exited with {status} (is moto installed? python3 -m pip install 'moto[server]')"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    Err(format!(
        "python3 {script} did not answer on port {port} within 60 s"
    ))
}

/// The AWS configuration of the tests: fixed test credentials and region.
pub(crate) async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .test_credentials()
        .load()
        .await
}

/// A unique table name for test `name`.
pub(crate) fn table_name(name: &str) -> String {
    let short: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(30)
        .collect();
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("chill-t-{short}-{}", &rand[..8])
}

/// A test's own table.
#[derive(Debug, Clone)]
pub(crate) struct TestTable {
    pub(crate) endpoint: String,
    pub(crate) options: DynamoOptions,
}

impl TestTable {
    /// A store on this table (each call builds a new client).
    pub(crate) async fn store(&self) -> DynamoStore {
        self.store_with(self.options.clone()).await
    }

    /// A store on this table with other options (the table and endpoint are kept).
    pub(crate) async fn store_with(&self, mut options: DynamoOptions) -> DynamoStore {
        options.table_name = self.options.table_name.clone();
        options.endpoint_url = Some(self.endpoint.clone());
        DynamoStore::from_sdk_config(&sdk_config().await, options).unwrap()
    }
}

/// Runs `test` on a fresh table (skipped when there is no server), and deletes the table
/// afterwards, also when the test panics.
pub(crate) async fn with_table<F, Fut>(name: &str, options: DynamoOptions, test: F)
where
    F: FnOnce(TestTable) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(endpoint) = endpoint() else {
        return;
    };
    let mut options = options;
    options.table_name = table_name(name);
    options.endpoint_url = Some(endpoint.clone());
    let table = TestTable { endpoint, options };
    let store = table.store().await;
    store.ensure_table().await.unwrap();
    let result = tokio::spawn(test(table.clone())).await;
    store.delete_table().await.unwrap();
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}
