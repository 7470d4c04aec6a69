//! ProjectService against the memory store.

use crate::common::{World, code, invalid_fields, start};
use avb_core::audit::{AuditAction, AuditFilter};
use avb_core::{PageRequest, ProjectId};
use avb_tenancy::model::TenantTier;
use avb_tenancy::project::{CreateProjectRequest, UpdateProjectRequest};
use avb_tenancy::store::ProjectFilter;
use serde_json::json;

#[tokio::test]
async fn projects_are_created_read_listed_updated_and_deleted_with_audit() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Starter).await;
    let ctx = w.admin(&a);
    let req = CreateProjectRequest {
        name: "Support Bot".into(),
        description: "Answers the phone".into(),
        settings: Some(json!({ "voice": "am_onyx" })),
    };
    let p = w.projects.create(&ctx, req).await.unwrap();
    assert_eq!(
        (p.tenant_id, p.created_by, p.created_at),
        (a.tenant.id, Some(a.admin.id), start())
    );
    assert_eq!(p.settings["voice"], "am_onyx");
    assert_eq!(w.projects.get(&ctx, p.id).await.unwrap(), p);
    let second = w
        .projects
        .create(&ctx, CreateProjectRequest::named("Sales Bot"))
        .await
        .unwrap();

    let all = w
        .projects
        .list(&ctx, ProjectFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        all.items.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Sales Bot", "Support Bot"]
    );
    let search = ProjectFilter {
        search: Some("PHONE".into()),
        ..Default::default()
    };
    assert_eq!(
        w.projects
            .list(&ctx, search, PageRequest::default())
            .await
            .unwrap()
            .items,
        std::slice::from_ref(&p)
    );

    w.clock.advance(chrono::Duration::seconds(30));
    let req = UpdateProjectRequest {
        name: Some("Support Agent".into()),
        settings: Some(json!({ "voice": null, "language": "en" })),
        expected_version: Some(p.version),
        ..Default::default()
    };
    let updated = w.projects.update(&ctx, p.id, req).await.unwrap();
    assert_eq!(updated.name, "Support Agent");
    assert_eq!(
        serde_json::Value::Object(updated.settings.clone()),
        json!({ "language": "en" })
    );
    assert_eq!(updated.updated_at, start() + chrono::Duration::seconds(30));
    assert_eq!(updated.description, "Answers the phone");

    w.projects.delete(&ctx, second.id).await.unwrap();
    assert_eq!(code(w.projects.get(&ctx, second.id).await), "not_found");

    let trail = w
        .audit(&AuditFilter {
            resource_type: Some("project".into()),
            ..Default::default()
        })
        .await;
    let actions: Vec<AuditAction> = trail.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Delete,
            AuditAction::Update,
            AuditAction::Create,
            AuditAction::Create
        ]
    );
    assert_eq!(trail[0].old_values.as_ref().unwrap()["name"], "Sales Bot");
    assert_eq!(
        trail[1].old_values,
        Some(json!({ "name": "Support Bot", "settings": { "voice": "am_onyx" } }))
    );
    assert!(trail.iter().all(|e| e.tenant_id == Some(a.tenant.id)));
}

#[tokio::test]
async fn names_are_unique_per_tenant_regardless_of_case() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Starter).await;
    let b = w.tenant("beta", TenantTier::Starter).await;
    let first = w
        .projects
        .create(&w.admin(&a), CreateProjectRequest::named("Voice Bot"))
        .await
        .unwrap();
    let other = w
        .projects
        .create(&w.admin(&a), CreateProjectRequest::named("Other"))
        .await
        .unwrap();
    let before = w.before().await;
    assert_eq!(
        code(
            w.projects
                .create(&w.admin(&a), CreateProjectRequest::named("VOICE bot"))
                .await
        ),
        "conflict"
    );
    let rename = UpdateProjectRequest {
        name: Some("voice BOT".into()),
        ..Default::default()
    };
    assert_eq!(
        code(w.projects.update(&w.admin(&a), other.id, rename).await),
        "conflict"
    );
    w.assert_unchanged(&before).await;
    // Another tenant may use the name, and a project may change the case of its own name.
    w.projects
        .create(&w.admin(&b), CreateProjectRequest::named("Voice Bot"))
        .await
        .unwrap();
    let recase = UpdateProjectRequest {
        name: Some("VOICE BOT".into()),
        ..Default::default()
    };
    assert_eq!(
        w.projects
            .update(&w.admin(&a), first.id, recase)
            .await
            .unwrap()
            .name,
        "VOICE BOT"
    );
}

#[tokio::test]
async fn creating_beyond_max_projects_is_refused_until_the_tier_is_raised() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await; // 1 project
    let ctx = w.admin(&a);
    w.projects
        .create(&ctx, CreateProjectRequest::named("One"))
        .await
        .unwrap();
    let before = w.before().await;
    assert_eq!(
        code(w.projects.create(&ctx, CreateProjectRequest::named("Two")).await),
        "tenant_limit_exceeded"
    );
    w.assert_unchanged(&before).await;
    w.set_tier(a.tenant.id, TenantTier::Starter).await;
    w.projects
        .create(&ctx, CreateProjectRequest::named("Two"))
        .await
        .unwrap();
    assert_eq!(
        w.tenants.usage(&ctx, a.tenant.id).await.unwrap().projects.current,
        2
    );
}

#[tokio::test]
async fn invalid_projects_report_every_field_and_write_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let ctx = w.admin(&a);
    let before = w.before().await;
    let bad = CreateProjectRequest {
        name: " ".into(),
        description: "d".repeat(2001),
        settings: Some(json!([])),
    };
    assert_eq!(
        invalid_fields(w.projects.create(&ctx, bad).await),
        ["name", "description", "settings"]
    );
    let long = CreateProjectRequest::named("n".repeat(256));
    assert_eq!(invalid_fields(w.projects.create(&ctx, long).await), ["name"]);
    let huge = CreateProjectRequest {
        name: "Big".into(),
        description: String::new(),
        settings: Some(json!({ "blob": "x".repeat(64 * 1024) })),
    };
    assert_eq!(invalid_fields(w.projects.create(&ctx, huge).await), ["settings"]);
    assert_eq!(
        code(
            w.projects
                .create(&w.sysadmin(), CreateProjectRequest::named("No tenant"))
                .await
        ),
        "tenant_required"
    );
    w.assert_unchanged(&before).await;

    let p = w
        .projects
        .create(&ctx, CreateProjectRequest::named("Real"))
        .await
        .unwrap();
    let before = w.before().await;
    let bad = UpdateProjectRequest {
        name: Some(String::new()),
        settings: Some(json!("x")),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.projects.update(&ctx, p.id, bad).await),
        ["name", "settings"]
    );
    let stale = UpdateProjectRequest {
        description: Some("new".into()),
        expected_version: Some(p.version + 1),
        ..Default::default()
    };
    assert_eq!(code(w.projects.update(&ctx, p.id, stale).await), "conflict");
    let same = UpdateProjectRequest {
        name: Some("Real".into()),
        ..Default::default()
    };
    assert_eq!(
        w.projects.update(&ctx, p.id, same).await.unwrap(),
        p,
        "a no-op update writes nothing"
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn another_tenants_projects_cannot_be_read_changed_or_deleted() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let theirs = w
        .projects
        .create(&w.admin(&b), CreateProjectRequest::named("Secret"))
        .await
        .unwrap();
    let before = w.before().await;
    let as_a = w.admin(&a);
    assert_eq!(code(w.projects.get(&as_a, theirs.id).await), "not_found");
    let rename = UpdateProjectRequest {
        name: Some("Mine".into()),
        ..Default::default()
    };
    assert_eq!(
        code(w.projects.update(&as_a, theirs.id, rename).await),
        "not_found"
    );
    assert_eq!(code(w.projects.delete(&as_a, theirs.id).await), "not_found");
    assert_eq!(
        w.projects
            .list(&as_a, ProjectFilter::default(), PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    let unknown = ProjectId(uuid::Uuid::from_u128(99));
    assert_eq!(code(w.projects.delete(&w.admin(&b), unknown).await), "not_found");
    w.assert_unchanged(&before).await;
    // A sysadmin sees every tenant's projects.
    assert_eq!(w.projects.get(&w.sysadmin(), theirs.id).await.unwrap(), theirs);
}
