//! Storage ports of the tenancy domain: one generic [`Repo`] per record type, opened inside a [`UnitOfWork`].
//!
//! Every write a service makes goes through a unit of work together with its audit record and any follow-up
//! jobs (outbox); `commit` makes all of it durable at once, and dropping the unit of work (or `rollback`)
//! discards all of it. The Postgres adapter maps a unit of work to one SQL transaction (with
//! `SET LOCAL` tenant scoping for row-level security); the memory adapter to a serialised copy-on-write
//! snapshot. Both run the same conformance suite (`conformance` feature).

use crate::model::*;
use async_trait::async_trait;
use avb_core::audit::{AuditEntry, NewAuditEntry};
use avb_core::jobs::NewJob;
use avb_core::{Ctx, JobId, Page, PageRequest, Result, TenantId, UserId};
use chrono::{DateTime, Utc};
use std::cmp::Ordering;
use std::fmt::{Debug, Display};
use std::hash::Hash;

/// A uniqueness rule value. Two records of one type with an equal `(name, value)` cannot both exist,
/// whichever tenants they belong to (per-tenant rules put the tenant id into `value`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueKey {
    /// Rule name (`"slug"`, `"email"`, `"tenant_name"`).
    pub name: &'static str,
    /// Normalised value.
    pub value: String,
}

/// A foreign key: the record refers to `id` of `resource`, which must exist (within the same tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// Referenced resource type (`"project"`).
    pub resource: &'static str,
    /// Referenced id.
    pub id: uuid::Uuid,
}

/// A stored record type.
pub trait Record: Clone + Send + Sync + Debug + 'static {
    /// Typed id.
    type Id: Copy + Eq + Ord + Hash + Display + Debug + Send + Sync + 'static;
    /// List filter.
    type Filter: Filter<Self>;
    /// Resource type name (errors, audit, permissions).
    const RESOURCE: &'static str;

    /// Id.
    fn id(&self) -> Self::Id;
    /// Raw UUID of the id.
    fn uuid(&self) -> uuid::Uuid;
    /// Owning tenant; `None` for platform-level rows, visible only in the all-tenants scope.
    /// A tenant row belongs to itself.
    fn tenant_id(&self) -> Option<TenantId>;
    /// Optimistic version.
    fn version(&self) -> u64;
    /// Sets the version (stores only).
    fn set_version(&mut self, version: u64);
    /// Uniqueness rules this record takes part in.
    fn unique_keys(&self) -> Vec<UniqueKey>;
    /// Foreign keys that must exist.
    fn references(&self) -> Vec<Reference>;
    /// Listing order: `Less` means `a` is listed before `b`. Ties are broken by id so order is total.
    fn listing_order(a: &Self, b: &Self) -> Ordering;
}

/// A list filter; `Default` matches everything.
pub trait Filter<R>: Default + Clone + Send + Sync + Debug + 'static {
    /// True when `record` passes (used by in-memory adapters; SQL adapters translate each field).
    fn matches(&self, record: &R) -> bool;

    /// A unique-key rule and a value prefix that every matching record's key of that rule starts with, when the
    /// filter implies one: lets an in-memory adapter walk that part of its unique index instead of every row
    /// (a session's events among all sessions' events). Only a hint: records must still pass [`Self::matches`].
    fn unique_prefix(&self) -> Option<(&'static str, String)> {
        None
    }
}

/// Case-insensitive substring test used by `search` filters (SQL: `ILIKE '%' || $1 || '%'`).
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn newest_first<I: Ord>(a: (DateTime<Utc>, I), b: (DateTime<Utc>, I)) -> Ordering {
    b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1))
}

macro_rules! record {
    ($ty:ty, $id:ty, $filter:ty, $resource:literal, tenant = |$t:ident| $tenant:expr,
     unique = |$u:ident| $unique:expr, refs = |$r:ident| $refs:expr, order = |$a:ident, $b:ident| $order:expr) => {
        impl Record for $ty {
            type Id = $id;
            type Filter = $filter;
            const RESOURCE: &'static str = $resource;
            fn id(&self) -> $id {
                self.id
            }
            fn uuid(&self) -> uuid::Uuid {
                self.id.0
            }
            fn tenant_id(&self) -> Option<TenantId> {
                let $t = self;
                $tenant
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn set_version(&mut self, version: u64) {
                self.version = version;
            }
            fn unique_keys(&self) -> Vec<UniqueKey> {
                let $u = self;
                $unique
            }
            fn references(&self) -> Vec<Reference> {
                let $r = self;
                $refs
            }
            fn listing_order($a: &Self, $b: &Self) -> Ordering {
                $order
            }
        }
    };
}

fn key(name: &'static str, value: impl Into<String>) -> UniqueKey {
    UniqueKey {
        name,
        value: value.into(),
    }
}

fn tenant_key(name: &'static str, tenant: TenantId, value: &str) -> UniqueKey {
    UniqueKey {
        name,
        value: format!("{tenant}:{}", value.to_lowercase()),
    }
}

fn refer(resource: &'static str, id: Option<uuid::Uuid>) -> Option<Reference> {
    id.map(|id| Reference { resource, id })
}

// ---------------------------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------------------------

/// Tenant list filter (spec §7.4 `list_tenants`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantFilter {
    /// Only this status.
    pub status: Option<TenantStatus>,
    /// Only this tier.
    pub tier: Option<TenantTier>,
    /// Name or slug contains (case-insensitive).
    pub search: Option<String>,
    /// Exact slug.
    pub slug: Option<String>,
}

impl Filter<Tenant> for TenantFilter {
    fn matches(&self, t: &Tenant) -> bool {
        self.status.is_none_or(|s| t.status == s)
            && self.tier.is_none_or(|x| t.tier == x)
            && self.slug.as_deref().is_none_or(|s| t.slug == s)
            && self
                .search
                .as_deref()
                .is_none_or(|q| contains_ci(&t.name, q) || contains_ci(&t.slug, q))
    }
}

record!(
    Tenant,
    TenantId,
    TenantFilter,
    "tenant",
    tenant = |t| Some(t.id),
    unique = |t| vec![key("slug", t.slug.clone())],
    refs = |_t| Vec::new(),
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// Settings have no filter beyond the scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllRecords;

impl<R> Filter<R> for AllRecords {
    fn matches(&self, _: &R) -> bool {
        true
    }
}

impl Record for TenantSettings {
    type Id = TenantId;
    type Filter = AllRecords;
    const RESOURCE: &'static str = "tenant_settings";
    fn id(&self) -> TenantId {
        self.tenant_id
    }
    fn uuid(&self) -> uuid::Uuid {
        self.tenant_id.0
    }
    fn tenant_id(&self) -> Option<TenantId> {
        Some(self.tenant_id)
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn set_version(&mut self, version: u64) {
        self.version = version;
    }
    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            resource: "tenant",
            id: self.tenant_id.0,
        }]
    }
    fn listing_order(a: &Self, b: &Self) -> Ordering {
        a.tenant_id.cmp(&b.tenant_id)
    }
}

/// User list filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFilter {
    /// Exact e-mail (compared lower-case).
    pub email: Option<String>,
    /// Exact Keycloak subject.
    pub keycloak_id: Option<String>,
    /// Active or not.
    pub is_active: Option<bool>,
    /// Has this role.
    pub role: Option<avb_core::Role>,
    /// E-mail or name contains.
    pub search: Option<String>,
}

impl Filter<User> for UserFilter {
    fn matches(&self, u: &User) -> bool {
        self.email.as_deref().is_none_or(|e| u.email == e.to_lowercase())
            && self
                .keycloak_id
                .as_deref()
                .is_none_or(|k| u.keycloak_id.as_deref() == Some(k))
            && self.is_active.is_none_or(|a| u.is_active == a)
            && self.role.is_none_or(|r| u.roles.contains(&r))
            && self.search.as_deref().is_none_or(|q| {
                contains_ci(&u.email, q) || contains_ci(&u.first_name, q) || contains_ci(&u.last_name, q)
            })
    }
}

record!(
    User,
    UserId,
    UserFilter,
    "user",
    tenant = |u| u.tenant_id,
    unique = |u| {
        let mut keys = vec![key("email", u.email.to_lowercase())];
        if let Some(k) = &u.keycloak_id {
            keys.push(key("keycloak_id", k.clone()));
        }
        keys
    },
    refs = |u| refer("tenant", u.tenant_id.map(|t| t.0)).into_iter().collect(),
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// Project list filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectFilter {
    /// Exact name (case-insensitive).
    pub name: Option<String>,
    /// Name or description contains.
    pub search: Option<String>,
}

impl Filter<Project> for ProjectFilter {
    fn matches(&self, p: &Project) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| p.name.to_lowercase() == n.to_lowercase())
            && self
                .search
                .as_deref()
                .is_none_or(|q| contains_ci(&p.name, q) || contains_ci(&p.description, q))
    }
}

record!(
    Project,
    avb_core::ProjectId,
    ProjectFilter,
    "project",
    tenant = |p| Some(p.tenant_id),
    unique = |p| vec![tenant_key("tenant_project_name", p.tenant_id, &p.name)],
    refs = |p| vec![Reference {
        resource: "tenant",
        id: p.tenant_id.0
    }],
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// API key list filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiKeyFilter {
    /// Exact 12-character prefix (authentication lookup).
    pub prefix: Option<String>,
    /// Bound to this project.
    pub project_id: Option<avb_core::ProjectId>,
    /// `Some(false)`: only keys never revoked (what counts against `max_api_keys`); `Some(true)`: only revoked.
    pub revoked: Option<bool>,
    /// Created by this user.
    pub created_by: Option<UserId>,
}

impl Filter<ApiKey> for ApiKeyFilter {
    fn matches(&self, k: &ApiKey) -> bool {
        self.prefix.as_deref().is_none_or(|p| k.key_prefix == p)
            && self.project_id.is_none_or(|p| k.project_id == Some(p))
            && self.revoked.is_none_or(|r| k.revoked_at.is_some() == r)
            && self.created_by.is_none_or(|u| k.created_by == Some(u))
    }
}

record!(
    ApiKey,
    avb_core::ApiKeyId,
    ApiKeyFilter,
    "api_key",
    tenant = |k| Some(k.tenant_id),
    unique = |k| vec![key("key_hash", k.key_hash.clone())],
    refs = |k| {
        let mut refs = vec![Reference {
            resource: "tenant",
            id: k.tenant_id.0,
        }];
        refs.extend(refer("project", k.project_id.map(|p| p.0)));
        refs
    },
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// Session list filter (REST: status/project/date filters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFilter {
    /// Only this status.
    pub status: Option<SessionStatus>,
    /// Only these statuses (e.g. the non-final ones for concurrency caps).
    pub status_in: Option<Vec<SessionStatus>>,
    /// Only this project.
    pub project_id: Option<avb_core::ProjectId>,
    /// Only this API key.
    pub api_key_id: Option<avb_core::ApiKeyId>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
}

impl Filter<Session> for SessionFilter {
    fn matches(&self, s: &Session) -> bool {
        self.status.is_none_or(|x| s.status == x)
            && self.status_in.as_ref().is_none_or(|xs| xs.contains(&s.status))
            && self.project_id.is_none_or(|p| s.project_id == Some(p))
            && self.api_key_id.is_none_or(|k| s.api_key_id == Some(k))
            && self.created_from.is_none_or(|f| s.created_at >= f)
            && self.created_to.is_none_or(|t| s.created_at < t)
    }
}

record!(
    Session,
    avb_core::SessionId,
    SessionFilter,
    "session",
    tenant = |s| Some(s.tenant_id),
    unique = |_s| Vec::new(),
    refs = |s| {
        let mut refs = vec![Reference {
            resource: "tenant",
            id: s.tenant_id.0,
        }];
        refs.extend(refer("project", s.project_id.map(|p| p.0)));
        refs.extend(refer("api_key", s.api_key_id.map(|k| k.0)));
        refs
    },
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// Session event filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionEventFilter {
    /// Only this session.
    pub session_id: Option<avb_core::SessionId>,
    /// Only this type.
    pub event_type: Option<SessionEventType>,
    /// Only events with a sequence greater than this.
    pub after_sequence: Option<u64>,
}

impl Filter<SessionEvent> for SessionEventFilter {
    fn matches(&self, e: &SessionEvent) -> bool {
        self.session_id.is_none_or(|s| e.session_id == s)
            && self.event_type.is_none_or(|t| e.event_type == t)
            && self.after_sequence.is_none_or(|n| e.sequence > n)
    }

    fn unique_prefix(&self) -> Option<(&'static str, String)> {
        // Every event of a session has the key `session_sequence` = "{session}:{sequence}" (see below).
        self.session_id
            .map(|session| (SESSION_SEQUENCE_KEY, format!("{session}:")))
    }
}

/// The unique-key rule of session events: one event per (session, sequence).
const SESSION_SEQUENCE_KEY: &str = "session_sequence";

record!(
    SessionEvent,
    avb_core::SessionEventId,
    SessionEventFilter,
    "session_event",
    tenant = |e| Some(e.tenant_id),
    unique = |e| vec![key(
        SESSION_SEQUENCE_KEY,
        format!("{}:{}", e.session_id, e.sequence)
    )],
    refs = |e| vec![Reference {
        resource: "session",
        id: e.session_id.0
    }],
    order = |a, b| a
        .session_id
        .cmp(&b.session_id)
        .then(a.sequence.cmp(&b.sequence))
        .then(a.id.cmp(&b.id))
);

record!(
    VoiceConfig,
    avb_core::VoiceConfigId,
    AllRecords,
    "voice_config",
    tenant = |v| Some(v.tenant_id),
    unique = |v| vec![key("voice_config_tenant", v.tenant_id.to_string())],
    refs = |v| vec![Reference {
        resource: "tenant",
        id: v.tenant_id.0
    }],
    order = |a, b| a.tenant_id.cmp(&b.tenant_id).then(a.id.cmp(&b.id))
);

/// Persona filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonaFilter {
    /// Exact name (case-insensitive).
    pub name: Option<String>,
    /// Active or not.
    pub is_active: Option<bool>,
}

impl Filter<Persona> for PersonaFilter {
    fn matches(&self, p: &Persona) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| p.name.to_lowercase() == n.to_lowercase())
            && self.is_active.is_none_or(|a| p.is_active == a)
    }
}

record!(
    Persona,
    avb_core::PersonaId,
    PersonaFilter,
    "persona",
    tenant = |p| Some(p.tenant_id),
    unique = |p| vec![tenant_key("tenant_persona_name", p.tenant_id, &p.name)],
    refs = |p| vec![Reference {
        resource: "tenant",
        id: p.tenant_id.0
    }],
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// Wake word filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WakeWordFilter {
    /// Active or not.
    pub is_active: Option<bool>,
}

impl Filter<WakeWord> for WakeWordFilter {
    fn matches(&self, w: &WakeWord) -> bool {
        self.is_active.is_none_or(|a| w.is_active == a)
    }
}

record!(
    WakeWord,
    avb_core::WakeWordId,
    WakeWordFilter,
    "wake_word",
    tenant = |w| Some(w.tenant_id),
    unique = |w| vec![tenant_key("tenant_wake_word", w.tenant_id, &w.phrase)],
    refs = |w| vec![Reference {
        resource: "tenant",
        id: w.tenant_id.0
    }],
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// Theme filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThemeFilter {
    /// Owned by.
    pub owner_id: Option<UserId>,
    /// Public or not.
    pub is_public: Option<bool>,
}

impl Filter<Theme> for ThemeFilter {
    fn matches(&self, t: &Theme) -> bool {
        self.owner_id.is_none_or(|o| t.owner_id == Some(o)) && self.is_public.is_none_or(|p| t.is_public == p)
    }
}

record!(
    Theme,
    avb_core::ThemeId,
    ThemeFilter,
    "theme",
    tenant = |t| Some(t.tenant_id),
    unique = |t| vec![tenant_key("tenant_theme_name", t.tenant_id, &t.name)],
    refs = |t| vec![Reference {
        resource: "tenant",
        id: t.tenant_id.0
    }],
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

/// Notification filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationFilter {
    /// Recipient.
    pub user_id: Option<UserId>,
    /// `Some(true)`: only unread.
    pub unread_only: Option<bool>,
    /// Category.
    pub category: Option<String>,
}

impl Filter<Notification> for NotificationFilter {
    fn matches(&self, n: &Notification) -> bool {
        self.user_id.is_none_or(|u| n.user_id == u)
            && self.unread_only.is_none_or(|only| !only || n.read_at.is_none())
            && self.category.as_deref().is_none_or(|c| n.category == c)
    }
}

record!(
    Notification,
    avb_core::NotificationId,
    NotificationFilter,
    "notification",
    tenant = |n| Some(n.tenant_id),
    unique = |_n| Vec::new(),
    refs = |n| vec![Reference {
        resource: "user",
        id: n.user_id.0
    }],
    order = |a, b| newest_first((a.created_at, a.id), (b.created_at, b.id))
);

// ---------------------------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------------------------

/// Access to one record type inside a unit of work.
///
/// # Contract
/// - Scope: only records whose tenant the unit of work's [`avb_core::StorageScope`] allows are visible; others
///   behave exactly as if absent (`get` → `not_found`, never in `list`/`count`). Platform-level records
///   (`tenant_id() == None`) are visible only in the all-tenants scope.
/// - `insert` stores the record with `version = 1` and returns it; it fails with `conflict` when a
///   [`UniqueKey`] collides with any stored record (of any tenant), with `not_found` when a [`Reference`] does not
///   exist in the same tenant, and with `not_found` when the record's tenant is outside the scope. On failure
///   nothing is written.
/// - `update` replaces the record only if `record.version()` equals the stored version (else `conflict` with
///   the current version in details) and the unique keys still hold; it returns the stored record with
///   `version + 1`. Id and tenant cannot change (`validation_error`).
/// - `delete` removes the record (`not_found` if absent). Deleting a project removes its API keys and detaches
///   its sessions (`project_id = None`); deleting a session removes its events; deleting a user removes their
///   notifications. Other records that are still referenced cannot be deleted (`conflict`).
/// - `lock` is `get` that also holds the record against concurrent units of work until this one ends (SQL
///   `SELECT … FOR UPDATE`): two units of work that lock the same tenant serialise, which makes
///   check-then-insert quota rules safe.
/// - `list` returns the matches of `filter` in [`Record::listing_order`], paginated, with the total count;
///   `count` returns that total.
/// - Reads see this unit of work's own earlier writes.
#[async_trait]
pub trait Repo<R: Record>: Send {
    /// Reads one record.
    async fn get(&mut self, id: R::Id) -> Result<R>;
    /// Reads one record and locks it until the unit of work ends.
    async fn lock(&mut self, id: R::Id) -> Result<R>;
    /// Stores a new record.
    async fn insert(&mut self, record: R) -> Result<R>;
    /// Replaces a record, checking its version.
    async fn update(&mut self, record: R) -> Result<R>;
    /// Removes a record.
    async fn delete(&mut self, id: R::Id) -> Result<()>;
    /// Lists matches, paginated.
    async fn list(&mut self, filter: &R::Filter, page: PageRequest) -> Result<Page<R>>;
    /// Counts matches.
    async fn count(&mut self, filter: &R::Filter) -> Result<u64>;
}

/// Whether a unit of work may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only; writes fail with `internal_error` (a bug in the caller). Never blocks writers.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}

/// One atomic unit of work over every tenancy record, the audit trail and the job outbox.
///
/// # Contract
/// - Everything written through it becomes visible to others at `commit`, all at once, or never (dropped or
///   `rollback`). A failed write leaves the unit of work usable and changes nothing.
/// - `append_audit` seals the entry from the unit of work's [`Ctx`] and links it at the end of its tenant's hash
///   chain; chains never fork, even under concurrent units of work.
/// - `enqueue_job` stores a job that workers can reserve only after `commit`.
#[async_trait]
pub trait UnitOfWork: Send + Debug {
    /// Tenants.
    fn tenants(&mut self) -> &mut dyn Repo<Tenant>;
    /// Tenant settings (id = tenant id).
    fn tenant_settings(&mut self) -> &mut dyn Repo<TenantSettings>;
    /// Users.
    fn users(&mut self) -> &mut dyn Repo<User>;
    /// Projects.
    fn projects(&mut self) -> &mut dyn Repo<Project>;
    /// API key records.
    fn api_keys(&mut self) -> &mut dyn Repo<ApiKey>;
    /// Sessions.
    fn sessions(&mut self) -> &mut dyn Repo<Session>;
    /// Session events.
    fn session_events(&mut self) -> &mut dyn Repo<SessionEvent>;
    /// Voice configurations.
    fn voice_configs(&mut self) -> &mut dyn Repo<VoiceConfig>;
    /// Personas.
    fn personas(&mut self) -> &mut dyn Repo<Persona>;
    /// Wake words.
    fn wake_words(&mut self) -> &mut dyn Repo<WakeWord>;
    /// Themes.
    fn themes(&mut self) -> &mut dyn Repo<Theme>;
    /// Notifications.
    fn notifications(&mut self) -> &mut dyn Repo<Notification>;
    /// Appends an audit entry in this unit of work.
    async fn append_audit(&mut self, entry: NewAuditEntry) -> Result<AuditEntry>;
    /// Enqueues a job in this unit of work (transactional outbox).
    async fn enqueue_job(&mut self, job: NewJob) -> Result<JobId>;
    /// Makes every write durable and visible.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Discards every write (dropping does the same).
    async fn rollback(self: Box<Self>) -> Result<()>;
}

/// Opens units of work.
///
/// # Contract
/// - `begin` fixes the scope from `ctx.storage_scope()` (so a context without tenant that is not cross-tenant
///   gets `tenant_required`) and keeps `ctx` for audit sealing.
/// - Read-write units of work are serialisable with respect to each other for the rows they touch.
#[async_trait]
pub trait TenancyStore: Send + Sync + Debug + 'static {
    /// Opens a unit of work.
    async fn begin(&self, ctx: &Ctx, access: Access) -> Result<Box<dyn UnitOfWork>>;
}
