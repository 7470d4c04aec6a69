//! [`RedisEphemeralTokens`]: realtime client-secret grants (`ek_…`) with Redis TTLs, shared by every replica.

use crate::link::Link;
use async_trait::async_trait;
use avb_auth::ephemeral::{ClientSecretGrant, EphemeralTokenStore};
use avb_core::{Ctx, Error};
use std::time::Duration;

/// Grants stored as JSON at `{prefix}:ek:{sha256 hex of the secret}` with `SET … PX ttl`.
///
/// The secret itself never reaches Redis, only its hash, so a dump of Redis cannot be replayed. Expiry is
/// Redis's: a grant is gone on every replica the moment its TTL passes, and a revoked grant is gone at once
/// (`UNLINK`). A zero TTL stores nothing. Unreachable Redis is `service_unavailable`: a realtime session cannot
/// be authenticated without its grant. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct RedisEphemeralTokens {
    link: Link,
}

impl RedisEphemeralTokens {
    pub(crate) fn new(link: Link) -> Self {
        Self { link }
    }

    fn key(&self, secret_hash: &str) -> String {
        self.link.key(&format!("ek:{secret_hash}"))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl EphemeralTokenStore for RedisEphemeralTokens {
    async fn put(
        &self,
        ctx: &Ctx,
        secret_hash: &str,
        grant: ClientSecretGrant,
        ttl: Duration,
    ) -> avb_auth::Result<()> {
        let key = self.key(secret_hash);
        if ttl.is_zero() {
            let _: i64 = self.link.query(ctx, redis::cmd("UNLINK").arg(key)).await?;
            return Ok(());
        }
        let json = serde_json::to_vec(&grant)
            .map_err(|e| Error::Internal(format!("grant does not serialise: {e}")))?;
        let () = self
            .link
            .query(
                ctx,
                redis::cmd("SET").arg(key).arg(json).arg("PX").arg(millis(ttl)),
            )
            .await?;
        Ok(())
    }

    async fn get(&self, ctx: &Ctx, secret_hash: &str) -> avb_auth::Result<Option<ClientSecretGrant>> {
        let stored: Option<Vec<u8>> = self
            .link
            .query(ctx, redis::cmd("GET").arg(self.key(secret_hash)))
            .await?;
        match stored {
            None => Ok(None),
            Some(json) => serde_json::from_slice(&json)
                .map(Some)
                .map_err(|e| Error::Internal(format!("a stored grant does not parse: {e}")).into()),
        }
    }

    async fn revoke(&self, ctx: &Ctx, secret_hash: &str) -> avb_auth::Result<()> {
        let _: i64 = self
            .link
            .query(ctx, redis::cmd("UNLINK").arg(self.key(secret_hash)))
            .await?;
        Ok(())
    }
}
