//! Rate-limiter port (spec §10.2): per IP, per user, per API key; per minute and per hour.

use crate::ctx::Ctx;
use crate::error::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Requests allowed per minute and per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateLimitPolicy {
    /// Requests per minute.
    pub per_minute: u32,
    /// Requests per hour.
    pub per_hour: u32,
}

impl RateLimitPolicy {
    /// Spec `DEFAULT`: unauthenticated callers, by IP.
    pub const DEFAULT: Self = Self {
        per_minute: 60,
        per_hour: 1000,
    };
    /// Spec `API_KEY`: API keys and ordinary users.
    pub const API_KEY: Self = Self {
        per_minute: 120,
        per_hour: 5000,
    };
    /// Spec `ADMIN`: sysadmins (and elevated keys).
    pub const ADMIN: Self = Self {
        per_minute: 300,
        per_hour: 10000,
    };
}

/// The outcome of one check, with what the `X-RateLimit-*` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitDecision {
    /// Whether the request may proceed (it was counted if so).
    pub allowed: bool,
    /// `X-RateLimit-Limit`: the per-minute limit.
    pub limit: u32,
    /// `X-RateLimit-Remaining`: requests left in the tighter of the two windows.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: time until the per-minute window resets.
    pub reset_after: Duration,
    /// When denied, how long to wait before a retry can succeed.
    pub retry_after: Option<Duration>,
}

/// Counts requests against a policy, keyed by caller (`ip:…`, `user:…`, `api_key:…`).
///
/// # Contract
/// - A fresh key gets a burst of at most `per_minute` requests, and capacity comes back at `per_minute` per
///   minute (token-bucket adapters refill continuously; fixed-window adapters reset at the window edge — either
///   way no more than `2 × per_minute` pass in any 60 s span). The same holds per hour with `per_hour`.
///   Denied requests are not counted in either window.
/// - Keys are independent: traffic on one key never changes another's decision.
/// - `remaining` reports the tighter of the two windows and is 0 when denied.
/// - `retry_after` is set exactly when `allowed` is false and is at most one hour.
#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug + 'static {
    /// Counts one request for `key` under `policy`.
    async fn check(&self, ctx: &Ctx, key: &str, policy: RateLimitPolicy) -> Result<RateLimitDecision>;
}
