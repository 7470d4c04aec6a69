//! Framework-free guards (spec §6.3's decorators as plain functions): request handlers call them before acting.
//!
//! # Rules
//! - Anonymous callers get `authentication_failed`.
//! - **Existence never leaks.** Every guarded resource comes with the tenant that owns it
//!   ([`GuardedResource`]); a resource outside the caller's tenant is `not_found`, decided before any
//!   permission is evaluated, exactly as if it did not exist. Only cross-tenant principals (sysadmin users,
//!   the system) see other tenants' resources.
//! - **Users** are the subject `user:<id>` and must hold the permission in the relationship graph (spec §6.4).
//!   A denial is `permission_denied`; an evaluation error is returned as is (fail closed, never an allow).
//! - **API keys** are not subjects in the schema, so they are authorized by scope within their own tenant:
//!   a key acts as if it held one tenant role and nothing else —
//!   `admin` scope → tenant `developer`, `billing` scope → tenant `billing`, `realtime` scope → no
//!   permission in the graph (realtime endpoints use [`require_scope`] instead). "As if" is evaluated on the
//!   embedded schema, following only the resource's `tenant` relation: an `admin` key may `view` a project
//!   or `edit` a voice config, but cannot `delete` a project or `rotate` a key. A key bound to a project is
//!   denied every other project.
//! - **Platform sysadmins** (role `sysadmin` from the identity provider) act in any tenant as if they held that
//!   tenant's `sysadmin` relation: whatever the schema grants `tenant#sysadmin` through the resource's `tenant`
//!   relation is allowed without a tuple; anything else is checked in the graph like any user.
//! - **The system principal** (jobs, bootstrap) is trusted: it passes permission checks, but still only within
//!   the tenant its context is scoped to.

use super::{Authorizer, CheckRequest, Consistency, ObjectRef, SubjectRef};
use crate::zed::{self, ArrowFunction, Expr, Member};
use crate::{Error, Result};
use avb_core::{ApiKeyPrincipal, ApiKeyScope, Ctx, Principal, ProjectId, Role, TenantId};

/// A resource and the tenant that owns it: the only way to name what a guard protects, so the tenant check
/// cannot be forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuardedResource {
    /// The object in the permission graph.
    pub object: ObjectRef,
    /// Its owning tenant (for a tenant, itself).
    pub tenant: TenantId,
}

impl GuardedResource {
    /// A tenant, guarding its tenant-level permissions (`invite_user`, `create_project`, …).
    pub fn tenant(tenant: TenantId) -> Self {
        Self {
            object: tenant.into(),
            tenant,
        }
    }

    /// The context's tenant (spec §6.3 `resource_id_from_tenant`).
    ///
    /// # Errors
    /// `tenant_required` when the context has none.
    pub fn current_tenant(ctx: &Ctx) -> Result<Self> {
        Ok(Self::tenant(ctx.tenant().ok_or(Error::TenantRequired)?))
    }

    /// A resource owned by `tenant` (a project, key, session, theme, persona, voice config).
    pub fn owned(object: impl Into<ObjectRef>, tenant: TenantId) -> Self {
        Self {
            object: object.into(),
            tenant,
        }
    }
}

/// The graph subject for a principal: users only (API keys and the system are not subjects in the schema).
pub fn subject_for(principal: &Principal) -> Option<SubjectRef> {
    match principal {
        Principal::User(user) => Some(SubjectRef::user(user.user_id)),
        Principal::ApiKey(_) | Principal::System { .. } | Principal::Anonymous => None,
    }
}

/// Requires `permission` on `resource` (spec §6.3 `require_permission`). See the module docs for the rules.
///
/// # Errors
/// `authentication_failed`, `not_found` (other tenant), `permission_denied`, or the authorizer's own error.
pub async fn require_permission(
    authz: &dyn Authorizer,
    ctx: &Ctx,
    resource: &GuardedResource,
    permission: &str,
) -> Result<()> {
    match decide(ctx, resource, permission)? {
        Decision::Allowed => Ok(()),
        Decision::Denied => Err(denied(resource, permission)),
        Decision::Check(subject) => {
            let request = CheckRequest {
                resource: resource.object.clone(),
                permission: permission.to_owned(),
                subject,
            };
            let result = authz.check(ctx, &request, &Consistency::MinimizeLatency).await?;
            if result.is_allowed() {
                Ok(())
            } else {
                Err(denied(resource, permission))
            }
        }
    }
}

/// Requires at least one of several permissions (spec §6.3 `require_any_permission`).
///
/// Passes as soon as one candidate is allowed, even if evaluating another failed. Otherwise fails with the
/// first evaluation error, else `permission_denied` for the first visible candidate, else `not_found` when
/// no candidate is visible to the caller.
///
/// # Errors
/// As described above.
pub async fn require_any(
    authz: &dyn Authorizer,
    ctx: &Ctx,
    candidates: &[(GuardedResource, &str)],
) -> Result<()> {
    let mut pending: Vec<(usize, CheckRequest)> = Vec::new();
    let mut first_denied: Option<usize> = None;
    let mut first_hidden: Option<Error> = None;
    for (index, (resource, permission)) in candidates.iter().enumerate() {
        match decide(ctx, resource, permission) {
            Ok(Decision::Allowed) => return Ok(()),
            Ok(Decision::Denied) => {
                first_denied.get_or_insert(index);
            }
            Ok(Decision::Check(subject)) => pending.push((
                index,
                CheckRequest {
                    resource: resource.object.clone(),
                    permission: (*permission).to_owned(),
                    subject,
                },
            )),
            Err(err @ Error::NotFound { .. }) => {
                first_hidden.get_or_insert(err);
            }
            Err(err) => return Err(err),
        }
    }
    let mut first_error: Option<Error> = None;
    if !pending.is_empty() {
        let requests: Vec<CheckRequest> = pending.iter().map(|(_, r)| r.clone()).collect();
        let bulk = authz
            .check_bulk(ctx, &requests, &Consistency::MinimizeLatency)
            .await?;
        for ((index, _), result) in pending.iter().zip(bulk.results) {
            match result {
                Ok(p) if p.is_allowed() => return Ok(()),
                Ok(_) => {
                    if first_denied.is_none_or(|d| *index < d) {
                        first_denied = Some(*index);
                    }
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    match first_denied.and_then(|i| candidates.get(i)) {
        Some((resource, permission)) => Err(denied(resource, permission)),
        None => Err(first_hidden.unwrap_or(Error::PermissionDenied {
            resource_type: String::new(),
            permission: "any of none".into(),
        })),
    }
}

/// Requires an identity-provider role (spec §6.3 `require_role`), e.g. [`Role::Sysadmin`] for
/// `/api/v2/admin/*`. The system principal passes; API keys never hold roles.
///
/// # Errors
/// `authentication_failed` for anonymous callers, `permission_denied` otherwise.
pub fn require_role(ctx: &Ctx, role: Role) -> Result<()> {
    match ctx.principal() {
        Principal::Anonymous => Err(unauthenticated()),
        Principal::System { .. } => Ok(()),
        Principal::User(user) if user.roles.contains(&role) => Ok(()),
        Principal::User(_) | Principal::ApiKey(_) => Err(Error::RoleRequired { required: role }),
    }
}

/// Requires an API-key scope (spec §9.2). Users and the system are not limited by scopes.
///
/// # Errors
/// `authentication_failed` for anonymous callers, `insufficient_scope` for keys without the scope.
pub fn require_scope(ctx: &Ctx, scope: ApiKeyScope) -> Result<()> {
    match ctx.principal() {
        Principal::Anonymous => Err(unauthenticated()),
        Principal::ApiKey(key) if !key.scopes.contains(&scope) => {
            Err(Error::InsufficientScope { required: scope })
        }
        Principal::ApiKey(_) | Principal::User(_) | Principal::System { .. } => Ok(()),
    }
}

/// The tenant role an API-key scope stands for (see the module docs).
pub fn role_for_scope(scope: ApiKeyScope) -> Option<Role> {
    match scope {
        ApiKeyScope::Admin => Some(Role::Developer),
        ApiKeyScope::Billing => Some(Role::Billing),
        ApiKeyScope::Realtime => None,
    }
}

/// Whether holding only `role` on the owning tenant grants `permission` on a resource of `resource_type`,
/// evaluated on the embedded spec schema (relations other than the resource's `tenant` are taken as empty).
pub fn tenant_role_grants(role: Role, resource_type: &str, permission: &str) -> bool {
    zed::agentvoicebox().is_ok_and(|schema| grants(schema, role.as_str(), resource_type, permission, 0))
}

enum Decision {
    Allowed,
    Denied,
    Check(SubjectRef),
}

fn decide(ctx: &Ctx, resource: &GuardedResource, permission: &str) -> Result<Decision> {
    if matches!(ctx.principal(), Principal::Anonymous) {
        return Err(unauthenticated());
    }
    let visible = ctx.storage_scope()?.allows(resource.tenant)
        && ctx
            .principal()
            .tenant_id()
            .is_none_or(|own| own == resource.tenant || ctx.principal().is_cross_tenant());
    if !visible {
        return Err(Error::NotFound {
            resource_type: resource.object.object_type.clone(),
            id: resource.object.object_id.clone(),
        });
    }
    match ctx.principal() {
        // A platform sysadmin acting inside a tenant holds that tenant's `sysadmin` relation implicitly (spec §6.4
        // `relation sysadmin: user`), so no per-tenant tuple has to be written for every tenant that exists.
        Principal::User(user)
            if user.roles.contains(&Role::Sysadmin)
                && tenant_role_grants(Role::Sysadmin, &resource.object.object_type, permission) =>
        {
            Ok(Decision::Allowed)
        }
        Principal::User(user) => Ok(Decision::Check(SubjectRef::user(user.user_id))),
        Principal::System { .. } => Ok(Decision::Allowed),
        Principal::ApiKey(key) => Ok(if api_key_allows(key, resource, permission) {
            Decision::Allowed
        } else {
            Decision::Denied
        }),
        Principal::Anonymous => Err(unauthenticated()),
    }
}

fn api_key_allows(key: &ApiKeyPrincipal, resource: &GuardedResource, permission: &str) -> bool {
    if let Some(bound) = key.project_id
        && resource.object.object_type == ProjectId::RESOURCE
        && resource.object.object_id != bound.to_string()
    {
        return false;
    }
    key.scopes
        .iter()
        .filter_map(|scope| role_for_scope(*scope))
        .any(|role| tenant_role_grants(role, &resource.object.object_type, permission))
}

/// Symbolic evaluation for a subject holding exactly `role` on the resource's tenant.
fn grants(schema: &zed::Schema, role: &str, object_type: &str, member: &str, depth: u32) -> bool {
    const MAX_DEPTH: u32 = 32;
    if depth > MAX_DEPTH {
        return false;
    }
    let Some(def) = schema.definition(object_type) else {
        return false;
    };
    match def.member(member) {
        Some(Member::Relation(_)) => object_type == TenantId::RESOURCE && member == role,
        Some(Member::Permission(expr)) => grants_expr(schema, role, object_type, expr, depth + 1),
        None => false,
    }
}

fn grants_expr(schema: &zed::Schema, role: &str, object_type: &str, expr: &Expr, depth: u32) -> bool {
    match expr {
        Expr::Nil => false,
        Expr::Ref(member) => grants(schema, role, object_type, member, depth),
        Expr::Arrow {
            tupleset,
            computed,
            function: ArrowFunction::Any | ArrowFunction::All,
        } => {
            tupleset == TenantId::RESOURCE
                && schema
                    .definition(object_type)
                    .and_then(|d| d.relation(tupleset))
                    .is_some_and(|rel| rel.allows(TenantId::RESOURCE, None, false))
                && grants(schema, role, TenantId::RESOURCE, computed, depth)
        }
        Expr::Union(children) => children
            .iter()
            .any(|c| grants_expr(schema, role, object_type, c, depth)),
        Expr::Intersection(children) => children
            .iter()
            .all(|c| grants_expr(schema, role, object_type, c, depth)),
        Expr::Exclusion(base, rest) => {
            grants_expr(schema, role, object_type, base, depth)
                && !rest
                    .iter()
                    .any(|c| grants_expr(schema, role, object_type, c, depth))
        }
    }
}

fn denied(resource: &GuardedResource, permission: &str) -> Error {
    Error::PermissionDenied {
        resource_type: resource.object.object_type.clone(),
        permission: permission.to_owned(),
    }
}

fn unauthenticated() -> Error {
    Error::AuthenticationFailed("authentication required".into())
}
