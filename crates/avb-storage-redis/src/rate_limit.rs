//! [`RedisRateLimiter`]: the rate-limiter port (spec §10.2) as one atomic Lua script per check, so every
//! replica counts against the same state.

use crate::link::Link;
use async_trait::async_trait;
use avb_core::rate_limit::{RateLimitDecision, RateLimitPolicy, RateLimiter};
use avb_core::{Clock, Ctx, Error, Result};
use redis::Script;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a check may wait for Redis before the failure policy answers: a limiter slower than this costs
/// more latency than it saves.
const DEFAULT_DECISION_TIMEOUT: Duration = Duration::from_millis(250);
/// At most one "failing open/closed" warning per this interval, so an outage does not flood the logs.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Largest per-window limit: keeps every quantity of the script an exact integer in a Lua double (< 2^53).
const MAX_LIMIT: u32 = 1_000_000;

/// Both windows of one key, as GCRA in integer arithmetic.
///
/// State per key (a hash): `at`, the server time in µs of the last allowed request, and per window (`m`, `h`)
/// the theoretical arrival time minus `at`, scaled by the window's limit. Scaling makes the emission interval
/// (`period / limit`) an integer (`period`), and storing times relative to `at` keeps every value below
/// `period * limit` <= 3.6e15, exact in a double. Only an allowed request writes, to both windows at once.
///
/// KEYS: state. ARGV: now in µs ('' = Redis `TIME`), per_minute, per_hour.
/// Returns {allowed, remaining, reset_after_us, retry_after_us}.
const CHECK: &str = r#"
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local limits = { tonumber(ARGV[2]), tonumber(ARGV[3]) }
local periods = { 60000000, 3600000000 }
local state = redis.call('HMGET', KEYS[1], 'at', 'm', 'h')
local at = tonumber(state[1])

local function idiv(a, b)
  local q = math.floor(a / b)
  if (q + 1) * b <= a then q = q + 1 elseif q * b > a then q = q - 1 end
  return q
end
local function ceil_div(a, b)
  local q = idiv(a, b)
  if q * b < a then q = q + 1 end
  return q
end

local allowed = true
local rel, nxt, remaining = {}, {}, nil
local retry = 0
for i = 1, 2 do
  local limit, period = limits[i], periods[i]
  local r = 0
  local stored = tonumber(state[i + 1])
  if at ~= nil and stored ~= nil then
    local elapsed = now - at
    if elapsed < 0 then elapsed = 0 end
    if elapsed < period then
      r = stored - elapsed * limit
      if r < 0 then r = 0 end
    end
  end
  rel[i] = r
  nxt[i] = r + period
  local burst = period * limit
  if nxt[i] > burst then
    allowed = false
    local wait = ceil_div(nxt[i] - burst, limit)
    if wait > retry then retry = wait end
  else
    local left = idiv(burst - nxt[i], period)
    if remaining == nil or left < remaining then remaining = left end
  end
end

if allowed then
  redis.call('HSET', KEYS[1], 'at', string.format('%.0f', now),
    'm', string.format('%.0f', nxt[1]), 'h', string.format('%.0f', nxt[2]))
  local full_after = math.max(ceil_div(nxt[1], limits[1]), ceil_div(nxt[2], limits[2]))
  redis.call('PEXPIRE', KEYS[1], ceil_div(full_after, 1000) + 1)
  return { 1, remaining, ceil_div(nxt[1], limits[1]), 0 }
end
return { 0, 0, ceil_div(rel[1], limits[1]), retry }
"#;

/// What a check does when Redis cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Allow the request, uncounted: availability over protection.
    Open,
    /// Refuse with `service_unavailable` (HTTP 503): protection over availability.
    Closed,
}

/// A decision and whether it was counted, for callers that want to say so in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The decision, as [`RateLimiter::check`] returns it.
    pub decision: RateLimitDecision,
    /// True when Redis could not be asked and the key's policy was [`FailurePolicy::Open`]: the request was
    /// allowed without being counted (the edge can add e.g. `X-RateLimit-Status: degraded`).
    pub failed_open: bool,
}

/// Where "now" comes from.
#[derive(Debug, Clone)]
enum WindowClock {
    /// Redis `TIME`, inside the script: one clock for every replica, so windows agree across them.
    Server,
    /// A [`Clock`] port (tests move a `ManualClock`; all replicas must then share one clock).
    Port(Arc<dyn Clock>),
}

/// Cross-replica rate limits: GCRA ("leaky bucket as a meter") per key, per-minute and per-hour windows,
/// evaluated and updated by one Lua script per check, on Redis's clock.
///
/// # Algorithm and exactness
/// The same algorithm as the in-memory limiter, so the two adapters make the same decisions: each window lets
/// a fresh key burst up to its limit and then refills evenly (`per_minute` over a minute, `per_hour` over an
/// hour). A request is allowed only if both windows have room, and only allowed requests are counted, in both
/// windows atomically. Arithmetic is exact (integers in µs), so `remaining` and `retry_after` are exact: a retry
/// after `retry_after` succeeds, one before it does not. Like any bucket (and like fixed windows), the burst plus
/// the refill lets up to `2·limit − 1` requests through in one sliding minute in the worst case; a sliding log
/// would be exact at O(limit) memory per key, which per-hour limits of 10,000 make too costly. Compared with the
/// spec's fixed windows, GCRA has no boundary burst of `2·limit` within a second, and it stores one hash per
/// key that expires when both windows are full again.
///
/// `limit` is the per-minute limit, `remaining` the smaller of the two windows' remaining bursts and
/// `reset_after` the time until the minute window is full again. State lives at `{prefix}:rl:{pm}-{ph}:{key}`:
/// a caller whose policy changes starts the new policy's windows afresh.
///
/// # When Redis is down
/// Each check waits at most the decision timeout (default 250 ms, plus the caller's deadline). When Redis does
/// not answer, the key's [`FailurePolicy`] decides, chosen by the longest matching key prefix (see
/// [`RedisRateLimiterBuilder::failure_policy`]). Defaults:
///
/// | key prefix | policy | why |
/// | --- | --- | --- |
/// | `ip:` (unauthenticated, health) | open | refusing anonymous and probe traffic during a Redis outage would turn a cache outage into a full outage, and health checks must keep answering |
/// | `user:` (console sessions) | open | interactive users are few, authenticated, and need the console to work during an incident |
/// | `api_key:` | closed | programmatic traffic is where volume and cost are (LLM, TTS); unmetered keys during an outage are the abuse window limits exist to close |
/// | anything else | closed | an unknown caller class is treated like the most expensive one |
///
/// Fail-closed answers `Error::Unavailable` (`service_unavailable`, 503); fail-open answers an allowed
/// decision with `remaining == limit` and `reset_after == 0` (nothing was counted), and
/// [`RedisRateLimiter::check_detailed`] says `failed_open` so the edge can flag it in a header.
#[derive(Clone)]
pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    script: Script,
    rules: Vec<(String, FailurePolicy)>,
    fallback: FailurePolicy,
    timeout: Duration,
    clock: WindowClock,
    origin: tokio::time::Instant,
    last_warning_ms: AtomicU64,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.inner.link.prefix())
            .field("rules", &self.inner.rules)
            .field("fallback", &self.inner.fallback)
            .field("timeout", &self.inner.timeout)
            .field("clock", &self.inner.clock)
            .finish()
    }
}

/// Configures a [`RedisRateLimiter`]; made by [`RedisStore::rate_limiter_builder`](crate::RedisStore::rate_limiter_builder).
#[derive(Debug, Clone)]
pub struct RedisRateLimiterBuilder {
    link: Link,
    rules: Vec<(String, FailurePolicy)>,
    fallback: FailurePolicy,
    timeout: Duration,
    clock: WindowClock,
}

impl RedisRateLimiterBuilder {
    pub(crate) fn new(link: Link) -> Self {
        Self {
            link,
            rules: vec![
                ("ip:".to_owned(), FailurePolicy::Open),
                ("user:".to_owned(), FailurePolicy::Open),
                ("api_key:".to_owned(), FailurePolicy::Closed),
            ],
            fallback: FailurePolicy::Closed,
            timeout: DEFAULT_DECISION_TIMEOUT,
            clock: WindowClock::Server,
        }
    }

    /// The policy for keys starting with `prefix` (the caller class: `ip:`, `user:`, `api_key:`, or any other);
    /// replaces an existing rule for the same prefix. The longest matching prefix wins.
    #[must_use]
    pub fn failure_policy(mut self, prefix: impl Into<String>, policy: FailurePolicy) -> Self {
        let prefix = prefix.into();
        self.rules.retain(|(p, _)| *p != prefix);
        self.rules.push((prefix, policy));
        self
    }

    /// The policy for keys no rule matches (default closed).
    #[must_use]
    pub fn fallback_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.fallback = policy;
        self
    }

    /// How long one check may wait for Redis (default 250 ms).
    #[must_use]
    pub fn decision_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads "now" from `clock` instead of Redis `TIME`. Every replica must then share one clock; meant for
    /// tests that move a `ManualClock` through minutes and hours.
    #[must_use]
    pub fn window_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = WindowClock::Port(clock);
        self
    }

    /// The limiter.
    pub fn build(mut self) -> RedisRateLimiter {
        // Longest prefix first, so the first match is the most specific.
        self.rules
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        RedisRateLimiter {
            inner: Arc::new(Inner {
                link: self.link,
                script: Script::new(CHECK),
                rules: self.rules,
                fallback: self.fallback,
                timeout: self.timeout,
                clock: self.clock,
                origin: tokio::time::Instant::now(),
                last_warning_ms: AtomicU64::new(u64::MAX),
            }),
        }
    }
}

fn validate(policy: RateLimitPolicy) -> Result<()> {
    for (field, limit) in [("per_minute", policy.per_minute), ("per_hour", policy.per_hour)] {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::invalid(
                field,
                "range",
                format!("a rate limit must allow between 1 and {MAX_LIMIT} requests"),
            ));
        }
    }
    Ok(())
}

impl RedisRateLimiter {
    /// The failure policy that applies to `key`.
    pub fn failure_policy_for(&self, key: &str) -> FailurePolicy {
        self.inner
            .rules
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix.as_str()))
            .map_or(self.inner.fallback, |(_, policy)| *policy)
    }

    /// Like [`RateLimiter::check`], also telling whether the decision failed open.
    ///
    /// # Errors
    /// `validation_error` for a policy allowing 0 or more than 1,000,000 requests per window;
    /// `service_unavailable` when Redis cannot answer and the key's policy is closed.
    pub async fn check_detailed(&self, ctx: &Ctx, key: &str, policy: RateLimitPolicy) -> Result<Checked> {
        validate(policy)?;
        let state = self
            .inner
            .link
            .key(&format!("rl:{}-{}:{key}", policy.per_minute, policy.per_hour));
        let now = match &self.inner.clock {
            WindowClock::Server => String::new(),
            WindowClock::Port(clock) => clock.now().timestamp_micros().to_string(),
        };
        let counted = self
            .inner
            .link
            .script_within::<(u8, u32, u64, u64)>(
                ctx,
                self.inner.timeout,
                self.inner
                    .script
                    .key(state)
                    .arg(now)
                    .arg(policy.per_minute)
                    .arg(policy.per_hour),
            )
            .await;
        match counted {
            Ok((allowed, remaining, reset_us, retry_us)) => {
                let allowed = allowed == 1;
                Ok(Checked {
                    decision: RateLimitDecision {
                        allowed,
                        limit: policy.per_minute,
                        remaining,
                        reset_after: Duration::from_micros(reset_us),
                        retry_after: (!allowed).then(|| Duration::from_micros(retry_us)),
                    },
                    failed_open: false,
                })
            }
            Err(err) if err.is_temporary() => {
                let policy_for_key = self.failure_policy_for(key);
                self.warn_degraded(&err, policy_for_key);
                match policy_for_key {
                    FailurePolicy::Open => Ok(Checked {
                        decision: RateLimitDecision {
                            allowed: true,
                            limit: policy.per_minute,
                            remaining: policy.per_minute,
                            reset_after: Duration::ZERO,
                            retry_after: None,
                        },
                        failed_open: true,
                    }),
                    FailurePolicy::Closed => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    fn warn_degraded(&self, err: &Error, policy: FailurePolicy) {
        let now_ms = u64::try_from(self.inner.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.inner.last_warning_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_ms.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .inner
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %err, ?policy, "rate limiter cannot reach redis; applying the failure policy");
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, ctx: &Ctx, key: &str, policy: RateLimitPolicy) -> Result<RateLimitDecision> {
        self.check_detailed(ctx, key, policy).await.map(|c| c.decision)
    }
}
