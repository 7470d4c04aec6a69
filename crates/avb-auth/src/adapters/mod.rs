//! Adapters of the auth ports.
pub mod local_authz;
#[cfg(feature = "spicedb")]
pub mod spicedb;
