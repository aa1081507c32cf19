//! Hand-written daylight-saving cases: both transitions of 2026 in New York and Berlin (and a few
//! more zones), fixed-hour and wildcard-hour jobs, start times inside the repeated hour, and the
//! `DstPolicy` overrides.
//!
//! The 2026 transitions used:
//! - America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT ->
//!   01:00 EST (06:00 UTC), so 01:00-01:59 happens at 05:00-05:59 UTC and again at 06:00-06:59.
//! - Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST ->
//!   02:00 CET (01:00 UTC), so 02:00-02:59 happens at 00:00-00:59 UTC and again at 01:00-01:59.

// Helpers outside `#[test]` functions unwrap as the tests do (clippy.toml allows it there).
#![allow(clippy::unwrap_used)]

mod common;

use chill_core::{DstPolicy, RepeatedTime, Schedule, SkippedTime};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn schedule(expr: &str, tz: &str) -> Schedule {
    Schedule::parse_in(expr, tz).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn with_policy(expr: &str, tz: &str, repeated: RepeatedTime, skipped: SkippedTime) -> Schedule {
    schedule(expr, tz).with_dst_policy(DstPolicy { repeated, skipped })
}

/// Runs strictly after `after` and up to `until`, as local times with their offsets.
fn local_runs(s: &Schedule, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<String> {
    let zone = s.timezone();
    s.upcoming(after)
        .take_while(|t| *t <= until)
        .map(|t| t.with_timezone(&zone).format("%m-%d %H:%M%:z").to_string())
        .collect()
}

/// Runs strictly after `after` and up to `until`, as UTC instants.
fn utc_runs(s: &Schedule, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    s.upcoming(after).take_while(|t| *t <= until).collect()
}

/// Every `step` minutes from `first` to `last` inclusive.
fn every(first: DateTime<Utc>, last: DateTime<Utc>, step: i64) -> Vec<DateTime<Utc>> {
    std::iter::successors(Some(first), |t| Some(*t + TimeDelta::minutes(step)))
        .take_while(|t| *t <= last)
        .collect()
}

// --- New York --------------------------------------------------------------------------------

#[test]
fn new_york_fixed_hour_inside_the_gap_fires_once_after_it() {
    let s = schedule("30 2 * * *", "America/New_York");
    assert_eq!(
        local_runs(&s, utc(2026, 3, 6, 12, 0), utc(2026, 3, 10, 0, 0)),
        [
            "03-07 02:30-05:00",
            "03-08 03:00-04:00",
            "03-09 02:30-04:00"
        ]
    );
    assert!(s.fires_at(utc(2026, 3, 8, 7, 0)));
    // From inside the gap's real time span: the gap end is still ahead until it passes.
    assert_eq!(
        s.next_after(utc(2026, 3, 8, 6, 59)),
        Some(utc(2026, 3, 8, 7, 0))
    );
    assert_eq!(
        s.next_after(utc(2026, 3, 8, 7, 0)),
        Some(utc(2026, 3, 9, 6, 30))
    );
}

#[test]
fn new_york_fixed_hour_inside_the_repeated_hour_fires_once() {
    let s = schedule("30 1 * * *", "America/New_York");
    assert_eq!(
        local_runs(&s, utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0)),
        [
            "10-31 01:30-04:00",
            "11-01 01:30-04:00",
            "11-02 01:30-05:00"
        ]
    );
    // A start inside the first occurrence, before and after the run.
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 5, 10)),
        Some(utc(2026, 11, 1, 5, 30))
    );
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 5, 40)),
        Some(utc(2026, 11, 2, 6, 30))
    );
    // A start inside the second occurrence, before and after 01:30 EST: no second run.
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 6, 10)),
        Some(utc(2026, 11, 2, 6, 30))
    );
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 6, 40)),
        Some(utc(2026, 11, 2, 6, 30))
    );
    // Every second of the fixed hour: the first occurrence only, also from the second one.
    let s = schedule("* * 1 * * *", "America/New_York");
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 6, 0)),
        Some(utc(2026, 11, 2, 6, 0))
    );
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 5, 59) + TimeDelta::seconds(58)),
        Some(utc(2026, 11, 1, 5, 59) + TimeDelta::seconds(59))
    );
}

#[test]
fn new_york_wildcard_hour_keeps_a_fifteen_minute_rhythm() {
    let s = schedule("*/15 * * * *", "America/New_York");
    // Spring forward: 01:45 EST, then 03:00 EDT, fifteen real minutes later.
    assert_eq!(
        utc_runs(&s, utc(2026, 3, 8, 5, 50), utc(2026, 3, 8, 8, 0)),
        every(utc(2026, 3, 8, 6, 0), utc(2026, 3, 8, 8, 0), 15)
    );
    assert_eq!(
        local_runs(&s, utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 15)),
        [
            "03-08 01:45-05:00",
            "03-08 03:00-04:00",
            "03-08 03:15-04:00"
        ]
    );
    // Fall back: both occurrences of 01:00-01:45.
    assert_eq!(
        utc_runs(&s, utc(2026, 11, 1, 4, 50), utc(2026, 11, 1, 7, 30)),
        every(utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 7, 30), 15)
    );
    assert_eq!(
        local_runs(&s, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7, 0)),
        [
            "11-01 01:45-04:00",
            "11-01 01:00-05:00",
            "11-01 01:15-05:00",
            "11-01 01:30-05:00",
            "11-01 01:45-05:00",
            "11-01 02:00-05:00"
        ]
    );
}

#[test]
fn new_york_start_inside_either_occurrence_of_the_repeated_hour() {
    let s = schedule("*/15 * * * *", "America/New_York");
    // 01:20 EDT (05:20 UTC) and 01:20 EST (06:20 UTC): the next quarter in the same occurrence.
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 5, 20)),
        Some(utc(2026, 11, 1, 5, 30))
    );
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 6, 20)),
        Some(utc(2026, 11, 1, 6, 30))
    );
    // 01:59:59 EDT: the next run is 01:00 EST, one second later.
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 5, 59) + TimeDelta::seconds(59)),
        Some(utc(2026, 11, 1, 6, 0))
    );
    // An hourly job on the hour: 01:00 EDT and 01:00 EST.
    let hourly = schedule("0 * * * *", "America/New_York");
    assert_eq!(
        local_runs(&hourly, utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 8, 0)),
        [
            "11-01 00:00-04:00",
            "11-01 01:00-04:00",
            "11-01 01:00-05:00",
            "11-01 02:00-05:00",
            "11-01 03:00-05:00"
        ]
    );
}

#[test]
fn a_fixed_hour_with_a_minute_step_fires_in_the_first_occurrence_only() {
    // The hour field decides: 1 is fixed, so the repeated 01:xx runs once.
    let s = schedule("*/20 1 * * *", "America/New_York");
    assert_eq!(
        local_runs(&s, utc(2026, 11, 1, 4, 0), utc(2026, 11, 2, 7, 0)),
        [
            "11-01 01:00-04:00",
            "11-01 01:20-04:00",
            "11-01 01:40-04:00",
            "11-02 01:00-05:00",
            "11-02 01:20-05:00",
            "11-02 01:40-05:00"
        ]
    );
    // A range of hours is not a wildcard either.
    let s = schedule("0 0-3 * * *", "America/New_York");
    assert_eq!(
        local_runs(&s, utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 9, 0)),
        [
            "11-01 00:00-04:00",
            "11-01 01:00-04:00",
            "11-01 02:00-05:00",
            "11-01 03:00-05:00"
        ]
    );
    // A stepped hour is: the same runs as the hourly `0 * * * *` (both occurrences of 01:00,
    // see above) over those hours.
    let s = schedule("0 0-3/1 * * *", "America/New_York");
    let hourly = schedule("0 * * * *", "America/New_York");
    let (from, to) = (utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 8, 0));
    assert_eq!(local_runs(&s, from, to), local_runs(&hourly, from, to));
    assert_eq!(local_runs(&s, from, utc(2026, 11, 1, 9, 0)).len(), 5);
}

// --- Berlin ----------------------------------------------------------------------------------

#[test]
fn berlin_fixed_hour_in_both_transitions() {
    let s = schedule("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        local_runs(&s, utc(2026, 3, 27, 12, 0), utc(2026, 3, 31, 0, 0)),
        [
            "03-28 02:30+01:00",
            "03-29 03:00+02:00",
            "03-30 02:30+02:00"
        ]
    );
    assert_eq!(
        local_runs(&s, utc(2026, 10, 23, 12, 0), utc(2026, 10, 27, 0, 0)),
        [
            "10-24 02:30+02:00",
            "10-25 02:30+02:00",
            "10-26 02:30+01:00"
        ]
    );
    // From inside the second occurrence of 02:xx (01:10 UTC = 02:10 CET).
    assert_eq!(
        s.next_after(utc(2026, 10, 25, 1, 10)),
        Some(utc(2026, 10, 26, 1, 30))
    );
    // 03:00 exists once on both days.
    let s = schedule("0 3 * * *", "Europe/Berlin");
    assert_eq!(
        local_runs(&s, utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 0, 0)),
        ["10-25 03:00+01:00"]
    );
    assert_eq!(
        local_runs(&s, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 0, 0)),
        ["03-29 03:00+02:00"]
    );
}

#[test]
fn berlin_wildcard_hour_keeps_its_rhythm() {
    let s = schedule("*/15 * * * *", "Europe/Berlin");
    assert_eq!(
        utc_runs(&s, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0)),
        every(utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 2, 0), 15)
    );
    assert_eq!(
        utc_runs(&s, utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 2, 30)),
        every(utc(2026, 10, 24, 23, 15), utc(2026, 10, 25, 2, 30), 15)
    );
    assert_eq!(
        local_runs(&s, utc(2026, 10, 25, 0, 40), utc(2026, 10, 25, 1, 20)),
        [
            "10-25 02:45+02:00",
            "10-25 02:00+01:00",
            "10-25 02:15+01:00"
        ]
    );
    // Start inside the second occurrence.
    assert_eq!(
        s.next_after(utc(2026, 10, 25, 1, 50)),
        Some(utc(2026, 10, 25, 2, 0))
    );
}

// --- policies ----------------------------------------------------------------------------------

#[test]
fn repeated_once_drops_the_second_occurrence_of_a_wildcard_job() {
    let s = with_policy(
        "*/15 * * * *",
        "America/New_York",
        RepeatedTime::Once,
        SkippedTime::AfterGap,
    );
    assert_eq!(
        local_runs(&s, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7, 15)),
        [
            "11-01 01:45-04:00",
            "11-01 02:00-05:00",
            "11-01 02:15-05:00"
        ]
    );
    // From inside the second occurrence.
    assert_eq!(
        s.next_after(utc(2026, 11, 1, 6, 20)),
        Some(utc(2026, 11, 1, 7, 0))
    );
}

#[test]
fn repeated_twice_fires_a_fixed_hour_job_in_both_occurrences() {
    let s = with_policy(
        "30 1 * * *",
        "America/New_York",
        RepeatedTime::Twice,
        SkippedTime::AfterGap,
    );
    assert_eq!(
        local_runs(&s, utc(2026, 10, 31, 12, 0), utc(2026, 11, 3, 0, 0)),
        [
            "11-01 01:30-04:00",
            "11-01 01:30-05:00",
            "11-02 01:30-05:00"
        ]
    );
    let s = with_policy(
        "30 2 * * *",
        "Europe/Berlin",
        RepeatedTime::Twice,
        SkippedTime::AfterGap,
    );
    assert_eq!(
        local_runs(&s, utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 0, 0)),
        ["10-25 02:30+02:00", "10-25 02:30+01:00"]
    );
}

#[test]
fn the_last_run_of_a_year_field_may_be_the_second_occurrence() {
    // The only runs are in the repeated hour of the last day the year field allows: the second
    // occurrence is found although no naive local time matches after it.
    let s = with_policy(
        "0 30 1 1 11 ? 2026",
        "America/New_York",
        RepeatedTime::Twice,
        SkippedTime::AfterGap,
    );
    assert_eq!(
        local_runs(&s, utc(2026, 1, 1, 0, 0), utc(2030, 1, 1, 0, 0)),
        ["11-01 01:30-04:00", "11-01 01:30-05:00"]
    );
    let s = schedule("0 30 0-1/1 1 11 ? 2026", "America/New_York");
    assert_eq!(
        local_runs(&s, utc(2026, 1, 1, 0, 0), utc(2030, 1, 1, 0, 0)),
        [
            "11-01 00:30-04:00",
            "11-01 01:30-04:00",
            "11-01 01:30-05:00"
        ]
    );
}

#[test]
fn skipped_skip_drops_runs_inside_the_gap() {
    let s = with_policy(
        "30 2 * * *",
        "America/New_York",
        RepeatedTime::Auto,
        SkippedTime::Skip,
    );
    assert_eq!(
        local_runs(&s, utc(2026, 3, 6, 12, 0), utc(2026, 3, 10, 0, 0)),
        ["03-07 02:30-05:00", "03-09 02:30-04:00"]
    );
    // Minutes 10 and 50 of 02:xx do not exist: the default fires once at 03:00 EDT, Skip does
    // not fire until 03:10 EDT.
    let after_gap = schedule("10,50 * * * *", "America/New_York");
    let skip = after_gap.clone().with_dst_policy(DstPolicy {
        repeated: RepeatedTime::Auto,
        skipped: SkippedTime::Skip,
    });
    let (from, to) = (utc(2026, 3, 8, 6, 40), utc(2026, 3, 8, 8, 0));
    assert_eq!(
        local_runs(&after_gap, from, to),
        [
            "03-08 01:50-05:00",
            "03-08 03:00-04:00",
            "03-08 03:10-04:00",
            "03-08 03:50-04:00"
        ]
    );
    assert_eq!(
        local_runs(&skip, from, to),
        [
            "03-08 01:50-05:00",
            "03-08 03:10-04:00",
            "03-08 03:50-04:00"
        ]
    );
    assert_eq!(
        DstPolicy::default(),
        DstPolicy {
            repeated: RepeatedTime::Auto,
            skipped: SkippedTime::AfterGap
        }
    );
}

// --- other zones -------------------------------------------------------------------------------

#[test]
fn thirty_minute_dst_on_lord_howe_island() {
    // 2026-10-04: 02:00 +10:30 -> 02:30 +11:00. 2026-04-05: 02:00 +11:00 -> 01:30 +10:30.
    let s = schedule("*/15 * * * *", "Australia/Lord_Howe");
    assert_eq!(
        local_runs(&s, utc(2026, 10, 3, 15, 0), utc(2026, 10, 3, 16, 0)),
        [
            "10-04 01:45+10:30",
            "10-04 02:30+11:00",
            "10-04 02:45+11:00",
            "10-04 03:00+11:00"
        ]
    );
    assert_eq!(
        local_runs(&s, utc(2026, 4, 4, 14, 20), utc(2026, 4, 4, 15, 30)),
        [
            "04-05 01:30+11:00",
            "04-05 01:45+11:00",
            "04-05 01:30+10:30",
            "04-05 01:45+10:30",
            "04-05 02:00+10:30"
        ]
    );
    let s = schedule("15 2 * * *", "Australia/Lord_Howe");
    assert_eq!(
        local_runs(&s, utc(2026, 10, 2, 0, 0), utc(2026, 10, 4, 12, 0)),
        ["10-03 02:15+10:30", "10-04 02:30+11:00"]
    );
    let s = schedule("45 1 * * *", "Australia/Lord_Howe");
    assert_eq!(
        local_runs(&s, utc(2026, 4, 3, 0, 0), utc(2026, 4, 5, 0, 0)),
        ["04-04 01:45+11:00", "04-05 01:45+11:00"]
    );
}

#[test]
fn southern_hemisphere_and_london() {
    // Auckland 2026-09-27: 02:00 NZST -> 03:00 NZDT. 2026-04-05: 03:00 NZDT -> 02:00 NZST.
    let s = schedule("30 2 * * *", "Pacific/Auckland");
    assert_eq!(
        local_runs(&s, utc(2026, 9, 25, 0, 0), utc(2026, 9, 27, 0, 0)),
        ["09-26 02:30+12:00", "09-27 03:00+13:00"]
    );
    assert_eq!(
        local_runs(&s, utc(2026, 4, 3, 0, 0), utc(2026, 4, 5, 0, 0)),
        ["04-04 02:30+13:00", "04-05 02:30+13:00"]
    );
    // London 2026-03-29: 01:00 GMT -> 02:00 BST. 2026-10-25: 02:00 BST -> 01:00 GMT.
    let s = schedule("30 1 * * *", "Europe/London");
    assert_eq!(
        local_runs(&s, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 12, 0)),
        ["03-29 02:00+01:00", "03-30 01:30+01:00"]
    );
    assert_eq!(
        local_runs(&s, utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 12, 0)),
        ["10-25 01:30+01:00", "10-26 01:30+00:00"]
    );
}

#[test]
fn a_quarter_hour_job_keeps_fifteen_real_minutes_around_every_transition() {
    // Every zone here has offsets in whole quarter hours, so `*/15` is a real 15-minute rhythm
    // by default, whatever the clocks do.
    let from = utc(2020, 1, 1, 0, 0).timestamp();
    let to = utc(2031, 1, 1, 0, 0).timestamp();
    let mut checked = 0;
    for name in common::DST_ZONES {
        let s = schedule("*/15 * * * *", name);
        for t in common::transitions(s.timezone(), from, to) {
            let start = DateTime::from_timestamp(t - 3 * 3600 - 450, 0).unwrap();
            let runs: Vec<_> = s.upcoming(start).take(6 * 4 + 1).collect();
            for pair in runs.windows(2) {
                assert_eq!(
                    pair[1] - pair[0],
                    TimeDelta::minutes(15),
                    "{name} around {}: {} then {}",
                    DateTime::from_timestamp(t, 0).unwrap(),
                    pair[0],
                    pair[1]
                );
            }
            assert_eq!(runs[0].timestamp() % 900, 0, "{name}: on the quarter");
            checked += 1;
        }
    }
    assert!(checked > 100, "transitions checked: {checked}");
}

// --- offset changes beyond daylight saving -------------------------------------------------------

#[test]
fn a_seven_hour_fall_back_repeats_seven_hours() {
    // Antarctica/Vostok, 1994-01-31 17:00 UTC: +07 -> +00, so local 17:00-23:59 of January 31st
    // happens twice.
    let s = with_policy(
        "0 17 * * *",
        "Antarctica/Vostok",
        RepeatedTime::Twice,
        SkippedTime::AfterGap,
    );
    assert_eq!(
        local_runs(&s, utc(1994, 1, 30, 12, 0), utc(1994, 2, 1, 18, 0)),
        [
            "01-31 17:00+07:00",
            "01-31 17:00+00:00",
            "02-01 17:00+00:00"
        ]
    );
    // From between the two occurrences, when the next naive match is a year later, after the
    // offset came back to +07 (1994-10-31): the second occurrence still comes first.
    let s = with_policy(
        "0 17 31 1 *",
        "Antarctica/Vostok",
        RepeatedTime::Twice,
        SkippedTime::AfterGap,
    );
    assert_eq!(
        local_runs(&s, utc(1994, 1, 31, 10, 30), utc(1995, 2, 1, 0, 0)),
        ["01-31 17:00+00:00", "01-31 17:00+07:00"]
    );
    // A stepped hour keeps its rhythm by default.
    let s = schedule("0 */6 * * *", "Antarctica/Vostok");
    assert_eq!(
        local_runs(&s, utc(1994, 1, 31, 4, 0), utc(1994, 2, 1, 0, 0)),
        [
            "01-31 12:00+07:00",
            "01-31 18:00+07:00",
            "01-31 18:00+00:00",
            "02-01 00:00+00:00"
        ]
    );
}

#[test]
fn a_twenty_three_hour_fall_back_and_a_skipped_day() {
    // Pacific/Kwajalein, 1969-09-30 13:00 UTC: +11 -> -12, so local 01:00 on September 30th to
    // midnight happens twice.
    let s = schedule("0 12 * * *", "Pacific/Kwajalein");
    assert_eq!(
        local_runs(&s, utc(1969, 9, 29, 0, 0), utc(1969, 10, 2, 0, 0)),
        [
            "09-29 12:00+11:00",
            "09-30 12:00+11:00",
            "10-01 12:00-12:00"
        ]
    );
    let twice = s.with_dst_policy(DstPolicy {
        repeated: RepeatedTime::Twice,
        skipped: SkippedTime::AfterGap,
    });
    assert_eq!(
        local_runs(&twice, utc(1969, 9, 29, 0, 0), utc(1969, 10, 2, 0, 0)),
        [
            "09-29 12:00+11:00",
            "09-30 12:00+11:00",
            "09-30 12:00-12:00",
            "10-01 12:00-12:00"
        ]
    );
    // Pacific/Apia skipped 2011-12-30 (-10 -> +14 at 10:00 UTC): its noon fires once the day is
    // over, at the first instant that exists, unless Skip.
    let s = schedule("0 12 * * *", "Pacific/Apia");
    assert_eq!(
        local_runs(&s, utc(2011, 12, 29, 12, 0), utc(2011, 12, 31, 0, 0)),
        [
            "12-29 12:00-10:00",
            "12-31 00:00+14:00",
            "12-31 12:00+14:00"
        ]
    );
    let skip = s.with_dst_policy(DstPolicy {
        repeated: RepeatedTime::Auto,
        skipped: SkippedTime::Skip,
    });
    assert_eq!(
        local_runs(&skip, utc(2011, 12, 29, 12, 0), utc(2011, 12, 31, 0, 0)),
        ["12-29 12:00-10:00", "12-31 12:00+14:00"]
    );
}
