//! Voice sessions (spec §9.3, §11.3) against the memory store: lifecycle, monthly quota, events, cleanup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::api_keys::world::World;
use avb_core::{Ctx, ErrorCode, HasCode, PageRequest, TenantId};
use avb_tenancy::api_key::{ApiKeyService, CreateApiKeyRequest};
use avb_tenancy::model::{SessionEventType, SessionStatus, TenantTier};
use avb_tenancy::session::{
    AppendEventRequest, CleanupPolicy, CreateSessionRequest, EventQuery, FinishSessionRequest,
    SessionOutcome, SessionService, SessionUsage,
};
use avb_tenancy::store::SessionFilter;
use chrono::{DateTime, TimeDelta};
use serde_json::json;

async fn setup() -> (World, SessionService, Ctx, TenantId) {
    let world = World::new();
    let tenant = world.tenant("acme", TenantTier::Pro).await;
    let user = world.user(tenant, "ops@acme.test").await;
    let ctx = world.user_ctx(tenant, user);
    let service = SessionService::new(world.deps.clone());
    (world, service, ctx, tenant)
}

fn event(kind: SessionEventType, n: u64) -> AppendEventRequest {
    AppendEventRequest {
        event_type: kind,
        content: json!({ "n": n }),
        duration_ms: None,
    }
}

fn finish(outcome: SessionOutcome) -> FinishSessionRequest {
    FinishSessionRequest {
        outcome,
        usage: SessionUsage::default(),
    }
}

#[tokio::test]
async fn a_session_goes_created_active_completed_with_timing_and_usage() {
    let (world, sessions, ctx, tenant) = setup().await;
    let project = world.project(tenant, "assistant").await;
    let req = CreateSessionRequest {
        project_id: Some(project),
        config: Some(json!({"voice": "am_onyx"})),
        ..Default::default()
    };
    let created = sessions.create(&ctx, req).await.unwrap();
    assert_eq!(created.status, SessionStatus::Created);
    assert_eq!(created.project_id, Some(project));
    assert_eq!(created.user_id, ctx.principal().user_id());
    assert_eq!(created.api_key_id, None);
    assert_eq!(created.client_ip, Some("203.0.113.7".parse().unwrap()));
    assert_eq!(created.user_agent, "it-tests/1.0");
    assert_eq!(created.config, json!({"voice": "am_onyx"}));

    world.advance(TimeDelta::seconds(2));
    let started = sessions.start(&ctx, created.id).await.unwrap();
    assert_eq!(
        (started.status, started.started_at),
        (SessionStatus::Active, Some(world.now()))
    );

    world.advance(TimeDelta::seconds(90));
    let usage = SessionUsage {
        input_tokens: 120,
        output_tokens: 80,
        audio_seconds: 42.5,
    };
    let done = sessions
        .finish(
            &ctx,
            created.id,
            FinishSessionRequest {
                outcome: SessionOutcome::Completed,
                usage,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, SessionStatus::Completed);
    assert_eq!(done.ended_at, Some(world.now()));
    assert_eq!(done.duration_seconds, Some(90.0));
    assert_eq!(
        (done.input_tokens, done.output_tokens, done.audio_duration_seconds),
        (120, 80, 42.5)
    );
    assert_eq!(sessions.get(&ctx, created.id).await.unwrap(), done);

    let audit = world.audit().await;
    let statuses: Vec<_> = audit
        .iter()
        .rev()
        .map(|e| e.new_values.as_ref().unwrap()["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("created"), json!("active"), json!("completed")]);
}

#[tokio::test]
async fn an_error_outcome_keeps_its_code_and_a_session_that_never_started_has_no_duration() {
    let (_world, sessions, ctx, _) = setup().await;
    let s = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    let outcome = SessionOutcome::Error {
        code: "stt_unavailable".into(),
        message: "speech service down".into(),
    };
    let failed = sessions.finish(&ctx, s.id, finish(outcome)).await.unwrap();
    assert_eq!(failed.status, SessionStatus::Error);
    assert_eq!(
        (failed.error_code.as_str(), failed.error_message.as_str()),
        ("stt_unavailable", "speech service down")
    );
    assert_eq!(failed.duration_seconds, None);
}

#[tokio::test]
async fn illegal_transitions_are_conflicts_and_change_nothing() {
    let (world, sessions, ctx, _) = setup().await;
    let fresh = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    let ended = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.terminate(&ctx, ended.id).await.unwrap();
    let running = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.start(&ctx, running.id).await.unwrap();

    let before = world.fingerprint().await;
    let attempts = [
        sessions
            .finish(&ctx, fresh.id, finish(SessionOutcome::Completed))
            .await,
        sessions.start(&ctx, running.id).await,
        sessions.start(&ctx, ended.id).await,
        sessions.terminate(&ctx, ended.id).await,
        sessions
            .finish(&ctx, ended.id, finish(SessionOutcome::Completed))
            .await,
    ];
    for attempt in attempts {
        let err = attempt.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    }
    assert_eq!(world.fingerprint().await, before);
}

#[tokio::test]
async fn invalid_session_requests_are_refused_and_change_nothing() {
    let (world, sessions, ctx, _) = setup().await;
    let other = world.tenant("other", TenantTier::Pro).await;
    let foreign = world.project(other, "theirs").await;
    let s = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.start(&ctx, s.id).await.unwrap();
    let big = "x".repeat(64 * 1024);
    let before = world.fingerprint().await;

    let err = sessions.create(
        &ctx,
        CreateSessionRequest {
            config: Some(json!([1, 2])),
            ..Default::default()
        },
    );
    assert_eq!(err.await.unwrap_err().code(), ErrorCode::ValidationError);
    let err = sessions.create(
        &ctx,
        CreateSessionRequest {
            config: Some(json!({ "i": big })),
            ..Default::default()
        },
    );
    assert_eq!(err.await.unwrap_err().code(), ErrorCode::ValidationError);
    let err = sessions.create(
        &ctx,
        CreateSessionRequest {
            project_id: Some(foreign),
            ..Default::default()
        },
    );
    assert_eq!(err.await.unwrap_err().code(), ErrorCode::NotFound);
    let bad_usage = FinishSessionRequest {
        outcome: SessionOutcome::Completed,
        usage: SessionUsage {
            audio_seconds: -1.0,
            ..Default::default()
        },
    };
    assert_eq!(
        sessions.finish(&ctx, s.id, bad_usage).await.unwrap_err().code(),
        ErrorCode::ValidationError
    );
    let bad_error = finish(SessionOutcome::Error {
        code: "c".repeat(51),
        message: String::new(),
    });
    assert_eq!(
        sessions.finish(&ctx, s.id, bad_error).await.unwrap_err().code(),
        ErrorCode::ValidationError
    );
    let huge_event = AppendEventRequest {
        event_type: SessionEventType::Transcript,
        content: json!({ "text": "y".repeat(256 * 1024) }),
        duration_ms: None,
    };
    assert_eq!(
        sessions
            .append_event(&ctx, s.id, huge_event)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::ValidationError
    );
    assert_eq!(world.fingerprint().await, before);
}

#[tokio::test]
async fn the_monthly_quota_counts_only_sessions_of_the_current_month() {
    let (world, sessions, ctx, tenant) = setup().await;
    world
        .edit_tenant(tenant, |t| t.limits.max_sessions_per_month = 3)
        .await;
    for _ in 0..3 {
        sessions
            .create(&ctx, CreateSessionRequest::default())
            .await
            .unwrap();
    }
    let before = world.fingerprint().await;
    let err = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TenantLimitExceeded);
    assert_eq!(err.details()["resource"], "sessions_per_month");
    assert_eq!(world.fingerprint().await, before);

    // 2025-03-31T23:59:59Z is still March.
    world
        .clock
        .set(DateTime::from_timestamp(1_743_465_599, 0).unwrap());
    assert_eq!(
        sessions
            .create(&ctx, CreateSessionRequest::default())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::TenantLimitExceeded
    );
    // 2025-04-01T00:00:00Z: March's sessions no longer count.
    world
        .clock
        .set(DateTime::from_timestamp(1_743_465_600, 0).unwrap());
    for _ in 0..3 {
        sessions
            .create(&ctx, CreateSessionRequest::default())
            .await
            .unwrap();
    }
    assert_eq!(
        sessions
            .create(&ctx, CreateSessionRequest::default())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::TenantLimitExceeded
    );
}

#[tokio::test]
async fn a_session_opened_with_an_api_key_records_the_key_and_its_project() {
    let (world, sessions, ctx, tenant) = setup().await;
    let project = world.project(tenant, "bound").await;
    let req = CreateApiKeyRequest {
        name: "rt".into(),
        scopes: vec!["realtime".into()],
        project_id: Some(project),
        ..Default::default()
    };
    let key = ApiKeyService::new(world.deps.clone())
        .create(&ctx, req)
        .await
        .unwrap()
        .record;
    let key_ctx = world.key_ctx(tenant, key.id, Some(project));
    let s = sessions
        .create(&key_ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    assert_eq!(
        (s.api_key_id, s.project_id, s.user_id),
        (Some(key.id), Some(project), None)
    );
    let by_key = SessionFilter {
        api_key_id: Some(key.id),
        ..Default::default()
    };
    assert_eq!(
        sessions
            .list(&ctx, by_key, PageRequest::default())
            .await
            .unwrap()
            .items,
        vec![s]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_sequence_numbers_without_gaps_or_duplicates() {
    let (_world, sessions, ctx, _) = setup().await;
    let s = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.start(&ctx, s.id).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..20 {
        let sessions = sessions.clone();
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            sessions
                .append_event(&ctx, s.id, event(SessionEventType::Transcript, n))
                .await
                .unwrap()
                .sequence
        }));
    }
    let mut sequences = Vec::new();
    for task in tasks {
        sequences.push(task.await.unwrap());
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=20).collect::<Vec<u64>>());

    let page = PageRequest::new(Some(100), None).unwrap();
    let listed = sessions
        .list_events(&ctx, s.id, EventQuery::default(), page)
        .await
        .unwrap();
    let in_order: Vec<u64> = listed.items.iter().map(|e| e.sequence).collect();
    assert_eq!(in_order, (1..=20).collect::<Vec<u64>>());
    let mut contents: Vec<u64> = listed
        .items
        .iter()
        .map(|e| e.content["n"].as_u64().unwrap())
        .collect();
    contents.sort_unstable();
    assert_eq!(
        contents,
        (0..20).collect::<Vec<u64>>(),
        "every append is stored exactly once"
    );
}

#[tokio::test]
async fn events_can_be_listed_after_a_sequence_by_type_and_page() {
    let (_world, sessions, ctx, _) = setup().await;
    let s = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    for n in 1..=6 {
        let kind = if n % 2 == 0 {
            SessionEventType::Response
        } else {
            SessionEventType::Transcript
        };
        sessions.append_event(&ctx, s.id, event(kind, n)).await.unwrap();
    }
    let all = PageRequest::new(Some(100), None).unwrap();
    let after = sessions.list_events(
        &ctx,
        s.id,
        EventQuery {
            after_sequence: Some(4),
            event_type: None,
        },
        all,
    );
    let seqs: Vec<u64> = after.await.unwrap().items.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, [5, 6]);
    let responses = EventQuery {
        after_sequence: None,
        event_type: Some(SessionEventType::Response),
    };
    let seqs: Vec<u64> = sessions
        .list_events(&ctx, s.id, responses, all)
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, [2, 4, 6]);
    let second_page = PageRequest::new(Some(2), Some(2)).unwrap();
    let page = sessions
        .list_events(&ctx, s.id, EventQuery::default(), second_page)
        .await
        .unwrap();
    assert_eq!(page.total, 6);
    assert_eq!(page.items.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 4]);
}

#[tokio::test]
async fn ended_sessions_accept_only_a_closing_system_or_error_event_within_a_minute() {
    let (world, sessions, ctx, _) = setup().await;
    let s = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.start(&ctx, s.id).await.unwrap();
    sessions
        .append_event(&ctx, s.id, event(SessionEventType::Transcript, 1))
        .await
        .unwrap();
    sessions
        .finish(&ctx, s.id, finish(SessionOutcome::Completed))
        .await
        .unwrap();

    let err = sessions
        .append_event(&ctx, s.id, event(SessionEventType::Transcript, 2))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    world.advance(TimeDelta::seconds(30));
    let closing = sessions
        .append_event(&ctx, s.id, event(SessionEventType::System, 3))
        .await
        .unwrap();
    assert_eq!(closing.sequence, 2);
    world.advance(TimeDelta::seconds(31));
    let before = world.fingerprint().await;
    let err = sessions
        .append_event(&ctx, s.id, event(SessionEventType::System, 4))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(world.fingerprint().await, before);
}

#[tokio::test]
async fn sessions_and_events_of_another_tenant_are_invisible() {
    let (world, sessions, ctx, _) = setup().await;
    let s = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions
        .append_event(&ctx, s.id, event(SessionEventType::Transcript, 1))
        .await
        .unwrap();
    let other = world.tenant("other", TenantTier::Pro).await;
    let eve = world.user(other, "eve@other.test").await;
    let theirs = world.user_ctx(other, eve);
    assert_eq!(
        sessions.get(&theirs, s.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    let events = sessions
        .list_events(&theirs, s.id, EventQuery::default(), PageRequest::default())
        .await;
    assert_eq!(events.unwrap_err().code(), ErrorCode::NotFound);
    let before = world.fingerprint().await;
    assert_eq!(
        sessions.terminate(&theirs, s.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    let append = sessions
        .append_event(&theirs, s.id, event(SessionEventType::System, 2))
        .await;
    assert_eq!(append.unwrap_err().code(), ErrorCode::NotFound);
    assert_eq!(world.fingerprint().await, before);
    assert_eq!(
        sessions
            .list(&theirs, SessionFilter::default(), PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn sessions_are_listed_by_status_project_and_creation_date() {
    let (world, sessions, ctx, tenant) = setup().await;
    let project = world.project(tenant, "p").await;
    let first = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    world.advance(TimeDelta::hours(1));
    let second = sessions
        .create(
            &ctx,
            CreateSessionRequest {
                project_id: Some(project),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    sessions.start(&ctx, second.id).await.unwrap();
    world.advance(TimeDelta::hours(1));
    let third = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    let page = PageRequest::default();
    let ids = |filter: SessionFilter| {
        let sessions = sessions.clone();
        let ctx = ctx.clone();
        async move {
            sessions
                .list(&ctx, filter, page)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(SessionFilter::default()).await,
        [third.id, second.id, first.id],
        "newest first"
    );
    assert_eq!(
        ids(SessionFilter {
            status: Some(SessionStatus::Active),
            ..Default::default()
        })
        .await,
        [second.id]
    );
    assert_eq!(
        ids(SessionFilter {
            project_id: Some(project),
            ..Default::default()
        })
        .await,
        [second.id]
    );
    let window = SessionFilter {
        created_from: Some(first.created_at + TimeDelta::minutes(30)),
        created_to: Some(third.created_at),
        ..Default::default()
    };
    assert_eq!(ids(window).await, [second.id]);
    let backwards = SessionFilter {
        created_from: Some(third.created_at),
        created_to: Some(first.created_at),
        ..Default::default()
    };
    assert_eq!(
        sessions.list(&ctx, backwards, page).await.unwrap_err().code(),
        ErrorCode::ValidationError
    );
}

#[tokio::test]
async fn cleanup_expires_abandoned_sessions_and_deletes_long_ended_ones() {
    let (world, sessions, ctx, tenant) = setup().await;
    let other = world.tenant("other", TenantTier::Pro).await;
    let bob = world.user(other, "bob@other.test").await;
    let other_ctx = world.user_ctx(other, bob);

    // Ended long ago, with events: deleted by retention.
    let old_done = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.start(&ctx, old_done.id).await.unwrap();
    sessions
        .append_event(&ctx, old_done.id, event(SessionEventType::Transcript, 1))
        .await
        .unwrap();
    sessions
        .finish(&ctx, old_done.id, finish(SessionOutcome::Completed))
        .await
        .unwrap();
    // Abandoned: created, then nothing (one in each tenant: a system context cleans every tenant).
    let abandoned = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    let abandoned_elsewhere = sessions
        .create(&other_ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    // Old but still talking: last event is recent.
    let talking = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.start(&ctx, talking.id).await.unwrap();

    world.advance(TimeDelta::days(10));
    sessions
        .append_event(&ctx, talking.id, event(SessionEventType::Transcript, 2))
        .await
        .unwrap();
    world.advance(TimeDelta::hours(1));
    // Recent and active: untouched.
    let recent = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.start(&ctx, recent.id).await.unwrap();
    // Ended recently: kept by retention.
    let recent_done = sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    sessions.terminate(&ctx, recent_done.id).await.unwrap();

    let policy = CleanupPolicy {
        stale_after_seconds: 24 * 3600,
        retain_ended_seconds: Some(7 * 86_400),
    };
    let report = sessions.cleanup_expired(&world.system(), policy).await.unwrap();
    assert_eq!((report.expired, report.deleted), (2, 1));

    for id in [abandoned.id, abandoned_elsewhere.id] {
        let s = sessions.get(&world.system(), id).await.unwrap();
        assert_eq!(s.status, SessionStatus::Error);
        assert_eq!(s.error_code, "session_expired");
        assert_eq!(s.ended_at, Some(world.now()));
    }
    assert_eq!(
        sessions.get(&ctx, talking.id).await.unwrap().status,
        SessionStatus::Active
    );
    assert_eq!(
        sessions.get(&ctx, recent.id).await.unwrap().status,
        SessionStatus::Active
    );
    assert_eq!(
        sessions.get(&ctx, recent_done.id).await.unwrap().status,
        SessionStatus::Terminated
    );
    assert_eq!(
        sessions.get(&ctx, old_done.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );

    let audit = world.audit().await;
    let deletion = audit
        .iter()
        .find(|e| e.resource_id == old_done.id.to_string() && e.new_values.is_none());
    assert_eq!(deletion.unwrap().tenant_id, Some(tenant));
    let expiry = audit
        .iter()
        .find(|e| e.resource_id == abandoned_elsewhere.id.to_string())
        .unwrap();
    assert_eq!(
        expiry.tenant_id,
        Some(other),
        "the entry lands in the session's tenant chain"
    );

    // Running again finds nothing left to do.
    assert_eq!(
        sessions
            .cleanup_expired(&world.system(), policy)
            .await
            .unwrap()
            .expired,
        0
    );
    let bad = CleanupPolicy {
        stale_after_seconds: 0,
        retain_ended_seconds: Some(0),
    };
    assert_eq!(
        sessions
            .cleanup_expired(&world.system(), bad)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::ValidationError
    );
}

#[tokio::test]
async fn cleanup_works_through_more_sessions_than_one_batch() {
    let (world, sessions, ctx, _) = setup().await;
    let mut kept = Vec::new();
    for i in 0..230 {
        let s = sessions
            .create(&ctx, CreateSessionRequest::default())
            .await
            .unwrap();
        if i % 3 == 0 {
            kept.push(s.id);
        }
    }
    world.advance(TimeDelta::days(2));
    // Every third session shows recent activity and must survive, interleaved with the ones that expire.
    for id in &kept {
        sessions
            .append_event(&ctx, *id, event(SessionEventType::System, 0))
            .await
            .unwrap();
    }
    let report = sessions
        .cleanup_expired(&world.system(), CleanupPolicy::default())
        .await
        .unwrap();
    assert_eq!(report.expired, 230 - kept.len() as u64);
    let still_open = SessionFilter {
        status: Some(SessionStatus::Created),
        ..Default::default()
    };
    assert_eq!(
        sessions
            .list(&ctx, still_open, PageRequest::default())
            .await
            .unwrap()
            .total,
        kept.len() as u64
    );
}

#[tokio::test]
async fn the_open_session_cap_counts_created_and_active_but_not_ended_sessions() {
    let (_world, sessions, ctx, _tenant) = setup().await;
    let capped = || CreateSessionRequest {
        max_open_sessions: Some(2),
        ..Default::default()
    };
    let first = sessions.create(&ctx, capped()).await.unwrap();
    let second = sessions.create(&ctx, capped()).await.unwrap();
    sessions.start(&ctx, second.id).await.unwrap();
    let refused = sessions.create(&ctx, capped()).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::TenantLimitExceeded);
    assert_eq!(refused.to_body().details["resource"], "concurrent_sessions");
    assert_eq!(refused.to_body().details["current"], 2);
    // Nothing was written by the refusal, and the cap does not apply to requests without it.
    let all = sessions
        .list(&ctx, SessionFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.total, 2);
    sessions
        .create(&ctx, CreateSessionRequest::default())
        .await
        .unwrap();
    // Ending one frees a slot.
    sessions
        .finish(&ctx, first.id, finish(SessionOutcome::Terminated))
        .await
        .unwrap();
    sessions.terminate(&ctx, second.id).await.unwrap();
    let third = sessions
        .list(&ctx, SessionFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(third.total, 3);
    sessions.create(&ctx, capped()).await.unwrap();
}
