//! How each record type maps to its table: columns, decoding, filter translation and listing order.
//!
//! Each filter field becomes one SQL condition with exactly the semantics of its `Filter::matches`:
//! case-insensitive `search` is `strpos(lower(column), lower($n)) > 0` (a substring test with no pattern
//! characters), exact names compare `lower(column) = lower($n)`, and the `ORDER BY` of each table is its
//! `Record::listing_order`.

use crate::sql::{Sql, get_enum, get_enums, get_json, get_opt_u32, get_u32, get_u64, int};
use avb_core::{ApiKeyScope, RateLimitTier, Result, Role};
use avb_tenancy::model::*;
use avb_tenancy::store::{
    AllRecords, ApiKeyFilter, NotificationFilter, PersonaFilter, ProjectFilter, Record, SessionEventFilter,
    SessionFilter, TenantFilter, ThemeFilter, UserFilter, WakeWordFilter,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

type Decoded<T> = std::result::Result<T, sqlx::Error>;

/// A record type stored in a table of its own.
pub(crate) trait Table: Record + Sized {
    /// Table name.
    const TABLE: &'static str;
    /// Primary-key column.
    const KEY: &'static str = "id";
    /// Column holding the owning tenant (`id` for tenants themselves).
    const TENANT: &'static str = "tenant_id";
    /// `ORDER BY` clause equal to [`Record::listing_order`].
    const ORDER: &'static str = "created_at DESC, id DESC";

    /// The raw UUID of an id.
    fn key(id: Self::Id) -> Uuid;

    /// Binds every column except `version`, returning `(column, placeholder)` pairs; the key column first.
    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>>;

    /// Reads a row of this table.
    fn decode(row: &PgRow) -> Decoded<Self>;

    /// Appends one ` AND …` condition per set filter field.
    fn filter(filter: &Self::Filter, sql: &mut Sql) -> Result<()>;
}

/// ` AND strpos(lower(a), lower($n)) > 0 OR …`: case-insensitive substring over any of `columns`.
fn search(sql: &mut Sql, columns: &[&str], needle: &str) -> Result<()> {
    let needle = sql.arg(needle.to_owned())?;
    let tests: Vec<String> = columns
        .iter()
        .map(|c| format!("strpos(lower({c}), lower({needle})) > 0"))
        .collect();
    sql.push(" AND (").push(&tests.join(" OR ")).push(")");
    Ok(())
}

/// ` AND column = $n`.
fn equals<'q, T>(sql: &mut Sql, column: &str, value: T) -> Result<()>
where
    T: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    sql.push(" AND ").push(column).push(" = ");
    sql.bind(value)?;
    Ok(())
}

/// ` AND lower(column) = lower($n)`.
fn equals_ci(sql: &mut Sql, column: &str, value: &str) -> Result<()> {
    sql.push(" AND lower(").push(column).push(") = lower(");
    sql.bind(value.to_owned())?;
    sql.push(")");
    Ok(())
}

macro_rules! columns {
    ($sql:ident; $($column:literal => $value:expr),* $(,)?) => {
        Ok(vec![$(($column, $sql.arg($value)?)),*])
    };
}

impl Table for Tenant {
    const TABLE: &'static str = "tenants";
    const TENANT: &'static str = "id";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "name" => self.name.clone(),
            "slug" => self.slug.clone(),
            "tier" => self.tier.as_str(),
            "status" => self.status.as_str(),
            "billing_id" => self.billing_id.clone(),
            "keycloak_group_id" => self.keycloak_group_id.clone(),
            "settings" => Json(&self.settings),
            "max_users" => i64::from(self.limits.max_users),
            "max_projects" => i64::from(self.limits.max_projects),
            "max_api_keys" => i64::from(self.limits.max_api_keys),
            "max_sessions_per_month" => i64::from(self.limits.max_sessions_per_month),
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
            "activated_at" => self.activated_at,
            "suspended_at" => self.suspended_at,
            "deleted_at" => self.deleted_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        Ok(Tenant {
            id: avb_core::TenantId(row.try_get("id")?),
            name: row.try_get("name")?,
            slug: row.try_get("slug")?,
            tier: get_enum(row, "tier", TenantTier::parse)?,
            status: get_enum(row, "status", TenantStatus::parse)?,
            billing_id: row.try_get("billing_id")?,
            keycloak_group_id: row.try_get("keycloak_group_id")?,
            settings: get_json(row, "settings")?,
            limits: TenantLimits {
                max_users: get_u32(row, "max_users")?,
                max_projects: get_u32(row, "max_projects")?,
                max_api_keys: get_u32(row, "max_api_keys")?,
                max_sessions_per_month: get_u32(row, "max_sessions_per_month")?,
            },
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            activated_at: row.try_get("activated_at")?,
            suspended_at: row.try_get("suspended_at")?,
            deleted_at: row.try_get("deleted_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &TenantFilter, sql: &mut Sql) -> Result<()> {
        if let Some(status) = f.status {
            equals(sql, "status", status.as_str())?;
        }
        if let Some(tier) = f.tier {
            equals(sql, "tier", tier.as_str())?;
        }
        if let Some(slug) = &f.slug {
            equals(sql, "slug", slug.clone())?;
        }
        if let Some(q) = &f.search {
            search(sql, &["name", "slug"], q)?;
        }
        Ok(())
    }
}

impl Table for TenantSettings {
    const TABLE: &'static str = "tenant_settings";
    const KEY: &'static str = "tenant_id";
    const ORDER: &'static str = "tenant_id";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "tenant_id" => self.tenant_id.0,
            "logo_url" => self.logo_url.clone(),
            "primary_color" => self.primary_color.clone(),
            "default_voice_provider" => self.default_voice_provider.as_str(),
            "default_stt_model" => self.default_stt_model.clone(),
            "default_tts_voice" => self.default_tts_voice.clone(),
            "default_llm_provider" => self.default_llm_provider.clone(),
            "default_llm_model" => self.default_llm_model.clone(),
            "email_notifications_enabled" => self.email_notifications_enabled,
            "webhook_url" => self.webhook_url.clone(),
            "allowed_ip_ranges" => self.allowed_ip_ranges.clone(),
            "require_mfa" => self.require_mfa,
            "session_timeout_minutes" => i64::from(self.session_timeout_minutes),
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        Ok(TenantSettings {
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            logo_url: row.try_get("logo_url")?,
            primary_color: row.try_get("primary_color")?,
            default_voice_provider: get_enum(row, "default_voice_provider", VoiceProvider::parse)?,
            default_stt_model: row.try_get("default_stt_model")?,
            default_tts_voice: row.try_get("default_tts_voice")?,
            default_llm_provider: row.try_get("default_llm_provider")?,
            default_llm_model: row.try_get("default_llm_model")?,
            email_notifications_enabled: row.try_get("email_notifications_enabled")?,
            webhook_url: row.try_get("webhook_url")?,
            allowed_ip_ranges: row.try_get("allowed_ip_ranges")?,
            require_mfa: row.try_get("require_mfa")?,
            session_timeout_minutes: get_u32(row, "session_timeout_minutes")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(_: &AllRecords, _: &mut Sql) -> Result<()> {
        Ok(())
    }
}

impl Table for User {
    const TABLE: &'static str = "users";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        let roles: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.map(|x| x.0),
            "keycloak_id" => self.keycloak_id.clone(),
            "email" => self.email.clone(),
            "first_name" => self.first_name.clone(),
            "last_name" => self.last_name.clone(),
            "roles" => roles,
            "is_active" => self.is_active,
            "is_staff" => self.is_staff,
            "date_joined" => self.date_joined,
            "last_login" => self.last_login,
            "preferences" => Json(&self.preferences),
            "profile" => Json(&self.profile),
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        let tenant: Option<Uuid> = row.try_get("tenant_id")?;
        Ok(User {
            id: avb_core::UserId(row.try_get("id")?),
            tenant_id: tenant.map(avb_core::TenantId),
            keycloak_id: row.try_get("keycloak_id")?,
            email: row.try_get("email")?,
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            roles: get_enums(row, "roles", Role::parse)?,
            is_active: row.try_get("is_active")?,
            is_staff: row.try_get("is_staff")?,
            date_joined: row.try_get("date_joined")?,
            last_login: row.try_get("last_login")?,
            preferences: get_json(row, "preferences")?,
            profile: get_json(row, "profile")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &UserFilter, sql: &mut Sql) -> Result<()> {
        if let Some(email) = &f.email {
            equals(sql, "email", email.to_lowercase())?;
        }
        if let Some(subject) = &f.keycloak_id {
            equals(sql, "keycloak_id", subject.clone())?;
        }
        if let Some(active) = f.is_active {
            equals(sql, "is_active", active)?;
        }
        if let Some(role) = f.role {
            let role = sql.arg(role.as_str())?;
            sql.push(&format!(" AND {role} = ANY(roles)"));
        }
        if let Some(q) = &f.search {
            search(sql, &["email", "first_name", "last_name"], q)?;
        }
        Ok(())
    }
}

impl Table for Project {
    const TABLE: &'static str = "projects";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "name" => self.name.clone(),
            "description" => self.description.clone(),
            "settings" => Json(&self.settings),
            "created_by" => self.created_by.map(|x| x.0),
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        let created_by: Option<Uuid> = row.try_get("created_by")?;
        Ok(Project {
            id: avb_core::ProjectId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            settings: get_json(row, "settings")?,
            created_by: created_by.map(avb_core::UserId),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &ProjectFilter, sql: &mut Sql) -> Result<()> {
        if let Some(name) = &f.name {
            equals_ci(sql, "name", name)?;
        }
        if let Some(q) = &f.search {
            search(sql, &["name", "description"], q)?;
        }
        Ok(())
    }
}

impl Table for ApiKey {
    const TABLE: &'static str = "api_keys";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        let scopes: Vec<&str> = self.scopes.iter().map(|s| s.as_str()).collect();
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "name" => self.name.clone(),
            "description" => self.description.clone(),
            "key_prefix" => self.key_prefix.clone(),
            "key_hash" => self.key_hash.clone(),
            "created_by" => self.created_by.map(|x| x.0),
            "project_id" => self.project_id.map(|x| x.0),
            "scopes" => scopes,
            "rate_limit_tier" => self.rate_limit_tier.as_str(),
            "expires_at" => self.expires_at,
            "revoked_at" => self.revoked_at,
            "revoked_by" => self.revoked_by.map(|x| x.0),
            "last_used_at" => self.last_used_at,
            "last_used_ip" => self.last_used_ip,
            "usage_count" => int("usage_count", self.usage_count)?,
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        let created_by: Option<Uuid> = row.try_get("created_by")?;
        let project: Option<Uuid> = row.try_get("project_id")?;
        let revoked_by: Option<Uuid> = row.try_get("revoked_by")?;
        Ok(ApiKey {
            id: avb_core::ApiKeyId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            key_prefix: row.try_get("key_prefix")?,
            key_hash: row.try_get("key_hash")?,
            created_by: created_by.map(avb_core::UserId),
            project_id: project.map(avb_core::ProjectId),
            scopes: get_enums(row, "scopes", ApiKeyScope::parse)?,
            rate_limit_tier: get_enum(row, "rate_limit_tier", RateLimitTier::parse)?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
            revoked_by: revoked_by.map(avb_core::UserId),
            last_used_at: row.try_get("last_used_at")?,
            last_used_ip: row.try_get("last_used_ip")?,
            usage_count: get_u64(row, "usage_count")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &ApiKeyFilter, sql: &mut Sql) -> Result<()> {
        if let Some(prefix) = &f.prefix {
            equals(sql, "key_prefix", prefix.clone())?;
        }
        if let Some(project) = f.project_id {
            equals(sql, "project_id", project.0)?;
        }
        match f.revoked {
            Some(true) => {
                sql.push(" AND revoked_at IS NOT NULL");
            }
            Some(false) => {
                sql.push(" AND revoked_at IS NULL");
            }
            None => {}
        }
        if let Some(user) = f.created_by {
            equals(sql, "created_by", user.0)?;
        }
        Ok(())
    }
}

impl Table for Session {
    const TABLE: &'static str = "sessions";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "project_id" => self.project_id.map(|x| x.0),
            "api_key_id" => self.api_key_id.map(|x| x.0),
            "user_id" => self.user_id.map(|x| x.0),
            "status" => self.status.as_str(),
            "config" => Json(&self.config),
            "started_at" => self.started_at,
            "ended_at" => self.ended_at,
            "duration_seconds" => self.duration_seconds,
            "input_tokens" => int("input_tokens", self.input_tokens)?,
            "output_tokens" => int("output_tokens", self.output_tokens)?,
            "audio_duration_seconds" => self.audio_duration_seconds,
            "error_code" => self.error_code.clone(),
            "error_message" => self.error_message.clone(),
            "client_ip" => self.client_ip,
            "user_agent" => self.user_agent.clone(),
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        let project: Option<Uuid> = row.try_get("project_id")?;
        let api_key: Option<Uuid> = row.try_get("api_key_id")?;
        let user: Option<Uuid> = row.try_get("user_id")?;
        Ok(Session {
            id: avb_core::SessionId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            project_id: project.map(avb_core::ProjectId),
            api_key_id: api_key.map(avb_core::ApiKeyId),
            user_id: user.map(avb_core::UserId),
            status: get_enum(row, "status", SessionStatus::parse)?,
            config: get_json(row, "config")?,
            started_at: row.try_get("started_at")?,
            ended_at: row.try_get("ended_at")?,
            duration_seconds: row.try_get("duration_seconds")?,
            input_tokens: get_u64(row, "input_tokens")?,
            output_tokens: get_u64(row, "output_tokens")?,
            audio_duration_seconds: row.try_get("audio_duration_seconds")?,
            error_code: row.try_get("error_code")?,
            error_message: row.try_get("error_message")?,
            client_ip: row.try_get("client_ip")?,
            user_agent: row.try_get("user_agent")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &SessionFilter, sql: &mut Sql) -> Result<()> {
        if let Some(status) = f.status {
            equals(sql, "status", status.as_str())?;
        }
        if let Some(statuses) = &f.status_in {
            let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            let names = sql.arg(names)?;
            sql.push(&format!(" AND status = ANY({names})"));
        }
        if let Some(project) = f.project_id {
            equals(sql, "project_id", project.0)?;
        }
        if let Some(key) = f.api_key_id {
            equals(sql, "api_key_id", key.0)?;
        }
        if let Some(from) = f.created_from {
            sql.push(" AND created_at >= ");
            sql.bind(from)?;
        }
        if let Some(to) = f.created_to {
            sql.push(" AND created_at < ");
            sql.bind(to)?;
        }
        Ok(())
    }
}

impl Table for SessionEvent {
    const TABLE: &'static str = "session_events";
    const ORDER: &'static str = "session_id, sequence, id";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "session_id" => self.session_id.0,
            "tenant_id" => self.tenant_id.0,
            "event_type" => self.event_type.as_str(),
            "content" => Json(&self.content),
            "\"timestamp\"" => self.timestamp,
            "duration_ms" => self.duration_ms.map(i64::from),
            "sequence" => int("sequence", self.sequence)?,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        Ok(SessionEvent {
            id: avb_core::SessionEventId(row.try_get("id")?),
            session_id: avb_core::SessionId(row.try_get("session_id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            event_type: get_enum(row, "event_type", SessionEventType::parse)?,
            content: get_json(row, "content")?,
            timestamp: row.try_get("timestamp")?,
            duration_ms: get_opt_u32(row, "duration_ms")?,
            sequence: get_u64(row, "sequence")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &SessionEventFilter, sql: &mut Sql) -> Result<()> {
        if let Some(session) = f.session_id {
            equals(sql, "session_id", session.0)?;
        }
        if let Some(kind) = f.event_type {
            equals(sql, "event_type", kind.as_str())?;
        }
        if let Some(after) = f.after_sequence {
            // Sequences are stored as bigint; anything above i64::MAX matches nothing.
            match i64::try_from(after) {
                Ok(after) => {
                    sql.push(" AND sequence > ");
                    sql.bind(after)?;
                }
                Err(_) => {
                    sql.push(" AND FALSE");
                }
            }
        }
        Ok(())
    }
}

impl Table for VoiceConfig {
    const TABLE: &'static str = "voice_configs";
    const ORDER: &'static str = "tenant_id, id";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "stt_model" => self.stt_model.clone(),
            "tts_voice" => self.tts_voice.clone(),
            "tts_speed" => self.tts_speed,
            "llm_provider" => self.llm_provider.clone(),
            "llm_model" => self.llm_model.clone(),
            "instructions" => self.instructions.clone(),
            "language" => self.language.clone(),
            "temperature" => self.temperature,
            "max_response_tokens" => i64::from(self.max_response_tokens),
            "vad_threshold" => self.vad_threshold,
            "silence_duration_ms" => i64::from(self.silence_duration_ms),
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        Ok(VoiceConfig {
            id: avb_core::VoiceConfigId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            stt_model: row.try_get("stt_model")?,
            tts_voice: row.try_get("tts_voice")?,
            tts_speed: row.try_get("tts_speed")?,
            llm_provider: row.try_get("llm_provider")?,
            llm_model: row.try_get("llm_model")?,
            instructions: row.try_get("instructions")?,
            language: row.try_get("language")?,
            temperature: row.try_get("temperature")?,
            max_response_tokens: get_u32(row, "max_response_tokens")?,
            vad_threshold: row.try_get("vad_threshold")?,
            silence_duration_ms: get_u32(row, "silence_duration_ms")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(_: &AllRecords, _: &mut Sql) -> Result<()> {
        Ok(())
    }
}

impl Table for Persona {
    const TABLE: &'static str = "personas";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "name" => self.name.clone(),
            "description" => self.description.clone(),
            "instructions" => self.instructions.clone(),
            "voice" => self.voice.clone(),
            "language" => self.language.clone(),
            "temperature" => self.temperature,
            "owner_id" => self.owner_id.map(|x| x.0),
            "is_active" => self.is_active,
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        let owner: Option<Uuid> = row.try_get("owner_id")?;
        Ok(Persona {
            id: avb_core::PersonaId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            instructions: row.try_get("instructions")?,
            voice: row.try_get("voice")?,
            language: row.try_get("language")?,
            temperature: row.try_get("temperature")?,
            owner_id: owner.map(avb_core::UserId),
            is_active: row.try_get("is_active")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &PersonaFilter, sql: &mut Sql) -> Result<()> {
        if let Some(name) = &f.name {
            equals_ci(sql, "name", name)?;
        }
        if let Some(active) = f.is_active {
            equals(sql, "is_active", active)?;
        }
        Ok(())
    }
}

impl Table for WakeWord {
    const TABLE: &'static str = "wake_words";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "phrase" => self.phrase.clone(),
            "sensitivity" => self.sensitivity,
            "is_active" => self.is_active,
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        Ok(WakeWord {
            id: avb_core::WakeWordId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            phrase: row.try_get("phrase")?,
            sensitivity: row.try_get("sensitivity")?,
            is_active: row.try_get("is_active")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &WakeWordFilter, sql: &mut Sql) -> Result<()> {
        if let Some(active) = f.is_active {
            equals(sql, "is_active", active)?;
        }
        Ok(())
    }
}

impl Table for Theme {
    const TABLE: &'static str = "themes";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "name" => self.name.clone(),
            "description" => self.description.clone(),
            "owner_id" => self.owner_id.map(|x| x.0),
            "is_public" => self.is_public,
            "text_color" => self.text_color.clone(),
            "background_color" => self.background_color.clone(),
            "primary_color" => self.primary_color.clone(),
            "variables" => Json(&self.variables),
            "created_at" => self.created_at,
            "updated_at" => self.updated_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        let owner: Option<Uuid> = row.try_get("owner_id")?;
        Ok(Theme {
            id: avb_core::ThemeId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            owner_id: owner.map(avb_core::UserId),
            is_public: row.try_get("is_public")?,
            text_color: row.try_get("text_color")?,
            background_color: row.try_get("background_color")?,
            primary_color: row.try_get("primary_color")?,
            variables: get_json(row, "variables")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &ThemeFilter, sql: &mut Sql) -> Result<()> {
        if let Some(owner) = f.owner_id {
            equals(sql, "owner_id", owner.0)?;
        }
        if let Some(public) = f.is_public {
            equals(sql, "is_public", public)?;
        }
        Ok(())
    }
}

impl Table for Notification {
    const TABLE: &'static str = "notifications";

    fn key(id: Self::Id) -> Uuid {
        id.0
    }

    fn bind(&self, sql: &mut Sql) -> Result<Vec<(&'static str, String)>> {
        columns!(sql;
            "id" => self.id.0,
            "tenant_id" => self.tenant_id.0,
            "user_id" => self.user_id.0,
            "category" => self.category.clone(),
            "title" => self.title.clone(),
            "body" => self.body.clone(),
            "data" => Json(&self.data),
            "read_at" => self.read_at,
            "created_at" => self.created_at,
        )
    }

    fn decode(row: &PgRow) -> Decoded<Self> {
        Ok(Notification {
            id: avb_core::NotificationId(row.try_get("id")?),
            tenant_id: avb_core::TenantId(row.try_get("tenant_id")?),
            user_id: avb_core::UserId(row.try_get("user_id")?),
            category: row.try_get("category")?,
            title: row.try_get("title")?,
            body: row.try_get("body")?,
            data: get_json(row, "data")?,
            read_at: row.try_get("read_at")?,
            created_at: row.try_get("created_at")?,
            version: get_u64(row, "version")?,
        })
    }

    fn filter(f: &NotificationFilter, sql: &mut Sql) -> Result<()> {
        if let Some(user) = f.user_id {
            equals(sql, "user_id", user.0)?;
        }
        if f.unread_only == Some(true) {
            sql.push(" AND read_at IS NULL");
        }
        if let Some(category) = &f.category {
            equals(sql, "category", category.clone())?;
        }
        Ok(())
    }
}
