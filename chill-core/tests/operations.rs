//! Operations on the [`ManualClock`]: the circuit breaker, per-job concurrency, the manual
//! trigger limit, manual retries, window statistics and summaries, alerts, pause after
//! failures, retention with its archive hook, token pricing, and budgets.
#![allow(clippy::unwrap_used)]

mod world;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chill_core::testkit::Step;
use chill_core::{
    Alert, AlertKind, AlertRules, AlertSink, ArchiveSink, BreakerOptions, BreakerState, Budget,
    Chill, ChillOptions, Error, Event, Execution, ExecutionStatus, JobSpec, ModelPrice,
    OverlapPolicy, PriceTable, TriggerLimit,
};
use world::{
    World, at, drain, ok_after, options, retried_spec, retrying, secs, server_error, spec,
};

use ExecutionStatus::{Dead, Failed, Success};

/// Alerts delivered to the host.
#[derive(Default)]
struct Alerts(Mutex<Vec<Alert>>);

#[async_trait]
impl AlertSink for Alerts {
    async fn alert(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

impl Alerts {
    fn kinds(&self) -> Vec<AlertKind> {
        self.0.lock().unwrap().iter().map(|a| a.kind).collect()
    }
}

impl World {
    fn engine_with(&self, options: ChillOptions, alerts: Arc<Alerts>) -> Chill {
        Chill::builder(self.store(), Arc::new(self.clock.clone()), self.ai.clone())
            .options(options)
            .alert_sink(alerts)
            .build()
    }
}

fn error_types(executions: &[Execution]) -> Vec<(ExecutionStatus, Option<String>)> {
    executions
        .iter()
        .map(|e| (e.status, e.error_type.clone()))
        .collect()
}

// --- circuit breaker -----------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn the_breaker_opens_after_failures_fails_fast_and_closes_after_a_successful_probe() {
    let w = World::new();
    let alerts = Arc::new(Alerts::default());
    let breaker = BreakerOptions::default()
        .with_consecutive_failures(3)
        .with_failure_rate(0, 0)
        .with_cool_down(secs(150));
    let chill = w.engine_with(options("a").with_breaker(breaker), alerts.clone());
    let mut events = chill.subscribe();
    w.ai.set_default(server_error());
    let job = chill
        .create_job(retried_spec("flaky", "* * * * *", 0, 10))
        .await
        .unwrap();
    let handle = chill.start();
    w.run_to(at(3, 30)).await;
    assert_eq!(chill.breaker_state(), BreakerState::Open);
    w.ai.set_default(Step::ok("back"));
    // 04:00 and 05:00 come while the breaker is open (until 03:00 + 150 s = 05:30).
    w.run_to(at(5, 45)).await;
    assert_eq!(w.ai.calls_for("flaky").len(), 3, "no call while open");
    w.run_to(at(6, 30)).await;
    assert_eq!(chill.breaker_state(), BreakerState::Closed);
    assert_eq!(
        w.ai.calls_for("flaky").len(),
        4,
        "the probe at 06:00 went through"
    );
    handle.shutdown().await;

    let runs = w.executions(&job.id).await;
    let server = Some("server_error".to_string());
    let open = Some("circuit_open".to_string());
    assert_eq!(
        error_types(&runs),
        vec![
            (Dead, server.clone()),
            (Dead, server.clone()),
            (Dead, server),
            (Dead, open.clone()),
            (Dead, open),
            (Success, None),
        ]
    );
    assert!(
        runs[3]
            .error_message
            .as_deref()
            .unwrap()
            .contains("circuit breaker"),
        "{:?}",
        runs[3].error_message
    );
    let changes: Vec<(BreakerState, BreakerState)> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            Event::BreakerChanged { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect();
    use BreakerState::{Closed, HalfOpen, Open};
    assert_eq!(
        changes,
        vec![(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    let unreachable = alerts
        .kinds()
        .into_iter()
        .filter(|k| *k == AlertKind::AiUnreachable)
        .count();
    assert_eq!(
        unreachable,
        1,
        "one ai_unreachable alert: {:?}",
        alerts.kinds()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_refused_attempt_is_retried_no_earlier_than_the_breaker_half_opens() {
    let w = World::new();
    let breaker = BreakerOptions::default()
        .with_consecutive_failures(1)
        .with_failure_rate(0, 0)
        .with_cool_down(secs(300));
    let chill = w.engine_with(options("a").with_breaker(breaker), Arc::default());
    w.ai.script("down", vec![server_error()]);
    w.ai.set_default(Step::ok("fine"));
    let down = chill
        .create_job(retried_spec("down", "1 0 * * *", 0, 10))
        .await
        .unwrap();
    let other = chill
        .create_job(retried_spec("other", "2 0 * * *", 2, 10))
        .await
        .unwrap();
    let handle = chill.start();
    // 00:01 "down" fails and opens the breaker until 00:06; "other" at 00:02 is refused, its
    // retry (backoff 10 s) waits for 00:06 and then runs as the probe.
    w.run_to(at(10, 0)).await;
    handle.shutdown().await;
    let chain = w.executions(&other.id).await;
    assert_eq!(
        error_types(&chain),
        vec![(Failed, Some("circuit_open".into())), (Success, None)]
    );
    assert!(
        chain[1].started_at >= at(6, 0),
        "retried at {}",
        chain[1].started_at
    );
    assert_eq!(w.ai.calls_for("other").len(), 1);
    assert_eq!(w.executions(&down.id).await[0].status, Dead);
}

// --- concurrency and manual triggers --------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn the_per_job_limit_skips_slots_and_refuses_triggers_beyond_it() {
    let w = World::new();
    let chill = w.engine("a");
    w.ai.set_default(ok_after(150));
    let job = chill
        .create_job(JobSpec {
            overlap_policy: OverlapPolicy::Allow,
            max_concurrency: Some(2),
            ..spec("long", "1-4 * * * *")
        })
        .await
        .unwrap();
    let handle = chill.start();
    w.run_to(at(2, 10)).await;
    match chill.trigger_job(&job.id).await {
        Err(Error::AtConcurrencyLimit {
            running: 2,
            limit: 2,
            ..
        }) => {}
        other => panic!("expected the concurrency limit, got {other:?}"),
    }
    w.run_to(at(7, 0)).await;
    handle.shutdown().await;
    let outcomes = w.outcomes(&job.id).await;
    assert_eq!(
        outcomes,
        vec![
            (at(1, 0), Success, None),
            (at(2, 0), Success, None),
            (
                at(3, 0),
                ExecutionStatus::Skipped,
                Some("concurrency_limit".into())
            ),
            (at(4, 0), Success, None),
        ]
    );
    assert!(world::max_concurrency(&w.executions(&job.id).await) <= 2);
}

#[tokio::test(flavor = "current_thread")]
async fn manual_triggers_beyond_the_limit_are_refused_until_the_window_passes() {
    let w = World::new();
    let limit = TriggerLimit {
        max: 2,
        per: secs(60),
    };
    let chill = w.engine_on(
        w.store(),
        options("a").with_manual_trigger_limit(Some(limit)),
    );
    w.ai.set_default(ok_after(1));
    let job = chill
        .create_job(JobSpec {
            overlap_policy: OverlapPolicy::Allow,
            ..spec("manual", "@yearly")
        })
        .await
        .unwrap();
    let handle = chill.start();
    chill.trigger_job(&job.id).await.unwrap();
    w.run_to(at(0, 20)).await;
    chill.trigger_job(&job.id).await.unwrap();
    match chill.trigger_job(&job.id).await {
        Err(e @ Error::TriggerLimited { max: 2, .. }) => {
            let Error::TriggerLimited { retry_after, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*retry_after, secs(40));
            assert!(e.to_string().contains("try again in 40s"), "{e}");
        }
        other => panic!("expected the trigger limit, got {other:?}"),
    }
    w.run_to(at(1, 0)).await;
    chill.trigger_job(&job.id).await.unwrap();
    w.run_to(at(1, 30)).await;
    handle.shutdown().await;
    assert_eq!(w.executions(&job.id).await.len(), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_dead_execution_is_retried_by_hand_as_the_next_attempt_of_its_chain() {
    let w = World::new();
    let (chill, handle, job) = w.start_with(retried_spec("once", "@yearly", 0, 10)).await;
    w.ai.script("once", vec![server_error(), Step::ok("second time lucky")]);
    chill.trigger_job(&job.id).await.unwrap();
    w.run_to(at(0, 30)).await;
    let dead = w.executions(&job.id).await.remove(0);
    assert_eq!(dead.status, Dead);
    let retry = chill.retry_execution(&dead.id).await.unwrap();
    w.run_to(at(1, 0)).await;
    let again = w.execution(&retry).await;
    assert_eq!(
        (
            again.status,
            again.attempt,
            again.root_execution_id,
            again.trigger
        ),
        (
            Success,
            2,
            dead.root_execution_id,
            chill_core::Trigger::Retry
        )
    );
    match chill.retry_execution(&dead.id).await {
        Err(Error::AlreadyRetried(id)) => assert_eq!(id, dead.id),
        other => panic!("expected already retried, got {other:?}"),
    }
    match chill.retry_execution(&retry).await {
        Err(Error::NotRetryable {
            status: Success, ..
        }) => {}
        other => panic!("a success is not retried, got {other:?}"),
    }
    handle.shutdown().await;
    let stats = w.job(&job.id).await;
    assert_eq!(
        (stats.total_runs, stats.success_count, stats.failure_count),
        (2, 1, 1)
    );
}

// --- statistics, summaries, alerts ----------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn window_statistics_and_summaries_add_up_the_executions() {
    let w = World::new();
    let prices = PriceTable::default().with_default(ModelPrice::usd_per_mtok(1_000.0, 2_000.0));
    let chill = w.engine_on(w.store(), options("a").with_prices(prices));
    // Every 10 minutes: durations 1..=6 s, every third fails.
    w.ai.script(
        "measured",
        (1..=6u64)
            .map(|i| {
                if i % 3 == 0 {
                    server_error().after(secs(i))
                } else {
                    ok_after(i)
                }
            })
            .collect(),
    );
    let job = chill
        .create_job(retried_spec("measured", "*/10 * * * *", 0, 10))
        .await
        .unwrap();
    let handle = chill.start();
    w.run_to(at(55, 0)).await;
    handle.shutdown().await;

    let hour = chill
        .job_stats(&job.id, Duration::from_secs(3_600))
        .await
        .unwrap();
    assert_eq!(
        (hour.runs, hour.successes, hour.failures, hour.timeouts),
        (5, 4, 1, 0)
    );
    assert_eq!(
        (hour.p50_duration_ms, hour.p95_duration_ms),
        (Some(3_000), Some(5_000))
    );
    assert_eq!(hour.p50_ai_latency_ms, Some(3_000));
    // 4 successes of 10 input and 20 output tokens at $1,000 and $2,000 per million.
    assert_eq!((hour.input_tokens, hour.output_tokens), (40, 80));
    assert_eq!(hour.cost_micro_usd, 4 * (10 * 1_000 + 20 * 2_000));
    assert_eq!(
        w.job(&job.id).await.total_cost_micro_usd,
        hour.cost_micro_usd
    );

    let recent = chill
        .job_stats(&job.id, Duration::from_secs(25 * 60))
        .await
        .unwrap();
    assert_eq!(recent.runs, 3, "the runs of 00:30, 00:40 and 00:50");

    let day = chill.daily_summary(at(0, 0).date_naive()).await.unwrap();
    assert_eq!(day.total, hour);
    assert_eq!(day.job(&job.id), hour);
    let week = chill.weekly_summary(at(0, 0).date_naive()).await.unwrap();
    assert_eq!(week.total.runs, 5);
    let yesterday = chill
        .daily_summary(at(0, 0).date_naive().pred_opt().unwrap())
        .await
        .unwrap();
    assert_eq!(yesterday.total.runs, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_job_failing_more_than_a_quarter_of_its_runs_raises_one_alert_per_window() {
    let w = World::new();
    let alerts = Arc::new(Alerts::default());
    let chill = w.engine_with(
        options("a")
            .with_metrics_interval(secs(60))
            .with_alert_rules(AlertRules::default().with_min_runs(4)),
        alerts.clone(),
    );
    let mut events = chill.subscribe();
    w.ai.script("bad", vec![server_error(), Step::ok("ok")]);
    w.ai.set_default(Step::ok("ok"));
    let bad = chill
        .create_job(retried_spec("bad", "*/5 * * * *", 0, 10))
        .await
        .unwrap();
    let good = chill.create_job(spec("good", "*/5 * * * *")).await.unwrap();
    w.ai.script(
        "bad",
        vec![
            server_error(),
            Step::ok("ok"),
            server_error(),
            Step::ok("ok"),
            Step::ok("ok"),
        ],
    );
    let handle = chill.start();
    w.run_to(at(50, 0)).await;
    handle.shutdown().await;
    let raised = alerts.0.lock().unwrap().clone();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(
        (raised[0].kind, raised[0].job_id),
        (AlertKind::ProblematicJob, Some(bad.id))
    );
    assert!(
        raised[0].message.contains("threshold 25%"),
        "{}",
        raised[0].message
    );
    assert!(
        drain(&mut events)
            .iter()
            .any(|e| matches!(e, Event::Alert(a) if a.job_id == Some(bad.id))),
        "the alert is on the event stream too"
    );
    let summary = chill.run_metrics_round().await.unwrap();
    assert_eq!(summary.job(&good.id).failures, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_job_is_paused_with_a_note_after_its_limit_of_consecutive_failures() {
    let w = World::new();
    let alerts = Arc::new(Alerts::default());
    let chill = w.engine_with(options("a"), alerts.clone());
    w.ai.set_default(server_error());
    let job = chill
        .create_job(JobSpec {
            retry_policy: retrying(0, 10),
            pause_after_failures: Some(3),
            ..spec("broken", "* * * * *")
        })
        .await
        .unwrap();
    let handle = chill.start();
    w.run_to(at(10, 0)).await;
    handle.shutdown().await;
    let paused = w.job(&job.id).await;
    assert!(!paused.enabled);
    assert_eq!(paused.consecutive_failures, 3);
    let note = paused.pause_note.unwrap();
    assert!(
        note.starts_with("paused by the engine after 3 consecutive failures"),
        "{note}"
    );
    assert_eq!(
        w.executions(&job.id).await.len(),
        3,
        "nothing runs once paused"
    );
    assert_eq!(alerts.kinds(), vec![AlertKind::JobPausedAfterFailures]);
}

// --- retention ------------------------------------------------------------------------------

/// Keeps what it is given, or refuses while `refuse` is set.
#[derive(Default)]
struct Archive {
    kept: Mutex<Vec<Execution>>,
    refuse: Mutex<bool>,
}

#[async_trait]
impl ArchiveSink for Archive {
    async fn archive(&self, executions: &[Execution]) -> Result<(), String> {
        if *self.refuse.lock().unwrap() {
            return Err("cold storage is down".into());
        }
        self.kept.lock().unwrap().extend_from_slice(executions);
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retention_archives_then_deletes_old_executions_in_batches_and_keeps_statistics() {
    let w = World::new();
    let archive = Arc::new(Archive::default());
    let chill = Chill::builder(w.store(), Arc::new(w.clock.clone()), w.ai.clone())
        .options(
            options("a")
                .with_retention(Some(Duration::from_secs(3_600)))
                .with_retention_batch(2)
                .with_retention_batches_per_round(2),
        )
        .archive(archive.clone())
        .build();
    w.ai.set_default(Step::ok("ok"));
    let job = chill
        .create_job(spec("kept", "*/10 * * * *"))
        .await
        .unwrap();
    let handle = chill.start();
    w.run_to(at(75, 0)).await;
    assert_eq!(w.executions(&job.id).await.len(), 7);
    // At 01:15 the executions created before 00:15 are older than an hour: 00:10 only.
    *archive.refuse.lock().unwrap() = true;
    assert_eq!(
        chill.run_retention().await.unwrap(),
        0,
        "a refused batch is not deleted"
    );
    assert_eq!(w.executions(&job.id).await.len(), 7);
    *archive.refuse.lock().unwrap() = false;
    assert_eq!(chill.run_retention().await.unwrap(), 1);
    w.run_to(at(105, 0)).await;
    // Now 00:20, 00:30 and 00:40 are old: two batches of 2 per round cover them.
    assert_eq!(chill.run_retention().await.unwrap(), 3);
    handle.shutdown().await;
    let left: Vec<_> = w
        .executions(&job.id)
        .await
        .iter()
        .map(|e| e.scheduled_for)
        .collect();
    assert_eq!(left, (5..=10).map(|i| at(i * 10, 0)).collect::<Vec<_>>());
    let archived: Vec<_> = archive
        .kept
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.scheduled_for)
        .collect();
    assert_eq!(archived, vec![at(10, 0), at(20, 0), at(30, 0), at(40, 0)]);
    assert_eq!(w.job(&job.id).await.total_runs, 10, "statistics are kept");
}

// --- budgets ---------------------------------------------------------------------------------

/// $1,000 and $2,000 per million tokens: a scripted success (10 in, 20 out) costs $0.05.
fn prices() -> PriceTable {
    PriceTable::default().with_default(ModelPrice::usd_per_mtok(1_000.0, 2_000.0))
}

const RUN_COST: u64 = 50_000;

#[tokio::test(flavor = "current_thread")]
async fn a_job_over_its_daily_budget_has_its_slots_skipped_until_the_next_day() {
    let w = World::new();
    let alerts = Arc::new(Alerts::default());
    let chill = w.engine_with(options("a").with_prices(prices()), alerts.clone());
    w.ai.set_default(Step::ok("ok"));
    let job = chill
        .create_job(JobSpec {
            budget: Some(Budget {
                daily_micro_usd: Some(2 * RUN_COST),
                monthly_micro_usd: None,
            }),
            ..spec("thrifty", "0 */6 * * *")
        })
        .await
        .unwrap();
    let handle = chill.start();
    w.run_to(at(18 * 60 + 30, 0)).await;
    match chill.trigger_job(&job.id).await {
        Err(Error::BudgetExceeded { reason, .. }) => {
            assert_eq!(reason, "the job's daily budget is spent")
        }
        other => panic!("expected the job's budget, got {other:?}"),
    }
    w.run_to(at(30 * 60 + 30, 0)).await;
    handle.shutdown().await;
    let skipped = Some("budget_exceeded".to_string());
    assert_eq!(
        w.outcomes(&job.id).await,
        vec![
            (at(6 * 60, 0), Success, None),
            (at(12 * 60, 0), Success, None),
            (at(18 * 60, 0), ExecutionStatus::Skipped, skipped),
            (at(24 * 60, 0), Success, None),
            (at(30 * 60, 0), Success, None),
        ]
    );
    assert_eq!(alerts.kinds(), vec![AlertKind::BudgetExceeded]);
    let spent = w.job(&job.id).await.spend;
    assert_eq!((spent.day, spent.day_micro_usd), (20260602, 2 * RUN_COST));
    assert_eq!((spent.month, spent.month_micro_usd), (202606, 4 * RUN_COST));
}

#[tokio::test(flavor = "current_thread")]
async fn the_global_budget_stops_every_job_and_refuses_manual_runs() {
    let w = World::new();
    let global = Budget {
        daily_micro_usd: Some(2 * RUN_COST),
        monthly_micro_usd: None,
    };
    let chill = w.engine_on(
        w.store(),
        options("a")
            .with_prices(prices())
            .with_global_budget(Some(global)),
    );
    w.ai.set_default(Step::ok("ok"));
    let a = chill.create_job(spec("a", "*/10 * * * *")).await.unwrap();
    let b = chill.create_job(spec("b", "*/10 * * * *")).await.unwrap();
    let handle = chill.start();
    w.run_to(at(35, 0)).await;
    match chill.trigger_job(&a.id).await {
        Err(Error::BudgetExceeded { reason, .. }) => {
            assert_eq!(reason, "the global daily budget is spent")
        }
        other => panic!("expected the global budget, got {other:?}"),
    }
    handle.shutdown().await;
    let mut runs = 0;
    let mut skipped = 0;
    for id in [a.id, b.id] {
        for e in w.executions(&id).await {
            match e.status {
                Success => runs += 1,
                ExecutionStatus::Skipped => {
                    assert_eq!(e.error_type.as_deref(), Some("budget_exceeded"));
                    skipped += 1
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
    assert_eq!(
        (runs, skipped),
        (2, 4),
        "6 slots in 35 minutes, 2 within the budget"
    );
    // A second instance learns the global spend from the store at its first metrics round.
    let other = w.engine_on(
        w.store(),
        options("b")
            .with_prices(prices())
            .with_global_budget(Some(global)),
    );
    other.run_metrics_round().await.unwrap();
    assert!(matches!(
        other.trigger_job(&b.id).await,
        Err(Error::BudgetExceeded { .. })
    ));
}
