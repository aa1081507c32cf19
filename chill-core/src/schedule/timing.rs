//! A job's timing: its schedule plus window, blackout periods and jitter, applied in one place.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::Schedule;

/// A period during which a job does not run. Slots inside it are reported as blacked out, so
/// the engine records them as skipped with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blackout {
    /// First instant of the period (inclusive).
    pub start: DateTime<Utc>,
    /// End of the period (exclusive).
    pub end: DateTime<Utc>,
    /// Why the job does not run then, shown on the skipped executions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Blackout {
    /// Whether an instant lies inside the period.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// One run of a job as its timing computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The schedule's time for the run: the slot's identity, jitter excluded.
    pub scheduled_for: DateTime<Utc>,
    /// When the run is due: `scheduled_for` plus the job's jitter offset.
    pub fire_at: DateTime<Utc>,
    /// The blackout period the slot falls in, if any: such a slot is not run but recorded as
    /// skipped.
    pub blackout: Option<Blackout>,
}

/// A schedule with a window, blackout periods and a jitter offset.
///
/// ```
/// use chill_core::{Schedule, Timing};
/// use chrono::{TimeZone, Utc};
///
/// let start = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
/// let timing = Timing::new(Schedule::parse("0 9 * * *").unwrap())
///     .with_window(Some(start), None)
///     .with_jitter("job-42", 300);
/// let slot = timing.next_slot(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()).unwrap();
/// assert_eq!(slot.scheduled_for, Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap());
/// assert!(slot.fire_at >= slot.scheduled_for);
/// assert!(slot.fire_at - slot.scheduled_for <= chrono::TimeDelta::seconds(300));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    schedule: Schedule,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    /// Sorted by start.
    blackouts: Vec<Blackout>,
    jitter: TimeDelta,
}

impl Timing {
    /// A timing with no window, no blackouts and no jitter.
    pub fn new(schedule: Schedule) -> Timing {
        Timing {
            schedule,
            start: None,
            end: None,
            blackouts: Vec::new(),
            jitter: TimeDelta::zero(),
        }
    }

    /// Only slots at or after `start` and at or before `end` run.
    pub fn with_window(
        mut self,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Timing {
        self.start = start;
        self.end = end;
        self
    }

    /// Slots inside these periods are reported as blacked out.
    pub fn with_blackouts(mut self, mut blackouts: Vec<Blackout>) -> Timing {
        blackouts.sort_by_key(|b| b.start);
        self.blackouts = blackouts;
        self
    }

    /// Delay every slot by a stable offset in `0..=max_secs` seconds derived from `key` (the
    /// job id), so that jobs scheduled for the same minute spread out. The offset is the same
    /// on every instance and every run.
    pub fn with_jitter(mut self, key: &str, max_secs: u32) -> Timing {
        self.jitter = TimeDelta::seconds(jitter_offset(key, max_secs).into());
        self
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The jitter offset added to every slot.
    pub fn jitter(&self) -> TimeDelta {
        self.jitter
    }

    /// The first slot whose scheduled time is strictly after `after`, within the window; `None`
    /// when the schedule has no more runs in it.
    pub fn next_slot(&self, after: DateTime<Utc>) -> Option<Slot> {
        let after = match self.start {
            Some(start) if start > after => start - TimeDelta::nanoseconds(1),
            _ => after,
        };
        let scheduled_for = self.schedule.next_after(after)?;
        if self.end.is_some_and(|end| scheduled_for > end) {
            return None;
        }
        Some(self.slot_at(scheduled_for))
    }

    /// The slot whose due time is `fire_at` (the inverse of the jitter).
    pub fn slot_due_at(&self, fire_at: DateTime<Utc>) -> Slot {
        self.slot_at(fire_at - self.jitter)
    }

    fn slot_at(&self, scheduled_for: DateTime<Utc>) -> Slot {
        // Blackouts are sorted and few; a linear scan that stops early is enough.
        let blackout = self
            .blackouts
            .iter()
            .take_while(|b| b.start <= scheduled_for)
            .find(|b| b.contains(scheduled_for))
            .cloned();
        Slot {
            scheduled_for,
            fire_at: scheduled_for + self.jitter,
            blackout,
        }
    }
}

/// A stable offset in `0..=max_secs` from a key: FNV-1a, fixed across platforms and releases.
pub(crate) fn jitter_offset(key: &str, max_secs: u32) -> u32 {
    if max_secs == 0 {
        return 0;
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % (u64::from(max_secs) + 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn window_bounds_are_inclusive() {
        let t = Timing::new(Schedule::parse("0 * * * *").expect("parse"))
            .with_window(Some(at(9, 0)), Some(at(11, 0)));
        let slots: Vec<_> =
            std::iter::successors(t.next_slot(at(0, 0)), |s| t.next_slot(s.scheduled_for))
                .map(|s| s.scheduled_for)
                .collect();
        assert_eq!(slots, vec![at(9, 0), at(10, 0), at(11, 0)]);
    }

    #[test]
    fn blackout_slots_are_reported_not_dropped() {
        let b = Blackout {
            start: at(10, 0),
            end: at(11, 0),
            reason: Some("deploy".into()),
        };
        let t = Timing::new(Schedule::parse("*/30 * * * *").expect("parse"))
            .with_blackouts(vec![b.clone()]);
        let s = t.next_slot(at(9, 59)).expect("slot");
        assert_eq!((s.scheduled_for, s.blackout), (at(10, 0), Some(b.clone())));
        let s = t.next_slot(at(10, 0)).expect("slot");
        assert_eq!((s.scheduled_for, s.blackout), (at(10, 30), Some(b)));
        let s = t.next_slot(at(10, 30)).expect("slot");
        assert_eq!(
            (s.scheduled_for, s.blackout),
            (at(11, 0), None),
            "end is exclusive"
        );
    }

    #[test]
    fn jitter_is_stable_bounded_and_spreads() {
        assert_eq!(jitter_offset("job-1", 0), 0);
        assert_eq!(jitter_offset("job-1", 600), jitter_offset("job-1", 600));
        let offsets: std::collections::HashSet<u32> = (0..1000)
            .map(|i| jitter_offset(&format!("job-{i}"), 600))
            .collect();
        assert!(offsets.iter().all(|o| *o <= 600));
        assert!(
            offsets.len() > 400,
            "1000 jobs over 601 offsets should spread, got {}",
            offsets.len()
        );
        let t = Timing::new(Schedule::parse("0 9 * * *").expect("parse")).with_jitter("job-7", 600);
        let s = t.next_slot(at(0, 0)).expect("slot");
        assert_eq!(
            s.fire_at - s.scheduled_for,
            TimeDelta::seconds(jitter_offset("job-7", 600).into())
        );
        assert_eq!(t.slot_due_at(s.fire_at).scheduled_for, s.scheduled_for);
    }
}
