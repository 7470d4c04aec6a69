//! Keeping the permission graph in step with the records (spec §6.4 bootstrap relationships).
//!
//! A record change commits first; its graph change is then written at once so the creator can use the new thing
//! in the next request. If that write fails (the authorizer is down), the change is queued as a
//! `permissions.apply` job and retried by the [`crate::jobs::JobRunner`] — the request still succeeds, because the
//! record exists and retrying the creation would duplicate it. Graph writes use `Touch`, so applying a change
//! twice is harmless.

use crate::app::App;
use avb_auth::authorizer::bootstrap;
use avb_auth::authorizer::{ObjectRef, Relationship, RelationshipUpdate, SubjectRef};
use avb_core::jobs::NewJob;
use avb_core::{
    ApiKeyId, Ctx, PersonaId, ProjectId, Role, SessionId, TenantId, ThemeId, UserId, VoiceConfigId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Job kind for a graph change that could not be written synchronously.
pub const APPLY_JOB: &str = "permissions.apply";

/// A change of the permission graph, described by what happened (so a queued retry recomputes the tuples from
/// the current schema rather than replaying stale ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum GraphChange {
    TenantCreated {
        tenant: TenantId,
        admin: UserId,
    },
    ProjectCreated {
        project: ProjectId,
        tenant: TenantId,
        owner: Option<UserId>,
    },
    ApiKeyCreated {
        key: ApiKeyId,
        tenant: TenantId,
        owner: Option<UserId>,
    },
    SessionCreated {
        session: SessionId,
        tenant: TenantId,
        project: Option<ProjectId>,
        api_key: Option<ApiKeyId>,
    },
    VoiceConfigCreated {
        config: VoiceConfigId,
        tenant: TenantId,
    },
    ThemeCreated {
        theme: ThemeId,
        tenant: TenantId,
        owner: Option<UserId>,
        public: bool,
    },
    ThemeVisibilityChanged {
        theme: ThemeId,
        public: bool,
    },
    PersonaCreated {
        persona: PersonaId,
        tenant: TenantId,
        owner: Option<UserId>,
    },
    UserRolesChanged {
        tenant: TenantId,
        user: UserId,
        old: BTreeSet<Role>,
        new: BTreeSet<Role>,
    },
    UserRemoved {
        tenant: TenantId,
        user: UserId,
    },
    ObjectRemoved {
        object_type: String,
        object_id: String,
    },
}

impl GraphChange {
    fn updates(&self) -> Vec<RelationshipUpdate> {
        match self {
            GraphChange::TenantCreated { tenant, admin } => bootstrap::tenant_created(*tenant, *admin),
            GraphChange::ProjectCreated {
                project,
                tenant,
                owner: Some(owner),
            } => bootstrap::project_created(*project, *tenant, *owner),
            // No human owner (created by an API key): only the link to the tenant.
            GraphChange::ProjectCreated {
                project,
                tenant,
                owner: None,
            } => vec![RelationshipUpdate::Touch(Relationship::new(
                (*project).into(),
                "tenant",
                SubjectRef::new((*tenant).into()),
            ))],
            GraphChange::ApiKeyCreated { key, tenant, owner } => {
                bootstrap::api_key_created(*key, *tenant, *owner)
            }
            GraphChange::SessionCreated {
                session,
                tenant,
                project,
                api_key,
            } => bootstrap::session_created(*session, *tenant, *project, *api_key),
            GraphChange::VoiceConfigCreated { config, tenant } => {
                bootstrap::voice_config_created(*config, *tenant)
            }
            GraphChange::ThemeCreated {
                theme,
                tenant,
                owner,
                public,
            } => bootstrap::theme_created(*theme, *tenant, *owner, *public),
            GraphChange::ThemeVisibilityChanged { theme, public } => {
                bootstrap::theme_visibility_changed(*theme, *public)
            }
            GraphChange::PersonaCreated {
                persona,
                tenant,
                owner,
            } => bootstrap::persona_created(*persona, *tenant, *owner),
            GraphChange::UserRolesChanged {
                tenant,
                user,
                old,
                new,
            } => bootstrap::user_roles_changed(*tenant, *user, old, new),
            GraphChange::UserRemoved { .. } | GraphChange::ObjectRemoved { .. } => Vec::new(),
        }
    }

    /// Writes the change to `app`'s authorizer.
    pub async fn write(&self, app: &App, ctx: &Ctx) -> avb_auth::Result<()> {
        let authz = app.inner().authorizer.as_ref();
        match self {
            GraphChange::UserRemoved { tenant, user } => {
                authz
                    .delete_relationships(ctx, &bootstrap::user_removed_from_tenant(*tenant, *user))
                    .await?;
            }
            GraphChange::ObjectRemoved {
                object_type,
                object_id,
            } => {
                let filters =
                    bootstrap::object_removed(&ObjectRef::new(object_type.clone(), object_id.clone()))?;
                bootstrap::delete_all(authz, ctx, &filters).await?;
            }
            _ => {
                let updates = self.updates();
                if !updates.is_empty() {
                    authz.write_relationships(ctx, &updates).await?;
                }
            }
        }
        Ok(())
    }
}

/// Applies `change` now, or queues it for retry when the authorizer fails. Never fails the caller's request.
pub async fn apply(app: &App, ctx: &Ctx, change: GraphChange) {
    if let Err(err) = change.write(app, ctx).await {
        tracing::warn!(request_id = %ctx.request_id(), error = %err, "permission graph write failed; queued for retry");
        let payload = serde_json::to_value(&change).unwrap_or_default();
        let system = Ctx::system(ctx.request_id().clone(), "permissions", ctx.tenant());
        if let Err(err) = app
            .inner()
            .jobs
            .enqueue(&system, NewJob::new(APPLY_JOB, ctx.tenant(), payload))
            .await
        {
            tracing::error!(request_id = %ctx.request_id(), error = %err, "could not queue the permission change");
        }
    }
}
