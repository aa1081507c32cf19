//! Four engines on the system clock over one database: 200 jobs firing every second for 20
//! seconds, with manual triggers and retries. Afterwards no slot was executed twice, none was
//! lost, and every job's statistics equal the tally of its executions. The test counts; it
//! asserts no timing.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chill_core::{Chill, Store, SystemClock};
use common::engine::{CountingAi, check, every_second, fast_options};
use common::{Kind, with_db};

const ENGINES: usize = 4;
const JOBS: usize = 200;
const RUN: Duration = Duration::from_secs(20);

/// One multi-instance test at a time in this binary: each keeps the machine busy.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn four_engines(kind: Kind) {
    let _serial = SERIAL.lock().await;
    with_db(kind, "multi_instance", move |db| async move {
        let ai = Arc::new(CountingAi::new(7));
        let mut engines = Vec::new();
        for n in 0..ENGINES {
            let store: Arc<dyn Store> = Arc::new(db.store().await);
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

        let tally = check(engines[0].store().as_ref(), &jobs, &ai).await;
        println!(
            "{kind:?}: {ENGINES} engines, {} jobs: {} slots recorded, {} executions ({} successes, {} retries, {} manual of {manual_started} started / {manual_refused} refused, {} skipped, {} still running), {} AI calls",
            tally.jobs,
            tally.slots,
            tally.executions,
            tally.successes,
            tally.retries,
            tally.manual,
            tally.skipped,
            tally.running,
            ai.calls().len()
        );
        tally.assert_clean(kind);
        assert_eq!(tally.manual, manual_started as usize, "every started manual run is recorded");
        // Counts that show the run did something (not timings): most slots of 20 seconds ran.
        assert!(tally.slots >= JOBS * 5, "{kind:?}: only {} slots recorded", tally.slots);
        assert!(tally.retries > 0 && tally.manual > 0, "{kind:?}: no retries or manual runs");
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_sqlite_file() {
    four_engines(Kind::SqliteFile).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_postgres_database() {
    four_engines(Kind::Postgres).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_engines_on_one_mysql_database() {
    four_engines(Kind::MySql).await;
}
