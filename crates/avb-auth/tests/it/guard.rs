//! Guards: users through the graph, API keys by scope, tenants never leak.

use crate::support::engine;
use avb_auth::authorizer::bootstrap;
use avb_auth::authorizer::guard::{
    GuardedResource, require_any, require_permission, require_role, require_scope, tenant_role_grants,
};
use avb_auth::authorizer::{Authorizer, CheckRequest, Consistency, RelationshipUpdate};
use avb_auth::zed;
use avb_core::{
    ApiKeyId, ApiKeyPrincipal, ApiKeyScope, Ctx, ErrorCode, HasCode, Principal, ProjectId, RateLimitTier,
    RequestId, Role, TenantId, UserId, UserPrincipal, UuidV7Ids,
};
use std::collections::BTreeSet;
use uuid::Uuid;

fn user_ctx(user: UserId, tenant: TenantId, roles: &[Role]) -> Ctx {
    let principal = Principal::User(UserPrincipal {
        user_id: user,
        tenant_id: Some(tenant),
        email: "someone@example.test".into(),
        roles: roles.iter().copied().collect(),
        external_id: None,
    });
    Ctx::new(RequestId::generate(&UuidV7Ids), principal).with_tenant(Some(tenant))
}

fn key_ctx(tenant: TenantId, scopes: &[ApiKeyScope], project: Option<ProjectId>) -> Ctx {
    let principal = Principal::ApiKey(ApiKeyPrincipal {
        key_id: ApiKeyId(Uuid::new_v4()),
        tenant_id: tenant,
        project_id: project,
        scopes: scopes.iter().copied().collect(),
        tier: RateLimitTier::Standard,
        created_by: None,
    });
    Ctx::new(RequestId::generate(&UuidV7Ids), principal).with_tenant(Some(tenant))
}

fn system_ctx(tenant: Option<TenantId>) -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "guard-test", tenant)
}

struct World {
    authz: Box<dyn Authorizer>,
    tenant: TenantId,
    other: TenantId,
    admin: UserId,
    viewer: UserId,
    project: ProjectId,
    foreign_project: ProjectId,
}

async fn world() -> World {
    let authz = engine(None);
    let (tenant, other) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
    let (admin, viewer) = (UserId(Uuid::new_v4()), UserId(Uuid::new_v4()));
    let (project, foreign_project) = (ProjectId(Uuid::new_v4()), ProjectId(Uuid::new_v4()));
    let mut updates = bootstrap::tenant_created(tenant, admin);
    // The admin also administers the other tenant: visibility must still follow the request's tenant.
    updates.extend(bootstrap::tenant_created(other, admin));
    updates.extend(bootstrap::user_roles_changed(
        tenant,
        viewer,
        &BTreeSet::new(),
        &[Role::Viewer].into(),
    ));
    updates.extend(bootstrap::project_created(project, tenant, admin));
    updates.extend(bootstrap::project_created(foreign_project, other, admin));
    authz
        .write_relationships(&system_ctx(None), &updates)
        .await
        .unwrap();
    World {
        authz: Box::new(authz),
        tenant,
        other,
        admin,
        viewer,
        project,
        foreign_project,
    }
}

#[tokio::test]
async fn users_need_the_permission_in_the_graph() {
    let w = world().await;
    let viewer = user_ctx(w.viewer, w.tenant, &[Role::Viewer]);
    let project = GuardedResource::owned(w.project, w.tenant);
    require_permission(w.authz.as_ref(), &viewer, &project, "view")
        .await
        .unwrap();
    let err = require_permission(w.authz.as_ref(), &viewer, &project, "delete")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    assert!(
        !err.to_body().message.contains(&w.project.to_string()),
        "a denial does not echo ids"
    );

    let here = GuardedResource::current_tenant(&viewer).unwrap();
    require_permission(w.authz.as_ref(), &viewer, &here, "view")
        .await
        .unwrap();
    assert_eq!(
        require_permission(w.authz.as_ref(), &viewer, &here, "invite_user")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
}

#[tokio::test]
async fn another_tenants_resources_are_not_found_even_with_permission_there() {
    let w = world().await;
    let admin_here = user_ctx(w.admin, w.tenant, &[Role::Admin]);
    let foreign = GuardedResource::owned(w.foreign_project, w.other);
    for permission in ["view", "delete", "no_such_permission"] {
        let err = require_permission(w.authz.as_ref(), &admin_here, &foreign, permission)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "{permission}: {err}");
    }
    let key = key_ctx(w.tenant, &[ApiKeyScope::Admin], None);
    let err = require_permission(w.authz.as_ref(), &key, &foreign, "view")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let sysadmin_anywhere = system_ctx(None);
    require_permission(w.authz.as_ref(), &sysadmin_anywhere, &foreign, "delete")
        .await
        .unwrap();
    let scoped_system = system_ctx(Some(w.tenant));
    assert_eq!(
        require_permission(w.authz.as_ref(), &scoped_system, &foreign, "view")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn anonymous_callers_must_authenticate() {
    let w = world().await;
    let anonymous =
        Ctx::new(RequestId::generate(&UuidV7Ids), Principal::Anonymous).with_tenant(Some(w.tenant));
    let project = GuardedResource::owned(w.project, w.tenant);
    let err = require_permission(w.authz.as_ref(), &anonymous, &project, "view")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed);
    assert_eq!(
        require_role(&anonymous, Role::Sysadmin).unwrap_err().code(),
        ErrorCode::AuthenticationFailed
    );
    assert_eq!(
        require_scope(&anonymous, ApiKeyScope::Admin).unwrap_err().code(),
        ErrorCode::AuthenticationFailed
    );
}

#[tokio::test]
async fn api_keys_act_as_the_role_their_scope_stands_for() {
    let w = world().await;
    let project = GuardedResource::owned(w.project, w.tenant);
    let tenant = GuardedResource::tenant(w.tenant);
    let admin_key = key_ctx(w.tenant, &[ApiKeyScope::Admin], None);
    require_permission(w.authz.as_ref(), &admin_key, &project, "develop")
        .await
        .unwrap();
    require_permission(w.authz.as_ref(), &admin_key, &tenant, "create_api_key")
        .await
        .unwrap();
    for permission in ["delete", "admin"] {
        let err = require_permission(w.authz.as_ref(), &admin_key, &project, permission)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{permission}");
    }
    let billing_key = key_ctx(w.tenant, &[ApiKeyScope::Billing], None);
    require_permission(w.authz.as_ref(), &billing_key, &tenant, "manage_billing")
        .await
        .unwrap();
    assert!(
        require_permission(w.authz.as_ref(), &billing_key, &tenant, "view")
            .await
            .is_err()
    );
    let realtime_key = key_ctx(w.tenant, &[ApiKeyScope::Realtime], None);
    assert!(
        require_permission(w.authz.as_ref(), &realtime_key, &project, "view")
            .await
            .is_err()
    );

    let bound = key_ctx(w.tenant, &[ApiKeyScope::Admin], Some(ProjectId(Uuid::new_v4())));
    let err = require_permission(w.authz.as_ref(), &bound, &project, "view")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::PermissionDenied,
        "a key bound to another project is denied this one"
    );
}

/// The symbolic "acts as role" rule must agree with the engine for a real user holding that role only.
#[tokio::test]
async fn scope_rule_matches_the_engine_for_every_spec_permission() {
    let authz = engine(None);
    let schema = zed::agentvoicebox().unwrap();
    let ctx = system_ctx(None);
    for role in [Role::Developer, Role::Billing, Role::Viewer, Role::Admin] {
        let tenant = TenantId(Uuid::new_v4());
        let user = UserId(Uuid::new_v4());
        let mut updates = bootstrap::user_roles_changed(tenant, user, &BTreeSet::new(), &[role].into());
        let mut resources = vec![tenant.into()];
        for def in schema.definitions().filter(|d| d.relation("tenant").is_some()) {
            let object = avb_auth::authorizer::ObjectRef::new(def.name(), Uuid::new_v4().to_string());
            updates.push(RelationshipUpdate::Touch(
                avb_auth::authorizer::Relationship::new(
                    object.clone(),
                    "tenant",
                    avb_auth::authorizer::SubjectRef::new(tenant.into()),
                ),
            ));
            resources.push(object);
        }
        authz.write_relationships(&ctx, &updates).await.unwrap();
        for resource in resources {
            let def = schema.definition(&resource.object_type).unwrap();
            for (permission, _) in def.permissions() {
                let request = CheckRequest::new(resource.clone(), permission, user);
                let engine_says = authz
                    .check(&ctx, &request, &Consistency::FullyConsistent)
                    .await
                    .unwrap()
                    .is_allowed();
                assert_eq!(
                    tenant_role_grants(role, &resource.object_type, permission),
                    engine_says,
                    "{role} {permission} on {}",
                    resource.object_type
                );
            }
        }
    }
}

#[tokio::test]
async fn require_any_passes_on_the_first_grant_and_reports_the_right_denial() {
    let w = world().await;
    let viewer = user_ctx(w.viewer, w.tenant, &[Role::Viewer]);
    let project = GuardedResource::owned(w.project, w.tenant);
    let tenant = GuardedResource::tenant(w.tenant);
    let foreign = GuardedResource::owned(w.foreign_project, w.other);
    require_any(
        w.authz.as_ref(),
        &viewer,
        &[(tenant.clone(), "administrate"), (project.clone(), "view")],
    )
    .await
    .unwrap();
    let err = require_any(
        w.authz.as_ref(),
        &viewer,
        &[(foreign.clone(), "view"), (tenant, "administrate")],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    let err = require_any(w.authz.as_ref(), &viewer, &[(foreign, "view")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    require_any(
        w.authz.as_ref(),
        &viewer,
        &[(project.clone(), "no_such_permission"), (project.clone(), "view")],
    )
    .await
    .unwrap();
    assert_eq!(
        require_any(w.authz.as_ref(), &viewer, &[(project, "no_such_permission")])
            .await
            .unwrap_err()
            .code(),
        ErrorCode::ValidationError,
        "an evaluation error is returned, never turned into an allow"
    );
}

#[test]
fn roles_and_scopes_are_checked_on_the_principal() {
    let (t, u) = (TenantId(Uuid::new_v4()), UserId(Uuid::new_v4()));
    require_role(&user_ctx(u, t, &[Role::Sysadmin]), Role::Sysadmin).unwrap();
    assert_eq!(
        require_role(&user_ctx(u, t, &[Role::Admin]), Role::Sysadmin)
            .unwrap_err()
            .code(),
        ErrorCode::PermissionDenied
    );
    assert!(require_role(&key_ctx(t, &[ApiKeyScope::Admin], None), Role::Admin).is_err());
    require_role(&system_ctx(None), Role::Sysadmin).unwrap();

    require_scope(&key_ctx(t, &[ApiKeyScope::Realtime], None), ApiKeyScope::Realtime).unwrap();
    let err = require_scope(&key_ctx(t, &[ApiKeyScope::Realtime], None), ApiKeyScope::Billing).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InsufficientScope);
    require_scope(&user_ctx(u, t, &[]), ApiKeyScope::Admin).unwrap();
}
