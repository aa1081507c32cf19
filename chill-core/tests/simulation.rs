//! The seeded simulation: several engine instances over one store and one manual clock, with
//! AI failures of every class, store faults and outages, and instance crashes, over simulated
//! days; every run must keep the engine's invariants.
//!
//! Replay one seed: `CHILL_SIM_SEED=42 cargo test -p chill-core --features testkit --test
//! simulation -- --ignored replay_seed_from_env --nocapture`.

use chill_core::testkit::sim::{SimConfig, simulate};

/// Simulate every seed, on as many threads as there are cores (each seed runs on its own
/// current-thread runtime, so it stays deterministic).
fn run_seeds(seeds: std::ops::Range<u64>, config: impl Fn(u64) -> SimConfig + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (config, seeds) = (&config, seeds.clone());
                scope.spawn(move || {
                    let started = std::time::Instant::now();
                    let mut reports = Vec::new();
                    for seed in seeds.filter(|s| s % threads == t) {
                        reports.push(simulate(&config(seed)));
                        if reports.len() % 500 == 0 {
                            eprintln!(
                                "thread {t}: {} seeds done (last {seed}) in {:.0?}",
                                reports.len(),
                                started.elapsed()
                            );
                        }
                    }
                    reports
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a simulation thread panicked"))
            .collect()
    });
    reports.sort_by_key(|r| r.seed);
    let seeds_run = reports.len();
    let mut failures = Vec::new();
    let mut totals = (0usize, 0usize, 0usize, 0usize);
    for report in reports {
        let seed = report.seed;
        totals.0 += report.executions;
        totals.1 += report.retries;
        totals.2 += report.crashes;
        totals.3 += report.skipped;
        if !report.violations.is_empty() {
            eprintln!("{report}");
            failures.push(seed);
        }
    }
    eprintln!(
        "seeds {seeds_run}, executions {}, retries {}, crashes {}, skipped {}",
        totals.0, totals.1, totals.2, totals.3
    );
    assert!(failures.is_empty(), "seeds with violations: {failures:?}");
}

/// The CI run: 200 seeds, 3 instances, 2 simulated days each.
#[test]
fn two_hundred_seeds_keep_every_invariant() {
    run_seeds(0..200, SimConfig::new);
}

/// A run that must have exercised what it claims to: retries, skips, crashes and faults.
#[test]
fn a_simulation_exercises_failures_crashes_and_faults() {
    let reports: Vec<_> = (1000..1010).map(|s| simulate(&SimConfig::new(s))).collect();
    for r in &reports {
        assert!(r.violations.is_empty(), "{r}");
    }
    assert!(reports.iter().map(|r| r.successes).sum::<usize>() > 100);
    assert!(reports.iter().map(|r| r.retries).sum::<usize>() > 10);
    assert!(reports.iter().map(|r| r.skipped).sum::<usize>() > 10);
    assert!(reports.iter().map(|r| r.crashes).sum::<usize>() > 0);
    assert!(reports.iter().map(|r| r.store_faults).sum::<u64>() > 100);
}

/// The same seed replays the same run.
#[test]
fn a_seed_replays_identically() {
    let a = simulate(&SimConfig::new(77));
    let b = simulate(&SimConfig::new(77));
    assert_eq!(a, b);
}

/// The long run: 10,000 seeds. `cargo test --release -p chill-core --features testkit --test
/// simulation -- --ignored ten_thousand_seeds --nocapture`. `CHILL_SIM_SEEDS=2000..4000` runs a
/// part of them (so the run can be split), and each thread reports every 500 seeds it finishes.
#[test]
#[ignore = "long: 10,000 seeds"]
fn ten_thousand_seeds() {
    let seeds = std::env::var("CHILL_SIM_SEEDS").map_or(0..10_000, |range| {
        let (start, end) = range
            .split_once("..")
            .expect("CHILL_SIM_SEEDS is START..END");
        let start = start.parse().expect("CHILL_SIM_SEEDS: START is a number");
        let end = end.parse().expect("CHILL_SIM_SEEDS: END is a number");
        start..end
    });
    run_seeds(seeds, SimConfig::new);
}

/// Replay the seed in `CHILL_SIM_SEED`.
#[test]
#[ignore = "run by hand with CHILL_SIM_SEED"]
fn replay_seed_from_env() {
    let seed: u64 = std::env::var("CHILL_SIM_SEED")
        .expect("set CHILL_SIM_SEED")
        .parse()
        .expect("CHILL_SIM_SEED is a number");
    let report = simulate(&SimConfig::new(seed));
    eprintln!("{report}");
    assert!(report.violations.is_empty());
}
