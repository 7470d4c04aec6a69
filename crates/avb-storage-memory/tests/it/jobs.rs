//! The job queue conformance suite against [`MemoryStore`].

use avb_storage_memory::MemoryStore;
use std::sync::Arc;

avb_core::job_queue_conformance!(async { Arc::new(MemoryStore::new()) });
