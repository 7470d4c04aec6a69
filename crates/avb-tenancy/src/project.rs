//! Projects inside a tenant: create, read, list, update and delete, framework-free.
//!
//! Creation needs a tenant in the context (a sysadmin narrows first with [`Ctx::scoped_to`]) because it counts
//! against that tenant's `max_projects`; the other operations run in the context's scope as given, so another
//! tenant's project is simply `not_found`.

use crate::error::{Error, Result};
use crate::model::Project;
use crate::quota::{self, Quota};
use crate::service::TenancyDeps;
use crate::store::ProjectFilter;
use crate::tenant::{changes, check_version, json_object, json_size, merge_patch, to_json, unique_conflict};
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, ProjectId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest project name.
pub const MAX_NAME: usize = 255;

/// Longest project description.
pub const MAX_DESCRIPTION: usize = 2000;

/// Input of [`ProjectService::create`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateProjectRequest {
    /// 1–255 characters, unique in the tenant regardless of case.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub name: String,
    /// ≤ 2000 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: String,
    /// A JSON object of at most 64 KiB (default `{}`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<Value>,
}

impl CreateProjectRequest {
    /// A request with only a name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            settings: None,
        }
    }
}

/// Input of [`ProjectService::update`]; `None` leaves a field unchanged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateProjectRequest {
    /// 1–255 characters, unique in the tenant regardless of case.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub name: Option<String>,
    /// ≤ 2000 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: Option<String>,
    /// JSON merge patch (RFC 7396) applied to the settings; the result must stay within 64 KiB.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<Value>,
    /// Optimistic concurrency: refuse with `conflict` unless the stored version equals this.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// Project operations. Authorization is the caller's job; this service validates, enforces `max_projects` and
/// per-tenant name uniqueness, and writes each change with its audit record atomically.
#[derive(Debug, Clone)]
pub struct ProjectService {
    deps: TenancyDeps,
}

impl ProjectService {
    /// A service over `deps`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// Creates a project in the context's tenant. Refused with `tenant_limit_exceeded` at `max_projects`, with
    /// `tenant_suspended`/`tenant_not_found` for a suspended/deleted tenant, and with `conflict` for a name the
    /// tenant already uses (any case); nothing is written then.
    pub async fn create(&self, ctx: &Ctx, req: CreateProjectRequest) -> Result<Project> {
        let mut errors = FieldErrors::new();
        validation::text(&mut errors, "name", &req.name, 1, MAX_NAME);
        validation::text(&mut errors, "description", &req.description, 0, MAX_DESCRIPTION);
        let settings = match &req.settings {
            Some(s) => json_object(&mut errors, "settings", s),
            None => Some(Map::new()),
        };
        errors.into_result()?;
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        let project = Project {
            id: ProjectId::generate(self.deps.ids.as_ref()),
            tenant_id: tenant,
            name: req.name,
            description: req.description,
            settings: settings.unwrap_or_default(),
            created_by: ctx.principal().user_id(),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    quota::reserve(uow, tenant, Quota::Projects, now).await?;
                    let name = project.name.clone();
                    let project = uow
                        .projects()
                        .insert(project)
                        .await
                        .map_err(|e| name_taken(e, &name))?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, "project", project.id)
                            .description("project created")
                            .values(None, Some(to_json(&project))),
                    )
                    .await?;
                    Ok(project)
                })
            })
            .await
    }

    /// Reads a project visible in the context's scope.
    pub async fn get(&self, ctx: &Ctx, id: ProjectId) -> Result<Project> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.projects().get(id).await?) })
            })
            .await
    }

    /// Lists projects visible in the context's scope (name/description search), newest first, with the total.
    pub async fn list(&self, ctx: &Ctx, filter: ProjectFilter, page: PageRequest) -> Result<Page<Project>> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.projects().list(&filter, page).await?) })
            })
            .await
    }

    /// Changes name, description and settings. A request that changes nothing writes nothing.
    pub async fn update(&self, ctx: &Ctx, id: ProjectId, req: UpdateProjectRequest) -> Result<Project> {
        let mut errors = FieldErrors::new();
        if let Some(name) = &req.name {
            validation::text(&mut errors, "name", name, 1, MAX_NAME);
        }
        if let Some(description) = &req.description {
            validation::text(&mut errors, "description", description, 0, MAX_DESCRIPTION);
        }
        let settings = req
            .settings
            .as_ref()
            .and_then(|s| json_object(&mut errors, "settings", s));
        errors.into_result()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let current = uow.projects().lock(id).await?;
                    check_version("project", id, req.expected_version, current.version)?;
                    let mut next = current.clone();
                    if let Some(name) = req.name {
                        next.name = name;
                    }
                    if let Some(description) = req.description {
                        next.description = description;
                    }
                    if let Some(patch) = &settings {
                        merge_patch(&mut next.settings, patch);
                        let mut errors = FieldErrors::new();
                        json_size(&mut errors, "settings", &Value::Object(next.settings.clone()));
                        errors.into_result()?;
                    }
                    if next == current {
                        return Ok(current);
                    }
                    next.updated_at = now;
                    let name = next.name.clone();
                    let saved = uow
                        .projects()
                        .update(next)
                        .await
                        .map_err(|e| name_taken(e, &name))?;
                    let (old, new) = changes(&to_json(&current), &to_json(&saved));
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Update, "project", saved.id)
                            .tenant(saved.tenant_id)
                            .description("project updated")
                            .values(old, new),
                    )
                    .await?;
                    Ok(saved)
                })
            })
            .await
    }

    /// Deletes a project; the store removes its API keys and detaches its sessions (see the `Repo` contract).
    /// The audit record keeps the deleted project's values.
    pub async fn delete(&self, ctx: &Ctx, id: ProjectId) -> Result<()> {
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let current = uow.projects().lock(id).await?;
                    uow.projects().delete(id).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Delete, "project", id)
                            .tenant(current.tenant_id)
                            .description("project deleted")
                            .values(Some(to_json(&current)), None),
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
    }
}

fn name_taken(err: avb_core::Error, name: &str) -> Error {
    unique_conflict(err, || {
        format!("a project named '{name}' already exists in this tenant")
    })
}
