//! The tenancy store conformance suite against [`MemoryStore`].

use avb_storage_memory::MemoryStore;
use std::sync::Arc;

avb_tenancy::tenancy_store_conformance!(async { Arc::new(MemoryStore::new()) });
