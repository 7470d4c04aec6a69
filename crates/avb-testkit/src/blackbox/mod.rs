//! The black-box suite: the real server, started on `127.0.0.1:0`, driven over HTTP with `reqwest`. Every check
//! is a plain `pub async fn check(framework: Framework) -> CheckResult` that starts its own server (so rate-limit
//! budgets, metrics and data never leak between checks), and [`blackbox_suite!`](crate::blackbox_suite) turns
//! each into a `#[tokio::test]` for one framework. The same checks run unchanged against axum and actix.
//!
//! ```text
//! mod axum { avb_testkit::blackbox_suite!(avb_testkit::blackbox::Framework::Axum); }
//! mod actix { avb_testkit::blackbox_suite!(avb_testkit::blackbox::Framework::Actix); }
//! ```
//!
//! # How the server is started
//! In-process: [`Framework::start`] builds the app exactly as the binary does ([`avb_server::assemble()`] over a
//! [`avb_server::ServerConfig`], then [`avb_server::bootstrap::bootstrap`]), spawns the job runner and the
//! API-key usage flusher as `serve` does, and serves it with the adapter's own `bind`/`serve` on a random port.
//! Spawning the `avb-server` binary instead is not the default: `env!("CARGO_BIN_EXE_avb-server")` exists only
//! in avb-server's own tests, so another crate cannot get a freshly built binary. The checks only see a
//! [`Target`] (base URL and credentials), so an out-of-process launcher can be added without changing them.
//!
//! # Adding checks
//! Write `pub async fn behaviour_in_words(fw: Framework) -> CheckResult` in the module of its resource (start a
//! server with `fw.start()` or [`Framework::start_with`] for settings, call it through [`Target::call`], return
//! `Err` with what differed; `ensure!` helps), then add `module::behaviour_in_words` to the list in
//! [`blackbox_suite!`](crate::blackbox_suite).

/// Returns `Err(format!(..))` from the enclosing check when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod billing;
mod client;
pub mod docs;
pub mod edge;
mod lago_signature;
mod launch;
pub mod limits;
pub mod notifications;
pub mod parity;
pub mod projects;
pub mod sessions;
mod support;
pub mod tenants;
pub mod themes;
pub mod users;
pub mod voice;

pub use client::{Call, Reply, field};
pub use launch::{ALLOWED_ORIGIN, Framework, Server, Target, TenantCredentials};

/// What a check returns: `Err` carries a readable description of the difference.
pub type CheckResult = Result<(), String>;

/// Generates one `#[tokio::test]` per black-box check for one framework. Invoke it once per framework, each in its
/// own module (the test names are the check names). The calling crate needs `tokio` with `macros` and
/// `rt-multi-thread`.
#[macro_export]
macro_rules! blackbox_suite {
    ($framework:expr) => {
        $crate::blackbox_suite!(@checks $framework;
            edge::liveness_and_readiness_answer_ok,
            edge::metrics_expose_http_request_counts,
            edge::a_client_request_id_is_echoed,
            edge::a_request_id_is_generated_when_absent,
            edge::security_headers_are_on_every_response,
            edge::cors_preflight_from_an_allowed_origin,
            edge::cors_preflight_from_a_disallowed_origin,
            edge::cors_simple_requests_only_name_allowed_origins,
            edge::unknown_routes_answer_not_found,
            edge::a_wrong_method_answers_method_not_allowed,
            edge::head_requests_answer_like_get_without_a_body,
            limits::exceeding_the_rate_limit_answers_429_with_headers,
            limits::rate_limits_follow_the_callers_tier,
            limits::a_body_over_the_limit_answers_payload_too_large,
            limits::malformed_json_answers_validation_error,
            auth::missing_credentials_answer_authentication_failed,
            auth::a_bad_token_answers_invalid_token,
            auth::a_garbage_api_key_answers_authentication_failed,
            auth::an_expired_token_answers_token_expired,
            auth::my_tenant_with_the_api_key,
            auth::my_tenant_with_the_admin_token,
            projects::project_crud_round_trip,
            projects::projects_of_another_tenant_are_not_found,
            projects::an_invalid_project_changes_nothing,
            tenants::my_tenant_settings_usage_and_limits,
            tenants::invalid_tenant_settings_change_nothing,
            tenants::tenant_settings_need_administrate_and_stay_in_their_tenant,
            admin::admin_tenant_lifecycle,
            admin::admin_lists_filter_and_paginate,
            admin::admin_routes_refuse_bad_input_and_non_sysadmins,
            users::profile_and_members_round_trip,
            users::a_role_change_takes_effect_at_once,
            users::invalid_user_changes_change_nothing,
            users::user_management_is_guarded_and_tenant_scoped,
            api_keys::api_key_lifecycle,
            api_keys::rotating_an_api_key,
            api_keys::invalid_api_keys_change_nothing,
            api_keys::api_keys_are_guarded_and_tenant_scoped,
            sessions::session_rest_round_trip,
            sessions::invalid_sessions_change_nothing,
            sessions::sessions_are_guarded_and_tenant_scoped,
            audit::audit_queries_filter,
            audit::audit_needs_view_audit_and_stays_in_its_tenant,
            voice::voice_round_trip,
            voice::invalid_voice_changes_change_nothing,
            voice::voice_is_guarded_and_tenant_scoped,
            themes::theme_crud_round_trip,
            themes::unsafe_or_unreadable_themes_are_rejected,
            themes::themes_are_guarded_and_tenant_scoped,
            notifications::notifications_list_read_and_preferences,
            notifications::notification_errors_change_nothing_and_stay_private,
            billing::billing_usage_and_invoices_of_the_tenant,
            billing::billing_needs_billing_access,
            billing::billing_off_answers_service_unavailable,
            billing::lago_webhooks_are_verified_and_handled_once,
            billing::lago_webhooks_are_refused_without_a_secret,
            docs::the_openapi_document_lists_every_route,
            docs::the_docs_page_loads_offline,
        );
    };
    (@checks $framework:expr; $($module:ident :: $check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                if let Err(failure) = $crate::blackbox::$module::$check($framework).await {
                    panic!("{} ({:?}): {}", stringify!($check), $framework, failure);
                }
            }
        )+
    };
}
