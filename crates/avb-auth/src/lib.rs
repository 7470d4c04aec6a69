//! # avb-auth
//!
//! Who is calling, and may they do this (spec §6): the `Authorizer` port over a relationship graph described by
//! the SpiceDB schema in `schema/agentvoicebox.zed`, a local ReBAC engine that evaluates that schema itself,
//! identity providers (static JWT, Keycloak OIDC), API-key authentication with a hot cache and batched usage,
//! ephemeral realtime client secrets, and the credential extraction every HTTP adapter shares.
#![deny(missing_docs)]

pub mod adapters;
pub mod api_keys;
pub mod authenticator;
pub mod authorizer;
pub mod claims;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod credentials;
pub mod ephemeral;
pub mod error;
pub mod identity;
pub mod keycloak_admin;
pub mod zed;

pub use error::{Error, Result};
