//! # avb-storage-postgres
//!
//! PostgreSQL adapters (sqlx) for the AgentVoiceBox storage ports, so any number of server replicas share one
//! durable state. One [`PgStore`] implements:
//!
//! - [`avb_tenancy::store::TenancyStore`]: a unit of work is one SQL transaction; `lock` is
//!   `SELECT … FOR UPDATE`; optimistic versions are checked by `UPDATE … WHERE id = $1 AND version = $2`;
//!   references are composite `(tenant_id, id)` foreign keys with the contract's delete rules;
//! - [`avb_core::audit::AuditSink`] and [`avb_core::audit::AuditReader`]: entries hash-chained per tenant under
//!   a lock on the chain's head row, in an append-only table ([`PgStore::verify_audit_chain`] checks a chain);
//! - [`avb_core::jobs::JobQueue`]: `FOR UPDATE SKIP LOCKED` reservation with leases, retries and dead jobs;
//!   jobs enqueued in a unit of work are its rows (transactional outbox);
//! - [`avb_auth::authorizer::RelationshipStore`]: revisioned relationship tuples for the local authorizer;
//! - [`avb_billing::store::BillingStore`]: the billing sync's usage outbox (tenant-scoped), cursors and webhook
//!   claims.
//!
//! **Tenant isolation is enforced by the database too.** Every tenant-scoped table has row-level security
//! (forced, so owners are subject to it) keyed on transaction-local settings; each transaction first switches to
//! the unprivileged role `avb_app` and sets `avb.tenant_id` from the [`avb_core::Ctx`] (or the explicit
//! `avb.all_tenants` bypass for cross-tenant admin/system contexts). A statement that forgets its tenant filter
//! still sees only the scoped tenant's rows. [`PgStore::scoped_transaction`] opens such a transaction for
//! hand-written SQL.
//!
//! Migrations are embedded and versioned ([`PgStore::migrate`]). Driver errors never leave the crate: a unique
//! violation is `conflict`, a missing row or reference `not_found`, pool and IO failures `service_unavailable`.
//!
//! ```no_run
//! # async fn demo() -> avb_core::Result<()> {
//! use avb_storage_postgres::PgStoreBuilder;
//! let store = PgStoreBuilder::from_env().build().await?; // DATABASE_URL or DB_HOST/DB_PORT/DB_NAME/…
//! store.migrate().await?;
//! store.ping().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod audit;
mod billing;
mod config;
mod error;
mod jobs;
mod relationships;
mod sql;
mod store;
mod tenancy;

pub use config::{DEFAULT_APP_ROLE, PgConfig, PgStoreBuilder};
pub use store::PgStore;
