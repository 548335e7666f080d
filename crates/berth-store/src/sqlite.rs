//! The SQLite backend: one file next to the config, the default for a single server.
//!
//! Connections use WAL (readers never block the writer), a 5 s busy timeout (writers queue
//! instead of failing), foreign keys on, and `synchronous=FULL` for every connection: each
//! commit is fsynced, so an audit entry or a login failure that was acknowledged survives a
//! power cut. Berth writes a few transactions per second at most (pings and activity are
//! batched), so the cost is small; `docs/store.md` has the measurement.
//!
//! UUIDs are stored as lowercase hyphenated text and timestamps as fixed-width UTC text (see
//! [`crate::timestamp`]), so text order matches the order PostgreSQL gives the native types.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use berth_types::{Username, WorkspaceId};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite};
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

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Runtime state in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `location`: a path, or an `sqlite:` URL
    /// (`sqlite:///var/lib/berth/berth.db`, `sqlite::memory:`). Applies pending migrations.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        if !location.starts_with("sqlite:") {
            if location.trim().is_empty() {
                return Err(refuse(location, "empty location"));
            }
            return Self::open_path(Path::new(location)).await;
        }
        let options = SqliteConnectOptions::from_str(location)
            .map_err(|e| refuse(location, &e.to_string()))?;
        let in_memory = location.contains(":memory:") || location.contains("mode=memory");
        if !in_memory {
            check_file(options.get_filename(), location)?;
        }
        Self::connect(options, in_memory).await
    }

    /// Opens (creating it if missing) the database file at `path`; its directory must exist.
    pub async fn open_path(path: &Path) -> Result<Self, StoreError> {
        check_file(path, &path.to_string_lossy())?;
        Self::connect(SqliteConnectOptions::new().filename(path), false).await
    }

    async fn connect(options: SqliteConnectOptions, in_memory: bool) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // An in-memory database lives as long as one of its connections: keep exactly one.
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        }
        .connect_with(options)
        .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

fn refuse(location: &str, reason: &str) -> StoreError {
    StoreError::InvalidLocation {
        location: redact_location(location),
        reason: reason.to_owned(),
    }
}

/// SQLite creates the file but not its directory; say so rather than "unable to open".
fn check_file(path: &Path, location: &str) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(refuse(
            location,
            &format!("directory {} does not exist", dir.display()),
        ));
    }
    if path.is_dir() {
        return Err(refuse(location, "is a directory"));
    }
    Ok(())
}

fn id(uuid: Uuid) -> String {
    uuid.hyphenated().to_string()
}

fn ts(at: OffsetDateTime) -> Result<String, StoreError> {
    timestamp::to_text(at)
}

fn opt_ts(at: Option<OffsetDateTime>) -> Result<Option<String>, StoreError> {
    at.map(ts).transpose()
}

fn get_uuid(row: &SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt(format!("stored UUID {text:?}")))
}

fn get_time(row: &SqliteRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    timestamp::from_text(&row.try_get::<String, _>(column)?)
}

fn get_opt_time(row: &SqliteRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.try_get::<Option<String>, _>(column)?
        .map(|t| timestamp::from_text(&t))
        .transpose()
}

fn bind_all<'q>(mut query: Query<'q>, binds: &[Bind]) -> Result<Query<'q>, StoreError> {
    for value in binds {
        query = match value {
            Bind::Text(text) => query.bind(text.clone()),
            Bind::Int(n) => query.bind(*n),
            Bind::Bool(b) => query.bind(*b),
            Bind::Uuid(u) => query.bind(id(*u)),
            Bind::Time(at) => query.bind(ts(*at)?),
        };
    }
    Ok(query)
}

/// One fetched value as table-query JSON.
fn cell(row: &SqliteRow, index: usize, column: &Column) -> Result<Value, StoreError> {
    let text = |row: &SqliteRow| row.try_get::<Option<String>, _>(index);
    Ok(match column.kind {
        Kind::Uuid | Kind::Text | Kind::Enum(_) => text(row)?.map_or(Value::Null, Value::String),
        Kind::Time => match text(row)? {
            Some(t) => sql::time_json(timestamp::from_text(&t)?)?,
            None => Value::Null,
        },
        Kind::Bool => row
            .try_get::<Option<bool>, _>(index)?
            .map_or(Value::Null, Value::Bool),
        Kind::Int => row
            .try_get::<Option<i64>, _>(index)?
            .map_or(Value::Null, Value::from),
        Kind::Json => match text(row)? {
            Some(t) => sql::json(&t)?,
            None => Value::Null,
        },
    })
}

/// SQLite takes the write lock when a write transaction begins, not at its first write: no
/// deadlock between two transactions that both read first.
async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

crate::backend::sql_store!(SqliteStore, SqliteRow, "sqlite");
