//! Prints the next runs of a few schedules, or of the expression given on the command line.
//!
//! ```sh
//! cargo run -p chill-core --example next_runs
//! cargo run -p chill-core --example next_runs -- "30 2 * * *" America/New_York
//! ```

use std::io::Write;

use chill_core::Schedule;
use chrono::Utc;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let examples: Vec<(String, String)> = match args.as_slice() {
        [] => [
            ("*/5 * * * *", "UTC"),
            ("0 9 * * MON-FRI", "Europe/Berlin"),
            ("30 2 * * *", "America/New_York"),
            ("cron(0 12 ? * 6L *)", "UTC"),
            ("rate(90 minutes)", "UTC"),
        ]
        .iter()
        .map(|(e, z)| (e.to_string(), z.to_string()))
        .collect(),
        [expr] => vec![(expr.clone(), "UTC".into())],
        [expr, tz, ..] => vec![(expr.clone(), tz.clone())],
    };
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    for (expr, tz) in examples {
        match Schedule::parse_in(&expr, &tz) {
            Ok(schedule) => {
                writeln!(out, "{expr}  ({tz})")?;
                for run in schedule.upcoming(now).take(5) {
                    let local = run.with_timezone(&schedule.timezone());
                    writeln!(
                        out,
                        "  {}  = {}",
                        run.to_rfc3339(),
                        local.format("%a %F %T %Z")
                    )?;
                }
            }
            Err(e) => writeln!(out, "{expr}  ({tz}): error: {e}")?,
        }
    }
    Ok(())
}
