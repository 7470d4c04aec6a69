//! Conformance checks for [`Authorizer`] and [`RelationshipStore`] adapters: one check per point of the ports'
//! `# Contract`s, written once and run against every adapter (the local engine here, SpiceDB in its crate):
//!
//! ```text
//! avb_auth::authorizer_conformance!(async { my_authorizer_with_the_spec_schema() });
//! avb_auth::relationship_store_conformance!(async { Arc::new(MyStore::new()) as Arc<dyn RelationshipStore> });
//! ```
//!
//! The authorizer factory returns an `Arc<dyn Authorizer>` with the spec schema ([`zed::AGENTVOICEBOX_SCHEMA`])
//! written. Every check creates its own random (uuid v4) objects and never assumes an empty graph, so the
//! suite runs in parallel against one shared SpiceDB.
// These are test assertions shipped as a library so adapter crates can run them: failing loudly is their job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::authorizer::bootstrap;
use crate::authorizer::{
    Authorizer, CheckRequest, Consistency, LookupResourcesRequest, LookupSubject, LookupSubjectsRequest,
    ObjectRef, Relationship, RelationshipFilter, RelationshipStore, RelationshipUpdate, SubjectFilter,
    SubjectRef, SubjectRelationFilter, ZedToken,
};
use crate::zed;
use avb_core::{
    ApiKeyId, Ctx, ErrorCode, HasCode, PersonaId, ProjectId, RequestId, SessionId, TenantId, ThemeId, UserId,
    UuidV7Ids,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

fn ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance:authorizer", None)
}

fn new_user() -> UserId {
    UserId(Uuid::new_v4())
}

fn new_tenant() -> TenantId {
    TenantId(Uuid::new_v4())
}

fn rel(text: &str) -> Relationship {
    text.parse().unwrap()
}

async fn write(authz: &dyn Authorizer, updates: Vec<RelationshipUpdate>) -> ZedToken {
    authz.write_relationships(&ctx(), &updates).await.unwrap()
}

async fn touch(authz: &dyn Authorizer, rels: &[Relationship]) -> ZedToken {
    write(
        authz,
        rels.iter().cloned().map(RelationshipUpdate::Touch).collect(),
    )
    .await
}

fn role(tenant: TenantId, role: &str, user: UserId) -> Relationship {
    Relationship::new(tenant.into(), role, SubjectRef::user(user))
}

async fn allowed_at(
    authz: &dyn Authorizer,
    resource: impl Into<ObjectRef>,
    permission: &str,
    user: UserId,
    consistency: &Consistency,
) -> bool {
    let request = CheckRequest::new(resource, permission, user);
    authz
        .check(&ctx(), &request, consistency)
        .await
        .unwrap()
        .is_allowed()
}

async fn allowed(
    authz: &dyn Authorizer,
    resource: impl Into<ObjectRef>,
    permission: &str,
    user: UserId,
) -> bool {
    allowed_at(authz, resource, permission, user, &Consistency::FullyConsistent).await
}

/// Asserts exactly which of `permissions` `user` holds on `resource`.
async fn assert_grants(
    authz: &dyn Authorizer,
    resource: impl Into<ObjectRef>,
    user: UserId,
    permissions: &[&str],
    granted: &[&str],
    who: &str,
) {
    let resource = resource.into();
    for permission in permissions {
        let expected = granted.contains(permission);
        let actual = allowed(authz, resource.clone(), permission, user).await;
        assert_eq!(
            actual, expected,
            "{who}: `{permission}` on {} should be {expected}",
            resource.object_type
        );
    }
}

const TENANT_PERMISSIONS: [&str; 13] = [
    "manage",
    "administrate",
    "develop",
    "operate",
    "view",
    "billing_access",
    "create_project",
    "create_api_key",
    "invite_user",
    "manage_billing",
    "view_audit",
    "configure_voice",
    "manage_themes",
];

/// Spec §6.4: sysadmin ⊃ admin ⊃ developer ⊃ operator ⊃ viewer, and billing on its own branch.
pub async fn tenant_roles_form_the_spec_hierarchy(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let table: [(&str, &[&str]); 6] = [
        ("sysadmin", &TENANT_PERMISSIONS),
        (
            "admin",
            &[
                "administrate",
                "develop",
                "operate",
                "view",
                "billing_access",
                "create_project",
                "create_api_key",
                "invite_user",
                "manage_billing",
                "view_audit",
                "configure_voice",
                "manage_themes",
            ],
        ),
        (
            "developer",
            &[
                "develop",
                "operate",
                "view",
                "create_project",
                "create_api_key",
                "configure_voice",
                "manage_themes",
            ],
        ),
        ("operator", &["operate", "view"]),
        ("viewer", &["view"]),
        ("billing", &["billing_access", "manage_billing"]),
    ];
    for (relation, granted) in table {
        let user = new_user();
        touch(authz, &[role(tenant, relation, user)]).await;
        assert_grants(authz, tenant, user, &TENANT_PERMISSIONS, granted, relation).await;
    }
    assert_grants(authz, tenant, new_user(), &TENANT_PERMISSIONS, &[], "a stranger").await;
}

/// `project.tenant` arrows: tenant roles flow to projects; project relations stay on the project.
pub async fn project_permissions_follow_the_tenant_arrow(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let (tenant, other_tenant) = (new_tenant(), new_tenant());
    let project = ProjectId(Uuid::new_v4());
    let [
        viewer,
        developer,
        admin,
        owner,
        p_viewer,
        p_developer,
        foreign_admin,
    ] = [(); 7].map(|()| new_user());
    let mut updates = bootstrap::project_created(project, tenant, owner);
    for r in [
        role(tenant, "viewer", viewer),
        role(tenant, "developer", developer),
        role(tenant, "admin", admin),
        role(other_tenant, "admin", foreign_admin),
        Relationship::new(project.into(), "viewer", SubjectRef::user(p_viewer)),
        Relationship::new(project.into(), "developer", SubjectRef::user(p_developer)),
    ] {
        updates.push(RelationshipUpdate::Touch(r));
    }
    write(authz, updates).await;
    let all = ["admin", "develop", "view", "delete"];
    assert_grants(authz, project, viewer, &all, &["view"], "tenant viewer").await;
    assert_grants(
        authz,
        project,
        developer,
        &all,
        &["develop", "view"],
        "tenant developer",
    )
    .await;
    assert_grants(authz, project, admin, &all, &all, "tenant admin").await;
    assert_grants(
        authz,
        project,
        owner,
        &all,
        &["develop", "view", "delete"],
        "project owner",
    )
    .await;
    assert_grants(authz, project, p_viewer, &all, &["view"], "project viewer").await;
    assert_grants(
        authz,
        project,
        p_developer,
        &all,
        &["develop", "view"],
        "project developer",
    )
    .await;
    assert_grants(authz, project, foreign_admin, &all, &[], "another tenant's admin").await;
}

/// `session.tenant` arrows: operators terminate, viewers read transcripts, developers export; a session's
/// project and API key grant nothing by themselves.
pub async fn session_permissions_follow_the_tenant_arrow(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let (project, key, session) = (
        ProjectId(Uuid::new_v4()),
        ApiKeyId(Uuid::new_v4()),
        SessionId(Uuid::new_v4()),
    );
    let [viewer, operator, developer, project_owner] = [(); 4].map(|()| new_user());
    let mut updates = bootstrap::session_created(session, tenant, Some(project), Some(key));
    updates.extend(bootstrap::project_created(project, tenant, project_owner));
    for r in [
        role(tenant, "viewer", viewer),
        role(tenant, "operator", operator),
        role(tenant, "developer", developer),
    ] {
        updates.push(RelationshipUpdate::Touch(r));
    }
    write(authz, updates).await;
    let all = ["view", "terminate", "view_transcript", "export"];
    assert_grants(
        authz,
        session,
        viewer,
        &all,
        &["view", "view_transcript"],
        "tenant viewer",
    )
    .await;
    assert_grants(
        authz,
        session,
        operator,
        &all,
        &["view", "terminate", "view_transcript"],
        "operator",
    )
    .await;
    assert_grants(authz, session, developer, &all, &all, "developer").await;
    assert_grants(authz, session, project_owner, &all, &[], "project owner").await;
}

/// `theme.public: user:*`: a public theme is viewable by every user, and nothing more; a private one is not.
pub async fn public_themes_are_viewable_by_every_user(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let (public, private) = (ThemeId(Uuid::new_v4()), ThemeId(Uuid::new_v4()));
    let [owner, tenant_viewer, anyone] = [(); 3].map(|()| new_user());
    let mut updates = bootstrap::theme_created(public, tenant, Some(owner), true);
    updates.extend(bootstrap::theme_created(private, tenant, Some(owner), false));
    updates.push(RelationshipUpdate::Touch(role(tenant, "viewer", tenant_viewer)));
    write(authz, updates).await;

    let all = ["view", "apply", "edit", "delete"];
    assert_grants(
        authz,
        public,
        anyone,
        &all,
        &["view"],
        "any user on a public theme",
    )
    .await;
    assert_grants(authz, private, anyone, &all, &[], "any user on a private theme").await;
    assert_grants(authz, public, owner, &all, &all, "owner").await;
    assert_grants(
        authz,
        private,
        tenant_viewer,
        &all,
        &["view", "apply"],
        "tenant viewer",
    )
    .await;

    let lookup = LookupResourcesRequest {
        resource_type: "theme".into(),
        permission: "view".into(),
        subject: SubjectRef::user(anyone),
    };
    let visible = authz
        .lookup_resources(&ctx(), &lookup, &Consistency::FullyConsistent)
        .await
        .unwrap();
    assert!(
        visible.contains(&public.to_string()),
        "a public theme is listed for any user"
    );
    assert!(!visible.contains(&private.to_string()), "a private theme is not");

    let subjects = lookup_users(authz, public.into(), "view").await;
    assert!(
        subjects.contains(&LookupSubject {
            subject_id: "*".into(),
            excluded_subject_ids: vec![]
        }),
        "the wildcard is reported as `*`: {subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.subject_id == owner.to_string()),
        "concrete subjects are listed too"
    );

    write(authz, bootstrap::theme_visibility_changed(public, false)).await;
    assert!(
        !allowed(authz, public, "view", anyone).await,
        "making a theme private revokes the wildcard"
    );
}

/// Owners of personas and API keys hold their permissions; tenant roles add theirs; strangers hold none.
pub async fn owners_hold_persona_and_api_key_permissions(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let (persona, key) = (PersonaId(Uuid::new_v4()), ApiKeyId(Uuid::new_v4()));
    let [owner, operator, developer, admin, stranger] = [(); 5].map(|()| new_user());
    let mut updates = bootstrap::persona_created(persona, tenant, Some(owner));
    updates.extend(bootstrap::api_key_created(key, tenant, Some(owner)));
    for r in [
        role(tenant, "operator", operator),
        role(tenant, "developer", developer),
        role(tenant, "admin", admin),
    ] {
        updates.push(RelationshipUpdate::Touch(r));
    }
    write(authz, updates).await;

    let persona_perms = ["view", "use", "edit", "delete"];
    assert_grants(
        authz,
        persona,
        owner,
        &persona_perms,
        &persona_perms,
        "persona owner",
    )
    .await;
    assert_grants(
        authz,
        persona,
        operator,
        &persona_perms,
        &["view", "use"],
        "operator",
    )
    .await;
    assert_grants(authz, persona, stranger, &persona_perms, &[], "stranger").await;

    let key_perms = ["view", "rotate", "revoke"];
    assert_grants(authz, key, owner, &key_perms, &key_perms, "key owner").await;
    assert_grants(authz, key, developer, &key_perms, &["view"], "developer").await;
    assert_grants(authz, key, admin, &key_perms, &key_perms, "admin").await;
    assert_grants(authz, key, stranger, &key_perms, &[], "stranger").await;
}

/// Deleting a relationship (by update, by filter, or by removing the object) removes the access it gave.
pub async fn deleting_relationships_removes_access(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let project = ProjectId(Uuid::new_v4());
    let [user, owner] = [(); 2].map(|()| new_user());
    let grant = role(tenant, "viewer", user);
    let mut setup = bootstrap::project_created(project, tenant, owner);
    setup.push(RelationshipUpdate::Touch(grant.clone()));
    write(authz, setup).await;
    assert!(allowed(authz, project, "view", user).await);

    let token = write(authz, vec![RelationshipUpdate::Delete(grant.clone())]).await;
    assert!(!allowed_at(authz, project, "view", user, &Consistency::AtLeastAsFresh(token)).await);

    touch(authz, std::slice::from_ref(&grant)).await;
    assert!(allowed(authz, tenant, "view", user).await);
    let token = authz
        .delete_relationships(&ctx(), &bootstrap::user_removed_from_tenant(tenant, user))
        .await
        .unwrap();
    assert!(!allowed_at(authz, tenant, "view", user, &Consistency::AtLeastAsFresh(token)).await);

    touch(authz, &[grant]).await;
    bootstrap::delete_all(
        authz,
        &ctx(),
        &bootstrap::object_removed(&project.into()).unwrap(),
    )
    .await
    .unwrap();
    assert!(
        !allowed(authz, project, "view", user).await,
        "a removed project grants nothing"
    );
    assert!(!allowed(authz, project, "delete", owner).await);
    let left = authz
        .read_relationships(
            &ctx(),
            &RelationshipFilter::resource(&project.into()),
            &Consistency::FullyConsistent,
        )
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "no relationship of the removed project remains: {left:?}"
    );
    assert!(
        allowed(authz, tenant, "view", user).await,
        "removing a project leaves tenant roles alone"
    );
}

/// `Create` of an existing relationship is a conflict and the whole batch is discarded.
pub async fn creating_an_existing_relationship_conflicts(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let existing = role(tenant, "viewer", new_user());
    let fresh = role(tenant, "viewer", new_user());
    write(authz, vec![RelationshipUpdate::Create(existing.clone())]).await;

    let err = authz
        .write_relationships(&ctx(), &[RelationshipUpdate::Create(existing.clone())])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");

    let batch = [
        RelationshipUpdate::Create(fresh.clone()),
        RelationshipUpdate::Create(existing),
    ];
    let err = authz.write_relationships(&ctx(), &batch).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    let filter = RelationshipFilter::resource(&tenant.into());
    let stored = authz
        .read_relationships(&ctx(), &filter, &Consistency::FullyConsistent)
        .await
        .unwrap();
    assert!(!stored.contains(&fresh), "a failed batch writes nothing");
}

/// `Touch` is idempotent; deleting an absent relationship is not an error.
pub async fn touch_is_idempotent(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let grant = role(tenant, "operator", new_user());
    touch(authz, std::slice::from_ref(&grant)).await;
    touch(authz, std::slice::from_ref(&grant)).await;
    let filter = RelationshipFilter::resource(&tenant.into());
    let stored = authz
        .read_relationships(&ctx(), &filter, &Consistency::FullyConsistent)
        .await
        .unwrap();
    assert_eq!(stored, vec![grant.clone()]);
    write(authz, vec![RelationshipUpdate::Delete(grant.clone())]).await;
    write(authz, vec![RelationshipUpdate::Delete(grant)]).await;
}

/// A check at least as fresh as a write's token sees that write (and its deletion).
pub async fn checks_read_their_writes(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    for _ in 0..10 {
        let user = new_user();
        let token = touch(authz, &[role(tenant, "developer", user)]).await;
        let fresh = Consistency::AtLeastAsFresh(token);
        assert!(
            allowed_at(authz, tenant, "develop", user, &fresh).await,
            "the write is visible at its token"
        );
        let token = write(
            authz,
            vec![RelationshipUpdate::Delete(role(tenant, "developer", user))],
        )
        .await;
        let fresh = Consistency::AtLeastAsFresh(token);
        assert!(
            !allowed_at(authz, tenant, "develop", user, &fresh).await,
            "so is the deletion"
        );
    }
}

/// A malformed consistency token is an error, not a silently stale read.
pub async fn malformed_tokens_are_rejected(authz: Arc<dyn Authorizer>) {
    let request = CheckRequest::new(new_tenant(), "view", new_user());
    let stale = Consistency::AtLeastAsFresh(ZedToken::new("not-a-token"));
    assert!(authz.check(&ctx(), &request, &stale).await.is_err());
}

/// `lookup_resources` lists exactly the resources `check` allows.
pub async fn lookup_resources_lists_exactly_the_accessible_resources(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let (tenant, other) = (new_tenant(), new_tenant());
    let user = new_user();
    let mine: Vec<ProjectId> = (0..3).map(|_| ProjectId(Uuid::new_v4())).collect();
    let owned_elsewhere = ProjectId(Uuid::new_v4());
    let invisible = ProjectId(Uuid::new_v4());
    let mut updates = vec![RelationshipUpdate::Touch(role(tenant, "viewer", user))];
    for p in &mine {
        updates.extend(bootstrap::project_created(*p, tenant, new_user()));
    }
    updates.extend(bootstrap::project_created(owned_elsewhere, other, user));
    updates.extend(bootstrap::project_created(invisible, other, new_user()));
    write(authz, updates).await;

    let lookup = |permission: &str| LookupResourcesRequest {
        resource_type: "project".into(),
        permission: permission.into(),
        subject: SubjectRef::user(user),
    };
    let found: BTreeSet<String> = authz
        .lookup_resources(&ctx(), &lookup("view"), &Consistency::FullyConsistent)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = mine
        .iter()
        .chain([&owned_elsewhere])
        .map(ToString::to_string)
        .collect();
    assert_eq!(found, expected);
    let found = authz
        .lookup_resources(&ctx(), &lookup("delete"), &Consistency::FullyConsistent)
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![owned_elsewhere.to_string()],
        "only the owned project may be deleted"
    );
}

async fn lookup_users(authz: &dyn Authorizer, resource: ObjectRef, permission: &str) -> Vec<LookupSubject> {
    let request = LookupSubjectsRequest {
        resource,
        permission: permission.into(),
        subject_type: "user".into(),
        optional_subject_relation: None,
    };
    let mut found = authz
        .lookup_subjects(&ctx(), &request, &Consistency::FullyConsistent)
        .await
        .unwrap();
    found.sort();
    found
}

fn concrete(ids: &[UserId]) -> Vec<LookupSubject> {
    let mut out: Vec<LookupSubject> = ids
        .iter()
        .map(|u| LookupSubject {
            subject_id: u.to_string(),
            excluded_subject_ids: vec![],
        })
        .collect();
    out.sort();
    out
}

/// `lookup_subjects` lists exactly the users `check` allows (no wildcard in the tenant graph).
pub async fn lookup_subjects_lists_exactly_the_permitted_users(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let [admin, developer, viewer, billing] = [(); 4].map(|()| new_user());
    touch(
        authz,
        &[
            role(tenant, "admin", admin),
            role(tenant, "developer", developer),
            role(tenant, "viewer", viewer),
            role(tenant, "billing", billing),
        ],
    )
    .await;
    assert_eq!(
        lookup_users(authz, tenant.into(), "view").await,
        concrete(&[admin, developer, viewer])
    );
    assert_eq!(
        lookup_users(authz, tenant.into(), "billing_access").await,
        concrete(&[admin, billing])
    );
    assert_eq!(lookup_users(authz, tenant.into(), "manage").await, concrete(&[]));

    let project = ProjectId(Uuid::new_v4());
    let owner = new_user();
    write(authz, bootstrap::project_created(project, tenant, owner)).await;
    assert_eq!(
        lookup_users(authz, project.into(), "delete").await,
        concrete(&[admin, owner])
    );
}

/// Bulk answers come back in request order; a bad item fails alone.
pub async fn bulk_checks_keep_request_order(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let [viewer, stranger] = [(); 2].map(|()| new_user());
    touch(authz, &[role(tenant, "viewer", viewer)]).await;
    let requests = [
        CheckRequest::new(tenant, "view", viewer),
        CheckRequest::new(tenant, "view", stranger),
        CheckRequest::new(tenant, "no_such_permission", viewer),
        CheckRequest::new(tenant, "develop", viewer),
        CheckRequest::new(tenant, "view", viewer),
    ];
    let bulk = authz
        .check_bulk(&ctx(), &requests, &Consistency::FullyConsistent)
        .await
        .unwrap();
    let shape: Vec<Option<bool>> = bulk
        .results
        .iter()
        .map(|r| r.as_ref().ok().map(|p| p.is_allowed()))
        .collect();
    assert_eq!(shape, [Some(true), Some(false), None, Some(false), Some(true)]);
}

/// Asking about something the schema does not define is an error, never a quiet `false`.
pub async fn unknown_permissions_types_and_wildcard_subjects_are_errors(authz: Arc<dyn Authorizer>) {
    let tenant = new_tenant();
    let user = new_user();
    let consistency = Consistency::FullyConsistent;
    let bad = [
        CheckRequest::new(tenant, "fly", user),
        CheckRequest::new(ObjectRef::new("spaceship", "x1"), "view", user),
        CheckRequest::new(tenant, "view", SubjectRef::new(ObjectRef::new("robot", "r2"))),
        CheckRequest::new(tenant, "view", SubjectRef::wildcard("user")),
    ];
    for request in &bad {
        assert!(
            authz.check(&ctx(), request, &consistency).await.is_err(),
            "{request:?} must be an error"
        );
    }
}

/// Relationships the schema forbids are rejected: writes to permissions and subject types a relation does not
/// accept (wildcards included).
pub async fn relationships_outside_the_schema_are_rejected(authz: Arc<dyn Authorizer>) {
    let t = new_tenant();
    let u = new_user();
    let theme = ThemeId(Uuid::new_v4());
    for text in [
        format!("tenant:{t}#view@user:{u}"),
        format!("tenant:{t}#admin@user:*"),
        format!("theme:{theme}#public@user:{u}"),
        format!("project:{}#tenant@user:{u}", Uuid::new_v4()),
        format!("tenant:{t}#colour@user:{u}"),
        format!("tenant:*#admin@user:{u}"),
    ] {
        let update = RelationshipUpdate::Touch(rel(&text));
        assert!(
            authz.write_relationships(&ctx(), &[update]).await.is_err(),
            "{text} must be rejected"
        );
    }
}

/// `read_relationships` returns exactly what the filter selects.
pub async fn read_relationships_filters_by_every_field(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let [a, b] = [(); 2].map(|()| new_user());
    let project = ProjectId(Uuid::new_v4());
    let rels = [
        role(tenant, "admin", a),
        role(tenant, "viewer", a),
        role(tenant, "viewer", b),
    ];
    touch(authz, &rels).await;
    write(authz, bootstrap::project_created(project, tenant, a)).await;
    let read = |filter: RelationshipFilter| async move {
        let mut found = authz
            .read_relationships(&ctx(), &filter, &Consistency::FullyConsistent)
            .await
            .unwrap();
        found.sort();
        found
    };
    let mut all = rels.to_vec();
    all.sort();
    assert_eq!(read(RelationshipFilter::resource(&tenant.into())).await, all);
    let mut viewers = vec![rels[1].clone(), rels[2].clone()];
    viewers.sort();
    assert_eq!(
        read(RelationshipFilter::resource(&tenant.into()).with_relation("viewer")).await,
        viewers
    );
    let by_subject = read(
        RelationshipFilter::resource_type("tenant").with_subject(SubjectFilter::exact(&SubjectRef::user(b))),
    )
    .await;
    assert_eq!(by_subject, vec![rels[2].clone()]);
    let pointing = read(
        RelationshipFilter::resource_type("project")
            .with_relation("tenant")
            .with_subject(SubjectFilter::object(&tenant.into())),
    )
    .await;
    assert_eq!(
        pointing,
        vec![Relationship::new(
            project.into(),
            "tenant",
            SubjectRef::new(tenant.into())
        )]
    );
}

/// The schema reads back equal to the spec schema; invalid text and orphaning changes are rejected and
/// leave the schema in force.
pub async fn schema_round_trips_and_rejects_bad_changes(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let spec = zed::parse(zed::AGENTVOICEBOX_SCHEMA).unwrap();
    let read = zed::parse(&authz.read_schema(&ctx()).await.unwrap()).unwrap();
    assert_eq!(read, spec, "read_schema returns the spec schema");
    authz
        .write_schema(&ctx(), zed::AGENTVOICEBOX_SCHEMA)
        .await
        .unwrap();

    assert!(
        authz.write_schema(&ctx(), "definition user {").await.is_err(),
        "invalid text is rejected"
    );

    let tenant = new_tenant();
    let theme = ThemeId(Uuid::new_v4());
    write(authz, bootstrap::theme_created(theme, tenant, None, true)).await;
    let without_public = zed::AGENTVOICEBOX_SCHEMA.replace("relation public: user:*", "");
    let without_public = without_public.replace(" + public", "");
    assert!(
        authz.write_schema(&ctx(), &without_public).await.is_err(),
        "removing a relation that has relationships is rejected"
    );
    let read = zed::parse(&authz.read_schema(&ctx()).await.unwrap()).unwrap();
    assert_eq!(read, spec, "the schema in force is unchanged");
    assert!(allowed(authz, theme, "view", new_user()).await);
}

/// Relations can be checked like permissions, and a subject set (`tenant#admin`) is a member of itself.
pub async fn relations_are_checkable_and_subject_sets_contain_themselves(authz: Arc<dyn Authorizer>) {
    let authz = authz.as_ref();
    let tenant = new_tenant();
    let admin = new_user();
    touch(authz, &[role(tenant, "admin", admin)]).await;
    assert!(allowed(authz, tenant, "admin", admin).await);
    assert!(
        !allowed(authz, tenant, "viewer", admin).await,
        "relations are not permissions: no hierarchy"
    );
    let request = CheckRequest::new(
        tenant,
        "administrate",
        SubjectRef::with_relation(tenant.into(), "admin"),
    );
    let result = authz
        .check(&ctx(), &request, &Consistency::FullyConsistent)
        .await
        .unwrap();
    assert!(result.is_allowed(), "tenant#admin holds administrate");
}

/// Runs every [`Authorizer`] check as its own `#[tokio::test]`. The factory is an async block returning a
/// fresh `Arc<dyn Authorizer>` with the spec schema written.
#[macro_export]
macro_rules! authorizer_conformance {
    ($factory:expr) => {
        $crate::authorizer_conformance!(@checks $factory;
            tenant_roles_form_the_spec_hierarchy,
            project_permissions_follow_the_tenant_arrow,
            session_permissions_follow_the_tenant_arrow,
            public_themes_are_viewable_by_every_user,
            owners_hold_persona_and_api_key_permissions,
            deleting_relationships_removes_access,
            creating_an_existing_relationship_conflicts,
            touch_is_idempotent,
            checks_read_their_writes,
            malformed_tokens_are_rejected,
            lookup_resources_lists_exactly_the_accessible_resources,
            lookup_subjects_lists_exactly_the_permitted_users,
            bulk_checks_keep_request_order,
            unknown_permissions_types_and_wildcard_subjects_are_errors,
            relationships_outside_the_schema_are_rejected,
            read_relationships_filters_by_every_field,
            schema_round_trips_and_rejects_bad_changes,
            relations_are_checkable_and_subject_sets_contain_themselves,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let authz: ::std::sync::Arc<dyn $crate::authorizer::Authorizer> = ($factory).await;
                $crate::conformance::$check(authz).await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------------------
// RelationshipStore.

fn store_ctx() -> Ctx {
    Ctx::system(
        RequestId::generate(&UuidV7Ids),
        "conformance:relationship-store",
        None,
    )
}

fn fresh(object_type: &str) -> ObjectRef {
    ObjectRef::new(object_type, Uuid::new_v4().to_string())
}

fn tuple(resource: &ObjectRef, relation: &str, subject: SubjectRef) -> Relationship {
    Relationship::new(resource.clone(), relation, subject)
}

async fn stored(store: &dyn RelationshipStore, filter: &RelationshipFilter) -> Vec<Relationship> {
    store
        .snapshot(&store_ctx())
        .await
        .unwrap()
        .read(&store_ctx(), filter, None)
        .await
        .unwrap()
}

/// Written tuples are read back, sorted, from a snapshot at a newer revision.
pub async fn store_reads_back_written_tuples(store: Arc<dyn RelationshipStore>) {
    let store = store.as_ref();
    let doc = fresh("doc");
    let before = store.snapshot(&store_ctx()).await.unwrap().revision();
    let mut rels = vec![
        tuple(&doc, "viewer", SubjectRef::new(fresh("user"))),
        tuple(
            &doc,
            "viewer",
            SubjectRef::with_relation(fresh("group"), "member"),
        ),
        tuple(&doc, "owner", SubjectRef::new(fresh("user"))),
        tuple(&doc, "viewer", SubjectRef::wildcard("user")),
    ];
    let updates: Vec<RelationshipUpdate> = rels.iter().cloned().map(RelationshipUpdate::Create).collect();
    let revision = store.write(&store_ctx(), &updates).await.unwrap();
    assert!(revision > before);
    let snapshot = store.snapshot(&store_ctx()).await.unwrap();
    assert!(snapshot.revision() >= revision);
    rels.sort();
    assert_eq!(
        snapshot
            .read(&store_ctx(), &RelationshipFilter::resource(&doc), None)
            .await
            .unwrap(),
        rels
    );
}

/// `Create` of a stored tuple is `conflict` and the batch writes nothing.
pub async fn store_create_conflicts_atomically(store: Arc<dyn RelationshipStore>) {
    let store = store.as_ref();
    let doc = fresh("doc");
    let existing = tuple(&doc, "viewer", SubjectRef::new(fresh("user")));
    let other = tuple(&doc, "viewer", SubjectRef::new(fresh("user")));
    store
        .write(&store_ctx(), &[RelationshipUpdate::Create(existing.clone())])
        .await
        .unwrap();
    let batch = [
        RelationshipUpdate::Create(other),
        RelationshipUpdate::Create(existing.clone()),
    ];
    let err = store.write(&store_ctx(), &batch).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(
        stored(store, &RelationshipFilter::resource(&doc)).await,
        vec![existing]
    );
}

/// `Touch` is idempotent; `Delete` removes one tuple and is a no-op when absent.
pub async fn store_touch_and_delete_updates(store: Arc<dyn RelationshipStore>) {
    let store = store.as_ref();
    let doc = fresh("doc");
    let a = tuple(&doc, "viewer", SubjectRef::new(fresh("user")));
    let b = tuple(&doc, "viewer", SubjectRef::new(fresh("user")));
    for _ in 0..2 {
        store
            .write(
                &store_ctx(),
                &[
                    RelationshipUpdate::Touch(a.clone()),
                    RelationshipUpdate::Touch(b.clone()),
                ],
            )
            .await
            .unwrap();
    }
    assert_eq!(stored(store, &RelationshipFilter::resource(&doc)).await.len(), 2);
    store
        .write(&store_ctx(), &[RelationshipUpdate::Delete(a.clone())])
        .await
        .unwrap();
    store
        .write(&store_ctx(), &[RelationshipUpdate::Delete(a)])
        .await
        .unwrap();
    assert_eq!(stored(store, &RelationshipFilter::resource(&doc)).await, vec![b]);
}

/// `delete` removes exactly what the filter matches.
pub async fn store_delete_by_filter(store: Arc<dyn RelationshipStore>) {
    let store = store.as_ref();
    let (doc, group) = (fresh("doc"), fresh("group"));
    let user = fresh("user");
    let keep = tuple(&doc, "owner", SubjectRef::new(user.clone()));
    let gone = [
        tuple(&doc, "viewer", SubjectRef::new(user.clone())),
        tuple(&doc, "viewer", SubjectRef::with_relation(group.clone(), "member")),
    ];
    let other = tuple(&group, "member", SubjectRef::new(user));
    let mut updates: Vec<RelationshipUpdate> = gone.iter().cloned().map(RelationshipUpdate::Touch).collect();
    updates.push(RelationshipUpdate::Touch(keep.clone()));
    updates.push(RelationshipUpdate::Touch(other.clone()));
    let before = store.write(&store_ctx(), &updates).await.unwrap();
    let after = store
        .delete(
            &store_ctx(),
            &RelationshipFilter::resource(&doc).with_relation("viewer"),
        )
        .await
        .unwrap();
    assert!(after > before);
    assert_eq!(
        stored(store, &RelationshipFilter::resource(&doc)).await,
        vec![keep]
    );
    assert_eq!(
        stored(store, &RelationshipFilter::resource(&group)).await,
        vec![other]
    );
}

/// A snapshot keeps reading its revision while later writes land.
pub async fn store_snapshots_are_isolated(store: Arc<dyn RelationshipStore>) {
    let store = store.as_ref();
    let doc = fresh("doc");
    let first = tuple(&doc, "viewer", SubjectRef::new(fresh("user")));
    store
        .write(&store_ctx(), &[RelationshipUpdate::Touch(first.clone())])
        .await
        .unwrap();
    let snapshot = store.snapshot(&store_ctx()).await.unwrap();
    let second = tuple(&doc, "viewer", SubjectRef::new(fresh("user")));
    store
        .write(&store_ctx(), &[RelationshipUpdate::Touch(second)])
        .await
        .unwrap();
    store
        .delete(&store_ctx(), &RelationshipFilter::resource(&doc))
        .await
        .unwrap();
    let seen = snapshot
        .read(&store_ctx(), &RelationshipFilter::resource(&doc), None)
        .await
        .unwrap();
    assert_eq!(seen, vec![first]);
    assert!(
        stored(store, &RelationshipFilter::resource(&doc))
            .await
            .is_empty()
    );
}

/// Reads by subject (any relation, plain objects only, one relation), by subject type, and with a limit.
pub async fn store_reads_by_subject_and_limit(store: Arc<dyn RelationshipStore>) {
    let store = store.as_ref();
    let group = fresh("group");
    let (doc1, doc2, folder) = (fresh("doc"), fresh("doc"), fresh("folder"));
    let as_object = tuple(&doc1, "parent_group", SubjectRef::new(group.clone()));
    let as_members = tuple(
        &doc2,
        "viewer",
        SubjectRef::with_relation(group.clone(), "member"),
    );
    let as_admins = tuple(
        &folder,
        "viewer",
        SubjectRef::with_relation(group.clone(), "admin"),
    );
    let updates: Vec<RelationshipUpdate> = [&as_object, &as_members, &as_admins]
        .into_iter()
        .cloned()
        .map(RelationshipUpdate::Touch)
        .collect();
    store.write(&store_ctx(), &updates).await.unwrap();

    let mut any = SubjectFilter::object(&group);
    let mut expected = vec![as_object.clone(), as_members.clone(), as_admins.clone()];
    expected.sort();
    assert_eq!(
        stored(store, &RelationshipFilter::subject(any.clone())).await,
        expected
    );
    any.relation = SubjectRelationFilter::Ellipsis;
    assert_eq!(
        stored(store, &RelationshipFilter::subject(any.clone())).await,
        vec![as_object]
    );
    any.relation = SubjectRelationFilter::Relation("member".into());
    assert_eq!(
        stored(store, &RelationshipFilter::subject(any)).await,
        vec![as_members.clone()]
    );

    let members_of_doc2 = RelationshipFilter::resource(&doc2)
        .with_relation("viewer")
        .with_subject(SubjectFilter {
            subject_type: "group".into(),
            subject_id: None,
            relation: SubjectRelationFilter::Relation("member".into()),
        });
    assert_eq!(stored(store, &members_of_doc2).await, vec![as_members]);

    let snapshot = store.snapshot(&store_ctx()).await.unwrap();
    let limited = snapshot
        .read(
            &store_ctx(),
            &RelationshipFilter::subject(SubjectFilter::object(&group)),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
}

/// Every write and delete returns a revision greater than all before it.
pub async fn store_revisions_increase(store: Arc<dyn RelationshipStore>) {
    let store = store.as_ref();
    let doc = fresh("doc");
    let mut last = store.snapshot(&store_ctx()).await.unwrap().revision();
    for i in 0..5 {
        let rel = tuple(
            &doc,
            "viewer",
            SubjectRef::new(ObjectRef::new("user", format!("u{i}"))),
        );
        let next = store
            .write(&store_ctx(), &[RelationshipUpdate::Touch(rel)])
            .await
            .unwrap();
        assert!(next > last);
        last = next;
        let next = store
            .delete(&store_ctx(), &RelationshipFilter::resource(&fresh("doc")))
            .await
            .unwrap();
        assert!(next > last);
        last = next;
    }
}

/// Runs every [`RelationshipStore`] check as its own `#[tokio::test]`. The factory is an async block returning
/// an `Arc<dyn RelationshipStore>`.
#[macro_export]
macro_rules! relationship_store_conformance {
    ($factory:expr) => {
        $crate::relationship_store_conformance!(@checks $factory;
            store_reads_back_written_tuples,
            store_create_conflicts_atomically,
            store_touch_and_delete_updates,
            store_delete_by_filter,
            store_snapshots_are_isolated,
            store_reads_by_subject_and_limit,
            store_revisions_increase,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store: ::std::sync::Arc<dyn $crate::authorizer::RelationshipStore> = ($factory).await;
                $crate::conformance::$check(store).await;
            }
        )+
    };
}
