//! Adapters of the auth ports.
#[cfg(feature = "keycloak")]
pub mod keycloak;
pub mod local_authz;
pub mod static_jwt;
#[cfg(feature = "spicedb")]
pub mod spicedb;
