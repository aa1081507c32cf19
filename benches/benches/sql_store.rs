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

use std::sync::Arc;
use std::time::{Duration, Instant};

use chill_core::schedule::Slot;
use chill_core::store::{Finish, JobFilter, PageRequest, SlotClaim, StatsDelta};
use chill_core::{Execution, ExecutionResponse, ExecutionStatus, Job, JobSpec, Store};
use chill_store_sql::{SqlOptions, SqlStore};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const ENGINES: usize = 4;
const JOBS_PER_ENGINE: usize = 25;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// A database to benchmark, and how to remove it afterwards.
struct Db {
    name: &'static str,
    url: String,
    options: SqlOptions,
    file: Option<std::path::PathBuf>,
}

impl Db {
    async fn store(&self, prefix: &str) -> SqlStore {
        SqlStore::connect_with(&self.url, self.options.clone().with_table_prefix(prefix))
            .await
            .unwrap()
    }

    async fn drop_all(&self) {
        if let Some(path) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        if let Some(schema) = &self.options.schema {
            use sqlx::{Connection, Executor};
            if let Ok(mut conn) = sqlx::PgConnection::connect(&self.url).await {
                let _ = conn
                    .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                    .await;
            }
        }
    }
}

async fn databases() -> Vec<Db> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let path = std::env::temp_dir().join(format!("chill_bench_{id}.db"));
    let mut dbs = vec![Db {
        name: "sqlite",
        url: format!("sqlite://{}", path.display()),
        options: SqlOptions::default(),
        file: Some(path),
    }];
    let pg = std::env::var("CHILL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reachable = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&pg).await.is_ok()
    };
    if reachable {
        dbs.push(Db {
            name: "postgres",
            url: pg,
            options: SqlOptions::default()
                .with_schema(format!("chill_bench_{id}"))
                .with_max_connections(8),
            file: None,
        });
    } else {
        println!("PostgreSQL at {pg} is unreachable: its benchmarks are skipped");
    }
    dbs
}

fn job(n: usize) -> Job {
    let spec = JobSpec {
        tags: vec![format!("group-{}", n % 10), "bench".into()],
        metadata: serde_json::json!({ "team": "ops", "n": n }),
        ..JobSpec::new(
            format!("job {n}"),
            "Summarise yesterday's tickets and post to #ops",
            "* * * * * *",
        )
    };
    Job::create(spec, t0()).unwrap()
}

/// One engine's jobs and where each one's schedule stands.
struct Engine {
    store: Arc<SqlStore>,
    owner: String,
    jobs: Vec<(Job, DateTime<Utc>)>,
    next: usize,
}

impl Engine {
    async fn new(store: Arc<SqlStore>, n: usize) -> Engine {
        let mut jobs = Vec::new();
        for i in 0..JOBS_PER_ENGINE {
            let job = job(n * 1000 + i);
            store.create_job(&job).await.unwrap();
            let at = job.next_run_at.unwrap();
            jobs.push((job, at));
        }
        Engine {
            store,
            owner: format!("engine-{n}"),
            jobs,
            next: 0,
        }
    }

    /// One lane per job, to run concurrently.
    fn split(self) -> Vec<Engine> {
        let (store, owner) = (self.store, self.owner);
        self.jobs
            .into_iter()
            .map(|j| Engine {
                store: store.clone(),
                owner: owner.clone(),
                jobs: vec![j],
                next: 0,
            })
            .collect()
    }

    /// The lanes back into their engines.
    fn join(lanes: Vec<Engine>) -> Vec<Engine> {
        let mut engines: Vec<Engine> = Vec::new();
        for lane in lanes {
            match engines.iter_mut().find(|e| e.owner == lane.owner) {
                Some(e) => e.jobs.extend(lane.jobs),
                None => engines.push(lane),
            }
        }
        engines
    }

    /// Claim and finish `n` slots, round robin over the engine's jobs.
    async fn run(&mut self, n: u64) {
        for _ in 0..n {
            let i = self.next % self.jobs.len();
            self.next += 1;
            let (job, at) = &mut self.jobs[i];
            let slot = Slot {
                scheduled_for: *at,
                fire_at: *at,
                blackout: None,
            };
            let following = *at + TimeDelta::seconds(1);
            let execution = Execution {
                status: ExecutionStatus::Running,
                lease_owner: Some(self.owner.clone()),
                lease_expires_at: Some(*at + TimeDelta::seconds(30)),
                ..Execution::scheduled(job, &slot, *at)
            };
            let claim = SlotClaim {
                job_id: job.id,
                expected_version: job.version,
                expected_next_run_at: *at,
                expected_running: Some(0),
                next_run_at: Some(following),
                executions: vec![execution.clone()],
                started: 1,
                buffered: None,
                started_at: *at,
            };
            assert!(
                self.store.claim_slots(&claim).await.unwrap(),
                "claim refused"
            );
            let end = *at + TimeDelta::milliseconds(800);
            let done = Execution {
                status: ExecutionStatus::Success,
                completed_at: Some(end),
                duration_ms: Some(800),
                api_latency_ms: Some(790),
                tools_executed_count: 1,
                tokens_used: Some(300),
                input_tokens: Some(100),
                output_tokens: Some(200),
                cost_micro_usd: Some(450),
                response: Some(ExecutionResponse {
                    result: "Posted the summary of 12 tickets to #ops.".into(),
                    tools_used: vec!["jira".into(), "slack".into()],
                    conversation_turns: Some(3),
                    metadata: serde_json::json!({ "model": "claude" }),
                }),
                ..execution
            };
            let finish = Finish {
                execution: done,
                owner: self.owner.clone(),
                expired_by: None,
                stats: StatsDelta {
                    status: ExecutionStatus::Success,
                    counted: true,
                    duration_ms: 800,
                    error: None,
                    input_tokens: 100,
                    output_tokens: 200,
                    cost_micro_usd: 450,
                    completed_at: following,
                },
                next_attempt: None,
                promote: None,
            };
            self.store.finish(&finish).await.unwrap();
            *at = following;
        }
    }
}

/// `ENGINES` engines running `iters` executions between them, at once, each engine running
/// its jobs concurrently (as the engine runs its executions); the wall time.
async fn run_engines(engines: &mut Vec<Engine>, iters: u64) -> Duration {
    let lanes: Vec<Engine> = engines.drain(..).flat_map(Engine::split).collect();
    let per = iters.div_ceil(lanes.len() as u64);
    let start = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|mut e| {
            tokio::spawn(async move {
                e.run(per).await;
                e
            })
        })
        .collect();
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    *engines = Engine::join(done);
    elapsed
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
            let mut engines = rt.block_on(async {
                let one = Arc::new(db.store(&prefix).await);
                let mut engines = Vec::new();
                for e in 0..ENGINES {
                    let store = if shared {
                        one.clone()
                    } else {
                        Arc::new(db.store(&prefix).await)
                    };
                    engines.push(Engine::new(store, e).await);
                }
                engines
            });
            group.bench_function(name, |b| {
                b.iter_custom(|iters| rt.block_on(run_engines(&mut engines, iters)))
            });
            rt.block_on(async {
                for e in &engines {
                    e.store.close().await;
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
