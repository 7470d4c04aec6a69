//! `/api/v2/sessions…` (REST side of voice sessions) and the cleanup job.
//!
//! Permissions (spec §6.4 `session`): opening a session is what the `realtime` API-key scope exists for (spec
//! §9.2), so API keys need that scope; users need `tenant#operate`, the level at which `session#terminate` is
//! granted (operators run sessions). Reading a session is `session#view`, its events `session#view_transcript`,
//! terminating it `session#terminate` — all derived from the tenant, so the list checks `tenant#view` once.
//! A key bound to a project opens sessions only in that project.

use super::{parse_choice, require, require_tenant_permission};
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::permissions::{self, GraphChange};
use avb_auth::authorizer::guard;
use avb_core::events::{BusEvent, Group};
use avb_core::{ApiKeyId, ApiKeyScope, Ctx, ErrorCode, FieldErrors, Principal, ProjectId, SessionId};
use avb_tenancy::model::{Session, SessionEventType, SessionStatus};
use avb_tenancy::session::{CleanupPolicy, CleanupReport, CreateSessionRequest, EventQuery};
use avb_tenancy::store::SessionFilter;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Filters of `GET /sessions`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct SessionListQuery {
    /// Only sessions in this status.
    #[param(inline, value_type = Option<SessionStatus>)]
    status: Option<String>,
    /// Only sessions of this project.
    #[param(value_type = Option<uuid::Uuid>)]
    project_id: Option<ProjectId>,
    /// Only sessions opened with this API key.
    #[param(value_type = Option<uuid::Uuid>)]
    api_key_id: Option<ApiKeyId>,
    /// Created at or after (RFC 3339; `from` is accepted too).
    #[serde(alias = "from")]
    created_from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339; `to` is accepted too).
    #[serde(alias = "to")]
    created_to: Option<DateTime<Utc>>,
}

/// Filters of `GET /sessions/{id}/events`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventListQuery {
    /// Only events after this sequence number.
    after_sequence: Option<u64>,
    /// Only events of this kind (`type` is accepted too).
    #[serde(alias = "type")]
    #[param(inline, value_type = Option<SessionEventType>)]
    event_type: Option<String>,
}

/// Ends abandoned sessions (spec §11.3 `cleanup_expired_sessions`) with the default policy, for the context's
/// scope (all tenants for the system).
pub async fn cleanup(app: &App, ctx: &Ctx) -> Result<CleanupReport, ApiError> {
    Ok(app
        .inner()
        .sessions
        .cleanup_expired(ctx, CleanupPolicy::default())
        .await?)
}

/// `POST /sessions` — API keys need the `realtime` scope, users `tenant#operate`; 201 with the session
/// (status `created`), counted against the monthly quota.
pub async fn create(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let bound = match ctx.principal() {
        Principal::ApiKey(key) => {
            guard::require_scope(ctx, ApiKeyScope::Realtime)?;
            key.project_id
        }
        Principal::User(_) | Principal::System { .. } | Principal::Anonymous => {
            require_tenant_permission(app, ctx, "operate").await?;
            None
        }
    };
    let req: CreateSessionRequest = input.json()?;
    if let (Some(bound), Some(asked)) = (bound, req.project_id)
        && bound != asked
    {
        return Err(ApiError::with_message(
            ErrorCode::PermissionDenied,
            "this API key is bound to another project",
        ));
    }
    let session = app.inner().sessions.create(ctx, req).await?;
    let change = GraphChange::SessionCreated {
        session: session.id,
        tenant: session.tenant_id,
        project: session.project_id,
        api_key: session.api_key_id,
    };
    permissions::apply(app, ctx, change).await;
    Reply::created(&session)
}

/// `GET /sessions` — `tenant#view`; filters `status`, `project_id`, `api_key_id`, `created_from`/`from` and
/// `created_to`/`to` (RFC 3339), newest first, paginated.
pub async fn list(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view").await?;
    let query: SessionListQuery = input.query()?;
    let page = input.page()?;
    let mut errors = FieldErrors::new();
    let status = parse_choice(
        &mut errors,
        "status",
        query.status.as_deref(),
        SessionStatus::ALL,
        SessionStatus::as_str,
    );
    errors.into_result()?;
    let filter = SessionFilter {
        status,
        status_in: None,
        project_id: query.project_id,
        api_key_id: query.api_key_id,
        created_from: query.created_from,
        created_to: query.created_to,
    };
    Reply::ok(&app.inner().sessions.list(ctx, filter, page).await?)
}

/// `GET /sessions/{id}` — `session#view`.
pub async fn get(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let session = find(app, ctx, input, "view").await?;
    Reply::ok(&session)
}

/// `GET /sessions/{id}/events` — `session#view_transcript`; events in sequence order after `after_sequence`,
/// of one `type` if given, paginated.
pub async fn events(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let session = find(app, ctx, input, "view_transcript").await?;
    let query: EventListQuery = input.query()?;
    let page = input.page()?;
    let mut errors = FieldErrors::new();
    let event_type = parse_choice(
        &mut errors,
        "type",
        query.event_type.as_deref(),
        SessionEventType::ALL,
        SessionEventType::as_str,
    );
    errors.into_result()?;
    let query = EventQuery {
        after_sequence: query.after_sequence,
        event_type,
    };
    Reply::ok(
        &app.inner()
            .sessions
            .list_events(ctx, session.id, query, page)
            .await?,
    )
}

/// `POST /sessions/{id}/terminate` — `session#terminate`; a session already ended is `conflict`. A live
/// realtime connection of the session (on any replica: the event bus carries it) closes at once.
pub async fn terminate(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let session = find(app, ctx, input, "terminate").await?;
    let ended = app.inner().sessions.terminate(ctx, session.id).await?;
    let event = BusEvent {
        kind: crate::realtime::SESSION_TERMINATED_EVENT.to_owned(),
        data: serde_json::json!({ "session_id": ended.id }),
        timestamp: app.inner().clock.now(),
    };
    let group = Group::Session {
        tenant: ended.tenant_id,
        session: ended.id,
    };
    if let Err(err) = app.inner().events.publish(ctx, group, event).await {
        // The record is terminated either way; a connection that misses this ends at its idle timeout.
        tracing::warn!(session = %ended.id, error = %err, "termination not broadcast");
    }
    Reply::ok(&ended)
}

/// Reads the session named by the `id` parameter in the caller's tenant, then requires `permission` on it.
async fn find(app: &App, ctx: &Ctx, input: &Input, permission: &str) -> Result<Session, ApiError> {
    let id: SessionId = input.param("id")?;
    let session = app.inner().sessions.get(ctx, id).await?;
    require(app, ctx, session.id, session.tenant_id, permission).await?;
    Ok(session)
}
