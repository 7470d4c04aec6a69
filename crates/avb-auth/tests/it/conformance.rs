//! The shared suites against the local engine and the memory store.
//!
//! The authorizer suite runs against one engine shared by every test, the way the SpiceDB suite shares one
//! server: checks must not assume an empty graph.

use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::authorizer::{Authorizer, RelationshipStore};
use avb_storage_memory::MemoryRelationshipStore;
use std::sync::{Arc, OnceLock};

fn shared() -> Arc<dyn Authorizer> {
    static SHARED: OnceLock<Arc<dyn Authorizer>> = OnceLock::new();
    Arc::clone(SHARED.get_or_init(|| {
        let store: Arc<dyn RelationshipStore> = Arc::new(MemoryRelationshipStore::new());
        Arc::new(LocalAuthorizer::new(store).unwrap())
    }))
}

mod local_authorizer {
    avb_auth::authorizer_conformance!(async { super::shared() });
}

mod memory_store {
    use super::*;
    avb_auth::relationship_store_conformance!(async {
        Arc::new(MemoryRelationshipStore::new()) as Arc<dyn RelationshipStore>
    });
}
