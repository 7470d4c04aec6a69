//! `/api/v2/billing/*` (spec `apps/billing`, the `billing_access` permission): the caller's tenant's current
//! usage and invoices, as the billing provider reports them, and the provider's webhooks.
//!
//! With billing off (no [`crate::app::Billing`] in the app, `FF_BILLING=false`) every billing operation answers
//! **503 `service_unavailable`** with `details.feature = "billing"`: the route exists, the feature is not
//! available on this server (a 404 would read as a wrong URL).
//!
//! Usage and invoices need `tenant#billing_access` (tenant admins, the `billing` role, sysadmins; API keys with
//! the `billing` scope). A tenant the sync has not linked to its billing customer yet is linked on first use,
//! so a new tenant sees empty usage rather than an error.
//!
//! Webhooks ([`receive_webhook`]) are not authenticated by a user: the provider's signature over the raw body
//! is the credential (401 `authentication_failed` otherwise), and the delivery's unique key makes a repeat a
//! 200 without effect.

use crate::app::{App, Billing};
use crate::dto::{BillingInvoicePage, BillingUsage, BillingWebhookAck, BillingWebhookStatus};
use crate::error::ApiError;
use crate::input::{Input, Reply};
use avb_billing::model::{customer_id, subscription_id};
use avb_billing::webhook::{Received, Webhook, WebhookHeaders};
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{Ctx, ErrorCode, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};

/// Default invoices per page.
pub const DEFAULT_PER_PAGE: u32 = 20;

/// The app's billing, or the 503 of a server without it.
pub(crate) fn billing(app: &App) -> Result<&Billing, ApiError> {
    app.inner().billing.as_ref().ok_or_else(|| {
        ApiError::with_message(
            ErrorCode::ServiceUnavailable,
            "Billing is not enabled on this server",
        )
        .details(json!({ "feature": "billing" }))
    })
}

fn billing_error(err: avb_billing::Error) -> ApiError {
    ApiError::from_error(&err)
}

/// Paging of `GET /billing/invoices` (the provider's own: pages of `per_page`, numbered from 1).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct InvoiceQuery {
    /// Page number, from 1 (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<u32>,
    /// Invoices per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// Runs `call` for the tenant's billing customer; when the provider does not know the customer or its
/// subscription yet, links the tenant first (`sync_tenant`, as the system) and runs it once more.
async fn with_customer<T, F, Fut>(
    billing: &Billing,
    ctx: &Ctx,
    tenant: TenantId,
    call: F,
) -> Result<T, ApiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = avb_billing::Result<T>>,
{
    match call().await {
        Err(avb_billing::Error::NotFound { .. }) => {
            let system = Ctx::system(ctx.request_id().clone(), "billing", Some(tenant));
            billing
                .sync
                .sync_tenant(&system, tenant)
                .await
                .map_err(billing_error)?;
            call().await.map_err(billing_error)
        }
        other => other.map_err(billing_error),
    }
}

/// `GET /billing/usage` — `tenant#billing_access`: usage of the current billing period, per metric.
pub async fn usage(app: &App, ctx: &Ctx, _input: &Input) -> Result<Reply, ApiError> {
    let billing = billing(app)?;
    super::require_tenant_permission(app, ctx, "billing_access").await?;
    let tenant = ctx.require_tenant()?;
    let (customer, subscription) = (customer_id(tenant), subscription_id(tenant));
    let provider = billing.sync.provider();
    let usage = with_customer(billing, ctx, tenant, || {
        provider.current_usage(ctx, &customer, &subscription)
    })
    .await?;
    Reply::ok(&BillingUsage::from(usage))
}

/// `GET /billing/invoices` — `tenant#billing_access`: the tenant's invoices, newest first, paged by `page` and
/// `per_page`.
pub async fn invoices(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    let billing = billing(app)?;
    super::require_tenant_permission(app, ctx, "billing_access").await?;
    let query: InvoiceQuery = input.query()?;
    let tenant = ctx.require_tenant()?;
    let (page, per_page) = (
        query.page.unwrap_or(1),
        query.per_page.unwrap_or(DEFAULT_PER_PAGE),
    );
    let customer = customer_id(tenant);
    let provider = billing.sync.provider();
    let found = with_customer(billing, ctx, tenant, || {
        provider.list_invoices(ctx, &customer, page, per_page)
    })
    .await?;
    Reply::ok(&BillingInvoicePage::from(found))
}

/// The headers of a webhook delivery, from request headers (`(name, value)` pairs, any case).
pub fn webhook_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> WebhookHeaders {
    let mut found = WebhookHeaders::default();
    for (name, value) in headers {
        let slot = if name.eq_ignore_ascii_case("x-lago-signature") {
            &mut found.signature
        } else if name.eq_ignore_ascii_case("x-lago-signature-algorithm") {
            &mut found.algorithm
        } else if name.eq_ignore_ascii_case("x-lago-unique-key") {
            &mut found.unique_key
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(value.trim().to_owned());
        }
    }
    found
}

/// The tenant a delivery is about: its customer's external id (our tenant id), wherever the object carries it.
fn tenant_of(webhook: &Webhook) -> Option<TenantId> {
    let object = webhook.payload.get(&webhook.object_type);
    let candidates = [
        object.and_then(|o| o.get("external_customer_id")),
        object.and_then(|o| o.pointer("/customer/external_id")),
        object
            .and_then(|o| o.get("external_id"))
            .filter(|_| webhook.object_type == "customer"),
    ];
    candidates
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|id| id.parse().ok())
}

/// What handling a verified delivery does: one `billing_event` audit record in the tenant's trail (the
/// platform's when the delivery names no tenant of ours), so operators and tenant admins see what the provider
/// reported.
async fn handle(app: &App, ctx: &Ctx, webhook: &Webhook) -> Result<(), ApiError> {
    let tenant = tenant_of(webhook);
    let system = Ctx::system(ctx.request_id().clone(), "billing-webhook", tenant);
    let mut entry = NewAuditEntry::new(AuditAction::BillingEvent, "billing_webhook", &webhook.unique_key)
        .description(format!("billing provider webhook {}", webhook.webhook_type))
        .metadata(json!({
            "webhook_type": webhook.webhook_type,
            "object_type": webhook.object_type,
        }));
    if let Some(tenant) = tenant {
        entry = entry.tenant(tenant);
    }
    app.inner().audit_sink.record(&system, entry).await?;
    tracing::info!(
        request_id = %ctx.request_id(),
        webhook_type = %webhook.webhook_type,
        unique_key = %webhook.unique_key,
        tenant_id = ?tenant,
        "billing webhook handled"
    );
    Ok(())
}

/// `POST /billing/webhooks/lago` as mounted (public: no user credential): [`receive_webhook`] over the route's
/// headers ([`webhook_headers`]) and the body bytes exactly as they arrived.
pub async fn lago_webhook(app: &App, ctx: &Ctx, input: &Input) -> Result<Reply, ApiError> {
    receive_webhook(app, ctx, &webhook_headers(input.headers()), &input.body).await
}

/// `POST /billing/webhooks/lago`: verifies the signature over `body` (the raw bytes as received), claims the
/// delivery's `X-Lago-Unique-Key` and handles a first delivery. 200 `{"status":"processed"}` for a first
/// delivery, 200 `{"status":"duplicate"}` (and nothing done) for a repeat, 401 `authentication_failed` for a
/// missing or bad signature — and for every delivery when the app has billing but no webhook verifier (nothing
/// can be verified, so nothing is accepted) — and 503 `service_unavailable` when billing is off. A delivery
/// whose handling fails is released, so the provider's retry is handled.
pub async fn receive_webhook(
    app: &App,
    ctx: &Ctx,
    headers: &WebhookHeaders,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let billing = billing(app)?;
    let Some(receiver) = billing.webhooks.as_ref() else {
        // Nothing to verify a signature with, so no delivery can be authentic: refused like a bad signature (a
        // 5xx would read as an outage and invite retries), with the reason in the log for the operator.
        tracing::warn!(
            request_id = %ctx.request_id(),
            "billing webhook refused: no webhook verification is configured (LAGO_WEBHOOK_SECRET / LAGO_API_URL)"
        );
        return Err(ApiError::with_message(
            ErrorCode::AuthenticationFailed,
            "The webhook signature could not be verified",
        ));
    };
    let system = Ctx::system(ctx.request_id().clone(), "billing-webhook", None);
    match receiver.receive(&system, headers, body).await {
        Err(err) => {
            if matches!(err, avb_billing::Error::WebhookRejected(_)) {
                tracing::warn!(request_id = %ctx.request_id(), error = %err, "billing webhook refused");
            }
            Err(billing_error(err))
        }
        Ok(Received::Duplicate(key)) => {
            tracing::info!(request_id = %ctx.request_id(), unique_key = %key, "billing webhook repeated; ignored");
            Reply::ok(&BillingWebhookAck {
                status: BillingWebhookStatus::Duplicate,
            })
        }
        Ok(Received::New(webhook)) => match handle(app, ctx, &webhook).await {
            Ok(()) => Reply::ok(&BillingWebhookAck {
                status: BillingWebhookStatus::Processed,
            }),
            Err(err) => {
                if let Err(release) = receiver.release(&system, &webhook.unique_key).await {
                    tracing::error!(error = %release, "could not release a failed billing webhook");
                }
                Err(err)
            }
        },
    }
}
