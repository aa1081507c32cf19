//! Brute-force oracles. Random expressions of every cron form are checked against a scan that
//! matches times with the independent matcher of `common` (never the crate's own code):
//! - in UTC, `next_after` equals the first matching second after a random start, and the runs of
//!   `upcoming()` are strictly increasing, each matches, and none is skipped between two;
//! - `NeverFires` is returned exactly when no date of a whole 400-year Gregorian cycle (or of the
//!   years the year field allows) matches;
//! - in zones with DST, `next_after` equals a real-time scan that applies the DST rules of the
//!   module documentation literally, for every `DstPolicy`.

// Helpers outside `#[test]` functions unwrap as the tests do (clippy.toml allows it there).
#![allow(clippy::unwrap_used)]

mod common;

use chill_core::{DstPolicy, RepeatedTime, Schedule, ScheduleError, SkippedTime};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use common::{Days, DomItem, DowItem, Expr, Form, Grammar, Item, Plain, ZonedRules};
use proptest::prelude::*;
use proptest::sample::select;

const EVERY_FORM: Grammar = Grammar {
    croner: false,
    forms: &[Form::Five, Form::Five, Form::Six, Form::Seven, Form::Aws],
};

/// 2000-01-01 to 2100-01-01.
const STARTS: std::ops::Range<i64> = 946_684_800..4_102_444_800;

fn naive(t: i64) -> NaiveDateTime {
    DateTime::from_timestamp(t, 0).unwrap().naive_utc()
}

fn instant(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Whether any date of `years` matches the expression's date fields.
fn any_date_matches(e: &Expr, years: std::ops::RangeInclusive<i32>) -> bool {
    let mut d = NaiveDate::from_ymd_opt(*years.start(), 1, 1).unwrap();
    let end = NaiveDate::from_ymd_opt(*years.end(), 12, 31).unwrap();
    while d <= end {
        if e.matches_date(d) {
            return true;
        }
        d = d.succ_opt().unwrap();
    }
    false
}

/// Parse an expression of the generator: only `NeverFires` may be refused, and only when no
/// date can match.
fn parse_or_check_never(e: &Expr, tz: &str) -> Option<Schedule> {
    let text = e.render();
    match Schedule::parse_in(&text, tz) {
        Ok(s) => Some(s),
        Err(ScheduleError::NeverFires) => {
            // The Gregorian calendar repeats every 400 years; the generator's years are
            // 2020-2040.
            let years = if e.years.is_some() {
                2020..=2040
            } else {
                2000..=2399
            };
            assert!(
                !any_date_matches(e, years),
                "{text}: NeverFires, but a date matches"
            );
            None
        }
        Err(other) => panic!("{text}: the generator's expression was refused: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn next_after_in_utc_equals_a_scan(e in common::expr(EVERY_FORM), start in STARTS) {
        let Some(s) = parse_or_check_never(&e, "UTC") else { return Ok(()) };
        let text = e.render();
        // Thirty years: every expression that fires does so within them, except for rare days
        // (29 February on a given weekday) that the scan then shows do not come sooner.
        let limit = naive(start) + chrono::TimeDelta::days(30 * 366);
        let want = common::brute_next(&e, naive(start), limit);
        let got = s.next_after(DateTime::from_timestamp(start, 0).unwrap());
        match want {
            Some(w) => prop_assert_eq!(got, Some(instant(w)), "{} after {}", text, naive(start)),
            None => prop_assert!(
                got.is_none_or(|g| g.naive_utc() > limit),
                "{} after {}: got {:?}, nothing matches before {}", text, naive(start), got, limit
            ),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn upcoming_runs_increase_match_and_skip_nothing(
        e in common::expr(EVERY_FORM),
        start in STARTS,
    ) {
        let Some(s) = parse_or_check_never(&e, "UTC") else { return Ok(()) };
        let text = e.render();
        let mut previous = DateTime::from_timestamp(start, 0).unwrap();
        for run in s.upcoming(previous).take(25) {
            prop_assert!(run > previous, "{}: {} after {}", text, run, previous);
            prop_assert!(e.matches(run.naive_utc()), "{}: {} does not match", text, run);
            // No matching second between the two runs.
            let between = common::brute_next(&e, previous.naive_utc(), run.naive_utc());
            prop_assert_eq!(between, Some(run.naive_utc()), "{}: skipped after {}", text, previous);
            previous = run;
        }
    }
}

/// Expressions whose days are rare or impossible: 29-31 and `W` days, few months, and
/// day-of-week restrictions that combine with *and*.
fn rare_days() -> impl Strategy<Value = Expr> {
    let dom_item = prop_oneof![
        (28u32..=31).prop_map(|d| DomItem::Plain(Item::Val(d))),
        (29u32..=31).prop_map(DomItem::Nearest),
        Just(DomItem::LastWeekday),
        Just(DomItem::Plain(Item::Range(30, 31))),
    ];
    let months = prop_oneof![
        Just(vec![Item::Val(2)]),
        Just(vec![
            Item::Val(4),
            Item::Val(6),
            Item::Val(9),
            Item::Val(11)
        ]),
        (1u32..=12).prop_map(|m| vec![Item::Val(m)]),
    ];
    let dow = prop_oneof![
        Just(Days::Items(vec![DowItem::Plain(Item::Star)], 0)),
        (1u32..=7)
            .prop_map(|s| Days::Items(vec![DowItem::Plain(Item::Step(common::Base::Star, s))], 0)),
        (0u32..=6).prop_map(|k| Days::Items(vec![DowItem::Nth(k, 5)], 0)),
    ];
    let years = prop_oneof![
        3 => Just(None),
        1 => (2020u32..=2040).prop_map(|y| Some(Plain { items: vec![Item::Val(y)], style: 0 })),
    ];
    (prop::collection::vec(dom_item, 1..=2), months, dow, years).prop_map(
        |(dom, months, dow, years)| {
            let zero = Plain {
                items: vec![Item::Val(0)],
                style: 0,
            };
            Expr {
                form: if years.is_some() {
                    Form::Seven
                } else {
                    Form::Five
                },
                seconds: zero.clone(),
                minutes: zero.clone(),
                hours: zero,
                dom: Days::Items(dom, 0),
                months: Plain {
                    items: months,
                    style: 0,
                },
                dow,
                years,
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_fires_exactly_when_no_date_can_match(e in rare_days()) {
        // parse_or_check_never checks the refusals; here every accepted expression must fire.
        if let Some(s) = parse_or_check_never(&e, "UTC") {
            let from = DateTime::from_timestamp(STARTS.start, 0).unwrap();
            let limit = from.naive_utc() + chrono::TimeDelta::days(401 * 366);
            let want = common::brute_next(&e, from.naive_utc(), limit);
            prop_assert!(want.is_some(), "{}: accepted, but no date matches", e.render());
            prop_assert_eq!(s.next_after(from), want.map(instant), "{}", e.render());
        }
    }
}

// --- zones ---------------------------------------------------------------------------------

/// Zones that changed their offset by minutes, hours or a whole day: Kathmandu by 15 minutes
/// (1986), Casey by 3 hours (2009-2023), Vostok by 7 (1994), Kwajalein by 23 and 24 (1969,
/// 1993); Apia skipped a day (2011).
const HISTORICAL_ZONES: [&str; 5] = [
    "Asia/Kathmandu",
    "Antarctica/Casey",
    "Antarctica/Vostok",
    "Pacific/Kwajalein",
    "Pacific/Apia",
];

/// A zone and a start time within 30 hours (half of the time: two hours) of one of its
/// transitions of 2024-2030 (1965-2030 for the historical zones).
fn zone_and_start() -> impl Strategy<Value = (&'static str, i64)> {
    let mut zones: Vec<&str> = common::DST_ZONES
        .into_iter()
        .chain(HISTORICAL_ZONES)
        .collect();
    zones.dedup();
    select(zones).prop_flat_map(|name| {
        let to = 1_924_992_000; // 2031-01-01
        let from = if HISTORICAL_ZONES.contains(&name) {
            -157_766_400 // 1965
        } else {
            1_704_067_200 // 2024
        };
        let near = common::transitions_cached(name, from, to);
        let delta = prop_oneof![-30 * 3600i64..30 * 3600, -2 * 3600i64..2 * 3600];
        (Just(name), select(near), delta).prop_map(|(name, t, delta)| (name, t + delta))
    })
}

fn policy() -> impl Strategy<Value = DstPolicy> {
    (
        select(vec![
            RepeatedTime::Auto,
            RepeatedTime::Once,
            RepeatedTime::Twice,
        ]),
        select(vec![SkippedTime::AfterGap, SkippedTime::Skip]),
    )
        .prop_map(|(repeated, skipped)| DstPolicy { repeated, skipped })
}

const ZONED_FORMS: Grammar = Grammar {
    croner: false,
    forms: &[Form::Five, Form::Five, Form::Five, Form::Six, Form::Aws],
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn zoned_runs_follow_the_documented_dst_rules(
        e in common::expr(ZONED_FORMS),
        (zone, start) in zone_and_start(),
        dst in policy(),
    ) {
        let Some(s) = parse_or_check_never(&e, zone) else { return Ok(()) };
        let s = s.with_dst_policy(dst);
        let text = e.render();
        let rules = ZonedRules {
            tz: zone.parse().unwrap(),
            twice: match dst.repeated {
                RepeatedTime::Once => false,
                RepeatedTime::Twice => true,
                _ => e.hour_repeats(),
            },
            after_gap: dst.skipped == SkippedTime::AfterGap,
        };
        // Up to six runs within two days of the start.
        let limit = start + 2 * 86_400;
        let mut t = start;
        for _ in 0..6 {
            let want = rules.brute_next(&e, t, limit);
            let got = s.next_after(DateTime::from_timestamp(t, 0).unwrap()).map(|g| g.timestamp());
            match want {
                Some(w) => prop_assert_eq!(
                    got, Some(w), "{} in {} {:?} after {}", text, zone, dst,
                    DateTime::from_timestamp(t, 0).unwrap()
                ),
                None => {
                    prop_assert!(
                        got.is_none_or(|g| g > limit),
                        "{} in {} {:?} after {}: got {:?}, the rules give nothing before {}",
                        text, zone, dst, DateTime::from_timestamp(t, 0).unwrap(), got, limit
                    );
                    break;
                }
            }
            t = want.unwrap_or(limit);
        }
    }
}
