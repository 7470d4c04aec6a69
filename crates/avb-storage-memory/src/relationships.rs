//! Relationship tuples in memory, for the local ReBAC engine.
//!
//! Two persistent ordered sets index every tuple, by resource (`type, id, relation, subject type, subject
//! relation, subject id`) and by subject (`subject type, id, relation, resource…`), so a check's lookups are
//! range scans, never full scans. They are `imbl` sets: a snapshot is a pointer copy, so an evaluation reads
//! one consistent revision while writers carry on.

use async_trait::async_trait;
use avb_auth::authorizer::{
    ObjectRef, Relationship, RelationshipFilter, RelationshipSnapshot, RelationshipStore, RelationshipUpdate,
    Revision, SubjectRef, SubjectRelationFilter,
};
use avb_core::{Ctx, Error, Result};
use imbl::OrdSet;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock};

/// In-memory [`RelationshipStore`]. Cloning shares the tuples.
#[derive(Debug, Clone, Default)]
pub struct MemoryRelationshipStore {
    state: Arc<RwLock<State>>,
}

impl MemoryRelationshipStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug, Clone, Default)]
struct State {
    revision: u64,
    by_resource: OrdSet<ResourceKey>,
    by_subject: OrdSet<SubjectKey>,
}

/// Tuple keyed for lookups by resource. The subject relation sorts before the subject id so that "all
/// `group#member` subjects of this relation" is one range; `""` stands for a plain object (`...`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ResourceKey {
    rtype: String,
    rid: String,
    rel: String,
    stype: String,
    srel: String,
    sid: String,
}

/// Tuple keyed for lookups by subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SubjectKey {
    stype: String,
    sid: String,
    srel: String,
    rtype: String,
    rid: String,
    rel: String,
}

impl ResourceKey {
    fn of(r: &Relationship) -> Self {
        Self {
            rtype: r.resource.object_type.clone(),
            rid: r.resource.object_id.clone(),
            rel: r.relation.clone(),
            stype: r.subject.object.object_type.clone(),
            srel: r.subject.optional_relation.clone().unwrap_or_default(),
            sid: r.subject.object.object_id.clone(),
        }
    }

    fn to_relationship(&self) -> Relationship {
        relationship(
            &self.rtype,
            &self.rid,
            &self.rel,
            &self.stype,
            &self.sid,
            &self.srel,
        )
    }

    /// The fields of `filter` that form a contiguous key prefix, padded with the smallest strings.
    fn lower_bound(filter: &RelationshipFilter) -> (Self, usize) {
        let mut fields: Vec<String> = Vec::with_capacity(6);
        let subject = filter.subject.as_ref();
        let candidates = [
            filter.resource_type.clone(),
            filter.resource_id.clone(),
            filter.relation.clone(),
            subject.map(|s| s.subject_type.clone()),
            subject.and_then(|s| match &s.relation {
                SubjectRelationFilter::Any => None,
                SubjectRelationFilter::Ellipsis => Some(String::new()),
                SubjectRelationFilter::Relation(rel) => Some(rel.clone()),
            }),
            subject.and_then(|s| s.subject_id.clone()),
        ];
        for field in candidates {
            match field {
                Some(value) => fields.push(value),
                None => break,
            }
        }
        let len = fields.len();
        let mut it = fields.into_iter();
        let mut next = || it.next().unwrap_or_default();
        (
            Self {
                rtype: next(),
                rid: next(),
                rel: next(),
                stype: next(),
                srel: next(),
                sid: next(),
            },
            len,
        )
    }

    fn shares_prefix(&self, other: &Self, len: usize) -> bool {
        let a = [
            &self.rtype,
            &self.rid,
            &self.rel,
            &self.stype,
            &self.srel,
            &self.sid,
        ];
        let b = [
            &other.rtype,
            &other.rid,
            &other.rel,
            &other.stype,
            &other.srel,
            &other.sid,
        ];
        a.iter().zip(b.iter()).take(len).all(|(x, y)| x == y)
    }
}

impl SubjectKey {
    fn of(r: &Relationship) -> Self {
        Self {
            stype: r.subject.object.object_type.clone(),
            sid: r.subject.object.object_id.clone(),
            srel: r.subject.optional_relation.clone().unwrap_or_default(),
            rtype: r.resource.object_type.clone(),
            rid: r.resource.object_id.clone(),
            rel: r.relation.clone(),
        }
    }

    fn to_relationship(&self) -> Relationship {
        relationship(
            &self.rtype,
            &self.rid,
            &self.rel,
            &self.stype,
            &self.sid,
            &self.srel,
        )
    }
}

fn relationship(rtype: &str, rid: &str, rel: &str, stype: &str, sid: &str, srel: &str) -> Relationship {
    let object = ObjectRef::new(stype, sid);
    let subject = if srel.is_empty() {
        SubjectRef::new(object)
    } else {
        SubjectRef::with_relation(object, srel)
    };
    Relationship::new(ObjectRef::new(rtype, rid), rel, subject)
}

impl State {
    fn contains(&self, r: &Relationship) -> bool {
        self.by_resource.contains(&ResourceKey::of(r))
    }

    fn insert(&mut self, r: &Relationship) {
        self.by_resource.insert(ResourceKey::of(r));
        self.by_subject.insert(SubjectKey::of(r));
    }

    fn remove(&mut self, r: &Relationship) {
        self.by_resource.remove(&ResourceKey::of(r));
        self.by_subject.remove(&SubjectKey::of(r));
    }

    fn read(&self, filter: &RelationshipFilter, limit: Option<usize>) -> Vec<Relationship> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let by_subject = filter.subject.as_ref().filter(|s| s.subject_id.is_some());
        match (filter.resource_id.is_some(), by_subject) {
            (false, Some(subject)) => {
                let prefix_len = match &subject.relation {
                    SubjectRelationFilter::Any => 2,
                    SubjectRelationFilter::Ellipsis | SubjectRelationFilter::Relation(_) => 3,
                };
                let lower = SubjectKey {
                    stype: subject.subject_type.clone(),
                    sid: subject.subject_id.clone().unwrap_or_default(),
                    srel: match &subject.relation {
                        SubjectRelationFilter::Relation(rel) => rel.clone(),
                        SubjectRelationFilter::Any | SubjectRelationFilter::Ellipsis => String::new(),
                    },
                    rtype: String::new(),
                    rid: String::new(),
                    rel: String::new(),
                };
                for key in self.by_subject.range((Bound::Included(&lower), Bound::Unbounded)) {
                    let same = key.stype == lower.stype
                        && key.sid == lower.sid
                        && (prefix_len == 2 || key.srel == lower.srel);
                    if !same || out.len() >= limit {
                        break;
                    }
                    let r = key.to_relationship();
                    if filter.matches(&r) {
                        out.push(r);
                    }
                }
            }
            _ => {
                let (lower, prefix_len) = ResourceKey::lower_bound(filter);
                for key in self
                    .by_resource
                    .range((Bound::Included(&lower), Bound::Unbounded))
                {
                    if !key.shares_prefix(&lower, prefix_len) || out.len() >= limit {
                        break;
                    }
                    let r = key.to_relationship();
                    if filter.matches(&r) {
                        out.push(r);
                    }
                }
            }
        }
        out.sort();
        out
    }
}

#[async_trait]
impl RelationshipStore for MemoryRelationshipStore {
    async fn write(&self, _ctx: &Ctx, updates: &[RelationshipUpdate]) -> Result<Revision> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // Apply to a copy (cheap: persistent sets) and publish only if every update succeeded.
        let mut next = state.clone();
        for update in updates {
            match update {
                RelationshipUpdate::Create(r) => {
                    if next.contains(r) {
                        return Err(Error::conflict(
                            "relationship",
                            format!("relationship {r} already exists"),
                        ));
                    }
                    next.insert(r);
                }
                RelationshipUpdate::Touch(r) => next.insert(r),
                RelationshipUpdate::Delete(r) => next.remove(r),
            }
        }
        next.revision = state.revision + 1;
        *state = next;
        Ok(Revision(state.revision))
    }

    async fn delete(&self, _ctx: &Ctx, filter: &RelationshipFilter) -> Result<Revision> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        for r in state.read(filter, None) {
            state.remove(&r);
        }
        state.revision += 1;
        Ok(Revision(state.revision))
    }

    async fn snapshot(&self, _ctx: &Ctx) -> Result<Arc<dyn RelationshipSnapshot>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner).clone();
        Ok(Arc::new(MemorySnapshot { state }))
    }
}

/// A frozen view of the store.
#[derive(Debug)]
struct MemorySnapshot {
    state: State,
}

#[async_trait]
impl RelationshipSnapshot for MemorySnapshot {
    fn revision(&self) -> Revision {
        Revision(self.state.revision)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        filter: &RelationshipFilter,
        limit: Option<usize>,
    ) -> Result<Vec<Relationship>> {
        Ok(self.state.read(filter, limit))
    }
}
