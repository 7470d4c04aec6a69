//! The shared cache suite against [`MemoryCache`].

use avb_storage_memory::MemoryCache;

avb_core::cache_conformance!(async { MemoryCache::new() });
