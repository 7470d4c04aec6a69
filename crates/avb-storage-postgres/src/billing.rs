//! [`BillingStore`] on the tables of `migrations/0006_billing.sql`: the usage outbox (tenant-scoped, row-level
//! security like every tenant table), the sync's cursors and the webhook claims (platform-level).
//!
//! - `record_usage` inserts a batch with one `INSERT … SELECT FROM UNNEST … ON CONFLICT DO NOTHING`, in the
//!   batch's order (the identity column `seq` is the outbox order), so an entry whose transaction id exists in
//!   any state — even another tenant's, which the scope hides — is left alone;
//! - settling updates only `pending` rows, so a settled entry never changes again;
//! - a webhook claim is an insert into a primary key: of concurrent claims exactly one inserts, the others
//!   wait for its transaction and then find the key taken.

use crate::error;
use crate::sql::{get_enum, get_json, get_u32};
use crate::store::{PgStore, Scope, finish};
use async_trait::async_trait;
use avb_billing::model::{RejectedEvent, UsageEvent};
use avb_billing::store::{BillingStore, OutboxEntry, OutboxState, TenantUsage};
use avb_core::{Ctx, Error, TenantId};
use avb_tenancy::store::Access;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::postgres::PgRow;

type Result<T> = avb_billing::Result<T>;

const COLUMNS: &str = "transaction_id, tenant_id, external_subscription_id, code, \"timestamp\", properties, \
                       state, attempts, last_error, recorded_at, settled_at";

fn decode(row: &PgRow) -> std::result::Result<OutboxEntry, sqlx::Error> {
    let properties: Map<String, Value> = get_json(row, "properties")?;
    Ok(OutboxEntry {
        tenant_id: TenantId(row.try_get("tenant_id")?),
        event: UsageEvent {
            transaction_id: row.try_get("transaction_id")?,
            external_subscription_id: row.try_get("external_subscription_id")?,
            code: row.try_get("code")?,
            timestamp: row.try_get("timestamp")?,
            properties,
        },
        state: get_enum(row, "state", OutboxState::parse)?,
        attempts: get_u32(row, "attempts")?,
        last_error: row.try_get("last_error")?,
        recorded_at: row.try_get("recorded_at")?,
        settled_at: row.try_get("settled_at")?,
    })
}

fn decode_all(rows: &[PgRow]) -> Result<Vec<OutboxEntry>> {
    rows.iter()
        .map(|row| decode(row).map_err(|e| avb_billing::Error::from(error::map(e))))
        .collect()
}

impl PgStore {
    /// A transaction over the outbox, scoped like a unit of work of `ctx`.
    async fn outbox_tx(
        &self,
        ctx: &Ctx,
        access: Access,
    ) -> avb_core::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin_tx(ctx, Scope::Storage(ctx.storage_scope()?), access)
            .await
    }

    /// A transaction over the platform-level billing tables (cursors, webhook claims).
    async fn platform_tx(
        &self,
        ctx: &Ctx,
        access: Access,
    ) -> avb_core::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin_tx(ctx, Scope::Nothing, access).await
    }
}

#[async_trait]
impl BillingStore for PgStore {
    async fn record_usage(&self, ctx: &Ctx, usage: &[TenantUsage], at: DateTime<Utc>) -> Result<u64> {
        let scope = ctx.storage_scope()?;
        if let Some(other) = usage.iter().find(|u| !scope.allows(u.tenant_id)) {
            return Err(Error::not_found("tenant", other.tenant_id).into());
        }
        if usage.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(usage.len());
        let mut tenants = Vec::with_capacity(usage.len());
        let mut subscriptions = Vec::with_capacity(usage.len());
        let mut codes = Vec::with_capacity(usage.len());
        let mut timestamps = Vec::with_capacity(usage.len());
        let mut properties = Vec::with_capacity(usage.len());
        for TenantUsage { tenant_id, event } in usage {
            ids.push(event.transaction_id.clone());
            tenants.push(tenant_id.0);
            subscriptions.push(event.external_subscription_id.clone());
            codes.push(event.code.clone());
            timestamps.push(event.timestamp);
            properties.push(
                serde_json::to_string(&event.properties)
                    .map_err(|e| Error::Internal(format!("usage properties: {e}")))?,
            );
        }
        let mut tx = self.outbox_tx(ctx, Access::ReadWrite).await?;
        // WITH ORDINALITY … ORDER BY keeps the batch's order in `seq`.
        let inserted = sqlx::query(
            "INSERT INTO billing_usage_outbox (transaction_id, tenant_id, external_subscription_id, code, \
             \"timestamp\", properties, state, attempts, recorded_at) \
             SELECT u.id, u.tenant, u.subscription, u.code, u.ts, u.props::jsonb, 'pending', 0, $7 \
               FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[]) \
                    WITH ORDINALITY AS u(id, tenant, subscription, code, ts, props, n) \
              ORDER BY u.n \
             ON CONFLICT (transaction_id) DO NOTHING",
        )
        .bind(ids)
        .bind(tenants)
        .bind(subscriptions)
        .bind(codes)
        .bind(timestamps)
        .bind(properties)
        .bind(crate::sql::micros(at))
        .execute(&mut *tx)
        .await
        .map(|done| done.rows_affected())
        .map_err(error::map);
        Ok(finish(tx, inserted).await?)
    }

    async fn pending_usage(&self, ctx: &Ctx, limit: u32) -> Result<Vec<OutboxEntry>> {
        let mut tx = self.outbox_tx(ctx, Access::ReadOnly).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM billing_usage_outbox WHERE state = 'pending' ORDER BY seq LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(error::map);
        let rows = finish(tx, rows).await?;
        decode_all(&rows)
    }

    async fn mark_sent(&self, ctx: &Ctx, transaction_ids: &[String], at: DateTime<Utc>) -> Result<()> {
        if transaction_ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.outbox_tx(ctx, Access::ReadWrite).await?;
        let done = sqlx::query(
            "UPDATE billing_usage_outbox SET state = 'sent', settled_at = $2 \
              WHERE transaction_id = ANY($1) AND state = 'pending'",
        )
        .bind(transaction_ids.to_vec())
        .bind(crate::sql::micros(at))
        .execute(&mut *tx)
        .await
        .map(|_| ())
        .map_err(error::map);
        Ok(finish(tx, done).await?)
    }

    async fn mark_rejected(&self, ctx: &Ctx, rejected: &[RejectedEvent], at: DateTime<Utc>) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = rejected.iter().map(|r| r.transaction_id.clone()).collect();
        let reasons: Vec<String> = rejected.iter().map(|r| r.reason.clone()).collect();
        let mut tx = self.outbox_tx(ctx, Access::ReadWrite).await?;
        let done = sqlx::query(
            "UPDATE billing_usage_outbox o SET state = 'rejected', settled_at = $3, last_error = r.reason \
               FROM (SELECT DISTINCT ON (id) id, reason FROM UNNEST($1::text[], $2::text[]) AS r(id, reason)) r \
              WHERE o.transaction_id = r.id AND o.state = 'pending'",
        )
        .bind(ids)
        .bind(reasons)
        .bind(crate::sql::micros(at))
        .execute(&mut *tx)
        .await
        .map(|_| ())
        .map_err(error::map);
        Ok(finish(tx, done).await?)
    }

    async fn mark_failed(&self, ctx: &Ctx, transaction_ids: &[String], reason: &str) -> Result<()> {
        if transaction_ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.outbox_tx(ctx, Access::ReadWrite).await?;
        let done = sqlx::query(
            "UPDATE billing_usage_outbox SET attempts = least(attempts + 1, 4294967295), last_error = $2 \
              WHERE transaction_id = ANY($1) AND state = 'pending'",
        )
        .bind(transaction_ids.to_vec())
        .bind(reason.to_owned())
        .execute(&mut *tx)
        .await
        .map(|_| ())
        .map_err(error::map);
        Ok(finish(tx, done).await?)
    }

    async fn usage_entry(&self, ctx: &Ctx, transaction_id: &str) -> Result<OutboxEntry> {
        let mut tx = self.outbox_tx(ctx, Access::ReadOnly).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM billing_usage_outbox WHERE transaction_id = $1"
        )))
        .bind(transaction_id.to_owned())
        .fetch_optional(&mut *tx)
        .await
        .map_err(error::map);
        let row = finish(tx, row)
            .await?
            .ok_or_else(|| Error::not_found("usage_event", transaction_id))?;
        Ok(decode(&row).map_err(error::map)?)
    }

    async fn cursor(&self, ctx: &Ctx, name: &str) -> Result<Option<DateTime<Utc>>> {
        let mut tx = self.platform_tx(ctx, Access::ReadOnly).await?;
        let value = sqlx::query_scalar("SELECT value FROM billing_cursors WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(error::map);
        Ok(finish(tx, value).await?)
    }

    async fn set_cursor(&self, ctx: &Ctx, name: &str, value: DateTime<Utc>) -> Result<()> {
        let mut tx = self.platform_tx(ctx, Access::ReadWrite).await?;
        let done = sqlx::query(
            "INSERT INTO billing_cursors (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(name.to_owned())
        .bind(crate::sql::micros(value))
        .execute(&mut *tx)
        .await
        .map(|_| ())
        .map_err(error::map);
        Ok(finish(tx, done).await?)
    }

    async fn claim_webhook(&self, ctx: &Ctx, key: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.platform_tx(ctx, Access::ReadWrite).await?;
        let claimed = sqlx::query(
            "INSERT INTO billing_webhooks (unique_key, claimed_at) VALUES ($1, $2) \
             ON CONFLICT (unique_key) DO NOTHING",
        )
        .bind(key.to_owned())
        .bind(crate::sql::micros(at))
        .execute(&mut *tx)
        .await
        .map(|done| done.rows_affected() == 1)
        .map_err(error::map);
        Ok(finish(tx, claimed).await?)
    }

    async fn release_webhook(&self, ctx: &Ctx, key: &str) -> Result<()> {
        let mut tx = self.platform_tx(ctx, Access::ReadWrite).await?;
        let done = sqlx::query("DELETE FROM billing_webhooks WHERE unique_key = $1")
            .bind(key.to_owned())
            .execute(&mut *tx)
            .await
            .map(|_| ())
            .map_err(error::map);
        Ok(finish(tx, done).await?)
    }
}
