//! Every route: method, path template, operation id, who may call it, and its handler — one table that both HTTP
//! adapters mount unchanged and that the OpenAPI document and the route-coverage tests read.

use crate::app::App;
use crate::error::ApiError;
use crate::http::Method;
use crate::input::{Input, Reply};
use avb_core::Ctx;
use futures::future::BoxFuture;

/// Who may call a route; checked by the pipeline before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no credential needed (health, metrics, docs). Exempt from rate limiting only if listed so.
    Public,
    /// Any authenticated principal.
    Authenticated,
    /// An authenticated principal acting in a resolved tenant.
    Tenant,
    /// A sysadmin user (spec §7.1 admin routers).
    Sysadmin,
}

/// A handler: an async function over the app, the request context and the parsed input.
pub type Handler = for<'a> fn(&'a App, &'a Ctx, &'a Input) -> BoxFuture<'a, Result<Reply, ApiError>>;

/// One route.
#[derive(Clone, Copy)]
pub struct Route {
    /// Method.
    pub method: Method,
    /// Path template (`/api/v2/projects/{id}`).
    pub path: &'static str,
    /// Operation id (OpenAPI, metrics `endpoint` label).
    pub operation: &'static str,
    /// Access rule.
    pub access: Access,
    /// The handler reads request headers: the pipeline copies them into [`Input::headers`] for this route only
    /// (other routes pay nothing for it).
    pub headers: bool,
    /// Handler.
    pub handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("operation", &self.operation)
            .field("access", &self.access)
            .field("headers", &self.headers)
            .finish()
    }
}

/// Path prefix of the REST API.
pub const API_PREFIX: &str = "/api/v2";

/// Paths never rate limited (spec §10.2 exempt paths).
pub const RATE_LIMIT_EXEMPT: &[&str] = &["/health", "/metrics"];

macro_rules! route {
    ($method:ident $path:literal => $op:literal, $access:ident, $handler:path) => {
        route!(@ $method $path => $op, $access, $handler, false)
    };
    // A route whose handler reads request headers (`Input::headers`).
    ($method:ident $path:literal => $op:literal, $access:ident, $handler:path, with_headers) => {
        route!(@ $method $path => $op, $access, $handler, true)
    };
    (@ $method:ident $path:literal => $op:literal, $access:ident, $handler:path, $headers:literal) => {
        Route {
            method: Method::$method,
            path: $path,
            operation: $op,
            access: Access::$access,
            headers: $headers,
            handler: |app, ctx, input| Box::pin($handler(app, ctx, input)),
        }
    };
}

/// The route table.
pub fn routes() -> Vec<Route> {
    use crate::ops::*;
    vec![
        route!(Get "/health" => "health", Public, health::live),
        route!(Get "/health/ready" => "health_ready", Public, health::ready),
        route!(Get "/metrics" => "metrics", Public, health::metrics),
        // the OpenAPI document and the offline documentation page
        route!(Get "/api/v2/openapi.json" => "openapi", Public, docs::openapi),
        route!(Get "/api/v2/docs" => "docs", Public, docs::page),
        route!(Get "/api/v2/docs/{file}" => "docs_asset", Public, docs::asset),
        // tenants (spec §7.2 tenant routes)
        route!(Get "/api/v2/tenants/me" => "get_my_tenant", Tenant, tenants::me),
        route!(Get "/api/v2/tenants/me/settings" => "get_my_tenant_settings", Tenant, tenants::get_settings),
        route!(Patch "/api/v2/tenants/me/settings" => "update_my_tenant_settings", Tenant, tenants::update_settings),
        route!(Get "/api/v2/tenants/me/usage" => "get_my_tenant_usage", Tenant, tenants::usage),
        route!(Get "/api/v2/tenants/me/limits" => "get_my_tenant_limits", Tenant, tenants::limits),
        // admin (spec §7.2 admin routes; sysadmins only, tenant-exempt)
        route!(Get "/api/v2/admin/tenants" => "admin_list_tenants", Sysadmin, admin::list_tenants),
        route!(Post "/api/v2/admin/tenants" => "admin_create_tenant", Sysadmin, admin::create_tenant),
        route!(Get "/api/v2/admin/tenants/{id}" => "admin_get_tenant", Sysadmin, admin::get_tenant),
        route!(Patch "/api/v2/admin/tenants/{id}" => "admin_update_tenant", Sysadmin, admin::update_tenant),
        route!(Delete "/api/v2/admin/tenants/{id}" => "admin_delete_tenant", Sysadmin, admin::delete_tenant),
        route!(Post "/api/v2/admin/tenants/{id}/suspend" => "admin_suspend_tenant", Sysadmin, admin::suspend_tenant),
        route!(Post "/api/v2/admin/tenants/{id}/activate" => "admin_activate_tenant", Sysadmin, admin::activate_tenant),
        route!(Get "/api/v2/admin/users" => "admin_list_users", Sysadmin, admin::list_users),
        route!(Get "/api/v2/admin/users/{id}" => "admin_get_user", Sysadmin, admin::get_user),
        route!(Post "/api/v2/admin/users/{id}/deactivate" => "admin_deactivate_user", Sysadmin, admin::deactivate_user),
        // users
        route!(Get "/api/v2/users/me" => "get_me", Authenticated, users::me),
        route!(Patch "/api/v2/users/me" => "update_me", Authenticated, users::update_me),
        route!(Get "/api/v2/users" => "list_users", Tenant, users::list),
        route!(Post "/api/v2/users" => "invite_user", Tenant, users::invite),
        route!(Get "/api/v2/users/{id}" => "get_user", Tenant, users::get),
        route!(Put "/api/v2/users/{id}/roles" => "change_user_roles", Tenant, users::change_roles),
        route!(Post "/api/v2/users/{id}/deactivate" => "deactivate_user", Tenant, users::deactivate),
        route!(Post "/api/v2/users/{id}/reactivate" => "reactivate_user", Tenant, users::reactivate),
        // projects
        route!(Post "/api/v2/projects" => "create_project", Tenant, projects::create),
        route!(Get "/api/v2/projects" => "list_projects", Tenant, projects::list),
        route!(Get "/api/v2/projects/{id}" => "get_project", Tenant, projects::get),
        route!(Patch "/api/v2/projects/{id}" => "update_project", Tenant, projects::update),
        route!(Delete "/api/v2/projects/{id}" => "delete_project", Tenant, projects::delete),
        // api keys
        route!(Post "/api/v2/api-keys" => "create_api_key", Tenant, api_keys::create),
        route!(Get "/api/v2/api-keys" => "list_api_keys", Tenant, api_keys::list),
        route!(Get "/api/v2/api-keys/{id}" => "get_api_key", Tenant, api_keys::get),
        route!(Post "/api/v2/api-keys/{id}/revoke" => "revoke_api_key", Tenant, api_keys::revoke),
        route!(Post "/api/v2/api-keys/{id}/rotate" => "rotate_api_key", Tenant, api_keys::rotate),
        // sessions (REST side)
        route!(Post "/api/v2/sessions" => "create_session", Tenant, sessions::create),
        route!(Get "/api/v2/sessions" => "list_sessions", Tenant, sessions::list),
        route!(Get "/api/v2/sessions/{id}" => "get_session", Tenant, sessions::get),
        route!(Get "/api/v2/sessions/{id}/events" => "list_session_events", Tenant, sessions::events),
        route!(Post "/api/v2/sessions/{id}/terminate" => "terminate_session", Tenant, sessions::terminate),
        // OpenAI-compatible realtime client secrets (the `/v1/realtime` WebSocket itself is not a REST route)
        route!(Post "/v1/realtime/client_secrets" => "create_realtime_client_secret", Tenant, realtime::create_client_secret),
        route!(Post "/v1/realtime/sessions" => "create_realtime_session", Tenant, realtime::create_beta_session),
        // audit
        route!(Get "/api/v2/audit" => "query_audit", Tenant, audit::query),
        // voice
        route!(Get "/api/v2/voice/config" => "get_voice_config", Tenant, voice::get_config),
        route!(Patch "/api/v2/voice/config" => "update_voice_config", Tenant, voice::update_config),
        route!(Get "/api/v2/voice/personas" => "list_personas", Tenant, voice::list_personas),
        route!(Post "/api/v2/voice/personas" => "create_persona", Tenant, voice::create_persona),
        route!(Get "/api/v2/voice/personas/{id}" => "get_persona", Tenant, voice::get_persona),
        route!(Patch "/api/v2/voice/personas/{id}" => "update_persona", Tenant, voice::update_persona),
        route!(Delete "/api/v2/voice/personas/{id}" => "delete_persona", Tenant, voice::delete_persona),
        route!(Get "/api/v2/voice/wake-words" => "list_wake_words", Tenant, voice::list_wake_words),
        route!(Post "/api/v2/voice/wake-words" => "create_wake_word", Tenant, voice::create_wake_word),
        route!(Get "/api/v2/voice/wake-words/{id}" => "get_wake_word", Tenant, voice::get_wake_word),
        route!(Patch "/api/v2/voice/wake-words/{id}" => "update_wake_word", Tenant, voice::update_wake_word),
        route!(Delete "/api/v2/voice/wake-words/{id}" => "delete_wake_word", Tenant, voice::delete_wake_word),
        // themes
        route!(Post "/api/v2/themes" => "create_theme", Tenant, themes::create),
        route!(Get "/api/v2/themes" => "list_themes", Tenant, themes::list),
        route!(Get "/api/v2/themes/{id}" => "get_theme", Tenant, themes::get),
        route!(Patch "/api/v2/themes/{id}" => "update_theme", Tenant, themes::update),
        route!(Delete "/api/v2/themes/{id}" => "delete_theme", Tenant, themes::delete),
        // billing (spec `apps/billing`; `tenant#billing_access`)
        route!(Get "/api/v2/billing/usage" => "get_billing_usage", Tenant, billing::usage),
        route!(Get "/api/v2/billing/invoices" => "list_billing_invoices", Tenant, billing::invoices),
        // the billing provider's webhooks: no user credential, the signature over the raw body is the credential
        route!(Post "/api/v2/billing/webhooks/lago" => "receive_lago_webhook", Public, billing::lago_webhook, with_headers),
        // notifications (the caller's own)
        route!(Get "/api/v2/notifications" => "list_notifications", Tenant, notifications::list),
        route!(Post "/api/v2/notifications/read-all" => "mark_all_notifications_read", Tenant, notifications::mark_all_read),
        route!(Post "/api/v2/notifications/{id}/read" => "mark_notification_read", Tenant, notifications::mark_read),
        route!(Get "/api/v2/notifications/preferences" => "get_notification_preferences", Tenant, notifications::get_preferences),
        route!(Put "/api/v2/notifications/preferences" => "update_notification_preferences", Tenant, notifications::update_preferences),
    ]
}
