//! Conformance checks for adapters of the core ports. Each check is a plain `pub async fn` over the port; the
//! macros turn every check into its own `#[tokio::test]`, so an adapter crate runs the whole suite with one line:
//!
//! ```text
//! avb_core::cache_conformance!(async { std::sync::Arc::new(MyCache::new()) as std::sync::Arc<dyn Cache> });
//! ```
//!
//! Checks create their own random keys and tenants and never assume an empty backend, so they can run in
//! parallel against a shared Redis or Postgres.

pub mod audit;
pub mod bus;
pub mod cache;
pub mod jobs;
pub mod rate_limit;
