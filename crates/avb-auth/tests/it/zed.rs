//! The schema parser: SpiceDB's grammar, its validation rules with error positions, and robustness.

use avb_auth::zed::{self, AGENTVOICEBOX_SCHEMA, ArrowFunction, Expr, Position, SchemaErrorKind};
use proptest::prelude::*;

const HEAD: &str = "definition user {}\n";

fn doc(body: &str) -> String {
    format!(
        "{HEAD}definition doc {{\n    relation aaa: user\n    relation bbb: user\n    relation ccc: user\n{body}\n}}\n"
    )
}

fn permission(body: &str) -> Expr {
    let schema = zed::parse(&doc(&format!("    permission ppp = {body}"))).unwrap();
    schema
        .definition("doc")
        .unwrap()
        .permission("ppp")
        .unwrap()
        .clone()
}

fn r(name: &str) -> Expr {
    Expr::Ref(name.into())
}

fn err(text: &str) -> zed::SchemaError {
    zed::parse(text).expect_err("schema must be rejected")
}

#[test]
fn spec_schema_round_trips_through_display() {
    let schema = zed::parse(AGENTVOICEBOX_SCHEMA).unwrap();
    let printed = schema.to_string();
    assert_eq!(zed::parse(&printed).unwrap(), schema, "{printed}");
}

#[test]
fn exclusion_binds_loosest_then_intersection_then_union() {
    assert_eq!(
        permission("aaa - bbb + ccc"),
        Expr::Exclusion(Box::new(r("aaa")), vec![Expr::Union(vec![r("bbb"), r("ccc")])])
    );
    assert_eq!(
        permission("aaa & bbb + ccc"),
        Expr::Intersection(vec![r("aaa"), Expr::Union(vec![r("bbb"), r("ccc")])])
    );
    assert_eq!(
        permission("aaa + bbb & ccc"),
        Expr::Intersection(vec![Expr::Union(vec![r("aaa"), r("bbb")]), r("ccc")])
    );
    assert_eq!(
        permission("aaa - bbb - ccc"),
        Expr::Exclusion(Box::new(r("aaa")), vec![r("bbb"), r("ccc")])
    );
    assert_eq!(
        permission("aaa - (bbb - ccc)"),
        Expr::Exclusion(
            Box::new(r("aaa")),
            vec![Expr::Exclusion(Box::new(r("bbb")), vec![r("ccc")])]
        )
    );
    assert_eq!(
        permission("(aaa + bbb) & nil"),
        Expr::Intersection(vec![Expr::Union(vec![r("aaa"), r("bbb")]), Expr::Nil])
    );
}

#[test]
fn arrows_and_arrow_functions_parse() {
    let text = format!(
        "{HEAD}definition folder {{\n relation viewer: user\n}}\ndefinition doc {{\n relation parent: folder\n \
         permission one = parent->viewer\n permission any_of = parent.any(viewer)\n permission all_of = parent.all(viewer)\n}}"
    );
    let schema = zed::parse(&text).unwrap();
    let doc = schema.definition("doc").unwrap();
    let arrow = |function| Expr::Arrow {
        tupleset: "parent".into(),
        computed: "viewer".into(),
        function,
    };
    assert_eq!(doc.permission("one"), Some(&arrow(ArrowFunction::Any)));
    assert_eq!(doc.permission("any_of"), Some(&arrow(ArrowFunction::Any)));
    assert_eq!(doc.permission("all_of"), Some(&arrow(ArrowFunction::All)));
}

#[test]
fn arrows_may_target_relations_missing_on_the_subject_type() {
    // SpiceDB only warns here; such objects contribute nothing at evaluation.
    let text =
        format!("{HEAD}definition doc {{\n relation owner: user\n permission ppp = owner->nothing_here\n}}");
    assert!(zed::parse(&text).is_ok());
}

#[test]
fn comments_prefixes_semicolons_and_ellipsis_are_accepted() {
    let text = "/* block\n comment */ definition org/user {} // trailing\n\
                definition org/group {\n  relation member: org/user | org/group#member; permission all_members = member\n}\n\
                definition org/doc { relation viewer: org/user#... | org/group#all_members; }";
    let schema = zed::parse(text).unwrap();
    let viewer = schema.definition("org/doc").unwrap().relation("viewer").unwrap();
    assert!(viewer.allows("org/user", None, false));
    assert!(viewer.allows("org/group", Some("all_members"), false));
}

#[test]
fn a_line_break_ends_a_statement_like_in_spicedb() {
    assert!(
        zed::parse(&doc("    permission ppp = aaa +\n        bbb")).is_ok(),
        "a trailing operator continues"
    );
    let e = err(&doc("    permission ppp = aaa\n        + bbb"));
    assert_eq!(e.kind, SchemaErrorKind::Syntax);
    assert_eq!(e.position, Position { line: 7, column: 9 });
    let e = err(&format!("{HEAD}definition doc {{ relation aaa: user }}"));
    assert_eq!(e.position, Position { line: 2, column: 37 }, "{e}");
}

#[test]
fn unknown_names_are_reported_where_they_appear() {
    let e = err(&doc("    permission ppp = aaa + missing"));
    assert_eq!(e.kind, SchemaErrorKind::UnknownRelation);
    assert_eq!(e.position, Position { line: 6, column: 28 });
    assert!(e.to_string().contains("line 6, column 28"), "{e}");

    let e = err(&format!(
        "{HEAD}definition doc {{\n    relation owner: person\n}}"
    ));
    assert_eq!(e.kind, SchemaErrorKind::UnknownDefinition);
    assert_eq!(e.position, Position { line: 3, column: 21 });

    let e = err(&format!(
        "{HEAD}definition doc {{\n    relation owner: doc#missing\n}}"
    ));
    assert_eq!(e.kind, SchemaErrorKind::UnknownRelation);
    assert_eq!(e.position, Position { line: 3, column: 25 });

    let e = err(&doc("    permission ppp = nope->aaa"));
    assert_eq!(e.kind, SchemaErrorKind::UnknownRelation);
    assert_eq!(e.position, Position { line: 6, column: 22 });
}

#[test]
fn duplicates_are_rejected() {
    let e = err(&format!("{HEAD}definition user {{}}"));
    assert_eq!(
        (e.kind, e.position),
        (
            SchemaErrorKind::DuplicateDefinition,
            Position { line: 2, column: 12 }
        )
    );
    let e = err(&doc("    permission aaa = bbb"));
    assert_eq!(
        (e.kind, e.position),
        (SchemaErrorKind::DuplicateMember, Position { line: 6, column: 16 })
    );
    let e = err(&format!(
        "{HEAD}definition doc {{\n    relation aaa: user | user\n}}"
    ));
    assert_eq!(
        (e.kind, e.position),
        (
            SchemaErrorKind::DuplicateSubjectType,
            Position { line: 3, column: 26 }
        )
    );
}

#[test]
fn spicedb_naming_rules_apply() {
    for bad in [
        "definition ab {}",
        "definition User {}",
        "definition user_ {}",
        "definition 9lives {}",
    ] {
        assert_eq!(err(bad).kind, SchemaErrorKind::InvalidName, "{bad}");
    }
    assert_eq!(
        err(&doc("    relation xy: user")).kind,
        SchemaErrorKind::InvalidName
    );
    assert!(zed::parse("definition abc {}").is_ok());
}

#[test]
fn arrows_must_start_from_a_relation_without_wildcards() {
    let e = err(&doc("    permission ppp = aaa\n    permission qqq = ppp->aaa"));
    assert_eq!(
        (e.kind, e.position),
        (
            SchemaErrorKind::PermissionOnArrowLeft,
            Position { line: 7, column: 22 }
        )
    );

    let wild =
        format!("{HEAD}definition doc {{\n    relation pub: user:*\n    permission ppp = pub->aaa\n}}");
    assert_eq!(err(&wild).kind, SchemaErrorKind::WildcardInArrow);

    let transitive = format!(
        "{HEAD}definition group {{\n    relation member: user:*\n}}\ndefinition doc {{\n    relation viewer: group#member\n}}"
    );
    let e = err(&transitive);
    assert_eq!(
        (e.kind, e.position),
        (
            SchemaErrorKind::TransitiveWildcard,
            Position { line: 6, column: 22 }
        )
    );

    let nested = format!(
        "{HEAD}definition doc {{\n    relation parent: doc\n    permission ppp = parent->parent->ppp\n}}"
    );
    assert_eq!(err(&nested).kind, SchemaErrorKind::NestedArrow);
}

#[test]
fn alias_cycles_are_rejected_but_other_recursion_is_allowed() {
    let e = err(&doc("    permission ppp = qqq\n    permission qqq = ppp"));
    assert_eq!(e.kind, SchemaErrorKind::PermissionCycle);
    assert!(zed::parse(&doc("    permission ppp = aaa + qqq\n    permission qqq = ppp")).is_ok());
}

#[test]
fn caveats_and_expiration_are_refused_not_misread() {
    let caveat = "caveat only_weekdays(day string) {\n day != 'sat'\n}\ndefinition user {}";
    assert_eq!(err(caveat).kind, SchemaErrorKind::Unsupported);
    let with = format!("{HEAD}definition doc {{\n    relation aaa: user with expiration\n}}");
    let e = err(&with);
    assert_eq!(
        (e.kind, e.position),
        (SchemaErrorKind::Unsupported, Position { line: 3, column: 24 })
    );
    assert_eq!(
        err("use expiration\ndefinition user {}").kind,
        SchemaErrorKind::Unsupported
    );
}

#[test]
fn lexical_errors_have_positions() {
    let e = err("definition user {}\n/* never closed");
    assert_eq!(
        (e.kind, e.position),
        (SchemaErrorKind::Syntax, Position { line: 2, column: 1 })
    );
    let e = err("definition user {}\ndefinition doc { relation aaa: user ? }");
    assert_eq!(e.position, Position { line: 2, column: 37 });
    let e = err("definition user {}\ndefinition doc {\n relation aaa: user\n permission ppp = (((aaa)\n}");
    assert_eq!(e.kind, SchemaErrorKind::Syntax);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}aaa{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(
        err(&doc(&format!("    permission ppp = {deep}"))).kind,
        SchemaErrorKind::Syntax
    );
    let long = vec!["aaa"; 20_000].join(" - ");
    assert!(zed::parse(&doc(&format!("    permission ppp = {long}"))).is_ok());
}

/// One random edit of the spec schema: delete, insert or replace a span.
fn mutate(text: &str, at: usize, len: usize, insert: &str, kind: u8) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    let mut out: String = chars[..at].iter().collect();
    match kind % 3 {
        0 => {}
        1 => {
            out.push_str(insert);
            out.extend(&chars[at..end]);
        }
        _ => out.push_str(insert),
    }
    out.extend(&chars[end..]);
    out
}

const FRAGMENTS: [&str; 16] = [
    "{",
    "}",
    "(",
    ")",
    "->",
    ".all(",
    "-",
    "+",
    "&",
    "#",
    ":*",
    "\n",
    "relation ",
    "permission ",
    "nil",
    "/*",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in any::<String>()) {
        let _ = zed::parse(&text);
    }

    #[test]
    fn token_soup_never_panics(parts in proptest::collection::vec(0usize..FRAGMENTS.len(), 0..60)) {
        let text: String = parts.into_iter().map(|i| FRAGMENTS[i]).collect();
        let _ = zed::parse(&text);
    }

    #[test]
    fn mutations_of_the_spec_schema_never_panic(
        edits in proptest::collection::vec((any::<usize>(), 0usize..20, "[ -~\n]{0,8}", any::<u8>()), 1..6)
    ) {
        let mut text = AGENTVOICEBOX_SCHEMA.to_owned();
        for (at, len, insert, kind) in edits {
            text = mutate(&text, at, len, &insert, kind);
        }
        if let Ok(schema) = zed::parse(&text) {
            // Whatever parses must also print back to an equal schema.
            prop_assert_eq!(zed::parse(&schema.to_string()).unwrap(), schema);
        }
    }
}
