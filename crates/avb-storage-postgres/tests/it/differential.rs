//! Postgres against the memory adapter: the same records in both, then many filters and pages, which must
//! list the same ids in the same order with the same totals. This pins the SQL translation of every
//! `Filter::matches` and `Record::listing_order` (ties in `created_at`, odd search strings, case folding).
// Marks the helpers as test code for clippy's allow-*-in-tests settings.
#![cfg(test)]

use crate::support;
use avb_core::PageRequest;
use avb_core::{ApiKeyId, ProjectId, Role, TenantId, UserId};
use avb_storage_memory::MemoryStore;
use avb_tenancy::conformance::{fixtures, member};
use avb_tenancy::model::{ApiKey, Project, Session, SessionStatus, User};
use avb_tenancy::store::{
    Access, ApiKeyFilter, ProjectFilter, Record, SessionFilter, TenancyStore, UserFilter,
};
use chrono::{DateTime, TimeDelta, Utc};

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const WORDS: &[&str] = &[
    "Voice", "voice", "BOT", "bot", "50%_off", "a_b", "Zeta", "ÉCLAIR", "éclair", "x",
];

/// Whole-microsecond times with many ties, as Postgres stores them.
fn when(dice: &mut Dice, base: DateTime<Utc>) -> DateTime<Utc> {
    base + TimeDelta::microseconds(dice.below(6) as i64 * 1_000_000 + dice.below(3) as i64)
}

struct Data {
    users: Vec<User>,
    projects: Vec<Project>,
    keys: Vec<ApiKey>,
    sessions: Vec<Session>,
}

fn generate(tenant: TenantId, dice: &mut Dice) -> Data {
    let base = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let mut users = Vec::new();
    for n in 0..24 {
        let mut user = fixtures::user(Some(tenant), n);
        user.first_name = format!("{} {n}", dice.pick(WORDS));
        user.last_name = (*dice.pick(WORDS)).to_owned();
        user.is_active = dice.chance(70);
        user.roles = [*dice.pick(&Role::ALL), *dice.pick(&Role::ALL)].into();
        user.created_at = when(dice, base);
        user.updated_at = user.created_at;
        user.date_joined = user.created_at;
        users.push(user);
    }
    let mut projects = Vec::new();
    for n in 0..16 {
        let mut project = fixtures::project(tenant, &format!("{} {n}", dice.pick(WORDS)), n);
        project.description = format!("{} and {}", dice.pick(WORDS), dice.pick(WORDS));
        project.created_at = when(dice, base);
        project.updated_at = project.created_at;
        projects.push(project);
    }
    let mut keys = Vec::new();
    for n in 0..20 {
        let project = dice.chance(60).then(|| dice.pick(&projects).id);
        let mut key = fixtures::api_key(tenant, project, n);
        key.key_prefix = format!("avb_{:08}", dice.below(4));
        key.revoked_at = dice.chance(30).then(|| when(dice, base));
        key.created_by = dice.chance(50).then(|| dice.pick(&users).id);
        key.created_at = when(dice, base);
        key.updated_at = key.created_at;
        keys.push(key);
    }
    let mut sessions = Vec::new();
    for n in 0..30 {
        let project = dice.chance(60).then(|| dice.pick(&projects).id);
        let key = dice.chance(50).then(|| dice.pick(&keys).id);
        let mut session = fixtures::session(tenant, project, key, n);
        session.status = *dice.pick(SessionStatus::ALL);
        session.created_at = when(dice, base);
        session.updated_at = session.created_at;
        sessions.push(session);
    }
    Data {
        users,
        projects,
        keys,
        sessions,
    }
}

async fn load(store: &dyn TenancyStore, tenant: TenantId, data: &Data) {
    let mut uow = store
        .begin(&avb_tenancy::conformance::admin(), Access::ReadWrite)
        .await
        .unwrap();
    let mut record = fixtures::tenant();
    record.id = tenant;
    uow.tenants().insert(record).await.unwrap();
    for user in &data.users {
        uow.users().insert(user.clone()).await.unwrap();
    }
    for project in &data.projects {
        uow.projects().insert(project.clone()).await.unwrap();
    }
    for key in &data.keys {
        uow.api_keys().insert(key.clone()).await.unwrap();
    }
    for session in &data.sessions {
        uow.sessions().insert(session.clone()).await.unwrap();
    }
    uow.commit().await.unwrap();
}

/// Lists `filter` in both stores over a few pages and compares ids, order and totals.
macro_rules! same {
    ($pg:expr, $mem:expr, $ctx:expr, $repo:ident, $filter:expr) => {{
        let filter = $filter;
        for (limit, offset) in [(100, 0), (7, 0), (7, 7), (7, 21), (5, 200)] {
            let page = PageRequest::new(Some(limit), Some(offset)).unwrap();
            let mut a = $pg.begin($ctx, Access::ReadOnly).await.unwrap();
            let mut b = $mem.begin($ctx, Access::ReadOnly).await.unwrap();
            let pg = a.$repo().list(&filter, page).await.unwrap();
            let mem = b.$repo().list(&filter, page).await.unwrap();
            let ids = |items: &[_]| items.iter().map(Record::id).collect::<Vec<_>>();
            assert_eq!(ids(&pg.items), ids(&mem.items), "{filter:?} at {limit}/{offset}");
            assert_eq!(pg.total, mem.total, "{filter:?} total");
            assert_eq!(
                a.$repo().count(&filter).await.unwrap(),
                mem.total,
                "{filter:?} count"
            );
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_listing_order_match_the_memory_adapter() {
    let pg = support::store().await;
    let mem = MemoryStore::new();
    let tenant = TenantId(uuid::Uuid::now_v7());
    let mut dice = Dice(0x5eed_cafe_f00d_d00d);
    let data = generate(tenant, &mut dice);
    load(&pg.store, tenant, &data).await;
    load(&mem, tenant, &data).await;
    let ctx = &member(tenant);

    let searches: Vec<Option<String>> = [
        None,
        Some(""),
        Some("bot"),
        Some("VOICE"),
        Some("%"),
        Some("_"),
        Some("50%_"),
        Some("éclair"),
        Some("a_b"),
        Some("nothing-matches"),
    ]
    .into_iter()
    .map(|s| s.map(str::to_owned))
    .collect();
    for search in &searches {
        same!(
            pg,
            mem,
            ctx,
            projects,
            ProjectFilter {
                search: search.clone(),
                ..Default::default()
            }
        );
        same!(
            pg,
            mem,
            ctx,
            users,
            UserFilter {
                search: search.clone(),
                ..Default::default()
            }
        );
    }
    for word in WORDS {
        let name = format!("{word} 3");
        same!(
            pg,
            mem,
            ctx,
            projects,
            ProjectFilter {
                name: Some(name.to_uppercase()),
                ..Default::default()
            }
        );
    }
    for user in data.users.iter().take(5) {
        same!(
            pg,
            mem,
            ctx,
            users,
            UserFilter {
                email: Some(user.email.to_uppercase()),
                ..Default::default()
            }
        );
        same!(
            pg,
            mem,
            ctx,
            users,
            UserFilter {
                keycloak_id: user.keycloak_id.clone(),
                ..Default::default()
            }
        );
    }
    for role in Role::ALL {
        for active in [None, Some(true), Some(false)] {
            same!(
                pg,
                mem,
                ctx,
                users,
                UserFilter {
                    role: Some(role),
                    is_active: active,
                    ..Default::default()
                }
            );
        }
    }
    let projects: Vec<Option<ProjectId>> = std::iter::once(None)
        .chain(data.projects.iter().take(4).map(|p| Some(p.id)))
        .collect();
    let creators: Vec<Option<UserId>> = std::iter::once(None)
        .chain(data.users.iter().take(3).map(|u| Some(u.id)))
        .collect();
    for project in &projects {
        for revoked in [None, Some(true), Some(false)] {
            for prefix in [None, Some("avb_00000001".to_owned())] {
                same!(
                    pg,
                    mem,
                    ctx,
                    api_keys,
                    ApiKeyFilter {
                        prefix: prefix.clone(),
                        project_id: *project,
                        revoked,
                        ..Default::default()
                    }
                );
            }
        }
    }
    for creator in &creators {
        same!(
            pg,
            mem,
            ctx,
            api_keys,
            ApiKeyFilter {
                created_by: *creator,
                ..Default::default()
            }
        );
    }
    let keys: Vec<Option<ApiKeyId>> = std::iter::once(None)
        .chain(data.keys.iter().take(3).map(|k| Some(k.id)))
        .collect();
    let base = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let bounds = [None, Some(base), Some(base + TimeDelta::microseconds(2_000_001))];
    for status in std::iter::once(None).chain(SessionStatus::ALL.iter().copied().map(Some)) {
        for project in projects.iter().take(3) {
            same!(
                pg,
                mem,
                ctx,
                sessions,
                SessionFilter {
                    status,
                    project_id: *project,
                    ..Default::default()
                }
            );
        }
    }
    for status_in in [
        None,
        Some(vec![]),
        Some(vec![SessionStatus::Created, SessionStatus::Active]),
    ] {
        for key in &keys {
            same!(
                pg,
                mem,
                ctx,
                sessions,
                SessionFilter {
                    status_in: status_in.clone(),
                    api_key_id: *key,
                    ..Default::default()
                }
            );
        }
    }
    for from in bounds {
        for to in bounds {
            same!(
                pg,
                mem,
                ctx,
                sessions,
                SessionFilter {
                    created_from: from,
                    created_to: to,
                    ..Default::default()
                }
            );
        }
    }
}
