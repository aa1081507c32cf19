//! Schedules: parsing cron, EventBridge and one-shot expressions into one compact compiled form,
//! and computing their next runs in any IANA time zone.
//!
//! Accepted forms:
//!
//! | form | example | notes |
//! |---|---|---|
//! | Unix, 5 fields | `*/5 * * * *` | minute hour day-of-month month day-of-week |
//! | with seconds, 6 fields | `30 */5 * * * *` | second first |
//! | with a year, 7 fields | `0 0 12 * * ? 2027` | second first, year last (1970-2199) |
//! | macros | `@hourly` | `@yearly @annually @monthly @weekly @daily @midnight @hourly` |
//! | EventBridge cron | `cron(0 12 ? * MON-FRI *)` | day-of-week 1-7 with 1 = Sunday; one day field is `?` |
//! | EventBridge rate | `rate(5 minutes)` | minute(s), hour(s), day(s); anchored, see [`Schedule::with_anchor`] |
//! | EventBridge one-shot | `at(2026-12-01T09:00:00)` | read in the schedule's time zone |
//!
//! Every field takes `*`, lists (`1,15`), ranges (`MON-FRI`), steps (`*/15`, `0/15`, `10-50/20`),
//! and names (`JAN`, `MON`). Day-of-month takes `?`, `L` (last day), `LW` (last weekday) and `15W`
//! (the weekday nearest the 15th, within the month). Day-of-week takes `?`, `L` (Saturday), `5L`
//! (the last Friday of the month) and `2#1` (the first Monday). Outside `cron(...)`, day-of-week
//! counts 0-7 with both 0 and 7 meaning Sunday (and `FRI-SUN` is Friday to Sunday).
//!
//! When both day-of-month and day-of-week are restricted, a day matching *either* fires (Vixie
//! cron); when either field starts with `*` (`*/2` too) or is `?`, a day must match both.
//!
//! Time zones and daylight saving time, by default:
//! - a local time that does not exist (clocks spring forward over it) fires once, at the first
//!   valid instant after the gap;
//! - a local time that occurs twice (clocks fall back) fires once, at its first occurrence, when
//!   the hour field is fixed (`30 1 * * *`); when the hour field is a wildcard or a step
//!   (`*/15 * * * *`), the job keeps its real-time rhythm and fires in both occurrences.
//!
//! [`DstPolicy`] changes either rule per schedule.
//!
//! ```
//! use chill_core::Schedule;
//! use chrono::{TimeZone, Utc};
//!
//! let s = Schedule::parse_in("0 9 * * MON-FRI", "Europe/Berlin").unwrap();
//! let after = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(); // a Saturday
//! let next = s.next_after(after).unwrap();
//! assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap()); // Monday 09:00 CET
//! ```

mod civil;
mod cron;
mod error;
mod parse;
mod timing;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use error::{CronField, ScheduleError};
pub use timing::{Blackout, Slot, Timing};

use cron::CronSpec;
use parse::Parsed;

/// What to do with a local time that occurs twice because clocks fall back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RepeatedTime {
    /// [`RepeatedTime::Once`] when the hour field is fixed, [`RepeatedTime::Twice`] when it is a
    /// wildcard or a step (Vixie cron's behaviour). Rate and one-shot schedules are not affected.
    #[default]
    Auto,
    /// Fire at the first occurrence only.
    Once,
    /// Fire at both occurrences (keeps the real-time rhythm of `*/15 * * * *`).
    Twice,
}

/// What to do with a local time that does not exist because clocks spring forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkippedTime {
    /// Fire once, at the first valid instant after the gap.
    #[default]
    AfterGap,
    /// Do not fire for times inside the gap.
    Skip,
}

/// How a schedule treats daylight-saving transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DstPolicy {
    /// Local times that occur twice.
    pub repeated: RepeatedTime,
    /// Local times that do not exist.
    pub skipped: SkippedTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Cron(CronSpec),
    /// Every `period` seconds from `anchor` (Unix seconds).
    Rate {
        anchor: i64,
        period: u32,
    },
    /// Once, at a local time (seconds of the naive local clock).
    At(i64),
}

/// A compiled schedule: an expression, its time zone and its DST policy.
///
/// Small (at most 128 bytes, no heap) and cheap to copy around; computing the next run takes
/// tens to hundreds of nanoseconds. See the [module documentation](self) for the syntax.
///
/// ```
/// use chill_core::Schedule;
/// use chrono::{TimeZone, Utc};
///
/// let s = Schedule::parse("*/15 * * * *").unwrap();
/// let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 7, 0).unwrap();
/// let next: Vec<_> = s.upcoming(t).take(2).collect();
/// assert_eq!(next[0], Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap());
/// assert_eq!(next[1], Utc.with_ymd_and_hms(2026, 1, 1, 10, 30, 0).unwrap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schedule {
    kind: Kind,
    /// `None` is UTC, computed without time zone lookups.
    tz: Option<Tz>,
    dst: DstPolicy,
}

/// Seconds a fall-back transition can move clocks. Daylight saving moves them by up to 2 hours,
/// but zones also change their standard offset: Antarctica/Casey by 3 hours (2010-2023),
/// Antarctica/Vostok by 7 (1994), Pacific/Kwajalein by 23 (1969). A day covers them all.
const MAX_FALL_BACK: i64 = 24 * 3600;

impl Schedule {
    /// Parse an expression in UTC.
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        Self::compile(expr, None)
    }

    /// Parse an expression in an IANA time zone (`Europe/Berlin`, `America/New_York`, `UTC`).
    ///
    /// ```
    /// use chill_core::Schedule;
    /// assert!(Schedule::parse_in("30 2 * * *", "America/New_York").is_ok());
    /// let err = Schedule::parse_in("30 2 * * *", "Mars/Olympus").unwrap_err();
    /// assert!(err.to_string().contains("Mars/Olympus"));
    /// ```
    pub fn parse_in(expr: &str, tz_name: &str) -> Result<Schedule, ScheduleError> {
        let tz = parse_tz(tz_name)?;
        Self::compile(expr, tz)
    }

    fn compile(expr: &str, tz: Option<Tz>) -> Result<Schedule, ScheduleError> {
        let kind = match parse::parse_expression(expr)? {
            Parsed::Cron(spec) => Kind::Cron(spec),
            Parsed::Rate(period) => Kind::Rate { anchor: 0, period },
            Parsed::At(local) => Kind::At(local),
        };
        Ok(Schedule {
            kind,
            tz,
            dst: DstPolicy::default(),
        })
    }

    /// The same schedule with another DST policy.
    pub fn with_dst_policy(mut self, dst: DstPolicy) -> Schedule {
        self.dst = dst;
        self
    }

    /// For `rate(...)` schedules: count periods from `anchor` (the job's start date or its
    /// creation time) instead of from 1970-01-01T00:00:00Z. Other schedules are unchanged.
    ///
    /// ```
    /// use chill_core::Schedule;
    /// use chrono::{TimeZone, Utc};
    /// let created = Utc.with_ymd_and_hms(2026, 5, 1, 8, 3, 20).unwrap();
    /// let s = Schedule::parse("rate(10 minutes)").unwrap().with_anchor(created);
    /// assert_eq!(s.next_after(created).unwrap(), Utc.with_ymd_and_hms(2026, 5, 1, 8, 13, 20).unwrap());
    /// ```
    pub fn with_anchor(mut self, anchor: DateTime<Utc>) -> Schedule {
        if let Kind::Rate { period, .. } = self.kind {
            self.kind = Kind::Rate {
                anchor: anchor.timestamp(),
                period,
            };
        }
        self
    }

    /// The time zone, `UTC` when none was given.
    pub fn timezone(&self) -> Tz {
        self.tz.unwrap_or(Tz::UTC)
    }

    /// The DST policy.
    pub fn dst_policy(&self) -> DstPolicy {
        self.dst
    }

    /// Whether this is a one-shot `at(...)` schedule.
    pub fn is_one_shot(&self) -> bool {
        matches!(self.kind, Kind::At(_))
    }

    /// The first run strictly after `after`, or `None` when there is none (after the run of an
    /// `at(...)`, after the last year of a year field, or past the year 9999).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = after.timestamp();
        let next = match &self.kind {
            Kind::Rate { anchor, period } => {
                let period = i64::from(*period);
                if t < *anchor {
                    *anchor
                } else {
                    anchor + ((t - anchor) / period + 1) * period
                }
            }
            Kind::At(local) => {
                let at = match self.tz {
                    None => *local,
                    Some(tz) => self.resolve_one_shot(tz, *local)?,
                };
                if at > t {
                    at
                } else {
                    return None;
                }
            }
            Kind::Cron(spec) => match self.tz {
                None => spec.next_at_or_after(t.checked_add(1)?)?,
                Some(tz) => self.next_zoned(spec, tz, t)?,
            },
        };
        DateTime::from_timestamp(next, 0)
    }

    /// The runs strictly after `after`, in order.
    pub fn upcoming(&self, after: DateTime<Utc>) -> Upcoming<'_> {
        Upcoming {
            schedule: self,
            last: Some(after),
        }
    }

    /// Whether an instant is a run time of this schedule: `next_after(t - 1s) == t`.
    pub fn fires_at(&self, t: DateTime<Utc>) -> bool {
        t.timestamp_subsec_nanos() == 0
            && t.checked_sub_signed(chrono::TimeDelta::seconds(1))
                .and_then(|prev| self.next_after(prev))
                == Some(t)
    }

    /// Fall-back handling for this schedule: whether a repeated local time fires twice.
    fn repeats(&self, spec: &CronSpec) -> bool {
        match self.dst.repeated {
            RepeatedTime::Auto => spec.hour_is_wildcard(),
            RepeatedTime::Once => false,
            RepeatedTime::Twice => true,
        }
    }

    /// The instant of a one-shot local time: the earlier of two occurrences, or the first
    /// instant after a gap.
    fn resolve_one_shot(&self, tz: Tz, local: i64) -> Option<i64> {
        match resolve_local(tz, local)? {
            LocalResult::Single(u) | LocalResult::Ambiguous(u, _) => Some(u),
            LocalResult::None => Some(gap_end(tz, local)),
        }
    }

    /// The next run strictly after `t` (Unix seconds) in a time zone, with the DST rules.
    fn next_zoned(&self, spec: &CronSpec, tz: Tz, t: i64) -> Option<i64> {
        let offset = offset_at(tz, t)?;
        let twice = self.repeats(spec);
        // `u`, the run the search of local times below finds (`None`: none is left), or a run in
        // the second occurrence of repeated local times, which that search does not see, when
        // one comes first. Those lie past a transition within a day, so a `u` before any (within
        // that day, at the same offset) needs no look. Past the day the offset may have changed
        // and come back (Antarctica/Vostok, 1994): look.
        let earliest = |u: Option<i64>| {
            let past_transition =
                u.is_none_or(|u| u > t + MAX_FALL_BACK || offset_at(tz, u) != Some(offset));
            let second = if twice && past_transition {
                second_occurrence(spec, tz, t, offset)
            } else {
                None
            };
            match (u, second) {
                (Some(u), Some(s)) => Some(u.min(s)),
                (u, s) => u.or(s),
            }
        };
        let mut local_from = t + offset + 1;
        loop {
            // No naive match is left (a year field ran out): a second occurrence may still be.
            let Some(n) = spec.next_at_or_after(local_from) else {
                return earliest(None);
            };
            match resolve_local(tz, n)? {
                LocalResult::Single(u) if u > t => return earliest(Some(u)),
                LocalResult::Ambiguous(first, _) if first > t => return earliest(Some(first)),
                LocalResult::Ambiguous(_, second) if twice && second > t => {
                    return earliest(Some(second));
                }
                LocalResult::Ambiguous(first, second) if !twice => {
                    // `t` lies in the second occurrence of the repeated local times, where this
                    // schedule does not fire: continue after them at once rather than match by
                    // match (every second of an hour, for `* * 1 * * *`).
                    let before = n - first;
                    let transition = find_transition(tz, first, second, before)?;
                    local_from = (transition + before).max(n + 1);
                    continue;
                }
                LocalResult::None => {
                    let end = gap_end(tz, n);
                    match self.dst.skipped {
                        SkippedTime::AfterGap => return earliest(Some(end)),
                        // Continue from the first local time after the gap.
                        SkippedTime::Skip => {
                            local_from = end + offset_at(tz, end)?;
                            continue;
                        }
                    }
                }
                _ => {}
            }
            local_from = n + 1;
        }
    }
}

/// The first run strictly after `t` (Unix seconds) among the second occurrences of the local
/// times that clocks falling back within a day of `t` repeat; `offset` is the offset at `t`.
fn second_occurrence(spec: &CronSpec, tz: Tz, t: i64, offset: i64) -> Option<i64> {
    if offset_at(tz, t + MAX_FALL_BACK)? >= offset {
        return None;
    }
    let transition = find_transition(tz, t, t + MAX_FALL_BACK, offset)?;
    let after = offset_at(tz, transition)?;
    // The repeated local times are [transition + after, transition + offset).
    let from = (transition + after).max(t + after + 1);
    spec.next_at_or_after(from)
        .filter(|&n| n < transition + offset)
        .map(|n| n - after)
}

/// Iterator over the runs of a schedule, from [`Schedule::upcoming`].
#[derive(Debug, Clone)]
pub struct Upcoming<'a> {
    schedule: &'a Schedule,
    last: Option<DateTime<Utc>>,
}

impl Iterator for Upcoming<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        let next = self.schedule.next_after(self.last?);
        self.last = next;
        next
    }
}

impl std::iter::FusedIterator for Upcoming<'_> {}

/// Parse an IANA time zone name; UTC (and its aliases) becomes `None`, the fast path.
fn parse_tz(name: &str) -> Result<Option<Tz>, ScheduleError> {
    let tz: Tz = name
        .parse()
        .map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))?;
    Ok(match tz {
        Tz::UTC
        | Tz::Etc__UTC
        | Tz::Etc__UCT
        | Tz::UCT
        | Tz::Etc__Universal
        | Tz::Universal
        | Tz::Etc__Zulu
        | Tz::Zulu => None,
        tz => Some(tz),
    })
}

/// Whether a name is a time zone a schedule accepts.
pub fn is_valid_timezone(name: &str) -> bool {
    parse_tz(name).is_ok()
}

/// UTC offset in seconds at a Unix time.
fn offset_at(tz: Tz, t: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp(t, 0)?.naive_utc();
    Some(i64::from(
        tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
    ))
}

/// The Unix times of a local time (naive seconds) in a zone.
fn resolve_local(tz: Tz, local: i64) -> Option<LocalResult<i64>> {
    let naive: NaiveDateTime = DateTime::from_timestamp(local, 0)?.naive_utc();
    let to_unix = |o: <Tz as TimeZone>::Offset| local - i64::from(o.fix().local_minus_utc());
    Some(match tz.offset_from_local_datetime(&naive) {
        LocalResult::Single(o) => LocalResult::Single(to_unix(o)),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (to_unix(a), to_unix(b));
            LocalResult::Ambiguous(a.min(b), a.max(b))
        }
        LocalResult::None => LocalResult::None,
    })
}

/// The first instant after the gap that contains the local time `local`: the moment clocks
/// sprang forward.
fn gap_end(tz: Tz, local: i64) -> i64 {
    // The zone database knows the gap: one lookup.
    let known = DateTime::from_timestamp(local, 0)
        .and_then(|t| chrono_tz::GapInfo::new(&t.naive_utc(), &tz))
        .and_then(|gap| gap.end)
        .map(|end| end.timestamp());
    if let Some(end) = known {
        return end;
    }
    // At the edges of the database: search. UTC offsets lie between -14 h and +14 h, so the
    // transition is within this span.
    let (mut lo, hi) = (local - 14 * 3600 - 1, local + 14 * 3600);
    while let Some(before) = offset_at(tz, lo) {
        let Some(t) = find_transition(tz, lo, hi, before) else {
            break;
        };
        let after = offset_at(tz, t).unwrap_or(before);
        if t + before <= local && local < t + after {
            return t;
        }
        lo = t;
    }
    // Unreachable with consistent zone data: fall back to the pre-transition reading.
    local - offset_at(tz, local - 14 * 3600).unwrap_or(0)
}

/// The first Unix time in `(lo, hi]` whose offset differs from `offset` (the offset at `lo`),
/// by bisection.
fn find_transition(tz: Tz, mut lo: i64, mut hi: i64, offset: i64) -> Option<i64> {
    if offset_at(tz, hi)? == offset {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid)? == offset {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}
