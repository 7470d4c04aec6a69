//! # avb-billing
//!
//! Usage-based billing for AgentVoiceBox (spec: `apps/billing`, `integrations/lago`, the `sync-billing-usage`
//! schedule and `sync_tenant_to_billing`). One tenant is one billing customer whose `external_id` is the tenant
//! id, with one subscription whose plan follows the tier (`plan_{tier}`); ended realtime sessions become usage
//! events.
//!
//! - [`provider::BillingProvider`]: the billing system (customers, plans, usage events, current usage,
//!   invoices). Adapters: [`adapters::memory::MemoryBilling`] (first-class, the server default) and
//!   [`adapters::lago::LagoBilling`] (feature `lago`). [`retry::RetryingBillingProvider`] adds jittered
//!   back-off for the errors a retry may cure.
//! - [`store::BillingStore`]: what the sync must remember durably — an outbox of usage events keyed by their
//!   deterministic transaction id, a cursor over ended sessions, and the webhook keys already handled.
//!   Adapters live in `avb-storage-memory` and `avb-storage-postgres`.
//! - [`sync::BillingSync`]: the 15-minute job that turns ended sessions into outbox entries and flushes them in
//!   batches of at most [`model::MAX_BATCH`], and the tenant sync that sets the tenant's `billing_id`.
//! - [`webhook`]: verification of the provider's webhooks (HMAC-SHA256 or RS256 JWT) and de-duplication.
//!
//! Nothing accepted is lost: an event leaves the outbox only when the provider acknowledged it (or already had
//! it); a failed flush leaves it pending for the next run, and resending is safe because transaction ids are
//! deterministic.
#![deny(missing_docs)]

pub mod adapters;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod model;
pub mod provider;
pub mod retry;
pub mod store;
pub mod sync;
pub mod webhook;

pub use error::{Error, Result};
