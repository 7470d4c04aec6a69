//! Starting the real server in-process under one framework, and what a check knows about it.

use crate::blackbox::client::Call;
use avb_api::App;
use avb_api::jobs::JobRunner;
use avb_api::permissions::{self, GraphChange};
use avb_auth::adapters::static_jwt::{DevTokenRequest, StaticJwtIdentity};
use avb_core::{Ctx, RequestId, Role, TenantId};
use avb_server::{ServerConfig, assemble, bootstrap};
use avb_tenancy::tenant::CreateTenantRequest;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The origin every launched server allows by CORS (`CORS_ALLOWED_ORIGINS`); any other origin is disallowed.
pub const ALLOWED_ORIGIN: &str = "https://app.blackbox.test";

/// Which HTTP adapter serves the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// `avb-http-axum`.
    Axum,
    /// `avb-http-actix`.
    Actix,
}

/// Credentials of a tenant other than the demo one (for cross-tenant checks).
#[derive(Debug, Clone)]
pub struct TenantCredentials {
    /// Tenant id.
    pub tenant_id: String,
    /// A token of its admin.
    pub admin_token: String,
}

/// A running server as a client sees it: where it is and the credentials its bootstrap printed.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The framework serving it.
    pub framework: Framework,
    /// The demo tenant's id.
    pub tenant_id: String,
    /// A platform sysadmin token (no tenant).
    pub sysadmin_token: String,
    /// A token of the demo tenant's admin.
    pub admin_token: String,
    /// An API key of the demo tenant (every scope, standard rate-limit tier).
    pub api_key: String,
    /// A token of the demo tenant's admin that expired an hour ago.
    pub expired_token: String,
    /// A second active tenant.
    pub other: TenantCredentials,
    pub(crate) client: reqwest::Client,
    /// The server's static-JWT identity, to mint tokens for users the checks invite (what the identity provider
    /// would issue them).
    pub(crate) identity: StaticJwtIdentity,
}

impl Target {
    /// A request to `path_and_query` (relative to the base URL).
    pub fn call(&self, method: &str, path_and_query: &str) -> Call<'_> {
        Call::new(self, method, path_and_query)
    }

    /// `GET`.
    pub fn get(&self, path_and_query: &str) -> Call<'_> {
        self.call("GET", path_and_query)
    }

    /// `POST`.
    pub fn post(&self, path_and_query: &str) -> Call<'_> {
        self.call("POST", path_and_query)
    }

    /// `PATCH`.
    pub fn patch(&self, path_and_query: &str) -> Call<'_> {
        self.call("PATCH", path_and_query)
    }

    /// `DELETE`.
    pub fn delete(&self, path_and_query: &str) -> Call<'_> {
        self.call("DELETE", path_and_query)
    }

    /// `PUT`.
    pub fn put(&self, path_and_query: &str) -> Call<'_> {
        self.call("PUT", path_and_query)
    }

    /// A token (valid one hour) as the identity provider would issue it to `email`, with the `tenant_id` claim
    /// and realm `roles`. The first request with it links it to the user of that e-mail (an invited user keeps
    /// the roles the tenant gave them) or creates the user.
    pub fn token_for(&self, email: &str, tenant_id: Option<&str>, roles: &[Role]) -> Result<String, String> {
        let tenant_id = tenant_id
            .map(|t| t.parse::<TenantId>().map_err(|e| format!("tenant id {t:?}: {e}")))
            .transpose()?;
        self.identity
            .mint(&DevTokenRequest {
                subject: format!("blackbox:{email}"),
                email: email.to_owned(),
                first_name: "Black".into(),
                last_name: "Box".into(),
                roles: roles.to_vec(),
                tenant_id,
                ttl_secs: 3600,
            })
            .map_err(|e| e.to_string())
    }
}

/// A server started by [`Framework::start`]; stopped (gracefully) when dropped or by [`Server::stop`].
#[derive(Debug)]
pub struct Server {
    target: Target,
    app: App,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<std::io::Result<()>>>,
    background: Vec<JoinHandle<()>>,
}

impl std::ops::Deref for Server {
    type Target = Target;
    fn deref(&self) -> &Target {
        &self.target
    }
}

impl Server {
    /// What a client needs.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The app behind the server, only to seed records that no HTTP route creates (notifications, session
    /// events); checks assert over HTTP.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops accepting, waits for in-flight requests, and reports how serving ended.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(serving) = self.serving.take() else {
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(30), serving).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => Err(format!("serving failed: {err}")),
            Ok(Err(err)) => Err(format!("server task failed: {err}")),
            Err(_) => Err("server did not stop within 30 s".into()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in &self.background {
            task.abort();
        }
    }
}

impl Framework {
    /// Both frameworks.
    pub const ALL: [Framework; 2] = [Framework::Axum, Framework::Actix];

    /// Starts a server with the default settings (plus [`ALLOWED_ORIGIN`] for CORS).
    pub async fn start(self) -> Result<Server, String> {
        self.start_with(json!({})).await
    }

    /// Starts a server whose [`ServerConfig`] is the defaults overridden by `settings`, an object keyed by the
    /// configuration's environment names in lower case (`{"rate_limit_api_key_per_minute": 3}`).
    pub async fn start_with(self, settings: Value) -> Result<Server, String> {
        let booted = boot(settings).await?;
        let mut server = booted.serve(self).await?;
        server.background = background(&booted.app);
        Ok(server)
    }

    /// One app (one store, one set of credentials) served by axum and actix at once, on two ports: the answers of
    /// the two must then be identical (see [`crate::blackbox::parity`]).
    pub async fn start_pair(settings: Value) -> Result<(Server, Server), String> {
        let booted = boot(settings).await?;
        let mut axum = booted.serve(Framework::Axum).await?;
        let actix = booted.serve(Framework::Actix).await?;
        axum.background = background(&booted.app);
        Ok((axum, actix))
    }
}

/// An assembled and bootstrapped app, not yet served.
struct Booted {
    app: App,
    target: Target,
}

/// Builds and bootstraps the app exactly as the binary does, with `settings` over the defaults.
async fn boot(settings: Value) -> Result<Booted, String> {
    let mut merged = Map::new();
    merged.insert("cors_allowed_origins".into(), ALLOWED_ORIGIN.into());
    match settings {
        Value::Object(overrides) => merged.extend(overrides),
        other => return Err(format!("settings must be a JSON object, not {other}")),
    }
    let config: ServerConfig =
        serde_json::from_value(Value::Object(merged)).map_err(|e| format!("bad settings: {e}"))?;
    let assembled = assemble(&config).await.map_err(|e| e.to_string())?;
    let app = assembled.app;
    let identity = assembled
        .dev_identity
        .ok_or("the black-box suite needs the static-JWT identity (unset KEYCLOAK_URL)")?;
    let made = bootstrap::bootstrap(&app, &identity)
        .await
        .map_err(|e| e.to_string())?;
    let expired_token = identity
        .mint(&DevTokenRequest {
            subject: "demo-admin".into(),
            email: "admin@demo.local".into(),
            first_name: "Demo".into(),
            last_name: "Admin".into(),
            roles: vec![Role::Admin],
            tenant_id: Some(made.tenant_id),
            ttl_secs: -3600,
        })
        .map_err(|e| e.to_string())?;
    let other = other_tenant(&app, &identity).await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let target = Target {
        base_url: String::new(),
        framework: Framework::Axum,
        tenant_id: made.tenant_id.to_string(),
        sysadmin_token: made.sysadmin_token,
        admin_token: made.admin_token,
        api_key: made.api_key,
        expired_token,
        other,
        client,
        identity,
    };
    Ok(Booted { app, target })
}

impl Booted {
    /// Serves the app with `framework` on a random port of 127.0.0.1.
    async fn serve(&self, framework: Framework) -> Result<Server, String> {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let app = self.app.clone();
        let (addr, serving) = match framework {
            Framework::Axum => {
                let listener = avb_http_axum::bind(any_port).map_err(|e| format!("bind: {e}"))?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                (addr, tokio::spawn(avb_http_axum::serve(listener, app, shutdown)))
            }
            Framework::Actix => {
                let listener = avb_http_actix::bind(any_port).map_err(|e| format!("bind: {e}"))?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                (addr, tokio::spawn(avb_http_actix::serve(listener, app, shutdown)))
            }
        };
        Ok(Server {
            target: Target {
                base_url: format!("http://{addr}"),
                framework,
                ..self.target.clone()
            },
            app: self.app.clone(),
            stop: Some(stop),
            serving: Some(serving),
            background: Vec::new(),
        })
    }
}

/// As the binary's `serve` does: permission-graph jobs, cache invalidations and batched API-key usage keep
/// running.
fn background(app: &App) -> Vec<JoinHandle<()>> {
    vec![
        JobRunner::new(app.clone()).spawn(Duration::from_secs(1)),
        avb_api::invalidation::spawn(app.clone()),
        app.inner()
            .authenticator
            .api_keys()
            .usage()
            .spawn_flusher(Duration::from_secs(5), app.inner().ids.clone()),
    ]
}

/// A second active tenant with its admin, made the way the bootstrap makes the demo tenant.
async fn other_tenant(app: &App, identity: &StaticJwtIdentity) -> Result<TenantCredentials, String> {
    let inner = app.inner();
    let system = Ctx::system(RequestId::generate(inner.ids.as_ref()), "blackbox", None);
    let created = inner
        .tenants
        .create(
            &system,
            CreateTenantRequest::new("Other Organisation", "other", "admin@other.local", "Other Admin"),
        )
        .await
        .map_err(|e| e.to_string())?;
    let tenant = inner
        .tenants
        .activate(&system, created.tenant.id)
        .await
        .map_err(|e| e.to_string())?;
    permissions::apply(
        app,
        &system,
        GraphChange::TenantCreated {
            tenant: tenant.id,
            admin: created.admin.id,
        },
    )
    .await;
    let admin_token = identity
        .mint(&DevTokenRequest {
            subject: "other-admin".into(),
            email: created.admin.email.clone(),
            first_name: created.admin.first_name.clone(),
            last_name: created.admin.last_name.clone(),
            roles: vec![Role::Admin],
            tenant_id: Some(tenant.id),
            ttl_secs: 3600,
        })
        .map_err(|e| e.to_string())?;
    Ok(TenantCredentials {
        tenant_id: tenant.id.to_string(),
        admin_token,
    })
}
