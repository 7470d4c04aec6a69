//! What the billing ports exchange: customers, plan assignments, usage events and what the provider reports
//! back. Shapes follow Lago's (the reference provider) without naming it: integer cents, decimal strings for
//! usage units, unix-second timestamps.

use avb_core::TenantId;
use avb_tenancy::model::{Session, SessionStatus, Tenant, TenantTier};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most events one `send_events` call may carry (Lago's `/events/batch` limit, `LAGO_EVENTS_BATCH_MAX_LENGTH`).
pub const MAX_BATCH: usize = 100;

/// Codes of the billable metrics the sync reports. Each must exist in the provider with the aggregation noted.
pub mod metrics {
    /// One event per ended session (`count_agg`); property `status` is the session's final status.
    pub const SESSIONS: &str = "avb_sessions";
    /// LLM input tokens (`sum_agg` over property `tokens`, an integer).
    pub const INPUT_TOKENS: &str = "avb_input_tokens";
    /// LLM output tokens (`sum_agg` over property `tokens`, an integer).
    pub const OUTPUT_TOKENS: &str = "avb_output_tokens";
    /// Seconds of audio processed (`sum_agg` over property `seconds`, a decimal string with millisecond
    /// precision, so no float rounding reaches the invoice).
    pub const AUDIO_SECONDS: &str = "avb_audio_seconds";
}

/// The provider's customer for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingCustomer {
    /// Our id for the customer: the tenant id.
    pub external_id: String,
    /// Display name (the tenant's name).
    pub name: String,
    /// Billing e-mail, when known.
    pub email: Option<String>,
    /// Key/value metadata shown to operators (`tier`, `slug`), never on invoices.
    pub metadata: BTreeMap<String, String>,
}

impl BillingCustomer {
    /// The customer of `tenant` (spec `sync_tenant_to_billing`: external id = tenant id, metadata tier and slug).
    pub fn for_tenant(tenant: &Tenant) -> Self {
        let metadata = BTreeMap::from([
            ("tier".to_owned(), tenant.tier.as_str().to_owned()),
            ("slug".to_owned(), tenant.slug.clone()),
        ]);
        Self {
            external_id: customer_id(tenant.id),
            name: tenant.name.clone(),
            email: None,
            metadata,
        }
    }
}

/// The customer id of a tenant (its id; stored as the tenant's `billing_id` once synced).
pub fn customer_id(tenant: TenantId) -> String {
    tenant.to_string()
}

/// The subscription id of a tenant: one subscription per tenant, so a tier change is a plan change of the same
/// subscription (an upgrade or downgrade for the provider), never a second subscription.
pub fn subscription_id(tenant: TenantId) -> String {
    format!("avb_{tenant}")
}

/// The plan code of a tier (spec: `plan_code=f"plan_{tenant.tier}"`).
pub fn plan_code(tier: TenantTier) -> String {
    format!("plan_{}", tier.as_str())
}

/// Puts a customer on a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanAssignment {
    /// The customer.
    pub external_customer_id: String,
    /// Our id for the subscription; assigning again with another plan changes that subscription's plan.
    pub external_id: String,
    /// The plan.
    pub plan_code: String,
}

impl PlanAssignment {
    /// The subscription of `tenant` on its tier's plan.
    pub fn for_tenant(tenant: &Tenant) -> Self {
        Self {
            external_customer_id: customer_id(tenant.id),
            external_id: subscription_id(tenant.id),
            plan_code: plan_code(tenant.tier),
        }
    }
}

/// A subscription as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Our id.
    pub external_id: String,
    /// The customer.
    pub external_customer_id: String,
    /// Current plan.
    pub plan_code: String,
    /// Provider status (`active`, `pending`, `terminated`, …).
    pub status: String,
}

/// One usage event.
///
/// `transaction_id` is the idempotency key and is deterministic (`{tenant}:{session}:{metric}`), and
/// `timestamp` is always set: a provider that keys uniqueness on (transaction id, timestamp) would otherwise
/// count a resend as a new event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// Idempotency key.
    pub transaction_id: String,
    /// The subscription the usage belongs to.
    pub external_subscription_id: String,
    /// Billable metric code (see [`metrics`]).
    pub code: String,
    /// When the usage happened, unix seconds.
    pub timestamp: i64,
    /// Metric properties: strings or integers.
    pub properties: Map<String, Value>,
}

impl UsageEvent {
    /// The events an ended session is billed with: always one [`metrics::SESSIONS`] event, plus one per
    /// non-zero usage figure. `None` while the session has not ended (its usage may still grow).
    pub fn from_session(session: &Session) -> Option<Vec<UsageEvent>> {
        if !matches!(
            session.status,
            SessionStatus::Completed | SessionStatus::Error | SessionStatus::Terminated
        ) {
            return None;
        }
        let ended = session.ended_at.unwrap_or(session.updated_at);
        let event = |metric: &str, key: &str, value: Value| {
            let mut properties = Map::new();
            properties.insert(key.to_owned(), value);
            UsageEvent {
                transaction_id: format!("{}:{}:{metric}", session.tenant_id, session.id),
                external_subscription_id: subscription_id(session.tenant_id),
                code: metric.to_owned(),
                timestamp: ended.timestamp(),
                properties,
            }
        };
        let mut events = vec![event(
            metrics::SESSIONS,
            "status",
            Value::from(session.status.as_str()),
        )];
        if session.input_tokens > 0 {
            events.push(event(
                metrics::INPUT_TOKENS,
                "tokens",
                Value::from(session.input_tokens),
            ));
        }
        if session.output_tokens > 0 {
            events.push(event(
                metrics::OUTPUT_TOKENS,
                "tokens",
                Value::from(session.output_tokens),
            ));
        }
        let millis = (session.audio_duration_seconds * 1000.0).round();
        if millis.is_finite() && millis >= 1.0 {
            // Whole milliseconds as a decimal string: `12.345`, exact for the provider's decimal sum.
            let millis = millis as u64;
            events.push(event(
                metrics::AUDIO_SECONDS,
                "seconds",
                Value::from(format!("{}.{:03}", millis / 1000, millis % 1000)),
            ));
        }
        Some(events)
    }
}

/// What a provider did with each event of one `send_events` call. Every event is in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Transaction ids stored by this call.
    pub accepted: Vec<String>,
    /// Transaction ids the provider already had (an earlier send was accepted): success, not an error.
    pub duplicates: Vec<String>,
    /// Events refused for good, with the provider's reason; the others of the call were still accepted.
    pub rejected: Vec<RejectedEvent>,
}

/// An event the provider refused for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEvent {
    /// Its transaction id.
    pub transaction_id: String,
    /// Why (the provider's field errors).
    pub reason: String,
}

/// Usage of the current billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUsage {
    /// Period start (RFC 3339).
    pub from_datetime: String,
    /// Period end (RFC 3339).
    pub to_datetime: String,
    /// ISO currency.
    pub currency: String,
    /// Amount before taxes, in cents.
    pub amount_cents: i64,
    /// Amount with taxes, in cents.
    pub total_amount_cents: i64,
    /// Per metric.
    pub charges: Vec<ChargeUsage>,
}

/// Usage of one metric in the current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeUsage {
    /// Billable metric code.
    pub metric_code: String,
    /// Units, a decimal string.
    pub units: String,
    /// Events counted.
    pub events_count: u64,
    /// Amount in cents.
    pub amount_cents: i64,
}

/// An invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The provider's id.
    pub id: String,
    /// Invoice number.
    pub number: String,
    /// `draft`, `finalized`, `voided`, …
    pub status: String,
    /// `pending`, `succeeded`, `failed`.
    pub payment_status: String,
    /// ISO currency.
    pub currency: String,
    /// Total in cents.
    pub total_amount_cents: i64,
    /// Issuing date (`YYYY-MM-DD`).
    pub issuing_date: String,
    /// PDF, once generated.
    pub file_url: Option<String>,
}

/// One page of invoices, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePage {
    /// The invoices.
    pub invoices: Vec<Invoice>,
    /// This page (1-based).
    pub page: u32,
    /// The next page, if any.
    pub next_page: Option<u32>,
    /// Invoices across all pages.
    pub total_count: u64,
}
