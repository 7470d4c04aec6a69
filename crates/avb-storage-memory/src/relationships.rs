//! Relationship tuples in memory, for the local ReBAC engine.
//!
//! Two persistent ordered sets index every tuple, by resource (`type, id, relation, subject type, subject
//! relation, subject id`) and by subject (`subject type, id, relation, resource…`), so lookups are range
//! scans, never full scans. A third, persistent hash index groups the tuples by resource object: every
//! lookup a permission check makes names a `type:id#relation`, and a hash probe is several times cheaper than
//! descending the ordered set by string comparisons; grouping by object rather than by relation means the
//! several relations a check reads on one object share one probe's cache lines. All three are `imbl`
//! structures: a snapshot is a pointer copy, so an evaluation reads one consistent revision while writers
//! carry on, and every write updates the three together (a stale index would be a wrong answer). Keys pack
//! their strings into one shared allocation ([`Fields`]): a write copies the set nodes it touches, and with
//! them their keys, which then costs reference counts rather than a string allocation per field.

use async_trait::async_trait;
use avb_auth::authorizer::{
    ObjectRef, Relationship, RelationshipFilter, RelationshipSnapshot, RelationshipStore, RelationshipUpdate,
    Revision, SubjectRef, SubjectRelationFilter,
};
use avb_core::{Ctx, Error, Result};
use imbl::{HashMap, OrdSet};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
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
    /// The same tuples grouped by resource object; an object with no tuple has no entry.
    by_object: HashMap<ObjectKey, Tuples>,
}

/// `N` strings in one shared allocation, with the offsets that split them, compared field by field (so a
/// set orders them as the tuple of fields). Persistent sets copy the nodes a write touches, and with them
/// their keys: for this type that is a reference count rather than one string allocation per field, and a
/// comparison reads one allocation rather than one per field.
#[derive(Debug, Clone)]
struct Fields<const N: usize> {
    text: Arc<str>,
    /// Where each field ends in `text`.
    ends: [usize; N],
}

impl<const N: usize> Fields<N> {
    fn new(fields: [&str; N]) -> Self {
        let mut ends = [0; N];
        let mut at = 0;
        for (end, field) in ends.iter_mut().zip(fields) {
            at += field.len();
            *end = at;
        }
        Self {
            text: fields.concat().into(),
            ends,
        }
    }

    fn get(&self) -> [&str; N] {
        let mut start = 0;
        self.ends.map(|end| {
            let field = self.text.get(start..end).unwrap_or_default();
            start = end;
            field
        })
    }
}

impl<const N: usize> PartialEq for Fields<N> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<const N: usize> Eq for Fields<N> {}

impl<const N: usize> PartialOrd for Fields<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for Fields<N> {
    /// Field by field, stopping at the first that differs (without splitting the rest).
    fn cmp(&self, other: &Self) -> Ordering {
        let (mut a_start, mut b_start) = (0, 0);
        for (&a_end, &b_end) in self.ends.iter().zip(&other.ends) {
            let a = self.text.get(a_start..a_end).unwrap_or_default();
            let b = other.text.get(b_start..b_end).unwrap_or_default();
            match a.cmp(b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
            (a_start, b_start) = (a_end, b_end);
        }
        Ordering::Equal
    }
}

/// Tuple keyed for lookups by resource: type, id, relation, subject type, subject relation, subject id. The
/// subject relation sorts before the subject id so that "all `group#member` subjects of this relation" is
/// one range; `""` stands for a plain object (`...`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ResourceKey(Fields<6>);

/// Tuple keyed for lookups by subject: subject type, subject id, subject relation, type, id, relation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SubjectKey(Fields<6>);

impl ResourceKey {
    fn of(r: &Relationship) -> Self {
        Self(Fields::new([
            &r.resource.object_type,
            &r.resource.object_id,
            &r.relation,
            &r.subject.object.object_type,
            r.subject.optional_relation.as_deref().unwrap_or_default(),
            &r.subject.object.object_id,
        ]))
    }

    fn to_relationship(&self) -> Relationship {
        let [rtype, rid, rel, stype, srel, sid] = self.0.get();
        relationship(rtype, rid, rel, stype, sid, srel)
    }

    /// The fields of `filter` that form a contiguous key prefix, padded with the smallest strings.
    fn lower_bound(filter: &RelationshipFilter) -> (Self, usize) {
        let subject = filter.subject.as_ref();
        let candidates = [
            filter.resource_type.as_deref(),
            filter.resource_id.as_deref(),
            filter.relation.as_deref(),
            subject.map(|s| s.subject_type.as_str()),
            subject.and_then(|s| match &s.relation {
                SubjectRelationFilter::Any => None,
                SubjectRelationFilter::Ellipsis => Some(""),
                SubjectRelationFilter::Relation(rel) => Some(rel.as_str()),
            }),
            subject.and_then(|s| s.subject_id.as_deref()),
        ];
        let len = candidates.iter().take_while(|field| field.is_some()).count();
        let mut fields = [""; 6];
        for (field, candidate) in fields.iter_mut().zip(candidates).take(len) {
            *field = candidate.unwrap_or_default();
        }
        (Self(Fields::new(fields)), len)
    }

    fn shares_prefix(&self, other: &Self, len: usize) -> bool {
        self.0
            .get()
            .iter()
            .zip(other.0.get().iter())
            .take(len)
            .all(|(x, y)| x == y)
    }
}

impl SubjectKey {
    fn of(r: &Relationship) -> Self {
        Self(Fields::new([
            &r.subject.object.object_type,
            &r.subject.object.object_id,
            r.subject.optional_relation.as_deref().unwrap_or_default(),
            &r.resource.object_type,
            &r.resource.object_id,
            &r.relation,
        ]))
    }

    fn to_relationship(&self) -> Relationship {
        let [stype, sid, srel, rtype, rid, rel] = self.0.get();
        relationship(rtype, rid, rel, stype, sid, srel)
    }
}

/// The two parts of an object, `type:id`, however they are stored: lookups hash and compare a borrowed view
/// of the filter's strings, so a probe allocates nothing.
trait ObjectParts {
    fn parts(&self) -> (&str, &str);
}

impl Hash for dyn ObjectParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn ObjectParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn ObjectParts + '_ {}

/// An object named by borrowed strings (a lookup).
struct ObjectView<'a>(&'a str, &'a str);

impl ObjectParts for ObjectView<'_> {
    fn parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

/// A stored object: type and id in one shared allocation (a write copies index nodes, and with them their
/// keys: a reference count, not a string), with the length that splits them (unambiguous whatever the
/// strings contain).
#[derive(Debug, Clone)]
struct ObjectKey {
    text: Arc<str>,
    type_len: usize,
}

impl ObjectKey {
    fn of(object: &ObjectRef) -> Self {
        Self {
            text: [object.object_type.as_str(), &object.object_id].concat().into(),
            type_len: object.object_type.len(),
        }
    }
}

impl ObjectParts for ObjectKey {
    fn parts(&self) -> (&str, &str) {
        self.text.split_at_checked(self.type_len).unwrap_or_default()
    }
}

impl PartialEq for ObjectKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for ObjectKey {}

/// Hashes exactly as the `dyn ObjectParts` it borrows as, which `Borrow` requires.
impl Hash for ObjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl<'a> Borrow<dyn ObjectParts + 'a> for ObjectKey {
    fn borrow(&self) -> &(dyn ObjectParts + 'a) {
        self
    }
}

/// The rest of a tuple once its object is known, `relation@subject`: relation, subject type, subject
/// relation (`""` for a plain object), subject id. Ordered in that order, like [`ResourceKey`]'s tail, so
/// "every `group#member` on this relation" is one contiguous run.
type Held = Fields<4>;

/// The fields of a [`Held`].
type HeldParts<'a> = [&'a str; 4];

/// The parts of `r` that follow its object.
fn held_parts(r: &Relationship) -> HeldParts<'_> {
    [
        &r.relation,
        &r.subject.object.object_type,
        r.subject.optional_relation.as_deref().unwrap_or_default(),
        &r.subject.object.object_id,
    ]
}

/// Tuples an object holds as a packed list up to this many, as a persistent set beyond.
const FEW: usize = 32;

/// A sorted list of tuples in two allocations: their parts back to back in one string, and where each
/// tuple's parts end. Searching it touches a few contiguous cache lines, where a list of separately
/// allocated tuples would miss the cache once per comparison.
#[derive(Debug, Clone, Default)]
struct TupleList {
    text: String,
    /// Per tuple, the end offsets in `text` of its relation, subject type, subject relation and subject id.
    ends: Vec<[usize; 4]>,
}

impl TupleList {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The parts of the tuple whose ends are `ends` (its start is the previous tuple's end).
    fn parts_at(&self, start: usize, ends: [usize; 4]) -> HeldParts<'_> {
        let [rel, stype, srel, sid] = ends;
        let part = |from: usize, to: usize| self.text.get(from..to).unwrap_or_default();
        [
            part(start, rel),
            part(rel, stype),
            part(stype, srel),
            part(srel, sid),
        ]
    }

    fn start_of(&self, index: usize) -> usize {
        index
            .checked_sub(1)
            .and_then(|previous| self.ends.get(previous))
            .map_or(0, |&[.., end]| end)
    }

    fn parts(&self, index: usize) -> Option<HeldParts<'_>> {
        let ends = *self.ends.get(index)?;
        Some(self.parts_at(self.start_of(index), ends))
    }

    fn iter(&self) -> impl Iterator<Item = HeldParts<'_>> {
        (0..self.len()).filter_map(|i| self.parts(i))
    }

    /// Where `parts` is (`Ok`) or would go (`Err`).
    fn search(&self, parts: HeldParts<'_>) -> Result<usize, usize> {
        let at = self.partition_point(parts);
        match self.parts(at) {
            Some(found) if found == parts => Ok(at),
            _ => Err(at),
        }
    }

    /// The index of the first tuple not below `lower`.
    fn partition_point(&self, lower: HeldParts<'_>) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.parts(mid).is_some_and(|p| p < lower) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    fn insert(&mut self, at: usize, [rel, stype, srel, sid]: HeldParts<'_>) {
        let start = self.start_of(at);
        let added = rel.len() + stype.len() + srel.len() + sid.len();
        self.text.insert_str(start, &[rel, stype, srel, sid].concat());
        for ends in self.ends.iter_mut().skip(at) {
            for end in ends {
                *end += added;
            }
        }
        let rel_end = start + rel.len();
        let stype_end = rel_end + stype.len();
        let srel_end = stype_end + srel.len();
        self.ends
            .insert(at, [rel_end, stype_end, srel_end, srel_end + sid.len()]);
    }

    fn remove(&mut self, at: usize) {
        let start = self.start_of(at);
        let Some(&[.., end]) = self.ends.get(at) else {
            return;
        };
        self.text.replace_range(start..end, "");
        self.ends.remove(at);
        let removed = end - start;
        for ends in self.ends.iter_mut().skip(at) {
            for end in ends {
                *end -= removed;
            }
        }
    }
}

impl<'a> FromIterator<HeldParts<'a>> for TupleList {
    fn from_iter<I: IntoIterator<Item = HeldParts<'a>>>(iter: I) -> Self {
        let mut packed = Self::default();
        for parts in iter {
            packed.insert(packed.len(), parts);
        }
        packed
    }
}

/// The tuples of one object, sorted. Most objects hold a handful: a packed list, copied on write, is
/// compact and quick to search. An object that grows past [`FEW`] gets a persistent set, so a write to it
/// stays O(log n) however many tuples it holds.
#[derive(Debug, Clone)]
enum Tuples {
    Few(Arc<TupleList>),
    Many(OrdSet<Held>),
}

impl Tuples {
    fn one(parts: HeldParts<'_>) -> Self {
        Self::Few(Arc::new(TupleList::from_iter([parts])))
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Few(list) => list.len() == 0,
            Self::Many(set) => set.is_empty(),
        }
    }

    fn insert(&mut self, parts: HeldParts<'_>) {
        match self {
            Self::Few(list) => {
                let Err(at) = list.search(parts) else {
                    return;
                };
                if list.len() < FEW {
                    Arc::make_mut(list).insert(at, parts);
                } else {
                    let mut set: OrdSet<Held> = list.iter().map(Fields::new).collect();
                    set.insert(Held::new(parts));
                    *self = Self::Many(set);
                }
            }
            Self::Many(set) => {
                set.insert(Held::new(parts));
            }
        }
    }

    fn remove(&mut self, parts: HeldParts<'_>) {
        match self {
            Self::Few(list) => {
                if let Ok(at) = list.search(parts) {
                    Arc::make_mut(list).remove(at);
                }
            }
            Self::Many(set) => {
                set.remove(&Held::new(parts));
                // Back to a list well below the threshold, so an object hovering around it does not convert
                // on every write.
                if set.len() <= FEW / 2 {
                    *self = Self::Few(Arc::new(set.iter().map(Fields::get).collect()));
                }
            }
        }
    }

    /// The tuples from the first one not below `lower`, in order.
    fn from<'s>(&'s self, lower: HeldParts<'_>) -> impl Iterator<Item = HeldParts<'s>> + 's {
        let (few, many) = match self {
            Self::Few(list) => {
                let start = list.partition_point(lower);
                (Some((start..list.len()).filter_map(|i| list.parts(i))), None)
            }
            Self::Many(set) => {
                let bound = Held::new(lower);
                let run = set.range((Bound::Included(&bound), Bound::Unbounded));
                (None, Some(run.map(Fields::get)))
            }
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
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
        let object = ObjectView(&r.resource.object_type, &r.resource.object_id);
        let held = held_parts(r);
        match self.by_object.get_mut(&object as &dyn ObjectParts) {
            Some(tuples) => tuples.insert(held),
            None => {
                self.by_object
                    .insert(ObjectKey::of(&r.resource), Tuples::one(held));
            }
        }
    }

    fn remove(&mut self, r: &Relationship) {
        self.by_resource.remove(&ResourceKey::of(r));
        self.by_subject.remove(&SubjectKey::of(r));
        let object = ObjectView(&r.resource.object_type, &r.resource.object_id);
        if let Some(tuples) = self.by_object.get_mut(&object as &dyn ObjectParts) {
            tuples.remove(held_parts(r));
            if tuples.is_empty() {
                self.by_object.remove(&object as &dyn ObjectParts);
            }
        }
    }

    fn read(&self, filter: &RelationshipFilter, limit: Option<usize>) -> Vec<Relationship> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let by_subject = filter.subject.as_ref().filter(|s| s.subject_id.is_some());
        match (
            &filter.resource_type,
            &filter.resource_id,
            &filter.relation,
            by_subject,
        ) {
            (Some(rtype), Some(rid), Some(rel), _) => {
                self.read_node(rtype, rid, rel, filter, limit, &mut out)
            }
            (_, None, _, Some(subject)) => {
                let prefix_len = match &subject.relation {
                    SubjectRelationFilter::Any => 2,
                    SubjectRelationFilter::Ellipsis | SubjectRelationFilter::Relation(_) => 3,
                };
                let (want_type, want_id) = (
                    subject.subject_type.as_str(),
                    subject.subject_id.as_deref().unwrap_or_default(),
                );
                let want_rel = match &subject.relation {
                    SubjectRelationFilter::Relation(rel) => rel.as_str(),
                    SubjectRelationFilter::Any | SubjectRelationFilter::Ellipsis => "",
                };
                let bound = SubjectKey(Fields::new([want_type, want_id, want_rel, "", "", ""]));
                for key in self.by_subject.range((Bound::Included(&bound), Bound::Unbounded)) {
                    let [stype, sid, srel, ..] = key.0.get();
                    let same = stype == want_type && sid == want_id && (prefix_len == 2 || srel == want_rel);
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

    /// A read naming one node (`type:id#relation`): one hash probe for the object, then the run of its
    /// tuples the relation and subject filter select, in the order (and with the limit) of a range scan of
    /// `by_resource`.
    fn read_node(
        &self,
        rtype: &str,
        rid: &str,
        rel: &str,
        filter: &RelationshipFilter,
        limit: usize,
        out: &mut Vec<Relationship>,
    ) {
        let Some(tuples) = self.by_object.get(&ObjectView(rtype, rid) as &dyn ObjectParts) else {
            return;
        };
        // The leading subject fields the filter fixes, as in `ResourceKey::lower_bound`.
        let subject = filter.subject.as_ref();
        let stype = subject.map(|s| s.subject_type.as_str());
        let srel = subject.and_then(|s| match &s.relation {
            SubjectRelationFilter::Any => None,
            SubjectRelationFilter::Ellipsis => Some(""),
            SubjectRelationFilter::Relation(rel) => Some(rel.as_str()),
        });
        let sid = srel.and(subject.and_then(|s| s.subject_id.as_deref()));
        let lower = [
            rel,
            stype.unwrap_or_default(),
            srel.unwrap_or_default(),
            sid.unwrap_or_default(),
        ];
        for [held_rel, held_type, held_srel, held_id] in tuples.from(lower) {
            let in_prefix = held_rel == rel
                && stype.is_none_or(|t| t == held_type)
                && srel.is_none_or(|r| r == held_srel)
                && sid.is_none_or(|id| id == held_id);
            if !in_prefix || out.len() >= limit {
                break;
            }
            let selected = subject.is_none_or(|s| {
                s.subject_id.as_deref().is_none_or(|id| id == held_id)
                    && match &s.relation {
                        SubjectRelationFilter::Any => true,
                        SubjectRelationFilter::Ellipsis => held_srel.is_empty(),
                        SubjectRelationFilter::Relation(r) => !held_srel.is_empty() && held_srel == r,
                    }
            });
            if selected {
                out.push(relationship(rtype, rid, rel, held_type, held_id, held_srel));
            }
        }
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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    //! The per-object index answers every node read; these tests hold it to a plain model of the tuples
    //! through writes, deletes and snapshots, so an index left stale by any write path fails here.

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const RTYPES: [&str; 2] = ["doc", "folder"];
    const RIDS: [&str; 2] = ["a", "b"];
    const RELS: [&str; 2] = ["parent", "viewer"];
    const STYPES: [&str; 2] = ["group", "user"];
    const SRELS: [&str; 3] = ["", "member", "owner"];

    type Model = BTreeSet<Relationship>;

    fn ctx() -> Ctx {
        Ctx::system(avb_core::RequestId::generate(&avb_core::UuidV7Ids), "test", None)
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// What `filter` selects from `model`, sorted as reads return it.
    fn expected(model: &Model, filter: &RelationshipFilter) -> Vec<Relationship> {
        model.iter().filter(|r| filter.matches(r)).cloned().collect()
    }

    /// Every node read a check makes, with and without each subject filter shape.
    fn node_filters() -> Vec<RelationshipFilter> {
        let mut filters = Vec::new();
        for rtype in RTYPES {
            for rid in RIDS {
                for rel in RELS {
                    let node = RelationshipFilter::resource(&ObjectRef::new(rtype, rid)).with_relation(rel);
                    filters.push(node.clone());
                    for stype in STYPES {
                        for relation in [
                            SubjectRelationFilter::Any,
                            SubjectRelationFilter::Ellipsis,
                            SubjectRelationFilter::Relation("member".into()),
                        ] {
                            for subject_id in [None, Some("s3".to_owned())] {
                                filters.push(node.clone().with_subject(
                                    avb_auth::authorizer::SubjectFilter {
                                        subject_type: stype.into(),
                                        subject_id,
                                        relation: relation.clone(),
                                    },
                                ));
                            }
                        }
                    }
                }
            }
        }
        filters
    }

    /// Reads through a snapshot must equal the model: in full, and under a limit, a subset of that size.
    fn assert_reads(snapshot: &dyn RelationshipSnapshot, model: &Model, filters: &[RelationshipFilter]) {
        for filter in filters {
            let want = expected(model, filter);
            let got = block_on(snapshot.read(&ctx(), filter, None)).unwrap();
            assert_eq!(got, want, "filter {filter:?}");
            for limit in [1, 3] {
                let got = block_on(snapshot.read(&ctx(), filter, Some(limit))).unwrap();
                assert_eq!(
                    got.len(),
                    want.len().min(limit),
                    "filter {filter:?} limit {limit}"
                );
                assert!(
                    got.iter().all(|r| want.contains(r)),
                    "filter {filter:?} limit {limit}"
                );
                assert!(got.is_sorted(), "filter {filter:?} limit {limit}");
            }
        }
    }

    /// The index holds exactly the tuples of `by_resource`, with no empty entry and no oversized list.
    fn assert_index_consistent(store: &MemoryRelationshipStore) {
        let state = store.state.read().unwrap();
        let mut indexed = 0;
        for (object, tuples) in &state.by_object {
            assert!(!tuples.is_empty(), "empty entry for {object:?}");
            let (rtype, rid) = object.parts();
            let held: Vec<_> = tuples.from(["", "", "", ""]).collect();
            assert!(held.is_sorted(), "{object:?} out of order");
            if let Tuples::Few(list) = tuples {
                assert!(list.len() <= FEW, "{object:?} holds {} in a list", list.len());
            }
            for [rel, stype, srel, sid] in held {
                assert!(
                    state
                        .by_resource
                        .contains(&ResourceKey::of(&relationship(rtype, rid, rel, stype, sid, srel)))
                );
                indexed += 1;
            }
        }
        assert_eq!(indexed, state.by_resource.len());
    }

    fn tuple() -> impl Strategy<Value = Relationship> {
        (0..2usize, 0..2usize, 0..2usize, 0..2usize, 0..3usize, 0..40u32).prop_map(
            |(rtype, rid, rel, stype, srel, sid)| {
                relationship(
                    RTYPES[rtype],
                    RIDS[rid],
                    RELS[rel],
                    STYPES[stype],
                    &format!("s{sid}"),
                    SRELS[srel],
                )
            },
        )
    }

    fn update() -> impl Strategy<Value = RelationshipUpdate> {
        prop_oneof![
            1 => tuple().prop_map(RelationshipUpdate::Create),
            3 => tuple().prop_map(RelationshipUpdate::Touch),
            2 => tuple().prop_map(RelationshipUpdate::Delete),
        ]
    }

    fn filter() -> impl Strategy<Value = RelationshipFilter> {
        let relation = prop_oneof![
            Just(SubjectRelationFilter::Any),
            Just(SubjectRelationFilter::Ellipsis),
            prop::sample::select(SRELS.to_vec()).prop_map(|r| SubjectRelationFilter::Relation(r.into())),
        ];
        let subject = (
            prop::sample::select(STYPES.to_vec()),
            prop::option::of((0..40u32).prop_map(|i| format!("s{i}"))),
            relation,
        )
            .prop_map(|(t, id, relation)| avb_auth::authorizer::SubjectFilter {
                subject_type: t.into(),
                subject_id: id,
                relation,
            });
        (
            prop::option::of(prop::sample::select(RTYPES.to_vec())),
            prop::option::of(prop::sample::select(RIDS.to_vec())),
            prop::option::of(prop::sample::select(RELS.to_vec())),
            prop::option::of(subject),
        )
            .prop_map(|(t, id, rel, subject)| RelationshipFilter {
                resource_type: t.map(Into::into),
                resource_id: id.map(Into::into),
                relation: rel.map(Into::into),
                subject,
            })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<RelationshipUpdate>),
        Delete(RelationshipFilter),
        Snapshot,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => prop::collection::vec(update(), 1..24).prop_map(Op::Write),
            1 => filter().prop_map(Op::Delete),
            1 => Just(Op::Snapshot),
        ]
    }

    /// The model's answer to a write batch: the new tuples, or `None` if a `Create` conflicts.
    fn apply(model: &Model, updates: &[RelationshipUpdate]) -> Option<Model> {
        let mut next = model.clone();
        for update in updates {
            match update {
                RelationshipUpdate::Create(r) => {
                    if !next.insert(r.clone()) {
                        return None;
                    }
                }
                RelationshipUpdate::Touch(r) => {
                    next.insert(r.clone());
                }
                RelationshipUpdate::Delete(r) => {
                    next.remove(r);
                }
            }
        }
        Some(next)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn node_reads_match_a_model_through_writes_deletes_and_snapshots(
            ops in prop::collection::vec(op(), 1..40),
            probes in prop::collection::vec(filter(), 8),
        ) {
            let store = MemoryRelationshipStore::new();
            let nodes = node_filters();
            let mut model = Model::new();
            let mut snapshots: Vec<(Arc<dyn RelationshipSnapshot>, Model)> = Vec::new();
            for op in ops {
                match op {
                    Op::Write(updates) => {
                        let written = block_on(store.write(&ctx(), &updates));
                        match apply(&model, &updates) {
                            Some(next) => {
                                prop_assert!(written.is_ok());
                                model = next;
                            }
                            None => prop_assert!(written.is_err()),
                        }
                    }
                    Op::Delete(filter) => {
                        block_on(store.delete(&ctx(), &filter)).unwrap();
                        model.retain(|r| !filter.matches(r));
                    }
                    Op::Snapshot => {
                        snapshots.push((block_on(store.snapshot(&ctx())).unwrap(), model.clone()));
                    }
                }
                assert_index_consistent(&store);
                let now = block_on(store.snapshot(&ctx())).unwrap();
                assert_reads(now.as_ref(), &model, &nodes);
                assert_reads(now.as_ref(), &model, &probes);
            }
            // Later writes never leak into earlier snapshots (the index shares lists between revisions).
            for (snapshot, then) in &snapshots {
                assert_reads(snapshot.as_ref(), then, &nodes);
            }
        }
    }

    /// One object's tuples grow past the list threshold into a set and shrink back, read at every step.
    #[test]
    fn an_object_moves_between_list_and_set_without_losing_tuples() {
        let store = MemoryRelationshipStore::new();
        let nodes = node_filters();
        let mut model = Model::new();
        let tuples: Vec<Relationship> = (0..(FEW as u32 + 8))
            .map(|i| relationship("doc", "a", "viewer", "user", &format!("s{i}"), ""))
            .collect();
        let before = block_on(store.snapshot(&ctx())).unwrap();
        for r in &tuples {
            block_on(store.write(&ctx(), &[RelationshipUpdate::Create(r.clone())])).unwrap();
            model.insert(r.clone());
            assert_index_consistent(&store);
            assert_reads(block_on(store.snapshot(&ctx())).unwrap().as_ref(), &model, &nodes);
        }
        assert!(matches!(
            store.state.read().unwrap().by_object.values().next(),
            Some(Tuples::Many(_))
        ));
        let full = block_on(store.snapshot(&ctx())).unwrap();
        let full_model = model.clone();
        for r in tuples.iter().rev() {
            block_on(store.write(&ctx(), &[RelationshipUpdate::Delete(r.clone())])).unwrap();
            model.remove(r);
            assert_index_consistent(&store);
            assert_reads(block_on(store.snapshot(&ctx())).unwrap().as_ref(), &model, &nodes);
        }
        assert!(store.state.read().unwrap().by_object.is_empty());
        assert_reads(before.as_ref(), &Model::new(), &nodes);
        assert_reads(full.as_ref(), &full_model, &nodes);
    }
}
