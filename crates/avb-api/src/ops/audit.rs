//! `GET /api/v2/audit` (spec §9.4, §12.4): the caller's tenant's audit trail, `tenant#view_audit`.

use super::require_tenant_permission;
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use avb_core::Ctx;
use avb_tenancy::audit::AuditQuery;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Filters of `GET /audit`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only entries by this actor (user or API key id); `actor` is accepted too.
    #[serde(alias = "actor")]
    actor_id: Option<uuid::Uuid>,
    /// Only this action.
    #[param(inline, value_type = Option<avb_core::audit::AuditAction>)]
    action: Option<String>,
    /// Only this resource type (`api_key`, `session`, …).
    resource_type: Option<String>,
    /// Only this resource id.
    resource_id: Option<String>,
    /// At or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    to: Option<DateTime<Utc>>,
}

/// `GET /audit` — entries of the caller's tenant only, newest first, filtered by `actor_id` (or `actor`),
/// `action`, `resource_type`, `resource_id`, `from` and `to` (RFC 3339), paginated with the total.
pub async fn query(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view_audit").await?;
    let params: AuditParams = input.query()?;
    let page = input.page()?;
    let query = AuditQuery {
        actor_id: params.actor_id,
        action: params.action,
        resource_type: params.resource_type,
        resource_id: params.resource_id,
        from: params.from,
        to: params.to,
    };
    Reply::ok(&app.inner().audit.query(ctx, query, page).await?)
}
