//! [`MemoryBilling`]: an in-memory billing provider, first-class for tests and the embedded server.
//!
//! It keeps the semantics the port promises (upserts, one subscription per external id, duplicates by
//! transaction id, usage summed per metric) without prices: every amount is 0 and its period never closes, so
//! current usage covers every accepted event of the subscription. Cloning shares the state.

use crate::model::{
    BatchOutcome, BillingCustomer, ChargeUsage, CurrentUsage, Invoice, InvoicePage, PlanAssignment,
    Subscription, UsageEvent, plan_code,
};
use crate::provider::{BillingProvider, check_batch, check_page};
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::Ctx;
use avb_tenancy::model::TenantTier;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
struct State {
    plans: BTreeSet<String>,
    customers: BTreeMap<String, BillingCustomer>,
    subscriptions: BTreeMap<String, Subscription>,
    events: BTreeMap<String, UsageEvent>,
    invoices: BTreeMap<String, Vec<Invoice>>,
}

/// The in-memory billing provider.
#[derive(Debug, Clone)]
pub struct MemoryBilling {
    state: Arc<Mutex<State>>,
}

impl Default for MemoryBilling {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBilling {
    /// A provider that knows the plan of every tier (`plan_free`, `plan_starter`, `plan_pro`,
    /// `plan_enterprise`).
    pub fn new() -> Self {
        let plans = TenantTier::ALL.iter().map(|t| plan_code(*t)).collect();
        Self {
            state: Arc::new(Mutex::new(State {
                plans,
                ..State::default()
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a plan code.
    pub fn add_plan(&self, code: &str) {
        self.state().plans.insert(code.to_owned());
    }

    /// Adds an invoice to a customer (the memory provider never issues invoices itself).
    pub fn add_invoice(&self, customer: &str, invoice: Invoice) {
        self.state()
            .invoices
            .entry(customer.to_owned())
            .or_default()
            .push(invoice);
    }

    /// The stored customer.
    pub fn customer(&self, external_id: &str) -> Option<BillingCustomer> {
        self.state().customers.get(external_id).cloned()
    }

    /// The stored subscription.
    pub fn subscription(&self, external_id: &str) -> Option<Subscription> {
        self.state().subscriptions.get(external_id).cloned()
    }

    /// Every accepted event.
    pub fn events(&self) -> Vec<UsageEvent> {
        self.state().events.values().cloned().collect()
    }
}

/// A property value as a number of thousandths (integers, and decimal strings with up to 3 decimals).
fn thousandths(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(|i| i128::from(i) * 1000),
        Value::String(s) => {
            let (whole, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
            if frac.len() > 3 || whole.is_empty() {
                return None;
            }
            let whole: i128 = whole.parse().ok()?;
            let frac: i128 = format!("{frac:0<3}").parse().ok()?;
            Some(whole * 1000 + frac)
        }
        _ => None,
    }
}

fn decimal(thousandths: i128) -> String {
    let text = format!("{}.{:03}", thousandths / 1000, (thousandths % 1000).abs());
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[async_trait]
impl BillingProvider for MemoryBilling {
    async fn upsert_customer(&self, _ctx: &Ctx, customer: &BillingCustomer) -> Result<()> {
        if customer.external_id.is_empty() {
            return Err(avb_core::FieldErrors::single("external_id", "required", "must not be empty").into());
        }
        self.state()
            .customers
            .insert(customer.external_id.clone(), customer.clone());
        Ok(())
    }

    async fn assign_plan(&self, _ctx: &Ctx, assignment: &PlanAssignment) -> Result<Subscription> {
        let mut state = self.state();
        if !state.customers.contains_key(&assignment.external_customer_id) {
            return Err(Error::NotFound {
                resource: "customer".into(),
                id: assignment.external_customer_id.clone(),
            });
        }
        if !state.plans.contains(&assignment.plan_code) {
            return Err(Error::NotFound {
                resource: "plan".into(),
                id: assignment.plan_code.clone(),
            });
        }
        let subscription = Subscription {
            external_id: assignment.external_id.clone(),
            external_customer_id: assignment.external_customer_id.clone(),
            plan_code: assignment.plan_code.clone(),
            status: "active".into(),
        };
        state
            .subscriptions
            .insert(subscription.external_id.clone(), subscription.clone());
        Ok(subscription)
    }

    async fn send_events(&self, _ctx: &Ctx, events: &[UsageEvent]) -> Result<BatchOutcome> {
        check_batch(events)?;
        let mut state = self.state();
        let mut outcome = BatchOutcome::default();
        for event in events {
            if state.events.contains_key(&event.transaction_id) {
                outcome.duplicates.push(event.transaction_id.clone());
            } else {
                state.events.insert(event.transaction_id.clone(), event.clone());
                outcome.accepted.push(event.transaction_id.clone());
            }
        }
        Ok(outcome)
    }

    async fn current_usage(&self, _ctx: &Ctx, customer: &str, subscription: &str) -> Result<CurrentUsage> {
        let state = self.state();
        let owned = state
            .subscriptions
            .get(subscription)
            .is_some_and(|s| s.external_customer_id == customer);
        if !state.customers.contains_key(customer) {
            return Err(Error::NotFound {
                resource: "customer".into(),
                id: customer.to_owned(),
            });
        }
        if !owned {
            return Err(Error::NotFound {
                resource: "subscription".into(),
                id: subscription.to_owned(),
            });
        }
        // Per metric: the sum of its numeric property, or the event count when no property is numeric.
        let mut per_metric: BTreeMap<&str, (u64, Option<i128>)> = BTreeMap::new();
        for event in state
            .events
            .values()
            .filter(|e| e.external_subscription_id == subscription)
        {
            let entry = per_metric.entry(event.code.as_str()).or_default();
            entry.0 += 1;
            if let Some(value) = event.properties.values().find_map(thousandths) {
                entry.1 = Some(entry.1.unwrap_or(0) + value);
            }
        }
        let charges = per_metric
            .into_iter()
            .map(|(code, (count, sum))| ChargeUsage {
                metric_code: code.to_owned(),
                units: decimal(sum.unwrap_or(i128::from(count) * 1000)),
                events_count: count,
                amount_cents: 0,
            })
            .collect();
        Ok(CurrentUsage {
            from_datetime: "1970-01-01T00:00:00Z".into(),
            to_datetime: "9999-12-31T23:59:59Z".into(),
            currency: "USD".into(),
            amount_cents: 0,
            total_amount_cents: 0,
            charges,
        })
    }

    async fn list_invoices(
        &self,
        _ctx: &Ctx,
        customer: &str,
        page: u32,
        per_page: u32,
    ) -> Result<InvoicePage> {
        check_page(page, per_page)?;
        let state = self.state();
        let all = state.invoices.get(customer).cloned().unwrap_or_default();
        let total = all.len();
        let start = (page as usize - 1).saturating_mul(per_page as usize);
        let invoices: Vec<Invoice> = all
            .into_iter()
            .rev()
            .skip(start)
            .take(per_page as usize)
            .collect();
        let next_page = (start + invoices.len() < total).then_some(page + 1);
        Ok(InvoicePage {
            invoices,
            page,
            next_page,
            total_count: total as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_units_sum_exactly() {
        let a = thousandths(&Value::from("12.345")).unwrap_or_default();
        let b = thousandths(&Value::from("0.7")).unwrap_or_default();
        let c = thousandths(&Value::from(3)).unwrap_or_default();
        assert_eq!(decimal(a + b + c), "16.045");
        assert_eq!(decimal(2000), "2");
        assert_eq!(thousandths(&Value::from("completed")), None);
    }
}
