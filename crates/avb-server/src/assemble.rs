//! Configuration → adapters → [`App`]. The only place that knows every adapter; configuration chooses which runs.
//!
//! | configured | ports |
//! | --- | --- |
//! | `DATABASE_URL` or `DB_HOST` | PostgreSQL for records, audit sink/reader, job queue and the relationships of the local authorizer; migrations run at start (`AVB_MIGRATE_ON_START`) |
//! | `REDIS_URL` | Redis for the rate limiter, the event bus and ephemeral client secrets (and jobs with `AVB_JOBS=redis`) |
//! | neither | memory for everything (one process, data lasts until it stops) |
//! | `FF_BILLING` (default on) | billing: `LAGO_API_URL` → Lago (with retries, webhooks verified with Lago's public key and, when set, `LAGO_WEBHOOK_SECRET`), else the in-memory provider (webhooks verified by HMAC with `LAGO_WEBHOOK_SECRET`; without it every delivery is refused, 401); the billing store follows the storage (PostgreSQL or memory) |
//!
//! `/health/ready` probes `storage` (the built-in unit-of-work probe) and, when configured, `redis` and
//! `billing` (Lago: an authenticated `GET` of its webhook public key, which checks the URL and the API key).
//!
//! # Rate limits when Redis fails
//! The Redis limiter answers within 250 ms or applies a failure policy. The default (`by_class`) fails **open**
//! for anonymous callers (by IP) and console users, so probes, sign-in and the console keep working during a
//! Redis incident, and **closed** (503 `service_unavailable`) for API keys, whose programmatic volume is what
//! limits protect (LLM/TTS cost) and where unmetered traffic would be the abuse window. Operators who prefer
//! availability (or protection) everywhere set `AVB_RATE_LIMIT_ON_REDIS_FAILURE=open` (or `closed`).

use crate::config::ServerConfig;
use avb_api::ops::health::ReadinessCheck;
use avb_api::{App, AppConfig, RateLimits};
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::static_jwt::{StaticJwtBuilder, StaticJwtIdentity};
use avb_auth::authorizer::{Authorizer, RelationshipStore};
use avb_auth::ephemeral::EphemeralTokenStore;
use avb_auth::identity::IdentityProvider;
use avb_billing::adapters::lago::{LagoBilling, LagoConfig};
use avb_billing::adapters::memory::MemoryBilling;
use avb_billing::provider::BillingProvider;
use avb_billing::retry::{RetryPolicy, RetryingBillingProvider};
use avb_billing::store::BillingStore;
use avb_billing::webhook::{WebhookKeySource, WebhookVerifier};
use avb_core::audit::{AuditReader, AuditSink};
use avb_core::events::EventBus;
use avb_core::jobs::{JobQueue, NewJob, kinds};
use avb_core::rate_limit::{RateLimitPolicy, RateLimiter};
use avb_core::{Ctx, RequestId, UuidV7Ids};
use avb_storage_memory::{
    MemoryBillingStore, MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore,
    MemoryStore,
};
use avb_storage_postgres::{PgConfig, PgStore, PgStoreBuilder};
use avb_storage_redis::{FailurePolicy, RedisStore, RedisStoreBuilder};
use avb_tenancy::store::TenancyStore;
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;

/// Why the server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// An adapter refused its configuration or could not reach its backend.
    #[error("{0}")]
    Adapter(String),
    /// A port is missing (a bug in this module).
    #[error(transparent)]
    Build(#[from] avb_api::BuildError),
}

/// The assembled app and what the binary needs besides it.
#[derive(Debug)]
pub struct Assembled {
    /// The app.
    pub app: App,
    /// The static-JWT identity when it is the active one (to mint dev tokens).
    pub dev_identity: Option<StaticJwtIdentity>,
    /// Which adapters were chosen, for the start-up log.
    pub adapters: Vec<(&'static str, &'static str)>,
    /// Set when the job queue is not the storage's own: moves jobs written with a change (the outbox) to it.
    pub outbox_relay: Option<OutboxRelay>,
    /// The PostgreSQL store when configured (to close its pool at shutdown).
    pub postgres: Option<PgStore>,
}

fn policy(minute: Option<u32>, hour: Option<u32>, default: RateLimitPolicy) -> RateLimitPolicy {
    RateLimitPolicy {
        per_minute: minute.unwrap_or(default.per_minute),
        per_hour: hour.unwrap_or(default.per_hour),
    }
}

/// An adapter error with its cause chain: `Display` of storage errors hides the cause from API clients, but the
/// operator starting the server needs it ("connection refused", "role does not exist").
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn adapter_error(what: &str) -> impl Fn(avb_core::Error) -> AssembleError + '_ {
    move |err| AssembleError::Adapter(format!("{what}: {}", describe(&err)))
}

fn seconds(value: u64) -> Duration {
    Duration::from_secs(value)
}

/// The PostgreSQL settings `config` describes (`DATABASE_URL` or `DB_*`, pool and timeouts).
pub fn pg_config(config: &ServerConfig) -> PgConfig {
    let mut pg = PgConfig::default();
    pg.url = config
        .database_url
        .as_ref()
        .map(|u| u.expose().to_owned())
        .filter(|u| !u.is_empty());
    if let Some(host) = &config.db_host {
        pg.host.clone_from(host);
    }
    if let Some(port) = config.db_port {
        pg.port = port;
    }
    if let Some(name) = &config.db_name {
        pg.database.clone_from(name);
    }
    if let Some(user) = &config.db_user {
        pg.user.clone_from(user);
    }
    config.db_password.expose().clone_into(&mut pg.password);
    pg.schema.clone_from(&config.db_schema);
    if let Some(size) = config.db_pool_size {
        pg.max_connections = size;
    }
    pg.max_lifetime = seconds(config.db_max_lifetime_seconds);
    pg.acquire_timeout = seconds(config.db_acquire_timeout_seconds);
    pg.connect_timeout = seconds(config.db_connect_timeout_seconds);
    pg.statement_timeout = seconds(config.db_statement_timeout_seconds);
    pg.test_before_acquire = config.db_health_checks;
    "avb-server".clone_into(&mut pg.application_name);
    pg
}

/// Connects to PostgreSQL as configured (without migrating).
///
/// # Errors
/// A malformed setting or an unreachable database.
pub async fn connect_postgres(config: &ServerConfig) -> Result<PgStore, AssembleError> {
    PgStoreBuilder::from_config(pg_config(config))
        .build()
        .await
        .map_err(adapter_error("postgres"))
}

/// `avb-server migrate`: applies the embedded migrations; `None` for in-memory storage (nothing to migrate).
///
/// # Errors
/// PostgreSQL unreachable or a migration failed.
pub async fn migrate(config: &ServerConfig) -> Result<Option<Vec<i64>>, AssembleError> {
    if !config.uses_postgres() {
        return Ok(None);
    }
    let store = connect_postgres(config).await?;
    store
        .migrate()
        .await
        .map_err(adapter_error("postgres migrations"))?;
    store.close().await;
    Ok(Some(PgStore::migration_versions()))
}

/// Connects to Redis as configured.
///
/// # Errors
/// A malformed URL or prefix, or Redis unreachable.
pub async fn connect_redis(config: &ServerConfig) -> Result<Option<RedisStore>, AssembleError> {
    let Some(url) = config.redis_url.as_ref().filter(|u| !u.expose().is_empty()) else {
        return Ok(None);
    };
    let timeout = seconds(config.avb_redis_timeout_seconds.max(1));
    RedisStoreBuilder::new()
        .with_url(url.expose())
        .with_key_prefix(&config.avb_redis_key_prefix)
        .with_connect_timeout(timeout)
        .with_command_timeout(timeout)
        .build()
        .await
        .map(Some)
        .map_err(adapter_error("redis"))
}

/// `/health/ready`'s `redis` check: `PING` within the command timeout.
#[derive(Debug)]
struct RedisReady(RedisStore);

#[async_trait::async_trait]
impl ReadinessCheck for RedisReady {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self, _ctx: &Ctx) -> avb_core::Result<()> {
        self.0.ping().await
    }
}

/// `/health/ready`'s `billing` check for Lago: its webhook public key, fetched with the API key.
#[derive(Debug)]
struct LagoReady(LagoBilling);

#[async_trait::async_trait]
impl ReadinessCheck for LagoReady {
    fn name(&self) -> &str {
        "billing"
    }

    async fn check(&self, ctx: &Ctx) -> avb_core::Result<()> {
        self.0
            .public_key_pem(ctx)
            .await
            .map(|_| ())
            .map_err(|e| avb_core::Error::unavailable("lago", e.to_string()))
    }
}

/// The billing pieces `config` selects (`None` with `FF_BILLING=false`).
struct BillingPorts {
    provider: Arc<dyn BillingProvider>,
    webhooks: Option<Arc<WebhookVerifier>>,
    readiness: Option<Arc<dyn ReadinessCheck>>,
    name: &'static str,
}

/// Lago (retried) when `LAGO_API_URL` is set, else the in-memory provider; `None` when billing is off.
///
/// # Errors
/// A malformed `LAGO_API_URL` or an empty `LAGO_API_KEY` next to it.
fn billing_ports(config: &ServerConfig) -> Result<Option<BillingPorts>, AssembleError> {
    if !config.ff_billing {
        return Ok(None);
    }
    let hmac = Some(config.lago_webhook_secret.expose())
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec());
    let Some(url) = config.lago_api_url.as_deref().filter(|_| config.uses_lago()) else {
        // No Lago to fetch a public key from: HMAC signatures with `LAGO_WEBHOOK_SECRET` only. Without it there is
        // no verifier, and the webhook route refuses every delivery (401).
        return Ok(Some(BillingPorts {
            provider: Arc::new(MemoryBilling::new()),
            webhooks: hmac.map(|key| Arc::new(WebhookVerifier::hmac(key))),
            readiness: None,
            name: "memory",
        }));
    };
    let lago = LagoBilling::new(LagoConfig::new(url.trim(), config.lago_api_key.expose()))
        .map_err(|e| AssembleError::Adapter(format!("LAGO_API_URL/LAGO_API_KEY: {e}")))?;
    // JWT-signed webhooks (Lago's default) name the API URL as their issuer; HMAC ones need the token.
    let keys: Arc<dyn WebhookKeySource> = Arc::new(lago.clone());
    let mut verifier = WebhookVerifier::jwt(url.trim().trim_end_matches('/'), keys);
    if let Some(key) = hmac {
        verifier = verifier.with_hmac_key(key);
    }
    Ok(Some(BillingPorts {
        provider: Arc::new(RetryingBillingProvider::new(
            Arc::new(lago.clone()),
            RetryPolicy::default(),
        )),
        webhooks: Some(Arc::new(verifier)),
        readiness: Some(Arc::new(LagoReady(lago))),
        name: "lago",
    }))
}

/// The storage adapter: one value implementing every storage port.
struct Storage {
    store: Arc<dyn TenancyStore>,
    audit_sink: Arc<dyn AuditSink>,
    audit_reader: Arc<dyn AuditReader>,
    jobs: Arc<dyn JobQueue>,
    relationships: Arc<dyn RelationshipStore>,
    billing: Arc<dyn BillingStore>,
}

impl Storage {
    fn of<S>(store: S, relationships: Arc<dyn RelationshipStore>, billing: Arc<dyn BillingStore>) -> Self
    where
        S: TenancyStore + AuditSink + AuditReader + JobQueue,
    {
        let store = Arc::new(store);
        Self {
            store: store.clone(),
            audit_sink: store.clone(),
            audit_reader: store.clone(),
            jobs: store,
            relationships,
            billing,
        }
    }
}

fn rate_limiter(config: &ServerConfig, redis: &RedisStore) -> Result<Arc<dyn RateLimiter>, AssembleError> {
    let builder = redis.rate_limiter_builder();
    let everyone = |policy| {
        ["ip:", "user:", "api_key:"]
            .into_iter()
            .fold(redis.rate_limiter_builder(), |b, class| {
                b.failure_policy(class, policy)
            })
            .fallback_failure_policy(policy)
    };
    let builder = match config.avb_rate_limit_on_redis_failure.as_deref() {
        None | Some("" | "by_class") => builder,
        Some("open") => everyone(FailurePolicy::Open),
        Some("closed") => everyone(FailurePolicy::Closed),
        Some(other) => {
            return Err(AssembleError::Adapter(format!(
                "AVB_RATE_LIMIT_ON_REDIS_FAILURE={other}: expected by_class, open or closed"
            )));
        }
    };
    Ok(Arc::new(builder.build()))
}

/// Builds the app `config` describes, connecting to (and migrating) the configured backends.
///
/// # Errors
/// A malformed setting, or a configured backend unreachable at start (the server does not start half-wired).
pub async fn assemble(config: &ServerConfig) -> Result<Assembled, AssembleError> {
    let mut adapters = Vec::new();
    let mut postgres = None;
    let storage = if config.uses_postgres() {
        let store = connect_postgres(config).await?;
        if config.avb_migrate_on_start {
            store
                .migrate()
                .await
                .map_err(adapter_error("postgres migrations"))?;
        }
        adapters.push(("storage", "postgres"));
        postgres = Some(store.clone());
        let relationships: Arc<dyn RelationshipStore> = Arc::new(store.clone());
        let billing: Arc<dyn BillingStore> = Arc::new(store.clone());
        Storage::of(store, relationships, billing)
    } else {
        adapters.push(("storage", "memory"));
        Storage::of(
            MemoryStore::new(),
            Arc::new(MemoryRelationshipStore::default()),
            Arc::new(MemoryBillingStore::new()),
        )
    };
    let redis = connect_redis(config).await?;

    let authorizer: Arc<dyn Authorizer> = match config
        .spicedb_endpoint
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        // SpiceDB decides every permission; the schema is written at start (idempotent, like migrations), so a
        // fresh SpiceDB works at once and `sync-permissions` stays available for deployments that prefer a step.
        Some(endpoint) => {
            let spicedb = avb_auth::adapters::spicedb::SpiceDbAuthorizerBuilder::new(
                endpoint,
                config.spicedb_token.expose(),
            )
            .insecure(config.spicedb_insecure)
            .build()
            .map_err(|e| AssembleError::Adapter(format!("SPICEDB_ENDPOINT: {e}")))?;
            let ctx = avb_core::Ctx::system(
                avb_core::RequestId::generate(&avb_core::UuidV7Ids),
                "assemble",
                None,
            );
            spicedb
                .write_schema(&ctx, avb_auth::zed::AGENTVOICEBOX_SCHEMA)
                .await
                .map_err(|e| AssembleError::Adapter(format!("SpiceDB schema: {e}")))?;
            adapters.push(("authorizer", "spicedb"));
            Arc::new(spicedb)
        }
        None => {
            let local = LocalAuthorizer::new(storage.relationships.clone())
                .map_err(|e| AssembleError::Adapter(e.to_string()))?;
            adapters.push(("authorizer", "local"));
            Arc::new(local)
        }
    };

    let (identity, dev_identity): (Arc<dyn IdentityProvider>, Option<StaticJwtIdentity>) =
        match &config.keycloak_url {
            Some(url) => {
                let mut builder = avb_auth::adapters::keycloak::KeycloakIdentityBuilder::new(
                    url,
                    &config.keycloak_realm,
                    &config.keycloak_client_id,
                );
                if let Some(aud) = &config.keycloak_audience {
                    builder = builder.audience(aud);
                }
                adapters.push(("identity", "keycloak"));
                (
                    Arc::new(
                        builder
                            .build()
                            .map_err(|e| AssembleError::Adapter(e.to_string()))?,
                    ),
                    None,
                )
            }
            None => {
                let secret = if config.avb_jwt_secret.expose().is_empty() {
                    let mut bytes = [0u8; 32];
                    getrandom::fill(&mut bytes).map_err(|e| AssembleError::Adapter(e.to_string()))?;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(bytes)
                        .into_bytes()
                } else {
                    config.avb_jwt_secret.expose().as_bytes().to_vec()
                };
                let mut builder = StaticJwtBuilder::hs256(secret);
                if let Some(issuer) = &config.avb_jwt_issuer {
                    builder = builder.issuer(issuer);
                }
                let identity = builder
                    .build()
                    .map_err(|e| AssembleError::Adapter(e.to_string()))?;
                adapters.push(("identity", "static-jwt"));
                (Arc::new(identity.clone()), Some(identity))
            }
        };

    let mut app_config = AppConfig::default();
    app_config.debug = config.debug;
    app_config.cors_origins = config.cors_origins();
    app_config.max_body_bytes = config.max_body_bytes;
    app_config.request_timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
    if let Some(secs) = config.realtime_idle_timeout_seconds {
        app_config.realtime.idle_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = config.realtime_max_session_seconds {
        app_config.realtime.max_duration = Duration::from_secs(secs.max(1));
    }
    if let Some(cap) = config.realtime_max_sessions_per_tenant {
        app_config.realtime.max_open_sessions_per_tenant = (cap > 0).then_some(cap);
    }
    let speech =
        crate::voice::speech_ports(config.avb_voice_script.as_deref()).map_err(AssembleError::Adapter)?;
    adapters.push(("speech", "scripted (earshot VAD)"));
    app_config.rate_limits = RateLimits {
        anonymous: policy(
            config.rate_limit_default_per_minute,
            config.rate_limit_default_per_hour,
            RateLimitPolicy::DEFAULT,
        ),
        standard: policy(
            config.rate_limit_api_key_per_minute,
            config.rate_limit_api_key_per_hour,
            RateLimitPolicy::API_KEY,
        ),
        elevated: policy(
            config.rate_limit_admin_per_minute,
            config.rate_limit_admin_per_hour,
            RateLimitPolicy::ADMIN,
        ),
    };

    let (limiter, events, ephemeral): (
        Arc<dyn RateLimiter>,
        Arc<dyn EventBus>,
        Arc<dyn EphemeralTokenStore>,
    ) = match &redis {
        Some(redis) => {
            adapters.extend([
                ("rate_limiter", "redis"),
                ("event_bus", "redis"),
                ("ephemeral_tokens", "redis"),
            ]);
            let bus = redis.event_bus().await.map_err(adapter_error("redis pub/sub"))?;
            (
                rate_limiter(config, redis)?,
                Arc::new(bus),
                Arc::new(redis.ephemeral_tokens()),
            )
        }
        None => {
            adapters.extend([
                ("rate_limiter", "memory"),
                ("event_bus", "memory"),
                ("ephemeral_tokens", "memory"),
            ]);
            (
                Arc::new(MemoryRateLimiter::new()),
                Arc::new(MemoryEventBus::new()),
                Arc::new(MemoryEphemeralTokens::new()),
            )
        }
    };

    let storage_jobs = if config.uses_postgres() {
        "postgres"
    } else {
        "memory"
    };
    let (jobs, outbox_relay): (Arc<dyn JobQueue>, Option<OutboxRelay>) = match config.avb_jobs.as_deref() {
        None | Some("") => (storage.jobs.clone(), None),
        Some(kind) if kind == storage_jobs => (storage.jobs.clone(), None),
        Some("redis") => {
            let redis = redis
                .as_ref()
                .ok_or_else(|| AssembleError::Adapter("AVB_JOBS=redis needs REDIS_URL".into()))?;
            let queue: Arc<dyn JobQueue> = Arc::new(redis.job_queue());
            let relay = OutboxRelay {
                from: storage.jobs.clone(),
                to: queue.clone(),
                gate: Some(redis.clone()),
            };
            (queue, Some(relay))
        }
        Some(other) => {
            return Err(AssembleError::Adapter(format!(
                "AVB_JOBS={other}: expected {storage_jobs} (the storage's queue) or redis"
            )));
        }
    };
    adapters.push((
        "jobs",
        if outbox_relay.is_some() {
            "redis"
        } else {
            storage_jobs
        },
    ));

    let mut builder = App::builder()
        .tenancy_store(storage.store)
        .audit(storage.audit_sink, storage.audit_reader)
        .jobs(jobs)
        .identity(identity)
        .authorizer(authorizer)
        .rate_limiter(limiter)
        .event_bus(events)
        .ephemeral_tokens(ephemeral)
        .speech(speech)
        .speech_labels(crate::voice::meter_labels())
        .config(app_config);
    if let Some(redis) = &redis {
        builder = builder.readiness_check(Arc::new(RedisReady(redis.clone())));
    }
    match billing_ports(config)? {
        Some(billing) => {
            adapters.push(("billing", billing.name));
            builder = builder.billing(billing.provider, storage.billing.clone());
            if let Some(verifier) = billing.webhooks {
                builder = builder.billing_webhooks(verifier);
            }
            if let Some(check) = billing.readiness {
                builder = builder.readiness_check(check);
            }
        }
        None => adapters.push(("billing", "off")),
    }
    let app = builder.build()?;
    Ok(Assembled {
        app,
        dev_identity,
        adapters,
        outbox_relay,
        postgres,
    })
}

/// Every job kind the relay moves: the well-known kinds and those the app's runner handles.
fn relayed_kinds() -> Vec<&'static str> {
    let mut all = vec![
        kinds::PERMISSIONS_BOOTSTRAP_TENANT,
        kinds::BILLING_SYNC_TENANT,
        avb_billing::sync::SYNC_USAGE_JOB,
        kinds::EMAIL_WELCOME,
        kinds::EMAIL_INVITE,
        kinds::CLEANUP_SESSIONS,
    ];
    all.extend(avb_api::jobs::HANDLED.iter().copied());
    all.sort_unstable();
    all.dedup();
    all
}

/// Moves jobs from the storage's queue — where a unit of work writes them atomically with its change — to the
/// configured job queue (Redis Streams), so `AVB_JOBS=redis` loses none of them.
///
/// Each job is reserved in the storage's queue, enqueued in the target with the same kind, tenant, payload,
/// schedule and attempt limit, then acknowledged at the source: at-least-once, like the queues themselves (a
/// crash between the two steps relays the job again after its lease). A round is skipped while the target is
/// unreachable, so an outage does not spend the jobs' attempts.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    from: Arc<dyn JobQueue>,
    to: Arc<dyn JobQueue>,
    gate: Option<RedisStore>,
}

/// How long a relayed job stays reserved at the source before another replica may relay it.
const RELAY_LEASE: Duration = Duration::from_secs(30);

impl OutboxRelay {
    /// Relays every runnable job; returns how many moved.
    pub async fn run_once(&self) -> usize {
        if let Some(gate) = &self.gate
            && gate.ping().await.is_err()
        {
            return 0;
        }
        let kinds = relayed_kinds();
        let mut moved = 0;
        loop {
            let ctx = Ctx::system(RequestId::generate(&UuidV7Ids), "outbox-relay", None);
            let job = match self.from.reserve(&ctx, &kinds, RELAY_LEASE).await {
                Ok(Some(job)) => job,
                Ok(None) => return moved,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay: storage queue unavailable");
                    return moved;
                }
            };
            let copy = NewJob {
                kind: job.kind.clone(),
                tenant_id: job.tenant_id,
                payload: job.payload.clone(),
                run_at: Some(job.run_at),
                max_attempts: job.max_attempts,
            };
            let ctx = Ctx::system(RequestId::generate(&UuidV7Ids), "outbox-relay", job.tenant_id);
            if let Err(err) = self.to.enqueue(&ctx, copy).await {
                // Left reserved: the lease expires and the next round (here or on another replica) retries.
                tracing::warn!(job = %job.id, error = %err, "outbox relay: job queue unavailable");
                return moved;
            }
            if let Err(err) = self.from.ack(&ctx, job.id).await {
                tracing::warn!(job = %job.id, error = %err, "outbox relay: could not settle a relayed job");
            }
            moved += 1;
        }
    }

    /// Relays every `interval` until the task is aborted.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.run_once().await;
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use figment::Figment;

    fn config(pairs: &[(&str, &str)]) -> ServerConfig {
        pairs
            .iter()
            .fold(Figment::new(), |f, (k, v)| f.merge((*k, *v)))
            .extract()
            .unwrap()
    }

    #[tokio::test]
    async fn billing_follows_the_configuration() {
        let memory = assemble(&config(&[])).await.unwrap();
        assert!(memory.adapters.contains(&("billing", "memory")));
        let billing = memory
            .app
            .inner()
            .billing
            .as_ref()
            .expect("billing on by default");
        assert!(
            billing.webhooks.is_none(),
            "no webhook verifier without a secret: the route refuses every delivery"
        );
        let ctx = Ctx::system(RequestId::generate(&UuidV7Ids), "test", None);
        let body = br#"{"webhook_type":"invoice.created","object_type":"invoice","invoice":{}}"#;
        // base64(HMAC-SHA256(key, body)) for the keys `memory-hmac-token` and `guess` (Python's hmac module).
        let (right, guessed) = (
            "22w6g7Va6rMmul1NMx/nQChDKk/URRRLHRz5Eqjijv0=",
            "kPso94OdGoYcy96vWO21gImQAuiM2SraIQUx4JHvyMM=",
        );
        let headers = |signature: &str, algorithm: &str| avb_billing::webhook::WebhookHeaders {
            signature: Some(signature.into()),
            algorithm: Some(algorithm.into()),
            unique_key: Some(uuid::Uuid::new_v4().to_string()),
        };
        // With it, memory billing verifies HMAC signatures made with it (and only those).
        let secret = assemble(&config(&[("lago_webhook_secret", "memory-hmac-token")]))
            .await
            .unwrap();
        let receiver = secret
            .app
            .inner()
            .billing
            .as_ref()
            .expect("billing")
            .webhooks
            .as_ref()
            .expect("webhooks");
        let received = receiver
            .receive(&ctx, &headers(right, "hmac"), body)
            .await
            .unwrap();
        assert!(matches!(received, avb_billing::webhook::Received::New(_)));
        assert!(
            receiver
                .receive(&ctx, &headers(guessed, "hmac"), body)
                .await
                .is_err()
        );

        let mut off = config(&[]);
        off.ff_billing = false;
        let off = assemble(&off).await.unwrap();
        assert!(off.adapters.contains(&("billing", "off")));
        assert!(off.app.inner().billing.is_none());

        let lago = assemble(&config(&[
            ("lago_api_url", "http://127.0.0.1:9"),
            ("lago_api_key", "key"),
            ("lago_webhook_secret", "hmac-token"),
        ]))
        .await
        .unwrap();
        assert!(lago.adapters.contains(&("billing", "lago")));
        let billing = lago.app.inner().billing.as_ref().expect("billing");
        assert!(billing.webhooks.is_some());
        assert!(
            lago.app.inner().readiness.iter().any(|c| c.name() == "billing"),
            "/health/ready probes Lago"
        );

        let bad = assemble(&config(&[
            ("lago_api_url", "ftp://lago"),
            ("lago_api_key", "key"),
        ]))
        .await;
        assert!(bad.is_err(), "a malformed LAGO_API_URL stops the start");
    }
}
