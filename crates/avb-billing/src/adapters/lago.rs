//! [`LagoBilling`]: the Lago REST API (`{LAGO_API_URL}/api/v1`, bearer API key, JSON both ways).
//!
//! | port call | Lago |
//! |---|---|
//! | `upsert_customer` | `POST /customers` (an upsert by `external_id`) |
//! | `assign_plan` | `POST /subscriptions` (same `external_id`, new `plan_code` = upgrade/downgrade) |
//! | `send_events` | `POST /events/batch` (≤ 100 events) |
//! | `current_usage` | `GET /customers/{id}/current_usage?external_subscription_id=` |
//! | `list_invoices` | `GET /invoices?external_customer_id=&page=&per_page=` |
//! | webhook key | `GET /webhooks/json_public_key` |
//!
//! Lago's error body `{status, error, code, error_details}` is mapped to [`Error`]: 401 → `Unauthorized`,
//! 404 `<resource>_not_found` → `NotFound`, 429 → `RateLimited` with `X-RateLimit-Reset`, 5xx and transport
//! failures → `Unavailable`, any other 4xx → `Rejected` with the details kept raw.
//!
//! **Duplicates in a batch.** Lago's PostgreSQL event store refuses a transaction id it already has with 422
//! `error_details: {"<index>": {"transaction_id": ["value_already_exist"]}}` and rolls the whole batch back. The
//! adapter reports those events as duplicates (an earlier send was accepted), removes them, and sends the rest
//! again; an index refused for another reason is reported as rejected and removed the same way, so one bad
//! event cannot hold the others back. Retrying is not this adapter's job (see
//! [`crate::retry::RetryingBillingProvider`]).

use crate::model::{
    BatchOutcome, BillingCustomer, ChargeUsage, CurrentUsage, Invoice, InvoicePage, PlanAssignment,
    RejectedEvent, Subscription, UsageEvent,
};
use crate::provider::{BillingProvider, check_batch, check_page};
use crate::webhook::WebhookKeySource;
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::Ctx;
use base64::Engine as _;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Configuration of [`LagoBilling`] (env `LAGO_API_URL`, `LAGO_API_KEY`). The key never appears in `Debug`.
#[derive(Clone)]
#[non_exhaustive]
pub struct LagoConfig {
    /// Lago's URL without `/api/v1` (`http://localhost:3000`, a cloud API host).
    pub api_url: String,
    /// The organization's API key.
    pub api_key: String,
    /// Timeout of one HTTP request (default 10 s; a nearer `Ctx` deadline wins).
    pub http_timeout: Duration,
}

impl std::fmt::Debug for LagoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagoConfig")
            .field("api_url", &self.api_url)
            .field("api_key", &"<redacted>")
            .field("http_timeout", &self.http_timeout)
            .finish()
    }
}

impl LagoConfig {
    /// A configuration with the default timeout.
    pub fn new(api_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            api_url: api_url.into(),
            api_key: api_key.into(),
            http_timeout: Duration::from_secs(10),
        }
    }

    /// Reads `LAGO_API_URL` and `LAGO_API_KEY`.
    pub fn from_env() -> Result<Self> {
        let required = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        Ok(Self::new(required("LAGO_API_URL")?, required("LAGO_API_KEY")?))
    }

    /// Sets the HTTP timeout.
    #[must_use]
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }
}

/// The Lago adapter.
#[derive(Debug, Clone)]
pub struct LagoBilling {
    config: LagoConfig,
    base: Url,
    http: reqwest::Client,
}

/// Lago's error body.
#[derive(Debug, Default, Deserialize)]
struct LagoError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    error_details: Value,
}

impl LagoBilling {
    /// An adapter for `config` (the URL must be absolute `http(s)`, the key non-empty).
    pub fn new(config: LagoConfig) -> Result<Self> {
        if config.api_key.is_empty() {
            return Err(Error::Config("LAGO_API_KEY is empty".into()));
        }
        let root = config.api_url.trim_end_matches('/');
        let base = Url::parse(&format!("{root}/api/v1/"))
            .map_err(|e| Error::Config(format!("LAGO_API_URL {root:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!("LAGO_API_URL {root:?} is not http(s)")));
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self { config, base, http })
    }

    /// `{base}/api/v1/` + the path segments (each percent-encoded).
    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| Error::Config("LAGO_API_URL cannot be a base".into()))?;
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    /// Sends one request; `Ok` carries the status and the parsed JSON body (`Null` when empty) of a 2xx.
    async fn call(&self, ctx: &Ctx, method: Method, url: Url, body: Option<&Value>) -> Result<Value> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(&self.config.api_key)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(left) = ctx.remaining()? {
            request = request.timeout(left.min(self.config.http_timeout));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let reset = response
            .headers()
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|e| Error::Unavailable(format!("Lago answered {status} with invalid JSON: {e}")));
        }
        let body: LagoError = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(map_status(status, reset, body))
    }
}

fn transport(err: reqwest::Error) -> Error {
    if err.is_timeout() {
        Error::Unavailable("Lago did not answer in time".into())
    } else {
        Error::Unavailable(format!("Lago unreachable: {err}"))
    }
}

fn map_status(status: StatusCode, reset: Option<Duration>, body: LagoError) -> Error {
    match status.as_u16() {
        401 => Error::Unauthorized,
        404 => Error::NotFound {
            resource: body
                .code
                .strip_suffix("_not_found")
                .unwrap_or("resource")
                .to_owned(),
            id: String::new(),
        },
        429 => Error::RateLimited { retry_after: reset },
        s if s >= 500 => Error::Unavailable(format!("Lago answered {status}")),
        s => Error::Rejected {
            status: s,
            code: body.code,
            message: body.error,
            details: body.error_details,
        },
    }
}

fn not_found_with(err: Error, id: &str) -> Error {
    match err {
        Error::NotFound { resource, .. } => Error::NotFound {
            resource,
            id: id.to_owned(),
        },
        other => other,
    }
}

fn event_json(event: &UsageEvent) -> Value {
    json!({
        "transaction_id": event.transaction_id,
        "external_subscription_id": event.external_subscription_id,
        "code": event.code,
        "timestamp": event.timestamp,
        "properties": event.properties,
    })
}

/// Indices of a batch's events the provider already had, and those it refused for good with the reason.
struct BatchErrors {
    duplicates: BTreeSet<usize>,
    rejected: Vec<(usize, String)>,
}

/// Splits a batch's 422 details into (duplicate indices, rejected indices with reasons); `None` when the
/// details are not keyed by event index (the whole request was refused).
fn split_batch_errors(details: &Value, len: usize) -> Option<BatchErrors> {
    let map = details.as_object().filter(|m| !m.is_empty())?;
    let mut duplicates = BTreeSet::new();
    let mut rejected = Vec::new();
    for (key, fields) in map {
        let index: usize = key.parse().ok().filter(|i| *i < len)?;
        let fields = fields.as_object()?;
        let only_duplicate = fields.len() == 1
            && fields
                .get("transaction_id")
                .and_then(Value::as_array)
                .is_some_and(|codes| codes.iter().all(|c| c == "value_already_exist") && !codes.is_empty());
        if only_duplicate {
            duplicates.insert(index);
        } else {
            rejected.push((index, Value::Object(fields.clone()).to_string()));
        }
    }
    Some(BatchErrors { duplicates, rejected })
}

fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn int_field(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or_default()
}

#[async_trait]
impl BillingProvider for LagoBilling {
    async fn upsert_customer(&self, ctx: &Ctx, customer: &BillingCustomer) -> Result<()> {
        let metadata: Vec<Value> = customer
            .metadata
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v, "display_in_invoice": false }))
            .collect();
        let mut body = Map::new();
        body.insert("external_id".into(), json!(customer.external_id));
        body.insert("name".into(), json!(customer.name));
        if let Some(email) = &customer.email {
            body.insert("email".into(), json!(email));
        }
        body.insert("metadata".into(), Value::Array(metadata));
        let url = self.url(&["customers"])?;
        self.call(ctx, Method::POST, url, Some(&json!({ "customer": body })))
            .await?;
        Ok(())
    }

    async fn assign_plan(&self, ctx: &Ctx, assignment: &PlanAssignment) -> Result<Subscription> {
        let body = json!({ "subscription": {
            "external_customer_id": assignment.external_customer_id,
            "plan_code": assignment.plan_code,
            "external_id": assignment.external_id,
        }});
        let url = self.url(&["subscriptions"])?;
        let answer = self
            .call(ctx, Method::POST, url, Some(&body))
            .await
            .map_err(|e| {
                let id = match &e {
                    Error::NotFound { resource, .. } if resource == "plan" => &assignment.plan_code,
                    _ => &assignment.external_customer_id,
                };
                not_found_with(e, id)
            })?;
        let sub = answer.get("subscription").cloned().unwrap_or_default();
        Ok(Subscription {
            external_id: str_field(&sub, "external_id"),
            external_customer_id: str_field(&sub, "external_customer_id"),
            plan_code: str_field(&sub, "plan_code"),
            status: str_field(&sub, "status"),
        })
    }

    async fn send_events(&self, ctx: &Ctx, events: &[UsageEvent]) -> Result<BatchOutcome> {
        check_batch(events)?;
        let url = self.url(&["events", "batch"])?;
        let mut outcome = BatchOutcome::default();
        let mut remaining: Vec<&UsageEvent> = events.iter().collect();
        // Each round removes at least one event, so this ends after at most `events.len()` rounds.
        while !remaining.is_empty() {
            let body = json!({ "events": remaining.iter().map(|e| event_json(e)).collect::<Vec<_>>() });
            match self.call(ctx, Method::POST, url.clone(), Some(&body)).await {
                Ok(_) => {
                    outcome
                        .accepted
                        .extend(remaining.iter().map(|e| e.transaction_id.clone()));
                    return Ok(outcome);
                }
                Err(Error::Rejected {
                    status: 422,
                    code,
                    message,
                    details,
                }) => {
                    let Some(BatchErrors { duplicates, rejected }) =
                        split_batch_errors(&details, remaining.len())
                    else {
                        return Err(Error::Rejected {
                            status: 422,
                            code,
                            message,
                            details,
                        });
                    };
                    let mut dropped = duplicates.clone();
                    for (index, reason) in rejected {
                        if let Some(event) = remaining.get(index) {
                            outcome.rejected.push(RejectedEvent {
                                transaction_id: event.transaction_id.clone(),
                                reason,
                            });
                        }
                        dropped.insert(index);
                    }
                    for index in &duplicates {
                        if let Some(event) = remaining.get(*index) {
                            outcome.duplicates.push(event.transaction_id.clone());
                        }
                    }
                    remaining = remaining
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !dropped.contains(i))
                        .map(|(_, e)| e)
                        .collect();
                }
                Err(other) => return Err(other),
            }
        }
        Ok(outcome)
    }

    async fn current_usage(&self, ctx: &Ctx, customer: &str, subscription: &str) -> Result<CurrentUsage> {
        let mut url = self.url(&["customers", customer, "current_usage"])?;
        url.query_pairs_mut()
            .append_pair("external_subscription_id", subscription);
        let answer = self
            .call(ctx, Method::GET, url, None)
            .await
            .map_err(|e| not_found_with(e, customer))?;
        let usage = answer.get("customer_usage").cloned().unwrap_or_default();
        let charges = usage
            .get("charges_usage")
            .and_then(Value::as_array)
            .map(|charges| {
                charges
                    .iter()
                    .map(|c| ChargeUsage {
                        metric_code: c
                            .pointer("/billable_metric/code")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        units: str_field(c, "units"),
                        events_count: c.get("events_count").and_then(Value::as_u64).unwrap_or_default(),
                        amount_cents: int_field(c, "amount_cents"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(CurrentUsage {
            from_datetime: str_field(&usage, "from_datetime"),
            to_datetime: str_field(&usage, "to_datetime"),
            currency: str_field(&usage, "currency"),
            amount_cents: int_field(&usage, "amount_cents"),
            total_amount_cents: int_field(&usage, "total_amount_cents"),
            charges,
        })
    }

    async fn list_invoices(
        &self,
        ctx: &Ctx,
        customer: &str,
        page: u32,
        per_page: u32,
    ) -> Result<InvoicePage> {
        check_page(page, per_page)?;
        let mut url = self.url(&["invoices"])?;
        url.query_pairs_mut()
            .append_pair("external_customer_id", customer)
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &per_page.to_string());
        let answer = self.call(ctx, Method::GET, url, None).await?;
        let invoices = answer
            .get("invoices")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|i| Invoice {
                        id: str_field(i, "lago_id"),
                        number: str_field(i, "number"),
                        status: str_field(i, "status"),
                        payment_status: str_field(i, "payment_status"),
                        currency: str_field(i, "currency"),
                        total_amount_cents: int_field(i, "total_amount_cents"),
                        issuing_date: str_field(i, "issuing_date"),
                        file_url: i.get("file_url").and_then(Value::as_str).map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let meta = answer.get("meta").cloned().unwrap_or_default();
        Ok(InvoicePage {
            invoices,
            page,
            next_page: meta
                .get("next_page")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
            total_count: meta
                .get("total_count")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
        })
    }
}

#[async_trait]
impl WebhookKeySource for LagoBilling {
    /// `GET /webhooks/json_public_key`: `{"webhook":{"public_key": base64(PEM)}}`.
    async fn public_key_pem(&self, ctx: &Ctx) -> Result<Vec<u8>> {
        let url = self.url(&["webhooks", "json_public_key"])?;
        let answer = self.call(ctx, Method::GET, url, None).await?;
        let encoded = answer
            .pointer("/webhook/public_key")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Unavailable("Lago's public key answer has no webhook.public_key".into()))?;
        // The base64 text may be wrapped over several lines.
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| Error::Config(format!("Lago's webhook public key is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_key() {
        let config = LagoConfig::new("http://lago:3000", "secret-key-123");
        assert!(!format!("{config:?}").contains("secret-key-123"));
        let client = LagoBilling::new(config).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{client:?}").contains("secret-key-123"));
    }

    #[test]
    fn batch_errors_split_into_duplicates_and_rejections() {
        let details = json!({
            "0": { "transaction_id": ["value_already_exist"] },
            "2": { "code": ["value_is_mandatory"] },
        });
        let errors = split_batch_errors(&details, 3);
        assert_eq!(
            errors
                .as_ref()
                .map(|e| e.duplicates.iter().copied().collect::<Vec<_>>()),
            Some(vec![0])
        );
        assert_eq!(errors.map(|e| e.rejected.len()), Some(1));
        assert!(split_batch_errors(&json!({ "events": ["too_many_events"] }), 3).is_none());
        assert!(
            split_batch_errors(&json!({ "7": { "transaction_id": ["value_already_exist"] } }), 3).is_none()
        );
    }
}
