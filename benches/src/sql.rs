//! Shared pieces of the SQL store benchmarks (`benches/sql_store.rs`,
//! `examples/sql_profile.rs`): the jobs, and engines that claim and finish their jobs' slots
//! as the engine does (one `claim_slots`, one `finish` per execution), every job's loop
//! running concurrently.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chill_core::schedule::Slot;
use chill_core::store::{Finish, SlotClaim, StatsDelta};
use chill_core::{Execution, ExecutionResponse, ExecutionStatus, Job, JobSpec, Store};
use chill_store_sql::{SqlOptions, SqlStore};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

/// Engines in the claim+finish benchmark.
pub const ENGINES: usize = 4;
/// Jobs of each engine.
pub const JOBS_PER_ENGINE: usize = 25;

/// When the benchmark jobs are created.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Job `n` of the SQL benchmarks: every second, two tags and a small metadata object.
pub fn job(n: usize) -> Job {
    let spec = JobSpec {
        tags: vec![format!("group-{}", n % 10), "bench".into()],
        metadata: serde_json::json!({ "team": "ops", "n": n }),
        ..JobSpec::new(
            format!("job {n}"),
            "Summarise yesterday's tickets and post to #ops",
            "* * * * * *",
        )
    };
    Job::create(spec, t0()).unwrap_or_else(|e| panic!("bench job {n}: {e}"))
}

/// One engine's jobs in a store and where each one's schedule stands.
pub struct Engine {
    store: Arc<dyn Store>,
    owner: String,
    jobs: Vec<(Job, DateTime<Utc>)>,
    next: usize,
}

impl Engine {
    /// Engine `n` with [`JOBS_PER_ENGINE`] new jobs in `store`.
    ///
    /// # Panics
    ///
    /// When the store refuses a job.
    pub async fn new(store: Arc<dyn Store>, n: usize) -> Engine {
        let mut jobs = Vec::new();
        for i in 0..JOBS_PER_ENGINE {
            let job = job(n * 1000 + i);
            store
                .create_job(&job)
                .await
                .unwrap_or_else(|e| panic!("create_job: {e}"));
            let at = job.next_run_at.unwrap_or_else(t0);
            jobs.push((job, at));
        }
        Engine {
            store,
            owner: format!("engine-{n}"),
            jobs,
            next: 0,
        }
    }

    /// The engine's store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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
    ///
    /// # Panics
    ///
    /// When a claim is refused or a write fails.
    pub async fn run(&mut self, n: u64) {
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
            let claimed = self
                .store
                .claim_slots(&claim)
                .await
                .unwrap_or_else(|e| panic!("claim_slots: {e}"));
            assert!(claimed, "claim refused");
            // A claim bumps the job's version.
            job.version += 1;
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
            self.store
                .finish(&finish)
                .await
                .unwrap_or_else(|e| panic!("finish: {e}"));
            *at = following;
        }
    }
}

/// The engines running `iters` executions between them, at once, each engine running its
/// jobs concurrently (as the engine runs its executions), in tasks on the current runtime;
/// the wall time.
///
/// # Panics
///
/// When a lane panics.
pub async fn run_engines(engines: &mut Vec<Engine>, iters: u64) -> Duration {
    let lanes: Vec<Engine> = engines.drain(..).flat_map(Engine::split).collect();
    let per = iters.div_ceil(lanes.len().max(1) as u64);
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
        done.push(t.await.unwrap_or_else(|e| panic!("lane: {e}")));
    }
    let elapsed = start.elapsed();
    *engines = Engine::join(done);
    elapsed
}

/// A database to benchmark, and how to remove it afterwards.
pub struct Db {
    /// `sqlite` or `postgres`, for benchmark ids.
    pub name: &'static str,
    /// Its URL.
    pub url: String,
    /// The options every store opens it with (PostgreSQL: a schema of its own).
    pub options: SqlOptions,
    file: Option<PathBuf>,
}

impl Db {
    /// A SQLite file in the temporary directory.
    pub fn sqlite() -> Db {
        let path = std::env::temp_dir().join(format!("chill_bench_{}.db", short_id()));
        Db {
            name: "sqlite",
            url: format!("sqlite://{}", path.display()),
            options: SqlOptions::default(),
            file: Some(path),
        }
    }

    /// PostgreSQL at `url`, in a schema of its own, 8 connections per store; `None` when it
    /// is unreachable.
    pub async fn postgres(url: &str) -> Option<Db> {
        use sqlx::Connection;
        sqlx::PgConnection::connect(url).await.ok()?;
        Some(Db {
            name: "postgres",
            url: url.to_string(),
            options: SqlOptions::default()
                .with_schema(format!("chill_bench_{}", short_id()))
                .with_max_connections(8),
            file: None,
        })
    }

    /// A store on it whose tables start with `prefix`.
    ///
    /// # Panics
    ///
    /// When it cannot connect.
    pub async fn store(&self, prefix: &str) -> SqlStore {
        SqlStore::connect_with(&self.url, self.options.clone().with_table_prefix(prefix))
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }

    /// [`ENGINES`] engines with their jobs in tables starting with `prefix`, sharing one
    /// store (`shared`) or with a store each; the stores, to close them afterwards.
    pub async fn engines(&self, prefix: &str, shared: bool) -> (Vec<Arc<SqlStore>>, Vec<Engine>) {
        let mut stores = vec![Arc::new(self.store(prefix).await)];
        let mut engines = Vec::new();
        for e in 0..ENGINES {
            if !shared && e > 0 {
                stores.push(Arc::new(self.store(prefix).await));
            }
            let store: Arc<dyn Store> = stores[stores.len() - 1].clone();
            engines.push(Engine::new(store, e).await);
        }
        (stores, engines)
    }

    /// Remove the file or the schema.
    pub async fn drop_all(&self) {
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

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The databases of the SQL benchmarks: a SQLite file, and PostgreSQL from
/// `CHILL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) when it is
/// reachable (a notice on stderr when not).
pub async fn databases() -> Vec<Db> {
    let mut dbs = vec![Db::sqlite()];
    let pg = std::env::var("CHILL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match Db::postgres(&pg).await {
        Some(db) => dbs.push(db),
        None => eprintln!("PostgreSQL at {pg} is unreachable: its benchmarks are skipped"),
    }
    dbs
}
