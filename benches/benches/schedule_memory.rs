//! Bytes per compiled schedule: `size_of` the schedule value plus the heap bytes it keeps after
//! parsing, for chill-core, `cron` 0.17 and `croner` 4 on the benchmark cases. Prints a
//! Markdown table.
//!
//! A counting global allocator wraps the system one; the heap count is the bytes allocated
//! during one parse minus the bytes freed, with the parsed value alive. Each library parses every
//! case once first, so lazily built statics (`cron` keeps the "every value" sets of `*` fields
//! in them) are not charged to the measured parse.
//!
//! Run with `cargo bench -p chill-benches --bench schedule_memory`.
#![allow(clippy::print_stdout)]

use std::alloc::System;
use std::mem::size_of;

use chill_benches::{CASES, HeapUse, heap_use};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    // Warm up: lazily built statics, the time zone database, the allocator itself.
    for case in CASES {
        drop((case.chill(), case.cron(), case.croner()));
    }
    let sizes = [
        size_of::<chill_core::Schedule>(),
        size_of::<cron::Schedule>(),
        size_of::<croner::Cron>(),
    ];
    println!("Bytes per compiled schedule: total (size_of + heap kept), allocations during parse");
    println!();
    println!("| case | chill-core | cron 0.17 | croner 4 |");
    println!("|---|---|---|---|");
    for case in CASES {
        let (chill, a) = heap_use(GLOBAL, || case.chill());
        let (cron, b) = heap_use(GLOBAL, || case.cron());
        let (croner, c) = heap_use(GLOBAL, || case.croner());
        let cell = |size: usize, heap: HeapUse| {
            format!(
                "{} ({size} + {}), {} allocs",
                size as isize + heap.retained,
                heap.retained,
                heap.allocations
            )
        };
        println!(
            "| `{}`{} | {} | {} | {} |",
            case.expr,
            case.tz.map(|tz| format!(" in {tz}")).unwrap_or_default(),
            cell(sizes[0], a),
            cell(sizes[1], b),
            cell(sizes[2], c),
        );
        drop((chill, cron, croner));
    }
}
