//! HTTP load harness (issue 4): `GET /api/v2/tenants/me` authenticated by API key through the full pipeline with
//! in-memory storage, beside a bare axum handler returning a constant, measured in the same run on the same
//! machine with the same client: 32 keep-alive connections, each sending requests back to back for a fixed time.
//!
//! `cargo bench --bench http` — prints req/s and p50/p99 latency for both and their ratio. The load generator
//! shares the machine's cores with the server, as a co-located client would; compare ratios, not absolutes.

// Benchmark harness code fails loudly like test code does.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 32;
const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);

struct Run {
    name: &'static str,
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

impl Run {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
    }
    fn print(&self) {
        println!(
            "{:<44} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
            self.name,
            self.rps(),
            self.pct(0.5).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3,
            self.errors
        );
    }
}

async fn load(name: &'static str, url: String, auth: Option<String>, duration: Duration) -> Run {
    let url = Arc::new(url);
    let auth = Arc::new(auth);
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (url, auth) = (url.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            // One client per task with one idle connection: 32 keep-alive connections in all.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let mut req = client.get(url.as_str());
                if let Some(a) = auth.as_ref() {
                    req = req.bearer_auth(a);
                }
                let start = Instant::now();
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        latencies.push(start.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        latencies.extend(l);
        errors += e;
    }
    Run {
        name,
        requests: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
        errors,
    }
}

async fn bare_server() -> SocketAddr {
    let router = axum::Router::new().route("/constant", axum::routing::get(|| async { "{\"ok\":true}" }));
    let listener = avb_http_axum::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Rate limits would stop a load test after 120 requests: raise them for this run only.
    let mut config = avb_server::ServerConfig::defaults()?;
    config.rate_limit_api_key_per_minute = Some(u32::MAX / 2);
    config.rate_limit_api_key_per_hour = Some(u32::MAX / 2);
    let assembled = avb_server::assemble(&config).await?;
    let identity = assembled.dev_identity.clone().ok_or("static identity")?;
    let made = avb_server::bootstrap::bootstrap(&assembled.app, &identity).await?;
    let listener = avb_http_axum::bind("127.0.0.1:0".parse()?)?;
    let avb_addr = listener.local_addr()?;
    let app = assembled.app.clone();
    tokio::spawn(async move { avb_http_axum::serve(listener, app, std::future::pending()).await });
    let bare_addr = bare_server().await;

    let pipeline_url = format!("http://{avb_addr}/api/v2/tenants/me");
    let bare_url = format!("http://{bare_addr}/constant");
    println!("warming up…");
    load("warmup", bare_url.clone(), None, WARMUP).await;
    load("warmup", pipeline_url.clone(), Some(made.api_key.clone()), WARMUP).await;

    println!(
        "{CONNECTIONS} connections, {} s each, same process and client\n",
        MEASURE.as_secs()
    );
    let bare = load("bare axum handler (constant)", bare_url, None, MEASURE).await;
    let full = load(
        "GET /api/v2/tenants/me (API key, memory)",
        pipeline_url,
        Some(made.api_key),
        MEASURE,
    )
    .await;
    bare.print();
    full.print();
    println!(
        "\nfull pipeline / bare throughput: {:.1}%",
        100.0 * full.rps() / bare.rps()
    );
    Ok(())
}
