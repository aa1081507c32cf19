//! The benchmarks compare equal work: on every case and start instant, the three libraries
//! compute the same next run, except where their DST rules differ.

use chill_benches::{CASES, start_instants};
use chrono::{DateTime, TimeZone, Utc};

#[test]
fn peers_agree_on_every_benchmark_input() {
    // `cron` 0.17 skips a local time that does not exist; chill-core (by default) and croner fire
    // at the first instant after the gap.
    let spring_forward = Utc.with_ymd_and_hms(2026, 3, 8, 6, 45, 0).unwrap();
    for case in CASES {
        let (chill, cron, croner) = (case.chill(), case.cron(), case.croner());
        let tz = case.zone();
        for t in start_instants() {
            let local = t.with_timezone(&tz);
            let ours = chill.next_after(t);
            let by_croner = croner
                .find_next_occurrence(&local, false)
                .ok()
                .map(|d| d.with_timezone(&Utc));
            let by_cron = cron.after(&local).next().map(|d| d.with_timezone(&Utc));
            assert!(ours.is_some_and(|n| n > t), "{} from {t}", case.name);
            assert_eq!(ours, by_croner, "{} from {t}: croner", case.name);
            if case.tz.is_some() && t == spring_forward {
                let skipped: Option<DateTime<Utc>> =
                    Utc.with_ymd_and_hms(2026, 3, 9, 6, 30, 0).single();
                assert_eq!(
                    by_cron, skipped,
                    "{} from {t}: cron skips the gap",
                    case.name
                );
                assert_eq!(ours, Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).single());
            } else {
                assert_eq!(ours, by_cron, "{} from {t}: cron", case.name);
            }
        }
    }
}

#[test]
fn start_instants_cover_the_year_and_its_hard_spots() {
    let starts = start_instants();
    assert_eq!(starts.len(), chill_benches::STARTS);
    assert!(starts.windows(2).all(|w| w[0] < w[1]));
    assert!(starts[0] < Utc.with_ymd_and_hms(2026, 1, 8, 0, 0, 0).unwrap());
    assert!(starts[starts.len() - 1] == Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap());
    for hard in [
        Utc.with_ymd_and_hms(2026, 2, 28, 23, 59, 59).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 8, 6, 45, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 1, 6, 15, 0).unwrap(),
    ] {
        assert!(starts.contains(&hard), "{hard}");
    }
}
