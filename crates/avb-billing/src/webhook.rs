//! Webhooks from the billing provider (Lago): signature verification and de-duplication.
//!
//! Lago signs each delivery one of two ways, named by `X-Lago-Signature-Algorithm`:
//! - `hmac`: `X-Lago-Signature` is `base64(HMAC-SHA256(key, raw body))`; compared in constant time.
//! - `jwt` (the default): `X-Lago-Signature` is a JWT signed RS256 by Lago whose claims are `data` (the exact
//!   body text) and `iss` (the Lago API URL). The public key comes from the provider
//!   ([`WebhookKeySource`], `GET /webhooks/json_public_key`), is cached, and is fetched again once when a
//!   signature does not verify with the cached key (Lago rotated it) — at most once per
//!   [`DEFAULT_MIN_REFETCH_INTERVAL`], so forged signatures cannot make us call Lago at will.
//!
//! Verification is always over the raw bytes, never over re-serialised JSON. Deliveries repeat and arrive out of
//! order, so [`WebhookReceiver`] claims `X-Lago-Unique-Key` in the [`BillingStore`] and reports a repeat as a
//! duplicate; a handler that fails releases the claim so Lago's retry is handled.

use crate::store::BillingStore;
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::{Clock, Ctx};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the provider's webhook public key comes from.
///
/// # Contract
/// - `public_key_pem` returns the current RSA public key, PEM-encoded; each call asks the provider again.
#[async_trait]
pub trait WebhookKeySource: Send + Sync + std::fmt::Debug + 'static {
    /// The current public key (PEM).
    async fn public_key_pem(&self, ctx: &Ctx) -> Result<Vec<u8>>;
}

/// A fixed public key (tests, or a key distributed out of band).
#[derive(Debug, Clone)]
pub struct StaticWebhookKey(pub Vec<u8>);

#[async_trait]
impl WebhookKeySource for StaticWebhookKey {
    async fn public_key_pem(&self, _ctx: &Ctx) -> Result<Vec<u8>> {
        Ok(self.0.clone())
    }
}

/// The headers of a delivery that matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// `X-Lago-Signature`.
    pub signature: Option<String>,
    /// `X-Lago-Signature-Algorithm` (`jwt` when absent).
    pub algorithm: Option<String>,
    /// `X-Lago-Unique-Key`.
    pub unique_key: Option<String>,
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// `X-Lago-Unique-Key`.
    pub unique_key: String,
    /// `webhook_type` (`invoice.created`, …).
    pub webhook_type: String,
    /// `object_type` (`invoice`, …).
    pub object_type: String,
    /// The whole body.
    pub payload: Value,
}

/// Verifies signatures.
pub struct WebhookVerifier {
    hmac_key: Option<Vec<u8>>,
    issuer: String,
    keys: Option<Arc<dyn WebhookKeySource>>,
    cached: tokio::sync::RwLock<Option<Arc<DecodingKey>>>,
    /// When the key was last fetched, and how long a cached key is trusted before a failing signature may
    /// fetch it again: without a pause, anyone could make us call Lago once per forged request.
    last_fetch: std::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
}

/// Default for [`WebhookVerifier::with_min_refetch_interval`]: Lago rotates its webhook key rarely, so a
/// minute's delay in accepting a new key costs a retried delivery at worst (Lago retries), while forged
/// signatures cannot drive more than one key fetch a minute.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("hmac_key", &self.hmac_key.as_ref().map(|_| "<redacted>"))
            .field("issuer", &self.issuer)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl WebhookVerifier {
    /// A verifier accepting JWT signatures issued by `issuer` (Lago's API URL, e.g. `LAGO_API_URL`) with keys from
    /// `keys`. HMAC signatures are refused until [`WebhookVerifier::with_hmac_key`].
    pub fn jwt(issuer: impl Into<String>, keys: Arc<dyn WebhookKeySource>) -> Self {
        Self {
            hmac_key: None,
            issuer: issuer.into(),
            keys: Some(keys),
            cached: tokio::sync::RwLock::new(None),
            last_fetch: std::sync::Mutex::new(None),
            min_refetch: DEFAULT_MIN_REFETCH_INTERVAL,
        }
    }

    /// A verifier accepting only HMAC signatures made with `key` (Lago's "HMAC signature token").
    pub fn hmac(key: impl Into<Vec<u8>>) -> Self {
        Self {
            hmac_key: Some(key.into()),
            issuer: String::new(),
            keys: None,
            cached: tokio::sync::RwLock::new(None),
            last_fetch: std::sync::Mutex::new(None),
            min_refetch: DEFAULT_MIN_REFETCH_INTERVAL,
        }
    }

    /// How long after a key fetch a signature that fails with the cached key is refused without fetching the
    /// key again (default [`DEFAULT_MIN_REFETCH_INTERVAL`]).
    #[must_use]
    pub fn with_min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch = interval;
        self
    }

    /// Also accepts HMAC signatures made with `key`.
    #[must_use]
    pub fn with_hmac_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.hmac_key = Some(key.into());
        self
    }

    /// Verifies `body` against the headers' signature; `Error::WebhookRejected` when it does not verify.
    pub async fn verify(&self, ctx: &Ctx, headers: &WebhookHeaders, body: &[u8]) -> Result<()> {
        let signature = headers
            .signature
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::WebhookRejected("no X-Lago-Signature".into()))?;
        match headers.algorithm.as_deref().unwrap_or("jwt") {
            "hmac" => self.verify_hmac(signature, body),
            "jwt" => self.verify_jwt(ctx, signature, body).await,
            other => Err(Error::WebhookRejected(format!(
                "unknown signature algorithm {other:?}"
            ))),
        }
    }

    fn verify_hmac(&self, signature: &str, body: &[u8]) -> Result<()> {
        let key = self
            .hmac_key
            .as_deref()
            .ok_or_else(|| Error::WebhookRejected("HMAC signatures are not configured".into()))?;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| Error::WebhookRejected("signature is not base64".into()))?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
            .map_err(|e| Error::Config(format!("HMAC key: {e}")))?;
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected)
            .map_err(|_| Error::WebhookRejected("HMAC signature does not match".into()))
    }

    async fn verify_jwt(&self, ctx: &Ctx, token: &str, body: &[u8]) -> Result<()> {
        let cached = self.cached.read().await.clone();
        // With a cached key that fails, the key may have been rotated: fetch it once more below, unless it was
        // fetched moments ago.
        if let Some(key) = cached {
            let checked = self.check_jwt(&key, token, body);
            let fetched_recently = self
                .last_fetch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some_and(|at| at.elapsed() < self.min_refetch);
            if checked.is_ok() || fetched_recently {
                return checked;
            }
        }
        let key = self.fetch_key(ctx).await?;
        self.check_jwt(&key, token, body)
    }

    async fn fetch_key(&self, ctx: &Ctx) -> Result<Arc<DecodingKey>> {
        let source = self
            .keys
            .as_ref()
            .ok_or_else(|| Error::WebhookRejected("JWT signatures are not configured".into()))?;
        *self
            .last_fetch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        let pem = source.public_key_pem(ctx).await?;
        let key = Arc::new(
            DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| Error::Config(format!("webhook public key is not an RSA PEM key: {e}")))?,
        );
        *self.cached.write().await = Some(Arc::clone(&key));
        Ok(key)
    }

    fn check_jwt(&self, key: &DecodingKey, token: &str, body: &[u8]) -> Result<()> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["iss"]);
        // Lago's webhook tokens carry no `exp`; freshness is the unique key's business.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &validation)
            .map_err(|e| Error::WebhookRejected(format!("JWT signature: {e}")))?;
        let claimed = data
            .claims
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::WebhookRejected("JWT has no `data` claim".into()))?;
        if claimed.as_bytes() != body {
            return Err(Error::WebhookRejected(
                "JWT `data` is not the body that was delivered".into(),
            ));
        }
        Ok(())
    }
}

/// Verifies deliveries and filters out repeats.
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    verifier: Arc<WebhookVerifier>,
    store: Arc<dyn BillingStore>,
    clock: Arc<dyn Clock>,
}

/// What [`WebhookReceiver::receive`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A first delivery: handle it, then [`WebhookReceiver::release`] its key if handling failed.
    New(Webhook),
    /// A repeat of a delivery already claimed: acknowledge it and do nothing.
    Duplicate(String),
}

impl WebhookReceiver {
    /// A receiver.
    pub fn new(verifier: Arc<WebhookVerifier>, store: Arc<dyn BillingStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            verifier,
            store,
            clock,
        }
    }

    /// Verifies the delivery, parses it and claims its unique key. A missing unique key or a body that is not
    /// a JSON object is `Error::WebhookRejected` (Lago always sends both).
    pub async fn receive(&self, ctx: &Ctx, headers: &WebhookHeaders, body: &[u8]) -> Result<Received> {
        self.verifier.verify(ctx, headers, body).await?;
        let unique_key = headers
            .unique_key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Error::WebhookRejected("no X-Lago-Unique-Key".into()))?;
        let payload: Value = serde_json::from_slice(body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| Error::WebhookRejected("body is not a JSON object".into()))?;
        if !self
            .store
            .claim_webhook(ctx, &unique_key, self.clock.now())
            .await?
        {
            return Ok(Received::Duplicate(unique_key));
        }
        let field = |name: &str| {
            payload
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Received::New(Webhook {
            webhook_type: field("webhook_type"),
            object_type: field("object_type"),
            unique_key,
            payload,
        }))
    }

    /// Forgets a claim whose handling failed, so the provider's next attempt is handled.
    pub async fn release(&self, ctx: &Ctx, unique_key: &str) -> Result<()> {
        self.store.release_webhook(ctx, unique_key).await
    }
}
