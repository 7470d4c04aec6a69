//! `/api/v2/api-keys…`: API keys of the caller's tenant (spec §9.2).
//!
//! Permissions (spec §6.4): creating is `tenant#create_api_key`; reading `api_key#view`, revoking
//! `api_key#revoke`, rotating `api_key#rotate`. The key's creator (`created_by`) is its `owner`. The secret is
//! answered exactly once, as `key`, on creation and rotation; `key_hash` is never answered
//! ([`crate::dto::ApiKeyResponse`]). Revocation and rotation drop the key from the authentication cache at
//! once, here and on every replica ([`crate::invalidation`]), so a revoked key stops working on the next request,
//! not when the cache entry expires.
//!
//! A request authenticated by an API key may only create keys with scopes it holds itself, so a key cannot
//! mint a more powerful one.

use super::{require, require_tenant_permission, visible_page};
use crate::app::App;
use crate::dto::{ApiKeyResponse, CreatedApiKeyResponse, RotatedApiKeyResponse};
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::permissions::{self, GraphChange};
use avb_core::{ApiKeyId, ApiKeyScope, Ctx, ErrorCode, Principal, ProjectId, UserId};
use avb_tenancy::api_key::{CreateApiKeyRequest, RotateApiKeyRequest};
use avb_tenancy::model::ApiKey;
use avb_tenancy::store::ApiKeyFilter;
use serde::Deserialize;

/// Filters of `GET /api-keys`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct ApiKeyListQuery {
    /// Only keys bound to this project.
    #[param(value_type = Option<uuid::Uuid>)]
    project_id: Option<ProjectId>,
    /// Only revoked (or usable) keys.
    revoked: Option<bool>,
    /// Only keys created by this user.
    #[param(value_type = Option<uuid::Uuid>)]
    created_by: Option<UserId>,
}

/// `POST /api-keys` — `tenant#create_api_key`; 201 with the record and the secret as `key` (shown once).
pub async fn create(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "create_api_key").await?;
    let req: CreateApiKeyRequest = input.json()?;
    if let Principal::ApiKey(caller) = ctx.principal() {
        let escalates = req
            .scopes
            .iter()
            .filter_map(|s| ApiKeyScope::parse(s))
            .any(|s| !caller.scopes.contains(&s));
        if escalates {
            return Err(ApiError::with_message(
                ErrorCode::PermissionDenied,
                "an API key can only create keys with scopes it holds itself",
            ));
        }
    }
    let created = app.inner().api_keys.create(ctx, req).await?;
    let record = &created.record;
    let change = GraphChange::ApiKeyCreated {
        key: record.id,
        tenant: record.tenant_id,
        owner: record.created_by,
    };
    permissions::apply(app, ctx, change).await;
    Reply::created(&CreatedApiKeyResponse::from(created))
}

/// `GET /api-keys` — the keys the caller may view (`api_key#view`), filtered by `project_id`, `revoked` and
/// `created_by`, paginated with the total of visible ones.
pub async fn list(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let query: ApiKeyListQuery = input.query()?;
    let page = input.page()?;
    let filter = ApiKeyFilter {
        prefix: None,
        project_id: query.project_id,
        revoked: query.revoked,
        created_by: query.created_by,
    };
    let keys = &app.inner().api_keys;
    let visible = visible_page(
        app,
        ctx,
        ApiKeyId::RESOURCE,
        "view",
        page,
        |k: &ApiKey| (k.id.into(), k.tenant_id),
        |batch| {
            let filter = filter.clone();
            async move { Ok(keys.list(ctx, filter, batch).await?) }
        },
    )
    .await?;
    Reply::ok(&visible.map(ApiKeyResponse::from))
}

/// `GET /api-keys/{id}` — `api_key#view`.
pub async fn get(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let key = find(app, ctx, input, "view").await?;
    Reply::ok(&ApiKeyResponse::from(key))
}

/// `POST /api-keys/{id}/revoke` — `api_key#revoke`; the key stops working at once.
pub async fn revoke(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let key = find(app, ctx, input, "revoke").await?;
    let revoked = app.inner().api_keys.revoke(ctx, key.id).await?;
    crate::invalidation::api_key_changed(app, key.id).await;
    Reply::ok(&ApiKeyResponse::from(revoked))
}

/// `POST /api-keys/{id}/rotate` — `api_key#rotate`; body `{"grace_seconds": n}` (optional, 0–7 days) keeps the
/// old key working that long. Answers the replacement with its secret (`key`) and the old key (`previous`).
pub async fn rotate(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let key = find(app, ctx, input, "rotate").await?;
    let req: RotateApiKeyRequest = input.json()?;
    let rotated = app.inner().api_keys.rotate(ctx, key.id, req).await?;
    crate::invalidation::api_key_changed(app, key.id).await;
    let new = &rotated.new.record;
    let change = GraphChange::ApiKeyCreated {
        key: new.id,
        tenant: new.tenant_id,
        owner: new.created_by,
    };
    permissions::apply(app, ctx, change).await;
    Reply::ok(&RotatedApiKeyResponse::from(rotated))
}

/// Reads the key named by the `id` parameter in the caller's tenant, then requires `permission` on it.
async fn find(app: &App, ctx: &Ctx, input: &Input, permission: &str) -> Result<ApiKey, ApiError> {
    let id: ApiKeyId = input.param("id")?;
    let key = app.inner().api_keys.get(ctx, id).await?;
    require(app, ctx, key.id, key.tenant_id, permission).await?;
    Ok(key)
}
