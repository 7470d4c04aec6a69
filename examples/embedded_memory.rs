//! Embedding AgentVoiceBox entirely in memory: create a tenant, activate it, add a project and a user, mint an
//! API key, open a session, and print the tenant's usage and audit trail. No external service is needed.
//!
//! `cargo run --release --example embedded_memory`

use agentvoicebox::core::audit::{AuditFilter, AuditReader};
use agentvoicebox::core::{Ctx, PageRequest, Principal, RequestId, UuidV7Ids};
use agentvoicebox::storage_memory::MemoryStore;
use agentvoicebox::tenancy::TenancyDeps;
use agentvoicebox::tenancy::api_key::{ApiKeyService, CreateApiKeyRequest};
use agentvoicebox::tenancy::project::{CreateProjectRequest, ProjectService};
use agentvoicebox::tenancy::session::{CreateSessionRequest, SessionService};
use agentvoicebox::tenancy::tenant::{CreateTenantRequest, TenantService};
use agentvoicebox::tenancy::user::{InviteUserRequest, UserService};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let deps = TenancyDeps::new(Arc::new(store.clone()));
    let ids = UuidV7Ids;

    // The platform itself creates the tenant (a sysadmin would, through the admin API).
    let system = Ctx::new(RequestId::generate(&ids), Principal::system("example"));
    let tenants = TenantService::new(deps.clone());
    let created = tenants
        .create(
            &system,
            CreateTenantRequest::new("Acme Corp", "acme-corp", "admin@acme.test", "Ada Admin"),
        )
        .await?;
    let tenant = tenants.activate(&system, created.tenant.id).await?;
    println!(
        "tenant {} ({}) is {} on the {} tier",
        tenant.name, tenant.slug, tenant.status, tenant.tier
    );

    // Everything else happens as the tenant's admin, scoped to the tenant.
    let admin = Principal::User(agentvoicebox::core::UserPrincipal {
        user_id: created.admin.id,
        tenant_id: Some(tenant.id),
        email: created.admin.email.clone(),
        roles: created.admin.roles.clone(),
        external_id: None,
    });
    let ctx = Ctx::new(RequestId::generate(&ids), admin).with_tenant(Some(tenant.id));

    let project = ProjectService::new(deps.clone())
        .create(
            &ctx,
            serde_json::from_value::<CreateProjectRequest>(serde_json::json!({"name": "Front desk"}))?,
        )
        .await?;
    println!("project {} created", project.name);

    let user = UserService::new(deps.clone())
        .invite(
            &ctx,
            serde_json::from_value::<InviteUserRequest>(serde_json::json!({
                "email": "dev@acme.test", "first_name": "Dev", "last_name": "Eloper", "roles": ["developer"]
            }))?,
        )
        .await?;
    println!("user {} invited", user.email);

    let key = ApiKeyService::new(deps.clone())
        .create(
            &ctx,
            serde_json::from_value::<CreateApiKeyRequest>(serde_json::json!({
                "name": "front-desk", "description": "", "scopes": ["realtime"], "project_id": project.id
            }))?,
        )
        .await?;
    println!(
        "api key {}… created (the secret is shown once)",
        key.record.key_prefix
    );

    let session = SessionService::new(deps.clone())
        .create(
            &ctx,
            serde_json::from_value::<CreateSessionRequest>(serde_json::json!({"project_id": project.id}))?,
        )
        .await?;
    println!("session {} is {}", session.id, session.status);

    let usage = tenants.usage(&ctx, tenant.id).await?;
    println!("usage: {}", serde_json::to_string_pretty(&usage)?);

    let audit = store
        .query(&ctx, &AuditFilter::default(), PageRequest::new(Some(100), None)?)
        .await?;
    println!("audit trail of {} ({} entries):", tenant.slug, audit.total);
    for entry in audit.items.iter().rev() {
        println!(
            "  #{} {} {} {}",
            entry.sequence,
            entry.action.as_str(),
            entry.resource_type,
            entry.resource_id
        );
    }
    let chain = store.chain(&ctx, Some(tenant.id)).await?;
    agentvoicebox::core::audit::verify_chain(&chain)?;
    println!("audit chain verified ({} links)", chain.len());
    Ok(())
}
