//! An in-memory app and a populated world: a platform sysadmin and two active tenants ("A" and "B"), each with an
//! admin, a developer and a viewer, all created through the API itself and holding dev tokens.

use avb_api::{ApiRequest, ApiResponse, App, AppConfig, Method, RateLimits};
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::static_jwt::{DevTokenRequest, StaticJwtBuilder, StaticJwtIdentity};
use avb_core::audit::{AuditEntry, AuditFilter, AuditReader};
use avb_core::rate_limit::RateLimitPolicy;
use avb_core::{Ctx, PageRequest, RequestId, Role, TenantId, UserId};
use avb_storage_memory::{
    MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore, MemoryStore,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const SECRET: &str = "integration-test-secret-of-at-least-32-bytes";

/// One response, decoded.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status.
    pub status: u16,
    /// JSON body (`Null` when empty).
    pub body: Value,
    /// The request id sent as `X-Request-ID`.
    pub request_id: String,
    /// The raw response.
    pub raw: ApiResponse,
}

impl Resp {
    /// The error code of an envelope.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    /// `body[field]` as a string.
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string '{field}' in {}", self.body))
            .to_owned()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self
    }

    /// Asserts an error envelope with `status` and `code`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!((self.status, self.code()), (status, code), "body: {}", self.body);
        self
    }
}

/// A member of a tenant.
#[derive(Debug, Clone)]
pub struct Member {
    /// User id.
    pub id: UserId,
    /// E-mail.
    pub email: String,
    /// Bearer token.
    pub token: String,
}

/// A tenant with one member per role.
#[derive(Debug, Clone)]
pub struct Org {
    /// Id.
    pub id: TenantId,
    /// Slug.
    pub slug: String,
    /// `admin`.
    pub admin: Member,
    /// `developer`.
    pub developer: Member,
    /// `viewer`.
    pub viewer: Member,
}

/// The app under test and request helpers.
#[derive(Debug)]
pub struct Api {
    /// The app under test.
    pub app: App,
    /// The store behind it (clones share state), for audit assertions.
    pub store: MemoryStore,
    /// Mints tokens.
    pub jwt: StaticJwtIdentity,
    counter: AtomicU64,
}

/// The app and its inhabitants.
#[derive(Debug)]
pub struct World {
    /// The app and helpers.
    pub api: Api,
    /// Platform sysadmin token (no tenant).
    pub sysadmin: String,
    /// Tenant A.
    pub a: Org,
    /// Tenant B.
    pub b: Org,
}

impl std::ops::Deref for World {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// An app over in-memory adapters with generous rate limits (tests count requests, not time), and billing on
/// (the in-memory provider and store), like the server's default.
pub fn app() -> (App, MemoryStore, StaticJwtIdentity) {
    let store = MemoryStore::new();
    let jwt = StaticJwtBuilder::hs256(SECRET).build().expect("jwt");
    let authorizer = LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::new())).expect("authorizer");
    let mut config = AppConfig::default();
    let lots = RateLimitPolicy {
        per_minute: 100_000,
        per_hour: 1_000_000,
    };
    config.rate_limits = RateLimits {
        anonymous: lots,
        standard: lots,
        elevated: lots,
    };
    let app = App::builder()
        .storage(store.clone())
        .identity(Arc::new(jwt.clone()))
        .authorizer(Arc::new(authorizer))
        .rate_limiter(Arc::new(MemoryRateLimiter::new()))
        .event_bus(Arc::new(MemoryEventBus::new()))
        .ephemeral_tokens(Arc::new(MemoryEphemeralTokens::new()))
        .billing(
            Arc::new(avb_billing::adapters::memory::MemoryBilling::new()),
            Arc::new(avb_storage_memory::MemoryBillingStore::new()),
        )
        .config(config)
        .build()
        .expect("app");
    (app, store, jwt)
}

impl World {
    /// A fresh world: sysadmin, tenants A and B (tier `pro`, active), each with admin, developer and viewer.
    pub async fn new() -> Self {
        let (app, store, jwt) = app();
        let api = Api {
            app,
            store,
            jwt,
            counter: AtomicU64::new(0),
        };
        let sysadmin = mint(&api.jwt, "root", "root@platform.test", vec![Role::Sysadmin], None);
        let a = api.org(&sysadmin, "alpha").await;
        let b = api.org(&sysadmin, "bravo").await;
        World { api, sysadmin, a, b }
    }
}

impl Api {
    /// Request helpers over an app assembled elsewhere (other adapters), whose storage is `store` and whose
    /// identity provider is `jwt`.
    pub fn over(app: App, store: MemoryStore, jwt: StaticJwtIdentity) -> Self {
        Api {
            app,
            store,
            jwt,
            counter: AtomicU64::new(0),
        }
    }

    /// Creates and activates a `pro` tenant through the admin API, with an admin, a developer and a viewer.
    pub async fn org(&self, sysadmin: &str, slug: &str) -> Org {
        let admin_email = format!("admin@{slug}.test");
        let created = self
            .post(
                sysadmin,
                "/api/v2/admin/tenants",
                json!({
                    "name": format!("Org {slug}"), "slug": slug, "tier": "pro",
                    "admin_email": admin_email, "admin_name": "Ada Admin", "send_welcome_email": false
                }),
            )
            .await;
        created.expect(201);
        let id: TenantId = serde_json::from_value(created.body["tenant"]["id"].clone()).expect("tenant id");
        let admin_id: UserId = serde_json::from_value(created.body["admin"]["id"].clone()).expect("admin id");
        self.post(
            sysadmin,
            &format!("/api/v2/admin/tenants/{id}/activate"),
            json!({}),
        )
        .await
        .expect(200);
        let admin = Member {
            id: admin_id,
            token: mint(
                &self.jwt,
                &format!("{slug}-admin"),
                &admin_email,
                vec![Role::Admin],
                Some(id),
            ),
            email: admin_email,
        };
        self.sign_in(&admin.token).await;
        let developer = self.invite(&admin.token, id, slug, "developer").await;
        let viewer = self.invite(&admin.token, id, slug, "viewer").await;
        Org {
            id,
            slug: slug.to_owned(),
            admin,
            developer,
            viewer,
        }
    }

    /// Invites a user with one role into `tenant` (as `admin_token`) and mints their token.
    pub async fn invite(&self, admin_token: &str, tenant: TenantId, slug: &str, role: &str) -> Member {
        let email = format!(
            "{role}-{}@{slug}.test",
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        let invited = self
            .post(
                admin_token,
                "/api/v2/users",
                json!({ "email": email, "first_name": role, "roles": [role] }),
            )
            .await;
        invited.expect(201);
        let id: UserId = serde_json::from_value(invited.body["id"].clone()).expect("user id");
        let role = Role::parse(role).expect("role");
        let token = mint(
            &self.jwt,
            &format!("sub-{email}"),
            &email,
            vec![role],
            Some(tenant),
        );
        self.sign_in(&token).await;
        Member { id, email, token }
    }

    /// A first request with `token`, which links the identity to the invited user (an audited write of its
    /// own), so that later requests write only what they are about.
    pub async fn sign_in(&self, token: &str) {
        self.get(token, "/api/v2/users/me").await.expect(200);
    }

    /// Sends one request with `token` (bearer JWT, or an `avb_` API key) and a fresh `X-Request-ID`.
    pub async fn call(&self, token: &str, method: Method, path_and_query: &str, body: Option<Value>) -> Resp {
        let request_id = format!(
            "it-{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let mut req = ApiRequest::new(method, path)
            .query(query)
            .header("x-request-id", request_id.clone());
        if !token.is_empty() {
            req = if token.starts_with("avb_") {
                req.header("x-api-key", token)
            } else {
                req.header("authorization", format!("Bearer {token}"))
            };
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let raw = self.app.handle(req).await;
        assert_eq!(
            raw.header("x-request-id"),
            Some(request_id.as_str()),
            "request id is echoed"
        );
        let body = if raw.body.is_empty() {
            Value::Null
        } else if raw.header("content-type") == Some("application/json") {
            serde_json::from_slice(&raw.body).expect("json body")
        } else {
            Value::String(String::from_utf8_lossy(&raw.body).into_owned())
        };
        Resp {
            status: raw.status,
            body,
            request_id,
            raw,
        }
    }

    /// `GET`.
    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(token, Method::Get, path, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(token, Method::Post, path, Some(body)).await
    }

    /// `PATCH` with a JSON body.
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(token, Method::Patch, path, Some(body)).await
    }

    /// `PUT` with a JSON body.
    pub async fn put(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(token, Method::Put, path, Some(body)).await
    }

    /// `DELETE`.
    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.call(token, Method::Delete, path, None).await
    }

    /// Every audit entry written under the response's request id, in any tenant.
    pub async fn audit_of(&self, resp: &Resp) -> Vec<AuditEntry> {
        let ctx = Ctx::system(RequestId::generate(self.app.inner().ids.as_ref()), "test", None);
        let filter = AuditFilter {
            request_id: Some(RequestId::from_client(&resp.request_id).expect("request id")),
            ..Default::default()
        };
        let page = PageRequest::new(Some(100), None).expect("page");
        self.store
            .query(&ctx, &filter, page)
            .await
            .expect("audit query")
            .items
    }

    /// Asserts that the (successful) write `resp` left at least one audit entry of `resource_type` carrying its
    /// request id.
    pub async fn assert_audited(&self, resp: &Resp, resource_type: &str) {
        let entries = self.audit_of(resp).await;
        assert!(
            entries
                .iter()
                .any(|e| e.resource_type == resource_type && e.request_id == resp.request_id),
            "no {resource_type} audit entry for request {}: {entries:?}",
            resp.request_id
        );
    }

    /// Asserts that `resp` left no audit entry (a refused write).
    pub async fn assert_not_audited(&self, resp: &Resp) {
        let entries = self.audit_of(resp).await;
        assert!(
            entries.is_empty(),
            "refused request {} was audited: {entries:?}",
            resp.request_id
        );
    }

    /// `body.total` of a list.
    pub async fn total(&self, token: &str, path: &str) -> u64 {
        let list = self.get(token, path).await;
        list.expect(200);
        list.body["total"].as_u64().expect("total")
    }

    /// Creates an API key in the caller's tenant and returns `(id, secret)`.
    pub async fn api_key(&self, token: &str, scopes: &[&str]) -> (String, String) {
        let name = format!("key-{}", self.counter.fetch_add(1, Ordering::Relaxed));
        let created = self
            .post(
                token,
                "/api/v2/api-keys",
                json!({ "name": name, "scopes": scopes }),
            )
            .await;
        created.expect(201);
        (created.str("id"), created.str("key"))
    }

    /// Creates a project in the caller's tenant and returns its id.
    pub async fn project(&self, token: &str) -> String {
        let name = format!("project-{}", self.counter.fetch_add(1, Ordering::Relaxed));
        let created = self
            .post(token, "/api/v2/projects", json!({ "name": name }))
            .await;
        created.expect(201);
        created.str("id")
    }
}

/// Mints a dev token.
pub fn mint(
    jwt: &StaticJwtIdentity,
    subject: &str,
    email: &str,
    roles: Vec<Role>,
    tenant: Option<TenantId>,
) -> String {
    jwt.mint(&DevTokenRequest {
        subject: subject.into(),
        email: email.into(),
        first_name: "Test".into(),
        last_name: "User".into(),
        roles,
        tenant_id: tenant,
        ttl_secs: 3600,
    })
    .expect("mint")
}

/// An id no record has.
pub fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
