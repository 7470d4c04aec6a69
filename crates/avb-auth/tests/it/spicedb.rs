//! The SpiceDB adapter against the real engine (SpiceDB v1.54 behind `avb-testkit`'s peer): the shared
//! authorizer conformance suite, error mapping (by ErrorInfo reason and by message), failing closed when
//! SpiceDB is down, slow or rejects our key, configuration from the environment, and check latency.
//!
//! Needs `scripts/install-peers.sh spicedb`; runs with `--features spicedb,conformance` (CI: `--all-features`).
#![cfg(all(feature = "spicedb", feature = "conformance"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use avb_auth::Error;
use avb_auth::adapters::spicedb::{DEFAULT_TIMEOUT, SpiceDbAuthorizer, SpiceDbAuthorizerBuilder};
use avb_auth::authorizer::{
    Authorizer, CheckRequest, Consistency, LookupResourcesRequest, ObjectRef, Relationship,
    RelationshipFilter, RelationshipUpdate, SubjectRef, ZedToken,
};
use avb_auth::zed;
use avb_core::{Ctx, ErrorCode, HasCode, RequestId, UuidV7Ids};
use avb_testkit::peers::spicedb::{SpiceDbPeer, shared_spicedb, start_spicedb};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "avb-auth-spicedb-tests", None)
}

/// An adapter on the shared peer (one per test: a tonic channel belongs to the test's runtime), spec schema synced.
async fn shared() -> Arc<dyn Authorizer> {
    let peer = shared_spicedb().await.unwrap();
    let authz = SpiceDbAuthorizer::builder(peer.endpoint, peer.preshared_key)
        .insecure(true)
        .build()
        .unwrap();
    authz.sync_schema(&ctx()).await.unwrap();
    Arc::new(authz)
}

mod conformance {
    avb_auth::authorizer_conformance!(async { super::shared().await });
}

/// A dedicated peer with the spec schema, and an adapter on it.
async fn own_peer() -> (SpiceDbPeer, SpiceDbAuthorizer) {
    let peer = start_spicedb().await.unwrap();
    let authz = SpiceDbAuthorizer::builder(peer.endpoint.clone(), peer.preshared_key.clone())
        .insecure(true)
        .build()
        .unwrap();
    authz.sync_schema(&ctx()).await.unwrap();
    (peer, authz)
}

fn rel(text: &str) -> Relationship {
    text.parse().unwrap()
}

fn id() -> String {
    Uuid::new_v4().to_string()
}

fn tenant_check(tenant: &str, permission: &str, user: &str) -> CheckRequest {
    CheckRequest::new(
        ObjectRef::new("tenant", tenant),
        permission,
        SubjectRef::new(ObjectRef::new("user", user)),
    )
}

#[tokio::test]
async fn fails_closed_with_service_unavailable_when_spicedb_goes_away() {
    let (mut peer, authz) = own_peer().await;
    let (tenant, user) = (id(), id());
    let token = authz
        .write_relationships(
            &ctx(),
            &[RelationshipUpdate::Touch(rel(&format!(
                "tenant:{tenant}#admin@user:{user}"
            )))],
        )
        .await
        .unwrap();
    let request = tenant_check(&tenant, "administrate", &user);
    let fresh = Consistency::AtLeastAsFresh(token);
    assert!(authz.check(&ctx(), &request, &fresh).await.unwrap().is_allowed());

    peer.stop().await.unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let err = authz.check(&ctx(), &request, &fresh).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable, "{err:?}");
        assert!(err.is_temporary());
        assert!(
            started.elapsed() < DEFAULT_TIMEOUT,
            "a refused connection fails fast"
        );
    }
    let bulk = authz
        .check_bulk(&ctx(), std::slice::from_ref(&request), &fresh)
        .await
        .unwrap_err();
    assert_eq!(bulk.code(), ErrorCode::ServiceUnavailable);
    let lookup = LookupResourcesRequest {
        resource_type: "tenant".into(),
        permission: "view".into(),
        subject: SubjectRef::new(ObjectRef::new("user", &user)),
    };
    let err = authz.lookup_resources(&ctx(), &lookup, &fresh).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_unavailable_and_the_ctx_deadline_wins() {
    // Accepts TCP connections and never speaks HTTP/2.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let authz = SpiceDbAuthorizer::builder(addr.to_string(), "key")
        .insecure(true)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let request = tenant_check(&id(), "view", &id());

    let started = Instant::now();
    let err = authz
        .check(&ctx(), &request, &Consistency::FullyConsistent)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), ErrorCode::ServiceUnavailable, "{err:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );

    let short = ctx().with_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let err = authz
        .check(&short, &request, &Consistency::FullyConsistent)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::Timeout,
        "the caller's own deadline: {err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(280));

    let expired = ctx().with_deadline(Some(Instant::now()));
    let err = authz
        .check(&expired, &request, &Consistency::FullyConsistent)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    hold.abort();
}

#[tokio::test]
async fn a_rejected_preshared_key_is_a_configuration_error_never_an_answer() {
    let peer = shared_spicedb().await.unwrap();
    let authz = SpiceDbAuthorizer::builder(peer.endpoint.clone(), format!("{}-wrong", peer.preshared_key))
        .insecure(true)
        .build()
        .unwrap();
    let err = authz
        .check(
            &ctx(),
            &tenant_check(&id(), "view", &id()),
            &Consistency::FullyConsistent,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::InternalError);
    assert!(
        !err.to_string().contains(&peer.preshared_key),
        "the key never appears in errors"
    );
    let err = authz
        .write_schema(&ctx(), zed::AGENTVOICEBOX_SCHEMA)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn engine_errors_map_to_the_same_variants_as_the_local_engine() {
    let authz = shared().await;
    let fully = Consistency::FullyConsistent;
    let user = SubjectRef::new(ObjectRef::new("user", id()));

    // Unary calls (message path: the peer's C boundary drops ErrorInfo).
    let err = authz
        .check(
            &ctx(),
            &CheckRequest::new(ObjectRef::new("spaceship", "x1"), "view", user.clone()),
            &fully,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownDefinition(name) if name == "spaceship"),
        "{err:?}"
    );
    let err = authz
        .check(&ctx(), &tenant_check(&id(), "fly", &id()), &fully)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownRelation { definition, relation } if definition == "tenant" && relation == "fly"),
        "{err:?}"
    );

    // Streaming calls (ErrorInfo reason path).
    let lookup = LookupResourcesRequest {
        resource_type: "spaceship".into(),
        permission: "view".into(),
        subject: user.clone(),
    };
    let err = authz.lookup_resources(&ctx(), &lookup, &fully).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownDefinition(name) if name == "spaceship"),
        "{err:?}"
    );
    let lookup = LookupResourcesRequest {
        resource_type: "tenant".into(),
        permission: "fly".into(),
        subject: user,
    };
    let err = authz.lookup_resources(&ctx(), &lookup, &fully).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownRelation { relation, .. } if relation == "fly"),
        "{err:?}"
    );

    // Writes.
    let existing = rel(&format!("tenant:{}#viewer@user:{}", id(), id()));
    authz
        .write_relationships(&ctx(), &[RelationshipUpdate::Create(existing.clone())])
        .await
        .unwrap();
    let err = authz
        .write_relationships(&ctx(), &[RelationshipUpdate::Create(existing)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::Conflict);
    let err = authz
        .write_relationships(
            &ctx(),
            &[RelationshipUpdate::Touch(rel(&format!(
                "tenant:{}#view@user:{}",
                id(),
                id()
            )))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError, "{err:?}");

    // Schema text errors carry their position.
    let err = authz.write_schema(&ctx(), "definition user {").await.unwrap_err();
    assert!(
        matches!(&err, Error::Schema(e) if e.position.line >= 1),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::ValidationError);

    // A token from another authorizer (the local engine's format) is rejected, not served stale.
    let foreign = Consistency::AtLeastAsFresh(ZedToken::new("local:42"));
    let err = authz
        .check(&ctx(), &tenant_check(&id(), "view", &id()), &foreign)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError, "{err:?}");

    // An empty filter never reaches SpiceDB.
    let err = authz
        .delete_relationships(&ctx(), &RelationshipFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
}

#[tokio::test]
async fn orphaning_schema_changes_are_schema_in_use_and_an_empty_engine_reads_an_empty_schema() {
    let peer = start_spicedb().await.unwrap();
    let authz = SpiceDbAuthorizer::builder(peer.endpoint.clone(), peer.preshared_key.clone())
        .insecure(true)
        .build()
        .unwrap();
    assert_eq!(authz.read_schema(&ctx()).await.unwrap(), "");
    authz.sync_schema(&ctx()).await.unwrap();
    let read = authz.read_schema(&ctx()).await.unwrap();
    assert_eq!(
        zed::parse(&read).unwrap(),
        zed::parse(zed::AGENTVOICEBOX_SCHEMA).unwrap()
    );

    authz
        .write_relationships(
            &ctx(),
            &[RelationshipUpdate::Touch(rel(&format!(
                "theme:{}#public@user:*",
                id()
            )))],
        )
        .await
        .unwrap();
    let without_public = zed::AGENTVOICEBOX_SCHEMA
        .replace("relation public: user:*", "")
        .replace(" + public", "");
    let err = authz.write_schema(&ctx(), &without_public).await.unwrap_err();
    assert!(matches!(err, Error::SchemaInUse(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::Conflict);
}

#[tokio::test]
async fn configuration_from_the_environment() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let builder = SpiceDbAuthorizerBuilder::from_lookup(env(&[
        ("SPICEDB_ENDPOINT", "spicedb.internal:50051"),
        ("SPICEDB_PRESHARED_KEY", "s3cr3t-key"),
    ]))
    .unwrap();
    assert!(
        builder.config().tls,
        "TLS is on unless SPICEDB_INSECURE says otherwise"
    );
    assert_eq!(builder.config().timeout, Duration::from_secs(5));
    assert!(
        !format!("{builder:?}").contains("s3cr3t-key"),
        "Debug redacts the key"
    );
    let authz = builder.build().unwrap();
    let debug = format!("{authz:?}");
    assert!(
        debug.contains("https://spicedb.internal:50051") && !debug.contains("s3cr3t-key"),
        "{debug}"
    );

    let builder = SpiceDbAuthorizerBuilder::from_lookup(env(&[
        ("SPICEDB_ENDPOINT", "127.0.0.1:50051"),
        ("SPICEDB_PRESHARED_KEY", "k"),
        ("SPICEDB_INSECURE", "true"),
    ]))
    .unwrap();
    assert!(!builder.config().tls);
    assert!(format!("{:?}", builder.build().unwrap()).contains("http://127.0.0.1:50051"));

    for vars in [
        &[("SPICEDB_PRESHARED_KEY", "k")][..],
        &[("SPICEDB_ENDPOINT", "127.0.0.1:1")][..],
        &[
            ("SPICEDB_ENDPOINT", "127.0.0.1:1"),
            ("SPICEDB_PRESHARED_KEY", "k"),
            ("SPICEDB_INSECURE", "maybe"),
        ][..],
    ] {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let err = SpiceDbAuthorizerBuilder::from_lookup(lookup).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{vars:?}: {err:?}");
    }
    let contradictory = SpiceDbAuthorizer::builder("http://127.0.0.1:1", "k")
        .build()
        .unwrap_err();
    assert!(matches!(contradictory, Error::Config(_)), "{contradictory:?}");
    let no_key = SpiceDbAuthorizer::builder("127.0.0.1:1", " ")
        .insecure(true)
        .build()
        .unwrap_err();
    assert!(matches!(no_key, Error::Config(_)));
}

#[test]
fn build_outside_a_runtime_is_an_error_not_a_panic() {
    let err = SpiceDbAuthorizer::builder("127.0.0.1:1", "k")
        .insecure(true)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_latency_through_the_adapter() {
    let (_peer, authz) = own_peer().await;
    let (tenant, project, user) = (id(), id(), id());
    let token = authz
        .write_relationships(
            &ctx(),
            &[
                RelationshipUpdate::Touch(rel(&format!("tenant:{tenant}#developer@user:{user}"))),
                RelationshipUpdate::Touch(rel(&format!("project:{project}#tenant@tenant:{tenant}"))),
            ],
        )
        .await
        .unwrap();
    let consistency = Consistency::AtLeastAsFresh(token);
    let direct = tenant_check(&tenant, "develop", &user);
    let arrow = CheckRequest::new(
        ObjectRef::new("project", &project),
        "develop",
        SubjectRef::new(ObjectRef::new("user", &user)),
    );
    for request in [&direct, &arrow] {
        for _ in 0..20 {
            assert!(
                authz
                    .check(&ctx(), request, &consistency)
                    .await
                    .unwrap()
                    .is_allowed()
            );
        }
        let mut samples = Vec::with_capacity(500);
        for _ in 0..500 {
            let started = Instant::now();
            let result = authz.check(&ctx(), request, &consistency).await.unwrap();
            samples.push(started.elapsed());
            assert!(result.is_allowed());
        }
        samples.sort();
        let mean = samples.iter().sum::<Duration>() / 500;
        println!(
            "SpiceDbAuthorizer::check ({}) over 500 sequential checks: mean {mean:?}, p50 {:?}, p99 {:?}",
            request.resource.object_type, samples[250], samples[495]
        );
        assert!(
            samples[250] < Duration::from_millis(50),
            "median {:?}",
            samples[250]
        );
    }
}
