//! The billing store conformance suite against [`MemoryBillingStore`].

use avb_storage_memory::MemoryBillingStore;
use std::sync::Arc;

avb_billing::billing_store_conformance!(async { Arc::new(MemoryBillingStore::new()) });
