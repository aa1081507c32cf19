//! Proleptic Gregorian calendar arithmetic on plain integers.
//!
//! The schedule search works on seconds counted from 1970-01-01T00:00:00 of a *local* (naive)
//! clock, so it needs conversions between that count and calendar fields that cost a few
//! nanoseconds. The algorithms are Howard Hinnant's `days_from_civil` / `civil_from_days`.

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// A calendar date and time of day, without a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Civil {
    pub(crate) year: i32,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl Civil {
    /// The calendar fields of `secs` seconds after 1970-01-01T00:00:00.
    pub(crate) fn from_secs(secs: i64) -> Civil {
        let days = secs.div_euclid(DAY);
        let rem = secs.rem_euclid(DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }

    /// Seconds after 1970-01-01T00:00:00.
    pub(crate) fn to_secs(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * DAY
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

/// Days since 1970-01-01 of a date.
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` days after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// Whether `year` has a 29 February.
pub(crate) fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days of a month.
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week of a date, 0 = Sunday.
pub(crate) fn weekday(year: i32, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday (4).
    (days_from_civil(year, month, day) + 4).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_for_a_thousand_years() {
        let start = days_from_civil(1600, 1, 1);
        let end = days_from_civil(2600, 1, 1);
        let mut expected = (1600, 1, 1);
        for d in start..end {
            let got = civil_from_days(d);
            assert_eq!(got, expected, "day {d}");
            assert_eq!(days_from_civil(got.0, got.1, got.2), d);
            let (y, m, dd) = expected;
            expected = if dd < days_in_month(y, m) {
                (y, m, dd + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn weekdays_and_leap_years() {
        assert_eq!(weekday(1970, 1, 1), 4);
        assert_eq!(weekday(2026, 11, 29), 0); // a Sunday
        assert_eq!(weekday(2000, 2, 29), 2); // a Tuesday
        assert!(is_leap(2000) && is_leap(2024) && !is_leap(1900) && !is_leap(2100));
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2028, 2), 29);
    }

    #[test]
    fn secs_round_trip_including_before_1970() {
        for secs in [
            -86_401_i64,
            -1,
            0,
            1,
            951_782_400,
            4_102_444_799,
            253_402_300_799,
        ] {
            assert_eq!(Civil::from_secs(secs).to_secs(), secs);
        }
        let c = Civil::from_secs(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (1969, 12, 31, 23, 59, 59)
        );
    }
}
