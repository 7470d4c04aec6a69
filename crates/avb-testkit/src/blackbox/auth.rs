//! Authentication at the edge (spec §9): each kind of bad credential has its own code, and both kinds of good
//! credential reach the caller's tenant.

use crate::blackbox::edge::security_headers_present;
use crate::blackbox::{CheckResult, Framework, field};

/// A tenant route without any credential answers 401 `authentication_failed`.
pub async fn missing_credentials_answer_authentication_failed(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let reply = s.get("/api/v2/tenants/me").send().await?;
    reply.expect_error(401, "authentication_failed")?;
    security_headers_present(&reply)?;
    s.get("/api/v2/tenants/me")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    Ok(())
}

/// A bearer token that is not a valid JWT, or is signed with another key, answers 401 `invalid_token`.
pub async fn a_bad_token_answers_invalid_token(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    s.get("/api/v2/tenants/me")
        .bearer("not-a-jwt")
        .send()
        .await?
        .expect_error(401, "invalid_token")?;
    // A well-formed token whose signature was tampered with.
    let (signed, signature) = s
        .admin_token
        .rsplit_once('.')
        .ok_or("the admin token is not a JWT")?;
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{signed}.{flipped}{}", signature.get(1..).unwrap_or_default());
    s.get("/api/v2/tenants/me")
        .bearer(&forged)
        .send()
        .await?
        .expect_error(401, "invalid_token")?;
    Ok(())
}

/// An API key that does not exist, as bearer or `X-API-Key`, answers 401 `authentication_failed`.
pub async fn a_garbage_api_key_answers_authentication_failed(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let garbage = "avb_thisKeyDoesNotExist0123456789abcdefghijk";
    s.get("/api/v2/tenants/me")
        .bearer(garbage)
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    s.get("/api/v2/tenants/me")
        .api_key(garbage)
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    Ok(())
}

/// A correctly signed token past its expiry answers 401 `token_expired`.
pub async fn an_expired_token_answers_token_expired(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    s.get("/api/v2/tenants/me")
        .bearer(&s.expired_token)
        .send()
        .await?
        .expect_error(401, "token_expired")?;
    Ok(())
}

fn expect_demo_tenant(reply: &crate::blackbox::Reply, tenant_id: &str) -> CheckResult {
    reply.expect(200)?;
    let body = reply.json();
    ensure!(
        field(&body, "/id") == tenant_id,
        "expected the demo tenant {tenant_id}: {}",
        reply.shown()
    );
    ensure!(
        field(&body, "/slug") == "demo",
        "expected slug demo: {}",
        reply.shown()
    );
    ensure!(
        field(&body, "/status") == "active",
        "expected an active tenant: {}",
        reply.shown()
    );
    Ok(())
}

/// `GET /api/v2/tenants/me` with the bootstrap API key (as bearer and as `X-API-Key`) answers the demo tenant.
pub async fn my_tenant_with_the_api_key(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    expect_demo_tenant(
        &s.get("/api/v2/tenants/me").bearer(&s.api_key).send().await?,
        &s.tenant_id,
    )?;
    expect_demo_tenant(
        &s.get("/api/v2/tenants/me").api_key(&s.api_key).send().await?,
        &s.tenant_id,
    )?;
    Ok(())
}

/// `GET /api/v2/tenants/me` with the tenant admin's token answers the demo tenant; the other tenant's admin sees
/// its own tenant.
pub async fn my_tenant_with_the_admin_token(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    expect_demo_tenant(
        &s.get("/api/v2/tenants/me").bearer(&s.admin_token).send().await?,
        &s.tenant_id,
    )?;
    let other = s
        .get("/api/v2/tenants/me")
        .bearer(&s.other.admin_token)
        .send()
        .await?;
    other.expect(200)?;
    ensure!(
        field(&other.json(), "/id") == s.other.tenant_id.as_str(),
        "the other admin sees its own tenant: {}",
        other.shown()
    );
    Ok(())
}
