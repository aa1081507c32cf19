//! Differential tests against croner 4 (`croner = "=4.0.3"`) on random 5- and 6-field
//! expressions, in UTC and in eight zones with daylight saving time.
//!
//! croner 4's API: `CronParser::builder().seconds(Seconds::Optional).build().parse(expr)` and
//! `Cron::find_next_occurrence(&DateTime<Tz>, inclusive)`. `sloppy_ranges(true)` makes it read
//! `5/15` as we do (from 5 to the end of the field); it rejects that form otherwise.
//!
//! Where croner and the schedule engine differ, and why (each is pinned by a test below):
//! 1. Day fields that start with `*` but are not exactly `*` (`*/2`): croner counts such a field
//!    as restricted, so with a restricted other day field it ORs the two; the engine follows
//!    Vixie cron and ANDs them. The random tests give croner the same meaning with its `+`
//!    day-of-week prefix (AND) for such expressions.
//! 2. Spring forward, a job whose seconds, minutes or hours are not single fixed values (croner's
//!    "interval" job type): croner skips its times inside the gap; the engine fires once at the
//!    first instant after the gap (the module's documented rule, for every job).
//! 3. Fall back, a job with a fixed hour but several minutes or seconds (`0,30 1 * * *`): croner
//!    counts it as an interval job and fires in both occurrences of the repeated times; the
//!    engine decides by the hour field alone (documented) and fires in the first only.
//!
//! Any other difference fails the test.

// Helpers outside `#[test]` functions unwrap as the tests do (clippy.toml allows it there).
#![allow(clippy::unwrap_used)]

mod common;

use chill_core::Schedule;
use chrono::{DateTime, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use common::{Expr, Form, Grammar, offset_at};
use croner::parser::{CronParser, Seconds};
use croner::{Cron, JobType};
use proptest::prelude::*;
use proptest::sample::select;

fn croner(expr: &str) -> Cron {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .sloppy_ranges(true)
        .build()
        .parse(expr)
        .unwrap_or_else(|e| panic!("croner refused {expr}: {e:?}"))
}

/// croner's next run strictly after `t`, `None` when it finds none.
fn croner_next(cron: &Cron, tz: Tz, t: i64) -> Option<i64> {
    let start = DateTime::from_timestamp(t, 0).unwrap().with_timezone(&tz);
    cron.find_next_occurrence(&start, false)
        .ok()
        .map(|d| d.timestamp())
}

/// The expression as croner must read it to mean what the engine means: with a `+` before
/// day-of-week (croner's AND) when a day field starts with `*` without being exactly `*` or `?`.
fn croner_text(e: &Expr) -> String {
    let text = e.render();
    if e.days_and() && !e.dom_is_exactly_star() && !e.dow_is_exactly_star() {
        let (head, dow) = text.rsplit_once(' ').unwrap();
        format!("{head} +{dow}")
    } else {
        text
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn local_text(tz: Tz, t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S%:z")
        .to_string()
}

/// Why the engine's `ours` and croner's `theirs` may differ after `t`, or `None`.
fn documented_difference(
    e: &Expr,
    cron: &Cron,
    tz: Tz,
    ours: Option<i64>,
    theirs: Option<i64>,
) -> Option<&'static str> {
    let interval = cron.determine_job_type() == JobType::IntervalWildcard;
    let later = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        _ => false,
    };
    // 2: ours is the end of a gap holding a matching local time; croner skipped the gap.
    if let Some(g) = ours {
        let (before, after) = (offset_at(tz, g - 1), offset_at(tz, g));
        let step = if e.has_seconds() { 1 } else { 60 };
        let gap_matches = after > before
            && (0..(after - before) / step).any(|i| {
                let local = DateTime::from_timestamp(g + before + i * step, 0).unwrap();
                e.matches(local.naive_utc())
            });
        if interval && gap_matches && later(ours, theirs) {
            return Some("croner skips an interval job's times inside a gap");
        }
    }
    // 3: croner fired in the second occurrence of a repeated time; our hour field is fixed.
    if let Some(c) = theirs {
        let local = DateTime::from_timestamp(c, 0)
            .unwrap()
            .with_timezone(&tz)
            .naive_local();
        let second_occurrence = matches!(
            tz.from_local_datetime(&local),
            LocalResult::Ambiguous(a, b) if a.timestamp().max(b.timestamp()) == c
        );
        if interval && second_occurrence && !e.hour_repeats() && later(theirs, ours) {
            return Some("croner fires a fixed-hour job with several minutes twice");
        }
    }
    None
}

/// A zone and a start: near a 2024-2030 transition of the zone (within 2 or 30 hours), or
/// anywhere in 2000-2060.
fn zone_and_start() -> impl Strategy<Value = (&'static str, i64)> {
    let zones: Vec<&str> = ["UTC", "UTC"]
        .into_iter()
        .chain(common::DST_ZONES)
        .collect();
    select(zones).prop_flat_map(|name| {
        let near = common::transitions_cached(name, 1_704_067_200, 1_924_992_000);
        let anywhere = (Just(name), 946_684_800i64..2_840_140_800).boxed();
        if near.is_empty() {
            return anywhere;
        }
        let delta = prop_oneof![-30 * 3600i64..30 * 3600, -2 * 3600i64..2 * 3600];
        let close = (Just(name), select(near), delta).prop_map(|(n, t, d)| (n, t + d));
        prop_oneof![1 => anywhere, 3 => close].boxed()
    })
}

const CRONER_FORMS: Grammar = Grammar {
    croner: true,
    forms: &[Form::Five, Form::Five, Form::Six],
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn next_runs_agree_with_croner(
        e in common::expr(CRONER_FORMS),
        (zone, start) in zone_and_start(),
    ) {
        let text = e.render();
        let Ok(ours) = Schedule::parse_in(&text, zone) else {
            // Never-firing expressions are checked by the oracle tests.
            return Ok(());
        };
        let cron = croner(&croner_text(&e));
        let tz: Tz = zone.parse().unwrap();
        let mut t = start;
        for _ in 0..6 {
            let got = ours.next_after(DateTime::from_timestamp(t, 0).unwrap()).map(|g| g.timestamp());
            let want = croner_next(&cron, tz, t);
            if got == want {
                match got {
                    Some(g) => t = g,
                    None => break,
                }
                continue;
            }
            let why = documented_difference(&e, &cron, tz, got, want);
            prop_assert!(
                why.is_some(),
                "{} (croner: {}) in {} after {}: engine {:?}, croner {:?}",
                text, croner_text(&e), zone, local_text(tz, t),
                got.map(|g| local_text(tz, g)), want.map(|w| local_text(tz, w))
            );
            // Go on from the earlier of the two.
            t = match (got, want) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap(),
            };
        }
    }
}

// --- the documented differences, pinned ----------------------------------------------------------

#[test]
fn croner_ors_a_star_step_day_of_month_with_a_weekday() {
    let after = utc(2026, 6, 1, 0, 0);
    let ours = Schedule::parse("0 0 */2 * MON").unwrap();
    // Odd-numbered Mondays: 2026-06-15 (Vixie cron's rule).
    assert_eq!(ours.next_after(after), Some(utc(2026, 6, 15, 0, 0)));
    // croner: every odd day or Monday, so Wednesday 2026-06-03.
    let theirs = croner("0 0 */2 * MON");
    assert!(!theirs.pattern.is_dom_wildcard());
    assert_eq!(
        croner_next(&theirs, Tz::UTC, after.timestamp()),
        Some(utc(2026, 6, 3, 0, 0).timestamp())
    );
    // With its AND prefix croner agrees.
    assert_eq!(
        croner_next(&croner("0 0 */2 * +MON"), Tz::UTC, after.timestamp()),
        Some(utc(2026, 6, 15, 0, 0).timestamp())
    );
    // A `*/2` day-of-week with a restricted day-of-month: the same.
    let ours = Schedule::parse("0 0 15 * */2").unwrap();
    let theirs = croner("0 0 15 * */2");
    let after = utc(2026, 1, 16, 0, 0);
    assert_eq!(ours.next_after(after), Some(utc(2026, 2, 15, 0, 0)));
    assert_eq!(
        croner_next(&theirs, Tz::UTC, after.timestamp()),
        Some(utc(2026, 1, 17, 0, 0).timestamp())
    );
}

#[test]
fn croner_skips_an_interval_job_inside_a_gap() {
    // New York, 2026-03-08: 02:10 and 02:50 do not exist. After 01:50 EST (06:50 UTC):
    let tz: Tz = "America/New_York".parse().unwrap();
    let after = utc(2026, 3, 8, 6, 50);
    let ours = Schedule::parse_in("10,50 * * * *", "America/New_York").unwrap();
    assert_eq!(ours.next_after(after), Some(utc(2026, 3, 8, 7, 0))); // 03:00 EDT
    assert_eq!(
        croner_next(&croner("10,50 * * * *"), tz, after.timestamp()),
        Some(utc(2026, 3, 8, 7, 10).timestamp()) // 03:10 EDT
    );
    // A fixed-time job: both fire once after the gap.
    let ours = Schedule::parse_in("30 2 * * *", "America/New_York").unwrap();
    assert_eq!(ours.next_after(after), Some(utc(2026, 3, 8, 7, 0)));
    assert_eq!(
        croner_next(&croner("30 2 * * *"), tz, after.timestamp()),
        Some(utc(2026, 3, 8, 7, 0).timestamp())
    );
}

#[test]
fn croner_fires_a_fixed_hour_with_several_minutes_twice() {
    // New York, 2026-11-01: 01:00-01:59 happens twice. After 01:30 EDT (05:30 UTC):
    let tz: Tz = "America/New_York".parse().unwrap();
    let after = utc(2026, 11, 1, 5, 30);
    let ours = Schedule::parse_in("0,30 1 * * *", "America/New_York").unwrap();
    // Hour 1 is fixed: the first occurrence only, so the next run is the next day, 01:00 EST.
    assert_eq!(ours.next_after(after), Some(utc(2026, 11, 2, 6, 0)));
    let theirs = croner("0,30 1 * * *");
    assert_eq!(theirs.determine_job_type(), JobType::IntervalWildcard);
    assert_eq!(
        croner_next(&theirs, tz, after.timestamp()),
        Some(utc(2026, 11, 1, 6, 0).timestamp()) // 01:00 EST
    );
    // A single fixed time: both fire once.
    let ours = Schedule::parse_in("30 1 * * *", "America/New_York").unwrap();
    assert_eq!(ours.next_after(after), Some(utc(2026, 11, 2, 6, 30)));
    assert_eq!(
        croner_next(&croner("30 1 * * *"), tz, after.timestamp()),
        Some(utc(2026, 11, 2, 6, 30).timestamp())
    );
}
