//! # agentvoicebox
//!
//! One dependency for the whole SDK: re-exports the AgentVoiceBox crates under short names. Depend on the
//! individual `avb-*` crates instead when you want fewer dependencies.
#![deny(missing_docs)]

pub use avb_api as api;
pub use avb_auth as auth;
pub use avb_core as core;
pub use avb_http_axum as http_axum;
pub use avb_server as server;
pub use avb_storage_memory as storage_memory;
pub use avb_tenancy as tenancy;
