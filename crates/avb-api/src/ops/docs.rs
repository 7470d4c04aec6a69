//! `GET /api/v2/openapi.json` and the interactive documentation at `/api/v2/docs`.
//!
//! The page is Swagger UI, vendored under `assets/` (see `assets/swagger-ui/NOTICE.md`) and compiled into the
//! binary, so the documentation works without any network: the page and its script and style sheet are served
//! from `/api/v2/docs/…` and nothing they load points elsewhere.

use crate::app::App;
use crate::error::ApiError;
use crate::input::{Input, Reply};
use avb_core::{Ctx, ErrorCode};

/// A static file of the documentation page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// File name under `/api/v2/docs/`.
    pub name: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Content.
    pub bytes: &'static [u8],
}

/// The page at `/api/v2/docs`; it loads only the [`ASSETS`] and `openapi.json`, by relative URLs.
pub const PAGE: &str = include_str!("../../assets/docs.html");

/// The files the page loads.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-initializer.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/swagger-initializer.js"),
    },
];

/// `GET /api/v2/openapi.json` — the OpenAPI 3.1 document ([`crate::openapi::document`]).
pub async fn openapi(_app: &App, _ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    let json = crate::openapi::document_json()?;
    Ok(Reply::raw("application/json", json.to_vec()))
}

/// `GET /api/v2/docs` — the documentation page.
pub async fn page(_app: &App, _ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    Ok(Reply::raw("text/html; charset=utf-8", PAGE.as_bytes().to_vec()))
}

/// `GET /api/v2/docs/{file}` — one of the [`ASSETS`]; any other name is `not_found`.
pub async fn asset(_app: &App, _ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let name: String = input.param("file")?;
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::with_message(ErrorCode::NotFound, "No such documentation file"))?;
    Ok(Reply::raw(asset.content_type, asset.bytes.to_vec()))
}
