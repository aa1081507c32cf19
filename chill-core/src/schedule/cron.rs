//! The compiled form of a cron expression (one bitset per field) and the search for the next
//! matching local time.

use super::civil::{Civil, days_in_month, weekday};

/// First year of the year bitset.
pub(crate) const YEAR_MIN: i32 = 1970;
/// Last year a year field may name (EventBridge's limit).
pub(crate) const YEAR_MAX: i32 = 2199;
/// The search gives up past this year (chrono's and most databases' limit is 9999).
const SEARCH_YEAR_LIMIT: i32 = 9999;

/// Day-of-month field started with `*` or was `?` (Vixie cron's rule: AND instead of OR).
pub(crate) const DOM_STAR: u8 = 1;
/// Day-of-week field started with `*` or was `?`.
pub(crate) const DOW_STAR: u8 = 1 << 1;
/// `L` in day-of-month: the last day of the month.
pub(crate) const DOM_LAST: u8 = 1 << 2;
/// `LW` in day-of-month: the last weekday (Mon-Fri) of the month.
pub(crate) const DOM_LAST_WEEKDAY: u8 = 1 << 3;
/// The year field restricts years (7-field form or `cron(...)` with a year other than `*`).
pub(crate) const YEAR_SET: u8 = 1 << 4;
/// The hour field was a wildcard or a step: such a job keeps its real-time rhythm when
/// clocks fall back (see [`super::RepeatedTime::Auto`]).
pub(crate) const HOUR_WILDCARD: u8 = 1 << 5;

/// A cron expression compiled to bitsets. Bit `n` of a field set means value `n` matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CronSpec {
    pub(crate) seconds: u64,
    pub(crate) minutes: u64,
    /// `#` entries: bit `(n - 1) * 7 + weekday` for "the n-th weekday of the month".
    pub(crate) dow_nth: u64,
    /// Years from [`YEAR_MIN`]: bit `y - YEAR_MIN`. Only read when [`YEAR_SET`] is set.
    pub(crate) years: [u64; 4],
    pub(crate) hours: u32,
    /// Days 1-31 (bit 0 unused).
    pub(crate) days_of_month: u32,
    /// `nW` entries: days 1-31 whose nearest weekday matches.
    pub(crate) nearest_weekday: u32,
    /// Months 1-12 (bit 0 unused).
    pub(crate) months: u16,
    /// Weekdays 0-6, 0 = Sunday.
    pub(crate) days_of_week: u8,
    /// `nL` entries: "the last such weekday of the month", bit = weekday.
    pub(crate) dow_last: u8,
    pub(crate) flags: u8,
}

/// Smallest set bit of `bits` at or above `from`.
#[inline]
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits >> from;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

impl CronSpec {
    #[inline]
    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether the hour field was a wildcard or a step.
    pub(crate) fn hour_is_wildcard(&self) -> bool {
        self.has(HOUR_WILDCARD)
    }

    #[cfg(test)]
    fn year_matches(&self, year: i32) -> bool {
        if !self.has(YEAR_SET) {
            return true;
        }
        let Some(i) = year.checked_sub(YEAR_MIN).filter(|i| (0..256).contains(i)) else {
            return false;
        };
        self.years[i as usize / 64] >> (i % 64) & 1 == 1
    }

    /// The first year at or after `year` that the year field allows.
    fn next_year(&self, year: i32) -> Option<i32> {
        if !self.has(YEAR_SET) {
            return Some(year);
        }
        let from = (year.max(YEAR_MIN) - YEAR_MIN) as u32;
        (from..256)
            .find(|&i| self.years[i as usize / 64] >> (i % 64) & 1 == 1)
            .map(|i| YEAR_MIN + i as i32)
    }

    /// The days (bit `d` for day `d`) of a month that match the day-of-month and day-of-week
    /// fields, combined as Vixie cron does: AND when either field starts with `*`, OR otherwise.
    pub(crate) fn day_mask(&self, year: i32, month: u32) -> u32 {
        let dim = days_in_month(year, month);
        let first_weekday = weekday(year, month, 1);
        self.day_mask_for(dim, first_weekday)
    }

    /// [`Self::day_mask`] for a month of `dim` days whose first day falls on `w1` (0 = Sunday).
    pub(crate) fn day_mask_for(&self, dim: u32, w1: u32) -> u32 {
        let valid: u32 = ((1u64 << (dim + 1)) - 2) as u32;
        let weekday_of = |d: u32| (w1 + d - 1) % 7;

        let mut dom = self.days_of_month & valid;
        if self.has(DOM_LAST) {
            dom |= 1 << dim;
        }
        if self.has(DOM_LAST_WEEKDAY) {
            let d = match weekday_of(dim) {
                0 => dim - 2,
                6 => dim - 1,
                _ => dim,
            };
            dom |= 1 << d;
        }
        let mut w = self.nearest_weekday & valid;
        while w != 0 {
            let d = w.trailing_zeros();
            w &= w - 1;
            let nearest = match weekday_of(d) {
                6 if d == 1 => 3,
                6 => d - 1,
                0 if d == dim => d - 2,
                0 => d + 1,
                _ => d,
            };
            dom |= 1 << nearest;
        }

        // Rotate the weekday set so that bit i says whether day i + 1 matches, then repeat it
        // over five weeks.
        let set = u64::from(self.days_of_week);
        let rotated = ((set >> w1) | (set << (7 - w1))) & 0x7f;
        let weeks = rotated | rotated << 7 | rotated << 14 | rotated << 21 | rotated << 28;
        let mut dow = ((weeks << 1) as u32) & valid;
        if self.dow_last != 0 {
            let last_weekday = weekday_of(dim);
            let mut l = self.dow_last;
            while l != 0 {
                let k = l.trailing_zeros();
                l &= l - 1;
                dow |= 1 << (dim - (last_weekday + 7 - k) % 7);
            }
        }
        let mut nth = self.dow_nth;
        while nth != 0 {
            let b = nth.trailing_zeros();
            nth &= nth - 1;
            let (n, k) = (b / 7, b % 7);
            let d = 1 + (k + 7 - w1) % 7 + 7 * n;
            if d <= dim {
                dow |= 1 << d;
            }
        }

        if self.flags & (DOM_STAR | DOW_STAR) != 0 {
            dom & dow
        } else {
            dom | dow
        }
    }

    /// Whether any date at all matches, decided without a long search: over every month the
    /// month field allows, each length it can have and each weekday it can start on (or, when
    /// the year field restricts years, over those years' real months).
    pub(crate) fn ever_fires(&self) -> bool {
        if self.has(YEAR_SET) {
            let mut year = self.next_year(YEAR_MIN);
            while let Some(y) = year {
                if (1..=12).any(|m| self.months >> m & 1 == 1 && self.day_mask(y, m) != 0) {
                    return true;
                }
                year = self.next_year(y + 1);
            }
            return false;
        }
        (1..=12u32).filter(|m| self.months >> m & 1 == 1).any(|m| {
            let lengths: &[u32] = match m {
                2 => &[28, 29],
                4 | 6 | 9 | 11 => &[30],
                _ => &[31],
            };
            lengths
                .iter()
                .any(|&dim| (0..7).any(|w1| self.day_mask_for(dim, w1) != 0))
        })
    }

    /// Whether a local time matches every field.
    #[cfg(test)]
    pub(crate) fn matches(&self, c: Civil) -> bool {
        self.year_matches(c.year)
            && self.months >> c.month & 1 == 1
            && self.day_mask(c.year, c.month) >> c.day & 1 == 1
            && self.hours >> c.hour & 1 == 1
            && self.minutes >> c.minute & 1 == 1
            && self.seconds >> c.second & 1 == 1
    }

    /// The first local time, in seconds of the naive local clock, at or after `from` that
    /// matches; `None` when there is none before the year 10000.
    pub(crate) fn next_at_or_after(&self, from: i64) -> Option<i64> {
        let c = Civil::from_secs(from);
        let (mut year, mut month, mut day) = (c.year, c.month, c.day);
        let (mut hour, mut minute, mut second) = (c.hour, c.minute, c.second);
        'year: loop {
            if year > SEARCH_YEAR_LIMIT {
                return None;
            }
            let y = self.next_year(year)?;
            if y != year {
                (year, month, day, hour, minute, second) = (y, 1, 1, 0, 0, 0);
            }
            'month: loop {
                let Some(m) = next_bit(u64::from(self.months), month) else {
                    (year, month, day, hour, minute, second) = (year + 1, 1, 1, 0, 0, 0);
                    continue 'year;
                };
                if m != month {
                    (month, day, hour, minute, second) = (m, 1, 0, 0, 0);
                }
                let mask = u64::from(self.day_mask(year, month));
                'day: loop {
                    let Some(d) = next_bit(mask, day) else {
                        (month, day, hour, minute, second) = (month + 1, 1, 0, 0, 0);
                        continue 'month;
                    };
                    if d != day {
                        (day, hour, minute, second) = (d, 0, 0, 0);
                    }
                    loop {
                        let Some(h) = next_bit(u64::from(self.hours), hour) else {
                            (day, hour, minute, second) = (day + 1, 0, 0, 0);
                            continue 'day;
                        };
                        if h != hour {
                            (hour, minute, second) = (h, 0, 0);
                        }
                        let Some(mi) = next_bit(self.minutes, minute) else {
                            (hour, minute, second) = (hour + 1, 0, 0);
                            continue;
                        };
                        if mi != minute {
                            (minute, second) = (mi, 0);
                        }
                        let Some(s) = next_bit(self.seconds, second) else {
                            (minute, second) = (minute + 1, 0);
                            continue;
                        };
                        let found = Civil {
                            year,
                            month,
                            day,
                            hour,
                            minute,
                            second: s,
                        };
                        return Some(found.to_secs());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{Parsed, parse_expression};
    use super::*;

    fn spec(expr: &str) -> CronSpec {
        match parse_expression(expr) {
            Ok(Parsed::Cron(spec)) => spec,
            other => panic!("{expr}: {other:?}"),
        }
    }

    /// Scans second by second: the slow, obviously right answer.
    fn scan(spec: &CronSpec, from: i64, limit: i64) -> Option<i64> {
        (from..from + limit).find(|&t| spec.matches(Civil::from_secs(t)))
    }

    #[test]
    fn next_match_equals_a_second_by_second_scan() {
        let from = Civil {
            year: 2028,
            month: 2,
            day: 27,
            hour: 22,
            minute: 58,
            second: 30,
        }
        .to_secs();
        for expr in [
            "* * * * * *",
            "*/7 * * * * *",
            "0 */5 * * * *",
            "0 0 * * *",
            "15 1 29 2 *",
            "0 0 L * *",
            "0 0 LW * *",
            "0 0 1W * *",
            "0 0 * * 5L",
            "0 0 * * MON#1",
            "0 0 1 * MON",
            "0 0 */2 * MON",
            "0 0 0 1 1 ? 2029",
        ] {
            let s = spec(expr);
            let limit = 2 * 366 * 86_400;
            assert_eq!(s.next_at_or_after(from), scan(&s, from, limit), "{expr}");
        }
    }

    #[test]
    fn year_field_limits_the_search() {
        let s = spec("0 0 0 1 1 ? 2027-2028");
        assert!(s.year_matches(2027) && s.year_matches(2028) && !s.year_matches(2029));
        let after_last = Civil {
            year: 2028,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 1,
        }
        .to_secs();
        assert_eq!(s.next_at_or_after(after_last), None);
    }
}
