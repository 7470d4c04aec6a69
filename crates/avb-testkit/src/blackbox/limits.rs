//! Rate limits (spec §10.2), the body size limit and unreadable bodies.

use crate::blackbox::edge::security_headers_present;
use crate::blackbox::{CheckResult, Framework, field};
use avb_core::Clock as _;
use serde_json::json;

/// With the API-key tier lowered to 3 a minute, three calls pass with a falling `X-RateLimit-Remaining` and the
/// fourth answers 429 `rate_limit_exceeded` with `Retry-After`, the rate-limit headers and `details.retry_after`.
pub async fn exceeding_the_rate_limit_answers_429_with_headers(fw: Framework) -> CheckResult {
    let s = fw
        .start_with(json!({ "rate_limit_api_key_per_minute": 3 }))
        .await?;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = s.get("/api/v2/tenants/me").bearer(&s.api_key).send().await?;
        reply.expect(200)?.expect_header("x-ratelimit-limit", "3")?;
        remaining.push(
            reply
                .header("x-ratelimit-remaining")
                .unwrap_or_default()
                .to_owned(),
        );
        ensure!(
            reply.header("x-ratelimit-reset").is_some(),
            "reset header: {}",
            reply.shown()
        );
    }
    ensure!(
        remaining == ["2", "1", "0"],
        "X-RateLimit-Remaining over three calls: {remaining:?}"
    );
    let limited = s.get("/api/v2/tenants/me").bearer(&s.api_key).send().await?;
    limited.expect_error(429, "rate_limit_exceeded")?;
    limited.expect_header("x-ratelimit-limit", "3")?;
    limited.expect_header("x-ratelimit-remaining", "0")?;
    // Spec §10.2: X-RateLimit-Reset is a Unix time (seconds), at most a minute ahead.
    let now = avb_core::SystemClock.now().timestamp();
    let reset: i64 = limited
        .header("x-ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("429 without a numeric X-RateLimit-Reset: {}", limited.shown()))?;
    let retry_after: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("429 without a numeric Retry-After: {}", limited.shown()))?;
    ensure!(
        (1..=60).contains(&retry_after),
        "Retry-After {retry_after} should be within the minute window"
    );
    ensure!(
        (now - 1..=now + 61).contains(&reset),
        "X-RateLimit-Reset {reset} should be a Unix time within a minute of now ({now})"
    );
    ensure!(
        field(&limited.json(), "/details/retry_after") == retry_after,
        "details.retry_after should equal Retry-After ({retry_after}): {}",
        limited.shown()
    );
    security_headers_present(&limited)?;
    // Another caller (the tenant admin's user budget) is unaffected, and health stays exempt.
    s.get("/api/v2/tenants/me")
        .bearer(&s.admin_token)
        .send()
        .await?
        .expect(200)?;
    let health = s.get("/health").send().await?;
    health.expect(200)?;
    ensure!(
        health.header("x-ratelimit-limit").is_none(),
        "/health is exempt from rate limiting: {}",
        health.shown()
    );
    Ok(())
}

/// Each caller class has its tier: a sysadmin the admin tier; a caller whose credential fails is limited by IP
/// with the default tier, so guessing credentials is rate limited too.
pub async fn rate_limits_follow_the_callers_tier(fw: Framework) -> CheckResult {
    let s = fw
        .start_with(json!({ "rate_limit_default_per_minute": 2, "rate_limit_admin_per_minute": 50 }))
        .await?;
    let admin = s
        .get("/api/v2/admin/tenants")
        .bearer(&s.sysadmin_token)
        .send()
        .await?;
    admin.expect(200)?.expect_header("x-ratelimit-limit", "50")?;
    admin.expect_header("x-ratelimit-remaining", "49")?;
    for _ in 0..2 {
        s.get("/api/v2/tenants/me")
            .bearer("not-a-jwt")
            .send()
            .await?
            .expect_error(401, "invalid_token")?
            .expect_header("x-ratelimit-limit", "2")?;
    }
    s.get("/api/v2/tenants/me")
        .bearer("not-a-jwt")
        .send()
        .await?
        .expect_error(429, "rate_limit_exceeded")?;
    Ok(())
}

/// A body over `MAX_BODY_BYTES` answers 413 `payload_too_large` naming the limit, and creates nothing; a body
/// just within it is accepted.
pub async fn a_body_over_the_limit_answers_payload_too_large(fw: Framework) -> CheckResult {
    let limit = 2048;
    let s = fw.start_with(json!({ "max_body_bytes": limit })).await?;
    let padded = |name: &str, size: usize| {
        let mut body = json!({ "name": name }).to_string().into_bytes();
        body.resize(size, b' ');
        body
    };
    let big = s
        .post("/api/v2/projects")
        .bearer(&s.admin_token)
        .raw("application/json", padded("too big", 4 * limit))
        .send()
        .await?;
    big.expect_error(413, "payload_too_large")?;
    ensure!(
        field(&big.json(), "/details/max_bytes") == limit,
        "413 names the limit: {}",
        big.shown()
    );
    security_headers_present(&big)?;
    let list = s.get("/api/v2/projects").bearer(&s.admin_token).send().await?;
    list.expect(200)?;
    ensure!(
        field(&list.json(), "/total") == 0,
        "a refused body created something: {}",
        list.shown()
    );
    s.post("/api/v2/projects")
        .bearer(&s.admin_token)
        .raw("application/json", padded("just fits", limit))
        .send()
        .await?
        .expect(201)?;
    Ok(())
}

/// Unparseable JSON answers 400 `validation_error` and creates nothing.
pub async fn malformed_json_answers_validation_error(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    for body in [&b"{\"name\": "[..], b"not json at all", b"[1, 2, 3]", b""] {
        s.post("/api/v2/projects")
            .bearer(&s.admin_token)
            .raw("application/json", body.to_vec())
            .send()
            .await?
            .expect_error(400, "validation_error")?;
    }
    let list = s.get("/api/v2/projects").bearer(&s.admin_token).send().await?;
    list.expect(200)?;
    ensure!(
        field(&list.json(), "/total") == 0,
        "a malformed body created something: {}",
        list.shown()
    );
    Ok(())
}
