//! TenantService against the memory store.

use crate::common::{World, code, invalid_fields, start};
use avb_core::audit::{AuditAction, AuditFilter};
use avb_core::jobs::kinds;
use avb_core::{PageRequest, Role, TenantId};
use avb_tenancy::model::{TenantStatus, TenantTier, VoiceProvider};
use avb_tenancy::project::CreateProjectRequest;
use avb_tenancy::store::TenantFilter;
use avb_tenancy::tenant::{
    CreateTenantRequest, SuspendTenantRequest, TenantSettingsUpdate, UpdateTenantRequest, UsageCounter,
};
use avb_tenancy::user::InviteUserRequest;
use serde_json::json;
use std::collections::BTreeSet;

fn filter_for(resource: &str) -> AuditFilter {
    AuditFilter {
        resource_type: Some(resource.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_makes_a_pending_tenant_with_tier_limits_settings_first_admin_jobs_and_audit() {
    let w = World::new();
    let mut req =
        CreateTenantRequest::new("Acme Corp", "acme-corp", "Boss@Acme.Example", "Ada Mary Lovelace");
    req.tier = Some("pro".into());
    let created = w.tenants.create(&w.sysadmin(), req).await.unwrap();

    let t = &created.tenant;
    assert_eq!((t.name.as_str(), t.slug.as_str()), ("Acme Corp", "acme-corp"));
    assert_eq!((t.tier, t.status), (TenantTier::Pro, TenantStatus::Pending));
    assert_eq!(t.limits, TenantTier::Pro.limits());
    assert_eq!((t.created_at, t.activated_at), (start(), None));
    assert_eq!(created.settings.primary_color, "#6366f1");
    assert_eq!(created.settings.session_timeout_minutes, 60);
    let admin = &created.admin;
    assert_eq!(admin.tenant_id, Some(t.id));
    assert_eq!(admin.email, "boss@acme.example");
    assert_eq!(
        (admin.first_name.as_str(), admin.last_name.as_str()),
        ("Ada", "Mary Lovelace")
    );
    assert_eq!(admin.roles, BTreeSet::from([Role::Admin]));
    assert!(admin.is_active);

    // Stored, not just returned.
    assert_eq!(w.tenants.get(&w.sysadmin(), t.id).await.unwrap(), *t);
    assert_eq!(
        w.tenants.get_settings(&w.sysadmin(), t.id).await.unwrap(),
        created.settings
    );
    assert_eq!(w.users.get(&w.admin(&created), admin.id).await.unwrap(), *admin);

    let jobs = w.drain_jobs().await;
    let kinds_seen: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(
        kinds_seen,
        [
            kinds::PERMISSIONS_BOOTSTRAP_TENANT,
            kinds::BILLING_SYNC_TENANT,
            kinds::EMAIL_WELCOME
        ]
    );
    assert!(jobs.iter().all(|j| j.tenant_id == Some(t.id)));
    let bootstrap = &jobs[0].payload;
    assert_eq!(bootstrap["tenant_id"], json!(t.id));
    assert_eq!(bootstrap["admin_user_id"], json!(admin.id));

    let audit = w.audit(&AuditFilter::default()).await;
    assert_eq!(audit.len(), 2);
    assert!(
        audit
            .iter()
            .all(|e| e.action == AuditAction::Create && e.tenant_id == Some(t.id))
    );
    let tenant_entry = audit.iter().find(|e| e.resource_type == "tenant").unwrap();
    assert_eq!(tenant_entry.resource_id, t.id.to_string());
    assert_eq!(
        tenant_entry.new_values.as_ref().unwrap()["tenant"]["slug"],
        "acme-corp"
    );
    assert_eq!(tenant_entry.actor_type, "user");
}

#[tokio::test]
async fn create_without_welcome_email_enqueues_no_welcome_job() {
    let w = World::new();
    let mut req = CreateTenantRequest::new("Quiet", "quiet", "q@quiet.example", "Quinn Q");
    req.send_welcome_email = false;
    w.tenants.create(&w.system(), req).await.unwrap();
    let kinds_seen: Vec<String> = w.drain_jobs().await.into_iter().map(|j| j.kind).collect();
    assert_eq!(
        kinds_seen,
        [kinds::PERMISSIONS_BOOTSTRAP_TENANT, kinds::BILLING_SYNC_TENANT]
    );
}

#[tokio::test]
async fn create_with_a_taken_slug_is_conflict_and_writes_nothing() {
    let w = World::new();
    w.tenant("acme", TenantTier::Free).await;
    let before = w.before().await;
    let req = CreateTenantRequest::new("Other", "acme", "other@other.example", "Otto Other");
    assert_eq!(code(w.tenants.create(&w.sysadmin(), req).await), "conflict");
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn create_with_a_registered_admin_email_is_conflict_and_rolls_back_the_tenant_too() {
    let w = World::new();
    w.tenant("acme", TenantTier::Free).await;
    let before = w.before().await;
    let req = CreateTenantRequest::new("Other", "other", "ADMIN@acme.example", "Otto Other");
    assert_eq!(code(w.tenants.create(&w.sysadmin(), req).await), "conflict");
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn create_validation_reports_every_bad_field_and_writes_nothing() {
    let w = World::new();
    let before = w.before().await;
    let req = CreateTenantRequest {
        name: "A".into(),
        slug: "-acme".into(),
        tier: Some("platinum".into()),
        admin_email: "nobody".into(),
        admin_name: "B".into(),
        send_welcome_email: true,
    };
    assert_eq!(
        invalid_fields(w.tenants.create(&w.sysadmin(), req).await),
        ["name", "slug", "tier", "admin_email", "admin_name"]
    );
    for slug in ["ab", "Acme", "acme_corp", "acme-", &"a".repeat(101)] {
        let req = CreateTenantRequest::new("Acme", slug, "a@acme.example", "Ada Admin");
        assert_eq!(
            invalid_fields(w.tenants.create(&w.sysadmin(), req).await),
            ["slug"],
            "{slug}"
        );
    }
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn a_tenant_context_cannot_read_or_change_another_tenant() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let as_a = w.admin(&a);
    let before = w.before().await;
    let id = b.tenant.id;
    assert_eq!(code(w.tenants.get(&as_a, id).await), "not_found");
    assert_eq!(code(w.tenants.get_settings(&as_a, id).await), "not_found");
    assert_eq!(code(w.tenants.usage(&as_a, id).await), "not_found");
    assert_eq!(code(w.tenants.limits(&as_a, id).await), "not_found");
    let rename = UpdateTenantRequest {
        name: Some("Pwned".into()),
        ..Default::default()
    };
    assert_eq!(code(w.tenants.update(&as_a, id, rename).await), "not_found");
    let reason = SuspendTenantRequest {
        reason: "because".into(),
    };
    assert_eq!(code(w.tenants.suspend(&as_a, id, reason).await), "not_found");
    assert_eq!(code(w.tenants.activate(&as_a, id).await), "not_found");
    assert_eq!(code(w.tenants.delete(&as_a, id).await), "not_found");
    let colour = TenantSettingsUpdate {
        primary_color: Some("#000000".into()),
        ..Default::default()
    };
    assert_eq!(
        code(w.tenants.update_settings(&as_a, id, colour).await),
        "not_found"
    );
    let listed = w
        .tenants
        .list(&as_a, TenantFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        [a.tenant.id]
    );
    assert_eq!(listed.total, 1);
    w.assert_unchanged(&before).await;
    // Its own tenant is fine.
    assert_eq!(w.tenants.get(&as_a, a.tenant.id).await.unwrap().slug, "alpha");
}

#[tokio::test]
async fn list_filters_by_status_tier_and_search_and_counts_each_tenants_rows() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Starter).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let c = w.tenant("gamma-alpha", TenantTier::Pro).await;
    w.tenants
        .suspend(
            &w.sysadmin(),
            b.tenant.id,
            SuspendTenantRequest {
                reason: "unpaid".into(),
            },
        )
        .await
        .unwrap();
    for n in 0..3 {
        let invite = InviteUserRequest {
            email: format!("u{n}@alpha.example"),
            first_name: String::new(),
            last_name: String::new(),
            roles: vec!["viewer".into()],
        };
        w.users.invite(&w.admin(&a), invite).await.unwrap();
    }
    w.projects
        .create(&w.admin(&a), CreateProjectRequest::named("One"))
        .await
        .unwrap();
    w.projects
        .create(&w.admin(&a), CreateProjectRequest::named("Two"))
        .await
        .unwrap();
    w.projects
        .create(&w.admin(&c), CreateProjectRequest::named("One"))
        .await
        .unwrap();

    let all = w
        .tenants
        .list(&w.sysadmin(), TenantFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    let slugs: Vec<&str> = all.items.iter().map(|t| t.slug.as_str()).collect();
    assert_eq!(slugs, ["gamma-alpha", "beta", "alpha"], "newest first");
    let row = |slug: &str| all.items.iter().find(|t| t.slug == slug).unwrap().clone();
    assert_eq!(
        (
            row("alpha").user_count,
            row("alpha").project_count,
            row("alpha").session_count
        ),
        (4, 2, 0)
    );
    assert_eq!((row("beta").user_count, row("beta").project_count), (1, 0));
    assert_eq!(
        (row("gamma-alpha").user_count, row("gamma-alpha").project_count),
        (1, 1)
    );

    let by = |filter: TenantFilter| {
        let w = &w;
        async move {
            let page = w
                .tenants
                .list(&w.sysadmin(), filter, PageRequest::default())
                .await
                .unwrap();
            page.items.into_iter().map(|t| t.slug).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by(TenantFilter {
            status: Some(TenantStatus::Suspended),
            ..Default::default()
        })
        .await,
        ["beta"]
    );
    assert_eq!(
        by(TenantFilter {
            tier: Some(TenantTier::Pro),
            ..Default::default()
        })
        .await,
        ["gamma-alpha"]
    );
    assert_eq!(
        by(TenantFilter {
            search: Some("ALPHA".into()),
            ..Default::default()
        })
        .await,
        ["gamma-alpha", "alpha"]
    );
    assert_eq!(
        by(TenantFilter {
            search: Some("Beta Inc".into()),
            ..Default::default()
        })
        .await,
        ["beta"]
    );

    let second = PageRequest::new(Some(2), Some(2)).unwrap();
    let page = w
        .tenants
        .list(&w.sysadmin(), TenantFilter::default(), second)
        .await
        .unwrap();
    assert_eq!(
        (page.total, page.items.len(), page.items[0].slug.as_str()),
        (3, 1, "alpha")
    );
}

#[tokio::test]
async fn a_tier_change_resets_the_limits_then_explicit_overrides_apply() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    w.drain_jobs().await;
    let req = UpdateTenantRequest {
        tier: Some("starter".into()),
        max_projects: Some(7),
        ..Default::default()
    };
    let t = w.tenants.update(&w.sysadmin(), a.tenant.id, req).await.unwrap();
    assert_eq!(t.tier, TenantTier::Starter);
    let starter = TenantTier::Starter.limits();
    assert_eq!(
        (t.limits.max_users, t.limits.max_api_keys),
        (starter.max_users, starter.max_api_keys)
    );
    assert_eq!(t.limits.max_projects, 7);
    assert_eq!(t.limits.max_sessions_per_month, starter.max_sessions_per_month);
    assert_eq!(
        w.tenants.limits(&w.admin(&a), a.tenant.id).await.unwrap(),
        t.limits
    );

    let jobs = w.drain_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, kinds::BILLING_SYNC_TENANT);
    let entry = w
        .audit(&AuditFilter {
            action: Some(AuditAction::Update),
            ..filter_for("tenant")
        })
        .await;
    let entry = &entry[0];
    assert_eq!(entry.old_values.as_ref().unwrap()["tier"], "free");
    assert_eq!(entry.new_values.as_ref().unwrap()["tier"], "starter");
    assert!(
        entry.new_values.as_ref().unwrap().get("name").is_none(),
        "only changed fields are audited"
    );

    // Back to the tier table on the next tier change.
    let t = w.set_tier(a.tenant.id, TenantTier::Pro).await;
    assert_eq!(t.limits, TenantTier::Pro.limits());
}

#[tokio::test]
async fn update_merges_settings_and_a_no_op_update_writes_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let id = a.tenant.id;
    let req = UpdateTenantRequest {
        settings: Some(json!({ "theme": { "dark": true, "x": 1 } })),
        ..Default::default()
    };
    w.tenants.update(&w.sysadmin(), id, req).await.unwrap();
    let req = UpdateTenantRequest {
        name: Some("Alpha GmbH".into()),
        settings: Some(json!({ "theme": { "x": null }, "locale": "de" })),
        ..Default::default()
    };
    let t = w.tenants.update(&w.sysadmin(), id, req).await.unwrap();
    assert_eq!(t.name, "Alpha GmbH");
    assert_eq!(
        serde_json::Value::Object(t.settings.clone()),
        json!({ "theme": { "dark": true }, "locale": "de" })
    );

    let before = w.before().await;
    let same = UpdateTenantRequest {
        name: Some("Alpha GmbH".into()),
        tier: Some("free".into()),
        ..Default::default()
    };
    assert_eq!(w.tenants.update(&w.sysadmin(), id, same).await.unwrap(), t);
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn every_invalid_update_is_a_validation_error_and_changes_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let id = a.tenant.id;
    let before = w.before().await;
    let cases: Vec<(UpdateTenantRequest, &str)> = vec![
        (
            UpdateTenantRequest {
                name: Some("x".into()),
                ..Default::default()
            },
            "name",
        ),
        (
            UpdateTenantRequest {
                tier: Some("gold".into()),
                ..Default::default()
            },
            "tier",
        ),
        (
            UpdateTenantRequest {
                max_users: Some(0),
                ..Default::default()
            },
            "max_users",
        ),
        (
            UpdateTenantRequest {
                max_projects: Some(-1),
                ..Default::default()
            },
            "max_projects",
        ),
        (
            UpdateTenantRequest {
                max_api_keys: Some(0),
                ..Default::default()
            },
            "max_api_keys",
        ),
        (
            UpdateTenantRequest {
                max_sessions_per_month: Some(0),
                ..Default::default()
            },
            "max_sessions_per_month",
        ),
        (
            UpdateTenantRequest {
                settings: Some(json!("flat")),
                ..Default::default()
            },
            "settings",
        ),
        (
            UpdateTenantRequest {
                settings: Some(json!({ "suspension_reason": "" })),
                ..Default::default()
            },
            "settings.suspension_reason",
        ),
    ];
    for (req, field) in cases {
        assert_eq!(
            invalid_fields(w.tenants.update(&w.sysadmin(), id, req).await),
            [field]
        );
    }
    w.assert_unchanged(&before).await;
    // The merged document is checked too: two patches under the limit whose union is over it.
    let half = "x".repeat(40 * 1024);
    w.tenants
        .update(
            &w.sysadmin(),
            id,
            UpdateTenantRequest {
                settings: Some(json!({ "a": half })),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let before = w.before().await;
    let req = UpdateTenantRequest {
        settings: Some(json!({ "b": half })),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.tenants.update(&w.sysadmin(), id, req).await),
        ["settings"]
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_changes_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let id = a.tenant.id;
    let current = w.tenants.get(&w.sysadmin(), id).await.unwrap();
    let before = w.before().await;
    let stale = UpdateTenantRequest {
        name: Some("Late".into()),
        expected_version: Some(current.version - 1),
        ..Default::default()
    };
    assert_eq!(code(w.tenants.update(&w.sysadmin(), id, stale).await), "conflict");
    let stale_settings = TenantSettingsUpdate {
        require_mfa: Some(true),
        expected_version: Some(99),
        ..Default::default()
    };
    assert_eq!(
        code(w.tenants.update_settings(&w.sysadmin(), id, stale_settings).await),
        "conflict"
    );
    w.assert_unchanged(&before).await;
    let fresh = UpdateTenantRequest {
        name: Some("On time".into()),
        expected_version: Some(current.version),
        ..Default::default()
    };
    assert_eq!(
        w.tenants.update(&w.sysadmin(), id, fresh).await.unwrap().version,
        current.version + 1
    );
}

#[tokio::test]
async fn lowering_a_limit_below_current_usage_is_refused() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Starter).await;
    for name in ["One", "Two"] {
        w.projects
            .create(&w.admin(&a), CreateProjectRequest::named(name))
            .await
            .unwrap();
    }
    let before = w.before().await;
    let down = UpdateTenantRequest {
        tier: Some("free".into()),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.tenants.update(&w.sysadmin(), a.tenant.id, down).await),
        ["max_projects"]
    );
    let explicit = UpdateTenantRequest {
        max_projects: Some(1),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.tenants.update(&w.sysadmin(), a.tenant.id, explicit).await),
        ["max_projects"]
    );
    w.assert_unchanged(&before).await;
    let exact = UpdateTenantRequest {
        max_projects: Some(2),
        ..Default::default()
    };
    assert_eq!(
        w.tenants
            .update(&w.sysadmin(), a.tenant.id, exact)
            .await
            .unwrap()
            .limits
            .max_projects,
        2
    );
}

#[tokio::test]
async fn suspend_records_the_reason_and_activate_clears_it() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let id = a.tenant.id;
    w.clock.advance(chrono::Duration::minutes(5));
    let reason = SuspendTenantRequest {
        reason: "Payment overdue".into(),
    };
    let t = w.tenants.suspend(&w.sysadmin(), id, reason).await.unwrap();
    assert_eq!(t.status, TenantStatus::Suspended);
    assert_eq!(t.suspended_at, Some(start() + chrono::Duration::minutes(5)));
    assert_eq!(t.settings["suspension_reason"], "Payment overdue");
    let entries = w.audit(&filter_for("tenant")).await;
    assert_eq!(entries[0].metadata["reason"], "Payment overdue");
    assert_eq!(entries[0].new_values.as_ref().unwrap()["status"], "suspended");

    w.clock.advance(chrono::Duration::minutes(5));
    let t = w.tenants.activate(&w.sysadmin(), id).await.unwrap();
    assert_eq!(t.status, TenantStatus::Active);
    assert_eq!(t.activated_at, Some(start() + chrono::Duration::minutes(10)));
    assert!(!t.settings.contains_key("suspension_reason"));
}

#[tokio::test]
async fn suspension_needs_a_reason_of_at_most_500_characters() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let before = w.before().await;
    for reason in [String::new(), "   ".into(), "r".repeat(501)] {
        let req = SuspendTenantRequest { reason };
        assert_eq!(
            invalid_fields(w.tenants.suspend(&w.sysadmin(), a.tenant.id, req).await),
            ["reason"]
        );
    }
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn invalid_status_transitions_are_conflicts_that_change_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let id = a.tenant.id;
    let reason = || SuspendTenantRequest { reason: "x".into() };

    let before = w.before().await;
    assert_eq!(
        code(w.tenants.activate(&w.sysadmin(), id).await),
        "conflict",
        "already active"
    );
    w.assert_unchanged(&before).await;

    w.tenants.suspend(&w.sysadmin(), id, reason()).await.unwrap();
    let before = w.before().await;
    assert_eq!(
        code(w.tenants.suspend(&w.sysadmin(), id, reason()).await),
        "conflict",
        "already suspended"
    );
    w.assert_unchanged(&before).await;

    let deleted = w.tenants.delete(&w.sysadmin(), id).await.unwrap();
    assert_eq!(deleted.status, TenantStatus::Deleted);
    assert_eq!(deleted.deleted_at, Some(start()));
    let before = w.before().await;
    assert_eq!(code(w.tenants.activate(&w.sysadmin(), id).await), "conflict");
    assert_eq!(
        code(w.tenants.suspend(&w.sysadmin(), id, reason()).await),
        "conflict"
    );
    assert_eq!(code(w.tenants.delete(&w.sysadmin(), id).await), "conflict");
    let rename = UpdateTenantRequest {
        name: Some("Zombie".into()),
        ..Default::default()
    };
    assert_eq!(
        code(w.tenants.update(&w.sysadmin(), id, rename).await),
        "conflict"
    );
    let colour = TenantSettingsUpdate {
        primary_color: Some("#000000".into()),
        ..Default::default()
    };
    assert_eq!(
        code(w.tenants.update_settings(&w.sysadmin(), id, colour).await),
        "tenant_not_found"
    );
    w.assert_unchanged(&before).await;
    // Soft delete keeps the row and its audit trail.
    assert_eq!(
        w.tenants.get(&w.sysadmin(), id).await.unwrap().status,
        TenantStatus::Deleted
    );
    let deletes = w
        .audit(&AuditFilter {
            action: Some(AuditAction::Delete),
            ..filter_for("tenant")
        })
        .await;
    assert_eq!(deletes.len(), 1);
}

#[tokio::test]
async fn a_pending_tenant_can_be_suspended_and_a_new_tenant_activated() {
    let w = World::new();
    let created = w
        .tenants
        .create(
            &w.sysadmin(),
            CreateTenantRequest::new("Pending", "pending", "p@p.example", "Pat P"),
        )
        .await
        .unwrap();
    let id = created.tenant.id;
    let t = w
        .tenants
        .suspend(&w.sysadmin(), id, SuspendTenantRequest { reason: "kyc".into() })
        .await
        .unwrap();
    assert_eq!(t.status, TenantStatus::Suspended);
    assert_eq!(
        w.tenants.activate(&w.sysadmin(), id).await.unwrap().status,
        TenantStatus::Active
    );
}

#[tokio::test]
async fn suspended_tenants_cannot_create_users_or_projects() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Pro).await;
    w.tenants
        .suspend(
            &w.sysadmin(),
            a.tenant.id,
            SuspendTenantRequest {
                reason: "abuse".into(),
            },
        )
        .await
        .unwrap();
    let before = w.before().await;
    let invite = InviteUserRequest {
        email: "new@alpha.example".into(),
        first_name: String::new(),
        last_name: String::new(),
        roles: vec!["developer".into()],
    };
    assert_eq!(
        code(w.users.invite(&w.admin(&a), invite).await),
        "tenant_suspended"
    );
    assert_eq!(
        code(
            w.projects
                .create(&w.admin(&a), CreateProjectRequest::named("P"))
                .await
        ),
        "tenant_suspended"
    );
    w.assert_unchanged(&before).await;
    // …nor can a deleted one (tenant_not_found).
    w.tenants.delete(&w.sysadmin(), a.tenant.id).await.unwrap();
    let before = w.before().await;
    assert_eq!(
        code(
            w.projects
                .create(&w.admin(&a), CreateProjectRequest::named("P"))
                .await
        ),
        "tenant_not_found"
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn settings_update_changes_the_given_fields_and_audits_a_settings_change() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let id = a.tenant.id;
    let req = TenantSettingsUpdate {
        logo_url: Some("https://cdn.alpha.example/logo.png".into()),
        primary_color: Some("#00FF7f".into()),
        default_voice_provider: Some("agentvoicebox".into()),
        webhook_url: Some("http://hooks.alpha.example/avb".into()),
        allowed_ip_ranges: Some(vec![
            "10.0.0.0/8".into(),
            "2001:db8::/32".into(),
            "192.0.2.7".into(),
        ]),
        require_mfa: Some(true),
        session_timeout_minutes: Some(5),
        ..Default::default()
    };
    let s = w.tenants.update_settings(&w.admin(&a), id, req).await.unwrap();
    assert_eq!(s.primary_color, "#00FF7f");
    assert_eq!(s.default_voice_provider, VoiceProvider::AgentVoiceBox);
    assert_eq!(s.allowed_ip_ranges.len(), 3);
    assert!(s.require_mfa);
    assert_eq!(s.session_timeout_minutes, 5);
    assert_eq!(s.default_stt_model, "base", "untouched fields keep their values");
    assert_eq!(w.tenants.get_settings(&w.admin(&a), id).await.unwrap(), s);

    let entries = w
        .audit(&AuditFilter {
            action: Some(AuditAction::SettingsChange),
            ..Default::default()
        })
        .await;
    assert_eq!(entries.len(), 1);
    let old = entries[0].old_values.as_ref().unwrap();
    assert_eq!(old["primary_color"], "#6366f1");
    assert_eq!(old["require_mfa"], false);
    assert_eq!(entries[0].tenant_id, Some(id));
    assert_eq!(entries[0].actor_id, Some(a.admin.id.0));

    // Clearing optional URLs is allowed.
    let clear = TenantSettingsUpdate {
        logo_url: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(
        w.tenants
            .update_settings(&w.admin(&a), id, clear)
            .await
            .unwrap()
            .logo_url,
        ""
    );
}

#[tokio::test]
async fn every_invalid_settings_field_is_reported_and_nothing_changes() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let before = w.before().await;
    let req = TenantSettingsUpdate {
        logo_url: Some("javascript:alert(1)".into()),
        primary_color: Some("red".into()),
        default_voice_provider: Some("cloud".into()),
        default_tts_voice: Some("v".repeat(51)),
        webhook_url: Some("hooks.alpha.example".into()),
        allowed_ip_ranges: Some(vec!["10.0.0.0/8".into(), "999.0.0.0/8".into()]),
        session_timeout_minutes: Some(1441),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.tenants.update_settings(&w.admin(&a), a.tenant.id, req).await),
        [
            "logo_url",
            "primary_color",
            "default_voice_provider",
            "default_tts_voice",
            "webhook_url",
            "allowed_ip_ranges[1]",
            "session_timeout_minutes"
        ]
    );
    let too_many = TenantSettingsUpdate {
        allowed_ip_ranges: Some(vec!["10.0.0.0/8".into(); 101]),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(
            w.tenants
                .update_settings(&w.admin(&a), a.tenant.id, too_many)
                .await
        ),
        ["allowed_ip_ranges"]
    );
    let low = TenantSettingsUpdate {
        session_timeout_minutes: Some(4),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.tenants.update_settings(&w.admin(&a), a.tenant.id, low).await),
        ["session_timeout_minutes"]
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn usage_counts_against_limits_and_follows_the_tier() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    w.projects
        .create(&w.admin(&a), CreateProjectRequest::named("Only"))
        .await
        .unwrap();
    w.projects
        .create(&w.admin(&b), CreateProjectRequest::named("Other"))
        .await
        .unwrap();
    let invite = InviteUserRequest {
        email: "dev@alpha.example".into(),
        first_name: "Dev".into(),
        last_name: String::new(),
        roles: vec!["developer".into()],
    };
    w.users.invite(&w.admin(&a), invite).await.unwrap();
    let usage = w.tenants.usage(&w.admin(&a), a.tenant.id).await.unwrap();
    let free = TenantTier::Free.limits();
    assert_eq!(
        usage.users,
        UsageCounter {
            current: 2,
            limit: u64::from(free.max_users)
        }
    );
    assert_eq!(
        usage.projects,
        UsageCounter {
            current: 1,
            limit: u64::from(free.max_projects)
        }
    );
    assert_eq!(
        usage.api_keys,
        UsageCounter {
            current: 0,
            limit: u64::from(free.max_api_keys)
        }
    );
    assert_eq!(
        usage.sessions_this_month,
        UsageCounter {
            current: 0,
            limit: u64::from(free.max_sessions_per_month)
        }
    );
    // A sysadmin reads the same numbers.
    assert_eq!(w.tenants.usage(&w.sysadmin(), a.tenant.id).await.unwrap(), usage);

    w.set_tier(a.tenant.id, TenantTier::Enterprise).await;
    let usage = w.tenants.usage(&w.admin(&a), a.tenant.id).await.unwrap();
    assert_eq!(usage.users.limit, 500);
    assert_eq!(
        usage.projects,
        UsageCounter {
            current: 1,
            limit: 100
        }
    );
}

#[tokio::test]
async fn get_of_an_unknown_tenant_is_not_found() {
    let w = World::new();
    let unknown = TenantId(uuid::Uuid::from_u128(42));
    assert_eq!(code(w.tenants.get(&w.sysadmin(), unknown).await), "not_found");
    assert_eq!(
        code(w.tenants.activate(&w.sysadmin(), unknown).await),
        "not_found"
    );
}
