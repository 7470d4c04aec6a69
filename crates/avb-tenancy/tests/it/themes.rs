//! Themes against the memory store: CSS injection, WCAG contrast, uniqueness and CRUD.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::api_keys::world::World;
use avb_core::{Ctx, ErrorCode, HasCode, PageRequest};
use avb_tenancy::model::TenantTier;
use avb_tenancy::store::ThemeFilter;
use avb_tenancy::theme::{CreateThemeRequest, ThemeService, UpdateThemeRequest};
use std::collections::BTreeMap;

async fn setup() -> (World, ThemeService, Ctx) {
    let world = World::new();
    let tenant = world.tenant("acme", TenantTier::Starter).await;
    let user = world.user(tenant, "design@acme.test").await;
    let ctx = world.user_ctx(tenant, user);
    let themes = ThemeService::new(world.deps.clone());
    (world, themes, ctx)
}

fn theme(name: &str) -> CreateThemeRequest {
    CreateThemeRequest {
        name: name.into(),
        text_color: "#111827".into(),
        background_color: "#FFFFFF".into(),
        primary_color: "#6366f1".into(),
        variables: [
            ("--radius".to_owned(), "0.5rem".to_owned()),
            ("--font".to_owned(), "'Inter', sans-serif".to_owned()),
        ]
        .into(),
        ..Default::default()
    }
}

fn with_variable(value: &str) -> CreateThemeRequest {
    CreateThemeRequest {
        variables: [("--x".to_owned(), value.to_owned())].into(),
        ..theme("attack")
    }
}

#[tokio::test]
async fn a_valid_theme_is_created_owned_and_audited() {
    let (world, themes, ctx) = setup().await;
    let created = themes.create(&ctx, theme("Midnight")).await.unwrap();
    assert_eq!(created.owner_id, ctx.principal().user_id());
    assert_eq!(created.variables.len(), 2);
    assert_eq!(themes.get(&ctx, created.id).await.unwrap(), created);
    let audit = world.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].new_values.as_ref().unwrap()["name"], "Midnight");
}

#[tokio::test]
async fn css_injection_in_variables_is_refused_and_changes_nothing() {
    let (world, themes, ctx) = setup().await;
    let attacks = [
        "url(https://evil.example/beacon.png)",
        "URL (https://evil.example)",
        "u\\72l(https://evil.example)",
        "\\75 \\72 \\6c (x)",
        "/**/url(x)",
        "u/**/r/**/l(x)",
        "expression(alert(document.cookie))",
        "ExPrEsSiOn/**/(alert(1))",
        "javascript:alert(1)",
        "JaVaScRiPt :alert(1)",
        "java\\73 cript:alert(1)",
        "</style><script>alert(1)</script>",
        "\\3c /style\\3e",
        "@import 'https://evil.example/x.css'",
        "behavior: url(evil.htc)",
        "-moz-binding: url(evil.xml#xss)",
        "image-set('https://evil.example/a.png' 1x)",
        "red; } * { background: red",
        "red /* unterminated",
        "u\\5c 72l(x)",
    ];
    let before = world.fingerprint().await;
    for attack in attacks {
        let err = themes.create(&ctx, with_variable(attack)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "accepted {attack:?}");
        let fields = &err.details()["fields"];
        assert_eq!(fields[0]["field"], "variables.--x", "{attack:?}");
        assert_eq!(fields[0]["code"], "unsafe", "{attack:?}");
    }
    assert_eq!(world.fingerprint().await, before);
}

#[tokio::test]
async fn ordinary_css_values_are_kept_verbatim() {
    let (_world, themes, ctx) = setup().await;
    let values: BTreeMap<String, String> = [
        ("--shadow", "0 1px 2px rgba(0, 0, 0, 0.05)"),
        ("--gradient", "linear-gradient(90deg, #6366f1 0%, #a855f7 100%)"),
        ("--size", "calc(100% - 2rem)"),
        ("--accent", "var(--primary)"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let req = CreateThemeRequest {
        variables: values.clone(),
        ..theme("Plain")
    };
    assert_eq!(themes.create(&ctx, req).await.unwrap().variables, values);
}

#[tokio::test]
async fn low_contrast_is_refused_with_the_computed_ratio() {
    let (world, themes, ctx) = setup().await;
    let before = world.fingerprint().await;
    let grey = CreateThemeRequest {
        text_color: "#777777".into(),
        background_color: "#ffffff".into(),
        ..theme("Grey")
    };
    let err = themes.create(&ctx, grey).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError);
    let field = &err.details()["fields"][0];
    assert_eq!(
        (field["field"].as_str(), field["code"].as_str()),
        (Some("text_color"), Some("contrast"))
    );
    assert!(field["message"].as_str().unwrap().contains("4.48"), "{field}");
    assert_eq!(world.fingerprint().await, before);

    let just_enough = CreateThemeRequest {
        text_color: "#767676".into(),
        ..theme("Grey")
    };
    themes.create(&ctx, just_enough).await.unwrap();
}

#[tokio::test]
async fn every_bad_field_is_reported_at_once() {
    let (_world, themes, ctx) = setup().await;
    let req = CreateThemeRequest {
        name: String::new(),
        text_color: "black".into(),
        background_color: "#fff".into(),
        primary_color: "#12345G".into(),
        variables: [
            ("color".to_owned(), "red".to_owned()),
            ("--y".to_owned(), "x".repeat(501)),
        ]
        .into(),
        ..Default::default()
    };
    let Err(avb_tenancy::Error::Invalid(fields)) = themes.create(&ctx, req).await else {
        panic!()
    };
    let names: Vec<_> = fields.0.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        names,
        [
            "name",
            "text_color",
            "background_color",
            "primary_color",
            "variables.--y",
            "variables.color"
        ]
    );
    let many: BTreeMap<String, String> = (0..101).map(|i| (format!("--v{i}"), "1px".to_owned())).collect();
    let err = themes
        .create(
            &ctx,
            CreateThemeRequest {
                variables: many,
                ..theme("Many")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.details()["fields"][0]["field"], "variables");
}

#[tokio::test]
async fn an_update_is_checked_against_the_resulting_colours() {
    let (world, themes, ctx) = setup().await;
    let created = themes.create(&ctx, theme("Day")).await.unwrap();
    let before = world.fingerprint().await;
    let dark_background = UpdateThemeRequest {
        background_color: Some("#1f2937".into()),
        ..Default::default()
    };
    let err = themes
        .update(&ctx, created.id, dark_background)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError);
    assert_eq!(err.details()["fields"][0]["code"], "contrast");
    let injected = UpdateThemeRequest {
        variables: Some([("--bg".to_owned(), "url(x)".to_owned())].into()),
        ..Default::default()
    };
    assert_eq!(
        themes
            .update(&ctx, created.id, injected)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::ValidationError
    );
    assert_eq!(world.fingerprint().await, before);

    let night = UpdateThemeRequest {
        text_color: Some("#F9FAFB".into()),
        background_color: Some("#111827".into()),
        is_public: Some(true),
        version: Some(1),
        ..Default::default()
    };
    let updated = themes.update(&ctx, created.id, night).await.unwrap();
    assert_eq!(
        (
            updated.background_color.as_str(),
            updated.is_public,
            updated.version
        ),
        ("#111827", true, 2)
    );
    let audit = world.audit().await;
    assert_eq!(
        audit[0].old_values.as_ref().unwrap()["background_color"],
        "#FFFFFF"
    );
    assert_eq!(
        audit[0].new_values.as_ref().unwrap()["background_color"],
        "#111827"
    );
    let public = ThemeFilter {
        is_public: Some(true),
        ..Default::default()
    };
    assert_eq!(
        themes
            .list(&ctx, public, PageRequest::default())
            .await
            .unwrap()
            .items,
        vec![updated]
    );
}

#[tokio::test]
async fn names_are_unique_per_tenant_and_deletion_frees_them() {
    let (world, themes, ctx) = setup().await;
    let created = themes.create(&ctx, theme("Ocean")).await.unwrap();
    let before = world.fingerprint().await;
    assert_eq!(
        themes.create(&ctx, theme("OCEAN")).await.unwrap_err().code(),
        ErrorCode::Conflict
    );
    assert_eq!(world.fingerprint().await, before);

    let other = world.tenant("other", TenantTier::Starter).await;
    let bob = world.user(other, "bob@other.test").await;
    let other_ctx = world.user_ctx(other, bob);
    themes.create(&other_ctx, theme("Ocean")).await.unwrap();
    assert_eq!(
        themes.delete(&other_ctx, created.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );

    themes.delete(&ctx, created.id).await.unwrap();
    assert_eq!(
        themes.get(&ctx, created.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    themes.create(&ctx, theme("ocean")).await.unwrap();
}
