//! Four engines on the system clock over one DynamoDB table: 200 jobs firing every second for
//! 20 seconds, with manual triggers and retries. Afterwards no slot was executed twice, none
//! was lost, and every job's statistics equal the tally of its executions. The test counts;
//! it asserts no timing. It prints how many slots ran and how many requests each execution
//! cost, which shows what the test server sustains (see the crate's README).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;
// The engine harness of the SQL store's multi-instance test (an AI that counts its calls, the
// exactly-once check), shared rather than copied.
#[path = "../../chill-store-sql/tests/common/engine.rs"]
mod engine;

use std::sync::Arc;
use std::time::Duration;

use chill_core::{Chill, Store, SystemClock};
use chill_store_dynamo::{DynamoOptions, RequestCounter};
use common::with_table;
use engine::{CountingAi, check, every_second, fast_options};

const ENGINES: usize = 4;
const JOBS: usize = 200;
const RUN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_table() {
    with_table("multi_instance", DynamoOptions::default(), |table| async move {
        let counter = RequestCounter::new();
        let ai = Arc::new(CountingAi::new(7));
        let mut engines = Vec::new();
        for n in 0..ENGINES {
            let options = table
                .options
                .clone()
                .with_request_counter(counter.clone());
            let store: Arc<dyn Store> = Arc::new(table.store_with(options).await);
            engines.push(Chill::new(
                store,
                Arc::new(SystemClock),
                ai.clone(),
                fast_options(&format!("engine-{n}")),
            ));
        }
        let mut jobs = Vec::new();
        for i in 0..JOBS {
            jobs.push(engines[i % ENGINES].create_job(every_second(i)).await.unwrap());
        }
        counter.reset();
        let handles: Vec<_> = engines.iter().map(Chill::start).collect();

        // Manual triggers through every engine while the schedule runs.
        let triggers = {
            let (engines, jobs) = (engines.clone(), jobs.clone());
            tokio::spawn(async move {
                let (mut started, mut refused) = (0u32, 0u32);
                let deadline = tokio::time::Instant::now() + RUN;
                let mut n = 0usize;
                while tokio::time::Instant::now() < deadline {
                    let engine = &engines[n % ENGINES];
                    let job = &jobs[(n * 37) % JOBS];
                    match engine.trigger_job(&job.id).await {
                        Ok(_) => started += 1,
                        Err(_) => refused += 1,
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
                (started, refused)
            })
        };
        tokio::time::sleep(RUN).await;
        let (manual_started, manual_refused) = triggers.await.unwrap();
        let stops: Vec<_> = handles
            .into_iter()
            .map(|h| tokio::spawn(h.shutdown()))
            .collect();
        for s in stops {
            s.await.unwrap();
        }
        let requests = counter.counts();
        let (writes, reads) = (counter.writes(), counter.reads());

        let tally = check(engines[0].store().as_ref(), &jobs, &ai).await;
        let executions = tally.executions.max(1) as f64;
        println!(
            "DynamoDB (moto): {ENGINES} engines, {} jobs, {} s: {} slots recorded, {} executions ({} successes, {} retries, {} manual of {manual_started} started / {manual_refused} refused, {} skipped, {} still running), {} AI calls",
            tally.jobs,
            RUN.as_secs(),
            tally.slots,
            tally.executions,
            tally.successes,
            tally.retries,
            tally.manual,
            tally.skipped,
            tally.running,
            ai.calls().len()
        );
        println!(
            "requests while running: {writes} writes ({:.2} per execution), {reads} reads ({:.2} per execution): {requests:?}",
            writes as f64 / executions,
            reads as f64 / executions,
        );
        tally.assert_clean("DynamoDB");
        assert_eq!(
            tally.manual, manual_started as usize,
            "every started manual run is recorded"
        );
        // Counts that show the run did something, not how fast: at least as many slots as
        // jobs were recorded (run, or skipped when the server fell behind). How many more
        // depends on how fast the test server is (850 to 1,776 of 4,000 seen here on moto).
        assert!(
            tally.slots >= JOBS,
            "only {} slots recorded",
            tally.slots
        );
        assert!(
            tally.retries > 0 && tally.manual > 0,
            "no retries or manual runs"
        );
    })
    .await;
}
