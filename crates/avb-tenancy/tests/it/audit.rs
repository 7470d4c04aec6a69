//! Audit queries and chain verification over the memory store's audit trail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::api_keys::world::World;
use avb_core::audit::AuditReader;
use avb_core::{Ctx, ErrorCode, HasCode, Page, PageRequest, TenantId};
use avb_tenancy::api_key::{ApiKeyService, CreateApiKeyRequest};
use avb_tenancy::audit::{AuditQuery, AuditService};
use avb_tenancy::model::TenantTier;
use avb_tenancy::theme::{CreateThemeRequest, ThemeService, UpdateThemeRequest};
use chrono::TimeDelta;
use std::sync::Arc;

struct Setup {
    world: World,
    audit: AuditService,
    a: TenantId,
    b: TenantId,
    a_ctx: Ctx,
    b_ctx: Ctx,
}

async fn setup() -> Setup {
    let world = World::new();
    let a = world.tenant("tenant-a", TenantTier::Pro).await;
    let b = world.tenant("tenant-b", TenantTier::Pro).await;
    let ua = world.user(a, "ann@a.test").await;
    let ub = world.user(b, "ben@b.test").await;
    let a_ctx = world.user_ctx(a, ua);
    let b_ctx = world.user_ctx(b, ub);
    let audit = AuditService::new(Arc::new(world.store.clone()) as Arc<dyn AuditReader>);
    Setup {
        world,
        audit,
        a,
        b,
        a_ctx,
        b_ctx,
    }
}

fn theme(name: &str) -> CreateThemeRequest {
    CreateThemeRequest {
        name: name.into(),
        text_color: "#000000".into(),
        background_color: "#ffffff".into(),
        primary_color: "#6366f1".into(),
        ..Default::default()
    }
}

fn key(name: &str) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        name: name.into(),
        scopes: vec!["realtime".into()],
        ..Default::default()
    }
}

async fn query(s: &Setup, ctx: &Ctx, q: AuditQuery) -> Page<avb_core::audit::AuditEntry> {
    s.audit
        .query(ctx, q, PageRequest::new(Some(100), None).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn queries_filter_by_action_resource_actor_and_time() {
    let s = setup().await;
    let themes = ThemeService::new(s.world.deps.clone());
    let keys = ApiKeyService::new(s.world.deps.clone());
    let t0 = s.world.now();
    let day = themes.create(&s.a_ctx, theme("Day")).await.unwrap();
    s.world.advance(TimeDelta::hours(1));
    let t1 = s.world.now();
    keys.create(&s.a_ctx, key("k")).await.unwrap();
    s.world.advance(TimeDelta::hours(1));
    let t2 = s.world.now();
    let rename = UpdateThemeRequest {
        name: Some("Dawn".into()),
        ..Default::default()
    };
    themes.update(&s.a_ctx, day.id, rename).await.unwrap();
    // Activity in tenant B that A must never see.
    themes.create(&s.b_ctx, theme("Day")).await.unwrap();
    keys.create(&s.b_ctx, key("k")).await.unwrap();

    let all = query(&s, &s.a_ctx, AuditQuery::default()).await;
    assert_eq!(all.total, 3);
    assert!(
        all.items.windows(2).all(|w| w[0].timestamp >= w[1].timestamp),
        "newest first"
    );

    let updates = query(
        &s,
        &s.a_ctx,
        AuditQuery {
            action: Some("update".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(updates.items.len(), 1);
    assert_eq!(updates.items[0].new_values.as_ref().unwrap()["name"], "Dawn");

    let of_theme = AuditQuery {
        resource_type: Some("theme".into()),
        resource_id: Some(day.id.to_string()),
        ..Default::default()
    };
    assert_eq!(query(&s, &s.a_ctx, of_theme).await.total, 2);
    let keys_only = AuditQuery {
        resource_type: Some("api_key".into()),
        ..Default::default()
    };
    assert_eq!(query(&s, &s.a_ctx, keys_only).await.total, 1);

    let actor = s.a_ctx.principal().actor_id();
    let by_actor = query(
        &s,
        &s.a_ctx,
        AuditQuery {
            actor_id: actor,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_actor.total, 3);
    let nobody = AuditQuery {
        actor_id: Some(uuid::Uuid::from_u128(1)),
        ..Default::default()
    };
    assert_eq!(query(&s, &s.a_ctx, nobody).await.total, 0);

    let window = AuditQuery {
        from: Some(t1),
        to: Some(t2),
        ..Default::default()
    };
    let in_window = query(&s, &s.a_ctx, window).await;
    assert_eq!(
        in_window
            .items
            .iter()
            .map(|e| e.resource_type.as_str())
            .collect::<Vec<_>>(),
        ["api_key"]
    );
    let from_start = AuditQuery {
        from: Some(t0),
        ..Default::default()
    };
    assert_eq!(query(&s, &s.a_ctx, from_start).await.total, 3);
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_entries() {
    let s = setup().await;
    let themes = ThemeService::new(s.world.deps.clone());
    let theirs = themes.create(&s.b_ctx, theme("Secret")).await.unwrap();
    themes.create(&s.a_ctx, theme("Mine")).await.unwrap();

    let a_view = query(&s, &s.a_ctx, AuditQuery::default()).await;
    assert_eq!(a_view.total, 1);
    assert!(a_view.items.iter().all(|e| e.tenant_id == Some(s.a)));
    let aimed = AuditQuery {
        resource_id: Some(theirs.id.to_string()),
        ..Default::default()
    };
    assert_eq!(query(&s, &s.a_ctx, aimed.clone()).await.total, 0);
    assert_eq!(query(&s, &s.b_ctx, aimed).await.total, 1);
    // A platform operator (system context) sees both.
    assert_eq!(query(&s, &s.world.system(), AuditQuery::default()).await.total, 2);
}

#[tokio::test]
async fn invalid_queries_are_refused() {
    let s = setup().await;
    let t = s.world.now();
    for bad in [
        AuditQuery {
            action: Some("hack".into()),
            ..Default::default()
        },
        AuditQuery {
            from: Some(t),
            to: Some(t - TimeDelta::seconds(1)),
            ..Default::default()
        },
        AuditQuery {
            resource_type: Some("r".repeat(51)),
            ..Default::default()
        },
    ] {
        let err = s
            .audit
            .query(&s.a_ctx, bad.clone(), PageRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{bad:?}");
    }
}

#[tokio::test]
async fn chains_verify_and_only_ones_own_chain_can_be_checked() {
    let s = setup().await;
    let themes = ThemeService::new(s.world.deps.clone());
    for name in ["One", "Two", "Three"] {
        themes.create(&s.a_ctx, theme(name)).await.unwrap();
    }
    let report = s.audit.verify_chain(&s.a_ctx, Some(s.a)).await.unwrap();
    assert!(report.is_intact());
    assert_eq!((report.tenant_id, report.entries), (Some(s.a), 3));

    let err = s.audit.verify_chain(&s.a_ctx, Some(s.b)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let platform = s.audit.verify_chain(&s.world.system(), Some(s.a)).await.unwrap();
    assert_eq!(platform.entries, 3);
}
