//! A small statement builder: SQL text with numbered placeholders plus the encoded arguments, so dynamic
//! statements (filters, column lists) never format a value into SQL. Encoding errors are returned, not panicked.

use avb_core::{Error, Result};
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Encode, Postgres, Row, Type};

/// SQL text and its bound arguments.
#[derive(Default)]
pub(crate) struct Sql {
    text: String,
    args: PgArguments,
}

impl std::fmt::Debug for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sql")
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl Sql {
    /// A statement starting with `text`.
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: PgArguments::default(),
        }
    }

    /// Appends SQL text (never a value).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds `value` and returns its placeholder (`$n`) without appending it.
    pub(crate) fn arg<'q, T>(&mut self, value: T) -> Result<String>
    where
        T: Encode<'q, Postgres> + Type<Postgres>,
    {
        self.args.add(value).map_err(|err| {
            tracing::error!(error = %err, "postgres: a value could not be encoded");
            Error::Internal("postgres: a value could not be encoded".into())
        })?;
        Ok(format!("${}", self.args.len()))
    }

    /// Binds `value` and appends its placeholder.
    pub(crate) fn bind<'q, T>(&mut self, value: T) -> Result<&mut Self>
    where
        T: Encode<'q, Postgres> + Type<Postgres>,
    {
        let placeholder = self.arg(value)?;
        self.text.push_str(&placeholder);
        Ok(self)
    }

    /// The statement, ready to run.
    pub(crate) fn query(self) -> sqlx::query::Query<'static, Postgres, PgArguments> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args)
    }

    /// The SQL text (tests, logs).
    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// `u64` as Postgres `bigint`, refusing values above `i64::MAX`.
pub(crate) fn int(field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::invalid(field, "range", "is too large to store"))
}

/// A timestamp as Postgres stores it: microsecond precision (what a read returns).
pub(crate) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// Reads a non-negative `bigint` column as `u64`.
pub(crate) fn get_u64(row: &PgRow, column: &str) -> std::result::Result<u64, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| crate::error::decode_error(column, "negative value"))
}

/// Reads a non-negative `bigint` column as `u32`.
pub(crate) fn get_u32(row: &PgRow, column: &str) -> std::result::Result<u32, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| crate::error::decode_error(column, "out of range"))
}

/// Reads a nullable non-negative `bigint` column as `Option<u32>`.
pub(crate) fn get_opt_u32(row: &PgRow, column: &str) -> std::result::Result<Option<u32>, sqlx::Error> {
    let value: Option<i64> = row.try_get(column)?;
    value
        .map(|v| u32::try_from(v).map_err(|_| crate::error::decode_error(column, "out of range")))
        .transpose()
}

/// Reads a text column holding a wire name, parsed by `parse`.
pub(crate) fn get_enum<T>(
    row: &PgRow,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> std::result::Result<T, sqlx::Error> {
    let value: String = row.try_get(column)?;
    parse(&value).ok_or_else(|| crate::error::decode_error(column, "unknown value"))
}

/// Reads a `text[]` column of wire names into a collection.
pub(crate) fn get_enums<T, C: FromIterator<T>>(
    row: &PgRow,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> std::result::Result<C, sqlx::Error> {
    let values: Vec<String> = row.try_get(column)?;
    values
        .iter()
        .map(|v| parse(v).ok_or_else(|| crate::error::decode_error(column, "unknown value")))
        .collect()
}

/// Reads a JSONB column into `T`.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    row: &PgRow,
    column: &str,
) -> std::result::Result<T, sqlx::Error> {
    let value: sqlx::types::Json<T> = row.try_get(column)?;
    Ok(value.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_bind_order() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(1_i64).unwrap().push(" AND b = ");
        sql.bind("x").unwrap();
        assert_eq!(sql.text(), "SELECT 1 WHERE a = $1 AND b = $2");
    }

    #[test]
    fn oversized_integers_are_refused() {
        assert!(int("n", u64::MAX).is_err());
        assert_eq!(int("n", 7).unwrap(), 7);
    }
}
