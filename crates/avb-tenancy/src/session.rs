//! Voice session records (spec §9.3) and their event log, plus the expiry/retention task of spec §11.3.
//!
//! Status follows [`SessionStatus::can_become`]: `created → active → completed`, and `created | active →
//! error | terminated`. Creating a session counts against the tenant's `max_sessions_per_month` (calendar month,
//! UTC). Events are numbered 1, 2, 3, … per session with no gaps, even under concurrent appends: the sequence is
//! assigned while the session row is locked (`SELECT … FOR UPDATE` on Postgres).

use crate::audit::snapshot;
use crate::error::{Error, Result};
use crate::model::{Session, SessionEvent, SessionEventType, SessionStatus};
use crate::quota::{self, Quota};
use crate::service::TenancyDeps;
use crate::store::{SessionEventFilter, SessionFilter, UnitOfWork};
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, Principal, ProjectId, SessionEventId, SessionId};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest session `config`, serialised (a realtime `session.update` is far smaller).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Largest event `content`, serialised.
pub const MAX_EVENT_CONTENT_BYTES: usize = 256 * 1024;
/// How long after a session ends the voice engine may still log `system`/`error` events (its close reason).
pub const FINAL_EVENT_GRACE_SECONDS: i64 = 60;
/// Error code given to sessions that [`SessionService::cleanup_expired`] ends.
pub const EXPIRED_ERROR_CODE: &str = "session_expired";
/// Sessions handled per unit of work by the cleanup task.
const CLEANUP_BATCH: u32 = 100;

/// What a client sends to open a session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CreateSessionRequest {
    /// A project of the tenant. When absent and the caller is an API key bound to a project, that project.
    pub project_id: Option<ProjectId>,
    /// Session configuration: a JSON object of at most 64 KiB (`None`: `{}`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config: Option<Value>,
    /// Refuse with `tenant_limit_exceeded` (resource `concurrent_sessions`) when the tenant already has this many
    /// sessions that are not final (`created` or `active`). Set by the server for realtime connections, never by
    /// a client; checked under the tenant lock, so concurrent opens cannot overshoot.
    #[serde(skip)]
    pub max_open_sessions: Option<u32>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SessionOutcome {
    /// Ended normally (only from `active`).
    Completed,
    /// Failed.
    Error {
        /// Machine code, 1–50 characters (spec `error_code max_length=50`).
        code: String,
        /// Human-readable message, ≤ 2000 characters.
        message: String,
    },
    /// Ended by the client or an operator.
    Terminated,
}

impl SessionOutcome {
    fn status(&self) -> SessionStatus {
        match self {
            SessionOutcome::Completed => SessionStatus::Completed,
            SessionOutcome::Error { .. } => SessionStatus::Error,
            SessionOutcome::Terminated => SessionStatus::Terminated,
        }
    }
}

/// Usage to add to a session's totals when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionUsage {
    /// LLM input tokens.
    pub input_tokens: u64,
    /// LLM output tokens.
    pub output_tokens: u64,
    /// Seconds of audio processed (finite, ≥ 0).
    pub audio_seconds: f64,
}

/// Ending a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FinishSessionRequest {
    /// Outcome.
    pub outcome: SessionOutcome,
    /// Usage to add.
    #[serde(default)]
    pub usage: SessionUsage,
}

/// One event to append.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppendEventRequest {
    /// Kind.
    pub event_type: SessionEventType,
    /// Content, at most 256 KiB serialised.
    #[serde(default)]
    pub content: Value,
    /// Duration, when the event spans time.
    #[serde(default)]
    pub duration_ms: Option<u32>,
}

/// Which events to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EventQuery {
    /// Only events after this sequence number (resume a transcript).
    pub after_sequence: Option<u64>,
    /// Only this kind.
    pub event_type: Option<SessionEventType>,
}

/// The cleanup task's thresholds (spec §11.3 `cleanup_expired_sessions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct CleanupPolicy {
    /// A `created`/`active` session with no activity (creation, start, event) for this long is abandoned.
    pub stale_after_seconds: u64,
    /// Sessions that ended longer ago than this are deleted with their events; `None` keeps them forever.
    #[serde(default)]
    pub retain_ended_seconds: Option<u64>,
}

impl Default for CleanupPolicy {
    /// The spec's 24 hours; deletion is opt-in.
    fn default() -> Self {
        Self {
            stale_after_seconds: 24 * 3600,
            retain_ended_seconds: None,
        }
    }
}

/// What the cleanup task did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Sessions ended as `error` / `session_expired`.
    pub expired: u64,
    /// Ended sessions deleted (with their events).
    pub deleted: u64,
}

/// Voice sessions of a tenant: lifecycle, events and cleanup.
#[derive(Debug, Clone)]
pub struct SessionService {
    deps: TenancyDeps,
}

impl SessionService {
    /// A service over `deps`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// Opens a session in status `created`, counted against the tenant's monthly quota. The API key and user
    /// come from the context's principal, the client IP and user agent from its client info.
    ///
    /// Fails with `validation_error`, `not_found` (project), `tenant_limit_exceeded`, `tenant_suspended`;
    /// nothing is written on failure.
    pub async fn create(&self, ctx: &Ctx, req: CreateSessionRequest) -> Result<Session> {
        let mut errors = FieldErrors::new();
        let config = req.config.unwrap_or_else(|| Value::Object(Default::default()));
        if !config.is_object() {
            errors.push("config", "type", "must be a JSON object");
        }
        json_size(&mut errors, "config", &config, MAX_CONFIG_BYTES);
        errors.into_result()?;
        let tenant = ctx.require_tenant()?;
        let max_open = req.max_open_sessions;
        let now = self.deps.clock.now();
        let (api_key_id, key_project, user_id) = match ctx.principal() {
            Principal::ApiKey(k) => (Some(k.key_id), k.project_id, None),
            Principal::User(u) => (None, None, Some(u.user_id)),
            Principal::System { .. } | Principal::Anonymous => (None, None, None),
        };
        let client = ctx.client();
        let session = Session {
            id: SessionId::generate(self.deps.ids.as_ref()),
            tenant_id: tenant,
            project_id: req.project_id.or(key_project),
            api_key_id,
            user_id,
            status: SessionStatus::Created,
            config,
            started_at: None,
            ended_at: None,
            duration_seconds: None,
            input_tokens: 0,
            output_tokens: 0,
            audio_duration_seconds: 0.0,
            error_code: String::new(),
            error_message: String::new(),
            client_ip: client.ip,
            user_agent: client
                .user_agent
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect(),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    if let Some(project) = session.project_id {
                        uow.projects().get(project).await?;
                    }
                    quota::reserve(uow, tenant, Quota::SessionsPerMonth, now).await?;
                    if let Some(limit) = max_open {
                        let open = SessionFilter {
                            status_in: Some(vec![SessionStatus::Created, SessionStatus::Active]),
                            ..SessionFilter::default()
                        };
                        let current = uow.sessions().count(&open).await?;
                        if current >= u64::from(limit) {
                            return Err(Error::LimitExceeded {
                                resource: "concurrent_sessions",
                                limit: u64::from(limit),
                                current,
                            });
                        }
                    }
                    let stored = uow.sessions().insert(session).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, SessionId::RESOURCE, stored.id)
                            .description("session created")
                            .values(None, Some(snapshot(&stored, &[])))
                            .tenant(stored.tenant_id),
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// `created → active`, setting `started_at`. Any other state is `conflict` (invalid state).
    pub async fn start(&self, ctx: &Ctx, id: SessionId) -> Result<Session> {
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.sessions().lock(id).await?;
                    check_transition(&old, SessionStatus::Active, "start")?;
                    let mut session = old.clone();
                    session.status = SessionStatus::Active;
                    session.started_at = Some(now);
                    session.updated_at = now;
                    let stored = uow.sessions().update(session).await?;
                    audit_transition(uow, &old, &stored, "session started").await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// Ends a session with `outcome`, setting `ended_at`, `duration_seconds` (from `started_at`; `None` if it
    /// never started) and adding `usage` to its totals. Transitions outside [`SessionStatus::can_become`] —
    /// completing a session that never started, ending one twice — are `conflict` (invalid state).
    pub async fn finish(&self, ctx: &Ctx, id: SessionId, req: FinishSessionRequest) -> Result<Session> {
        validate_finish(&req)?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move { finish_in(uow, id, req, now, "session ended").await })
            })
            .await
    }

    /// Terminates a session from the REST API (`session#terminate`, spec §6.4): `finish` with outcome
    /// `terminated` and no usage.
    pub async fn terminate(&self, ctx: &Ctx, id: SessionId) -> Result<Session> {
        self.finish(
            ctx,
            id,
            FinishSessionRequest {
                outcome: SessionOutcome::Terminated,
                usage: Default::default(),
            },
        )
        .await
    }

    /// One session.
    pub async fn get(&self, ctx: &Ctx, id: SessionId) -> Result<Session> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.sessions().get(id).await?) })
            })
            .await
    }

    /// Sessions matching `filter` (status, project, API key, creation date range), newest first.
    pub async fn list(&self, ctx: &Ctx, filter: SessionFilter, page: PageRequest) -> Result<Page<Session>> {
        if let (Some(from), Some(to)) = (filter.created_from, filter.created_to)
            && from >= to
        {
            return Err(FieldErrors::single("created_to", "range", "must be after 'created_from'").into());
        }
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.sessions().list(&filter, page).await?) })
            })
            .await
    }

    /// Appends one event with the next sequence number. The session row is locked while the number is taken,
    /// so concurrent appends serialise: no duplicates, no gaps.
    ///
    /// Sessions in a final state accept no more transcript: appends are refused with `conflict` (invalid
    /// state), except `system` and `error` events within [`FINAL_EVENT_GRACE_SECONDS`] of `ended_at`, so the
    /// voice engine can log why it closed whether it ends the session before or after logging.
    ///
    /// Events are not audited: they are themselves an append-only log, arrive at conversation speed, and carry
    /// transcripts that do not belong in the audit trail.
    pub async fn append_event(
        &self,
        ctx: &Ctx,
        session: SessionId,
        req: AppendEventRequest,
    ) -> Result<SessionEvent> {
        let mut errors = FieldErrors::new();
        json_size(&mut errors, "content", &req.content, MAX_EVENT_CONTENT_BYTES);
        errors.into_result()?;
        let now = self.deps.clock.now();
        let id = SessionEventId::generate(self.deps.ids.as_ref());
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let locked = uow.sessions().lock(session).await?;
                    if locked.status.is_final() && !accepts_late_event(&locked, req.event_type, now) {
                        return Err(Error::InvalidState {
                            resource: SessionId::RESOURCE,
                            state: locked.status.to_string(),
                            action: "append events to",
                        });
                    }
                    let last = last_sequence(uow, session).await?;
                    let event = SessionEvent {
                        id,
                        session_id: session,
                        tenant_id: locked.tenant_id,
                        event_type: req.event_type,
                        content: req.content,
                        timestamp: now,
                        duration_ms: req.duration_ms,
                        sequence: last.saturating_add(1),
                        version: 0,
                    };
                    Ok(uow.session_events().insert(event).await?)
                })
            })
            .await
    }

    /// A session's events in sequence order (`not_found` when the session is not visible).
    pub async fn list_events(
        &self,
        ctx: &Ctx,
        session: SessionId,
        query: EventQuery,
        page: PageRequest,
    ) -> Result<Page<SessionEvent>> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move {
                    uow.sessions().get(session).await?;
                    let filter = SessionEventFilter {
                        session_id: Some(session),
                        event_type: query.event_type,
                        after_sequence: query.after_sequence,
                    };
                    Ok(uow.session_events().list(&filter, page).await?)
                })
            })
            .await
    }

    /// Spec §11.3 `cleanup_expired_sessions`, over the context's scope (a system context cleans every tenant).
    ///
    /// 1. `created`/`active` sessions whose last activity (creation, start or latest event) is older than
    ///    `stale_after_seconds` end as `error` with code [`EXPIRED_ERROR_CODE`]. The spec's task marks them
    ///    `terminated`; we keep `terminated` for sessions someone deliberately ended, so reports can tell
    ///    abandoned sessions apart. The spec looks at `created_at` only; an active conversation that is still
    ///    logging events is not expired.
    /// 2. With `retain_ended_seconds`, sessions in a final state that ended longer ago are deleted with their
    ///    events.
    ///
    /// Work is done in batches of 100 sessions, each one unit of work with its audit entries; a failure keeps
    /// earlier batches, and running the task again finishes the job.
    pub async fn cleanup_expired(&self, ctx: &Ctx, policy: CleanupPolicy) -> Result<CleanupReport> {
        let now = self.deps.clock.now();
        let mut errors = FieldErrors::new();
        let stale_before = threshold(
            &mut errors,
            "stale_after_seconds",
            now,
            Some(policy.stale_after_seconds),
        );
        let delete_before = threshold(
            &mut errors,
            "retain_ended_seconds",
            now,
            policy.retain_ended_seconds,
        );
        errors.into_result()?;
        let mut report = CleanupReport::default();
        if let Some(before) = stale_before {
            report.expired = self.expire_stale(ctx, before, now).await?;
        }
        if let Some(before) = delete_before {
            report.deleted = self.delete_ended(ctx, before).await?;
        }
        Ok(report)
    }

    async fn expire_stale(&self, ctx: &Ctx, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64> {
        let mut expired = 0;
        let mut kept = 0;
        loop {
            let (done, kept_now, listed) = self
                .deps
                .write(ctx, move |uow| {
                    Box::pin(async move {
                        let filter = SessionFilter {
                            status_in: Some(vec![SessionStatus::Created, SessionStatus::Active]),
                            created_to: Some(before),
                            ..Default::default()
                        };
                        let page = PageRequest::new(Some(CLEANUP_BATCH), Some(kept))?;
                        let candidates = uow.sessions().list(&filter, page).await?.items;
                        let listed = candidates.len();
                        let (mut done, mut kept_now) = (0u64, 0u64);
                        for session in candidates {
                            if last_activity(uow, &session).await? >= before {
                                kept_now += 1;
                                continue;
                            }
                            let outcome = SessionOutcome::Error {
                                code: EXPIRED_ERROR_CODE.into(),
                                message: "no activity before the expiry threshold".into(),
                            };
                            let req = FinishSessionRequest {
                                outcome,
                                usage: SessionUsage::default(),
                            };
                            finish_in(uow, session.id, req, now, "session expired by cleanup").await?;
                            done += 1;
                        }
                        Ok((done, kept_now, listed))
                    })
                })
                .await?;
            expired += done;
            kept += kept_now;
            if listed < CLEANUP_BATCH as usize {
                return Ok(expired);
            }
        }
    }

    async fn delete_ended(&self, ctx: &Ctx, before: DateTime<Utc>) -> Result<u64> {
        let mut deleted = 0;
        let mut kept = 0;
        loop {
            let (done, kept_now, listed) = self
                .deps
                .write(ctx, move |uow| {
                    Box::pin(async move {
                        // A session ends after it is created, so one created after `before` cannot qualify.
                        let filter = SessionFilter {
                            status_in: Some(vec![
                                SessionStatus::Completed,
                                SessionStatus::Error,
                                SessionStatus::Terminated,
                            ]),
                            created_to: Some(before),
                            ..Default::default()
                        };
                        let page = PageRequest::new(Some(CLEANUP_BATCH), Some(kept))?;
                        let candidates = uow.sessions().list(&filter, page).await?.items;
                        let listed = candidates.len();
                        let (mut done, mut kept_now) = (0u64, 0u64);
                        for session in candidates {
                            if session.ended_at.unwrap_or(session.updated_at) >= before {
                                kept_now += 1;
                                continue;
                            }
                            uow.sessions().delete(session.id).await?;
                            uow.append_audit(
                                NewAuditEntry::new(AuditAction::Delete, SessionId::RESOURCE, session.id)
                                    .description("ended session deleted by retention cleanup")
                                    .values(Some(snapshot(&session, &["config"])), None)
                                    .tenant(session.tenant_id),
                            )
                            .await?;
                            done += 1;
                        }
                        Ok((done, kept_now, listed))
                    })
                })
                .await?;
            deleted += done;
            kept += kept_now;
            if listed < CLEANUP_BATCH as usize {
                return Ok(deleted);
            }
        }
    }
}

/// `now - seconds`, or `None` when not asked for; pushes a field error for 0 or an out-of-range value.
fn threshold(
    errors: &mut FieldErrors,
    field: &str,
    now: DateTime<Utc>,
    seconds: Option<u64>,
) -> Option<DateTime<Utc>> {
    let seconds = seconds?;
    let at = i64::try_from(seconds)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|d| now.checked_sub_signed(d));
    if seconds == 0 || at.is_none() {
        errors.push(field, "range", "must be a positive number of seconds");
        return None;
    }
    at
}

fn json_size(errors: &mut FieldErrors, field: &str, value: &Value, max: usize) {
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > max {
        errors.push(
            field,
            "size",
            format!("must be at most {max} bytes when serialised"),
        );
    }
}

fn validate_finish(req: &FinishSessionRequest) -> Result<()> {
    let mut errors = FieldErrors::new();
    if let SessionOutcome::Error { code, message } = &req.outcome {
        validation::text(&mut errors, "outcome.code", code, 1, 50);
        validation::text(&mut errors, "outcome.message", message, 0, 2000);
    }
    let audio = req.usage.audio_seconds;
    if !audio.is_finite() || audio < 0.0 {
        errors.push("usage.audio_seconds", "range", "must be a finite number ≥ 0");
    }
    errors.into_result()?;
    Ok(())
}

fn check_transition(session: &Session, next: SessionStatus, action: &'static str) -> Result<()> {
    if session.status.can_become(next) {
        Ok(())
    } else {
        Err(Error::InvalidState {
            resource: SessionId::RESOURCE,
            state: session.status.to_string(),
            action,
        })
    }
}

fn accepts_late_event(session: &Session, kind: SessionEventType, now: DateTime<Utc>) -> bool {
    let closing_note = matches!(kind, SessionEventType::System | SessionEventType::Error);
    let within_grace = session
        .ended_at
        .and_then(|end| end.checked_add_signed(TimeDelta::seconds(FINAL_EVENT_GRACE_SECONDS)))
        .is_some_and(|limit| now <= limit);
    closing_note && within_grace
}

/// The session's highest event sequence (0 when it has none). Sequences have no gaps, so it is the count.
async fn last_sequence(uow: &mut dyn UnitOfWork, session: SessionId) -> Result<u64> {
    let filter = SessionEventFilter {
        session_id: Some(session),
        ..Default::default()
    };
    Ok(uow.session_events().count(&filter).await?)
}

/// The latest of creation, start and the latest event.
async fn last_activity(uow: &mut dyn UnitOfWork, session: &Session) -> Result<DateTime<Utc>> {
    let mut latest = session
        .started_at
        .map_or(session.created_at, |s| s.max(session.created_at));
    let last = last_sequence(uow, session.id).await?;
    if last > 0 {
        let filter = SessionEventFilter {
            session_id: Some(session.id),
            after_sequence: Some(last - 1),
            ..Default::default()
        };
        let page = PageRequest::new(Some(1), None)?;
        if let Some(event) = uow.session_events().list(&filter, page).await?.items.first() {
            latest = latest.max(event.timestamp);
        }
    }
    Ok(latest)
}

async fn finish_in(
    uow: &mut dyn UnitOfWork,
    id: SessionId,
    req: FinishSessionRequest,
    now: DateTime<Utc>,
    description: &str,
) -> Result<Session> {
    let old = uow.sessions().lock(id).await?;
    let next = req.outcome.status();
    check_transition(&old, next, "end")?;
    let mut session = old.clone();
    session.status = next;
    session.ended_at = Some(now);
    session.duration_seconds = session.started_at.map(|s| (now - s).as_seconds_f64().max(0.0));
    session.input_tokens = session.input_tokens.saturating_add(req.usage.input_tokens);
    session.output_tokens = session.output_tokens.saturating_add(req.usage.output_tokens);
    session.audio_duration_seconds += req.usage.audio_seconds;
    if let SessionOutcome::Error { code, message } = req.outcome {
        session.error_code = code;
        session.error_message = message;
    }
    session.updated_at = now;
    let stored = uow.sessions().update(session).await?;
    audit_transition(uow, &old, &stored, description).await?;
    Ok(stored)
}

async fn audit_transition(
    uow: &mut dyn UnitOfWork,
    old: &Session,
    new: &Session,
    description: &str,
) -> Result<()> {
    let view = |s: &Session| {
        json!({
            "status": s.status,
            "started_at": s.started_at,
            "ended_at": s.ended_at,
            "duration_seconds": s.duration_seconds,
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "audio_duration_seconds": s.audio_duration_seconds,
            "error_code": s.error_code,
        })
    };
    uow.append_audit(
        NewAuditEntry::new(AuditAction::Update, SessionId::RESOURCE, new.id)
            .description(description)
            .values(Some(view(old)), Some(view(new)))
            .tenant(new.tenant_id),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_requests_deserialise_from_the_wire_shape() {
        let req: FinishSessionRequest = serde_json::from_value(json!({
            "outcome": {"status": "error", "code": "llm_timeout", "message": "upstream timed out"},
            "usage": {"input_tokens": 10, "output_tokens": 20, "audio_seconds": 1.5}
        }))
        .unwrap();
        assert_eq!(
            req.outcome,
            SessionOutcome::Error {
                code: "llm_timeout".into(),
                message: "upstream timed out".into()
            }
        );
        assert_eq!(req.usage.output_tokens, 20);
        let req: FinishSessionRequest =
            serde_json::from_value(json!({"outcome": {"status": "completed"}})).unwrap();
        assert_eq!(req.usage, SessionUsage::default());
    }

    #[test]
    fn bad_outcomes_and_usage_are_all_reported() {
        let req = FinishSessionRequest {
            outcome: SessionOutcome::Error {
                code: String::new(),
                message: "x".repeat(2001),
            },
            usage: SessionUsage {
                audio_seconds: f64::NAN,
                ..Default::default()
            },
        };
        let Err(Error::Invalid(fields)) = validate_finish(&req) else {
            panic!("expected validation error")
        };
        let names: Vec<_> = fields.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["outcome.code", "outcome.message", "usage.audio_seconds"]);
    }

    #[test]
    fn thresholds_reject_zero_and_overflow() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut errors = FieldErrors::new();
        assert_eq!(threshold(&mut errors, "a", now, None), None);
        assert!(errors.is_empty());
        assert_eq!(
            threshold(&mut errors, "a", now, Some(60)),
            Some(now - TimeDelta::seconds(60))
        );
        assert_eq!(threshold(&mut errors, "b", now, Some(0)), None);
        assert_eq!(threshold(&mut errors, "c", now, Some(u64::MAX)), None);
        let names: Vec<_> = errors.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn oversized_json_is_reported() {
        let mut errors = FieldErrors::new();
        json_size(
            &mut errors,
            "config",
            &json!({"k": "x".repeat(MAX_CONFIG_BYTES)}),
            MAX_CONFIG_BYTES,
        );
        json_size(&mut errors, "ok", &json!({"k": "x"}), MAX_CONFIG_BYTES);
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "config");
    }
}
