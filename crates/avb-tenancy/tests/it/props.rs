//! Property tests: validation accepts exactly what the spec allows, and random interleavings of operations
//! across three tenants never leak or touch another tenant's data and never exceed a tier limit.

use crate::common::World;
use avb_core::{Ctx, FieldErrors, HasCode, PageRequest, ProjectId, TenantId, UserId};
use avb_tenancy::model::{TenantLimits, TenantTier, User};
use avb_tenancy::project::{CreateProjectRequest, UpdateProjectRequest};
use avb_tenancy::store::{ProjectFilter, TenantFilter, UserFilter};
use avb_tenancy::tenant::{
    CreateTenantRequest, SuspendTenantRequest, TenantSettingsUpdate, UpdateTenantRequest,
};
use avb_tenancy::user::InviteUserRequest;
use avb_tenancy::{Error, validation};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// (a) Validation accepts exactly what the spec allows
// ---------------------------------------------------------------------------------------------------------------

/// An independent reading of the spec's slug rule: `^[a-z0-9][a-z0-9-]*[a-z0-9]$`, 3–100 characters.
fn reference_slug(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let alnum = |c: &char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=100).contains(&chars.len())
        && chars.first().is_some_and(alnum)
        && chars.last().is_some_and(alnum)
        && chars.iter().all(|c| alnum(c) || *c == '-')
}

fn valid_char() -> impl Strategy<Value = char> {
    prop_oneof![8 => proptest::char::range('a', 'z'), 3 => proptest::char::range('0', '9'), 2 => Just('-')]
}

fn any_slug_char() -> impl Strategy<Value = char> {
    prop_oneof![
        12 => valid_char(),
        1 => proptest::char::range('A', 'Z'),
        1 => Just('_'),
        1 => Just('.'),
        1 => Just(' '),
        1 => Just('é'),
        1 => Just('ß'),
        1 => Just('\u{2011}'), // non-breaking hyphen
        1 => Just('٣'),        // a non-ASCII digit
    ]
}

/// Short strings over a mixed alphabet, and strings around the 100-character limit that are valid except,
/// sometimes, for one bad character.
fn slug_candidate() -> impl Strategy<Value = String> {
    let short = vec(any_slug_char(), 0..12).prop_map(|cs| cs.into_iter().collect::<String>());
    let long = (
        vec(valid_char(), 95..=106),
        proptest::option::of((any::<usize>(), any_slug_char())),
    )
        .prop_map(|(mut cs, bad)| {
            if let Some((at, c)) = bad {
                let len = cs.len();
                cs[at % len] = c;
            }
            cs.into_iter().collect::<String>()
        });
    prop_oneof![3 => short, 1 => long]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn slug_validation_accepts_exactly_the_spec_pattern(s in slug_candidate()) {
        let expected = reference_slug(&s);
        prop_assert_eq!(validation::is_slug(&s), expected);
        let mut errors = FieldErrors::new();
        prop_assert_eq!(validation::slug(&mut errors, "slug", &s), expected);
        prop_assert_eq!(errors.is_empty(), expected);
    }
}

fn reference_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s.chars().skip(1).all(|c| c.is_ascii_hexdigit())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Through the service: a tenant is created iff its slug is valid (else only `slug` is reported and nothing is
    /// stored); settings accept exactly `#RRGGBB` colours and timeouts of 5–1440 minutes.
    #[test]
    fn services_accept_exactly_valid_slugs_colours_and_timeouts(
        slug in slug_candidate(),
        colour in prop_oneof![
            "#[0-9A-Fa-f]{6}",
            "#?[0-9A-Za-z]{5,7}",
        ],
        timeout in prop_oneof![0i64..=10, 1435i64..=1445, -5i64..=2000],
    ) {
        runtime().block_on(async {
            let w = World::new();
            let req = CreateTenantRequest::new("Some Name", slug.clone(), "admin@example.com", "Ada Admin");
            match w.tenants.create(&w.sysadmin(), req).await {
                Ok(created) => {
                    assert!(reference_slug(&slug), "accepted {slug:?}");
                    assert_eq!(created.tenant.slug, slug);
                }
                Err(Error::Invalid(fields)) => {
                    assert!(!reference_slug(&slug), "refused {slug:?}");
                    assert_eq!(fields.0.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["slug"]);
                    assert!(w.snapshot().await.tenants.is_empty());
                }
                Err(other) => panic!("unexpected {other:?}"),
            }

            let tenant = w.tenant("valid-tenant", TenantTier::Free).await;
            let ctx = w.admin(&tenant);
            let req = TenantSettingsUpdate {
                primary_color: Some(colour.clone()),
                session_timeout_minutes: Some(timeout),
                ..Default::default()
            };
            let before = w.tenants.get_settings(&ctx, tenant.tenant.id).await.unwrap();
            let colour_ok = reference_color(&colour);
            let timeout_ok = (5..=1440).contains(&timeout);
            match w.tenants.update_settings(&ctx, tenant.tenant.id, req).await {
                Ok(s) => {
                    assert!(colour_ok && timeout_ok, "accepted {colour:?} / {timeout}");
                    assert_eq!((s.primary_color.as_str(), i64::from(s.session_timeout_minutes)), (colour.as_str(), timeout));
                }
                Err(Error::Invalid(fields)) => {
                    let mut expected = Vec::new();
                    if !colour_ok { expected.push("primary_color"); }
                    if !timeout_ok { expected.push("session_timeout_minutes"); }
                    assert_eq!(fields.0.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), expected);
                    assert_eq!(w.tenants.get_settings(&ctx, tenant.tenant.id).await.unwrap(), before);
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------------------------
// (b) Isolation and limits under random interleavings
// ---------------------------------------------------------------------------------------------------------------

const TENANTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Invite {
        actor: usize,
        email: u8,
    },
    CreateProject {
        actor: usize,
        name: u8,
        shout: bool,
    },
    RenameProject {
        actor: usize,
        owner: usize,
        pick: usize,
        name: u8,
    },
    DeleteProject {
        actor: usize,
        owner: usize,
        pick: usize,
    },
    Deactivate {
        actor: usize,
        owner: usize,
        pick: usize,
    },
    Reactivate {
        actor: usize,
        owner: usize,
        pick: usize,
    },
    ReadForeign {
        actor: usize,
        owner: usize,
        pick: usize,
    },
    SetTier {
        tenant: usize,
        tier: TenantTier,
    },
    Suspend {
        tenant: usize,
    },
    Activate {
        tenant: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let t = || 0..TENANTS;
    prop_oneof![
        4 => (t(), 0u8..10).prop_map(|(actor, email)| Op::Invite { actor, email }),
        4 => (t(), 0u8..5, any::<bool>()).prop_map(|(actor, name, shout)| Op::CreateProject { actor, name, shout }),
        2 => (t(), t(), any::<usize>(), 0u8..5)
            .prop_map(|(actor, owner, pick, name)| Op::RenameProject { actor, owner, pick, name }),
        2 => (t(), t(), any::<usize>()).prop_map(|(actor, owner, pick)| Op::DeleteProject { actor, owner, pick }),
        2 => (t(), t(), any::<usize>()).prop_map(|(actor, owner, pick)| Op::Deactivate { actor, owner, pick }),
        2 => (t(), t(), any::<usize>()).prop_map(|(actor, owner, pick)| Op::Reactivate { actor, owner, pick }),
        2 => (t(), t(), any::<usize>()).prop_map(|(actor, owner, pick)| Op::ReadForeign { actor, owner, pick }),
        3 => (t(), proptest::sample::select(TenantTier::ALL.to_vec()))
            .prop_map(|(tenant, tier)| Op::SetTier { tenant, tier }),
        1 => t().prop_map(|tenant| Op::Suspend { tenant }),
        1 => t().prop_map(|tenant| Op::Activate { tenant }),
    ]
}

/// What a tenant should hold.
struct TenantModel {
    id: TenantId,
    admin: User,
    limits: TenantLimits,
    suspended: bool,
    /// Every user and whether it is active.
    users: BTreeMap<UserId, bool>,
    /// Every project and its name.
    projects: BTreeMap<ProjectId, String>,
}

impl TenantModel {
    fn active_users(&self) -> u64 {
        self.users.values().filter(|a| **a).count() as u64
    }

    fn nth_project(&self, pick: usize) -> Option<ProjectId> {
        let n = self.projects.len();
        (n > 0).then(|| *self.projects.keys().nth(pick % n).unwrap())
    }

    /// A user other than the first admin (who is never deactivated here).
    fn nth_member(&self, pick: usize) -> Option<UserId> {
        let members: Vec<UserId> = self
            .users
            .keys()
            .copied()
            .filter(|u| *u != self.admin.id)
            .collect();
        (!members.is_empty()).then(|| members[pick % members.len()])
    }

    fn name_taken(&self, name: &str, except: Option<ProjectId>) -> bool {
        self.projects
            .iter()
            .any(|(id, n)| Some(*id) != except && n.to_lowercase() == name.to_lowercase())
    }
}

/// Compares an outcome with the expected stable code (`None` = success).
fn check<T: std::fmt::Debug>(op: &Op, got: &Result<T, Error>, expected: Option<&str>) {
    let got_code = got.as_ref().err().map(|e| e.code().as_str());
    assert_eq!(got_code, expected, "{op:?} gave {got:?}");
}

fn unknown_project(pick: usize) -> ProjectId {
    ProjectId(uuid::Uuid::from_u128(0xdead_0000 + (pick % 1000) as u128))
}

struct Harness {
    w: World,
    model: Vec<TenantModel>,
    emails: BTreeSet<String>,
}

impl Harness {
    async fn new() -> Self {
        let w = World::new();
        let mut model = Vec::new();
        let mut emails = BTreeSet::new();
        for (i, tier) in [TenantTier::Free, TenantTier::Free, TenantTier::Starter]
            .into_iter()
            .enumerate()
        {
            let created = w.tenant(&format!("tenant-{i}"), tier).await;
            emails.insert(created.admin.email.clone());
            model.push(TenantModel {
                id: created.tenant.id,
                users: BTreeMap::from([(created.admin.id, true)]),
                admin: created.admin,
                limits: tier.limits(),
                suspended: false,
                projects: BTreeMap::new(),
            });
        }
        Self { w, model, emails }
    }

    fn admin(&self, tenant: usize) -> Ctx {
        self.w.as_user(&self.model[tenant].admin)
    }

    async fn apply(&mut self, op: &Op) {
        let w = &self.w;
        match *op {
            Op::Invite { actor, email } => {
                let email = format!("person{email}@example.com");
                let m = &self.model[actor];
                let expected = if m.suspended {
                    Some("tenant_suspended")
                } else if m.active_users() >= u64::from(m.limits.max_users) {
                    Some("tenant_limit_exceeded")
                } else if self.emails.contains(&email) {
                    Some("conflict")
                } else {
                    None
                };
                let req = InviteUserRequest {
                    email: email.clone(),
                    first_name: String::new(),
                    last_name: String::new(),
                    roles: vec!["viewer".into()],
                };
                let got = w.users.invite(&self.admin(actor), req).await;
                check(op, &got, expected);
                if let Ok(user) = got {
                    self.emails.insert(email);
                    self.model[actor].users.insert(user.id, true);
                }
            }
            Op::CreateProject { actor, name, shout } => {
                let name = format!("Project {name}");
                let name = if shout { name.to_uppercase() } else { name };
                let m = &self.model[actor];
                let expected = if m.suspended {
                    Some("tenant_suspended")
                } else if m.projects.len() as u64 >= u64::from(m.limits.max_projects) {
                    Some("tenant_limit_exceeded")
                } else if m.name_taken(&name, None) {
                    Some("conflict")
                } else {
                    None
                };
                let got = w
                    .projects
                    .create(&self.admin(actor), CreateProjectRequest::named(name.clone()))
                    .await;
                check(op, &got, expected);
                if let Ok(p) = got {
                    self.model[actor].projects.insert(p.id, name);
                }
            }
            Op::RenameProject {
                actor,
                owner,
                pick,
                name,
            } => {
                let name = format!("Project {name}");
                let target = self.model[owner].nth_project(pick);
                let id = target.unwrap_or_else(|| unknown_project(pick));
                let expected = if actor != owner || target.is_none() {
                    Some("not_found")
                } else if self.model[owner].name_taken(&name, target) {
                    Some("conflict")
                } else {
                    None
                };
                let req = UpdateProjectRequest {
                    name: Some(name.clone()),
                    ..Default::default()
                };
                let got = w.projects.update(&self.admin(actor), id, req).await;
                check(op, &got, expected);
                if got.is_ok() {
                    self.model[owner].projects.insert(id, name);
                }
            }
            Op::DeleteProject { actor, owner, pick } => {
                let target = self.model[owner].nth_project(pick);
                let id = target.unwrap_or_else(|| unknown_project(pick));
                let expected = (actor != owner || target.is_none()).then_some("not_found");
                let got = w.projects.delete(&self.admin(actor), id).await;
                check(op, &got, expected);
                if got.is_ok() {
                    self.model[owner].projects.remove(&id);
                }
            }
            Op::Deactivate { actor, owner, pick } => {
                let Some(id) = self.model[owner].nth_member(pick) else {
                    return;
                };
                let expected = if actor != owner {
                    Some("not_found")
                } else if !self.model[owner].users[&id] {
                    Some("conflict")
                } else {
                    None
                };
                let got = w.users.deactivate(&self.admin(actor), id).await;
                check(op, &got, expected);
                if got.is_ok() {
                    self.model[owner].users.insert(id, false);
                }
            }
            Op::Reactivate { actor, owner, pick } => {
                let Some(id) = self.model[owner].nth_member(pick) else {
                    return;
                };
                let m = &self.model[owner];
                let expected = if actor != owner {
                    Some("not_found")
                } else if m.users[&id] {
                    Some("conflict")
                } else if m.suspended {
                    Some("tenant_suspended")
                } else if m.active_users() >= u64::from(m.limits.max_users) {
                    Some("tenant_limit_exceeded")
                } else {
                    None
                };
                let got = w.users.reactivate(&self.admin(actor), id).await;
                check(op, &got, expected);
                if got.is_ok() {
                    self.model[owner].users.insert(id, true);
                }
            }
            Op::ReadForeign { actor, owner, pick } => {
                if actor == owner {
                    return;
                }
                let ctx = self.admin(actor);
                let theirs = &self.model[owner];
                let users: Vec<UserId> = theirs.users.keys().copied().collect();
                let user = users[pick % users.len()];
                check(op, &w.users.get(&ctx, user).await, Some("not_found"));
                if let Some(project) = theirs.nth_project(pick) {
                    check(op, &w.projects.get(&ctx, project).await, Some("not_found"));
                }
                check(op, &w.tenants.get(&ctx, theirs.id).await, Some("not_found"));
                check(op, &w.tenants.usage(&ctx, theirs.id).await, Some("not_found"));
                let rename = UpdateTenantRequest {
                    name: Some("Hijacked".into()),
                    ..Default::default()
                };
                check(
                    op,
                    &w.tenants.update(&ctx, theirs.id, rename).await,
                    Some("not_found"),
                );
            }
            Op::SetTier { tenant, tier } => {
                let m = &self.model[tenant];
                let limits = tier.limits();
                let expected = (m.active_users() > u64::from(limits.max_users)
                    || m.projects.len() as u64 > u64::from(limits.max_projects))
                .then_some("validation_error");
                let req = UpdateTenantRequest {
                    tier: Some(tier.as_str().into()),
                    ..Default::default()
                };
                let got = w.tenants.update(&w.sysadmin(), m.id, req).await;
                check(op, &got, expected);
                if got.is_ok() {
                    self.model[tenant].limits = limits;
                }
            }
            Op::Suspend { tenant } => {
                let m = &self.model[tenant];
                let expected = m.suspended.then_some("conflict");
                let req = SuspendTenantRequest {
                    reason: "property test".into(),
                };
                let got = w.tenants.suspend(&w.sysadmin(), m.id, req).await;
                check(op, &got, expected);
                if got.is_ok() {
                    self.model[tenant].suspended = true;
                }
            }
            Op::Activate { tenant } => {
                let m = &self.model[tenant];
                let expected = (!m.suspended).then_some("conflict");
                let got = w.tenants.activate(&w.sysadmin(), m.id).await;
                check(op, &got, expected);
                if got.is_ok() {
                    self.model[tenant].suspended = false;
                }
            }
        }
    }

    /// Each tenant sees exactly its own rows, its counts match, and no count exceeds its limit.
    async fn check_invariants(&self, after: &Op) {
        let page = PageRequest::new(Some(100), None).unwrap();
        let mut all_users = 0;
        for m in &self.model {
            let ctx = self.admin_ctx(m);
            let users = self
                .w
                .users
                .list(&ctx, UserFilter::default(), page)
                .await
                .unwrap();
            assert!(
                users.items.iter().all(|u| u.tenant_id == Some(m.id)),
                "foreign user listed after {after:?}"
            );
            let listed: BTreeMap<UserId, bool> = users.items.iter().map(|u| (u.id, u.is_active)).collect();
            assert_eq!(listed, m.users, "users of {} after {after:?}", m.id);
            assert_eq!(users.total, m.users.len() as u64);
            all_users += m.users.len() as u64;

            let projects = self
                .w
                .projects
                .list(&ctx, ProjectFilter::default(), page)
                .await
                .unwrap();
            assert!(
                projects.items.iter().all(|p| p.tenant_id == m.id),
                "foreign project listed after {after:?}"
            );
            let listed: BTreeMap<ProjectId, String> =
                projects.items.into_iter().map(|p| (p.id, p.name)).collect();
            assert_eq!(listed, m.projects, "projects of {} after {after:?}", m.id);

            let tenants = self
                .w
                .tenants
                .list(&ctx, TenantFilter::default(), page)
                .await
                .unwrap();
            let listed: Vec<TenantId> = tenants.items.iter().map(|t| t.id).collect();
            assert_eq!(listed, [m.id]);
            assert_eq!(
                (tenants.items[0].user_count, tenants.items[0].project_count),
                (m.users.len() as u64, m.projects.len() as u64)
            );

            let usage = self.w.tenants.usage(&ctx, m.id).await.unwrap();
            assert_eq!(
                self.w.tenants.usage(&self.w.sysadmin(), m.id).await.unwrap(),
                usage,
                "sysadmin view differs"
            );
            assert_eq!(usage.users.current, m.active_users());
            assert_eq!(usage.projects.current, m.projects.len() as u64);
            assert_eq!(
                (usage.users.limit, usage.projects.limit),
                (u64::from(m.limits.max_users), u64::from(m.limits.max_projects))
            );
            assert!(
                usage.users.current <= usage.users.limit,
                "user limit broken after {after:?}"
            );
            assert!(
                usage.projects.current <= usage.projects.limit,
                "project limit broken after {after:?}"
            );
        }
        let everyone = self
            .w
            .users
            .list(&self.w.sysadmin(), UserFilter::default(), page)
            .await
            .unwrap();
        assert_eq!(everyone.total, all_users);
    }

    fn admin_ctx(&self, m: &TenantModel) -> Ctx {
        self.w.as_user(&m.admin)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_operations_keep_tenants_isolated_and_within_limits(ops in vec(op(), 1..60)) {
        runtime().block_on(async {
            let mut h = Harness::new().await;
            for op in &ops {
                h.apply(op).await;
                h.check_invariants(op).await;
            }
        });
    }
}
