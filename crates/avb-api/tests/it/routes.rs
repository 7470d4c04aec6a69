//! The route table is fully mounted.

use crate::support::{World, unknown_id};
use avb_api::routes::Access;

/// Every route in `routes()` is matched by the pipeline: whatever the answer (even 404 for an unknown id), it is
/// never the router's "No such route" nor `method_not_allowed`.
#[tokio::test]
async fn every_route_in_the_table_is_reachable() {
    let world = World::new().await;
    let routes = avb_api::routes::routes();
    assert_eq!(world.app.routes().len(), routes.len());
    for route in routes {
        let path = route.path.replace("{id}", &unknown_id());
        let token = match route.access {
            Access::Sysadmin => world.sysadmin.clone(),
            Access::Public | Access::Authenticated | Access::Tenant => world.a.admin.token.clone(),
        };
        let body = matches!(
            route.method,
            avb_api::Method::Post | avb_api::Method::Put | avb_api::Method::Patch
        )
        .then(|| serde_json::json!({}));
        let resp = world.call(&token, route.method, &path, body).await;
        assert_ne!(
            resp.code(),
            "method_not_allowed",
            "{} {}: {}",
            route.method.as_str(),
            route.path,
            resp.body
        );
        assert_ne!(
            resp.body["message"].as_str(),
            Some("No such route"),
            "{} {} is not mounted",
            route.method.as_str(),
            route.path
        );
        assert!(
            resp.status < 500,
            "{} {} failed: {}",
            route.method.as_str(),
            route.path,
            resp.body
        );
        assert_eq!(
            resp.raw.header("x-content-type-options"),
            Some("nosniff"),
            "security headers on every answer"
        );
    }
}

/// Operation ids are unique (they name metrics and OpenAPI operations).
#[test]
fn operation_ids_are_unique() {
    let routes = avb_api::routes::routes();
    let mut ops: Vec<&str> = routes.iter().map(|r| r.operation).collect();
    ops.sort_unstable();
    let before = ops.len();
    ops.dedup();
    assert_eq!(ops.len(), before);
}
