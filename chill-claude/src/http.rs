//! The HTTP plumbing both clients share: one pooled `reqwest::Client`, a POST of a JSON body
//! under a deadline, bodies read chunk by chunk up to a limit, the content type checked, and
//! transport failures classified.

use std::error::Error as _;
use std::time::{Duration, Instant};

use chill_core::{AiError, AiRequest};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::classify::excerpt;
use crate::error::ConfigError;
use crate::settings::HttpOptions;

/// The header carrying the execution id, for correlation in the endpoint's logs.
pub(crate) const EXECUTION_ID_HEADER: HeaderName = HeaderName::from_static("x-chill-execution-id");
/// The header carrying the job id.
pub(crate) const JOB_ID_HEADER: HeaderName = HeaderName::from_static("x-chill-job-id");

/// How much of an error body is read: enough for any error message, little enough that an
/// endless error page costs nothing.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A response with its body read.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The whole body for a success; the first [`ERROR_BODY_LIMIT`] bytes otherwise.
    pub(crate) body: Vec<u8>,
}

/// The end of a POST: the response or the failure, the time it took, and the status when a
/// response came (also when its body then failed).
#[derive(Debug)]
pub(crate) struct Posted {
    pub(crate) outcome: Result<Received, AiError>,
    pub(crate) latency: Duration,
    pub(crate) status: Option<u16>,
}

/// One endpoint's HTTP side: the pooled client, the URL and the options.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    url: Url,
    shown_url: String,
    options: HttpOptions,
}

impl Transport {
    pub(crate) fn new(url: Url, options: &HttpOptions) -> Result<Transport, ConfigError> {
        options.validate()?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("chill-claude/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(options.pool_idle_timeout)
            .tcp_nodelay(true)
            // A POST to an API is never redirected on purpose: report it instead of following
            // it (and never send a key to another host).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Client(chain(&e)))?;
        Ok(Transport {
            shown_url: crate::settings::shown(&url),
            client,
            url,
            options: options.clone(),
        })
    }

    /// The endpoint, without user information: fit for logs and `Debug`.
    pub(crate) fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// The options.
    pub(crate) fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// The timeout of `request`: its own, or the configured default when it names none.
    pub(crate) fn timeout_of(&self, request: &AiRequest) -> Duration {
        if request.timeout.is_zero() {
            self.options.timeout
        } else {
            request.timeout
        }
    }

    /// POST `body` (JSON) with `headers` and read the answer, all within the request's
    /// timeout: the response (any status) or a network, timeout or unusable-body error.
    pub(crate) async fn post(
        &self,
        request: &AiRequest,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Posted {
        let timeout = self.timeout_of(request);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&request.execution_id.to_string()) {
            headers.insert(EXECUTION_ID_HEADER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&request.job_id.to_string()) {
            headers.insert(JOB_ID_HEADER, v);
        }
        let started = Instant::now();
        let mut status = None;
        let exchange = async {
            let response = self
                .client
                .post(self.url.clone())
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| self.transport_error(&e))?;
            status = Some(response.status().as_u16());
            self.read(response).await
        };
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(AiError::Timeout(timeout)),
        };
        let latency = started.elapsed();
        match &outcome {
            Ok(r) => tracing::debug!(
                endpoint = %self.shown_url,
                execution_id = %request.execution_id,
                status = r.status.as_u16(),
                latency_ms = latency.as_millis() as u64,
                "AI endpoint answered"
            ),
            Err(e) => tracing::debug!(
                endpoint = %self.shown_url,
                execution_id = %request.execution_id,
                error = %e,
                latency_ms = latency.as_millis() as u64,
                "AI endpoint call failed"
            ),
        }
        Posted {
            outcome,
            latency,
            status,
        }
    }

    /// Read the body: a success's whole body up to the limit, after checking that it is JSON;
    /// an error's first bytes.
    async fn read(&self, mut response: reqwest::Response) -> Result<Received, AiError> {
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        if !status.is_success() {
            let (body, _) = self.read_up_to(response, ERROR_BODY_LIMIT).await?;
            return Ok(Received {
                status,
                headers,
                body,
            });
        }
        if let Some(kind) = content_type(&headers)
            && !is_json(&kind)
        {
            let (body, _) = self.read_up_to(response, ERROR_BODY_LIMIT).await?;
            return Err(malformed(
                status,
                format!(
                    "the response's content type is {kind:?}, not JSON; the body starts with {:?}",
                    excerpt(&body)
                ),
                json!({ "kind": "unexpected_content_type", "contentType": kind }),
            ));
        }
        let limit = self.options.max_response_bytes;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = |size: String| {
            malformed(
                status,
                format!("the response body ({size}) is larger than the limit of {limit} bytes"),
                json!({ "kind": "response_too_large", "limitBytes": limit }),
            )
        };
        if let Some(n) = declared
            && n > limit as u64
        {
            return Err(too_large(format!("{n} bytes by its Content-Length")));
        }
        let (body, over) = self.read_up_to(response, limit).await?;
        if over {
            return Err(too_large(
                "still streaming when the limit was reached".into(),
            ));
        }
        Ok(Received {
            status,
            headers,
            body,
        })
    }

    /// Up to `limit` bytes of the body, chunk by chunk; `true` when there was more.
    async fn read_up_to(
        &self,
        mut response: reqwest::Response,
        limit: usize,
    ) -> Result<(Vec<u8>, bool), AiError> {
        let expected = response.content_length().unwrap_or(0).min(limit as u64) as usize;
        let mut body = Vec::with_capacity(expected);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            let room = limit - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body, true));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, false))
    }

    /// A failure below HTTP (connect, reset, DNS, cut-off body) as a network error naming the
    /// endpoint and the cause.
    fn transport_error(&self, e: &reqwest::Error) -> AiError {
        let url = &self.shown_url;
        let cause = chain(e);
        AiError::Network(if e.is_connect() {
            format!("could not connect to {url}: {cause}")
        } else if e.is_body() || e.is_decode() {
            format!("the response from {url} was cut off: {cause}")
        } else {
            format!("the exchange with {url} failed: {cause}")
        })
    }
}

/// A success body parsed as `T`, or an API error naming what is wrong with it.
pub(crate) fn parse_json<T: DeserializeOwned>(received: &Received) -> Result<T, AiError> {
    serde_json::from_slice(&received.body).map_err(|e| {
        let problem = if received.body.is_empty() {
            "the response body is empty".to_string()
        } else {
            format!(
                "the response body is not the expected JSON ({e}); it starts with {:?}",
                excerpt(&received.body)
            )
        };
        malformed(
            received.status,
            problem,
            json!({ "kind": "malformed_response" }),
        )
    })
}

/// A successful status whose answer cannot be used. The endpoint did the work (and may have
/// run tools), so this is an API error, which is not retried.
pub(crate) fn malformed(
    status: StatusCode,
    problem: String,
    mut details: serde_json::Value,
) -> AiError {
    details["status"] = status.as_u16().into();
    AiError::Api {
        message: format!("unusable answer from the AI endpoint (HTTP {status}): {problem}"),
        details: Some(details),
    }
}

/// The media type of `Content-Type`, lowercased, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let media = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(media)
}

/// `application/json` or any `+json` type.
fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// An error and its sources, `: `-separated, without the URL reqwest puts in its message.
fn chain(e: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.is_empty() {
        text = e.to_string();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        let mut h = HeaderMap::new();
        assert_eq!(content_type(&h), None);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(content_type(&h).as_deref(), Some("application/json"));
        assert!(is_json("application/json"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/html"));
        assert!(!is_json("text/plain"));
    }
}
