//! Runs one simulation seed and prints the report (needs feature `testkit`).
//!
//! `cargo run --release -p chill-core --features testkit --example sim_one -- SEED [DAYS]`

use std::io::Write;

use chill_core::testkit::sim::{SimConfig, simulate};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let days = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let started = std::time::Instant::now();
    let report = simulate(&SimConfig::new(seed).with_days(days));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}")?;
    writeln!(out, "took {:?}", started.elapsed())?;
    Ok(())
}
