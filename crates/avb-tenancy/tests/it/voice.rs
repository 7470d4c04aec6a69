//! Voice configuration, personas and wake words against the memory store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::api_keys::world::World;
use avb_core::{Ctx, ErrorCode, HasCode, PageRequest, TenantId};
use avb_tenancy::model::{TenantSettings, TenantTier};
use avb_tenancy::store::{Access, PersonaFilter, WakeWordFilter};
use avb_tenancy::voice::{
    CreatePersonaRequest, CreateWakeWordRequest, UpdatePersonaRequest, UpdateVoiceConfigRequest,
    UpdateWakeWordRequest, VoiceService,
};

async fn setup() -> (World, VoiceService, Ctx, TenantId) {
    let world = World::new();
    let tenant = world.tenant("acme", TenantTier::Starter).await;
    let user = world.user(tenant, "dev@acme.test").await;
    let ctx = world.user_ctx(tenant, user);
    let voice = VoiceService::new(world.deps.clone());
    (world, voice, ctx, tenant)
}

fn persona(name: &str) -> CreatePersonaRequest {
    CreatePersonaRequest {
        name: name.into(),
        instructions: "Be brief.".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_config_follows_tenant_settings_until_it_is_saved() {
    let (world, voice, ctx, tenant) = setup().await;
    let spec_defaults = voice.get_config(&ctx).await.unwrap();
    assert_eq!(
        (spec_defaults.tts_voice.as_str(), spec_defaults.version),
        ("am_onyx", 0)
    );

    let mut settings = TenantSettings::defaults(tenant, world.now());
    settings.default_tts_voice = "af_bella".into();
    settings.default_llm_model = "llama-3.3-70b".into();
    let mut uow = world
        .deps
        .store
        .begin(&world.system(), Access::ReadWrite)
        .await
        .unwrap();
    uow.tenant_settings().insert(settings).await.unwrap();
    uow.commit().await.unwrap();

    let before = world.fingerprint().await;
    let derived = voice.get_config(&ctx).await.unwrap();
    assert_eq!(
        (derived.tts_voice.as_str(), derived.llm_model.as_str()),
        ("af_bella", "llama-3.3-70b")
    );
    assert_eq!(derived.tenant_id, tenant);
    assert_eq!(
        world.fingerprint().await,
        before,
        "reading the defaults writes nothing"
    );
}

#[tokio::test]
async fn updating_the_config_saves_it_then_checks_versions() {
    let (world, voice, ctx, _) = setup().await;
    let first = UpdateVoiceConfigRequest {
        temperature: Some(0.3),
        version: Some(0),
        ..Default::default()
    };
    let saved = voice.update_config(&ctx, first).await.unwrap();
    assert_eq!((saved.temperature, saved.version), (0.3, 1));
    assert_eq!(saved.tts_voice, "am_onyx", "unchanged fields keep the defaults");
    assert_eq!(voice.get_config(&ctx).await.unwrap(), saved);

    let stale = UpdateVoiceConfigRequest {
        tts_speed: Some(1.5),
        version: Some(0),
        ..Default::default()
    };
    let before = world.fingerprint().await;
    assert_eq!(
        voice.update_config(&ctx, stale).await.unwrap_err().code(),
        ErrorCode::Conflict
    );
    assert_eq!(world.fingerprint().await, before);

    let next = UpdateVoiceConfigRequest {
        tts_speed: Some(1.5),
        language: Some("pt-BR".into()),
        version: Some(1),
        ..Default::default()
    };
    let updated = voice.update_config(&ctx, next).await.unwrap();
    assert_eq!(
        (updated.tts_speed, updated.language.as_str(), updated.version),
        (1.5, "pt-BR", 2)
    );
    assert_eq!((updated.temperature, updated.id), (0.3, saved.id));

    let audit = world.audit().await;
    assert_eq!(audit.len(), 2);
    assert!(
        audit
            .iter()
            .all(|e| e.action == avb_core::audit::AuditAction::SettingsChange)
    );
    assert_eq!(audit[0].old_values.as_ref().unwrap()["tts_speed"], 1.0);
    assert_eq!(audit[0].new_values.as_ref().unwrap()["tts_speed"], 1.5);
}

#[tokio::test]
async fn an_out_of_range_config_is_refused_and_changes_nothing() {
    let (world, voice, ctx, _) = setup().await;
    let before = world.fingerprint().await;
    for bad in [
        UpdateVoiceConfigRequest {
            tts_speed: Some(5.0),
            ..Default::default()
        },
        UpdateVoiceConfigRequest {
            temperature: Some(-0.1),
            ..Default::default()
        },
        UpdateVoiceConfigRequest {
            max_response_tokens: Some(20_000),
            ..Default::default()
        },
        UpdateVoiceConfigRequest {
            silence_duration_ms: Some(50),
            ..Default::default()
        },
        UpdateVoiceConfigRequest {
            llm_model: Some("m".repeat(101)),
            ..Default::default()
        },
        UpdateVoiceConfigRequest {
            language: Some("english".into()),
            ..Default::default()
        },
    ] {
        let err = voice.update_config(&ctx, bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{bad:?}");
    }
    assert_eq!(world.fingerprint().await, before);
}

#[tokio::test]
async fn personas_have_unique_names_per_tenant_and_full_crud() {
    let (world, voice, ctx, _) = setup().await;
    let created = voice.create_persona(&ctx, persona("Concierge")).await.unwrap();
    assert_eq!(
        (created.language.as_str(), created.temperature, created.is_active),
        ("en", 0.8, true)
    );
    assert_eq!(created.owner_id, ctx.principal().user_id());

    let before = world.fingerprint().await;
    let dup = voice
        .create_persona(&ctx, persona("concierge"))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), ErrorCode::Conflict);
    let bad = CreatePersonaRequest {
        name: String::new(),
        temperature: Some(3.0),
        ..Default::default()
    };
    let Err(avb_tenancy::Error::Invalid(fields)) = voice.create_persona(&ctx, bad).await else {
        panic!()
    };
    assert_eq!(
        fields.0.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
        ["name", "temperature"]
    );
    assert_eq!(world.fingerprint().await, before);

    // Another tenant may use the same name.
    let other = world.tenant("other", TenantTier::Starter).await;
    let bob = world.user(other, "bob@other.test").await;
    let other_ctx = world.user_ctx(other, bob);
    voice
        .create_persona(&other_ctx, persona("Concierge"))
        .await
        .unwrap();
    assert_eq!(
        voice
            .get_persona(&other_ctx, created.id)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );

    let second = voice.create_persona(&ctx, persona("Support")).await.unwrap();
    let rename = UpdatePersonaRequest {
        name: Some("CONCIERGE".into()),
        ..Default::default()
    };
    assert_eq!(
        voice
            .update_persona(&ctx, second.id, rename)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
    let stale = UpdatePersonaRequest {
        voice: Some("af_bella".into()),
        version: Some(7),
        ..Default::default()
    };
    assert_eq!(
        voice
            .update_persona(&ctx, second.id, stale)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
    let change = UpdatePersonaRequest {
        voice: Some("af_bella".into()),
        is_active: Some(false),
        ..Default::default()
    };
    let changed = voice.update_persona(&ctx, second.id, change).await.unwrap();
    assert_eq!(
        (changed.voice.as_str(), changed.is_active, changed.version),
        ("af_bella", false, 2)
    );

    let inactive = PersonaFilter {
        is_active: Some(false),
        ..Default::default()
    };
    let listed = voice
        .list_personas(&ctx, inactive, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![changed.clone()]);
    assert_eq!(
        voice
            .list_personas(&ctx, PersonaFilter::default(), PageRequest::default())
            .await
            .unwrap()
            .total,
        2
    );

    voice.delete_persona(&ctx, second.id).await.unwrap();
    assert_eq!(
        voice.get_persona(&ctx, second.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        voice.delete_persona(&ctx, second.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    let deletion = &world.audit().await[0];
    assert_eq!(deletion.action, avb_core::audit::AuditAction::Delete);
    assert_eq!(deletion.old_values.as_ref().unwrap()["name"], "Support");
}

#[tokio::test]
async fn wake_words_are_unique_ignoring_case_and_spacing() {
    let (world, voice, ctx, _) = setup().await;
    let req = CreateWakeWordRequest {
        phrase: "  Hey   Jarvis ".into(),
        ..Default::default()
    };
    let word = voice.create_wake_word(&ctx, req).await.unwrap();
    assert_eq!(
        (word.phrase.as_str(), word.sensitivity, word.is_active),
        ("Hey Jarvis", 0.5, true)
    );

    let before = world.fingerprint().await;
    let dup = CreateWakeWordRequest {
        phrase: "hey jarvis".into(),
        ..Default::default()
    };
    assert_eq!(
        voice.create_wake_word(&ctx, dup).await.unwrap_err().code(),
        ErrorCode::Conflict
    );
    for bad in [
        CreateWakeWordRequest {
            phrase: "x".into(),
            ..Default::default()
        },
        CreateWakeWordRequest {
            phrase: "hey-jarvis!".into(),
            ..Default::default()
        },
        CreateWakeWordRequest {
            phrase: "computer 2".into(),
            ..Default::default()
        },
        CreateWakeWordRequest {
            phrase: "w".repeat(51),
            ..Default::default()
        },
        CreateWakeWordRequest {
            phrase: "okay".into(),
            sensitivity: Some(1.01),
            ..Default::default()
        },
        CreateWakeWordRequest {
            phrase: "okay".into(),
            sensitivity: Some(f32::NAN),
            ..Default::default()
        },
    ] {
        let err = voice.create_wake_word(&ctx, bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{bad:?}");
    }
    assert_eq!(world.fingerprint().await, before);

    let other = voice
        .create_wake_word(
            &ctx,
            CreateWakeWordRequest {
                phrase: "O'Brien".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let clash = UpdateWakeWordRequest {
        phrase: Some("HEY JARVIS".into()),
        ..Default::default()
    };
    assert_eq!(
        voice
            .update_wake_word(&ctx, other.id, clash)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
    let tune = UpdateWakeWordRequest {
        sensitivity: Some(0.9),
        is_active: Some(false),
        ..Default::default()
    };
    let tuned = voice.update_wake_word(&ctx, other.id, tune).await.unwrap();
    assert_eq!((tuned.sensitivity, tuned.is_active), (0.9, false));
    let active = WakeWordFilter {
        is_active: Some(true),
    };
    let listed = voice
        .list_wake_words(&ctx, active, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![word.clone()]);

    voice.delete_wake_word(&ctx, word.id).await.unwrap();
    assert_eq!(
        voice.get_wake_word(&ctx, word.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    // The phrase is free again.
    voice
        .create_wake_word(
            &ctx,
            CreateWakeWordRequest {
                phrase: "hey jarvis".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}
