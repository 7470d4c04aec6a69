//! `/api/v2/tenants/me…` (spec §7.2 tenant routes): the caller's own tenant.

use super::require_tenant_permission;
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use avb_core::Ctx;
use avb_tenancy::model::Tenant;
use avb_tenancy::tenant::TenantSettingsUpdate;
use std::sync::Arc;

/// The caller's tenant record: the one resolution found for this request (no second read), else the store's.
async fn own_tenant(app: &App, ctx: &Ctx, input: &Input) -> Result<Arc<Tenant>, ApiError> {
    let id = ctx.require_tenant()?;
    match &input.tenant {
        Some(resolved) if resolved.id == id => Ok(Arc::clone(resolved)),
        _ => Ok(Arc::new(app.inner().tenants.get(ctx, id).await?)),
    }
}

/// `GET /tenants/me` — `tenant#view`.
pub async fn me(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view").await?;
    let tenant = own_tenant(app, ctx, input).await?;
    Reply::ok(&*tenant)
}

/// `GET /tenants/me/settings` — `tenant#view`.
pub async fn get_settings(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view").await?;
    let settings = app
        .inner()
        .tenants
        .get_settings(ctx, ctx.require_tenant()?)
        .await?;
    Reply::ok(&settings)
}

/// `PATCH /tenants/me/settings` — `tenant#administrate`.
pub async fn update_settings(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "administrate").await?;
    let patch: TenantSettingsUpdate = input.json()?;
    let id = ctx.require_tenant()?;
    let settings = app.inner().tenants.update_settings(ctx, id, patch).await?;
    crate::invalidation::tenant_changed(app, id).await;
    Reply::ok(&settings)
}

/// `GET /tenants/me/usage` — `tenant#view`.
pub async fn usage(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view").await?;
    let usage = app.inner().tenants.usage(ctx, ctx.require_tenant()?).await?;
    Reply::ok(&usage)
}

/// `GET /tenants/me/limits` — `tenant#view`.
pub async fn limits(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view").await?;
    let tenant = own_tenant(app, ctx, input).await?;
    Reply::ok(&tenant.limits)
}
