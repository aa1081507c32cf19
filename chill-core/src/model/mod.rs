//! The domain model: jobs, their executions, their ids, and the validation every input goes
//! through at the library boundary.
//!
//! JSON field names are camelCase, as in the requirements (`systemPrompt`, `retryPolicy`,
//! `nextRunAt`); enum values are lowercase strings (`"success"`, `"buffer_one"`).
//!
//! ```
//! use chill_core::{Job, JobPatch, JobSpec};
//! use chrono::{TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2026, 7, 3, 12, 0, 0).unwrap();
//! let spec = JobSpec::new("Daily digest", "Summarise yesterday's tickets", "0 9 * * MON-FRI");
//! let job = Job::create(JobSpec { timezone: "Europe/Berlin".into(), ..spec }, now)?;
//! assert_eq!(job.version, 1);
//! assert_eq!(job.next_run_at, Some(Utc.with_ymd_and_hms(2026, 7, 6, 7, 0, 0).unwrap()));
//!
//! let patch: JobPatch = serde_json::from_str(r#"{"maxTurns": 5, "systemPrompt": null}"#).unwrap();
//! let job = job.apply(&patch, now)?;
//! assert_eq!((job.version, job.max_turns), (2, 5));
//!
//! let err = Job::create(JobSpec::new("x", "y", "61 * * * *"), now).unwrap_err();
//! assert_eq!(err.to_string(), "schedule: minute: 61 is out of range 0-59");
//! # Ok::<(), chill_core::ValidationError>(())
//! ```

/// An enum stored and sent as a fixed string: `as_str`, `Display`, `FromStr` (an unknown string
/// is a [`ValidationError`] naming the field) and serde through the same strings.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The strings of [`Self::ALL`].
            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The string used in JSON and in stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::model::ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::model::validate::unknown_value($field, s, Self::NAMES)),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str($crate::model::validate::FromStrVisitor::<$name>::new(Self::NAMES))
            }
        }
    };
}

mod budget;
mod execution;
mod ids;
mod job;
mod validate;

pub use budget::{Budget, Spend};
pub use execution::{
    ErrorType, Execution, ExecutionResponse, ExecutionStatus, RequestOptions, RequestPayload,
    Trigger,
};
pub use ids::{ExecutionId, JobId};
pub use job::{CatchUpPolicy, Job, JobPatch, JobSpec, OverlapPolicy, RetryPolicy, defaults};
pub use validate::{ValidationError, limits};
