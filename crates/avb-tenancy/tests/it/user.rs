//! UserService against the memory store.

use crate::common::{World, code, invalid_fields, start};
use avb_core::audit::{AuditAction, AuditFilter};
use avb_core::jobs::kinds;
use avb_core::{PageRequest, Role, ThemeId, UserId};
use avb_tenancy::model::{TenantTier, Theme};
use avb_tenancy::store::UserFilter;
use avb_tenancy::user::{
    ChangeRolesRequest, IdentityClaims, InviteUserRequest, TenantJoin, UpdateProfileRequest,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn invite(email: &str, roles: &[&str]) -> InviteUserRequest {
    InviteUserRequest {
        email: email.into(),
        first_name: "Grace".into(),
        last_name: "Hopper".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn roles(names: &[&str]) -> ChangeRolesRequest {
    ChangeRolesRequest {
        roles: names.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn claims(sub: &str, email: &str, tenant: Option<avb_core::TenantId>) -> IdentityClaims {
    IdentityClaims {
        keycloak_id: sub.into(),
        email: email.into(),
        first_name: "Kay".into(),
        last_name: "Cloak".into(),
        tenant_id: tenant,
        roles: BTreeSet::from([Role::Developer]),
    }
}

#[tokio::test]
async fn invite_stores_the_user_enqueues_the_invitation_and_audits() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    w.drain_jobs().await;
    let user = w
        .users
        .invite(
            &w.admin(&a),
            invite("Grace@Alpha.Example", &["developer", "viewer"]),
        )
        .await
        .unwrap();
    assert_eq!(user.email, "grace@alpha.example");
    assert_eq!(user.tenant_id, Some(a.tenant.id));
    assert_eq!(user.roles, BTreeSet::from([Role::Developer, Role::Viewer]));
    assert_eq!(
        (user.is_active, user.keycloak_id.as_deref(), user.date_joined),
        (true, None, start())
    );
    assert_eq!(w.users.get(&w.admin(&a), user.id).await.unwrap(), user);

    let jobs = w.drain_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, kinds::EMAIL_INVITE);
    assert_eq!(jobs[0].payload["user_id"], json!(user.id));
    assert_eq!(jobs[0].payload["invited_by"], json!(a.admin.id));
    let entries = w
        .audit(&AuditFilter {
            resource_id: Some(user.id.to_string()),
            ..Default::default()
        })
        .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, AuditAction::Create);
    assert_eq!(
        entries[0].new_values.as_ref().unwrap()["email"],
        "grace@alpha.example"
    );
}

#[tokio::test]
async fn invite_beyond_max_users_is_refused_until_the_tier_is_raised() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await; // 3 users, the admin is one
    let ctx = w.admin(&a);
    w.users
        .invite(&ctx, invite("u1@alpha.example", &["viewer"]))
        .await
        .unwrap();
    w.users
        .invite(&ctx, invite("u2@alpha.example", &["viewer"]))
        .await
        .unwrap();
    let before = w.before().await;
    assert_eq!(
        code(
            w.users
                .invite(&ctx, invite("u3@alpha.example", &["viewer"]))
                .await
        ),
        "tenant_limit_exceeded"
    );
    w.assert_unchanged(&before).await;

    w.set_tier(a.tenant.id, TenantTier::Starter).await;
    w.users
        .invite(&ctx, invite("u3@alpha.example", &["viewer"]))
        .await
        .unwrap();
    assert_eq!(w.tenants.usage(&ctx, a.tenant.id).await.unwrap().users.current, 4);
}

#[tokio::test]
async fn emails_are_unique_across_tenants() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    w.users
        .invite(&w.admin(&a), invite("shared@example.com", &["viewer"]))
        .await
        .unwrap();
    let before = w.before().await;
    assert_eq!(
        code(
            w.users
                .invite(&w.admin(&b), invite("SHARED@example.com", &["viewer"]))
                .await
        ),
        "conflict"
    );
    assert_eq!(
        code(
            w.users
                .invite(&w.admin(&a), invite("shared@example.com", &["viewer"]))
                .await
        ),
        "conflict"
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn invalid_invitations_report_every_field_and_write_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let before = w.before().await;
    let bad = InviteUserRequest {
        email: "grace at alpha".into(),
        first_name: "g".repeat(151),
        last_name: "ok".into(),
        roles: vec!["overlord".into()],
    };
    assert_eq!(
        invalid_fields(w.users.invite(&w.admin(&a), bad).await),
        ["email", "first_name", "roles[0]"]
    );
    assert_eq!(
        invalid_fields(
            w.users
                .invite(&w.admin(&a), invite("ok@alpha.example", &[]))
                .await
        ),
        ["roles"]
    );
    assert_eq!(
        code(
            w.users
                .invite(&w.admin(&a), invite("root@alpha.example", &["sysadmin"]))
                .await
        ),
        "permission_denied"
    );
    assert_eq!(
        code(
            w.users
                .invite(&w.sysadmin(), invite("x@alpha.example", &["viewer"]))
                .await
        ),
        "tenant_required"
    );
    w.assert_unchanged(&before).await;
    // A sysadmin acting in the tenant may grant it.
    let in_a = w.sysadmin().scoped_to(a.tenant.id);
    let root = w
        .users
        .invite(&in_a, invite("root@alpha.example", &["sysadmin"]))
        .await
        .unwrap();
    assert!(root.roles.contains(&Role::Sysadmin));
}

#[tokio::test]
async fn users_of_another_tenant_are_invisible() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let bob = w
        .users
        .invite(&w.admin(&b), invite("bob@beta.example", &["viewer"]))
        .await
        .unwrap();
    let before = w.before().await;
    let as_a = w.admin(&a);
    assert_eq!(code(w.users.get(&as_a, bob.id).await), "not_found");
    assert_eq!(
        code(w.users.change_roles(&as_a, bob.id, roles(&["admin"])).await),
        "not_found"
    );
    assert_eq!(code(w.users.deactivate(&as_a, bob.id).await), "not_found");
    assert_eq!(code(w.users.reactivate(&as_a, bob.id).await), "not_found");
    let rename = UpdateProfileRequest {
        first_name: Some("Pwned".into()),
        ..Default::default()
    };
    assert_eq!(
        code(w.users.update_profile(&as_a, bob.id, rename).await),
        "not_found"
    );
    assert_eq!(code(w.users.record_login(&as_a, bob.id).await), "not_found");
    let listed = w
        .users
        .list(&as_a, UserFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|u| u.id).collect::<Vec<_>>(),
        [a.admin.id]
    );
    assert_eq!(listed.total, 1);
    let searched = UserFilter {
        search: Some("bob".into()),
        ..Default::default()
    };
    assert_eq!(
        w.users
            .list(&as_a, searched, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn list_filters_and_paginates_within_the_tenant() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Pro).await;
    let ctx = w.admin(&a);
    for n in 0..5 {
        let role = if n % 2 == 0 { "developer" } else { "viewer" };
        w.users
            .invite(&ctx, invite(&format!("user{n}@alpha.example"), &[role]))
            .await
            .unwrap();
    }
    let devs = UserFilter {
        role: Some(Role::Developer),
        ..Default::default()
    };
    assert_eq!(
        w.users
            .list(&ctx, devs, PageRequest::default())
            .await
            .unwrap()
            .total,
        3
    );
    let page = w
        .users
        .list(
            &ctx,
            UserFilter::default(),
            PageRequest::new(Some(2), Some(4)).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!((page.total, page.items.len()), (6, 2));
    let exact = UserFilter {
        email: Some("USER3@alpha.example".into()),
        ..Default::default()
    };
    assert_eq!(
        w.users
            .list(&ctx, exact, PageRequest::default())
            .await
            .unwrap()
            .items[0]
            .email,
        "user3@alpha.example"
    );
}

#[tokio::test]
async fn changing_roles_is_audited_as_a_permission_change() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let ctx = w.admin(&a);
    let dev = w
        .users
        .invite(&ctx, invite("dev@alpha.example", &["developer"]))
        .await
        .unwrap();
    let changed = w
        .users
        .change_roles(&ctx, dev.id, roles(&["admin", "billing"]))
        .await
        .unwrap();
    assert_eq!(changed.roles, BTreeSet::from([Role::Admin, Role::Billing]));
    let entries = w
        .audit(&AuditFilter {
            action: Some(AuditAction::PermissionChange),
            ..Default::default()
        })
        .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].old_values, Some(json!({ "roles": ["developer"] })));
    assert_eq!(
        entries[0].new_values,
        Some(json!({ "roles": ["admin", "billing"] }))
    );

    // Same set again: nothing written.
    let before = w.before().await;
    w.users
        .change_roles(&ctx, dev.id, roles(&["billing", "admin"]))
        .await
        .unwrap();
    w.assert_unchanged(&before).await;
    let bad = roles(&["admin", "janitor"]);
    assert_eq!(
        invalid_fields(w.users.change_roles(&ctx, dev.id, bad).await),
        ["roles[1]"]
    );
    assert_eq!(
        code(w.users.change_roles(&ctx, dev.id, roles(&["sysadmin"])).await),
        "permission_denied"
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn the_last_active_admin_keeps_the_role_and_stays_active() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let ctx = w.admin(&a);
    let other = w
        .users
        .invite(&ctx, invite("other@alpha.example", &["viewer"]))
        .await
        .unwrap();
    let as_other = w.as_user(&other);
    let before = w.before().await;
    assert_eq!(
        code(w.users.change_roles(&ctx, a.admin.id, roles(&["viewer"])).await),
        "conflict"
    );
    assert_eq!(code(w.users.deactivate(&as_other, a.admin.id).await), "conflict");
    assert_eq!(
        code(w.users.deactivate(&ctx, a.admin.id).await),
        "conflict",
        "nobody deactivates themself"
    );
    w.assert_unchanged(&before).await;

    // With a second admin the first may step down.
    w.users
        .change_roles(&ctx, other.id, roles(&["admin"]))
        .await
        .unwrap();
    let stepped_down = w
        .users
        .change_roles(&ctx, a.admin.id, roles(&["viewer"]))
        .await
        .unwrap();
    assert_eq!(stepped_down.roles, BTreeSet::from([Role::Viewer]));
}

#[tokio::test]
async fn deactivation_frees_a_seat_and_reactivation_needs_one() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let ctx = w.admin(&a);
    let u1 = w
        .users
        .invite(&ctx, invite("u1@alpha.example", &["viewer"]))
        .await
        .unwrap();
    w.users
        .invite(&ctx, invite("u2@alpha.example", &["viewer"]))
        .await
        .unwrap();
    let off = w.users.deactivate(&ctx, u1.id).await.unwrap();
    assert!(!off.is_active);
    let entry = &w
        .audit(&AuditFilter {
            resource_id: Some(u1.id.to_string()),
            ..Default::default()
        })
        .await[0];
    assert_eq!(
        (entry.old_values.clone(), entry.new_values.clone()),
        (
            Some(json!({"is_active": true})),
            Some(json!({"is_active": false}))
        )
    );
    let before = w.before().await;
    assert_eq!(
        code(w.users.deactivate(&ctx, u1.id).await),
        "conflict",
        "already inactive"
    );
    w.assert_unchanged(&before).await;

    // The freed seat is taken by a new invitation…
    w.users
        .invite(&ctx, invite("u3@alpha.example", &["viewer"]))
        .await
        .unwrap();
    // …so reactivating u1 would exceed max_users.
    let before = w.before().await;
    assert_eq!(
        code(w.users.reactivate(&ctx, u1.id).await),
        "tenant_limit_exceeded"
    );
    w.assert_unchanged(&before).await;
    w.set_tier(a.tenant.id, TenantTier::Starter).await;
    assert!(w.users.reactivate(&ctx, u1.id).await.unwrap().is_active);
    assert_eq!(
        code(w.users.reactivate(&ctx, u1.id).await),
        "conflict",
        "already active"
    );
}

#[tokio::test]
async fn a_user_updates_their_own_profile() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let ctx = w.admin(&a);
    let theme = insert_theme(&w, &a.tenant.id).await;
    let req = UpdateProfileRequest {
        first_name: Some("Augusta".into()),
        avatar_url: Some("https://img.alpha.example/ada.png".into()),
        timezone: Some("Europe/London".into()),
        locale: Some("en-GB".into()),
        email_notifications: Some(false),
        muted_categories: Some(vec!["billing".into(), "session.events".into()]),
        theme_id: Some(Some(theme)),
        preferences: Some(json!({ "layout": { "compact": true } })),
        ..Default::default()
    };
    let me = w.users.update_me(&ctx, req).await.unwrap();
    assert_eq!(me.first_name, "Augusta");
    assert_eq!(me.last_name, "Admin", "untouched");
    assert_eq!(me.profile.timezone, "Europe/London");
    assert_eq!(me.profile.locale, "en-GB");
    assert!(!me.profile.email_notifications && me.profile.push_notifications);
    assert_eq!(
        me.profile.muted_categories,
        BTreeSet::from(["billing".to_owned(), "session.events".to_owned()])
    );
    assert_eq!(me.profile.theme_id, Some(theme));
    assert_eq!(me.preferences["layout"]["compact"], true);
    assert_eq!(w.users.me(&ctx).await.unwrap(), me);

    let cleared = w
        .users
        .update_me(
            &ctx,
            UpdateProfileRequest {
                theme_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.profile.theme_id, None);
    let entries = w
        .audit(&AuditFilter {
            resource_id: Some(me.id.to_string()),
            ..Default::default()
        })
        .await;
    assert_eq!(entries[0].action, AuditAction::Update);
    assert!(entries[0].new_values.as_ref().unwrap().get("profile").is_some());
}

#[tokio::test]
async fn invalid_profile_updates_change_nothing() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    let theme_of_b = insert_theme(&w, &b.tenant.id).await;
    let ctx = w.admin(&a);
    let before = w.before().await;
    let bad = UpdateProfileRequest {
        last_name: Some("l".repeat(151)),
        avatar_url: Some("ftp://x.example/a.png".into()),
        timezone: Some(String::new()),
        locale: Some("x".into()),
        muted_categories: Some(vec![String::new()]),
        preferences: Some(json!(3)),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.users.update_me(&ctx, bad).await),
        [
            "last_name",
            "avatar_url",
            "timezone",
            "locale",
            "muted_categories[0]",
            "preferences"
        ]
    );
    let foreign_theme = UpdateProfileRequest {
        theme_id: Some(Some(theme_of_b)),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.users.update_me(&ctx, foreign_theme).await),
        ["theme_id"]
    );
    let huge = UpdateProfileRequest {
        preferences: Some(json!({ "blob": "x".repeat(70_000) })),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(w.users.update_me(&ctx, huge).await),
        ["preferences"]
    );
    let stale = UpdateProfileRequest {
        locale: Some("fr".into()),
        expected_version: Some(1000),
        ..Default::default()
    };
    assert_eq!(code(w.users.update_me(&ctx, stale).await), "conflict");
    let api_key = avb_core::Ctx::new(
        avb_core::RequestId::generate(w.ids.as_ref()),
        w.api_key_principal(a.tenant.id),
    )
    .with_tenant(Some(a.tenant.id));
    assert_eq!(code(w.users.me(&api_key).await), "permission_denied");
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn identity_upsert_creates_then_only_writes_when_something_changed() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let sys = w.system();
    let created = w
        .users
        .upsert_from_identity(&sys, claims("kc-1", "Kay@Alpha.Example", Some(a.tenant.id)))
        .await
        .unwrap();
    assert_eq!(created.keycloak_id.as_deref(), Some("kc-1"));
    assert_eq!(created.email, "kay@alpha.example");
    assert_eq!(created.tenant_id, Some(a.tenant.id));
    assert_eq!(created.roles, BTreeSet::from([Role::Developer]));
    let entries = w
        .audit(&AuditFilter {
            resource_id: Some(created.id.to_string()),
            ..Default::default()
        })
        .await;
    assert_eq!((entries.len(), entries[0].tenant_id), (1, Some(a.tenant.id)));

    // The same login again: no write at all.
    let before = w.before().await;
    let again = w
        .users
        .upsert_from_identity(&sys, claims("kc-1", "kay@alpha.example", Some(a.tenant.id)))
        .await
        .unwrap();
    assert_eq!(again, created);
    w.assert_unchanged(&before).await;

    // A changed name is written once, and roles from the token do not override stored ones.
    let mut renamed = claims("kc-1", "kay@alpha.example", Some(a.tenant.id));
    renamed.last_name = "Cloakwell".into();
    renamed.roles = BTreeSet::from([Role::Admin]);
    let updated = w.users.upsert_from_identity(&sys, renamed).await.unwrap();
    assert_eq!(updated.last_name, "Cloakwell");
    assert_eq!(updated.roles, BTreeSet::from([Role::Developer]));
    assert_eq!(updated.version, created.version + 1);
}

#[tokio::test]
async fn identity_sign_in_owes_relationships_exactly_when_a_user_joins_a_tenant() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Pro).await;
    w.drain_jobs().await;
    let sys = w.system();
    let sync_jobs = |jobs: Vec<avb_core::jobs::Job>| {
        jobs.into_iter()
            .map(|j| (j.kind, j.tenant_id, j.payload))
            .collect::<Vec<_>>()
    };

    // Created in the claimed tenant: the join is reported, and recorded by a job of the same unit of work.
    let signed = w
        .users
        .sign_in_from_identity(&sys, claims("kc-1", "kay@alpha.example", Some(a.tenant.id)))
        .await
        .unwrap();
    let join = TenantJoin {
        tenant_id: a.tenant.id,
        user_id: signed.user.id,
        roles: BTreeSet::from([Role::Developer]),
    };
    assert_eq!(signed.joined.as_ref(), Some(&join));
    assert_eq!(
        sync_jobs(w.drain_jobs().await),
        [(
            kinds::PERMISSIONS_SYNC_USER.to_owned(),
            Some(a.tenant.id),
            json!({ "tenant_id": a.tenant.id, "user_id": signed.user.id, "roles": ["developer"] })
        )]
    );

    // The same identity again (even with a changed name): nothing is owed, no job.
    let mut renamed = claims("kc-1", "kay@alpha.example", Some(a.tenant.id));
    renamed.last_name = "Cloakwell".into();
    let again = w.users.sign_in_from_identity(&sys, renamed).await.unwrap();
    assert_eq!((again.user.id, again.joined), (signed.user.id, None));
    assert!(w.drain_jobs().await.is_empty());

    // An invited user linked at first sign-in had its roles granted by the users API when invited.
    w.users
        .invite(&w.admin(&a), invite("grace@alpha.example", &["operator"]))
        .await
        .unwrap();
    w.drain_jobs().await;
    let linked = w
        .users
        .sign_in_from_identity(&sys, claims("kc-grace", "grace@alpha.example", Some(a.tenant.id)))
        .await
        .unwrap();
    assert_eq!(linked.joined, None);
    assert!(w.drain_jobs().await.is_empty());

    // Without a tenant nothing is owed.
    let nomad = w
        .users
        .sign_in_from_identity(&sys, claims("kc-nomad", "nomad@x.example", None))
        .await
        .unwrap();
    assert_eq!((nomad.user.tenant_id, nomad.joined), (None, None));
    assert!(w.drain_jobs().await.is_empty());

    // `upsert_from_identity` is the same sign-in without the report.
    let plain = w
        .users
        .upsert_from_identity(&sys, claims("kc-2", "second@alpha.example", Some(a.tenant.id)))
        .await
        .unwrap();
    assert_eq!(plain.roles, BTreeSet::from([Role::Developer]));
    assert_eq!(w.drain_jobs().await.len(), 1);
}

#[tokio::test]
async fn identity_upsert_links_an_invited_user_by_email() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let invited = w
        .users
        .invite(&w.admin(&a), invite("grace@alpha.example", &["operator"]))
        .await
        .unwrap();
    let mut login = claims("kc-grace", "grace@alpha.example", Some(a.tenant.id));
    login.first_name = String::new();
    let linked = w.users.upsert_from_identity(&w.system(), login).await.unwrap();
    assert_eq!(linked.id, invited.id);
    assert_eq!(linked.keycloak_id.as_deref(), Some("kc-grace"));
    assert_eq!(linked.first_name, "Grace", "an empty claim keeps the stored name");
    assert_eq!(linked.roles, BTreeSet::from([Role::Operator]));
}

#[tokio::test]
async fn identity_upsert_refuses_foreign_tenants_other_subjects_and_full_tenants() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    let b = w.tenant("beta", TenantTier::Free).await;
    w.users
        .upsert_from_identity(
            &w.system(),
            claims("kc-1", "kay@alpha.example", Some(a.tenant.id)),
        )
        .await
        .unwrap();
    w.users
        .invite(&w.admin(&a), invite("u2@alpha.example", &["viewer"]))
        .await
        .unwrap();
    let before = w.before().await;
    let sys = w.system();
    let hop = claims("kc-1", "kay@alpha.example", Some(b.tenant.id));
    assert_eq!(
        code(w.users.upsert_from_identity(&sys, hop).await),
        "permission_denied"
    );
    let other_subject = claims("kc-2", "kay@alpha.example", Some(a.tenant.id));
    assert_eq!(
        code(w.users.upsert_from_identity(&sys, other_subject).await),
        "conflict"
    );
    let full = claims("kc-3", "third@alpha.example", Some(a.tenant.id));
    assert_eq!(
        code(w.users.upsert_from_identity(&sys, full).await),
        "tenant_limit_exceeded"
    );
    let bad = claims("", "not an email", Some(a.tenant.id));
    assert_eq!(
        invalid_fields(w.users.upsert_from_identity(&sys, bad).await),
        ["keycloak_id", "email"]
    );
    w.assert_unchanged(&before).await;
}

#[tokio::test]
async fn record_login_sets_last_login_and_audits_a_login() {
    let w = World::new();
    let a = w.tenant("alpha", TenantTier::Free).await;
    w.clock.advance(chrono::Duration::hours(1));
    let user = w.users.record_login(&w.system(), a.admin.id).await.unwrap();
    assert_eq!(user.last_login, Some(start() + chrono::Duration::hours(1)));
    let logins = w
        .audit(&AuditFilter {
            action: Some(AuditAction::Login),
            ..Default::default()
        })
        .await;
    assert_eq!(logins.len(), 1);
    assert_eq!(
        logins[0].tenant_id,
        Some(a.tenant.id),
        "filed in the user's tenant chain"
    );
    assert_eq!(
        code(
            w.users
                .record_login(&w.system(), UserId(uuid::Uuid::from_u128(7)))
                .await
        ),
        "not_found"
    );
}

/// Stores a theme directly (the theme service is someone else's); profile updates only need it to exist.
async fn insert_theme(w: &World, tenant: &avb_core::TenantId) -> ThemeId {
    let tenant = *tenant;
    let theme = Theme {
        id: ThemeId::generate(w.ids.as_ref()),
        tenant_id: tenant,
        name: format!("Theme {tenant}"),
        description: String::new(),
        owner_id: None,
        is_public: true,
        text_color: "#000000".into(),
        background_color: "#ffffff".into(),
        primary_color: "#6366f1".into(),
        variables: BTreeMap::new(),
        created_at: start(),
        updated_at: start(),
        version: 0,
    };
    let ctx = w.system().scoped_to(tenant);
    w.deps
        .write(&ctx, move |uow| {
            Box::pin(async move { Ok(uow.themes().insert(theme).await?.id) })
        })
        .await
        .unwrap()
}
