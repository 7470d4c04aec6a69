//! Scale-out and fault tests of the real binary: several `avb-server` processes sharing one PostgreSQL and one
//! Redis, and outages of each backend under traffic.
//!
//! Every test gets a fresh database (`CREATE DATABASE`) and its own Redis key prefix on the machine's shared
//! services, or private instances where it stops them; all are removed at the end. The tests run one at a
//! time (each starts several servers; timing-sensitive assertions on a 2-core machine need the cores).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod backends;

use backends::{
    Database, PrivatePostgres, PrivateRedis, RedisPrefix, Replica, SHARED_REDIS_URL, query, replica_env, set,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One scale-out test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET` with a bearer credential (none when `bearer` is empty).
async fn get(base: &str, path: &str, bearer: &str) -> (u16, Value) {
    let mut req = client().get(format!("{base}{path}"));
    if !bearer.is_empty() {
        req = req.bearer_auth(bearer);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(base: &str, path: &str, bearer: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{base}{path}"))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Starts the replica that bootstraps the demo tenant (the others start with `AVB_BOOTSTRAP=false`).
async fn first_replica(mut env: Vec<(&'static str, String)>) -> Replica {
    set(&mut env, "AVB_BOOTSTRAP", "true");
    Replica::start(&env).await
}

async fn ready(base: &str) -> (u16, Value) {
    get(base, "/health/ready", "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_created_on_one_replica_authenticates_on_the_others() {
    let _serial = SERIAL.lock().await;
    let db = Database::create();
    let prefix = RedisPrefix::new();
    let env = replica_env(&db.url(), Some((SHARED_REDIS_URL, &prefix.prefix)));
    let a = first_replica(env.clone()).await;
    let b = Replica::start(&env).await;
    let c = Replica::start(&env).await;

    for replica in [&a, &b, &c] {
        let (status, body) = ready(&replica.base).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["storage"]["status"], "ok", "{body}");
        assert_eq!(body["checks"]["redis"]["status"], "ok", "{body}");
    }

    let admin = a.banner("admin token:");
    let (status, created) = post(
        &a.base,
        "/api/v2/api-keys",
        &admin,
        json!({ "name": "made on A", "scopes": ["admin"] }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"]
        .as_str()
        .expect("the secret is in `key`")
        .to_owned();
    let tenant = created["tenant_id"].clone();

    for replica in [&b, &c] {
        let (status, me) = get(&replica.base, "/api/v2/tenants/me", &key).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["id"], tenant, "{me}");
    }

    // Revocation is shared state too: a key revoked on A before B ever saw it is refused by B.
    let (status, second) = post(
        &a.base,
        "/api/v2/api-keys",
        &admin,
        json!({ "name": "revoked on A", "scopes": ["admin"] }),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    let id = second["id"].as_str().unwrap();
    let (status, body) = post(
        &a.base,
        &format!("/api/v2/api-keys/{id}/revoke"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&b.base, "/api/v2/tenants/me", second["key"].as_str().unwrap()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "authentication_failed", "{body}");
}

/// Polls `GET /tenants/me` on `base` with `key` until the answer's `error` is `code`; how long that took.
async fn refused_within(base: &str, key: &str, code: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = get(base, "/api/v2/tenants/me", key).await;
        if body["error"] == code {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still {status} {body} after {limit:?}, expected {code}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_or_a_tenant_suspended_on_one_replica_is_refused_by_another_that_cached_it() {
    let _serial = SERIAL.lock().await;
    let db = Database::create();
    let prefix = RedisPrefix::new();
    let env = replica_env(&db.url(), Some((SHARED_REDIS_URL, &prefix.prefix)));
    let a = first_replica(env.clone()).await;
    let b = Replica::start(&env).await;
    let admin = a.banner("admin token:");
    let sysadmin = a.banner("sysadmin token:");
    let demo_key = a.banner("api key:");
    let limit = Duration::from_secs(1);

    // B validates (and caches) a key made on A, then A revokes it: B refuses it within a second, not after
    // its 30 s cache entry ends.
    let (status, created) = post(
        &a.base,
        "/api/v2/api-keys",
        &admin,
        json!({ "name": "cached on B", "scopes": ["admin"] }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let tenant = created["tenant_id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let (status, me) = get(&b.base, "/api/v2/tenants/me", &key).await;
        assert_eq!(status, 200, "{me}");
    }
    let id = created["id"].as_str().unwrap();
    let (status, body) = post(
        &a.base,
        &format!("/api/v2/api-keys/{id}/revoke"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let took = refused_within(&b.base, &key, "authentication_failed", limit).await;
    eprintln!("revoked key refused by B after {took:?}");

    // B serves the tenant from its cache; A suspends it: B refuses within a second, and serves it again
    // within a second of A activating it.
    let (status, me) = get(&b.base, "/api/v2/tenants/me", &demo_key).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["status"], "active", "{me}");
    let (status, body) = post(
        &a.base,
        &format!("/api/v2/admin/tenants/{tenant}/suspend"),
        &sysadmin,
        json!({ "reason": "scale-out test" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let took = refused_within(&b.base, &demo_key, "tenant_suspended", limit).await;
    eprintln!("suspended tenant refused by B after {took:?}");
    let (status, body) = post(
        &a.base,
        &format!("/api/v2/admin/tenants/{tenant}/activate"),
        &sysadmin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let started = Instant::now();
    loop {
        let (status, me) = get(&b.base, "/api/v2/tenants/me", &demo_key).await;
        if status == 200 {
            assert_eq!(me["status"], "active", "{me}");
            break;
        }
        assert!(started.elapsed() < limit, "still {status} {me} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_counted_across_replicas() {
    let _serial = SERIAL.lock().await;
    let db = Database::create();
    let prefix = RedisPrefix::new();
    let mut env = replica_env(&db.url(), Some((SHARED_REDIS_URL, &prefix.prefix)));
    set(&mut env, "RATE_LIMIT_API_KEY_PER_MINUTE", "5");
    let a = first_replica(env.clone()).await;
    let b = Replica::start(&env).await;
    let key = a.banner("api key:");

    // Ten requests alternating between the replicas: per-process counters would allow all ten (five each).
    let started = Instant::now();
    let mut allowed = 0;
    let mut refused = Vec::new();
    for i in 0..10 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let resp = client()
            .get(format!("{base}/api/v2/tenants/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => allowed += 1,
            429 => {
                assert!(resp.headers().contains_key("retry-after"));
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["error"], "rate_limit_exceeded", "{body}");
                refused.push(i);
            }
            other => panic!(
                "unexpected status {other}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }
    // GCRA refills one request per 12 s at 5/minute: within that, exactly the burst of five gets through.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "too slow to judge the count"
    );
    assert_eq!(allowed, 5, "refused requests: {refused:?}");
    assert_eq!(refused, vec![5, 6, 7, 8, 9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_with_sigkill_loses_no_committed_data() {
    let _serial = SERIAL.lock().await;
    let db = Database::create();
    let prefix = RedisPrefix::new();
    let env = replica_env(&db.url(), Some((SHARED_REDIS_URL, &prefix.prefix)));
    let mut a = first_replica(env.clone()).await;
    let b = Replica::start(&env).await;
    let sysadmin = a.banner("sysadmin token:");
    // The sysadmin's first request provisions its user record; do it alone, not in the concurrent burst below
    // (concurrent first requests of one identity race to link it: see the report).
    let (status, body) = get(&a.base, "/api/v2/admin/tenants", &sysadmin).await;
    assert_eq!(status, 200, "{body}");

    // Writers keep creating tenants on A (each: tenant, admin user, audit records, outbox jobs in one unit of
    // work) while A is killed; every creation A acknowledged must be complete on B.
    let acknowledged = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<Value>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (base, token, acknowledged) = (a.base.clone(), sysadmin.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..1000 {
                let slug = format!("kill-{w}-{i}");
                let body = json!({
                    "name": format!("Kill test {w} {i}"), "slug": slug,
                    "admin_email": format!("{slug}@example.com"), "admin_name": "Kill Test",
                });
                match client()
                    .post(format!("{base}/api/v2/admin/tenants"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(resp) if resp.status().as_u16() == 201 => {
                        if let Ok(created) = resp.json::<Value>().await {
                            acknowledged.lock().await.push(created);
                        }
                    }
                    Ok(resp) => panic!("creation refused: {}", resp.text().await.unwrap_or_default()),
                    Err(_) => return, // A is gone
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().await.len() < 12 {
        assert!(
            Instant::now() < deadline,
            "A did not acknowledge 12 creations in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill().await;
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged.len() >= 12);

    for created in &acknowledged {
        let tenant = created["tenant"]["id"].as_str().expect("tenant.id");
        let (status, body) = get(&b.base, &format!("/api/v2/admin/tenants/{tenant}"), &sysadmin).await;
        assert_eq!(
            status, 200,
            "tenant {tenant} acknowledged by A is missing on B: {body}"
        );
        let admin = created["admin"]["id"].as_str().expect("admin.id");
        let (status, body) = get(&b.base, &format!("/api/v2/admin/users/{admin}"), &sysadmin).await;
        assert_eq!(
            status, 200,
            "admin {admin} of tenant {tenant} is missing on B: {body}"
        );
    }

    // A restarted after the kill (migrations already applied, no bootstrap) serves the same data.
    let a2 = Replica::start(&env).await;
    let tenant = acknowledged[0]["tenant"]["id"].as_str().unwrap();
    let (status, body) = get(&a2.base, &format!("/api/v2/admin/tenants/{tenant}"), &sysadmin).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_terminated_through_one_replica_closes_its_realtime_socket_on_another() {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let _serial = SERIAL.lock().await;
    let db = Database::create();
    let prefix = RedisPrefix::new();
    let env = replica_env(&db.url(), Some((SHARED_REDIS_URL, &prefix.prefix)));
    let a = first_replica(env.clone()).await;
    let b = Replica::start(&env).await;
    let (key, admin) = (a.banner("api key:"), a.banner("admin token:"));

    // A realtime session served by B.
    let mut request = format!("{}/v1/realtime", b.base.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut next = async || loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("no frame from B within 15 s")
            .expect("B's socket ended without a close frame")
            .unwrap();
        match frame {
            Message::Text(text) => break Ok(serde_json::from_str::<Value>(text.as_str()).unwrap()),
            Message::Close(frame) => break Err(frame.map(|f| u16::from(f.code))),
            _ => {}
        }
    };
    let created = next().await.unwrap();
    assert_eq!(created["type"], "session.created", "{created}");
    let sess = created["session"]["id"].as_str().unwrap();
    let id = sess.strip_prefix("sess_").expect("sess_ prefix");
    let id = uuid_text(id);

    // Terminated through A: only the event bus (Redis pub/sub) can tell B.
    let (status, body) = post(
        &a.base,
        &format!("/api/v2/sessions/{id}/terminate"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let notice = next().await.unwrap();
    assert_eq!(notice["error"]["code"], "session_terminated", "{notice}");
    assert_eq!(
        next().await,
        Err(Some(1008)),
        "B closes the socket with a policy close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jobs_on_redis_the_postgres_outbox_is_relayed_to_the_redis_queue() {
    let _serial = SERIAL.lock().await;
    let db = Database::create();
    let prefix = RedisPrefix::new();
    let mut env = replica_env(&db.url(), Some((SHARED_REDIS_URL, &prefix.prefix)));
    set(&mut env, "AVB_JOBS", "redis");
    // Billing off: its tenant-sync jobs then have no handler on this server and must wait in Redis like the
    // welcome e-mail (with billing on, the replica would handle them itself).
    set(&mut env, "FF_BILLING", "false");
    // Creating the demo tenant writes its follow-up jobs (welcome e-mail, billing sync, …) into PostgreSQL in
    // the same transaction; the relay must move every one of them to Redis and settle it in PostgreSQL.
    let _a = first_replica(env).await;
    let pending = || query(&db.name, "SELECT count(*) FROM jobs WHERE state <> 'done'");
    let relayed = eventually(Duration::from_secs(20), async || pending().trim() == "0").await;
    assert!(
        relayed,
        "jobs left in PostgreSQL: {}",
        query(&db.name, "SELECT kind, state FROM jobs")
    );
    let outbox: usize = query(&db.name, "SELECT count(*) FROM jobs")
        .trim()
        .parse()
        .unwrap();
    assert!(outbox > 0, "the bootstrap wrote no outbox job");

    // The kinds this server has no handler for wait in Redis: a worker reserving them through the job-queue
    // port finds each one, with its tenant and payload.
    let unhandled = ["billing.sync_tenant", "email.welcome"];
    let expected: usize = query(
        &db.name,
        "SELECT count(*) FROM jobs WHERE kind IN ('billing.sync_tenant', 'email.welcome')",
    )
    .trim()
    .parse()
    .unwrap();
    assert!(expected > 0, "{}", query(&db.name, "SELECT kind FROM jobs"));
    let redis = avb_storage_redis::RedisStore::builder()
        .with_url(SHARED_REDIS_URL)
        .with_key_prefix(&prefix.prefix)
        .build()
        .await
        .unwrap();
    let queue = redis.job_queue();
    let system = avb_core::Ctx::system(avb_core::RequestId::generate(&avb_core::UuidV7Ids), "test", None);
    let mut found = 0;
    while let Some(job) =
        avb_core::jobs::JobQueue::reserve(&queue, &system, &unhandled, Duration::from_secs(60))
            .await
            .unwrap()
    {
        assert!(job.tenant_id.is_some(), "{job:?}");
        found += 1;
    }
    assert_eq!(found, expected, "jobs relayed to Redis");
}

/// A simple (hyphenless) UUID in its hyphenated form.
fn uuid_text(simple: &str) -> String {
    assert_eq!(simple.len(), 32, "{simple}");
    format!(
        "{}-{}-{}-{}-{}",
        &simple[..8],
        &simple[8..12],
        &simple[12..16],
        &simple[16..20],
        &simple[20..]
    )
}

/// What a stream of requests saw: status, envelope code and latency of each.
#[derive(Debug, Default)]
struct Observed {
    outcomes: Vec<(u16, Option<String>, Duration)>,
}

impl Observed {
    fn count(&self, status: u16) -> usize {
        self.outcomes.iter().filter(|(s, _, _)| *s == status).count()
    }
    fn slowest(&self) -> Duration {
        self.outcomes.iter().map(|(_, _, d)| *d).max().unwrap_or_default()
    }
}

/// Sends `GET path` with `bearer` to `base` from `connections` loops until `stop` is set.
fn traffic(
    base: &str,
    path: &str,
    bearer: &str,
    connections: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Observed>> {
    (0..connections)
        .map(|_| {
            let (url, bearer, stop) = (format!("{base}{path}"), bearer.to_owned(), stop.clone());
            tokio::spawn(async move {
                let client = client();
                let mut seen = Observed::default();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let resp = client.get(&url).bearer_auth(&bearer).send().await.unwrap();
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let code = body["error"].as_str().map(str::to_owned);
                    if status != 200 {
                        assert!(
                            body.get("message").is_some() && body.get("details").is_some(),
                            "not the error envelope: {status} {body}"
                        );
                    }
                    seen.outcomes.push((status, code, started.elapsed()));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen
            })
        })
        .collect()
}

async fn run_for(
    base: &str,
    path: &str,
    bearer: &str,
    duration: Duration,
    during: impl std::future::Future<Output = ()>,
) -> Observed {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loops = traffic(base, path, bearer, 4, stop.clone());
    during.await;
    tokio::time::sleep(duration).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Observed::default();
    for l in loops {
        all.outcomes.extend(l.await.unwrap().outcomes);
    }
    all
}

/// Rate limits far above what the traffic loops send, so every refusal they see comes from the outage.
fn unmetered(env: &mut Vec<(&'static str, String)>) {
    set(env, "RATE_LIMIT_API_KEY_PER_MINUTE", "1000000");
    set(env, "RATE_LIMIT_API_KEY_PER_HOUR", "1000000");
}

/// Polls `check` until it is true or `within` passed.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_answers_503_and_recovers_without_a_restart() {
    let _serial = SERIAL.lock().await;
    let mut pg = PrivatePostgres::launch();
    let prefix = RedisPrefix::new();
    let mut env = replica_env(&pg.url(), Some((SHARED_REDIS_URL, &prefix.prefix)));
    set(&mut env, "DB_ACQUIRE_TIMEOUT_SECONDS", "2");
    set(&mut env, "REQUEST_TIMEOUT_SECONDS", "10");
    unmetered(&mut env);
    let mut server = first_replica(env).await;
    let key = server.banner("api key:");
    let base = server.base.clone();

    let before = run_for(&base, "/api/v2/tenants/me", &key, Duration::from_secs(1), async {
    })
    .await;
    assert!(
        before.count(200) > 0 && before.count(200) == before.outcomes.len(),
        "{before:?}"
    );

    let during = run_for(&base, "/api/v2/tenants/me", &key, Duration::from_secs(5), async {
        pg.stop();
    })
    .await;
    let unavailable = during
        .outcomes
        .iter()
        .filter(|(s, code, _)| *s == 503 && code.as_deref() == Some("service_unavailable"))
        .count();
    eprintln!(
        "postgres down: {} answers, {unavailable} × 503, slowest {:?}",
        during.outcomes.len(),
        during.slowest()
    );
    assert!(unavailable > 0, "no 503 while PostgreSQL was down: {during:?}");
    assert_eq!(
        unavailable + during.count(200),
        during.outcomes.len(),
        "only 200 (before the stop took effect) or 503 service_unavailable: {during:?}"
    );
    assert!(
        during.slowest() < Duration::from_secs(10),
        "a request hung past the request timeout: {:?}",
        during.slowest()
    );
    let (status, body) = ready(&base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "service_unavailable", "{body}");
    assert_eq!(body["details"]["failed"], json!(["storage"]), "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "ok", "{body}");

    pg.start();
    let recovered = eventually(Duration::from_secs(30), async || {
        get(&base, "/api/v2/tenants/me", &key).await.0 == 200
    })
    .await;
    assert!(recovered, "no recovery within 30 s of PostgreSQL's restart");
    let after = run_for(&base, "/api/v2/tenants/me", &key, Duration::from_secs(1), async {
    })
    .await;
    assert_eq!(after.count(200), after.outcomes.len(), "{after:?}");
    assert_eq!(ready(&base).await.0, 200);
    assert!(server.is_running(), "the server exited:\n{}", server.output());
    assert!(!server.output().contains("panicked"), "{}", server.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_answers_503_and_recovers_without_a_restart() {
    let _serial = SERIAL.lock().await;
    let db = Database::create();
    let mut redis = PrivateRedis::launch();
    let mut env = replica_env(&db.url(), Some((&redis.url(), "avbt")));
    set(&mut env, "REQUEST_TIMEOUT_SECONDS", "10");
    unmetered(&mut env);
    set(&mut env, "AVB_REDIS_TIMEOUT_SECONDS", "2");
    let mut server = first_replica(env).await;
    let key = server.banner("api key:");
    let base = server.base.clone();

    let before = run_for(&base, "/api/v2/tenants/me", &key, Duration::from_secs(1), async {
    })
    .await;
    assert!(
        before.count(200) > 0 && before.count(200) == before.outcomes.len(),
        "{before:?}"
    );

    // API keys fail closed when the limiter cannot count (see avb_server::assemble): 503, not unmetered 200s.
    let during = run_for(&base, "/api/v2/tenants/me", &key, Duration::from_secs(4), async {
        redis.stop();
    })
    .await;
    let unavailable = during
        .outcomes
        .iter()
        .filter(|(s, code, _)| *s == 503 && code.as_deref() == Some("service_unavailable"))
        .count();
    eprintln!(
        "redis down: {} answers, {unavailable} × 503, slowest {:?}",
        during.outcomes.len(),
        during.slowest()
    );
    assert!(unavailable > 0, "no 503 while Redis was down: {during:?}");
    assert_eq!(
        unavailable + during.count(200),
        during.outcomes.len(),
        "{during:?}"
    );
    assert!(
        during.slowest() < Duration::from_secs(10),
        "{:?}",
        during.slowest()
    );
    let (status, body) = ready(&base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["details"]["failed"], json!(["redis"]), "{body}");
    assert_eq!(body["checks"]["storage"]["status"], "ok", "{body}");
    // Anonymous callers fail open: liveness and public routes keep answering during the outage.
    assert_eq!(get(&base, "/health", "").await.0, 200);

    redis.start();
    let recovered = eventually(Duration::from_secs(30), async || {
        get(&base, "/api/v2/tenants/me", &key).await.0 == 200
    })
    .await;
    assert!(recovered, "no recovery within 30 s of Redis's restart");
    let after = run_for(&base, "/api/v2/tenants/me", &key, Duration::from_secs(1), async {
    })
    .await;
    assert_eq!(after.count(200), after.outcomes.len(), "{after:?}");
    assert_eq!(ready(&base).await.0, 200);
    assert!(server.is_running(), "the server exited:\n{}", server.output());
    assert!(!server.output().contains("panicked"), "{}", server.output());
}
