//! UI themes (AgentSkin, spec §6.4 `theme`): colours and CSS custom properties, validated so a theme can
//! neither inject script or remote resources into the page nor make text unreadable.
//!
//! - Colours are `#RRGGBB`; text on background must reach the WCAG 2.x AA contrast ratio of 4.5:1.
//! - Variables are at most 100 `--name` → value pairs. Values are checked after the browser's own decoding steps
//!   an attacker could hide behind — CSS comments, backslash escapes (`u\72l(` is `url(`), whitespace and letter
//!   case — and refused if they contain a construct that loads a resource, runs script, or leaves the
//!   declaration (see [`FORBIDDEN_CSS`]).
//!
//! Who may edit or delete a theme (`theme#edit`, `theme#delete`) is the API layer's decision.

use crate::audit::snapshot;
use crate::error::Result;
use crate::model::Theme;
use crate::service::TenancyDeps;
use crate::store::ThemeFilter;
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, ThemeId};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::LazyLock;

#[allow(clippy::expect_used)] // constant pattern, exercised by the tests below
static VARIABLE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^--[a-z0-9-]{1,64}$").expect("valid regex"));

/// Minimum contrast between text and background (WCAG 2.x success criterion 1.4.3, level AA, normal text).
pub const MIN_CONTRAST: f64 = 4.5;
/// Most variables a theme may define.
pub const MAX_VARIABLES: usize = 100;
/// Longest variable value, in characters.
pub const MAX_VARIABLE_VALUE: usize = 500;

/// Substrings refused in a variable value once it is normalised (comments and escapes decoded, whitespace
/// removed, lower-cased): resource loaders (`url(`, `image-set(`, `image(`, `src(`, `@import`, `data:`), script
/// (`expression(`, `javascript:`, `vbscript:`, `behavior:`, `-moz-binding`), markup (`<`, `>`, `&#` for values
/// that end up in a `style` attribute) and declaration breakers (`;`, `{`, `}`) that would let a value add rules.
pub const FORBIDDEN_CSS: &[&str] = &[
    "url(",
    "image-set(",
    "image(",
    "src(",
    "@import",
    "data:",
    "expression(",
    "javascript:",
    "vbscript:",
    "behavior:",
    "-moz-binding",
    "<",
    ">",
    "&#",
    ";",
    "{",
    "}",
];

/// The WCAG 2.x contrast ratio between two `#RRGGBB` colours, from 1.0 (same luminance) to 21.0 (black on
/// white), or `None` when either is not `#RRGGBB`. Order does not matter.
pub fn contrast_ratio(a: &str, b: &str) -> Option<f64> {
    let la = relative_luminance(a)?;
    let lb = relative_luminance(b)?;
    let (light, dark) = if la >= lb { (la, lb) } else { (lb, la) };
    Some((light + 0.05) / (dark + 0.05))
}

/// WCAG relative luminance of `#RRGGBB`.
fn relative_luminance(color: &str) -> Option<f64> {
    let hex = color
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let channel = |range: std::ops::Range<usize>| -> Option<f64> {
        let c = f64::from(u8::from_str_radix(hex.get(range)?, 16).ok()?) / 255.0;
        Some(if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        })
    };
    Some(0.2126 * channel(0..2)? + 0.7152 * channel(2..4)? + 0.0722 * channel(4..6)?)
}

/// Why a CSS value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsafeCss {
    /// A forbidden construct, as listed in [`FORBIDDEN_CSS`].
    Forbidden(&'static str),
    /// A `/*` comment that never closes: it would swallow the rest of the stylesheet.
    UnterminatedComment,
    /// A control character.
    ControlCharacter,
}

impl std::fmt::Display for UnsafeCss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnsafeCss::Forbidden(what) => write!(f, "must not contain '{what}'"),
            UnsafeCss::UnterminatedComment => f.write_str("must not contain an unterminated comment"),
            UnsafeCss::ControlCharacter => f.write_str("must not contain control characters"),
        }
    }
}

/// Checks one CSS value. Escapes are decoded repeatedly (up to three rounds), so double-encoding such as
/// `u\5c 72l(` cannot slip through a renderer that decodes once more.
pub fn check_css_value(value: &str) -> std::result::Result<(), UnsafeCss> {
    if value.chars().any(char::is_control) {
        return Err(UnsafeCss::ControlCharacter);
    }
    let mut current = value.to_owned();
    for _ in 0..3 {
        let decoded = decode_css(&current)?;
        let squashed: String = decoded
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        if let Some(hit) = FORBIDDEN_CSS.iter().find(|f| squashed.contains(**f)) {
            return Err(UnsafeCss::Forbidden(hit));
        }
        if decoded == current {
            return Ok(());
        }
        current = decoded;
    }
    Ok(())
}

/// One pass of CSS tokenisation that matters here: drops `/* … */` comments and decodes backslash escapes
/// (`\` + 1–6 hex digits + optional whitespace, or `\` + any other character).
fn decode_css(value: &str) -> std::result::Result<String, UnsafeCss> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = '\0';
                let mut closed = false;
                for inner in chars.by_ref() {
                    if prev == '*' && inner == '/' {
                        closed = true;
                        break;
                    }
                    prev = inner;
                }
                if !closed {
                    return Err(UnsafeCss::UnterminatedComment);
                }
            }
            '\\' => {
                let mut hex = String::new();
                while hex.len() < 6 {
                    match chars.peek() {
                        Some(h) if h.is_ascii_hexdigit() => {
                            hex.push(*h);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                if hex.is_empty() {
                    // `\` + newline is a line continuation; `\` + anything else is that character.
                    match chars.next() {
                        Some('\n') | None => {}
                        Some(other) => out.push(other),
                    }
                } else {
                    if chars.peek().is_some_and(|w| w.is_whitespace()) {
                        chars.next();
                    }
                    let decoded = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|n| *n != 0)
                        .and_then(char::from_u32)
                        .unwrap_or('\u{FFFD}');
                    out.push(decoded);
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A new theme. Missing fields are reported as validation errors.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CreateThemeRequest {
    /// 1–100 characters, unique in the tenant (case-insensitive).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, required = true)
    )]
    pub name: String,
    /// ≤ 2000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: String,
    /// Visible to everyone (`theme#public@user:*`).
    pub is_public: bool,
    /// `#RRGGBB`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^#[0-9A-Fa-f]{6}$", required = true))]
    pub text_color: String,
    /// `#RRGGBB`, contrast with `text_color` ≥ 4.5.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^#[0-9A-Fa-f]{6}$", required = true))]
    pub background_color: String,
    /// `#RRGGBB`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^#[0-9A-Fa-f]{6}$", required = true))]
    pub primary_color: String,
    /// CSS custom properties.
    pub variables: BTreeMap<String, String>,
}

/// A partial update of a theme; `variables` replaces the whole set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UpdateThemeRequest {
    /// New name.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// New description.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: Option<String>,
    /// Visibility.
    pub is_public: Option<bool>,
    /// `#RRGGBB`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub text_color: Option<String>,
    /// `#RRGGBB`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub background_color: Option<String>,
    /// `#RRGGBB`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub primary_color: Option<String>,
    /// Replaces every variable.
    pub variables: Option<BTreeMap<String, String>>,
    /// The version read; a mismatch is `conflict`.
    pub version: Option<u64>,
}

/// Themes of a tenant.
#[derive(Debug, Clone)]
pub struct ThemeService {
    deps: TenancyDeps,
}

impl ThemeService {
    /// A service over `deps`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// Creates a theme owned by the calling user. Fails with `validation_error` (every bad field, with the
    /// computed contrast ratio when it is too low) or `conflict` (name taken); nothing is written on failure.
    pub async fn create(&self, ctx: &Ctx, req: CreateThemeRequest) -> Result<Theme> {
        let mut errors = FieldErrors::new();
        validation::text(&mut errors, "name", &req.name, 1, 100);
        validation::text(&mut errors, "description", &req.description, 0, 2000);
        validate_colors(
            &mut errors,
            &req.text_color,
            &req.background_color,
            &req.primary_color,
        );
        validate_variables(&mut errors, &req.variables);
        errors.into_result()?;
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        let theme = Theme {
            id: ThemeId::generate(self.deps.ids.as_ref()),
            tenant_id: tenant,
            name: req.name,
            description: req.description,
            owner_id: ctx.principal().user_id(),
            is_public: req.is_public,
            text_color: req.text_color,
            background_color: req.background_color,
            primary_color: req.primary_color,
            variables: req.variables,
            created_at: now,
            updated_at: now,
            version: 0,
        };
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let stored = uow.themes().insert(theme).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, ThemeId::RESOURCE, stored.id)
                            .values(None, Some(snapshot(&stored, &[])))
                            .tenant(stored.tenant_id),
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// One theme.
    pub async fn get(&self, ctx: &Ctx, id: ThemeId) -> Result<Theme> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.themes().get(id).await?) })
            })
            .await
    }

    /// Themes matching `filter`, newest first.
    pub async fn list(&self, ctx: &Ctx, filter: ThemeFilter, page: PageRequest) -> Result<Page<Theme>> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.themes().list(&filter, page).await?) })
            })
            .await
    }

    /// Changes a theme. The contrast rule is checked on the resulting pair of colours, so changing only the
    /// background is refused if the stored text colour would become unreadable on it.
    pub async fn update(&self, ctx: &Ctx, id: ThemeId, req: UpdateThemeRequest) -> Result<Theme> {
        let mut errors = FieldErrors::new();
        if let Some(v) = &req.name {
            validation::text(&mut errors, "name", v, 1, 100);
        }
        if let Some(v) = &req.description {
            validation::text(&mut errors, "description", v, 0, 2000);
        }
        for (field, value) in [
            ("text_color", &req.text_color),
            ("background_color", &req.background_color),
            ("primary_color", &req.primary_color),
        ] {
            if let Some(v) = value {
                validation::color(&mut errors, field, v);
            }
        }
        if let Some(vars) = &req.variables {
            validate_variables(&mut errors, vars);
        }
        errors.into_result()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.themes().lock(id).await?;
                    let mut new = old.clone();
                    if let Some(v) = req.name {
                        new.name = v;
                    }
                    if let Some(v) = req.description {
                        new.description = v;
                    }
                    if let Some(v) = req.is_public {
                        new.is_public = v;
                    }
                    if let Some(v) = req.text_color {
                        new.text_color = v;
                    }
                    if let Some(v) = req.background_color {
                        new.background_color = v;
                    }
                    if let Some(v) = req.primary_color {
                        new.primary_color = v;
                    }
                    if let Some(v) = req.variables {
                        new.variables = v;
                    }
                    if let Some(v) = req.version {
                        new.version = v;
                    }
                    let mut errors = FieldErrors::new();
                    check_contrast(&mut errors, &new.text_color, &new.background_color);
                    errors.into_result()?;
                    new.updated_at = now;
                    let stored = uow.themes().update(new).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Update, ThemeId::RESOURCE, stored.id)
                            .values(Some(snapshot(&old, &[])), Some(snapshot(&stored, &[])))
                            .tenant(stored.tenant_id),
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// Deletes a theme.
    pub async fn delete(&self, ctx: &Ctx, id: ThemeId) -> Result<()> {
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.themes().lock(id).await?;
                    uow.themes().delete(id).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Delete, ThemeId::RESOURCE, id)
                            .values(Some(snapshot(&old, &[])), None)
                            .tenant(old.tenant_id),
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
    }
}

fn validate_colors(errors: &mut FieldErrors, text: &str, background: &str, primary: &str) {
    let text_ok = validation::color(errors, "text_color", text);
    let background_ok = validation::color(errors, "background_color", background);
    validation::color(errors, "primary_color", primary);
    if text_ok && background_ok {
        check_contrast(errors, text, background);
    }
}

/// Pushes a `contrast` error carrying the computed ratio when text on background is below [`MIN_CONTRAST`].
fn check_contrast(errors: &mut FieldErrors, text: &str, background: &str) {
    if let Some(ratio) = contrast_ratio(text, background)
        && ratio < MIN_CONTRAST
    {
        errors.push(
            "text_color",
            "contrast",
            format!(
                "contrast ratio with background_color is {ratio:.2}:1; at least {MIN_CONTRAST}:1 is required"
            ),
        );
    }
}

fn validate_variables(errors: &mut FieldErrors, variables: &BTreeMap<String, String>) {
    if variables.len() > MAX_VARIABLES {
        errors.push(
            "variables",
            "size",
            format!("at most {MAX_VARIABLES} variables are allowed"),
        );
    }
    for (name, value) in variables {
        let field = format!("variables.{name}");
        if !VARIABLE_NAME.is_match(name) {
            errors.push(field.clone(), "pattern", "name must match --[a-z0-9-]{1,64}");
        }
        if !validation::length(errors, &field, value, 0, MAX_VARIABLE_VALUE) {
            continue;
        }
        if let Err(why) = check_css_value(value) {
            errors.push(field, "unsafe", why.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_of_known_pairs() {
        let ratio = |a, b| contrast_ratio(a, b).unwrap();
        assert!((ratio("#000000", "#FFFFFF") - 21.0).abs() < 1e-9);
        assert!((ratio("#ffffff", "#000000") - 21.0).abs() < 1e-9);
        assert!((ratio("#777777", "#ffffff") - 4.48).abs() < 0.005);
        assert!((ratio("#767676", "#ffffff") - 4.54).abs() < 0.005);
        assert!((ratio("#123456", "#123456") - 1.0).abs() < 1e-9);
        // Pure red on white: 3.998:1 (a classic AA failure).
        assert!((ratio("#FF0000", "#FFFFFF") - 4.0).abs() < 0.01);
        assert_eq!(contrast_ratio("#fff", "#000000"), None);
        assert_eq!(contrast_ratio("000000", "#000000"), None);
        assert_eq!(contrast_ratio("#00000g", "#000000"), None);
    }

    #[test]
    fn low_contrast_reports_the_ratio() {
        let mut errors = FieldErrors::new();
        validate_colors(&mut errors, "#777777", "#ffffff", "#6366f1");
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "text_color");
        assert_eq!(errors.0[0].code, "contrast");
        assert!(errors.0[0].message.contains("4.48"), "{}", errors.0[0].message);
        let mut errors = FieldErrors::new();
        validate_colors(&mut errors, "#767676", "#ffffff", "#6366f1");
        assert!(errors.is_empty());
    }

    #[test]
    fn injection_attempts_are_refused() {
        let attacks = [
            "url(https://evil.example/x.png)",
            "URL (https://evil.example)",
            "u\\72l(https://evil.example)",
            "u\\000072 l(x)",
            "\\75\\72\\6c(x)",
            "/**/url(x)",
            "u/**/rl(x)",
            "u/* hidden */r\\6c (x)",
            "u\\5c 72l(x)",
            "expression(alert(1))",
            "eXpReSsIoN (alert(1))",
            "javascript:alert(1)",
            "java\\73 cript:alert(1)",
            "java\tscript:alert(1)",
            "</style><script>alert(1)</script>",
            "\\3c script",
            "@import 'https://evil.example/x.css'",
            "@\\69mport x",
            "behavior: url(x.htc)",
            "-moz-binding: url(x.xml#x)",
            "-webkit-image-set('https://evil.example/a.png' 1x)",
            "red; } body { display: none",
            "red /* swallow the rest",
            "&#117;rl(x)",
            "data:text/html,x",
        ];
        for attack in attacks {
            assert!(check_css_value(attack).is_err(), "accepted: {attack}");
        }
    }

    #[test]
    fn ordinary_values_are_accepted() {
        for ok in [
            "#6366f1",
            "rgba(0, 0, 0, 0.5)",
            "'Inter', system-ui, sans-serif",
            "calc(100% - 2rem)",
            "0 1px 2px hsl(220 10% 20% / 0.2)",
            "linear-gradient(90deg, #fff 0%, #000 100%)",
            "var(--primary)",
            "1.25rem",
            "",
        ] {
            assert_eq!(check_css_value(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn escapes_and_comments_decode_like_css() {
        assert_eq!(decode_css("u\\72l").unwrap(), "url");
        assert_eq!(decode_css("\\000072 x").unwrap(), "rx");
        assert_eq!(decode_css("a/* c */b").unwrap(), "ab");
        assert_eq!(decode_css("\\;").unwrap(), ";");
        assert_eq!(decode_css("\\0").unwrap(), "\u{FFFD}");
        assert_eq!(decode_css("a/*"), Err(UnsafeCss::UnterminatedComment));
    }

    #[test]
    fn variable_names_counts_and_lengths() {
        let mut errors = FieldErrors::new();
        let vars: BTreeMap<String, String> = [
            ("--ok-1".to_owned(), "red".to_owned()),
            ("--Upper".to_owned(), "red".to_owned()),
            ("no-dashes".to_owned(), "red".to_owned()),
            (format!("--{}", "a".repeat(65)), "red".to_owned()),
            ("--long".to_owned(), "a".repeat(501)),
        ]
        .into();
        validate_variables(&mut errors, &vars);
        let fields: Vec<_> = errors
            .0
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_ref()))
            .collect();
        assert_eq!(fields.len(), 4);
        assert!(fields.contains(&("variables.--Upper", "pattern")));
        assert!(fields.contains(&("variables.no-dashes", "pattern")));
        assert!(fields.contains(&("variables.--long", "length")));
        let mut errors = FieldErrors::new();
        let many: BTreeMap<String, String> =
            (0..101).map(|i| (format!("--v{i}"), "1px".to_owned())).collect();
        validate_variables(&mut errors, &many);
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "variables");
    }
}
