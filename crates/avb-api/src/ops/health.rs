//! `/health`, `/health/ready`, `/metrics`.

use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use avb_core::Ctx;

/// Liveness: the process answers.
pub async fn live(_app: &App, _ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    Reply::ok(&serde_json::json!({ "status": "ok" }))
}

/// Readiness: every configured dependency answers (503 naming the failing one otherwise).
pub async fn ready(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    let mut checks = serde_json::Map::new();
    let mut healthy = true;
    // Readiness is a platform question: probe storage as the system, not as the (anonymous) caller.
    let system = Ctx::system(ctx.request_id().clone(), "health", None);
    let store = app
        .inner()
        .deps
        .store
        .begin(&system, avb_tenancy::store::Access::ReadOnly)
        .await;
    match store {
        Ok(uow) => {
            let _ = uow.rollback().await;
            checks.insert("storage".into(), serde_json::json!({ "status": "ok" }));
        }
        Err(err) => {
            healthy = false;
            checks.insert(
                "storage".into(),
                serde_json::json!({ "status": "error", "error": err.to_string() }),
            );
        }
    }
    let body = serde_json::json!({ "status": if healthy { "ok" } else { "unavailable" }, "checks": checks });
    Reply::with_status(if healthy { 200 } else { 503 }, &body)
}

/// Prometheus text exposition.
pub async fn metrics(app: &App, _ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    Ok(Reply::text(app.inner().metrics.render()))
}
