//! A driver for profilers (callgrind, perf) of the SQL store: the claim+finish loop of the
//! `sql_store` bench, or listings of 1,000 jobs, on the current-thread runtime (the store's
//! own threads, such as sqlx's one thread per SQLite connection, still run beside it).
//!
//! ```sh
//! cargo build --profile bench -p chill-benches --example sql_profile
//! # 4 engines sharing one SQLite store, 20,000 executions
//! valgrind --tool=callgrind target/release/examples/sql_profile claim_finish 20000
//! # 4 engines with a store each
//! valgrind --tool=callgrind target/release/examples/sql_profile claim_finish_own 20000
//! # 200 listings of 1,000 jobs
//! valgrind --tool=callgrind target/release/examples/sql_profile list 200
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -80
//! # the same on PostgreSQL
//! target/release/examples/sql_profile claim_finish_own 5000 postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Arguments: what (`claim_finish`, `claim_finish_own` or `list`), how many (executions or
//! listings), and optionally a PostgreSQL URL (default: a SQLite file in the temporary
//! directory); `--mt` runs on tokio's multi-thread runtime with 2 workers, as the bench does.
//! Setting up (creating the jobs) is not timed and shows in a profile under `Engine::new` or
//! `create_job`. Prints the rate.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chill_benches::sql::{Db, Engine, job, run_engines};
use chill_core::Store;
use chill_core::store::{JobFilter, PageRequest};

/// Claims and finishes `n` executions. Not inlined, so that it shows in a profile by name.
#[inline(never)]
async fn claim_finish(engines: &mut Vec<Engine>, n: u64) -> Duration {
    run_engines(engines, n).await
}

/// Lists the first 1,000 jobs `n` times. Not inlined, so that it shows in a profile by name.
#[inline(never)]
async fn list(store: &dyn Store, n: u64) -> Duration {
    let page = PageRequest::first(1000);
    let start = Instant::now();
    for _ in 0..n {
        let p = store
            .list_jobs(&JobFilter::default(), &page)
            .await
            .unwrap_or_else(|e| panic!("list_jobs: {e}"));
        assert_eq!(p.items.len(), 1000);
    }
    start.elapsed()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mt = args.iter().any(|a| a == "--mt");
    args.retain(|a| a != "--mt");
    let what = args
        .first()
        .map_or("claim_finish", String::as_str)
        .to_string();
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let pg = args.get(2).cloned();
    let rt = if mt {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    rt.block_on(async {
        let db = match &pg {
            Some(url) => Db::postgres(url)
                .await
                .unwrap_or_else(|| panic!("{url} is unreachable")),
            None => Db::sqlite(),
        };
        match what.as_str() {
            "claim_finish" | "claim_finish_own" => {
                let (stores, mut engines) = db.engines("p_", what == "claim_finish").await;
                let elapsed = claim_finish(&mut engines, n).await;
                println!(
                    "{what} on {}: {n} executions in {:.1} ms, {:.0} /s",
                    db.name,
                    elapsed.as_secs_f64() * 1e3,
                    n as f64 / elapsed.as_secs_f64()
                );
                drop(engines);
                for store in stores {
                    store.close().await;
                }
            }
            "list" => {
                let store = db.store("p_").await;
                for i in 0..1000 {
                    store
                        .create_job(&job(i))
                        .await
                        .unwrap_or_else(|e| panic!("create_job: {e}"));
                }
                let elapsed = list(&store, n).await;
                println!(
                    "list 1,000 jobs on {}: {n} times in {:.1} ms, {:.2} ms each",
                    db.name,
                    elapsed.as_secs_f64() * 1e3,
                    elapsed.as_secs_f64() * 1e3 / n as f64
                );
                store.close().await;
            }
            other => eprintln!("unknown: {other} (claim_finish, claim_finish_own, list)"),
        }
        db.drop_all().await;
    });
}
