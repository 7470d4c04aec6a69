//! In-process tests of the actix adapter (`actix_web::test::init_service`, no socket): it hands the pipeline the
//! method, full path, query, headers, body and peer address, and sends back status, headers and body unchanged.
//! Behaviour over real sockets, identical to axum, is `avb-testkit`'s black-box suite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actix_web::test::{self, TestRequest};
use avb_api::{App, AppConfig, RateLimits, SECURITY_HEADERS};
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::static_jwt::{DevTokenRequest, StaticJwtBuilder, StaticJwtIdentity};
use avb_core::Role;
use avb_core::rate_limit::RateLimitPolicy;
use avb_storage_memory::{
    MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore, MemoryStore,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

const MAX_BODY: usize = 4096;

fn app(anonymous_per_minute: u32) -> (App, StaticJwtIdentity) {
    let jwt = StaticJwtBuilder::hs256("actix-adapter-test-secret-of-32-bytes!!")
        .build()
        .unwrap();
    let mut config = AppConfig::default();
    config.max_body_bytes = MAX_BODY;
    let lots = RateLimitPolicy {
        per_minute: 100_000,
        per_hour: 1_000_000,
    };
    config.rate_limits = RateLimits {
        anonymous: RateLimitPolicy {
            per_minute: anonymous_per_minute,
            per_hour: 1_000_000,
        },
        standard: lots,
        elevated: lots,
    };
    let app = App::builder()
        .storage(MemoryStore::new())
        .identity(Arc::new(jwt.clone()))
        .authorizer(Arc::new(
            LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::new())).unwrap(),
        ))
        .rate_limiter(Arc::new(MemoryRateLimiter::new()))
        .event_bus(Arc::new(MemoryEventBus::new()))
        .ephemeral_tokens(Arc::new(MemoryEphemeralTokens::new()))
        .config(config)
        .build()
        .unwrap();
    (app, jwt)
}

fn sysadmin_token(jwt: &StaticJwtIdentity) -> String {
    jwt.mint(&DevTokenRequest {
        subject: "root".into(),
        email: "root@platform.test".into(),
        first_name: "Root".into(),
        last_name: "Admin".into(),
        roles: vec![Role::Sysadmin],
        tenant_id: None,
        ttl_secs: 600,
    })
    .unwrap()
}

/// The adapter mounted in an actix test service (a macro: the service's type is unnameable).
macro_rules! service {
    ($app:expr) => {
        test::init_service(actix_web::App::new().configure(avb_http_actix::configure($app))).await
    };
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

#[tokio::test]
async fn every_route_of_the_table_is_mounted() {
    let (app, _) = app(100_000);
    let routes: Vec<_> = app.routes().iter().map(|r| (r.method, r.path)).collect();
    assert!(!routes.is_empty());
    let svc = service!(app);
    for (method, template) in routes {
        let path = template.replace("{id}", "0190b6a2-7c4e-7000-8000-000000000001");
        let req = TestRequest::default()
            .method(actix_web::http::Method::from_bytes(method.as_str().as_bytes()).unwrap())
            .uri(&path)
            .to_request();
        let res = test::call_service(&svc, req).await;
        let status = res.status().as_u16();
        let body = json(&test::read_body(res).await);
        assert_ne!(status, 405, "{} {path} not mounted: {body}", method.as_str());
        assert!(
            !(status == 404 && body["message"] == "No such route"),
            "{} {path} not mounted: {body}",
            method.as_str()
        );
    }
}

#[tokio::test]
async fn response_status_headers_and_body_come_from_the_pipeline() {
    let (app, _) = app(100_000);
    let svc = service!(app);
    let req = TestRequest::get()
        .uri("/health")
        .insert_header(("x-request-id", "actix-req-1"))
        .to_request();
    let res = test::call_service(&svc, req).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers().get("x-request-id").unwrap(), "actix-req-1");
    assert_eq!(res.headers().get("content-type").unwrap(), "application/json");
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(res.headers().get(*name).unwrap(), *value, "{name}");
    }
    assert_eq!(json(&test::read_body(res).await)["status"], "ok");
}

#[tokio::test]
async fn unknown_paths_get_the_pipelines_not_found_envelope() {
    let (app, _) = app(100_000);
    let svc = service!(app);
    let res = test::call_service(&svc, TestRequest::get().uri("/nope/deeper").to_request()).await;
    assert_eq!(res.status().as_u16(), 404);
    assert!(res.headers().contains_key("x-frame-options"));
    assert_eq!(json(&test::read_body(res).await)["error"], "not_found");
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_payload_too_large() {
    let (app, _) = app(100_000);
    let svc = service!(app);
    let req = TestRequest::post()
        .uri("/api/v2/projects")
        .insert_header(("content-type", "application/json"))
        .set_payload(vec![b' '; MAX_BODY + 1])
        .to_request();
    let res = test::call_service(&svc, req).await;
    assert_eq!(res.status().as_u16(), 413);
    let body = json(&test::read_body(res).await);
    assert_eq!(body["error"], "payload_too_large");
    assert_eq!(body["details"]["max_bytes"], MAX_BODY);
}

#[tokio::test]
async fn a_body_at_the_limit_reaches_the_pipeline() {
    let (app, _) = app(100_000);
    let svc = service!(app);
    // Anonymous: the body passes the size check, then authentication refuses the caller.
    let req = TestRequest::post()
        .uri("/api/v2/projects")
        .insert_header(("content-type", "application/json"))
        .set_payload(vec![b' '; MAX_BODY])
        .to_request();
    let res = test::call_service(&svc, req).await;
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(
        json(&test::read_body(res).await)["error"],
        "authentication_failed"
    );
}

#[tokio::test]
async fn query_string_and_authorization_header_are_handed_over() {
    let (app, jwt) = app(100_000);
    let token = sysadmin_token(&jwt);
    let svc = service!(app);
    let call = |query: &str| {
        TestRequest::get()
            .uri(&format!("/api/v2/admin/tenants?{query}"))
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request()
    };
    let ok = test::call_service(&svc, call("limit=5")).await;
    assert_eq!(ok.status().as_u16(), 200);
    let bad = test::call_service(&svc, call("limit=0")).await;
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(json(&test::read_body(bad).await)["error"], "validation_error");
}

#[tokio::test]
async fn the_peer_address_keys_anonymous_rate_limits() {
    let (app, _) = app(1);
    let svc = service!(app);
    let from = |peer: &str| {
        TestRequest::get()
            .uri("/api/v2/tenants/me")
            .peer_addr(peer.parse::<SocketAddr>().unwrap())
            .to_request()
    };
    let first = test::call_service(&svc, from("10.0.0.1:5000")).await;
    assert_eq!(first.status().as_u16(), 401);
    assert_eq!(first.headers().get("x-ratelimit-limit").unwrap(), "1");
    let again = test::call_service(&svc, from("10.0.0.1:5001")).await;
    assert_eq!(again.status().as_u16(), 429);
    let other = test::call_service(&svc, from("10.0.0.2:5000")).await;
    assert_eq!(other.status().as_u16(), 401, "another IP has its own budget");
}

#[tokio::test]
async fn head_requests_are_answered_without_a_body() {
    let (app, _) = app(100_000);
    let svc = service!(app);
    let req = TestRequest::default()
        .method(actix_web::http::Method::HEAD)
        .uri("/health")
        .to_request();
    let res = test::call_service(&svc, req).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(test::read_body(res).await.is_empty());
}

#[tokio::test]
async fn bind_listens_on_the_requested_address() {
    let listener = avb_http_actix::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
}

#[tokio::test]
async fn serve_answers_over_a_socket_and_stops_gracefully() {
    let (app, _) = app(100_000);
    let listener = avb_http_actix::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(avb_http_actix::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-content-type-options: nosniff"), "{answer}");
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
}
