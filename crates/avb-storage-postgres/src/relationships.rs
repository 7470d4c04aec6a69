//! [`RelationshipStore`] for the local ReBAC engine: versioned tuples (see `migrations/0004`).
//!
//! A write takes the next revision by updating the single `relationship_revision` row (which serialises
//! writers), marks deleted tuples with `deleted_rev` and inserts new ones with `created_rev`. A snapshot is the
//! committed revision number; reading at revision R keeps tuples with `created_rev <= R < deleted_rev`, so a
//! snapshot never sees later writes and holds no connection. Reads run as single statements on the pool.

use crate::error::{self, database_error, state};
use crate::sql::{Sql, get_u64, int};
use crate::store::{PgStore, Scope, finish};
use async_trait::async_trait;
use avb_auth::authorizer::{
    ObjectRef, Relationship, RelationshipFilter, RelationshipSnapshot, RelationshipStore, RelationshipUpdate,
    Revision, SubjectRef, SubjectRelationFilter,
};
use avb_core::{Ctx, Error, Result};
use avb_tenancy::store::Access;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Row};
use std::sync::Arc;

const COLUMNS: &str = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation";
const ORDER: &str =
    "ORDER BY resource_type, resource_id, relation, subject_type, subject_id, subject_relation";

/// The six key columns of a batch of tuples, as parallel arrays for `UNNEST`.
#[derive(Default)]
struct Columns {
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    relation: Vec<String>,
    subject_type: Vec<String>,
    subject_id: Vec<String>,
    subject_relation: Vec<String>,
}

impl Columns {
    fn push(&mut self, r: &Relationship) {
        self.resource_type.push(r.resource.object_type.clone());
        self.resource_id.push(r.resource.object_id.clone());
        self.relation.push(r.relation.clone());
        self.subject_type.push(r.subject.object.object_type.clone());
        self.subject_id.push(r.subject.object.object_id.clone());
        self.subject_relation
            .push(r.subject.optional_relation.clone().unwrap_or_default());
    }

    /// `UNNEST($1::text[], …)` over the six arrays.
    fn unnest(self, sql: &mut Sql) -> Result<String> {
        let arrays = [
            sql.arg(self.resource_type)?,
            sql.arg(self.resource_id)?,
            sql.arg(self.relation)?,
            sql.arg(self.subject_type)?,
            sql.arg(self.subject_id)?,
            sql.arg(self.subject_relation)?,
        ];
        let typed: Vec<String> = arrays.iter().map(|a| format!("{a}::text[]")).collect();
        Ok(format!("UNNEST({})", typed.join(", ")))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Touch,
    Delete,
}

fn op_of(update: &RelationshipUpdate) -> (Op, &Relationship) {
    match update {
        RelationshipUpdate::Create(r) => (Op::Create, r),
        RelationshipUpdate::Touch(r) => (Op::Touch, r),
        RelationshipUpdate::Delete(r) => (Op::Delete, r),
    }
}

/// Applies one run of same-kind updates at `revision`.
async fn apply(conn: &mut PgConnection, op: Op, tuples: Columns, revision: i64) -> Result<()> {
    let mut sql = Sql::default();
    let rows = tuples.unnest(&mut sql)?;
    let rev = sql.arg(revision)?;
    let statement = match op {
        Op::Create => {
            format!("INSERT INTO relationships ({COLUMNS}, created_rev) SELECT *, {rev} FROM {rows}")
        }
        Op::Touch => format!(
            "INSERT INTO relationships ({COLUMNS}, created_rev) SELECT *, {rev} FROM {rows} \
             ON CONFLICT (resource_type, resource_id, relation, subject_type, subject_relation, subject_id) \
             WHERE deleted_rev IS NULL DO NOTHING"
        ),
        Op::Delete => format!(
            "UPDATE relationships SET deleted_rev = {rev} WHERE deleted_rev IS NULL \
             AND ({COLUMNS}) IN (SELECT * FROM {rows})"
        ),
    };
    sql.push(&statement);
    sql.query()
        .execute(conn)
        .await
        .map_err(|err| match database_error(&err) {
            Some((code, _)) if code == state::UNIQUE_VIOLATION => {
                Error::conflict("relationship", "a relationship of the batch already exists")
            }
            _ => error::map(err),
        })?;
    Ok(())
}

/// Takes the next revision; the row lock serialises writers until commit.
async fn next_revision(conn: &mut PgConnection) -> Result<i64> {
    let row = sqlx::query("UPDATE relationship_revision SET revision = revision + 1 RETURNING revision")
        .fetch_one(conn)
        .await
        .map_err(error::map)?;
    row.try_get("revision").map_err(error::map)
}

fn revision_of(value: i64) -> Result<Revision> {
    u64::try_from(value)
        .map(Revision)
        .map_err(|_| Error::Internal("postgres: negative relationship revision".into()))
}

/// Appends the conditions of `filter`.
fn push_filter(sql: &mut Sql, filter: &RelationshipFilter) -> Result<()> {
    let equals = |sql: &mut Sql, column: &str, value: &str| -> Result<()> {
        sql.push(" AND ").push(column).push(" = ");
        sql.bind(value.to_owned())?;
        Ok(())
    };
    if let Some(t) = &filter.resource_type {
        equals(sql, "resource_type", t)?;
    }
    if let Some(id) = &filter.resource_id {
        equals(sql, "resource_id", id)?;
    }
    if let Some(rel) = &filter.relation {
        equals(sql, "relation", rel)?;
    }
    if let Some(subject) = &filter.subject {
        equals(sql, "subject_type", &subject.subject_type)?;
        if let Some(id) = &subject.subject_id {
            equals(sql, "subject_id", id)?;
        }
        match &subject.relation {
            SubjectRelationFilter::Any => {}
            SubjectRelationFilter::Ellipsis => {
                sql.push(" AND subject_relation = ''");
            }
            SubjectRelationFilter::Relation(rel) => equals(sql, "subject_relation", rel)?,
        }
    }
    Ok(())
}

#[async_trait]
impl RelationshipStore for PgStore {
    async fn write(&self, ctx: &Ctx, updates: &[RelationshipUpdate]) -> Result<Revision> {
        let mut tx = self.begin_tx(ctx, Scope::Nothing, Access::ReadWrite).await?;
        let written = async {
            let revision = next_revision(&mut tx).await?;
            // Consecutive updates of one kind go in one statement; the order of kinds is kept.
            let mut run: Option<(Op, Columns)> = None;
            for update in updates {
                let (op, tuple) = op_of(update);
                match &mut run {
                    Some((current, columns)) if *current == op => columns.push(tuple),
                    _ => {
                        if let Some((current, columns)) = run.take() {
                            apply(&mut tx, current, columns, revision).await?;
                        }
                        let mut columns = Columns::default();
                        columns.push(tuple);
                        run = Some((op, columns));
                    }
                }
            }
            if let Some((op, columns)) = run {
                apply(&mut tx, op, columns, revision).await?;
            }
            Ok(revision)
        }
        .await;
        revision_of(finish(tx, written).await?)
    }

    async fn delete(&self, ctx: &Ctx, filter: &RelationshipFilter) -> Result<Revision> {
        let mut tx = self.begin_tx(ctx, Scope::Nothing, Access::ReadWrite).await?;
        let deleted = async {
            let revision = next_revision(&mut tx).await?;
            let mut sql = Sql::new("UPDATE relationships SET deleted_rev = ");
            sql.bind(revision)?;
            sql.push(" WHERE deleted_rev IS NULL");
            push_filter(&mut sql, filter)?;
            sql.query().execute(&mut *tx).await.map_err(error::map)?;
            Ok(revision)
        }
        .await;
        revision_of(finish(tx, deleted).await?)
    }

    async fn snapshot(&self, _ctx: &Ctx) -> Result<Arc<dyn RelationshipSnapshot>> {
        let row = sqlx::query("SELECT revision FROM relationship_revision")
            .fetch_one(&self.pool)
            .await
            .map_err(error::map)?;
        let revision = get_u64(&row, "revision").map_err(error::map)?;
        Ok(Arc::new(PgSnapshot {
            pool: self.pool.clone(),
            revision,
        }))
    }
}

impl PgStore {
    /// Removes the history that no snapshot at revision `before` or later can see: tuples deleted at or
    /// before it. Call it periodically with a revision older than any snapshot still in use (snapshots live
    /// for one permission check); returns how many tuples went.
    ///
    /// # Errors
    /// `service_unavailable` when the database cannot be reached.
    pub async fn prune_relationship_history(&self, ctx: &Ctx, before: Revision) -> Result<u64> {
        let mut tx = self.begin_tx(ctx, Scope::Nothing, Access::ReadWrite).await?;
        let pruned = async {
            let done = sqlx::query("DELETE FROM relationships WHERE deleted_rev <= $1")
                .bind(int("revision", before.0)?)
                .execute(&mut *tx)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected())
        }
        .await;
        finish(tx, pruned).await
    }
}

/// The store as of one revision.
struct PgSnapshot {
    pool: PgPool,
    revision: u64,
}

impl std::fmt::Debug for PgSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSnapshot")
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RelationshipSnapshot for PgSnapshot {
    fn revision(&self) -> Revision {
        Revision(self.revision)
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        filter: &RelationshipFilter,
        limit: Option<usize>,
    ) -> Result<Vec<Relationship>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM relationships WHERE created_rev <= "
        ));
        let revision = sql.arg(int("revision", self.revision)?)?;
        sql.push(&format!(
            "{revision} AND (deleted_rev IS NULL OR deleted_rev > {revision})"
        ));
        push_filter(&mut sql, filter)?;
        sql.push(" ").push(ORDER);
        if let Some(limit) = limit {
            sql.push(" LIMIT ");
            sql.bind(i64::try_from(limit).unwrap_or(i64::MAX))?;
        }
        let rows = sql.query().fetch_all(&self.pool).await.map_err(error::map)?;
        rows.iter()
            .map(|row| {
                let get = |column: &str| row.try_get::<String, _>(column);
                let subject_relation = get("subject_relation")?;
                let object = ObjectRef::new(get("subject_type")?, get("subject_id")?);
                let subject = if subject_relation.is_empty() {
                    SubjectRef::new(object)
                } else {
                    SubjectRef::with_relation(object, subject_relation)
                };
                Ok(Relationship::new(
                    ObjectRef::new(get("resource_type")?, get("resource_id")?),
                    get("relation")?,
                    subject,
                ))
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(error::map)
    }
}
