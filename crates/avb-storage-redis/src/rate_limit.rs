//! [`RedisRateLimiter`]: the rate-limiter port (spec §10.2) as one atomic Lua script per check, so every
//! replica counts against the same state.

use crate::link::Link;
use async_trait::async_trait;
use avb_core::rate_limit::{RateLimitDecision, RateLimitPolicy, RateLimiter};
use avb_core::{Clock, Ctx, Error, Result};
use redis::Script;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

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
/// `period * limit` <= 3.6e15, exact in a double. Only allowed requests write, to both windows at once.
///
/// One call decides `n` requests of the same key arriving together, exactly as `n` calls in a row at the same
/// instant would: request `i` (1-based) fits a window when `r + i·period <= burst`, so the first
/// `k = min(n, ⌊(burst − r) / period⌋ over both windows)` are allowed and the rest refused.
///
/// KEYS: state. ARGV: now in µs ('' = Redis `TIME`), per_minute, per_hour, n.
/// Returns {k, left, r_minute, reset_refused_us, retry_refused_us}: request `i <= k` has `left − i` remaining and
/// resets after `⌈(r_minute + i·period) / per_minute⌉` µs; a refused one resets after `reset_refused_us` and may
/// retry after `retry_refused_us`.
const CHECK: &str = r#"
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local limits = { tonumber(ARGV[2]), tonumber(ARGV[3]) }
local n = tonumber(ARGV[4])
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
local rel = {}
local k = n
local left = nil
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
  local cap = idiv(period * limit - r, period)
  if cap < 0 then cap = 0 end
  if cap < k then k = cap end
  if left == nil or cap < left then left = cap end
end
local after = {}
local retry = 0
local full_after = 0
for i = 1, 2 do
  after[i] = rel[i] + k * periods[i]
  local nxt = after[i] + periods[i]
  local burst = periods[i] * limits[i]
  if nxt > burst then
    local wait = ceil_div(nxt - burst, limits[i])
    if wait > retry then retry = wait end
  end
  local full = ceil_div(after[i], limits[i])
  if full > full_after then full_after = full end
end
if k > 0 then
  redis.call('HSET', KEYS[1], 'at', string.format('%.0f', now),
    'm', string.format('%.0f', after[1]), 'h', string.format('%.0f', after[2]))
  redis.call('PEXPIRE', KEYS[1], ceil_div(full_after, 1000) + 1)
end
return { k, left, rel[1], ceil_div(after[1], limits[1]), retry }
"#;

/// What one script call answered for a batch of requests of one key.
#[derive(Debug, Clone, Copy)]
struct Batch {
    allowed: u64,
    left: u64,
    minute_rel: u64,
    reset_refused_us: u64,
    retry_refused_us: u64,
}

impl Batch {
    /// The decision for the `i`-th request (1-based) of the batch.
    fn decision(&self, i: u64, policy: RateLimitPolicy) -> RateLimitDecision {
        if i <= self.allowed {
            let per_minute = u64::from(policy.per_minute.max(1));
            let next = self.minute_rel.saturating_add(i.saturating_mul(MINUTE_US));
            RateLimitDecision {
                allowed: true,
                limit: policy.per_minute,
                remaining: u32::try_from(self.left.saturating_sub(i)).unwrap_or(u32::MAX),
                reset_after: Duration::from_micros(next.div_ceil(per_minute)),
                retry_after: None,
            }
        } else {
            RateLimitDecision {
                allowed: false,
                limit: policy.per_minute,
                remaining: 0,
                reset_after: Duration::from_micros(self.reset_refused_us),
                retry_after: Some(Duration::from_micros(self.retry_refused_us)),
            }
        }
    }
}

/// The minute window in µs (the script's `periods[1]`).
const MINUTE_US: u64 = 60_000_000;

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

/// A request waiting for the batch call of its key.
type Waiter = oneshot::Sender<Result<RateLimitDecision>>;

struct Inner {
    /// Per Redis key with a call in flight: the requests that arrived meanwhile.
    pending: Mutex<HashMap<String, Vec<Waiter>>>,
    round_trips: AtomicU64,
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
                pending: Mutex::default(),
                round_trips: AtomicU64::new(0),
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
        // Requests of one key that arrive while a call for it is in flight wait and are decided together by the
        // next call (one round trip for the lot, the same decisions as one call each at that instant).
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let lead = {
            let mut pending = self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            match pending.get_mut(&state) {
                Some(waiting) => {
                    waiting.extend(tx.take());
                    false
                }
                None => {
                    pending.insert(state.clone(), Vec::new());
                    true
                }
            }
        };
        if lead {
            // The calls run on their own task, so a caller that gives up cannot strand the others.
            let this = self.clone();
            let ctx = ctx.clone();
            let first: Vec<Waiter> = tx.into_iter().collect();
            tokio::spawn(async move { this.decide_waiting(ctx, state, policy, first).await });
        }
        let decided = rx
            .await
            .unwrap_or_else(|_| Err(Error::unavailable("redis", "the rate-limit batch was dropped")));
        match decided {
            Ok(decision) => Ok(Checked {
                decision,
                failed_open: false,
            }),
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

    /// Script calls made so far (one per batch of concurrent requests of a key): how well coalescing works.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// One script call deciding `n` requests of the Redis key `state`.
    async fn call(&self, ctx: &Ctx, state: &str, policy: RateLimitPolicy, n: usize) -> Result<Batch> {
        let now = match &self.inner.clock {
            WindowClock::Server => String::new(),
            WindowClock::Port(clock) => clock.now().timestamp_micros().to_string(),
        };
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        let (allowed, left, minute_rel, reset_refused_us, retry_refused_us) = self
            .inner
            .link
            .script_within::<(u64, u64, u64, u64, u64)>(
                ctx,
                self.inner.timeout,
                self.inner
                    .script
                    .key(state)
                    .arg(now)
                    .arg(policy.per_minute)
                    .arg(policy.per_hour)
                    .arg(n),
            )
            .await?;
        Ok(Batch {
            allowed,
            left,
            minute_rel,
            reset_refused_us,
            retry_refused_us,
        })
    }

    /// The requests that queued behind the call in flight for `state`; none left means no call is in flight
    /// any more (the next request leads).
    fn take_waiting(&self, state: &str) -> Vec<Waiter> {
        let mut pending = self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.get_mut(state) {
            Some(waiting) if !waiting.is_empty() => std::mem::take(waiting),
            _ => {
                pending.remove(state);
                Vec::new()
            }
        }
    }

    /// Decides queued requests in batches until none are left.
    async fn decide_waiting(
        self,
        ctx: Ctx,
        state: String,
        policy: RateLimitPolicy,
        mut waiting: Vec<Waiter>,
    ) {
        // Each call gets the limiter's own decision timeout: the batch serves callers other than the one whose
        // context it carries (for its request id in logs), so that caller's deadline must not cut it short.
        let ctx = ctx.with_deadline(None);
        while !waiting.is_empty() {
            let batch = self.call(&ctx, &state, policy, waiting.len()).await;
            for (i, waiter) in (1u64..).zip(waiting) {
                let answer = match &batch {
                    Ok(batch) => Ok(batch.decision(i, policy)),
                    // Each waiter gets its own copy of the failure, of the same class (temporary or not).
                    Err(err) if err.is_temporary() => Err(Error::unavailable("redis", err.to_string())),
                    Err(err) => Err(Error::Internal(err.to_string())),
                };
                // A waiter whose request was dropped no longer listens; its slot was counted all the same, as
                // a request that reached the limiter is.
                let _ = waiter.send(answer);
            }
            waiting = self.take_waiting(&state);
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
