//! May they do this? The [`Authorizer`] port (spec §6.2): relationship-based access control over the graph the
//! `.zed` schema describes, with SpiceDB's semantics and vocabulary, so the local engine
//! ([`crate::adapters::local_authz::LocalAuthorizer`]) and the SpiceDB adapter are interchangeable.
//!
//! Also here: the [`RelationshipStore`] port the local engine reads (memory now, Postgres later), the
//! framework-free [`guard`]s request handlers call, and the [`bootstrap`] relationships written when tenants,
//! projects, keys, sessions, themes and personas are created or removed.

pub mod bootstrap;
pub mod guard;

use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::{ApiKeyId, Ctx, PersonaId, ProjectId, SessionId, TenantId, ThemeId, UserId, VoiceConfigId};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The id of a wildcard subject (`user:*`: every user).
pub const WILDCARD: &str = "*";

/// An object in the graph: `type:id` (`tenant:0b8f…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The definition name (`tenant`).
    pub object_type: String,
    /// The object id (our UUIDs, hyphenated).
    pub object_id: String,
}

impl ObjectRef {
    /// `object_type:object_id`.
    pub fn new(object_type: impl Into<String>, object_id: impl Into<String>) -> Self {
        Self {
            object_type: object_type.into(),
            object_id: object_id.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type, self.object_id)
    }
}

impl FromStr for ObjectRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some((t, id)) if !t.is_empty() && !id.is_empty() => Ok(Self::new(t, id)),
            _ => Err(Error::InvalidRequest(format!("`{s}` is not `type:id`"))),
        }
    }
}

macro_rules! object_from_id {
    ($($id:ty),*) => {$(
        impl From<$id> for ObjectRef {
            fn from(id: $id) -> Self {
                Self::new(<$id>::RESOURCE, id.to_string())
            }
        }
    )*};
}
object_from_id!(
    TenantId,
    UserId,
    ProjectId,
    ApiKeyId,
    SessionId,
    VoiceConfigId,
    ThemeId,
    PersonaId
);

/// The subject of a relationship or check: an object (`user:alice`), a wildcard (`user:*`), or the holders of a
/// relation on an object (`group:eng#member`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectRef {
    /// The object (its id is [`WILDCARD`] for `type:*`).
    pub object: ObjectRef,
    /// The relation for subject sets; `None` for the object itself (SpiceDB's `...`).
    pub optional_relation: Option<String>,
}

impl SubjectRef {
    /// The object itself as subject.
    pub fn new(object: ObjectRef) -> Self {
        Self {
            object,
            optional_relation: None,
        }
    }

    /// The holders of `relation` on `object` (`group:eng#member`).
    pub fn with_relation(object: ObjectRef, relation: impl Into<String>) -> Self {
        Self {
            object,
            optional_relation: Some(relation.into()),
        }
    }

    /// Every object of `object_type` (`user:*`).
    pub fn wildcard(object_type: impl Into<String>) -> Self {
        Self::new(ObjectRef::new(object_type, WILDCARD))
    }

    /// A user.
    pub fn user(id: UserId) -> Self {
        Self::new(id.into())
    }

    /// True for `type:*`.
    pub fn is_wildcard(&self) -> bool {
        self.object.object_id == WILDCARD
    }
}

impl From<UserId> for SubjectRef {
    fn from(id: UserId) -> Self {
        Self::user(id)
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.optional_relation {
            Some(rel) => write!(f, "{}#{rel}", self.object),
            None => write!(f, "{}", self.object),
        }
    }
}

impl FromStr for SubjectRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('#') {
            Some((object, rel)) if !rel.is_empty() => Ok(Self::with_relation(object.parse()?, rel)),
            Some(_) => Err(Error::InvalidRequest(format!(
                "`{s}` has an empty subject relation"
            ))),
            None => Ok(Self::new(s.parse()?)),
        }
    }
}

/// A stored fact: `resource#relation@subject` (`project:p1#tenant@tenant:t1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relationship {
    /// The object the relation is on.
    pub resource: ObjectRef,
    /// A relation (never a permission) of the resource's type.
    pub relation: String,
    /// Who or what holds it.
    pub subject: SubjectRef,
}

impl Relationship {
    /// `resource#relation@subject`.
    pub fn new(resource: ObjectRef, relation: impl Into<String>, subject: SubjectRef) -> Self {
        Self {
            resource,
            relation: relation.into(),
            subject,
        }
    }
}

impl fmt::Display for Relationship {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.resource, self.relation, self.subject)
    }
}

/// Parses SpiceDB's tuple notation, `type:id#relation@type:id[#relation]`.
impl FromStr for Relationship {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let malformed = || Error::InvalidRequest(format!("`{s}` is not `type:id#relation@subject`"));
        let (resource, subject) = s.split_once('@').ok_or_else(malformed)?;
        let (object, relation) = resource.split_once('#').ok_or_else(malformed)?;
        if relation.is_empty() {
            return Err(malformed());
        }
        Ok(Self::new(object.parse()?, relation, subject.parse()?))
    }
}

/// One change in a [`Authorizer::write_relationships`] batch (SpiceDB's operations).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RelationshipUpdate {
    /// Insert; the whole batch fails with a conflict if the relationship exists.
    Create(Relationship),
    /// Insert or keep: idempotent.
    Touch(Relationship),
    /// Remove if present; absent is not an error.
    Delete(Relationship),
}

impl RelationshipUpdate {
    /// The relationship the update is about.
    pub fn relationship(&self) -> &Relationship {
        match self {
            Self::Create(r) | Self::Touch(r) | Self::Delete(r) => r,
        }
    }
}

/// Which subject relations a [`SubjectFilter`] matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum SubjectRelationFilter {
    /// Any relation, and plain objects.
    #[default]
    Any,
    /// Plain objects only (SpiceDB's `...`).
    Ellipsis,
    /// Subject sets with exactly this relation.
    Relation(String),
}

/// Selects relationships by subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectFilter {
    /// The subject's object type.
    pub subject_type: String,
    /// The subject's object id (`*` selects wildcard relationships only).
    pub subject_id: Option<String>,
    /// The subject relation.
    pub relation: SubjectRelationFilter,
}

impl SubjectFilter {
    /// Every subject of a type.
    pub fn of_type(subject_type: impl Into<String>) -> Self {
        Self {
            subject_type: subject_type.into(),
            subject_id: None,
            relation: SubjectRelationFilter::Any,
        }
    }

    /// One object as subject, with any relation.
    pub fn object(object: &ObjectRef) -> Self {
        Self {
            subject_type: object.object_type.clone(),
            subject_id: Some(object.object_id.clone()),
            relation: SubjectRelationFilter::Any,
        }
    }

    /// Exactly this subject.
    pub fn exact(subject: &SubjectRef) -> Self {
        Self {
            subject_type: subject.object.object_type.clone(),
            subject_id: Some(subject.object.object_id.clone()),
            relation: match &subject.optional_relation {
                Some(rel) => SubjectRelationFilter::Relation(rel.clone()),
                None => SubjectRelationFilter::Ellipsis,
            },
        }
    }

    /// True when `subject` passes the filter.
    pub fn matches(&self, subject: &SubjectRef) -> bool {
        subject.object.object_type == self.subject_type
            && self
                .subject_id
                .as_ref()
                .is_none_or(|id| *id == subject.object.object_id)
            && match &self.relation {
                SubjectRelationFilter::Any => true,
                SubjectRelationFilter::Ellipsis => subject.optional_relation.is_none(),
                SubjectRelationFilter::Relation(rel) => subject.optional_relation.as_ref() == Some(rel),
            }
    }
}

/// Selects relationships (SpiceDB's `RelationshipFilter`). Unset fields match anything; a filter with no field
/// set is rejected by authorizers, so a bug cannot delete the whole graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RelationshipFilter {
    /// The resource's object type.
    pub resource_type: Option<String>,
    /// The resource's object id.
    pub resource_id: Option<String>,
    /// The relation.
    pub relation: Option<String>,
    /// The subject.
    pub subject: Option<SubjectFilter>,
}

impl RelationshipFilter {
    /// Every relationship on resources of a type.
    pub fn resource_type(resource_type: impl Into<String>) -> Self {
        Self {
            resource_type: Some(resource_type.into()),
            ..Self::default()
        }
    }

    /// Every relationship on one resource.
    pub fn resource(resource: &ObjectRef) -> Self {
        Self {
            resource_type: Some(resource.object_type.clone()),
            resource_id: Some(resource.object_id.clone()),
            ..Self::default()
        }
    }

    /// Every relationship with this subject filter.
    pub fn subject(subject: SubjectFilter) -> Self {
        Self {
            subject: Some(subject),
            ..Self::default()
        }
    }

    /// Narrows to one relation.
    #[must_use]
    pub fn with_relation(mut self, relation: impl Into<String>) -> Self {
        self.relation = Some(relation.into());
        self
    }

    /// Narrows to a subject.
    #[must_use]
    pub fn with_subject(mut self, subject: SubjectFilter) -> Self {
        self.subject = Some(subject);
        self
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.resource_type.is_none()
            && self.resource_id.is_none()
            && self.relation.is_none()
            && self.subject.is_none()
    }

    /// True when `rel` passes the filter.
    pub fn matches(&self, rel: &Relationship) -> bool {
        self.resource_type
            .as_ref()
            .is_none_or(|t| *t == rel.resource.object_type)
            && self
                .resource_id
                .as_ref()
                .is_none_or(|id| *id == rel.resource.object_id)
            && self.relation.as_ref().is_none_or(|r| *r == rel.relation)
            && self.subject.as_ref().is_none_or(|s| s.matches(&rel.subject))
    }
}

/// An opaque consistency token (SpiceDB's ZedToken): the revision a write produced or a read was served at.
/// Pass it back in [`Consistency::AtLeastAsFresh`] to read your own writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZedToken(String);

impl ZedToken {
    /// Wraps a token issued by an authorizer.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token text, for storage or transport.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ZedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How fresh the data behind an answer must be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// Whatever is fastest (possibly cached, slightly stale). Right for most page-level checks.
    #[default]
    MinimizeLatency,
    /// At least as fresh as the write that returned this token: read-your-writes.
    AtLeastAsFresh(ZedToken),
    /// The newest data. Slowest; use after security-sensitive changes (revocations).
    FullyConsistent,
}

/// `Does subject have permission on resource?`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckRequest {
    /// The resource.
    pub resource: ObjectRef,
    /// A permission or relation of the resource's type.
    pub permission: String,
    /// Who is asking (never a wildcard).
    pub subject: SubjectRef,
}

impl CheckRequest {
    /// A check of `permission` on `resource` for `subject`.
    pub fn new(
        resource: impl Into<ObjectRef>,
        permission: impl Into<String>,
        subject: impl Into<SubjectRef>,
    ) -> Self {
        Self {
            resource: resource.into(),
            permission: permission.into(),
            subject: subject.into(),
        }
    }
}

/// The answer to a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Permissionship {
    /// Denied.
    NoPermission,
    /// Granted.
    HasPermission,
}

impl Permissionship {
    /// True only for [`Permissionship::HasPermission`]: any other answer (including future conditional ones)
    /// is a denial.
    pub fn is_allowed(self) -> bool {
        matches!(self, Self::HasPermission)
    }
}

/// A check's answer and the revision it was computed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The answer.
    pub permissionship: Permissionship,
    /// The revision the answer reflects.
    pub checked_at: ZedToken,
}

impl CheckResult {
    /// True when granted.
    pub fn is_allowed(&self) -> bool {
        self.permissionship.is_allowed()
    }
}

/// Answers to a bulk check, in request order; one failing item does not fail the others.
#[derive(Debug)]
pub struct BulkCheckResult {
    /// The revision the answers reflect.
    pub checked_at: ZedToken,
    /// One per request, same order.
    pub results: Vec<Result<Permissionship>>,
}

/// `Which resources of a type may subject access?`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LookupResourcesRequest {
    /// The resource type.
    pub resource_type: String,
    /// A permission or relation of that type.
    pub permission: String,
    /// The subject.
    pub subject: SubjectRef,
}

/// `Which subjects of a type have permission on resource?`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LookupSubjectsRequest {
    /// The resource.
    pub resource: ObjectRef,
    /// A permission or relation of its type.
    pub permission: String,
    /// The subject type to list.
    pub subject_type: String,
    /// For subject sets (`group#member`); `None` lists plain objects.
    pub optional_subject_relation: Option<String>,
}

/// One result of [`Authorizer::lookup_subjects`], shaped like SpiceDB's `LookupSubjectsResponse`.
///
/// A wildcard grant appears as `subject_id == "*"` with the ids it excludes (`viewer: user:*` minus
/// `banned`); concrete subjects found alongside a wildcard are listed separately.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupSubject {
    /// An object id, or `*`.
    pub subject_id: String,
    /// For `*` only: ids that are excluded from the wildcard, sorted.
    pub excluded_subject_ids: Vec<String>,
}

impl LookupSubject {
    /// True for the wildcard result.
    pub fn is_wildcard(&self) -> bool {
        self.subject_id == WILDCARD
    }
}

/// Merges lookup results into the canonical form the port returns: each concrete subject once, and at most one
/// `*` whose exclusions name no listed subject, sorted.
///
/// SpiceDB streams one response per branch of its evaluation without merging them, so the same answer can
/// arrive as, say, `[* except {ann, bob}, ann]`; merging with SpiceDB's own union rule (wildcard exclusions
/// intersect, a concrete subject cancels its exclusion) turns that into `[* except {bob}, ann]`, the form
/// the local engine computes directly.
pub fn merge_lookup_subjects(found: impl IntoIterator<Item = LookupSubject>) -> Vec<LookupSubject> {
    let mut concrete: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut wildcard: Option<std::collections::BTreeSet<String>> = None;
    for subject in found {
        if subject.is_wildcard() {
            let excluded: std::collections::BTreeSet<String> =
                subject.excluded_subject_ids.into_iter().collect();
            wildcard = Some(match wildcard {
                None => excluded,
                Some(existing) => existing.intersection(&excluded).cloned().collect(),
            });
        } else {
            concrete.insert(subject.subject_id);
        }
    }
    let mut out: Vec<LookupSubject> = Vec::with_capacity(concrete.len() + 1);
    if let Some(excluded) = wildcard {
        out.push(LookupSubject {
            subject_id: WILDCARD.to_owned(),
            excluded_subject_ids: excluded.into_iter().filter(|id| !concrete.contains(id)).collect(),
        });
    }
    out.extend(concrete.into_iter().map(|subject_id| LookupSubject {
        subject_id,
        excluded_subject_ids: Vec::new(),
    }));
    out.sort();
    out
}

/// Relationship-based authorization (spec §6.2, SpiceDB semantics).
///
/// The port does not authorize its own callers: services decide who may write relationships or the schema;
/// request handlers use [`guard`].
///
/// # Contract
/// - `check` answers for the permissions of the [schema](crate::zed): union, intersection, exclusion, arrows,
///   subject sets and `type:*` wildcards (a wildcard matches every object of its type). A permission or
///   relation the type does not define, an unknown type, or a wildcard subject is an **error, never `false`**.
/// - Fails closed: every evaluation problem (store down, cycle, depth limit, deadline) is an error; no error is
///   ever an allow.
/// - `check_bulk` answers in request order, with a per-item error for a bad item.
/// - `write_relationships` applies the batch atomically and returns a token. `Create` of an existing
///   relationship fails the whole batch with `conflict`; `Touch` is idempotent; `Delete` of an absent one is a
///   no-op. Writes to permissions, subject types a relation does not accept, and two updates of the same
///   relationship in one batch are rejected.
/// - `delete_relationships` removes everything a non-empty filter matches and returns a token.
/// - Read-your-writes: a call with [`Consistency::AtLeastAsFresh`] of a token returned by a write sees that
///   write; `FullyConsistent` sees every completed write. A malformed token is an error.
/// - `lookup_resources` returns exactly the ids `check` would allow (sorted, no duplicates).
/// - `lookup_subjects` returns the concrete subjects found and, for wildcards, `*` with its exclusions
///   ([`LookupSubject`]), in the canonical form of [`merge_lookup_subjects`].
/// - `read_relationships` returns exactly what a non-empty filter matches, sorted.
/// - `write_schema` rejects invalid text and changes that would orphan stored relationships, keeping the old
///   schema; `read_schema` returns a schema equal (by [`crate::zed::Schema`] equality) to the last one written.
#[async_trait]
pub trait Authorizer: Send + Sync + fmt::Debug + 'static {
    /// Does `request.subject` have `request.permission` on `request.resource`?
    async fn check(
        &self,
        ctx: &Ctx,
        request: &CheckRequest,
        consistency: &Consistency,
    ) -> Result<CheckResult>;

    /// Many checks at one revision, answers in request order.
    async fn check_bulk(
        &self,
        ctx: &Ctx,
        requests: &[CheckRequest],
        consistency: &Consistency,
    ) -> Result<BulkCheckResult>;

    /// Applies `updates` atomically.
    async fn write_relationships(&self, ctx: &Ctx, updates: &[RelationshipUpdate]) -> Result<ZedToken>;

    /// Deletes every relationship `filter` matches.
    async fn delete_relationships(&self, ctx: &Ctx, filter: &RelationshipFilter) -> Result<ZedToken>;

    /// Ids of the resources of a type on which the subject has the permission.
    async fn lookup_resources(
        &self,
        ctx: &Ctx,
        request: &LookupResourcesRequest,
        consistency: &Consistency,
    ) -> Result<Vec<String>>;

    /// Subjects of a type that have the permission on a resource.
    async fn lookup_subjects(
        &self,
        ctx: &Ctx,
        request: &LookupSubjectsRequest,
        consistency: &Consistency,
    ) -> Result<Vec<LookupSubject>>;

    /// Stored relationships matching `filter`.
    async fn read_relationships(
        &self,
        ctx: &Ctx,
        filter: &RelationshipFilter,
        consistency: &Consistency,
    ) -> Result<Vec<Relationship>>;

    /// Replaces the schema.
    async fn write_schema(&self, ctx: &Ctx, schema: &str) -> Result<ZedToken>;

    /// The current schema text.
    async fn read_schema(&self, ctx: &Ctx) -> Result<String>;
}

/// Conveniences over any [`Authorizer`].
#[async_trait]
pub trait AuthorizerExt: Authorizer {
    /// `check` reduced to a boolean; errors stay errors (fail closed).
    async fn is_allowed(
        &self,
        ctx: &Ctx,
        resource: ObjectRef,
        permission: &str,
        subject: SubjectRef,
        consistency: &Consistency,
    ) -> Result<bool> {
        let request = CheckRequest {
            resource,
            permission: permission.to_owned(),
            subject,
        };
        Ok(self.check(ctx, &request, consistency).await?.is_allowed())
    }
}

impl<A: Authorizer + ?Sized> AuthorizerExt for A {}

/// A store revision: increases with every successful write or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Revision(pub u64);

/// Durable relationship tuples: what the local engine evaluates (a memory adapter now, a Postgres table later).
///
/// It stores and indexes; it does not validate against the schema (the authorizer does).
///
/// # Contract
/// - `write` applies the batch atomically: `Create` of a stored tuple fails the whole batch with
///   `avb_core::Error::Conflict` and writes nothing; `Touch` is idempotent; `Delete` of an absent tuple is a
///   no-op. Each successful call returns a revision greater than every earlier one.
/// - `delete` removes everything the filter matches and returns a new revision (even if nothing matched).
/// - `snapshot` returns a consistent view at the latest revision: reads from it never see later writes.
/// - Lookups by resource (type, id, relation, subject type and relation) and by subject (type, id) are
///   indexed; a filter with neither may scan.
#[async_trait]
pub trait RelationshipStore: Send + Sync + fmt::Debug + 'static {
    /// Applies `updates` atomically.
    async fn write(&self, ctx: &Ctx, updates: &[RelationshipUpdate]) -> avb_core::Result<Revision>;

    /// Deletes everything `filter` matches.
    async fn delete(&self, ctx: &Ctx, filter: &RelationshipFilter) -> avb_core::Result<Revision>;

    /// A consistent read view at the newest revision.
    async fn snapshot(&self, ctx: &Ctx) -> avb_core::Result<Arc<dyn RelationshipSnapshot>>;
}

/// A consistent, read-only view of a [`RelationshipStore`] at one revision.
#[async_trait]
pub trait RelationshipSnapshot: Send + Sync + fmt::Debug {
    /// The revision the view reflects.
    fn revision(&self) -> Revision;

    /// Tuples matching `filter`, sorted by resource, relation, then subject; at most `limit` if given.
    async fn read(
        &self,
        ctx: &Ctx,
        filter: &RelationshipFilter,
        limit: Option<usize>,
    ) -> avb_core::Result<Vec<Relationship>>;
}

/// Longest object id SpiceDB accepts.
pub const MAX_OBJECT_ID_LEN: usize = 1024;

/// Checks an object id against SpiceDB's rule (`[a-zA-Z0-9/_|\-=+]{1,1024}`, or `*` where a wildcard is
/// allowed), so both adapters reject the same ids.
///
/// # Errors
/// [`Error::InvalidRequest`] naming the problem.
pub fn validate_object_id(id: &str, wildcard_allowed: bool) -> Result<()> {
    if id == WILDCARD {
        return if wildcard_allowed {
            Ok(())
        } else {
            Err(Error::InvalidRequest(
                "a wildcard (`*`) is not allowed here".into(),
            ))
        };
    }
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '|' | '-' | '=' | '+');
    if id.is_empty() || id.len() > MAX_OBJECT_ID_LEN || !id.chars().all(valid_char) {
        return Err(Error::InvalidRequest(format!(
            "object id must be 1 to {MAX_OBJECT_ID_LEN} characters of [a-zA-Z0-9/_|-=+]"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_notation_round_trips() {
        for text in [
            "doc:1#viewer@user:alice",
            "doc:1#viewer@group:eng#member",
            "theme:t#public@user:*",
        ] {
            let rel: Relationship = text.parse().unwrap();
            assert_eq!(rel.to_string(), text);
        }
        assert!("doc:1#viewer".parse::<Relationship>().is_err());
        assert!("doc:1#@user:a".parse::<Relationship>().is_err());
        assert!("doc#viewer@user:a".parse::<Relationship>().is_err());
    }

    #[test]
    fn object_ids_follow_spicedb_rules() {
        assert!(validate_object_id("0b8f7a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", false).is_ok());
        assert!(validate_object_id("*", true).is_ok());
        assert!(validate_object_id("*", false).is_err());
        assert!(validate_object_id("", false).is_err());
        assert!(validate_object_id("a b", false).is_err());
        assert!(validate_object_id(&"x".repeat(1025), false).is_err());
    }

    #[test]
    fn merging_lookup_results_applies_spicedb_union() {
        let entry = |id: &str, excluded: &[&str]| LookupSubject {
            subject_id: id.into(),
            excluded_subject_ids: excluded.iter().map(|s| (*s).to_owned()).collect(),
        };
        // The shape real SpiceDB streamed for one random schema.
        let raw = vec![
            entry("*", &["u0", "u1", "u3"]),
            entry("u0", &[]),
            entry("u3", &[]),
            entry("u0", &[]),
        ];
        assert_eq!(
            merge_lookup_subjects(raw),
            vec![entry("*", &["u1"]), entry("u0", &[]), entry("u3", &[])]
        );
        let two_wildcards = vec![entry("*", &["a", "b"]), entry("*", &["b", "c"])];
        assert_eq!(merge_lookup_subjects(two_wildcards), vec![entry("*", &["b"])]);
    }

    #[test]
    fn filters_match_by_every_field() {
        let rel: Relationship = "doc:1#viewer@group:eng#member".parse().unwrap();
        assert!(RelationshipFilter::resource_type("doc").matches(&rel));
        assert!(
            !RelationshipFilter::resource_type("doc")
                .with_relation("owner")
                .matches(&rel)
        );
        let mut subject = SubjectFilter::of_type("group");
        assert!(RelationshipFilter::subject(subject.clone()).matches(&rel));
        subject.relation = SubjectRelationFilter::Ellipsis;
        assert!(!RelationshipFilter::subject(subject.clone()).matches(&rel));
        subject.relation = SubjectRelationFilter::Relation("member".into());
        assert!(RelationshipFilter::subject(subject).matches(&rel));
        assert!(RelationshipFilter::default().is_empty());
    }
}
