//! Heap allocations per REST request (issues 4 and 5): the request `cargo bench --bench http` sends —
//! `GET /api/v2/tenants/me` with an API key, in-memory storage, rate limits raised — driven in-process through
//! (a) [`avb_api::App::handle`] directly, (b) the axum router (`tower::ServiceExt::oneshot`, the adapter's request
//! and response conversion included) and (c) the actix-web service (`actix_web::test::call_service`).
//!
//! `cargo bench --bench http_allocs` — prints allocations (`alloc` + `realloc` calls) and bytes allocated per
//! request, averaged over `AVB_BENCH_REQUESTS` requests (default 20,000) after a warm-up. A counting global
//! allocator (`stats_alloc`) wraps the system one and everything runs on one thread, so the figures are
//! deterministic up to the odd background timer: unlike throughput, they can be compared across machines and
//! under load. Building the requests happens outside the counted region; converting and answering them inside.
//! The wall time printed beside them is a rough in-process figure (debug or release, whatever was built), noisy on
//! a shared machine.

// Benchmark harness code fails loudly like test code does.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::time::Instant;
use tower::ServiceExt as _;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PATH: &str = "/api/v2/tenants/me";
/// What reqwest sends besides the credential (`accept: */*` and the host).
const HOST: &str = "127.0.0.1:8000";
const WARMUP: usize = 2_000;

fn requests() -> usize {
    std::env::var("AVB_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

/// Counts what `run` allocates for `n` requests and prints it per request.
async fn measure<T, F, Fut>(name: &str, inputs: Vec<T>, mut run: F)
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let n = inputs.len();
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    for input in inputs {
        run(input).await;
    }
    let elapsed = started.elapsed();
    let stats = region.change();
    let per = |x: usize| x as f64 / n as f64;
    println!(
        "{name:<34} {:>7.2} allocs/req ({:>6.2} alloc + {:>5.2} realloc)  {:>8.1} bytes/req   {:>7.2} µs/req",
        per(stats.allocations + stats.reallocations),
        per(stats.allocations),
        per(stats.reallocations),
        per(stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize),
        elapsed.as_secs_f64() * 1e6 / n as f64,
    );
}

fn api_request(key: &str) -> avb_api::ApiRequest {
    avb_api::ApiRequest::new(avb_api::Method::Get, PATH)
        .header("accept", "*/*")
        .header("host", HOST)
        .header("authorization", format!("Bearer {key}"))
}

fn axum_request(key: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(PATH)
        .header("accept", "*/*")
        .header("host", HOST)
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .unwrap()
}

fn actix_request(key: &str) -> actix_web::test::TestRequest {
    actix_web::test::TestRequest::get()
        .uri(PATH)
        .insert_header(("accept", "*/*"))
        .insert_header(("host", HOST))
        .insert_header(("authorization", format!("Bearer {key}")))
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // As in benches/http.rs: rate limits would stop the run after 120 requests.
    let mut config = avb_server::ServerConfig::defaults()?;
    config.rate_limit_api_key_per_minute = Some(1_000_000_000);
    config.rate_limit_api_key_per_hour = Some(1_000_000_000);
    let assembled = avb_server::assemble(&config).await?;
    let identity = assembled.dev_identity.clone().ok_or("static identity")?;
    let made = avb_server::bootstrap::bootstrap(&assembled.app, &identity).await?;
    let app = assembled.app.clone();
    let key = made.api_key;
    let n = requests();

    // The answer every path must give.
    let probe = app.handle(api_request(&key)).await;
    assert_eq!(probe.status, 200, "{}", String::from_utf8_lossy(&probe.body));

    let router = avb_http_axum::router(app.clone());
    let actix = actix_web::test::init_service(
        actix_web::App::new().configure(avb_http_actix::configure(app.clone())),
    )
    .await;
    let response = actix_web::test::call_service(&actix, actix_request(&key).to_request()).await;
    assert_eq!(response.status(), 200);
    let response = router.clone().oneshot(axum_request(&key)).await?;
    assert_eq!(response.status(), 200);

    println!("GET {PATH} (API key, memory), {n} requests after {WARMUP} warm-up, one thread\n");
    for _ in 0..WARMUP {
        let response = app.handle(api_request(&key)).await;
        assert_eq!(response.status, 200);
        let response = router.clone().oneshot(axum_request(&key)).await?;
        assert_eq!(response.status(), 200);
        let response = actix_web::test::call_service(&actix, actix_request(&key).to_request()).await;
        assert_eq!(response.status(), 200);
    }

    let inputs: Vec<_> = (0..n).map(|_| api_request(&key)).collect();
    measure("App::handle", inputs, |req| {
        let app = &app;
        async move {
            let response = app.handle(req).await;
            assert_eq!(response.status, 200);
        }
    })
    .await;

    let inputs: Vec<_> = (0..n).map(|_| axum_request(&key)).collect();
    measure("axum router (oneshot)", inputs, |req| {
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await.unwrap();
            assert_eq!(response.status(), 200);
        }
    })
    .await;

    let inputs: Vec<_> = (0..n).map(|_| actix_request(&key).to_request()).collect();
    measure("actix service (test::call)", inputs, |req| {
        let actix = &actix;
        async move {
            let response = actix_web::test::call_service(actix, req).await;
            assert_eq!(response.status(), 200);
        }
    })
    .await;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One thread (actix's services are not `Send`): every allocation counted is this request's or a timer's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio::task::LocalSet::new().block_on(&runtime, run())
}
