//! `/api/v2/notifications…`: the calling user's own notifications and preferences. There is nothing to
//! authorize beyond being that user: the service reads and changes only the caller's rows (another user's
//! notification is `not_found`), and API keys, which have no inbox, are refused with `permission_denied`.

use crate::app::App;
use crate::dto::MarkedReadResponse;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use avb_core::{Ctx, NotificationId};
use avb_tenancy::notification::{NotificationQuery, UpdatePreferencesRequest};
use serde::Deserialize;

/// Filters of `GET /notifications`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct NotificationListQuery {
    /// Only unread notifications (`unread_only` is accepted too).
    #[serde(alias = "unread_only")]
    unread: bool,
    /// Only this category.
    category: Option<String>,
}

/// `GET /notifications` — newest first; `unread=true` for unread ones only, `category` to narrow; paginated.
pub async fn list(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let query: NotificationListQuery = input.query()?;
    let page = input.page()?;
    let query = NotificationQuery {
        unread_only: query.unread,
        category: query.category,
    };
    Reply::ok(&app.inner().notifications.list(ctx, query, page).await?)
}

/// `POST /notifications/{id}/read` — idempotent.
pub async fn mark_read(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: NotificationId = input.param("id")?;
    Reply::ok(&app.inner().notifications.mark_read(ctx, id).await?)
}

/// `POST /notifications/read-all` — answers how many were marked.
pub async fn mark_all_read(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    let marked = app.inner().notifications.mark_all_read(ctx).await?;
    Reply::ok(&MarkedReadResponse { marked })
}

/// `GET /notifications/preferences`.
pub async fn get_preferences(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    Reply::ok(&app.inner().notifications.preferences(ctx).await?)
}

/// `PUT /notifications/preferences` — absent fields keep their value; `muted_categories` replaces the set.
pub async fn update_preferences(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let req: UpdatePreferencesRequest = input.json()?;
    Reply::ok(&app.inner().notifications.update_preferences(ctx, req).await?)
}
