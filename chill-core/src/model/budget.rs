//! Money: a job's spending limits ([`Budget`]) and what it spent in the current day and month
//! ([`Spend`]). Amounts are integers in millionths of a US dollar, so sums are exact.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

/// Spending limits per UTC day and per UTC month, in millionths of a US dollar. A job whose
/// spend in the current period reached a limit does not run: its slots are recorded as
/// skipped with errorType `budget_exceeded`.
///
/// ```
/// use chill_core::Budget;
/// let b = Budget::per_day_usd(2.5);
/// assert_eq!(b.daily_micro_usd, Some(2_500_000));
/// assert_eq!(b.monthly_micro_usd, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Budget {
    /// Most spent per UTC day.
    pub daily_micro_usd: Option<u64>,
    /// Most spent per UTC month.
    pub monthly_micro_usd: Option<u64>,
}

impl Budget {
    /// A daily limit in US dollars (rounded to the micro-dollar; negative counts as zero).
    pub fn per_day_usd(usd: f64) -> Budget {
        Budget {
            daily_micro_usd: Some(micro_usd(usd)),
            monthly_micro_usd: None,
        }
    }

    /// A monthly limit in US dollars (rounded to the micro-dollar; negative counts as zero).
    pub fn per_month_usd(usd: f64) -> Budget {
        Budget {
            daily_micro_usd: None,
            monthly_micro_usd: Some(micro_usd(usd)),
        }
    }

    /// Which limit, if any, `spend` has reached at `at`: `Some("daily")` or `Some("monthly")`.
    ///
    /// ```
    /// use chill_core::{Budget, Spend};
    /// use chrono::{TimeZone, Utc};
    /// let at = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    /// let mut spend = Spend::default();
    /// spend.add(at, 2_000_000);
    /// assert_eq!(Budget::per_day_usd(2.0).exceeded_by(&spend, at), Some("daily"));
    /// assert_eq!(Budget::per_day_usd(3.0).exceeded_by(&spend, at), None);
    /// // the next day starts from zero
    /// assert_eq!(Budget::per_day_usd(2.0).exceeded_by(&spend, at + chrono::TimeDelta::days(1)), None);
    /// ```
    pub fn exceeded_by(&self, spend: &Spend, at: DateTime<Utc>) -> Option<&'static str> {
        let (day, month) = spend.at(at);
        if self.daily_micro_usd.is_some_and(|limit| day >= limit) {
            Some("daily")
        } else if self.monthly_micro_usd.is_some_and(|limit| month >= limit) {
            Some("monthly")
        } else {
            None
        }
    }
}

fn micro_usd(usd: f64) -> u64 {
    (usd.max(0.0) * 1_000_000.0).round() as u64
}

/// What a job spent in the current UTC day and month, kept with its statistics by the store's
/// finish (see [`crate::store::StatsDelta`]). The periods roll over by themselves: a spend
/// recorded for an earlier day reads as zero today.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Spend {
    /// The day of `day_micro_usd`, as `YYYYMMDD` (0: none yet).
    pub day: u32,
    /// Spent on that day.
    pub day_micro_usd: u64,
    /// The month of `month_micro_usd`, as `YYYYMM` (0: none yet).
    pub month: u32,
    /// Spent in that month.
    pub month_micro_usd: u64,
}

impl Spend {
    /// The `YYYYMMDD` and `YYYYMM` keys of the UTC day and month of `at`.
    ///
    /// ```
    /// use chill_core::Spend;
    /// use chrono::{TimeZone, Utc};
    /// assert_eq!(Spend::keys(Utc.with_ymd_and_hms(2026, 2, 3, 23, 59, 0).unwrap()), (20260203, 202602));
    /// ```
    pub fn keys(at: DateTime<Utc>) -> (u32, u32) {
        let month = at.year().max(0) as u32 * 100 + at.month();
        (month * 100 + at.day(), month)
    }

    /// Add `micro_usd` spent at `at`, starting a new day or month when `at` is in a later one.
    /// A spend dated before the current period (a late finish) still counts in the current
    /// period: nothing is lost.
    pub fn add(&mut self, at: DateTime<Utc>, micro_usd: u64) {
        let (day, month) = Spend::keys(at);
        if day > self.day {
            self.day = day;
            self.day_micro_usd = 0;
        }
        if month > self.month {
            self.month = month;
            self.month_micro_usd = 0;
        }
        self.day_micro_usd = self.day_micro_usd.saturating_add(micro_usd);
        self.month_micro_usd = self.month_micro_usd.saturating_add(micro_usd);
    }

    /// Spent in the day and in the month of `at` (zero for a period with no spend recorded).
    pub fn at(&self, at: DateTime<Utc>) -> (u64, u64) {
        let (day, month) = Spend::keys(at);
        (
            if self.day == day {
                self.day_micro_usd
            } else {
                0
            },
            if self.month == month {
                self.month_micro_usd
            } else {
                0
            },
        )
    }
}
