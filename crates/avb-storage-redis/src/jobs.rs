//! [`RedisJobQueue`]: the job-queue port (spec §11) on Redis Streams with a consumer group.

use crate::link::Link;
use async_trait::async_trait;
use avb_core::jobs::{Job, JobQueue, JobState, NewJob};
use avb_core::{Clock, Ctx, Error, JobId, Result, StorageScope, TenantId, UuidV7Ids};
use chrono::{DateTime, Utc};
use redis::Script;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long done and failed jobs stay readable with `get` before Redis drops them.
const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Expired leases looked at per kind and reservation (a tenant-scoped reserve may skip other tenants' ones).
const LEASE_SCAN: usize = 64;

/// Shared by the scripts: key names, derived from the prefix `J` the way [`Keys`] derives them in Rust.
const KEYS_LUA: &str = r#"
local J = ARGV[1]
local function job_key(id) return J .. ':job:' .. id end
local function due_key(kind) return J .. ':due:' .. kind end
local function due_of_key(owner, kind) return J .. ':due-of:' .. owner .. ':' .. kind end
local function stream_key(kind) return J .. ':stream:' .. kind end
local function leases_key(kind) return J .. ':leases:' .. kind end
local function owner_of(tenant) if tenant == '' then return 'platform' else return tenant end end
"#;

/// ARGV: J, id, kind, tenant ('' = platform), payload, max_attempts, run_at µs, created_at µs.
const ENQUEUE: &str = r#"
local id, kind, tenant, run_at = ARGV[2], ARGV[3], ARGV[4], ARGV[7]
redis.call('HSET', job_key(id), 'id', id, 'kind', kind, 'tenant', tenant, 'payload', ARGV[5],
  'state', 'queued', 'attempts', 0, 'max_attempts', ARGV[6], 'run_at', run_at, 'lease_until', '',
  'created_at', ARGV[8], 'entry', '')
redis.call('ZADD', due_key(kind), run_at, id)
redis.call('ZADD', due_of_key(owner_of(tenant), kind), run_at, id)
return 1
"#;

/// Picks the runnable job that has been ready longest (queued: since `run_at`; running: since its lease
/// expired) among `kinds` in scope, and hands it to `consumer`: a queued job is appended to its kind's stream
/// and read by the consumer group (`XADD` + `XREADGROUP`), a stalled one is claimed from the group's pending
/// list (`XCLAIM`). An expired lease on the last attempt marks the job failed instead.
///
/// ARGV: J, now µs, lease µs, consumer, owner ('' = every tenant), retention ms, kinds…
/// Returns the job's fields (HGETALL), or an empty array.
const RESERVE: &str = r#"
local now, lease, consumer, owner, retention = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]

local function pick()
  local best = nil
  for i = 7, #ARGV do
    local kind = ARGV[i]
    local due = owner == '' and due_key(kind) or due_of_key(owner, kind)
    local head = redis.call('ZRANGE', due, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
    if head[1] and (best == nil or tonumber(head[2]) < best.at) then
      best = { id = head[1], at = tonumber(head[2]), kind = kind, stalled = false }
    end
    local expired = redis.call('ZRANGE', leases_key(kind), '-inf', now, 'BYSCORE', 'LIMIT', 0, ARGV_LEASE_SCAN, 'WITHSCORES')
    for j = 1, #expired, 2 do
      local id = expired[j]
      if owner == '' or owner_of(redis.call('HGET', job_key(id), 'tenant') or '') == owner then
        local at = tonumber(expired[j + 1])
        if best == nil or at < best.at then best = { id = id, at = at, kind = kind, stalled = true } end
        break
      end
    end
  end
  return best
end

while true do
  local best = pick()
  if best == nil then return {} end
  local jk = job_key(best.id)
  local stream = stream_key(best.kind)
  local f = redis.call('HMGET', jk, 'tenant', 'attempts', 'max_attempts', 'entry')
  if best.stalled and tonumber(f[2]) >= tonumber(f[3]) then
    -- Its last attempt's lease ran out: no attempt is left to hand out.
    redis.call('XACK', stream, 'workers', f[4])
    redis.call('XDEL', stream, f[4])
    redis.call('ZREM', leases_key(best.kind), best.id)
    redis.call('HSET', jk, 'state', 'failed', 'lease_until', '', 'entry', '')
    if redis.call('HEXISTS', jk, 'last_error') == 0 then
      redis.call('HSET', jk, 'last_error', 'lease expired on the last attempt')
    end
    redis.call('PEXPIRE', jk, retention)
  else
    local entry = nil
    if best.stalled then
      local claimed = redis.call('XCLAIM', stream, 'workers', consumer, 0, f[4])
      if claimed[1] then entry = f[4] end
    else
      redis.call('ZREM', due_key(best.kind), best.id)
      redis.call('ZREM', due_of_key(owner_of(f[1]), best.kind), best.id)
    end
    if entry == nil then
      if redis.call('EXISTS', stream) == 0 then
        redis.call('XGROUP', 'CREATE', stream, 'workers', '$', 'MKSTREAM')
      end
      redis.call('XADD', stream, '*', 'job', best.id)
      local read = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', 1, 'STREAMS', stream, '>')
      entry = read[1][2][1][1]
    end
    local lease_until = now + lease
    redis.call('HSET', jk, 'state', 'running', 'lease_until', string.format('%.0f', lease_until), 'entry', entry)
    redis.call('HINCRBY', jk, 'attempts', 1)
    redis.call('ZADD', leases_key(best.kind), lease_until, best.id)
    return redis.call('HGETALL', jk)
  end
end
"#;

/// Settles a running job. ARGV: J, id, owner ('' = every tenant), outcome ('done' | 'fail'), retention ms,
/// now µs, retry_in µs, error. Returns {status, state}: status 'ok', 'not_found' or 'conflict'.
const SETTLE: &str = r#"
local id, owner, outcome, retention = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local jk = job_key(id)
if redis.call('EXISTS', jk) == 0 then return { 'not_found', '' } end
local f = redis.call('HMGET', jk, 'tenant', 'state', 'kind', 'entry', 'attempts', 'max_attempts')
if owner ~= '' and owner_of(f[1]) ~= owner then return { 'not_found', '' } end
if f[2] ~= 'running' then return { 'conflict', f[2] } end
local stream = stream_key(f[3])
redis.call('XACK', stream, 'workers', f[4])
redis.call('XDEL', stream, f[4])
redis.call('ZREM', leases_key(f[3]), id)
redis.call('HSET', jk, 'lease_until', '', 'entry', '')
if outcome == 'done' then
  redis.call('HSET', jk, 'state', 'done')
  redis.call('PEXPIRE', jk, retention)
  return { 'ok', 'done' }
end
redis.call('HSET', jk, 'last_error', ARGV[8])
if tonumber(f[5]) >= tonumber(f[6]) then
  redis.call('HSET', jk, 'state', 'failed')
  redis.call('PEXPIRE', jk, retention)
  return { 'ok', 'failed' }
end
local run_at = string.format('%.0f', tonumber(ARGV[6]) + tonumber(ARGV[7]))
redis.call('HSET', jk, 'state', 'queued', 'run_at', run_at)
redis.call('ZADD', due_key(f[3]), run_at, id)
redis.call('ZADD', due_of_key(owner_of(f[1]), f[3]), run_at, id)
return { 'ok', 'queued' }
"#;

/// A durable, at-least-once job queue on Redis Streams.
///
/// # Layout (`J` = `{prefix}:jobs`)
/// - `J:job:{id}`: a hash per job (kind, tenant, payload, state, attempts, run_at, lease, last error, stream
///   entry), so `get` works in every state. Done and failed jobs expire after the retention (7 days default).
/// - `J:due:{kind}` and `J:due-of:{tenant|platform}:{kind}`: sorted sets of queued jobs by `run_at`: the
///   schedule for delayed jobs and retries, and the index that gives "oldest `run_at` first" across tenants
///   or within one tenant's scope. Every job enters here, even one due now: a stream is FIFO by append, and
///   a job enqueued with an earlier `run_at` after another must still run first.
/// - `J:stream:{kind}` with consumer group `workers`: the delivery log. Reserving moves the chosen job into
///   the stream and reads it through the group (`XADD` + `XREADGROUP` in one script), so the group's pending
///   entries list is exactly the set of jobs in flight, per consumer (one consumer name per queue instance),
///   with delivery counts: `XPENDING`/`XINFO` show who holds what. `ack` is `XACK` (+ `XDEL`); `fail` acks and
///   puts the job back on the schedule at `now + retry_in`, or marks it failed after `max_attempts`.
/// - `J:leases:{kind}`: lease expiry per running job. A job whose lease ran out is reclaimed by the next
///   reservation with `XCLAIM` (at-least-once). `XAUTOCLAIM` is not used because its idle threshold is the
///   reclaiming caller's argument, while leases are chosen per reservation by the holder.
///
/// Every state change is one Lua script, so concurrent workers on any number of replicas never get the same
/// reservation. Times come from the [`Clock`] port (all replicas need synchronised clocks, as for `run_at`
/// itself). Tenant scope: platform jobs (no tenant) are visible only to cross-tenant contexts; a tenant
/// context sees, reserves and settles only its own.
#[derive(Clone)]
pub struct RedisJobQueue {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    clock: Arc<dyn Clock>,
    consumer: String,
    retention: Duration,
    enqueue: Script,
    reserve: Script,
    settle: Script,
}

impl std::fmt::Debug for RedisJobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJobQueue")
            .field("prefix", &self.inner.link.prefix())
            .field("consumer", &self.inner.consumer)
            .field("retention", &self.inner.retention)
            .finish_non_exhaustive()
    }
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn micros_of(d: Duration) -> Result<i64> {
    i64::try_from(d.as_micros()).map_err(|_| Error::invalid("duration", "range", "is too long"))
}

/// The `owner` argument of the scripts: the scope's tenant, or '' for every tenant.
fn owner(scope: StorageScope) -> String {
    match scope {
        StorageScope::Tenant(t) => t.to_string(),
        StorageScope::AllTenants => String::new(),
    }
}

fn visible(scope: StorageScope, tenant: Option<TenantId>) -> bool {
    match (scope, tenant) {
        (StorageScope::AllTenants, _) => true,
        (StorageScope::Tenant(s), Some(t)) => s == t,
        (StorageScope::Tenant(_), None) => false,
    }
}

fn corrupt(id: &str, what: &str) -> Error {
    Error::Internal(format!("job {id} is stored with a bad {what}"))
}

/// Rebuilds a job from its hash.
fn job_from(fields: &HashMap<String, String>) -> Result<Job> {
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let id_text = field("id");
    let id = uuid::Uuid::parse_str(id_text)
        .map(JobId)
        .map_err(|_| corrupt(id_text, "id"))?;
    let time = |name: &str| -> Result<Option<DateTime<Utc>>> {
        match field(name) {
            "" => Ok(None),
            raw => raw
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .map(Some)
                .ok_or_else(|| corrupt(id_text, name)),
        }
    };
    let number = |name: &str| field(name).parse::<u32>().map_err(|_| corrupt(id_text, name));
    let tenant_id = match field("tenant") {
        "" => None,
        raw => Some(
            uuid::Uuid::parse_str(raw)
                .map(TenantId)
                .map_err(|_| corrupt(id_text, "tenant"))?,
        ),
    };
    let state = match field("state") {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "done" => JobState::Done,
        "failed" => JobState::Failed,
        _ => return Err(corrupt(id_text, "state")),
    };
    Ok(Job {
        id,
        kind: field("kind").to_owned(),
        tenant_id,
        payload: serde_json::from_str(field("payload")).map_err(|_| corrupt(id_text, "payload"))?,
        state,
        attempts: number("attempts")?,
        max_attempts: number("max_attempts")?,
        run_at: time("run_at")?.ok_or_else(|| corrupt(id_text, "run_at"))?,
        lease_until: time("lease_until")?,
        last_error: fields.get("last_error").cloned(),
        created_at: time("created_at")?.ok_or_else(|| corrupt(id_text, "created_at"))?,
    })
}

impl RedisJobQueue {
    pub(crate) fn new(link: Link, clock: Arc<dyn Clock>) -> Self {
        let script = |body: &str| Script::new(&format!("{KEYS_LUA}\n{body}"));
        let reserve = RESERVE.replace("ARGV_LEASE_SCAN", &LEASE_SCAN.to_string());
        Self {
            inner: Arc::new(Inner {
                link,
                clock,
                consumer: format!("avb-{}", uuid::Uuid::new_v4()),
                retention: DEFAULT_RETENTION,
                enqueue: script(ENQUEUE),
                reserve: script(&reserve),
                settle: script(SETTLE),
            }),
        }
    }

    /// Names this queue's consumer in the stream groups (default `avb-<uuid v4>`, one per instance); a
    /// replica's stable name (its hostname) makes `XPENDING` output readable. Call before sharing the queue.
    #[must_use]
    pub fn with_consumer_name(self, name: impl Into<String>) -> Self {
        self.rebuilt(|inner| inner.consumer = name.into())
    }

    /// How long done and failed jobs stay readable (default 7 days).
    #[must_use]
    pub fn with_retention(self, retention: Duration) -> Self {
        self.rebuilt(|inner| inner.retention = retention.max(Duration::from_millis(1)))
    }

    /// This instance's consumer name in the stream groups.
    pub fn consumer_name(&self) -> &str {
        &self.inner.consumer
    }

    fn rebuilt(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            link: self.inner.link.clone(),
            clock: self.inner.clock.clone(),
            consumer: self.inner.consumer.clone(),
            retention: self.inner.retention,
            enqueue: self.inner.enqueue.clone(),
            reserve: self.inner.reserve.clone(),
            settle: self.inner.settle.clone(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    fn jobs_prefix(&self) -> String {
        self.inner.link.key("jobs")
    }

    /// The key of a kind's stream (for diagnostics: `XPENDING`, `XINFO`).
    pub fn stream_key(&self, kind: &str) -> String {
        format!("{}:stream:{kind}", self.jobs_prefix())
    }

    fn retention_ms(&self) -> u64 {
        u64::try_from(self.inner.retention.as_millis()).unwrap_or(u64::MAX)
    }

    async fn settle(
        &self,
        ctx: &Ctx,
        id: JobId,
        outcome: &str,
        retry_in: Duration,
        error: &str,
    ) -> Result<JobState> {
        let scope = ctx.storage_scope()?;
        let now = micros(self.inner.clock.now());
        let (status, state): (String, String) = self
            .inner
            .link
            .script(
                ctx,
                self.inner
                    .settle
                    .arg(self.jobs_prefix())
                    .arg(id.to_string())
                    .arg(owner(scope))
                    .arg(outcome)
                    .arg(self.retention_ms())
                    .arg(now)
                    .arg(micros_of(retry_in)?)
                    .arg(error),
            )
            .await?;
        match (status.as_str(), state.as_str()) {
            ("ok", "done") => Ok(JobState::Done),
            ("ok", "failed") => Ok(JobState::Failed),
            ("ok", "queued") => Ok(JobState::Queued),
            ("not_found", _) => Err(Error::not_found("job", id)),
            ("conflict", state) => Err(Error::conflict(
                "job",
                format!("job {id} is not running (it is {state})"),
            )),
            _ => Err(Error::Internal(format!(
                "unexpected settle result {status}/{state}"
            ))),
        }
    }
}

#[async_trait]
impl JobQueue for RedisJobQueue {
    async fn enqueue(&self, ctx: &Ctx, job: NewJob) -> Result<JobId> {
        let scope = ctx.storage_scope()?;
        if !visible(scope, job.tenant_id) {
            return Err(Error::not_found(
                "tenant",
                job.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
            ));
        }
        if job.max_attempts == 0 {
            return Err(Error::invalid("max_attempts", "range", "must be at least 1"));
        }
        if job.kind.is_empty() {
            return Err(Error::invalid("kind", "required", "a job needs a kind"));
        }
        let now = self.inner.clock.now();
        let id = JobId::generate(&UuidV7Ids);
        let payload = serde_json::to_string(&job.payload)
            .map_err(|e| Error::Internal(format!("payload does not serialise: {e}")))?;
        let _: i64 = self
            .inner
            .link
            .script(
                ctx,
                self.inner
                    .enqueue
                    .arg(self.jobs_prefix())
                    .arg(id.to_string())
                    .arg(&job.kind)
                    .arg(job.tenant_id.map(|t| t.to_string()).unwrap_or_default())
                    .arg(payload)
                    .arg(job.max_attempts)
                    .arg(micros(job.run_at.unwrap_or(now)))
                    .arg(micros(now)),
            )
            .await?;
        Ok(id)
    }

    async fn reserve(&self, ctx: &Ctx, kinds: &[&str], lease: Duration) -> Result<Option<Job>> {
        let scope = ctx.storage_scope()?;
        if kinds.is_empty() {
            return Ok(None);
        }
        let lease = micros_of(lease)?;
        let now = micros(self.inner.clock.now());
        let mut invocation = self.inner.reserve.arg(self.jobs_prefix());
        invocation
            .arg(now)
            .arg(lease)
            .arg(&self.inner.consumer)
            .arg(owner(scope))
            .arg(self.retention_ms());
        for kind in kinds {
            invocation.arg(*kind);
        }
        let fields: HashMap<String, String> = self.inner.link.script(ctx, &invocation).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        job_from(&fields).map(Some)
    }

    async fn ack(&self, ctx: &Ctx, id: JobId) -> Result<()> {
        self.settle(ctx, id, "done", Duration::ZERO, "").await.map(|_| ())
    }

    async fn fail(&self, ctx: &Ctx, id: JobId, error: &str, retry_in: Duration) -> Result<JobState> {
        self.settle(ctx, id, "fail", retry_in, error).await
    }

    async fn get(&self, ctx: &Ctx, id: JobId) -> Result<Job> {
        let scope = ctx.storage_scope()?;
        let key = format!("{}:job:{id}", self.jobs_prefix());
        let fields: HashMap<String, String> =
            self.inner.link.query(ctx, redis::cmd("HGETALL").arg(key)).await?;
        if fields.is_empty() {
            return Err(Error::not_found("job", id));
        }
        let job = job_from(&fields)?;
        if visible(scope, job.tenant_id) {
            Ok(job)
        } else {
            Err(Error::not_found("job", id))
        }
    }
}
