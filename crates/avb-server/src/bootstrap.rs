//! Embedded bootstrap: a sysadmin, a demo tenant with its admin, and an API key, so a newcomer can `curl` the
//! server the moment it starts. Everything goes through the same services and audit trail as API calls.

use avb_api::App;
use avb_api::permissions::{self, GraphChange};
use avb_auth::adapters::static_jwt::{DevTokenRequest, StaticJwtIdentity};
use avb_core::{Ctx, Principal, RequestId, Role, TenantId, UserPrincipal};
use avb_tenancy::api_key::CreateApiKeyRequest;
use avb_tenancy::tenant::CreateTenantRequest;

/// What the bootstrap made, to print.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The demo tenant.
    pub tenant_id: TenantId,
    /// Its slug.
    pub tenant_slug: String,
    /// A token for the platform sysadmin (valid 24 h).
    pub sysadmin_token: String,
    /// A token for the demo tenant's admin (valid 24 h).
    pub admin_token: String,
    /// An API key of the demo tenant with every scope (shown once).
    pub api_key: String,
}

/// Why bootstrapping failed.
#[derive(Debug, thiserror::Error)]
#[error("bootstrap failed: {0}")]
pub struct BootstrapError(String);

fn err(e: impl std::fmt::Display) -> BootstrapError {
    BootstrapError(e.to_string())
}

/// Creates the demo data in `app` and mints tokens with `identity`.
pub async fn bootstrap(app: &App, identity: &StaticJwtIdentity) -> Result<Bootstrapped, BootstrapError> {
    let inner = app.inner();
    let system = Ctx::system(RequestId::generate(inner.ids.as_ref()), "bootstrap", None);
    let created = inner
        .tenants
        .create(
            &system,
            CreateTenantRequest::new("Demo Organisation", "demo", "admin@demo.local", "Demo Admin"),
        )
        .await
        .map_err(err)?;
    let tenant = inner
        .tenants
        .activate(&system, created.tenant.id)
        .await
        .map_err(err)?;
    permissions::apply(
        app,
        &system,
        GraphChange::TenantCreated {
            tenant: tenant.id,
            admin: created.admin.id,
        },
    )
    .await;

    let day = 24 * 3600;
    let sysadmin_token = identity
        .mint(&DevTokenRequest {
            subject: "sysadmin".into(),
            email: "sysadmin@agentvoicebox.local".into(),
            first_name: "Platform".into(),
            last_name: "Sysadmin".into(),
            roles: vec![Role::Sysadmin],
            tenant_id: None,
            ttl_secs: day,
        })
        .map_err(err)?;
    let admin_token = identity
        .mint(&DevTokenRequest {
            subject: "demo-admin".into(),
            email: created.admin.email.clone(),
            first_name: created.admin.first_name.clone(),
            last_name: created.admin.last_name.clone(),
            roles: vec![Role::Admin],
            tenant_id: Some(tenant.id),
            ttl_secs: day,
        })
        .map_err(err)?;

    let admin_ctx = Ctx::new(
        RequestId::generate(inner.ids.as_ref()),
        Principal::User(UserPrincipal {
            user_id: created.admin.id,
            tenant_id: Some(tenant.id),
            email: created.admin.email.clone(),
            roles: created.admin.roles.clone(),
            external_id: None,
        }),
    )
    .with_tenant(Some(tenant.id));
    let request: CreateApiKeyRequest = serde_json::from_value(serde_json::json!({
        "name": "demo", "description": "created at start-up", "scopes": ["realtime", "billing", "admin"]
    }))
    .map_err(err)?;
    let key = inner.api_keys.create(&admin_ctx, request).await.map_err(err)?;
    permissions::apply(
        app,
        &admin_ctx,
        GraphChange::ApiKeyCreated {
            key: key.record.id,
            tenant: tenant.id,
            owner: Some(created.admin.id),
        },
    )
    .await;
    Ok(Bootstrapped {
        tenant_id: tenant.id,
        tenant_slug: tenant.slug,
        sysadmin_token,
        admin_token,
        api_key: key.secret.expose().to_owned(),
    })
}
