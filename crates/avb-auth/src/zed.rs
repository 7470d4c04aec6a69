//! The SpiceDB schema language (`.zed`), as SpiceDB users write it: definitions, relations with subject types
//! (`user`, `group#member`, `user:*`), and permissions built from `+` (union), `&` (intersection),
//! `-` (exclusion), `->` / `.any()` / `.all()` (arrows), parentheses and `nil`. Caveats, `with expiration` and
//! `use` flags are rejected with a clear error: the local engine cannot evaluate them, and accepting a schema
//! the engine then mis-evaluates would be worse than refusing it.
//!
//! [`parse`] never panics, whatever the input: errors carry a 1-based line and column. Parsing follows
//! SpiceDB's own grammar (operator precedence, line breaks ending statements) and its schema validation
//! (unknown types and relations, duplicates, permissions left of an arrow, wildcards reached through arrows or
//! subject relations, alias cycles), so a schema accepted here is accepted by SpiceDB and vice versa.
//!
//! [`AGENTVOICEBOX_SCHEMA`] embeds `schema/agentvoicebox.zed` (spec §6.4), the single source both adapters
//! use.

mod lexer;
mod parser;

use parser::{AstAllowedKind, AstDefinition, AstExpr, AstMember};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::OnceLock;

/// The AgentVoiceBox schema text (spec §6.4), embedded from `schema/agentvoicebox.zed`.
pub const AGENTVOICEBOX_SCHEMA: &str = include_str!("../schema/agentvoicebox.zed");

/// The parsed [`AGENTVOICEBOX_SCHEMA`], parsed once.
///
/// # Errors
/// Only if the embedded file is invalid, which the crate's tests rule out.
pub fn agentvoicebox() -> Result<&'static Schema, SchemaError> {
    static PARSED: OnceLock<Result<Schema, SchemaError>> = OnceLock::new();
    PARSED
        .get_or_init(|| parse(AGENTVOICEBOX_SCHEMA))
        .as_ref()
        .map_err(Clone::clone)
}

/// A 1-based position in schema text (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

/// What kind of problem a [`SchemaError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A feature this engine does not evaluate (caveats, expiration, `use` flags).
    Unsupported,
    /// A definition, relation or permission name breaks SpiceDB's naming rules.
    InvalidName,
    /// Two definitions share a name.
    DuplicateDefinition,
    /// Two relations or permissions of one definition share a name.
    DuplicateMember,
    /// A relation lists the same subject type twice.
    DuplicateSubjectType,
    /// A subject type names a definition that does not exist.
    UnknownDefinition,
    /// A name refers to a relation or permission that does not exist.
    UnknownRelation,
    /// The left side of an arrow is a permission (SpiceDB only follows relations).
    PermissionOnArrowLeft,
    /// The left side of an arrow can hold a wildcard subject.
    WildcardInArrow,
    /// A subject relation (`type#rel`) reaches a wildcard.
    TransitiveWildcard,
    /// `a->b->c`.
    NestedArrow,
    /// Permissions that are plain aliases of each other form a cycle.
    PermissionCycle,
}

/// Why schema text was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema error at line {}, column {}: {message}", position.line, position.column)]
pub struct SchemaError {
    /// What went wrong.
    pub kind: SchemaErrorKind,
    /// Where.
    pub position: Position,
    /// Human-readable explanation.
    pub message: String,
}

impl SchemaError {
    pub(crate) fn new(kind: SchemaErrorKind, position: Position, message: impl Into<String>) -> Self {
        Self {
            kind,
            position,
            message: message.into(),
        }
    }
}

/// A validated schema: definitions by name.
///
/// Equality is semantic: it ignores comments, formatting and declaration order, so a schema read back from
/// SpiceDB (which regenerates the text) equals the one that was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    definitions: BTreeMap<String, Definition>,
    order: OrderHint,
}

/// Declaration order, kept for [`fmt::Display`] and never compared.
#[derive(Debug, Clone, Default)]
struct OrderHint(Vec<String>);

impl PartialEq for OrderHint {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for OrderHint {}

impl Schema {
    /// The definition named `name`.
    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions.get(name)
    }

    /// Every definition, in declaration order.
    pub fn definitions(&self) -> impl Iterator<Item = &Definition> {
        self.order.0.iter().filter_map(|name| self.definitions.get(name))
    }
}

/// One object type (`definition tenant { … }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    name: String,
    relations: BTreeMap<String, Relation>,
    permissions: BTreeMap<String, Expr>,
    order: OrderHint,
}

/// A relation or a permission of a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// Stored tuples (`relation owner: user`).
    Relation(&'a Relation),
    /// Computed from other members (`permission view = owner + tenant->view`).
    Permission(&'a Expr),
}

impl Definition {
    /// The type name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The relation or permission named `name`.
    pub fn member(&self, name: &str) -> Option<Member<'_>> {
        if let Some(rel) = self.relations.get(name) {
            return Some(Member::Relation(rel));
        }
        self.permissions.get(name).map(Member::Permission)
    }

    /// True when `name` is a relation or a permission of this definition.
    pub fn has_member(&self, name: &str) -> bool {
        self.relations.contains_key(name) || self.permissions.contains_key(name)
    }

    /// The relation named `name` (not a permission).
    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.get(name)
    }

    /// The expression of the permission named `name`.
    pub fn permission(&self, name: &str) -> Option<&Expr> {
        self.permissions.get(name)
    }

    /// Relations, by name.
    pub fn relations(&self) -> impl Iterator<Item = &Relation> {
        self.relations.values()
    }

    /// Permissions and their expressions, by name.
    pub fn permissions(&self) -> impl Iterator<Item = (&str, &Expr)> {
        self.permissions.iter().map(|(name, expr)| (name.as_str(), expr))
    }
}

/// A relation and the subjects it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The relation name.
    pub name: String,
    /// Accepted subject types, in declaration order.
    pub allowed: Vec<AllowedSubject>,
}

impl Relation {
    /// True when a subject of `object_type` (with `subject_relation`, `None` for a plain object) may be
    /// written to this relation; `wildcard` asks about the `type:*` form.
    pub fn allows(&self, object_type: &str, subject_relation: Option<&str>, wildcard: bool) -> bool {
        self.allowed.iter().any(|a| {
            a.object_type == object_type
                && match (&a.kind, subject_relation, wildcard) {
                    (AllowedSubjectKind::Wildcard, None, true) => true,
                    (AllowedSubjectKind::Direct, None, false) => true,
                    (AllowedSubjectKind::SubjectSet(rel), Some(sr), false) => rel == sr,
                    _ => false,
                }
        })
    }
}

/// One accepted subject type of a relation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllowedSubject {
    /// The subject's object type.
    pub object_type: String,
    /// Which form of that type.
    pub kind: AllowedSubjectKind,
}

/// The form in which a subject type is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllowedSubjectKind {
    /// `user`: a concrete object.
    Direct,
    /// `user:*`: every object of the type.
    Wildcard,
    /// `group#member`: the subjects holding that relation or permission on the object.
    SubjectSet(String),
}

/// How an arrow combines the objects its left relation points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArrowFunction {
    /// `rel->perm` or `rel.any(perm)`: some object grants it.
    Any,
    /// `rel.all(perm)`: there is at least one object and every one grants it.
    All,
}

/// A permission expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `nil`: nobody.
    Nil,
    /// Another relation or permission of the same object.
    Ref(String),
    /// `tupleset->computed`: `computed` on the objects `tupleset` points at.
    Arrow {
        /// A relation of this definition.
        tupleset: String,
        /// A relation or permission of the pointed-at objects (objects whose type lacks it contribute nothing).
        computed: String,
        /// Any or all.
        function: ArrowFunction,
    },
    /// `a + b + …`.
    Union(Vec<Expr>),
    /// `a & b & …`.
    Intersection(Vec<Expr>),
    /// `base - x - y …`: in `base` and in none of the others.
    Exclusion(Box<Expr>, Vec<Expr>),
}

/// Parses and validates schema text.
///
/// # Errors
/// A [`SchemaError`] with the position of the first problem.
pub fn parse(text: &str) -> Result<Schema, SchemaError> {
    let tokens = lexer::lex(text)?;
    let ast = parser::parse(tokens)?;
    let schema = build(ast)?;
    validate(&schema.0, &schema.1)?;
    Ok(schema.0)
}

/// Positions of definitions and members, for validation errors.
#[derive(Default)]
struct Positions {
    definitions: Vec<parser::AstDefinition>,
}

fn build(ast: Vec<AstDefinition>) -> Result<(Schema, Positions), SchemaError> {
    let mut schema = Schema::default();
    let mut positions = Positions::default();
    for def in ast {
        if !valid_type_name(&def.name) {
            return Err(SchemaError::new(
                SchemaErrorKind::InvalidName,
                def.pos,
                format!(
                    "invalid definition name `{}`: expected lowercase letters, digits and `_`, 3 to 64 \
                     characters, optionally prefixed with `prefix/`",
                    def.name
                ),
            ));
        }
        if schema.definitions.contains_key(&def.name) {
            return Err(SchemaError::new(
                SchemaErrorKind::DuplicateDefinition,
                def.pos,
                format!("found name reused between multiple definitions: `{}`", def.name),
            ));
        }
        let mut built = Definition {
            name: def.name.clone(),
            relations: BTreeMap::new(),
            permissions: BTreeMap::new(),
            order: OrderHint::default(),
        };
        for member in &def.members {
            let (name, pos) = match member {
                AstMember::Relation { name, pos, .. } | AstMember::Permission { name, pos, .. } => {
                    (name, *pos)
                }
            };
            if !valid_relation_name(name) {
                return Err(SchemaError::new(
                    SchemaErrorKind::InvalidName,
                    pos,
                    format!(
                        "invalid relation/permission name `{name}`: expected lowercase letters, digits and \
                         `_`, 3 to 64 characters"
                    ),
                ));
            }
            if built.has_member(name) {
                return Err(SchemaError::new(
                    SchemaErrorKind::DuplicateMember,
                    pos,
                    format!(
                        "found duplicate relation/permission name `{name}` under definition `{}`",
                        def.name
                    ),
                ));
            }
            built.order.0.push(name.clone());
            match member {
                AstMember::Relation { allowed, .. } => {
                    let mut kinds = Vec::with_capacity(allowed.len());
                    let mut seen = HashSet::new();
                    for a in allowed {
                        let kind = match &a.kind {
                            AstAllowedKind::Ellipsis => AllowedSubjectKind::Direct,
                            AstAllowedKind::Wildcard => AllowedSubjectKind::Wildcard,
                            AstAllowedKind::Relation(rel, _) => AllowedSubjectKind::SubjectSet(rel.clone()),
                        };
                        let subject = AllowedSubject {
                            object_type: a.object_type.clone(),
                            kind,
                        };
                        if !seen.insert(subject.clone()) {
                            return Err(SchemaError::new(
                                SchemaErrorKind::DuplicateSubjectType,
                                a.pos,
                                format!(
                                    "found duplicate allowed subject type `{subject}` on relation `{name}`"
                                ),
                            ));
                        }
                        kinds.push(subject);
                    }
                    built.relations.insert(
                        name.clone(),
                        Relation {
                            name: name.clone(),
                            allowed: kinds,
                        },
                    );
                }
                AstMember::Permission { expr, .. } => {
                    built.permissions.insert(name.clone(), lower(expr));
                }
            }
        }
        schema.order.0.push(def.name.clone());
        schema.definitions.insert(def.name.clone(), built);
        positions.definitions.push(def);
    }
    Ok((schema, positions))
}

fn lower(expr: &AstExpr) -> Expr {
    match expr {
        AstExpr::Nil => Expr::Nil,
        AstExpr::Ref(name, _) => Expr::Ref(name.clone()),
        AstExpr::Arrow {
            tupleset,
            computed,
            function,
            ..
        } => Expr::Arrow {
            tupleset: tupleset.clone(),
            computed: computed.clone(),
            function: *function,
        },
        AstExpr::Union(children) => Expr::Union(children.iter().map(lower).collect()),
        AstExpr::Intersection(children) => Expr::Intersection(children.iter().map(lower).collect()),
        AstExpr::Exclusion(base, rest) => {
            Expr::Exclusion(Box::new(lower(base)), rest.iter().map(lower).collect())
        }
    }
}

fn validate(schema: &Schema, positions: &Positions) -> Result<(), SchemaError> {
    for ast_def in &positions.definitions {
        let Some(def) = schema.definition(&ast_def.name) else {
            continue;
        };
        for member in &ast_def.members {
            match member {
                AstMember::Relation { name, allowed, .. } => {
                    for a in allowed {
                        let Some(target) = schema.definition(&a.object_type) else {
                            return Err(SchemaError::new(
                                SchemaErrorKind::UnknownDefinition,
                                a.pos,
                                format!(
                                    "could not lookup definition `{}` for relation `{name}`: object definition \
                                     `{}` not found",
                                    a.object_type, a.object_type
                                ),
                            ));
                        };
                        if let AstAllowedKind::Relation(rel, rel_pos) = &a.kind {
                            if !target.has_member(rel) {
                                return Err(SchemaError::new(
                                    SchemaErrorKind::UnknownRelation,
                                    *rel_pos,
                                    format!(
                                        "relation/permission `{rel}` not found under definition `{}`",
                                        a.object_type
                                    ),
                                ));
                            }
                            // SpiceDB checks subject relations of other definitions only.
                            if a.object_type != def.name
                                && let Some((wild, via)) =
                                    references_wildcard(schema, &a.object_type, rel, &mut HashSet::new())
                            {
                                return Err(SchemaError::new(
                                    SchemaErrorKind::TransitiveWildcard,
                                    a.pos,
                                    format!(
                                        "for relation `{name}`: relation/permission `{}#{rel}` includes wildcard \
                                         type `{wild}` via relation `{via}`: wildcard relations cannot be \
                                         transitively included",
                                        a.object_type
                                    ),
                                ));
                            }
                        }
                    }
                }
                AstMember::Permission { name, expr, .. } => validate_expr(schema, def, name, expr)?,
            }
        }
        check_alias_cycles(def, ast_def)?;
    }
    Ok(())
}

fn validate_expr(
    schema: &Schema,
    def: &Definition,
    permission: &str,
    expr: &AstExpr,
) -> Result<(), SchemaError> {
    match expr {
        AstExpr::Nil => Ok(()),
        AstExpr::Ref(name, pos) => {
            if def.has_member(name) {
                Ok(())
            } else {
                Err(SchemaError::new(
                    SchemaErrorKind::UnknownRelation,
                    *pos,
                    format!(
                        "relation/permission `{name}` not found under definition `{}`",
                        def.name
                    ),
                ))
            }
        }
        AstExpr::Arrow {
            tupleset,
            tupleset_pos,
            ..
        } => {
            if def.permissions.contains_key(tupleset) {
                return Err(SchemaError::new(
                    SchemaErrorKind::PermissionOnArrowLeft,
                    *tupleset_pos,
                    format!(
                        "under permission `{permission}` under definition `{}`: permissions cannot be used on the \
                         left hand side of an arrow (found `{tupleset}`)",
                        def.name
                    ),
                ));
            }
            if !def.relations.contains_key(tupleset) {
                return Err(SchemaError::new(
                    SchemaErrorKind::UnknownRelation,
                    *tupleset_pos,
                    format!(
                        "relation/permission `{tupleset}` not found under definition `{}`",
                        def.name
                    ),
                ));
            }
            if let Some((wild, via)) = references_wildcard(schema, &def.name, tupleset, &mut HashSet::new()) {
                return Err(SchemaError::new(
                    SchemaErrorKind::WildcardInArrow,
                    *tupleset_pos,
                    format!(
                        "for arrow under permission `{permission}`: relation `{}#{tupleset}` includes wildcard \
                         type `{wild}` via relation `{via}`: wildcard relations cannot be used on the left side \
                         of arrows",
                        def.name
                    ),
                ));
            }
            Ok(())
        }
        AstExpr::Union(children) | AstExpr::Intersection(children) => children
            .iter()
            .try_for_each(|c| validate_expr(schema, def, permission, c)),
        AstExpr::Exclusion(base, rest) => {
            validate_expr(schema, def, permission, base)?;
            rest.iter()
                .try_for_each(|c| validate_expr(schema, def, permission, c))
        }
    }
}

/// Whether relation `rel` of `type_name` can hold a wildcard, directly or through subject relations; returns
/// the wildcard type and the relation that declares it.
fn references_wildcard(
    schema: &Schema,
    type_name: &str,
    rel: &str,
    visited: &mut HashSet<(String, String)>,
) -> Option<(String, String)> {
    if !visited.insert((type_name.to_owned(), rel.to_owned())) {
        return None;
    }
    let relation = schema.definition(type_name)?.relation(rel)?;
    for a in &relation.allowed {
        match &a.kind {
            AllowedSubjectKind::Wildcard => {
                return Some((a.object_type.clone(), format!("{type_name}#{rel}")));
            }
            AllowedSubjectKind::SubjectSet(sub) => {
                if let Some(found) = references_wildcard(schema, &a.object_type, sub, visited) {
                    return Some(found);
                }
            }
            AllowedSubjectKind::Direct => {}
        }
    }
    None
}

/// SpiceDB rejects permissions that are pure aliases (`permission a = b`) of each other in a loop.
fn check_alias_cycles(def: &Definition, ast: &AstDefinition) -> Result<(), SchemaError> {
    let alias_of = |name: &str| match def.permissions.get(name) {
        Some(Expr::Ref(target)) if def.permissions.contains_key(target) => Some(target.clone()),
        _ => None,
    };
    for member in &ast.members {
        let AstMember::Permission { name, pos, .. } = member else {
            continue;
        };
        let mut seen = BTreeSet::new();
        let mut current = name.clone();
        while let Some(next) = alias_of(&current) {
            if !seen.insert(current.clone()) {
                return Err(SchemaError::new(
                    SchemaErrorKind::PermissionCycle,
                    *pos,
                    format!(
                        "under definition `{}`, there exists a cycle in permissions: {}",
                        def.name,
                        seen.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            current = next;
        }
    }
    Ok(())
}

/// SpiceDB's rule for object type names: `([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]`.
pub fn valid_type_name(name: &str) -> bool {
    let mut segments: Vec<&str> = name.split('/').collect();
    let Some(last) = segments.pop() else { return false };
    valid_segment(last, 64) && segments.iter().all(|s| valid_segment(s, 63))
}

/// SpiceDB's rule for relation and permission names: `[a-z][a-z0-9_]{1,62}[a-z0-9]`.
pub fn valid_relation_name(name: &str) -> bool {
    valid_segment(name, 64)
}

fn valid_segment(s: &str, max_len: usize) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() >= 3
        && bytes.len() <= max_len
        && first.is_ascii_lowercase()
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

impl fmt::Display for AllowedSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AllowedSubjectKind::Direct => f.write_str(&self.object_type),
            AllowedSubjectKind::Wildcard => write!(f, "{}:*", self.object_type),
            AllowedSubjectKind::SubjectSet(rel) => write!(f, "{}#{rel}", self.object_type),
        }
    }
}

impl Expr {
    fn is_compound(&self) -> bool {
        matches!(self, Expr::Union(_) | Expr::Intersection(_) | Expr::Exclusion(..))
    }

    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_compound() {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// Writes an expression that [`parse`] reads back unchanged: compound operands are parenthesized.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, children: &[Expr], op: &str| -> fmt::Result {
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    f.write_str(op)?;
                }
                child.fmt_operand(f)?;
            }
            Ok(())
        };
        match self {
            Expr::Nil => f.write_str("nil"),
            Expr::Ref(name) => f.write_str(name),
            Expr::Arrow {
                tupleset,
                computed,
                function: ArrowFunction::Any,
            } => write!(f, "{tupleset}->{computed}"),
            Expr::Arrow {
                tupleset,
                computed,
                function: ArrowFunction::All,
            } => {
                write!(f, "{tupleset}.all({computed})")
            }
            Expr::Union(children) => join(f, children, " + "),
            Expr::Intersection(children) => join(f, children, " & "),
            Expr::Exclusion(base, rest) => {
                base.fmt_operand(f)?;
                for child in rest {
                    f.write_str(" - ")?;
                    child.fmt_operand(f)?;
                }
                Ok(())
            }
        }
    }
}

/// Writes schema text that [`parse`] reads back into an equal [`Schema`] (comments are not kept).
impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, def) in self.definitions().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            writeln!(f, "definition {} {{", def.name)?;
            for name in &def.order.0 {
                match def.member(name) {
                    Some(Member::Relation(rel)) => {
                        let types: Vec<String> = rel.allowed.iter().map(ToString::to_string).collect();
                        writeln!(f, "    relation {name}: {}", types.join(" | "))?;
                    }
                    Some(Member::Permission(expr)) => writeln!(f, "    permission {name} = {expr}")?,
                    None => {}
                }
            }
            writeln!(f, "}}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_parses_with_every_spec_definition() {
        let schema = agentvoicebox().unwrap();
        let names: Vec<&str> = schema.definitions().map(Definition::name).collect();
        assert_eq!(
            names,
            [
                "user",
                "tenant",
                "project",
                "api_key",
                "session",
                "voice_config",
                "theme",
                "persona"
            ]
        );
        let theme = schema.definition("theme").unwrap();
        assert!(theme.relation("public").unwrap().allows("user", None, true));
        assert!(!theme.relation("public").unwrap().allows("user", None, false));
    }

    #[test]
    fn minus_binds_loosest_like_spicedb() {
        let text = "definition user {}\ndefinition doc {\n relation aaa: user\n relation bbb: user\n relation ccc: user\n permission ppp = aaa - bbb + ccc\n}";
        let schema = parse(text).unwrap();
        let p = schema.definition("doc").unwrap().permission("ppp").unwrap();
        let r = |n: &str| Expr::Ref(n.into());
        assert_eq!(
            p,
            &Expr::Exclusion(Box::new(r("aaa")), vec![Expr::Union(vec![r("bbb"), r("ccc")])])
        );
    }
}
