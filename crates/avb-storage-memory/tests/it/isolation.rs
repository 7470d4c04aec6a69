//! Property: whatever operations tenants interleave, a tenant's context never reads, lists, counts or changes
//! another tenant's projects, users or API keys. The store is compared after every step with a plain model
//! that knows only the contract: scopes, unique keys, references, versions and the project → key cascade.
// Marks the model helpers as test code for clippy's allow-*-in-tests settings.
#![cfg(test)]

use avb_core::{
    Ctx, Error, PageRequest, Principal, RequestId, Role, TenantId, UserId, UserPrincipal, UuidV7Ids,
};
use avb_storage_memory::MemoryStore;
use avb_tenancy::conformance::fixtures;
use avb_tenancy::model::{ApiKey, Project, User};
use avb_tenancy::store::{Access, ApiKeyFilter, ProjectFilter, TenancyStore, UserFilter};
use proptest::prelude::*;
use std::collections::BTreeMap;

const TENANTS: usize = 3;
const NAMES: [&str; 4] = ["alpha", "Alpha", "beta", "gamma"];
const EMAILS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Project,
    User,
    ApiKey,
}

#[derive(Debug, Clone)]
enum Op {
    /// `project`: `(true, i)` binds a key to the owner's i-th live project, `(false, i)` to any project made.
    Create {
        actor: usize,
        owner: usize,
        kind: Kind,
        pick: usize,
        project: Option<(bool, usize)>,
    },
    Update {
        actor: usize,
        kind: Kind,
        target: usize,
        stale: bool,
        pick: usize,
    },
    Delete {
        actor: usize,
        kind: Kind,
        target: usize,
    },
    Get {
        actor: usize,
        kind: Kind,
        target: usize,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Project), Just(Kind::User), Just(Kind::ApiKey)]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..TENANTS;
    prop_oneof![
        3 => (who.clone(), who.clone(), kind(), 0..8usize, proptest::option::of((any::<bool>(), 0..16usize)))
            .prop_map(|(actor, owner, kind, pick, project)| Op::Create { actor, owner, kind, pick, project }),
        2 => (who.clone(), kind(), 0..16usize, any::<bool>(), 0..8usize)
            .prop_map(|(actor, kind, target, stale, pick)| Op::Update { actor, kind, target, stale, pick }),
        1 => (who.clone(), kind(), 0..16usize).prop_map(|(actor, kind, target)| Op::Delete { actor, kind, target }),
        2 => (who, kind(), 0..16usize).prop_map(|(actor, kind, target)| Op::Get { actor, kind, target }),
    ]
}

/// What the contract says an operation returns, without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    Conflict,
    VersionConflict,
}

fn outcome<T>(result: &Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(Error::NotFound { .. }) => Outcome::NotFound,
        Err(Error::Conflict { .. }) => Outcome::Conflict,
        Err(Error::VersionConflict { .. }) => Outcome::VersionConflict,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// One modelled row: its tenant, version and the fields the rules look at.
#[derive(Debug, Clone)]
struct Row {
    tenant: usize,
    version: u64,
    /// Project name (unique per tenant, case-insensitive) or user e-mail (unique everywhere).
    key: String,
    /// An API key's project.
    project: Option<uuid::Uuid>,
}

#[derive(Debug, Default)]
struct Model {
    rows: BTreeMap<(Kind, uuid::Uuid), Row>,
    /// Every id ever created per kind (deleted ones stay, so operations can target them).
    created: BTreeMap<Kind, Vec<uuid::Uuid>>,
}

impl Model {
    fn target(&self, kind: Kind, index: usize) -> Option<uuid::Uuid> {
        let ids = self.created.get(&kind)?;
        ids.get(index % ids.len().max(1)).copied()
    }

    fn visible(&self, kind: Kind, id: uuid::Uuid, actor: usize) -> Option<&Row> {
        self.rows.get(&(kind, id)).filter(|row| row.tenant == actor)
    }

    fn key_taken(&self, kind: Kind, tenant: usize, key: &str, except: Option<uuid::Uuid>) -> bool {
        self.rows.iter().any(|((k, id), row)| {
            *k == kind
                && Some(*id) != except
                && match kind {
                    Kind::Project => row.tenant == tenant && row.key.eq_ignore_ascii_case(key),
                    Kind::User | Kind::ApiKey => row.key == key,
                }
        })
    }

    fn ids_of(&self, kind: Kind, tenant: usize) -> Vec<uuid::Uuid> {
        self.rows
            .iter()
            .filter(|((k, _), row)| *k == kind && row.tenant == tenant)
            .map(|((_, id), _)| *id)
            .collect()
    }
}

struct World {
    store: MemoryStore,
    tenants: Vec<TenantId>,
    /// The latest stored copy of every live row, to build updates from.
    copies: BTreeMap<uuid::Uuid, Stored>,
}

#[derive(Debug, Clone)]
enum Stored {
    Project(Project),
    User(User),
    ApiKey(ApiKey),
}

fn member(tenant: TenantId) -> Ctx {
    let user = UserPrincipal {
        user_id: UserId(uuid::Uuid::now_v7()),
        tenant_id: Some(tenant),
        email: "prop@example.com".into(),
        roles: [Role::Admin].into(),
        external_id: None,
    };
    Ctx::new(RequestId::generate(&UuidV7Ids), Principal::User(user)).with_tenant(Some(tenant))
}

fn email(pick: usize) -> String {
    format!("person{}@example.com", pick % EMAILS)
}

async fn write<T>(
    store: &MemoryStore,
    ctx: &Ctx,
    op: impl AsyncFnOnce(&mut dyn avb_tenancy::store::UnitOfWork) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut uow = store.begin(ctx, Access::ReadWrite).await?;
    let value = op(uow.as_mut()).await?;
    uow.commit().await?;
    Ok(value)
}

impl World {
    async fn new() -> Self {
        let store = MemoryStore::new();
        let admin = Ctx::system(RequestId::generate(&UuidV7Ids), "prop", None);
        let mut tenants = Vec::new();
        for _ in 0..TENANTS {
            let tenant = write(&store, &admin, async |uow| {
                uow.tenants().insert(fixtures::tenant()).await
            })
            .await;
            tenants.push(tenant.unwrap().id);
        }
        Self {
            store,
            tenants,
            copies: BTreeMap::new(),
        }
    }

    async fn apply(&mut self, model: &mut Model, op: &Op) {
        match *op {
            Op::Create {
                actor,
                owner,
                kind,
                pick,
                project,
            } => {
                let ctx = member(self.tenants[actor]);
                let tenant = self.tenants[owner];
                let project_ref = project.and_then(|(own, p)| match own {
                    true => {
                        let live = model.ids_of(Kind::Project, owner);
                        live.get(p % live.len().max(1)).copied()
                    }
                    false => model.target(Kind::Project, p),
                });
                let (result, id, key, expected_project) = match kind {
                    Kind::Project => {
                        let record = fixtures::project(tenant, NAMES[pick % NAMES.len()], 1);
                        let (id, key) = (record.id.0, record.name.clone());
                        let result =
                            write(&self.store, &ctx, async |uow| uow.projects().insert(record).await).await;
                        (result.map(Stored::Project), id, key, None)
                    }
                    Kind::User => {
                        let mut record = fixtures::user(Some(tenant), 1);
                        record.email = email(pick);
                        let (id, key) = (record.id.0, record.email.clone());
                        let result =
                            write(&self.store, &ctx, async |uow| uow.users().insert(record).await).await;
                        (result.map(Stored::User), id, key, None)
                    }
                    Kind::ApiKey => {
                        let mut record =
                            fixtures::api_key(tenant, project_ref.map(avb_core::ProjectId), pick as u32);
                        record.key_hash = format!("hash-{}", pick % EMAILS);
                        let (id, key) = (record.id.0, record.key_hash.clone());
                        let result =
                            write(&self.store, &ctx, async |uow| uow.api_keys().insert(record).await).await;
                        (result.map(Stored::ApiKey), id, key, project_ref)
                    }
                };
                let expected = if actor != owner {
                    Outcome::NotFound
                } else if model.key_taken(kind, owner, &key, None) {
                    Outcome::Conflict
                } else if expected_project.is_some_and(|p| model.visible(Kind::Project, p, owner).is_none()) {
                    Outcome::NotFound
                } else {
                    Outcome::Ok
                };
                assert_eq!(outcome(&result), expected, "{op:?}");
                if let Ok(stored) = result {
                    model.rows.insert(
                        (kind, id),
                        Row {
                            tenant: owner,
                            version: 1,
                            key,
                            project: expected_project,
                        },
                    );
                    model.created.entry(kind).or_default().push(id);
                    self.copies.insert(id, stored);
                }
            }
            Op::Update {
                actor,
                kind,
                target,
                stale,
                pick,
            } => {
                let Some(id) = model.target(kind, target) else {
                    return;
                };
                let Some(copy) = self.copies.get(&id).cloned() else {
                    // Deleted: nothing to build an update from, so probe with a get instead.
                    return self.get(model, actor, kind, id).await;
                };
                let ctx = member(self.tenants[actor]);
                let bump = u64::from(stale);
                let (result, new_key) = match copy {
                    Stored::Project(mut p) => {
                        p.name = NAMES[pick % NAMES.len()].into();
                        p.version += bump;
                        let key = p.name.clone();
                        let r = write(&self.store, &ctx, async |uow| uow.projects().update(p).await).await;
                        (r.map(Stored::Project), key)
                    }
                    Stored::User(mut u) => {
                        u.first_name = format!("Edited{pick}");
                        u.version += bump;
                        let key = u.email.clone();
                        let r = write(&self.store, &ctx, async |uow| uow.users().update(u).await).await;
                        (r.map(Stored::User), key)
                    }
                    Stored::ApiKey(mut k) => {
                        k.name = format!("renamed {pick}");
                        k.version += bump;
                        let key = k.key_hash.clone();
                        let r = write(&self.store, &ctx, async |uow| uow.api_keys().update(k).await).await;
                        (r.map(Stored::ApiKey), key)
                    }
                };
                let expected = match model.visible(kind, id, actor) {
                    None => Outcome::NotFound,
                    Some(_) if stale => Outcome::VersionConflict,
                    Some(row) if model.key_taken(kind, row.tenant, &new_key, Some(id)) => Outcome::Conflict,
                    Some(_) => Outcome::Ok,
                };
                assert_eq!(outcome(&result), expected, "{op:?}");
                if let Ok(stored) = result {
                    if let Some(row) = model.rows.get_mut(&(kind, id)) {
                        row.version += 1;
                        row.key = new_key;
                    }
                    self.copies.insert(id, stored);
                }
            }
            Op::Delete { actor, kind, target } => {
                let Some(id) = model.target(kind, target) else {
                    return;
                };
                let ctx = member(self.tenants[actor]);
                let result = match kind {
                    Kind::Project => {
                        write(&self.store, &ctx, async |uow| {
                            uow.projects().delete(avb_core::ProjectId(id)).await
                        })
                        .await
                    }
                    Kind::User => {
                        write(&self.store, &ctx, async |uow| {
                            uow.users().delete(UserId(id)).await
                        })
                        .await
                    }
                    Kind::ApiKey => {
                        write(&self.store, &ctx, async |uow| {
                            uow.api_keys().delete(avb_core::ApiKeyId(id)).await
                        })
                        .await
                    }
                };
                let expected = if model.visible(kind, id, actor).is_some() {
                    Outcome::Ok
                } else {
                    Outcome::NotFound
                };
                assert_eq!(outcome(&result), expected, "{op:?}");
                if result.is_ok() {
                    model.rows.remove(&(kind, id));
                    self.copies.remove(&id);
                    if kind == Kind::Project {
                        let cascaded: Vec<_> = model
                            .rows
                            .iter()
                            .filter(|((k, _), row)| *k == Kind::ApiKey && row.project == Some(id))
                            .map(|((_, key), _)| *key)
                            .collect();
                        for key in cascaded {
                            model.rows.remove(&(Kind::ApiKey, key));
                            self.copies.remove(&key);
                        }
                    }
                }
            }
            Op::Get { actor, kind, target } => {
                let Some(id) = model.target(kind, target) else {
                    return;
                };
                self.get(model, actor, kind, id).await;
            }
        }
    }

    async fn get(&self, model: &Model, actor: usize, kind: Kind, id: uuid::Uuid) {
        let mut uow = self
            .store
            .begin(&member(self.tenants[actor]), Access::ReadOnly)
            .await
            .unwrap();
        let (found, version) = match kind {
            Kind::Project => uow
                .projects()
                .get(avb_core::ProjectId(id))
                .await
                .map(|p| (p.tenant_id, p.version)),
            Kind::User => uow
                .users()
                .get(UserId(id))
                .await
                .map(|u| (u.tenant_id.unwrap(), u.version)),
            Kind::ApiKey => uow
                .api_keys()
                .get(avb_core::ApiKeyId(id))
                .await
                .map(|k| (k.tenant_id, k.version)),
        }
        .map_or((None, None), |(t, v)| (Some(t), Some(v)));
        match model.visible(kind, id, actor) {
            Some(row) => {
                assert_eq!(
                    found,
                    Some(self.tenants[actor]),
                    "{kind:?} {id} as tenant {actor}"
                );
                assert_eq!(version, Some(row.version), "{kind:?} {id} version");
            }
            None => assert_eq!(found, None, "tenant {actor} read {kind:?} {id}"),
        }
    }

    /// Every tenant lists and counts exactly its own rows of every kind.
    async fn check_listings(&self, model: &Model) {
        let all = PageRequest::new(Some(100), None).unwrap();
        for (actor, tenant) in self.tenants.iter().enumerate() {
            let mut uow = self
                .store
                .begin(&member(*tenant), Access::ReadOnly)
                .await
                .unwrap();
            for kind in [Kind::Project, Kind::User, Kind::ApiKey] {
                let (mut listed, total, counted) = match kind {
                    Kind::Project => {
                        let page = uow.projects().list(&ProjectFilter::default(), all).await.unwrap();
                        let counted = uow.projects().count(&ProjectFilter::default()).await.unwrap();
                        (
                            page.items.iter().map(|p| p.id.0).collect::<Vec<_>>(),
                            page.total,
                            counted,
                        )
                    }
                    Kind::User => {
                        let page = uow.users().list(&UserFilter::default(), all).await.unwrap();
                        let counted = uow.users().count(&UserFilter::default()).await.unwrap();
                        (page.items.iter().map(|u| u.id.0).collect(), page.total, counted)
                    }
                    Kind::ApiKey => {
                        let page = uow.api_keys().list(&ApiKeyFilter::default(), all).await.unwrap();
                        let counted = uow.api_keys().count(&ApiKeyFilter::default()).await.unwrap();
                        (page.items.iter().map(|k| k.id.0).collect(), page.total, counted)
                    }
                };
                listed.sort();
                let expected = model.ids_of(kind, actor);
                assert_eq!(listed, expected, "tenant {actor} lists {kind:?}");
                assert_eq!(
                    total,
                    expected.len() as u64,
                    "tenant {actor} list total of {kind:?}"
                );
                assert_eq!(counted, expected.len() as u64, "tenant {actor} counts {kind:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn tenants_never_see_or_change_each_others_rows(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut world = World::new().await;
            let mut model = Model::default();
            for op in &ops {
                world.apply(&mut model, op).await;
                world.check_listings(&model).await;
            }
        });
    }
}
