//! A compiled schedule owns no heap memory, and computing next runs allocates nothing: cloning a
//! schedule and calling `next_after` in UTC and in zones (across DST transitions, for every
//! expression form and DST policy) is counted by a counting global allocator.

// Helpers outside `#[test]` functions unwrap as the tests do (clippy.toml allows it there).
#![allow(clippy::unwrap_used)]

use chill_core::{DstPolicy, RepeatedTime, Schedule, SkippedTime};
use chrono::{TimeZone, Utc};

#[test]
fn next_after_and_clone_do_not_allocate() {
    let other = DstPolicy {
        repeated: RepeatedTime::Twice,
        skipped: SkippedTime::Skip,
    };
    let schedules: Vec<Schedule> = [
        ("*/15 * * * *", "UTC"),
        ("30 2 * * *", "America/New_York"),
        ("30 1 * * *", "America/New_York"),
        ("*/7 * * * * *", "Europe/Berlin"),
        ("0 0 12 ? * MON#2,5L 2026-2199", "Australia/Lord_Howe"),
        ("0 0 LW,15W * *", "Pacific/Auckland"),
        ("cron(0/10 * ? * 2-6 *)", "Asia/Kathmandu"),
        ("rate(7 minutes)", "Europe/London"),
        ("at(2026-11-01T01:30:00)", "America/New_York"),
        ("at(2026-03-08T02:30:00)", "America/New_York"),
    ]
    .iter()
    .flat_map(|(expr, tz)| {
        let s = Schedule::parse_in(expr, tz).unwrap();
        [s.clone(), s.with_dst_policy(other)]
    })
    .collect();
    let starts: Vec<_> = [(2026, 3, 8, 6), (2026, 10, 25, 0), (2026, 11, 1, 5)]
        .iter()
        .map(|&(y, m, d, h)| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap())
        .collect();
    let mut sink = Vec::with_capacity(schedules.len() * starts.len() * 20);

    let info = allocation_counter::measure(|| {
        for s in &schedules {
            let copy = s.clone();
            for &start in &starts {
                sink.extend(copy.upcoming(start).take(20));
            }
        }
    });

    assert_eq!(info.count_total, 0, "next_after or clone allocated");
    assert!(
        sink.len() > 500,
        "the schedules produced runs: {}",
        sink.len()
    );
}
