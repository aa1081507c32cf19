//! Errors of schedule parsing.

use std::fmt;

/// A field of a cron expression, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CronField {
    /// Seconds, 0-59 (6- and 7-field forms only).
    Second,
    /// Minutes, 0-59.
    Minute,
    /// Hours, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or JAN-DEC.
    Month,
    /// Day of the week, 0-7 (0 and 7 are Sunday) or SUN-SAT; 1-7 (1 is Sunday) in `cron(...)`.
    DayOfWeek,
    /// Year, 1970-2199 (7-field form and `cron(...)`).
    Year,
}

impl CronField {
    /// The name used in messages: `minute`, `day-of-month`, ...
    pub fn name(self) -> &'static str {
        match self {
            CronField::Second => "second",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an expression was rejected. Its `Display` names the field and the value:
/// `minute: 61 is out of range 0-59`.
///
/// ```
/// use chill_core::Schedule;
/// let err = Schedule::parse("61 * * * *").unwrap_err();
/// assert_eq!(err.to_string(), "minute: 61 is out of range 0-59");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The expression is empty or only white space.
    #[error("the expression is empty")]
    Empty,
    /// A plain cron expression must have 5, 6 or 7 fields.
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week), 6 (with seconds first) or 7 (with a year last), found {found}"
    )]
    FieldCount {
        /// How many fields were found.
        found: usize,
    },
    /// `cron(...)` must have exactly 6 fields.
    #[error(
        "cron(): expected 6 fields (minute hour day-of-month month day-of-week year), found {found}"
    )]
    AwsFieldCount {
        /// How many fields were found.
        found: usize,
    },
    /// A number outside the field's range.
    #[error("{field}: {value} is out of range {min}-{max}")]
    OutOfRange {
        /// The field.
        field: CronField,
        /// The value as written.
        value: u64,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// A token that is not a number, a name or a special character of the field.
    #[error("{field}: '{token}' is not a valid value")]
    InvalidToken {
        /// The field.
        field: CronField,
        /// The offending token.
        token: String,
    },
    /// A step of zero, or larger than the field's span.
    #[error("{field}: step {step} must be between 1 and {max}")]
    InvalidStep {
        /// The field.
        field: CronField,
        /// The step as written.
        step: u64,
        /// The largest step the field allows.
        max: u32,
    },
    /// A range whose start is after its end.
    #[error("{field}: range {start}-{end} starts after it ends")]
    InvertedRange {
        /// The field.
        field: CronField,
        /// Range start.
        start: u32,
        /// Range end.
        end: u32,
    },
    /// A special character used where the field does not allow it.
    #[error("{field}: '{token}' is not allowed in this field")]
    NotAllowed {
        /// The field.
        field: CronField,
        /// The offending token.
        token: String,
    },
    /// `cron(...)` needs `?` in day-of-month or day-of-week (not both, not neither).
    #[error(
        "cron(): exactly one of day-of-month and day-of-week must be '?' (found '{day_of_month}' and '{day_of_week}')"
    )]
    AwsQuestionMark {
        /// The day-of-month field as written.
        day_of_month: String,
        /// The day-of-week field as written.
        day_of_week: String,
    },
    /// An `@` macro that does not exist.
    #[error(
        "unknown macro '{0}': expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
    )]
    UnknownMacro(String),
    /// A malformed `rate(...)` expression.
    #[error("rate(): {0}")]
    InvalidRate(String),
    /// A malformed `at(...)` expression.
    #[error("at(): {0}")]
    InvalidAt(String),
    /// A time zone name that is not in the IANA database.
    #[error("unknown time zone '{0}': expected an IANA name such as Europe/Berlin or UTC")]
    UnknownTimeZone(String),
    /// The expression is well formed but matches no time at all (`0 0 31 2 *`).
    #[error("the expression never fires: no date matches its day, month and year fields")]
    NeverFires,
}
