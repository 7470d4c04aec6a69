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
    /// `DATABASE_URL` (or `DB_HOST`… parts): PostgreSQL storage (not in this build: memory is used).
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// `REDIS_URL`: Redis for cache, rate limits, pub/sub (not in this build: memory is used).
    #[serde(default)]
    pub redis_url: Option<Secret>,
    /// `LAGO_API_URL`.
    #[serde(default)]
    pub lago_api_url: Option<String>,
    /// `LAGO_API_KEY`.
    #[serde(default)]
    pub lago_api_key: Secret,
    /// `FF_BILLING`.
    #[serde(default)]
    pub ff_billing: bool,
    /// `FF_CUSTOM_THEMES` (default on, as in the spec).
    #[serde(default = "default_true")]
    pub ff_custom_themes: bool,
    /// `FF_VOICE_CLONING`.
    #[serde(default)]
    pub ff_voice_cloning: bool,
    /// `AVB_BOOTSTRAP`: create a sysadmin and a demo tenant at start (default on for in-memory storage).
    #[serde(default = "default_true")]
    pub avb_bootstrap: bool,
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
                .only(&ENV_KEYS),
        );
        if let Ok(port) = std::env::var("PORT") {
            figment = figment.merge(("port", port));
        }
        figment.extract().map_err(|e| ConfigError(e.to_string()))
    }

    /// Every default, ignoring the environment and files (tests, benchmarks, embedding).
    pub fn defaults() -> Result<Self, ConfigError> {
        Figment::new().extract().map_err(|e| ConfigError(e.to_string()))
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

/// The environment variables read (lower-cased), so unrelated variables can never collide with a field.
const ENV_KEYS: [&str; 35] = [
    "host",
    "avb_host",
    "port",
    "avb_port",
    "debug",
    "cors_allowed_origins",
    "max_body_bytes",
    "request_timeout_seconds",
    "rate_limit_default_per_minute",
    "rate_limit_default_per_hour",
    "rate_limit_api_key_per_minute",
    "rate_limit_api_key_per_hour",
    "rate_limit_admin_per_minute",
    "rate_limit_admin_per_hour",
    "avb_jwt_secret",
    "avb_jwt_issuer",
    "keycloak_url",
    "keycloak_realm",
    "keycloak_client_id",
    "keycloak_client_secret",
    "keycloak_audience",
    "spicedb_endpoint",
    "spicedb_token",
    "spicedb_insecure",
    "database_url",
    "redis_url",
    "lago_api_url",
    "lago_api_key",
    "ff_billing",
    "ff_custom_themes",
    "ff_voice_cloning",
    "avb_bootstrap",
    "db_host",
    "db_name",
    "db_user",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config: ServerConfig = Figment::new()
            .merge(("avb_jwt_secret", "super-secret-value"))
            .merge(("lago_api_key", "lago-secret"))
            .extract()
            .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-value"));
        assert!(!shown.contains("lago-secret"));
        assert_eq!(config.port, 8000);
    }
}
