//! From HTTP to [`AiError`]: statuses into the classes of DESIGN.md's retry table, error bodies
//! into messages, and `Retry-After` (seconds or an HTTP date) into a delay.

use std::time::{Duration, SystemTime};

use chill_core::AiError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use serde_json::Value;

/// The longest excerpt of a body quoted in a message.
const EXCERPT_CHARS: usize = 300;

/// The error for a non-success status, with `message` from the body.
///
/// | status | error |
/// |---|---|
/// | 429 | `RateLimited`, with `Retry-After` when present |
/// | 3xx | `InvalidRequest` naming the redirect (redirects are not followed) |
/// | other 4xx | `InvalidRequest` |
/// | 5xx, 529 and anything else | `Server` |
pub(crate) fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    message: String,
    now: SystemTime,
) -> AiError {
    let code = status.as_u16();
    match code {
        429 => AiError::RateLimited {
            retry_after: retry_after(headers, now),
            message,
        },
        300..=399 => {
            let to = headers
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("nowhere");
            AiError::InvalidRequest {
                status: Some(code),
                message: format!("unexpected redirect to {to} (check the endpoint URL)"),
            }
        }
        400..=499 => AiError::InvalidRequest {
            status: Some(code),
            message,
        },
        _ => AiError::Server {
            status: Some(code),
            message,
        },
    }
}

/// The delay a `Retry-After` header asks for, if it has a readable one.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// `Retry-After`'s two forms: delay-seconds (`120`; a decimal such as `1.5` is accepted and
/// rounded up) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`), measured from `now` and
/// rounded up to whole seconds, zero when it has passed. Never shorter than asked.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0 && secs < u32::MAX as f64)
            .then(|| Duration::from_secs(secs.ceil() as u64));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Some(Duration::from_secs(whole))
}

/// What an error body says, for a person: the JSON `error` (a string, or an object's
/// `message`, with its `type` first when it has one) or `message` field, else the start of the
/// text, else the status's reason phrase. Also returns the parsed JSON, when it was JSON.
pub(crate) fn body_message(status: StatusCode, body: &[u8]) -> (String, Option<Value>) {
    let json = serde_json::from_slice::<Value>(body).ok();
    let from_json = json.as_ref().and_then(json_message);
    let message = from_json
        .or_else(|| {
            let text = excerpt(body);
            (!text.is_empty()).then_some(text)
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason").to_string());
    (message, json)
}

fn json_message(json: &Value) -> Option<String> {
    match json.get("error") {
        Some(Value::String(s)) => return Some(s.clone()),
        Some(error @ Value::Object(_)) => return Some(error_object_message(error)),
        _ => {}
    }
    json.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// `type: message` of an error object (either part when only one is there), or its JSON.
pub(crate) fn error_object_message(error: &Value) -> String {
    let kind = error.get("type").and_then(Value::as_str);
    let message = error.get("message").and_then(Value::as_str);
    match (kind, message) {
        (Some(k), Some(m)) => format!("{k}: {m}"),
        (None, Some(m)) => m.to_string(),
        (Some(k), None) => k.to_string(),
        (None, None) => cut(&error.to_string()),
    }
}

/// The start of a body as text, whitespace collapsed, at most [`EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    cut(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        // 2015-10-21T07:28:00Z
        let date = 1_445_412_480;
        let now = at(date - 90);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("1.2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(90))
        );
        // A fraction of a second before the date rounds up: never earlier than asked.
        let just_before = at(date - 3) + Duration::from_millis(500);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", just_before),
            Some(Duration::from_secs(3))
        );
        // A date in the past means now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at(date + 10)),
            Some(Duration::ZERO)
        );
        for bad in ["", "soon", "-1", "NaN", "1e99"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn statuses_map_to_the_retry_table() {
        let now = at(0);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let e = |code: u16| {
            status_error(
                StatusCode::from_u16(code).unwrap(),
                &headers,
                "m".into(),
                now,
            )
        };
        assert_eq!(
            e(429),
            AiError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
                message: "m".into()
            }
        );
        for code in [400, 401, 403, 404, 413, 422] {
            assert!(
                matches!(e(code), AiError::InvalidRequest { status: Some(c), .. } if c == code)
            );
        }
        for code in [500, 502, 503, 504, 529, 599] {
            assert!(matches!(e(code), AiError::Server { status: Some(c), .. } if c == code));
        }
        assert!(
            matches!(e(302), AiError::InvalidRequest { status: Some(302), message } if message.contains("redirect"))
        );
    }

    #[test]
    fn error_bodies_become_messages() {
        let m = |body: &str| body_message(StatusCode::BAD_REQUEST, body.as_bytes()).0;
        assert_eq!(m(r#"{"error":"prompt is required"}"#), "prompt is required");
        assert_eq!(
            m(
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}}"#
            ),
            "invalid_request_error: max_tokens: required"
        );
        assert_eq!(m(r#"{"message":"nope"}"#), "nope");
        assert_eq!(m("<h1>Bad\n  Request</h1>"), "<h1>Bad Request</h1>");
        assert_eq!(m(""), "Bad Request");
        let long = "x".repeat(1000);
        assert_eq!(m(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}
