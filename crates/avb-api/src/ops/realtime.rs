//! `POST /v1/realtime/client_secrets` (GA) and `POST /v1/realtime/sessions` (beta): mint the short-lived `ek_`
//! client secrets a browser uses to open `/v1/realtime` without the tenant's long-lived key (reference §10).
//!
//! The caller needs what opening a session needs (the `realtime` scope for API keys, `tenant#operate` for
//! users); a client secret cannot mint another. The session configuration in the body is validated now, with
//! the same decoder `session.update` uses, and bound to the secret: a session opened with it starts from that
//! configuration. Errors use the normal envelope (these are REST routes of the OpenAPI document); only the
//! WebSocket upgrade answers in OpenAI's error shape.

use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use crate::realtime::connect::{bound_config, require_realtime_access};
use avb_core::{ErrorCode, FieldErrors};
use avb_voice::realtime::protocol::{
    Dialect, IdKind, SessionConfig, SessionKind, SessionObject, UpdateLocks, decode_session, session_value,
};
use serde_json::{Map, Value, json};

/// `POST /v1/realtime/client_secrets` — body `{session?: {type, model?, …GA config}, expires_after?: {anchor:
/// "created_at", seconds: 10–7200}}`; answers `{value: "ek_…", expires_at, session}`.
pub async fn create_client_secret(app: &App, ctx: &avb_core::Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_realtime_access(app, ctx).await?;
    let body = body_object(input)?;
    let session = match body.get("session") {
        None | Some(Value::Null) => json!({ "type": "realtime" }),
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => return Err(field("session", "type", "must be an object")),
    };
    let ttl = expires_after(body.get("expires_after"), "expires_after")?;
    let kind = match session.get("type").and_then(Value::as_str) {
        None | Some("realtime") => SessionKind::Realtime,
        Some("transcription") => SessionKind::Transcription,
        Some(_) => {
            return Err(field(
                "session.type",
                "choice",
                "must be 'realtime' or 'transcription'",
            ));
        }
    };
    let (object, minted) = mint(app, ctx, Dialect::Ga, kind, session, ttl).await?;
    Reply::ok(&json!({
        "value": minted.0,
        "expires_at": minted.1,
        "session": object,
    }))
}

/// `POST /v1/realtime/sessions` (beta) — body: flat beta session fields, optionally `client_secret:
/// {expires_after: {anchor, seconds}}`; answers the beta session object with `client_secret: {value,
/// expires_at}`.
pub async fn create_beta_session(app: &App, ctx: &avb_core::Ctx, input: &Input) -> Result<Reply, ApiError> {
    require_realtime_access(app, ctx).await?;
    let mut body = body_object(input)?;
    let ttl = match body.remove("client_secret") {
        None | Some(Value::Null) => None,
        Some(Value::Object(secret)) => {
            expires_after(secret.get("expires_after"), "client_secret.expires_after")?
        }
        Some(_) => return Err(field("client_secret", "type", "must be an object")),
    };
    let (mut object, minted) = mint(
        app,
        ctx,
        Dialect::Beta,
        SessionKind::Realtime,
        Value::Object(body),
        ttl,
    )
    .await?;
    if let Some(map) = object.as_object_mut() {
        map.insert(
            "client_secret".into(),
            json!({ "value": minted.0, "expires_at": minted.1 }),
        );
    }
    Reply::ok(&object)
}

/// Validates `session` in `dialect`, mints the secret bound to it, and returns the effective session object
/// with `(secret, expires_at)`.
async fn mint(
    app: &App,
    ctx: &avb_core::Ctx,
    dialect: Dialect,
    kind: SessionKind,
    session: Value,
    ttl: Option<u64>,
) -> Result<(Value, (String, i64)), ApiError> {
    let inner = app.inner();
    let model = session
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .map(|m| m.chars().take(200).collect::<String>())
        .unwrap_or_else(|| inner.config.realtime.default_model.clone());
    let mut config = SessionConfig::new(kind, model);
    let update = decode_session(dialect, kind, session.clone()).map_err(|e| {
        ApiError::from(FieldErrors::single(
            e.param().unwrap_or("session"),
            "invalid",
            e.message().to_owned(),
        ))
    })?;
    config
        .apply(update, UpdateLocks::default())
        .map_err(|e| ApiError::from(FieldErrors::single("session", "invalid", e.to_string())))?;
    let minted = inner
        .authenticator
        .client_secrets()
        .mint(ctx, bound_config(dialect, &session), ttl)
        .await?;
    let expires_at = minted.expires_at.timestamp();
    let object = session_value(
        dialect,
        &SessionObject {
            id: IdKind::Session.generate(inner.ids.as_ref()),
            expires_at: Some(expires_at),
            config,
        },
    );
    Ok((object, (minted.value, expires_at)))
}

fn body_object(input: &Input) -> Result<Map<String, Value>, ApiError> {
    if input.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match input.json::<Value>()? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::with_message(
            ErrorCode::ValidationError,
            "the body must be a JSON object",
        )),
    }
}

/// `{anchor: "created_at", seconds}` → seconds (range checked when minting).
fn expires_after(value: Option<&Value>, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(map) = value.as_object() else {
        return Err(field(name, "type", "must be an object"));
    };
    if let Some(anchor) = map.get("anchor")
        && anchor.as_str() != Some("created_at")
    {
        return Err(field(&format!("{name}.anchor"), "choice", "must be 'created_at'"));
    }
    match map.get("seconds") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            field(
                &format!("{name}.seconds"),
                "type",
                "must be a whole number of seconds",
            )
        }),
    }
}

fn field(name: &str, code: &'static str, message: &str) -> ApiError {
    ApiError::from(FieldErrors::single(name, code, message))
}
