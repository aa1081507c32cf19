//! The retry table of DESIGN.md: what an execution's failure becomes, and when its next attempt
//! is due.
//!
//! | outcome | decision |
//! |---|---|
//! | network error, 5xx, lost lease | retry with exponential backoff plus jitter |
//! | circuit breaker open | retry with backoff, not before the breaker half-opens |
//! | 429 rate limited | retry after `Retry-After` (or the backoff), counts toward maxRetries |
//! | timeout | status `timeout`; retried only when the job's `retryOnTimeout` is set |
//! | 4xx other than 429, invalid request, API error | `failed`, no retry |
//! | attempts exhausted | `dead` |

use chrono::{DateTime, TimeDelta, Utc};

use crate::ai::AiError;
use crate::model::{ExecutionStatus, RetryPolicy};
use crate::rng::Rng;

/// The failure kinds the retry table knows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure<'a> {
    /// The AI call failed.
    Ai(&'a AiError),
    /// The instance running it stopped renewing its lease (crashed).
    LeaseExpired,
    /// The circuit breaker was open until then: no call was made.
    CircuitOpen {
        /// When the breaker lets probes through.
        until: DateTime<Utc>,
    },
}

/// What a failure becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The failed execution's final status.
    pub(crate) status: ExecutionStatus,
    /// When the next attempt is due, if there is one.
    pub(crate) retry_at: Option<DateTime<Utc>>,
}

/// The smallest delay before retry number `retry` (1-based) of a policy: the backoff without
/// jitter. Jitter only ever adds to it.
pub(crate) fn min_backoff(policy: &RetryPolicy, retry: u32) -> TimeDelta {
    TimeDelta::seconds(i64::from(policy.backoff_secs(retry)))
}

/// The earliest delay after which the attempt following `failed` may be due: the
/// `Retry-After` it was given (recorded in its `errorDetails`), or the backoff without jitter.
#[cfg(feature = "testkit")]
pub(crate) fn min_retry_delay(policy: &RetryPolicy, failed: &crate::model::Execution) -> TimeDelta {
    let retry_after = failed
        .error_details
        .as_ref()
        .and_then(|d| d.get("retryAfterSecs"))
        .and_then(serde_json::Value::as_i64);
    match retry_after {
        Some(secs) => TimeDelta::seconds(secs),
        None => min_backoff(policy, failed.attempt),
    }
}

/// Decide what a failed attempt (`attempt`, 1-based) becomes, at `now`.
pub(crate) fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    failure: &Failure<'_>,
    now: DateTime<Utc>,
    rng: &mut Rng,
) -> Decision {
    let (status, retryable) = match failure {
        Failure::Ai(AiError::Timeout(_)) => (ExecutionStatus::Timeout, policy.retry_on_timeout),
        Failure::Ai(e) => (ExecutionStatus::Failed, e.is_transient()),
        Failure::LeaseExpired | Failure::CircuitOpen { .. } => (ExecutionStatus::Failed, true),
    };
    if !retryable {
        return Decision {
            status,
            retry_at: None,
        };
    }
    if attempt > policy.max_retries {
        return Decision {
            status: ExecutionStatus::Dead,
            retry_at: None,
        };
    }
    let delay = match failure {
        Failure::Ai(AiError::RateLimited {
            retry_after: Some(after),
            ..
        }) => TimeDelta::from_std(*after).unwrap_or(TimeDelta::MAX),
        _ => {
            let base = min_backoff(policy, attempt);
            // Up to a fifth more, so that jobs failing together do not retry together.
            let jitter_ms = rng.up_to(base.num_milliseconds().max(0) as u64 / 5);
            let backoff = base + TimeDelta::milliseconds(jitter_ms as i64);
            match failure {
                // Not before the breaker lets calls through again.
                Failure::CircuitOpen { until } => backoff.max(*until - now),
                _ => backoff,
            }
        }
    };
    Decision {
        status,
        // At store precision, and never before the delay is over.
        retry_at: Some(super::ceil_millis(
            now.checked_add_signed(delay).unwrap_or(now),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            retry_delay: 10,
            max_delay: 60,
            retry_on_timeout: false,
        }
    }

    #[test]
    fn transient_errors_back_off_exponentially_with_bounded_jitter() {
        let mut rng = Rng::new(3);
        let e = AiError::Server {
            status: Some(503),
            message: "down".into(),
        };
        for (attempt, base) in [(1, 10), (2, 20), (3, 40)] {
            let d = decide(&policy(), attempt, &Failure::Ai(&e), now(), &mut rng);
            assert_eq!(d.status, ExecutionStatus::Failed);
            let delay = d.retry_at.unwrap() - now();
            assert!(delay >= TimeDelta::seconds(base), "{attempt}: {delay}");
            assert!(
                delay <= TimeDelta::seconds(base) * 6 / 5,
                "{attempt}: {delay}"
            );
        }
        let last = decide(&policy(), 4, &Failure::Ai(&e), now(), &mut rng);
        assert_eq!(
            last,
            Decision {
                status: ExecutionStatus::Dead,
                retry_at: None
            }
        );
    }

    #[test]
    fn retry_after_is_honoured_and_client_errors_are_final() {
        let mut rng = Rng::new(3);
        let limited = AiError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
            message: "slow down".into(),
        };
        let d = decide(&policy(), 1, &Failure::Ai(&limited), now(), &mut rng);
        assert_eq!(d.retry_at, Some(now() + TimeDelta::seconds(2)));
        let bad = AiError::InvalidRequest {
            status: Some(400),
            message: "no".into(),
        };
        let d = decide(&policy(), 1, &Failure::Ai(&bad), now(), &mut rng);
        assert_eq!(
            d,
            Decision {
                status: ExecutionStatus::Failed,
                retry_at: None
            }
        );
    }

    #[test]
    fn timeouts_retry_only_when_the_policy_says_so() {
        let mut rng = Rng::new(3);
        let t = AiError::Timeout(Duration::from_secs(300));
        let d = decide(&policy(), 1, &Failure::Ai(&t), now(), &mut rng);
        assert_eq!(
            d,
            Decision {
                status: ExecutionStatus::Timeout,
                retry_at: None
            }
        );
        let retrying = RetryPolicy {
            retry_on_timeout: true,
            ..policy()
        };
        let d = decide(&retrying, 1, &Failure::Ai(&t), now(), &mut rng);
        assert_eq!(d.status, ExecutionStatus::Timeout);
        assert!(d.retry_at.is_some());
        let d = decide(&retrying, 4, &Failure::Ai(&t), now(), &mut rng);
        assert_eq!(d.status, ExecutionStatus::Dead);
    }

    #[test]
    fn lost_leases_are_retried_like_network_errors() {
        let mut rng = Rng::new(3);
        let d = decide(&policy(), 1, &Failure::LeaseExpired, now(), &mut rng);
        assert_eq!(d.status, ExecutionStatus::Failed);
        assert!(d.retry_at.unwrap() >= now() + TimeDelta::seconds(10));
    }

    #[test]
    fn a_retry_waits_for_the_breaker_and_falls_on_a_whole_millisecond() {
        use chrono::SubsecRound;
        let mut rng = Rng::new(3);
        // A breaker opened at a clock reading finer than the stores keep.
        let until = now() + TimeDelta::seconds(90) + TimeDelta::nanoseconds(129_538_921);
        let d = decide(
            &policy(),
            1,
            &Failure::CircuitOpen { until },
            now(),
            &mut rng,
        );
        let at = d.retry_at.unwrap();
        assert!(
            at >= until,
            "{at} is before the breaker half-opens at {until}"
        );
        assert_eq!(at, at.trunc_subsecs(3), "{at} is not a whole millisecond");
        assert!(
            at - until < TimeDelta::milliseconds(1),
            "{at} waits too long"
        );
    }
}
