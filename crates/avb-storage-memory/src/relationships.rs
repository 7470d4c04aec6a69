//! Placeholder until the adapter lands.

/// Not yet implemented.
#[derive(Debug, Clone, Default)]
pub struct MemoryRelationshipStore;
