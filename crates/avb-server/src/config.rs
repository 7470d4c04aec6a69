//! Server configuration: environment variables with the spec's names (§4), optionally layered over a TOML file
//! named by `AVB_CONFIG`. Secrets never appear in `Debug` output or logs.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

/// A secret string: deserialises like a `String`, prints as `<redacted>`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "<redacted>" })
    }
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    8000
}
fn default_realm() -> String {
    "agentvoicebox".into()
}
fn default_client() -> String {
    "agentvoicebox-backend".into()
}
fn default_true() -> bool {
    true
}
fn default_body() -> usize {
    1024 * 1024
}
fn default_timeout() -> u64 {
    30
}
/// Spec §4 `recycle`: 300 s.
fn default_db_max_lifetime() -> u64 {
    300
}
fn default_db_acquire_timeout() -> u64 {
    5
}
/// Spec §4 `connect_timeout`: 10 s.
fn default_db_connect_timeout() -> u64 {
    10
}
/// Spec §4 `statement_timeout=30000`.
fn default_db_statement_timeout() -> u64 {
    30
}
/// Spec §4 `CACHES.default.KEY_PREFIX`.
fn default_redis_prefix() -> String {
    "avb".into()
}
/// Spec §4 `SOCKET_TIMEOUT`: 5 s.
fn default_redis_timeout() -> u64 {
    5
}

/// Every setting. Field names are the environment variable names, lower-cased.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ServerConfig {
    /// `AVB_HOST` (default 127.0.0.1).
    #[serde(default = "default_host", alias = "avb_host")]
    pub host: String,
    /// `AVB_PORT` / `PORT` (default 8000).
    #[serde(default = "default_port", alias = "avb_port")]
    pub port: u16,
    /// `DEBUG`: internal error detail in 5xx bodies.
    #[serde(default)]
    pub debug: bool,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins (`*` for any).
    #[serde(default)]
    pub cors_allowed_origins: String,
    /// `MAX_BODY_BYTES` (default 1 MiB).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// `REQUEST_TIMEOUT_SECONDS` (default 30).
    #[serde(default = "default_timeout")]
    pub request_timeout_seconds: u64,
    /// `RATE_LIMIT_DEFAULT_PER_MINUTE` etc.: override the spec's tiers.
    #[serde(default)]
    pub rate_limit_default_per_minute: Option<u32>,
    /// See above.
    #[serde(default)]
    pub rate_limit_default_per_hour: Option<u32>,
    /// See above.
    #[serde(default)]
    pub rate_limit_api_key_per_minute: Option<u32>,
    /// See above.
    #[serde(default)]
    pub rate_limit_api_key_per_hour: Option<u32>,
    /// See above.
    #[serde(default)]
    pub rate_limit_admin_per_minute: Option<u32>,
    /// See above.
    #[serde(default)]
    pub rate_limit_admin_per_hour: Option<u32>,
    /// `AVB_JWT_SECRET`: HS256 secret of the static-JWT identity (random per start when empty).
    #[serde(default)]
    pub avb_jwt_secret: Secret,
    /// `AVB_JWT_ISSUER`.
    #[serde(default)]
    pub avb_jwt_issuer: Option<String>,
    /// `KEYCLOAK_URL`: when set, bearer JWTs are verified by Keycloak instead of the static key.
    #[serde(default)]
    pub keycloak_url: Option<String>,
    /// `KEYCLOAK_REALM`.
    #[serde(default = "default_realm")]
    pub keycloak_realm: String,
    /// `KEYCLOAK_CLIENT_ID`.
    #[serde(default = "default_client")]
    pub keycloak_client_id: String,
    /// `KEYCLOAK_CLIENT_SECRET` (admin API; unused by token verification).
    #[serde(default)]
    pub keycloak_client_secret: Secret,
    /// `KEYCLOAK_AUDIENCE` (default: the client id).
    #[serde(default)]
    pub keycloak_audience: Option<String>,
    /// `SPICEDB_ENDPOINT`: when set, permissions are checked by SpiceDB instead of the local engine.
    #[serde(default)]
    pub spicedb_endpoint: Option<String>,
    /// `SPICEDB_TOKEN`: the preshared key.
    #[serde(default)]
    pub spicedb_token: Secret,
    /// `SPICEDB_INSECURE`: plaintext gRPC.
    #[serde(default)]
    pub spicedb_insecure: bool,
    /// `DATABASE_URL`: PostgreSQL for every storage port (records, audit, jobs, relationships). Wins over the
    /// `DB_*` parts; either one selects PostgreSQL, neither keeps in-memory storage.
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// `DB_HOST`: PostgreSQL host (selects PostgreSQL when `DATABASE_URL` is unset).
    #[serde(default)]
    pub db_host: Option<String>,
    /// `DB_PORT` (default 5432).
    #[serde(default)]
    pub db_port: Option<u16>,
    /// `DB_NAME` (default `agentvoicebox`).
    #[serde(default)]
    pub db_name: Option<String>,
    /// `DB_USER` (default `agentvoicebox`).
    #[serde(default)]
    pub db_user: Option<String>,
    /// `DB_PASSWORD`.
    #[serde(default)]
    pub db_password: Secret,
    /// `DB_SCHEMA`: schema holding the tables (default: the login role's `search_path`).
    #[serde(default)]
    pub db_schema: Option<String>,
    /// `DB_POOL_SIZE`: connections per replica (default 15, the spec's pool 5 + overflow 10).
    #[serde(default)]
    pub db_pool_size: Option<u32>,
    /// `DB_MAX_LIFETIME_SECONDS`: a connection is replaced after this age (default 300).
    #[serde(default = "default_db_max_lifetime")]
    pub db_max_lifetime_seconds: u64,
    /// `DB_ACQUIRE_TIMEOUT_SECONDS`: longest a request waits for a connection (default 5); past it the request
    /// answers 503 `service_unavailable`, which is also how long a request waits while PostgreSQL is down.
    #[serde(default = "default_db_acquire_timeout")]
    pub db_acquire_timeout_seconds: u64,
    /// `DB_CONNECT_TIMEOUT_SECONDS` (default 10).
    #[serde(default = "default_db_connect_timeout")]
    pub db_connect_timeout_seconds: u64,
    /// `DB_STATEMENT_TIMEOUT_SECONDS` (default 30).
    #[serde(default = "default_db_statement_timeout")]
    pub db_statement_timeout_seconds: u64,
    /// `DB_HEALTH_CHECKS` (spec `CONN_HEALTH_CHECKS`, default on): check a pooled connection that sat idle for a
    /// second or more with a round trip before use, so connections broken by a database restart are replaced
    /// instead of failing a request each (connections are also checked when released to the pool).
    #[serde(default = "default_true")]
    pub db_health_checks: bool,
    /// `AVB_MIGRATE_ON_START`: apply pending migrations before serving (default on; concurrent replicas
    /// serialise on the migrator's lock). Off: run `avb-server migrate` as a deployment step.
    #[serde(default = "default_true")]
    pub avb_migrate_on_start: bool,
    /// `REDIS_URL`: Redis for rate limits, the event bus and ephemeral client secrets (and jobs with
    /// `AVB_JOBS=redis`), shared by every replica.
    #[serde(default)]
    pub redis_url: Option<Secret>,
    /// `AVB_REDIS_KEY_PREFIX`: first segment of every Redis key and channel (default `avb`), so deployments
    /// and test runs can share one Redis.
    #[serde(default = "default_redis_prefix")]
    pub avb_redis_key_prefix: String,
    /// `AVB_REDIS_TIMEOUT_SECONDS`: bound on connecting and on one command (default 5).
    #[serde(default = "default_redis_timeout")]
    pub avb_redis_timeout_seconds: u64,
    /// `AVB_RATE_LIMIT_ON_REDIS_FAILURE`: what the Redis rate limiter does when Redis does not answer within
    /// 250 ms. `by_class` (default): fail open for IPs and console users, closed (503) for API keys and
    /// unknown classes — see `avb_storage_redis::RedisRateLimiter`; `open` or `closed` for every caller.
    #[serde(default)]
    pub avb_rate_limit_on_redis_failure: Option<String>,
    /// `AVB_JOBS`: `memory`, `postgres` or `redis` (default: the storage's own queue). With a queue other than
    /// the storage's, jobs written transactionally with a change are relayed to it.
    #[serde(default)]
    pub avb_jobs: Option<String>,
    /// `LAGO_API_URL`: Lago's base URL (`https://api.getlago.com`, or a self-hosted one). When set, billing goes
    /// to Lago (with retries); unset, to the in-memory billing provider.
    #[serde(default)]
    pub lago_api_url: Option<String>,
    /// `LAGO_API_KEY`: the organisation's API key.
    #[serde(default)]
    pub lago_api_key: Secret,
    /// `LAGO_WEBHOOK_SECRET`: the HMAC signature token of Lago's webhooks (`X-Lago-Signature-Algorithm: hmac`),
    /// checked by `POST /api/v2/billing/webhooks/lago`. With `LAGO_API_URL`, JWT-signed webhooks are verified with
    /// Lago's public key whether or not it is set. With in-memory billing (no `LAGO_API_URL`) there is no public
    /// key: HMAC signatures made with this secret are the only ones accepted, and without it every delivery is
    /// refused (401 `authentication_failed`).
    #[serde(default)]
    pub lago_webhook_secret: Secret,
    /// `FF_BILLING` (default on, as in the spec): usage sync, tenant sync and `/api/v2/billing/*`. Off: the
    /// billing routes answer 503 `service_unavailable` and billing jobs stay queued.
    #[serde(default = "default_true")]
    pub ff_billing: bool,
    /// `FF_CUSTOM_THEMES` (default on, as in the spec).
    #[serde(default = "default_true")]
    pub ff_custom_themes: bool,
    /// `FF_VOICE_CLONING`.
    #[serde(default)]
    pub ff_voice_cloning: bool,
    /// `AVB_BOOTSTRAP`: create a sysadmin and a demo tenant at start (default on for in-memory storage only:
    /// durable storage keeps them from the first start, and replicas must not race to create them).
    #[serde(default)]
    pub avb_bootstrap: Option<bool>,
    /// `AVB_TLS_CERT` / `AVB_TLS_KEY`: PEM certificate chain and private key; when both are set the server
    /// speaks HTTPS and WSS only (the Node OpenAI SDK always dials `wss://`).
    #[serde(default)]
    pub avb_tls_cert: Option<std::path::PathBuf>,
    /// See `avb_tls_cert`.
    #[serde(default)]
    pub avb_tls_key: Option<std::path::PathBuf>,
    /// `AVB_VOICE_SCRIPT`: JSON file scripting the built-in speech and language engines (see
    /// `avb_server::voice`); unset: a built-in demo script.
    #[serde(default)]
    pub avb_voice_script: Option<std::path::PathBuf>,
    /// `REALTIME_IDLE_TIMEOUT_SECONDS`: a realtime socket without client events for this long is closed
    /// (default 600).
    #[serde(default)]
    pub realtime_idle_timeout_seconds: Option<u64>,
    /// `REALTIME_MAX_SESSION_SECONDS`: longest realtime session (default 3600).
    #[serde(default)]
    pub realtime_max_session_seconds: Option<u64>,
    /// `REALTIME_MAX_SESSIONS_PER_TENANT`: open realtime sessions per tenant across replicas (default 100;
    /// 0 = no cap).
    #[serde(default)]
    pub realtime_max_sessions_per_tenant: Option<u32>,
}

/// Configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ServerConfig {
    /// Reads `AVB_CONFIG` (a TOML file, optional) and then the environment, which wins.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Ok(path) = std::env::var("AVB_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::raw()
                .map(|k| k.as_str().to_ascii_lowercase().into())
                .only(&env_keys()),
        );
        // `PORT` (as set by most platforms) wins; it must be a number like `AVB_PORT`.
        if let Ok(port) = std::env::var("PORT") {
            let port: u16 = port
                .trim()
                .parse()
                .map_err(|e| ConfigError(format!("PORT={port:?}: {e}")))?;
            figment = figment.merge(("port", port));
        }
        figment.extract().map_err(|e| ConfigError(e.to_string()))
    }

    /// Every default, ignoring the environment and files (tests, benchmarks, embedding).
    pub fn defaults() -> Result<Self, ConfigError> {
        Figment::new().extract().map_err(|e| ConfigError(e.to_string()))
    }

    /// True when PostgreSQL is configured (`DATABASE_URL` or `DB_HOST`).
    pub fn uses_postgres(&self) -> bool {
        self.database_url.as_ref().is_some_and(|u| !u.expose().is_empty())
            || self.db_host.as_ref().is_some_and(|h| !h.is_empty())
    }

    /// True when billing goes to Lago (`LAGO_API_URL` set) rather than the in-memory provider.
    pub fn uses_lago(&self) -> bool {
        self.lago_api_url.as_ref().is_some_and(|u| !u.trim().is_empty())
    }

    /// True when Redis is configured (`REDIS_URL`).
    pub fn uses_redis(&self) -> bool {
        self.redis_url.as_ref().is_some_and(|u| !u.expose().is_empty())
    }

    /// Whether to create the demo data at start: `AVB_BOOTSTRAP`, else only with in-memory storage.
    pub fn bootstrap(&self) -> bool {
        self.avb_bootstrap.unwrap_or(!self.uses_postgres())
    }

    /// Origins as a list.
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The environment variables read (lower-cased): every field of [`ServerConfig`] (taken from its `Deserialize`
/// implementation, so a new setting can never be silently ignored) plus the aliases. Only these are read, so
/// unrelated variables can never collide with a field.
fn env_keys() -> Vec<&'static str> {
    let mut keys = serde_aux::serde_introspection::serde_introspect::<ServerConfig>().to_vec();
    keys.extend(["avb_host", "avb_port"]);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_read_from_the_environment() {
        let keys = env_keys();
        for field in [
            "avb_tls_cert",
            "avb_voice_script",
            "realtime_max_sessions_per_tenant",
            "database_url",
            "avb_jobs",
            "lago_webhook_secret",
            "ff_billing",
            "port",
            "avb_port",
        ] {
            assert!(keys.contains(&field), "{field} is not read from the environment");
        }
        // The fields plus the two aliases, nothing else.
        let fields = serde_aux::serde_introspection::serde_introspect::<ServerConfig>();
        assert_eq!(keys.len(), fields.len() + 2);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config: ServerConfig = Figment::new()
            .merge(("avb_jwt_secret", "super-secret-value"))
            .merge(("lago_api_key", "lago-secret"))
            .merge(("lago_webhook_secret", "lago-webhook-secret"))
            .merge(("db_password", "db-secret"))
            .merge(("database_url", "postgres://u:url-secret@h/d"))
            .extract()
            .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-value"));
        assert!(!shown.contains("lago-secret") && !shown.contains("lago-webhook-secret"));
        assert!(!shown.contains("db-secret") && !shown.contains("url-secret"));
        assert_eq!(config.port, 8000);
        assert!(config.uses_postgres() && !config.uses_redis() && !config.bootstrap());
    }

    #[test]
    fn memory_storage_bootstraps_by_default_and_db_host_selects_postgres() {
        let memory = ServerConfig::defaults().unwrap();
        assert!(!memory.uses_postgres() && memory.bootstrap());
        assert!(
            memory.ff_billing && !memory.uses_lago(),
            "billing on, in memory, by default"
        );
        assert_eq!(memory.db_statement_timeout_seconds, 30);
        assert_eq!(memory.db_connect_timeout_seconds, 10);
        let parts: ServerConfig = Figment::new().merge(("db_host", "db")).extract().unwrap();
        assert!(parts.uses_postgres());
    }
}
