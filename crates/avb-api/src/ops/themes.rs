//! `/api/v2/themes…`: UI themes of the caller's tenant. The service validates colours (WCAG contrast ≥ 4.5:1
//! between text and background) and refuses script, `url(`, `expression(` and `javascript:` in CSS values.
//!
//! Permissions (spec §6.4): creating is `tenant#manage_themes`; reading `theme#view`, changing `theme#edit`,
//! deleting `theme#delete`. The creator is the `owner`; a public theme is viewable by every user
//! (`theme#public@user:*`), kept in step when `is_public` changes. The list shows the tenant's themes the
//! caller may view.

use super::{require, require_tenant_permission, visible_page};
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::permissions::{self, GraphChange};
use avb_core::{Ctx, ThemeId, UserId};
use avb_tenancy::model::Theme;
use avb_tenancy::store::ThemeFilter;
use avb_tenancy::theme::{CreateThemeRequest, UpdateThemeRequest};
use serde::Deserialize;

/// Filters of `GET /themes`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct ThemeListQuery {
    /// Only themes owned by this user.
    #[param(value_type = Option<uuid::Uuid>)]
    owner_id: Option<UserId>,
    /// Only public (or private) themes.
    is_public: Option<bool>,
}

/// `POST /themes` — `tenant#manage_themes`; 201, owned by its creator.
pub async fn create(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "manage_themes").await?;
    let req: CreateThemeRequest = input.json()?;
    let theme = app.inner().themes.create(ctx, req).await?;
    let change = GraphChange::ThemeCreated {
        theme: theme.id,
        tenant: theme.tenant_id,
        owner: theme.owner_id,
        public: theme.is_public,
    };
    permissions::apply(app, ctx, change).await;
    Reply::created(&theme)
}

/// `GET /themes` — the themes the caller may view, filtered by `owner_id` and `is_public`, paginated.
pub async fn list(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let query: ThemeListQuery = input.query()?;
    let page = input.page()?;
    let filter = ThemeFilter {
        owner_id: query.owner_id,
        is_public: query.is_public,
    };
    let themes = &app.inner().themes;
    let visible = visible_page(
        app,
        ctx,
        ThemeId::RESOURCE,
        "view",
        page,
        |t: &Theme| (t.id.into(), t.tenant_id),
        |batch| {
            let filter = filter.clone();
            async move { Ok(themes.list(ctx, filter, batch).await?) }
        },
    )
    .await?;
    Reply::ok(&visible)
}

/// `GET /themes/{id}` — `theme#view`.
pub async fn get(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    Reply::ok(&find(app, ctx, input, "view").await?)
}

/// `PATCH /themes/{id}` — `theme#edit`; a visibility change is written to the graph.
pub async fn update(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let before = find(app, ctx, input, "edit").await?;
    let req: UpdateThemeRequest = input.json()?;
    let theme = app.inner().themes.update(ctx, before.id, req).await?;
    if theme.is_public != before.is_public {
        let change = GraphChange::ThemeVisibilityChanged {
            theme: theme.id,
            public: theme.is_public,
        };
        permissions::apply(app, ctx, change).await;
    }
    Reply::ok(&theme)
}

/// `DELETE /themes/{id}` — `theme#delete`; 204.
pub async fn delete(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let theme = find(app, ctx, input, "delete").await?;
    app.inner().themes.delete(ctx, theme.id).await?;
    let change = GraphChange::ObjectRemoved {
        object_type: ThemeId::RESOURCE.into(),
        object_id: theme.id.to_string(),
    };
    permissions::apply(app, ctx, change).await;
    Reply::no_content()
}

/// Reads the theme named by the `id` parameter in the caller's tenant, then requires `permission` on it.
async fn find(app: &App, ctx: &Ctx, input: &Input, permission: &str) -> Result<Theme, ApiError> {
    let id: ThemeId = input.param("id")?;
    let theme = app.inner().themes.get(ctx, id).await?;
    require(app, ctx, theme.id, theme.tenant_id, permission).await?;
    Ok(theme)
}
