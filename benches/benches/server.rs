//! `chill serve` under load: the real server (`chill_examples::Server`) in this process on an
//! ephemeral port, over a SQLite file in a temporary directory, with the in-process demo AI
//! endpoint, driven over real HTTP (`POST /graphql`, one keep-alive connection) and real
//! WebSocket subscriptions (`graphql-transport-ws`). Prints a Markdown table of latency
//! percentiles (own harness: the targets are percentiles).
//!
//! Measured, in this order (`createJob` always; the others can be named as arguments):
//! - `createJob`: 1,000 creates, one at a time (after 20 warm-up creates that are then purged);
//! - `list`: `listJobs(limit: 1000)` of the 1,000 jobs so created, with the requirements' `Job`
//!   fields and with every field but `executions`: over HTTP, executed in process without HTTP,
//!   executed in process over a `MemoryStore` holding the same jobs (GraphQL alone, also as
//!   CPU time of the thread), and the store's `list_jobs` alone;
//! - `trigger`: `triggerJob` → the `started` event of `onExecutionEvent(jobId)` on one
//!   subscriber, 200 times, each trigger after the previous run's `finished` event;
//! - `fanout`: one event to 100 subscribers: 100 WebSocket connections subscribed to
//!   `onExecutionEvent(jobId)` of one job, which is triggered 100 times; the `started` event
//!   reaching each of them;
//! - `fanout-slow` (only when named): the same with a prompt the demo AI answers after a
//!   second, so that no `finished` event is sent while the `started` ones are;
//! - `fanout-slow-held` (only when named): `fanout-slow` with the client holding its reads
//!   for 20 ms after each trigger's response, so that the 100 subscribers' reading does not
//!   take the server's CPU during the fan-out, as subscribers on other machines would not
//!   (the kernel receive times are still those of the arrivals).
//!
//! Event times are taken against the engine's emit, observed two ways. The probe (in the
//! `trigger` phase only): a thread of its own, with a current-thread runtime, blocked in the
//! engine's event stream (`Chill::subscribe`), notes when each `ExecutionStarted` reaches it (its
//! own wake-up can come late on a loaded machine, which makes "emit → subscriber" shorter, never
//! longer). It is not there during the fan-outs: woken at every emit, its thread would take one
//! of the two vCPUs the server writes the 100 sockets with, which no server has. The traced emit:
//! a `tracing` layer notes, in the engine's own thread, the executor's INFO event `execution
//! started`, which comes just before the emit (a debug event and a clone of the execution in
//! between): never late, so "emit (traced) → last" can only be longer than the truth, by those
//! few steps. "first → last" depends on neither. The subscribers' sockets also note the
//! kernel's receive time of each segment (`SO_TIMESTAMPNS`), so "→ in the last socket" is when
//! the event had reached every subscriber's socket, whenever the one client thread that reads
//! the 100 sockets got to it. Under the table: the CPU time of the
//! whole process per trigger, and from it the CPU each further subscriber costs.
//!
//! The server runs on a tokio multi-thread runtime with the default worker count (as `chill
//! serve`), the client (HTTP, the WebSocket connections) on a current-thread runtime of its own.
//! No log is written: the only `tracing` subscriber is that layer, which takes nothing but the
//! executor's `execution` span and its INFO events (the span's bookkeeping is in the figures).
//!
//! ```sh
//! cargo bench -p chill-benches --bench server                    # createJob, list, trigger, fanout
//! cargo bench -p chill-benches --bench server -- fanout fanout-slow
//! ```
#![allow(clippy::print_stdout)]

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime};

use chill_benches::engine::{InstantAi, store_with};

use chill_core::store::{JobFilter, PageRequest};
use chill_core::{Chill, ChillOptions, Event, EventError, EventStream, SystemClock};
use chill_examples::server::WS_READ_BUFFER;
use chill_examples::{AiChoice, ServeConfig, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Timed creates.
const CREATES: usize = 1_000;
/// Creates before them, purged again, so that the list holds exactly [`CREATES`] jobs.
const WARM_UP_CREATES: usize = 20;
/// Timed listings per variant.
const LISTS: usize = 100;
/// Timed triggers with one subscriber.
const TRIGGERS: usize = 200;
/// Subscribers of the fan-out.
const SUBSCRIBERS: usize = 100;
/// Timed triggers with [`SUBSCRIBERS`] subscribers.
const FAN_OUTS: usize = 100;
/// Timed triggers with [`SUBSCRIBERS`] subscribers when the AI answers after a second.
const SLOW_FAN_OUTS: usize = 30;
/// How long the client holds its reads in `fanout-slow-held`: far longer than the fan-out.
/// (Only with the slow answer: with the instant one, the `finished` message would be in the
/// socket too when the client reads, and the receive time read would be that of its segment.)
const HOLD: Duration = Duration::from_millis(20);
/// The longest wait for any one answer or event: a hang guard, not a measurement.
const PATIENCE: Duration = Duration::from_secs(30);

/// Never fires during the run: executions happen only when triggered.
const YEARLY: &str = "0 0 1 1 *";

/// The requirements' `Job` fields, `executions` aside.
const REQUIREMENTS_JOB_FIELDS: &str =
    "id name prompt schedule enabled lastRunAt lastRunStatus nextRunAt";

/// Every field of `Job` but `executions` (a store query per job).
const ALL_JOB_FIELDS: &str = "id name prompt systemPrompt schedule enabled maxTurns timeout \
    retryPolicy { maxRetries retryDelay maxDelay retryOnTimeout } tags metadata lastRunAt lastRunStatus lastRunDuration \
    lastRunError nextRunAt totalRuns successCount failureCount averageDuration createdAt \
    updatedAt createdBy updatedBy timezone startDate endDate blackoutPeriods { start end reason } \
    dstPolicy { repeated skipped } overlapPolicy catchUpPolicy catchUpWindow jitter \
    pauseNote budget { dailyMicroUsd monthlyMicroUsd } spend { day dayMicroUsd month \
    monthMicroUsd } maxConcurrency pauseAfterFailures consecutiveFailures totalDurationMs \
    totalInputTokens totalOutputTokens totalTokens totalCostMicroUsd runningCount \
    bufferedExecutionId version deletedAt";

/// What the subscribers ask for.
const EVENT_SUBSCRIPTION: &str = "subscription($id: ID) { onExecutionEvent(jobId: $id) { kind \
    execution { id jobId status trigger startedAt } } }";

fn main() {
    // `cargo bench` passes `--bench`; other words select measurements.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let phases: Vec<&str> = if words.is_empty() {
        DEFAULT_PHASES.to_vec()
    } else {
        PHASES
            .into_iter()
            .filter(|p| words.iter().any(|w| w == p))
            .collect()
    };
    let dir = TempDir::new();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("server runtime: {e}"));
    let server = server_rt
        .block_on(Server::start_with(
            ServeConfig {
                store_url: format!("sqlite://{}", dir.0.join("chill.db").display()),
                listen: "127.0.0.1:0".into(),
                ai: AiChoice::Demo,
                demo_jobs: false,
            },
            ChillOptions::default(),
        ))
        .unwrap_or_else(|e| panic!("starting the server: {e}"));
    let traced = Probe::traced();
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("client runtime: {e}"));

    println!(
        "chill serve over HTTP and WebSocket: SQLite file, demo AI endpoint, load average before: {}",
        load_average()
    );
    let report = client_rt.block_on(measure(&server, traced, &phases));
    println!();
    println!("| measurement | samples | min | p50 | p90 | p99 | max | mean |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, stats) in &report.rows {
        println!("{}", stats.row(name));
    }
    println!();
    for note in &report.notes {
        println!("{note}");
    }
    println!("load average after: {}", load_average());
    server_rt.block_on(server.shutdown());
}

/// The measurements after `createJob` (which always runs: the others need its jobs).
const PHASES: [&str; 5] = [
    "list",
    "trigger",
    "fanout",
    "fanout-slow",
    "fanout-slow-held",
];

/// What runs when no measurement is named: all but `fanout-slow` (which takes a second per
/// trigger).
const DEFAULT_PHASES: [&str; 3] = ["list", "trigger", "fanout"];

/// The table's rows, and lines printed under it.
#[derive(Default)]
struct Report {
    rows: Vec<(String, Stats)>,
    notes: Vec<String>,
}

impl Report {
    fn row(&mut self, name: impl Into<String>, stats: Stats) {
        self.rows.push((name.into(), stats));
    }
}

/// Runs the measurements of `phases`, in order.
async fn measure(server: &Server, mut traced: Probe, phases: &[&str]) -> Report {
    let gql = Gql::new(server);
    let mut report = Report::default();

    let jobs = create_jobs(&gql, &mut report).await;
    if phases.contains(&"list") {
        list_jobs(&gql, server, &mut report).await;
    }
    let mut cpu_one = None;
    if phases.contains(&"trigger") {
        let one = subscribe(server, &jobs[0], 1).await;
        // The probe's thread lives for this phase only: it wakes at every emit, and during a
        // fan-out it would take one of the vCPUs the server writes the sockets with.
        let mut probe = Probe::start(server.chill().subscribe());
        let times = fan_out(
            &gql,
            &jobs[0],
            one,
            &mut traced,
            Some(&mut probe),
            TRIGGERS,
            None,
        )
        .await;
        drop(probe);
        report.row("triggerJob: HTTP response", times.response);
        report.row("triggerJob → `started` at the subscriber", times.to_last);
        report.row("  engine emit (probe) → subscriber", times.emit_to_last);
        report.row("  engine emit (traced) → subscriber", times.traced_to_last);
        report.notes.push(format!(
            "process CPU per trigger, 1 subscriber: {}",
            ms(times.cpu)
        ));
        cpu_one = Some(times.cpu);
    }
    for (phase, prompt, iterations, answer, hold) in [
        ("fanout", "Summarise the news.", FAN_OUTS, "at once", None),
        (
            "fanout-slow",
            "slow:1 Summarise the news.",
            SLOW_FAN_OUTS,
            "after 1 s",
            None,
        ),
        (
            "fanout-slow-held",
            "slow:1 Summarise the news.",
            SLOW_FAN_OUTS,
            "after 1 s",
            Some(HOLD),
        ),
    ] {
        if !phases.contains(&phase) {
            continue;
        }
        let job = create_job(&gql, prompt).await;
        let many = subscribe(server, &job, SUBSCRIBERS).await;
        let times = fan_out(&gql, &job, many, &mut traced, None, iterations, hold).await;
        let held = if hold.is_some() {
            ", client reads held"
        } else {
            ""
        };
        let label = format!("{SUBSCRIBERS} subscribers, AI answer {answer}{held}");
        report.row(
            format!("{label}: triggerJob → first `started`"),
            times.to_first,
        );
        report.row(
            format!("{label}: triggerJob → last `started`"),
            times.to_last,
        );
        report.row(
            format!("{label}: engine emit (traced) → last"),
            times.traced_to_last,
        );
        report.row(
            format!("{label}: engine emit (traced) → in the last socket (kernel receive time)"),
            times.traced_to_received,
        );
        report.row(
            format!("{label}: engine emit (traced) → in the first socket (kernel receive time)"),
            times.traced_to_first_received,
        );
        report.row(format!("{label}: first → last `started`"), times.spread);
        let mut note = format!("process CPU per trigger, {label}: {}", ms(times.cpu));
        if let Some(one) = cpu_one {
            let extra = times.cpu.saturating_sub(one) / (SUBSCRIBERS as u32 - 1);
            note += &format!(
                " ({:.1} µs per further subscriber, for its `started` and `finished` events)",
                extra.as_secs_f64() * 1e6
            );
        }
        report.notes.push(note);
    }
    report
}

/// One more job, untimed; its id.
async fn create_job(gql: &Gql, prompt: &str) -> String {
    let data = gql
        .data(body(
            "mutation($input: CreateJobInput!) { createJob(input: $input) { id } }",
            json!({"input": {"name": "fan-out", "prompt": prompt, "schedule": YEARLY}}),
        ))
        .await;
    data["createJob"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job id in {data}"))
        .to_string()
}

/// `createJob`, [`CREATES`] times, after [`WARM_UP_CREATES`] purged again; the ids created.
async fn create_jobs(gql: &Gql, report: &mut Report) -> Vec<String> {
    let create = |i: usize| {
        body(
            &format!(
                "mutation($input: CreateJobInput!) {{ createJob(input: $input) {{ {REQUIREMENTS_JOB_FIELDS} }} }}"
            ),
            json!({"input": {
                "name": format!("bench job {i}"),
                "prompt": "Summarise yesterday's support tickets and post the summary.",
                "systemPrompt": "You are a concise assistant.",
                "schedule": YEARLY,
                "tags": ["bench", "server"],
                "metadata": {"team": "ops", "index": i},
            }}),
        )
    };
    for i in 0..WARM_UP_CREATES {
        let id = gql.data(create(i)).await["createJob"]["id"].clone();
        gql.data(body(
            "mutation($id: ID!) { deleteJob(id: $id, hard: true) }",
            json!({"id": id}),
        ))
        .await;
    }
    let mut times = Vec::with_capacity(CREATES);
    let mut ids = Vec::with_capacity(CREATES);
    for i in 0..CREATES {
        let request = create(i);
        let started = Instant::now();
        let text = gql.post(request).await;
        times.push(started.elapsed());
        let id = data_of(&text)["createJob"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no job id in {text}"))
            .to_string();
        ids.push(id);
    }
    report.row(format!("createJob ({CREATES} jobs)"), Stats::of(times));
    ids
}

/// `listJobs(limit: 1000)` of the 1,000 jobs, over HTTP, in process, and from the store.
async fn list_jobs(gql: &Gql, server: &Server, report: &mut Report) {
    for (name, fields) in [
        ("requirements' Job fields", REQUIREMENTS_JOB_FIELDS),
        ("every Job field", ALL_JOB_FIELDS),
    ] {
        let query = format!("{{ listJobs(limit: 1000) {{ {fields} }} }}");
        let count = |text: &str| data_of(text)["listJobs"].as_array().map_or(0, Vec::len);
        let first = gql.post(body(&query, json!({}))).await;
        assert_eq!(count(&first), CREATES, "listJobs returned {first:.300}");
        let mut times = Vec::with_capacity(LISTS);
        for _ in 0..LISTS {
            let request = body(&query, json!({}));
            let started = Instant::now();
            let text = gql.post(request).await;
            times.push(started.elapsed());
            assert_eq!(count(&text), CREATES);
        }
        report.row(
            format!("listJobs of {CREATES}, {name}, HTTP"),
            Stats::of(times),
        );

        let schema = chill_examples::graphql::schema(server.chill().clone());
        let mut times = Vec::with_capacity(LISTS);
        for _ in 0..LISTS {
            let started = Instant::now();
            let response = schema.execute(query.as_str()).await;
            let text = serde_json::to_string(&response)
                .unwrap_or_else(|e| panic!("encoding the response: {e}"));
            times.push(started.elapsed());
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            assert!(text.len() > CREATES);
        }
        report.row(
            format!("listJobs of {CREATES}, {name}, in process (no HTTP)"),
            Stats::of(times),
        );
    }
    graphql_alone(server, report).await;
    let mut times = Vec::with_capacity(LISTS);
    for _ in 0..LISTS {
        let started = Instant::now();
        let page = server
            .chill()
            .list_jobs(&JobFilter::default(), &PageRequest::first(1_000))
            .await
            .unwrap_or_else(|e| panic!("list_jobs: {e}"));
        times.push(started.elapsed());
        assert_eq!(page.items.len(), CREATES);
    }
    report.row(
        format!("store list_jobs of {CREATES} (Chill::list_jobs, no GraphQL)"),
        Stats::of(times),
    );
}

/// `listJobs` of the same 1,000 jobs held in a `MemoryStore` (an engine that is not started),
/// executed in process: the cost of GraphQL itself, in wall time and in CPU time of this
/// thread (where it runs whole), which a loaded machine does not inflate.
async fn graphql_alone(server: &Server, report: &mut Report) {
    let jobs = server
        .chill()
        .list_jobs(&JobFilter::default(), &PageRequest::first(1_000))
        .await
        .unwrap_or_else(|e| panic!("list_jobs: {e}"))
        .items;
    let store = store_with(&jobs)
        .await
        .unwrap_or_else(|e| panic!("memory store: {e}"));
    let chill = Chill::new(
        store,
        Arc::new(SystemClock),
        Arc::new(InstantAi),
        ChillOptions::default(),
    );
    let schema = chill_examples::graphql::schema(chill);
    for (name, fields) in [
        ("requirements' Job fields", REQUIREMENTS_JOB_FIELDS),
        ("every Job field", ALL_JOB_FIELDS),
    ] {
        let query = format!("{{ listJobs(limit: 1000) {{ {fields} }} }}");
        let mut times = Vec::with_capacity(LISTS);
        let mut cpu = Vec::with_capacity(LISTS);
        for _ in 0..LISTS {
            let (started, cpu_before) = (Instant::now(), thread_cpu());
            let response = schema.execute(query.as_str()).await;
            let text = serde_json::to_string(&response)
                .unwrap_or_else(|e| panic!("encoding the response: {e}"));
            cpu.push(thread_cpu().saturating_sub(cpu_before));
            times.push(started.elapsed());
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            assert!(text.len() > CREATES);
        }
        let label = format!("listJobs of {CREATES}, {name}, in process over a MemoryStore");
        report.row(label.clone(), Stats::of(times));
        report.row(format!("{label}: thread CPU"), Stats::of(cpu));
    }
}

/// CPU time of this process, every thread.
fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

/// The times of one trigger seen by `n` subscribers.
struct FanOut {
    /// Trigger sent → the HTTP response read.
    response: Stats,
    /// Trigger sent → the first subscriber has the event.
    to_first: Stats,
    /// Trigger sent → the last subscriber has the event.
    to_last: Stats,
    /// The engine's emit (the probe, when one was given) → the last subscriber has the event.
    emit_to_last: Stats,
    /// The engine's emit (traced) → the last subscriber has the event.
    traced_to_last: Stats,
    /// The engine's emit (traced, wall clock) → the event's last TCP segment in the last
    /// subscriber's socket (the kernel's receive time).
    traced_to_received: Stats,
    /// The traced emit → the event's last segment in the first subscriber's socket.
    traced_to_first_received: Stats,
    /// The first subscriber → the last.
    spread: Stats,
    /// CPU time of this process (server and client) per trigger.
    cpu: Duration,
}

/// Triggers `job` `iterations` times, each after the previous run ended, and times the
/// `started` event reaching every subscriber. With `hold`, the client's thread sleeps that long
/// once it has the trigger's response, before it reads any subscriber: the events arrive in
/// sockets nobody is reading yet, as they would at subscribers on other machines, and the
/// server's fan-out has both vCPUs to itself (the kernel receive times are kept). The emit is
/// taken from `traced`, and also from `probe` when one is given.
async fn fan_out(
    gql: &Gql,
    job: &str,
    mut subscribers: Subscribers,
    traced: &mut Probe,
    mut probe: Option<&mut Probe>,
    iterations: usize,
    hold: Option<Duration>,
) -> FanOut {
    let trigger = || {
        body(
            "mutation($id: ID!) { triggerJob(id: $id) { id status } }",
            json!({"id": job}),
        )
    };
    let n = subscribers.tasks.len();
    // The first run shows that every subscription is live.
    let text = gql.post(trigger()).await;
    let id = execution_id(&text);
    subscribers.wait(&id, "started", n).await;
    subscribers.wait(&id, "finished", n).await;
    if let Some(probe) = probe.as_deref_mut() {
        probe.emitted(&id).await;
    }
    traced.emitted(&id).await;

    let mut response = Vec::with_capacity(iterations);
    let mut to_first = Vec::with_capacity(iterations);
    let mut to_last = Vec::with_capacity(iterations);
    let mut emit_to_last = Vec::with_capacity(iterations);
    let mut traced_to_last = Vec::with_capacity(iterations);
    let mut traced_to_received = Vec::with_capacity(iterations);
    let mut traced_to_first_received = Vec::with_capacity(iterations);
    let mut spread = Vec::with_capacity(iterations);
    let cpu_before = process_cpu();
    for _ in 0..iterations {
        let request = trigger();
        let sent = Instant::now();
        let text = gql.post(request).await;
        response.push(sent.elapsed());
        if let Some(hold) = hold {
            // Blocks this current-thread runtime: no subscriber task runs meanwhile.
            std::thread::sleep(hold);
        }
        let id = execution_id(&text);
        let Arrivals {
            first,
            last,
            first_received,
            last_received,
        } = subscribers.wait(&id, "started", n).await;
        if let Some(probe) = probe.as_deref_mut() {
            let emitted = probe.emitted(&id).await;
            emit_to_last.push(last.saturating_duration_since(emitted.at));
        }
        let traced = traced.emitted(&id).await;
        if let Some(received) = last_received {
            traced_to_received.push(received.duration_since(traced.wall).unwrap_or_default());
        }
        if let Some(received) = first_received {
            traced_to_first_received.push(received.duration_since(traced.wall).unwrap_or_default());
        }
        traced_to_last.push(last.saturating_duration_since(traced.at));
        to_first.push(first - sent);
        to_last.push(last - sent);
        spread.push(last - first);
        // The next trigger after this run's end: the job's overlap policy would refuse it.
        subscribers.wait(&id, "finished", n).await;
    }
    let cpu = process_cpu().saturating_sub(cpu_before) / iterations as u32;
    for task in subscribers.tasks {
        task.abort();
    }
    FanOut {
        cpu,
        response: Stats::of(response),
        to_first: Stats::of(to_first),
        to_last: Stats::of(to_last),
        emit_to_last: Stats::of(emit_to_last),
        traced_to_last: Stats::of(traced_to_last),
        traced_to_received: Stats::of(traced_to_received),
        traced_to_first_received: Stats::of(traced_to_first_received),
        spread: Stats::of(spread),
    }
}

fn execution_id(text: &str) -> String {
    data_of(text)["triggerJob"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no execution id in {text}"))
        .to_string()
}

/// An execution event as a subscriber received it.
struct Arrival {
    kind: String,
    execution_id: String,
    at: Instant,
    /// When the kernel received the last TCP segment read before the message was whole
    /// (`SO_TIMESTAMPNS`): its arrival in the subscriber's socket, whenever the client got to
    /// reading it.
    received: Option<SystemTime>,
}

/// The arrivals of one event at every subscriber.
struct Arrivals {
    first: Instant,
    last: Instant,
    /// The earliest kernel receive time among them.
    first_received: Option<SystemTime>,
    /// The latest kernel receive time among them.
    last_received: Option<SystemTime>,
}

/// WebSocket connections subscribed to one job's execution events, each read by a task of its
/// own that notes when each event arrives.
struct Subscribers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    /// Arrivals read while waiting for another event.
    early: Vec<Arrival>,
}

impl Subscribers {
    /// Waits until `n` subscribers have `kind` of execution `id`.
    async fn wait(&mut self, id: &str, kind: &str, n: usize) -> Arrivals {
        let mut arrivals = Vec::with_capacity(n);
        let wanted = |a: &Arrival| a.execution_id == id && a.kind == kind;
        let (mine, others): (Vec<Arrival>, Vec<Arrival>) = std::mem::take(&mut self.early)
            .into_iter()
            .partition(wanted);
        self.early = others;
        arrivals.extend(mine);
        while arrivals.len() < n {
            let arrival = tokio::time::timeout(PATIENCE, self.arrivals.recv())
                .await
                .unwrap_or_else(|_| panic!("{kind} of {id}: {} of {n} in time", arrivals.len()))
                .unwrap_or_else(|| panic!("the subscribers stopped"));
            if wanted(&arrival) {
                arrivals.push(arrival);
            } else {
                self.early.push(arrival);
            }
        }
        let first = arrivals
            .iter()
            .map(|a| a.at)
            .min()
            .unwrap_or_else(Instant::now);
        Arrivals {
            first,
            last: arrivals.iter().map(|a| a.at).max().unwrap_or(first),
            first_received: arrivals.iter().filter_map(|a| a.received).min(),
            last_received: arrivals.iter().filter_map(|a| a.received).max(),
        }
    }
}

type Socket = WebSocketStream<Timestamped>;

/// `n` WebSocket connections (`graphql-transport-ws`), each subscribed to `job`'s execution
/// events.
async fn subscribe(server: &Server, job: &str, n: usize) -> Subscribers {
    let (tx, arrivals) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let mut request = format!("ws://{}/graphql", server.local_addr())
            .into_client_request()
            .unwrap_or_else(|e| panic!("WebSocket request: {e}"));
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", http_value("graphql-transport-ws"));
        // The server's small read buffer, for the same reason (see `WS_READ_BUFFER`).
        let config = WebSocketConfig::default().read_buffer_size(WS_READ_BUFFER);
        let tcp = TcpStream::connect(server.local_addr())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let (mut socket, _) = tokio_tungstenite::client_async_with_config(
            request,
            Timestamped::new(tcp),
            Some(config),
        )
        .await
        .unwrap_or_else(|e| panic!("WebSocket connect: {e}"));
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": {}}),
        )
        .await;
        let ack = next_json(&mut socket).await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        send(
            &mut socket,
            json!({"id": "1", "type": "subscribe",
                   "payload": {"query": EVENT_SUBSCRIPTION, "variables": {"id": job}}}),
        )
        .await;
        tasks.push(tokio::spawn(read_events(socket, tx.clone())));
    }
    Subscribers {
        tasks,
        arrivals,
        early: Vec::new(),
    }
}

fn http_value(s: &'static str) -> tokio_tungstenite::tungstenite::http::HeaderValue {
    tokio_tungstenite::tungstenite::http::HeaderValue::from_static(s)
}

/// Reads a subscription's messages, noting when each arrives (before parsing it).
async fn read_events(mut socket: Socket, tx: mpsc::UnboundedSender<Arrival>) {
    while let Some(Ok(message)) = socket.next().await {
        let at = Instant::now();
        let received = socket.get_ref().last_received();
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap_or_default();
        match value["type"].as_str() {
            Some("next") => {
                let event = &value["payload"]["data"]["onExecutionEvent"];
                let arrival = Arrival {
                    kind: event["kind"].as_str().unwrap_or_default().to_string(),
                    execution_id: event["execution"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    at,
                    received,
                };
                if tx.send(arrival).is_err() {
                    return;
                }
            }
            Some("ping") => send(&mut socket, json!({"type": "pong"})).await,
            Some("error") => panic!("subscription error: {value}"),
            _ => {}
        }
    }
}

async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap_or_else(|e| panic!("WebSocket send: {e}"));
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no WebSocket message in time"))
            .unwrap_or_else(|| panic!("the WebSocket closed"))
            .unwrap_or_else(|e| panic!("WebSocket: {e}"));
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        }
    }
}

/// Notes when each `ExecutionStarted` is emitted: as it reaches a subscriber of the engine's
/// own event stream, on a thread of its own ([`Probe::start`]), or as the executor traces it
/// ([`Probe::traced`]).
struct Probe {
    started: mpsc::UnboundedReceiver<(String, Emitted)>,
    early: Vec<(String, Emitted)>,
}

/// When the probe saw an event: on the monotonic clock, and on the wall clock (which the
/// kernel's receive times of the subscribers' sockets are on).
#[derive(Debug, Clone, Copy)]
struct Emitted {
    at: Instant,
    wall: SystemTime,
}

impl Probe {
    fn start(mut events: EventStream) -> Probe {
        let (tx, started) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap_or_else(|e| panic!("probe runtime: {e}"));
            rt.block_on(async move {
                loop {
                    // Ends as soon as the probe is dropped, not at the next event.
                    let event = tokio::select! {
                        event = events.recv() => event,
                        () = tx.closed() => return,
                    };
                    match event {
                        Ok(Event::ExecutionStarted(e)) => {
                            let seen = Emitted {
                                at: Instant::now(),
                                wall: SystemTime::now(),
                            };
                            if tx.send((e.id.to_string(), seen)).is_err() {
                                return;
                            }
                        }
                        Ok(_) | Err(EventError::Lagged(_)) => {}
                        Err(_) => return,
                    }
                }
            });
        });
        Probe {
            started,
            early: Vec::new(),
        }
    }

    /// Installs [`StartTracer`] as the process's `tracing` subscriber.
    fn traced() -> Probe {
        use tracing_subscriber::layer::SubscriberExt;
        let (tx, started) = mpsc::unbounded_channel();
        let subscriber = tracing_subscriber::registry().with(StartTracer { tx });
        tracing::subscriber::set_global_default(subscriber)
            .unwrap_or_else(|e| panic!("installing the start tracer: {e}"));
        Probe {
            started,
            early: Vec::new(),
        }
    }

    /// When the engine emitted execution `id`'s `ExecutionStarted`.
    async fn emitted(&mut self, id: &str) -> Emitted {
        if let Some(i) = self.early.iter().position(|(e, _)| e == id) {
            return self.early.swap_remove(i).1;
        }
        loop {
            let (e, at) = tokio::time::timeout(PATIENCE, self.started.recv())
                .await
                .unwrap_or_else(|_| panic!("the probe never saw {id} start"))
                .unwrap_or_else(|| panic!("the probe stopped"));
            if e == id {
                return at;
            }
            self.early.push((e, at));
        }
    }
}

/// A GraphQL client over one keep-alive HTTP/1.1 connection.
struct Gql {
    url: String,
    http: reqwest::Client,
}

impl Gql {
    fn new(server: &Server) -> Gql {
        Gql {
            url: format!("http://{}/graphql", server.local_addr()),
            http: reqwest::Client::new(),
        }
    }

    /// Posts a prepared body; the response text, once read whole.
    async fn post(&self, body: String) -> String {
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /graphql: {e}"));
        assert_eq!(response.status(), 200);
        response
            .text()
            .await
            .unwrap_or_else(|e| panic!("reading the response: {e}"))
    }

    /// `data` of a request, which must have no errors.
    async fn data(&self, body: String) -> Value {
        data_of(&self.post(body).await)
    }
}

/// The JSON body of a GraphQL request.
fn body(query: &str, variables: Value) -> String {
    json!({"query": query, "variables": variables}).to_string()
}

/// `data` of a GraphQL response, which must have no errors.
fn data_of(text: &str) -> Value {
    let mut value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(value.get("errors").is_none(), "GraphQL errors: {value}");
    value["data"].take()
}

/// Latency percentiles (nearest rank).
struct Stats {
    sorted: Vec<Duration>,
}

impl Stats {
    fn of(mut times: Vec<Duration>) -> Stats {
        times.sort();
        Stats { sorted: times }
    }

    fn percentile(&self, p: f64) -> Duration {
        let n = self.sorted.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.sorted[rank.clamp(1, n) - 1]
    }

    fn row(&self, name: &str) -> String {
        let n = self.sorted.len();
        let mean = self.sorted.iter().sum::<Duration>() / n as u32;
        format!(
            "| {name} | {n} | {} | {} | {} | {} | {} | {} |",
            ms(self.sorted[0]),
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.sorted[n - 1]),
            ms(mean),
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A temporary directory, removed with the value.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("chill-bench-server-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP stream that notes the kernel's receive time of what it reads (`SO_TIMESTAMPNS`), so
/// that an event's arrival at a subscriber is known however late the client reads it: the
/// client reads 100 sockets on one thread, on the CPUs the server also runs on. The kernel
/// stamps a read with its last segment's time: a late read that also takes in later bytes (the
/// run's `finished` event) is stamped later than the event, so the figure errs long, never
/// short. An arrival without a stamp is left out of the row.
struct Timestamped {
    tcp: TcpStream,
    /// The receive time of the newest segment read, in nanoseconds since the epoch (0: none).
    last: AtomicI64,
}

impl Timestamped {
    fn new(tcp: TcpStream) -> Timestamped {
        nix::sys::socket::setsockopt(&tcp, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
            .unwrap_or_else(|e| panic!("SO_TIMESTAMPNS: {e}"));
        Timestamped {
            tcp,
            last: AtomicI64::new(0),
        }
    }

    /// The kernel's receive time of the newest segment read so far.
    fn last_received(&self) -> Option<SystemTime> {
        let nanos = self.last.load(Ordering::Relaxed);
        (nanos > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64))
    }
}

/// `recvmsg` into `into`: the bytes read and the receive time of the segment, if given.
fn recv_timestamped(fd: RawFd, into: &mut [u8]) -> std::io::Result<(usize, Option<i64>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut iov = [std::io::IoSliceMut::new(into)];
    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let message = recvmsg::<()>(fd, &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT)?;
    let mut stamp = None;
    for c in message.cmsgs()? {
        if let ControlMessageOwned::ScmTimestampns(t) = c {
            stamp = Some(t.tv_sec() * 1_000_000_000 + t.tv_nsec());
        }
    }
    Ok((message.bytes, stamp))
}

impl AsyncRead for Timestamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            std::task::ready!(this.tcp.poll_read_ready(cx))?;
            let fd = this.tcp.as_raw_fd();
            let unfilled = buf.initialize_unfilled();
            match this
                .tcp
                .try_io(Interest::READABLE, || recv_timestamped(fd, unfilled))
            {
                Ok((n, stamp)) => {
                    if let Some(nanos) = stamp {
                        this.last.store(nanos, Ordering::Relaxed);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Timestamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// A `tracing` layer that notes the time of the executor's `execution started` event, in the
/// thread that emits it, with the id of its `execution` span. It takes an interest in nothing
/// else, so no other span or event of the process is even built.
struct StartTracer {
    tx: mpsc::UnboundedSender<(String, Emitted)>,
}

/// The execution id of an `execution` span, kept in its extensions.
struct SpanExecution(String);

/// Reads one field of a span or an event as text.
struct FieldText {
    name: &'static str,
    value: Option<String>,
}

impl tracing::field::Visit for FieldText {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == self.name {
            self.value = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.name {
            self.value = Some(format!("{value:?}"));
        }
    }
}

/// The module whose span and events the tracer takes.
const EXECUTOR: &str = "chill_core::engine::executor";

impl<S> tracing_subscriber::Layer<S> for StartTracer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        let wanted = meta.target() == EXECUTOR
            && *meta.level() == tracing::Level::INFO
            && (meta.is_event() || meta.name() == "execution");
        if wanted {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut execution = FieldText {
            name: "execution_id",
            value: None,
        };
        attrs.record(&mut execution);
        if let (Some(execution), Some(span)) = (execution.value, ctx.span(id)) {
            span.extensions_mut().insert(SpanExecution(execution));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let seen = Emitted {
            at: Instant::now(),
            wall: SystemTime::now(),
        };
        let mut message = FieldText {
            name: "message",
            value: None,
        };
        event.record(&mut message);
        if message.value.as_deref() != Some("execution started") {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        if let Some(SpanExecution(id)) = span.extensions().get::<SpanExecution>() {
            let _ = self.tx.send((id.clone(), seen));
        }
    }
}
