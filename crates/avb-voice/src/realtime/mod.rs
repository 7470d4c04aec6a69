//! The realtime side of the crate: the OpenAI-Realtime-compatible protocol (both dialects) and, later, the
//! per-connection session engine that consumes the speech and language-model ports.
//!
//! [`protocol`] is framework-free and holds no state: it turns client frames into dialect-neutral
//! [`ClientEvent`](protocol::ClientEvent)s and neutral [`ServerEvent`](protocol::ServerEvent)s back into frames of
//! the connection's [`Dialect`](protocol::Dialect). The engine works on the neutral model only, so it never
//! re-parses JSON and never mixes dialects.

pub mod engine;
mod frame;
pub mod protocol;

pub use frame::TextFrame;
