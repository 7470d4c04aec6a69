//! Mounting AgentVoiceBox inside an existing axum application, assembled with providers written here: a custom
//! authorizer (a decorator that freezes one tenant, over the local engine) and a custom tenancy store (a decorator
//! that counts units of work, over the in-memory store). This is the "integrator swaps a provider" story: any
//! port can be replaced by your own type.
//!
//! `cargo run --example axum_embedded` serves on 127.0.0.1:8080 (your `/hello` next to `/avb/api/v2/...`) and, with
//! `--check`, makes a few requests to itself and exits.

use agentvoicebox::auth::Result as AuthResult;
use agentvoicebox::auth::adapters::local_authz::LocalAuthorizer;
use agentvoicebox::auth::adapters::static_jwt::StaticJwtBuilder;
use agentvoicebox::auth::authorizer::{
    Authorizer, BulkCheckResult, CheckRequest, CheckResult, Consistency, LookupResourcesRequest,
    LookupSubject, LookupSubjectsRequest, Relationship, RelationshipFilter, RelationshipUpdate, ZedToken,
};
use agentvoicebox::core::{Ctx, TenantId};
use agentvoicebox::storage_memory::{
    MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore, MemoryStore,
};
use agentvoicebox::tenancy::store::{Access, TenancyStore, UnitOfWork};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A tenancy store that counts units of work and forwards everything to the in-memory store.
#[derive(Debug, Clone, Default)]
struct CountingStore {
    inner: MemoryStore,
    units: Arc<AtomicU64>,
}

#[async_trait]
impl TenancyStore for CountingStore {
    async fn begin(&self, ctx: &Ctx, access: Access) -> agentvoicebox::core::Result<Box<dyn UnitOfWork>> {
        self.units.fetch_add(1, Ordering::Relaxed);
        self.inner.begin(ctx, access).await
    }
}

/// An authorizer that denies every check inside a frozen tenant and otherwise asks the local engine.
#[derive(Debug)]
struct FreezingAuthorizer {
    inner: LocalAuthorizer,
    frozen: Option<TenantId>,
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Authorizer for FreezingAuthorizer {
    async fn check(
        &self,
        ctx: &Ctx,
        request: &CheckRequest,
        consistency: &Consistency,
    ) -> AuthResult<CheckResult> {
        if self.frozen.is_some() && ctx.tenant() == self.frozen {
            return Err(agentvoicebox::auth::Error::AuthenticationFailed(
                "tenant frozen by policy".into(),
            ));
        }
        self.inner.check(ctx, request, consistency).await
    }
    async fn check_bulk(
        &self,
        ctx: &Ctx,
        requests: &[CheckRequest],
        consistency: &Consistency,
    ) -> AuthResult<BulkCheckResult> {
        self.inner.check_bulk(ctx, requests, consistency).await
    }
    async fn write_relationships(&self, ctx: &Ctx, updates: &[RelationshipUpdate]) -> AuthResult<ZedToken> {
        self.inner.write_relationships(ctx, updates).await
    }
    async fn delete_relationships(&self, ctx: &Ctx, filter: &RelationshipFilter) -> AuthResult<ZedToken> {
        self.inner.delete_relationships(ctx, filter).await
    }
    async fn lookup_resources(
        &self,
        ctx: &Ctx,
        request: &LookupResourcesRequest,
        consistency: &Consistency,
    ) -> AuthResult<Vec<String>> {
        self.inner.lookup_resources(ctx, request, consistency).await
    }
    async fn lookup_subjects(
        &self,
        ctx: &Ctx,
        request: &LookupSubjectsRequest,
        consistency: &Consistency,
    ) -> AuthResult<Vec<LookupSubject>> {
        self.inner.lookup_subjects(ctx, request, consistency).await
    }
    async fn read_relationships(
        &self,
        ctx: &Ctx,
        filter: &RelationshipFilter,
        consistency: &Consistency,
    ) -> AuthResult<Vec<Relationship>> {
        self.inner.read_relationships(ctx, filter, consistency).await
    }
    async fn write_schema(&self, ctx: &Ctx, schema: &str) -> AuthResult<ZedToken> {
        self.inner.write_schema(ctx, schema).await
    }
    async fn read_schema(&self, ctx: &Ctx) -> AuthResult<String> {
        self.inner.read_schema(ctx).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let check = std::env::args().any(|a| a == "--check");
    let memory = MemoryStore::new();
    let store = CountingStore {
        inner: memory.clone(),
        units: Arc::default(),
    };
    let authorizer = FreezingAuthorizer {
        inner: LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::default()))?,
        frozen: None,
    };
    let identity = StaticJwtBuilder::hs256(b"example-secret-of-at-least-32-bytes!".to_vec()).build()?;
    let app = agentvoicebox::api::App::builder()
        .tenancy_store(Arc::new(store.clone()))
        .audit(Arc::new(memory.clone()), Arc::new(memory.clone()))
        .jobs(Arc::new(memory))
        .identity(Arc::new(identity.clone()))
        .authorizer(Arc::new(authorizer))
        .rate_limiter(Arc::new(MemoryRateLimiter::new()))
        .event_bus(Arc::new(MemoryEventBus::new()))
        .ephemeral_tokens(Arc::new(MemoryEphemeralTokens::new()))
        .build()?;
    let made = agentvoicebox::server::bootstrap::bootstrap(&app, &identity).await?;

    // Your application, with AgentVoiceBox nested under /avb.
    let router = axum::Router::new()
        .route(
            "/hello",
            axum::routing::get(|| async { "hello from the host application" }),
        )
        .nest_service("/avb", agentvoicebox::http_axum::router(app.clone()));
    let listener =
        tokio::net::TcpListener::bind(if check { "127.0.0.1:0" } else { "127.0.0.1:8080" }).await?;
    let addr = listener.local_addr()?;
    println!("serving on http://{addr} — /hello and /avb/api/v2/…");
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    if !check {
        server.await??;
        return Ok(());
    }
    let client = reqwest::Client::new();
    let hello = client
        .get(format!("http://{addr}/hello"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(hello, "hello from the host application");
    let me = client
        .get(format!("http://{addr}/avb/api/v2/tenants/me"))
        .bearer_auth(&made.api_key)
        .send()
        .await?;
    println!("GET /avb/api/v2/tenants/me -> {}", me.status());
    assert_eq!(me.status(), 200);
    println!(
        "units of work through the custom store: {}",
        store.units.load(Ordering::Relaxed)
    );
    assert!(store.units.load(Ordering::Relaxed) > 0);
    server.abort();
    Ok(())
}
