//! Fuzz target `parse`: any string goes to `Schedule::parse_in`, in UTC or a zone with daylight
//! saving time picked by the first byte. Parsing must never panic, an error must have a message,
//! and a schedule that parses must give strictly increasing runs from several starts (around DST
//! transitions among them), each of which `fires_at` confirms.
//!
//! ```sh
//! cd fuzz && cargo +nightly fuzz run parse -- -dict=parse.dict -max_total_time=600
//! ```

#![no_main]

use chill_core::Schedule;
use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

const ZONES: [&str; 8] = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "America/Santiago",
    "Asia/Kathmandu",
    "Pacific/Apia",
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(expr) = std::str::from_utf8(rest) else {
        return;
    };
    let zone = ZONES[usize::from(first) % ZONES.len()];
    let schedule = match Schedule::parse_in(expr, zone) {
        Ok(schedule) => schedule,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            // UTC and a zone accept the same expressions.
            assert!(
                Schedule::parse(expr).is_err(),
                "{expr:?} parses in UTC only"
            );
            return;
        }
    };
    assert!(
        Schedule::parse(expr).is_ok(),
        "{expr:?} parses in {zone} only"
    );
    // A start derived from the input, and starts just before 2026's transitions.
    let derived = 1_600_000_000 + i64::from(first) * 7_919_993 + rest.len() as i64 * 86_399;
    let starts = [
        DateTime::from_timestamp(derived, 0).expect("in range"),
        Utc.with_ymd_and_hms(2026, 3, 8, 5, 59, 59).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 28, 23, 30, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 10, 24, 23, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 1, 4, 59, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 4, 4, 13, 0, 0).unwrap(),
    ];
    for start in starts {
        let mut previous = start;
        for _ in 0..4 {
            let Some(next) = schedule.next_after(previous) else {
                break;
            };
            assert!(
                next > previous,
                "{expr:?} in {zone}: {next} is not after {previous}"
            );
            assert!(
                schedule.fires_at(next),
                "{expr:?} in {zone}: fires_at({next}) is false"
            );
            previous = next;
        }
    }
});
