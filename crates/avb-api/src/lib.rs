//! # avb-api
//!
//! The framework-free application layer of AgentVoiceBox: [`App`]/[`AppBuilder`] hold every port, and
//! [`App::handle`] runs the whole request pipeline (request id, CORS, routing, authentication, tenant resolution,
//! rate limiting, access rules, the operation, the error envelope, security headers, metrics, logging) over a
//! neutral [`ApiRequest`]/[`ApiResponse`]. The axum and actix adapters only convert to and from these types, so
//! both serve the identical API.
#![deny(missing_docs)]

mod admission;
pub mod app;
pub mod dto;
pub mod error;
pub mod http;
pub mod input;
pub mod invalidation;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod permissions;
mod pipeline;
pub mod realtime;
pub mod routes;
pub mod ws_v2;

pub use app::{App, AppBuilder, AppConfig, BuildError, RateLimits};
pub use error::ApiError;
pub use http::{ApiRequest, ApiResponse, Headers, Method};
pub use pipeline::{CORS_ALLOW_HEADERS, SECURITY_HEADERS};
