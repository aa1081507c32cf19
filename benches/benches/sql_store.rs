//! The SQL store (`chill-store-sql`) on SQLite and PostgreSQL:
//!
//! - `claim_finish/<db>/<engines>`: executions per second through the engine's two writes per
//!   run, a claim of a slot (`claim_slots`: the job's `nextRunAt` moves on, the running
//!   execution is created) and its end (`finish`: the execution's result and the job's
//!   statistics), by 4 engines at once, each on its own jobs. On SQLite the engines share one
//!   store (one process, one writer connection) or have one each (as 4 processes would); on
//!   PostgreSQL each has its own store (pool).
//! - `create_job/<db>`: one `create_job`.
//! - `list_jobs_1000/<db>`: one page of 1,000 jobs (of 1,000).
//! - `list_executions_100_of_100k/<db>`: a page of 100 executions of a job that has 100,000,
//!   the newest and one from the middle of its history (by cursor).
//!
//! PostgreSQL from `CHILL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! in a schema of its own that is dropped at the end; skipped with a notice when unreachable.
//! SQLite in a file in the temporary directory.
//!
//! Run with `cargo bench -p chill-benches --bench sql_store`; see `benches/README.md`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Duration;

use chill_benches::sql::{databases, job, run_engines};
use chill_core::schedule::Slot;
use chill_core::store::{JobFilter, PageRequest, SlotClaim};
use chill_core::{Execution, ExecutionStatus, Store};

use chrono::TimeDelta;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn claim_finish(c: &mut Criterion) {
    let rt = runtime();
    let dbs = rt.block_on(databases());
    for db in &dbs {
        let mut setups: Vec<(&str, bool)> = vec![("4_engines_own_stores", false)];
        if db.name == "sqlite" {
            setups.insert(0, ("4_engines_one_store", true));
        }
        let mut group = c.benchmark_group(format!("claim_finish/{}", db.name));
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(5));
        for (n, (name, shared)) in setups.into_iter().enumerate() {
            let prefix = format!("cf{n}_");
            let (stores, mut engines) = rt.block_on(db.engines(&prefix, shared));
            group.bench_function(name, |b| {
                b.iter_custom(|iters| rt.block_on(run_engines(&mut engines, iters)))
            });
            drop(engines);
            rt.block_on(async {
                for store in &stores {
                    store.close().await;
                }
            });
        }
        group.finish();
    }
    rt.block_on(async {
        for db in &dbs {
            db.drop_all().await;
        }
    });
}

fn reads_and_writes(c: &mut Criterion) {
    let rt = runtime();
    let dbs = rt.block_on(databases());
    for db in &dbs {
        // create_job
        let store = rt.block_on(db.store("create_"));
        let mut n = 0;
        c.bench_function(&format!("create_job/{}", db.name), |b| {
            b.iter(|| {
                n += 1;
                let j = job(n);
                rt.block_on(store.create_job(&j)).unwrap();
            })
        });
        rt.block_on(store.close());

        // list 1,000 jobs
        let store = rt.block_on(async {
            let store = db.store("list_").await;
            for n in 0..1000 {
                store.create_job(&job(n)).await.unwrap();
            }
            store
        });
        let page = PageRequest::first(1000);
        c.bench_function(&format!("list_jobs_1000/{}", db.name), |b| {
            b.iter(|| {
                let p = rt
                    .block_on(store.list_jobs(&JobFilter::default(), &page))
                    .unwrap();
                assert_eq!(p.items.len(), 1000);
            })
        });
        rt.block_on(store.close());

        // 100 executions of a job with 100,000
        let (store, job_id, middle) = rt.block_on(async {
            let store = db.store("history_").await;
            let mut j = job(0);
            store.create_job(&j).await.unwrap();
            let mut at = j.next_run_at.unwrap();
            for _ in 0..100 {
                let executions: Vec<Execution> = (0..1000)
                    .map(|k| {
                        let t = at + TimeDelta::seconds(k);
                        let slot = Slot {
                            scheduled_for: t,
                            fire_at: t,
                            blackout: None,
                        };
                        Execution {
                            status: ExecutionStatus::Skipped,
                            error_type: Some("overlap".into()),
                            ..Execution::scheduled(&j, &slot, t)
                        }
                    })
                    .collect();
                let next = at + TimeDelta::seconds(1000);
                let claim = SlotClaim {
                    job_id: j.id,
                    expected_version: j.version,
                    expected_next_run_at: at,
                    expected_running: None,
                    next_run_at: Some(next),
                    executions,
                    started: 0,
                    buffered: None,
                    started_at: at,
                };
                assert!(store.claim_slots(&claim).await.unwrap());
                at = next;
                j.next_run_at = Some(next);
                j.version += 1;
            }
            // A cursor half way down the history.
            let mut cursor = None;
            for _ in 0..50 {
                let page = match cursor.take() {
                    None => PageRequest::first(1000),
                    Some(c) => PageRequest::after(1000, c),
                };
                cursor = store
                    .list_executions(&j.id, &page)
                    .await
                    .unwrap()
                    .next_cursor;
            }
            (store, j.id, cursor.unwrap())
        });
        let mut group = c.benchmark_group(format!("list_executions_100_of_100k/{}", db.name));
        group.bench_function("newest", |b| {
            b.iter(|| {
                let p = rt
                    .block_on(store.list_executions(&job_id, &PageRequest::first(100)))
                    .unwrap();
                assert_eq!(p.items.len(), 100);
            })
        });
        group.bench_function("middle", |b| {
            b.iter(|| {
                let p = rt
                    .block_on(
                        store.list_executions(&job_id, &PageRequest::after(100, middle.clone())),
                    )
                    .unwrap();
                assert_eq!(p.items.len(), 100);
            })
        });
        group.finish();
        rt.block_on(store.close());
    }
    rt.block_on(async {
        for db in &dbs {
            db.drop_all().await;
        }
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = claim_finish, reads_and_writes
}
criterion_main!(benches);
