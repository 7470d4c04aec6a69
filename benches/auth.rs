//! Authentication and authorization benchmarks (issue 3), measured side by side in one run:
//! - RS256 access-token verification by the Keycloak adapter with a warm JWKS (real OpenID provider on loopback);
//! - API-key validation on a cache hit (target ≤ 5 µs);
//! - a permission check by the local ReBAC engine over 100,000 relationships (target p99 ≤ 10 µs), beside the
//!   same check through the SpiceDB adapter against the real SpiceDB engine on loopback.
//!
//! `cargo bench --bench auth` (needs `scripts/install-peers.sh` once). Prints median, p90, p99 and spread per
//! operation, measured per call with `Instant` over many iterations after a warm-up.

// Benchmark harness code fails loudly like test code does.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use avb_auth::adapters::keycloak::KeycloakIdentityBuilder;
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::spicedb::SpiceDbAuthorizer;
use avb_auth::api_keys::{ApiKeyAuthenticator, UsageBatcher};
use avb_auth::authorizer::{
    Authorizer, CheckRequest, Consistency, ObjectRef, Relationship, RelationshipUpdate, SubjectRef,
};
use avb_auth::identity::IdentityProvider;
use avb_core::{Ctx, Principal, RequestId, SystemClock, TenantId, UserPrincipal, UuidV7Ids};
use avb_storage_memory::{MemoryRelationshipStore, MemoryStore};
use avb_tenancy::TenancyDeps;
use avb_tenancy::api_key::{ApiKeyService, CreateApiKeyRequest};
use avb_tenancy::tenant::{CreateTenantRequest, TenantService};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[idx]
    }
    fn print(&self) {
        println!(
            "{:<58} n={:>6}  median {:>9.2} µs  p90 {:>9.2} µs  p99 {:>9.2} µs  (min {:>8.2}, max {:>9.2})",
            self.name,
            self.samples.len(),
            self.pct(0.5).as_secs_f64() * 1e6,
            self.pct(0.9).as_secs_f64() * 1e6,
            self.pct(0.99).as_secs_f64() * 1e6,
            self.pct(0.0).as_secs_f64() * 1e6,
            self.pct(1.0).as_secs_f64() * 1e6,
        );
    }
}

async fn measure<F, Fut>(name: &str, warmup: usize, n: usize, mut op: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..warmup {
        op(i).await;
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        op(i).await;
        samples.push(start.elapsed());
    }
    Stats {
        name: name.to_owned(),
        samples,
    }
}

fn ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "bench", None)
}

/// 1,000 tenants × (10 role tuples + 45 project→tenant links + 45 project owners) = 100,000 relationships,
/// and 16,000 checks with their expected answers.
fn graph() -> (Vec<RelationshipUpdate>, Vec<CheckRequest>, Vec<bool>) {
    let mut updates = Vec::with_capacity(100_000);
    let mut checks = Vec::new();
    let mut expected = Vec::new();
    let roles = ["admin", "developer", "operator", "viewer", "billing"];
    for t in 0..1000u32 {
        let tenant = ObjectRef::new("tenant", format!("t{t}"));
        for u in 0..10u32 {
            let user = SubjectRef::new(ObjectRef::new("user", format!("u{t}_{u}")));
            updates.push(RelationshipUpdate::Touch(Relationship::new(
                tenant.clone(),
                roles[(u % 5) as usize],
                user,
            )));
        }
        for p in 0..45u32 {
            let project = ObjectRef::new("project", format!("p{t}_{p}"));
            updates.push(RelationshipUpdate::Touch(Relationship::new(
                project.clone(),
                "tenant",
                SubjectRef::new(tenant.clone()),
            )));
            updates.push(RelationshipUpdate::Touch(Relationship::new(
                project.clone(),
                "owner",
                SubjectRef::new(ObjectRef::new("user", format!("owner{t}_{p}"))),
            )));
            if p < 4 {
                // allowed through tenant->view, allowed as owner, denied (other tenant), denied (billing only)
                for (user, allowed) in [
                    (format!("u{t}_{}", p % 4), true),
                    (format!("owner{t}_{p}"), true),
                    (format!("u{}_{}", (t + 1) % 1000, p), false),
                    (format!("u{t}_4"), false),
                ] {
                    checks.push(CheckRequest {
                        resource: project.clone(),
                        permission: "view".into(),
                        subject: SubjectRef::new(ObjectRef::new("user", user)),
                    });
                    expected.push(allowed);
                }
            }
        }
    }
    (updates, checks, expected)
}

/// Asserts the first `n` checks answer as expected (fully consistent, so SpiceDB's caches cannot serve a
/// revision older than the writes): a fast wrong answer would be no result.
async fn verify(
    authz: &dyn Authorizer,
    ctx: &Ctx,
    checks: &[CheckRequest],
    expected: &[bool],
    n: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for (request, want) in checks.iter().zip(expected).take(n) {
        let got = authz
            .check(ctx, request, &Consistency::FullyConsistent)
            .await?
            .is_allowed();
        assert_eq!(got, *want, "{request:?}");
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    println!(
        "auth benchmarks ({} cores)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut results = Vec::new();

    // API-key validation, cache hit.
    let store = MemoryStore::new();
    let deps = TenancyDeps::new(Arc::new(store.clone()));
    let system = ctx();
    let created = TenantService::new(deps.clone())
        .create(
            &system,
            CreateTenantRequest::new("Bench", "bench", "bench@example.test", "Bench Admin"),
        )
        .await?;
    let tenant: TenantId = created.tenant.id;
    let admin_ctx = Ctx::new(
        RequestId::generate(&UuidV7Ids),
        Principal::User(UserPrincipal {
            user_id: created.admin.id,
            tenant_id: Some(tenant),
            email: created.admin.email.clone(),
            roles: created.admin.roles.clone(),
            external_id: None,
        }),
    )
    .with_tenant(Some(tenant));
    let keys = ApiKeyService::new(deps.clone());
    let request: CreateApiKeyRequest = serde_json::from_value(
        serde_json::json!({"name": "bench", "description": "", "scopes": ["realtime"]}),
    )?;
    let secret = keys.create(&admin_ctx, request).await?.secret.expose().to_owned();
    let auth = ApiKeyAuthenticator::new(keys.clone(), Arc::new(SystemClock), UsageBatcher::new(keys));
    let anon = Ctx::new(RequestId::generate(&UuidV7Ids), Principal::Anonymous);
    results.push(
        measure("api key validation, cache hit", 10_000, 200_000, |_| {
            let fut = auth.authenticate(&anon, &secret, None);
            async move {
                fut.await.expect("valid key");
            }
        })
        .await,
    );

    // Local ReBAC engine over 100,000 relationships.
    let (updates, checks, expected) = graph();
    let local = LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::default()))?;
    for chunk in updates.chunks(1000) {
        local.write_relationships(&system, chunk).await?;
    }
    verify(&local, &system, &checks, &expected, checks.len()).await?;
    let consistency = Consistency::MinimizeLatency;
    results.push(
        measure(
            "local authorizer check, 100k relationships",
            2_000,
            100_000,
            |i| {
                let request = &checks[i % checks.len()];
                let fut = local.check(&system, request, &consistency);
                async move {
                    fut.await.expect("check");
                }
            },
        )
        .await,
    );

    // The same checks through the SpiceDB adapter against the real engine.
    match avb_testkit::peers::spicedb::start_spicedb().await {
        Ok(peer) => {
            let spicedb =
                SpiceDbAuthorizer::builder(format!("http://{}", peer.endpoint), peer.preshared_key.clone())
                    .insecure(true)
                    .build()?;
            spicedb.sync_schema(&system).await?;
            for chunk in updates.chunks(1000) {
                spicedb.write_relationships(&system, chunk).await?;
            }
            // A sample: each check through this peer takes milliseconds.
            verify(&spicedb, &system, &checks, &expected, 100).await?;
            results.push(
                measure("spicedb adapter check (real engine, loopback)", 200, 3_000, |i| {
                    let request = &checks[i % checks.len()];
                    let fut = spicedb.check(&system, request, &consistency);
                    async move {
                        fut.await.expect("check");
                    }
                })
                .await,
            );
        }
        Err(err) => println!("SpiceDB peer not started ({err}); its row is missing from this run\n"),
    }

    // RS256 verification with a warm JWKS (Keycloak stand-in on loopback).
    match avb_testkit::peers::keycloak::start_keycloak().await {
        Ok(peer) => {
            let identity = KeycloakIdentityBuilder::new(&peer.base_url, &peer.realm, "avb-api").build()?;
            let token = peer.mint_token(serde_json::json!({})).await?.token;
            results.push(
                measure("RS256 token verification, warm JWKS", 200, 20_000, |_| {
                    let fut = identity.verify(&anon, &token);
                    async move {
                        fut.await.expect("token");
                    }
                })
                .await,
            );
        }
        Err(err) => println!("Keycloak stand-in not started ({err}); its row is missing from this run\n"),
    }

    for r in &results {
        r.print();
    }
    Ok(())
}
