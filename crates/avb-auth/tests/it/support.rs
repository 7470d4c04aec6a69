//! Helpers shared by the test modules.

use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::authorizer::{Authorizer, Relationship, RelationshipStore, RelationshipUpdate};
use avb_core::{Ctx, RequestId, UuidV7Ids};
use avb_storage_memory::MemoryRelationshipStore;
use std::sync::Arc;

pub fn ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "avb-auth-tests", None)
}

/// A local engine over a fresh memory store, with `schema` (or the spec schema).
pub fn engine(schema: Option<&str>) -> LocalAuthorizer {
    let store: Arc<dyn RelationshipStore> = Arc::new(MemoryRelationshipStore::new());
    let builder = LocalAuthorizer::builder().store(store);
    match schema {
        Some(text) => builder.schema(text).build().unwrap(),
        None => builder.build().unwrap(),
    }
}

pub fn rel(text: &str) -> Relationship {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub async fn touch_all(authz: &dyn Authorizer, tuples: &[&str]) {
    let updates: Vec<RelationshipUpdate> = tuples.iter().map(|t| RelationshipUpdate::Touch(rel(t))).collect();
    authz.write_relationships(&ctx(), &updates).await.unwrap();
}
