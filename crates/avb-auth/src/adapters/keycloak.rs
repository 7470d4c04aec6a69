//! Keycloak (OIDC) identity: RS256 access tokens verified against the realm's JWKS (spec §6.1).
//!
//! Keys are found through discovery (`/realms/{realm}/.well-known/openid-configuration`), cached, and chosen by
//! `kid` and `use == "sig"` (Keycloak also publishes an `RSA-OAEP` encryption key; an unknown `kty`/`alg` skips
//! that key, never the whole set). A token with an unknown `kid` triggers one refetch — single-flight, and at most
//! once per `min_refresh_interval` — so key rotation works without restarts while a flood of forged `kid`s cannot
//! make us hammer Keycloak. The whole set is refetched when older than `max_key_age`, which is how a retired key
//! stops verifying.

use crate::claims::{AccessClaims, TimeRules, jwt_error_reason};
use crate::identity::{IdentityProvider, MAX_TOKEN_BYTES, VerifiedToken};
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::{Clock, Ctx, SystemClock};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Configuration of [`KeycloakIdentity`] (env: `KEYCLOAK_URL`, `KEYCLOAK_REALM`, `KEYCLOAK_CLIENT_ID`,
/// `KEYCLOAK_AUDIENCE`, `KEYCLOAK_LEEWAY_SECS`, `KEYCLOAK_ALGORITHMS`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeycloakConfig {
    /// Server base URL (`http://127.0.0.1:8080`), without `/realms`.
    pub base_url: String,
    /// Realm.
    pub realm: String,
    /// Our client id (its `resource_access` roles count).
    pub client_id: String,
    /// Required audience (defaults to the client id).
    pub audience: String,
    /// Clock-skew tolerance (default 10 s).
    pub leeway: Duration,
    /// Accepted algorithms (default RS256). HS* and `none` are never accepted by this adapter.
    pub algorithms: Vec<Algorithm>,
    /// Minimum time between two refetches caused by unknown `kid`s (default 10 s).
    pub min_refresh_interval: Duration,
    /// Refetch the key set when older than this (default 5 min).
    pub max_key_age: Duration,
    /// HTTP timeout for discovery and JWKS (default 5 s).
    pub http_timeout: Duration,
}

impl KeycloakConfig {
    /// Expected issuer: `{base_url}/realms/{realm}`, compared byte for byte.
    pub fn issuer(&self) -> String {
        format!("{}/realms/{}", self.base_url.trim_end_matches('/'), self.realm)
    }
}

/// Builds a [`KeycloakIdentity`].
#[derive(Debug, Clone)]
pub struct KeycloakIdentityBuilder {
    config: KeycloakConfig,
    clock: Arc<dyn Clock>,
}

impl KeycloakIdentityBuilder {
    /// A builder for `base_url`, `realm` and `client_id` with the defaults above.
    pub fn new(base_url: impl Into<String>, realm: impl Into<String>, client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Self {
            config: KeycloakConfig {
                base_url: base_url.into(),
                realm: realm.into(),
                audience: client_id.clone(),
                client_id,
                leeway: Duration::from_secs(10),
                algorithms: vec![Algorithm::RS256],
                min_refresh_interval: Duration::from_secs(10),
                max_key_age: Duration::from_secs(300),
                http_timeout: Duration::from_secs(5),
            },
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads `KEYCLOAK_URL`, `KEYCLOAK_REALM`, `KEYCLOAK_CLIENT_ID` (required) and the optional settings.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let required = |name: &str| var(name).ok_or_else(|| Error::Config(format!("{name} is not set")));
        let mut builder = Self::new(
            required("KEYCLOAK_URL")?,
            required("KEYCLOAK_REALM")?,
            required("KEYCLOAK_CLIENT_ID")?,
        );
        if let Some(aud) = var("KEYCLOAK_AUDIENCE") {
            builder = builder.audience(aud);
        }
        if let Some(leeway) = var("KEYCLOAK_LEEWAY_SECS") {
            let secs = leeway
                .parse()
                .map_err(|_| Error::Config("KEYCLOAK_LEEWAY_SECS must be a number".into()))?;
            builder = builder.leeway(Duration::from_secs(secs));
        }
        if let Some(algs) = var("KEYCLOAK_ALGORITHMS") {
            let parsed = algs
                .split(',')
                .map(|a| {
                    a.trim()
                        .parse::<Algorithm>()
                        .map_err(|_| Error::Config(format!("unknown algorithm {a}")))
                })
                .collect::<Result<Vec<_>>>()?;
            builder = builder.algorithms(parsed)?;
        }
        Ok(builder)
    }

    /// Sets the required audience.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.config.audience = audience.into();
        self
    }

    /// Sets the leeway.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.config.leeway = leeway;
        self
    }

    /// Sets the accepted algorithms; refuses symmetric ones (a public key must never be usable as an HMAC secret).
    pub fn algorithms(mut self, algorithms: Vec<Algorithm>) -> Result<Self> {
        if algorithms.is_empty()
            || algorithms
                .iter()
                .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(Error::Config(
                "Keycloak algorithms must be non-empty and asymmetric".into(),
            ));
        }
        self.config.algorithms = algorithms;
        Ok(self)
    }

    /// Sets the minimum interval between unknown-`kid` refetches.
    #[must_use]
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.config.min_refresh_interval = interval;
        self
    }

    /// Sets the maximum age of the cached key set.
    #[must_use]
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.config.max_key_age = age;
        self
    }

    /// Sets the clock (time claims are checked against it).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the provider; discovery happens on first use.
    pub fn build(self) -> Result<KeycloakIdentity> {
        let http = reqwest::Client::builder()
            .timeout(self.config.http_timeout)
            .build()
            .map_err(|e| Error::Config(format!("http client: {e}")))?;
        Ok(KeycloakIdentity {
            inner: Arc::new(Inner {
                issuer: self.config.issuer(),
                config: self.config,
                clock: self.clock,
                http,
                keys: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
            }),
        })
    }
}

/// Verifies Keycloak access tokens.
#[derive(Debug, Clone)]
pub struct KeycloakIdentity {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: KeycloakConfig,
    issuer: String,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    keys: RwLock<Option<Arc<KeySet>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Debug, Default)]
struct RefreshState {
    jwks_uri: Option<String>,
    last_unknown_kid_fetch: Option<Instant>,
}

struct KeySet {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Instant,
    generation: u64,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(serde::Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl KeycloakIdentity {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the key set unless another caller already did after `seen` (single-flight); with
    /// `rate_limited`, at most once per `min_refresh_interval`.
    async fn refresh(&self, seen: Option<u64>, rate_limited: bool) -> Result<()> {
        let mut state = self.inner.refresh.lock().await;
        let current = self.current().map(|k| k.generation);
        if current.is_some() && current != seen {
            return Ok(()); // someone refreshed while we waited for the lock
        }
        // Only refetches caused by unknown `kid`s are rate limited, and only against each other: a routine fetch
        // a moment ago must not delay picking up a key that was rotated in right after it.
        if rate_limited {
            let interval = self.inner.config.min_refresh_interval;
            if state
                .last_unknown_kid_fetch
                .is_some_and(|t| t.elapsed() < interval)
            {
                return Ok(());
            }
            state.last_unknown_kid_fetch = Some(Instant::now());
        }
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.inner.issuer);
                let doc: Discovery = self.get_json(&url).await?;
                if doc.issuer != self.inner.issuer {
                    return Err(Error::Config(format!(
                        "discovery issuer {} does not match the configured {}",
                        doc.issuer, self.inner.issuer
                    )));
                }
                state.jwks_uri = Some(doc.jwks_uri.clone());
                doc.jwks_uri
            }
        };
        let raw: RawJwks = self.get_json(&jwks_uri).await?;
        let mut by_kid = HashMap::new();
        for value in raw.keys {
            if value.get("use").and_then(|u| u.as_str()) != Some("sig") {
                continue;
            }
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let Some(alg) = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok())
            else {
                continue;
            };
            if !self.inner.config.algorithms.contains(&alg) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(&jwk) {
                by_kid.insert(kid, (alg, key));
            }
        }
        let generation = current.map_or(1, |g| g.wrapping_add(1));
        let set = Arc::new(KeySet {
            by_kid,
            fetched_at: Instant::now(),
            generation,
        });
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(set);
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T> {
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Error::Core(avb_core::Error::unavailable("keycloak", e)))?;
        response
            .json::<T>()
            .await
            .map_err(|e| Error::Core(avb_core::Error::unavailable("keycloak", e)))
    }

    async fn key_for(&self, kid: &str) -> Result<(Algorithm, DecodingKey)> {
        let mut set = self.current();
        let stale = set
            .as_ref()
            .is_none_or(|s| s.fetched_at.elapsed() > self.inner.config.max_key_age);
        if stale {
            self.refresh(set.as_ref().map(|s| s.generation), false).await?;
            set = self.current();
        }
        if let Some((alg, key)) = set.as_ref().and_then(|s| s.by_kid.get(kid)) {
            return Ok((*alg, key.clone()));
        }
        // Unknown kid: maybe a rotation. One rate-limited, single-flight refetch, then give up.
        self.refresh(set.as_ref().map(|s| s.generation), true).await?;
        self.current()
            .and_then(|s| s.by_kid.get(kid).map(|(a, k)| (*a, k.clone())))
            .ok_or_else(|| Error::InvalidToken("unknown signing key".into()))
    }
}

#[async_trait]
impl IdentityProvider for KeycloakIdentity {
    async fn verify(&self, _ctx: &Ctx, token: &str) -> Result<VerifiedToken> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::InvalidToken("token too large".into()));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Error::InvalidToken(jwt_error_reason(&e)))?;
        if !self.inner.config.algorithms.contains(&header.alg) {
            return Err(Error::InvalidToken("algorithm not allowed".into()));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::InvalidToken("missing kid".into()))?;
        let (key_alg, key) = self.key_for(&kid).await?;
        if key_alg != header.alg {
            return Err(Error::InvalidToken("algorithm does not match the key".into()));
        }
        let mut validation = Validation::new(key_alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|e| Error::InvalidToken(jwt_error_reason(&e)))?;
        let config = &self.inner.config;
        let time = TimeRules {
            now: self.inner.clock.now(),
            leeway: i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX),
            max_lifetime: 86_400,
        };
        data.claims
            .verify(&self.inner.issuer, &config.audience, &config.client_id, &time)
    }
}
