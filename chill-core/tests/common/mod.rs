//! Test support shared by the property tests: a cron expression as a small syntax tree, a
//! proptest generator for it, its rendering as text, and an independent matcher and brute-force
//! searches that read the tree directly (nothing here calls the crate's own matching code).
//!
//! The matcher follows the module documentation of `chill_core::schedule` literally, with chrono
//! for the calendar: a day matches when its day-of-month *or* day-of-week matches, unless either
//! field starts with `*` or is `?` (then *and*); `nW` is the weekday (Mon-Fri) nearest day `n`
//! within the month; `LW` the last weekday of the month; `k#n` the n-th weekday `k` of the month;
//! `kL` the last weekday `k`; `L` alone in day-of-week is Saturday.

// Each test file uses a part of this module; helpers unwrap as the tests do.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike,
};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::sample::select;

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// The start of a stepped item: `*/s`, `a/s`, `a-b/s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    Star,
    From(u32),
    Range(u32, u32),
}

/// One list item of a plain field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Star,
    Val(u32),
    Range(u32, u32),
    Step(Base, u32),
}

/// A list of plain items, with a style that says which values are written as names and in which
/// case (bit `i` and bit `16 + i` for the `i`-th value written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plain {
    pub(crate) items: Vec<Item>,
    pub(crate) style: u32,
}

/// A day-of-month list item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DomItem {
    Plain(Item),
    Last,
    LastWeekday,
    Nearest(u32),
}

/// A day-of-week list item, numbered in the expression's dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DowItem {
    Plain(Item),
    /// `k#n`.
    Nth(u32, u32),
    /// `kL`.
    LastOf(u32),
    /// `L` alone: Saturday.
    BareL,
}

/// The two day fields: `?`, or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Days<T> {
    Question,
    Items(Vec<T>, u32),
}

/// How the expression is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `min hour dom month dow`.
    Five,
    /// `sec min hour dom month dow`.
    Six,
    /// `sec min hour dom month dow year`.
    Seven,
    /// `cron(min hour dom month dow year)`, day-of-week 1-7 from Sunday.
    Aws,
}

/// A whole expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expr {
    pub(crate) form: Form,
    pub(crate) seconds: Plain,
    pub(crate) minutes: Plain,
    pub(crate) hours: Plain,
    pub(crate) dom: Days<DomItem>,
    pub(crate) months: Plain,
    pub(crate) dow: Days<DowItem>,
    /// `None` is `*` (or absent).
    pub(crate) years: Option<Plain>,
}

/// Zones with daylight saving time that the property tests run in: the northern and southern
/// hemispheres, a 30-minute change (Lord Howe), offsets of whole half and quarter hours
/// (Adelaide, Kathmandu), transitions at midnight (Santiago).
pub(crate) const DST_ZONES: [&str; 8] = [
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Adelaide",
    "Pacific/Auckland",
    "America/Santiago",
    "Asia/Kathmandu",
];

// --- rendering ---------------------------------------------------------------------------------

/// Names of a field's values: (names, number of the first name).
type Names = Option<(&'static [&'static str], u32)>;

/// Where a value stands in an item: a day name must not change its meaning there (`SUN` is 0 as a
/// start and 7 as the end of a range).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Alone,
    Start,
    End,
}

struct Writer<'a> {
    out: &'a mut String,
    style: u32,
    index: u32,
    names: Names,
    /// Day-of-week numbering of the Unix dialect (0-7).
    unix_days: bool,
}

impl Writer<'_> {
    fn value(&mut self, v: u32, place: Place) {
        let bit = self.index % 16;
        self.index += 1;
        let as_name = self.style >> bit & 1 == 1;
        let lower = self.style >> (16 + bit) & 1 == 1;
        if let (Some((list, first)), true) = (self.names, as_name) {
            let i = (v - first) as usize % list.len();
            // SUN reads as 0 alone and at a range start, and as 7 at a range end only.
            let fits = !self.unix_days
                || match place {
                    Place::Alone => true,
                    Place::Start => v != 7,
                    Place::End => v != 0,
                };
            if fits {
                let name = list[i];
                self.out.push_str(&if lower {
                    name.to_ascii_lowercase()
                } else {
                    name.to_string()
                });
                return;
            }
        }
        self.out.push_str(&v.to_string());
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Star => self.out.push('*'),
            Item::Val(v) => self.value(*v, Place::Alone),
            Item::Range(a, b) => self.range(*a, *b),
            Item::Step(base, s) => {
                match base {
                    Base::Star => self.out.push('*'),
                    // `SUN/2` starts at 0, never at 7.
                    Base::From(a) => self.value(*a, Place::Start),
                    Base::Range(a, b) => self.range(*a, *b),
                }
                self.out.push_str(&format!("/{s}"));
            }
        }
    }

    fn range(&mut self, a: u32, b: u32) {
        self.value(a, Place::Start);
        self.out.push('-');
        // `SUN-SUN` would be ambiguous (and croner reads it as 0-7): write 0-7 as `SUN-7`.
        if self.unix_days && a == 0 && b == 7 {
            self.out.push('7');
            self.index += 1;
        } else {
            self.value(b, Place::End);
        }
    }
}

fn render_items(out: &mut String, items: &[Item], style: u32, names: Names, unix_days: bool) {
    let mut w = Writer {
        out,
        style,
        index: 0,
        names,
        unix_days,
    };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            w.out.push(',');
        }
        w.item(item);
    }
}

impl Plain {
    fn render(&self, names: Names, unix_days: bool) -> String {
        let mut out = String::new();
        render_items(&mut out, &self.items, self.style, names, unix_days);
        out
    }

    /// Whether the field's text starts with `*`.
    fn starts_with_star(&self) -> bool {
        matches!(
            self.items.first(),
            Some(Item::Star | Item::Step(Base::Star, _))
        )
    }

    /// Whether the field is a wildcard or has a step anywhere (the hour rule of the DST policy).
    pub(crate) fn is_wildcard_or_step(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i, Item::Star | Item::Step(..)))
    }

    /// Whether `v` is in the field whose values run from `min` to `max`.
    pub(crate) fn contains(&self, v: u32, min: u32, max: u32) -> bool {
        self.items
            .iter()
            .any(|item| item_contains(item, v, min, max))
    }
}

/// Whether `v` is in one item of a field whose values run from `min` to `max`.
fn item_contains(item: &Item, v: u32, min: u32, max: u32) -> bool {
    match item {
        Item::Star => true,
        Item::Val(a) => v == *a,
        Item::Range(a, b) => (*a..=*b).contains(&v),
        Item::Step(base, s) => {
            let (lo, hi) = match base {
                Base::Star => (min, max),
                Base::From(a) => (*a, max),
                Base::Range(a, b) => (*a, *b),
            };
            (lo..=hi).contains(&v) && (v - lo).is_multiple_of(*s)
        }
    }
}

impl Expr {
    /// The expression as text.
    pub(crate) fn render(&self) -> String {
        let unix_days = self.form != Form::Aws;
        let day_names: Names = Some((&DAY_NAMES, if unix_days { 0 } else { 1 }));
        let dom = match &self.dom {
            Days::Question => "?".to_string(),
            Days::Items(items, style) => {
                let parts: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        DomItem::Plain(p) => {
                            let mut s = String::new();
                            render_items(&mut s, std::slice::from_ref(p), 0, None, false);
                            s
                        }
                        DomItem::Last => "L".into(),
                        DomItem::LastWeekday => {
                            if style >> i & 1 == 1 { "lw" } else { "LW" }.into()
                        }
                        DomItem::Nearest(d) => {
                            format!("{d}{}", if style >> i & 1 == 1 { "w" } else { "W" })
                        }
                    })
                    .collect();
                parts.join(",")
            }
        };
        let dow = match &self.dow {
            Days::Question => "?".to_string(),
            Days::Items(items, style) => {
                let parts: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let style = style.rotate_left(i as u32 * 3);
                        match item {
                            DowItem::Plain(p) => {
                                let mut s = String::new();
                                render_items(
                                    &mut s,
                                    std::slice::from_ref(p),
                                    style,
                                    day_names,
                                    unix_days,
                                );
                                s
                            }
                            DowItem::Nth(k, n) => {
                                let mut s = String::new();
                                render_items(&mut s, &[Item::Val(*k)], style, day_names, unix_days);
                                format!("{s}#{n}")
                            }
                            DowItem::LastOf(k) => {
                                let mut s = String::new();
                                render_items(&mut s, &[Item::Val(*k)], style, day_names, unix_days);
                                format!("{s}L")
                            }
                            DowItem::BareL => "L".into(),
                        }
                    })
                    .collect();
                parts.join(",")
            }
        };
        let months = self.months.render(Some((&MONTH_NAMES, 1)), false);
        let minutes = self.minutes.render(None, false);
        let hours = self.hours.render(None, false);
        let seconds = self.seconds.render(None, false);
        let years = self
            .years
            .as_ref()
            .map_or("*".to_string(), |y| y.render(None, false));
        match self.form {
            Form::Five => format!("{minutes} {hours} {dom} {months} {dow}"),
            Form::Six => format!("{seconds} {minutes} {hours} {dom} {months} {dow}"),
            Form::Seven => format!("{seconds} {minutes} {hours} {dom} {months} {dow} {years}"),
            Form::Aws => format!("cron({minutes} {hours} {dom} {months} {dow} {years})"),
        }
    }

    /// The day-of-month text starts with `*` or is `?`.
    fn dom_star(&self) -> bool {
        match &self.dom {
            Days::Question => true,
            Days::Items(items, _) => matches!(
                items.first(),
                Some(DomItem::Plain(Item::Star | Item::Step(Base::Star, _)))
            ),
        }
    }

    /// The day-of-week text starts with `*` or is `?`.
    fn dow_star(&self) -> bool {
        match &self.dow {
            Days::Question => true,
            Days::Items(items, _) => matches!(
                items.first(),
                Some(DowItem::Plain(Item::Star | Item::Step(Base::Star, _)))
            ),
        }
    }

    /// Whether the day-of-month field is exactly `*` or `?` (croner's "star" test).
    pub(crate) fn dom_is_exactly_star(&self) -> bool {
        match &self.dom {
            Days::Question => true,
            Days::Items(items, _) => items == &[DomItem::Plain(Item::Star)],
        }
    }

    /// Whether the day-of-week field is exactly `*` or `?`.
    pub(crate) fn dow_is_exactly_star(&self) -> bool {
        match &self.dow {
            Days::Question => true,
            Days::Items(items, _) => items == &[DowItem::Plain(Item::Star)],
        }
    }

    /// Whether either day field starts with `*` or is `?`: a day must match both.
    pub(crate) fn days_and(&self) -> bool {
        self.dom_star() || self.dow_star()
    }

    /// Whether the default DST policy fires repeated local times twice (hour field a wildcard
    /// or a step).
    pub(crate) fn hour_repeats(&self) -> bool {
        self.hours.is_wildcard_or_step()
    }

    /// The weekday (0 = Sunday) of a day-of-week number of this expression's dialect.
    fn weekday_of(&self, v: u32) -> u32 {
        if self.form == Form::Aws { v - 1 } else { v % 7 }
    }

    fn dow_range(&self) -> (u32, u32) {
        if self.form == Form::Aws {
            (1, 7)
        } else {
            (0, 7)
        }
    }

    /// Whether a date matches the year, month and day fields.
    pub(crate) fn matches_date(&self, date: NaiveDate) -> bool {
        let (y, m, d) = (date.year(), date.month(), date.day());
        if self
            .years
            .as_ref()
            .is_some_and(|years| !years.contains_year(y))
        {
            return false;
        }
        if !self.months.contains(m, 1, 12) {
            return false;
        }
        let dim = days_in_month(y, m);
        let w = date.weekday().num_days_from_sunday();
        // Weekday of another day of the same month.
        let weekday = |day: u32| (w + 35 + day - d) % 7;
        let is_weekday = |day: u32| (1..=5).contains(&weekday(day));
        let dom_ok = match &self.dom {
            Days::Question => true,
            Days::Items(items, _) => items.iter().any(|item| match item {
                DomItem::Plain(p) => item_contains(p, d, 1, 31),
                DomItem::Last => d == dim,
                DomItem::LastWeekday => (1..=dim).rev().find(|&x| is_weekday(x)) == Some(d),
                // The weekday of the month at the smallest distance from n (a weekend day has
                // a weekday within three days).
                DomItem::Nearest(n) => {
                    *n <= dim
                        && (n.saturating_sub(3).max(1)..=(n + 3).min(dim))
                            .filter(|&x| is_weekday(x))
                            .min_by_key(|&x| x.abs_diff(*n))
                            == Some(d)
                }
            }),
        };
        let (lo, hi) = self.dow_range();
        let dow_ok = match &self.dow {
            Days::Question => true,
            Days::Items(items, _) => items.iter().any(|item| match item {
                DowItem::Plain(p) => {
                    (lo..=hi).any(|v| self.weekday_of(v) == w && item_contains(p, v, lo, hi))
                }
                DowItem::Nth(k, n) => self.weekday_of(*k) == w && (d - 1) / 7 + 1 == *n,
                DowItem::LastOf(k) => self.weekday_of(*k) == w && d + 7 > dim,
                DowItem::BareL => w == 6,
            }),
        };
        if self.days_and() {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        }
    }

    fn matches_second(&self, s: u32) -> bool {
        match self.form {
            Form::Five | Form::Aws => s == 0,
            Form::Six | Form::Seven => self.seconds.contains(s, 0, 59),
        }
    }

    /// Whether a local date, hour and minute match (any second).
    pub(crate) fn matches_minute(&self, t: NaiveDateTime) -> bool {
        self.matches_date(t.date())
            && self.hours.contains(t.hour(), 0, 23)
            && self.minutes.contains(t.minute(), 0, 59)
    }

    /// Whether a local date and time matches every field.
    pub(crate) fn matches(&self, t: NaiveDateTime) -> bool {
        self.matches_date(t.date())
            && self.hours.contains(t.hour(), 0, 23)
            && self.minutes.contains(t.minute(), 0, 59)
            && self.matches_second(t.second())
    }

    /// Whether the expression has a seconds field.
    pub(crate) fn has_seconds(&self) -> bool {
        matches!(self.form, Form::Six | Form::Seven)
    }
}

impl Plain {
    fn contains_year(&self, y: i32) -> bool {
        u32::try_from(y).is_ok_and(|y| self.contains(y, 1970, 2199))
    }
}

/// Days of a month, from chrono.
pub(crate) fn days_in_month(y: i32, m: u32) -> u32 {
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.unwrap().pred_opt().unwrap().day()
}

// --- brute force ----------------------------------------------------------------------------------

/// The first naive time strictly after `after` that matches, scanning forward second by second
/// (skipping whole days, hours and minutes that cannot match), up to `limit`.
pub(crate) fn brute_next(
    expr: &Expr,
    after: NaiveDateTime,
    limit: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let mut t = after + chrono::TimeDelta::seconds(1);
    let mut checked_date = None;
    while t <= limit {
        let date = t.date();
        if checked_date != Some(date) {
            if !expr.matches_date(date) {
                t = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            checked_date = Some(date);
        }
        if !expr.hours.contains(t.hour(), 0, 23) {
            t = t.with_minute(0)?.with_second(0)? + chrono::TimeDelta::hours(1);
            continue;
        }
        if !expr.minutes.contains(t.minute(), 0, 59) {
            t = t.with_second(0)? + chrono::TimeDelta::minutes(1);
            continue;
        }
        if !expr.matches_second(t.second()) {
            t += chrono::TimeDelta::seconds(1);
            continue;
        }
        return Some(t);
    }
    None
}

/// UTC offset of a zone at a Unix time, in seconds.
pub(crate) fn offset_at(tz: Tz, t: i64) -> i64 {
    let utc = DateTime::from_timestamp(t, 0).unwrap().naive_utc();
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// Every offset change of `tz` in `(from, to]` (Unix seconds), by bisection over six-hour steps.
pub(crate) fn transitions(tz: Tz, from: i64, to: i64) -> Vec<i64> {
    let step = 6 * 3600;
    let mut found = Vec::new();
    let mut t = from;
    while t < to {
        let (mut lo, mut hi) = (t, t + step);
        if offset_at(tz, lo) != offset_at(tz, hi) {
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(tz, mid) == offset_at(tz, lo) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            found.push(hi);
        }
        t += step;
    }
    found
}

/// The offset changes of a zone in `(from, to]`, computed once per zone and test run.
pub(crate) fn transitions_cached(name: &'static str, from: i64, to: i64) -> Vec<i64> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Cache = Mutex<HashMap<(&'static str, i64, i64), Vec<i64>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap().get(&(name, from, to)) {
        return found.clone();
    }
    let found = transitions(name.parse().unwrap(), from, to);
    cache
        .lock()
        .unwrap()
        .insert((name, from, to), found.clone());
    found
}

/// The first minute boundary at or after `t`.
fn next_minute(t: i64) -> i64 {
    (t + 59).div_euclid(60) * 60
}

/// The DST rules of the module documentation, as a predicate on real instants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZonedRules {
    pub(crate) tz: Tz,
    /// Repeated local times fire at both occurrences.
    pub(crate) twice: bool,
    /// Local times inside a gap fire once at the gap's end (else they do not fire).
    pub(crate) after_gap: bool,
}

impl ZonedRules {
    /// Whether the schedule fires at the instant `u` (Unix seconds): its local time matches and
    /// it is the first occurrence (or repeated times fire twice), or `u` is the end of a gap
    /// some local time of which matches.
    pub(crate) fn fires(&self, expr: &Expr, u: i64) -> bool {
        let local = DateTime::from_timestamp(u, 0)
            .unwrap()
            .with_timezone(&self.tz)
            .naive_local();
        if expr.matches(local) {
            let second_occurrence = match self.tz.from_local_datetime(&local) {
                LocalResult::Ambiguous(a, b) => {
                    let later = a.timestamp().max(b.timestamp());
                    u == later
                }
                _ => false,
            };
            if !second_occurrence || self.twice {
                return true;
            }
        }
        if self.after_gap {
            let (before, after) = (offset_at(self.tz, u - 1), offset_at(self.tz, u));
            if after > before {
                // `u` ends a gap: the local times [u + before, u + after) did not exist.
                let step = if expr.has_seconds() { 1 } else { 60 };
                let gap_start = u + before;
                return (0..(after - before) / step).any(|i| {
                    let l = DateTime::from_timestamp(gap_start + i * step, 0)
                        .unwrap()
                        .naive_utc();
                    expr.matches(l)
                });
            }
        }
        false
    }

    /// The first instant strictly after `after` at which the schedule fires, scanning real time
    /// minute by minute (second by second with a seconds field), skipping local days whose date
    /// cannot match; `None` when there is none up to `limit`.
    ///
    /// Offsets and transitions fall on whole minutes, so real and local minute boundaries
    /// coincide and a gap can only end on a minute boundary.
    pub(crate) fn brute_next(&self, expr: &Expr, after: i64, limit: i64) -> Option<i64> {
        // Seconds of the minute `after` is in, then minute by minute.
        if expr.has_seconds() {
            let found = (after + 1..next_minute(after + 1))
                .take_while(|&u| u <= limit)
                .find(|&u| self.fires(expr, u));
            if found.is_some() {
                return found;
            }
        }
        let mut u = next_minute(after + 1);
        while u <= limit {
            let local = DateTime::from_timestamp(u, 0)
                .unwrap()
                .with_timezone(&self.tz)
                .naive_local();
            // An offset change at `u` (`u` may end a gap) or within the next day.
            let offset_changes = offset_at(self.tz, u - 1) != offset_at(self.tz, u + 86_400);
            if !offset_changes && !expr.matches_date(local.date()) {
                // Jump to the next local midnight: no offset change before it.
                u += 86_400 - i64::from(local.num_seconds_from_midnight());
                continue;
            }
            if self.fires(expr, u) {
                return Some(u);
            }
            if expr.has_seconds()
                && expr.matches_minute(local)
                && let Some(found) = (u + 1..u + 60)
                    .take_while(|&x| x <= limit)
                    .find(|&x| self.fires(expr, x))
            {
                return Some(found);
            }
            u += 60;
        }
        None
    }
}

// --- generation -------------------------------------------------------------------------------

/// What the generator may produce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grammar {
    /// Only what croner 4 reads the same way (no `*` inside a list, no bare `L` in day-of-week,
    /// not both `L` and `LW`, no `?` outside the day fields, no year).
    pub(crate) croner: bool,
    /// The forms to draw from.
    pub(crate) forms: &'static [Form],
}

fn item(min: u32, max: u32, favourite: Vec<u32>) -> impl Strategy<Value = Item> {
    let span = max - min + 1;
    let value = prop_oneof![3 => min..=max, 1 => select(favourite)];
    let step = prop_oneof![3 => 1..=span.min(12), 1 => 1..=span];
    let base = prop_oneof![
        Just(Base::Star),
        (min..=max).prop_map(Base::From),
        (min..=max, min..=max).prop_map(|(a, b)| Base::Range(a.min(b), a.max(b))),
    ];
    prop_oneof![
        4 => value.clone().prop_map(Item::Val),
        3 => (value.clone(), value).prop_map(|(a, b)| Item::Range(a.min(b), a.max(b))),
        3 => (base, step).prop_map(|(b, s)| Item::Step(b, s)),
    ]
}

/// A plain field: `*` alone, or a list of 1-3 items (with `*` inside it unless for croner).
fn plain(min: u32, max: u32, favourite: Vec<u32>, croner: bool) -> impl Strategy<Value = Plain> {
    let items = move || prop::collection::vec(item(min, max, favourite.clone()), 1..=3);
    let star_in_list = if croner { 0 } else { 1 };
    prop_oneof![
        2 => Just(vec![Item::Star]),
        6 => items(),
        star_in_list => items().prop_map(|mut v| {
            v.push(Item::Star);
            v
        }),
    ]
    .prop_flat_map(|items| (Just(items), any::<u32>()))
    .prop_map(|(items, style)| Plain { items, style })
}

fn dom(croner: bool) -> impl Strategy<Value = Days<DomItem>> {
    let special = prop_oneof![
        Just(DomItem::Last),
        Just(DomItem::LastWeekday),
        (1u32..=31).prop_map(DomItem::Nearest),
        select(vec![1u32, 15, 28, 29, 30, 31]).prop_map(DomItem::Nearest),
    ];
    let entry = prop_oneof![
        4 => item(1, 31, vec![1, 15, 28, 29, 30, 31]).prop_map(DomItem::Plain),
        2 => special,
    ];
    let list = prop::collection::vec(entry, 1..=3)
        .prop_filter("croner reads L,LW as LW", move |v| {
            !(croner && v.contains(&DomItem::Last) && v.contains(&DomItem::LastWeekday))
        });
    prop_oneof![
        1 => Just(Days::Question),
        4 => Just(Days::Items(vec![DomItem::Plain(Item::Star)], 0)),
        6 => (list, any::<u32>()).prop_map(|(v, s)| Days::Items(v, s)),
    ]
}

fn dow(aws: bool, croner: bool) -> impl Strategy<Value = Days<DowItem>> {
    let (lo, hi) = if aws { (1, 7) } else { (0, 7) };
    let bare_l = if croner { 0 } else { 1 };
    let entry = prop_oneof![
        5 => item(lo, hi, vec![lo, hi]).prop_map(DowItem::Plain),
        2 => (lo..=hi, 1u32..=5).prop_map(|(k, n)| DowItem::Nth(k, n)),
        2 => (lo..=hi).prop_map(DowItem::LastOf),
        bare_l => Just(DowItem::BareL),
    ];
    prop_oneof![
        1 => Just(Days::Question),
        4 => Just(Days::Items(vec![DowItem::Plain(Item::Star)], 0)),
        5 => (prop::collection::vec(entry, 1..=3), any::<u32>())
            .prop_map(|(v, s)| Days::Items(v, s)),
    ]
}

/// Random expressions of the grammar. Hours favour those that clocks skip or repeat.
pub(crate) fn expr(grammar: Grammar) -> impl Strategy<Value = Expr> {
    let croner = grammar.croner;
    select(grammar.forms.to_vec()).prop_flat_map(move |form| {
        let aws = form == Form::Aws;
        let days = (dom(croner), dow(aws, croner)).prop_filter_map(
            "cron() needs exactly one '?'",
            move |(dom, dow)| {
                if !aws {
                    return Some((dom, dow));
                }
                let (dq, wq) = (dom == Days::Question, dow == Days::Question);
                match (dq, wq) {
                    (true, false) | (false, true) => Some((dom, dow)),
                    (false, false) => Some((dom, Days::Question)),
                    (true, true) => None,
                }
            },
        );
        let years = prop_oneof![
            2 => Just(None),
            1 => plain(2020, 2040, vec![2026, 2028], true).prop_map(Some),
        ];
        (
            plain(0, 59, vec![0, 30, 59], croner),
            plain(0, 59, vec![0, 15, 30, 45, 59], croner),
            plain(0, 23, vec![0, 1, 2, 3, 23], croner),
            days,
            plain(1, 12, vec![2, 3, 4, 9, 10, 11], croner),
            years,
        )
            .prop_map(
                move |(seconds, minutes, hours, (dom, dow), months, years)| Expr {
                    form,
                    seconds,
                    minutes,
                    hours,
                    dom,
                    months,
                    dow,
                    years: if matches!(form, Form::Seven | Form::Aws) {
                        years
                    } else {
                        None
                    },
                },
            )
    })
}
