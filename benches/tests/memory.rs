//! The memory target: a compiled chill-core schedule takes at most 128 bytes, with no
//! heap. A plain binary (no test harness), so that no other thread allocates while it counts.
#![allow(clippy::print_stdout)]

use std::alloc::System;
use std::mem::size_of;

use chill_benches::{CASES, heap_use};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let size = size_of::<chill_core::Schedule>();
    assert!(size <= 128, "size_of::<Schedule>() is {size} bytes");
    drop(CASES.map(|case| case.chill())); // warm up
    for case in CASES {
        let (_schedule, heap) = heap_use(GLOBAL, || case.chill());
        assert_eq!(heap.retained, 0, "{}: heap kept after parse", case.expr);
    }
    println!("{} passed, 0 failed", CASES.len() + 1);
}
