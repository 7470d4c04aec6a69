//! The provider and store suites against the in-memory adapters.

mod memory_provider {
    use avb_billing::adapters::memory::MemoryBilling;
    use std::sync::Arc;

    avb_billing::billing_provider_conformance!(async { Arc::new(MemoryBilling::new()) });
}
