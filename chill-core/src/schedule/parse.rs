//! Parsing of every accepted expression form into its compiled representation.

use super::civil::Civil;
use super::cron::{
    CronSpec, DOM_LAST, DOM_LAST_WEEKDAY, DOM_STAR, DOW_STAR, HOUR_WILDCARD, YEAR_MAX, YEAR_MIN,
    YEAR_SET,
};
use super::error::{CronField, ScheduleError};

/// What an expression compiles to, before a time zone is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Cron(CronSpec),
    /// A fixed period in seconds.
    Rate(u32),
    /// A one-shot local time, in seconds of the naive local clock.
    At(i64),
}

/// How the fields of a cron expression are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// crontab and Quartz-like forms: day-of-week 0-7, 0 and 7 are Sunday.
    Unix,
    /// EventBridge `cron(...)`: day-of-week 1-7, 1 is Sunday; one of the day fields is `?`.
    Aws,
}

/// The names a field accepts and the number of the first one.
#[derive(Clone, Copy)]
struct Names {
    list: &'static [&'static str],
    first: u32,
}

const NO_NAMES: Names = Names {
    list: &[],
    first: 0,
};
const MONTHS: Names = Names {
    list: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    first: 1,
};
const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const UNIX_DAYS: Names = Names {
    list: DAY_NAMES,
    first: 0,
};
const AWS_DAYS: Names = Names {
    list: DAY_NAMES,
    first: 1,
};

/// Parse any accepted form: 5/6/7-field cron, `@macro`, `cron(...)`, `rate(...)`, `at(...)`.
pub(crate) fn parse_expression(expr: &str) -> Result<Parsed, ScheduleError> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err(ScheduleError::Empty);
    }
    if let Some(name) = expr.strip_prefix('@') {
        let fields = match name.to_ascii_lowercase().as_str() {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            _ => return Err(ScheduleError::UnknownMacro(expr.to_string())),
        };
        return parse_unix(fields);
    }
    if let Some(inner) = strip_call(expr, "cron") {
        return parse_aws(inner);
    }
    if let Some(inner) = strip_call(expr, "rate") {
        return parse_rate(inner).map(Parsed::Rate);
    }
    if let Some(inner) = strip_call(expr, "at") {
        return parse_at(inner).map(Parsed::At);
    }
    parse_unix(expr)
}

/// `name(inner)` → `inner`, case-insensitively on the name.
fn strip_call<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    let (n, bytes) = (name.len(), expr.as_bytes());
    // Compared as bytes: `expr` may hold a multi-byte character right after the name's length.
    if bytes.len() <= n || !bytes[..n].eq_ignore_ascii_case(name.as_bytes()) || bytes[n] != b'(' {
        return None;
    }
    // The name and `(` are ASCII, so `n + 1` is a character boundary.
    expr[n + 1..].strip_suffix(')').map(str::trim)
}

fn parse_unix(expr: &str) -> Result<Parsed, ScheduleError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (sec, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 | 7 => (fields[0], &fields[1..]),
        found => return Err(ScheduleError::FieldCount { found }),
    };
    let year = rest.get(5).copied();
    compile(
        sec,
        rest[0],
        rest[1],
        rest[2],
        rest[3],
        rest[4],
        year,
        Dialect::Unix,
    )
}

fn parse_aws(inner: &str) -> Result<Parsed, ScheduleError> {
    let f: Vec<&str> = inner.split_whitespace().collect();
    if f.len() != 6 {
        return Err(ScheduleError::AwsFieldCount { found: f.len() });
    }
    if (f[2] == "?") == (f[4] == "?") {
        return Err(ScheduleError::AwsQuestionMark {
            day_of_month: f[2].to_string(),
            day_of_week: f[4].to_string(),
        });
    }
    compile("0", f[0], f[1], f[2], f[3], f[4], Some(f[5]), Dialect::Aws)
}

#[allow(clippy::too_many_arguments)]
fn compile(
    sec: &str,
    min: &str,
    hour: &str,
    dom: &str,
    month: &str,
    dow: &str,
    year: Option<&str>,
    dialect: Dialect,
) -> Result<Parsed, ScheduleError> {
    let mut spec = CronSpec {
        seconds: plain_field(sec, CronField::Second, 0, 59, NO_NAMES)?,
        minutes: plain_field(min, CronField::Minute, 0, 59, NO_NAMES)?,
        hours: plain_field(hour, CronField::Hour, 0, 23, NO_NAMES)? as u32,
        months: plain_field(month, CronField::Month, 1, 12, MONTHS)? as u16,
        dow_nth: 0,
        years: [0; 4],
        days_of_month: 0,
        nearest_weekday: 0,
        days_of_week: 0,
        dow_last: 0,
        flags: 0,
    };
    if hour.contains(['*', '/']) {
        spec.flags |= HOUR_WILDCARD;
    }
    day_of_month_field(dom, &mut spec)?;
    day_of_week_field(dow, dialect, &mut spec)?;
    if let Some(year) = year.filter(|y| *y != "*") {
        let bits = |lo: u32, hi: u32, step: u32, years: &mut [u64; 4]| {
            for y in (lo..=hi).step_by(step as usize) {
                let i = y - YEAR_MIN as u32;
                years[i as usize / 64] |= 1 << (i % 64);
            }
        };
        for item in year.split(',') {
            let (lo, hi, step) = item_range(
                item,
                CronField::Year,
                YEAR_MIN as u32,
                YEAR_MAX as u32,
                NO_NAMES,
            )?;
            bits(lo, hi, step, &mut spec.years);
        }
        spec.flags |= YEAR_SET;
    }
    if !spec.ever_fires() {
        return Err(ScheduleError::NeverFires);
    }
    Ok(Parsed::Cron(spec))
}

/// A field of numbers (and names): lists, ranges, steps and `*`.
fn plain_field(
    text: &str,
    field: CronField,
    min: u32,
    max: u32,
    names: Names,
) -> Result<u64, ScheduleError> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (lo, hi, step) = item_range(item, field, min, max, names)?;
        for v in (lo..=hi).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// One list item of the plain grammar: `*`, `a`, `a-b`, each with an optional `/step`.
/// Returns the inclusive range and the step.
fn item_range(
    item: &str,
    field: CronField,
    min: u32,
    max: u32,
    names: Names,
) -> Result<(u32, u32, u32), ScheduleError> {
    if item.is_empty() {
        return Err(ScheduleError::InvalidToken {
            field,
            token: item.to_string(),
        });
    }
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => {
            let span = max - min + 1;
            let step = number(step, field).and_then(|s| {
                if (1..=u64::from(span)).contains(&s) {
                    Ok(s as u32)
                } else {
                    Err(ScheduleError::InvalidStep {
                        field,
                        step: s,
                        max: span,
                    })
                }
            })?;
            (base, Some(step))
        }
        None => (item, None),
    };
    let (lo, hi) = if base == "*" {
        (min, max)
    } else if let Some((a, b)) = base.split_once('-') {
        let (a, b_text) = (value(a, field, min, max, names)?, b);
        let mut b = value(b_text, field, min, max, names)?;
        // Where Sunday is both 0 and 7, the name SUN ending a range is 7: `FRI-SUN` is Friday
        // to Sunday, not an inverted range.
        if b == 0 && a > 0 && max == 7 && !b_text.starts_with(|c: char| c.is_ascii_digit()) {
            b = 7;
        }
        if a > b {
            return Err(ScheduleError::InvertedRange {
                field,
                start: a,
                end: b,
            });
        }
        (a, b)
    } else {
        let a = value(base, field, min, max, names)?;
        // `a/step` runs from a to the end of the field.
        (a, if step.is_some() { max } else { a })
    };
    Ok((lo, hi, step.unwrap_or(1)))
}

/// A decimal number (no sign, no spaces).
fn number(text: &str, field: CronField) -> Result<u64, ScheduleError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::InvalidToken {
            field,
            token: text.to_string(),
        });
    }
    // Overlong numbers saturate: they are out of range either way.
    Ok(text.parse::<u64>().unwrap_or(u64::MAX))
}

/// A number or a name, checked against the field's range.
fn value(
    text: &str,
    field: CronField,
    min: u32,
    max: u32,
    names: Names,
) -> Result<u32, ScheduleError> {
    if let Some(i) = names.list.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + names.first);
    }
    let n = number(text, field)?;
    if n < u64::from(min) || n > u64::from(max) {
        return Err(ScheduleError::OutOfRange {
            field,
            value: n,
            min,
            max,
        });
    }
    Ok(n as u32)
}

fn day_of_month_field(text: &str, spec: &mut CronSpec) -> Result<(), ScheduleError> {
    let field = CronField::DayOfMonth;
    if text == "?" || text.starts_with('*') {
        spec.flags |= DOM_STAR;
    }
    if text == "?" {
        spec.days_of_month = plain_field("*", field, 1, 31, NO_NAMES)? as u32;
        return Ok(());
    }
    for item in text.split(',') {
        if item.eq_ignore_ascii_case("L") {
            spec.flags |= DOM_LAST;
        } else if item.eq_ignore_ascii_case("LW") {
            spec.flags |= DOM_LAST_WEEKDAY;
        } else if let Some(day) = item.strip_suffix(['W', 'w']) {
            spec.nearest_weekday |= 1 << value(day, field, 1, 31, NO_NAMES)?;
        } else if item.contains(['L', 'l', '#', '?']) {
            return Err(ScheduleError::NotAllowed {
                field,
                token: item.to_string(),
            });
        } else {
            spec.days_of_month |= plain_field(item, field, 1, 31, NO_NAMES)? as u32;
        }
    }
    Ok(())
}

fn day_of_week_field(
    text: &str,
    dialect: Dialect,
    spec: &mut CronSpec,
) -> Result<(), ScheduleError> {
    let field = CronField::DayOfWeek;
    if text == "?" || text.starts_with('*') {
        spec.flags |= DOW_STAR;
    }
    if text == "?" {
        spec.days_of_week = 0x7f;
        return Ok(());
    }
    let (min, max, names) = match dialect {
        Dialect::Unix => (0, 7, UNIX_DAYS),
        Dialect::Aws => (1, 7, AWS_DAYS),
    };
    // The weekday (0 = Sunday) of a day-of-week number of the dialect.
    let weekday = |v: u32| match dialect {
        Dialect::Unix => v % 7,
        Dialect::Aws => v - 1,
    };
    for item in text.split(',') {
        if item.eq_ignore_ascii_case("L") {
            // "The last day of the week": Saturday.
            spec.days_of_week |= 1 << 6;
        } else if let Some(day) = item.strip_suffix(['L', 'l']) {
            spec.dow_last |= 1 << weekday(value(day, field, min, max, names)?);
        } else if let Some((day, nth)) = item.split_once('#') {
            let k = weekday(value(day, field, min, max, names)?);
            let n = number(nth, field)?;
            if !(1..=5).contains(&n) {
                return Err(ScheduleError::OutOfRange {
                    field,
                    value: n,
                    min: 1,
                    max: 5,
                });
            }
            spec.dow_nth |= 1 << ((n as u32 - 1) * 7 + k);
        } else {
            let bits = plain_field(item, field, min, max, names)?;
            for v in min..=max {
                if bits >> v & 1 == 1 {
                    spec.days_of_week |= 1 << weekday(v);
                }
            }
        }
    }
    Ok(())
}

fn parse_rate(inner: &str) -> Result<u32, ScheduleError> {
    let usage = || {
        ScheduleError::InvalidRate(format!(
            "expected 'rate(N unit)' with unit minute(s), hour(s) or day(s), found 'rate({inner})'"
        ))
    };
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(usage());
    };
    let unit_secs: u64 = match unit.to_ascii_lowercase().as_str() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return Err(usage()),
    };
    // Digits only: `u64::from_str` would also take a leading `+`.
    let digits = n.bytes().all(|b| b.is_ascii_digit());
    let value = match n.parse::<u64>() {
        Ok(v) if v > 0 && digits => v,
        _ => {
            return Err(ScheduleError::InvalidRate(format!(
                "the value must be a whole number above 0, found '{n}'"
            )));
        }
    };
    // Up to ten years between runs.
    let secs = value.saturating_mul(unit_secs);
    if secs > 10 * 366 * 86_400 {
        return Err(ScheduleError::InvalidRate(format!(
            "'{n} {unit}' is longer than the maximum of 3660 days"
        )));
    }
    Ok(secs as u32)
}

fn parse_at(inner: &str) -> Result<i64, ScheduleError> {
    let bad = || {
        ScheduleError::InvalidAt(format!(
            "'{inner}' is not a date and time of the form yyyy-mm-ddThh:mm:ss"
        ))
    };
    let b = inner.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, ScheduleError> {
        let s = &inner[r];
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let year = year as i32;
    if !(1..=12).contains(&month)
        || day == 0
        || day > super::civil::days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(ScheduleError::InvalidAt(format!(
            "'{inner}' is not a valid date and time"
        )));
    }
    Ok(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    }
    .to_secs())
}
