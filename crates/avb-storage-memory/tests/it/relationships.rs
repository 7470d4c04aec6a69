//! The relationship-store suite against [`MemoryRelationshipStore`], the authorizer suite against the local
//! engine over it, and the memory-specific property that clones share state.

use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::authorizer::{
    Authorizer, Relationship, RelationshipFilter, RelationshipStore, RelationshipUpdate,
};
use avb_core::{Ctx, RequestId, UuidV7Ids};
use avb_storage_memory::MemoryRelationshipStore;
use std::sync::Arc;

avb_auth::relationship_store_conformance!(async {
    Arc::new(MemoryRelationshipStore::new()) as Arc<dyn RelationshipStore>
});

mod local_authorizer {
    use super::*;
    avb_auth::authorizer_conformance!(async {
        let store: Arc<dyn RelationshipStore> = Arc::new(MemoryRelationshipStore::new());
        Arc::new(LocalAuthorizer::new(store).unwrap()) as Arc<dyn Authorizer>
    });
}

#[tokio::test]
async fn clones_share_tuples_and_revisions() {
    let ctx = Ctx::system(RequestId::generate(&UuidV7Ids), "test", None);
    let store = MemoryRelationshipStore::new();
    let clone = store.clone();
    let rel: Relationship = "doc:d1#viewer@user:ann".parse().unwrap();
    let revision = store
        .write(&ctx, &[RelationshipUpdate::Touch(rel.clone())])
        .await
        .unwrap();
    let seen = clone.snapshot(&ctx).await.unwrap();
    assert_eq!(seen.revision(), revision);
    let filter = RelationshipFilter::resource(&rel.resource);
    assert_eq!(seen.read(&ctx, &filter, None).await.unwrap(), vec![rel]);
}
