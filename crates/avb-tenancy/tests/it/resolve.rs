//! Tenant resolution (spec §5.2) against the memory store.

use crate::common::{World, code};
use avb_core::{Principal, TenantId};
use avb_tenancy::model::{Tenant, TenantTier};
use avb_tenancy::resolve::ResolveInput;
use avb_tenancy::tenant::SuspendTenantRequest;
use avb_tenancy::{Error, Result};

const API: &str = "/api/v2/projects";

async fn resolve(
    w: &World,
    path: &str,
    principal: &Principal,
    header: Option<&str>,
    host: Option<&str>,
) -> Result<Option<Tenant>> {
    w.resolver
        .resolve(ResolveInput {
            path,
            principal,
            header_tenant: header,
            host,
        })
        .await
}

fn id_of(result: Result<Option<Tenant>>) -> Option<TenantId> {
    result.unwrap().map(|t| t.id)
}

#[tokio::test]
async fn exempt_paths_resolve_to_no_tenant_and_check_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let user = w.user_principal(&a.admin);
    for path in [
        "/health",
        "/metrics",
        "/api/v2/auth/token",
        "/api/v2/admin/tenants",
        "/ws/v2/admin/events",
    ] {
        assert_eq!(
            id_of(resolve(&w, path, &user, Some("not-a-uuid"), None).await),
            None,
            "{path}"
        );
    }
    // A dot segment does not borrow an exemption.
    let sneaky = resolve(&w, "/api/v2/admin/../projects", &user, None, None).await;
    assert_eq!(id_of(sneaky), Some(a.tenant.id));
}

#[tokio::test]
async fn the_token_claim_comes_first() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let user = w.user_principal(&a.admin);
    let got = resolve(&w, API, &user, None, Some("beta.voice.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, w.tenants.get(&w.sysadmin(), a.tenant.id).await.unwrap());
    // A header naming the same tenant is fine.
    let same = a.tenant.id.to_string();
    assert_eq!(
        id_of(resolve(&w, API, &user, Some(&same), None).await),
        Some(a.tenant.id)
    );
}

#[tokio::test]
async fn the_header_is_used_when_the_credential_names_no_tenant() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let header = a.tenant.id.to_string();
    for principal in [
        Principal::Anonymous,
        Principal::system("job"),
        w.sysadmin_principal(None),
    ] {
        assert_eq!(
            id_of(resolve(&w, API, &principal, Some(&header), None).await),
            Some(a.tenant.id)
        );
    }
    let padded = format!("  {header} ");
    assert_eq!(
        id_of(resolve(&w, API, &Principal::Anonymous, Some(&padded), None).await),
        Some(a.tenant.id)
    );
}

#[tokio::test]
async fn a_header_that_is_not_a_uuid_is_a_validation_error() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let user = w.user_principal(&a.admin);
    let got = resolve(&w, API, &user, Some("alpha"), None).await;
    assert!(
        matches!(&got, Err(Error::Invalid(f)) if f.0[0].field == "X-Tenant-ID"),
        "{got:?}"
    );
    assert_eq!(
        code(resolve(&w, API, &Principal::Anonymous, Some("1234"), None).await),
        "validation_error"
    );
    // Blank means absent.
    assert_eq!(
        id_of(resolve(&w, API, &user, Some(""), None).await),
        Some(a.tenant.id)
    );
}

#[tokio::test]
async fn users_and_api_keys_cannot_hop_tenants_by_header_but_sysadmins_can() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let other = b.tenant.id.to_string();
    let user = w.user_principal(&a.admin);
    assert_eq!(
        code(resolve(&w, API, &user, Some(&other), None).await),
        "permission_denied"
    );
    let key = w.api_key_principal(a.tenant.id);
    assert_eq!(
        code(resolve(&w, API, &key, Some(&other), None).await),
        "permission_denied"
    );
    let unknown = TenantId(uuid::Uuid::from_u128(5)).to_string();
    assert_eq!(
        code(resolve(&w, API, &user, Some(&unknown), None).await),
        "permission_denied"
    );

    let sysadmin_in_a = w.sysadmin_principal(Some(a.tenant.id));
    assert_eq!(
        id_of(resolve(&w, API, &sysadmin_in_a, Some(&other), None).await),
        Some(b.tenant.id)
    );
    assert_eq!(
        id_of(resolve(&w, API, &sysadmin_in_a, None, None).await),
        Some(a.tenant.id)
    );
}

#[tokio::test]
async fn the_subdomain_is_the_last_resort() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let anon = Principal::Anonymous;
    assert_eq!(
        id_of(resolve(&w, API, &anon, None, Some("alpha.voice.example")).await),
        Some(a.tenant.id)
    );
    assert_eq!(
        id_of(resolve(&w, API, &anon, None, Some("Beta.voice.example:8443")).await),
        Some(b.tenant.id)
    );
    // The header beats the subdomain.
    let header = a.tenant.id.to_string();
    assert_eq!(
        id_of(resolve(&w, API, &anon, Some(&header), Some("beta.voice.example")).await),
        Some(a.tenant.id)
    );
    // Reserved, unknown and too-short hosts name nothing.
    for host in [
        "www.voice.example",
        "api.voice.example",
        "admin.voice.example",
        "gamma.voice.example",
        "alpha.example",
    ] {
        assert_eq!(
            id_of(resolve(&w, API, &anon, None, Some(host)).await),
            None,
            "{host}"
        );
    }
    // A sysadmin without a claim follows the subdomain too.
    let root = w.sysadmin_principal(None);
    assert_eq!(
        id_of(resolve(&w, API, &root, None, Some("beta.voice.example")).await),
        Some(b.tenant.id)
    );
}

#[tokio::test]
async fn without_a_tenant_only_anonymous_and_cross_tenant_callers_pass() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let mut homeless = a.admin.clone();
    homeless.tenant_id = None;
    let user = w.user_principal(&homeless);
    assert_eq!(code(resolve(&w, API, &user, None, None).await), "tenant_required");
    assert_eq!(
        code(resolve(&w, API, &user, None, Some("nobody.voice.example")).await),
        "tenant_required"
    );
    assert_eq!(
        id_of(resolve(&w, API, &Principal::Anonymous, None, None).await),
        None
    );
    assert_eq!(
        id_of(resolve(&w, API, &w.sysadmin_principal(None), None, None).await),
        None
    );
    assert_eq!(
        id_of(resolve(&w, API, &Principal::system("job"), None, None).await),
        None
    );
}

#[tokio::test]
async fn suspended_deleted_and_unknown_tenants_are_refused_and_pending_ones_pass() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let pending = w
        .tenants
        .create(
            &w.sysadmin(),
            avb_tenancy::tenant::CreateTenantRequest::new("Pend", "pend", "p@pend.example", "Pat Pend"),
        )
        .await
        .unwrap();
    w.tenants
        .suspend(
            &w.sysadmin(),
            a.tenant.id,
            SuspendTenantRequest {
                reason: "unpaid".into(),
            },
        )
        .await
        .unwrap();
    w.tenants.delete(&w.sysadmin(), b.tenant.id).await.unwrap();

    let suspended_user = w.user_principal(&a.admin);
    assert_eq!(
        code(resolve(&w, API, &suspended_user, None, None).await),
        "tenant_suspended"
    );
    assert_eq!(
        code(resolve(&w, API, &Principal::Anonymous, None, Some("alpha.voice.example")).await),
        "tenant_suspended"
    );
    let deleted_key = w.api_key_principal(b.tenant.id);
    assert_eq!(
        code(resolve(&w, API, &deleted_key, None, None).await),
        "tenant_not_found"
    );
    assert_eq!(
        code(resolve(&w, API, &Principal::Anonymous, None, Some("beta.voice.example")).await),
        "tenant_not_found"
    );
    let unknown = TenantId(uuid::Uuid::from_u128(77)).to_string();
    assert_eq!(
        code(resolve(&w, API, &w.sysadmin_principal(None), Some(&unknown), None).await),
        "tenant_not_found"
    );
    // The admin routes stay open for the sysadmin to repair things.
    assert_eq!(
        id_of(resolve(&w, "/api/v2/admin/tenants", &suspended_user, None, None).await),
        None
    );

    let pending_admin = w.user_principal(&pending.admin);
    assert_eq!(
        id_of(resolve(&w, API, &pending_admin, None, None).await),
        Some(pending.tenant.id)
    );
}
