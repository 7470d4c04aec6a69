//! Adapters of [`crate::provider::BillingProvider`] and of the webhook key source: the in-memory provider
//! (always compiled) and Lago (feature `lago`).

#[cfg(feature = "lago")]
pub mod lago;
pub mod memory;
