//! Platform sysadmins act inside any tenant as that tenant's `sysadmin` relation, without per-tenant tuples.

use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::authorizer::ObjectRef;
use avb_auth::authorizer::guard::{GuardedResource, require_permission};
use avb_core::{
    Ctx, ErrorCode, HasCode, Principal, RequestId, Role, SequentialIds, TenantId, UserId, UserPrincipal,
};
use avb_storage_memory::MemoryRelationshipStore;
use std::sync::Arc;

fn user(roles: &[Role], tenant: Option<TenantId>) -> Ctx {
    let ids = SequentialIds::default();
    Ctx::new(
        RequestId::generate(&ids),
        Principal::User(UserPrincipal {
            user_id: UserId(uuid::Uuid::from_u128(42)),
            tenant_id: None,
            email: "ops@example.test".into(),
            roles: roles.iter().copied().collect(),
            external_id: None,
        }),
    )
    .with_tenant(tenant)
}

#[tokio::test]
async fn sysadmin_holds_every_tenant_permission_without_tuples() {
    let authz = LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::default())).unwrap();
    let tenant = TenantId(uuid::Uuid::from_u128(7));
    let ctx = user(&[Role::Sysadmin], Some(tenant));
    for permission in ["view", "manage", "administrate", "view_audit", "create_project"] {
        require_permission(&authz, &ctx, &GuardedResource::tenant(tenant), permission)
            .await
            .unwrap();
    }
    let project = GuardedResource::owned(ObjectRef::new("project", "p1"), tenant);
    require_permission(&authz, &ctx, &project, "delete")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tenant_admin_role_alone_grants_nothing_without_tuples() {
    let authz = LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::default())).unwrap();
    let tenant = TenantId(uuid::Uuid::from_u128(7));
    let ctx = user(&[Role::Admin], Some(tenant));
    let err = require_permission(&authz, &ctx, &GuardedResource::tenant(tenant), "view")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
}
