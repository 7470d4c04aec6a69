//! API key records (spec §9.2): generation, creation under the tenant quota, revocation, rotation with a grace
//! period, batched usage recording and secret verification.
//!
//! A key is `avb_` followed by the URL-safe base64 (no padding) of 32 random bytes — 47 characters, like the
//! spec's `secrets.token_urlsafe(32)`. Only its first 12 characters (the indexed prefix) and the hex SHA-256 of the
//! whole key are stored; the secret exists once, in [`CreatedApiKey`], and is never written to the store, the
//! audit trail or a `Debug` output. Which principal may create, rotate or revoke a key (`api_key#rotate`,
//! `api_key#revoke`, spec §6.4) is the API layer's decision.

use crate::audit::snapshot;
use crate::error::{Error, Result};
use crate::model::{ApiKey, TenantStatus};
use crate::quota::{self, Quota};
use crate::service::TenancyDeps;
use crate::store::{ApiKeyFilter, UnitOfWork};
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{
    ApiKeyId, ApiKeyScope, Ctx, FieldErrors, Page, PageRequest, ProjectId, RateLimitTier, TenantId,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Months, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// Every key starts with this marker, so scanners and the credential extractor can recognise it.
pub const KEY_MARKER: &str = "avb_";
/// Characters of the key stored and indexed for lookup (spec §9.2 `full_key[:12]`).
pub const PREFIX_LEN: usize = 12;
/// Random bytes behind a key (spec §9.2 `token_urlsafe(32)`).
const RANDOM_BYTES: usize = 32;
/// Length of a well-formed key: the marker plus 43 base64url characters.
pub const KEY_LEN: usize = 4 + 43;
/// Longest rotation grace period: long enough to redeploy clients, short enough that a leaked key dies soon.
pub const MAX_ROTATION_GRACE_SECONDS: u64 = 7 * 24 * 3600;
/// Longest lifetime a key may be created with.
const MAX_LIFETIME_MONTHS: u32 = 60;
/// Fields that never leave the store in an audit entry.
const REDACTED: &[&str] = &["key_hash"];

/// The secret of a freshly made key. Its `Debug` shows only the prefix; read it with [`ApiKeySecret::expose`]
/// to show it to the user once.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// The full key, to hand to the user exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored, non-secret prefix.
    pub fn prefix(&self) -> &str {
        self.0.get(..PREFIX_LEN).unwrap_or_default()
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.prefix())
    }
}

/// A generated key: the secret and what is stored about it.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The full key.
    pub secret: ApiKeySecret,
    /// Its first [`PREFIX_LEN`] characters.
    pub prefix: String,
    /// Hex SHA-256 of the full key.
    pub hash: String,
}

/// Makes a new key from the operating system's random source (spec §9.2 `generate_key`).
pub fn generate_key() -> Result<GeneratedKey> {
    let mut raw = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut raw)
        .map_err(|e| Error::Store(avb_core::Error::Internal(format!("random source failed: {e}"))))?;
    let secret = format!("{KEY_MARKER}{}", URL_SAFE_NO_PAD.encode(raw));
    let prefix = secret.get(..PREFIX_LEN).unwrap_or_default().to_owned();
    let hash = hash_key(&secret);
    Ok(GeneratedKey {
        secret: ApiKeySecret(secret),
        prefix,
        hash,
    })
}

/// Hex SHA-256 of a key (spec §9.2 `hash_key`).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// True when `presented` has the shape of one of our keys (marker, length, base64url alphabet). Malformed
/// credentials are rejected without a store lookup.
pub fn is_well_formed(presented: &str) -> bool {
    presented.len() == KEY_LEN
        && presented.starts_with(KEY_MARKER)
        && presented
            .bytes()
            .skip(KEY_MARKER.len())
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// True when `presented` hashes to `record.key_hash`. The digests are compared in constant time, so timing does
/// not tell an attacker how much of a guessed hash matched. Validity (expiry, revocation) is not checked here:
/// use [`ApiKey::is_valid`].
pub fn verify_secret(presented: &str, record: &ApiKey) -> bool {
    let Ok(stored) = hex::decode(&record.key_hash) else {
        return false;
    };
    let computed = Sha256::digest(presented.as_bytes());
    computed.as_slice().ct_eq(stored.as_slice()).into()
}

/// What a client sends to create a key. Scope and tier names are validated (not parsed by serde) so one request
/// reports every bad field.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CreateApiKeyRequest {
    /// 1–100 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, required = true)
    )]
    pub name: String,
    /// ≤ 2000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: String,
    /// At least one of `realtime`, `billing`, `admin`.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<avb_core::ApiKeyScope>, min_items = 1, required = true)
    )]
    pub scopes: Vec<String>,
    /// `standard` (default), `elevated` or `unlimited`.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<avb_core::RateLimitTier>)
    )]
    pub rate_limit_tier: Option<String>,
    /// In the future, at most five years ahead; `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Binds the key to a project of the tenant.
    pub project_id: Option<ProjectId>,
}

/// A created key: the stored record and the secret, which exists only here.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored record (prefix and hash only).
    pub record: ApiKey,
    /// The full key, to show once.
    pub secret: ApiKeySecret,
}

/// Rotation options.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct RotateApiKeyRequest {
    /// How long the old key keeps working (0–7 days); `None` or 0 revokes it at once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 604800))]
    pub grace_seconds: Option<u64>,
}

/// The result of a rotation.
#[derive(Debug, Clone)]
pub struct RotatedApiKey {
    /// The replacement key, with its secret.
    pub new: CreatedApiKey,
    /// The old key, revoked now or at the end of the grace period (`revoked_at`).
    pub old: ApiKey,
}

/// Uses of one key observed by the authentication layer, which batches them instead of writing per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct UsageRecord {
    /// The key.
    pub key_id: ApiKeyId,
    /// When it was (last) used.
    pub at: DateTime<Utc>,
    /// From where.
    pub ip: Option<IpAddr>,
    /// Uses in this record.
    pub count: u64,
}

/// API key records of a tenant.
#[derive(Debug, Clone)]
pub struct ApiKeyService {
    deps: TenancyDeps,
}

impl ApiKeyService {
    /// A service over `deps`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// Creates a key in the context's tenant, counted against `max_api_keys`; returns the secret once.
    ///
    /// Fails with `validation_error` (every bad field), `not_found` (project not in the tenant),
    /// `tenant_limit_exceeded`, `tenant_suspended`; in every failure nothing is written.
    pub async fn create(&self, ctx: &Ctx, req: CreateApiKeyRequest) -> Result<CreatedApiKey> {
        let now = self.deps.clock.now();
        let (scopes, tier) = validate_create(&req, now)?;
        let tenant = ctx.require_tenant()?;
        let key = generate_key()?;
        let record = ApiKey {
            id: ApiKeyId::generate(self.deps.ids.as_ref()),
            tenant_id: tenant,
            name: req.name,
            description: req.description,
            key_prefix: key.prefix,
            key_hash: key.hash,
            created_by: ctx.principal().user_id(),
            project_id: req.project_id,
            scopes,
            rate_limit_tier: tier,
            expires_at: req.expires_at,
            revoked_at: None,
            revoked_by: None,
            last_used_at: None,
            last_used_ip: None,
            usage_count: 0,
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let stored = self
            .deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    if let Some(project) = record.project_id {
                        uow.projects().get(project).await?;
                    }
                    quota::reserve(uow, tenant, Quota::ApiKeys, now).await?;
                    let stored = uow.api_keys().insert(record).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, ApiKeyId::RESOURCE, stored.id)
                            .description("api key created")
                            .values(None, Some(snapshot(&stored, REDACTED)))
                            .tenant(stored.tenant_id),
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await?;
        Ok(CreatedApiKey {
            record: stored,
            secret: key.secret,
        })
    }

    /// Keys of the context's scope matching `filter`, newest first.
    pub async fn list(&self, ctx: &Ctx, filter: ApiKeyFilter, page: PageRequest) -> Result<Page<ApiKey>> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.api_keys().list(&filter, page).await?) })
            })
            .await
    }

    /// One key.
    pub async fn get(&self, ctx: &Ctx, id: ApiKeyId) -> Result<ApiKey> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.api_keys().get(id).await?) })
            })
            .await
    }

    /// Revokes a key now (spec §9.2 `revoke`: `revoked_at`, `revoked_by`). A key whose revocation is only
    /// scheduled (rotation grace) is revoked at once. Revoking a revoked key is `conflict` (invalid state).
    pub async fn revoke(&self, ctx: &Ctx, id: ApiKeyId) -> Result<ApiKey> {
        let now = self.deps.clock.now();
        let by = ctx.principal().user_id();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.api_keys().lock(id).await?;
                    if old.is_revoked(now) {
                        return Err(invalid_state("revoked", "revoke"));
                    }
                    let mut key = old.clone();
                    key.revoked_at = Some(now);
                    key.revoked_by = by;
                    key.updated_at = now;
                    let stored = uow.api_keys().update(key).await?;
                    audit_change(uow, &old, &stored, "api key revoked").await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// Replaces a key with a new secret of the same name, description, owner (`created_by`), scopes, tier,
    /// project and expiry, in one unit of work; the audit trail records who rotated it. The old key is revoked
    /// now, or at `now + grace` (it keeps working until then, see [`ApiKey::is_revoked`]).
    ///
    /// Quota: rotation is not refused by `max_api_keys`, even at or above the limit. It never raises the number
    /// of keys that count (non-revoked ones): the old key is marked revoked in the same unit of work, and a
    /// key whose revocation is scheduled no longer counts. Refusing it would leave a tenant that was downgraded
    /// below its key count unable to replace a leaked key — exactly when rotation matters. The tenant is still
    /// locked and must not be suspended or deleted.
    ///
    /// Refused with `conflict` (invalid state) for a key already revoked, already rotated (revocation scheduled)
    /// or expired — create a new key instead.
    pub async fn rotate(&self, ctx: &Ctx, id: ApiKeyId, req: RotateApiKeyRequest) -> Result<RotatedApiKey> {
        let now = self.deps.clock.now();
        let grace = req.grace_seconds.unwrap_or(0);
        if grace > MAX_ROTATION_GRACE_SECONDS {
            return Err(Error::Invalid(FieldErrors::single(
                "grace_seconds",
                "range",
                format!("must be between 0 and {MAX_ROTATION_GRACE_SECONDS}"),
            )));
        }
        let revoke_at = i64::try_from(grace)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        let by = ctx.principal().user_id();
        let key = generate_key()?;
        let new_id = ApiKeyId::generate(self.deps.ids.as_ref());
        let prefix = key.prefix;
        let hash = key.hash;
        let (new, old) = self
            .deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.api_keys().lock(id).await?;
                    if old.is_revoked(now) {
                        return Err(invalid_state("revoked", "rotate"));
                    }
                    if old.revoked_at.is_some() {
                        return Err(invalid_state("already rotated", "rotate"));
                    }
                    if old.is_expired(now) {
                        return Err(invalid_state("expired", "rotate"));
                    }
                    lock_usable_tenant(uow, old.tenant_id).await?;
                    let mut retired = old.clone();
                    retired.revoked_at = Some(revoke_at);
                    retired.revoked_by = by;
                    retired.updated_at = now;
                    let retired = uow.api_keys().update(retired).await?;
                    let replacement = ApiKey {
                        id: new_id,
                        key_prefix: prefix,
                        key_hash: hash,
                        revoked_at: None,
                        revoked_by: None,
                        last_used_at: None,
                        last_used_ip: None,
                        usage_count: 0,
                        created_at: now,
                        updated_at: now,
                        version: 0,
                        ..old.clone()
                    };
                    let replacement = uow.api_keys().insert(replacement).await?;
                    audit_change(uow, &old, &retired, "api key rotated; old key retired").await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, ApiKeyId::RESOURCE, replacement.id)
                            .description("api key created by rotation")
                            .values(None, Some(snapshot(&replacement, REDACTED)))
                            .metadata(json!({ "rotated_from": old.id, "grace_seconds": grace }))
                            .tenant(replacement.tenant_id),
                    )
                    .await?;
                    Ok((replacement, retired))
                })
            })
            .await?;
        Ok(RotatedApiKey {
            new: CreatedApiKey {
                record: new,
                secret: key.secret,
            },
            old,
        })
    }

    /// Applies a batch of usage observations in one unit of work: per key, `last_used_at` becomes the latest
    /// time seen (never moves back), `last_used_ip` the IP of that latest use, and `usage_count` grows by the
    /// summed counts. Records of keys that no longer exist (or are outside the context's scope) are skipped.
    /// Returns how many keys were updated.
    ///
    /// Usage is metering, not a change anyone makes, so it is not audited: one entry per batch would flood the
    /// hash chain and say nothing the counters do not. `updated_at` is left alone for the same reason.
    pub async fn record_usage(&self, ctx: &Ctx, batch: Vec<UsageRecord>) -> Result<u64> {
        let coalesced = coalesce(batch);
        if coalesced.is_empty() {
            return Ok(0);
        }
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let mut updated = 0;
                    for (id, usage) in coalesced {
                        let mut key = match uow.api_keys().lock(id).await {
                            Ok(key) => key,
                            Err(avb_core::Error::NotFound { .. }) => continue,
                            Err(other) => return Err(other.into()),
                        };
                        if key.last_used_at.is_none_or(|last| usage.at >= last) {
                            key.last_used_at = Some(usage.at);
                            key.last_used_ip = usage.ip;
                        }
                        key.usage_count = key.usage_count.saturating_add(usage.count);
                        uow.api_keys().update(key).await?;
                        updated += 1;
                    }
                    Ok(updated)
                })
            })
            .await
    }

    /// Finds the record whose hash matches `presented`, looked up by prefix. Several keys may share a prefix
    /// (8 random characters): each candidate is compared in constant time. Returns the record whatever its
    /// validity — the caller checks [`ApiKey::is_valid`] so it can log why a key was refused.
    ///
    /// Authentication runs before the tenant is known, so `ctx` is normally a system context (all tenants).
    pub async fn find_by_secret(&self, ctx: &Ctx, presented: &str) -> Result<Option<ApiKey>> {
        if !is_well_formed(presented) {
            return Ok(None);
        }
        let prefix = presented.get(..PREFIX_LEN).unwrap_or_default().to_owned();
        let presented = presented.to_owned();
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move {
                    let filter = ApiKeyFilter {
                        prefix: Some(prefix),
                        ..Default::default()
                    };
                    let mut offset = 0;
                    loop {
                        let page = PageRequest::new(Some(PageRequest::MAX_LIMIT), Some(offset))?;
                        let found = uow.api_keys().list(&filter, page).await?;
                        let n = found.items.len() as u64;
                        if let Some(hit) = found.items.into_iter().find(|k| verify_secret(&presented, k)) {
                            return Ok(Some(hit));
                        }
                        offset += n;
                        if n == 0 || offset >= found.total {
                            return Ok(None);
                        }
                    }
                })
            })
            .await
    }
}

/// Per-key totals of a usage batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Coalesced {
    at: DateTime<Utc>,
    ip: Option<IpAddr>,
    count: u64,
}

fn coalesce(batch: Vec<UsageRecord>) -> BTreeMap<ApiKeyId, Coalesced> {
    let mut by_key: BTreeMap<ApiKeyId, Coalesced> = BTreeMap::new();
    for r in batch {
        by_key
            .entry(r.key_id)
            .and_modify(|c| {
                if r.at >= c.at {
                    c.at = r.at;
                    c.ip = r.ip;
                }
                c.count = c.count.saturating_add(r.count);
            })
            .or_insert(Coalesced {
                at: r.at,
                ip: r.ip,
                count: r.count,
            });
    }
    by_key
}

fn validate_create(
    req: &CreateApiKeyRequest,
    now: DateTime<Utc>,
) -> Result<(BTreeSet<ApiKeyScope>, RateLimitTier)> {
    let mut errors = FieldErrors::new();
    validation::text(&mut errors, "name", &req.name, 1, 100);
    validation::text(&mut errors, "description", &req.description, 0, 2000);
    let mut scopes = BTreeSet::new();
    if req.scopes.is_empty() {
        errors.push("scopes", "required", "at least one scope is required");
    }
    for (i, name) in req.scopes.iter().enumerate() {
        match ApiKeyScope::parse(name) {
            Some(scope) => {
                scopes.insert(scope);
            }
            None => errors.push(
                format!("scopes[{i}]"),
                "choice",
                format!("unknown scope '{name}'"),
            ),
        }
    }
    let tier = match req.rate_limit_tier.as_deref() {
        None => RateLimitTier::Standard,
        Some(name) => RateLimitTier::parse(name).unwrap_or_else(|| {
            errors.push(
                "rate_limit_tier",
                "choice",
                "must be standard, elevated or unlimited",
            );
            RateLimitTier::Standard
        }),
    };
    if let Some(expires) = req.expires_at {
        let latest = now
            .checked_add_months(Months::new(MAX_LIFETIME_MONTHS))
            .unwrap_or(now);
        if expires <= now {
            errors.push("expires_at", "range", "must be in the future");
        } else if expires > latest {
            errors.push("expires_at", "range", "must be at most five years ahead");
        }
    }
    errors.into_result()?;
    Ok((scopes, tier))
}

fn invalid_state(state: &str, action: &'static str) -> Error {
    Error::InvalidState {
        resource: ApiKeyId::RESOURCE,
        state: state.to_owned(),
        action,
    }
}

/// Locks the tenant and checks it may still create keys — [`quota::reserve`]'s status rules without the count.
async fn lock_usable_tenant(uow: &mut dyn UnitOfWork, tenant: TenantId) -> Result<()> {
    let record = match uow.tenants().lock(tenant).await {
        Ok(t) => t,
        Err(avb_core::Error::NotFound { .. }) => return Err(Error::TenantNotFound(tenant.to_string())),
        Err(other) => return Err(other.into()),
    };
    match record.status {
        TenantStatus::Deleted => Err(Error::TenantNotFound(tenant.to_string())),
        TenantStatus::Suspended => Err(Error::TenantSuspended(record.name)),
        TenantStatus::Active | TenantStatus::Pending => Ok(()),
    }
}

async fn audit_change(uow: &mut dyn UnitOfWork, old: &ApiKey, new: &ApiKey, description: &str) -> Result<()> {
    uow.append_audit(
        NewAuditEntry::new(AuditAction::Update, ApiKeyId::RESOURCE, new.id)
            .description(description)
            .values(
                Some(json!({ "revoked_at": old.revoked_at, "revoked_by": old.revoked_by })),
                Some(json!({ "revoked_at": new.revoked_at, "revoked_by": new.revoked_by })),
            )
            .tenant(new.tenant_id),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{ErrorCode, HasCode};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn record_for(key: &GeneratedKey) -> ApiKey {
        ApiKey {
            id: ApiKeyId(uuid::Uuid::from_u128(1)),
            tenant_id: TenantId(uuid::Uuid::from_u128(2)),
            name: "k".into(),
            description: String::new(),
            key_prefix: key.prefix.clone(),
            key_hash: key.hash.clone(),
            created_by: None,
            project_id: None,
            scopes: [ApiKeyScope::Realtime].into(),
            rate_limit_tier: RateLimitTier::Standard,
            expires_at: None,
            revoked_at: None,
            revoked_by: None,
            last_used_at: None,
            last_used_ip: None,
            usage_count: 0,
            created_at: t0(),
            updated_at: t0(),
            version: 1,
        }
    }

    #[test]
    fn generated_keys_have_the_spec_shape() {
        let key = generate_key().unwrap();
        let secret = key.secret.expose();
        assert_eq!(secret.len(), KEY_LEN);
        assert!(secret.starts_with("avb_"));
        assert!(is_well_formed(secret));
        assert_eq!(key.prefix, &secret[..12]);
        assert_eq!(key.hash, hash_key(secret));
        assert_eq!(key.hash.len(), 64);
        assert_eq!(URL_SAFE_NO_PAD.decode(&secret[4..]).unwrap().len(), 32);
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn hash_matches_a_known_sha256_vector() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let key = generate_key().unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.secret.expose()));
        assert!(shown.contains(&key.prefix));
    }

    #[test]
    fn only_the_exact_key_verifies() {
        let key = generate_key().unwrap();
        let record = record_for(&key);
        let secret = key.secret.expose();
        assert!(verify_secret(secret, &record));
        let mut tampered = secret.to_owned().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(!verify_secret(std::str::from_utf8(&tampered).unwrap(), &record));
        assert!(!verify_secret(&secret[..secret.len() - 1], &record));
        assert!(!verify_secret(&format!("{secret}x"), &record));
        assert!(!verify_secret("", &record));
        let mut wrong_hash = record.clone();
        wrong_hash.key_hash = hash_key("something else");
        assert!(!verify_secret(secret, &wrong_hash));
        let mut garbage_hash = record;
        garbage_hash.key_hash = "not hex".into();
        assert!(!verify_secret(secret, &garbage_hash));
    }

    #[test]
    fn malformed_credentials_are_recognised() {
        let key = generate_key().unwrap();
        let secret = key.secret.expose();
        assert!(!is_well_formed(&secret.replacen("avb_", "sk__", 1)));
        assert!(!is_well_formed(&secret[..KEY_LEN - 1]));
        assert!(!is_well_formed(&format!("{}+", &secret[..KEY_LEN - 1])));
        assert!(!is_well_formed(&format!("{}é", &secret[..KEY_LEN - 2])));
    }

    #[test]
    fn create_requests_report_every_bad_field() {
        let req = CreateApiKeyRequest {
            name: String::new(),
            description: "x".repeat(2001),
            scopes: vec!["realtime".into(), "root".into()],
            rate_limit_tier: Some("ludicrous".into()),
            expires_at: Some(t0()),
            project_id: None,
        };
        let err = validate_create(&req, t0()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        let Error::Invalid(fields) = err else {
            panic!("expected validation error")
        };
        let names: Vec<_> = fields.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "name",
                "description",
                "scopes[1]",
                "rate_limit_tier",
                "expires_at"
            ]
        );
    }

    #[test]
    fn scopes_are_required_and_expiry_is_bounded() {
        let mut req = CreateApiKeyRequest {
            name: "k".into(),
            ..Default::default()
        };
        let Error::Invalid(fields) = validate_create(&req, t0()).unwrap_err() else {
            panic!()
        };
        assert_eq!(fields.0[0].field, "scopes");
        req.scopes = vec!["admin".into(), "admin".into()];
        req.expires_at = t0().checked_add_months(Months::new(61));
        let Error::Invalid(fields) = validate_create(&req, t0()).unwrap_err() else {
            panic!()
        };
        assert_eq!(fields.0[0].field, "expires_at");
        req.expires_at = t0().checked_add_months(Months::new(60));
        let (scopes, tier) = validate_create(&req, t0()).unwrap();
        assert_eq!(scopes, [ApiKeyScope::Admin].into());
        assert_eq!(tier, RateLimitTier::Standard);
    }

    #[test]
    fn usage_is_coalesced_per_key_keeping_the_latest_ip() {
        let a = ApiKeyId(uuid::Uuid::from_u128(1));
        let b = ApiKeyId(uuid::Uuid::from_u128(2));
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        let later = t0() + TimeDelta::seconds(5);
        let merged = coalesce(vec![
            UsageRecord {
                key_id: a,
                at: later,
                ip: Some(ip2),
                count: 3,
            },
            UsageRecord {
                key_id: a,
                at: t0(),
                ip: Some(ip1),
                count: 2,
            },
            UsageRecord {
                key_id: b,
                at: t0(),
                ip: None,
                count: 1,
            },
        ]);
        assert_eq!(
            merged[&a],
            Coalesced {
                at: later,
                ip: Some(ip2),
                count: 5
            }
        );
        assert_eq!(
            merged[&b],
            Coalesced {
                at: t0(),
                ip: None,
                count: 1
            }
        );
    }
}
