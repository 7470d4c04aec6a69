//! [`MemoryEphemeralTokens`]: ephemeral realtime client secrets (`ek_…`) in memory, expiring with their TTL.

use async_trait::async_trait;
use avb_auth::ephemeral::{ClientSecretGrant, EphemeralTokenStore};
use avb_core::Ctx;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Expired grants are swept once this many puts have happened since the last sweep (bounded memory without a
/// background task).
const SWEEP_EVERY: usize = 1024;

/// In-memory [`EphemeralTokenStore`]. Cloning shares the grants.
#[derive(Debug, Clone, Default)]
pub struct MemoryEphemeralTokens {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    grants: HashMap<String, (ClientSecretGrant, Instant)>,
    puts_since_sweep: usize,
}

impl MemoryEphemeralTokens {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EphemeralTokenStore for MemoryEphemeralTokens {
    async fn put(
        &self,
        _ctx: &Ctx,
        secret_hash: &str,
        grant: ClientSecretGrant,
        ttl: Duration,
    ) -> avb_auth::Result<()> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.puts_since_sweep += 1;
        if inner.puts_since_sweep >= SWEEP_EVERY {
            inner.grants.retain(|_, (_, until)| *until > now);
            inner.puts_since_sweep = 0;
        }
        inner.grants.insert(secret_hash.to_owned(), (grant, now + ttl));
        Ok(())
    }

    async fn get(&self, _ctx: &Ctx, secret_hash: &str) -> avb_auth::Result<Option<ClientSecretGrant>> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.grants.get(secret_hash) {
            Some((grant, until)) if *until > now => Ok(Some(grant.clone())),
            Some(_) => {
                inner.grants.remove(secret_hash);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn revoke(&self, _ctx: &Ctx, secret_hash: &str) -> avb_auth::Result<()> {
        self.lock().grants.remove(secret_hash);
        Ok(())
    }
}
