//! `App`: every port and service of a running AgentVoiceBox, assembled once by [`AppBuilder`] and shared by the
//! HTTP adapters. Cloning is cheap (one `Arc`).

use crate::metrics::Metrics;
use avb_auth::api_keys::{ApiKeyAuthenticator, UsageBatcher};
use avb_auth::authenticator::Authenticator;
use avb_auth::authorizer::Authorizer;
use avb_auth::ephemeral::{ClientSecrets, EphemeralTokenStore};
use avb_auth::identity::IdentityProvider;
use avb_billing::provider::BillingProvider;
use avb_billing::store::BillingStore;
use avb_billing::sync::BillingSync;
use avb_billing::webhook::{WebhookReceiver, WebhookVerifier};
use avb_core::audit::{AuditReader, AuditSink};
use avb_core::events::EventBus;
use avb_core::jobs::JobQueue;
use avb_core::rate_limit::{RateLimitPolicy, RateLimiter};
use avb_core::{Clock, IdGen, SystemClock, UuidV7Ids};
use avb_tenancy::TenancyDeps;
use avb_tenancy::api_key::ApiKeyService;
use avb_tenancy::audit::AuditService;
use avb_tenancy::notification::NotificationService;
use avb_tenancy::observed::ObservedStore;
use avb_tenancy::project::ProjectService;
use avb_tenancy::resolve::{DEFAULT_TENANT_CAPACITY, TenantCache, TenantResolver};
use avb_tenancy::session::SessionService;
use avb_tenancy::store::TenancyStore;
use avb_tenancy::tenant::TenantService;
use avb_tenancy::theme::ThemeService;
use avb_tenancy::user::UserService;
use avb_tenancy::voice::VoiceService;
use avb_voice::metered::MeterLabels;
use avb_voice::realtime::engine::SessionPorts;
use std::sync::Arc;
use std::time::Duration;

/// Rate-limit policies by caller class (spec §4 `RATE_LIMIT_CONFIG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Unauthenticated callers, by IP (`DEFAULT`).
    pub anonymous: RateLimitPolicy,
    /// Users and standard API keys (`API_KEY`).
    pub standard: RateLimitPolicy,
    /// Sysadmins and elevated API keys (`ADMIN`).
    pub elevated: RateLimitPolicy,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            anonymous: RateLimitPolicy::DEFAULT,
            standard: RateLimitPolicy::API_KEY,
            elevated: RateLimitPolicy::ADMIN,
        }
    }
}

/// Settings of the request pipeline.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppConfig {
    /// Largest request body accepted (default 1 MiB); larger → `payload_too_large`.
    pub max_body_bytes: usize,
    /// Deadline of every request (default 30 s); past it → `timeout`.
    pub request_timeout: Duration,
    /// Origins allowed by CORS (`*` allows any; empty allows none).
    pub cors_origins: Vec<String>,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Show internal error detail in 5xx bodies (development only).
    pub debug: bool,
    /// Trust `X-Forwarded-For` for the client IP (only behind a proxy you control).
    pub trust_forwarded_for: bool,
    /// Limits of realtime voice connections.
    pub realtime: crate::realtime::RealtimeConfig,
    /// How long a resolved tenant is served from this replica's memory (default 5 s; zero disables the
    /// cache). Changes are broadcast to every replica ([`crate::invalidation`]); the TTL bounds staleness only
    /// when a broadcast is lost.
    pub tenant_cache_ttl: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            rate_limits: RateLimits::default(),
            debug: false,
            trust_forwarded_for: false,
            realtime: crate::realtime::RealtimeConfig::default(),
            tenant_cache_ttl: avb_tenancy::resolve::DEFAULT_TENANT_TTL,
        }
    }
}

/// Why an [`App`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A required port was not given.
    #[error("missing port: {0}")]
    MissingPort(&'static str),
}

/// The billing pieces of an app with billing on ([`AppBuilder::billing`]).
#[derive(Debug, Clone)]
pub struct Billing {
    /// Usage and tenant sync over the provider and the billing store (also the provider for
    /// `/api/v2/billing/usage` and `/invoices`: [`BillingSync::provider`]).
    pub sync: BillingSync,
    /// Verifies and de-duplicates the provider's webhooks; `None` when no verification is configured, in which
    /// case every delivery is refused.
    pub webhooks: Option<WebhookReceiver>,
}

/// The assembled application.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) inner: Arc<AppInner>,
}

/// Everything the operations use.
#[derive(Debug)]
#[allow(missing_docs)]
pub struct AppInner {
    pub config: AppConfig,
    pub deps: TenancyDeps,
    pub tenants: TenantService,
    pub users: UserService,
    pub projects: ProjectService,
    pub api_keys: ApiKeyService,
    pub sessions: SessionService,
    pub voice: VoiceService,
    pub themes: ThemeService,
    pub notifications: NotificationService,
    pub audit: AuditService,
    pub resolver: TenantResolver,
    pub authenticator: Authenticator,
    pub authorizer: Arc<dyn Authorizer>,
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub events: Arc<dyn EventBus>,
    pub jobs: Arc<dyn JobQueue>,
    pub audit_sink: Arc<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub metrics: Metrics,
    /// Dependencies `/health/ready` probes besides the built-in `storage` probe (which a check named
    /// `storage` replaces).
    pub readiness: Vec<Arc<dyn crate::ops::health::ReadinessCheck>>,
    /// Engines of realtime sessions, when configured.
    pub speech: Option<SessionPorts>,
    /// Billing, when on: without it `/api/v2/billing/*` answers 503 `service_unavailable` and billing jobs stay
    /// queued.
    pub billing: Option<Billing>,
    pub(crate) routes: crate::pipeline::RouteIndex,
}

impl App {
    /// A builder.
    pub fn builder() -> AppBuilder {
        AppBuilder::default()
    }

    /// Everything inside (for operations and adapters).
    pub fn inner(&self) -> &AppInner {
        &self.inner
    }

    /// The mounted route table (adapters test that every route is reachable).
    pub fn routes(&self) -> &[crate::routes::Route] {
        self.inner.routes.routes()
    }

    /// Writes pending batched state (API-key usage). Call at shutdown after in-flight requests finished.
    pub async fn flush(&self) -> Result<(), avb_auth::Error> {
        let id = avb_core::RequestId::generate(self.inner.ids.as_ref());
        self.inner
            .authenticator
            .api_keys()
            .usage()
            .flush(id)
            .await
            .map(|_| ())
    }
}

/// Assembles an [`App`]; a missing port is a [`BuildError`], never a panic.
#[derive(Debug, Default)]
pub struct AppBuilder {
    config: AppConfig,
    store: Option<Arc<dyn TenancyStore>>,
    audit_sink: Option<Arc<dyn AuditSink>>,
    audit_reader: Option<Arc<dyn AuditReader>>,
    jobs: Option<Arc<dyn JobQueue>>,
    identity: Option<Arc<dyn IdentityProvider>>,
    authorizer: Option<Arc<dyn Authorizer>>,
    rate_limiter: Option<Arc<dyn RateLimiter>>,
    events: Option<Arc<dyn EventBus>>,
    ephemeral: Option<Arc<dyn EphemeralTokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn IdGen>>,
    readiness: Vec<Arc<dyn crate::ops::health::ReadinessCheck>>,
    speech: Option<SessionPorts>,
    speech_labels: MeterLabels,
    billing: Option<(Arc<dyn BillingProvider>, Arc<dyn BillingStore>)>,
    billing_webhooks: Option<Arc<WebhookVerifier>>,
}

impl AppBuilder {
    /// Registers one storage adapter for every storage port it implements (records, audit, jobs).
    #[must_use]
    pub fn storage<S>(mut self, store: S) -> Self
    where
        S: TenancyStore + AuditSink + AuditReader + JobQueue,
    {
        let store = Arc::new(store);
        self.store = Some(store.clone());
        self.audit_sink = Some(store.clone());
        self.audit_reader = Some(store.clone());
        self.jobs = Some(store);
        self
    }

    /// Sets the tenancy store alone (when audit and jobs live elsewhere).
    #[must_use]
    pub fn tenancy_store(mut self, store: Arc<dyn TenancyStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the audit sink and reader.
    #[must_use]
    pub fn audit(mut self, sink: Arc<dyn AuditSink>, reader: Arc<dyn AuditReader>) -> Self {
        self.audit_sink = Some(sink);
        self.audit_reader = Some(reader);
        self
    }

    /// Sets the job queue.
    #[must_use]
    pub fn jobs(mut self, jobs: Arc<dyn JobQueue>) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Sets the identity provider for bearer JWTs (optional: without it JWTs are refused).
    #[must_use]
    pub fn identity(mut self, identity: Arc<dyn IdentityProvider>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Sets the authorizer.
    #[must_use]
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Sets the rate limiter.
    #[must_use]
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Sets the event bus.
    #[must_use]
    pub fn event_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.events = Some(bus);
        self
    }

    /// Sets the ephemeral client-secret store.
    #[must_use]
    pub fn ephemeral_tokens(mut self, store: Arc<dyn EphemeralTokenStore>) -> Self {
        self.ephemeral = Some(store);
        self
    }

    /// Sets the clock (default: system).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Sets the id generator (default: UUID v7).
    #[must_use]
    pub fn ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Adds a dependency for `/health/ready` to probe (one per configured backend: `redis`, …).
    #[must_use]
    pub fn readiness_check(mut self, check: Arc<dyn crate::ops::health::ReadinessCheck>) -> Self {
        self.readiness.push(check);
        self
    }

    /// Sets the speech and language engines of realtime sessions (optional: without them the realtime
    /// endpoints answer `service_unavailable` and the REST API works as usual).
    #[must_use]
    pub fn speech(mut self, ports: SessionPorts) -> Self {
        self.speech = Some(ports);
        self
    }

    /// Sets the labels the engines' metrics carry where a request does not say (the language model's provider,
    /// default model names, the speech language): see [`MeterLabels`]. Defaults: `unknown` provider, `default`
    /// models, `und` language.
    #[must_use]
    pub fn speech_labels(mut self, labels: MeterLabels) -> Self {
        self.speech_labels = labels;
        self
    }

    /// Turns billing on (optional): usage and tenant sync jobs, and `/api/v2/billing/*`, over `provider` (wrap a
    /// remote one in [`avb_billing::retry::RetryingBillingProvider`]) and `store`.
    #[must_use]
    pub fn billing(mut self, provider: Arc<dyn BillingProvider>, store: Arc<dyn BillingStore>) -> Self {
        self.billing = Some((provider, store));
        self
    }

    /// Verifies the billing provider's webhooks with `verifier` (only with [`AppBuilder::billing`]).
    #[must_use]
    pub fn billing_webhooks(mut self, verifier: Arc<WebhookVerifier>) -> Self {
        self.billing_webhooks = Some(verifier);
        self
    }

    /// Sets the pipeline configuration.
    #[must_use]
    pub fn config(mut self, config: AppConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the app, or names the first missing port.
    pub fn build(self) -> Result<App, BuildError> {
        let store = self.store.ok_or(BuildError::MissingPort("tenancy store"))?;
        let audit_sink = self.audit_sink.ok_or(BuildError::MissingPort("audit sink"))?;
        let audit_reader = self.audit_reader.ok_or(BuildError::MissingPort("audit reader"))?;
        let jobs = self.jobs.ok_or(BuildError::MissingPort("job queue"))?;
        let authorizer = self.authorizer.ok_or(BuildError::MissingPort("authorizer"))?;
        let rate_limiter = self.rate_limiter.ok_or(BuildError::MissingPort("rate limiter"))?;
        let events = self.events.ok_or(BuildError::MissingPort("event bus"))?;
        let ephemeral = self
            .ephemeral
            .ok_or(BuildError::MissingPort("ephemeral token store"))?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let ids = self.ids.unwrap_or_else(|| Arc::new(UuidV7Ids));
        // Shared by resolution (which fills it) and the tenant service (whose changes invalidate it).
        let tenant_cache = TenantCache::new(self.config.tenant_cache_ttl, DEFAULT_TENANT_CAPACITY);
        // Owned by this app: every storage operation and engine request below reports into it.
        let metrics = Metrics::with_tenant_cache(tenant_cache.clone());
        let store: Arc<dyn TenancyStore> = Arc::new(ObservedStore::new(store, Arc::new(metrics.clone())));
        let speech = self
            .speech
            .map(|ports| ports.metered(Arc::new(metrics.clone()), self.speech_labels));
        let deps = TenancyDeps::new(store)
            .with_clock(clock.clone())
            .with_ids(ids.clone());
        let api_keys = ApiKeyService::new(deps.clone());
        let users = UserService::new(deps.clone());
        let usage = UsageBatcher::new(api_keys.clone());
        let key_auth = Arc::new(ApiKeyAuthenticator::new(api_keys.clone(), clock.clone(), usage));
        let authenticator = Authenticator::new(
            self.identity,
            users.clone(),
            key_auth,
            ClientSecrets::new(ephemeral, clock.clone()),
        )
        // Users created at sign-in get their tenant-role relationships before their first request is authorized.
        .with_authorizer(authorizer.clone());
        let webhooks = self.billing_webhooks;
        let billing = self.billing.map(|(provider, store)| Billing {
            webhooks: webhooks.map(|verifier| WebhookReceiver::new(verifier, store.clone(), clock.clone())),
            sync: BillingSync::new(provider, store, deps.clone()),
        });
        Ok(App {
            inner: Arc::new(AppInner {
                tenants: TenantService::with_cache(deps.clone(), tenant_cache.clone()),
                config: self.config,
                users,
                projects: ProjectService::new(deps.clone()),
                api_keys,
                sessions: SessionService::new(deps.clone()),
                voice: VoiceService::new(deps.clone()),
                themes: ThemeService::new(deps.clone()),
                notifications: NotificationService::new(deps.clone()),
                audit: AuditService::new(audit_reader),
                resolver: TenantResolver::with_cache(deps.clone(), tenant_cache),
                deps,
                authenticator,
                authorizer,
                rate_limiter,
                events,
                jobs,
                audit_sink,
                clock,
                ids,
                metrics,
                readiness: self.readiness,
                speech,
                billing,
                routes: crate::pipeline::RouteIndex::new(crate::routes::routes()),
            }),
        })
    }
}
