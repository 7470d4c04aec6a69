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

    fn evaluator<'a>(
        &self,
        ctx: &'a Ctx,
        schema: &Arc<LoadedSchema>,
        snapshot: &Arc<dyn RelationshipSnapshot>,
        subject: SubjectRef,
    ) -> CheckEvaluator<'a> {
        CheckEvaluator {
            io: Io {
                ctx,
                schema: Arc::clone(schema),
                snapshot: Arc::clone(snapshot),
            },
            subject,
            limits: Limits::new(self.max_depth, self.budget),
            stack: HashSet::new(),
            memo: HashMap::new(),
            cycle_at: None,
        }
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

/// What both evaluators read from.
struct Io<'a> {
    ctx: &'a Ctx,
    schema: Arc<LoadedSchema>,
    snapshot: Arc<dyn RelationshipSnapshot>,
}

impl Io<'_> {
    async fn read(&self, filter: &RelationshipFilter, limit: Option<usize>) -> Result<Vec<Relationship>> {
        Ok(self.snapshot.read(self.ctx, filter, limit).await?)
    }

    async fn exists(&self, node: &Node, subject: SubjectFilter) -> Result<bool> {
        let filter = node.filter().with_subject(subject);
        Ok(!self.read(&filter, Some(1)).await?.is_empty())
    }

    /// Distinct objects a tupleset relation points at, in order.
    async fn pointed_at(&self, node: &Node) -> Result<Vec<ObjectRef>> {
        let mut seen = HashSet::new();
        Ok(self
            .read(&node.filter(), None)
            .await?
            .into_iter()
            .map(|t| t.subject.object)
            .filter(|o| seen.insert(o.clone()))
            .collect())
    }
}

struct CheckEvaluator<'a> {
    io: Io<'a>,
    subject: SubjectRef,
    limits: Limits,
    stack: HashSet<Node>,
    memo: HashMap<Node, bool>,
    cycle_at: Option<Node>,
}

impl CheckEvaluator<'_> {
    /// Evaluates to a definite answer or the error that prevented one.
    async fn decide(&mut self, resource: &ObjectRef, permission: &str) -> Result<Permissionship> {
        let node = Node::new(&resource.object_type, &resource.object_id, permission);
        match self.node(node, 0).await? {
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

    fn is_subject(&self, node: &Node) -> bool {
        self.subject.object.object_type == node.object_type
            && self.subject.object.object_id == node.object_id
            && self.subject.optional_relation.as_deref() == Some(node.relation.as_str())
    }

    fn node(&mut self, node: Node, depth: u32) -> BoxFut<'_, Result<Tri>> {
        Box::pin(async move {
            if self.is_subject(&node) {
                return Ok(Tri::Yes);
            }
            if let Some(known) = self.memo.get(&node) {
                return Ok(if *known { Tri::Yes } else { Tri::No });
            }
            if self.stack.contains(&node) {
                self.cycle_at.get_or_insert_with(|| node.clone());
                return Ok(Tri::Unknown(Unknown::Cycle));
            }
            if depth >= self.limits.max_depth {
                return Ok(Tri::Unknown(Unknown::TooDeep));
            }
            self.limits.step(self.io.ctx)?;
            let schema = Arc::clone(&self.io.schema);
            let Some(def) = schema.schema.definition(&node.object_type) else {
                return Ok(Tri::No);
            };
            let Some(member) = def.member(&node.relation) else {
                return Ok(Tri::No);
            };
            self.stack.insert(node.clone());
            let result = match member {
                Member::Relation(relation) => self.relation(&node, relation, depth).await,
                Member::Permission(expr) => self.expr(&node, expr, depth).await,
            };
            self.stack.remove(&node);
            let result = result?;
            match result {
                Tri::Yes => {
                    self.memo.insert(node, true);
                }
                Tri::No => {
                    self.memo.insert(node, false);
                }
                Tri::Unknown(_) => {}
            }
            Ok(result)
        })
    }

    async fn relation(&mut self, node: &Node, relation: &zed::Relation, depth: u32) -> Result<Tri> {
        let subject_type = self.subject.object.object_type.clone();
        for allowed in relation.allowed.iter().filter(|a| a.object_type == subject_type) {
            let probe = match (&allowed.kind, &self.subject.optional_relation) {
                // SpiceDB matches a wildcard whatever the checked subject's relation.
                (AllowedSubjectKind::Wildcard, _) => Some(SubjectFilter {
                    subject_type: subject_type.clone(),
                    subject_id: Some(WILDCARD.to_owned()),
                    relation: SubjectRelationFilter::Ellipsis,
                }),
                (AllowedSubjectKind::Direct, None) => Some(SubjectFilter::exact(&self.subject)),
                (AllowedSubjectKind::SubjectSet(rel), Some(sr)) if rel == sr => {
                    Some(SubjectFilter::exact(&self.subject))
                }
                _ => None,
            };
            if let Some(probe) = probe
                && self.io.exists(node, probe).await?
            {
                return Ok(Tri::Yes);
            }
        }
        let mut answer = Tri::No;
        for allowed in &relation.allowed {
            let AllowedSubjectKind::SubjectSet(sub_relation) = &allowed.kind else {
                continue;
            };
            let filter = node.filter().with_subject(SubjectFilter {
                subject_type: allowed.object_type.clone(),
                subject_id: None,
                relation: SubjectRelationFilter::Relation(sub_relation.clone()),
            });
            for tuple in self.io.read(&filter, None).await? {
                let child = Node::new(
                    &allowed.object_type,
                    &tuple.subject.object.object_id,
                    sub_relation,
                );
                answer = answer.or(self.node(child, depth + 1).await?);
                if answer == Tri::Yes {
                    return Ok(Tri::Yes);
                }
            }
        }
        Ok(answer)
    }

    fn expr<'s>(&'s mut self, node: &'s Node, expr: &'s Expr, depth: u32) -> BoxFut<'s, Result<Tri>> {
        Box::pin(async move {
            match expr {
                Expr::Nil => Ok(Tri::No),
                Expr::Ref(member) => self.node(node.on(member), depth + 1).await,
                Expr::Arrow {
                    tupleset,
                    computed,
                    function,
                } => {
                    let targets = self.io.pointed_at(&node.on(tupleset)).await?;
                    let schema = Arc::clone(&self.io.schema);
                    let mut answer = match function {
                        ArrowFunction::Any => Tri::No,
                        ArrowFunction::All if targets.is_empty() => return Ok(Tri::No),
                        ArrowFunction::All => Tri::Yes,
                    };
                    for target in targets {
                        let defines = schema
                            .schema
                            .definition(&target.object_type)
                            .is_some_and(|d| d.has_member(computed));
                        let found = if defines {
                            self.node(
                                Node::new(&target.object_type, &target.object_id, computed),
                                depth + 1,
                            )
                            .await?
                        } else {
                            Tri::No
                        };
                        answer = match function {
                            ArrowFunction::Any => answer.or(found),
                            ArrowFunction::All => answer.and(found),
                        };
                        if (answer == Tri::Yes && *function == ArrowFunction::Any)
                            || (answer == Tri::No && *function == ArrowFunction::All)
                        {
                            break;
                        }
                    }
                    Ok(answer)
                }
                Expr::Union(children) => {
                    let mut answer = Tri::No;
                    for child in children {
                        answer = answer.or(self.expr(node, child, depth).await?);
                        if answer == Tri::Yes {
                            break;
                        }
                    }
                    Ok(answer)
                }
                Expr::Intersection(children) => {
                    let mut answer = Tri::Yes;
                    for child in children {
                        answer = answer.and(self.expr(node, child, depth).await?);
                        if answer == Tri::No {
                            break;
                        }
                    }
                    Ok(answer)
                }
                Expr::Exclusion(base, excluded) => {
                    let mut answer = self.expr(node, base, depth).await?;
                    for child in excluded {
                        if answer == Tri::No {
                            break;
                        }
                        answer = answer.and(self.expr(node, child, depth).await?.not());
                    }
                    Ok(answer)
                }
            }
        })
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
        let mut eval = self.evaluator(ctx, &schema, &snapshot, request.subject.clone());
        let permissionship = eval.decide(&request.resource, &request.permission).await?;
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
        let mut evaluators: HashMap<SubjectRef, CheckEvaluator<'_>> = HashMap::new();
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            if let Err(err) = validate_check(&schema.schema, request) {
                results.push(Err(err));
                continue;
            }
            let eval = evaluators
                .entry(request.subject.clone())
                .or_insert_with(|| self.evaluator(ctx, &schema, &snapshot, request.subject.clone()));
            // A cycle noted for an earlier item must not be blamed on this one.
            eval.cycle_at = None;
            results.push(eval.decide(&request.resource, &request.permission).await);
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
        let mut eval = self.evaluator(ctx, &schema, &snapshot, request.subject.clone());

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
            eval.limits.step(ctx)?;
            let filter = RelationshipFilter::subject(SubjectFilter::object(&object));
            for tuple in eval.io.read(&filter, None).await? {
                if visited.insert(tuple.resource.clone()) {
                    if tuple.resource.object_type == request.resource_type {
                        candidates.insert(tuple.resource.object_id.clone());
                    }
                    queue.push_back(tuple.resource);
                }
            }
        }

        let mut allowed = Vec::new();
        for id in candidates {
            let resource = ObjectRef::new(&request.resource_type, id);
            eval.cycle_at = None;
            if eval.decide(&resource, &request.permission).await?.is_allowed() {
                allowed.push(resource.object_id);
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
            limits: Limits::new(self.max_depth, self.budget),
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
