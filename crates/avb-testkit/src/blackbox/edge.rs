//! The edge every request crosses: health and metrics, request ids, security headers, CORS, unknown routes and
//! methods, HEAD.

use crate::blackbox::{ALLOWED_ORIGIN, CheckResult, Framework, Reply, field};

/// The security headers of spec §13.3, by name: exactly these, with these values, on every response.
const SECURITY_HEADER_NAMES: [&str; 6] = [
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "x-xss-protection",
    "referrer-policy",
    "permissions-policy",
];

/// Checks the §13.3 set on one response.
pub fn security_headers_present(reply: &Reply) -> CheckResult {
    let expected: Vec<&str> = avb_api::SECURITY_HEADERS.iter().map(|(n, _)| *n).collect();
    ensure!(
        expected == SECURITY_HEADER_NAMES,
        "the pipeline's security header set {expected:?} is not §13.3's {SECURITY_HEADER_NAMES:?}"
    );
    for (name, value) in avb_api::SECURITY_HEADERS {
        let all: Vec<&str> = reply
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        ensure!(
            all == [*value],
            "{}: {name} should appear once as {value:?}, got {all:?}",
            reply.what
        );
    }
    reply.expect_header("x-content-type-options", "nosniff")?;
    reply.expect_header("x-frame-options", "DENY")?;
    ensure!(
        reply
            .header("permissions-policy")
            .is_some_and(|p| p.contains("microphone=(self)")),
        "{}: the microphone must be allowed for self",
        reply.what
    );
    Ok(())
}

/// `GET /health` answers 200 `{"status":"ok"}`; `GET /health/ready` 200 with the storage check ok.
pub async fn liveness_and_readiness_answer_ok(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let live = s.get("/health").send().await?;
    live.expect(200)?;
    ensure!(
        field(&live.json(), "/status") == "ok",
        "liveness: {}",
        live.shown()
    );
    live.expect_header("content-type", "application/json")?;
    let ready = s.get("/health/ready").send().await?;
    ready.expect(200)?;
    let body = ready.json();
    ensure!(field(&body, "/status") == "ok", "readiness: {}", ready.shown());
    ensure!(
        field(&body, "/checks/storage/status") == "ok",
        "readiness names its storage check: {}",
        ready.shown()
    );
    Ok(())
}

/// `/metrics` is Prometheus text counting requests in `avb_http_requests_total` (spec §12.3).
pub async fn metrics_expose_http_request_counts(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    s.get("/health").send().await?.expect(200)?;
    s.get("/nowhere").send().await?.expect(404)?;
    let metrics = s.get("/metrics").send().await?;
    metrics.expect(200)?;
    ensure!(
        metrics
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "metrics content type: {:?}",
        metrics.header("content-type")
    );
    let text = String::from_utf8_lossy(&metrics.body);
    let counted = |status: &str| {
        text.lines()
            .any(|l| l.starts_with("avb_http_requests_total{") && l.contains(&format!("status=\"{status}\"")))
    };
    ensure!(
        counted("200") && counted("404"),
        "avb_http_requests_total should count the 200 and the 404:\n{text}"
    );
    Ok(())
}

/// A client's `X-Request-ID` comes back unchanged, on success and on errors.
pub async fn a_client_request_id_is_echoed(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let ok = s
        .get("/health")
        .header("x-request-id", "bb-req-0001")
        .send()
        .await?;
    ok.expect(200)?.expect_header("x-request-id", "bb-req-0001")?;
    let err = s
        .get("/api/v2/tenants/me")
        .header("x-request-id", "bb-req-0002")
        .bearer("not-a-jwt")
        .send()
        .await?;
    err.expect(401)?.expect_header("x-request-id", "bb-req-0002")?;
    Ok(())
}

/// Without a usable `X-Request-ID` each response carries a fresh generated one.
pub async fn a_request_id_is_generated_when_absent(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let first = s.get("/health").send().await?;
    let second = s.get("/nowhere").send().await?;
    // Spaces are not allowed in request ids, so this one is replaced.
    let invalid = s
        .get("/health")
        .header("x-request-id", "has spaces")
        .send()
        .await?;
    let ids: Vec<&str> = [&first, &second, &invalid]
        .iter()
        .filter_map(|r| r.header("x-request-id"))
        .collect();
    ensure!(ids.len() == 3, "every response has an X-Request-ID: {ids:?}");
    ensure!(
        ids.iter().all(|id| !id.is_empty() && *id != "has spaces"),
        "generated ids: {ids:?}"
    );
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    ensure!(unique.len() == 3, "generated ids are unique: {ids:?}");
    Ok(())
}

/// The exact §13.3 set is on successes, errors (401, 404, 405, 413, 429 are covered by their own checks too),
/// preflights and HEAD answers.
pub async fn security_headers_are_on_every_response(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let replies = [
        s.get("/health").send().await?,
        s.get("/api/v2/tenants/me").bearer(&s.api_key).send().await?,
        s.get("/api/v2/tenants/me").send().await?,
        s.get("/no/such/route").send().await?,
        s.delete("/health").send().await?,
        s.post("/api/v2/projects")
            .bearer(&s.admin_token)
            .raw("application/json", b"{".to_vec())
            .send()
            .await?,
        s.call("OPTIONS", "/api/v2/projects")
            .header("origin", ALLOWED_ORIGIN)
            .header("access-control-request-method", "POST")
            .send()
            .await?,
        s.call("HEAD", "/health").send().await?,
    ];
    for reply in &replies {
        security_headers_present(reply)?;
    }
    Ok(())
}

/// A preflight from an allowed origin answers 204 with the allowed methods and headers (incl. `x-tenant-id`,
/// `x-request-id`), credentials and a max age.
pub async fn cors_preflight_from_an_allowed_origin(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let reply = s
        .call("OPTIONS", "/api/v2/projects")
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, x-tenant-id",
        )
        .send()
        .await?;
    reply.expect(204)?;
    ensure!(
        reply.body.is_empty(),
        "a preflight has no body: {}",
        reply.shown()
    );
    reply.expect_header("access-control-allow-origin", ALLOWED_ORIGIN)?;
    reply.expect_header("access-control-allow-credentials", "true")?;
    let methods = reply.header("access-control-allow-methods").unwrap_or_default();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        ensure!(
            methods.contains(method),
            "allowed methods {methods:?} lack {method}"
        );
    }
    let headers = reply.header("access-control-allow-headers").unwrap_or_default();
    for header in [
        "authorization",
        "content-type",
        "x-tenant-id",
        "x-request-id",
        "x-api-key",
    ] {
        ensure!(
            headers.contains(header),
            "allowed headers {headers:?} lack {header}"
        );
    }
    ensure!(
        reply.header("access-control-max-age").is_some(),
        "preflight max age: {}",
        reply.shown()
    );
    Ok(())
}

/// A preflight from another origin gets no CORS grant at all.
pub async fn cors_preflight_from_a_disallowed_origin(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let reply = s
        .call("OPTIONS", "/api/v2/projects")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await?;
    let granted: Vec<String> = reply
        .header_names()
        .into_iter()
        .filter(|n| n.starts_with("access-control-"))
        .collect();
    ensure!(
        granted.is_empty(),
        "a disallowed origin must get no access-control-* header, got {granted:?}"
    );
    Ok(())
}

/// Simple (non-preflight) requests: the allowed origin is echoed with credentials and the exposed headers
/// (request id, rate-limit headers); any other origin gets no `access-control-*` header.
pub async fn cors_simple_requests_only_name_allowed_origins(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let allowed = s
        .get("/api/v2/tenants/me")
        .bearer(&s.api_key)
        .header("origin", ALLOWED_ORIGIN)
        .send()
        .await?;
    allowed.expect(200)?;
    allowed.expect_header("access-control-allow-origin", ALLOWED_ORIGIN)?;
    allowed.expect_header("access-control-allow-credentials", "true")?;
    let exposed = allowed
        .header("access-control-expose-headers")
        .unwrap_or_default();
    for header in [
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        ensure!(
            exposed.contains(header),
            "exposed headers {exposed:?} lack {header}"
        );
    }
    ensure!(
        allowed.header("vary").is_some_and(|v| v.contains("Origin")),
        "responses that depend on Origin say so in Vary: {}",
        allowed.shown()
    );
    let other = s
        .get("/api/v2/tenants/me")
        .bearer(&s.api_key)
        .header("origin", "https://evil.example")
        .send()
        .await?;
    other.expect(200)?;
    ensure!(
        !other
            .header_names()
            .iter()
            .any(|n| n.starts_with("access-control-")),
        "a disallowed origin must get no access-control-* header: {}",
        other.shown()
    );
    Ok(())
}

/// Unknown paths, inside and outside the API prefix, answer 404 with the `not_found` envelope.
pub async fn unknown_routes_answer_not_found(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    for path in [
        "/nowhere",
        "/api/v2/no-such-resource",
        "/api/v3/tenants/me",
        "/api/v2/projects/x/y/z",
    ] {
        let reply = s.get(path).bearer(&s.admin_token).send().await?;
        reply.expect_error(404, "not_found")?;
        security_headers_present(&reply)?;
    }
    Ok(())
}

/// A known path with a method it does not serve answers 405 with the `method_not_allowed` envelope.
pub async fn a_wrong_method_answers_method_not_allowed(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    s.delete("/health")
        .send()
        .await?
        .expect_error(405, "method_not_allowed")?;
    s.call("PUT", "/api/v2/tenants/me")
        .bearer(&s.admin_token)
        .json(&serde_json::json!({}))
        .send()
        .await?
        .expect_error(405, "method_not_allowed")?;
    Ok(())
}

/// `HEAD` on a GET route answers the GET's status and headers with an empty body.
pub async fn head_requests_answer_like_get_without_a_body(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    for (path, token) in [("/health", None), ("/api/v2/tenants/me", Some(s.api_key.clone()))] {
        let call = |method: &str| {
            let call = s.call(method, path);
            match &token {
                Some(t) => call.bearer(t),
                None => call,
            }
        };
        let get = call("GET").send().await?;
        let head = call("HEAD").send().await?;
        head.expect(get.status)?;
        ensure!(head.body.is_empty(), "HEAD {path} has a body: {}", head.shown());
        ensure!(
            head.header("content-type") == get.header("content-type"),
            "HEAD {path} content type {:?} differs from GET's {:?}",
            head.header("content-type"),
            get.header("content-type")
        );
        security_headers_present(&head)?;
    }
    s.call("HEAD", "/nowhere").send().await?.expect(404)?;
    Ok(())
}
