//! The PostgreSQL backend, for deployments that outgrow one SQLite file or want the database
//! managed apart from the server.
//!
//! UUIDs and timestamps use the native `uuid` and `timestamptz` types; text columns are
//! declared `COLLATE "C"` so sorting and keyset comparisons are byte order, exactly as in
//! SQLite, whatever the database's locale. sqlx is built without TLS: connect over loopback or
//! a unix socket (`docs/store.md`).

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use berth_types::{Username, WorkspaceId};
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::redact_location;
use crate::store::check_login_username;
use crate::tables::plan::{self, Bind};
use crate::tables::schema::{Column, Kind};
use crate::{
    Client, ClientPing, Member, MemberRole, NewAuditEntry, Recording, RecordingId, StateUpdate,
    Store, StoreError, TableQuery, TableResult, WebSession, Workspace, WorkspaceFilter,
    WorkspaceState, members, recordings, sessions, sql, timestamp,
};

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Runtime state in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, or
    /// `postgres:///database?host=/run/postgresql` for a unix socket) and applies pending
    /// migrations. Several servers may start at once: migrations take an advisory lock.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidLocation {
                location: redact_location(url),
                reason: e.to_string(),
            })?
            .application_name("berth");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Checks the range (the same years SQLite accepts) and precision of a timestamp.
fn ts(at: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    timestamp::checked(at)
}

fn opt_ts(at: Option<OffsetDateTime>) -> Result<Option<OffsetDateTime>, StoreError> {
    at.map(ts).transpose()
}

fn bind_all<'q>(mut query: Query<'q>, binds: &[Bind]) -> Result<Query<'q>, StoreError> {
    for value in binds {
        query = match value {
            Bind::Text(text) => query.bind(text.clone()),
            Bind::Int(n) => query.bind(*n),
            Bind::Bool(b) => query.bind(*b),
            Bind::Uuid(u) => query.bind(*u),
            Bind::Time(at) => query.bind(ts(*at)?),
        };
    }
    Ok(query)
}

/// One fetched value as table-query JSON.
fn cell(row: &PgRow, index: usize, column: &Column) -> Result<Value, StoreError> {
    Ok(match column.kind {
        Kind::Uuid => row
            .try_get::<Option<Uuid>, _>(index)?
            .map_or(Value::Null, |u| Value::String(u.hyphenated().to_string())),
        Kind::Text | Kind::Enum(_) => row
            .try_get::<Option<String>, _>(index)?
            .map_or(Value::Null, Value::String),
        Kind::Time => match row.try_get::<Option<OffsetDateTime>, _>(index)? {
            Some(at) => sql::time_json(at)?,
            None => Value::Null,
        },
        Kind::Bool => row
            .try_get::<Option<bool>, _>(index)?
            .map_or(Value::Null, Value::Bool),
        Kind::Int => row
            .try_get::<Option<i64>, _>(index)?
            .map_or(Value::Null, Value::from),
        Kind::Json => match row.try_get::<Option<String>, _>(index)? {
            Some(text) => sql::json(&text)?,
            None => Value::Null,
        },
    })
}

fn id(uuid: Uuid) -> Uuid {
    uuid
}

fn get_uuid(row: &PgRow, column: &str) -> Result<Uuid, StoreError> {
    Ok(row.try_get(column)?)
}

fn get_time(row: &PgRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    Ok(row.try_get(column)?)
}

fn get_opt_time(row: &PgRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    Ok(row.try_get(column)?)
}

async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin().await
}

crate::backend::sql_store!(PostgresStore, PgRow, "postgres");
