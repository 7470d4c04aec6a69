//! The shared event-bus suite against [`MemoryEventBus`].

use avb_storage_memory::MemoryEventBus;

avb_core::event_bus_conformance!(async { MemoryEventBus::new() });
