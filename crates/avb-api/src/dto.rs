//! Response DTOs where the wire shape differs from the stored record. Everything else is answered with the
//! service's record types, which are already plain serde data.

use avb_core::{ApiKeyId, ApiKeyScope, ProjectId, RateLimitTier, TenantId, UserId};
use avb_tenancy::api_key::{CreatedApiKey, RotatedApiKey};
use avb_tenancy::model::ApiKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// An API key as clients see it (spec §9.2): every stored field except `key_hash`, which never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyResponse {
    /// Id.
    pub id: ApiKeyId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// First 12 characters of the key, to recognise it.
    pub key_prefix: String,
    /// Creator.
    pub created_by: Option<UserId>,
    /// Project binding.
    pub project_id: Option<ProjectId>,
    /// Scopes.
    pub scopes: BTreeSet<ApiKeyScope>,
    /// Rate-limit tier.
    pub rate_limit_tier: RateLimitTier,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time (in the future while a rotation grace period runs).
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it.
    pub revoked_by: Option<UserId>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Last client IP.
    #[schema(value_type = Option<String>)]
    pub last_used_ip: Option<IpAddr>,
    /// Uses recorded.
    pub usage_count: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            tenant_id: key.tenant_id,
            name: key.name,
            description: key.description,
            key_prefix: key.key_prefix,
            created_by: key.created_by,
            project_id: key.project_id,
            scopes: key.scopes,
            rate_limit_tier: key.rate_limit_tier,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            revoked_by: key.revoked_by,
            last_used_at: key.last_used_at,
            last_used_ip: key.last_used_ip,
            usage_count: key.usage_count,
            created_at: key.created_at,
            updated_at: key.updated_at,
            version: key.version,
        }
    }
}

/// A new key: its record and, this one time only, the full secret as `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedApiKeyResponse {
    /// The record.
    #[serde(flatten)]
    pub api_key: ApiKeyResponse,
    /// The full key. It is not stored and cannot be shown again.
    pub key: String,
}

impl From<CreatedApiKey> for CreatedApiKeyResponse {
    fn from(created: CreatedApiKey) -> Self {
        Self {
            key: created.secret.expose().to_owned(),
            api_key: created.record.into(),
        }
    }
}

/// A rotation: the replacement key (with its secret, shown once) and the old key, revoked now or at the end of
/// the grace period (`previous.revoked_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotatedApiKeyResponse {
    /// The replacement key's record.
    #[serde(flatten)]
    pub api_key: ApiKeyResponse,
    /// The replacement key's full secret.
    pub key: String,
    /// The rotated key.
    pub previous: ApiKeyResponse,
}

impl From<RotatedApiKey> for RotatedApiKeyResponse {
    fn from(rotated: RotatedApiKey) -> Self {
        Self {
            key: rotated.new.secret.expose().to_owned(),
            api_key: rotated.new.record.into(),
            previous: rotated.old.into(),
        }
    }
}

/// How many notifications `read-all` marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MarkedReadResponse {
    /// Notifications that were unread and are now read.
    pub marked: u64,
}

/// Usage of the caller's tenant in the current billing period (`GET /api/v2/billing/usage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingUsage {
    /// Period start (RFC 3339).
    pub from_datetime: String,
    /// Period end (RFC 3339).
    pub to_datetime: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Amount before taxes, in cents.
    pub amount_cents: i64,
    /// Amount with taxes, in cents.
    pub total_amount_cents: i64,
    /// Per billable metric (`avb_sessions`, `avb_input_tokens`, `avb_output_tokens`, `avb_audio_seconds`).
    pub charges: Vec<BillingCharge>,
}

/// Usage of one billable metric in the current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingCharge {
    /// Billable metric code.
    pub metric_code: String,
    /// Units, a decimal string (exact).
    pub units: String,
    /// Events counted.
    pub events_count: u64,
    /// Amount in cents.
    pub amount_cents: i64,
}

impl From<avb_billing::model::CurrentUsage> for BillingUsage {
    fn from(usage: avb_billing::model::CurrentUsage) -> Self {
        Self {
            from_datetime: usage.from_datetime,
            to_datetime: usage.to_datetime,
            currency: usage.currency,
            amount_cents: usage.amount_cents,
            total_amount_cents: usage.total_amount_cents,
            charges: usage
                .charges
                .into_iter()
                .map(|c| BillingCharge {
                    metric_code: c.metric_code,
                    units: c.units,
                    events_count: c.events_count,
                    amount_cents: c.amount_cents,
                })
                .collect(),
        }
    }
}

/// The answer to a billing provider's webhook delivery (`POST /api/v2/billing/webhooks/lago`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingWebhookAck {
    /// `processed` for a first delivery, `duplicate` for a repeat of one already handled (nothing done).
    pub status: BillingWebhookStatus,
}

/// What became of a webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingWebhookStatus {
    /// First delivery: handled.
    Processed,
    /// A repeat of a delivery already claimed: acknowledged, nothing done.
    Duplicate,
}

/// An invoice of the caller's tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingInvoice {
    /// The billing provider's id.
    pub id: String,
    /// Invoice number.
    pub number: String,
    /// `draft`, `finalized`, `voided`, …
    pub status: String,
    /// `pending`, `succeeded`, `failed`.
    pub payment_status: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Total in cents.
    pub total_amount_cents: i64,
    /// Issuing date (`YYYY-MM-DD`).
    pub issuing_date: String,
    /// The PDF, once generated.
    pub file_url: Option<String>,
}

/// One page of invoices, newest first (`GET /api/v2/billing/invoices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingInvoicePage {
    /// The invoices of this page.
    pub items: Vec<BillingInvoice>,
    /// This page (from 1).
    pub page: u32,
    /// The next page, if any.
    pub next_page: Option<u32>,
    /// Invoices across all pages.
    pub total: u64,
}

impl From<avb_billing::model::InvoicePage> for BillingInvoicePage {
    fn from(page: avb_billing::model::InvoicePage) -> Self {
        Self {
            items: page
                .invoices
                .into_iter()
                .map(|i| BillingInvoice {
                    id: i.id,
                    number: i.number,
                    status: i.status,
                    payment_status: i.payment_status,
                    currency: i.currency,
                    total_amount_cents: i.total_amount_cents,
                    issuing_date: i.issuing_date,
                    file_url: i.file_url,
                })
                .collect(),
            page: page.page,
            next_page: page.next_page,
            total: page.total_count,
        }
    }
}
