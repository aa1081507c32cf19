//! The crate's one error type: what can be wrong with a client's configuration. Failures of
//! calls are [`chill_core::AiError`]s.

/// A client could not be configured. The messages never contain an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set (or is empty).
    #[error("environment variable {var} is not set")]
    MissingEnv {
        /// The variable.
        var: &'static str,
    },
    /// An environment variable is set to something that cannot be used.
    #[error("environment variable {var}: {reason}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value (the value itself is only shown when it is no secret).
        reason: String,
    },
    /// The endpoint URL cannot be used.
    #[error("endpoint URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The API key is empty or cannot be sent in an HTTP header.
    #[error("API key: {reason}")]
    InvalidApiKey {
        /// What is wrong with it (never the key itself).
        reason: &'static str,
    },
    /// A setting is out of range (a zero timeout, a zero size limit, ...).
    #[error("{setting}: {reason}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("HTTP client: {0}")]
    Client(String),
}
