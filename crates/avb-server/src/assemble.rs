//! Configuration → adapters → [`App`]. The only place that knows every adapter; configuration chooses which runs.

use crate::config::ServerConfig;
use avb_api::{App, AppConfig, RateLimits};
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::static_jwt::{StaticJwtBuilder, StaticJwtIdentity};
use avb_auth::identity::IdentityProvider;
use avb_core::rate_limit::RateLimitPolicy;
use avb_storage_memory::{
    MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore, MemoryStore,
};
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;

/// Why the server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// An adapter refused its configuration.
    #[error("{0}")]
    Adapter(String),
    /// A port is missing (a bug in this module).
    #[error(transparent)]
    Build(#[from] avb_api::BuildError),
}

/// The assembled app and what the binary needs besides it.
#[derive(Debug)]
pub struct Assembled {
    /// The app.
    pub app: App,
    /// The static-JWT identity when it is the active one (to mint dev tokens).
    pub dev_identity: Option<StaticJwtIdentity>,
    /// Which adapters were chosen, for the start-up log and `/health/ready`.
    pub adapters: Vec<(&'static str, &'static str)>,
}

fn policy(minute: Option<u32>, hour: Option<u32>, default: RateLimitPolicy) -> RateLimitPolicy {
    RateLimitPolicy {
        per_minute: minute.unwrap_or(default.per_minute),
        per_hour: hour.unwrap_or(default.per_hour),
    }
}

/// Builds the app `config` describes.
pub async fn assemble(config: &ServerConfig) -> Result<Assembled, AssembleError> {
    let mut adapters = Vec::new();
    if config.database_url.is_some() || config.redis_url.is_some() {
        tracing::warn!(
            "DATABASE_URL/REDIS_URL are set but this build has no PostgreSQL/Redis wiring yet; using memory"
        );
    }
    let store = MemoryStore::new();
    adapters.push(("storage", "memory"));

    let relationships = Arc::new(MemoryRelationshipStore::default());
    let authorizer =
        LocalAuthorizer::new(relationships).map_err(|e| AssembleError::Adapter(e.to_string()))?;
    adapters.push(("authorizer", "local"));

    let (identity, dev_identity): (Arc<dyn IdentityProvider>, Option<StaticJwtIdentity>) =
        match &config.keycloak_url {
            Some(url) => {
                let mut builder = avb_auth::adapters::keycloak::KeycloakIdentityBuilder::new(
                    url,
                    &config.keycloak_realm,
                    &config.keycloak_client_id,
                );
                if let Some(aud) = &config.keycloak_audience {
                    builder = builder.audience(aud);
                }
                adapters.push(("identity", "keycloak"));
                (
                    Arc::new(
                        builder
                            .build()
                            .map_err(|e| AssembleError::Adapter(e.to_string()))?,
                    ),
                    None,
                )
            }
            None => {
                let secret = if config.avb_jwt_secret.expose().is_empty() {
                    let mut bytes = [0u8; 32];
                    getrandom::fill(&mut bytes).map_err(|e| AssembleError::Adapter(e.to_string()))?;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(bytes)
                        .into_bytes()
                } else {
                    config.avb_jwt_secret.expose().as_bytes().to_vec()
                };
                let mut builder = StaticJwtBuilder::hs256(secret);
                if let Some(issuer) = &config.avb_jwt_issuer {
                    builder = builder.issuer(issuer);
                }
                let identity = builder
                    .build()
                    .map_err(|e| AssembleError::Adapter(e.to_string()))?;
                adapters.push(("identity", "static-jwt"));
                (Arc::new(identity.clone()), Some(identity))
            }
        };

    let mut app_config = AppConfig::default();
    app_config.debug = config.debug;
    app_config.cors_origins = config.cors_origins();
    app_config.max_body_bytes = config.max_body_bytes;
    app_config.request_timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
    app_config.rate_limits = RateLimits {
        anonymous: policy(
            config.rate_limit_default_per_minute,
            config.rate_limit_default_per_hour,
            RateLimitPolicy::DEFAULT,
        ),
        standard: policy(
            config.rate_limit_api_key_per_minute,
            config.rate_limit_api_key_per_hour,
            RateLimitPolicy::API_KEY,
        ),
        elevated: policy(
            config.rate_limit_admin_per_minute,
            config.rate_limit_admin_per_hour,
            RateLimitPolicy::ADMIN,
        ),
    };

    let app = App::builder()
        .storage(store)
        .identity(identity)
        .authorizer(Arc::new(authorizer))
        .rate_limiter(Arc::new(MemoryRateLimiter::new()))
        .event_bus(Arc::new(MemoryEventBus::new()))
        .ephemeral_tokens(Arc::new(MemoryEphemeralTokens::new()))
        .config(app_config)
        .build()?;
    adapters.push(("rate_limiter", "memory"));
    adapters.push(("event_bus", "memory"));
    Ok(Assembled {
        app,
        dev_identity,
        adapters,
    })
}
