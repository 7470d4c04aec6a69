//! HTTP load harness (issues 4 and 5): `GET /api/v2/tenants/me` authenticated by API key through the full
//! pipeline, with in-memory storage and with the PostgreSQL + Redis adapters, beside a bare axum handler returning
//! a constant — measured in the same run on the same machine with the same client: 32 keep-alive connections,
//! each sending requests back to back for a fixed time.
//!
//! `cargo bench --bench http` — prints req/s and p50/p99 latency for each and the ratios to bare, against the
//! targets (memory pipeline ≥ 50 % of bare with p99 ≤ 5 ms; PostgreSQL + Redis ≥ 30 % with p99 ≤ 10 ms). The load
//! generator shares the machine's cores with the server, as a co-located client would; compare ratios, not
//! absolutes.
//!
//! The PostgreSQL + Redis run uses the machine's services (`AVB_BENCH_DATABASE_ADMIN_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, where a fresh database is created and dropped; `REDIS_URL`,
//! default `redis://127.0.0.1:6379/0`, under a unique key prefix that is deleted afterwards).
//! `AVB_BENCH_SECONDS` shortens the measurement (smoke runs); `AVB_BENCH_SKIP_BACKENDS=1` measures memory only;
//! `AVB_BENCH_DB_HEALTH_CHECKS=false` turns off the pool's check of idle connections (to measure its cost).
//!
//! Throughput needs a quiet machine; `cargo bench --bench http_allocs` counts the heap allocations of the same
//! request through `App::handle` and each adapter instead, a figure that does not depend on load.

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

/// Seconds per measured run (`AVB_BENCH_SECONDS`, default 10).
fn measure() -> Duration {
    std::env::var("AVB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(MEASURE, Duration::from_secs_f64)
}

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
            "{:<50} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
            self.name,
            self.rps(),
            self.pct(0.5).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3,
            self.errors
        );
    }

    /// This run against its targets, relative to `bare`.
    fn judge(&self, bare: &Run, min_ratio: f64, max_p99: Duration) {
        let ratio = self.rps() / bare.rps();
        let p99 = self.pct(0.99);
        let verdict = if ratio >= min_ratio && p99 <= max_p99 && self.errors == 0 {
            "meets"
        } else {
            "MISSES"
        };
        println!(
            "{:<50} {:>5.1}% of bare (target ≥ {:.0}%), p99 {:.2} ms (target ≤ {} ms): {verdict}",
            self.name,
            100.0 * ratio,
            100.0 * min_ratio,
            p99.as_secs_f64() * 1e3,
            max_p99.as_millis()
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

/// A database and Redis key prefix of this run, removed on drop.
struct Backends {
    admin_url: String,
    database: String,
    redis_url: String,
    prefix: String,
}

impl Backends {
    fn create() -> Self {
        let admin_url = std::env::var("AVB_BENCH_DATABASE_ADMIN_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        // A fresh name per run: the process id and a random number (std's randomly keyed hasher; no clock).
        let random = {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                % 1_000_000_000
        };
        let suffix = format!("{}_{random}", std::process::id());
        let database = format!("avb_bench_{suffix}");
        psql(&admin_url, &format!("CREATE DATABASE {database}"));
        Self {
            admin_url,
            database,
            redis_url,
            prefix: format!("avb-bench-{suffix}"),
        }
    }

    fn database_url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.database)
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
        );
        let script = "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0";
        let _ = std::process::Command::new("redis-cli")
            .args([
                "-u",
                &self.redis_url,
                "EVAL",
                script,
                "0",
                &format!("{}:*", self.prefix),
            ])
            .output();
    }
}

fn psql(url: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Assembles and serves the app `config` describes; returns its address and the demo API key.
async fn serve(
    config: &avb_server::ServerConfig,
) -> Result<(SocketAddr, String), Box<dyn std::error::Error + Send + Sync>> {
    let assembled = avb_server::assemble(config).await?;
    let identity = assembled.dev_identity.clone().ok_or("static identity")?;
    let made = avb_server::bootstrap::bootstrap(&assembled.app, &identity).await?;
    let listener = avb_http_axum::bind("127.0.0.1:0".parse()?)?;
    let addr = listener.local_addr()?;
    let app = assembled.app.clone();
    tokio::spawn(async move { avb_http_axum::serve(listener, app, std::future::pending()).await });
    Ok((addr, made.api_key))
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
    config.rate_limit_api_key_per_minute = Some(1_000_000);
    config.rate_limit_api_key_per_hour = Some(1_000_000);
    let (memory_addr, memory_key) = serve(&config).await?;

    let backends = std::env::var("AVB_BENCH_SKIP_BACKENDS")
        .map_or(true, |v| v.is_empty())
        .then(Backends::create);
    let durable = match &backends {
        Some(backends) => {
            let mut durable = config.clone();
            durable.database_url = serde_json::from_value(backends.database_url().into())?;
            durable.redis_url = serde_json::from_value(backends.redis_url.clone().into())?;
            durable.avb_redis_key_prefix.clone_from(&backends.prefix);
            // One pool per replica sized for the 32 connections of this run.
            durable.db_pool_size = Some(32);
            if let Ok(v) = std::env::var("AVB_BENCH_DB_HEALTH_CHECKS") {
                durable.db_health_checks = v != "false";
            }
            Some(serve(&durable).await?)
        }
        None => None,
    };
    let bare_addr = bare_server().await;

    let bare_url = format!("http://{bare_addr}/constant");
    let memory_url = format!("http://{memory_addr}/api/v2/tenants/me");
    println!("warming up…");
    load("warmup", bare_url.clone(), None, WARMUP).await;
    load("warmup", memory_url.clone(), Some(memory_key.clone()), WARMUP).await;
    if let Some((addr, key)) = &durable {
        load(
            "warmup",
            format!("http://{addr}/api/v2/tenants/me"),
            Some(key.clone()),
            WARMUP,
        )
        .await;
    }

    let duration = measure();
    println!(
        "{CONNECTIONS} connections, {:.1} s each, same process and client\n",
        duration.as_secs_f64()
    );
    let bare = load("bare axum handler (constant)", bare_url, None, duration).await;
    let memory = load(
        "GET /api/v2/tenants/me (API key, memory)",
        memory_url,
        Some(memory_key),
        duration,
    )
    .await;
    let backed = match &durable {
        Some((addr, key)) => Some(
            load(
                "GET /api/v2/tenants/me (API key, PostgreSQL+Redis)",
                format!("http://{addr}/api/v2/tenants/me"),
                Some(key.clone()),
                duration,
            )
            .await,
        ),
        None => None,
    };
    bare.print();
    memory.print();
    if let Some(run) = &backed {
        run.print();
    }
    println!();
    memory.judge(&bare, 0.5, Duration::from_millis(5));
    if let Some(run) = &backed {
        run.judge(&bare, 0.3, Duration::from_millis(10));
    }
    drop(backends);
    Ok(())
}
