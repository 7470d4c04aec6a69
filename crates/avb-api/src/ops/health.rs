//! `/health`, `/health/ready`, `/metrics`.

use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use async_trait::async_trait;
use avb_core::{Ctx, ErrorCode};
use std::time::Duration;

/// Longest a single readiness probe may take before it counts as failed: an orchestrator's probe has its own
/// short timeout, and a dependency that does not answer within this is not ready in any useful sense.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// One dependency that `GET /health/ready` asks (`storage`, `redis`, …), so the server can report exactly the
/// dependencies it was configured with and name the one that fails.
///
/// Adapters are wrapped by the assembling binary; this port stays framework- and driver-free.
#[async_trait]
pub trait ReadinessCheck: Send + Sync + std::fmt::Debug + 'static {
    /// The name under `checks` in the readiness body (stable: probes and dashboards key on it).
    fn name(&self) -> &str;
    /// `Ok` when the dependency answers now; an error (usually `service_unavailable`) otherwise.
    async fn check(&self, ctx: &Ctx) -> avb_core::Result<()>;
}

/// Liveness: the process answers.
pub async fn live(_app: &App, _ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    Reply::ok(&serde_json::json!({ "status": "ok" }))
}

/// The default `storage` probe: opening (and rolling back) a read-only unit of work exercises the real path
/// requests take (pool, transaction, scope settings).
async fn probe_store(app: &App, ctx: &Ctx) -> avb_core::Result<()> {
    let uow = app
        .inner()
        .deps
        .store
        .begin(ctx, avb_tenancy::store::Access::ReadOnly)
        .await?;
    let _ = uow.rollback().await;
    Ok(())
}

/// Runs one probe within [`READINESS_TIMEOUT`].
async fn bounded(
    name: String,
    probe: futures::future::BoxFuture<'_, avb_core::Result<()>>,
) -> (String, Result<(), String>) {
    let outcome = match tokio::time::timeout(READINESS_TIMEOUT, probe).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {READINESS_TIMEOUT:?}")),
    };
    (name, outcome)
}

/// Readiness: every configured dependency answers (503 naming the failing ones otherwise).
///
/// The body always carries `status` and one entry per dependency under `checks`; a 503 also carries the error
/// envelope (`error: service_unavailable`, `details.failed`), so clients that only read the envelope see why.
/// Probes run concurrently, each bounded by [`READINESS_TIMEOUT`].
pub async fn ready(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    // Readiness is a platform question: probe as the system, not as the (anonymous) caller.
    let system = Ctx::system(ctx.request_id().clone(), "health", None);
    let extra = &app.inner().readiness;
    let builtin_storage = !extra.iter().any(|c| c.name() == "storage");
    let mut probes = Vec::with_capacity(extra.len() + 1);
    if builtin_storage {
        probes.push(bounded("storage".to_owned(), Box::pin(probe_store(app, &system))));
    }
    for check in extra {
        probes.push(bounded(check.name().to_owned(), check.check(&system)));
    }
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    for (name, outcome) in futures::future::join_all(probes).await {
        let entry = match outcome {
            Ok(()) => serde_json::json!({ "status": "ok" }),
            Err(error) => {
                tracing::warn!(request_id = %ctx.request_id(), dependency = %name, %error, "not ready");
                failed.push(name.clone());
                serde_json::json!({ "status": "error", "error": error })
            }
        };
        checks.insert(name, entry);
    }
    if failed.is_empty() {
        return Reply::ok(&serde_json::json!({ "status": "ok", "checks": checks }));
    }
    let body = serde_json::json!({
        "status": "unavailable",
        "error": ErrorCode::ServiceUnavailable,
        "message": format!("not ready: {}", failed.join(", ")),
        "details": { "failed": failed },
        "checks": checks,
    });
    Reply::with_status(503, &body)
}

/// Prometheus text exposition.
pub async fn metrics(app: &App, _ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    Ok(Reply::text(app.inner().metrics.render()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::http::{ApiRequest, Method};
    use avb_auth::adapters::local_authz::LocalAuthorizer;
    use avb_storage_memory::{
        MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore, MemoryStore,
    };
    use serde_json::{Value, json};
    use std::sync::Arc;

    /// A probe answering as told: `Some(ok)` at once, `None` never.
    #[derive(Debug)]
    struct Probe(&'static str, Option<bool>);

    #[async_trait]
    impl ReadinessCheck for Probe {
        fn name(&self) -> &str {
            self.0
        }
        async fn check(&self, _ctx: &Ctx) -> avb_core::Result<()> {
            match self.1 {
                Some(true) => Ok(()),
                Some(false) => Err(avb_core::Error::unavailable("redis", "connection refused")),
                None => std::future::pending().await,
            }
        }
    }

    async fn ready_with(checks: Vec<Probe>) -> (u16, Value) {
        let authorizer = LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::new())).unwrap();
        let mut builder = App::builder()
            .storage(MemoryStore::new())
            .authorizer(Arc::new(authorizer))
            .rate_limiter(Arc::new(MemoryRateLimiter::new()))
            .event_bus(Arc::new(MemoryEventBus::new()))
            .ephemeral_tokens(Arc::new(MemoryEphemeralTokens::new()));
        for check in checks {
            builder = builder.readiness_check(Arc::new(check));
        }
        let app = builder.build().unwrap();
        let resp = app.handle(ApiRequest::new(Method::Get, "/health/ready")).await;
        (resp.status, serde_json::from_slice(&resp.body).unwrap())
    }

    #[tokio::test]
    async fn every_registered_dependency_is_reported_beside_the_storage_probe() {
        let (status, body) = ready_with(vec![Probe("redis", Some(true))]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({ "status": "ok", "checks": { "storage": { "status": "ok" }, "redis": { "status": "ok" } } })
        );
    }

    #[tokio::test]
    async fn a_failing_dependency_is_a_503_naming_it_with_the_error_envelope() {
        let (status, body) = ready_with(vec![Probe("redis", Some(false))]).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "service_unavailable", "{body}");
        assert_eq!(body["details"]["failed"], json!(["redis"]), "{body}");
        assert_eq!(body["checks"]["redis"]["status"], "error", "{body}");
        assert_eq!(body["checks"]["storage"]["status"], "ok", "{body}");
        // The cause stays in the logs: only the code-level message is shown.
        assert!(!body.to_string().contains("connection refused"), "{body}");
    }

    #[tokio::test]
    async fn a_probe_that_never_answers_fails_after_the_readiness_timeout() {
        let (status, body) = ready_with(vec![Probe("storage", None)]).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(
            body["details"]["failed"],
            json!(["storage"]),
            "a named check replaces the built-in one"
        );
        assert_eq!(body["checks"].as_object().unwrap().len(), 1, "{body}");
    }
}
