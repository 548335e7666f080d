//! The one implementation's execution layer: [`SqlStore`] holds a pool of either backend and
//! runs the shared query text with neutral values ([`Bind`]) and rows ([`Row`]).
//!
//! The two backends accept the same SQL (`$n` placeholders, `ON CONFLICT`, `RETURNING`); what
//! differs is how a UUID or a timestamp is stored and how a write transaction begins:
//!
//! - SQLite keeps UUIDs as lowercase hyphenated text and timestamps as fixed-width UTC text
//!   ([`crate::timestamp`]), and begins writes with `BEGIN IMMEDIATE`;
//! - PostgreSQL uses the native `uuid` and `timestamptz` types and a plain `BEGIN`.
//!
//! Those differences live here and nowhere else: the stores (`workspaces.rs`, `members.rs`,
//! ...) write each method once, over [`SqlStore::execute`], [`SqlStore::fetch_all`], [`Tx`] and
//! the typed getters of [`Row`].

use std::borrow::Cow;

use serde_json::Value;
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Arguments as _, AssertSqlSafe, Decode, Postgres, Row as _, Sqlite, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::tables::schema::{Column, Kind};
use crate::{StoreError, sql, timestamp};

/// Berth's runtime state in SQL: the one type that implements [`crate::Store`] and every
/// per-aggregate store trait, for both backends. Made by [`crate::SqliteStore::open`],
/// [`crate::SqliteStore::open_path`] or [`crate::PostgresStore::connect`] (or
/// [`crate::open`]); cloning shares the pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl SqlStore {
    pub(crate) fn sqlite(pool: SqlitePool) -> Self {
        Self {
            pool: Pool::Sqlite(pool),
        }
    }

    pub(crate) fn postgres(pool: PgPool) -> Self {
        Self {
            pool: Pool::Postgres(pool),
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub(crate) fn backend_name(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The SQLite pool, or `None` on PostgreSQL.
    pub(crate) fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(pool) => Some(pool),
            Pool::Postgres(_) => None,
        }
    }

    pub(crate) async fn close_pool(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// Runs a statement; how many rows it changed.
    pub(crate) async fn execute(
        &self,
        sql: impl Into<Cow<'static, str>>,
        binds: &[Bind],
    ) -> Result<u64, StoreError> {
        let sql = AssertSqlSafe(sql.into());
        Ok(match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_with(sql, sqlite_arguments(binds)?)
                .execute(pool)
                .await?
                .rows_affected(),
            Pool::Postgres(pool) => sqlx::query_with(sql, pg_arguments(binds)?)
                .execute(pool)
                .await?
                .rows_affected(),
        })
    }

    /// The one row a query returns; [`StoreError::NotFound`] if it returns none.
    pub(crate) async fn fetch_one(
        &self,
        sql: impl Into<Cow<'static, str>>,
        binds: &[Bind],
    ) -> Result<Row, StoreError> {
        self.fetch_optional(sql, binds)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The row a query returns, if any.
    pub(crate) async fn fetch_optional(
        &self,
        sql: impl Into<Cow<'static, str>>,
        binds: &[Bind],
    ) -> Result<Option<Row>, StoreError> {
        let sql = AssertSqlSafe(sql.into());
        Ok(match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_with(sql, sqlite_arguments(binds)?)
                .fetch_optional(pool)
                .await?
                .map(Row::Sqlite),
            Pool::Postgres(pool) => sqlx::query_with(sql, pg_arguments(binds)?)
                .fetch_optional(pool)
                .await?
                .map(Row::Postgres),
        })
    }

    /// Every row a query returns.
    pub(crate) async fn fetch_all(
        &self,
        sql: impl Into<Cow<'static, str>>,
        binds: &[Bind],
    ) -> Result<Vec<Row>, StoreError> {
        let sql = AssertSqlSafe(sql.into());
        Ok(match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_with(sql, sqlite_arguments(binds)?)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Pool::Postgres(pool) => sqlx::query_with(sql, pg_arguments(binds)?)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// A transaction that will write. SQLite takes the write lock when it begins, not at its
    /// first write: no deadlock between two transactions that both read first. Dropped
    /// without [`Tx::commit`], it rolls back.
    pub(crate) async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }
}

/// A write transaction of either backend (see [`SqlStore::begin_write`]).
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Runs a statement inside the transaction; how many rows it changed.
    pub(crate) async fn execute(
        &mut self,
        sql: impl Into<Cow<'static, str>>,
        binds: &[Bind],
    ) -> Result<u64, StoreError> {
        let sql = AssertSqlSafe(sql.into());
        Ok(match self {
            Tx::Sqlite(tx) => sqlx::query_with(sql, sqlite_arguments(binds)?)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Tx::Postgres(tx) => sqlx::query_with(sql, pg_arguments(binds)?)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Every row a query returns, read inside the transaction.
    pub(crate) async fn fetch_all(
        &mut self,
        sql: impl Into<Cow<'static, str>>,
        binds: &[Bind],
    ) -> Result<Vec<Row>, StoreError> {
        let sql = AssertSqlSafe(sql.into());
        Ok(match self {
            Tx::Sqlite(tx) => sqlx::query_with(sql, sqlite_arguments(binds)?)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Tx::Postgres(tx) => sqlx::query_with(sql, pg_arguments(binds)?)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// The row a query returns inside the transaction, if any.
    pub(crate) async fn fetch_optional(
        &mut self,
        sql: impl Into<Cow<'static, str>>,
        binds: &[Bind],
    ) -> Result<Option<Row>, StoreError> {
        let sql = AssertSqlSafe(sql.into());
        Ok(match self {
            Tx::Sqlite(tx) => sqlx::query_with(sql, sqlite_arguments(binds)?)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
            Tx::Postgres(tx) => sqlx::query_with(sql, pg_arguments(binds)?)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
        })
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A value to bind, typed so each backend encodes it the way its column stores it.
/// Timestamps are checked (years 1 to 9999, see [`crate::timestamp`]) when they are bound.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Time(OffsetDateTime),
    OptTime(Option<OffsetDateTime>),
    /// Bytes as they are (BLOB, `bytea`): output that need not be UTF-8.
    Bytes(Vec<u8>),
}

impl Bind {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }
}

fn sqlite_arguments(binds: &[Bind]) -> Result<SqliteArguments, StoreError> {
    let mut args = SqliteArguments::default();
    for value in binds {
        let added = match value {
            Bind::Text(text) => args.add(text.clone()),
            Bind::OptText(text) => args.add(text.clone()),
            Bind::Int(n) => args.add(*n),
            Bind::OptInt(n) => args.add(*n),
            Bind::Bool(b) => args.add(*b),
            Bind::Uuid(u) => args.add(u.hyphenated().to_string()),
            Bind::OptUuid(u) => args.add(u.map(|u| u.hyphenated().to_string())),
            Bind::Time(at) => args.add(timestamp::to_text(*at)?),
            Bind::OptTime(at) => args.add(at.map(timestamp::to_text).transpose()?),
            Bind::Bytes(bytes) => args.add(bytes.clone()),
        };
        added.map_err(|e| StoreError::InvalidInput(format!("cannot bind {value:?}: {e}")))?;
    }
    Ok(args)
}

fn pg_arguments(binds: &[Bind]) -> Result<PgArguments, StoreError> {
    let mut args = PgArguments::default();
    for value in binds {
        let added = match value {
            Bind::Text(text) => args.add(text.clone()),
            Bind::OptText(text) => args.add(text.clone()),
            Bind::Int(n) => args.add(*n),
            Bind::OptInt(n) => args.add(*n),
            Bind::Bool(b) => args.add(*b),
            Bind::Uuid(u) => args.add(*u),
            Bind::OptUuid(u) => args.add(*u),
            Bind::Time(at) => args.add(timestamp::checked(*at)?),
            Bind::OptTime(at) => args.add(at.map(timestamp::checked).transpose()?),
            Bind::Bytes(bytes) => args.add(bytes.clone()),
        };
        added.map_err(|e| StoreError::InvalidInput(format!("cannot bind {value:?}: {e}")))?;
    }
    Ok(args)
}

/// A column by name (`"id"`) or position (`0`), on either backend's rows.
pub(crate) trait Index:
    sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + Copy
{
}

impl<I: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + Copy> Index for I {}

/// A value both backends decode the same way (text, integers, booleans, and their options).
pub(crate) trait Plain:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Plain for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A fetched row of either backend, read through typed getters.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    /// A value stored the same way on both backends.
    pub(crate) fn get<T: Plain>(&self, column: impl Index) -> Result<T, StoreError> {
        Ok(match self {
            Row::Sqlite(row) => row.try_get(column)?,
            Row::Postgres(row) => row.try_get(column)?,
        })
    }

    pub(crate) fn get_str(&self, column: impl Index) -> Result<String, StoreError> {
        self.get(column)
    }

    pub(crate) fn get_opt_str(&self, column: impl Index) -> Result<Option<String>, StoreError> {
        self.get(column)
    }

    pub(crate) fn get_i64(&self, column: impl Index) -> Result<i64, StoreError> {
        self.get(column)
    }

    pub(crate) fn get_opt_i64(&self, column: impl Index) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }

    pub(crate) fn get_bool(&self, column: impl Index) -> Result<bool, StoreError> {
        self.get(column)
    }

    pub(crate) fn get_bytes(&self, column: impl Index) -> Result<Vec<u8>, StoreError> {
        self.get(column)
    }

    pub(crate) fn get_uuid(&self, column: impl Index) -> Result<Uuid, StoreError> {
        self.get_opt_uuid(column)?
            .ok_or_else(|| StoreError::Corrupt("a stored UUID is null".into()))
    }

    pub(crate) fn get_opt_uuid(&self, column: impl Index) -> Result<Option<Uuid>, StoreError> {
        match self {
            Row::Sqlite(row) => row
                .try_get::<Option<String>, _>(column)?
                .map(|text| {
                    Uuid::parse_str(&text)
                        .map_err(|_| StoreError::Corrupt(format!("stored UUID {text:?}")))
                })
                .transpose(),
            Row::Postgres(row) => Ok(row.try_get(column)?),
        }
    }

    pub(crate) fn get_time(&self, column: impl Index) -> Result<OffsetDateTime, StoreError> {
        self.get_opt_time(column)?
            .ok_or_else(|| StoreError::Corrupt("a stored timestamp is null".into()))
    }

    pub(crate) fn get_opt_time(
        &self,
        column: impl Index,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        match self {
            Row::Sqlite(row) => row
                .try_get::<Option<String>, _>(column)?
                .map(|text| timestamp::from_text(&text))
                .transpose(),
            Row::Postgres(row) => Ok(row.try_get(column)?),
        }
    }

    /// One fetched value as table-query JSON, decoded by its column's kind.
    pub(crate) fn cell(&self, index: usize, column: &Column) -> Result<Value, StoreError> {
        let text = || self.get::<Option<String>>(index);
        Ok(match column.kind {
            Kind::Uuid => self
                .get_opt_uuid(index)?
                .map_or(Value::Null, |u| Value::String(u.hyphenated().to_string())),
            Kind::Text | Kind::Enum(_) => text()?.map_or(Value::Null, Value::String),
            Kind::Time => match self.get_opt_time(index)? {
                Some(at) => sql::time_json(at)?,
                None => Value::Null,
            },
            Kind::Bool => self
                .get::<Option<bool>>(index)?
                .map_or(Value::Null, Value::Bool),
            Kind::Int => self
                .get::<Option<i64>>(index)?
                .map_or(Value::Null, Value::from),
            Kind::Json => match text()? {
                Some(text) => sql::json(&text)?,
                None => Value::Null,
            },
            Kind::Tags => match text()? {
                Some(text) => Value::from(sql::tags(&text)?),
                None => Value::Null,
            },
        })
    }
}
