//! # avb-storage-memory
//!
//! In-memory adapters for every AgentVoiceBox storage port. They are first-class, not test doubles: they keep the
//! semantics the Postgres adapter has (uniqueness, ordering, optimistic versions, tenant isolation, atomic units
//! of work), pass the same conformance suites, and are the server's default so it runs with no services.
//! Cloning an adapter shares its state.
#![deny(missing_docs)]

mod billing;
mod bus;
mod cache;
mod rate_limit;
mod relationships;
mod tenancy;
mod tokens;

pub use billing::MemoryBillingStore;
pub use bus::MemoryEventBus;
pub use cache::MemoryCache;
pub use rate_limit::MemoryRateLimiter;
pub use relationships::MemoryRelationshipStore;
pub use tenancy::MemoryStore;
pub use tokens::MemoryEphemeralTokens;
