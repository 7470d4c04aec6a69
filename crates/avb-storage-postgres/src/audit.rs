//! The audit trail: entries hash-chained per tenant, linked under a lock on the chain's head row.
//!
//! An append (1) upserts and locks the chain's row in `audit_chains`, returning the current head, (2) seals the
//! entry after it, (3) inserts the entry and moves the head in one statement. The head row stays locked until
//! the transaction ends, so concurrent appenders queue behind it and a chain never forks; a rolled-back append
//! moves nothing, so no gap appears. Appends from a unit of work commit with the business write.

use crate::error;
use crate::sql::{Sql, get_u64, int, micros};
use crate::store::{Isolation, PgStore, Scope, finish};
use crate::tenancy::visible;
use async_trait::async_trait;
use avb_core::audit::{
    AuditAction, AuditEntry, AuditFilter, AuditReader, AuditSink, ChainBreak, NewAuditEntry,
};
use avb_core::{AuditId, Clock, Ctx, Error, IdGen, Page, PageRequest, Result, StorageScope, TenantId};
use avb_tenancy::store::Access;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// The chain row of `tenant` (`None`: the platform chain, keyed by the nil UUID).
fn chain_id(tenant: Option<TenantId>) -> Uuid {
    tenant.map_or(Uuid::nil(), |t| t.0)
}

/// Links `entry` at the end of `chain` inside the caller's transaction (which must allow the chain).
pub(crate) async fn append(
    conn: &mut PgConnection,
    ctx: &Ctx,
    chain: Option<TenantId>,
    entry: NewAuditEntry,
    ids: &dyn IdGen,
    clock: &dyn Clock,
) -> Result<AuditEntry> {
    let head = sqlx::query(
        "INSERT INTO audit_chains (chain_id, tenant_id, sequence, hash) VALUES ($1, $2, 0, '') \
         ON CONFLICT (chain_id) DO UPDATE SET sequence = audit_chains.sequence \
         RETURNING sequence, hash",
    )
    .bind(chain_id(chain))
    .bind(chain.map(|t| t.0))
    .fetch_one(&mut *conn)
    .await
    .map_err(error::map)?;
    let sequence = get_u64(&head, "sequence").map_err(error::map)?;
    let hash: String = head.try_get("hash").map_err(error::map)?;
    let prev = (sequence > 0).then_some((sequence, hash.as_str()));
    // Taken under the chain lock, so timestamps never decrease along a chain.
    let now = micros(clock.now());
    let sealed = AuditEntry::seal(entry, ctx, AuditId::generate(ids), now, prev);

    let mut sql = Sql::new(
        "WITH appended AS (INSERT INTO audit_logs (id, \"timestamp\", actor_id, actor_email, actor_type, \
         tenant_id, ip_address, user_agent, action, resource_type, resource_id, description, old_values, \
         new_values, metadata, request_id, sequence, prev_hash, hash) VALUES (",
    );
    let values = [
        sql.arg(sealed.id.0)?,
        sql.arg(sealed.timestamp)?,
        sql.arg(sealed.actor_id)?,
        sql.arg(sealed.actor_email.clone())?,
        sql.arg(sealed.actor_type.clone())?,
        sql.arg(sealed.tenant_id.map(|t| t.0))?,
        sql.arg(sealed.ip_address)?,
        sql.arg(sealed.user_agent.clone())?,
        sql.arg(sealed.action.as_str())?,
        sql.arg(sealed.resource_type.clone())?,
        sql.arg(sealed.resource_id.clone())?,
        sql.arg(sealed.description.clone())?,
        format!("{}::json", sql.arg(json_text(sealed.old_values.as_ref())?)?),
        format!("{}::json", sql.arg(json_text(sealed.new_values.as_ref())?)?),
        format!("{}::json", sql.arg(json_text(Some(&sealed.metadata))?)?),
        sql.arg(sealed.request_id.clone())?,
        sql.arg(int("sequence", sealed.sequence)?)?,
        sql.arg(sealed.prev_hash.clone())?,
        sql.arg(sealed.hash.clone())?,
    ];
    sql.push(&values.join(", "));
    sql.push(")) UPDATE audit_chains SET sequence = ");
    sql.bind(int("sequence", sealed.sequence)?)?;
    sql.push(", hash = ");
    sql.bind(sealed.hash.clone())?;
    sql.push(" WHERE chain_id = ");
    sql.bind(chain_id(chain))?;
    sql.query().execute(&mut *conn).await.map_err(error::map)?;
    Ok(sealed)
}

/// JSON as the text that was hashed, so the stored value reads back identical (`json`, not `jsonb`).
fn json_text(value: Option<&serde_json::Value>) -> Result<Option<String>> {
    value
        .map(serde_json::to_string)
        .transpose()
        .map_err(|_| Error::Internal("postgres: audit values could not be serialised".into()))
}

fn decode(row: &PgRow) -> std::result::Result<AuditEntry, sqlx::Error> {
    let tenant: Option<Uuid> = row.try_get("tenant_id")?;
    let action: String = row.try_get("action")?;
    let action: AuditAction = serde_json::from_value(serde_json::Value::String(action))
        .map_err(|_| error::decode_error("action", "unknown action"))?;
    let old_values: Option<sqlx::types::Json<serde_json::Value>> = row.try_get("old_values")?;
    let new_values: Option<sqlx::types::Json<serde_json::Value>> = row.try_get("new_values")?;
    Ok(AuditEntry {
        id: AuditId(row.try_get("id")?),
        timestamp: row.try_get("timestamp")?,
        actor_id: row.try_get("actor_id")?,
        actor_email: row.try_get("actor_email")?,
        actor_type: row.try_get("actor_type")?,
        tenant_id: tenant.map(TenantId),
        ip_address: row.try_get("ip_address")?,
        user_agent: row.try_get("user_agent")?,
        action,
        resource_type: row.try_get("resource_type")?,
        resource_id: row.try_get("resource_id")?,
        description: row.try_get("description")?,
        old_values: old_values.map(|v| v.0),
        new_values: new_values.map(|v| v.0),
        metadata: crate::sql::get_json(row, "metadata")?,
        request_id: row.try_get("request_id")?,
        sequence: get_u64(row, "sequence")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The transaction scope of an append to `chain` by `ctx`. A context without any storage scope (an anonymous
/// failed login) may still append to the platform chain, so that such events are recorded at all.
fn append_scope(ctx: &Ctx, chain: Option<TenantId>) -> Result<Scope> {
    let refused = || Error::not_found("tenant", chain.map(|t| t.to_string()).unwrap_or_default());
    match ctx.storage_scope() {
        Ok(scope) if visible(scope, chain) => Ok(Scope::Storage(scope)),
        Ok(_) => Err(refused()),
        Err(Error::TenantRequired) if chain.is_none() => Ok(Scope::PlatformAudit),
        Err(err) => Err(err),
    }
}

#[async_trait]
impl AuditSink for PgStore {
    async fn record(&self, ctx: &Ctx, entry: NewAuditEntry) -> Result<AuditEntry> {
        let chain = entry.tenant_id.or(ctx.tenant());
        let scope = append_scope(ctx, chain)?;
        let mut tx = self.begin_tx(ctx, scope, Access::ReadWrite).await?;
        let sealed = append(&mut tx, ctx, chain, entry, self.ids.as_ref(), self.clock.as_ref()).await;
        finish(tx, sealed).await
    }
}

#[async_trait]
impl AuditReader for PgStore {
    async fn query(&self, ctx: &Ctx, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>> {
        let scope = ctx.storage_scope()?;
        let mut sql = Sql::new("SELECT *, count(*) OVER () AS avb_total FROM audit_logs WHERE TRUE");
        push_filter(&mut sql, scope, filter)?;
        sql.push(" ORDER BY \"timestamp\" DESC, sequence DESC, id DESC LIMIT ");
        sql.bind(i64::from(page.limit()))?;
        sql.push(" OFFSET ");
        sql.bind(int("offset", page.offset())?)?;
        let mut tx = self
            .begin_tx(ctx, Scope::Storage(scope), Access::ReadOnly)
            .await?;
        let read = async {
            let rows = sql.query().fetch_all(&mut *tx).await.map_err(error::map)?;
            let total = match rows.first() {
                Some(row) => get_u64(row, "avb_total").map_err(error::map)?,
                None if page.offset() > 0 => {
                    let mut count = Sql::new("SELECT count(*) AS n FROM audit_logs WHERE TRUE");
                    push_filter(&mut count, scope, filter)?;
                    let row = count.query().fetch_one(&mut *tx).await.map_err(error::map)?;
                    get_u64(&row, "n").map_err(error::map)?
                }
                None => 0,
            };
            Ok((rows, total))
        }
        .await;
        let (rows, total) = finish(tx, read).await?;
        let items = rows
            .iter()
            .map(decode)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(error::map)?;
        Ok(Page {
            items,
            total,
            limit: page.limit(),
            offset: page.offset(),
        })
    }

    async fn chain(&self, ctx: &Ctx, tenant: Option<TenantId>) -> Result<Vec<AuditEntry>> {
        let scope = ctx.storage_scope()?;
        if !visible(scope, tenant) {
            // Another tenant's chain is as absent as its rows.
            return Ok(Vec::new());
        }
        let (entries, _) = self.read_chain(ctx, scope, tenant).await?;
        Ok(entries)
    }
}

fn push_filter(sql: &mut Sql, scope: StorageScope, filter: &AuditFilter) -> Result<()> {
    if let StorageScope::Tenant(tenant) = scope {
        sql.push(" AND tenant_id = ");
        sql.bind(tenant.0)?;
    }
    if let Some(actor) = filter.actor_id {
        sql.push(" AND actor_id = ");
        sql.bind(actor)?;
    }
    if let Some(action) = filter.action {
        sql.push(" AND action = ");
        sql.bind(action.as_str())?;
    }
    if let Some(kind) = &filter.resource_type {
        sql.push(" AND resource_type = ");
        sql.bind(kind.clone())?;
    }
    if let Some(id) = &filter.resource_id {
        sql.push(" AND resource_id = ");
        sql.bind(id.clone())?;
    }
    if let Some(from) = filter.from {
        sql.push(" AND \"timestamp\" >= ");
        sql.bind(from)?;
    }
    if let Some(to) = filter.to {
        sql.push(" AND \"timestamp\" < ");
        sql.bind(to)?;
    }
    if let Some(request) = &filter.request_id {
        sql.push(" AND request_id = ");
        sql.bind(request.as_str().to_owned())?;
    }
    Ok(())
}

impl PgStore {
    /// A chain in ascending sequence order, with its recorded head `(sequence, hash)`, read in one snapshot.
    async fn read_chain(
        &self,
        ctx: &Ctx,
        scope: StorageScope,
        tenant: Option<TenantId>,
    ) -> Result<(Vec<AuditEntry>, Option<(u64, String)>)> {
        let condition = if tenant.is_some() {
            "tenant_id = $1"
        } else {
            "tenant_id IS NULL"
        };
        // One snapshot for both reads, so the head and the entries agree.
        let mut tx = self
            .begin_tx_with(ctx, Scope::Storage(scope), Access::ReadOnly, Isolation::Snapshot)
            .await?;
        let read = async {
            let query = format!("SELECT * FROM audit_logs WHERE {condition} ORDER BY sequence");
            let mut entries = sqlx::query(sqlx::AssertSqlSafe(query));
            if let Some(t) = tenant {
                entries = entries.bind(t.0);
            }
            let rows = entries.fetch_all(&mut *tx).await.map_err(error::map)?;
            let head = sqlx::query("SELECT sequence, hash FROM audit_chains WHERE chain_id = $1")
                .bind(chain_id(tenant))
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::map)?;
            Ok((rows, head))
        }
        .await;
        let (rows, head) = finish(tx, read).await?;
        let entries = rows
            .iter()
            .map(decode)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(error::map)?;
        let head = match head {
            Some(row) => Some((
                get_u64(&row, "sequence").map_err(error::map)?,
                row.try_get::<String, _>("hash").map_err(error::map)?,
            )),
            None => None,
        };
        Ok((entries, head))
    }

    /// Verifies a tenant's chain (`None`: the platform chain) as stored: every entry's hash and link
    /// ([`avb_core::audit::verify_chain`]), and that the chain ends where its head row says, which also catches
    /// entries removed from the end. Returns the number of entries.
    ///
    /// # Errors
    /// The outer error is a storage failure (`tenant_required`, `not_found` for a chain outside the
    /// context's scope, `service_unavailable`); the inner one says where the chain is broken.
    pub async fn verify_audit_chain(
        &self,
        ctx: &Ctx,
        tenant: Option<TenantId>,
    ) -> Result<std::result::Result<u64, ChainBreak>> {
        let scope = ctx.storage_scope()?;
        if !visible(scope, tenant) {
            return Err(Error::not_found(
                "tenant",
                tenant.map(|t| t.to_string()).unwrap_or_default(),
            ));
        }
        let (entries, head) = self.read_chain(ctx, scope, tenant).await?;
        if let Err(broken) = avb_core::audit::verify_chain(&entries) {
            return Ok(Err(broken));
        }
        let last = entries.last().map(|e| (e.sequence, e.hash.as_str()));
        let recorded = head
            .as_ref()
            .filter(|(seq, _)| *seq > 0)
            .map(|(s, h)| (*s, h.as_str()));
        if last != recorded {
            let sequence = last.map_or(1, |(seq, _)| seq.saturating_add(1));
            return Ok(Err(ChainBreak {
                sequence,
                reason: "entries missing at the end of the chain",
            }));
        }
        Ok(Ok(entries.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_chain_is_keyed_by_the_nil_uuid() {
        assert_eq!(chain_id(None), Uuid::nil());
        let t = TenantId(Uuid::from_u128(7));
        assert_eq!(chain_id(Some(t)), t.0);
    }

    #[test]
    fn anonymous_contexts_may_append_only_to_the_platform_chain() {
        let anonymous = Ctx::new(
            avb_core::RequestId::generate(&avb_core::UuidV7Ids),
            avb_core::Principal::Anonymous,
        );
        assert_eq!(append_scope(&anonymous, None).unwrap(), Scope::PlatformAudit);
        let t = TenantId(Uuid::from_u128(7));
        assert!(matches!(
            append_scope(&anonymous, Some(t)),
            Err(Error::TenantRequired)
        ));
        let member = anonymous.clone().with_tenant(Some(t));
        assert!(matches!(append_scope(&member, None), Err(Error::NotFound { .. })));
    }
}
