//! # avb-testkit
//!
//! Test support for AgentVoiceBox, never published: launchers that start real peers (SpiceDB engine, an OpenID
//! provider in Keycloak's layout) on 127.0.0.1 for integration tests, and the shared black-box suites.
//!
//! A missing peer fails the test that needs it; there is no silent skip. The only way to skip is to set
//! `AVB_SKIP_PEERS=<reason>`, which the launchers report as an error naming the reason.

pub mod blackbox;
pub mod mocks;
pub mod peers;
