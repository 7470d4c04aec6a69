//! In-process mocks of HTTP peers that cannot run here, each validating requests against the peer's own
//! OpenAPI document and recording them for assertions.

pub mod keycloak_admin;
pub mod lago;
pub mod openapi;
