//! [`RedisConfig`] and [`RedisStoreBuilder`]: where Redis is, how keys are prefixed and how long a call may take.

use crate::store::RedisStore;
use avb_core::{Clock, Error, Result, SystemClock};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Spec §4 `CACHES.default.LOCATION` default.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";
/// Spec §4 `CACHES.default.KEY_PREFIX`.
const DEFAULT_PREFIX: &str = "avb";
/// Spec §4 `SOCKET_CONNECT_TIMEOUT` / `SOCKET_TIMEOUT` (5 s each).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect attempts before a command fails with `unavailable`; the next command starts a new round.
const DEFAULT_RECONNECT_ATTEMPTS: usize = 3;

/// Connection settings shared by every Redis adapter of one [`RedisStore`].
///
/// `Debug` masks the password of the URL (`redis://user:***@host`), so the config can be logged at startup.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user[:password]@]host[:port][/db]` or `redis+unix:///path`; TLS (`rediss://`) is not compiled in.
    pub url: String,
    /// First segment of every key and channel (spec `KEY_PREFIX`), so several deployments or test runs can
    /// share one Redis without seeing each other's data.
    pub key_prefix: String,
    /// Bound on establishing one TCP connection.
    #[serde(with = "millis")]
    pub connect_timeout: Duration,
    /// Bound on one command or script, including a wait for a reconnect; past it the call is `unavailable`.
    #[serde(with = "millis")]
    pub command_timeout: Duration,
    /// Reconnect attempts (exponential backoff from 50 ms, capped at 1 s) before pending commands fail.
    pub reconnect_attempts: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            key_prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_TIMEOUT,
            command_timeout: DEFAULT_TIMEOUT,
            reconnect_attempts: DEFAULT_RECONNECT_ATTEMPTS,
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_attempts", &self.reconnect_attempts)
            .finish()
    }
}

impl RedisConfig {
    /// Checks what the server would otherwise only find out at the first command.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.key_prefix.is_empty()
            || self
                .key_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(
                "key_prefix",
                "format",
                "must be non-empty, without whitespace",
            ));
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid(field, "range", "must be positive"));
            }
        }
        Ok(())
    }
}

/// The URL with its password (userinfo or `pass`/`password` query parameter) replaced by `***`.
pub(crate) fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        // An unparsable URL may still hold a secret; showing none of it is the only safe choice.
        return "<unparsable url>".to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    let secret_params = ["pass", "password"];
    if url
        .query_pairs()
        .any(|(k, _)| secret_params.contains(&k.as_ref()))
    {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_params.contains(&k.as_ref()) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Durations as integer milliseconds in config files (`command_timeout = 5000`).
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// Assembles a [`RedisStore`]: `from_env()` or `new()`, `with_*`, then `build().await`.
///
/// ```no_run
/// # async fn demo() -> avb_core::Result<()> {
/// let store = avb_storage_redis::RedisStore::builder()
///     .with_url("redis://127.0.0.1:6379/0")
///     .with_key_prefix("avb")
///     .build()
///     .await?;
/// store.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    config: RedisConfig,
    url_given: bool,
    clock: Arc<dyn Clock>,
    lazy: bool,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RedisStoreBuilder {
    /// Defaults everywhere except the URL, which must be given (`with_url`, `from_env`, `from_config`).
    pub fn new() -> Self {
        Self {
            config: RedisConfig::default(),
            url_given: false,
            clock: Arc::new(SystemClock),
            lazy: false,
        }
    }

    /// Reads `REDIS_URL` (required at `build`) and, when set, `AVB_REDIS_KEY_PREFIX`.
    ///
    /// The server picks Redis only when `REDIS_URL` is set, so a missing variable is an error at `build`
    /// rather than a silent fallback to localhost.
    pub fn from_env() -> Self {
        let mut builder = Self::new();
        if let Ok(url) = std::env::var("REDIS_URL") {
            builder = builder.with_url(url);
        }
        if let Ok(prefix) = std::env::var("AVB_REDIS_KEY_PREFIX") {
            builder = builder.with_key_prefix(prefix);
        }
        builder
    }

    /// Starts from a complete config (a config file section).
    pub fn from_config(config: RedisConfig) -> Self {
        Self {
            config,
            url_given: true,
            ..Self::new()
        }
    }

    /// The Redis URL.
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self.url_given = true;
        self
    }

    /// The first segment of every key and channel (default `avb`).
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// Bound on establishing a connection (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Bound on one command (default 5 s).
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.config.command_timeout = timeout;
        self
    }

    /// Reconnect attempts before pending commands fail (default 3).
    #[must_use]
    pub fn with_reconnect_attempts(mut self, attempts: usize) -> Self {
        self.config.reconnect_attempts = attempts;
        self
    }

    /// The clock for job timestamps (`run_at`, leases, retries); defaults to the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Returns from `build` without connecting; the first command connects. For a server that must start (and
    /// answer fail-open traffic) while Redis is still down. Default: connect in `build` and fail if unreachable.
    #[must_use]
    pub fn connect_lazily(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// The config as it stands.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Validates the config and opens the shared connection (unless lazy).
    ///
    /// # Errors
    /// `validation_error` for a missing or malformed URL or prefix; `service_unavailable` when Redis cannot be
    /// reached within the connect timeout and reconnect attempts.
    pub async fn build(self) -> Result<RedisStore> {
        if !self.url_given {
            return Err(Error::invalid(
                "REDIS_URL",
                "required",
                "set the Redis URL (REDIS_URL or with_url)",
            ));
        }
        self.config.validate()?;
        RedisStore::connect(self.config, self.clock, self.lazy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_passwords_in_userinfo_and_query() {
        let config = RedisConfig {
            url: "redis://app:s3cret@cache.internal:6380/2".into(),
            ..RedisConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redis://app:***@cache.internal:6380/2"), "{shown}");

        let unix = redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret");
        assert!(!unix.contains("s3cret") && unix.contains("db=1"), "{unix}");
        assert_eq!(redact_url("not a url with s3cret"), "<unparsable url>");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn config_round_trips_with_durations_in_milliseconds() {
        let json = serde_json::json!({ "url": "redis://h:1/0", "command_timeout": 250 });
        let config: RedisConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config.command_timeout, Duration::from_millis(250));
        assert_eq!(config.key_prefix, "avb", "unset fields keep their defaults");
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back["connect_timeout"], 5000);
    }

    #[test]
    fn prefixes_with_whitespace_are_rejected() {
        for prefix in ["", "a b", "x\n"] {
            let config = RedisConfig {
                key_prefix: prefix.into(),
                ..RedisConfig::default()
            };
            assert!(config.validate().is_err(), "{prefix:?}");
        }
    }

    #[tokio::test]
    async fn build_without_a_url_is_a_validation_error() {
        let got = RedisStoreBuilder::new().build().await;
        assert!(matches!(got, Err(Error::Invalid(_))), "{got:?}");
    }
}
