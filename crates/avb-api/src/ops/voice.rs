//! `/api/v2/voice/…`: the tenant's voice configuration, personas and wake words.
//!
//! Permissions (spec §6.4): the configuration is read with `voice_config#view` and changed with
//! `tenant#configure_voice`. Until a tenant saves one, its configuration is derived from the tenant settings and
//! is not an object of the graph yet, so reading it is `tenant#view` (what `voice_config#view` resolves to);
//! the first save writes its `tenant` relationship. Personas are created with `tenant#configure_voice` (the
//! schema has no persona-specific tenant permission; `configure_voice` is the voice permission of developers)
//! and then read, changed and deleted with `persona#view`, `persona#edit`, `persona#delete`; the creator is the
//! `owner`. Wake words are not objects of the schema: reading them is `tenant#view`, changing them
//! `tenant#configure_voice`.

use super::{require, require_tenant_permission, visible_page};
use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::permissions::{self, GraphChange};
use avb_core::{Ctx, PersonaId, WakeWordId};
use avb_tenancy::model::{Persona, WakeWord};
use avb_tenancy::store::{PersonaFilter, WakeWordFilter};
use avb_tenancy::voice::{
    CreatePersonaRequest, CreateWakeWordRequest, UpdatePersonaRequest, UpdateVoiceConfigRequest,
    UpdateWakeWordRequest,
};
use serde::Deserialize;

/// Filters of `GET /voice/personas`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct PersonaListQuery {
    /// Exact name (case-insensitive).
    name: Option<String>,
    /// Only active (or inactive) personas.
    is_active: Option<bool>,
}

/// Filters of `GET /voice/wake-words`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct WakeWordListQuery {
    /// Only active (or inactive) wake words.
    is_active: Option<bool>,
}

/// `GET /voice/config` — `voice_config#view` (`tenant#view` while the defaults are not saved yet).
pub async fn get_config(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    let config = app.inner().voice.get_config(ctx).await?;
    if config.version == 0 {
        require_tenant_permission(app, ctx, "view").await?;
    } else {
        require(app, ctx, config.id, config.tenant_id, "view").await?;
    }
    Reply::ok(&config)
}

/// `PATCH /voice/config` — `tenant#configure_voice`; the first save also links the configuration to its tenant
/// in the graph.
pub async fn update_config(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "configure_voice").await?;
    let req: UpdateVoiceConfigRequest = input.json()?;
    let config = app.inner().voice.update_config(ctx, req).await?;
    if config.version == 1 {
        let change = GraphChange::VoiceConfigCreated {
            config: config.id,
            tenant: config.tenant_id,
        };
        permissions::apply(app, ctx, change).await;
    }
    Reply::ok(&config)
}

/// `GET /voice/personas` — the personas the caller may view, filtered by `name` and `is_active`, paginated.
pub async fn list_personas(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let query: PersonaListQuery = input.query()?;
    let page = input.page()?;
    let filter = PersonaFilter {
        name: query.name,
        is_active: query.is_active,
    };
    let voice = &app.inner().voice;
    let visible = visible_page(
        app,
        ctx,
        PersonaId::RESOURCE,
        "view",
        page,
        |p: &Persona| (p.id.into(), p.tenant_id),
        |batch| {
            let filter = filter.clone();
            async move { Ok(voice.list_personas(ctx, filter, batch).await?) }
        },
    )
    .await?;
    Reply::ok(&visible)
}

/// `POST /voice/personas` — `tenant#configure_voice`; 201, owned by its creator.
pub async fn create_persona(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "configure_voice").await?;
    let req: CreatePersonaRequest = input.json()?;
    let persona = app.inner().voice.create_persona(ctx, req).await?;
    let change = GraphChange::PersonaCreated {
        persona: persona.id,
        tenant: persona.tenant_id,
        owner: persona.owner_id,
    };
    permissions::apply(app, ctx, change).await;
    Reply::created(&persona)
}

/// `GET /voice/personas/{id}` — `persona#view`.
pub async fn get_persona(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    Reply::ok(&find_persona(app, ctx, input, "view").await?)
}

/// `PATCH /voice/personas/{id}` — `persona#edit`.
pub async fn update_persona(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let persona = find_persona(app, ctx, input, "edit").await?;
    let req: UpdatePersonaRequest = input.json()?;
    Reply::ok(&app.inner().voice.update_persona(ctx, persona.id, req).await?)
}

/// `DELETE /voice/personas/{id}` — `persona#delete`; 204.
pub async fn delete_persona(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let persona = find_persona(app, ctx, input, "delete").await?;
    app.inner().voice.delete_persona(ctx, persona.id).await?;
    let change = GraphChange::ObjectRemoved {
        object_type: PersonaId::RESOURCE.into(),
        object_id: persona.id.to_string(),
    };
    permissions::apply(app, ctx, change).await;
    Reply::no_content()
}

/// `GET /voice/wake-words` — `tenant#view`; filter `is_active`, paginated.
pub async fn list_wake_words(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "view").await?;
    let query: WakeWordListQuery = input.query()?;
    let page = input.page()?;
    let filter = WakeWordFilter {
        is_active: query.is_active,
    };
    Reply::ok(&app.inner().voice.list_wake_words(ctx, filter, page).await?)
}

/// `POST /voice/wake-words` — `tenant#configure_voice`; 201.
pub async fn create_wake_word(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_tenant_permission(app, ctx, "configure_voice").await?;
    let req: CreateWakeWordRequest = input.json()?;
    Reply::created(&app.inner().voice.create_wake_word(ctx, req).await?)
}

/// `GET /voice/wake-words/{id}` — `tenant#view`.
pub async fn get_wake_word(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    Reply::ok(&find_wake_word(app, ctx, input, "view").await?)
}

/// `PATCH /voice/wake-words/{id}` — `tenant#configure_voice`.
pub async fn update_wake_word(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let word = find_wake_word(app, ctx, input, "configure_voice").await?;
    let req: UpdateWakeWordRequest = input.json()?;
    Reply::ok(&app.inner().voice.update_wake_word(ctx, word.id, req).await?)
}

/// `DELETE /voice/wake-words/{id}` — `tenant#configure_voice`; 204.
pub async fn delete_wake_word(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let word = find_wake_word(app, ctx, input, "configure_voice").await?;
    app.inner().voice.delete_wake_word(ctx, word.id).await?;
    Reply::no_content()
}

/// Reads the persona named by the `id` parameter in the caller's tenant, then requires `permission` on it.
async fn find_persona(app: &App, ctx: &Ctx, input: &Input, permission: &str) -> Result<Persona, ApiError> {
    let id: PersonaId = input.param("id")?;
    let persona = app.inner().voice.get_persona(ctx, id).await?;
    require(app, ctx, persona.id, persona.tenant_id, permission).await?;
    Ok(persona)
}

/// Reads the wake word named by the `id` parameter in the caller's tenant, then requires the tenant
/// `permission`.
async fn find_wake_word(app: &App, ctx: &Ctx, input: &Input, permission: &str) -> Result<WakeWord, ApiError> {
    let id: WakeWordId = input.param("id")?;
    let word = app.inner().voice.get_wake_word(ctx, id).await?;
    require(app, ctx, word.tenant_id, word.tenant_id, permission).await?;
    Ok(word)
}
