//! The stored data: one persistent map per record type plus its unique-key index, the audit chains and the
//! jobs. Everything is an `imbl` structure, so cloning a whole [`State`] for a unit of work is O(1) and
//! publishing a new one is a pointer swap.
//!
//! Rows are held as `Arc<R>`: a write after a snapshot copies the B-tree nodes on its path, and a copied node
//! then clones up to a node's worth of `Arc`s (reference count bumps) instead of as many whole records (event
//! `content` is a JSON tree).

use avb_core::audit::AuditEntry;
use avb_core::jobs::Job;
use avb_core::{Error, JobId, Result, StorageScope, TenantId};
use avb_tenancy::model::{
    ApiKey, Notification, Persona, Project, Session, SessionEvent, Tenant, TenantSettings, Theme, User,
    VoiceConfig, WakeWord,
};
use avb_tenancy::store::{Record, UniqueKey};
use imbl::{OrdMap, Vector};
use std::sync::Arc;
use uuid::Uuid;

/// True when a row owned by `owner` is visible in `scope`: platform rows (`None`) only in the all-tenants scope.
pub(super) fn visible(scope: StorageScope, owner: Option<TenantId>) -> bool {
    match owner {
        Some(tenant) => scope.allows(tenant),
        None => scope == StorageScope::AllTenants,
    }
}

/// The rows of one record type and the index that enforces its unique keys across every tenant.
pub(super) struct Table<R: Record> {
    /// Each row behind an `Arc`, so that copying a shared node never copies records (see the module docs).
    pub(super) rows: OrdMap<R::Id, Arc<R>>,
    unique: OrdMap<UniqueKey, R::Id>,
}

impl<R: Record> Clone for Table<R> {
    fn clone(&self) -> Self {
        Self {
            rows: self.rows.clone(),
            unique: self.unique.clone(),
        }
    }
}

impl<R: Record> Default for Table<R> {
    fn default() -> Self {
        Self {
            rows: OrdMap::new(),
            unique: OrdMap::new(),
        }
    }
}

impl<R: Record> Table<R> {
    /// Ids of the rows holding a key of rule `name` whose value starts with `prefix`, in key order.
    pub(super) fn with_unique_prefix(
        &self,
        name: &'static str,
        prefix: String,
    ) -> impl Iterator<Item = &R::Id> + '_ {
        let start = UniqueKey {
            name,
            value: prefix.clone(),
        };
        self.unique
            .range(start..)
            .take_while(move |(key, _)| key.name == name && key.value.starts_with(&prefix))
            .map(|(_, id)| id)
    }

    /// The first unique key of `record` already held by a different row.
    pub(super) fn collision(&self, record: &R) -> Option<UniqueKey> {
        let id = record.id();
        record
            .unique_keys()
            .into_iter()
            .find(|key| self.unique.get(key).is_some_and(|owner| *owner != id))
    }

    /// Stores `record`, replacing any row with its id and re-indexing its keys. Callers check collisions first.
    pub(super) fn put(&mut self, record: R) {
        let id = record.id();
        let record = Arc::new(record);
        // The old keys go before the new ones are added: a key kept by the update must stay indexed.
        if let Some(old) = self.rows.insert(id, Arc::clone(&record)) {
            for key in old.unique_keys() {
                self.unique.remove(&key);
            }
        }
        for key in record.unique_keys() {
            self.unique.insert(key, id);
        }
    }

    /// Removes a row and frees its keys.
    pub(super) fn take(&mut self, id: &R::Id) -> Option<Arc<R>> {
        let old = self.rows.remove(id)?;
        for key in old.unique_keys() {
            self.unique.remove(&key);
        }
        Some(old)
    }
}

/// Maps a record type to its table, so the repository code is written once over `R: Stored`.
pub(super) trait Stored: Record {
    /// The table of this type.
    fn table(tables: &Tables) -> &Table<Self>;
    /// The table of this type, for writing.
    fn table_mut(tables: &mut Tables) -> &mut Table<Self>;
    /// The typed id of a raw UUID (references carry raw UUIDs).
    fn id_of(uuid: Uuid) -> Self::Id;
}

/// Visits every table; lets generic code (reference lookups) range over all record types.
pub(super) trait TableVisitor {
    /// Called once per table.
    fn visit<R: Stored>(&mut self, table: &Table<R>);
}

macro_rules! tables {
    ($($field:ident: $ty:ty),* $(,)?) => {
        /// Every record table.
        #[derive(Clone, Default)]
        pub(super) struct Tables {
            $(pub(super) $field: Table<$ty>,)*
        }

        impl Tables {
            /// Runs `visitor` over each table.
            pub(super) fn visit(&self, visitor: &mut impl TableVisitor) {
                $(visitor.visit(&self.$field);)*
            }
        }

        $(
            impl Stored for $ty {
                fn table(tables: &Tables) -> &Table<Self> {
                    &tables.$field
                }
                fn table_mut(tables: &mut Tables) -> &mut Table<Self> {
                    &mut tables.$field
                }
                fn id_of(uuid: Uuid) -> Self::Id {
                    uuid.into()
                }
            }
        )*
    };
}

tables! {
    tenants: Tenant,
    tenant_settings: TenantSettings,
    users: User,
    projects: Project,
    api_keys: ApiKey,
    sessions: Session,
    session_events: SessionEvent,
    voice_configs: VoiceConfig,
    personas: Persona,
    wake_words: WakeWord,
    themes: Theme,
    notifications: Notification,
}

/// Finds the owner of the row `resource`/`id`: `Some(owner)` when it exists.
struct OwnerOf<'a> {
    resource: &'a str,
    id: Uuid,
    found: Option<Option<TenantId>>,
}

impl TableVisitor for OwnerOf<'_> {
    fn visit<R: Stored>(&mut self, table: &Table<R>) {
        if R::RESOURCE == self.resource {
            self.found = table.rows.get(&R::id_of(self.id)).map(|row| row.tenant_id());
        }
    }
}

/// Finds one row that still refers to `resource`/`id`.
struct ReferrerOf<'a> {
    resource: &'a str,
    id: Uuid,
    found: Option<&'static str>,
}

impl TableVisitor for ReferrerOf<'_> {
    fn visit<R: Stored>(&mut self, table: &Table<R>) {
        if self.found.is_some() {
            return;
        }
        let refers = |row: &R| {
            row.references()
                .iter()
                .any(|r| r.resource == self.resource && r.id == self.id)
        };
        if table.rows.values().any(|row| refers(row)) {
            self.found = Some(R::RESOURCE);
        }
    }
}

impl Tables {
    /// Checks that every reference of `record` names an existing row of the record's own tenant.
    pub(super) fn check_references<R: Record>(&self, record: &R) -> Result<()> {
        let owner = record.tenant_id();
        for reference in record.references() {
            let mut lookup = OwnerOf {
                resource: reference.resource,
                id: reference.id,
                found: None,
            };
            self.visit(&mut lookup);
            if lookup.found != Some(owner) {
                return Err(Error::not_found(reference.resource, reference.id));
            }
        }
        Ok(())
    }

    /// The resource type of some row that still refers to `resource`/`id`.
    pub(super) fn referrer(&self, resource: &str, id: Uuid) -> Option<&'static str> {
        let mut scan = ReferrerOf {
            resource,
            id,
            found: None,
        };
        self.visit(&mut scan);
        scan.found
    }

    /// Applies the delete rules of the store contract that go beyond "refuse while referenced": a project takes
    /// its API keys with it and detaches its sessions (like SQL `ON DELETE SET NULL`, without a version bump); a
    /// session takes its events; a user takes their notifications.
    pub(super) fn cascade(&mut self, resource: &str, id: Uuid) {
        if resource == Project::RESOURCE {
            let project = Some(avb_core::ProjectId(id));
            let keys: Vec<_> = self
                .api_keys
                .rows
                .values()
                .filter(|k| k.project_id == project)
                .map(|k| k.id)
                .collect();
            for key in &keys {
                self.api_keys.take(key);
            }
            // Sessions opened with one of the removed keys lose the key too, or the keys could never go.
            let detach: Vec<Session> = self
                .sessions
                .rows
                .values()
                .filter(|s| s.project_id == project || s.api_key_id.is_some_and(|k| keys.contains(&k)))
                .map(|s| Session::clone(s))
                .collect();
            for mut session in detach {
                if session.project_id == project {
                    session.project_id = None;
                }
                if session.api_key_id.is_some_and(|k| keys.contains(&k)) {
                    session.api_key_id = None;
                }
                self.sessions.put(session);
            }
        } else if resource == Session::RESOURCE {
            let session = avb_core::SessionId(id);
            let events: Vec<_> = self
                .session_events
                .rows
                .values()
                .filter(|e| e.session_id == session)
                .map(|e| e.id)
                .collect();
            for event in &events {
                self.session_events.take(event);
            }
        } else if resource == User::RESOURCE {
            let user = avb_core::UserId(id);
            let notes: Vec<_> = self
                .notifications
                .rows
                .values()
                .filter(|n| n.user_id == user)
                .map(|n| n.id)
                .collect();
            for note in &notes {
                self.notifications.take(note);
            }
        }
    }
}

/// The audit trail: one hash chain per tenant (`None` = the platform chain), each in ascending sequence.
#[derive(Clone, Default)]
pub(super) struct AuditLog {
    pub(super) chains: OrdMap<Option<TenantId>, Vector<AuditEntry>>,
}

impl AuditLog {
    /// The `(sequence, hash)` of the chain's last entry.
    pub(super) fn head(&self, chain: Option<TenantId>) -> Option<(u64, String)> {
        self.chains
            .get(&chain)
            .and_then(Vector::last)
            .map(|e| (e.sequence, e.hash.clone()))
    }

    /// Appends a sealed entry to its chain.
    pub(super) fn push(&mut self, entry: AuditEntry) {
        self.chains.entry(entry.tenant_id).or_default().push_back(entry);
    }
}

/// Everything the store holds, as published to readers.
#[derive(Clone, Default)]
pub(super) struct State {
    pub(super) tables: Tables,
    pub(super) audit: AuditLog,
    pub(super) jobs: OrdMap<JobId, Job>,
}
