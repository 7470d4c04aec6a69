//! Ephemeral realtime client secrets (`ek_…`, `/work/shared/reference/openai-realtime-events.md` §10): minted by
//! an authenticated tenant principal for a session configuration, short-lived (10–7200 s, default 600), bound to
//! that tenant and configuration, and usable by a browser without exposing the long-lived key.

use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::{Clock, Ctx, FieldErrors, Principal, TenantId};
use base64::Engine as _;
use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Shortest lifetime.
pub const MIN_TTL_SECS: u64 = 10;
/// Longest lifetime.
pub const MAX_TTL_SECS: u64 = 7200;
/// Default lifetime.
pub const DEFAULT_TTL_SECS: u64 = 600;

/// What an ephemeral secret grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSecretGrant {
    /// The tenant it acts for.
    pub tenant_id: TenantId,
    /// Who minted it (the session is attributed to them).
    pub minted_by: Principal,
    /// The session configuration it is bound to.
    pub session_config: serde_json::Value,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Stores grants by the SHA-256 (hex) of the secret; the secret itself is never stored.
///
/// # Contract
/// - `get` returns a grant put with a TTL until the TTL passes, then `None`.
/// - `revoke` removes it; `get` afterwards is `None`.
/// - Grants of different tenants never collide (the key is the secret's hash).
#[async_trait]
pub trait EphemeralTokenStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a grant.
    async fn put(&self, ctx: &Ctx, secret_hash: &str, grant: ClientSecretGrant, ttl: Duration) -> Result<()>;
    /// Reads a live grant.
    async fn get(&self, ctx: &Ctx, secret_hash: &str) -> Result<Option<ClientSecretGrant>>;
    /// Removes a grant.
    async fn revoke(&self, ctx: &Ctx, secret_hash: &str) -> Result<()>;
}

/// A freshly minted secret (its only appearance).
#[derive(Clone, PartialEq)]
pub struct MintedClientSecret {
    /// `ek_…`.
    pub value: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// The grant.
    pub grant: ClientSecretGrant,
}

impl std::fmt::Debug for MintedClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedClientSecret")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Mints and resolves client secrets.
#[derive(Debug, Clone)]
pub struct ClientSecrets {
    store: Arc<dyn EphemeralTokenStore>,
    clock: Arc<dyn Clock>,
}

/// Hex SHA-256 of a secret: the storage key.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl ClientSecrets {
    /// Over `store`.
    pub fn new(store: Arc<dyn EphemeralTokenStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Mints a secret for the ctx's tenant. Only tenant principals (users with a tenant, API keys) may mint; an
    /// ephemeral secret can never mint another (it would extend its own life).
    pub async fn mint(
        &self,
        ctx: &Ctx,
        session_config: serde_json::Value,
        ttl_secs: Option<u64>,
    ) -> Result<MintedClientSecret> {
        let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
            return Err(Error::Invalid(FieldErrors::single(
                "expires_after.seconds",
                "range",
                format!("must be between {MIN_TTL_SECS} and {MAX_TTL_SECS}"),
            )));
        }
        if !session_config.is_object() && !session_config.is_null() {
            return Err(Error::Invalid(FieldErrors::single(
                "session",
                "type",
                "must be an object",
            )));
        }
        let tenant_id = ctx.tenant().ok_or(Error::TenantRequired)?;
        match ctx.principal() {
            Principal::User(_) | Principal::ApiKey(_) => {}
            Principal::Anonymous | Principal::System { .. } => {
                return Err(Error::AuthenticationFailed(
                    "minting a client secret needs a credential".into(),
                ));
            }
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Config(format!("random source: {e}")))?;
        let value = format!(
            "ek_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let secs = i64::try_from(ttl).unwrap_or(i64::MAX);
        let expires_at = self.clock.now() + TimeDelta::seconds(secs);
        let grant = ClientSecretGrant {
            tenant_id,
            minted_by: ctx.principal().clone(),
            session_config,
            expires_at,
        };
        self.store
            .put(ctx, &secret_hash(&value), grant.clone(), Duration::from_secs(ttl))
            .await?;
        Ok(MintedClientSecret {
            value,
            expires_at,
            grant,
        })
    }

    /// Resolves a presented secret to its live grant; unknown or expired → `authentication_failed`.
    pub async fn resolve(&self, ctx: &Ctx, presented: &str) -> Result<ClientSecretGrant> {
        let grant = self.store.get(ctx, &secret_hash(presented)).await?;
        match grant {
            Some(g) if g.expires_at > self.clock.now() => Ok(g),
            _ => Err(Error::AuthenticationFailed(
                "invalid or expired client secret".into(),
            )),
        }
    }
}
