//! `/api/v2/admin/…` (spec §7.2 admin routes): sysadmins managing every tenant and user.
//!
//! The route table admits only sysadmins (`Access::Sysadmin`, spec §6.3 `require_role(["sysadmin"])`). Admin
//! paths are tenant-exempt (spec §5.2), so the context has no tenant and reads see every tenant; operations
//! whose rules are per tenant (a user's deactivation and the last-admin rule) narrow it with
//! [`Ctx::scoped_to`]. Every tenant change is broadcast to the replicas' caches ([`crate::invalidation`]).

use super::parse_choice;
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::invalidation;
use crate::permissions::{self, GraphChange};
use avb_core::{Ctx, ErrorCode, FieldErrors, Role, TenantId, UserId};
use avb_tenancy::model::{TenantStatus, TenantTier, User};
use avb_tenancy::store::{TenantFilter, UserFilter};
use avb_tenancy::tenant::{CreateTenantRequest, SuspendTenantRequest, UpdateTenantRequest};
use serde::Deserialize;

/// Filters of `GET /admin/tenants`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantListQuery {
    /// Only tenants in this status.
    #[param(inline, value_type = Option<TenantStatus>)]
    status: Option<String>,
    /// Only tenants of this tier.
    #[param(inline, value_type = Option<TenantTier>)]
    tier: Option<String>,
    /// Part of the name or slug.
    search: Option<String>,
}

/// Filters of `GET /admin/users`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserListQuery {
    /// Only users of this tenant.
    #[param(value_type = Option<uuid::Uuid>)]
    tenant_id: Option<TenantId>,
    /// Exact e-mail.
    email: Option<String>,
    /// Part of the e-mail or name.
    search: Option<String>,
    /// Only active (or deactivated) users.
    is_active: Option<bool>,
    /// Only users with this role.
    #[param(inline, value_type = Option<Role>)]
    role: Option<String>,
}

/// Body of `POST /admin/tenants/{id}/suspend`; a missing reason is reported by the service's validation.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SuspendBody {
    reason: String,
}

/// `GET /admin/tenants` — every tenant, filtered by `status`, `tier` and `search` (name or slug), paginated
/// with the total (`{items,total,limit,offset}`).
pub async fn list_tenants(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let query: TenantListQuery = input.query()?;
    let page = input.page()?;
    let mut errors = FieldErrors::new();
    let status = parse_choice(
        &mut errors,
        "status",
        query.status.as_deref(),
        TenantStatus::ALL,
        TenantStatus::as_str,
    );
    let tier = parse_choice(
        &mut errors,
        "tier",
        query.tier.as_deref(),
        TenantTier::ALL,
        TenantTier::as_str,
    );
    errors.into_result()?;
    let filter = TenantFilter {
        status,
        tier,
        search: query.search.filter(|s| !s.is_empty()),
        slug: None,
    };
    Reply::ok(&app.inner().tenants.list(ctx, filter, page).await?)
}

/// `POST /admin/tenants` — creates a tenant with its first administrator (201), and writes the administrator's
/// relationship at once so they can act in the next request (the queued bootstrap job writes the same tuple
/// again, harmlessly).
pub async fn create_tenant(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let req: CreateTenantRequest = input.json()?;
    let created = app.inner().tenants.create(ctx, req).await?;
    let change = GraphChange::TenantCreated {
        tenant: created.tenant.id,
        admin: created.admin.id,
    };
    permissions::apply(app, &ctx.scoped_to(created.tenant.id), change).await;
    Reply::created(&created)
}

/// `GET /admin/tenants/{id}`.
pub async fn get_tenant(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: TenantId = input.param("id")?;
    Reply::ok(&app.inner().tenants.get(ctx, id).await?)
}

/// `PATCH /admin/tenants/{id}` — name, tier, limits, free-form settings.
pub async fn update_tenant(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: TenantId = input.param("id")?;
    let req: UpdateTenantRequest = input.json()?;
    let tenant = app.inner().tenants.update(ctx, id, req).await?;
    invalidation::tenant_changed(app, id).await;
    Reply::ok(&tenant)
}

/// `DELETE /admin/tenants/{id}` — soft delete; answers the deleted tenant.
pub async fn delete_tenant(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: TenantId = input.param("id")?;
    let tenant = app.inner().tenants.delete(ctx, id).await?;
    invalidation::tenant_changed(app, id).await;
    Reply::ok(&tenant)
}

/// `POST /admin/tenants/{id}/suspend` — body `{"reason": "…"}`.
pub async fn suspend_tenant(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: TenantId = input.param("id")?;
    let body: SuspendBody = input.json()?;
    let req = SuspendTenantRequest { reason: body.reason };
    let tenant = app.inner().tenants.suspend(ctx, id, req).await?;
    invalidation::tenant_changed(app, id).await;
    Reply::ok(&tenant)
}

/// `POST /admin/tenants/{id}/activate`.
pub async fn activate_tenant(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: TenantId = input.param("id")?;
    let tenant = app.inner().tenants.activate(ctx, id).await?;
    invalidation::tenant_changed(app, id).await;
    Reply::ok(&tenant)
}

/// `GET /admin/users` — users of every tenant (or of `tenant_id`), filtered by `email`, `search`, `is_active`
/// and `role`, paginated with the total.
pub async fn list_users(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let query: UserListQuery = input.query()?;
    let page = input.page()?;
    let mut errors = FieldErrors::new();
    let role = parse_choice(
        &mut errors,
        "role",
        query.role.as_deref(),
        &Role::ALL,
        Role::as_str,
    );
    errors.into_result()?;
    let filter = UserFilter {
        email: query.email,
        keycloak_id: None,
        is_active: query.is_active,
        role,
        search: query.search.filter(|s| !s.is_empty()),
    };
    let scope = query
        .tenant_id
        .map_or_else(|| ctx.clone(), |tenant| ctx.scoped_to(tenant));
    Reply::ok(&app.inner().users.list(&scope, filter, page).await?)
}

/// `GET /admin/users/{id}`.
pub async fn get_user(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: UserId = input.param("id")?;
    Reply::ok(&app.inner().users.get(ctx, id).await?)
}

/// `POST /admin/users/{id}/deactivate` — in the user's tenant (the last-admin rule applies there); removes the
/// user's role relationships and forgets their cached login.
pub async fn deactivate_user(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: UserId = input.param("id")?;
    let user = app.inner().users.get(ctx, id).await?;
    let tenant = user.tenant_id.ok_or_else(|| {
        ApiError::with_message(
            ErrorCode::Conflict,
            "platform operators are managed in the identity provider",
        )
    })?;
    let scoped = ctx.scoped_to(tenant);
    let user = app.inner().users.deactivate(&scoped, id).await?;
    permissions::apply(
        app,
        &scoped,
        GraphChange::UserRemoved {
            tenant,
            user: user.id,
        },
    )
    .await;
    forget_login(app, &user);
    Reply::ok(&user)
}

/// Drops a user's cached token mapping so role and activation changes apply to their next request.
pub(crate) fn forget_login(app: &App, user: &User) {
    if let Some(subject) = &user.keycloak_id {
        app.inner().authenticator.invalidate_user(subject);
    }
}
