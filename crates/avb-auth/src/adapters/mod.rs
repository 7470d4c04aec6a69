//! Adapters of the auth ports.
#[cfg(feature = "keycloak")]
pub mod keycloak;
#[cfg(feature = "keycloak")]
pub mod keycloak_admin;
pub mod local_authz;
#[cfg(feature = "spicedb")]
pub mod spicedb;
pub mod static_jwt;
