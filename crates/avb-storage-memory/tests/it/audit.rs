//! The audit conformance suite against [`MemoryStore`].

use avb_storage_memory::MemoryStore;
use std::sync::Arc;

avb_core::audit_conformance!(async { Arc::new(MemoryStore::new()) });
