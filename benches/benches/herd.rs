//! The thundering herd: N jobs due in the same second on the system clock, run by ChillScheduler
//! and by its peers `tokio-cron-scheduler` 0.15 and `apalis-cron` 1.0, in one harness. Prints a
//! Markdown table.
//!
//! Every library gets the same N jobs with the same 6-field cron expression `S M H D Mon *`
//! naming one instant `T` (a whole second a few seconds ahead, so it fires once a year), and
//! the same job body: it notes the wall-clock time it starts and counts its runs. Measured per
//! run:
//! - lateness: when each job's body starts minus `T` (p50, p99, max, over the jobs that ran);
//! - missed (jobs that never ran by `T` + 20 s) and duplicates (runs beyond the first, counted
//!   until 1 s after the last job's first run);
//! - CPU time (`getrusage`, user + system) per job, for registering the jobs and for the firing
//!   window (`T` − 0.5 s until 1 s after the last first run);
//! - memory per job: heap kept after registering (a counting global allocator: bytes allocated
//!   minus freed), heap kept after the herd (chill-core keeps the execution history in its
//!   store), the growth of the resident set (`VmRSS`) and the peak (`ru_maxrss`).
//!
//! The job body of chill-core is the `AiClient::call` of an AI client that answers at once; of
//! tokio-cron-scheduler, the future of a `Job::new_async` closure; of apalis-cron, the handler
//! of a worker whose backend is a `CronScheduler` over a `cron::Schedule` (apalis-cron runs one
//! worker per schedule). All run on tokio's multi-thread runtime with 2 workers.
//!
//! Each (library, N) runs in a child process of its own, so that memory is measured from a
//! fresh process and one library's leftovers cannot slow the next. A run stops itself: at most
//! the registration lead (3 s, plus 3 s per 10,000 jobs) + 20 s + 1 s.
//!
//! ```sh
//! cargo bench -p chill-benches --bench herd                       # every library, 1,000 and 10,000 jobs
//! cargo bench -p chill-benches --bench herd -- chill apalis 10000 # a selection
//! ```
#![allow(clippy::print_stdout)]

use std::alloc::System;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chill_core::{AiClient, AiError, AiRequest, AiResponse, Chill, ChillOptions, JobSpec};
use chill_core::{MemoryStore, SystemClock};
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::sync::{Notify, watch};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The libraries and configurations compared, in table order.
const LIBS: [&str; 6] = [
    "chill",
    "chill-tuned",
    "chill-ahead",
    "tokio-cron-scheduler",
    "tokio-cron-scheduler-big-channels",
    "apalis-cron",
];

/// How far ahead `chill-ahead` claims its slots.
const CLAIM_AHEAD: Duration = Duration::from_secs(3);

/// Herd sizes.
const SIZES: [usize; 2] = [1_000, 10_000];

/// How long after `T` a job may still start before it counts as missed.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// How long to keep watching for duplicate runs after the last job's first run.
const SETTLE: Duration = Duration::from_secs(1);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--run") {
        let lib = args.get(1).cloned().unwrap_or_default();
        let n = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000);
        run_child(&lib, n);
        return;
    }
    // Driver: `cargo bench` passes `--bench`; anything else selects libraries and sizes.
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let libs: Vec<&str> = LIBS
        .into_iter()
        .filter(|l| !words.iter().any(|w| w.parse::<usize>().is_err()) || words.contains(l))
        .collect();
    let sizes: Vec<usize> = {
        let chosen: Vec<usize> = words.iter().filter_map(|w| w.parse().ok()).collect();
        if chosen.is_empty() {
            SIZES.to_vec()
        } else {
            chosen
        }
    };
    drive(&libs, &sizes);
}

/// Runs every (library, size) in a child process and prints the table.
fn drive(libs: &[&str], sizes: &[usize]) {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    println!(
        "Thundering herd: N jobs due at the same whole second T (system clock), tokio multi-thread runtime with 2 workers"
    );
    println!();
    println!(
        "| library | jobs | late min | late p50 | late p99 | late max | ran / missed / dup | register | CPU register /job | CPU firing /job | heap /job registered | heap /job after | RSS Δ /job | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        for &lib in libs {
            let out = Command::new(&exe)
                .args(["--run", lib, &n.to_string()])
                .output()
                .unwrap_or_else(|e| panic!("running {lib} {n}: {e}"));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT ")) else {
                println!(
                    "| {lib} | {n} | failed: {} {} |",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
                continue;
            };
            let r: BTreeMap<&str, &str> = line["RESULT ".len()..]
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .collect();
            let get = |k: &str| r.get(k).copied().unwrap_or("?");
            println!(
                "| {lib} | {n} | {} ms | {} ms | {} ms | {} ms | {} / {} / {} | {} s | {} µs | {} µs | {} B | {} B | {} B | {} MiB |",
                get("min_ms"),
                get("p50_ms"),
                get("p99_ms"),
                get("max_ms"),
                get("ran"),
                get("missed"),
                get("dup"),
                get("register_s"),
                get("cpu_register_us_per_job"),
                get("cpu_fire_us_per_job"),
                get("heap_registered_per_job"),
                get("heap_after_per_job"),
                get("rss_delta_per_job"),
                get("peak_rss_mib"),
            );
        }
    }
}

/// What each job body records: when it first started and how often it ran.
struct Recorder {
    /// `T` in nanoseconds since the epoch.
    t_ns: i64,
    /// Lateness of the first run, in nanoseconds; `i64::MIN` until it ran.
    first: Vec<AtomicI64>,
    runs: Vec<AtomicU32>,
    /// Jobs that ran at least once.
    ran: AtomicUsize,
    all_ran: Notify,
}

impl Recorder {
    fn new(n: usize, t: DateTime<Utc>) -> Recorder {
        Recorder {
            t_ns: t.timestamp_nanos_opt().unwrap_or(0),
            first: (0..n).map(|_| AtomicI64::new(i64::MIN)).collect(),
            runs: (0..n).map(|_| AtomicU32::new(0)).collect(),
            ran: AtomicUsize::new(0),
            all_ran: Notify::new(),
        }
    }

    /// The body of job `i`: note the time, count the run.
    fn hit(&self, i: usize) {
        let late = Utc::now().timestamp_nanos_opt().unwrap_or(0) - self.t_ns;
        if self.runs[i].fetch_add(1, Ordering::SeqCst) == 0 {
            self.first[i].store(late, Ordering::SeqCst);
            if self.ran.fetch_add(1, Ordering::SeqCst) + 1 == self.first.len() {
                self.all_ran.notify_one();
            }
        }
    }
}

/// The chill-core job body: an AI client that answers at once. The job's index is its prompt.
struct HerdAi(Arc<Recorder>);

#[async_trait]
impl AiClient for HerdAi {
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
        if let Ok(i) = request.payload.prompt.parse::<usize>() {
            self.0.hit(i);
        }
        Ok(AiResponse::default())
    }
}

/// A running herd of one library, to stop at the end.
enum Running {
    Chill(chill_core::ChillHandle),
    TokioCron(tokio_cron_scheduler::JobScheduler),
    Apalis(watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>),
}

impl Running {
    async fn stop(self) {
        match self {
            Running::Chill(handle) => handle.shutdown().await,
            Running::TokioCron(mut sched) => {
                if let Err(e) = sched.shutdown().await {
                    eprintln!("tokio-cron-scheduler shutdown: {e:?}");
                }
            }
            Running::Apalis(stop, workers) => {
                stop.send_replace(true);
                for w in workers {
                    let _ = w.await;
                }
            }
        }
    }
}

/// Registers `n` jobs with `expr` in library `lib` and starts it.
async fn register(lib: &str, n: usize, expr: &str, rec: &Arc<Recorder>) -> Running {
    match lib {
        "chill" | "chill-tuned" | "chill-ahead" => {
            let mut options = ChillOptions::default().with_instance_id("herd");
            if lib != "chill" {
                options = options.with_max_concurrent(10_000).with_claim_batch(1_000);
            }
            if lib == "chill-ahead" {
                options = options.with_claim_ahead(CLAIM_AHEAD);
            }
            let chill = Chill::new(
                Arc::new(MemoryStore::new()),
                Arc::new(SystemClock),
                Arc::new(HerdAi(rec.clone())),
                options,
            );
            let handle = chill.start();
            for i in 0..n {
                let spec = JobSpec::new(format!("herd-{i}"), i.to_string(), expr);
                if let Err(e) = chill.create_job(spec).await {
                    panic!("chill create_job: {e}");
                }
            }
            Running::Chill(handle)
        }
        "tokio-cron-scheduler" | "tokio-cron-scheduler-big-channels" => {
            use tokio_cron_scheduler::{Job, JobScheduler};
            let sched = if lib == "tokio-cron-scheduler" {
                JobScheduler::new().await
            } else {
                JobScheduler::new_with_channel_size(2 * n + 64).await
            }
            .unwrap_or_else(|e| panic!("JobScheduler::new: {e:?}"));
            for i in 0..n {
                let rec = rec.clone();
                let job = Job::new_async(expr, move |_id, _sched| {
                    let rec = rec.clone();
                    Box::pin(async move { rec.hit(i) })
                })
                .unwrap_or_else(|e| panic!("tokio-cron-scheduler Job::new_async: {e:?}"));
                if let Err(e) = sched.add(job).await {
                    panic!("tokio-cron-scheduler add: {e:?}");
                }
            }
            if let Err(e) = sched.start().await {
                panic!("tokio-cron-scheduler start: {e:?}");
            }
            Running::TokioCron(sched)
        }
        "apalis-cron" => {
            use apalis_core::worker::builder::WorkerBuilder;
            use apalis_cron::{CronScheduler, Tick};
            let (stop, stopped) = watch::channel(false);
            let mut workers = Vec::with_capacity(n);
            for i in 0..n {
                let schedule: cron::Schedule = expr
                    .parse()
                    .unwrap_or_else(|e| panic!("cron rejects {expr:?}: {e}"));
                let rec = rec.clone();
                let worker = WorkerBuilder::new(format!("herd-{i}"))
                    .backend(CronScheduler::new(schedule))
                    .build(move |_tick: Tick| {
                        let rec = rec.clone();
                        async move { rec.hit(i) }
                    });
                let stopped = stopped.clone();
                workers.push(tokio::spawn(async move {
                    let run = worker.run_with_ctx(move |ctx| {
                        let mut stopped = stopped.clone();
                        async move {
                            let _ = stopped.wait_for(|s| *s).await;
                            let _ = ctx.stop();
                            Ok(())
                        }
                    });
                    if let Err(e) = run.await {
                        eprintln!("apalis worker: {e}");
                    }
                }));
            }
            Running::Apalis(stop, workers)
        }
        other => panic!("unknown library {other:?}; one of {LIBS:?}"),
    }
}

/// Process resource use at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    cpu: Duration,
    heap: isize,
    rss: u64,
}

fn sample() -> Sample {
    let cpu = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec() as u64, (t.tv_usec() as u32) * 1_000)
            };
            tv(u.user_time()) + tv(u.system_time())
        })
        .unwrap_or_default();
    let stats = GLOBAL.stats();
    Sample {
        cpu,
        heap: stats.bytes_allocated as isize - stats.bytes_deallocated as isize,
        rss: rss_bytes(),
    }
}

/// `VmRSS` from `/proc/self/status`, in bytes.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn peak_rss_bytes() -> u64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map_or(0, |u| u.max_rss() as u64 * 1024)
}

/// Sleeps until a wall-clock instant.
async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One herd of `n` jobs with library `lib`; prints one `RESULT key=value ...` line.
fn run_child(lib: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    rt.block_on(async {
        // The herd's instant: a whole second far enough ahead to register every job first.
        let lead = TimeDelta::milliseconds(3_000 + 3_000 * n as i64 / 10_000);
        let ahead = Utc::now() + lead;
        let t = ahead.with_nanosecond(0).unwrap_or(ahead) + TimeDelta::seconds(1);
        let expr = format!(
            "{} {} {} {} {} *",
            t.second(),
            t.minute(),
            t.hour(),
            t.day(),
            t.month()
        );
        let rec = Arc::new(Recorder::new(n, t));

        let before = sample();
        let reg_start = Instant::now();
        let running = register(lib, n, &expr, &rec).await;
        let register_s = reg_start.elapsed().as_secs_f64();
        let registered = sample();
        let window_open = t - TimeDelta::milliseconds(500);
        if Utc::now() >= window_open {
            panic!("registering {n} jobs took {register_s:.2} s, past T - 0.5 s; raise the lead");
        }

        sleep_until(window_open).await;
        let window_start = sample();
        let deadline = t + TimeDelta::from_std(MAX_WAIT).unwrap_or(TimeDelta::seconds(20));
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        let _ = tokio::time::timeout(wait, rec.all_ran.notified()).await;
        tokio::time::sleep(SETTLE).await;
        let window_end = sample();
        let peak = peak_rss_bytes();

        let mut late: Vec<f64> = rec
            .first
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .filter(|&ns| ns != i64::MIN)
            .map(|ns| ns as f64 / 1e6)
            .collect();
        late.sort_by(f64::total_cmp);
        let ran = late.len();
        let dup: u64 = rec
            .runs
            .iter()
            .map(|r| u64::from(r.load(Ordering::SeqCst).saturating_sub(1)))
            .sum();

        running.stop().await;

        let per_job = |x: f64| x / n as f64;
        println!(
            "RESULT lib={lib} n={n} t={} min_ms={:.1} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} ran={ran} missed={} dup={dup} register_s={register_s:.2} cpu_register_us_per_job={:.1} cpu_fire_us_per_job={:.1} heap_registered_per_job={:.0} heap_after_per_job={:.0} rss_delta_per_job={:.0} peak_rss_mib={:.1}",
            t.to_rfc3339(),
            late.first().copied().unwrap_or(f64::NAN),
            percentile(&late, 0.50),
            percentile(&late, 0.99),
            late.last().copied().unwrap_or(f64::NAN),
            n - ran,
            per_job((registered.cpu - before.cpu).as_secs_f64() * 1e6),
            per_job((window_end.cpu - window_start.cpu).as_secs_f64() * 1e6),
            per_job((registered.heap - before.heap) as f64),
            per_job((window_end.heap - before.heap) as f64),
            per_job(window_end.rss as f64 - before.rss as f64),
            peak as f64 / (1024.0 * 1024.0),
        );
    });
}
