//! # avb-server
//!
//! The reference server as a library, so tests, benchmarks and examples assemble exactly what the binary runs:
//! [`config::ServerConfig`] → adapters → [`avb_api::App`] → axum. The default build and configuration need no
//! external service: in-memory storage, static-key JWTs and the local permission engine.
#![deny(missing_docs)]

pub mod assemble;
pub mod bootstrap;
pub mod config;
pub mod voice;

pub use assemble::{Assembled, assemble};
pub use config::ServerConfig;
