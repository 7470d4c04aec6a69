//! The relationships that make a newly created thing reachable in the permission graph (spec §6.4), and the
//! filters that remove them when it is deleted.
//!
//! Pure functions: services and jobs pass the result to [`Authorizer::write_relationships`] (creation) or
//! [`delete_all`] (removal). Creations use `Touch`, so a retried job writes nothing twice.

use super::{
    Authorizer, ObjectRef, RelationshipFilter, RelationshipUpdate, SubjectFilter, SubjectRef, ZedToken,
};
use super::{Relationship, WILDCARD};
use crate::Result;
use crate::zed::{self, AllowedSubjectKind, Schema};
use avb_core::{
    ApiKeyId, Ctx, PersonaId, ProjectId, Role, SessionId, TenantId, ThemeId, UserId, VoiceConfigId,
};
use std::collections::BTreeSet;

fn touch(resource: impl Into<ObjectRef>, relation: &str, subject: SubjectRef) -> RelationshipUpdate {
    RelationshipUpdate::Touch(Relationship::new(resource.into(), relation, subject))
}

fn tenant_link(resource: impl Into<ObjectRef>, tenant: TenantId) -> RelationshipUpdate {
    touch(resource, "tenant", SubjectRef::new(tenant.into()))
}

/// A tenant was created with `admin` as its first administrator.
pub fn tenant_created(tenant: TenantId, admin: UserId) -> Vec<RelationshipUpdate> {
    vec![touch(tenant, Role::Admin.as_str(), SubjectRef::user(admin))]
}

/// A project was created in `tenant` by `owner`.
pub fn project_created(project: ProjectId, tenant: TenantId, owner: UserId) -> Vec<RelationshipUpdate> {
    vec![
        tenant_link(project, tenant),
        touch(project, "owner", SubjectRef::user(owner)),
    ]
}

/// An API key was created in `tenant`, by `owner` when a user created it.
pub fn api_key_created(key: ApiKeyId, tenant: TenantId, owner: Option<UserId>) -> Vec<RelationshipUpdate> {
    let mut updates = vec![tenant_link(key, tenant)];
    updates.extend(owner.map(|o| touch(key, "owner", SubjectRef::user(o))));
    updates
}

/// A voice session was opened in `tenant`, optionally for a project and through an API key.
pub fn session_created(
    session: SessionId,
    tenant: TenantId,
    project: Option<ProjectId>,
    api_key: Option<ApiKeyId>,
) -> Vec<RelationshipUpdate> {
    let mut updates = vec![tenant_link(session, tenant)];
    updates.extend(project.map(|p| touch(session, "project", SubjectRef::new(p.into()))));
    updates.extend(api_key.map(|k| touch(session, "api_key", SubjectRef::new(k.into()))));
    updates
}

/// A tenant's voice configuration was created.
pub fn voice_config_created(config: VoiceConfigId, tenant: TenantId) -> Vec<RelationshipUpdate> {
    vec![tenant_link(config, tenant)]
}

/// A theme was created; a public theme is viewable by every user (`public: user:*`).
pub fn theme_created(
    theme: ThemeId,
    tenant: TenantId,
    owner: Option<UserId>,
    public: bool,
) -> Vec<RelationshipUpdate> {
    let mut updates = vec![tenant_link(theme, tenant)];
    updates.extend(owner.map(|o| touch(theme, "owner", SubjectRef::user(o))));
    if public {
        updates.push(touch(theme, "public", SubjectRef::wildcard(UserId::RESOURCE)));
    }
    updates
}

/// A theme was made public or private.
pub fn theme_visibility_changed(theme: ThemeId, public: bool) -> Vec<RelationshipUpdate> {
    let rel = Relationship::new(theme.into(), "public", SubjectRef::wildcard(UserId::RESOURCE));
    vec![if public {
        RelationshipUpdate::Touch(rel)
    } else {
        RelationshipUpdate::Delete(rel)
    }]
}

/// A persona was created.
pub fn persona_created(
    persona: PersonaId,
    tenant: TenantId,
    owner: Option<UserId>,
) -> Vec<RelationshipUpdate> {
    let mut updates = vec![tenant_link(persona, tenant)];
    updates.extend(owner.map(|o| touch(persona, "owner", SubjectRef::user(o))));
    updates
}

/// A user's roles in `tenant` changed from `old` to `new`: removed roles are deleted, added ones touched,
/// unchanged ones left alone.
pub fn user_roles_changed(
    tenant: TenantId,
    user: UserId,
    old: &BTreeSet<Role>,
    new: &BTreeSet<Role>,
) -> Vec<RelationshipUpdate> {
    let rel = |role: &Role| Relationship::new(tenant.into(), role.as_str(), SubjectRef::user(user));
    old.difference(new)
        .map(|role| RelationshipUpdate::Delete(rel(role)))
        .chain(
            new.difference(old)
                .map(|role| RelationshipUpdate::Touch(rel(role))),
        )
        .collect()
}

/// A user joined `tenant` with `roles` at sign-in (created from identity-provider claims): one relation per
/// tenant role. `sysadmin` is left out: the platform role comes from the identity provider with every token and
/// is never granted as a tenant relation here.
pub fn user_joined_tenant(tenant: TenantId, user: UserId, roles: &BTreeSet<Role>) -> Vec<RelationshipUpdate> {
    roles
        .iter()
        .filter(|role| **role != Role::Sysadmin)
        .map(|role| touch(tenant, role.as_str(), SubjectRef::user(user)))
        .collect()
}

/// A user left `tenant`: every role relation of the user on it.
pub fn user_removed_from_tenant(tenant: TenantId, user: UserId) -> RelationshipFilter {
    RelationshipFilter::resource(&tenant.into()).with_subject(SubjectFilter::exact(&SubjectRef::user(user)))
}

/// An object was deleted: every relationship on it, and every relationship that points at it from a relation
/// of the embedded schema that accepts its type (so no dangling arrow or subject survives).
///
/// # Errors
/// Only if the embedded schema is invalid, which the crate's tests rule out.
pub fn object_removed(object: &ObjectRef) -> Result<Vec<RelationshipFilter>> {
    Ok(removal_filters(zed::agentvoicebox()?, object))
}

/// [`object_removed`] against any schema.
pub fn removal_filters(schema: &Schema, object: &ObjectRef) -> Vec<RelationshipFilter> {
    let mut filters = vec![RelationshipFilter::resource(object)];
    for def in schema.definitions() {
        for rel in def.relations() {
            let accepts = rel
                .allowed
                .iter()
                .any(|a| a.object_type == object.object_type && a.kind != AllowedSubjectKind::Wildcard);
            if accepts && object.object_id != WILDCARD {
                filters.push(
                    RelationshipFilter::resource_type(def.name())
                        .with_relation(rel.name.clone())
                        .with_subject(SubjectFilter::object(object)),
                );
            }
        }
    }
    filters
}

/// Applies removal filters in order; returns the token of the last deletion (`None` for no filters).
///
/// # Errors
/// The first failing deletion (earlier ones stay applied; deleting again is harmless).
pub async fn delete_all(
    authz: &dyn Authorizer,
    ctx: &Ctx,
    filters: &[RelationshipFilter],
) -> Result<Option<ZedToken>> {
    let mut token = None;
    for filter in filters {
        token = Some(authz.delete_relationships(ctx, filter).await?);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn role_changes_touch_added_and_delete_removed_roles_only() {
        let (t, u) = (TenantId(Uuid::new_v4()), UserId(Uuid::new_v4()));
        let old: BTreeSet<Role> = [Role::Admin, Role::Viewer].into();
        let new: BTreeSet<Role> = [Role::Viewer, Role::Billing].into();
        let updates = user_roles_changed(t, u, &old, &new);
        let rendered: Vec<String> = updates
            .iter()
            .map(|up| match up {
                RelationshipUpdate::Touch(r) => format!("touch {}", r.relation),
                RelationshipUpdate::Delete(r) => format!("delete {}", r.relation),
                RelationshipUpdate::Create(r) => format!("create {}", r.relation),
            })
            .collect();
        assert_eq!(rendered, ["delete admin", "touch billing"]);
    }

    #[test]
    fn joining_a_tenant_touches_every_tenant_role_but_never_sysadmin() {
        let (t, u) = (TenantId(Uuid::new_v4()), UserId(Uuid::new_v4()));
        let roles: BTreeSet<Role> = [Role::Sysadmin, Role::Developer, Role::Billing].into();
        let rendered: Vec<String> = user_joined_tenant(t, u, &roles)
            .iter()
            .map(|up| match up {
                RelationshipUpdate::Touch(r) => {
                    format!(
                        "touch {}:{}#{}@{}",
                        r.resource.object_type, r.resource.object_id, r.relation, r.subject.object.object_id
                    )
                }
                other => format!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            rendered,
            [
                format!("touch tenant:{}#developer@{}", t.0, u.0),
                format!("touch tenant:{}#billing@{}", t.0, u.0),
            ]
        );
    }

    #[test]
    fn removing_a_tenant_also_unlinks_everything_that_points_at_it() {
        let t = TenantId(Uuid::new_v4());
        let filters = object_removed(&t.into()).unwrap();
        let pointing: BTreeSet<String> = filters
            .iter()
            .filter(|f| f.subject.is_some())
            .filter_map(|f| f.resource_type.clone())
            .collect();
        let expected: BTreeSet<String> = [
            "project",
            "api_key",
            "session",
            "voice_config",
            "theme",
            "persona",
        ]
        .map(String::from)
        .into();
        assert_eq!(pointing, expected);
        assert_eq!(filters.first(), Some(&RelationshipFilter::resource(&t.into())));
    }
}
