//! Semantics of the local engine beyond the spec schema: subject sets, cycles, depth, wildcards with
//! exclusion and intersection, `.all()` arrows, fail-closed behaviour and speed.

use crate::support::{ctx, engine, rel, touch_all};
use async_trait::async_trait;
use avb_auth::Error;
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::authorizer::{
    Authorizer, CheckRequest, Consistency, LookupResourcesRequest, LookupSubject, LookupSubjectsRequest,
    ObjectRef, Relationship, RelationshipFilter, RelationshipSnapshot, RelationshipStore, RelationshipUpdate,
    Revision, SubjectRef,
};
use avb_core::{Ctx, ErrorCode, HasCode};
use avb_storage_memory::MemoryRelationshipStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUPS: &str = "
definition user {}

definition group {
    relation member: user | group#member
    relation banned: user
    permission allowed = member - banned
}

definition folder {
    relation parent: folder
    relation viewer: user | group#member
    permission view = viewer + parent->view
}

definition doc {
    relation folder: folder
    relation viewer: user | group#member | user:*
    relation editor: user | group#allowed
    relation banned: user
    relation approver: group | user
    relation reviewer: user:* | user
    relation blocked: user
    permission view = viewer - banned
    permission odd = (viewer - banned) - (reviewer - blocked)
    permission edit_and_view = editor & viewer
    permission approved = approver.all(allowed)
    permission inherited = folder->view
    permission never = nil
}
";

async fn check(
    authz: &dyn Authorizer,
    resource: &str,
    permission: &str,
    subject: &str,
) -> Result<bool, Error> {
    let request = CheckRequest {
        resource: resource.parse().unwrap(),
        permission: permission.into(),
        subject: subject.parse().unwrap(),
    };
    authz
        .check(&ctx(), &request, &Consistency::FullyConsistent)
        .await
        .map(|r| r.is_allowed())
}

async fn users(
    authz: &dyn Authorizer,
    resource: &str,
    permission: &str,
) -> Result<Vec<LookupSubject>, Error> {
    let request = LookupSubjectsRequest {
        resource: resource.parse().unwrap(),
        permission: permission.into(),
        subject_type: "user".into(),
        optional_subject_relation: None,
    };
    authz
        .lookup_subjects(&ctx(), &request, &Consistency::FullyConsistent)
        .await
}

fn subject(id: &str, excluded: &[&str]) -> LookupSubject {
    LookupSubject {
        subject_id: id.into(),
        excluded_subject_ids: excluded.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[tokio::test]
async fn nested_groups_grant_through_subject_sets() {
    let authz = engine(Some(GROUPS));
    touch_all(
        &authz,
        &[
            "doc:d#viewer@group:outer#member",
            "group:outer#member@group:inner#member",
            "group:inner#member@user:ann",
        ],
    )
    .await;
    assert!(check(&authz, "doc:d", "view", "user:ann").await.unwrap());
    assert!(!check(&authz, "doc:d", "view", "user:bob").await.unwrap());
    assert!(
        check(&authz, "doc:d", "view", "group:inner#member")
            .await
            .unwrap(),
        "a subject set is checkable"
    );
    assert!(
        check(&authz, "group:inner", "member", "group:inner#member")
            .await
            .unwrap(),
        "and contains itself"
    );
    assert_eq!(
        users(&authz, "doc:d", "view").await.unwrap(),
        vec![subject("ann", &[])]
    );
}

#[tokio::test]
async fn cycles_terminate_and_fail_closed_unless_another_path_decides() {
    let authz = engine(Some(GROUPS));
    touch_all(
        &authz,
        &[
            "group:a#member@group:b#member",
            "group:b#member@group:a#member",
            "group:b#member@user:bea",
            "folder:f1#parent@folder:f2",
            "folder:f2#parent@folder:f1",
            "folder:f2#viewer@user:bea",
        ],
    )
    .await;
    assert!(
        check(&authz, "group:a", "member", "user:bea").await.unwrap(),
        "a path through the cycle grants"
    );
    assert!(check(&authz, "folder:f1", "view", "user:bea").await.unwrap());
    for (resource, permission) in [("group:a", "member"), ("folder:f1", "view")] {
        let err = check(&authz, resource, permission, "user:nobody")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::CycleDetected { .. }), "{err:?}");
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
    }
    touch_all(&authz, &["group:a#banned@user:bea"]).await;
    assert!(
        !check(&authz, "group:a", "allowed", "user:bea").await.unwrap(),
        "a definite exclusion decides"
    );
    let err = users(&authz, "group:a", "member").await.unwrap_err();
    assert!(
        matches!(err, Error::CycleDetected { .. }),
        "lookups never short-circuit a cycle: {err:?}"
    );
}

#[tokio::test]
async fn chains_deeper_than_the_limit_fail_instead_of_overflowing() {
    let mut tuples: Vec<String> = (0..80)
        .map(|i| format!("group:g{i}#member@group:g{}#member", i + 1))
        .collect();
    tuples.push("group:g80#member@user:deep".into());
    let refs: Vec<&str> = tuples.iter().map(String::as_str).collect();

    let authz = engine(Some(GROUPS));
    touch_all(&authz, &refs).await;
    let err = check(&authz, "group:g0", "member", "user:deep")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::MaxDepthExceeded { max_depth: 50 }),
        "{err:?}"
    );
    assert!(
        check(&authz, "group:g60", "member", "user:deep").await.unwrap(),
        "within the limit it resolves"
    );

    let store: Arc<dyn RelationshipStore> = Arc::new(MemoryRelationshipStore::new());
    let deep = LocalAuthorizer::builder()
        .store(store)
        .schema(GROUPS)
        .max_depth(200)
        .build()
        .unwrap();
    touch_all(&deep, &refs).await;
    assert!(check(&deep, "group:g0", "member", "user:deep").await.unwrap());
}

#[tokio::test]
async fn exclusion_with_a_wildcard_excludes_and_lookup_reports_it_like_spicedb() {
    let authz = engine(Some(GROUPS));
    touch_all(&authz, &["doc:d#viewer@user:*", "doc:d#banned@user:mallory"]).await;
    assert!(check(&authz, "doc:d", "view", "user:anyone").await.unwrap());
    assert!(!check(&authz, "doc:d", "view", "user:mallory").await.unwrap());
    assert_eq!(
        users(&authz, "doc:d", "view").await.unwrap(),
        vec![subject("*", &["mallory"])]
    );
    touch_all(&authz, &["doc:d#viewer@user:carol"]).await;
    assert_eq!(
        users(&authz, "doc:d", "view").await.unwrap(),
        vec![subject("*", &["mallory"]), subject("carol", &[])]
    );
    assert_eq!(
        users(&authz, "doc:d", "viewer").await.unwrap(),
        vec![subject("*", &[]), subject("carol", &[])]
    );
}

#[tokio::test]
async fn wildcard_minus_wildcard_leaves_the_difference_of_exclusions() {
    let authz = engine(Some(GROUPS));
    touch_all(
        &authz,
        &[
            "doc:d#viewer@user:*",
            "doc:d#banned@user:sarah",
            "doc:d#reviewer@user:*",
            "doc:d#blocked@user:tom",
            "doc:d#blocked@user:amy",
            "doc:d#blocked@user:sarah",
        ],
    )
    .await;
    for (user, expected) in [("tom", true), ("amy", true), ("sarah", false), ("bob", false)] {
        assert_eq!(
            check(&authz, "doc:d", "odd", &format!("user:{user}"))
                .await
                .unwrap(),
            expected,
            "{user}"
        );
    }
    assert_eq!(
        users(&authz, "doc:d", "odd").await.unwrap(),
        vec![subject("amy", &[]), subject("tom", &[])]
    );
}

#[tokio::test]
async fn intersection_with_a_wildcard_keeps_only_the_concrete_side() {
    let authz = engine(Some(GROUPS));
    touch_all(&authz, &["doc:d#viewer@user:*", "doc:d#editor@user:erin"]).await;
    assert!(
        check(&authz, "doc:d", "edit_and_view", "user:erin")
            .await
            .unwrap()
    );
    assert!(
        !check(&authz, "doc:d", "edit_and_view", "user:frank")
            .await
            .unwrap()
    );
    assert_eq!(
        users(&authz, "doc:d", "edit_and_view").await.unwrap(),
        vec![subject("erin", &[])]
    );
}

#[tokio::test]
async fn all_arrows_need_every_target_and_at_least_one() {
    let authz = engine(Some(GROUPS));
    assert!(
        !check(&authz, "doc:d", "approved", "user:gil").await.unwrap(),
        "no target: denied"
    );
    touch_all(&authz, &["doc:d#approver@group:g1", "group:g1#member@user:gil"]).await;
    assert!(check(&authz, "doc:d", "approved", "user:gil").await.unwrap());
    touch_all(&authz, &["doc:d#approver@group:g2"]).await;
    assert!(
        !check(&authz, "doc:d", "approved", "user:gil").await.unwrap(),
        "every target must grant"
    );
    assert!(users(&authz, "doc:d", "approved").await.unwrap().is_empty());
    touch_all(&authz, &["group:g2#member@user:gil"]).await;
    assert_eq!(
        users(&authz, "doc:d", "approved").await.unwrap(),
        vec![subject("gil", &[])]
    );
}

/// SpiceDB's own quirk, kept: `.all()` counts a target whose type lacks the relation as a denial in checks,
/// but its lookups skip such targets.
#[tokio::test]
async fn all_arrow_targets_without_the_relation_deny_checks_but_are_skipped_by_lookups() {
    let authz = engine(Some(GROUPS));
    touch_all(
        &authz,
        &[
            "doc:d#approver@group:g1",
            "group:g1#member@user:gil",
            "doc:d#approver@user:xena",
        ],
    )
    .await;
    assert!(!check(&authz, "doc:d", "approved", "user:gil").await.unwrap());
    assert_eq!(
        users(&authz, "doc:d", "approved").await.unwrap(),
        vec![subject("gil", &[])]
    );
}

#[tokio::test]
async fn nil_grants_nothing_and_arrows_follow_folders() {
    let authz = engine(Some(GROUPS));
    touch_all(
        &authz,
        &[
            "doc:d#viewer@user:hal",
            "doc:d#folder@folder:top",
            "folder:top#viewer@user:ivy",
        ],
    )
    .await;
    assert!(!check(&authz, "doc:d", "never", "user:hal").await.unwrap());
    assert!(check(&authz, "doc:d", "inherited", "user:ivy").await.unwrap());
    assert!(!check(&authz, "doc:d", "inherited", "user:hal").await.unwrap());
    let lookup = LookupResourcesRequest {
        resource_type: "doc".into(),
        permission: "inherited".into(),
        subject: "user:ivy".parse().unwrap(),
    };
    assert_eq!(
        authz
            .lookup_resources(&ctx(), &lookup, &Consistency::FullyConsistent)
            .await
            .unwrap(),
        vec!["d"]
    );
}

#[tokio::test]
async fn schema_changes_keep_data_valid() {
    let authz = engine(Some(GROUPS));
    touch_all(&authz, &["doc:d#banned@user:jo"]).await;
    let extended = GROUPS.replace(
        "relation banned: user\n    relation approver",
        "relation banned: user\n    relation extra: user\n    relation approver",
    );
    authz.write_schema(&ctx(), &extended).await.unwrap();
    touch_all(&authz, &["doc:d#extra@user:jo"]).await;
    let shrunk = extended.replace("relation extra: user\n", "");
    let err = authz.write_schema(&ctx(), &shrunk).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    authz
        .delete_relationships(
            &ctx(),
            &RelationshipFilter::resource_type("doc").with_relation("extra"),
        )
        .await
        .unwrap();
    authz.write_schema(&ctx(), &shrunk).await.unwrap();
    assert_eq!(authz.read_schema(&ctx()).await.unwrap(), shrunk);
}

#[tokio::test]
async fn duplicate_updates_and_empty_filters_are_rejected() {
    let authz = engine(Some(GROUPS));
    let r = rel("doc:d#viewer@user:kim");
    let dup = [
        RelationshipUpdate::Touch(r.clone()),
        RelationshipUpdate::Delete(r),
    ];
    assert!(matches!(
        authz.write_relationships(&ctx(), &dup).await,
        Err(Error::InvalidRequest(_))
    ));
    let err = authz
        .delete_relationships(&ctx(), &RelationshipFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)));
}

#[tokio::test]
async fn an_expired_deadline_is_an_error_not_an_answer() {
    let authz = engine(None);
    let expired = ctx().with_deadline(Some(Instant::now()));
    let request = CheckRequest::new(
        ObjectRef::new("tenant", "t1"),
        "view",
        SubjectRef::new(ObjectRef::new("user", "u1")),
    );
    let err = authz
        .check(&expired, &request, &Consistency::MinimizeLatency)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
}

/// A store whose reads fail: the engine must answer with an error, never an allow.
#[derive(Debug)]
struct BrokenStore;

#[derive(Debug)]
struct BrokenSnapshot;

#[async_trait]
impl RelationshipStore for BrokenStore {
    async fn write(&self, _: &Ctx, _: &[RelationshipUpdate]) -> avb_core::Result<Revision> {
        Err(avb_core::Error::unavailable("test", "down"))
    }
    async fn delete(&self, _: &Ctx, _: &RelationshipFilter) -> avb_core::Result<Revision> {
        Err(avb_core::Error::unavailable("test", "down"))
    }
    async fn snapshot(&self, _: &Ctx) -> avb_core::Result<Arc<dyn RelationshipSnapshot>> {
        Ok(Arc::new(BrokenSnapshot))
    }
}

#[async_trait]
impl RelationshipSnapshot for BrokenSnapshot {
    fn revision(&self) -> Revision {
        Revision(1)
    }
    async fn read(
        &self,
        _: &Ctx,
        _: &RelationshipFilter,
        _: Option<usize>,
    ) -> avb_core::Result<Vec<Relationship>> {
        Err(avb_core::Error::unavailable("test", "down"))
    }
}

#[tokio::test]
async fn store_failures_fail_closed() {
    let authz = LocalAuthorizer::new(Arc::new(BrokenStore)).unwrap();
    let err = check(&authz, "theme:t", "view", "user:u").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
    assert!(err.is_temporary());
}

/// 100,000 relationships: 1,000 tenants × (20 role holders + 40 projects × 2 tuples), and more.
#[tokio::test]
async fn a_check_over_100k_relationships_takes_microseconds() {
    let authz = engine(None);
    let mut batch = Vec::with_capacity(10_000);
    let mut written = 0usize;
    for t in 0..1_000 {
        for u in 0..20 {
            let relation = ["admin", "developer", "operator", "viewer", "billing"][u % 5];
            batch.push(rel(&format!("tenant:t{t}#{relation}@user:u{t}x{u}")));
        }
        for p in 0..40 {
            batch.push(rel(&format!("project:p{t}x{p}#tenant@tenant:t{t}")));
            batch.push(rel(&format!("project:p{t}x{p}#owner@user:u{t}x{}", p % 20)));
        }
        if batch.len() >= 10_000 {
            written += batch.len();
            let updates: Vec<RelationshipUpdate> = batch.drain(..).map(RelationshipUpdate::Touch).collect();
            authz.write_relationships(&ctx(), &updates).await.unwrap();
        }
    }
    written += batch.len();
    let updates: Vec<RelationshipUpdate> = batch.drain(..).map(RelationshipUpdate::Touch).collect();
    authz.write_relationships(&ctx(), &updates).await.unwrap();
    assert!(written >= 100_000, "{written}");

    // A viewer of the tenant (u3 holds `viewer`) viewing a project owned by someone else: the longest path.
    let allowed = CheckRequest::new(
        ObjectRef::new("project", "p500x7"),
        "view",
        SubjectRef::new(ObjectRef::new("user", "u500x3")),
    );
    let denied = CheckRequest::new(
        ObjectRef::new("project", "p500x7"),
        "delete",
        SubjectRef::new(ObjectRef::new("user", "u500x3")),
    );
    let mut samples = Vec::with_capacity(200);
    for _ in 0..100 {
        for (request, expected) in [(&allowed, true), (&denied, false)] {
            let start = Instant::now();
            let result = authz
                .check(&ctx(), request, &Consistency::MinimizeLatency)
                .await
                .unwrap();
            samples.push(start.elapsed());
            assert_eq!(result.is_allowed(), expected);
        }
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    // Unoptimized build, shared 2-core machine: a generous bound that a full scan of 100k tuples would blow.
    assert!(median < Duration::from_millis(1), "median check took {median:?}");
}
