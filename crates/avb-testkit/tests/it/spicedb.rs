//! The SpiceDB peer, driven through the Rust client the SpiceDB adapter uses (`spicedb-grpc-tonic`): the spec's
//! §6.4 schema, relationships, checks (direct, arrows, wildcard), bulk checks, lookups, reads, deletes, the
//! preshared key, error codes, and check latency.

// Test helpers outside `#[test]` functions may unwrap and index too (the workspace rule exempts tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use avb_testkit::peers::spicedb::{SpiceDbPeer, shared_spicedb, start_spicedb};
use spicedb_grpc_tonic::v1::check_bulk_permissions_pair::Response as BulkResponse;
use spicedb_grpc_tonic::v1::check_permission_response::Permissionship;
use spicedb_grpc_tonic::v1::consistency::Requirement;
use spicedb_grpc_tonic::v1::permissions_service_client::PermissionsServiceClient;
use spicedb_grpc_tonic::v1::relationship_update::Operation;
use spicedb_grpc_tonic::v1::schema_service_client::SchemaServiceClient;
use spicedb_grpc_tonic::v1::watch_service_client::WatchServiceClient;
use spicedb_grpc_tonic::v1::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// The spec's §6.4 schema, verbatim in meaning (comments dropped).
const SCHEMA: &str = r#"
definition user {}

definition tenant {
    relation sysadmin: user
    relation admin: user
    relation developer: user
    relation operator: user
    relation viewer: user
    relation billing: user

    permission manage = sysadmin
    permission administrate = sysadmin + admin
    permission develop = sysadmin + admin + developer
    permission operate = sysadmin + admin + developer + operator
    permission view = sysadmin + admin + developer + operator + viewer
    permission billing_access = sysadmin + admin + billing

    permission create_project = develop
    permission create_api_key = develop
    permission invite_user = administrate
    permission manage_billing = billing_access
    permission view_audit = administrate
    permission configure_voice = develop
    permission manage_themes = develop
}

definition project {
    relation tenant: tenant
    relation owner: user
    relation developer: user
    relation viewer: user

    permission admin = tenant->administrate
    permission develop = owner + developer + tenant->develop
    permission view = owner + developer + viewer + tenant->view
    permission delete = owner + tenant->administrate
}

definition api_key {
    relation tenant: tenant
    relation owner: user

    permission view = owner + tenant->develop
    permission rotate = owner + tenant->administrate
    permission revoke = owner + tenant->administrate
}

definition session {
    relation tenant: tenant
    relation project: project
    relation api_key: api_key

    permission view = tenant->view
    permission terminate = tenant->operate
    permission view_transcript = tenant->view
    permission export = tenant->develop
}

definition voice_config {
    relation tenant: tenant

    permission view = tenant->view
    permission edit = tenant->develop
}

definition theme {
    relation tenant: tenant
    relation owner: user
    relation public: user:*

    permission view = owner + tenant->view + public
    permission apply = owner + tenant->view
    permission edit = owner + tenant->develop
    permission delete = owner + tenant->administrate
}

definition persona {
    relation tenant: tenant
    relation owner: user

    permission view = owner + tenant->view
    permission use = owner + tenant->operate
    permission edit = owner + tenant->develop
    permission delete = owner + tenant->administrate
}
"#;

/// Adds `authorization: Bearer <key>` (or nothing) to every request.
#[derive(Clone)]
struct Bearer(Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(key) = &self.0 {
            let value = format!("Bearer {key}")
                .parse()
                .map_err(|_| Status::internal("bad key"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

type Svc = InterceptedService<Channel, Bearer>;

struct Clients {
    perms: PermissionsServiceClient<Svc>,
    schema: SchemaServiceClient<Svc>,
    watch: WatchServiceClient<Svc>,
}

/// Connects after the ready line; a few quick retries, never the client's 1 s reconnect backoff.
async fn channel(peer: &SpiceDbPeer) -> Channel {
    let endpoint = Endpoint::from_shared(peer.url())
        .unwrap()
        .connect_timeout(Duration::from_secs(2));
    let mut last = None;
    for _ in 0..20 {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("cannot connect to {}: {last:?}", peer.endpoint);
}

async fn clients(peer: &SpiceDbPeer, key: Option<&str>) -> Clients {
    let ch = channel(peer).await;
    let auth = Bearer(key.map(str::to_owned));
    Clients {
        perms: PermissionsServiceClient::with_interceptor(ch.clone(), auth.clone()),
        schema: SchemaServiceClient::with_interceptor(ch.clone(), auth.clone()),
        watch: WatchServiceClient::with_interceptor(ch, auth),
    }
}

fn obj(kind: &str, id: &str) -> ObjectReference {
    ObjectReference {
        object_type: kind.into(),
        object_id: id.into(),
    }
}

fn subject(kind: &str, id: &str) -> SubjectReference {
    SubjectReference {
        object: Some(obj(kind, id)),
        optional_relation: String::new(),
    }
}

/// `"tenant:t1#admin@user:alice"` → a relationship.
fn rel(text: &str) -> Relationship {
    let (resource, subject_text) = text.split_once('@').unwrap();
    let (resource, relation) = resource.split_once('#').unwrap();
    let (rtype, rid) = resource.split_once(':').unwrap();
    let (stype, sid) = subject_text.split_once(':').unwrap();
    Relationship {
        resource: Some(obj(rtype, rid)),
        relation: relation.into(),
        subject: Some(subject(stype, sid)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

fn fresh(token: &ZedToken) -> Option<Consistency> {
    Some(Consistency {
        requirement: Some(Requirement::AtLeastAsFresh(token.clone())),
    })
}

const RELATIONSHIPS: &[&str] = &[
    "tenant:t1#sysadmin@user:root",
    "tenant:t1#admin@user:alice",
    "tenant:t1#developer@user:dev",
    "tenant:t1#operator@user:op",
    "tenant:t1#viewer@user:val",
    "tenant:t1#billing@user:bill",
    "tenant:t2#admin@user:bob",
    "project:p1#tenant@tenant:t1",
    "project:p1#owner@user:olga",
    "project:p2#tenant@tenant:t2",
    "theme:th1#tenant@tenant:t1",
    "theme:th1#public@user:*",
    "theme:th2#tenant@tenant:t2",
    "session:s1#tenant@tenant:t1",
    "persona:pe1#tenant@tenant:t1",
    "persona:pe1#owner@user:olga",
];

/// (resource, permission, user, expected)
const CHECKS: &[(&str, &str, &str, bool)] = &[
    // tenant: direct relations and computed hierarchy
    ("tenant:t1", "manage", "root", true),
    ("tenant:t1", "manage", "alice", false),
    ("tenant:t1", "administrate", "alice", true),
    ("tenant:t1", "administrate", "dev", false),
    ("tenant:t1", "develop", "dev", true),
    ("tenant:t1", "operate", "op", true),
    ("tenant:t1", "develop", "op", false),
    ("tenant:t1", "view", "val", true),
    ("tenant:t1", "view", "bill", false),
    ("tenant:t1", "billing_access", "bill", true),
    ("tenant:t1", "manage_billing", "alice", true),
    ("tenant:t1", "invite_user", "alice", true),
    ("tenant:t1", "create_project", "val", false),
    ("tenant:t1", "view", "bob", false),
    ("tenant:t2", "administrate", "bob", true),
    // project: arrows to tenant
    ("project:p1", "admin", "alice", true),
    ("project:p1", "admin", "olga", false),
    ("project:p1", "develop", "dev", true),
    ("project:p1", "develop", "olga", true),
    ("project:p1", "view", "val", true),
    ("project:p1", "delete", "olga", true),
    ("project:p1", "delete", "dev", false),
    ("project:p1", "view", "bob", false),
    ("project:p2", "view", "bob", true),
    // theme: wildcard public
    ("theme:th1", "view", "stranger", true),
    ("theme:th1", "apply", "stranger", false),
    ("theme:th1", "edit", "dev", true),
    ("theme:th1", "delete", "alice", true),
    ("theme:th1", "delete", "dev", false),
    ("theme:th2", "view", "stranger", false),
    ("theme:th2", "view", "bob", true),
    // session, persona
    ("session:s1", "terminate", "op", true),
    ("session:s1", "export", "op", false),
    ("persona:pe1", "use", "op", true),
    ("persona:pe1", "edit", "olga", true),
    ("persona:pe1", "delete", "dev", false),
];

fn check_request(resource: &str, permission: &str, user: &str, at: &ZedToken) -> CheckPermissionRequest {
    let (rtype, rid) = resource.split_once(':').unwrap();
    CheckPermissionRequest {
        consistency: fresh(at),
        resource: Some(obj(rtype, rid)),
        permission: permission.into(),
        subject: Some(subject("user", user)),
        context: None,
        with_tracing: false,
    }
}

async fn write_schema(c: &mut Clients) {
    let written = c
        .schema
        .write_schema(WriteSchemaRequest {
            schema: SCHEMA.into(),
        })
        .await
        .unwrap();
    assert!(written.into_inner().written_at.is_some());
}

async fn write(c: &mut Clients, rels: &[&str]) -> ZedToken {
    let updates = rels
        .iter()
        .map(|r| RelationshipUpdate {
            operation: Operation::Touch as i32,
            relationship: Some(rel(r)),
        })
        .collect();
    let resp = c
        .perms
        .write_relationships(WriteRelationshipsRequest {
            updates,
            optional_preconditions: vec![],
            optional_transaction_metadata: None,
        })
        .await
        .unwrap()
        .into_inner();
    resp.written_at.unwrap()
}

async fn check(c: &mut Clients, resource: &str, permission: &str, user: &str, at: &ZedToken) -> bool {
    let resp = c
        .perms
        .check_permission(check_request(resource, permission, user, at))
        .await
        .unwrap();
    let resp = resp.into_inner();
    assert!(resp.checked_at.is_some());
    match Permissionship::try_from(resp.permissionship).unwrap() {
        Permissionship::HasPermission => true,
        Permissionship::NoPermission => false,
        other => panic!("unexpected permissionship {other:?}"),
    }
}

async fn setup() -> (SpiceDbPeer, Clients, ZedToken) {
    let peer = start_spicedb().await.unwrap();
    let mut c = clients(&peer, Some(&peer.preshared_key)).await;
    write_schema(&mut c).await;
    let token = write(&mut c, RELATIONSHIPS).await;
    (peer, c, token)
}

#[tokio::test]
async fn ready_endpoint_accepts_tcp_connections_and_drop_kills_the_peer() {
    let started = Instant::now();
    let peer = start_spicedb().await.unwrap();
    println!(
        "spicedb peer ready in {:?} at {}",
        started.elapsed(),
        peer.endpoint
    );
    assert!(peer.endpoint.starts_with("127.0.0.1:"));
    assert_eq!(peer.endpoint, format!("127.0.0.1:{}", peer.port));
    assert!(peer.preshared_key.len() >= 32);
    let debug = format!("{peer:?}");
    assert!(
        !debug.contains(&peer.preshared_key),
        "Debug leaks the key: {debug}"
    );
    tokio::net::TcpStream::connect(&peer.endpoint).await.unwrap();

    let endpoint = peer.endpoint.clone();
    drop(peer);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if tokio::net::TcpStream::connect(&endpoint).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "peer still accepting on {endpoint} after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_peer_gets_its_own_key_and_empty_engine() {
    let (a, b) = tokio::join!(start_spicedb(), start_spicedb());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.endpoint, b.endpoint);
    assert_ne!(a.preshared_key, b.preshared_key);
    let mut ca = clients(&a, Some(&a.preshared_key)).await;
    write_schema(&mut ca).await;
    ca.schema.read_schema(ReadSchemaRequest {}).await.unwrap();
    // b has no schema: SpiceDB answers NOT_FOUND for an empty schema.
    let mut cb = clients(&b, Some(&b.preshared_key)).await;
    let err = cb.schema.read_schema(ReadSchemaRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // a's key is wrong for b.
    let mut cross = clients(&b, Some(&a.preshared_key)).await;
    let err = cross.schema.read_schema(ReadSchemaRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
}

#[tokio::test]
async fn schema_round_trips() {
    let peer = start_spicedb().await.unwrap();
    let mut c = clients(&peer, Some(&peer.preshared_key)).await;
    write_schema(&mut c).await;
    let read = c
        .schema
        .read_schema(ReadSchemaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(read.read_at.is_some());
    for definition in [
        "user",
        "tenant",
        "project",
        "api_key",
        "session",
        "voice_config",
        "theme",
        "persona",
    ] {
        assert!(
            read.schema_text.contains(&format!("definition {definition} {{")),
            "{}",
            read.schema_text
        );
    }
    assert!(
        read.schema_text.contains("relation public: user:*"),
        "{}",
        read.schema_text
    );
    assert!(
        read.schema_text.contains("tenant->administrate"),
        "{}",
        read.schema_text
    );
}

#[tokio::test]
async fn checks_follow_the_spec_schema() {
    let (_peer, mut c, token) = setup().await;
    let mut wrong = Vec::new();
    for &(resource, permission, user, expected) in CHECKS {
        if check(&mut c, resource, permission, user, &token).await != expected {
            wrong.push(format!("{resource}#{permission}@user:{user} expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "wrong answers: {wrong:#?}");
}

#[tokio::test]
async fn bulk_check_answers_each_item_in_order() {
    let (_peer, mut c, token) = setup().await;
    let items: Vec<_> = CHECKS
        .iter()
        .map(|&(resource, permission, user, _)| {
            let r = check_request(resource, permission, user, &token);
            CheckBulkPermissionsRequestItem {
                resource: r.resource,
                permission: r.permission,
                subject: r.subject,
                context: None,
            }
        })
        .chain(std::iter::once(CheckBulkPermissionsRequestItem {
            resource: Some(obj("tenant", "t1")),
            permission: "no_such_permission".into(),
            subject: Some(subject("user", "alice")),
            context: None,
        }))
        .collect();
    let resp = c
        .perms
        .check_bulk_permissions(CheckBulkPermissionsRequest {
            consistency: fresh(&token),
            items: items.clone(),
            with_tracing: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.checked_at.is_some());
    assert_eq!(resp.pairs.len(), items.len());
    for (pair, (item, expected)) in resp
        .pairs
        .iter()
        .zip(items.iter().zip(CHECKS.iter().map(|c| Some(c.3))))
    {
        assert_eq!(pair.request.as_ref(), Some(item));
        match (&pair.response, expected) {
            (Some(BulkResponse::Item(answer)), Some(expected)) => {
                let has = answer.permissionship == Permissionship::HasPermission as i32;
                assert_eq!(has, expected, "{item:?}");
            }
            other => panic!("unexpected pair {other:?} for {item:?}"),
        }
    }
    // The unknown permission is a per-item error, not a failure of the whole call.
    match &resp.pairs.last().unwrap().response {
        Some(BulkResponse::Error(status)) => {
            assert_eq!(status.code, Code::FailedPrecondition as i32, "{status:?}");
            assert!(status.message.contains("no_such_permission"), "{status:?}");
        }
        other => panic!("expected an error item, got {other:?}"),
    }
}

async fn lookup_resources(
    c: &mut Clients,
    kind: &str,
    permission: &str,
    user: &str,
    at: &ZedToken,
) -> BTreeSet<String> {
    let mut stream = c
        .perms
        .lookup_resources(LookupResourcesRequest {
            consistency: fresh(at),
            resource_object_type: kind.into(),
            permission: permission.into(),
            subject: Some(subject("user", user)),
            context: None,
            optional_limit: 0,
            optional_cursor: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = BTreeSet::new();
    while let Some(item) = stream.message().await.unwrap() {
        assert!(item.looked_up_at.is_some());
        ids.insert(item.resource_object_id);
    }
    ids
}

async fn lookup_subjects(
    c: &mut Clients,
    resource: &str,
    permission: &str,
    at: &ZedToken,
) -> BTreeSet<String> {
    let (rtype, rid) = resource.split_once(':').unwrap();
    let mut stream = c
        .perms
        .lookup_subjects(LookupSubjectsRequest {
            consistency: fresh(at),
            resource: Some(obj(rtype, rid)),
            permission: permission.into(),
            subject_object_type: "user".into(),
            optional_subject_relation: String::new(),
            context: None,
            optional_concrete_limit: 0,
            optional_cursor: None,
            wildcard_option: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = BTreeSet::new();
    while let Some(item) = stream.message().await.unwrap() {
        ids.insert(item.subject.unwrap().subject_object_id);
    }
    ids
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn lookups_stream_through_the_engine_socket() {
    let (_peer, mut c, token) = setup().await;
    assert_eq!(
        lookup_resources(&mut c, "project", "view", "val", &token).await,
        set(&["p1"])
    );
    assert_eq!(
        lookup_resources(&mut c, "project", "view", "bob", &token).await,
        set(&["p2"])
    );
    assert_eq!(
        lookup_resources(&mut c, "project", "delete", "olga", &token).await,
        set(&["p1"])
    );
    assert_eq!(
        lookup_resources(&mut c, "theme", "view", "stranger", &token).await,
        set(&["th1"])
    );
    assert_eq!(
        lookup_resources(&mut c, "theme", "view", "dev", &token).await,
        set(&["th1"])
    );
    assert!(
        lookup_resources(&mut c, "tenant", "view", "stranger", &token)
            .await
            .is_empty()
    );

    assert_eq!(
        lookup_subjects(&mut c, "tenant:t1", "administrate", &token).await,
        set(&["alice", "root"])
    );
    assert_eq!(
        lookup_subjects(&mut c, "project:p1", "develop", &token).await,
        set(&["alice", "dev", "olga", "root"])
    );
    let theme_viewers = lookup_subjects(&mut c, "theme:th1", "view", &token).await;
    assert!(theme_viewers.contains("*"), "wildcard missing: {theme_viewers:?}");
    assert!(theme_viewers.contains("val"), "{theme_viewers:?}");
}

async fn read_relationships(c: &mut Clients, filter: RelationshipFilter, at: &ZedToken) -> BTreeSet<String> {
    let mut stream = c
        .perms
        .read_relationships(ReadRelationshipsRequest {
            consistency: fresh(at),
            relationship_filter: Some(filter),
            optional_limit: 0,
            optional_cursor: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = BTreeSet::new();
    while let Some(item) = stream.message().await.unwrap() {
        assert!(item.read_at.is_some());
        let r = item.relationship.unwrap();
        let (res, sub) = (r.resource.unwrap(), r.subject.unwrap().object.unwrap());
        out.insert(format!(
            "{}:{}#{}@{}:{}",
            res.object_type, res.object_id, r.relation, sub.object_type, sub.object_id
        ));
    }
    out
}

fn filter(kind: &str, id: &str, relation: &str) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: kind.into(),
        optional_resource_id: id.into(),
        optional_resource_id_prefix: String::new(),
        optional_relation: relation.into(),
        optional_subject_filter: None,
    }
}

#[tokio::test]
async fn read_and_delete_relationships_with_zedtoken_consistency() {
    let (_peer, mut c, token) = setup().await;
    let tenant_t1 = read_relationships(&mut c, filter("tenant", "t1", ""), &token).await;
    let expected: BTreeSet<String> = RELATIONSHIPS
        .iter()
        .filter(|r| r.starts_with("tenant:t1#"))
        .map(|r| (*r).to_owned())
        .collect();
    assert_eq!(tenant_t1, expected);
    let themes = read_relationships(&mut c, filter("theme", "", "public"), &token).await;
    assert_eq!(themes, set(&["theme:th1#public@user:*"]));

    assert!(check(&mut c, "project:p1", "admin", "alice", &token).await);
    let deleted = c
        .perms
        .delete_relationships(DeleteRelationshipsRequest {
            relationship_filter: Some(filter("tenant", "t1", "admin")),
            optional_preconditions: vec![],
            optional_limit: 0,
            optional_allow_partial_deletions: false,
            optional_transaction_metadata: None,
        })
        .await
        .unwrap()
        .into_inner();
    let after = deleted.deleted_at.unwrap();
    assert_ne!(after, token);
    // Read-your-writes through the deletion's ZedToken.
    assert!(!check(&mut c, "tenant:t1", "administrate", "alice", &after).await);
    assert!(!check(&mut c, "project:p1", "admin", "alice", &after).await);
    assert!(check(&mut c, "project:p1", "admin", "root", &after).await);
    let remaining = read_relationships(&mut c, filter("tenant", "t1", ""), &after).await;
    assert_eq!(remaining.len(), expected.len() - 1);
    assert!(!remaining.contains("tenant:t1#admin@user:alice"));

    // A relationship written after the delete is visible at its own token.
    let again = write(&mut c, &["tenant:t1#admin@user:alice"]).await;
    assert!(check(&mut c, "project:p1", "admin", "alice", &again).await);
}

#[tokio::test]
async fn watch_streams_relationship_updates() {
    let (_peer, mut c, token) = setup().await;
    let watch = c.watch.watch(WatchRequest {
        optional_object_types: vec![],
        optional_start_cursor: Some(token.clone()),
        optional_relationship_filters: vec![],
        optional_update_kinds: vec![],
    });
    // The host sends response headers at once, so the stream opens before anything is written.
    let mut stream = tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .unwrap()
        .unwrap()
        .into_inner();
    write(&mut c, &["tenant:t9#admin@user:zoe"]).await;
    let update = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let resp = stream.message().await.unwrap().unwrap();
            if let Some(u) = resp.updates.into_iter().next() {
                return u;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(update.operation, Operation::Touch as i32);
    assert_eq!(update.relationship, Some(rel("tenant:t9#admin@user:zoe")));
}

#[tokio::test]
async fn preshared_key_is_enforced_on_unary_and_streaming_calls() {
    let (peer, mut good, token) = setup().await;
    assert!(check(&mut good, "tenant:t1", "view", "val", &token).await);

    for (key, expected) in [
        (None, Code::Unauthenticated),
        (Some("not-the-key"), Code::PermissionDenied),
    ] {
        let mut c = clients(&peer, key).await;
        let err = c
            .perms
            .check_permission(check_request("tenant:t1", "view", "val", &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), expected, "check with {key:?}: {err:?}");
        let err = c
            .schema
            .write_schema(WriteSchemaRequest {
                schema: SCHEMA.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), expected, "write schema with {key:?}: {err:?}");
        let err = match c
            .perms
            .read_relationships(ReadRelationshipsRequest {
                consistency: fresh(&token),
                relationship_filter: Some(filter("tenant", "", "")),
                optional_limit: 0,
                optional_cursor: None,
            })
            .await
        {
            Err(err) => err,
            Ok(resp) => resp.into_inner().message().await.unwrap_err(),
        };
        assert_eq!(err.code(), expected, "read with {key:?}: {err:?}");
    }
    // A key differing only in a suffix is still wrong.
    let near = format!("{}x", peer.preshared_key);
    let mut c = clients(&peer, Some(&near)).await;
    let err = c
        .perms
        .check_permission(check_request("tenant:t1", "view", "val", &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn engine_errors_keep_their_grpc_codes() {
    let (_peer, mut c, token) = setup().await;
    let err = c
        .schema
        .write_schema(WriteSchemaRequest {
            schema: "definition {".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        !err.message().starts_with("rpc error"),
        "Go prefix not stripped: {}",
        err.message()
    );

    let err = c
        .perms
        .check_permission(check_request("nope:x", "view", "val", &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("nope"), "{err:?}");

    let mut stream_err = None;
    match c
        .perms
        .lookup_resources(LookupResourcesRequest {
            consistency: fresh(&token),
            resource_object_type: "nope".into(),
            permission: "view".into(),
            subject: Some(subject("user", "val")),
            context: None,
            optional_limit: 0,
            optional_cursor: None,
        })
        .await
    {
        Err(err) => stream_err = Some(err),
        Ok(resp) => {
            let mut stream = resp.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(err) => {
                        stream_err = Some(err);
                        break;
                    }
                }
            }
        }
    }
    let err = stream_err.expect("lookup on an unknown type must fail");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // Invalid input caught by SpiceDB's request validation.
    let err = c
        .perms
        .write_relationships(WriteRelationshipsRequest {
            updates: vec![RelationshipUpdate {
                operation: Operation::Touch as i32,
                relationship: None,
            }],
            optional_preconditions: vec![],
            optional_transaction_metadata: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

#[tokio::test]
async fn check_latency_over_500_checks() {
    let (_peer, mut c, token) = setup().await;
    let requests: Vec<_> = CHECKS
        .iter()
        .map(|&(r, p, u, expected)| (check_request(r, p, u, &token), expected))
        .collect();
    // Warm-up.
    for (req, _) in &requests {
        c.perms.check_permission(req.clone()).await.unwrap();
    }
    let mut samples = Vec::with_capacity(500);
    for (req, expected) in requests.iter().cycle().take(500) {
        let started = Instant::now();
        let resp = c.perms.check_permission(req.clone()).await.unwrap().into_inner();
        samples.push(started.elapsed());
        assert_eq!(
            resp.permissionship == Permissionship::HasPermission as i32,
            *expected
        );
    }
    samples.sort();
    let total: Duration = samples.iter().sum();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "spicedb CheckPermission over 500 sequential checks: mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
        total / 500,
        pct(50),
        pct(99),
        samples[samples.len() - 1]
    );
    // Loose sanity bound (loopback, shared 2-core machine): catches a stall such as a reconnect backoff.
    assert!(
        pct(50) < Duration::from_millis(50),
        "median check latency {:?}",
        pct(50)
    );
}

#[test]
fn shared_peer_starts_once_and_outlives_the_runtime_that_started_it() {
    let first = tokio::runtime::Runtime::new().unwrap();
    let shared = first.block_on(shared_spicedb()).unwrap();
    drop(first);

    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let again = shared_spicedb().await.unwrap();
        assert_eq!(again.endpoint, shared.endpoint);
        assert_eq!(again.preshared_key, shared.preshared_key);
        assert!(!format!("{again:?}").contains(&again.preshared_key));
        let channel = Endpoint::from_shared(again.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut schema =
            SchemaServiceClient::with_interceptor(channel, Bearer(Some(again.preshared_key.clone())));
        let written = schema
            .write_schema(WriteSchemaRequest {
                schema: SCHEMA.into(),
            })
            .await
            .unwrap();
        assert!(written.into_inner().written_at.is_some());
    });
}

/// The server with `SPICEDB_ENDPOINT` set decides permissions in the real SpiceDB: the schema is written at start,
/// the bootstrap's relationships land there, and the REST API's guards follow them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_configured_with_spicedb_checks_permissions_there() {
    use avb_testkit::blackbox::Framework;
    use serde_json::json;
    let peer = start_spicedb().await.unwrap();
    let server = Framework::Axum
        .start_with(json!({
            "spicedb_endpoint": peer.endpoint,
            "spicedb_token": peer.preshared_key,
            "spicedb_insecure": true,
        }))
        .await
        .unwrap();
    // The admin may create a project (tenant#create_project via the admin relation written in SpiceDB).
    let created = server
        .post("/api/v2/projects")
        .bearer(&server.admin_token)
        .json(&json!({"name": "Through SpiceDB"}))
        .send()
        .await
        .unwrap();
    created.expect(201).unwrap();
    let project = created.json()["id"].as_str().unwrap().to_owned();
    // A viewer invited into the tenant may read but not create.
    let invited = server
        .post("/api/v2/users")
        .bearer(&server.admin_token)
        .json(&json!({"email": "viewer@demo.test", "first_name": "V", "last_name": "W", "roles": ["viewer"]}))
        .send()
        .await
        .unwrap();
    invited.expect(201).unwrap();
    let viewer = server
        .token_for(
            "viewer@demo.test",
            Some(&server.tenant_id),
            &[avb_core::Role::Viewer],
        )
        .unwrap();
    let denied = server
        .post("/api/v2/projects")
        .bearer(&viewer)
        .json(&json!({"name": "Nope"}))
        .send()
        .await
        .unwrap();
    denied.expect_error(403, "permission_denied").unwrap();
    server
        .get(&format!("/api/v2/projects/{project}"))
        .bearer(&viewer)
        .send()
        .await
        .unwrap()
        .expect(200)
        .unwrap();
    // The relationships are in SpiceDB itself: the admin's `develop` on the project is answered there.
    let mut client = PermissionsServiceClient::with_interceptor(
        Endpoint::from_shared(peer.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
        Bearer(Some(peer.preshared_key.clone())),
    );
    let tenant_relations = client
        .read_relationships(ReadRelationshipsRequest {
            consistency: Some(Consistency {
                requirement: Some(Requirement::FullyConsistent(true)),
            }),
            relationship_filter: Some(RelationshipFilter {
                resource_type: "project".into(),
                optional_resource_id: project.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut stream = tenant_relations.into_inner();
    let mut seen = 0;
    while stream.message().await.unwrap().is_some() {
        seen += 1;
    }
    assert!(
        seen >= 1,
        "the project's tenant relation was not written to SpiceDB"
    );
}
