//! Settings both clients share: the HTTP options, the API key (redacted everywhere), endpoint
//! URLs and environment lookups.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::error::ConfigError;

/// How a client talks HTTP: timeouts, the response size limit and the connection pool.
///
/// ```
/// use std::time::Duration;
/// use chill_claude::HttpOptions;
/// let http = HttpOptions::default()
///     .with_timeout(Duration::from_secs(60))
///     .with_max_response_bytes(1 << 20);
/// assert_eq!(http.connect_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpOptions {
    /// How long a call may take, from sending the request to the last byte of the answer,
    /// when the request names no timeout of its own (default 300 s, the requirements'
    /// `CLAUDE_API_TIMEOUT`).
    pub timeout: Duration,
    /// How long opening a connection may take (default 10 s). A connection that cannot be
    /// opened in time is a network error.
    pub connect_timeout: Duration,
    /// The largest successful response body accepted, in bytes (default 8 MiB). A larger one
    /// is an error naming the limit; error bodies are cut to a short excerpt instead.
    pub max_response_bytes: usize,
    /// How long an idle pooled connection is kept open (default 90 s).
    pub pool_idle_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 8 * 1024 * 1024,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

impl HttpOptions {
    /// Set [`HttpOptions::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> HttpOptions {
        self.timeout = timeout;
        self
    }

    /// Set [`HttpOptions::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> HttpOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Set [`HttpOptions::max_response_bytes`].
    pub fn with_max_response_bytes(mut self, bytes: usize) -> HttpOptions {
        self.max_response_bytes = bytes;
        self
    }

    /// Set [`HttpOptions::pool_idle_timeout`].
    pub fn with_pool_idle_timeout(mut self, timeout: Duration) -> HttpOptions {
        self.pool_idle_timeout = timeout;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let zero = |setting, what: &Duration| {
            if what.is_zero() {
                Err(ConfigError::InvalidSetting {
                    setting,
                    reason: "must be more than zero".into(),
                })
            } else {
                Ok(())
            }
        };
        zero("timeout", &self.timeout)?;
        zero("connect timeout", &self.connect_timeout)?;
        if self.max_response_bytes == 0 {
            return Err(ConfigError::InvalidSetting {
                setting: "max response bytes",
                reason: "must be more than zero".into(),
            });
        }
        Ok(())
    }
}

/// An API key, kept as a header value marked sensitive. Its `Debug` shows `[redacted]`; it has
/// no `Display`.
#[derive(Clone)]
pub(crate) struct ApiKey(HeaderValue);

impl ApiKey {
    pub(crate) fn new(key: &str) -> Result<ApiKey, ConfigError> {
        if key.trim().is_empty() {
            return Err(ConfigError::InvalidApiKey {
                reason: "it is empty",
            });
        }
        let mut value = HeaderValue::from_str(key).map_err(|_| ConfigError::InvalidApiKey {
            reason: "it contains characters an HTTP header cannot carry",
        })?;
        value.set_sensitive(true);
        Ok(ApiKey(value))
    }

    pub(crate) fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `base` parsed as an http(s) URL whose path ends with `suffix` (appended unless it is there
/// already, so both `http://host:3000` and `http://host:3000/query` name the same endpoint).
pub(crate) fn endpoint(base: &str, suffix: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidUrl {
        url: base.to_string(),
        reason,
    };
    let mut url = Url::parse(base.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it has a query or fragment".into()));
    }
    let path = url.path().trim_end_matches('/');
    if !path.ends_with(suffix) {
        let joined = format!("{path}{suffix}");
        url.set_path(&joined);
    }
    Ok(url)
}

/// The endpoint as it may be logged and shown: scheme, host, port and path, without user
/// information.
pub(crate) fn shown(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// A variable from `lookup`, `None` when unset or blank.
pub(crate) fn var(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

/// A required variable from `lookup`.
pub(crate) fn required(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    var(lookup, name).ok_or(ConfigError::MissingEnv { var: name })
}

/// An optional number from `lookup`.
pub(crate) fn number<T: std::str::FromStr>(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError> {
    var(lookup, name)
        .map(|v| {
            v.trim().parse().map_err(|_| ConfigError::InvalidEnv {
                var: name,
                reason: format!("{v:?} is not a whole number"),
            })
        })
        .transpose()
}

/// The process environment as a lookup.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_their_suffix_once() {
        let e = |base| endpoint(base, "/query").map(|u| u.to_string());
        assert_eq!(e("http://h:3000").unwrap(), "http://h:3000/query");
        assert_eq!(e("http://h:3000/").unwrap(), "http://h:3000/query");
        assert_eq!(e("http://h:3000/query").unwrap(), "http://h:3000/query");
        assert_eq!(e("https://h/api/").unwrap(), "https://h/api/query");
        for bad in ["h:3000", "ftp://h/", "http://h/?a=1", "not a url"] {
            assert!(
                matches!(e(bad), Err(ConfigError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_are_checked_and_redacted() {
        assert!(ApiKey::new(" ").is_err());
        assert!(ApiKey::new("a\nb").is_err());
        let key = ApiKey::new("sk-secret").unwrap();
        assert_eq!(format!("{key:?}"), "[redacted]");
        assert!(key.header_value().is_sensitive());
    }

    #[test]
    fn shown_urls_have_no_user_information() {
        let url = Url::parse("https://user:pw@h:8443/v1/messages").unwrap();
        assert_eq!(shown(&url), "https://h:8443/v1/messages");
    }
}
