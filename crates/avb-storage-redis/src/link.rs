//! The shared connection every adapter of one store talks through, with the bounded-time call and the mapping of
//! driver errors onto the core error (style §2.3: driver errors never leave this crate).

use avb_core::{Ctx, Error, Result};
use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RetryMethod, ScriptInvocation};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The `backend` named in `unavailable` errors (shown as `details.dependency`).
pub(crate) const BACKEND: &str = "redis";

/// One multiplexed, self-reconnecting connection plus the key prefix and time bound all adapters share.
#[derive(Clone)]
pub(crate) struct Link {
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Maps a driver error inward: anything a retry or reconnect may cure (IO, timeouts, dropped connections,
/// loading, failover) is `unavailable`; the rest (a script bug, a wrong type) is `internal`.
pub(crate) fn map_err(err: RedisError) -> Error {
    match err.retry_method() {
        RetryMethod::NoRetry => Error::Internal(format!("redis: {err}")),
        _ => Error::unavailable(BACKEND, err),
    }
}

fn timed_out(what: &str, after: Duration) -> Error {
    Error::unavailable(BACKEND, format!("{what} did not complete within {after:?}"))
}

impl Link {
    pub(crate) fn new(conn: ConnectionManager, prefix: &str, timeout: Duration) -> Self {
        Self {
            conn,
            prefix: Arc::from(prefix),
            timeout,
        }
    }

    /// The configured key prefix (`avb`).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}:{rest}`.
    pub(crate) fn key(&self, rest: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 1 + rest.len());
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(rest);
        key
    }

    /// A handle on the shared connection (cheap: the manager is an `Arc`).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs `fut` within the command timeout and the caller's deadline, whichever ends first.
    pub(crate) async fn bounded<T>(
        &self,
        ctx: &Ctx,
        limit: Duration,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let (bound, deadline_is_callers) = match ctx.remaining()? {
            Some(left) if left < limit => (left, true),
            _ => (limit, false),
        };
        match tokio::time::timeout(bound, fut).await {
            Ok(result) => result,
            Err(_) if deadline_is_callers => Err(Error::DeadlineExceeded),
            Err(_) => Err(timed_out("redis command", bound)),
        }
    }

    /// One command, bounded.
    pub(crate) async fn query<T: FromRedisValue>(&self, ctx: &Ctx, cmd: &Cmd) -> Result<T> {
        self.query_within(ctx, self.timeout, cmd).await
    }

    /// One command, bounded by `limit` instead of the configured timeout.
    pub(crate) async fn query_within<T: FromRedisValue>(
        &self,
        ctx: &Ctx,
        limit: Duration,
        cmd: &Cmd,
    ) -> Result<T> {
        let mut conn = self.conn.clone();
        self.bounded(ctx, limit, async move {
            cmd.query_async(&mut conn).await.map_err(map_err)
        })
        .await
    }

    /// A pipeline, bounded.
    pub(crate) async fn pipe<T: FromRedisValue>(&self, ctx: &Ctx, pipe: &Pipeline) -> Result<T> {
        let mut conn = self.conn.clone();
        self.bounded(ctx, self.timeout, async move {
            pipe.query_async(&mut conn).await.map_err(map_err)
        })
        .await
    }

    /// A Lua script (EVALSHA, loading it on NOSCRIPT), bounded.
    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        ctx: &Ctx,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        self.script_within(ctx, self.timeout, invocation).await
    }

    /// A Lua script bounded by `limit` instead of the configured timeout.
    pub(crate) async fn script_within<T: FromRedisValue>(
        &self,
        ctx: &Ctx,
        limit: Duration,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        let mut conn = self.conn.clone();
        self.bounded(ctx, limit, async move {
            invocation.invoke_async(&mut conn).await.map_err(map_err)
        })
        .await
    }
}

/// Escapes glob metacharacters so `SCAN MATCH` treats `literal` as plain text (Redis' `stringmatchlen` honours
/// backslash escapes). Tenant key parts are caller data: an unescaped `*` or `[` would widen an invalidation to
/// keys that merely look alike.
pub(crate) fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 8);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(escape_glob(r"t:1:a*b?[c]\d"), r"t:1:a\*b\?\[c\]\\d");
        assert_eq!(escape_glob("plain:key"), "plain:key");
    }
}
