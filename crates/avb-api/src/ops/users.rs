//! `/api/v2/users…`: the caller's own profile and the tenant's members.
//!
//! Permissions (spec §6.4): reading members is `tenant#view`, inviting `tenant#invite_user`, changing roles and
//! (de/re)activating `tenant#administrate`. Users are not objects of the schema; their roles are tenant
//! relations, so every role change is mirrored into the graph ([`GraphChange::UserRolesChanged`]) and a
//! deactivation removes them ([`GraphChange::UserRemoved`]).

use super::admin::forget_login;
use super::{parse_choice, require_tenant_permission};
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::permissions::{self, GraphChange};
use avb_core::{Ctx, FieldErrors, Role, UserId};
use avb_tenancy::store::UserFilter;
use avb_tenancy::user::{ChangeRolesRequest, InviteUserRequest, UpdateProfileRequest};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Filters of `GET /users`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserListQuery {
    /// Exact e-mail.
    email: Option<String>,
    /// Part of the e-mail or name.
    search: Option<String>,
    /// Only active (or deactivated) users.
    is_active: Option<bool>,
    /// Only users with this role.
    #[param(inline, value_type = Option<Role>)]
    role: Option<String>,
}

/// `GET /users/me` — the calling user's record (users only; API keys have none).
pub async fn me(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    Reply::ok(&app.inner().users.me(ctx).await?)
}

/// `PATCH /users/me` — the caller's names, profile and preferences.
pub async fn update_me(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let req: UpdateProfileRequest = input.json()?;
    Reply::ok(&app.inner().users.update_me(ctx, req).await?)
}

/// `GET /users` — `tenant#view`; filters `email`, `search`, `is_active`, `role`; paginated.
pub async fn list(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view").await?;
    let query: UserListQuery = input.query()?;
    let page = input.page()?;
    let mut errors = FieldErrors::new();
    let role = parse_choice(
        &mut errors,
        "role",
        query.role.as_deref(),
        &Role::ALL,
        Role::as_str,
    );
    errors.into_result()?;
    let filter = UserFilter {
        email: query.email,
        keycloak_id: None,
        is_active: query.is_active,
        role,
        search: query.search.filter(|s| !s.is_empty()),
    };
    Reply::ok(&app.inner().users.list(ctx, filter, page).await?)
}

/// `POST /users` — `tenant#invite_user`; invites a user with roles (201) and grants those roles in the graph.
pub async fn invite(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "invite_user").await?;
    let req: InviteUserRequest = input.json()?;
    let user = app.inner().users.invite(ctx, req).await?;
    let change = GraphChange::UserRolesChanged {
        tenant: ctx.require_tenant()?,
        user: user.id,
        old: BTreeSet::new(),
        new: user.roles.clone(),
    };
    permissions::apply(app, ctx, change).await;
    Reply::created(&user)
}

/// `GET /users/{id}` — `tenant#view`.
pub async fn get(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: UserId = input.param("id")?;
    let user = app.inner().users.get(ctx, id).await?;
    require_tenant_permission(app, ctx, "view").await?;
    Reply::ok(&user)
}

/// `PUT /users/{id}/roles` — `tenant#administrate`; body `{"roles": [...]}` is the complete new set.
pub async fn change_roles(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: UserId = input.param("id")?;
    let before = app.inner().users.get(ctx, id).await?;
    require_tenant_permission(app, ctx, "administrate").await?;
    let req: ChangeRolesRequest = input.json()?;
    let user = app.inner().users.change_roles(ctx, id, req).await?;
    if user.is_active {
        let change = GraphChange::UserRolesChanged {
            tenant: ctx.require_tenant()?,
            user: user.id,
            old: before.roles,
            new: user.roles.clone(),
        };
        permissions::apply(app, ctx, change).await;
    }
    forget_login(app, &user);
    Reply::ok(&user)
}

/// `POST /users/{id}/deactivate` — `tenant#administrate`; the user can no longer sign in and loses every
/// relationship on the tenant.
pub async fn deactivate(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: UserId = input.param("id")?;
    app.inner().users.get(ctx, id).await?;
    require_tenant_permission(app, ctx, "administrate").await?;
    let user = app.inner().users.deactivate(ctx, id).await?;
    permissions::apply(
        app,
        ctx,
        GraphChange::UserRemoved {
            tenant: ctx.require_tenant()?,
            user: user.id,
        },
    )
    .await;
    forget_login(app, &user);
    Reply::ok(&user)
}

/// `POST /users/{id}/reactivate` — `tenant#administrate`; counts against `max_users` again and restores the
/// user's role relationships.
pub async fn reactivate(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let id: UserId = input.param("id")?;
    app.inner().users.get(ctx, id).await?;
    require_tenant_permission(app, ctx, "administrate").await?;
    let user = app.inner().users.reactivate(ctx, id).await?;
    let change = GraphChange::UserRolesChanged {
        tenant: ctx.require_tenant()?,
        user: user.id,
        old: BTreeSet::new(),
        new: user.roles.clone(),
    };
    permissions::apply(app, ctx, change).await;
    forget_login(app, &user);
    Reply::ok(&user)
}
