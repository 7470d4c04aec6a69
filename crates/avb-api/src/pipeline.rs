//! The request pipeline (spec §2.2), in one framework-free function so both HTTP adapters behave identically:
//! request id → CORS → route → body limit → authentication → tenant → rate limit → access rule → handler (with a
//! deadline) → error envelope → security headers, metrics and one log line. Authentication, tenant and rate limit
//! are [admission](crate::admission), which the WebSocket endpoints share.

use crate::admission::{Admitted, Caller, Policy, Seen};
use crate::app::App;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, HeaderText, Headers, Method};
use crate::input::{Input, ReplyBody};
use crate::routes::{Access, RATE_LIMIT_EXEMPT, Route};
use avb_auth::credentials::CredentialSources;
use avb_core::rate_limit::{RateLimitDecision, RateLimitPolicy};
use avb_core::{Ctx, ErrorCode, IdGen, Principal, RateLimitTier, RequestId, Role};
use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Instant;
use uuid::Uuid;

/// Security headers on every response (spec §13.3, exactly that set; the microphone is allowed for self).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: https:; font-src 'self' data:; connect-src 'self' wss: https:; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self';",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("x-xss-protection", "1; mode=block"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(self), \
         payment=(), usb=()",
    ),
];

/// Request headers a browser may send cross-origin (spec §4 `CORS_ALLOW_HEADERS`).
pub const CORS_ALLOW_HEADERS: &str = "accept, accept-encoding, authorization, content-type, dnt, origin, user-agent, \
     x-csrftoken, x-requested-with, x-tenant-id, x-request-id, x-api-key";

/// Response headers a browser may read.
pub const CORS_EXPOSE_HEADERS: &str =
    "x-request-id, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, retry-after";

/// The matched route table, built once.
#[derive(Debug)]
pub(crate) struct RouteIndex {
    router: matchit::Router<Vec<usize>>,
    routes: Vec<Route>,
}

impl RouteIndex {
    pub(crate) fn new(routes: Vec<Route>) -> Self {
        let mut by_path: Vec<(&'static str, Vec<usize>)> = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            match by_path.iter_mut().find(|(p, _)| *p == route.path) {
                Some((_, list)) => list.push(i),
                None => by_path.push((route.path, vec![i])),
            }
        }
        let mut router = matchit::Router::new();
        for (path, list) in by_path {
            if let Err(err) = router.insert(path, list) {
                // The table is static and covered by tests; a conflict is a programming error worth a loud log.
                tracing::error!(%path, error = %err, "route conflict");
            }
        }
        Self { router, routes }
    }

    pub(crate) fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The `Allow` header value for `path` (RFC 9110 §15.5.6): its routes' methods, and `HEAD` wherever `GET` is
    /// served. `None` when no route matches the path.
    fn allowed(&self, path: &str) -> Option<String> {
        let matched = self.router.at(path).ok()?;
        let methods: Vec<Method> = matched
            .value
            .iter()
            .filter_map(|i| self.routes.get(*i))
            .map(|r| r.method)
            .collect();
        let mut names: Vec<&str> = Vec::new();
        for method in &methods {
            names.push(method.as_str());
            if *method == Method::Get && !methods.contains(&Method::Head) {
                names.push(Method::Head.as_str());
            }
        }
        Some(names.join(", "))
    }

    fn find(&self, method: Method, path: &str) -> Result<(Route, Vec<(String, String)>), ApiError> {
        let matched = self
            .router
            .at(path)
            .map_err(|_| ApiError::with_message(ErrorCode::NotFound, "No such route"))?;
        let lookup = |m: Method| {
            matched
                .value
                .iter()
                .filter_map(|i| self.routes.get(*i))
                .find(|r| r.method == m)
        };
        let route = lookup(method)
            .or_else(|| {
                if method == Method::Head {
                    lookup(Method::Get)
                } else {
                    None
                }
            })
            .copied()
            .ok_or_else(|| ApiError::new(ErrorCode::MethodNotAllowed))?;
        let mut params = Vec::with_capacity(matched.params.len());
        params.extend(matched.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        Ok((route, params))
    }
}

struct Outcome {
    response: ApiResponse,
    endpoint: &'static str,
    /// Rate-limit decision, tenant and user, as far as admission got.
    seen: Seen,
    cause: Option<String>,
    /// `Allow` for a `method_not_allowed` answer.
    allow: Option<String>,
}

/// What the pipeline reads of a request: borrowed from [`App::handle`], which keeps path and headers for the
/// response and the log line; query and body move on to the handler.
struct Parts<'a> {
    method: Method,
    path: &'a str,
    headers: &'a Headers,
    peer: Option<IpAddr>,
    oversized: bool,
    query: String,
    body: Vec<u8>,
}

impl App {
    /// Handles one request end to end. Never panics and never fails: every problem becomes an envelope.
    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        let started = Instant::now();
        let inner = self.inner();
        let ApiRequest {
            method,
            path,
            query,
            headers,
            body,
            oversized,
            peer,
        } = req;
        let request_id = request_id_for(&headers, inner.ids.as_ref());
        let origin = headers.get("origin");

        let mut outcome =
            if method == Method::Options && headers.get("access-control-request-method").is_some() {
                Outcome {
                    response: self.preflight(origin),
                    endpoint: "cors_preflight",
                    seen: Seen::default(),
                    cause: None,
                    allow: None,
                }
            } else {
                let parts = Parts {
                    method,
                    path: &path,
                    headers: &headers,
                    peer,
                    oversized,
                    query,
                    body,
                };
                self.run(parts, &request_id).await
            };

        let response = &mut outcome.response;
        response.insert_header("x-request-id", exact(request_id.as_str()));
        for (name, value) in SECURITY_HEADERS {
            response.insert_header(name, *value);
        }
        if let Some(rate) = outcome.seen.rate {
            response.insert_header("x-ratelimit-limit", decimal(rate.limit));
            response.insert_header("x-ratelimit-remaining", decimal(rate.remaining));
            // Spec §10.2: the reset is a Unix time (seconds), rounded up so clients never retry early.
            let reset_in = rate.reset_after.as_secs() + u64::from(rate.reset_after.subsec_nanos() > 0);
            let reset_at = inner
                .clock
                .now()
                .timestamp()
                .saturating_add(i64::try_from(reset_in).unwrap_or(0));
            response.insert_header("x-ratelimit-reset", decimal(reset_at));
        }
        self.cors_headers(origin, response);
        if method == Method::Head {
            response.body.clear();
        }

        let elapsed = started.elapsed();
        inner.metrics.http_request(
            method.as_str(),
            outcome.endpoint,
            outcome.response.status,
            elapsed.as_secs_f64(),
        );
        let status = outcome.response.status;
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        // Ids as text on the stack: the log line must not cost an allocation per request.
        let (mut tenant_text, mut user_text) = (Uuid::encode_buffer(), Uuid::encode_buffer());
        let tenant = uuid_text(outcome.seen.tenant.map(|t| t.as_uuid()), &mut tenant_text);
        let user = uuid_text(outcome.seen.user.map(|u| u.as_uuid()), &mut user_text);
        if status >= 500 {
            let cause = outcome.cause.as_deref().unwrap_or("");
            tracing::error!(request_id = %request_id, method = method.as_str(), path = %path, status, duration_ms, tenant, user, cause, "request_completed");
        } else if status >= 400 {
            tracing::warn!(request_id = %request_id, method = method.as_str(), path = %path, status, duration_ms, tenant, user, "request_completed");
        } else {
            tracing::info!(request_id = %request_id, method = method.as_str(), path = %path, status, duration_ms, tenant, user, "request_completed");
        }
        outcome.response
    }

    async fn run(&self, req: Parts<'_>, request_id: &RequestId) -> Outcome {
        let mut outcome = Outcome {
            // Replaced below; a placeholder that allocates nothing.
            response: ApiResponse {
                status: 500,
                headers: Vec::new(),
                body: Vec::new(),
            },
            endpoint: "unmatched",
            seen: Seen::default(),
            cause: None,
            allow: None,
        };
        let result = self.run_inner(req, request_id, &mut outcome).await;
        outcome.response = match result {
            Ok(response) => response,
            Err(mut err) => {
                outcome.cause = err.cause.take();
                self.error_response(err, outcome.cause.as_deref())
            }
        };
        if let Some(allow) = outcome.allow.take() {
            outcome.response.insert_header("allow", allow);
        }
        outcome
    }

    async fn run_inner(
        &self,
        req: Parts<'_>,
        request_id: &RequestId,
        outcome: &mut Outcome,
    ) -> Result<ApiResponse, ApiError> {
        let inner = self.inner();
        let (route, params) = match inner.routes.find(req.method, req.path) {
            Ok(found) => found,
            Err(err) => {
                if err.code == ErrorCode::MethodNotAllowed {
                    outcome.allow = inner.routes.allowed(req.path);
                }
                return Err(err);
            }
        };
        outcome.endpoint = route.operation;
        if req.oversized || req.body.len() > inner.config.max_body_bytes {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge)
                .details(serde_json::json!({ "max_bytes": inner.config.max_body_bytes })));
        }
        let sources = CredentialSources {
            authorization: req.headers.get("authorization"),
            x_api_key: req.headers.get("x-api-key"),
            ..Default::default()
        };
        let caller = Caller::new(req.path, req.headers, req.peer, sources);
        let Admitted { ctx, tenant, .. } = self
            .admit(request_id, &caller, &Policy::REST, &mut outcome.seen)
            .await?;
        check_access(route.access, &ctx)?;

        let input = Input {
            params,
            query: req.query,
            body: req.body,
            // Copied only for the few routes that read headers (webhook signatures): no cost elsewhere.
            headers: route.headers.then(|| req.headers.clone()),
            tenant,
        };
        let handler = route.handler;
        let reply =
            match tokio::time::timeout(inner.config.request_timeout, handler(self, &ctx, &input)).await {
                Ok(result) => result?,
                Err(_) => return Err(ApiError::new(ErrorCode::Timeout)),
            };
        Ok(match reply.body {
            ReplyBody::Json(body) => ApiResponse::json(reply.status, &body),
            ReplyBody::Raw { content_type, bytes } => {
                ApiResponse::with_content_type(reply.status, Cow::Borrowed(content_type), bytes)
            }
            ReplyBody::Empty => ApiResponse::empty(reply.status),
        })
    }

    /// The envelope of `err`; `cause` (taken out of it for the log line) is shown on 5xx answers in debug mode.
    fn error_response(&self, err: ApiError, cause: Option<&str>) -> ApiResponse {
        let status = err.status();
        let retry_after = err.retry_after;
        let mut body = err.into_body();
        if status >= 500
            && self.inner().config.debug
            && let Some(cause) = cause
        {
            body.details = serde_json::json!({ "debug": cause });
        }
        let mut response = ApiResponse::json(status, &body);
        if let Some(secs) = retry_after {
            response.insert_header("retry-after", decimal(secs));
        }
        response
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.inner()
            .config
            .cors_origins
            .iter()
            .any(|o| o == "*" || o == origin)
    }

    fn preflight(&self, origin: Option<&str>) -> ApiResponse {
        let mut response = ApiResponse::empty(204);
        if origin.is_some_and(|o| self.origin_allowed(o)) {
            response.insert_header(
                "access-control-allow-methods",
                "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            );
            response.insert_header("access-control-allow-headers", CORS_ALLOW_HEADERS);
            response.insert_header("access-control-max-age", "86400");
        }
        response
    }

    fn cors_headers(&self, origin: Option<&str>, response: &mut ApiResponse) {
        if let Some(origin) = origin.filter(|o| self.origin_allowed(o)) {
            response.insert_header("access-control-allow-origin", exact(origin));
            response.insert_header("access-control-allow-credentials", "true");
            response.insert_header("access-control-expose-headers", CORS_EXPOSE_HEADERS);
            response.insert_header("vary", "Origin");
        }
    }
}

pub(crate) fn exempt(path: &str) -> bool {
    // Per request: match `/health` and `/health/…` without allocating.
    RATE_LIMIT_EXEMPT.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The address part of an `ip:…` rate-limit key: the address, or `unknown`.
pub(crate) struct IpKey(pub(crate) Option<IpAddr>);

impl std::fmt::Display for IpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// Rate-limit key and policy for a caller (spec §10.2 `_get_rate_limit_params`); `None` = unlimited.
pub(crate) fn rate_key(
    ctx: &Ctx,
    ip: Option<IpAddr>,
    limits: &crate::app::RateLimits,
) -> Option<(String, RateLimitPolicy)> {
    rate_limit_key(ctx, ip, limits).map(|(key, policy)| (key.as_str().to_owned(), policy))
}

/// [`rate_key`] with the key formatted on the stack.
pub(crate) fn rate_limit_key(
    ctx: &Ctx,
    ip: Option<IpAddr>,
    limits: &crate::app::RateLimits,
) -> Option<(KeyText, RateLimitPolicy)> {
    match ctx.principal() {
        Principal::ApiKey(key) => match key.tier {
            RateLimitTier::Unlimited => None,
            RateLimitTier::Elevated => Some((
                KeyText::format(format_args!("api_key:{}", key.key_id)),
                limits.elevated,
            )),
            RateLimitTier::Standard => Some((
                KeyText::format(format_args!("api_key:{}", key.key_id)),
                limits.standard,
            )),
        },
        Principal::User(user) if user.roles.contains(&Role::Sysadmin) => Some((
            KeyText::format(format_args!("user:{}", user.user_id)),
            limits.elevated,
        )),
        Principal::User(user) => Some((
            KeyText::format(format_args!("user:{}", user.user_id)),
            limits.standard,
        )),
        Principal::System { .. } => None,
        Principal::Anonymous => Some((
            KeyText::format(format_args!("ip:{}", IpKey(ip))),
            limits.anonymous,
        )),
    }
}

/// Bytes a [`KeyText`] holds without allocating: `api_key:` or `user:` and a UUID, `ip:` and an IPv6 address.
const KEY_TEXT_INLINE: usize = 64;

/// Short text formatted on the stack (rate-limit keys), or on the heap when it does not fit.
pub(crate) enum KeyText {
    Inline {
        bytes: [u8; KEY_TEXT_INLINE],
        len: usize,
    },
    Heap(String),
}

impl KeyText {
    pub(crate) fn format(args: std::fmt::Arguments<'_>) -> Self {
        let mut text = KeyText::Inline {
            bytes: [0; KEY_TEXT_INLINE],
            len: 0,
        };
        if std::fmt::Write::write_fmt(&mut text, args).is_err() {
            text = KeyText::Heap(std::fmt::format(args));
        }
        text
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Only whole `&str`s are ever copied in, so the prefix is UTF-8.
            KeyText::Inline { bytes, len } => bytes
                .get(..*len)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            KeyText::Heap(text) => text,
        }
    }
}

impl std::fmt::Write for KeyText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        match self {
            KeyText::Inline { bytes, len } => {
                let end = len.checked_add(s.len()).ok_or(std::fmt::Error)?;
                bytes
                    .get_mut(*len..end)
                    .ok_or(std::fmt::Error)?
                    .copy_from_slice(s.as_bytes());
                *len = end;
                Ok(())
            }
            KeyText::Heap(text) => text.write_str(s),
        }
    }
}

/// The id a request is logged and answered under: the client's `X-Request-ID` when it is a usable one (so a
/// caller can follow its request through our logs), else a fresh one. Shared by the REST pipeline and both
/// WebSocket protocols.
pub(crate) fn request_id_for(headers: &Headers, ids: &dyn IdGen) -> RequestId {
    headers
        .get("x-request-id")
        .and_then(RequestId::from_client)
        .unwrap_or_else(|| new_request_id(ids))
}

/// A fresh request id: the id generator's UUID as `RequestId::generate` writes it (hyphenated, lower case),
/// encoded on the stack so the id costs one allocation instead of two.
fn new_request_id(ids: &dyn IdGen) -> RequestId {
    let uuid = ids.new_uuid();
    let mut buffer = Uuid::encode_buffer();
    RequestId::from_client(uuid.hyphenated().encode_lower(&mut buffer))
        .unwrap_or_else(|| RequestId::generate(&Given(uuid)))
}

/// An id generator answering one UUID already drawn (never used: a UUID is always a valid request id).
#[derive(Debug)]
struct Given(Uuid);

impl IdGen for Given {
    fn new_uuid(&self) -> Uuid {
        self.0
    }
}

/// A UUID as text in `buffer` (the `Display` form), or `""`.
fn uuid_text(id: Option<Uuid>, buffer: &mut [u8; uuid::fmt::Urn::LENGTH]) -> &str {
    match id {
        Some(id) => id.hyphenated().encode_lower(buffer),
        None => "",
    }
}

/// A header value copied into a string of exactly its length: adapters then hand the allocation to the
/// framework as it is (`Bytes` from a full `Vec` needs no second allocation).
fn exact(text: &str) -> HeaderText {
    Cow::Owned(String::from(text))
}

/// An integer header value (`x-ratelimit-*`, `retry-after`), formatted on the stack and copied once.
fn decimal(n: impl std::fmt::Display) -> HeaderText {
    match KeyText::format(format_args!("{n}")) {
        KeyText::Heap(text) => Cow::Owned(text),
        inline => exact(inline.as_str()),
    }
}

pub(crate) fn rate_limited(decision: RateLimitDecision) -> ApiError {
    let retry = decision
        .retry_after
        .map_or(1, |d| (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1));
    ApiError {
        retry_after: Some(retry),
        ..ApiError::with_message(
            ErrorCode::RateLimitExceeded,
            "Too many requests. Please try again later.",
        )
        .details(serde_json::json!({ "retry_after": retry, "limit": decision.limit }))
    }
}

fn check_access(access: Access, ctx: &Ctx) -> Result<(), ApiError> {
    let anonymous = matches!(ctx.principal(), Principal::Anonymous);
    match access {
        Access::Public => Ok(()),
        _ if anonymous => Err(ApiError::new(ErrorCode::AuthenticationFailed)),
        Access::Authenticated => Ok(()),
        Access::Tenant if ctx.tenant().is_none() => Err(ApiError::new(ErrorCode::TenantRequired)),
        Access::Tenant => Ok(()),
        Access::Sysadmin if ctx.principal().has_role(Role::Sysadmin) => Ok(()),
        Access::Sysadmin => Err(ApiError::with_message(
            ErrorCode::PermissionDenied,
            "sysadmin role required",
        )),
    }
}

/// The client's address: the first `X-Forwarded-For` entry when that header is trusted, else the peer. Shared
/// by the REST pipeline and both WebSocket protocols.
pub(crate) fn client_ip(
    headers: &Headers,
    peer: Option<IpAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse().ok())
    {
        return Some(ip);
    }
    peer
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use avb_core::SequentialIds;

    #[test]
    fn generated_request_ids_read_as_the_core_ones() {
        let (ours, core) = (SequentialIds::default(), SequentialIds::default());
        for _ in 0..3 {
            assert_eq!(new_request_id(&ours), RequestId::generate(&core));
        }
    }

    #[test]
    fn stack_text_reads_as_formatted_text() {
        let v6: IpAddr = "2001:db8:85a3:1234:5678:8a2e:370:7334".parse().unwrap();
        for ip in [None, Some("10.1.2.3".parse().unwrap()), Some(v6)] {
            let key = KeyText::format(format_args!("ip:{}", IpKey(ip)));
            assert!(matches!(key, KeyText::Inline { .. }));
            assert_eq!(key.as_str(), format!("ip:{}", IpKey(ip)));
        }
        assert_eq!(IpKey(None).to_string(), "unknown");
        let long = "x".repeat(KEY_TEXT_INLINE + 1);
        let key = KeyText::format(format_args!("user:{long}"));
        assert!(matches!(key, KeyText::Heap(_)));
        assert_eq!(key.as_str(), format!("user:{long}"));
        assert_eq!(decimal(0_u32), "0");
        assert_eq!(decimal(-17_i64), "-17");
        assert_eq!(decimal(u64::MAX), u64::MAX.to_string());
        let mut buffer = Uuid::encode_buffer();
        let id = Uuid::from_u64_pair(1, 2);
        assert_eq!(uuid_text(Some(id), &mut buffer), id.to_string());
        assert_eq!(uuid_text(None, &mut buffer), "");
    }
}
