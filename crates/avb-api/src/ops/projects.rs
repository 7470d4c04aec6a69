//! `/api/v2/projects…`: projects of the caller's tenant.
//!
//! Permissions (spec §6.4): creating is `tenant#create_project`; reading `project#view`, changing
//! `project#develop`, deleting `project#delete`. The creator becomes the project's `owner`. The list shows only
//! the projects the caller may view (see `super::visible_page`).

use super::{require, require_tenant_permission, visible_page};
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::permissions::{self, GraphChange};
use avb_core::{ApiKeyId, Ctx, PageRequest, ProjectId};
use avb_tenancy::project::{CreateProjectRequest, UpdateProjectRequest};
use avb_tenancy::store::{ApiKeyFilter, ProjectFilter};
use serde::Deserialize;

/// Filters of `GET /projects`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProjectListQuery {
    /// Exact name (case-insensitive).
    name: Option<String>,
    /// Part of the name.
    search: Option<String>,
}

/// `POST /projects` — `tenant#create_project`; 201 with the project, owned by its creator.
pub async fn create(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "create_project").await?;
    let req: CreateProjectRequest = input.json()?;
    let project = app.inner().projects.create(ctx, req).await?;
    let change = GraphChange::ProjectCreated {
        project: project.id,
        tenant: project.tenant_id,
        owner: project.created_by,
    };
    permissions::apply(app, ctx, change).await;
    Reply::created(&project)
}

/// `GET /projects` — the projects the caller may view (`project#view`), filtered by `name` or `search`,
/// paginated with the total of visible ones.
pub async fn list(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let query: ProjectListQuery = input.query()?;
    let page = input.page()?;
    let filter = ProjectFilter {
        name: query.name,
        search: query.search.filter(|s| !s.is_empty()),
    };
    let projects = &app.inner().projects;
    let visible = visible_page(
        app,
        ctx,
        ProjectId::RESOURCE,
        "view",
        page,
        |p: &avb_tenancy::model::Project| (p.id.into(), p.tenant_id),
        |batch| {
            let filter = filter.clone();
            async move { Ok(projects.list(ctx, filter, batch).await?) }
        },
    )
    .await?;
    Reply::ok(&visible)
}

/// `GET /projects/{id}` — `project#view`.
pub async fn get(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: ProjectId = input.param("id")?;
    let project = app.inner().projects.get(ctx, id).await?;
    require(app, ctx, project.id, project.tenant_id, "view").await?;
    Reply::ok(&project)
}

/// `PATCH /projects/{id}` — `project#develop`.
pub async fn update(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: ProjectId = input.param("id")?;
    let project = app.inner().projects.get(ctx, id).await?;
    require(app, ctx, project.id, project.tenant_id, "develop").await?;
    let req: UpdateProjectRequest = input.json()?;
    Reply::ok(&app.inner().projects.update(ctx, id, req).await?)
}

/// `DELETE /projects/{id}` — `project#delete`; 204. The store removes the project's API keys with it, so
/// those keys are also dropped from the authentication cache and the graph.
pub async fn delete(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: ProjectId = input.param("id")?;
    let project = app.inner().projects.get(ctx, id).await?;
    require(app, ctx, project.id, project.tenant_id, "delete").await?;
    let keys = bound_keys(app, ctx, id).await?;
    app.inner().projects.delete(ctx, id).await?;
    let removed = GraphChange::ObjectRemoved {
        object_type: ProjectId::RESOURCE.into(),
        object_id: id.to_string(),
    };
    permissions::apply(app, ctx, removed).await;
    for key in keys {
        app.inner().authenticator.api_keys().invalidate(key);
        let removed = GraphChange::ObjectRemoved {
            object_type: ApiKeyId::RESOURCE.into(),
            object_id: key.to_string(),
        };
        permissions::apply(app, ctx, removed).await;
    }
    Reply::no_content()
}

/// Every API key bound to `project`.
async fn bound_keys(app: &App, ctx: &Ctx, project: ProjectId) -> Result<Vec<ApiKeyId>, ApiError> {
    let filter = ApiKeyFilter {
        project_id: Some(project),
        ..Default::default()
    };
    let mut keys = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = PageRequest::new(Some(PageRequest::MAX_LIMIT), Some(offset))?;
        let batch = app.inner().api_keys.list(ctx, filter.clone(), page).await?;
        let read = batch.items.len() as u64;
        keys.extend(batch.items.into_iter().map(|k| k.id));
        offset = offset.saturating_add(read);
        if read == 0 || offset >= batch.total {
            return Ok(keys);
        }
    }
}
