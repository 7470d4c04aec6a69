//! [`RetryingBillingProvider`]: retries what a retry may cure, with jittered exponential back-off.
//!
//! Retrying is safe for every call of the port: customers and subscriptions are upserts keyed by our ids, and
//! usage events carry deterministic transaction ids that the provider reports as duplicates on a resend. Only
//! [`crate::Error::is_temporary`] errors are retried (throttling, 5xx, timeouts, connection failures); any other 4xx is
//! returned at once. A throttled call waits exactly as long as the provider asked (`X-RateLimit-Reset`), unless
//! that is longer than [`RetryPolicy::max_rate_limit_wait`] or the context's deadline: then the error is returned
//! and the caller (the sync job) tries again on its next run.

use crate::Result;
use crate::model::{
    BatchOutcome, BillingCustomer, CurrentUsage, InvoicePage, PlanAssignment, Subscription, UsageEvent,
};
use crate::provider::BillingProvider;
use async_trait::async_trait;
use avb_core::Ctx;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How [`RetryingBillingProvider`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, including the first (default 5).
    pub max_attempts: u32,
    /// Back-off before the second attempt; doubles per attempt (default 200 ms).
    pub base_delay: Duration,
    /// Longest back-off (default 10 s).
    pub max_delay: Duration,
    /// Longest wait the provider may ask for on a 429 (default 60 s).
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Sets the attempts (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the first back-off and the longest one.
    #[must_use]
    pub fn delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// Sets the longest wait honoured on a 429.
    #[must_use]
    pub fn max_rate_limit_wait(mut self, wait: Duration) -> Self {
        self.max_rate_limit_wait = wait;
        self
    }

    /// The back-off before attempt `attempt + 1` (`attempt` ≥ 1): "equal jitter", half fixed and half random, so
    /// replicas throttled together do not retry in lock-step yet every wait grows.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(fastrand::u64(0..=jitter_ms))
    }
}

/// A [`BillingProvider`] decorator that retries temporary failures.
#[derive(Debug, Clone)]
pub struct RetryingBillingProvider {
    inner: Arc<dyn BillingProvider>,
    policy: RetryPolicy,
}

impl RetryingBillingProvider {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn BillingProvider>, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    async fn run<T, F, Fut>(&self, ctx: &Ctx, what: &'static str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let mut attempt = 1;
        loop {
            let err = match call().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if !err.is_temporary() || attempt >= self.policy.max_attempts {
                return Err(err);
            }
            let wait = match err.retry_after() {
                Some(asked) if asked > self.policy.max_rate_limit_wait => return Err(err),
                Some(asked) => asked,
                None => self.policy.backoff(attempt),
            };
            if let Some(left) = ctx.remaining()?
                && left <= wait
            {
                return Err(err);
            }
            tracing::debug!(call = what, attempt, wait_ms = wait.as_millis() as u64, error = %err, "billing: retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl BillingProvider for RetryingBillingProvider {
    async fn upsert_customer(&self, ctx: &Ctx, customer: &BillingCustomer) -> Result<()> {
        self.run(ctx, "upsert_customer", || {
            self.inner.upsert_customer(ctx, customer)
        })
        .await
    }

    async fn assign_plan(&self, ctx: &Ctx, assignment: &PlanAssignment) -> Result<Subscription> {
        self.run(ctx, "assign_plan", || self.inner.assign_plan(ctx, assignment))
            .await
    }

    async fn send_events(&self, ctx: &Ctx, events: &[UsageEvent]) -> Result<BatchOutcome> {
        self.run(ctx, "send_events", || self.inner.send_events(ctx, events))
            .await
    }

    async fn current_usage(&self, ctx: &Ctx, customer: &str, subscription: &str) -> Result<CurrentUsage> {
        self.run(ctx, "current_usage", || {
            self.inner.current_usage(ctx, customer, subscription)
        })
        .await
    }

    async fn list_invoices(
        &self,
        ctx: &Ctx,
        customer: &str,
        page: u32,
        per_page: u32,
    ) -> Result<InvoicePage> {
        self.run(ctx, "list_invoices", || {
            self.inner.list_invoices(ctx, customer, page, per_page)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let policy = RetryPolicy::default().delays(Duration::from_millis(100), Duration::from_millis(400));
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(policy.backoff(30) <= Duration::from_millis(400));
        }
        let distinct: std::collections::BTreeSet<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(distinct.len() > 1, "back-off is jittered");
    }
}
