//! [`PgConfig`] and [`PgStoreBuilder`]: where PostgreSQL is, how the pool behaves (spec §4 `DATABASES`,
//! `DATABASE_POOL_ARGS`), and which role the application runs as.

use crate::store::PgStore;
use avb_core::{Clock, Error, IdGen, Result, SystemClock, UuidV7Ids};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Spec §4 `DB_*` defaults.
const DEFAULT_HOST: &str = "localhost";
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_NAME: &str = "agentvoicebox";
const DEFAULT_USER: &str = "agentvoicebox";
/// Spec §4 `DATABASE_POOL_ARGS`: `pool_size` 5 + `max_overflow` 10.
const DEFAULT_MAX_CONNECTIONS: u32 = 15;
/// Spec §4 `recycle`: 300 s.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Spec §4 `CONN_MAX_AGE`: 60 s.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Spec §4 `connect_timeout`: 10 s.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Spec §4 `statement_timeout=30000`.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The unprivileged role the migrations create; every transaction runs as it.
pub const DEFAULT_APP_ROLE: &str = "avb_app";
/// Prepared statements kept per connection (every record type has a handful of statement shapes).
const STATEMENT_CACHE: usize = 256;

/// Connection and pool settings of a [`PgStore`].
///
/// `Debug` shows neither the password nor the password inside `url`, so the config can be logged at startup.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database?sslmode=…` (`DATABASE_URL`). When set, it wins over the
    /// `host`/`port`/`database`/`user`/`password` fields.
    pub url: Option<String>,
    /// `DB_HOST` (default `localhost`).
    pub host: String,
    /// `DB_PORT` (default 5432).
    pub port: u16,
    /// `DB_NAME` (default `agentvoicebox`).
    pub database: String,
    /// `DB_USER` (default `agentvoicebox`).
    pub user: String,
    /// `DB_PASSWORD` (default empty: no password).
    pub password: String,
    /// Pool size (`DB_POOL_SIZE`, default 15: the spec's pool 5 + overflow 10).
    pub max_connections: u32,
    /// Connections kept open even when idle (default 0).
    pub min_connections: u32,
    /// A connection is closed and replaced after this age (default 300 s).
    #[serde(with = "millis")]
    pub max_lifetime: Duration,
    /// An idle connection is closed after this long (default 60 s).
    #[serde(with = "millis")]
    pub idle_timeout: Duration,
    /// Bound on waiting for a pooled connection, including opening a new one (default 5 s); past it the call
    /// is `unavailable`.
    #[serde(with = "millis")]
    pub acquire_timeout: Duration,
    /// Bound on reaching the server in `build` and `ping` (default 10 s).
    #[serde(with = "millis")]
    pub connect_timeout: Duration,
    /// Server-side bound on one statement, lock waits included (default 30 s); a context deadline shortens it
    /// per unit of work.
    #[serde(with = "millis")]
    pub statement_timeout: Duration,
    /// The role every transaction switches to (`SET LOCAL ROLE`), so row-level security applies even when the
    /// login role owns the tables or is a superuser (default `avb_app`, created by the migrations). `None`:
    /// stay the login role, which must then be neither superuser nor `BYPASSRLS`.
    pub app_role: Option<String>,
    /// Schema to use instead of the login role's `search_path` (`DB_SCHEMA`); tables and migrations live there.
    pub schema: Option<String>,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
    /// Check a pooled connection with a round trip before handing it out when it has been idle for a second or
    /// more (spec `CONN_HEALTH_CHECKS`, default true): after a database restart, stale connections are replaced
    /// instead of failing a request each. Connections are also checked when released to the pool, so one
    /// reused at once needs no second check.
    pub test_before_acquire: bool,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            url: None,
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            database: DEFAULT_NAME.to_owned(),
            user: DEFAULT_USER.to_owned(),
            password: String::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            min_connections: 0,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            app_role: Some(DEFAULT_APP_ROLE.to_owned()),
            schema: None,
            application_name: "agentvoicebox".to_owned(),
            test_before_acquire: true,
        }
    }
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = if self.password.is_empty() { "" } else { "***" };
        f.debug_struct("PgConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &password)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("app_role", &self.app_role)
            .field("schema", &self.schema)
            .field("application_name", &self.application_name)
            .field("test_before_acquire", &self.test_before_acquire)
            .finish()
    }
}

/// True for a plain SQL identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes): safe to quote into SQL.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PgConfig {
    /// Reads `DATABASE_URL`, else `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, `DB_PASSWORD`; plus `DB_POOL_SIZE`
    /// and `DB_SCHEMA` when set. Unset variables keep their defaults.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`PgConfig::from_env`] over any variable source.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = Self::default();
        let set = |name: &str| lookup(name).filter(|v| !v.is_empty());
        config.url = set("DATABASE_URL");
        if let Some(host) = set("DB_HOST") {
            config.host = host;
        }
        if let Some(port) = set("DB_PORT") {
            config.port = port
                .parse()
                .map_err(|_| Error::invalid("DB_PORT", "format", "must be a port number"))?;
        }
        if let Some(name) = set("DB_NAME") {
            config.database = name;
        }
        if let Some(user) = set("DB_USER") {
            config.user = user;
        }
        if let Some(password) = lookup("DB_PASSWORD") {
            config.password = password;
        }
        if let Some(size) = set("DB_POOL_SIZE") {
            config.max_connections = size
                .parse()
                .map_err(|_| Error::invalid("DB_POOL_SIZE", "format", "must be a positive integer"))?;
        }
        config.schema = set("DB_SCHEMA");
        Ok(config)
    }

    /// Checks what the server would otherwise only find out at the first connection.
    pub fn validate(&self) -> Result<()> {
        if self.max_connections == 0 {
            return Err(Error::invalid("max_connections", "range", "must be at least 1"));
        }
        if self.min_connections > self.max_connections {
            return Err(Error::invalid(
                "min_connections",
                "range",
                "must not exceed max_connections",
            ));
        }
        for (field, value) in [
            ("max_lifetime", self.max_lifetime),
            ("idle_timeout", self.idle_timeout),
            ("acquire_timeout", self.acquire_timeout),
            ("connect_timeout", self.connect_timeout),
            ("statement_timeout", self.statement_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid(field, "range", "must be positive"));
            }
        }
        for (field, value) in [("app_role", &self.app_role), ("schema", &self.schema)] {
            if value.as_deref().is_some_and(|v| !is_identifier(v)) {
                return Err(Error::invalid(field, "format", "must be a plain SQL identifier"));
            }
        }
        self.connect_options().map(|_| ())
    }

    /// The driver's connection options: URL or fields, plus the statement timeout and schema as startup
    /// parameters, so every pooled connection has them.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions> {
        let options = match &self.url {
            Some(url) => {
                let invalid = || Error::invalid("DATABASE_URL", "format", "is not a valid postgres:// URL");
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(invalid());
                }
                PgConnectOptions::from_str(url).map_err(|_| invalid())?
            }
            None => {
                let options = PgConnectOptions::new_without_pgpass()
                    .host(&self.host)
                    .port(self.port)
                    .database(&self.database)
                    .username(&self.user);
                if self.password.is_empty() {
                    options
                } else {
                    options.password(&self.password)
                }
            }
        };
        let mut startup = vec![("statement_timeout", millis_text(self.statement_timeout))];
        if let Some(schema) = &self.schema {
            startup.push(("search_path", schema.clone()));
        }
        Ok(options
            .application_name(&self.application_name)
            .statement_cache_capacity(STATEMENT_CACHE)
            .options(startup))
    }
}

/// A duration as whole milliseconds (at least 1), the unit of Postgres timeouts.
pub(crate) fn millis_text(duration: Duration) -> String {
    duration.as_millis().clamp(1, u128::from(u32::MAX)).to_string()
}

/// The URL with its password replaced by `***`.
fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        // An unparsable URL may still hold a secret; showing none of it is the only safe choice.
        return "<unparsable url>".to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
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

/// Durations as integer milliseconds in config files (`statement_timeout = 30000`).
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

/// Assembles a [`PgStore`]: `from_env()`, `new()` or `from_config()`, `with_*`, then `build().await`.
///
/// ```no_run
/// # async fn demo() -> avb_core::Result<()> {
/// use avb_storage_postgres::PgStoreBuilder;
/// let store = PgStoreBuilder::from_env().with_max_connections(20).build().await?;
/// store.migrate().await?; // `avb-server migrate`
/// store.ping().await?; // `/health/ready`
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgStoreBuilder {
    config: PgConfig,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    lazy: bool,
    /// A malformed environment variable seen by `from_env`, reported by `build`.
    env_error: Option<String>,
}

impl Default for PgStoreBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PgStoreBuilder {
    /// The spec's defaults (`agentvoicebox@localhost:5432/agentvoicebox`).
    pub fn new() -> Self {
        Self::from_config(PgConfig::default())
    }

    /// Settings from the environment (see [`PgConfig::from_env`]). A malformed variable (`DB_PORT`,
    /// `DB_POOL_SIZE`) is reported by `build`.
    pub fn from_env() -> Self {
        match PgConfig::from_env() {
            Ok(config) => Self::from_config(config),
            Err(err) => {
                let mut builder = Self::new();
                builder.env_error = Some(err.to_string());
                builder
            }
        }
    }

    /// Starts from a complete config (a config file section).
    pub fn from_config(config: PgConfig) -> Self {
        Self {
            config,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            lazy: false,
            env_error: None,
        }
    }

    /// A `postgres://` URL (wins over host, port, database, user and password).
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.config.url = Some(url.into());
        self
    }

    /// Pool size.
    #[must_use]
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.config.max_connections = max;
        self
    }

    /// Age after which a connection is replaced (default 300 s).
    #[must_use]
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.max_lifetime = lifetime;
        self
    }

    /// Bound on waiting for a pooled connection (default 5 s).
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout = timeout;
        self
    }

    /// Bound on reaching the server in `build` and `ping` (default 10 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Bound on one statement (default 30 s).
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.config.statement_timeout = timeout;
        self
    }

    /// The role transactions run as (default `avb_app`; `None` keeps the login role).
    #[must_use]
    pub fn with_app_role(mut self, role: Option<String>) -> Self {
        self.config.app_role = role;
        self
    }

    /// The schema holding the tables (default: the login role's `search_path`).
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.config.schema = Some(schema.into());
        self
    }

    /// The clock for audit timestamps, job schedules and leases; defaults to the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The id generator for audit entries and jobs; defaults to UUID v7.
    #[must_use]
    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// Returns from `build` without connecting; the first call connects. For a server that must start while
    /// the database is still down. Default: connect in `build` and fail if unreachable.
    #[must_use]
    pub fn connect_lazily(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// The config as it stands.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Validates the config and opens the pool (checking one connection within the connect timeout, unless
    /// lazy). Does not migrate: call [`PgStore::migrate`].
    ///
    /// # Errors
    /// `validation_error` for a malformed config; `service_unavailable` when the server cannot be reached.
    pub async fn build(self) -> Result<PgStore> {
        if let Some(message) = self.env_error {
            return Err(Error::invalid("environment", "format", message));
        }
        self.config.validate()?;
        PgStore::connect(self.config, self.clock, self.ids, self.lazy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn debug_hides_passwords() {
        let config = PgConfig {
            url: Some("postgres://app:s3cret@db.internal:5433/avb?password=s3cret&sslmode=require".into()),
            password: "hunter2".into(),
            ..PgConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("db.internal:5433") && shown.contains("sslmode=require"),
            "{shown}"
        );
        assert_eq!(redact_url("not a url s3cret"), "<unparsable url>");
    }

    #[test]
    fn the_spec_variables_are_read() {
        let config = PgConfig::from_lookup(lookup(&[
            ("DB_HOST", "db"),
            ("DB_PORT", "6543"),
            ("DB_NAME", "voice"),
            ("DB_USER", "svc"),
            ("DB_PASSWORD", "pw"),
            ("DB_POOL_SIZE", "7"),
        ]))
        .unwrap();
        assert_eq!((config.host.as_str(), config.port), ("db", 6543));
        assert_eq!((config.database.as_str(), config.user.as_str()), ("voice", "svc"));
        assert_eq!((config.password.as_str(), config.max_connections), ("pw", 7));
        assert_eq!(config.url, None);
        let options = config.connect_options().unwrap();
        assert_eq!(options.get_host(), "db");
        assert_eq!(options.get_database(), Some("voice"));
        assert!(
            options
                .get_options()
                .unwrap_or_default()
                .contains("statement_timeout=30000")
        );

        let url = PgConfig::from_lookup(lookup(&[("DATABASE_URL", "postgres://u@h:1/d")])).unwrap();
        assert_eq!(url.connect_options().unwrap().get_port(), 1);
        assert!(PgConfig::from_lookup(lookup(&[("DB_PORT", "x")])).is_err());
    }

    #[test]
    fn defaults_follow_the_spec() {
        let config = PgConfig::default();
        assert_eq!(config.max_lifetime, Duration::from_secs(300));
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.statement_timeout, Duration::from_secs(30));
        assert_eq!(config.app_role.as_deref(), Some("avb_app"));
        config.validate().unwrap();
    }

    #[test]
    fn unsafe_names_and_zero_bounds_are_refused() {
        for config in [
            PgConfig {
                app_role: Some("app; drop table x".into()),
                ..PgConfig::default()
            },
            PgConfig {
                schema: Some("a-b".into()),
                ..PgConfig::default()
            },
            PgConfig {
                statement_timeout: Duration::ZERO,
                ..PgConfig::default()
            },
            PgConfig {
                max_connections: 0,
                ..PgConfig::default()
            },
            PgConfig {
                url: Some("mysql://nope".into()),
                ..PgConfig::default()
            },
        ] {
            assert!(config.validate().is_err(), "{config:?}");
        }
        assert!(is_identifier("avb_app") && !is_identifier("1a") && !is_identifier(""));
    }

    #[test]
    fn durations_are_milliseconds_in_files() {
        let config: PgConfig =
            serde_json::from_value(serde_json::json!({ "statement_timeout": 1500 })).unwrap();
        assert_eq!(config.statement_timeout, Duration::from_millis(1500));
        assert_eq!(serde_json::to_value(&config).unwrap()["max_lifetime"], 300_000);
    }
}
