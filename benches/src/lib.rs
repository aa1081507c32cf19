//! Shared inputs of the ChillScheduler benchmarks: the schedule cases, each written in the syntax
//! of every library compared (chill-core, `cron` 0.17, `croner` 4), the start instants that
//! `next_after` is timed from, and a heap counter for the bytes a compiled schedule keeps.
//!
//! The bench targets (`benches/schedule.rs`, `benches/schedule_memory.rs`) and the tests use
//! these, so every library sees the same inputs. The [`engine`] module holds what the engine
//! benchmarks share (`benches/engine.rs`, `examples/engine_profile.rs`, `tests/engine_setup.rs`),
//! the [`sql`] module what the SQL store benchmarks share (`benches/sql_store.rs`,
//! `examples/sql_profile.rs`).

pub mod engine;
pub mod sql;

use std::alloc::System;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use stats_alloc::{Region, StatsAlloc};

/// One schedule, as each library spells it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Short name, used as the criterion group name.
    pub name: &'static str,
    /// The expression for chill-core and croner (5-field Unix cron).
    pub expr: &'static str,
    /// The same schedule for `cron` 0.17, which needs a seconds field (6 or 7 fields).
    pub cron_expr: &'static str,
    /// IANA time zone; `None` is UTC.
    pub tz: Option<&'static str>,
}

impl Case {
    /// The time zone, `UTC` when none is set.
    pub fn zone(&self) -> Tz {
        self.tz
            .map_or(Tz::UTC, |name| name.parse().unwrap_or(Tz::UTC))
    }

    /// Parse with chill-core, in the case's zone.
    pub fn chill(&self) -> chill_core::Schedule {
        let parsed = match self.tz {
            None => chill_core::Schedule::parse(self.expr),
            Some(tz) => chill_core::Schedule::parse_in(self.expr, tz),
        };
        parsed.unwrap_or_else(|e| panic!("chill-core rejects {:?}: {e}", self.expr))
    }

    /// Parse with `cron` 0.17.
    pub fn cron(&self) -> cron::Schedule {
        self.cron_expr
            .parse()
            .unwrap_or_else(|e| panic!("cron rejects {:?}: {e}", self.cron_expr))
    }

    /// Parse with `croner` 4.
    pub fn croner(&self) -> croner::Cron {
        self.expr
            .parse()
            .unwrap_or_else(|e| panic!("croner rejects {:?}: {e}", self.expr))
    }
}

/// The benchmarked schedules.
pub const CASES: [Case; 4] = [
    Case {
        name: "every_5_min_utc",
        expr: "*/5 * * * *",
        cron_expr: "0 */5 * * * *",
        tz: None,
    },
    Case {
        name: "weekdays_9am_utc",
        expr: "0 9 * * MON-FRI",
        cron_expr: "0 0 9 * * MON-FRI",
        tz: None,
    },
    Case {
        name: "feb_29_utc",
        expr: "0 0 29 2 *",
        cron_expr: "0 0 0 29 2 *",
        tz: None,
    },
    Case {
        name: "daily_0230_new_york",
        expr: "30 2 * * *",
        cron_expr: "0 30 2 * * *",
        tz: Some("America/New_York"),
    },
];

/// How many start instants [`start_instants`] returns (a power of two, so a benchmark can cycle
/// through them with a mask).
pub const STARTS: usize = 64;

/// [`STARTS`] instants spread over 2026, in order: roughly every 5.7 days at varied times of
/// day, with some replaced by the hard spots: just before and inside New York's DST changes
/// (2026-03-08 and 2026-11-01), on the last second of months (including February), and at the
/// end of the year.
pub fn start_instants() -> Vec<DateTime<Utc>> {
    let utc = |y, mo, d, h, mi, s| {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
    };
    let year_start = utc(2026, 1, 1, 0, 0, 0).timestamp();
    let step = 365 * 86_400 / STARTS as i64;
    let mut starts: Vec<DateTime<Utc>> = (0..STARTS as i64)
        .map(|k| {
            // A time of day that wanders (7919 is prime) so that no two starts share it.
            let t = year_start + k * step + (k * 7919) % 86_400;
            DateTime::from_timestamp(t, 0).unwrap_or(DateTime::UNIX_EPOCH)
        })
        .collect();
    let hard = [
        utc(2026, 1, 31, 23, 59, 59),
        utc(2026, 2, 28, 23, 59, 59),
        utc(2026, 3, 8, 6, 45, 0), // 01:45 EST, before the spring-forward gap
        utc(2026, 3, 8, 7, 0, 0),  // 03:00 EDT, the first instant after the gap
        utc(2026, 4, 30, 23, 59, 59),
        utc(2026, 6, 30, 23, 59, 59),
        utc(2026, 9, 30, 23, 59, 59),
        utc(2026, 11, 1, 5, 45, 0), // 01:45 EDT, before the fall-back
        utc(2026, 11, 1, 6, 15, 0), // 01:15 EST, the repeated hour
        utc(2026, 12, 31, 23, 59, 59),
    ];
    // Replace evenly spaced entries so the spread over the year stays.
    for (i, t) in hard.into_iter().enumerate() {
        starts[i * STARTS / hard.len() + 3] = t;
    }
    starts.sort();
    starts
}

/// The start instants in a zone, for the peers that take the zone with the start time.
pub fn starts_in(tz: Tz) -> Vec<DateTime<Tz>> {
    start_instants()
        .iter()
        .map(|t| t.with_timezone(&tz))
        .collect()
}

/// What building a value did to the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapUse {
    /// Bytes allocated minus bytes freed while building, with the value still alive: the heap
    /// the value keeps.
    pub retained: isize,
    /// Allocations (and reallocations) made while building, whether kept or freed.
    pub allocations: usize,
}

/// The heap use of building a value with `build`. `alloc` must be the binary's global
/// allocator. Returns the value (drop it after this call) and its [`HeapUse`].
pub fn heap_use<T>(alloc: &StatsAlloc<System>, build: impl FnOnce() -> T) -> (T, HeapUse) {
    let region = Region::new(alloc);
    let value = build();
    let change = region.change();
    // A reallocation's growth counts in `bytes_allocated` and its shrinking in
    // `bytes_deallocated` already.
    let retained = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    let allocations = change.allocations + change.reallocations;
    (
        value,
        HeapUse {
            retained,
            allocations,
        },
    )
}
