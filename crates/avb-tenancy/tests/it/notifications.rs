//! Notifications and preferences against the memory store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::api_keys::world::World;
use avb_core::{Ctx, ErrorCode, HasCode, PageRequest, TenantId, UserId};
use avb_tenancy::model::TenantTier;
use avb_tenancy::notification::{
    NotificationQuery, NotificationService, NotifyRequest, UpdatePreferencesRequest,
};
use chrono::TimeDelta;
use serde_json::json;

struct Setup {
    world: World,
    notes: NotificationService,
    tenant: TenantId,
    alice: UserId,
    bob: UserId,
    alice_ctx: Ctx,
    bob_ctx: Ctx,
}

async fn setup() -> Setup {
    let world = World::new();
    let tenant = world.tenant("acme", TenantTier::Starter).await;
    let alice = world.user(tenant, "alice@acme.test").await;
    let bob = world.user(tenant, "bob@acme.test").await;
    let alice_ctx = world.user_ctx(tenant, alice);
    let bob_ctx = world.user_ctx(tenant, bob);
    let notes = NotificationService::new(world.deps.clone());
    Setup {
        world,
        notes,
        tenant,
        alice,
        bob,
        alice_ctx,
        bob_ctx,
    }
}

fn note(user: UserId, category: &str, title: &str) -> NotifyRequest {
    NotifyRequest {
        user_id: Some(user),
        category: category.into(),
        title: title.into(),
        body: "details".into(),
        data: json!({ "link": "/billing" }),
    }
}

#[tokio::test]
async fn each_user_sees_and_marks_only_their_own_notifications() {
    let s = setup().await;
    let system = s.world.system();
    let first = s
        .notes
        .notify(&system, note(s.alice, "billing", "Invoice ready"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.tenant_id, first.read_at), (s.tenant, None));
    s.world.advance(TimeDelta::minutes(1));
    let second = s
        .notes
        .notify(&system, note(s.alice, "session", "Session failed"))
        .await
        .unwrap()
        .unwrap();
    let bobs = s
        .notes
        .notify(&system, note(s.bob, "system", "Welcome"))
        .await
        .unwrap()
        .unwrap();

    let page = PageRequest::default();
    let mine = s
        .notes
        .list(&s.alice_ctx, NotificationQuery::default(), page)
        .await
        .unwrap();
    assert_eq!(
        mine.items.iter().map(|n| n.id).collect::<Vec<_>>(),
        [second.id, first.id]
    );
    let billing = NotificationQuery {
        category: Some("billing".into()),
        ..Default::default()
    };
    assert_eq!(
        s.notes.list(&s.alice_ctx, billing, page).await.unwrap().items,
        vec![first.clone()]
    );

    let before = s.world.fingerprint().await;
    let err = s.notes.mark_read(&s.alice_ctx, bobs.id).await.unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::NotFound,
        "another user's notification is invisible"
    );
    assert_eq!(s.world.fingerprint().await, before);

    s.world.advance(TimeDelta::minutes(1));
    let read = s.notes.mark_read(&s.alice_ctx, first.id).await.unwrap();
    assert_eq!(read.read_at, Some(s.world.now()));
    let audit_len = s.world.audit().await.len();
    s.world.advance(TimeDelta::minutes(1));
    let again = s.notes.mark_read(&s.alice_ctx, first.id).await.unwrap();
    assert_eq!(again, read, "marking read twice changes nothing");
    assert_eq!(s.world.audit().await.len(), audit_len);

    let unread = NotificationQuery {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(
        s.notes
            .list(&s.alice_ctx, unread.clone(), page)
            .await
            .unwrap()
            .items,
        vec![second]
    );
    assert_eq!(s.notes.mark_all_read(&s.alice_ctx).await.unwrap(), 1);
    assert_eq!(
        s.notes
            .list(&s.alice_ctx, unread.clone(), page)
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(s.notes.mark_all_read(&s.alice_ctx).await.unwrap(), 0);
    assert_eq!(
        s.notes.list(&s.bob_ctx, unread, page).await.unwrap().items,
        vec![bobs],
        "bob's stay unread"
    );
}

#[tokio::test]
async fn mark_all_read_handles_more_than_one_page() {
    let s = setup().await;
    for i in 0..130 {
        s.notes
            .notify(&s.alice_ctx, note(s.alice, "system", &format!("n{i}")))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(s.notes.mark_all_read(&s.alice_ctx).await.unwrap(), 130);
    let unread = NotificationQuery {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(
        s.notes
            .list(&s.alice_ctx, unread, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn muted_categories_are_not_delivered() {
    let s = setup().await;
    let mute = UpdatePreferencesRequest {
        muted_categories: Some(["billing".to_owned(), "marketing".to_owned()].into()),
        email_notifications: Some(false),
        ..Default::default()
    };
    let prefs = s.notes.update_preferences(&s.alice_ctx, mute).await.unwrap();
    assert!(!prefs.email_notifications && prefs.push_notifications);
    assert_eq!(s.notes.preferences(&s.alice_ctx).await.unwrap(), prefs);

    let before = s.world.fingerprint().await;
    let muted = s
        .notes
        .notify(&s.world.system(), note(s.alice, "billing", "Invoice"))
        .await
        .unwrap();
    assert_eq!(muted, None);
    assert_eq!(
        s.world.fingerprint().await,
        before,
        "a muted notification writes nothing"
    );
    assert!(
        s.notes
            .notify(&s.world.system(), note(s.bob, "billing", "Invoice"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.notes
            .notify(&s.world.system(), note(s.alice, "system", "Hello"))
            .await
            .unwrap()
            .is_some()
    );

    let unmute = UpdatePreferencesRequest {
        muted_categories: Some(Default::default()),
        ..Default::default()
    };
    s.notes.update_preferences(&s.alice_ctx, unmute).await.unwrap();
    assert!(
        s.notes
            .notify(&s.world.system(), note(s.alice, "billing", "Invoice"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn invalid_notifications_and_preferences_are_refused_and_change_nothing() {
    let s = setup().await;
    let other = s.world.tenant("other", TenantTier::Starter).await;
    let stranger = s.world.user(other, "eve@other.test").await;
    let before = s.world.fingerprint().await;
    let cases = [
        (
            NotifyRequest {
                title: String::new(),
                ..note(s.alice, "system", "x")
            },
            ErrorCode::ValidationError,
        ),
        (
            NotifyRequest {
                title: "t".repeat(201),
                ..note(s.alice, "system", "x")
            },
            ErrorCode::ValidationError,
        ),
        (
            NotifyRequest {
                body: "b".repeat(5001),
                ..note(s.alice, "system", "x")
            },
            ErrorCode::ValidationError,
        ),
        (note(s.alice, "Not A Category", "x"), ErrorCode::ValidationError),
        (
            NotifyRequest {
                user_id: None,
                ..note(s.alice, "system", "x")
            },
            ErrorCode::ValidationError,
        ),
        (
            NotifyRequest {
                data: json!({ "blob": "z".repeat(17 * 1024) }),
                ..note(s.alice, "system", "x")
            },
            ErrorCode::ValidationError,
        ),
        (
            note(UserId(uuid::Uuid::from_u128(999)), "system", "x"),
            ErrorCode::NotFound,
        ),
        (note(stranger, "system", "x"), ErrorCode::NotFound),
    ];
    for (req, code) in cases {
        let err = s.notes.notify(&s.alice_ctx, req.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{req:?}");
    }
    let too_many = UpdatePreferencesRequest {
        muted_categories: Some((0..51).map(|i| format!("c{i}")).collect()),
        ..Default::default()
    };
    let bad_name = UpdatePreferencesRequest {
        muted_categories: Some(["Bad Name".to_owned()].into()),
        ..Default::default()
    };
    for req in [too_many, bad_name] {
        assert_eq!(
            s.notes
                .update_preferences(&s.alice_ctx, req)
                .await
                .unwrap_err()
                .code(),
            ErrorCode::ValidationError
        );
    }
    assert_eq!(s.world.fingerprint().await, before);
}

#[tokio::test]
async fn an_api_key_has_no_inbox() {
    let s = setup().await;
    let key_ctx = s
        .world
        .key_ctx(s.tenant, avb_core::ApiKeyId(uuid::Uuid::from_u128(5)), None);
    let err = s
        .notes
        .list(&key_ctx, NotificationQuery::default(), PageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    assert_eq!(
        s.notes.mark_all_read(&key_ctx).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        s.notes.preferences(&key_ctx).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
}
