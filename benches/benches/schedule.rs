//! Schedule parsing and next-run search: chill-core, `cron` 0.17 and `croner` 4 side by side.
//!
//! For each case of [`chill_benches::CASES`] two criterion groups, `parse/<case>` and
//! `next_after/<case>`, each with one function per library, all on the same inputs:
//!
//! - `parse`: chill-core's `Schedule::parse` (`Schedule::parse_in` for a zoned case, which also
//!   looks up the zone name; the peers take the zone later, with the start time), `cron`'s
//!   `Schedule::from_str` on the 6-field form with seconds (`0 */5 * * * *` for `*/5 * * * *`:
//!   `cron` has no 5-field form), `croner`'s `Cron::from_str`.
//! - `next_after`: the first run strictly after a start instant. Each iteration takes the next of
//!   [`chill_benches::STARTS`] instants spread over 2026 (DST changes and month ends included),
//!   so the time is an average over the year, not one lucky instant. chill-core takes a
//!   `DateTime<Utc>`; the peers take the instant already in the case's zone (`chrono::Utc` for the
//!   UTC cases, `chrono_tz::Tz` otherwise), converted outside the timed loop.
//!
//! Run with `cargo bench -p chill-benches --bench schedule -- --warm-up-time 1
//! --measurement-time 3`; `benches/report.py` turns the results into a Markdown table.

use std::hint::black_box;

use chill_benches::{CASES, Case, STARTS, start_instants, starts_in};
use chrono::{DateTime, TimeZone};
use criterion::{Criterion, criterion_group, criterion_main};

/// The next index into the start instants, cycling.
#[inline]
fn next_index(i: &mut usize) -> usize {
    *i = (*i + 1) & (STARTS - 1);
    *i
}

fn parse(c: &mut Criterion) {
    for case in CASES {
        let mut group = c.benchmark_group(format!("parse/{}", case.name));
        group.bench_function("chill-core", |b| match case.tz {
            None => b.iter(|| chill_core::Schedule::parse(black_box(case.expr))),
            Some(tz) => {
                b.iter(|| chill_core::Schedule::parse_in(black_box(case.expr), black_box(tz)))
            }
        });
        group.bench_function("cron", |b| {
            b.iter(|| black_box(case.cron_expr).parse::<cron::Schedule>())
        });
        group.bench_function("croner", |b| {
            b.iter(|| black_box(case.expr).parse::<croner::Cron>())
        });
        group.finish();
    }
}

/// The peers' `next_after` on start instants of the zone type `Z`.
fn next_after_peers<Z: TimeZone>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &Case,
    starts: &[DateTime<Z>],
) {
    let cron = case.cron();
    group.bench_function("cron", |b| {
        let mut i = 0;
        b.iter(|| cron.after(black_box(&starts[next_index(&mut i)])).next())
    });
    let croner = case.croner();
    group.bench_function("croner", |b| {
        let mut i = 0;
        b.iter(|| croner.find_next_occurrence(black_box(&starts[next_index(&mut i)]), false))
    });
}

fn next_after(c: &mut Criterion) {
    let starts = start_instants();
    for case in CASES {
        let mut group = c.benchmark_group(format!("next_after/{}", case.name));
        let chill = case.chill();
        group.bench_function("chill-core", |b| {
            let mut i = 0;
            b.iter(|| chill.next_after(black_box(starts[next_index(&mut i)])))
        });
        match case.tz {
            None => next_after_peers(&mut group, &case, &starts),
            Some(_) => next_after_peers(&mut group, &case, &starts_in(case.zone())),
        }
        group.finish();
    }
}

criterion_group!(benches, parse, next_after);
criterion_main!(benches);
