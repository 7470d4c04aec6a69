//! # avb-auth
//!
//! Who is calling, and may they do this (spec §6): the `Authorizer` port over a relationship graph described by
//! the SpiceDB schema in `schema/agentvoicebox.zed`, a local ReBAC engine that evaluates that schema itself,
//! and (later) identity providers and API-key authentication.
#![deny(missing_docs)]

pub mod adapters;
pub mod authorizer;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod zed;

pub use error::{Error, Result};
