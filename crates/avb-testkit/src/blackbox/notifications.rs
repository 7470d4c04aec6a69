//! `/api/v2/notifications…`: the caller's own notifications (read one, read all) and notification preferences.
//!
//! No HTTP route creates notifications (jobs deliver them), so the checks deliver them in-process through the
//! notification service; everything asserted goes over HTTP.

use crate::blackbox::support::{
    audit_items, expect_audited, expect_hidden, expect_invalid, id_of, member, read, request_id,
};
use crate::blackbox::{CheckResult, Framework, Server, field};
use avb_core::{Ctx, RequestId, Role, TenantId, UserId};
use avb_tenancy::notification::NotifyRequest;
use serde_json::{Value, json};

const NOTIFICATIONS: &str = "/api/v2/notifications";
const PREFERENCES: &str = "/api/v2/notifications/preferences";

/// Delivers a notification to `user` of the demo tenant; `None` when the user muted the category.
async fn deliver(s: &Server, user: &str, category: &str, title: &str) -> Result<Option<String>, String> {
    let inner = s.app().inner();
    let tenant: TenantId = s.tenant_id.parse().map_err(|e| format!("{e}"))?;
    let user: UserId = user.parse().map_err(|e| format!("{e}"))?;
    let ctx = Ctx::system(RequestId::generate(inner.ids.as_ref()), "blackbox", Some(tenant));
    let request = NotifyRequest {
        user_id: Some(user),
        category: category.into(),
        title: title.into(),
        body: format!("{title} (black-box)"),
        data: json!({}),
    };
    let delivered = inner
        .notifications
        .notify(&ctx, request)
        .await
        .map_err(|e| format!("delivering {title:?}: {e}"))?;
    Ok(delivered.map(|n| n.id.to_string()))
}

/// Delivers and expects delivery: the id.
async fn delivered(s: &Server, user: &str, category: &str, title: &str) -> Result<String, String> {
    deliver(s, user, category, title)
        .await?
        .ok_or_else(|| format!("{title:?} was not delivered"))
}

/// The titles of a page, in order.
fn titles(page: &Value) -> Vec<String> {
    field(page, "/items")
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|n| field(n, "/title").as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The list (newest first, only the caller's, `unread` and `category` filters) → read one (audited, idempotent)
/// → read all (counted, audited) → preferences changed (audited) and applied: a muted category is not
/// delivered.
pub async fn notifications_list_read_and_preferences(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let me = id_of(&read(&s, token, "/api/v2/users/me").await?)?;
    let (member_id, member_token) = member(&s, "member@demo.local", &[Role::Viewer]).await?;
    delivered(&s, &me, "system", "Welcome").await?;
    let invoice = delivered(&s, &me, "billing", "Invoice").await?;
    delivered(&s, &me, "session", "Failed").await?;
    delivered(&s, &member_id, "system", "Someone else's").await?;

    let mine = read(&s, token, NOTIFICATIONS).await?;
    ensure!(
        titles(&mine) == ["Failed", "Invoice", "Welcome"] && field(&mine, "/total") == 3,
        "my notifications, newest first: {mine}"
    );
    let billing = read(&s, token, &format!("{NOTIFICATIONS}?category=billing")).await?;
    ensure!(titles(&billing) == ["Invoice"], "category filter: {billing}");
    let paged = read(&s, token, &format!("{NOTIFICATIONS}?limit=1&offset=1")).await?;
    ensure!(
        titles(&paged) == ["Invoice"] && field(&paged, "/total") == 3,
        "pagination: {paged}"
    );

    let rid = request_id("read");
    let marked = s
        .post(&format!("{NOTIFICATIONS}/{invoice}/read"))
        .bearer(token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    marked.expect(200)?;
    let marked = marked.json();
    ensure!(!field(&marked, "/read_at").is_null(), "marked read: {marked}");
    expect_audited(&s, token, "update", "notification", &invoice, &rid).await?;
    let again = s
        .post(&format!("{NOTIFICATIONS}/{invoice}/read"))
        .bearer(token)
        .send()
        .await?;
    again.expect(200)?;
    ensure!(
        again.json() == marked,
        "marking twice changes nothing: {}",
        again.shown()
    );
    let unread = read(&s, token, &format!("{NOTIFICATIONS}?unread=true")).await?;
    ensure!(
        titles(&unread) == ["Failed", "Welcome"],
        "unread filter: {unread}"
    );

    let rid = request_id("read-all");
    let all = s
        .post(&format!("{NOTIFICATIONS}/read-all"))
        .bearer(token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    all.expect(200)?;
    ensure!(
        all.json() == json!({ "marked": 2 }),
        "read-all counts: {}",
        all.shown()
    );
    let entries = audit_items(&s, token, "resource_type=notification&limit=100").await?;
    ensure!(
        entries
            .iter()
            .any(|e| field(e, "/request_id") == rid.as_str() && field(e, "/metadata/count") == 2),
        "read-all is audited: {entries:?}"
    );
    ensure!(
        field(
            &read(&s, token, &format!("{NOTIFICATIONS}?unread=true")).await?,
            "/total"
        ) == 0,
        "nothing unread"
    );
    let none = s
        .post(&format!("{NOTIFICATIONS}/read-all"))
        .bearer(token)
        .send()
        .await?;
    ensure!(
        none.json() == json!({ "marked": 0 }),
        "read-all again: {}",
        none.shown()
    );
    let theirs = read(&s, &member_token, &format!("{NOTIFICATIONS}?unread=true")).await?;
    ensure!(
        titles(&theirs) == ["Someone else's"],
        "another member's notifications are theirs, still unread: {theirs}"
    );

    let defaults = read(&s, token, PREFERENCES).await?;
    ensure!(
        defaults
            == json!({ "email_notifications": true, "push_notifications": true, "muted_categories": [] }),
        "default preferences: {defaults}"
    );
    let rid = request_id("prefs");
    let changed = s
        .put(PREFERENCES)
        .bearer(token)
        .header("x-request-id", &rid)
        .json(&json!({ "email_notifications": false, "muted_categories": ["billing"] }))
        .send()
        .await?;
    changed.expect(200)?;
    let expected =
        json!({ "email_notifications": false, "push_notifications": true, "muted_categories": ["billing"] });
    ensure!(changed.json() == expected, "changed: {}", changed.shown());
    ensure!(
        read(&s, token, PREFERENCES).await? == expected,
        "a re-read shows the change"
    );
    expect_audited(&s, token, "settings_change", "user", &me, &rid).await?;
    ensure!(
        deliver(&s, &me, "billing", "Muted invoice").await?.is_none(),
        "a muted category is not delivered"
    );
    ensure!(
        field(&read(&s, token, NOTIFICATIONS).await?, "/total") == 3,
        "nothing new in the list"
    );
    Ok(())
}

/// Bad preferences and filters are `validation_error` and change nothing; another user's or another tenant's
/// notification is `not_found` with no data and stays unread; API keys have no inbox (`permission_denied`).
pub async fn notification_errors_change_nothing_and_stay_private(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let me = id_of(&read(&s, token, "/api/v2/users/me").await?)?;
    let (member_id, member_token) = member(&s, "member@demo.local", &[Role::Viewer]).await?;
    let mine = delivered(&s, &me, "system", "Admin's secret").await?;
    let theirs = delivered(&s, &member_id, "system", "Member's secret").await?;

    let before = read(&s, token, PREFERENCES).await?;
    let too_many: Vec<String> = (0..51).map(|i| format!("c{i}")).collect();
    for (body, bad) in [
        (
            json!({ "email_notifications": false, "muted_categories": ["Bad Category!"] }),
            "muted_categories",
        ),
        (json!({ "muted_categories": too_many }), "muted_categories"),
    ] {
        expect_invalid(&s.put(PREFERENCES).bearer(token).json(&body).send().await?, bad)?;
    }
    s.put(PREFERENCES)
        .bearer(token)
        .json(&json!({ "email_notifications": "nope" }))
        .send()
        .await?
        .expect_error(400, "validation_error")?;
    ensure!(
        read(&s, token, PREFERENCES).await? == before,
        "refused changes changed nothing"
    );
    for query in ["unread=maybe", "category=Not%20Valid", "limit=0"] {
        s.get(&format!("{NOTIFICATIONS}?{query}"))
            .bearer(token)
            .send()
            .await?
            .expect_error(400, "validation_error")?;
    }

    // Another member's notification, and another tenant's admin on mine.
    expect_hidden(
        &s.post(&format!("{NOTIFICATIONS}/{theirs}/read"))
            .bearer(token)
            .send()
            .await?,
        &["Member's secret"],
    )?;
    expect_hidden(
        &s.post(&format!("{NOTIFICATIONS}/{mine}/read"))
            .bearer(&s.other.admin_token)
            .send()
            .await?,
        &["Admin's secret"],
    )?;
    let other = s
        .post(&format!("{NOTIFICATIONS}/read-all"))
        .bearer(&s.other.admin_token)
        .send()
        .await?;
    ensure!(
        other.json() == json!({ "marked": 0 }),
        "read-all touches only the caller's: {}",
        other.shown()
    );
    ensure!(
        field(&read(&s, &s.other.admin_token, NOTIFICATIONS).await?, "/total") == 0,
        "the other tenant lists none of ours"
    );
    let unread = read(&s, &member_token, &format!("{NOTIFICATIONS}?unread=true")).await?;
    ensure!(
        titles(&unread) == ["Member's secret"],
        "the member's stays unread: {unread}"
    );
    let unread = read(&s, token, &format!("{NOTIFICATIONS}?unread=true")).await?;
    ensure!(
        titles(&unread) == ["Admin's secret"],
        "mine stays unread: {unread}"
    );
    for path in [
        format!("{NOTIFICATIONS}/00000000-0000-4000-8000-000000000000/read"),
        format!("{NOTIFICATIONS}/not-a-uuid/read"),
    ] {
        s.post(&path)
            .bearer(token)
            .send()
            .await?
            .expect_error(404, "not_found")?;
    }

    for (method, path) in [
        ("GET", NOTIFICATIONS.to_owned()),
        ("POST", format!("{NOTIFICATIONS}/{mine}/read")),
        ("POST", format!("{NOTIFICATIONS}/read-all")),
        ("GET", PREFERENCES.to_owned()),
        ("PUT", PREFERENCES.to_owned()),
    ] {
        s.call(method, &path)
            .bearer(&s.api_key)
            .send()
            .await?
            .expect_error(403, "permission_denied")?;
    }
    let unread = read(&s, token, &format!("{NOTIFICATIONS}?unread=true")).await?;
    ensure!(field(&unread, "/total") == 1, "the key marked nothing: {unread}");
    Ok(())
}
