//! `LocalAuthorizer`: a ReBAC engine that evaluates the `.zed` schema itself over a [`RelationshipStore`],
//! answering exactly as SpiceDB does, so a server runs with no SpiceDB and swaps it in by configuration.
//!
//! # How it evaluates
//! - **check** walks the schema depth-first from the resource, reading only indexed tuples: for a relation,
//!   the subject itself or its `type:*` wildcard (one lookup each), then the subject sets (`group#member`)
//!   that the relation accepts; for a permission, its expression (`+` short-circuits on the first grant, `&` on
//!   the first denial, `-` evaluates the base first); for an arrow, the pointed-at objects whose type defines
//!   the target (others contribute nothing, as in SpiceDB). A subject set is a member of itself
//!   (`group:g#member` has `member` on `group:g`).
//! - **Cycles and depth.** The current path is tracked: meeting a node already on it is a *cycle*, and a path
//!   longer than `max_depth` (default 50, SpiceDB's default) is *too deep*. Both count as "unknown" in
//!   three-valued logic, so another branch can still decide the answer (`grant + unknown = grant`,
//!   `denial & unknown = denial`); if the answer depends on them it is an error ([`Error::CycleDetected`],
//!   [`Error::MaxDepthExceeded`]) where SpiceDB would fail with its max-depth error. Never a stack overflow,
//!   never an allow. Definite answers are memoized per request; an evaluation budget bounds pathological
//!   graphs.
//! - **lookup_subjects** follows SpiceDB's algorithm and its subject-set algebra: concrete subjects and one
//!   wildcard with exclusions (`user:*` minus `banned` reports `*` excluding the banned ids). Any cycle met is
//!   an error, as in SpiceDB, which never short-circuits lookups. One SpiceDB quirk is kept on purpose: for
//!   `rel.all(perm)`, objects whose type has no `perm` are ignored by lookups but deny in checks.
//! - **lookup_resources** walks the subject index backwards to the resources that can reach the subject, then
//!   checks each candidate, so its answers are exactly what `check` allows.
//! - **Cost of a check** (issue 3 wants p99 ≤ 10 µs over 100,000 tuples): node keys borrow their type and
//!   relation from the schema and share their id, one small map serves as both memo and path, reads reuse
//!   the evaluator's filter buffers, and only nodes that lead to further nodes cost a boxed future. The
//!   store's side of it (one hash probe per node read in memory) is the store's business.
//! - Tokens are store revisions (`local:<revision>`). The store is linearizable, so every read is at least as
//!   fresh as any token it issued; a token from the future is rejected.
//!
//! The schema lives in memory (default: the embedded spec schema); `write_schema` refuses changes that would
//! orphan stored relationships. Instances sharing a store should be built from the same schema.

use crate::authorizer::{
    Authorizer, BulkCheckResult, CheckRequest, CheckResult, Consistency, LookupResourcesRequest,
    LookupSubject, LookupSubjectsRequest, ObjectRef, Permissionship, Relationship, RelationshipFilter,
    RelationshipSnapshot, RelationshipStore, RelationshipUpdate, Revision, SubjectFilter, SubjectRef,
    SubjectRelationFilter, WILDCARD, ZedToken, merge_lookup_subjects, validate_object_id,
};
use crate::zed::{self, AllowedSubjectKind, ArrowFunction, Expr, Member, Schema};
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::Ctx;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

/// SpiceDB's default dispatch depth.
pub const DEFAULT_MAX_DEPTH: u32 = 50;

/// Default cap on sub-problems per request; far above any real schema's needs.
pub const DEFAULT_EVALUATION_BUDGET: u64 = 250_000;

const TOKEN_PREFIX: &str = "local:";

/// The local ReBAC engine. Build with [`LocalAuthorizer::builder`].
pub struct LocalAuthorizer {
    store: Arc<dyn RelationshipStore>,
    schema: RwLock<Arc<LoadedSchema>>,
    /// Relationship writes hold it shared, schema writes exclusively, so a schema change cannot race a write
    /// that was validated against the old schema.
    writes: tokio::sync::RwLock<()>,
    max_depth: u32,
    budget: u64,
}

#[derive(Debug)]
struct LoadedSchema {
    text: String,
    schema: Schema,
}

impl fmt::Debug for LocalAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalAuthorizer")
            .field("store", &self.store)
            .field("max_depth", &self.max_depth)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// Builds a [`LocalAuthorizer`].
#[derive(Debug, Default)]
pub struct LocalAuthorizerBuilder {
    store: Option<Arc<dyn RelationshipStore>>,
    schema: Option<String>,
    max_depth: Option<u32>,
    budget: Option<u64>,
}

impl LocalAuthorizerBuilder {
    /// The relationship store to evaluate (required).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn RelationshipStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Schema text; defaults to the embedded spec schema ([`zed::AGENTVOICEBOX_SCHEMA`]).
    #[must_use]
    pub fn schema(mut self, text: impl Into<String>) -> Self {
        self.schema = Some(text.into());
        self
    }

    /// Longest evaluation path (default [`DEFAULT_MAX_DEPTH`]).
    #[must_use]
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.max_depth = Some(depth);
        self
    }

    /// Most sub-problems one request may evaluate (default [`DEFAULT_EVALUATION_BUDGET`]).
    #[must_use]
    pub fn evaluation_budget(mut self, budget: u64) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Parses the schema and builds the engine. Stored relationships are not checked against the schema
    /// here; `write_schema` does that.
    ///
    /// # Errors
    /// A missing store, or an invalid schema.
    pub fn build(self) -> Result<LocalAuthorizer> {
        let store = self
            .store
            .ok_or_else(|| Error::Config("LocalAuthorizer needs a relationship store".into()))?;
        let text = self
            .schema
            .unwrap_or_else(|| zed::AGENTVOICEBOX_SCHEMA.to_owned());
        let schema = zed::parse(&text)?;
        Ok(LocalAuthorizer {
            store,
            schema: RwLock::new(Arc::new(LoadedSchema { text, schema })),
            writes: tokio::sync::RwLock::new(()),
            max_depth: self.max_depth.unwrap_or(DEFAULT_MAX_DEPTH),
            budget: self.budget.unwrap_or(DEFAULT_EVALUATION_BUDGET),
        })
    }
}

impl LocalAuthorizer {
    /// A builder.
    pub fn builder() -> LocalAuthorizerBuilder {
        LocalAuthorizerBuilder::default()
    }

    /// The engine over `store` with the embedded spec schema and default limits.
    ///
    /// # Errors
    /// Only if the embedded schema is invalid.
    pub fn new(store: Arc<dyn RelationshipStore>) -> Result<Self> {
        Self::builder().store(store).build()
    }

    fn schema(&self) -> Arc<LoadedSchema> {
        Arc::clone(&self.schema.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn snapshot(&self, ctx: &Ctx, consistency: &Consistency) -> Result<Arc<dyn RelationshipSnapshot>> {
        ctx.remaining()?;
        let snapshot = self.store.snapshot(ctx).await?;
        if let Consistency::AtLeastAsFresh(token) = consistency {
            let wanted = parse_token(token)?;
            if wanted > snapshot.revision() {
                return Err(Error::InvalidZedToken(
                    "the token is newer than this store's data".into(),
                ));
            }
        }
        Ok(snapshot)
    }

    fn limits(&self) -> Limits {
        Limits::new(self.max_depth, self.budget)
    }

    fn evaluator<'a>(
        &self,
        ctx: &'a Ctx,
        schema: &'a Schema,
        snapshot: &'a dyn RelationshipSnapshot,
        subject: &'a SubjectRef,
    ) -> CheckEvaluator<'a> {
        CheckEvaluator::new(ctx, schema, snapshot, subject, self.limits())
    }
}

fn token_for(revision: Revision) -> ZedToken {
    ZedToken::new(format!("{TOKEN_PREFIX}{}", revision.0))
}

fn parse_token(token: &ZedToken) -> Result<Revision> {
    token
        .as_str()
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rev| rev.parse::<u64>().ok())
        .map(Revision)
        .ok_or_else(|| Error::InvalidZedToken("not a token issued by the local authorizer".into()))
}

fn map_store_error(err: avb_core::Error) -> Error {
    match err {
        avb_core::Error::Conflict { reason, .. } => Error::AlreadyExists(reason),
        other => Error::Core(other),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Request validation: what SpiceDB rejects, rejected here with the same meaning.

fn definition<'s>(schema: &'s Schema, object_type: &str) -> Result<&'s zed::Definition> {
    schema
        .definition(object_type)
        .ok_or_else(|| Error::UnknownDefinition(object_type.to_owned()))
}

fn require_member(def: &zed::Definition, name: &str) -> Result<()> {
    if def.has_member(name) {
        Ok(())
    } else {
        Err(Error::UnknownRelation {
            definition: def.name().to_owned(),
            relation: name.to_owned(),
        })
    }
}

fn validate_subject(schema: &Schema, subject: &SubjectRef, wildcard_allowed: bool) -> Result<()> {
    let def = definition(schema, &subject.object.object_type)?;
    validate_object_id(&subject.object.object_id, wildcard_allowed)?;
    if let Some(rel) = &subject.optional_relation {
        if subject.is_wildcard() {
            return Err(Error::InvalidRequest(
                "a wildcard subject cannot have a relation".into(),
            ));
        }
        require_member(def, rel)?;
    }
    Ok(())
}

fn validate_resource(schema: &Schema, resource: &ObjectRef, permission: &str) -> Result<()> {
    let def = definition(schema, &resource.object_type)?;
    validate_object_id(&resource.object_id, false)?;
    require_member(def, permission)
}

fn validate_check(schema: &Schema, request: &CheckRequest) -> Result<()> {
    validate_resource(schema, &request.resource, &request.permission)?;
    if request.subject.is_wildcard() {
        return Err(Error::InvalidRequest(
            "cannot perform check on wildcard subject".into(),
        ));
    }
    validate_subject(schema, &request.subject, false)
}

fn validate_relationship(schema: &Schema, rel: &Relationship) -> Result<()> {
    let def = definition(schema, &rel.resource.object_type)?;
    validate_object_id(&rel.resource.object_id, false)?;
    let relation = match def.member(&rel.relation) {
        Some(Member::Relation(relation)) => relation,
        Some(Member::Permission(_)) => {
            return Err(Error::InvalidRelationship {
                relationship: rel.to_string(),
                reason: format!("cannot write a relationship to permission `{}`", rel.relation),
            });
        }
        None => {
            return Err(Error::UnknownRelation {
                definition: rel.resource.object_type.clone(),
                relation: rel.relation.clone(),
            });
        }
    };
    validate_subject(schema, &rel.subject, true)?;
    let subject = &rel.subject;
    if relation.allows(
        &subject.object.object_type,
        subject.optional_relation.as_deref(),
        subject.is_wildcard(),
    ) {
        Ok(())
    } else {
        let form = match (&subject.optional_relation, subject.is_wildcard()) {
            (_, true) => format!("{}:*", subject.object.object_type),
            (Some(sr), false) => format!("{}#{sr}", subject.object.object_type),
            (None, false) => subject.object.object_type.clone(),
        };
        Err(Error::InvalidRelationship {
            relationship: rel.to_string(),
            reason: format!(
                "subjects of type `{form}` are not allowed on relation `{}#{}`",
                rel.resource.object_type, rel.relation
            ),
        })
    }
}

fn validate_filter(schema: &Schema, filter: &RelationshipFilter) -> Result<()> {
    if filter.is_empty() {
        return Err(Error::InvalidRequest(
            "a relationship filter must set at least one field".into(),
        ));
    }
    if let Some(t) = &filter.resource_type {
        let def = definition(schema, t)?;
        if let Some(rel) = &filter.relation {
            require_member(def, rel)?;
        }
    } else if filter.resource_id.is_some() {
        return Err(Error::InvalidRequest(
            "a resource id filter needs a resource type".into(),
        ));
    }
    if let Some(id) = &filter.resource_id {
        validate_object_id(id, false)?;
    }
    if let Some(subject) = &filter.subject {
        let def = definition(schema, &subject.subject_type)?;
        if let Some(id) = &subject.subject_id {
            validate_object_id(id, true)?;
        }
        if let SubjectRelationFilter::Relation(rel) = &subject.relation {
            require_member(def, rel)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation.

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `type:id#relation`: one sub-problem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Node {
    object_type: String,
    object_id: String,
    relation: String,
}

impl Node {
    fn new(object_type: &str, object_id: &str, relation: &str) -> Self {
        Self {
            object_type: object_type.to_owned(),
            object_id: object_id.to_owned(),
            relation: relation.to_owned(),
        }
    }

    fn on(&self, relation: &str) -> Self {
        Self::new(&self.object_type, &self.object_id, relation)
    }

    fn filter(&self) -> RelationshipFilter {
        RelationshipFilter {
            resource_type: Some(self.object_type.clone()),
            resource_id: Some(self.object_id.clone()),
            relation: Some(self.relation.clone()),
            subject: None,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}#{}", self.object_type, self.object_id, self.relation)
    }
}

/// Why an answer is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    Cycle,
    TooDeep,
}

/// Three-valued (Kleene) answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Unknown(Unknown),
}

impl Tri {
    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, x) | (x, Tri::No) => x,
            (Tri::Unknown(a), Tri::Unknown(_)) => Tri::Unknown(a),
        }
    }

    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, x) | (x, Tri::Yes) => x,
            (Tri::Unknown(a), Tri::Unknown(_)) => Tri::Unknown(a),
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            unknown @ Tri::Unknown(_) => unknown,
        }
    }
}

/// Depth, budget and deadline bookkeeping shared by both evaluators.
struct Limits {
    max_depth: u32,
    budget: u64,
    steps: u64,
}

impl Limits {
    fn new(max_depth: u32, budget: u64) -> Self {
        Self {
            max_depth,
            budget,
            steps: 0,
        }
    }

    fn step(&mut self, ctx: &Ctx) -> Result<()> {
        self.steps += 1;
        if self.steps > self.budget {
            return Err(Error::EvaluationBudgetExceeded { budget: self.budget });
        }
        if self.steps.is_multiple_of(64) && ctx.deadline().is_some() {
            ctx.remaining()?;
        }
        Ok(())
    }
}

/// What the lookup-subjects evaluator reads from.
struct Io<'a> {
    ctx: &'a Ctx,
    schema: Arc<LoadedSchema>,
    snapshot: Arc<dyn RelationshipSnapshot>,
}

impl Io<'_> {
    async fn read(&self, filter: &RelationshipFilter, limit: Option<usize>) -> Result<Vec<Relationship>> {
        Ok(self.snapshot.read(self.ctx, filter, limit).await?)
    }

    /// Distinct objects a tupleset relation points at, in order.
    async fn pointed_at(&self, node: &Node) -> Result<Vec<ObjectRef>> {
        Ok(distinct_objects(self.read(&node.filter(), None).await?))
    }
}

/// The distinct subject objects of `tuples`, in order of first appearance.
fn distinct_objects(tuples: Vec<Relationship>) -> Vec<ObjectRef> {
    // Arrows usually point at a single object: no set is needed to deduplicate one.
    if tuples.len() <= 1 {
        return tuples.into_iter().map(|t| t.subject.object).collect();
    }
    let mut seen = HashSet::with_capacity(tuples.len());
    tuples
        .into_iter()
        .map(|t| t.subject.object)
        .filter(|o| seen.insert(o.clone()))
        .collect()
}

/// The id of a check node: borrowed from the request, or shared by every node of an object met in a stored
/// tuple, so recording a node on the path or in the memo copies a pointer instead of allocating strings.
#[derive(Debug, Clone)]
enum Id<'a> {
    Borrowed(&'a str),
    Shared(Arc<str>),
}

impl Id<'_> {
    fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(id) => id,
            Self::Shared(id) => id,
        }
    }
}

impl PartialEq for Id<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Id<'_> {}

impl Hash for Id<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// `type:id#relation` for checks: the type and relation are borrowed from the schema or the request (they
/// outlive the evaluator), so a node is cheap to copy, compare and hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key<'a> {
    relation: &'a str,
    object_type: &'a str,
    object_id: Id<'a>,
}

impl<'a> Key<'a> {
    fn on(&self, relation: &'a str) -> Self {
        Self {
            relation,
            object_type: self.object_type,
            object_id: self.object_id.clone(),
        }
    }
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}#{}",
            self.object_type,
            self.object_id.as_str(),
            self.relation
        )
    }
}

/// What a check knows about a node: it is on the current path (being evaluated), or its definite answer.
/// One map serves as both the path and the memo: a node cannot be on the path once it has an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    OnPath,
    Yes,
    No,
}

/// Entries a [`Visits`] keeps in its list before moving them to a hash map.
const SMALL_VISITS: usize = 32;

/// The nodes one evaluator has met. A typical check meets about a dozen, where comparing a short list is
/// cheaper than hashing every key (and allocates at most once); beyond [`SMALL_VISITS`] the entries move to
/// a hash map, so pathological graphs stay linear.
#[derive(Debug, Default)]
struct Visits<'a> {
    small: Vec<(Key<'a>, Visit)>,
    large: HashMap<Key<'a>, Visit>,
}

impl<'a> Visits<'a> {
    fn get(&self, key: &Key<'a>) -> Option<Visit> {
        if self.large.is_empty() {
            self.small.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
        } else {
            self.large.get(key).copied()
        }
    }

    /// Records a node [`Self::get`] did not find.
    fn push(&mut self, key: Key<'a>, visit: Visit) {
        if self.large.is_empty() {
            if self.small.len() < SMALL_VISITS {
                self.small.push((key, visit));
                return;
            }
            self.large.extend(self.small.drain(..));
        }
        self.large.insert(key, visit);
    }

    /// Replaces a recorded node's entry with its answer, or drops it (`None`).
    fn settle(&mut self, key: Key<'a>, answer: Option<Visit>) {
        if self.large.is_empty() {
            // The node was pushed before the nodes it led to: look from the end.
            if let Some(at) = self.small.iter().rposition(|(k, _)| *k == key) {
                match answer {
                    Some(visit) => {
                        if let Some(entry) = self.small.get_mut(at) {
                            entry.1 = visit;
                        }
                    }
                    None => {
                        self.small.swap_remove(at);
                    }
                }
            }
        } else {
            match answer {
                Some(visit) => {
                    self.large.insert(key, visit);
                }
                None => {
                    self.large.remove(&key);
                }
            }
        }
    }
}

/// Overwrites `slot` with `value`, reusing its buffer.
fn put(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(buffer) => {
            buffer.clear();
            buffer.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

/// Points `filter` at `type:id#relation`, reusing its buffers.
fn aim(filter: &mut RelationshipFilter, object_type: &str, object_id: &str, relation: &str) {
    put(&mut filter.resource_type, object_type);
    put(&mut filter.resource_id, object_id);
    put(&mut filter.relation, relation);
}

/// Narrows `filter` to subjects of `subject_type` with `subject_id` (any id if `None`) and `relation` (plain
/// objects if `None`), reusing its buffers.
fn aim_subject(
    filter: &mut RelationshipFilter,
    subject_type: &str,
    subject_id: Option<&str>,
    relation: Option<&str>,
) {
    let subject = filter.subject.get_or_insert_with(|| SubjectFilter::of_type(""));
    subject.subject_type.clear();
    subject.subject_type.push_str(subject_type);
    match subject_id {
        Some(id) => put(&mut subject.subject_id, id),
        None => subject.subject_id = None,
    }
    match (relation, &mut subject.relation) {
        (None, slot) => *slot = SubjectRelationFilter::Ellipsis,
        (Some(rel), SubjectRelationFilter::Relation(buffer)) => {
            buffer.clear();
            buffer.push_str(rel);
        }
        (Some(rel), slot) => *slot = SubjectRelationFilter::Relation(rel.to_owned()),
    }
}

/// What [`CheckEvaluator::enter`] found.
enum Entered<'a> {
    /// The answer without evaluating: the subject itself, a memoized answer, a cycle or the depth limit.
    Known(Tri),
    /// The node's member, to evaluate (the node is now on the path).
    Evaluate(Member<'a>),
}

/// True when a relation accepts subject sets (`group#member`), so evaluating it can lead to other nodes.
fn holds_subject_sets(relation: &zed::Relation) -> bool {
    relation
        .allowed
        .iter()
        .any(|a| matches!(a.kind, AllowedSubjectKind::SubjectSet(_)))
}

/// Filters reused by every read of one evaluator, one per shape so that their buffers keep their capacity.
#[derive(Default)]
struct Filters {
    /// `type:id#relation`, any subject.
    node: RelationshipFilter,
    /// `type:id#relation@subject`: is the checked subject (or a wildcard) stored there?
    probe: RelationshipFilter,
    /// `type:id#relation@subject_type#subject_relation`: the subject sets stored there.
    sets: RelationshipFilter,
}

struct CheckEvaluator<'a> {
    ctx: &'a Ctx,
    schema: &'a Schema,
    snapshot: &'a dyn RelationshipSnapshot,
    subject: &'a SubjectRef,
    limits: Limits,
    visits: Visits<'a>,
    cycle_at: Option<Key<'a>>,
    filters: Filters,
}

impl<'a> CheckEvaluator<'a> {
    fn new(
        ctx: &'a Ctx,
        schema: &'a Schema,
        snapshot: &'a dyn RelationshipSnapshot,
        subject: &'a SubjectRef,
        limits: Limits,
    ) -> Self {
        Self {
            ctx,
            schema,
            snapshot,
            subject,
            limits,
            visits: Visits {
                small: Vec::with_capacity(16),
                large: HashMap::new(),
            },
            cycle_at: None,
            filters: Filters::default(),
        }
    }

    /// Evaluates to a definite answer or the error that prevented one.
    async fn decide(
        &mut self,
        object_type: &'a str,
        object_id: &'a str,
        permission: &'a str,
    ) -> Result<Permissionship> {
        let key = Key {
            relation: permission,
            object_type,
            object_id: Id::Borrowed(object_id),
        };
        match self.node(key, 0).await? {
            Tri::Yes => Ok(Permissionship::HasPermission),
            Tri::No => Ok(Permissionship::NoPermission),
            Tri::Unknown(Unknown::Cycle) => Err(Error::CycleDetected {
                at: self
                    .cycle_at
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }),
            Tri::Unknown(Unknown::TooDeep) => Err(Error::MaxDepthExceeded {
                max_depth: self.limits.max_depth,
            }),
        }
    }

    fn is_subject(&self, key: &Key<'_>) -> bool {
        self.subject.optional_relation.as_deref() == Some(key.relation)
            && self.subject.object.object_type == key.object_type
            && self.subject.object.object_id == key.object_id.as_str()
    }

    /// Evaluates a node. Only nodes that lead to further nodes cost a boxed future ([`Self::expand`]):
    /// relations holding no subject sets, the leaves of most checks, are probed inline.
    async fn node(&mut self, key: Key<'a>, depth: u32) -> Result<Tri> {
        let member = match self.enter(&key, depth)? {
            Entered::Known(answer) => return Ok(answer),
            Entered::Evaluate(member) => member,
        };
        let result = match member {
            Member::Relation(relation) if !holds_subject_sets(relation) => self.probe(&key, relation).await,
            _ => self.expand(&key, member, depth).await,
        };
        let answer = match result {
            Ok(Tri::Yes) => Some(Visit::Yes),
            Ok(Tri::No) => Some(Visit::No),
            Ok(Tri::Unknown(_)) | Err(_) => None,
        };
        self.visits.settle(key, answer);
        result
    }

    /// What is known of a node before evaluating it; if nothing, records it on the path.
    fn enter(&mut self, key: &Key<'a>, depth: u32) -> Result<Entered<'a>> {
        if self.is_subject(key) {
            return Ok(Entered::Known(Tri::Yes));
        }
        match self.visits.get(key) {
            Some(Visit::Yes) => return Ok(Entered::Known(Tri::Yes)),
            Some(Visit::No) => return Ok(Entered::Known(Tri::No)),
            Some(Visit::OnPath) => {
                self.cycle_at.get_or_insert_with(|| key.clone());
                return Ok(Entered::Known(Tri::Unknown(Unknown::Cycle)));
            }
            None => {}
        }
        if depth >= self.limits.max_depth {
            return Ok(Entered::Known(Tri::Unknown(Unknown::TooDeep)));
        }
        self.limits.step(self.ctx)?;
        let Some(member) = self
            .schema
            .definition(key.object_type)
            .and_then(|def| def.member(key.relation))
        else {
            return Ok(Entered::Known(Tri::No));
        };
        self.visits.push(key.clone(), Visit::OnPath);
        Ok(Entered::Evaluate(member))
    }

    fn expand<'s>(&'s mut self, key: &'s Key<'a>, member: Member<'a>, depth: u32) -> BoxFut<'s, Result<Tri>> {
        Box::pin(async move {
            match member {
                Member::Relation(relation) => self.relation(key, relation, depth).await,
                Member::Permission(expr) => self.combine(key, expr, depth).await,
            }
        })
    }

    /// Whether the checked subject, or a wildcard of its type, is stored directly on the relation.
    async fn probe(&mut self, key: &Key<'a>, relation: &'a zed::Relation) -> Result<Tri> {
        let subject = self.subject;
        let subject_type = subject.object.object_type.as_str();
        for allowed in relation.allowed.iter().filter(|a| a.object_type == subject_type) {
            let probe = match (&allowed.kind, &subject.optional_relation) {
                // SpiceDB matches a wildcard whatever the checked subject's relation.
                (AllowedSubjectKind::Wildcard, _) => Some((WILDCARD, None)),
                (AllowedSubjectKind::Direct, None) => Some((subject.object.object_id.as_str(), None)),
                (AllowedSubjectKind::SubjectSet(rel), Some(sr)) if rel == sr => {
                    Some((subject.object.object_id.as_str(), Some(sr.as_str())))
                }
                _ => None,
            };
            if let Some((subject_id, subject_relation)) = probe {
                let filter = &mut self.filters.probe;
                aim(filter, key.object_type, key.object_id.as_str(), key.relation);
                aim_subject(filter, subject_type, Some(subject_id), subject_relation);
                if !self.snapshot.read(self.ctx, filter, Some(1)).await?.is_empty() {
                    return Ok(Tri::Yes);
                }
            }
        }
        Ok(Tri::No)
    }

    /// [`Self::probe`], then the subject sets stored on the relation.
    async fn relation(&mut self, key: &Key<'a>, relation: &'a zed::Relation, depth: u32) -> Result<Tri> {
        if self.probe(key, relation).await? == Tri::Yes {
            return Ok(Tri::Yes);
        }
        let mut answer = Tri::No;
        for allowed in &relation.allowed {
            let AllowedSubjectKind::SubjectSet(sub_relation) = &allowed.kind else {
                continue;
            };
            let filter = &mut self.filters.sets;
            aim(filter, key.object_type, key.object_id.as_str(), key.relation);
            aim_subject(filter, &allowed.object_type, None, Some(sub_relation));
            for tuple in self.snapshot.read(self.ctx, filter, None).await? {
                let child = Key {
                    relation: sub_relation,
                    object_type: &allowed.object_type,
                    object_id: Id::Shared(tuple.subject.object.object_id.into()),
                };
                answer = answer.or(self.node(child, depth + 1).await?);
                if answer == Tri::Yes {
                    return Ok(Tri::Yes);
                }
            }
        }
        Ok(answer)
    }

    /// One operand of a permission. Nested operators cost a boxed future ([`Self::operator`]); the top-level
    /// one is combined inline under its node's box.
    async fn term(&mut self, key: &Key<'a>, expr: &'a Expr, depth: u32) -> Result<Tri> {
        match expr {
            Expr::Nil => Ok(Tri::No),
            Expr::Ref(member) => self.node(key.on(member), depth + 1).await,
            Expr::Arrow {
                tupleset,
                computed,
                function,
            } => self.arrow(key, tupleset, computed, *function, depth).await,
            Expr::Union(_) | Expr::Intersection(_) | Expr::Exclusion(..) => {
                self.operator(key, expr, depth).await
            }
        }
    }

    async fn arrow(
        &mut self,
        key: &Key<'a>,
        tupleset: &'a str,
        computed: &'a str,
        function: ArrowFunction,
        depth: u32,
    ) -> Result<Tri> {
        let filter = &mut self.filters.node;
        aim(filter, key.object_type, key.object_id.as_str(), tupleset);
        let targets = distinct_objects(self.snapshot.read(self.ctx, filter, None).await?);
        let mut answer = match function {
            ArrowFunction::Any => Tri::No,
            ArrowFunction::All if targets.is_empty() => return Ok(Tri::No),
            ArrowFunction::All => Tri::Yes,
        };
        let schema = self.schema;
        for target in targets {
            let defining = schema
                .definition(&target.object_type)
                .filter(|d| d.has_member(computed));
            let found = match defining {
                Some(def) => {
                    let child = Key {
                        relation: computed,
                        object_type: def.name(),
                        object_id: Id::Shared(target.object_id.into()),
                    };
                    self.node(child, depth + 1).await?
                }
                None => Tri::No,
            };
            answer = match function {
                ArrowFunction::Any => answer.or(found),
                ArrowFunction::All => answer.and(found),
            };
            if (answer == Tri::Yes && function == ArrowFunction::Any)
                || (answer == Tri::No && function == ArrowFunction::All)
            {
                break;
            }
        }
        Ok(answer)
    }

    fn operator<'s>(&'s mut self, key: &'s Key<'a>, expr: &'a Expr, depth: u32) -> BoxFut<'s, Result<Tri>> {
        Box::pin(self.combine(key, expr, depth))
    }

    /// Evaluates a permission expression, short-circuiting as SpiceDB does.
    async fn combine(&mut self, key: &Key<'a>, expr: &'a Expr, depth: u32) -> Result<Tri> {
        match expr {
            Expr::Union(children) => {
                let mut answer = Tri::No;
                for child in children {
                    answer = answer.or(self.term(key, child, depth).await?);
                    if answer == Tri::Yes {
                        break;
                    }
                }
                Ok(answer)
            }
            Expr::Intersection(children) => {
                let mut answer = Tri::Yes;
                for child in children {
                    answer = answer.and(self.term(key, child, depth).await?);
                    if answer == Tri::No {
                        break;
                    }
                }
                Ok(answer)
            }
            Expr::Exclusion(base, excluded) => {
                let mut answer = self.term(key, base, depth).await?;
                for child in excluded {
                    if answer == Tri::No {
                        break;
                    }
                    answer = answer.and(self.term(key, child, depth).await?.not());
                }
                Ok(answer)
            }
            Expr::Nil | Expr::Ref(_) | Expr::Arrow { .. } => self.term(key, expr, depth).await,
        }
    }
}

/// The subjects found by a lookup: concrete ids, plus at most one wildcard with its exclusions. The algebra
/// is SpiceDB's (`internal/datasets/basesubjectset.go`), without caveats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SubjectSet {
    concrete: BTreeSet<String>,
    wildcard: Option<BTreeSet<String>>,
}

impl SubjectSet {
    fn add_concrete(&mut self, id: &str) {
        self.concrete.insert(id.to_owned());
        if let Some(excluded) = &mut self.wildcard {
            excluded.remove(id);
        }
    }

    fn add_wildcard(&mut self, excluded: &BTreeSet<String>) {
        let mut merged = match self.wildcard.take() {
            None => excluded.clone(),
            Some(existing) => existing.intersection(excluded).cloned().collect(),
        };
        for id in &self.concrete {
            merged.remove(id);
        }
        self.wildcard = Some(merged);
    }

    fn union_with(&mut self, other: &SubjectSet) {
        for id in &other.concrete {
            self.add_concrete(id);
        }
        if let Some(excluded) = &other.wildcard {
            self.add_wildcard(excluded);
        }
    }

    fn subtract(&mut self, other: &SubjectSet) {
        for id in &other.concrete {
            self.concrete.remove(id);
            if let Some(excluded) = &mut self.wildcard {
                excluded.insert(id.clone());
            }
        }
        if let Some(other_excluded) = &other.wildcard {
            // Only subjects the other wildcard excludes survive it.
            self.concrete.retain(|id| other_excluded.contains(id));
            if let Some(excluded) = self.wildcard.take() {
                for id in other_excluded.difference(&excluded) {
                    self.concrete.insert(id.clone());
                }
            }
        }
    }

    fn intersect(&mut self, other: &SubjectSet) {
        let wildcard = match (&self.wildcard, &other.wildcard) {
            (Some(a), Some(b)) => Some(a.union(b).cloned().collect::<BTreeSet<_>>()),
            _ => None,
        };
        let in_other = |id: &String| {
            other.concrete.contains(id)
                || other
                    .wildcard
                    .as_ref()
                    .is_some_and(|excluded| !excluded.contains(id))
        };
        let mut concrete: BTreeSet<String> =
            self.concrete.iter().filter(|id| in_other(id)).cloned().collect();
        if let Some(excluded) = &self.wildcard {
            concrete.extend(
                other
                    .concrete
                    .iter()
                    .filter(|id| !excluded.contains(*id))
                    .cloned(),
            );
        }
        self.concrete = concrete;
        self.wildcard = wildcard;
    }

    fn into_results(self) -> Vec<LookupSubject> {
        let wildcard = self.wildcard.map(|excluded| LookupSubject {
            subject_id: WILDCARD.to_owned(),
            excluded_subject_ids: excluded.into_iter().collect(),
        });
        merge_lookup_subjects(
            self.concrete
                .into_iter()
                .map(|subject_id| LookupSubject {
                    subject_id,
                    excluded_subject_ids: Vec::new(),
                })
                .chain(wildcard),
        )
    }
}

struct SubjectsEvaluator<'a> {
    io: Io<'a>,
    subject_type: String,
    subject_relation: Option<String>,
    limits: Limits,
    stack: HashSet<Node>,
    memo: HashMap<Node, SubjectSet>,
}

impl SubjectsEvaluator<'_> {
    fn node(&mut self, node: Node, depth: u32) -> BoxFut<'_, Result<SubjectSet>> {
        Box::pin(async move {
            if let Some(known) = self.memo.get(&node) {
                return Ok(known.clone());
            }
            if self.stack.contains(&node) {
                return Err(Error::CycleDetected { at: node.to_string() });
            }
            if depth >= self.limits.max_depth {
                return Err(Error::MaxDepthExceeded {
                    max_depth: self.limits.max_depth,
                });
            }
            self.limits.step(self.io.ctx)?;
            let mut found = SubjectSet::default();
            if node.object_type == self.subject_type
                && self.subject_relation.as_deref() == Some(node.relation.as_str())
            {
                found.add_concrete(&node.object_id);
            }
            let schema = Arc::clone(&self.io.schema);
            let member = schema
                .schema
                .definition(&node.object_type)
                .and_then(|d| d.member(&node.relation));
            self.stack.insert(node.clone());
            let result = match member {
                None => Ok(SubjectSet::default()),
                Some(Member::Relation(_)) => self.relation(&node, depth).await,
                Some(Member::Permission(expr)) => self.expr(&node, expr, depth).await,
            };
            self.stack.remove(&node);
            found.union_with(&result?);
            self.memo.insert(node, found.clone());
            Ok(found)
        })
    }

    async fn relation(&mut self, node: &Node, depth: u32) -> Result<SubjectSet> {
        let mut found = SubjectSet::default();
        let tuples = self.io.read(&node.filter(), None).await?;
        for tuple in &tuples {
            let subject = &tuple.subject;
            if subject.object.object_type == self.subject_type
                && subject.optional_relation == self.subject_relation
            {
                if subject.is_wildcard() {
                    found.add_wildcard(&BTreeSet::new());
                } else {
                    found.add_concrete(&subject.object.object_id);
                }
            }
        }
        for tuple in &tuples {
            let subject = &tuple.subject;
            if let Some(sub_relation) = &subject.optional_relation {
                let child = Node::new(
                    &subject.object.object_type,
                    &subject.object.object_id,
                    sub_relation,
                );
                let nested = self.node(child, depth + 1).await?;
                found.union_with(&nested);
            }
        }
        Ok(found)
    }

    fn expr<'s>(&'s mut self, node: &'s Node, expr: &'s Expr, depth: u32) -> BoxFut<'s, Result<SubjectSet>> {
        Box::pin(async move {
            match expr {
                Expr::Nil => Ok(SubjectSet::default()),
                Expr::Ref(member) => self.node(node.on(member), depth + 1).await,
                Expr::Arrow {
                    tupleset,
                    computed,
                    function,
                } => {
                    let targets = self.io.pointed_at(&node.on(tupleset)).await?;
                    let schema = Arc::clone(&self.io.schema);
                    let mut combined: Option<SubjectSet> = None;
                    for target in targets {
                        let defines = schema
                            .schema
                            .definition(&target.object_type)
                            .is_some_and(|d| d.has_member(computed));
                        // SpiceDB's lookup skips targets whose type lacks the relation, also for `.all()`
                        // (where its check counts them as denials): we answer as SpiceDB's lookup does.
                        if !defines {
                            continue;
                        }
                        let found = self
                            .node(
                                Node::new(&target.object_type, &target.object_id, computed),
                                depth + 1,
                            )
                            .await?;
                        match (&mut combined, function) {
                            (None, _) => combined = Some(found),
                            (Some(acc), ArrowFunction::Any) => acc.union_with(&found),
                            (Some(acc), ArrowFunction::All) => acc.intersect(&found),
                        }
                    }
                    Ok(combined.unwrap_or_default())
                }
                Expr::Union(children) => {
                    let mut found = SubjectSet::default();
                    for child in children {
                        let part = self.expr(node, child, depth).await?;
                        found.union_with(&part);
                    }
                    Ok(found)
                }
                Expr::Intersection(children) => {
                    let mut found: Option<SubjectSet> = None;
                    for child in children {
                        let part = self.expr(node, child, depth).await?;
                        match &mut found {
                            None => found = Some(part),
                            Some(acc) => acc.intersect(&part),
                        }
                    }
                    Ok(found.unwrap_or_default())
                }
                Expr::Exclusion(base, excluded) => {
                    let mut found = self.expr(node, base, depth).await?;
                    for child in excluded {
                        let part = self.expr(node, child, depth).await?;
                        found.subtract(&part);
                    }
                    Ok(found)
                }
            }
        })
    }
}

#[async_trait]
impl Authorizer for LocalAuthorizer {
    async fn check(
        &self,
        ctx: &Ctx,
        request: &CheckRequest,
        consistency: &Consistency,
    ) -> Result<CheckResult> {
        let schema = self.schema();
        validate_check(&schema.schema, request)?;
        let snapshot = self.snapshot(ctx, consistency).await?;
        let mut eval = self.evaluator(ctx, &schema.schema, &*snapshot, &request.subject);
        let permissionship = eval
            .decide(
                &request.resource.object_type,
                &request.resource.object_id,
                &request.permission,
            )
            .await?;
        Ok(CheckResult {
            permissionship,
            checked_at: token_for(snapshot.revision()),
        })
    }

    async fn check_bulk(
        &self,
        ctx: &Ctx,
        requests: &[CheckRequest],
        consistency: &Consistency,
    ) -> Result<BulkCheckResult> {
        let schema = self.schema();
        let snapshot = self.snapshot(ctx, consistency).await?;
        let mut evaluators: HashMap<&SubjectRef, CheckEvaluator<'_>> = HashMap::new();
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            if let Err(err) = validate_check(&schema.schema, request) {
                results.push(Err(err));
                continue;
            }
            let eval = evaluators
                .entry(&request.subject)
                .or_insert_with(|| self.evaluator(ctx, &schema.schema, &*snapshot, &request.subject));
            // A cycle noted for an earlier item must not be blamed on this one.
            eval.cycle_at = None;
            results.push(
                eval.decide(
                    &request.resource.object_type,
                    &request.resource.object_id,
                    &request.permission,
                )
                .await,
            );
        }
        Ok(BulkCheckResult {
            checked_at: token_for(snapshot.revision()),
            results,
        })
    }

    async fn write_relationships(&self, ctx: &Ctx, updates: &[RelationshipUpdate]) -> Result<ZedToken> {
        ctx.remaining()?;
        let _shared = self.writes.read().await;
        let schema = self.schema();
        let mut seen = HashSet::with_capacity(updates.len());
        for update in updates {
            let rel = update.relationship();
            validate_relationship(&schema.schema, rel)?;
            if !seen.insert(rel) {
                return Err(Error::InvalidRequest(format!(
                    "found more than one update for relationship {rel}"
                )));
            }
        }
        let revision = self.store.write(ctx, updates).await.map_err(map_store_error)?;
        Ok(token_for(revision))
    }

    async fn delete_relationships(&self, ctx: &Ctx, filter: &RelationshipFilter) -> Result<ZedToken> {
        ctx.remaining()?;
        let _shared = self.writes.read().await;
        validate_filter(&self.schema().schema, filter)?;
        let revision = self.store.delete(ctx, filter).await.map_err(map_store_error)?;
        Ok(token_for(revision))
    }

    async fn lookup_resources(
        &self,
        ctx: &Ctx,
        request: &LookupResourcesRequest,
        consistency: &Consistency,
    ) -> Result<Vec<String>> {
        let schema = self.schema();
        let def = definition(&schema.schema, &request.resource_type)?;
        require_member(def, &request.permission)?;
        if request.subject.is_wildcard() {
            return Err(Error::InvalidRequest(
                "cannot look up resources for a wildcard subject".into(),
            ));
        }
        validate_subject(&schema.schema, &request.subject, false)?;
        let snapshot = self.snapshot(ctx, consistency).await?;
        let mut limits = self.limits();

        // Every resource that can reach the subject through stored tuples, walking the subject index backwards.
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        let start = request.subject.object.clone();
        if start.object_type == request.resource_type {
            candidates.insert(start.object_id.clone());
        }
        let mut visited: HashSet<ObjectRef> = HashSet::from([start.clone()]);
        let mut queue: VecDeque<ObjectRef> =
            VecDeque::from([start.clone(), ObjectRef::new(&start.object_type, WILDCARD)]);
        while let Some(object) = queue.pop_front() {
            limits.step(ctx)?;
            let filter = RelationshipFilter::subject(SubjectFilter::object(&object));
            for tuple in snapshot.read(ctx, &filter, None).await? {
                if visited.insert(tuple.resource.clone()) {
                    if tuple.resource.object_type == request.resource_type {
                        candidates.insert(tuple.resource.object_id.clone());
                    }
                    queue.push_back(tuple.resource);
                }
            }
        }

        // The budget spent walking counts against the checks.
        let mut eval = CheckEvaluator::new(ctx, &schema.schema, &*snapshot, &request.subject, limits);
        let mut allowed = Vec::new();
        for id in &candidates {
            eval.cycle_at = None;
            if eval
                .decide(&request.resource_type, id, &request.permission)
                .await?
                .is_allowed()
            {
                allowed.push(id.clone());
            }
        }
        Ok(allowed)
    }

    async fn lookup_subjects(
        &self,
        ctx: &Ctx,
        request: &LookupSubjectsRequest,
        consistency: &Consistency,
    ) -> Result<Vec<LookupSubject>> {
        let schema = self.schema();
        validate_resource(&schema.schema, &request.resource, &request.permission)?;
        let subject_def = definition(&schema.schema, &request.subject_type)?;
        if let Some(rel) = &request.optional_subject_relation {
            require_member(subject_def, rel)?;
        }
        let snapshot = self.snapshot(ctx, consistency).await?;
        let mut eval = SubjectsEvaluator {
            io: Io {
                ctx,
                schema: Arc::clone(&schema),
                snapshot,
            },
            subject_type: request.subject_type.clone(),
            subject_relation: request.optional_subject_relation.clone(),
            limits: self.limits(),
            stack: HashSet::new(),
            memo: HashMap::new(),
        };
        let root = Node::new(
            &request.resource.object_type,
            &request.resource.object_id,
            &request.permission,
        );
        Ok(eval.node(root, 0).await?.into_results())
    }

    async fn read_relationships(
        &self,
        ctx: &Ctx,
        filter: &RelationshipFilter,
        consistency: &Consistency,
    ) -> Result<Vec<Relationship>> {
        validate_filter(&self.schema().schema, filter)?;
        let snapshot = self.snapshot(ctx, consistency).await?;
        let mut found = snapshot.read(ctx, filter, None).await?;
        found.sort();
        Ok(found)
    }

    async fn write_schema(&self, ctx: &Ctx, text: &str) -> Result<ZedToken> {
        ctx.remaining()?;
        let schema = zed::parse(text)?;
        let _exclusive = self.writes.write().await;
        let old = self.schema();
        let snapshot = self.store.snapshot(ctx).await?;
        for def in old.schema.definitions() {
            let stored = snapshot
                .read(ctx, &RelationshipFilter::resource_type(def.name()), None)
                .await?;
            for rel in stored {
                if let Err(err) = validate_relationship(&schema, &rel) {
                    return Err(Error::SchemaInUse(format!(
                        "relationship {rel} would no longer be valid ({err}); delete it first"
                    )));
                }
            }
        }
        *self.schema.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(LoadedSchema {
            text: text.to_owned(),
            schema,
        });
        Ok(token_for(snapshot.revision()))
    }

    async fn read_schema(&self, _ctx: &Ctx) -> Result<String> {
        Ok(self.schema().text.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(concrete: &[&str], wildcard: Option<&[&str]>) -> SubjectSet {
        SubjectSet {
            concrete: concrete.iter().map(|s| (*s).to_owned()).collect(),
            wildcard: wildcard.map(|w| w.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn wildcard_minus_wildcard_turns_extra_exclusions_into_concrete_subjects() {
        // {* - sarah} - {* - tom, amy, sarah} = {tom, amy} (SpiceDB's own example).
        let mut a = set(&[], Some(&["sarah"]));
        a.subtract(&set(&[], Some(&["tom", "amy", "sarah"])));
        assert_eq!(a, set(&["amy", "tom"], None));
    }

    #[test]
    fn union_of_wildcards_intersects_exclusions_and_concretes_cancel_exclusions() {
        let mut a = set(&[], Some(&["tom", "sarah"]));
        a.union_with(&set(&[], Some(&["sarah"])));
        assert_eq!(a, set(&[], Some(&["sarah"])));
        a.union_with(&set(&["sarah"], None));
        assert_eq!(a, set(&["sarah"], Some(&[])));
    }

    #[test]
    fn intersection_keeps_concretes_covered_by_the_other_wildcard() {
        let mut a = set(&["tom", "amy"], None);
        a.intersect(&set(&[], Some(&["amy"])));
        assert_eq!(a, set(&["tom"], None));
        let mut b = set(&[], Some(&["x"]));
        b.intersect(&set(&["y"], Some(&["z"])));
        assert_eq!(b, set(&["y"], Some(&["x", "z"])));
    }

    #[test]
    fn kleene_logic_lets_a_definite_branch_decide() {
        let u = Tri::Unknown(Unknown::Cycle);
        assert_eq!(u.or(Tri::Yes), Tri::Yes);
        assert_eq!(u.or(Tri::No), u);
        assert_eq!(u.and(Tri::No), Tri::No);
        assert_eq!(Tri::Yes.and(u.not()), u);
    }

    #[test]
    fn tokens_round_trip_and_foreign_tokens_are_rejected() {
        assert_eq!(parse_token(&token_for(Revision(42))).unwrap(), Revision(42));
        assert!(parse_token(&ZedToken::new("GhUKEzE2")).is_err());
    }
}
