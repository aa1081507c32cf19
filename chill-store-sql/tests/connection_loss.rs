//! The connection to the database is cut (by a small TCP proxy inside the test) while an engine
//! runs, then restored: the store reports `Unavailable` meanwhile, the engine keeps running,
//! and afterwards nothing was lost or run twice: the jobs' schedule window ends 10 s after
//! their creation, and once the engine has recorded every slot of it each has exactly one
//! record (the testkit's multi-instance check).

#![cfg(any(feature = "postgres", feature = "mysql"))]
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chill_core::testkit::multi_instance::{
    CountingAi, check, every_second, fast_options, wait_until_finished,
};
use chill_core::{Chill, Error, Store, StoreError, SystemClock};
use chrono::{SubsecRound, TimeDelta, Utc};
use common::{Kind, with_db};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP proxy to the database that can be cut (every connection dropped, new ones refused)
/// and restored.
struct Proxy {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = {
            let (up, connections) = (up.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections.lock().unwrap().push(task.abort_handle());
                }
            })
            .abort_handle()
        };
        Proxy {
            addr,
            up,
            connections,
            accept,
        }
    }

    /// Drop every connection and refuse new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `host:port` of a URL, and the URL with another `host:port`.
fn split_host(url: &str) -> (String, String, String) {
    let start = url
        .find('@')
        .map_or_else(|| url.find("://").unwrap() + 3, |i| i + 1);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    (
        url[..start].to_string(),
        url[start..end].to_string(),
        url[end..].to_string(),
    )
}

fn is_unavailable(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_))
}

async fn cut_and_restore(kind: Kind) {
    with_db(kind, "connection_loss", move |db| async move {
        let direct = db.store().await;
        let (head, target, tail) = split_host(&db.url);
        let proxy = Proxy::start(target).await;
        let mut proxied_db = db.clone();
        proxied_db.url = format!("{head}{}{tail}", proxy.addr);
        let options = db
            .options
            .clone()
            .with_acquire_timeout(Duration::from_secs(2))
            .with_max_connections(4);
        let store: Arc<dyn Store> = Arc::new(proxied_db.store_with(options).await);
        let ai = Arc::new(CountingAi::new(11));
        // Leases outlive the cut, so that no other instance has to take anything over.
        let chill = Chill::new(
            store.clone(),
            Arc::new(SystemClock),
            ai.clone(),
            fast_options("proxied").with_lease_duration(Duration::from_secs(60)),
        );
        // Three seconds before the cut, three of it, four after.
        let end = (Utc::now() + TimeDelta::seconds(10)).trunc_subsecs(0);
        let mut jobs = Vec::new();
        for i in 0..20 {
            jobs.push(chill.create_job(every_second(i, end)).await.unwrap());
        }
        let engine = chill.start();
        tokio::time::sleep(Duration::from_secs(3)).await;

        proxy.cut();
        let before_cut = ai.calls().len();
        let err = store.get_job(&jobs[0].id).await.unwrap_err();
        assert!(is_unavailable(&err), "{kind:?}: a read during the cut gave {err:?}");
        let err = chill.get_job(&jobs[0].id).await.unwrap_err();
        assert!(
            matches!(&err, Error::Store(e) if is_unavailable(e)),
            "{kind:?}: the engine's API during the cut gave {err:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.restore();
        if let Err(outstanding) =
            wait_until_finished(&direct, std::slice::from_ref(&chill), Duration::from_secs(120))
                .await
        {
            panic!("{kind:?}: the engine did not finish the jobs' slots: {outstanding}");
        }

        // The engine kept running: after the cut it ran more executions, and reads work again.
        assert!(store.get_job(&jobs[0].id).await.unwrap().is_some());
        engine.shutdown().await;
        let after = ai.calls().len();
        assert!(
            after > before_cut + 20,
            "{kind:?}: only {} AI calls after the cut",
            after - before_cut
        );
        let tally = check(&direct, &jobs, &ai).await;
        println!(
            "{kind:?}: {} of {} slots recorded, {} executions ({} successes, {} retries, {} running), {} AI calls",
            tally.slots,
            tally.expected_slots,
            tally.executions,
            tally.successes,
            tally.retries,
            tally.running,
            after
        );
        tally.assert_clean(format!("{kind:?}"));
        assert_eq!(tally.slots, tally.expected_slots, "{kind:?}: every slot recorded");
        direct.close().await;
        drop(proxy);
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_cut_and_restored() {
    cut_and_restore(Kind::Postgres).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connection_cut_and_restored() {
    cut_and_restore(Kind::MySql).await;
}
