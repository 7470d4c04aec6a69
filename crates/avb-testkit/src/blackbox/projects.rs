//! `/api/v2/projects`: the CRUD round trip, validation that changes nothing, and tenant isolation (another
//! tenant's ids are always `not_found`, never data).

use crate::blackbox::{CheckResult, Framework, Target, field};
use serde_json::{Value, json};

/// Creates a project as the demo tenant's admin and returns its JSON.
pub async fn create_project(t: &Target, token: &str, name: &str) -> Result<Value, String> {
    let reply = t
        .post("/api/v2/projects")
        .bearer(token)
        .json(&json!({ "name": name, "description": "made by the black-box suite" }))
        .send()
        .await?;
    reply.expect(201)?;
    Ok(reply.json())
}

fn id_of(project: &Value) -> Result<String, String> {
    field(project, "/id")
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("project without an id: {project}"))
}

/// Create (201) → get (200) → listed → patch (200, version bumped) → delete (204) → get (404).
pub async fn project_crud_round_trip(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let created = create_project(&s, &s.admin_token, "Alpha").await?;
    let id = id_of(&created)?;
    ensure!(field(&created, "/name") == "Alpha", "created: {created}");
    ensure!(
        field(&created, "/tenant_id") == s.tenant_id.as_str(),
        "created in the caller's tenant: {created}"
    );
    let path = format!("/api/v2/projects/{id}");

    let got = s.get(&path).bearer(&s.admin_token).send().await?;
    got.expect(200)?;
    ensure!(
        got.json() == created,
        "get returns what create returned: {}",
        got.shown()
    );

    let listed = s.get("/api/v2/projects").bearer(&s.admin_token).send().await?;
    listed.expect(200)?;
    let body = listed.json();
    ensure!(
        field(&body, "/items")
            .as_array()
            .is_some_and(|items| items.iter().any(|p| field(p, "/id") == id.as_str())),
        "the list contains the project: {}",
        listed.shown()
    );
    ensure!(field(&body, "/total") == 1, "total counts it: {}", listed.shown());

    let patched = s
        .patch(&path)
        .bearer(&s.admin_token)
        .json(&json!({ "name": "Alpha Prime" }))
        .send()
        .await?;
    patched.expect(200)?;
    let patched = patched.json();
    ensure!(field(&patched, "/name") == "Alpha Prime", "patched: {patched}");
    ensure!(
        field(&patched, "/version").as_u64() > field(&created, "/version").as_u64(),
        "a change bumps the version: {created} → {patched}"
    );

    let deleted = s.delete(&path).bearer(&s.admin_token).send().await?;
    deleted.expect(204)?;
    ensure!(deleted.body.is_empty(), "204 has no body: {}", deleted.shown());
    s.get(&path)
        .bearer(&s.admin_token)
        .send()
        .await?
        .expect_error(404, "not_found")?;
    s.delete(&path)
        .bearer(&s.admin_token)
        .send()
        .await?
        .expect_error(404, "not_found")?;
    Ok(())
}

/// Another tenant's admin gets `not_found` for every verb on the demo tenant's project, never sees it listed,
/// and changes nothing.
pub async fn projects_of_another_tenant_are_not_found(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let created = create_project(&s, &s.admin_token, "Secret").await?;
    let path = format!("/api/v2/projects/{}", id_of(&created)?);
    let intruder = &s.other.admin_token;
    s.get(&path)
        .bearer(intruder)
        .send()
        .await?
        .expect_error(404, "not_found")?;
    s.patch(&path)
        .bearer(intruder)
        .json(&json!({ "name": "Owned" }))
        .send()
        .await?
        .expect_error(404, "not_found")?;
    s.delete(&path)
        .bearer(intruder)
        .send()
        .await?
        .expect_error(404, "not_found")?;
    let theirs = s.get("/api/v2/projects").bearer(intruder).send().await?;
    theirs.expect(200)?;
    ensure!(
        field(&theirs.json(), "/total") == 0,
        "the other tenant lists nothing: {}",
        theirs.shown()
    );
    // A tenant header naming the demo tenant does not let the intruder in either.
    s.get(&path)
        .bearer(intruder)
        .header("x-tenant-id", &s.tenant_id)
        .send()
        .await
        .map(|r| r.status)
        .and_then(|status| match status {
            200..=299 => Err(format!("x-tenant-id let another tenant's admin read {path}")),
            _ => Ok(()),
        })?;
    let mine = s.get(&path).bearer(&s.admin_token).send().await?;
    mine.expect(200)?;
    ensure!(mine.json() == created, "nothing changed: {}", mine.shown());
    Ok(())
}

/// Field validation answers 400 `validation_error` and writes nothing; a duplicate name (any case) is a
/// `conflict`; past the tenant's `max_projects` (raised to 2 by the sysadmin) creation is `tenant_limit_exceeded`.
pub async fn an_invalid_project_changes_nothing(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    for body in [
        json!({ "name": "" }),
        json!({ "name": "x".repeat(256) }),
        json!({ "description": "no name" }),
    ] {
        s.post("/api/v2/projects")
            .bearer(&s.admin_token)
            .json(&body)
            .send()
            .await?
            .expect_error(400, "validation_error")?;
    }
    let listed = s.get("/api/v2/projects").bearer(&s.admin_token).send().await?;
    listed.expect(200)?;
    ensure!(
        field(&listed.json(), "/total") == 0,
        "nothing was created: {}",
        listed.shown()
    );

    s.patch(&format!("/api/v2/admin/tenants/{}", s.tenant_id))
        .bearer(&s.sysadmin_token)
        .json(&json!({ "max_projects": 2 }))
        .send()
        .await?
        .expect(200)?;
    create_project(&s, &s.admin_token, "Unique").await?;
    s.post("/api/v2/projects")
        .bearer(&s.admin_token)
        .json(&json!({ "name": "UNIQUE" }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    create_project(&s, &s.admin_token, "Second").await?;
    s.post("/api/v2/projects")
        .bearer(&s.admin_token)
        .json(&json!({ "name": "Third" }))
        .send()
        .await?
        .expect_error(403, "tenant_limit_exceeded")?;
    let listed = s.get("/api/v2/projects").bearer(&s.admin_token).send().await?;
    listed.expect(200)?;
    ensure!(
        field(&listed.json(), "/total") == 2,
        "refused creations wrote nothing: {}",
        listed.shown()
    );
    Ok(())
}
