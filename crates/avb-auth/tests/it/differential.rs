//! The local half of the differential test: the engine against a brute-force reference evaluator written
//! independently here, on random relationship sets over the spec schema, over random small schemas that use
//! every operator (`+ & - -> .all() nil`, subject sets, wildcards), and over a recursive schema with cyclic data.
//!
//! The reference computes, for one subject, the least fixpoint of "subject belongs to `object#member`" over
//! the whole tuple set by plain iteration: no short-circuiting, no memo, no cycle detection. For acyclic
//! data the engine must agree exactly; for cyclic data (monotone schema) it must agree whenever it answers,
//! and may only fail (cycle) where the reference says "no".

use crate::support::ctx;
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::authorizer::{
    Authorizer, CheckRequest, Consistency, LookupResourcesRequest, LookupSubjectsRequest, ObjectRef,
    Relationship, RelationshipStore, RelationshipUpdate, SubjectRef,
};
use avb_auth::zed::{self, AllowedSubjectKind, ArrowFunction, Expr, Member, Schema};
use avb_storage_memory::MemoryRelationshipStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

// ------------------------------------------------------------------------------------------------------
// Reference evaluator.

type Key = (String, String, String);

struct Reference<'a> {
    schema: &'a Schema,
    tuples: &'a [Relationship],
    /// SpiceDB's LookupSubjects ignores `.all()` targets whose type lacks the computed relation, while its
    /// CheckPermission counts them as denials; the reference models either.
    all_ignores_undefined_targets: bool,
}

impl Reference<'_> {
    /// Every `(type, id, member)` the subject belongs to.
    fn members(&self, subject: &SubjectRef) -> HashSet<Key> {
        let mut objects: BTreeSet<(String, String)> = BTreeSet::new();
        for t in self.tuples {
            objects.insert((t.resource.object_type.clone(), t.resource.object_id.clone()));
            if !t.subject.is_wildcard() {
                objects.insert((
                    t.subject.object.object_type.clone(),
                    t.subject.object.object_id.clone(),
                ));
            }
        }
        objects.insert((
            subject.object.object_type.clone(),
            subject.object.object_id.clone(),
        ));
        let mut nodes: Vec<Key> = Vec::new();
        for (object_type, id) in &objects {
            let Some(def) = self.schema.definition(object_type) else {
                continue;
            };
            for rel in def.relations() {
                nodes.push((object_type.clone(), id.clone(), rel.name.clone()));
            }
            for (perm, _) in def.permissions() {
                nodes.push((object_type.clone(), id.clone(), perm.to_owned()));
            }
        }
        let mut current: HashSet<Key> = HashSet::new();
        for _ in 0..10_000 {
            let next: HashSet<Key> = nodes
                .iter()
                .filter(|n| self.holds(&current, subject, n))
                .cloned()
                .collect();
            if next == current {
                return current;
            }
            current = next;
        }
        panic!("reference evaluation did not converge");
    }

    fn holds(&self, known: &HashSet<Key>, subject: &SubjectRef, node: &Key) -> bool {
        let (object_type, id, member) = node;
        if subject.object.object_type == *object_type
            && subject.object.object_id == *id
            && subject.optional_relation.as_deref() == Some(member.as_str())
        {
            return true;
        }
        let def = self.schema.definition(object_type).unwrap();
        match def.member(member).unwrap() {
            Member::Relation(_) => self.tuples.iter().any(|t| {
                t.resource.object_type == *object_type
                    && t.resource.object_id == *id
                    && t.relation == *member
                    && (t.subject == *subject
                        || (t.subject.is_wildcard()
                            && t.subject.object.object_type == subject.object.object_type)
                        || t.subject.optional_relation.as_ref().is_some_and(|sr| {
                            known.contains(&(
                                t.subject.object.object_type.clone(),
                                t.subject.object.object_id.clone(),
                                sr.clone(),
                            ))
                        }))
            }),
            Member::Permission(expr) => self.expr(known, object_type, id, expr),
        }
    }

    fn expr(&self, known: &HashSet<Key>, object_type: &str, id: &str, expr: &Expr) -> bool {
        match expr {
            Expr::Nil => false,
            Expr::Ref(m) => known.contains(&(object_type.to_owned(), id.to_owned(), m.clone())),
            Expr::Arrow {
                tupleset,
                computed,
                function,
            } => {
                let targets: BTreeSet<(String, String)> = self
                    .tuples
                    .iter()
                    .filter(|t| {
                        t.resource.object_type == object_type
                            && t.resource.object_id == id
                            && t.relation == *tupleset
                    })
                    .map(|t| {
                        (
                            t.subject.object.object_type.clone(),
                            t.subject.object.object_id.clone(),
                        )
                    })
                    .collect();
                let defines = |(t, _): &&(String, String)| {
                    self.schema.definition(t).is_some_and(|d| d.has_member(computed))
                };
                let grants =
                    |(t, i): &(String, String)| known.contains(&(t.clone(), i.clone(), computed.clone()));
                match function {
                    ArrowFunction::Any => targets.iter().filter(defines).any(grants),
                    ArrowFunction::All if self.all_ignores_undefined_targets => {
                        let defined: Vec<&(String, String)> = targets.iter().filter(defines).collect();
                        !defined.is_empty() && defined.into_iter().all(grants)
                    }
                    ArrowFunction::All => {
                        !targets.is_empty() && targets.iter().all(|t| defines(&t) && grants(t))
                    }
                }
            }
            Expr::Union(children) => children.iter().any(|c| self.expr(known, object_type, id, c)),
            Expr::Intersection(children) => children.iter().all(|c| self.expr(known, object_type, id, c)),
            Expr::Exclusion(base, rest) => {
                self.expr(known, object_type, id, base)
                    && !rest.iter().any(|c| self.expr(known, object_type, id, c))
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------------
// Random generation (a small deterministic PRNG driven by proptest's seed).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const TYPES: [&str; 3] = ["alpha", "bravo", "charlie"];

/// A random acyclic schema: type `i` only points at `user` and earlier types, permissions only at earlier
/// members, so no data can form a cycle. It avoids what SpiceDB rejects (wildcards reached through subject
/// relations or arrows), so every draw is valid.
fn random_schema(rng: &mut Rng) -> String {
    let mut text = String::from("definition user {}\n");
    // Per earlier type: its members, each with "is a relation that can hold a wildcard".
    let mut members_of: Vec<Vec<(String, bool)>> = Vec::new();
    for (i, name) in TYPES.iter().enumerate() {
        text.push_str(&format!("definition {name} {{\n"));
        let mut members: Vec<(String, bool)> = Vec::new();
        let mut tuplesets: Vec<String> = Vec::new();
        for r in 0..2 + rng.below(3) {
            // Wildcards twice as likely: exclusions between wildcards are where set algebra goes wrong.
            let mut kinds: Vec<(String, bool)> = vec![
                ("user".into(), false),
                ("user:*".into(), true),
                ("user:*".into(), true),
            ];
            for (j, earlier) in TYPES.iter().take(i).enumerate() {
                kinds.push(((*earlier).into(), false));
                for (m, wild) in &members_of[j] {
                    if !wild {
                        kinds.push((format!("{earlier}#{m}"), false));
                    }
                }
            }
            let mut chosen: Vec<String> = Vec::new();
            let mut wild = false;
            for _ in 0..1 + rng.below(3) {
                let (k, w) = kinds[rng.below(kinds.len())].clone();
                if !chosen.contains(&k) {
                    chosen.push(k);
                    wild |= w;
                }
            }
            let rel = format!("rel{r}");
            text.push_str(&format!("    relation {rel}: {}\n", chosen.join(" | ")));
            if !wild {
                tuplesets.push(rel.clone());
            }
            members.push((rel, wild));
        }
        let refs: Vec<String> = members.iter().map(|(m, _)| m.clone()).collect();
        let computed: Vec<String> = members_of
            .iter()
            .flatten()
            .map(|(m, _)| m.clone())
            .chain(["nothing".to_owned()])
            .collect();
        let mut refs = refs;
        for p in 0..1 + rng.below(3) {
            let body = random_expr(rng, 3, &refs, &tuplesets, &computed);
            let perm = format!("perm{p}");
            text.push_str(&format!("    permission {perm} = {body}\n"));
            refs.push(perm.clone());
            members.push((perm, false));
        }
        text.push_str("}\n");
        members_of.push(members);
    }
    text
}

fn random_expr(
    rng: &mut Rng,
    depth: u32,
    refs: &[String],
    tuplesets: &[String],
    computed: &[String],
) -> String {
    if depth == 0 || rng.chance(35) {
        return match rng.below(10) {
            0 => "nil".into(),
            1..=3 if !tuplesets.is_empty() => {
                let t = &tuplesets[rng.below(tuplesets.len())];
                let c = &computed[rng.below(computed.len())];
                if rng.chance(30) {
                    format!("{t}.all({c})")
                } else {
                    format!("{t}->{c}")
                }
            }
            _ => refs[rng.below(refs.len())].clone(),
        };
    }
    let op = ["+", "&", "-", "-"][rng.below(4)];
    let left = random_expr(rng, depth - 1, refs, tuplesets, computed);
    let right = random_expr(rng, depth - 1, refs, tuplesets, computed);
    if rng.chance(50) {
        format!("({left} {op} {right})")
    } else {
        format!("{left} {op} {right}")
    }
}

const RECURSIVE: &str = "
definition user {}
definition group {
    relation member: user | group#member
    permission everyone = member
}
definition folder {
    relation parent: folder
    relation viewer: user | group#member | user:*
    relation banned: user
    permission view = viewer + parent->view
    permission visible = view - banned
    permission both = view & parent->view
    permission all_parents = parent.all(view)
}
";

/// Random tuples: every allowed subject form of every relation of every object, each with `percent` chance.
fn random_tuples(
    rng: &mut Rng,
    schema: &Schema,
    per_type: usize,
    users: usize,
    percent: u64,
) -> Vec<Relationship> {
    let ids = |t: &str| -> Vec<String> {
        let n = if t == "user" { users } else { per_type };
        (0..n).map(|i| format!("{}{i}", &t[..1])).collect()
    };
    let mut out = Vec::new();
    for def in schema.definitions() {
        for id in ids(def.name()) {
            for rel in def.relations() {
                for allowed in &rel.allowed {
                    let subjects: Vec<SubjectRef> = match &allowed.kind {
                        AllowedSubjectKind::Direct => ids(&allowed.object_type)
                            .into_iter()
                            .map(|s| SubjectRef::new(ObjectRef::new(&allowed.object_type, s)))
                            .collect(),
                        AllowedSubjectKind::Wildcard => vec![SubjectRef::wildcard(&allowed.object_type)],
                        AllowedSubjectKind::SubjectSet(m) => ids(&allowed.object_type)
                            .into_iter()
                            .map(|s| SubjectRef::with_relation(ObjectRef::new(&allowed.object_type, s), m))
                            .collect(),
                    };
                    // Wildcard grants are drawn more often, so exclusions meet them.
                    let percent = if allowed.kind == AllowedSubjectKind::Wildcard {
                        percent * 2
                    } else {
                        percent
                    };
                    for subject in subjects {
                        if rng.chance(percent) {
                            out.push(Relationship::new(
                                ObjectRef::new(def.name(), &id),
                                &rel.name,
                                subject,
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------------
// Comparison.

struct Outcome {
    checks: usize,
}

async fn compare(
    schema_text: &str,
    tuples: &[Relationship],
    cyclic: bool,
    lookups: bool,
) -> Result<Outcome, String> {
    let schema = zed::parse(schema_text).map_err(|e| format!("{e}\n{schema_text}"))?;
    let store: Arc<dyn RelationshipStore> = Arc::new(MemoryRelationshipStore::new());
    let authz = LocalAuthorizer::builder()
        .store(store)
        .schema(schema_text)
        .build()
        .unwrap();
    let updates: Vec<RelationshipUpdate> = tuples.iter().cloned().map(RelationshipUpdate::Touch).collect();
    authz
        .write_relationships(&ctx(), &updates)
        .await
        .map_err(|e| e.to_string())?;
    let reference = Reference {
        schema: &schema,
        tuples,
        all_ignores_undefined_targets: false,
    };
    let lookup_reference = Reference {
        schema: &schema,
        tuples,
        all_ignores_undefined_targets: true,
    };

    let mut objects: BTreeSet<ObjectRef> = BTreeSet::new();
    for t in tuples {
        objects.insert(t.resource.clone());
        if !t.subject.is_wildcard() {
            objects.insert(t.subject.object.clone());
        }
    }
    let mut subjects: Vec<SubjectRef> = objects
        .iter()
        .filter(|o| o.object_type == "user")
        .map(|o| SubjectRef::new(o.clone()))
        .chain([SubjectRef::new(ObjectRef::new("user", "fresh"))])
        .collect();
    for def in schema.definitions() {
        for rel in def.relations() {
            for allowed in &rel.allowed {
                if let AllowedSubjectKind::SubjectSet(m) = &allowed.kind
                    && let Some(o) = objects.iter().find(|o| o.object_type == allowed.object_type)
                {
                    subjects.push(SubjectRef::with_relation(o.clone(), m));
                }
            }
        }
    }
    subjects.dedup();

    let mut checks = 0;
    let mut members_by_subject: HashMap<SubjectRef, HashSet<Key>> = HashMap::new();
    let mut lookup_members: HashMap<SubjectRef, HashSet<Key>> = HashMap::new();
    for subject in &subjects {
        let members = reference.members(subject);
        for object in &objects {
            let def = schema.definition(&object.object_type).unwrap();
            let names: Vec<String> = def
                .relations()
                .map(|r| r.name.clone())
                .chain(def.permissions().map(|(p, _)| p.to_owned()))
                .collect();
            for member in names {
                let expected = members.contains(&(
                    object.object_type.clone(),
                    object.object_id.clone(),
                    member.clone(),
                ));
                let request = CheckRequest {
                    resource: object.clone(),
                    permission: member.clone(),
                    subject: subject.clone(),
                };
                let got = authz.check(&ctx(), &request, &Consistency::MinimizeLatency).await;
                checks += 1;
                match got {
                    Ok(r) if r.is_allowed() == expected => {}
                    Err(e) if cyclic && !expected => {
                        if !matches!(e, avb_auth::Error::CycleDetected { .. }) {
                            return Err(format!("unexpected error for {object}#{member}@{subject}: {e:?}"));
                        }
                    }
                    other => {
                        return Err(format!(
                            "{object}#{member}@{subject}: engine {other:?}, reference {expected}\n{schema_text}\n{}",
                            tuples
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("\n")
                        ));
                    }
                }
            }
        }
        members_by_subject.insert(subject.clone(), members);
        if lookups && subject.optional_relation.is_none() {
            lookup_members.insert(subject.clone(), lookup_reference.members(subject));
        }
    }

    if lookups {
        let users: Vec<&SubjectRef> = subjects
            .iter()
            .filter(|s| s.optional_relation.is_none())
            .collect();
        for def in schema.definitions() {
            let names: Vec<String> = def
                .relations()
                .map(|r| r.name.clone())
                .chain(def.permissions().map(|(p, _)| p.to_owned()))
                .collect();
            for member in &names {
                for user in &users {
                    let members = &members_by_subject[*user];
                    let expected: Vec<String> = objects
                        .iter()
                        .filter(|o| o.object_type == def.name())
                        .filter(|o| {
                            members.contains(&(o.object_type.clone(), o.object_id.clone(), member.clone()))
                        })
                        .map(|o| o.object_id.clone())
                        .collect();
                    let request = LookupResourcesRequest {
                        resource_type: def.name().into(),
                        permission: member.clone(),
                        subject: (*user).clone(),
                    };
                    let got = authz
                        .lookup_resources(&ctx(), &request, &Consistency::MinimizeLatency)
                        .await;
                    if got.as_ref().ok() != Some(&expected) {
                        return Err(format!(
                            "lookup_resources {}#{member} for {user}: {got:?} != {expected:?}",
                            def.name()
                        ));
                    }
                }
                for object in objects.iter().filter(|o| o.object_type == def.name()) {
                    let request = LookupSubjectsRequest {
                        resource: object.clone(),
                        permission: member.clone(),
                        subject_type: "user".into(),
                        optional_subject_relation: None,
                    };
                    let found = authz
                        .lookup_subjects(&ctx(), &request, &Consistency::MinimizeLatency)
                        .await
                        .map_err(|e| format!("lookup_subjects {object}#{member}: {e}"))?;
                    let wildcard = found.iter().find(|s| s.is_wildcard());
                    for user in &users {
                        let id = &user.object.object_id;
                        let listed = found.iter().any(|s| s.subject_id == *id)
                            || wildcard.is_some_and(|w| !w.excluded_subject_ids.contains(id));
                        let expected = lookup_members[*user].contains(&(
                            object.object_type.clone(),
                            object.object_id.clone(),
                            member.clone(),
                        ));
                        if listed != expected {
                            return Err(format!(
                                "lookup_subjects {object}#{member}: {found:?} vs {user} = {expected}"
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(Outcome { checks })
}

fn run(cases: u32, case: impl Fn(u64) -> Result<Outcome, String>) -> usize {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let total = AtomicUsize::new(0);
    let result = runner.run(&any::<u64>(), |seed| {
        let outcome = case(seed | 1).map_err(TestCaseError::fail)?;
        total.fetch_add(outcome.checks, Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    total.into_inner()
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn engine_matches_the_reference_on_the_spec_schema() {
    let checks = run(8, |seed| {
        let mut rng = Rng(seed);
        let schema = zed::agentvoicebox().unwrap();
        let tuples = random_tuples(&mut rng, schema, 3, 5, 25);
        block_on(compare(zed::AGENTVOICEBOX_SCHEMA, &tuples, false, true))
    });
    assert!(checks >= 5_000, "only {checks} checks");
}

#[test]
fn engine_matches_the_reference_on_random_schemas_with_every_operator() {
    let operators_seen = std::sync::Mutex::new(BTreeSet::new());
    let checks = run(48, |seed| {
        let mut rng = Rng(seed);
        let text = random_schema(&mut rng);
        for op in [" + ", " & ", " - ", "->", ".all(", "nil", "user:*", "#"] {
            if text.contains(op) {
                operators_seen.lock().unwrap().insert(op);
            }
        }
        let schema = zed::parse(&text).map_err(|e| format!("generated an invalid schema: {e}\n{text}"))?;
        let tuples = random_tuples(&mut rng, &schema, 3, 4, 30);
        block_on(compare(&text, &tuples, false, true))
    });
    assert!(checks >= 5_000, "only {checks} checks");
    assert_eq!(
        operators_seen.into_inner().unwrap().len(),
        8,
        "every operator was exercised"
    );
}

#[test]
fn engine_matches_the_reference_on_cyclic_data() {
    let checks = run(24, |seed| {
        let mut rng = Rng(seed);
        let schema = zed::parse(RECURSIVE).unwrap();
        let tuples = random_tuples(&mut rng, &schema, 4, 4, 30);
        block_on(compare(RECURSIVE, &tuples, true, false))
    });
    assert!(checks >= 1_000, "only {checks} checks");
}
