//! In-process tests of every REST route through `App::handle`, over in-memory adapters: happy paths, validation,
//! permission denials, tenant isolation and the audit trail of every write.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

mod admin;
mod api_keys;
mod audit;
mod billing;
mod metrics;
mod notifications;
mod openapi;
mod projects;
mod routes;
mod sessions;
mod sign_in;
mod tenants;
mod themes;
mod users;
mod voice;
