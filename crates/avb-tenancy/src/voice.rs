//! A tenant's voice configuration, agent personas and wake words (spec §6.4 `voice_config`, `persona`).
//!
//! The voice configuration is the default a realtime session starts from. Until a tenant saves one, it is
//! derived from the tenant settings' voice defaults (spec §5.1 `TenantSettings`), so reading it never writes.
//! Who may edit (`voice_config#edit`, `persona#edit`…) is the API layer's decision.

use crate::audit::snapshot;
use crate::error::{Error, Result};
use crate::model::{Persona, TenantSettings, VoiceConfig, WakeWord};
use crate::service::TenancyDeps;
use crate::store::{AllRecords, PersonaFilter, UnitOfWork, WakeWordFilter};
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, PersonaId, TenantId, VoiceConfigId, WakeWordId};
use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Deserialize;
use std::sync::LazyLock;

#[allow(clippy::expect_used)] // constant pattern, exercised by the tests below
static LANGUAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$").expect("valid regex"));

/// Default speaking rate.
pub const DEFAULT_TTS_SPEED: f32 = 1.0;
/// Default sampling temperature (the realtime API's default).
pub const DEFAULT_TEMPERATURE: f32 = 0.8;
/// Default response token cap.
pub const DEFAULT_MAX_RESPONSE_TOKENS: u32 = 4096;
/// Default server-VAD threshold (the realtime API's default).
pub const DEFAULT_VAD_THRESHOLD: f32 = 0.5;
/// Default silence before end of turn (the realtime API's default).
pub const DEFAULT_SILENCE_DURATION_MS: u32 = 500;
/// Default wake-word sensitivity.
pub const DEFAULT_WAKE_WORD_SENSITIVITY: f32 = 0.5;

/// The configuration a tenant has before saving one: voice defaults from its settings, engine defaults for the
/// rest. Its id is the tenant's id (one configuration per tenant, stable from first read to first save) and its
/// version 0 (not stored).
pub fn default_voice_config(settings: &TenantSettings) -> VoiceConfig {
    VoiceConfig {
        id: VoiceConfigId(settings.tenant_id.0),
        tenant_id: settings.tenant_id,
        stt_model: settings.default_stt_model.clone(),
        tts_voice: settings.default_tts_voice.clone(),
        tts_speed: DEFAULT_TTS_SPEED,
        llm_provider: settings.default_llm_provider.clone(),
        llm_model: settings.default_llm_model.clone(),
        instructions: String::new(),
        language: "en".into(),
        temperature: DEFAULT_TEMPERATURE,
        max_response_tokens: DEFAULT_MAX_RESPONSE_TOKENS,
        vad_threshold: DEFAULT_VAD_THRESHOLD,
        silence_duration_ms: DEFAULT_SILENCE_DURATION_MS,
        updated_at: settings.updated_at,
        version: 0,
    }
}

/// A partial update of the voice configuration; absent fields keep their value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UpdateVoiceConfigRequest {
    /// 1–50 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub stt_model: Option<String>,
    /// 1–50 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub tts_voice: Option<String>,
    /// 0.25–4.0.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.25, maximum = 4.0))]
    pub tts_speed: Option<f32>,
    /// 1–50 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub llm_provider: Option<String>,
    /// 1–100 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub llm_model: Option<String>,
    /// ≤ 20,000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub instructions: Option<String>,
    /// Language tag (`en`, `en-US`), 2–10 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 2, max_length = 10))]
    pub language: Option<String>,
    /// 0.0–2.0.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 2.0))]
    pub temperature: Option<f32>,
    /// 1–16384.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 16384))]
    pub max_response_tokens: Option<u32>,
    /// 0.0–1.0.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub vad_threshold: Option<f32>,
    /// 100–5000.
    #[cfg_attr(feature = "openapi", schema(minimum = 100, maximum = 5000))]
    pub silence_duration_ms: Option<u32>,
    /// The version read (0 before the first save); a mismatch is `conflict`.
    pub version: Option<u64>,
}

/// A new persona.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CreatePersonaRequest {
    /// 1–100 characters, unique in the tenant (case-insensitive).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, required = true)
    )]
    pub name: String,
    /// ≤ 2000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: String,
    /// System prompt, ≤ 20,000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub instructions: String,
    /// ≤ 50 characters; empty uses the tenant's voice.
    #[cfg_attr(feature = "openapi", schema(max_length = 50))]
    pub voice: String,
    /// Language tag; default `en`.
    pub language: Option<String>,
    /// 0.0–2.0; default 0.8.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 2.0))]
    pub temperature: Option<f32>,
    /// Default true.
    pub is_active: Option<bool>,
}

/// A partial update of a persona.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UpdatePersonaRequest {
    /// 1–100 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// ≤ 2000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: Option<String>,
    /// ≤ 20,000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub instructions: Option<String>,
    /// ≤ 50 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 50))]
    pub voice: Option<String>,
    /// Language tag.
    pub language: Option<String>,
    /// 0.0–2.0.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 2.0))]
    pub temperature: Option<f32>,
    /// Usable.
    pub is_active: Option<bool>,
    /// The version read; a mismatch is `conflict`.
    pub version: Option<u64>,
}

/// A new wake word.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CreateWakeWordRequest {
    /// 2–50 letters, spaces and apostrophes (whitespace is trimmed and collapsed); unique in the tenant,
    /// case-insensitively.
    #[cfg_attr(feature = "openapi", schema(min_length = 2, max_length = 50, required = true))]
    pub phrase: String,
    /// 0.0–1.0; default 0.5.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub sensitivity: Option<f32>,
    /// Default true.
    pub is_active: Option<bool>,
}

/// A partial update of a wake word.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UpdateWakeWordRequest {
    /// New phrase.
    #[cfg_attr(feature = "openapi", schema(min_length = 2, max_length = 50))]
    pub phrase: Option<String>,
    /// 0.0–1.0.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub sensitivity: Option<f32>,
    /// Enabled.
    pub is_active: Option<bool>,
    /// The version read; a mismatch is `conflict`.
    pub version: Option<u64>,
}

/// Voice configuration, personas and wake words of a tenant.
#[derive(Debug, Clone)]
pub struct VoiceService {
    deps: TenancyDeps,
}

impl VoiceService {
    /// A service over `deps`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// The tenant's voice configuration, or the defaults derived from its settings when none is saved.
    pub async fn get_config(&self, ctx: &Ctx) -> Result<VoiceConfig> {
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { current_config(uow, tenant, now, false).await })
            })
            .await
    }

    /// Changes the voice configuration (saving it the first time), validating every given field.
    pub async fn update_config(&self, ctx: &Ctx, req: UpdateVoiceConfigRequest) -> Result<VoiceConfig> {
        validate_config_patch(&req)?;
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = current_config(uow, tenant, now, true).await?;
                    if let Some(expected) = req.version
                        && expected != old.version
                    {
                        return Err(version_conflict(
                            VoiceConfigId::RESOURCE,
                            old.id,
                            expected,
                            old.version,
                        ));
                    }
                    let mut new = old.clone();
                    apply_config_patch(&mut new, req);
                    new.updated_at = now;
                    let stored = if old.version == 0 {
                        uow.voice_configs().insert(new).await?
                    } else {
                        uow.voice_configs().update(new).await?
                    };
                    let previous = (old.version > 0).then(|| snapshot(&old, &[]));
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::SettingsChange, VoiceConfigId::RESOURCE, stored.id)
                            .description("voice configuration changed")
                            .values(previous, Some(snapshot(&stored, &[])))
                            .tenant(stored.tenant_id),
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// Creates a persona owned by the calling user. A duplicate name is `conflict`.
    pub async fn create_persona(&self, ctx: &Ctx, req: CreatePersonaRequest) -> Result<Persona> {
        let mut errors = FieldErrors::new();
        let language = req.language.unwrap_or_else(|| "en".into());
        let temperature = req.temperature.unwrap_or(DEFAULT_TEMPERATURE);
        validate_persona_fields(
            &mut errors,
            Some(&req.name),
            Some(&req.description),
            Some(&req.instructions),
            Some(&req.voice),
            Some(&language),
            Some(temperature),
        );
        errors.into_result()?;
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        let persona = Persona {
            id: PersonaId::generate(self.deps.ids.as_ref()),
            tenant_id: tenant,
            name: req.name,
            description: req.description,
            instructions: req.instructions,
            voice: req.voice,
            language,
            temperature,
            owner_id: ctx.principal().user_id(),
            is_active: req.is_active.unwrap_or(true),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let stored = uow.personas().insert(persona).await?;
                    audit(
                        uow,
                        AuditAction::Create,
                        PersonaId::RESOURCE,
                        stored.id,
                        stored.tenant_id,
                        None,
                        &stored,
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// One persona.
    pub async fn get_persona(&self, ctx: &Ctx, id: PersonaId) -> Result<Persona> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.personas().get(id).await?) })
            })
            .await
    }

    /// Personas matching `filter`, newest first.
    pub async fn list_personas(
        &self,
        ctx: &Ctx,
        filter: PersonaFilter,
        page: PageRequest,
    ) -> Result<Page<Persona>> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.personas().list(&filter, page).await?) })
            })
            .await
    }

    /// Changes a persona; a name taken by another persona is `conflict`.
    pub async fn update_persona(
        &self,
        ctx: &Ctx,
        id: PersonaId,
        req: UpdatePersonaRequest,
    ) -> Result<Persona> {
        let mut errors = FieldErrors::new();
        validate_persona_fields(
            &mut errors,
            req.name.as_deref(),
            req.description.as_deref(),
            req.instructions.as_deref(),
            req.voice.as_deref(),
            req.language.as_deref(),
            req.temperature,
        );
        errors.into_result()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.personas().lock(id).await?;
                    let mut new = old.clone();
                    if let Some(v) = req.name {
                        new.name = v;
                    }
                    if let Some(v) = req.description {
                        new.description = v;
                    }
                    if let Some(v) = req.instructions {
                        new.instructions = v;
                    }
                    if let Some(v) = req.voice {
                        new.voice = v;
                    }
                    if let Some(v) = req.language {
                        new.language = v;
                    }
                    if let Some(v) = req.temperature {
                        new.temperature = v;
                    }
                    if let Some(v) = req.is_active {
                        new.is_active = v;
                    }
                    if let Some(v) = req.version {
                        new.version = v;
                    }
                    new.updated_at = now;
                    let stored = uow.personas().update(new).await?;
                    audit(
                        uow,
                        AuditAction::Update,
                        PersonaId::RESOURCE,
                        id,
                        stored.tenant_id,
                        Some(&old),
                        &stored,
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// Deletes a persona.
    pub async fn delete_persona(&self, ctx: &Ctx, id: PersonaId) -> Result<()> {
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.personas().lock(id).await?;
                    uow.personas().delete(id).await?;
                    audit_delete(uow, PersonaId::RESOURCE, id, old.tenant_id, &old).await
                })
            })
            .await
    }

    /// Creates a wake word. A phrase already used in the tenant (ignoring case) is `conflict`.
    pub async fn create_wake_word(&self, ctx: &Ctx, req: CreateWakeWordRequest) -> Result<WakeWord> {
        let mut errors = FieldErrors::new();
        let phrase = normalise_phrase(&req.phrase);
        let sensitivity = req.sensitivity.unwrap_or(DEFAULT_WAKE_WORD_SENSITIVITY);
        validate_phrase(&mut errors, &phrase);
        validation::range_f32(&mut errors, "sensitivity", sensitivity, 0.0, 1.0);
        errors.into_result()?;
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        let word = WakeWord {
            id: WakeWordId::generate(self.deps.ids.as_ref()),
            tenant_id: tenant,
            phrase,
            sensitivity,
            is_active: req.is_active.unwrap_or(true),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let stored = uow.wake_words().insert(word).await?;
                    audit(
                        uow,
                        AuditAction::Create,
                        WakeWordId::RESOURCE,
                        stored.id,
                        stored.tenant_id,
                        None,
                        &stored,
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// One wake word.
    pub async fn get_wake_word(&self, ctx: &Ctx, id: WakeWordId) -> Result<WakeWord> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.wake_words().get(id).await?) })
            })
            .await
    }

    /// Wake words matching `filter`, newest first.
    pub async fn list_wake_words(
        &self,
        ctx: &Ctx,
        filter: WakeWordFilter,
        page: PageRequest,
    ) -> Result<Page<WakeWord>> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.wake_words().list(&filter, page).await?) })
            })
            .await
    }

    /// Changes a wake word.
    pub async fn update_wake_word(
        &self,
        ctx: &Ctx,
        id: WakeWordId,
        req: UpdateWakeWordRequest,
    ) -> Result<WakeWord> {
        let mut errors = FieldErrors::new();
        let phrase = req.phrase.as_deref().map(normalise_phrase);
        if let Some(p) = &phrase {
            validate_phrase(&mut errors, p);
        }
        if let Some(s) = req.sensitivity {
            validation::range_f32(&mut errors, "sensitivity", s, 0.0, 1.0);
        }
        errors.into_result()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.wake_words().lock(id).await?;
                    let mut new = old.clone();
                    if let Some(v) = phrase {
                        new.phrase = v;
                    }
                    if let Some(v) = req.sensitivity {
                        new.sensitivity = v;
                    }
                    if let Some(v) = req.is_active {
                        new.is_active = v;
                    }
                    if let Some(v) = req.version {
                        new.version = v;
                    }
                    new.updated_at = now;
                    let stored = uow.wake_words().update(new).await?;
                    audit(
                        uow,
                        AuditAction::Update,
                        WakeWordId::RESOURCE,
                        id,
                        stored.tenant_id,
                        Some(&old),
                        &stored,
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// Deletes a wake word.
    pub async fn delete_wake_word(&self, ctx: &Ctx, id: WakeWordId) -> Result<()> {
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.wake_words().lock(id).await?;
                    uow.wake_words().delete(id).await?;
                    audit_delete(uow, WakeWordId::RESOURCE, id, old.tenant_id, &old).await
                })
            })
            .await
    }
}

/// The stored configuration (locked when `lock`), or the defaults from the tenant settings (or the spec's
/// settings defaults when even those are missing).
async fn current_config(
    uow: &mut dyn UnitOfWork,
    tenant: TenantId,
    now: DateTime<Utc>,
    lock: bool,
) -> Result<VoiceConfig> {
    let page = PageRequest::new(Some(1), None)?;
    if let Some(stored) = uow
        .voice_configs()
        .list(&AllRecords, page)
        .await?
        .items
        .into_iter()
        .next()
    {
        return Ok(if lock {
            uow.voice_configs().lock(stored.id).await?
        } else {
            stored
        });
    }
    let settings = match uow.tenant_settings().get(tenant).await {
        Ok(s) => s,
        Err(avb_core::Error::NotFound { .. }) => TenantSettings::defaults(tenant, now),
        Err(other) => return Err(other.into()),
    };
    Ok(default_voice_config(&settings))
}

fn version_conflict(resource: &'static str, id: impl ToString, expected: u64, actual: u64) -> Error {
    Error::Store(avb_core::Error::VersionConflict {
        resource,
        id: id.to_string(),
        expected,
        actual,
    })
}

fn validate_config_patch(req: &UpdateVoiceConfigRequest) -> Result<()> {
    let mut e = FieldErrors::new();
    if let Some(v) = &req.stt_model {
        validation::text(&mut e, "stt_model", v, 1, 50);
    }
    if let Some(v) = &req.tts_voice {
        validation::text(&mut e, "tts_voice", v, 1, 50);
    }
    if let Some(v) = req.tts_speed {
        validation::range_f32(&mut e, "tts_speed", v, 0.25, 4.0);
    }
    if let Some(v) = &req.llm_provider {
        validation::text(&mut e, "llm_provider", v, 1, 50);
    }
    if let Some(v) = &req.llm_model {
        validation::text(&mut e, "llm_model", v, 1, 100);
    }
    if let Some(v) = &req.instructions {
        validation::text(&mut e, "instructions", v, 0, 20_000);
    }
    if let Some(v) = &req.language {
        language(&mut e, "language", v);
    }
    if let Some(v) = req.temperature {
        validation::range_f32(&mut e, "temperature", v, 0.0, 2.0);
    }
    if let Some(v) = req.max_response_tokens {
        validation::range_u64(&mut e, "max_response_tokens", v.into(), 1, 16_384);
    }
    if let Some(v) = req.vad_threshold {
        validation::range_f32(&mut e, "vad_threshold", v, 0.0, 1.0);
    }
    if let Some(v) = req.silence_duration_ms {
        validation::range_u64(&mut e, "silence_duration_ms", v.into(), 100, 5000);
    }
    e.into_result()?;
    Ok(())
}

fn apply_config_patch(config: &mut VoiceConfig, req: UpdateVoiceConfigRequest) {
    if let Some(v) = req.stt_model {
        config.stt_model = v;
    }
    if let Some(v) = req.tts_voice {
        config.tts_voice = v;
    }
    if let Some(v) = req.tts_speed {
        config.tts_speed = v;
    }
    if let Some(v) = req.llm_provider {
        config.llm_provider = v;
    }
    if let Some(v) = req.llm_model {
        config.llm_model = v;
    }
    if let Some(v) = req.instructions {
        config.instructions = v;
    }
    if let Some(v) = req.language {
        config.language = v;
    }
    if let Some(v) = req.temperature {
        config.temperature = v;
    }
    if let Some(v) = req.max_response_tokens {
        config.max_response_tokens = v;
    }
    if let Some(v) = req.vad_threshold {
        config.vad_threshold = v;
    }
    if let Some(v) = req.silence_duration_ms {
        config.silence_duration_ms = v;
    }
}

/// A language tag like `en`, `pt-BR`, `zh-Hant-TW`, 2–10 characters.
fn language(errors: &mut FieldErrors, field: &str, value: &str) -> bool {
    if !(2..=10).contains(&value.len()) || !LANGUAGE.is_match(value) {
        errors.push(
            field,
            "format",
            "must be a language tag such as 'en' or 'en-US' (2–10 characters)",
        );
        return false;
    }
    true
}

fn validate_persona_fields(
    e: &mut FieldErrors,
    name: Option<&str>,
    description: Option<&str>,
    instructions: Option<&str>,
    voice: Option<&str>,
    lang: Option<&str>,
    temperature: Option<f32>,
) {
    if let Some(v) = name {
        validation::text(e, "name", v, 1, 100);
    }
    if let Some(v) = description {
        validation::text(e, "description", v, 0, 2000);
    }
    if let Some(v) = instructions {
        validation::text(e, "instructions", v, 0, 20_000);
    }
    if let Some(v) = voice {
        validation::text(e, "voice", v, 0, 50);
    }
    if let Some(v) = lang {
        language(e, "language", v);
    }
    if let Some(v) = temperature {
        validation::range_f32(e, "temperature", v, 0.0, 2.0);
    }
}

/// Trims and collapses runs of whitespace to one space, so `"hey  jarvis "` and `"hey jarvis"` are one phrase.
fn normalise_phrase(phrase: &str) -> String {
    phrase.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 2–50 characters, only letters, spaces and apostrophes, at least one letter.
fn validate_phrase(errors: &mut FieldErrors, phrase: &str) -> bool {
    if !validation::length(errors, "phrase", phrase, 2, 50) {
        return false;
    }
    let allowed = phrase
        .chars()
        .all(|c| c.is_alphabetic() || c == ' ' || c == '\'' || c == '\u{2019}');
    if !allowed || !phrase.chars().any(char::is_alphabetic) {
        errors.push(
            "phrase",
            "pattern",
            "must contain only letters, spaces and apostrophes",
        );
        return false;
    }
    true
}

async fn audit<T: serde::Serialize>(
    uow: &mut dyn UnitOfWork,
    action: AuditAction,
    resource: &'static str,
    id: impl ToString,
    tenant: TenantId,
    old: Option<&T>,
    new: &T,
) -> Result<()> {
    uow.append_audit(
        NewAuditEntry::new(action, resource, id.to_string())
            .values(old.map(|o| snapshot(o, &[])), Some(snapshot(new, &[])))
            .tenant(tenant),
    )
    .await?;
    Ok(())
}

async fn audit_delete<T: serde::Serialize>(
    uow: &mut dyn UnitOfWork,
    resource: &'static str,
    id: impl ToString,
    tenant: TenantId,
    old: &T,
) -> Result<()> {
    uow.append_audit(
        NewAuditEntry::new(AuditAction::Delete, resource, id.to_string())
            .values(Some(snapshot(old, &[])), None)
            .tenant(tenant),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        let mut e = FieldErrors::new();
        for ok in ["en", "en-US", "pt-BR", "zh-Hant", "yue"] {
            assert!(language(&mut e, "l", ok), "{ok}");
        }
        for bad in ["e", "english-language", "en_US", "12", "en-", ""] {
            assert!(!language(&mut e, "l", bad), "{bad}");
        }
    }

    #[test]
    fn wake_word_phrases() {
        let mut e = FieldErrors::new();
        for ok in ["hey jarvis", "ok computer", "o'neil", "Olá Ana", "hé"] {
            assert!(validate_phrase(&mut e, &normalise_phrase(ok)), "{ok}");
        }
        for bad in ["a", "hey-jarvis", "computer!", "r2d2", "''", &"a".repeat(51)] {
            assert!(!validate_phrase(&mut e, &normalise_phrase(bad)), "{bad}");
        }
        assert_eq!(normalise_phrase("  hey \t  jarvis "), "hey jarvis");
    }

    #[test]
    fn config_patches_report_every_out_of_range_field() {
        let req = UpdateVoiceConfigRequest {
            stt_model: Some(String::new()),
            tts_speed: Some(0.1),
            language: Some("x".into()),
            temperature: Some(f32::NAN),
            max_response_tokens: Some(0),
            vad_threshold: Some(1.5),
            silence_duration_ms: Some(99),
            ..Default::default()
        };
        let Err(Error::Invalid(fields)) = validate_config_patch(&req) else {
            panic!("expected validation error")
        };
        let names: Vec<_> = fields.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "stt_model",
                "tts_speed",
                "language",
                "temperature",
                "max_response_tokens",
                "vad_threshold",
                "silence_duration_ms"
            ]
        );
        let bounds = UpdateVoiceConfigRequest {
            tts_speed: Some(4.0),
            temperature: Some(0.0),
            max_response_tokens: Some(16_384),
            vad_threshold: Some(1.0),
            silence_duration_ms: Some(5000),
            ..Default::default()
        };
        assert!(validate_config_patch(&bounds).is_ok());
    }

    #[test]
    fn defaults_follow_the_tenant_settings() {
        let tenant = TenantId(uuid::Uuid::from_u128(9));
        let mut settings = TenantSettings::defaults(tenant, DateTime::from_timestamp(0, 0).unwrap());
        settings.default_tts_voice = "af_bella".into();
        let config = default_voice_config(&settings);
        assert_eq!(config.tts_voice, "af_bella");
        assert_eq!(config.stt_model, settings.default_stt_model);
        assert_eq!(config.llm_model, settings.default_llm_model);
        assert_eq!(config.id.0, tenant.0);
        assert_eq!(config.version, 0);
    }
}
