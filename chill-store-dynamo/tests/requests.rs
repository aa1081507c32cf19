//! Requests per scheduled execution in steady state, counted by the SDK interceptor: one
//! engine on a manual clock runs 100 jobs firing every second; after a warm-up, ten seconds
//! of slots are counted. Target: at most 3 writes and 2 reads per execution.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chill_core::testkit::{ScriptedAi, Step};
use chill_core::{Chill, ChillOptions, Event, JobSpec, ManualClock, Store};
use chill_store_dynamo::{DynamoOptions, RequestCounter};
use chrono::{TimeZone, Utc};
use common::with_table;

const JOBS: usize = 100;
const WARM_UP: usize = 3;
const COUNTED: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_scheduled_execution() {
    with_table("requests", DynamoOptions::default(), |table| async move {
        let counter = RequestCounter::new();
        let store: Arc<dyn Store> = Arc::new(
            table
                .store_with(table.options.clone().with_request_counter(counter.clone()))
                .await,
        );
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2030, 3, 4, 5, 0, 0).unwrap());
        let ai = ScriptedAi::new(Arc::new(clock.clone()));
        ai.set_default(Step::ok("done"));
        let options = ChillOptions::default()
            .with_instance_id("counted")
            .with_max_concurrent(4 * JOBS)
            .with_claim_batch(4 * JOBS)
            .with_seed(Some(1));
        let chill = Chill::new(store, Arc::new(clock.clone()), Arc::new(ai), options);
        for i in 0..JOBS {
            chill
                .create_job(JobSpec::new(
                    format!("job {i}"),
                    "count my requests",
                    "* * * * * *",
                ))
                .await
                .unwrap();
        }
        let mut events = chill.subscribe();
        let engine = chill.start();
        let mut finished = 0usize;
        let mut counted = (0u64, 0u64, 0usize);
        for second in 0..WARM_UP + COUNTED {
            if second == WARM_UP {
                counter.reset();
                finished = 0;
            }
            clock.advance(Duration::from_secs(1)).await;
            // Wait (in real time, generously) for this second's slots to finish.
            let target = JOBS * (second + 1 - if second >= WARM_UP { WARM_UP } else { 0 });
            while finished < target {
                match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
                    Ok(Ok(Event::ExecutionFinished(_))) => finished += 1,
                    Ok(Ok(_)) => {}
                    other => panic!("waiting for executions to finish: {other:?}"),
                }
            }
            if second + 1 == WARM_UP + COUNTED {
                counted = (counter.writes(), counter.reads(), finished);
            }
        }
        let all = counter.counts();
        engine.shutdown().await;
        let (writes, reads, executions) = counted;
        let per = |n: u64| n as f64 / executions as f64;
        println!(
            "{executions} scheduled executions: {writes} writes ({:.2} each), {reads} reads ({:.2} each); by operation: {all:?}",
            per(writes),
            per(reads)
        );
        assert_eq!(executions, JOBS * COUNTED);
        assert!(
            per(writes) <= 3.0,
            "{:.2} writes per scheduled execution (target at most 3): {all:?}",
            per(writes)
        );
        assert!(
            per(reads) <= 2.0,
            "{:.2} reads per scheduled execution (target at most 2): {all:?}",
            per(reads)
        );
    })
    .await;
}
