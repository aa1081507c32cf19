//! Ids of jobs and executions: UUIDs behind newtypes, so that one cannot stand for the other.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::validate::{ValidationError, echo};

/// The namespace of ChillScheduler's name-based (v5) execution ids. Fixed forever: changing it
/// would change the id of every slot, and with it the guarantee that a slot runs once.
const NAMESPACE: Uuid = Uuid::from_u128(0xa612_5d8f_a8f1_48ee_b41c_cb27_78ce_efbc);

/// The methods and traits both ids share: `from_uuid`, `as_uuid`, `Display`, `FromStr` (an
/// error names the field) and `From<Uuid>`.
macro_rules! uuid_id {
    ($name:ident, $field:literal) => {
        impl $name {
            /// An existing UUID as this kind of id.
            pub const fn from_uuid(uuid: Uuid) -> $name {
                $name(uuid)
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<$name, ValidationError> {
                parse_uuid($field, s).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> $name {
                $name(uuid)
            }
        }
    };
}

fn parse_uuid(field: &str, s: &str) -> Result<Uuid, ValidationError> {
    Uuid::parse_str(s).map_err(|_| {
        ValidationError::new(
            field,
            format!(
                "{} is not a valid id: expected a UUID such as 0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60",
                echo(s)
            ),
        )
    })
}

/// The id of a [`Job`](super::Job). New ids are UUID v7, so they sort by creation time.
///
/// ```
/// use chill_core::JobId;
/// let id = JobId::new();
/// assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
/// assert_eq!(
///     "nope".parse::<JobId>().unwrap_err().to_string(),
///     "jobId: 'nope' is not a valid id: expected a UUID such as 0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// A new id (UUID v7: time-ordered, random).
    pub fn new() -> JobId {
        JobId(Uuid::now_v7())
    }
}

/// A new id, as [`JobId::new`].
impl Default for JobId {
    fn default() -> JobId {
        JobId::new()
    }
}

uuid_id!(JobId, "jobId");

/// The id of an [`Execution`](super::Execution).
///
/// The ids of scheduled runs and of retries are derived (UUID v5) from what they run, so that
/// every instance that claims the same slot, or schedules the same retry, names the same
/// execution, and the store lets only one of them create it:
///
/// - a slot: [`ExecutionId::for_slot`], from the job id and the slot's time;
/// - a retry: [`ExecutionId::for_attempt`], from the first attempt's id and the attempt number;
/// - a manual run: [`ExecutionId::new_manual`], a new UUID v7.
///
/// ```
/// use chill_core::{ExecutionId, JobId};
/// use chrono::{TimeZone, Utc};
///
/// let job = JobId::new();
/// let slot = Utc.with_ymd_and_hms(2026, 7, 6, 7, 0, 0).unwrap();
/// let root = ExecutionId::for_slot(&job, slot);
/// assert_eq!(root, ExecutionId::for_slot(&job, slot));
/// assert_eq!(ExecutionId::for_attempt(&root, 1), root);
/// assert_ne!(ExecutionId::for_attempt(&root, 2), root);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(Uuid);

impl ExecutionId {
    /// The id of the first attempt at a job's slot: UUID v5 of the name
    /// `"{job id}@{slot as Unix seconds}"` (`0190a5d1-...-5f60@1783321200`). Sub-second parts of
    /// the slot's time are ignored: slots fall on whole seconds.
    pub fn for_slot(job: &JobId, scheduled_for: DateTime<Utc>) -> ExecutionId {
        let name = format!("{job}@{}", scheduled_for.timestamp());
        ExecutionId(Uuid::new_v5(&NAMESPACE, name.as_bytes()))
    }

    /// The id of an attempt (1-based) in the chain that starts at `root`: `root` itself for
    /// attempt 1 (and 0), else UUID v5 of the name `"{root}#{attempt}"`.
    pub fn for_attempt(root: &ExecutionId, attempt: u32) -> ExecutionId {
        if attempt <= 1 {
            return *root;
        }
        let name = format!("{root}#{attempt}");
        ExecutionId(Uuid::new_v5(&NAMESPACE, name.as_bytes()))
    }

    /// The id of a manual run: a new UUID v7.
    pub fn new_manual() -> ExecutionId {
        ExecutionId(Uuid::now_v7())
    }
}

uuid_id!(ExecutionId, "executionId");

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::HashSet;

    fn job(n: u128) -> JobId {
        JobId::from_uuid(Uuid::from_u128(n))
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn slot_ids_are_deterministic_and_pinned() {
        let a = ExecutionId::for_slot(&job(1), t(1_783_321_200));
        assert_eq!(a, ExecutionId::for_slot(&job(1), t(1_783_321_200)));
        assert_eq!(a.as_uuid().get_version_num(), 5);
        // Pinned: a change here changes the id of every slot already in a store.
        let expected = Uuid::new_v5(
            &NAMESPACE,
            b"00000000-0000-0000-0000-000000000001@1783321200",
        );
        assert_eq!(*a.as_uuid(), expected);
        assert_eq!(
            NAMESPACE.to_string(),
            "a6125d8f-a8f1-48ee-b41c-cb2778ceefbc"
        );
        // Sub-second parts do not make another slot.
        let with_nanos = t(1_783_321_200) + chrono::TimeDelta::milliseconds(250);
        assert_eq!(ExecutionId::for_slot(&job(1), with_nanos), a);
    }

    #[test]
    fn slot_ids_are_distinct_across_jobs_and_slots() {
        let mut seen = HashSet::new();
        for j in 1..=20 {
            for s in 0..50 {
                assert!(seen.insert(ExecutionId::for_slot(&job(j), t(1_700_000_000 + s * 60))));
            }
        }
        assert_ne!(
            ExecutionId::for_slot(&job(1), t(-60)),
            ExecutionId::for_slot(&job(1), t(60))
        );
    }

    #[test]
    fn attempt_ids_chain_from_the_root() {
        let root = ExecutionId::for_slot(&job(7), t(1_800_000_000));
        assert_eq!(ExecutionId::for_attempt(&root, 0), root);
        assert_eq!(ExecutionId::for_attempt(&root, 1), root);
        let attempts: HashSet<_> = (1..=21)
            .map(|n| ExecutionId::for_attempt(&root, n))
            .collect();
        assert_eq!(attempts.len(), 21);
        assert_eq!(
            ExecutionId::for_attempt(&root, 3),
            ExecutionId::for_attempt(&root, 3)
        );
        let other = ExecutionId::for_slot(&job(7), t(1_800_000_060));
        assert_ne!(
            ExecutionId::for_attempt(&root, 2),
            ExecutionId::for_attempt(&other, 2)
        );
    }

    #[test]
    fn new_ids_are_v7_and_unique() {
        let (a, b) = (JobId::new(), JobId::new());
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
        let m = ExecutionId::new_manual();
        assert_eq!(m.as_uuid().get_version_num(), 7);
        assert_ne!(m, ExecutionId::new_manual());
    }

    #[test]
    fn text_and_json_forms() {
        let id = job(0x0190_a5d1_7c9b_7f3e_8a41_2b6c_3d4e_5f60);
        assert_eq!(id.to_string(), "0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60\""
        );
        let back: JobId = serde_json::from_str("\"0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(
            "0190a5d1-7c9b-7f3e-8a41-2b6c3d4e5f60"
                .parse::<JobId>()
                .unwrap(),
            id
        );
        let err = "x'; DROP TABLE jobs;--".parse::<ExecutionId>().unwrap_err();
        assert_eq!(err.field, "executionId");
        assert!(
            err.message
                .starts_with("'x\\'; DROP TABLE jobs;--' is not a valid id")
        );
    }
}
