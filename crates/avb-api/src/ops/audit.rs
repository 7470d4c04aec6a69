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
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditParams {
    #[serde(alias = "actor")]
    actor_id: Option<uuid::Uuid>,
    action: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    from: Option<DateTime<Utc>>,
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
