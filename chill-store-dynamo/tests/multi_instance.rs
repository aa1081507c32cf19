//! Four engines on the system clock over one DynamoDB table: 200 jobs firing every second for
//! 20 seconds (their schedule window ends then), with manual triggers and retries, and the
//! engines kept running until every slot is recorded, however long the test server takes.
//! Afterwards every slot has exactly one record (run, or skipped with a reason), none ran
//! twice, and every job's statistics equal the tally of its executions. The test counts; it
//! asserts no timing. It prints how many slots ran and how many requests each execution cost,
//! which shows what the test server sustains (see the README). The harness is the testkit's
//! `multi_instance`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chill_core::Store;
use chill_core::testkit::multi_instance::MultiInstance;
use chill_store_dynamo::{DynamoOptions, RequestCounter};
use common::with_table;

const ENGINES: usize = 4;

/// How long the engines may take to record every slot after the window end. moto answers
/// every query of a global secondary index by reading the whole table, so each poll slows as
/// the executions pile up: 175 s and 216 s were measured here (over 100 requests a second at
/// first, fewer than 10 at the end), more than the harness's default of 180 s allows for.
const DRAIN_DEADLINE: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_table() {
    with_table("multi_instance", DynamoOptions::default(), |table| async move {
        let counter = RequestCounter::new();
        let mut stores: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..ENGINES {
            let options = table
                .options
                .clone()
                .with_request_counter(counter.clone());
            stores.push(Arc::new(table.store_with(options).await));
        }
        // The run's own reads (waiting for the engines, the check) are not counted.
        let observer: Arc<dyn Store> = Arc::new(table.store().await);
        let fleet = MultiInstance::new()
            .with_drain_deadline(DRAIN_DEADLINE)
            .prepare(stores, observer)
            .await;
        counter.reset();
        let report = fleet.run().await;
        let requests = counter.counts();
        let (writes, reads) = (counter.writes(), counter.reads());

        let executions = report.tally.executions.max(1) as f64;
        println!("DynamoDB (moto): {report}");
        println!(
            "requests from the engines' start to their stop: {writes} writes ({:.2} per execution), {reads} reads ({:.2} per execution): {requests:?}",
            writes as f64 / executions,
            reads as f64 / executions,
        );
        report.assert_clean("DynamoDB");
        let t = &report.tally;
        assert_eq!(t.slots, t.expected_slots, "every slot recorded");
        assert!(
            t.retries > 0 && t.manual > 0,
            "no retries or manual runs"
        );
    })
    .await;
}
