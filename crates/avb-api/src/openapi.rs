//! The OpenAPI 3.1 document of the API, generated from the route table and the types' `utoipa::ToSchema`
//! derivations; served at `GET /api/v2/openapi.json` and browsed at `/api/v2/docs`.
//!
//! Everything the route table knows comes from it: paths, methods, operation ids, path parameters, who may call
//! (security requirements, the `X-Tenant-ID` header) and the tag (the path's first segment). What the table
//! cannot say — the request body, the query filters, pagination and the reply — is described per operation id by
//! `describe`, with the very types the operations parse and answer. Every operation also lists the error
//! envelope for each status the pipeline can answer, its `error` narrowed to the stable codes of that status.
//!
//! A route without a description is left out of the document and named by [`undocumented`]; the tests require
//! it to be empty, so a new route cannot ship undocumented.

use crate::dto::{
    ApiKeyResponse, BillingInvoicePage, BillingUsage, BillingWebhookAck, CreatedApiKeyResponse,
    MarkedReadResponse, RotatedApiKeyResponse,
};
use crate::http::Method;
use crate::ops;
use crate::routes::{API_PREFIX, Access, RATE_LIMIT_EXEMPT, Route, routes};
use avb_core::audit::AuditEntry;
use avb_core::{ErrorBody, ErrorCode, Page, PageRequest};
use avb_tenancy::api_key::{CreateApiKeyRequest, RotateApiKeyRequest};
use avb_tenancy::model::{
    Notification, Persona, Project, Session, SessionEvent, Tenant, TenantLimits, TenantSettings, Theme, User,
    VoiceConfig, WakeWord,
};
use avb_tenancy::notification::{NotificationPreferences, UpdatePreferencesRequest};
use avb_tenancy::project::{CreateProjectRequest, UpdateProjectRequest};
use avb_tenancy::session::CreateSessionRequest;
use avb_tenancy::tenant::{
    CreateTenantRequest, SuspendTenantRequest, TenantCreated, TenantListItem, TenantSettingsUpdate,
    TenantUsage, UpdateTenantRequest,
};
use avb_tenancy::theme::{CreateThemeRequest, UpdateThemeRequest};
use avb_tenancy::user::{ChangeRolesRequest, InviteUserRequest, UpdateProfileRequest};
use avb_tenancy::voice::{
    CreatePersonaRequest, CreateWakeWordRequest, UpdatePersonaRequest, UpdateVoiceConfigRequest,
    UpdateWakeWordRequest,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::info::{InfoBuilder, LicenseBuilder};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required, Response,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v2/openapi.json";

/// Security scheme: a JWT from the identity provider (`Authorization: Bearer <jwt>`).
pub const BEARER_JWT: &str = "bearerJwt";
/// Security scheme: an API key as a bearer token (`Authorization: Bearer avb_…`).
pub const BEARER_API_KEY: &str = "bearerApiKey";
/// Security scheme: an API key in the `X-API-Key` header.
pub const HEADER_API_KEY: &str = "apiKeyHeader";

/// JSON media type.
const JSON: &str = "application/json";

/// Component schemas collected while the document is built, by name.
type Schemas = BTreeMap<String, RefOr<Schema>>;

/// Produces a schema (usually a `$ref`), registering what it refers to.
type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// Produces query parameters.
type ParamsFn = fn() -> Vec<Parameter>;

/// What an operation answers when it succeeds.
#[derive(Clone, Copy)]
enum Success {
    /// A JSON body with this status.
    Json(u16, SchemaFn),
    /// `204 No Content`.
    Empty,
    /// A non-JSON body: media type and schema.
    Raw(&'static str, SchemaFn),
}

/// The part of an operation's contract the route table does not hold.
#[derive(Clone, Copy)]
struct Describe {
    summary: &'static str,
    success: Success,
    query: Option<ParamsFn>,
    /// Header parameters of the operation itself (beyond the credentials and `X-Tenant-ID`).
    headers: Option<ParamsFn>,
    paged: bool,
    body: Option<(SchemaFn, bool)>,
    /// A schema for path parameters other than `id` (which is always a UUID).
    path_param: Option<SchemaFn>,
    /// A status answered with its own body instead of the error envelope (readiness: 503 with the checks).
    other: Option<(u16, &'static str, SchemaFn)>,
}

impl Describe {
    const fn new(summary: &'static str, success: Success) -> Self {
        Self {
            summary,
            success,
            query: None,
            headers: None,
            paged: false,
            body: None,
            path_param: None,
            other: None,
        }
    }

    /// Filters from an `IntoParams` query struct.
    const fn query(mut self, params: ParamsFn) -> Self {
        self.query = Some(params);
        self
    }

    /// Header parameters.
    const fn headers(mut self, params: ParamsFn) -> Self {
        self.headers = Some(params);
        self
    }

    /// `limit` and `offset` ([`PageRequest`]).
    const fn paged(mut self) -> Self {
        self.paged = true;
        self
    }

    /// A JSON request body; `required` when an empty body cannot succeed.
    const fn body(mut self, schema: SchemaFn, required: bool) -> Self {
        self.body = Some((schema, required));
        self
    }
}

/// 200 with a JSON body.
const fn ok(summary: &'static str, schema: SchemaFn) -> Describe {
    Describe::new(summary, Success::Json(200, schema))
}

/// 201 with a JSON body.
const fn created(summary: &'static str, schema: SchemaFn) -> Describe {
    Describe::new(summary, Success::Json(201, schema))
}

/// 204.
const fn no_content(summary: &'static str) -> Describe {
    Describe::new(summary, Success::Empty)
}

/// The description of the operation `operation`, or `None` when it has none (see [`undocumented`]).
fn describe(operation: &str) -> Option<Describe> {
    use ops::{admin, api_keys, audit, billing, notifications, projects, sessions, themes, users, voice};
    Some(match operation {
        "health" => ok("Liveness: the process answers", liveness),
        "health_ready" => Describe {
            other: Some((503, "A dependency failed; `checks` names it", readiness)),
            ..ok("Readiness: every configured dependency answers", readiness)
        },
        "metrics" => Describe::new(
            "Prometheus metrics (text exposition format)",
            Success::Raw("text/plain", text),
        ),
        "openapi" => Describe::new("This OpenAPI 3.1 document", Success::Json(200, any_object)),
        "docs" => Describe::new(
            "Interactive API documentation (served offline)",
            Success::Raw("text/html", text),
        ),
        "docs_asset" => Describe {
            path_param: Some(doc_asset_name),
            ..Describe::new(
                "A static file of the documentation page",
                Success::Raw("*/*", text),
            )
        },
        // tenants
        "get_my_tenant" => ok("The caller's tenant", named::<Tenant>),
        "get_my_tenant_settings" => ok("The caller's tenant settings", named::<TenantSettings>),
        "update_my_tenant_settings" => {
            ok("Change tenant settings", named::<TenantSettings>).body(named::<TenantSettingsUpdate>, false)
        }
        "get_my_tenant_usage" => ok("Usage of each quota", named::<TenantUsage>),
        "get_my_tenant_limits" => ok("The tenant's quotas", named::<TenantLimits>),
        // admin
        "admin_list_tenants" => ok("List every tenant", page::<TenantListItem>)
            .query(params::<admin::TenantListQuery>)
            .paged(),
        "admin_create_tenant" => created(
            "Create a tenant with its first administrator",
            named::<TenantCreated>,
        )
        .body(named::<CreateTenantRequest>, true),
        "admin_get_tenant" => ok("Get a tenant", named::<Tenant>),
        "admin_update_tenant" => ok(
            "Change a tenant's name, tier, limits or settings",
            named::<Tenant>,
        )
        .body(named::<UpdateTenantRequest>, false),
        "admin_delete_tenant" => ok("Soft-delete a tenant", named::<Tenant>),
        "admin_suspend_tenant" => {
            ok("Suspend a tenant", named::<Tenant>).body(named::<SuspendTenantRequest>, true)
        }
        "admin_activate_tenant" => ok("Activate a tenant", named::<Tenant>),
        "admin_list_users" => ok("List users of every tenant", page::<User>)
            .query(params::<admin::UserListQuery>)
            .paged(),
        "admin_get_user" => ok("Get any user", named::<User>),
        "admin_deactivate_user" => ok("Deactivate any tenant user", named::<User>),
        // users
        "get_me" => ok("The caller's user record", named::<User>),
        "update_me" => {
            ok("Change the caller's profile", named::<User>).body(named::<UpdateProfileRequest>, false)
        }
        "list_users" => ok("List the tenant's users", page::<User>)
            .query(params::<users::UserListQuery>)
            .paged(),
        "invite_user" => created("Invite a user", named::<User>).body(named::<InviteUserRequest>, true),
        "get_user" => ok("Get a user of the tenant", named::<User>),
        "change_user_roles" => {
            ok("Replace a user's roles", named::<User>).body(named::<ChangeRolesRequest>, true)
        }
        "deactivate_user" => ok("Deactivate a user", named::<User>),
        "reactivate_user" => ok("Reactivate a user", named::<User>),
        // projects
        "create_project" => {
            created("Create a project", named::<Project>).body(named::<CreateProjectRequest>, true)
        }
        "list_projects" => ok("List the projects the caller may view", page::<Project>)
            .query(params::<projects::ProjectListQuery>)
            .paged(),
        "get_project" => ok("Get a project", named::<Project>),
        "update_project" => {
            ok("Change a project", named::<Project>).body(named::<UpdateProjectRequest>, false)
        }
        "delete_project" => no_content("Delete a project and its API keys"),
        // api keys
        "create_api_key" => created(
            "Create an API key (the secret `key` is shown once)",
            named::<CreatedApiKeyResponse>,
        )
        .body(named::<CreateApiKeyRequest>, true),
        "list_api_keys" => ok("List the API keys the caller may view", page::<ApiKeyResponse>)
            .query(params::<api_keys::ApiKeyListQuery>)
            .paged(),
        "get_api_key" => ok("Get an API key", named::<ApiKeyResponse>),
        "revoke_api_key" => ok("Revoke an API key at once", named::<ApiKeyResponse>),
        "rotate_api_key" => ok(
            "Replace an API key (the new secret `key` is shown once)",
            named::<RotatedApiKeyResponse>,
        )
        .body(named::<RotateApiKeyRequest>, false),
        // sessions
        "create_session" => {
            created("Open a voice session", named::<Session>).body(named::<CreateSessionRequest>, false)
        }
        "list_sessions" => ok("List the tenant's sessions", page::<Session>)
            .query(params::<sessions::SessionListQuery>)
            .paged(),
        "get_session" => ok("Get a session", named::<Session>),
        "list_session_events" => ok("A session's events (transcript)", page::<SessionEvent>)
            .query(params::<sessions::EventListQuery>)
            .paged(),
        "terminate_session" => ok("Terminate a session", named::<Session>),
        // realtime client secrets (OpenAI-compatible shapes, documented by OpenAI's own API reference)
        "create_realtime_client_secret" => ok(
            "Mint an ephemeral `ek_` client secret for `/v1/realtime` (OpenAI GA shape)",
            any_object,
        )
        .body(any_object, false),
        "create_realtime_session" => ok(
            "Mint an ephemeral client secret with a beta session object (OpenAI beta shape)",
            any_object,
        )
        .body(any_object, false),
        // audit
        "query_audit" => ok("Query the tenant's audit trail", page::<AuditEntry>)
            .query(params::<audit::AuditParams>)
            .paged(),
        // voice
        "get_voice_config" => ok("The tenant's voice configuration", named::<VoiceConfig>),
        "update_voice_config" => ok("Change the voice configuration", named::<VoiceConfig>)
            .body(named::<UpdateVoiceConfigRequest>, false),
        "list_personas" => ok("List the personas the caller may view", page::<Persona>)
            .query(params::<voice::PersonaListQuery>)
            .paged(),
        "create_persona" => {
            created("Create a persona", named::<Persona>).body(named::<CreatePersonaRequest>, true)
        }
        "get_persona" => ok("Get a persona", named::<Persona>),
        "update_persona" => {
            ok("Change a persona", named::<Persona>).body(named::<UpdatePersonaRequest>, false)
        }
        "delete_persona" => no_content("Delete a persona"),
        "list_wake_words" => ok("List wake words", page::<WakeWord>)
            .query(params::<voice::WakeWordListQuery>)
            .paged(),
        "create_wake_word" => {
            created("Create a wake word", named::<WakeWord>).body(named::<CreateWakeWordRequest>, true)
        }
        "get_wake_word" => ok("Get a wake word", named::<WakeWord>),
        "update_wake_word" => {
            ok("Change a wake word", named::<WakeWord>).body(named::<UpdateWakeWordRequest>, false)
        }
        "delete_wake_word" => no_content("Delete a wake word"),
        // themes
        "create_theme" => created("Create a theme", named::<Theme>).body(named::<CreateThemeRequest>, true),
        "list_themes" => ok("List the themes the caller may view", page::<Theme>)
            .query(params::<themes::ThemeListQuery>)
            .paged(),
        "get_theme" => ok("Get a theme", named::<Theme>),
        "update_theme" => ok("Change a theme", named::<Theme>).body(named::<UpdateThemeRequest>, false),
        "delete_theme" => no_content("Delete a theme"),
        // billing
        "get_billing_usage" => ok(
            "The tenant's usage in the current billing period",
            named::<BillingUsage>,
        ),
        "list_billing_invoices" => ok("The tenant's invoices, newest first", named::<BillingInvoicePage>)
            .query(params::<billing::InvoiceQuery>),
        "receive_lago_webhook" => ok(
            "Receive a Lago webhook. No user credential: the Lago signature over the raw body is the credential \
             (`X-Lago-Signature`, HMAC-SHA256 or Lago's RS256 JWT per `X-Lago-Signature-Algorithm`); a missing or \
             bad signature (or a server with nothing to verify it with) is 401 `authentication_failed`. A delivery is handled once per `X-Lago-Unique-Key`: a \
             repeat answers 200 `duplicate` and does nothing. 503 `service_unavailable` when billing is off.",
            named::<BillingWebhookAck>,
        )
        .headers(lago_webhook_headers)
        .body(any_object, true),
        // notifications
        "list_notifications" => ok("The caller's notifications, newest first", page::<Notification>)
            .query(params::<notifications::NotificationListQuery>)
            .paged(),
        "mark_all_notifications_read" => ok("Mark every notification read", named::<MarkedReadResponse>),
        "mark_notification_read" => ok("Mark a notification read", named::<Notification>),
        "get_notification_preferences" => ok(
            "The caller's notification preferences",
            named::<NotificationPreferences>,
        ),
        "update_notification_preferences" => ok(
            "Change notification preferences",
            named::<NotificationPreferences>,
        )
        .body(named::<UpdatePreferencesRequest>, false),
        _ => return None,
    })
}

/// Operation ids of routes that `describe` does not cover (and that the document therefore leaves out).
pub fn undocumented() -> Vec<&'static str> {
    routes()
        .iter()
        .filter(|r| {
            describe(r.operation).is_none() || !path_params_described(r) || http_method(r.method).is_none()
        })
        .map(|r| r.operation)
        .collect()
}

/// The document, built from [`routes()`].
pub fn document() -> OpenApi {
    let mut schemas = Schemas::new();
    let mut paths = PathsBuilder::new();
    let mut tags = BTreeSet::new();
    let mut by_path: Vec<(&'static str, PathItem)> = Vec::new();
    for route in routes() {
        let Some(describe) = describe(route.operation) else {
            continue;
        };
        if !path_params_described(&route) {
            continue;
        }
        let Some(method) = http_method(route.method) else {
            continue;
        };
        let tag = tag_of(route.path);
        tags.insert(tag);
        let operation = operation(&route, &describe, tag, &mut schemas);
        match by_path.iter_mut().find(|(p, _)| *p == route.path) {
            Some((_, item)) => item.merge_operations(PathItem::new(method, operation)),
            None => by_path.push((route.path, PathItem::new(method, operation))),
        }
    }
    for (path, item) in by_path {
        paths = paths.path(path, item);
    }
    register::<ErrorBody>(&mut schemas);

    let mut components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            BEARER_JWT,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token of the identity provider (Keycloak), or a dev token printed by the \
                         reference server.",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            BEARER_API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("avb_…")
                    .description(Some("An API key (`avb_…`) sent as a bearer token."))
                    .build(),
            ),
        )
        .security_scheme(
            HEADER_API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`avb_…`) in the `X-API-Key` header.",
            ))),
        )
        .parameter(
            "TenantId",
            ParameterBuilder::new()
                .name("X-Tenant-ID")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "The tenant to act for, when the credential does not name one (sysadmins may switch \
                     tenants with it; anyone else naming another tenant is refused). An empty value counts as \
                     absent.",
                ))
                .schema(Some(
                    AnyOfBuilder::new()
                        .item(uuid_schema())
                        .item(ObjectBuilder::new().schema_type(Type::String).max_length(Some(0))),
                ))
                .build(),
        )
        .parameter(
            "Limit",
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("Page size."))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(PageRequest::MAX_LIMIT))
                        .default(Some(PageRequest::DEFAULT_LIMIT.into())),
                ))
                .build(),
        )
        .parameter(
            "Offset",
            ParameterBuilder::new()
                .name("offset")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("Items to skip."))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0))
                        .maximum(Some(PageRequest::MAX_OFFSET))
                        .default(Some(0.into())),
                ))
                .build(),
        );
    for (name, header) in headers() {
        components = components.header(name, header);
    }
    for status in error_statuses() {
        components = components.response(error_response_name(status), error_response(status));
    }

    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("AgentVoiceBox API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "REST API of AgentVoiceBox, a multi-tenant voice agent platform. Errors are always the \
                     envelope `{\"error\", \"message\", \"details\"}` with a stable `error` code. Every \
                     response carries `X-Request-ID`; rate-limited paths also carry `X-RateLimit-Limit`, \
                     `X-RateLimit-Remaining` and `X-RateLimit-Reset`.",
                ))
                .license(Some(
                    LicenseBuilder::new()
                        .name("MIT OR Apache-2.0")
                        .identifier(Some("MIT OR Apache-2.0"))
                        .build(),
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .tags(Some(tags.into_iter().map(|t| TagBuilder::new().name(t).build())))
        .build()
}

/// The document as JSON bytes, built once.
pub fn document_json() -> Result<&'static [u8], crate::ApiError> {
    static JSON_BYTES: LazyLock<Result<Vec<u8>, String>> =
        LazyLock::new(|| serde_json::to_vec(&document()).map_err(|e| e.to_string()));
    JSON_BYTES.as_deref().map_err(|e| crate::ApiError {
        cause: Some(format!("OpenAPI document: {e}")),
        ..crate::ApiError::new(ErrorCode::InternalError)
    })
}

fn operation(
    route: &Route,
    describe: &Describe,
    tag: &str,
    schemas: &mut Schemas,
) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(route.operation))
        .summary(Some(describe.summary))
        .tag(tag);
    for name in path_params(route.path) {
        let schema = if name == "id" {
            uuid_schema()
        } else {
            match describe.path_param {
                Some(f) => f(schemas),
                None => continue,
            }
        };
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema)),
        );
    }
    if matches!(route.access, Access::Tenant | Access::Authenticated) {
        op = op.parameter_ref(Ref::new("#/components/parameters/TenantId"));
    }
    if let Some(query) = describe.query {
        for param in query() {
            op = op.parameter(param);
        }
    }
    if let Some(headers) = describe.headers {
        for param in headers() {
            op = op.parameter(param);
        }
    }
    if describe.paged {
        op = op
            .parameter_ref(Ref::new("#/components/parameters/Limit"))
            .parameter_ref(Ref::new("#/components/parameters/Offset"));
    }
    if let Some((schema, required)) = describe.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content(JSON, ContentBuilder::new().schema(Some(schema(schemas))).build())
                .required(Some(if required { Required::True } else { Required::False }))
                .build(),
        ));
    }
    match route.access {
        Access::Public => {}
        Access::Sysadmin => {
            op = op.security(SecurityRequirement::new(BEARER_JWT, Vec::<String>::new()));
        }
        Access::Authenticated | Access::Tenant => {
            for scheme in [BEARER_JWT, BEARER_API_KEY, HEADER_API_KEY] {
                op = op.security(SecurityRequirement::new(scheme, Vec::<String>::new()));
            }
        }
    }

    let limited = !exempt(route.path);
    let mut responses = ResponsesBuilder::new();
    let (status, response) = match describe.success {
        Success::Json(status, schema) => (
            status,
            with_headers(ResponseBuilder::new().description("Success"), limited)
                .content(JSON, ContentBuilder::new().schema(Some(schema(schemas))).build())
                .build(),
        ),
        Success::Raw(media, schema) => (
            200,
            with_headers(ResponseBuilder::new().description("Success"), limited)
                .content(media, ContentBuilder::new().schema(Some(schema(schemas))).build())
                .build(),
        ),
        Success::Empty => (
            204,
            with_headers(ResponseBuilder::new().description("Done; no content"), limited).build(),
        ),
    };
    responses = responses.response(status.to_string(), response);
    for error in error_statuses() {
        if error == 405 {
            continue;
        }
        let own = describe.other.filter(|(s, _, _)| *s == error);
        responses = match own {
            Some((status, description, schema)) => {
                let envelope = error_schema(status);
                let body = AnyOfBuilder::new().item(schema(schemas)).item(envelope);
                responses.response(
                    status.to_string(),
                    with_headers(ResponseBuilder::new().description(description), limited)
                        .content(JSON, ContentBuilder::new().schema(Some(body)).build())
                        .build(),
                )
            }
            None => responses.response(
                error.to_string(),
                Ref::from_response_name(error_response_name(error)),
            ),
        };
    }
    op.responses(responses.build()).build()
}

/// `X-Request-ID`, and the rate-limit headers on rate-limited paths.
fn with_headers(builder: ResponseBuilder, limited: bool) -> ResponseBuilder {
    let builder = builder.header_ref("X-Request-ID", Ref::new("#/components/headers/XRequestId"));
    if limited {
        builder
            .header_ref(
                "X-RateLimit-Limit",
                Ref::new("#/components/headers/XRateLimitLimit"),
            )
            .header_ref(
                "X-RateLimit-Remaining",
                Ref::new("#/components/headers/XRateLimitRemaining"),
            )
            .header_ref(
                "X-RateLimit-Reset",
                Ref::new("#/components/headers/XRateLimitReset"),
            )
    } else {
        builder
    }
}

fn headers() -> Vec<(&'static str, utoipa::openapi::header::Header)> {
    let integer = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
    vec![
        (
            "XRequestId",
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)),
                ))
                .description(Some(
                    "The request's id: the client's `X-Request-ID` if acceptable, else generated.",
                ))
                .build(),
        ),
        (
            "XRateLimitLimit",
            HeaderBuilder::new()
                .schema(Some(integer()))
                .description(Some(
                    "Requests allowed in the current window for the caller's tier.",
                ))
                .build(),
        ),
        (
            "XRateLimitRemaining",
            HeaderBuilder::new()
                .schema(Some(integer()))
                .description(Some("Requests left in the current window."))
                .build(),
        ),
        (
            "XRateLimitReset",
            HeaderBuilder::new()
                .schema(Some(integer()))
                .description(Some("When the window resets, as a Unix time in seconds."))
                .build(),
        ),
        (
            "RetryAfter",
            HeaderBuilder::new()
                .schema(Some(integer()))
                .description(Some("Seconds to wait before retrying."))
                .build(),
        ),
    ]
}

/// Every status of the stable error codes, ascending.
fn error_statuses() -> BTreeSet<u16> {
    ErrorCode::ALL.iter().map(|c| c.status()).collect()
}

fn error_response_name(status: u16) -> String {
    format!("Error{status}")
}

/// The envelope with `error` narrowed to the codes answered with `status`.
fn error_schema(status: u16) -> RefOr<Schema> {
    let codes: Vec<&str> = ErrorCode::ALL
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| c.as_str())
        .collect();
    AllOfBuilder::new()
        .item(Ref::from_schema_name(ErrorBody::name()))
        .item(
            ObjectBuilder::new().property(
                "error",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes)),
            ),
        )
        .into()
}

fn error_response(status: u16) -> Response {
    let codes: Vec<String> = ErrorCode::ALL
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| format!("`{}`", c.as_str()))
        .collect();
    let mut builder = ResponseBuilder::new()
        .description(format!("Error envelope; `error` is one of {}.", codes.join(", ")))
        .header_ref("X-Request-ID", Ref::new("#/components/headers/XRequestId"));
    if matches!(status, 429 | 503) {
        builder = builder.header_ref("Retry-After", Ref::new("#/components/headers/RetryAfter"));
    }
    builder
        .content(
            JSON,
            ContentBuilder::new().schema(Some(error_schema(status))).build(),
        )
        .build()
}

/// Registers `T` and everything it refers to.
fn register<T: ToSchema>(schemas: &mut Schemas) {
    let mut deps = Vec::new();
    T::schemas(&mut deps);
    for (name, schema) in deps {
        schemas.entry(name).or_insert(schema);
    }
    schemas.entry(T::name().into_owned()).or_insert_with(T::schema);
}

/// A `$ref` to `T`'s component schema.
fn named<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    register::<T>(schemas);
    Ref::from_schema_name(T::name()).into()
}

/// A `$ref` to `{T}Page`, the [`Page`] of `T`.
fn page<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    register::<T>(schemas);
    let name = format!("{}Page", T::name());
    schemas
        .entry(name.clone())
        .or_insert_with(<Page<T> as PartialSchema>::schema);
    Ref::from_schema_name(name).into()
}

/// The query parameters of an `IntoParams` struct.
fn params<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

fn uuid_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Uuid,
        )))
        .into()
}

fn liveness(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["ok"])),
        )
        .required("status")
        .into()
}

fn readiness(_: &mut Schemas) -> RefOr<Schema> {
    let check = ObjectBuilder::new()
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["ok", "error"])),
        )
        .property("error", ObjectBuilder::new().schema_type(Type::String))
        .required("status");
    ObjectBuilder::new()
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["ok", "unavailable"])),
        )
        .property("checks", ObjectBuilder::new().additional_properties(Some(check)))
        .required("status")
        .required("checks")
        .into()
}

fn text(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn any_object(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).into()
}

/// The headers Lago sends with a webhook. Documented as optional: Lago always sends them, and a delivery
/// without one is refused like a bad signature (401), not as a malformed request.
fn lago_webhook_headers() -> Vec<Parameter> {
    let header = |name: &str, description: &str, schema: ObjectBuilder| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(schema))
            .build()
    };
    let string = || ObjectBuilder::new().schema_type(Type::String);
    vec![
        header(
            "X-Lago-Signature",
            "The signature of the raw body: base64 HMAC-SHA256, or an RS256 JWT whose `data` claim is the body.",
            string(),
        ),
        header(
            "X-Lago-Signature-Algorithm",
            "`jwt` (the default when absent) or `hmac`.",
            string().enum_values(Some(["jwt", "hmac"])),
        ),
        header(
            "X-Lago-Unique-Key",
            "The delivery's id; repeats of it are acknowledged without effect.",
            string(),
        ),
    ]
}

fn doc_asset_name(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ops::docs::ASSETS.iter().map(|a| a.name)))
        .into()
}

/// The `{name}` segments of a path template.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// Every path parameter has a schema: `id` is a UUID, anything else needs [`Describe::path_param`].
fn path_params_described(route: &Route) -> bool {
    let custom = describe(route.operation).and_then(|d| d.path_param).is_some();
    path_params(route.path).all(|name| name == "id" || custom)
}

/// The tag of a path: its first segment under `/api/v2`, or the first segment for the others.
fn tag_of(path: &'static str) -> &'static str {
    let rest = path.strip_prefix(API_PREFIX).unwrap_or(path);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let first = rest.split('/').next().unwrap_or(rest);
    match first {
        "openapi.json" => "docs",
        "v1" => "realtime",
        other => other,
    }
}

fn exempt(path: &str) -> bool {
    RATE_LIMIT_EXEMPT
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
}

fn http_method(method: Method) -> Option<HttpMethod> {
    Some(match method {
        Method::Get => HttpMethod::Get,
        Method::Head => HttpMethod::Head,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
        Method::Options => HttpMethod::Options,
        Method::Other => return None,
    })
}
