//! Adapters of the auth ports.
pub mod local_authz;
