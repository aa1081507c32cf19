//! The engine benchmark's setup does what the benchmark assumes: each of the K due jobs runs
//! exactly once, soon after the engine starts, and then has no slot due before 2099.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chill_benches::engine::{InstantAi, due_jobs, store_with};
use chill_core::{Chill, ChillOptions, Event, ExecutionStatus, Store, SystemClock};
use chrono::{Datelike, SubsecRound, Utc};

#[tokio::test(flavor = "current_thread")]
async fn every_due_job_runs_exactly_once() {
    const K: usize = 300;
    let due = Utc::now().trunc_subsecs(3);
    let jobs = due_jobs(K, due);
    let store = store_with(&jobs).await.unwrap();
    let options = ChillOptions::default()
        .with_seed(Some(1))
        .with_event_capacity(4 * K);
    let chill = Chill::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(InstantAi),
        options,
    );
    let mut events = chill.subscribe();
    let handle = chill.start();
    let mut runs: HashMap<_, usize> = HashMap::new();
    let counted = tokio::time::timeout(Duration::from_secs(20), async {
        while runs.values().sum::<usize>() < K {
            if let Ok(Event::ExecutionFinished(e)) = events.recv().await {
                assert_eq!(e.status, ExecutionStatus::Success);
                assert_eq!(e.scheduled_for, due);
                *runs.entry(e.job_id).or_default() += 1;
            }
        }
    })
    .await;
    assert!(counted.is_ok(), "only {} of {K} ran", runs.len());
    // Nothing else becomes due during the benchmark.
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.shutdown().await;
    assert!(events.try_recv().is_none_or(|e| !matches!(
        e,
        Ok(Event::ExecutionStarted(_) | Event::ExecutionFinished(_))
    )));
    assert_eq!(runs.len(), K);
    assert!(runs.values().all(|&n| n == 1));
    for job in &jobs {
        let stored = store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!(stored.total_runs, 1);
        assert_eq!(stored.next_run_at.map(|t| t.year()), Some(2099));
    }
    assert_eq!(store.execution_count(), K);
}
