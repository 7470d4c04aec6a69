//! Valid records of every type for the checks, and [`Fixture`], which lets one generic check cover them all.
//!
//! Globally unique fields (slugs, e-mails, key hashes) are random; per-tenant names derive from `n`. Creation
//! times are spread out of insertion order, so a store that lists in insertion order fails the ordering checks.

use crate::model::*;
use crate::store::{Record, Repo, UnitOfWork};
use avb_core::{
    ApiKeyId, ApiKeyScope, Clock, NotificationId, PersonaId, ProjectId, RateLimitTier, Result, Role,
    SessionEventId, SessionId, SystemClock, TenantId, ThemeId, UserId, VoiceConfigId, WakeWordId,
};
use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use serde_json::{Map, json};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// A creation time for the `n`-th record of a check, deliberately not increasing with `n`.
fn created(n: u32) -> DateTime<Utc> {
    now() - TimeDelta::seconds(i64::from(n.wrapping_mul(37) % 11))
}

fn token() -> String {
    Uuid::new_v4().simple().to_string()
}

/// A free-tier, active tenant with a random slug.
pub fn tenant() -> Tenant {
    let id = TenantId(Uuid::now_v7());
    let slug = format!("conf-{}", token());
    Tenant {
        id,
        name: format!("Tenant {slug}"),
        slug,
        tier: TenantTier::Free,
        status: TenantStatus::Active,
        billing_id: String::new(),
        keycloak_group_id: String::new(),
        settings: Map::new(),
        limits: TenantTier::Free.limits(),
        created_at: now(),
        updated_at: now(),
        activated_at: Some(now()),
        suspended_at: None,
        deleted_at: None,
        version: 0,
    }
}

/// A user of `tenant` (`None`: a platform operator) with a random e-mail and Keycloak subject.
pub fn user(tenant: Option<TenantId>, n: u32) -> User {
    User {
        id: UserId(Uuid::now_v7()),
        tenant_id: tenant,
        keycloak_id: Some(token()),
        email: format!("user-{}@example.com", token()),
        first_name: format!("First{n}"),
        last_name: "Last".into(),
        roles: [Role::Developer].into(),
        is_active: true,
        is_staff: false,
        date_joined: created(n),
        last_login: None,
        preferences: Map::new(),
        profile: UserProfile::default(),
        created_at: created(n),
        updated_at: created(n),
        version: 0,
    }
}

/// A project of `tenant` named `name`.
pub fn project(tenant: TenantId, name: &str, n: u32) -> Project {
    Project {
        id: ProjectId(Uuid::now_v7()),
        tenant_id: tenant,
        name: name.into(),
        description: format!("project {n}"),
        settings: Map::new(),
        created_by: None,
        created_at: created(n),
        updated_at: created(n),
        version: 0,
    }
}

/// An API key record of `tenant`, optionally bound to `project`, with a random hash.
pub fn api_key(tenant: TenantId, project: Option<ProjectId>, n: u32) -> ApiKey {
    let hash = format!("{}{}", token(), token());
    ApiKey {
        id: ApiKeyId(Uuid::now_v7()),
        tenant_id: tenant,
        name: format!("key {n}"),
        description: String::new(),
        key_prefix: format!("avb_{}", hash.get(..8).unwrap_or_default()),
        key_hash: hash,
        created_by: None,
        project_id: project,
        scopes: [ApiKeyScope::Realtime].into(),
        rate_limit_tier: RateLimitTier::Standard,
        expires_at: None,
        revoked_at: None,
        revoked_by: None,
        last_used_at: None,
        last_used_ip: None,
        usage_count: 0,
        created_at: created(n),
        updated_at: created(n),
        version: 0,
    }
}

/// A session of `tenant`.
pub fn session(tenant: TenantId, project: Option<ProjectId>, api_key: Option<ApiKeyId>, n: u32) -> Session {
    Session {
        id: SessionId(Uuid::now_v7()),
        tenant_id: tenant,
        project_id: project,
        api_key_id: api_key,
        user_id: None,
        status: SessionStatus::Created,
        config: json!({ "voice": "am_onyx" }),
        started_at: None,
        ended_at: None,
        duration_seconds: None,
        input_tokens: 0,
        output_tokens: 0,
        audio_duration_seconds: 0.0,
        error_code: String::new(),
        error_message: String::new(),
        client_ip: None,
        user_agent: String::new(),
        created_at: created(n),
        updated_at: created(n),
        version: 0,
    }
}

/// Event number `sequence` of `session`.
pub fn session_event(tenant: TenantId, session: SessionId, sequence: u64) -> SessionEvent {
    SessionEvent {
        id: SessionEventId(Uuid::now_v7()),
        session_id: session,
        tenant_id: tenant,
        event_type: SessionEventType::Transcript,
        content: json!({ "text": format!("utterance {sequence}") }),
        timestamp: now(),
        duration_ms: Some(120),
        sequence,
        version: 0,
    }
}

/// The voice configuration of `tenant`.
pub fn voice_config(tenant: TenantId) -> VoiceConfig {
    VoiceConfig {
        id: VoiceConfigId(Uuid::now_v7()),
        tenant_id: tenant,
        stt_model: "base".into(),
        tts_voice: "am_onyx".into(),
        tts_speed: 1.0,
        llm_provider: "groq".into(),
        llm_model: "llama-3.1-8b-instant".into(),
        instructions: "Be brief.".into(),
        language: "en".into(),
        temperature: 0.7,
        max_response_tokens: 1024,
        vad_threshold: 0.5,
        silence_duration_ms: 500,
        updated_at: now(),
        version: 0,
    }
}

/// A persona of `tenant` named `name`.
pub fn persona(tenant: TenantId, name: &str, n: u32) -> Persona {
    Persona {
        id: PersonaId(Uuid::now_v7()),
        tenant_id: tenant,
        name: name.into(),
        description: String::new(),
        instructions: "You are helpful.".into(),
        voice: "am_onyx".into(),
        language: "en".into(),
        temperature: 0.5,
        owner_id: None,
        is_active: true,
        created_at: created(n),
        updated_at: created(n),
        version: 0,
    }
}

/// A wake word of `tenant`.
pub fn wake_word(tenant: TenantId, phrase: &str, n: u32) -> WakeWord {
    WakeWord {
        id: WakeWordId(Uuid::now_v7()),
        tenant_id: tenant,
        phrase: phrase.into(),
        sensitivity: 0.5,
        is_active: true,
        created_at: created(n),
        updated_at: created(n),
        version: 0,
    }
}

/// A theme of `tenant` named `name`.
pub fn theme(tenant: TenantId, name: &str, n: u32) -> Theme {
    Theme {
        id: ThemeId(Uuid::now_v7()),
        tenant_id: tenant,
        name: name.into(),
        description: String::new(),
        owner_id: None,
        is_public: false,
        text_color: "#111111".into(),
        background_color: "#ffffff".into(),
        primary_color: "#6366f1".into(),
        variables: Default::default(),
        created_at: created(n),
        updated_at: created(n),
        version: 0,
    }
}

/// A notification for `user` of `tenant`.
pub fn notification(tenant: TenantId, user: UserId, n: u32) -> Notification {
    Notification {
        id: NotificationId(Uuid::now_v7()),
        tenant_id: tenant,
        user_id: user,
        category: "system".into(),
        title: format!("Notice {n}"),
        body: String::new(),
        data: json!({}),
        read_at: None,
        created_at: created(n),
        version: 0,
    }
}

/// A record type whose repository the checks can reach generically.
pub trait HasRepo: Record + PartialEq {
    /// This type's repository in `uow`.
    fn repo(uow: &mut dyn UnitOfWork) -> &mut dyn Repo<Self>;
}

impl HasRepo for Tenant {
    fn repo(uow: &mut dyn UnitOfWork) -> &mut dyn Repo<Self> {
        uow.tenants()
    }
}

/// A tenant-owned record type the generic checks can create, find and change.
pub trait Fixture: HasRepo {
    /// False for types a tenant holds at most one of (settings, voice configuration).
    const MANY_PER_TENANT: bool = true;

    /// A new valid record of `tenant` (not yet inserted), after inserting through `uow` whatever it must
    /// reference. `n` distinguishes the records of one check.
    fn prepare(uow: &mut dyn UnitOfWork, tenant: TenantId, n: u32) -> BoxFuture<'_, Result<Self>>;

    /// Changes a field that no uniqueness rule or reference depends on.
    fn touch(&mut self);
}

macro_rules! fixture {
    ($ty:ty, $repo:ident, |$uow:ident, $tenant:ident, $n:ident| $prepare:expr, |$r:ident| $touch:expr $(, one = $one:literal)?) => {
        impl HasRepo for $ty {
            fn repo(uow: &mut dyn UnitOfWork) -> &mut dyn Repo<Self> {
                uow.$repo()
            }
        }

        impl Fixture for $ty {
            $(const MANY_PER_TENANT: bool = !$one;)?
            fn prepare($uow: &mut dyn UnitOfWork, $tenant: TenantId, $n: u32) -> BoxFuture<'_, Result<Self>> {
                Box::pin(async move { $prepare })
            }
            fn touch(&mut self) {
                let $r = self;
                $touch
            }
        }
    };
}

fixture!(
    TenantSettings,
    tenant_settings,
    |_uow, tenant, _n| Ok(TenantSettings::defaults(tenant, now())),
    |s| s.primary_color = "#123456".into(),
    one = true
);
fixture!(User, users, |_uow, tenant, n| Ok(user(Some(tenant), n)), |u| u
    .first_name
    .push_str(" (edited)"));
fixture!(
    Project,
    projects,
    |_uow, tenant, n| Ok(project(tenant, &format!("Project {n}"), n)),
    |p| p.description.push_str(" (edited)")
);
fixture!(
    ApiKey,
    api_keys,
    |_uow, tenant, n| Ok(api_key(tenant, None, n)),
    |k| k.usage_count += 1
);
fixture!(
    Session,
    sessions,
    |_uow, tenant, n| Ok(session(tenant, None, None, n)),
    |s| s.input_tokens += 1
);
fixture!(
    SessionEvent,
    session_events,
    |uow, tenant, n| {
        let parent = uow.sessions().insert(session(tenant, None, None, n)).await?;
        Ok(session_event(tenant, parent.id, u64::from(n)))
    },
    |e| e.duration_ms = Some(e.duration_ms.unwrap_or(0) + 1)
);
fixture!(
    VoiceConfig,
    voice_configs,
    |_uow, tenant, _n| Ok(voice_config(tenant)),
    |v| v.instructions.push_str(" Be kind."),
    one = true
);
fixture!(
    Persona,
    personas,
    |_uow, tenant, n| Ok(persona(tenant, &format!("Persona {n}"), n)),
    |p| p.description.push_str(" (edited)")
);
fixture!(
    WakeWord,
    wake_words,
    |_uow, tenant, n| Ok(wake_word(tenant, &format!("hey box {n}"), n)),
    |w| w.sensitivity = 0.75
);
fixture!(
    Theme,
    themes,
    |_uow, tenant, n| Ok(theme(tenant, &format!("Theme {n}"), n)),
    |t| t.description.push_str(" (edited)")
);
fixture!(
    Notification,
    notifications,
    |uow, tenant, n| {
        let recipient = uow.users().insert(user(Some(tenant), n)).await?;
        Ok(notification(tenant, recipient.id, n))
    },
    |note| note.title.push_str(" (edited)")
);
