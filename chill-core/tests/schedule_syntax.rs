//! Every syntax element of the schedule grammar, every `ScheduleError` variant with its exact
//! message, the EventBridge forms (`cron()`, `rate()`, `at()`) and never-firing expressions.
//!
//! Dates used below (checked against a calendar): 2026-08-01 is a Saturday, 2026-05-31 and
//! 2026-02-15 are Sundays, 2026-08-15 and 2026-01-31 are Saturdays, January and May 2026 have five
//! Fridays while February to April 2026 have four, 2028 is a leap year.

// Helpers outside `#[test]` functions unwrap as the tests do (clippy.toml allows it there).
#![allow(clippy::unwrap_used)]

use chill_core::{CronField, Schedule, ScheduleError};
use chrono::{DateTime, TimeZone, Utc};

/// A UTC instant.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The first `n` runs of `expr` (UTC) strictly after `after`, as `YYYY-MM-DD HH:MM:SS Day`.
fn runs(expr: &str, after: DateTime<Utc>, n: usize) -> Vec<String> {
    let schedule = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    schedule
        .upcoming(after)
        .take(n)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %a").to_string())
        .collect()
}

/// The first `n` runs of `expr` in `tz`, as local times with their UTC offset.
fn runs_in(expr: &str, tz: &str, after: DateTime<Utc>, n: usize) -> Vec<String> {
    let schedule = Schedule::parse_in(expr, tz).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let zone = schedule.timezone();
    schedule
        .upcoming(after)
        .take(n)
        .map(|t| {
            t.with_timezone(&zone)
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .collect()
}

/// The error message of an expression that must not parse.
fn error(expr: &str) -> String {
    match Schedule::parse(expr) {
        Ok(s) => panic!("{expr} parsed: {s:?}"),
        Err(e) => e.to_string(),
    }
}

/// Two expressions have the same next `n` runs from several starting points.
fn assert_same_runs(a: &str, b: &str) {
    for after in [
        utc(2026, 1, 1, 0, 0, 0),
        utc(2026, 2, 27, 23, 59, 59),
        utc(2027, 12, 31, 23, 30, 0),
    ] {
        assert_eq!(
            runs(a, after, 6),
            runs(b, after, 6),
            "{a} vs {b} after {after}"
        );
    }
}

// --- field counts ------------------------------------------------------------------------------

#[test]
fn unix_five_fields_fire_at_second_zero() {
    assert_eq!(
        runs("30 9 * * *", utc(2026, 1, 1, 10, 0, 0), 2),
        ["2026-01-02 09:30:00 Fri", "2026-01-03 09:30:00 Sat"]
    );
    // Exactly at a run time: the next one, never the same instant.
    assert_eq!(
        runs("30 9 * * *", utc(2026, 1, 2, 9, 30, 0), 1),
        ["2026-01-03 09:30:00 Sat"]
    );
    // One second before a run time: that run.
    assert_eq!(
        runs("30 9 * * *", utc(2026, 1, 2, 9, 29, 59), 1),
        ["2026-01-02 09:30:00 Fri"]
    );
}

#[test]
fn six_fields_put_seconds_first() {
    assert_eq!(
        runs("15 30 9 * * *", utc(2026, 1, 1, 9, 30, 15), 2),
        ["2026-01-02 09:30:15 Fri", "2026-01-03 09:30:15 Sat"]
    );
    assert_eq!(
        runs("*/20 * * * * *", utc(2026, 1, 1, 0, 0, 5), 4),
        [
            "2026-01-01 00:00:20 Thu",
            "2026-01-01 00:00:40 Thu",
            "2026-01-01 00:01:00 Thu",
            "2026-01-01 00:01:20 Thu"
        ]
    );
    assert_eq!(
        runs("0,59 59 23 31 12 *", utc(2026, 12, 31, 23, 59, 0), 2),
        ["2026-12-31 23:59:59 Thu", "2027-12-31 23:59:00 Fri"]
    );
}

#[test]
fn seven_fields_put_the_year_last() {
    let s = Schedule::parse("0 0 12 1 1 ? 2027").unwrap();
    assert_eq!(
        s.next_after(utc(2020, 6, 1, 0, 0, 0)),
        Some(utc(2027, 1, 1, 12, 0, 0))
    );
    assert_eq!(s.next_after(utc(2027, 1, 1, 12, 0, 0)), None);
    assert_eq!(
        runs("0 0 12 1 1 ? 2027-2029/2", utc(2020, 1, 1, 0, 0, 0), 3),
        ["2027-01-01 12:00:00 Fri", "2029-01-01 12:00:00 Mon"]
    );
    assert_eq!(
        runs("0 0 0 1 1 * 2026,2199", utc(2026, 1, 1, 0, 0, 0), 2),
        ["2199-01-01 00:00:00 Tue"]
    );
    assert_same_runs("0 30 9 * * * *", "30 9 * * *");
}

// --- macros ------------------------------------------------------------------------------------

#[test]
fn macros_expand_to_their_cron_expressions() {
    for (mac, expansion) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("  @Hourly  ", "0 * * * *"),
    ] {
        assert_same_runs(mac, expansion);
    }
    let after = utc(2026, 5, 13, 10, 20, 0); // a Wednesday
    assert_eq!(runs("@yearly", after, 1), ["2027-01-01 00:00:00 Fri"]);
    assert_eq!(runs("@monthly", after, 1), ["2026-06-01 00:00:00 Mon"]);
    assert_eq!(runs("@weekly", after, 1), ["2026-05-17 00:00:00 Sun"]);
    assert_eq!(runs("@daily", after, 1), ["2026-05-14 00:00:00 Thu"]);
    assert_eq!(runs("@hourly", after, 1), ["2026-05-13 11:00:00 Wed"]);
}

// --- names, lists, ranges, steps -----------------------------------------------------------------

#[test]
fn month_and_day_names_are_case_insensitive() {
    assert_same_runs("0 0 1 JAN *", "0 0 1 1 *");
    assert_same_runs("0 0 1 jan *", "0 0 1 1 *");
    assert_same_runs("0 0 * * MON", "0 0 * * 1");
    assert_same_runs("0 0 * * mOn", "0 0 * * 1");
    assert_same_runs("0 0 * * MON-FRI", "0 0 * * 1-5");
    assert_same_runs("0 0 1 MAR-NOV/4 *", "0 0 1 3,7,11 *");
    assert_same_runs("0 0 * * sun,SAT", "0 0 * * 0,6");
    assert_same_runs(
        "0 0 1 JAN,FEB,MAR,APR,MAY,JUN,JUL,AUG,SEP,OCT,NOV,DEC *",
        "0 0 1 * *",
    );
    assert_same_runs("0 0 * * SUN,MON,TUE,WED,THU,FRI,SAT", "0 0 * * *");
    assert_eq!(
        runs("0 9 * * MON-FRI", utc(2026, 5, 15, 12, 0, 0), 2),
        ["2026-05-18 09:00:00 Mon", "2026-05-19 09:00:00 Tue"]
    );
}

#[test]
fn a_day_name_range_may_end_on_sunday() {
    // SUN is 0 and 7: a range ending on it runs to the end of the week.
    assert_same_runs("0 0 * * FRI-SUN", "0 0 * * 5-7");
    assert_same_runs("0 0 * * FRI-SUN", "0 0 * * 0,5,6");
    assert_same_runs("0 0 * * SUN-SAT", "0 0 * * *");
    assert_same_runs("0 0 * * SUN-SUN", "0 0 * * 0");
    assert_same_runs("0 0 * * SAT-SUN", "0 0 * * 0,6");
    assert_same_runs("0 0 * * sat-sun/1", "0 0 * * 6,7");
    // In EventBridge numbering SUN is 1 only.
    assert_eq!(
        error("cron(0 0 ? * FRI-SUN *)"),
        "day-of-week: range 6-1 starts after it ends"
    );
}

#[test]
fn lists_ranges_and_wildcards() {
    assert_eq!(
        runs("0 8-10,14 * * *", utc(2026, 1, 1, 8, 30, 0), 4),
        [
            "2026-01-01 09:00:00 Thu",
            "2026-01-01 10:00:00 Thu",
            "2026-01-01 14:00:00 Thu",
            "2026-01-02 08:00:00 Fri"
        ]
    );
    assert_same_runs("0 0 * * *", "0 0 1-31 1-12 0-6");
    assert_same_runs("5,10,5 * * * *", "5,10 * * * *");
}

#[test]
fn steps_from_star_from_a_value_and_over_a_range() {
    let minutes = |expr: &str| -> Vec<String> {
        runs(expr, utc(2026, 1, 1, 0, 59, 59), 5)
            .into_iter()
            .map(|r| r[14..16].to_string())
            .collect()
    };
    assert_eq!(minutes("*/15 * * * *"), ["00", "15", "30", "45", "00"]);
    assert_eq!(minutes("0/15 * * * *"), ["00", "15", "30", "45", "00"]);
    assert_eq!(minutes("10-50/20 * * * *"), ["10", "30", "50", "10", "30"]);
    assert_eq!(minutes("5/20 * * * *"), ["05", "25", "45", "05", "25"]);
    assert_eq!(minutes("*/59 * * * *"), ["00", "59", "00", "59", "00"]);
    assert_eq!(minutes("*/60 * * * *"), ["00", "00", "00", "00", "00"]);
    assert_same_runs("0 */6 * * *", "0 0,6,12,18 * * *");
    assert_same_runs("0 0 */10 * *", "0 0 1,11,21,31 * *");
    assert_same_runs("0 0 1 */5 *", "0 0 1 1,6,11 *");
    assert_same_runs("0 0 * * */2", "0 0 * * 0,2,4,6");
    assert_same_runs("0 0 * * 1/2", "0 0 * * 1,3,5,7");
}

#[test]
fn question_mark_means_any_day() {
    assert_same_runs("0 0 ? * *", "0 0 * * *");
    assert_same_runs("0 0 * * ?", "0 0 * * *");
    // `?` in one day field and a restriction in the other: the restriction alone decides.
    assert_same_runs("0 0 ? * MON", "0 0 * * MON");
    assert_same_runs("0 0 13 * ?", "0 0 13 * *");
}

// --- L, W, LW, #, nL ---------------------------------------------------------------------------

#[test]
fn l_in_day_of_month_is_the_last_day() {
    assert_eq!(
        runs("0 0 L * *", utc(2026, 1, 15, 0, 0, 0), 3),
        [
            "2026-01-31 00:00:00 Sat",
            "2026-02-28 00:00:00 Sat",
            "2026-03-31 00:00:00 Tue"
        ]
    );
    assert_eq!(
        runs("0 0 L 2 *", utc(2027, 3, 1, 0, 0, 0), 2),
        ["2028-02-29 00:00:00 Tue", "2029-02-28 00:00:00 Wed"]
    );
    assert_eq!(
        runs("0 0 1,L * *", utc(2026, 4, 2, 0, 0, 0), 2),
        ["2026-04-30 00:00:00 Thu", "2026-05-01 00:00:00 Fri"]
    );
}

#[test]
fn w_is_the_weekday_nearest_the_day_within_the_month() {
    // 2026-02-15 is a Sunday: Monday the 16th. 2026-08-15 is a Saturday: Friday the 14th.
    assert_eq!(
        runs("0 0 15W * *", utc(2026, 2, 1, 0, 0, 0), 2),
        ["2026-02-16 00:00:00 Mon", "2026-03-16 00:00:00 Mon"]
    );
    assert_eq!(
        runs("0 0 15W 8 *", utc(2026, 1, 1, 0, 0, 0), 1),
        ["2026-08-14 00:00:00 Fri"]
    );
    // A weekday 15th is itself.
    assert_eq!(
        runs("0 0 15W 4 *", utc(2026, 1, 1, 0, 0, 0), 1),
        ["2026-04-15 00:00:00 Wed"]
    );
    // 2026-08-01 is a Saturday: the nearest weekday in the month is Monday the 3rd, not Friday
    // July 31st.
    assert_eq!(
        runs("0 0 1W 8 *", utc(2026, 1, 1, 0, 0, 0), 1),
        ["2026-08-03 00:00:00 Mon"]
    );
    // 2026-02-01 is a Sunday: Monday the 2nd.
    assert_eq!(
        runs("0 0 1W 2 *", utc(2026, 1, 1, 0, 0, 0), 1),
        ["2026-02-02 00:00:00 Mon"]
    );
    // 2026-05-31 is a Sunday: the nearest weekday in the month is Friday the 29th, not Monday
    // June 1st.
    assert_eq!(
        runs("0 0 31W 5 *", utc(2026, 1, 1, 0, 0, 0), 1),
        ["2026-05-29 00:00:00 Fri"]
    );
    // 31W never fires in a month of 30 days: it skips April and June.
    assert_eq!(
        runs("0 0 31W * *", utc(2026, 3, 31, 0, 0, 0), 2),
        ["2026-05-29 00:00:00 Fri", "2026-07-31 00:00:00 Fri"]
    );
    assert_same_runs("0 0 15w * *", "0 0 15W * *");
}

#[test]
fn lw_is_the_last_weekday_of_the_month() {
    // January 2026 ends on a Saturday, May 2026 on a Sunday, March 2026 on a Tuesday.
    assert_eq!(
        runs("0 0 LW * *", utc(2026, 1, 1, 0, 0, 0), 5),
        [
            "2026-01-30 00:00:00 Fri",
            "2026-02-27 00:00:00 Fri",
            "2026-03-31 00:00:00 Tue",
            "2026-04-30 00:00:00 Thu",
            "2026-05-29 00:00:00 Fri"
        ]
    );
    assert_same_runs("0 0 lw * *", "0 0 LW * *");
}

#[test]
fn hash_is_the_nth_weekday_of_the_month() {
    assert_eq!(
        runs("0 0 * * MON#1", utc(2026, 1, 15, 0, 0, 0), 3),
        [
            "2026-02-02 00:00:00 Mon",
            "2026-03-02 00:00:00 Mon",
            "2026-04-06 00:00:00 Mon"
        ]
    );
    assert_same_runs("0 0 * * 1#1", "0 0 * * MON#1");
    assert_same_runs("0 0 * * 0#2", "0 0 * * 7#2");
    // The fifth Friday: January 2026 has one (the 30th), February to April do not, May does.
    assert_eq!(
        runs("0 0 * * 5#5", utc(2026, 1, 1, 0, 0, 0), 2),
        ["2026-01-30 00:00:00 Fri", "2026-05-29 00:00:00 Fri"]
    );
    assert_eq!(
        runs("0 0 * * 1#2,5#3", utc(2026, 6, 1, 0, 0, 0), 2),
        ["2026-06-08 00:00:00 Mon", "2026-06-19 00:00:00 Fri"]
    );
}

#[test]
fn n_l_is_the_last_such_weekday_of_the_month() {
    assert_eq!(
        runs("0 0 * * 5L", utc(2026, 1, 1, 0, 0, 0), 3),
        [
            "2026-01-30 00:00:00 Fri",
            "2026-02-27 00:00:00 Fri",
            "2026-03-27 00:00:00 Fri"
        ]
    );
    assert_same_runs("0 0 * * FRIL", "0 0 * * 5L");
    assert_same_runs("0 0 * * 0L", "0 0 * * 7L");
    // `L` alone in day-of-week is Saturday, the last day of the week.
    assert_same_runs("0 0 * * L", "0 0 * * SAT");
}

#[test]
fn day_of_week_zero_and_seven_are_sunday() {
    assert_same_runs("0 0 * * 0", "0 0 * * 7");
    assert_same_runs("0 0 * * 0", "0 0 * * SUN");
    assert_same_runs("0 0 * * 0-7", "0 0 * * *");
    assert_eq!(
        runs("0 0 * * 7", utc(2026, 5, 13, 0, 0, 0), 1),
        ["2026-05-17 00:00:00 Sun"]
    );
}

// --- day-of-month and day-of-week together ------------------------------------------------------

#[test]
fn both_day_fields_restricted_means_either() {
    // The 13th, and every Friday (Vixie cron).
    assert_eq!(
        runs("0 0 13 * FRI", utc(2026, 2, 1, 0, 0, 0), 5),
        [
            "2026-02-06 00:00:00 Fri",
            "2026-02-13 00:00:00 Fri",
            "2026-02-20 00:00:00 Fri",
            "2026-02-27 00:00:00 Fri",
            "2026-03-06 00:00:00 Fri"
        ]
    );
    assert_eq!(
        runs("0 0 13 * FRI", utc(2026, 3, 7, 0, 0, 0), 2),
        ["2026-03-13 00:00:00 Fri", "2026-03-20 00:00:00 Fri"]
    );
    assert_eq!(
        runs("0 0 10 * FRI", utc(2026, 3, 7, 0, 0, 0), 2),
        ["2026-03-10 00:00:00 Tue", "2026-03-13 00:00:00 Fri"]
    );
    // `L` and `#` take part in the OR as well.
    assert_eq!(
        runs("0 0 L * MON#1", utc(2026, 3, 3, 0, 0, 0), 3),
        [
            "2026-03-31 00:00:00 Tue",
            "2026-04-06 00:00:00 Mon",
            "2026-04-30 00:00:00 Thu"
        ]
    );
}

#[test]
fn a_day_field_starting_with_star_means_both() {
    // `*/2` in day-of-month (odd days) with Monday: odd-numbered Mondays only (Vixie cron's
    // DOM_STAR rule), not every odd day and every Monday.
    assert_eq!(
        runs("0 0 */2 * MON", utc(2026, 6, 1, 0, 0, 0), 3),
        [
            "2026-06-15 00:00:00 Mon",
            "2026-06-29 00:00:00 Mon",
            "2026-07-13 00:00:00 Mon"
        ]
    );
    // The same days written without a leading star: either.
    assert_eq!(
        runs("0 0 1-31/2 * MON", utc(2026, 6, 1, 0, 0, 0), 3),
        [
            "2026-06-03 00:00:00 Wed",
            "2026-06-05 00:00:00 Fri",
            "2026-06-07 00:00:00 Sun"
        ]
    );
    // A leading star in day-of-week: the 15th when it is a Sunday, Tuesday, Thursday or
    // Saturday. 2026-02-15 is a Sunday, 2026-03-15 a Sunday, 2026-04-15 a Wednesday (no),
    // 2026-05-15 a Friday (no), 2026-06-15 a Monday (no), 2026-07-15 a Wednesday (no),
    // 2026-08-15 a Saturday.
    assert_eq!(
        runs("0 0 15 * */2", utc(2026, 1, 16, 0, 0, 0), 3),
        [
            "2026-02-15 00:00:00 Sun",
            "2026-03-15 00:00:00 Sun",
            "2026-08-15 00:00:00 Sat"
        ]
    );
}

// --- EventBridge cron() --------------------------------------------------------------------------

#[test]
fn eventbridge_cron_has_six_fields_with_a_year() {
    assert_eq!(
        runs("cron(0 12 * * ? *)", utc(2026, 1, 1, 12, 0, 0), 2),
        ["2026-01-02 12:00:00 Fri", "2026-01-03 12:00:00 Sat"]
    );
    assert_eq!(
        runs(
            "cron(15 10 ? * MON-FRI 2027)",
            utc(2026, 12, 31, 0, 0, 0),
            2
        ),
        ["2027-01-01 10:15:00 Fri", "2027-01-04 10:15:00 Mon"]
    );
    let once = Schedule::parse("cron(0 0 1 1 ? 2027)").unwrap();
    assert_eq!(
        once.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2027, 1, 1, 0, 0, 0))
    );
    assert_eq!(once.next_after(utc(2027, 1, 1, 0, 0, 0)), None);
    assert_same_runs("CRON(0 12 * * ? *)", "cron(0 12 * * ? *)");
    assert_same_runs("cron( 0 12 * * ? * )", "cron(0 12 * * ? *)");
}

#[test]
fn eventbridge_numbers_days_from_sunday_as_one() {
    assert_same_runs("cron(0 12 ? * 1 *)", "0 12 * * SUN");
    assert_same_runs("cron(0 12 ? * 2-6 *)", "0 12 * * MON-FRI");
    assert_same_runs("cron(0 12 ? * 7 *)", "0 12 * * SAT");
    assert_same_runs("cron(0 12 ? * MON-FRI *)", "0 12 * * MON-FRI");
    assert_same_runs("cron(0 12 ? * SUN *)", "0 12 * * 0");
    // 6L: the last Friday. 2#1: the first Monday. L: Saturday.
    assert_same_runs("cron(0 12 ? * 6L *)", "0 12 * * 5L");
    assert_same_runs("cron(0 12 ? * 2#1 *)", "0 12 * * 1#1");
    assert_same_runs("cron(0 12 ? * L *)", "0 12 * * 6");
    assert_eq!(
        runs("cron(0 12 ? * 6L *)", utc(2026, 1, 1, 0, 0, 0), 2),
        ["2026-01-30 12:00:00 Fri", "2026-02-27 12:00:00 Fri"]
    );
    assert_eq!(
        runs("cron(0 12 ? * 2#1 *)", utc(2026, 1, 15, 0, 0, 0), 1),
        ["2026-02-02 12:00:00 Mon"]
    );
}

#[test]
fn eventbridge_day_of_month_specials() {
    assert_eq!(
        runs("cron(0 8 15W * ? *)", utc(2026, 2, 1, 0, 0, 0), 1),
        ["2026-02-16 08:00:00 Mon"]
    );
    assert_eq!(
        runs("cron(0 8 L * ? *)", utc(2026, 2, 1, 0, 0, 0), 2),
        ["2026-02-28 08:00:00 Sat", "2026-03-31 08:00:00 Tue"]
    );
    assert_eq!(
        runs("cron(0 8 LW * ? *)", utc(2026, 1, 1, 0, 0, 0), 1),
        ["2026-01-30 08:00:00 Fri"]
    );
    assert_eq!(
        runs("cron(0/30 8 1,15 * ? *)", utc(2026, 1, 1, 8, 0, 0), 3),
        [
            "2026-01-01 08:30:00 Thu",
            "2026-01-15 08:00:00 Thu",
            "2026-01-15 08:30:00 Thu"
        ]
    );
}

#[test]
fn eventbridge_needs_exactly_one_question_mark() {
    let msg = |dom: &str, dow: &str| {
        format!(
            "cron(): exactly one of day-of-month and day-of-week must be '?' (found '{dom}' and '{dow}')"
        )
    };
    assert_eq!(error("cron(0 12 * * * *)"), msg("*", "*"));
    assert_eq!(error("cron(0 12 ? * ? *)"), msg("?", "?"));
    assert_eq!(error("cron(0 12 1 * MON *)"), msg("1", "MON"));
    assert!(matches!(
        Schedule::parse("cron(0 12 * * * *)"),
        Err(ScheduleError::AwsQuestionMark { .. })
    ));
    // Day-of-week 0 does not exist in EventBridge numbering.
    assert_eq!(
        error("cron(0 12 ? * 0 *)"),
        "day-of-week: 0 is out of range 1-7"
    );
}

// --- rate() ------------------------------------------------------------------------------------

#[test]
fn rate_counts_periods_from_the_epoch_or_the_anchor() {
    assert_eq!(
        runs("rate(5 minutes)", utc(2026, 1, 1, 10, 7, 0), 2),
        ["2026-01-01 10:10:00 Thu", "2026-01-01 10:15:00 Thu"]
    );
    assert_eq!(
        runs("rate(1 minute)", utc(2026, 1, 1, 10, 7, 30), 1),
        ["2026-01-01 10:08:00 Thu"]
    );
    assert_eq!(
        runs("rate(2 hours)", utc(2026, 1, 1, 1, 0, 0), 1),
        ["2026-01-01 02:00:00 Thu"]
    );
    assert_eq!(
        runs("rate(1 day)", utc(2026, 1, 1, 0, 0, 0), 1),
        ["2026-01-02 00:00:00 Fri"]
    );
    let anchor = utc(2026, 5, 1, 8, 3, 20);
    let s = Schedule::parse("rate(3 days)").unwrap().with_anchor(anchor);
    assert_eq!(s.next_after(utc(2026, 1, 1, 0, 0, 0)), Some(anchor));
    assert_eq!(s.next_after(anchor), Some(utc(2026, 5, 4, 8, 3, 20)));
    assert_eq!(
        s.next_after(utc(2026, 5, 4, 8, 3, 19)),
        Some(utc(2026, 5, 4, 8, 3, 20))
    );
    let s = Schedule::parse("rate(90 minutes)")
        .unwrap()
        .with_anchor(anchor);
    assert_eq!(
        s.next_after(utc(2026, 5, 2, 0, 0, 0)),
        Some(utc(2026, 5, 2, 0, 33, 20))
    );
    for unit in ["hour", "HOURS", "Hour", "days", "minutes"] {
        assert!(
            Schedule::parse(&format!("rate(1 {unit})")).is_ok(),
            "{unit}"
        );
    }
    // The anchor only affects rate().
    let cron = Schedule::parse("0 * * * *").unwrap();
    assert_eq!(cron.clone().with_anchor(anchor), cron);
}

#[test]
fn rate_keeps_real_time_through_dst() {
    // Clocks fall back in New York on 2026-11-01 at 06:00 UTC: an hourly rate stays hourly.
    let s = Schedule::parse_in("rate(1 hour)", "America/New_York").unwrap();
    let got: Vec<_> = s.upcoming(utc(2026, 11, 1, 4, 30, 0)).take(4).collect();
    let want: Vec<_> = (5..9).map(|h| utc(2026, 11, 1, h, 0, 0)).collect();
    assert_eq!(got, want);
}

// --- at() --------------------------------------------------------------------------------------

#[test]
fn at_fires_once_at_a_local_time() {
    let s = Schedule::parse("at(2026-12-01T09:00:00)").unwrap();
    assert!(s.is_one_shot());
    assert_eq!(
        s.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 12, 1, 9, 0, 0))
    );
    assert_eq!(s.next_after(utc(2026, 12, 1, 9, 0, 0)), None);
    assert_eq!(s.upcoming(utc(2020, 1, 1, 0, 0, 0)).count(), 1);
    // Read in the schedule's time zone: 09:00 in Berlin in December is 08:00 UTC.
    let s = Schedule::parse_in("at(2026-12-01T09:00:00)", "Europe/Berlin").unwrap();
    assert_eq!(
        s.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 12, 1, 8, 0, 0))
    );
    assert!(!Schedule::parse("0 * * * *").unwrap().is_one_shot());
}

#[test]
fn at_inside_a_dst_gap_fires_when_the_gap_ends() {
    // 02:30 does not exist in New York on 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT.
    assert_eq!(
        runs_in(
            "at(2026-03-08T02:30:00)",
            "America/New_York",
            utc(2026, 1, 1, 0, 0, 0),
            2
        ),
        ["2026-03-08T03:00:00-04:00"]
    );
    // Lord Howe Island moves its clocks by 30 minutes: 02:15 does not exist on 2026-10-04.
    assert_eq!(
        runs_in(
            "at(2026-10-04T02:15:00)",
            "Australia/Lord_Howe",
            utc(2026, 1, 1, 0, 0, 0),
            2
        ),
        ["2026-10-04T02:30:00+11:00"]
    );
}

#[test]
fn at_inside_a_repeated_hour_fires_at_the_first_occurrence() {
    // 01:30 happens twice in New York on 2026-11-01 (EDT, then EST).
    assert_eq!(
        runs_in(
            "at(2026-11-01T01:30:00)",
            "America/New_York",
            utc(2026, 1, 1, 0, 0, 0),
            2
        ),
        ["2026-11-01T01:30:00-04:00"]
    );
    // Asked between the two occurrences: it has already fired.
    let s = Schedule::parse_in("at(2026-11-01T01:30:00)", "America/New_York").unwrap();
    assert_eq!(s.next_after(utc(2026, 11, 1, 5, 45, 0)), None);
    // 02:30 happens twice in Berlin on 2026-10-25 (CEST, then CET).
    assert_eq!(
        runs_in(
            "at(2026-10-25T02:30:00)",
            "Europe/Berlin",
            utc(2026, 1, 1, 0, 0, 0),
            2
        ),
        ["2026-10-25T02:30:00+02:00"]
    );
}

// --- never-firing expressions ---------------------------------------------------------------------

#[test]
fn expressions_that_never_fire_are_rejected() {
    for expr in [
        "0 0 31 2 *",
        "0 0 30 2 *",
        "0 0 30,31 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 31W 2 *",
        "0 0 0 29 2 ? 2027",
        "0 0 0 29 2 ? 2100",
        "0 0 0 29 2 * 2025-2027",
        "cron(0 0 29 2 ? 2027)",
        "0 0 31 2 */2",
        "0 0 0 1 1 */7 2026",
    ] {
        assert_eq!(
            Schedule::parse(expr),
            Err(ScheduleError::NeverFires),
            "{expr}"
        );
        assert_eq!(
            error(expr),
            "the expression never fires: no date matches its day, month and year fields"
        );
    }
}

#[test]
fn february_29th_fires_on_leap_days_only() {
    assert_eq!(
        runs("0 0 29 2 *", utc(2026, 1, 1, 0, 0, 0), 3),
        [
            "2028-02-29 00:00:00 Tue",
            "2032-02-29 00:00:00 Sun",
            "2036-02-29 00:00:00 Fri"
        ]
    );
    // 2100 is not a leap year.
    assert_eq!(
        runs("0 0 29 2 *", utc(2096, 3, 1, 0, 0, 0), 1),
        ["2104-02-29 00:00:00 Fri"]
    );
    assert_eq!(
        runs("0 0 0 29 2 ? 2027-2030", utc(2020, 3, 1, 0, 0, 0), 2),
        ["2028-02-29 00:00:00 Tue"]
    );
    // Feb 29th OR Mondays of February: restricted in both fields.
    assert!(Schedule::parse("0 0 31 2 MON").is_ok());
}

// --- errors: every variant, with its exact message ----------------------------------------------

#[test]
fn every_error_variant_has_its_exact_message() {
    let cases: &[(&str, ScheduleError, &str)] = &[
        ("", ScheduleError::Empty, "the expression is empty"),
        (" \t ", ScheduleError::Empty, "the expression is empty"),
        (
            "* * * *",
            ScheduleError::FieldCount { found: 4 },
            "expected 5 fields (minute hour day-of-month month day-of-week), 6 (with seconds first) or 7 (with a year last), found 4",
        ),
        (
            "0 0 0 * * * * *",
            ScheduleError::FieldCount { found: 8 },
            "expected 5 fields (minute hour day-of-month month day-of-week), 6 (with seconds first) or 7 (with a year last), found 8",
        ),
        (
            "cron(0 12 * * ?)",
            ScheduleError::AwsFieldCount { found: 5 },
            "cron(): expected 6 fields (minute hour day-of-month month day-of-week year), found 5",
        ),
        (
            "61 * * * *",
            ScheduleError::OutOfRange {
                field: CronField::Minute,
                value: 61,
                min: 0,
                max: 59,
            },
            "minute: 61 is out of range 0-59",
        ),
        (
            "60 * * * * *",
            ScheduleError::OutOfRange {
                field: CronField::Second,
                value: 60,
                min: 0,
                max: 59,
            },
            "second: 60 is out of range 0-59",
        ),
        (
            "0 24 * * *",
            ScheduleError::OutOfRange {
                field: CronField::Hour,
                value: 24,
                min: 0,
                max: 23,
            },
            "hour: 24 is out of range 0-23",
        ),
        (
            "0 0 0 * *",
            ScheduleError::OutOfRange {
                field: CronField::DayOfMonth,
                value: 0,
                min: 1,
                max: 31,
            },
            "day-of-month: 0 is out of range 1-31",
        ),
        (
            "0 0 32W * *",
            ScheduleError::OutOfRange {
                field: CronField::DayOfMonth,
                value: 32,
                min: 1,
                max: 31,
            },
            "day-of-month: 32 is out of range 1-31",
        ),
        (
            "0 0 * 13 *",
            ScheduleError::OutOfRange {
                field: CronField::Month,
                value: 13,
                min: 1,
                max: 12,
            },
            "month: 13 is out of range 1-12",
        ),
        (
            "0 0 * * 8",
            ScheduleError::OutOfRange {
                field: CronField::DayOfWeek,
                value: 8,
                min: 0,
                max: 7,
            },
            "day-of-week: 8 is out of range 0-7",
        ),
        (
            "0 0 * * MON#6",
            ScheduleError::OutOfRange {
                field: CronField::DayOfWeek,
                value: 6,
                min: 1,
                max: 5,
            },
            "day-of-week: 6 is out of range 1-5",
        ),
        (
            "0 0 0 1 1 ? 2200",
            ScheduleError::OutOfRange {
                field: CronField::Year,
                value: 2200,
                min: 1970,
                max: 2199,
            },
            "year: 2200 is out of range 1970-2199",
        ),
        (
            "99999999999999999999999 * * * *",
            ScheduleError::OutOfRange {
                field: CronField::Minute,
                value: u64::MAX,
                min: 0,
                max: 59,
            },
            "minute: 18446744073709551615 is out of range 0-59",
        ),
        (
            "x * * * *",
            ScheduleError::InvalidToken {
                field: CronField::Minute,
                token: "x".into(),
            },
            "minute: 'x' is not a valid value",
        ),
        (
            "0 0 * FOO *",
            ScheduleError::InvalidToken {
                field: CronField::Month,
                token: "FOO".into(),
            },
            "month: 'FOO' is not a valid value",
        ),
        (
            "0 0 * * JAN",
            ScheduleError::InvalidToken {
                field: CronField::DayOfWeek,
                token: "JAN".into(),
            },
            "day-of-week: 'JAN' is not a valid value",
        ),
        (
            "1,,2 * * * *",
            ScheduleError::InvalidToken {
                field: CronField::Minute,
                token: "".into(),
            },
            "minute: '' is not a valid value",
        ),
        (
            "+5 * * * *",
            ScheduleError::InvalidToken {
                field: CronField::Minute,
                token: "+5".into(),
            },
            "minute: '+5' is not a valid value",
        ),
        (
            "*/15 ? * * *",
            ScheduleError::InvalidToken {
                field: CronField::Hour,
                token: "?".into(),
            },
            "hour: '?' is not a valid value",
        ),
        (
            "*/0 * * * *",
            ScheduleError::InvalidStep {
                field: CronField::Minute,
                step: 0,
                max: 60,
            },
            "minute: step 0 must be between 1 and 60",
        ),
        (
            "0 */25 * * *",
            ScheduleError::InvalidStep {
                field: CronField::Hour,
                step: 25,
                max: 24,
            },
            "hour: step 25 must be between 1 and 24",
        ),
        (
            "50-10 * * * *",
            ScheduleError::InvertedRange {
                field: CronField::Minute,
                start: 50,
                end: 10,
            },
            "minute: range 50-10 starts after it ends",
        ),
        (
            "0 0 * * FRI-MON",
            ScheduleError::InvertedRange {
                field: CronField::DayOfWeek,
                start: 5,
                end: 1,
            },
            "day-of-week: range 5-1 starts after it ends",
        ),
        (
            "0 0 MON#1 * *",
            ScheduleError::NotAllowed {
                field: CronField::DayOfMonth,
                token: "MON#1".into(),
            },
            "day-of-month: 'MON#1' is not allowed in this field",
        ),
        (
            "0 0 1,? * *",
            ScheduleError::NotAllowed {
                field: CronField::DayOfMonth,
                token: "?".into(),
            },
            "day-of-month: '?' is not allowed in this field",
        ),
        (
            "cron(0 12 * * * *)",
            ScheduleError::AwsQuestionMark {
                day_of_month: "*".into(),
                day_of_week: "*".into(),
            },
            "cron(): exactly one of day-of-month and day-of-week must be '?' (found '*' and '*')",
        ),
        (
            "@fortnightly",
            ScheduleError::UnknownMacro("@fortnightly".into()),
            "unknown macro '@fortnightly': expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
        ),
        (
            "rate(5 weeks)",
            ScheduleError::InvalidRate(
                "expected 'rate(N unit)' with unit minute(s), hour(s) or day(s), found 'rate(5 weeks)'"
                    .into(),
            ),
            "rate(): expected 'rate(N unit)' with unit minute(s), hour(s) or day(s), found 'rate(5 weeks)'",
        ),
        (
            "rate(5)",
            ScheduleError::InvalidRate(
                "expected 'rate(N unit)' with unit minute(s), hour(s) or day(s), found 'rate(5)'"
                    .into(),
            ),
            "rate(): expected 'rate(N unit)' with unit minute(s), hour(s) or day(s), found 'rate(5)'",
        ),
        (
            "rate(0 minutes)",
            ScheduleError::InvalidRate("the value must be a whole number above 0, found '0'".into()),
            "rate(): the value must be a whole number above 0, found '0'",
        ),
        (
            "rate(-1 minutes)",
            ScheduleError::InvalidRate(
                "the value must be a whole number above 0, found '-1'".into(),
            ),
            "rate(): the value must be a whole number above 0, found '-1'",
        ),
        (
            "rate(+5 minutes)",
            ScheduleError::InvalidRate(
                "the value must be a whole number above 0, found '+5'".into(),
            ),
            "rate(): the value must be a whole number above 0, found '+5'",
        ),
        (
            "rate(3661 days)",
            ScheduleError::InvalidRate(
                "'3661 days' is longer than the maximum of 3660 days".into(),
            ),
            "rate(): '3661 days' is longer than the maximum of 3660 days",
        ),
        (
            "at(2026-12-01 09:00:00)",
            ScheduleError::InvalidAt(
                "'2026-12-01 09:00:00' is not a date and time of the form yyyy-mm-ddThh:mm:ss"
                    .into(),
            ),
            "at(): '2026-12-01 09:00:00' is not a date and time of the form yyyy-mm-ddThh:mm:ss",
        ),
        (
            "at(2026-02-29T09:00:00)",
            ScheduleError::InvalidAt("'2026-02-29T09:00:00' is not a valid date and time".into()),
            "at(): '2026-02-29T09:00:00' is not a valid date and time",
        ),
        (
            "at(2026-12-01T24:00:00)",
            ScheduleError::InvalidAt("'2026-12-01T24:00:00' is not a valid date and time".into()),
            "at(): '2026-12-01T24:00:00' is not a valid date and time",
        ),
        (
            "0 0 31 2 *",
            ScheduleError::NeverFires,
            "the expression never fires: no date matches its day, month and year fields",
        ),
    ];
    for (expr, want, message) in cases {
        let got = Schedule::parse(expr);
        assert_eq!(got.as_ref().err(), Some(want), "{expr:?}");
        assert_eq!(error(expr), *message, "{expr:?}");
    }
}

#[test]
fn an_unknown_time_zone_is_an_error() {
    let err = Schedule::parse_in("0 0 * * *", "Mars/Olympus").unwrap_err();
    assert_eq!(
        err,
        ScheduleError::UnknownTimeZone("Mars/Olympus".to_string())
    );
    assert_eq!(
        err.to_string(),
        "unknown time zone 'Mars/Olympus': expected an IANA name such as Europe/Berlin or UTC"
    );
    assert!(chill_core::schedule::is_valid_timezone("Europe/Berlin"));
    assert!(!chill_core::schedule::is_valid_timezone("europe/nowhere"));
    // UTC and its aliases are UTC.
    for name in ["UTC", "Etc/UTC", "Zulu", "Universal"] {
        let s = Schedule::parse_in("0 0 * * *", name).unwrap();
        assert_eq!(s.timezone(), chrono_tz::Tz::UTC, "{name}");
        assert_eq!(s, Schedule::parse("0 0 * * *").unwrap(), "{name}");
    }
}

#[test]
fn error_fields_are_named_in_messages() {
    for (field, name) in [
        (CronField::Second, "second"),
        (CronField::Minute, "minute"),
        (CronField::Hour, "hour"),
        (CronField::DayOfMonth, "day-of-month"),
        (CronField::Month, "month"),
        (CronField::DayOfWeek, "day-of-week"),
        (CronField::Year, "year"),
    ] {
        assert_eq!(field.name(), name);
        assert_eq!(field.to_string(), name);
    }
}

// --- form -------------------------------------------------------------------------------------------

#[test]
fn white_space_between_and_around_fields_is_free() {
    assert_same_runs("  30\t9  *   * *  ", "30 9 * * *");
    assert_same_runs("\n0 0 12 * * ?\n", "0 12 * * *");
}

#[test]
fn a_schedule_is_small() {
    assert!(std::mem::size_of::<Schedule>() <= 128);
}

#[test]
fn fires_at_agrees_with_next_after() {
    let s = Schedule::parse("0 9 * * MON").unwrap();
    assert!(s.fires_at(utc(2026, 5, 18, 9, 0, 0)));
    assert!(!s.fires_at(utc(2026, 5, 18, 9, 0, 1)));
    assert!(!s.fires_at(utc(2026, 5, 19, 9, 0, 0)));
    assert!(!s.fires_at(utc(2026, 5, 18, 9, 0, 0) + chrono::TimeDelta::milliseconds(1)));
}

#[test]
fn non_ascii_input_is_an_error_not_a_panic() {
    // Found by the fuzzer: a two-byte character right where `rate(` would end.
    for expr in [
        "rat\u{7e5}ateratra(3 dayse(3 days)",
        "rat\u{7e5}(3 days)",
        "cro\u{7e5}(0 12 * * ? *)",
        "a\u{7e5}(2026-12-01T09:00:00)",
        "\u{e9}",
        "0 0 * * MO\u{7e5}",
        "at(2026-12-01T09:00:0\u{e9})",
        "at(2026-12-01T09:00:\u{e9})",
        "rate(\u{e9} minutes)",
        "@da\u{e9}ly",
    ] {
        let err = Schedule::parse(expr).unwrap_err();
        assert!(!err.to_string().is_empty(), "{expr}");
    }
}
