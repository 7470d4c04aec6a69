//! `/api/v2/themes…`: UI themes, whose colours must stay readable and whose CSS values must not inject anything.

use crate::blackbox::support::{
    audit_count, expect_audited, expect_hidden, expect_invalid, id_of, ids, member, read, request_id, total,
};
use crate::blackbox::{CheckResult, Framework, Target, field};
use avb_core::Role;
use serde_json::{Value, json};

const THEMES: &str = "/api/v2/themes";

/// A readable theme named `name`.
fn theme(name: &str) -> Value {
    json!({
        "name": name,
        "description": "made by the black-box suite",
        "text_color": "#111111",
        "background_color": "#ffffff",
        "primary_color": "#0055aa",
        "variables": { "--radius": "4px", "--font": "Inter, sans-serif" },
    })
}

/// Creates a theme as `token` (201): the theme.
async fn create(t: &Target, token: &str, body: &Value) -> Result<Value, String> {
    let reply = t.post(THEMES).bearer(token).json(body).send().await?;
    reply.expect(201)?;
    Ok(reply.json())
}

/// Create (audited) → get → list (filters) → patch (audited, version bumped) → delete (204, audited) → 404.
pub async fn theme_crud_round_trip(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let rid = request_id("theme");
    let created = s
        .post(THEMES)
        .bearer(token)
        .header("x-request-id", &rid)
        .json(&theme("Daylight"))
        .send()
        .await?;
    created.expect(201)?;
    let created = created.json();
    let id = id_of(&created)?;
    ensure!(
        field(&created, "/name") == "Daylight"
            && field(&created, "/variables/--radius") == "4px"
            && field(&created, "/is_public") == false
            && field(&created, "/tenant_id") == s.tenant_id.as_str(),
        "created: {created}"
    );
    expect_audited(&s, token, "create", "theme", &id, &rid).await?;
    let path = format!("{THEMES}/{id}");
    ensure!(read(&s, token, &path).await? == created, "get answers the theme");
    let listed = read(&s, token, THEMES).await?;
    ensure!(
        ids(&listed) == [id.clone()] && field(&listed, "/total") == 1,
        "list: {listed}"
    );
    let public = read(&s, token, &format!("{THEMES}?is_public=true")).await?;
    ensure!(field(&public, "/total") == 0, "is_public filter: {public}");

    let rid = request_id("theme");
    let patched = s
        .patch(&path)
        .bearer(token)
        .header("x-request-id", &rid)
        .json(&json!({ "name": "Daylight 2", "is_public": true, "variables": { "--gap": "8px" } }))
        .send()
        .await?;
    patched.expect(200)?;
    let patched = patched.json();
    ensure!(
        field(&patched, "/name") == "Daylight 2"
            && field(&patched, "/is_public") == true
            && field(&patched, "/variables") == &json!({ "--gap": "8px" })
            && field(&patched, "/version").as_u64() > field(&created, "/version").as_u64(),
        "patched (variables replaced): {patched}"
    );
    expect_audited(&s, token, "update", "theme", &id, &rid).await?;
    let public = read(&s, token, &format!("{THEMES}?is_public=true")).await?;
    ensure!(
        ids(&public) == [id.clone()],
        "is_public filter after the change: {public}"
    );

    let rid = request_id("theme");
    let deleted = s
        .delete(&path)
        .bearer(token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    deleted.expect(204)?;
    ensure!(deleted.body.is_empty(), "204 has no body: {}", deleted.shown());
    expect_audited(&s, token, "delete", "theme", &id, &rid).await?;
    s.get(&path)
        .bearer(token)
        .send()
        .await?
        .expect_error(404, "not_found")?;
    ensure!(total(&s, token, THEMES).await? == 0, "gone from the list");
    Ok(())
}

/// CSS values that load resources or run script (`url(`, `expression(`, `javascript:`, `<script`, also escaped or
/// spaced out) and text/background pairs below 4.5:1 are `validation_error` naming the field, on create and on
/// patch; nothing is stored or audited.
pub async fn unsafe_or_unreadable_themes_are_rejected(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let attacks = [
        "url(https://evil.example/x.png)",
        "expression(alert(1))",
        "javascript:alert(1)",
        "<script>alert(1)</script>",
        "URL ( //evil.example )",
        "u\\72l(//evil.example)",
        "java/**/script:alert(1)",
        "red; background: url(x)",
    ];
    for value in attacks {
        let mut body = theme("Evil");
        if let Some(vars) = body.get_mut("variables").and_then(Value::as_object_mut) {
            vars.insert("--bg".into(), value.into());
        }
        let reply = s.post(THEMES).bearer(token).json(&body).send().await?;
        expect_invalid(&reply, "variables.--bg").map_err(|e| format!("{value:?}: {e}"))?;
    }
    let mut low = theme("Grey on grey");
    if let Some(o) = low.as_object_mut() {
        o.insert("text_color".into(), "#777777".into());
        o.insert("background_color".into(), "#888888".into());
    }
    let reply = s.post(THEMES).bearer(token).json(&low).send().await?;
    expect_invalid(&reply, "text_color")?;
    ensure!(
        field(&reply.json(), "/details/fields/0/code") == "contrast",
        "the contrast error says so: {}",
        reply.shown()
    );
    for (body, bad) in [
        (
            json!({ "name": "Bad colour", "text_color": "black", "background_color": "#ffffff",
                 "primary_color": "#0055aa" }),
            "text_color",
        ),
        (
            json!({ "name": "Bad name", "text_color": "#000000", "background_color": "#ffffff",
                 "primary_color": "#0055aa", "variables": { "color": "red" } }),
            "variables",
        ),
        (
            json!({ "name": "", "text_color": "#000000", "background_color": "#ffffff",
                 "primary_color": "#0055aa" }),
            "name",
        ),
    ] {
        expect_invalid(&s.post(THEMES).bearer(token).json(&body).send().await?, bad)?;
    }
    ensure!(
        total(&s, token, THEMES).await? == 0,
        "no refused theme was stored"
    );
    ensure!(audit_count(&s, token, "theme").await? == 0, "nothing was audited");

    let stored = create(&s, token, &theme("Safe")).await?;
    let path = format!("{THEMES}/{}", id_of(&stored)?);
    for value in attacks {
        let reply = s
            .patch(&path)
            .bearer(token)
            .json(&json!({ "name": "Unsafe now", "variables": { "--bg": value } }))
            .send()
            .await?;
        expect_invalid(&reply, "variables.--bg").map_err(|e| format!("patch {value:?}: {e}"))?;
    }
    // Names are unique in the tenant (any case), and a stale version is refused.
    s.post(THEMES)
        .bearer(token)
        .json(&theme("SAFE"))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    let second = create(&s, token, &theme("Second")).await?;
    let second_path = format!("{THEMES}/{}", id_of(&second)?);
    for body in [
        json!({ "name": "safe" }),
        json!({ "description": "stale", "version": 99 }),
    ] {
        s.patch(&second_path)
            .bearer(token)
            .json(&body)
            .send()
            .await?
            .expect_error(409, "conflict")?;
    }
    ensure!(
        read(&s, token, &second_path).await? == second,
        "refused renames changed nothing"
    );
    // Changing only the background is checked against the stored text colour.
    expect_invalid(
        &s.patch(&path)
            .bearer(token)
            .json(&json!({ "background_color": "#222222" }))
            .send()
            .await?,
        "text_color",
    )?;
    ensure!(
        read(&s, token, &path).await? == stored,
        "refused patches changed nothing"
    );
    ensure!(
        audit_count(&s, token, "theme").await? == 2,
        "only the two creations were audited"
    );
    Ok(())
}

/// A viewer reads themes but cannot create, edit or delete them; a developer edits but cannot delete another's
/// theme; another tenant's admin gets `not_found` with no data and lists nothing.
pub async fn themes_are_guarded_and_tenant_scoped(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let stored = create(&s, token, &theme("House style")).await?;
    let id = id_of(&stored)?;
    let path = format!("{THEMES}/{id}");
    let (_, viewer) = member(&s, "viewer@demo.local", &[Role::Viewer]).await?;
    let (_, developer) = member(&s, "developer@demo.local", &[Role::Developer]).await?;
    ensure!(
        read(&s, &viewer, &path).await? == stored,
        "a viewer reads the theme"
    );
    ensure!(total(&s, &viewer, THEMES).await? == 1, "a viewer lists it");
    s.post(THEMES)
        .bearer(&viewer)
        .json(&theme("Viewer's"))
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    s.patch(&path)
        .bearer(&viewer)
        .json(&json!({ "name": "Hijacked" }))
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    s.delete(&path)
        .bearer(&viewer)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    s.delete(&path)
        .bearer(&developer)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    ensure!(
        read(&s, token, &path).await? == stored,
        "refused calls changed nothing"
    );
    let edited = s
        .patch(&path)
        .bearer(&developer)
        .json(&json!({ "description": "tuned by a developer" }))
        .send()
        .await?;
    edited.expect(200)?;
    let edited = edited.json();

    let intruder = &s.other.admin_token;
    for (method, body) in [
        ("GET", json!(null)),
        ("PATCH", json!({ "name": "Mine now" })),
        ("DELETE", json!(null)),
    ] {
        let mut call = s.call(method, &path).bearer(intruder);
        if !body.is_null() {
            call = call.json(&body);
        }
        expect_hidden(&call.send().await?, &["House style", "#0055aa"])?;
    }
    ensure!(
        total(&s, intruder, THEMES).await? == 0,
        "the other tenant lists nothing"
    );
    ensure!(
        read(&s, token, &path).await? == edited,
        "the intruder changed nothing"
    );
    // Public means every user of the tenant, never another tenant.
    s.patch(&path)
        .bearer(token)
        .json(&json!({ "is_public": true }))
        .send()
        .await?
        .expect(200)?;
    expect_hidden(
        &s.get(&path).bearer(intruder).send().await?,
        &["House style", "#0055aa"],
    )?;
    let listed = s
        .get(&format!("{THEMES}?is_public=true"))
        .bearer(intruder)
        .send()
        .await?;
    listed.expect(200)?;
    ensure!(
        field(&listed.json(), "/total") == 0
            && !String::from_utf8_lossy(&listed.body).contains("House style"),
        "another tenant never lists a public theme: {}",
        listed.shown()
    );
    Ok(())
}
