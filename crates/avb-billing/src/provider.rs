//! The billing system: customers, plans, usage events, current usage and invoices.

use crate::Result;
use crate::model::{
    BatchOutcome, BillingCustomer, CurrentUsage, InvoicePage, PlanAssignment, Subscription, UsageEvent,
};
use async_trait::async_trait;
use avb_core::Ctx;

/// A usage-based billing system (Lago, or the in-memory one).
///
/// Every write is idempotent, so a caller that did not learn the outcome (timeout, crash) simply repeats it.
///
/// # Contract
/// - `upsert_customer` creates the customer or updates the one with the same `external_id`; repeating it
///   changes nothing.
/// - `assign_plan` puts the customer on the plan under the subscription's `external_id`; assigning again with
///   another plan changes that subscription's plan (still one subscription). An unknown customer or plan is
///   `Error::NotFound`.
/// - `send_events` takes 1 to [`MAX_BATCH`](crate::model::MAX_BATCH) events (otherwise `Error::Invalid`, and
///   nothing is stored) and accounts for every one of them in exactly one list of the [`BatchOutcome`]: an event
///   whose transaction id the provider already has is a duplicate (success, not stored twice); sending the same
///   events again reports them all as duplicates.
/// - `current_usage` reports, per metric, the units of the accepted events of the subscription's current
///   period (`sum` of the metric's property, or the count for `count` metrics); an unknown customer or
///   subscription is `Error::NotFound`.
/// - `list_invoices` pages the customer's invoices (page ≥ 1, 1 ≤ per_page ≤ 100, otherwise `Error::Invalid`);
///   a customer without invoices has an empty page.
/// - Errors a retry may cure are [`Error::is_temporary`](crate::Error::is_temporary); a refusal for good is not.
#[async_trait]
pub trait BillingProvider: Send + Sync + std::fmt::Debug + 'static {
    /// Creates or updates a customer.
    async fn upsert_customer(&self, ctx: &Ctx, customer: &BillingCustomer) -> Result<()>;
    /// Creates a subscription or changes its plan.
    async fn assign_plan(&self, ctx: &Ctx, assignment: &PlanAssignment) -> Result<Subscription>;
    /// Sends usage events.
    async fn send_events(&self, ctx: &Ctx, events: &[UsageEvent]) -> Result<BatchOutcome>;
    /// Usage of the subscription's current period.
    async fn current_usage(&self, ctx: &Ctx, customer: &str, subscription: &str) -> Result<CurrentUsage>;
    /// The customer's invoices, newest first.
    async fn list_invoices(&self, ctx: &Ctx, customer: &str, page: u32, per_page: u32)
    -> Result<InvoicePage>;
}

/// Checks the size rules of `send_events` (shared by every adapter).
pub fn check_batch(events: &[UsageEvent]) -> Result<()> {
    let max = crate::model::MAX_BATCH;
    if events.is_empty() || events.len() > max {
        return Err(avb_core::FieldErrors::single(
            "events",
            "length",
            format!("a batch holds 1 to {max} events, got {}", events.len()),
        )
        .into());
    }
    Ok(())
}

/// Checks the paging rules of `list_invoices` (shared by every adapter).
pub fn check_page(page: u32, per_page: u32) -> Result<()> {
    let mut errors = avb_core::FieldErrors::new();
    if page == 0 {
        errors.push("page", "range", "must be at least 1");
    }
    if per_page == 0 || per_page > 100 {
        errors.push("per_page", "range", "must be between 1 and 100");
    }
    Ok(errors.into_result()?)
}
