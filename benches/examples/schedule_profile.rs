//! A driver for profilers (callgrind, perf): runs one operation of chill-core on one benchmark
//! case in a loop, on the same inputs as the `schedule` bench.
//!
//! ```sh
//! cargo build --profile bench -p chill-benches --example schedule_profile
//! valgrind --tool=callgrind target/release/examples/schedule_profile next_after daily_0230_new_york 100000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Arguments: `parse` or `next_after`, a case name (see `chill_benches::CASES`), and the number
//! of iterations (default 100000).

use std::hint::black_box;
use std::process::ExitCode;

use chill_benches::{CASES, STARTS, start_instants};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(op), Some(name)) = (args.first(), args.get(1)) else {
        eprintln!("usage: schedule_profile parse|next_after CASE [ITERATIONS]");
        return ExitCode::FAILURE;
    };
    let Some(case) = CASES.iter().find(|c| c.name == name.as_str()) else {
        eprintln!("unknown case {name}");
        return ExitCode::FAILURE;
    };
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    match op.as_str() {
        "parse" => {
            for _ in 0..n {
                black_box(match case.tz {
                    None => chill_core::Schedule::parse(black_box(case.expr)),
                    Some(tz) => chill_core::Schedule::parse_in(black_box(case.expr), tz),
                })
                .ok();
            }
        }
        "next_after" => {
            let schedule = case.chill();
            let starts = start_instants();
            for i in 0..n {
                black_box(schedule.next_after(black_box(starts[i % STARTS])));
            }
        }
        _ => {
            eprintln!("unknown operation {op}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
