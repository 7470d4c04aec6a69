//! Tenant lifecycle, settings, usage and limits (spec §5.1, §7.2–7.4 `TenantService`), framework-free.
//!
//! # Status rules
//! Tenants start `pending` (spec §5.1 default) and move only along these edges; anything else is
//! [`Error::InvalidState`] (code `conflict`) and writes nothing:
//!
//! | action     | allowed from            | result      | also                                               |
//! |------------|-------------------------|-------------|----------------------------------------------------|
//! | `activate` | `pending`, `suspended`  | `active`    | `activated_at = now`, `settings.suspension_reason` removed |
//! | `suspend`  | `pending`, `active`     | `suspended` | `suspended_at = now`, `settings.suspension_reason = reason` |
//! | `delete`   | any but `deleted`       | `deleted`   | `deleted_at = now` (soft delete; rows are kept)    |
//!
//! `update` and settings changes are refused on a deleted tenant. Suspension does not block admin edits (a
//! sysadmin fixes a tenant before re-activating it); creating users, projects, keys and sessions in a suspended
//! tenant is refused by [`crate::quota::reserve`].
//!
//! # Scoping
//! Every operation on one tenant runs in a unit of work scoped to that tenant: a tenant-scoped context may name only
//! its own tenant (another id behaves as absent: `not_found`), a cross-tenant context (sysadmin, system) is narrowed
//! with [`Ctx::scoped_to`] so that counts, quotas and the audit chain are the tenant's own.

use crate::error::{Error, Result};
use crate::model::{
    Tenant, TenantLimits, TenantSettings, TenantStatus, TenantTier, User, UserProfile, VoiceProvider,
};
use crate::quota::{self, Quota};
use crate::resolve::TenantCache;
use crate::service::TenancyDeps;
use crate::store::{SessionFilter, TenantFilter, UserFilter};
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::jobs::{NewJob, kinds};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, Role, StorageScope, TenantId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Largest serialised size of a free-form JSON document (tenant settings, project settings, user preferences).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// Most entries in `allowed_ip_ranges`.
pub const MAX_IP_RANGES: usize = 100;

/// Longest suspension reason.
pub const MAX_SUSPENSION_REASON: usize = 500;

/// Key of `Tenant::settings` that holds the suspension reason (spec §5.1 `Tenant.suspend`); reserved, so that
/// `update` cannot forge or erase it.
pub const SUSPENSION_REASON_KEY: &str = "suspension_reason";

// ---------------------------------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------------------------------

/// Input of [`TenantService::create`] (spec §7.3 `TenantCreate`).
///
/// Enumerations arrive as text so that a bad value is reported with every other bad field in one
/// `validation_error`, not as a deserialisation failure.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTenantRequest {
    /// Display name, 2–255 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 2, max_length = 255))]
    pub name: String,
    /// 3–100 characters matching `^[a-z0-9][a-z0-9-]*[a-z0-9]$`, unique platform-wide.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 3, max_length = 100, pattern = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
    )]
    pub slug: String,
    /// `free` (default), `starter`, `pro` or `enterprise`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<crate::model::TenantTier>)
    )]
    pub tier: Option<String>,
    /// E-mail of the first administrator; unique platform-wide.
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub admin_email: String,
    /// Full name of the first administrator, 2–255 characters; the first word becomes the first name.
    #[cfg_attr(feature = "openapi", schema(min_length = 2, max_length = 255))]
    pub admin_name: String,
    /// Enqueue the welcome e-mail (default true).
    #[serde(default = "default_true")]
    pub send_welcome_email: bool,
}

fn default_true() -> bool {
    true
}

impl CreateTenantRequest {
    /// A request with the default tier (`free`) and the welcome e-mail on.
    pub fn new(
        name: impl Into<String>,
        slug: impl Into<String>,
        admin_email: impl Into<String>,
        admin_name: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            slug: slug.into(),
            tier: None,
            admin_email: admin_email.into(),
            admin_name: admin_name.into(),
            send_welcome_email: true,
        }
    }
}

/// Input of [`TenantService::update`] (spec §7.3 `TenantUpdate`); `None` leaves a field unchanged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateTenantRequest {
    /// New name, 2–255 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 2, max_length = 255))]
    pub name: Option<String>,
    /// New tier; resets all four limits to the tier's table (§7.4) before explicit overrides apply.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<crate::model::TenantTier>)
    )]
    pub tier: Option<String>,
    /// Explicit override, ≥ 1.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_users: Option<i64>,
    /// Explicit override, ≥ 1.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_projects: Option<i64>,
    /// Explicit override, ≥ 1.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_api_keys: Option<i64>,
    /// Explicit override, ≥ 1. The spec allows 0 here; we follow issue 2 ("explicit limit overrides ≥ 1") for all
    /// four limits, because a tenant that must not open sessions is suspended, not given a zero quota.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_sessions_per_month: Option<i64>,
    /// JSON merge patch (RFC 7396) applied to `Tenant::settings`: `null` removes a key. The merged document must
    /// stay within 64 KiB; `suspension_reason` is reserved.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<Value>,
    /// Optimistic concurrency: refuse with `conflict` unless the stored version equals this.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// Input of [`TenantService::suspend`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspendTenantRequest {
    /// Why, 1–500 characters; stored as `settings.suspension_reason` and in the audit record.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub reason: String,
}

/// Input of [`TenantService::update_settings`] (spec §7.3 `TenantSettingsUpdate`); `None` leaves a field unchanged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettingsUpdate {
    /// Empty, or an http(s) URL.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#RRGGBB`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub primary_color: Option<String>,
    /// `disabled`, `local` or `agentvoicebox`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<crate::model::VoiceProvider>)
    )]
    pub default_voice_provider: Option<String>,
    /// 1–50 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub default_stt_model: Option<String>,
    /// 1–50 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub default_tts_voice: Option<String>,
    /// 1–50 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub default_llm_provider: Option<String>,
    /// 1–100 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub default_llm_model: Option<String>,
    /// Notifications on/off.
    #[serde(default)]
    pub email_notifications_enabled: Option<bool>,
    /// Empty, or an http(s) URL.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// At most 100 IP addresses or CIDR ranges (host bits clear); empty allows any address.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub allowed_ip_ranges: Option<Vec<String>>,
    /// Require MFA.
    #[serde(default)]
    pub require_mfa: Option<bool>,
    /// 5–1440.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 5, maximum = 1440))]
    pub session_timeout_minutes: Option<i64>,
    /// Optimistic concurrency: refuse with `conflict` unless the stored version equals this.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// What [`TenantService::create`] made, all in one unit of work.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantCreated {
    /// The tenant (`pending`).
    pub tenant: Tenant,
    /// Its settings row with the spec defaults.
    pub settings: TenantSettings,
    /// The first administrator (role `admin`).
    pub admin: User,
}

/// One row of [`TenantService::list`] (spec §7.3 `TenantListResponse`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantListItem {
    /// Id.
    pub id: TenantId,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Tier.
    pub tier: TenantTier,
    /// Status.
    pub status: TenantStatus,
    /// Users, active or not.
    pub user_count: u64,
    /// Projects.
    pub project_count: u64,
    /// Sessions ever created.
    pub session_count: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Current use of one quota against its limit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCounter {
    /// What is used now (as counted by [`quota::usage`], i.e. what the limit is enforced against).
    pub current: u64,
    /// The tenant's limit.
    pub limit: u64,
}

/// Usage statistics (spec §7.4 `get_usage_stats`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantUsage {
    /// Active users.
    pub users: UsageCounter,
    /// Projects.
    pub projects: UsageCounter,
    /// Non-revoked API keys.
    pub api_keys: UsageCounter,
    /// Sessions created since midnight UTC on the first of this month.
    pub sessions_this_month: UsageCounter,
}

// ---------------------------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------------------------

/// Tenant operations (spec §7.4). Authorization is the caller's job (the API layer guards admin routes); this
/// service validates, keeps the status rules and writes each change with its audit record and jobs atomically.
///
/// Every change of a tenant (update, suspend, activate, delete, settings) drops it from the service's
/// [`TenantCache`] once the unit of work returned, committed or not; share the cache with the
/// [`crate::resolve::TenantResolver`] ([`TenantService::with_cache`]). Other replicas are the caller's to tell.
#[derive(Debug, Clone)]
pub struct TenantService {
    deps: TenancyDeps,
    cache: TenantCache,
}

impl TenantService {
    /// A service over `deps` (invalidating no cache).
    pub fn new(deps: TenancyDeps) -> Self {
        Self::with_cache(deps, TenantCache::disabled())
    }

    /// A service over `deps` that invalidates `cache` after every change of a tenant.
    pub fn with_cache(deps: TenancyDeps, cache: TenantCache) -> Self {
        Self { deps, cache }
    }

    /// Creates a `pending` tenant with the tier's limits, its default settings row and its first administrator,
    /// and enqueues `permissions.bootstrap_tenant`, `billing.sync_tenant` and (if asked) `email.welcome`.
    ///
    /// The tenant does not exist yet, so the caller's tenant (if any) is irrelevant: the unit of work is scoped to
    /// the new tenant with [`Ctx::scoped_to`], which also starts the new tenant's audit chain. A taken slug or
    /// admin e-mail is `conflict`; nothing is written then.
    pub async fn create(&self, ctx: &Ctx, req: CreateTenantRequest) -> Result<TenantCreated> {
        let valid = ValidCreate::from_request(&req)?;
        let now = self.deps.clock.now();
        let tenant_id = TenantId::generate(self.deps.ids.as_ref());
        let admin_id = UserId::generate(self.deps.ids.as_ref());
        let tenant = Tenant {
            id: tenant_id,
            name: valid.name,
            slug: valid.slug,
            tier: valid.tier,
            status: TenantStatus::Pending,
            billing_id: String::new(),
            keycloak_group_id: String::new(),
            settings: Map::new(),
            limits: valid.tier.limits(),
            created_at: now,
            updated_at: now,
            activated_at: None,
            suspended_at: None,
            deleted_at: None,
            version: 0,
        };
        let settings = TenantSettings::defaults(tenant_id, now);
        let admin = User {
            id: admin_id,
            tenant_id: Some(tenant_id),
            keycloak_id: None,
            email: valid.admin_email,
            first_name: valid.admin_first_name,
            last_name: valid.admin_last_name,
            roles: BTreeSet::from([Role::Admin]),
            is_active: true,
            is_staff: false,
            date_joined: now,
            last_login: None,
            preferences: Map::new(),
            profile: UserProfile::default(),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let send_welcome = req.send_welcome_email;
        let scoped = ctx.scoped_to(tenant_id);
        self.deps
            .write(&scoped, move |uow| {
                Box::pin(async move {
                    let slug = tenant.slug.clone();
                    let tenant = uow
                        .tenants()
                        .insert(tenant)
                        .await
                        .map_err(|e| unique_conflict(e, || format!("slug '{slug}' is already taken")))?;
                    let settings = uow.tenant_settings().insert(settings).await?;
                    let email = admin.email.clone();
                    let admin = uow.users().insert(admin).await.map_err(|e| {
                        unique_conflict(e, || format!("e-mail '{email}' is already registered"))
                    })?;
                    uow.enqueue_job(NewJob::new(
                        kinds::PERMISSIONS_BOOTSTRAP_TENANT,
                        Some(tenant.id),
                        json!({ "tenant_id": tenant.id, "admin_user_id": admin.id }),
                    ))
                    .await?;
                    uow.enqueue_job(NewJob::new(
                        kinds::BILLING_SYNC_TENANT,
                        Some(tenant.id),
                        json!({ "tenant_id": tenant.id }),
                    ))
                    .await?;
                    if send_welcome {
                        uow.enqueue_job(NewJob::new(
                            kinds::EMAIL_WELCOME,
                            Some(tenant.id),
                            json!({ "tenant_id": tenant.id, "user_id": admin.id }),
                        ))
                        .await?;
                    }
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, "tenant", tenant.id)
                            .description("tenant created")
                            .values(
                                None,
                                Some(json!({ "tenant": to_json(&tenant), "settings": to_json(&settings) })),
                            ),
                    )
                    .await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, "user", admin.id)
                            .description("first tenant administrator created")
                            .values(None, Some(to_json(&admin))),
                    )
                    .await?;
                    Ok(TenantCreated {
                        tenant,
                        settings,
                        admin,
                    })
                })
            })
            .await
    }

    /// Reads a tenant (any status, so admins can see deleted ones). Another tenant's id is `not_found`.
    pub async fn get(&self, ctx: &Ctx, id: TenantId) -> Result<Tenant> {
        let scoped = tenant_ctx(ctx, id)?;
        self.deps
            .read(&scoped, move |uow| {
                Box::pin(async move { Ok(uow.tenants().get(id).await?) })
            })
            .await
    }

    /// Lists the tenants visible to `ctx` (all of them for a cross-tenant context), newest first, with per-tenant
    /// user, project and session counts.
    ///
    /// The counts are read in one short read-only unit of work per listed tenant (at most a page, ≤ 100), each
    /// scoped to that tenant, so a count can never include another tenant's rows.
    pub async fn list(
        &self,
        ctx: &Ctx,
        filter: TenantFilter,
        page: PageRequest,
    ) -> Result<Page<TenantListItem>> {
        let tenants = self
            .deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.tenants().list(&filter, page).await?) })
            })
            .await?;
        let mut items = Vec::with_capacity(tenants.items.len());
        for tenant in tenants.items {
            let scoped = tenant_ctx(ctx, tenant.id)?;
            let (user_count, project_count, session_count) = self
                .deps
                .read(&scoped, move |uow| {
                    Box::pin(async move {
                        let users = uow.users().count(&UserFilter::default()).await?;
                        let projects = uow.projects().count(&Default::default()).await?;
                        let sessions = uow.sessions().count(&SessionFilter::default()).await?;
                        Ok((users, projects, sessions))
                    })
                })
                .await?;
            items.push(TenantListItem {
                id: tenant.id,
                name: tenant.name,
                slug: tenant.slug,
                tier: tenant.tier,
                status: tenant.status,
                user_count,
                project_count,
                session_count,
                created_at: tenant.created_at,
            });
        }
        Ok(Page {
            items,
            total: tenants.total,
            limit: tenants.limit,
            offset: tenants.offset,
        })
    }

    /// Changes name, tier, limits and free-form settings (spec §7.4 `update_tenant`). A tier change resets the four
    /// limits to the tier's table and enqueues `billing.sync_tenant`; explicit `max_*` values then override. A
    /// limit that would end below current usage is a `validation_error` on that field (code `below_usage`). A
    /// request that changes nothing writes nothing (no audit record either).
    pub async fn update(&self, ctx: &Ctx, id: TenantId, req: UpdateTenantRequest) -> Result<Tenant> {
        let patch = ValidTenantPatch::from_request(&req)?;
        let scoped = tenant_ctx(ctx, id)?;
        let now = self.deps.clock.now();
        let result = self
            .deps
            .write(&scoped, move |uow| {
                Box::pin(async move {
                    let current = uow.tenants().lock(id).await?;
                    check_version("tenant", id, patch.expected_version, current.version)?;
                    if current.status == TenantStatus::Deleted {
                        return Err(invalid_state(&current, "update"));
                    }
                    let mut next = current.clone();
                    if let Some(name) = patch.name {
                        next.name = name;
                    }
                    if let Some(tier) = patch.tier {
                        next.tier = tier;
                        next.limits = tier.limits();
                    }
                    let limits = &mut next.limits;
                    if let Some(v) = patch.max_users {
                        limits.max_users = v;
                    }
                    if let Some(v) = patch.max_projects {
                        limits.max_projects = v;
                    }
                    if let Some(v) = patch.max_api_keys {
                        limits.max_api_keys = v;
                    }
                    if let Some(v) = patch.max_sessions_per_month {
                        limits.max_sessions_per_month = v;
                    }
                    if let Some(settings) = &patch.settings {
                        merge_patch(&mut next.settings, settings);
                        let mut errors = FieldErrors::new();
                        json_size(&mut errors, "settings", &Value::Object(next.settings.clone()));
                        errors.into_result()?;
                    }
                    check_not_below_usage(uow, &current, &next, now).await?;
                    if next == current {
                        return Ok(current);
                    }
                    next.updated_at = now;
                    let saved = uow.tenants().update(next).await?;
                    if saved.tier != current.tier {
                        uow.enqueue_job(NewJob::new(
                            kinds::BILLING_SYNC_TENANT,
                            Some(saved.id),
                            json!({ "tenant_id": saved.id, "tier": saved.tier }),
                        ))
                        .await?;
                    }
                    let (old, new) = changes(&to_json(&current), &to_json(&saved));
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Update, "tenant", saved.id)
                            .description("tenant updated")
                            .values(old, new),
                    )
                    .await?;
                    Ok(saved)
                })
            })
            .await;
        self.cache.invalidate(id);
        result
    }

    /// Suspends a `pending` or `active` tenant with a reason (1–500 characters), kept in
    /// `settings.suspension_reason` (spec §5.1) and in the audit record.
    pub async fn suspend(&self, ctx: &Ctx, id: TenantId, req: SuspendTenantRequest) -> Result<Tenant> {
        let mut errors = FieldErrors::new();
        validation::text(&mut errors, "reason", &req.reason, 1, MAX_SUSPENSION_REASON);
        errors.into_result()?;
        let reason = req.reason;
        self.transition(ctx, id, "suspend", move |tenant, now| match tenant.status {
            TenantStatus::Active | TenantStatus::Pending => {
                tenant.status = TenantStatus::Suspended;
                tenant.suspended_at = Some(now);
                tenant
                    .settings
                    .insert(SUSPENSION_REASON_KEY.to_owned(), Value::String(reason.clone()));
                Some((
                    AuditAction::Update,
                    "tenant suspended",
                    json!({ "reason": reason }),
                ))
            }
            TenantStatus::Suspended | TenantStatus::Deleted => None,
        })
        .await
    }

    /// Activates a `pending` or `suspended` tenant (`activated_at = now`; the suspension reason is removed,
    /// `suspended_at` is kept as the time of the last suspension).
    pub async fn activate(&self, ctx: &Ctx, id: TenantId) -> Result<Tenant> {
        self.transition(ctx, id, "activate", |tenant, now| match tenant.status {
            TenantStatus::Pending | TenantStatus::Suspended => {
                tenant.status = TenantStatus::Active;
                tenant.activated_at = Some(now);
                tenant.settings.remove(SUSPENSION_REASON_KEY);
                Some((AuditAction::Update, "tenant activated", json!({})))
            }
            TenantStatus::Active | TenantStatus::Deleted => None,
        })
        .await
    }

    /// Soft-deletes a tenant (`deleted`, `deleted_at = now`); its rows stay for audit and billing. Resolution then
    /// answers `tenant_not_found` for it.
    pub async fn delete(&self, ctx: &Ctx, id: TenantId) -> Result<Tenant> {
        self.transition(ctx, id, "delete", |tenant, now| match tenant.status {
            TenantStatus::Pending | TenantStatus::Active | TenantStatus::Suspended => {
                tenant.status = TenantStatus::Deleted;
                tenant.deleted_at = Some(now);
                Some((AuditAction::Delete, "tenant soft-deleted", json!({})))
            }
            TenantStatus::Deleted => None,
        })
        .await
    }

    /// Runs one status transition: lock, let `apply` change the record (or refuse with `None`), store, audit.
    async fn transition<F>(&self, ctx: &Ctx, id: TenantId, action: &'static str, apply: F) -> Result<Tenant>
    where
        F: FnOnce(&mut Tenant, DateTime<Utc>) -> Option<(AuditAction, &'static str, Value)> + Send + 'static,
    {
        let scoped = tenant_ctx(ctx, id)?;
        let now = self.deps.clock.now();
        let result = self
            .deps
            .write(&scoped, move |uow| {
                Box::pin(async move {
                    let current = uow.tenants().lock(id).await?;
                    let mut next = current.clone();
                    let Some((audit_action, description, metadata)) = apply(&mut next, now) else {
                        return Err(invalid_state(&current, action));
                    };
                    next.updated_at = now;
                    let saved = uow.tenants().update(next).await?;
                    let (old, new) = changes(&to_json(&current), &to_json(&saved));
                    uow.append_audit(
                        NewAuditEntry::new(audit_action, "tenant", saved.id)
                            .description(description)
                            .values(old, new)
                            .metadata(metadata),
                    )
                    .await?;
                    Ok(saved)
                })
            })
            .await;
        self.cache.invalidate(id);
        result
    }

    /// The tenant's settings (spec §7.4 `get_settings`). A tenant without a settings row (created outside this
    /// service) reads the spec defaults; the row is created on the first [`TenantService::update_settings`], so a
    /// read never writes.
    pub async fn get_settings(&self, ctx: &Ctx, id: TenantId) -> Result<TenantSettings> {
        let scoped = tenant_ctx(ctx, id)?;
        let now = self.deps.clock.now();
        self.deps
            .read(&scoped, move |uow| {
                Box::pin(async move {
                    let tenant = uow.tenants().get(id).await?;
                    Ok(load_settings(uow, &tenant, now).await?.0)
                })
            })
            .await
    }

    /// Changes the settings row (spec §7.3 `TenantSettingsUpdate` rules) and audits the changed fields as
    /// `settings_change`. Refused on a deleted tenant (`tenant_not_found`).
    pub async fn update_settings(
        &self,
        ctx: &Ctx,
        id: TenantId,
        req: TenantSettingsUpdate,
    ) -> Result<TenantSettings> {
        let patch = ValidSettingsPatch::from_request(&req)?;
        let scoped = tenant_ctx(ctx, id)?;
        let now = self.deps.clock.now();
        let result = self
            .deps
            .write(&scoped, move |uow| {
                Box::pin(async move {
                    let tenant = uow.tenants().lock(id).await?;
                    if tenant.status == TenantStatus::Deleted {
                        return Err(Error::TenantNotFound(id.to_string()));
                    }
                    let (current, stored) = load_settings(uow, &tenant, now).await?;
                    check_version("tenant_settings", id, patch.expected_version, current.version)?;
                    let mut next = current.clone();
                    patch.apply(&mut next);
                    if stored && next == current {
                        return Ok(current);
                    }
                    next.updated_at = now;
                    let saved = if stored {
                        uow.tenant_settings().update(next).await?
                    } else {
                        uow.tenant_settings().insert(next).await?
                    };
                    let (old, new) = changes(&to_json(&current), &to_json(&saved));
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::SettingsChange, "tenant_settings", id)
                            .description("tenant settings updated")
                            .values(old, new),
                    )
                    .await?;
                    Ok(saved)
                })
            })
            .await;
        self.cache.invalidate(id);
        result
    }

    /// Usage against limits (spec §7.4 `get_usage_stats`). Counts are what the quotas are enforced against: active
    /// users, projects, non-revoked keys and sessions since the start of the UTC month.
    pub async fn usage(&self, ctx: &Ctx, id: TenantId) -> Result<TenantUsage> {
        let scoped = tenant_ctx(ctx, id)?;
        let now = self.deps.clock.now();
        self.deps
            .read(&scoped, move |uow| {
                Box::pin(async move {
                    let tenant = uow.tenants().get(id).await?;
                    let users = counter(uow, &tenant, Quota::Users, now).await?;
                    let projects = counter(uow, &tenant, Quota::Projects, now).await?;
                    let api_keys = counter(uow, &tenant, Quota::ApiKeys, now).await?;
                    let sessions_this_month = counter(uow, &tenant, Quota::SessionsPerMonth, now).await?;
                    Ok(TenantUsage {
                        users,
                        projects,
                        api_keys,
                        sessions_this_month,
                    })
                })
            })
            .await
    }

    /// The tenant's limits (spec §7.4 `get_limits`).
    pub async fn limits(&self, ctx: &Ctx, id: TenantId) -> Result<TenantLimits> {
        Ok(self.get(ctx, id).await?.limits)
    }
}

/// Refuses to lower a limit below what the tenant already uses, so that `usage ≤ limit` holds after every
/// operation (a downgrade needs the tenant to shrink first). The spec does not say; issue 2 asks that tier
/// limits always hold.
async fn check_not_below_usage(
    uow: &mut dyn crate::store::UnitOfWork,
    current: &Tenant,
    next: &Tenant,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut errors = FieldErrors::new();
    for (field, q) in [
        ("max_users", Quota::Users),
        ("max_projects", Quota::Projects),
        ("max_api_keys", Quota::ApiKeys),
        ("max_sessions_per_month", Quota::SessionsPerMonth),
    ] {
        let limit = q.limit(next);
        if limit < q.limit(current) {
            let used = quota::usage(uow, q, now).await?;
            if used > limit {
                errors.push(
                    field,
                    "below_usage",
                    format!("would be {limit}, below the current usage of {used}"),
                );
            }
        }
    }
    Ok(errors.into_result()?)
}

async fn counter(
    uow: &mut dyn crate::store::UnitOfWork,
    tenant: &Tenant,
    q: Quota,
    now: DateTime<Utc>,
) -> Result<UsageCounter> {
    Ok(UsageCounter {
        current: quota::usage(uow, q, now).await?,
        limit: q.limit(tenant),
    })
}

/// Reads the settings row, or the defaults when there is none; the flag says whether the row exists.
async fn load_settings(
    uow: &mut dyn crate::store::UnitOfWork,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> Result<(TenantSettings, bool)> {
    match uow.tenant_settings().get(tenant.id).await {
        Ok(settings) => Ok((settings, true)),
        Err(avb_core::Error::NotFound { .. }) => Ok((TenantSettings::defaults(tenant.id, now), false)),
        Err(other) => Err(other.into()),
    }
}

fn invalid_state(tenant: &Tenant, action: &'static str) -> Error {
    Error::InvalidState {
        resource: "tenant",
        state: tenant.status.to_string(),
        action,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

struct ValidCreate {
    name: String,
    slug: String,
    tier: TenantTier,
    admin_email: String,
    admin_first_name: String,
    admin_last_name: String,
}

impl ValidCreate {
    fn from_request(req: &CreateTenantRequest) -> Result<Self> {
        let mut errors = FieldErrors::new();
        validation::text(&mut errors, "name", &req.name, 2, 255);
        validation::slug(&mut errors, "slug", &req.slug);
        let tier = match req.tier.as_deref() {
            None => Some(TenantTier::Free),
            Some(t) => parse_tier(&mut errors, "tier", t),
        };
        validation::email(&mut errors, "admin_email", &req.admin_email);
        let (first, last) = split_name(&req.admin_name);
        if validation::text(&mut errors, "admin_name", &req.admin_name, 2, 255)
            && (first.chars().count() > 150 || last.chars().count() > 150)
        {
            errors.push(
                "admin_name",
                "length",
                "first and last name must each be at most 150 characters",
            );
        }
        errors.into_result()?;
        Ok(Self {
            name: req.name.clone(),
            slug: req.slug.clone(),
            tier: tier.unwrap_or(TenantTier::Free),
            admin_email: req.admin_email.to_lowercase(),
            admin_first_name: first,
            admin_last_name: last,
        })
    }
}

/// Splits a full name like the spec does (§7.4 `create_tenant`): the first word is the first name, the remaining
/// words joined by single spaces the last name.
pub fn split_name(full: &str) -> (String, String) {
    let mut words = full.split_whitespace();
    let first = words.next().unwrap_or_default().to_owned();
    let last = words.collect::<Vec<_>>().join(" ");
    (first, last)
}

fn parse_tier(errors: &mut FieldErrors, field: &str, value: &str) -> Option<TenantTier> {
    let tier = TenantTier::parse(value);
    if tier.is_none() {
        errors.push(field, "choice", "must be one of: free, starter, pro, enterprise");
    }
    tier
}

struct ValidTenantPatch {
    name: Option<String>,
    tier: Option<TenantTier>,
    max_users: Option<u32>,
    max_projects: Option<u32>,
    max_api_keys: Option<u32>,
    max_sessions_per_month: Option<u32>,
    settings: Option<Map<String, Value>>,
    expected_version: Option<u64>,
}

impl ValidTenantPatch {
    fn from_request(req: &UpdateTenantRequest) -> Result<Self> {
        let mut errors = FieldErrors::new();
        if let Some(name) = &req.name {
            validation::text(&mut errors, "name", name, 2, 255);
        }
        let tier = req
            .tier
            .as_deref()
            .and_then(|t| parse_tier(&mut errors, "tier", t));
        let mut limit = |field: &str, value: Option<i64>| -> Option<u32> {
            let value = value?;
            match u32::try_from(value) {
                Ok(v) if v >= 1 => Some(v),
                _ => {
                    errors.push(field, "range", format!("must be between 1 and {}", u32::MAX));
                    None
                }
            }
        };
        let max_users = limit("max_users", req.max_users);
        let max_projects = limit("max_projects", req.max_projects);
        let max_api_keys = limit("max_api_keys", req.max_api_keys);
        let max_sessions_per_month = limit("max_sessions_per_month", req.max_sessions_per_month);
        let settings = req
            .settings
            .as_ref()
            .and_then(|s| json_object(&mut errors, "settings", s));
        if let Some(s) = &settings
            && s.contains_key(SUSPENSION_REASON_KEY)
        {
            errors.push(
                format!("settings.{SUSPENSION_REASON_KEY}"),
                "reserved",
                "is set by suspend and cleared by activate",
            );
        }
        errors.into_result()?;
        Ok(Self {
            name: req.name.clone(),
            tier,
            max_users,
            max_projects,
            max_api_keys,
            max_sessions_per_month,
            settings,
            expected_version: req.expected_version,
        })
    }
}

struct ValidSettingsPatch {
    req: TenantSettingsUpdate,
    provider: Option<VoiceProvider>,
    timeout: Option<u32>,
    expected_version: Option<u64>,
}

impl ValidSettingsPatch {
    fn from_request(req: &TenantSettingsUpdate) -> Result<Self> {
        let mut errors = FieldErrors::new();
        if let Some(v) = &req.logo_url {
            validation::optional_url(&mut errors, "logo_url", v);
        }
        if let Some(v) = &req.primary_color {
            validation::color(&mut errors, "primary_color", v);
        }
        let provider = req.default_voice_provider.as_deref().and_then(|v| {
            let p = VoiceProvider::parse(v);
            if p.is_none() {
                errors.push(
                    "default_voice_provider",
                    "choice",
                    "must be one of: disabled, local, agentvoicebox",
                );
            }
            p
        });
        for (field, value, max) in [
            ("default_stt_model", &req.default_stt_model, 50),
            ("default_tts_voice", &req.default_tts_voice, 50),
            ("default_llm_provider", &req.default_llm_provider, 50),
            ("default_llm_model", &req.default_llm_model, 100),
        ] {
            if let Some(v) = value {
                validation::text(&mut errors, field, v, 1, max);
            }
        }
        if let Some(v) = &req.webhook_url {
            validation::optional_url(&mut errors, "webhook_url", v);
        }
        if let Some(ranges) = &req.allowed_ip_ranges {
            if ranges.len() > MAX_IP_RANGES {
                errors.push(
                    "allowed_ip_ranges",
                    "length",
                    format!("must have at most {MAX_IP_RANGES} entries"),
                );
            } else {
                for (i, range) in ranges.iter().enumerate() {
                    validation::cidr(&mut errors, &format!("allowed_ip_ranges[{i}]"), range);
                }
            }
        }
        let timeout = req.session_timeout_minutes.and_then(|v| {
            let ok = u32::try_from(v).ok().filter(|v| (5..=1440).contains(v));
            if ok.is_none() {
                errors.push("session_timeout_minutes", "range", "must be between 5 and 1440");
            }
            ok
        });
        errors.into_result()?;
        Ok(Self {
            req: req.clone(),
            provider,
            timeout,
            expected_version: req.expected_version,
        })
    }

    fn apply(&self, s: &mut TenantSettings) {
        let r = &self.req;
        let set = |target: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                target.clone_from(v);
            }
        };
        set(&mut s.logo_url, &r.logo_url);
        set(&mut s.primary_color, &r.primary_color);
        set(&mut s.default_stt_model, &r.default_stt_model);
        set(&mut s.default_tts_voice, &r.default_tts_voice);
        set(&mut s.default_llm_provider, &r.default_llm_provider);
        set(&mut s.default_llm_model, &r.default_llm_model);
        set(&mut s.webhook_url, &r.webhook_url);
        if let Some(p) = self.provider {
            s.default_voice_provider = p;
        }
        if let Some(v) = r.email_notifications_enabled {
            s.email_notifications_enabled = v;
        }
        if let Some(v) = &r.allowed_ip_ranges {
            s.allowed_ip_ranges.clone_from(v);
        }
        if let Some(v) = r.require_mfa {
            s.require_mfa = v;
        }
        if let Some(v) = self.timeout {
            s.session_timeout_minutes = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers shared by the tenancy services
// ---------------------------------------------------------------------------------------------------------------

/// The context to run a one-tenant operation in: a tenant-scoped context may only name its own tenant (another id
/// is `not_found`, never `permission_denied`, so existence does not leak); a cross-tenant one is narrowed to it.
pub(crate) fn tenant_ctx(ctx: &Ctx, tenant: TenantId) -> Result<Ctx> {
    match ctx.storage_scope()? {
        StorageScope::Tenant(t) if t == tenant => Ok(ctx.clone()),
        StorageScope::Tenant(_) => Err(Error::NotFound {
            resource: "tenant",
            id: tenant.to_string(),
        }),
        StorageScope::AllTenants => Ok(ctx.scoped_to(tenant)),
    }
}

/// Maps a uniqueness violation from the store to a [`Error::Conflict`] with a message for humans.
pub(crate) fn unique_conflict(err: avb_core::Error, message: impl FnOnce() -> String) -> Error {
    match err {
        avb_core::Error::Conflict { .. } => Error::Conflict(message()),
        other => other.into(),
    }
}

/// Refuses with a version conflict when the caller named a version that is not the stored one.
pub(crate) fn check_version(
    resource: &'static str,
    id: impl std::fmt::Display,
    expected: Option<u64>,
    actual: u64,
) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(Error::Store(avb_core::Error::VersionConflict {
            resource,
            id: id.to_string(),
            expected,
            actual,
        })),
        _ => Ok(()),
    }
}

/// A record as JSON for audit values. Records are plain data with string keys, so serialisation cannot fail;
/// `null` is the defensive fallback rather than a panic.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The top-level fields that differ between two JSON objects, as `(old, new)` objects for the audit record.
/// Bookkeeping fields (`version`, `updated_at`) are left out: they change on every write.
pub(crate) fn changes(old: &Value, new: &Value) -> (Option<Value>, Option<Value>) {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return (Some(old.clone()), Some(new.clone()));
    };
    let mut before = Map::new();
    let mut after = Map::new();
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        if key == "version" || key == "updated_at" {
            continue;
        }
        let (o, n) = (old.get(key), new.get(key));
        if o != n {
            before.insert(key.clone(), o.cloned().unwrap_or(Value::Null));
            after.insert(key.clone(), n.cloned().unwrap_or(Value::Null));
        }
    }
    (Some(Value::Object(before)), Some(Value::Object(after)))
}

/// Applies a JSON merge patch (RFC 7396): `null` removes a key, objects merge recursively, anything else replaces.
pub(crate) fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(map) = slot {
                    merge_patch(map, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// Checks that `value` is a JSON object of at most [`MAX_JSON_BYTES`] and returns it.
pub(crate) fn json_object(
    errors: &mut FieldErrors,
    field: &str,
    value: &Value,
) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => json_size(errors, field, value).then(|| map.clone()),
        _ => {
            errors.push(field, "type", "must be a JSON object");
            None
        }
    }
}

/// Checks the serialised size of `value` against [`MAX_JSON_BYTES`].
pub(crate) fn json_size(errors: &mut FieldErrors, field: &str, value: &Value) -> bool {
    let size = serde_json::to_vec(value).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_JSON_BYTES {
        errors.push(
            field,
            "size",
            format!("must be at most {MAX_JSON_BYTES} bytes of JSON"),
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{HasCode, Principal, RequestId, SequentialIds};

    fn field_names(err: &Error) -> Vec<String> {
        match err {
            Error::Invalid(fields) => fields.0.iter().map(|f| f.field.clone()).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn create_request_reports_every_bad_field_at_once() {
        let req = CreateTenantRequest {
            name: "A".into(),
            slug: "Bad_Slug".into(),
            tier: Some("gold".into()),
            admin_email: "not-an-email".into(),
            admin_name: " ".into(),
            send_welcome_email: true,
        };
        let err = ValidCreate::from_request(&req).err().unwrap();
        assert_eq!(err.code().as_str(), "validation_error");
        assert_eq!(
            field_names(&err),
            ["name", "slug", "tier", "admin_email", "admin_name"]
        );
    }

    #[test]
    fn create_request_defaults_to_free_and_lowercases_the_email() {
        let req = CreateTenantRequest::new("Acme", "acme", "Boss@Acme.Example", "Ada  Mary Lovelace");
        let valid = ValidCreate::from_request(&req).unwrap();
        assert_eq!(valid.tier, TenantTier::Free);
        assert_eq!(valid.admin_email, "boss@acme.example");
        assert_eq!(
            (valid.admin_first_name.as_str(), valid.admin_last_name.as_str()),
            ("Ada", "Mary Lovelace")
        );
    }

    #[test]
    fn admin_name_parts_longer_than_the_user_columns_are_refused() {
        let long = format!("{} x", "a".repeat(151));
        let req = CreateTenantRequest::new("Acme", "acme", "a@acme.example", long);
        assert_eq!(
            field_names(&ValidCreate::from_request(&req).err().unwrap()),
            ["admin_name"]
        );
    }

    #[test]
    fn limit_overrides_must_be_positive_and_fit() {
        let req = UpdateTenantRequest {
            max_users: Some(0),
            max_projects: Some(-3),
            max_api_keys: Some(i64::from(u32::MAX) + 1),
            max_sessions_per_month: Some(1),
            ..Default::default()
        };
        let err = ValidTenantPatch::from_request(&req).err().unwrap();
        assert_eq!(field_names(&err), ["max_users", "max_projects", "max_api_keys"]);
    }

    #[test]
    fn tenant_settings_patch_must_be_an_object_and_not_touch_the_suspension_reason() {
        let req = UpdateTenantRequest {
            settings: Some(json!([1, 2])),
            ..Default::default()
        };
        assert_eq!(
            field_names(&ValidTenantPatch::from_request(&req).err().unwrap()),
            ["settings"]
        );
        let req = UpdateTenantRequest {
            settings: Some(json!({ "suspension_reason": "x" })),
            ..Default::default()
        };
        assert_eq!(
            field_names(&ValidTenantPatch::from_request(&req).err().unwrap()),
            ["settings.suspension_reason"]
        );
        let big = json!({ "blob": "x".repeat(MAX_JSON_BYTES) });
        let req = UpdateTenantRequest {
            settings: Some(big),
            ..Default::default()
        };
        assert_eq!(
            field_names(&ValidTenantPatch::from_request(&req).err().unwrap()),
            ["settings"]
        );
    }

    #[test]
    fn settings_update_validates_every_rule() {
        let req = TenantSettingsUpdate {
            logo_url: Some("javascript:alert(1)".into()),
            primary_color: Some("#12345".into()),
            default_voice_provider: Some("cloud".into()),
            default_stt_model: Some(String::new()),
            default_llm_model: Some("m".repeat(101)),
            webhook_url: Some("ftp://hooks.example".into()),
            allowed_ip_ranges: Some(vec!["10.0.0.0/8".into(), "10.0.0.1/8".into()]),
            session_timeout_minutes: Some(4),
            ..Default::default()
        };
        let err = ValidSettingsPatch::from_request(&req).err().unwrap();
        assert_eq!(
            field_names(&err),
            [
                "logo_url",
                "primary_color",
                "default_voice_provider",
                "default_stt_model",
                "default_llm_model",
                "webhook_url",
                "allowed_ip_ranges[1]",
                "session_timeout_minutes"
            ]
        );
        let too_many = TenantSettingsUpdate {
            allowed_ip_ranges: Some(vec!["10.0.0.0/8".into(); MAX_IP_RANGES + 1]),
            session_timeout_minutes: Some(1441),
            ..Default::default()
        };
        let err = ValidSettingsPatch::from_request(&too_many).err().unwrap();
        assert_eq!(
            field_names(&err),
            ["allowed_ip_ranges", "session_timeout_minutes"]
        );
    }

    #[test]
    fn settings_update_applies_only_given_fields() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ids = SequentialIds::default();
        let mut s = TenantSettings::defaults(TenantId::generate(&ids), now);
        let req = TenantSettingsUpdate {
            primary_color: Some("#ABCDEF".into()),
            default_voice_provider: Some("disabled".into()),
            session_timeout_minutes: Some(1440),
            allowed_ip_ranges: Some(vec!["2001:db8::/32".into()]),
            ..Default::default()
        };
        ValidSettingsPatch::from_request(&req).unwrap().apply(&mut s);
        assert_eq!(s.primary_color, "#ABCDEF");
        assert_eq!(s.default_voice_provider, VoiceProvider::Disabled);
        assert_eq!(s.session_timeout_minutes, 1440);
        assert_eq!(s.allowed_ip_ranges, ["2001:db8::/32"]);
        assert_eq!(s.default_llm_model, "llama-3.1-8b-instant");
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({ "a": "b", "c": { "d": "e", "f": "g" }, "k": 1 })
            .as_object()
            .unwrap()
            .clone();
        let patch = json!({ "a": "z", "c": { "f": null }, "k": { "x": null, "y": 2 } });
        merge_patch(&mut target, patch.as_object().unwrap());
        assert_eq!(
            Value::Object(target),
            json!({ "a": "z", "c": { "d": "e" }, "k": { "y": 2 } })
        );
    }

    #[test]
    fn changes_lists_only_differing_fields_without_bookkeeping() {
        let (old, new) = changes(
            &json!({ "name": "a", "tier": "free", "version": 1, "updated_at": "x" }),
            &json!({ "name": "b", "tier": "free", "version": 2, "updated_at": "y" }),
        );
        assert_eq!(old, Some(json!({ "name": "a" })));
        assert_eq!(new, Some(json!({ "name": "b" })));
    }

    #[test]
    fn a_tenant_scoped_context_cannot_be_widened_to_another_tenant() {
        let ids = SequentialIds::default();
        let (a, b) = (TenantId::generate(&ids), TenantId::generate(&ids));
        let sys = Ctx::system(RequestId::generate(&ids), "test", None);
        assert_eq!(tenant_ctx(&sys, b).unwrap().tenant(), Some(b));
        let in_a = sys.scoped_to(a);
        assert_eq!(tenant_ctx(&in_a, a).unwrap().tenant(), Some(a));
        assert_eq!(tenant_ctx(&in_a, b).err().unwrap().code().as_str(), "not_found");
        let anonymous = Ctx::new(RequestId::generate(&ids), Principal::Anonymous);
        assert_eq!(
            tenant_ctx(&anonymous, a).err().unwrap().code().as_str(),
            "tenant_required"
        );
    }
}
