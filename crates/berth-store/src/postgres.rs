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
    Store, StoreError, TableQuery, TableResult, Workspace, WorkspaceFilter, WorkspaceState,
    members, recordings, sql, timestamp,
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

fn workspace_row(row: &PgRow) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: WorkspaceId::from(row.try_get::<Uuid, _>("id")?),
        owner: sql::username(row.try_get("owner")?)?,
        template: row.try_get("template")?,
        state: sql::state(row.try_get("state")?)?,
        container_id: row.try_get("container_id")?,
        persistent: row.try_get("persistent")?,
        network: row.try_get("network")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        last_activity: row.try_get("last_activity")?,
        expires_at: row.try_get("expires_at")?,
        state_reason: row.try_get("state_reason")?,
    })
}

fn client_row(row: &PgRow) -> Result<Client, StoreError> {
    Ok(Client {
        client_id: row.try_get::<Uuid, _>("client_id")?.into(),
        username: sql::username(row.try_get("username")?)?,
        hostname: row.try_get("hostname")?,
        version: row.try_get("version")?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        last_ip: sql::ip(row.try_get("last_ip")?)?,
        local_workspaces: sql::json(row.try_get("local_workspaces")?)?,
    })
}

fn member_row(row: &PgRow) -> Result<Member, StoreError> {
    Ok(Member {
        workspace: WorkspaceId::from(row.try_get::<Uuid, _>("workspace_id")?),
        username: sql::username(row.try_get("username")?)?,
        role: members::role(row.try_get("role")?)?,
        added_by: sql::username(row.try_get("added_by")?)?,
        added_at: row.try_get("added_at")?,
    })
}

fn recording_row(row: &PgRow) -> Result<Recording, StoreError> {
    Ok(Recording {
        id: RecordingId::from(row.try_get::<Uuid, _>("id")?),
        workspace: WorkspaceId::from(row.try_get::<Uuid, _>("workspace_id")?),
        owner: sql::username(row.try_get("owner")?)?,
        username: sql::username(row.try_get("username")?)?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        path: row.try_get("path")?,
        bytes: recordings::bytes_from_db(row.try_get("bytes")?)?,
        width: recordings::dimension(row.try_get("width")?)?,
        height: recordings::dimension(row.try_get("height")?)?,
    })
}

fn bind_all<'q>(mut query: Query<'q>, binds: &[Bind]) -> Query<'q> {
    for value in binds {
        query = match value {
            Bind::Text(text) => query.bind(text.clone()),
            Bind::Int(n) => query.bind(*n),
            Bind::Bool(b) => query.bind(*b),
            Bind::Uuid(u) => query.bind(*u),
            Bind::Time(at) => query.bind(*at),
        };
    }
    query
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

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn insert_workspace(&self, w: &Workspace) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_WORKSPACE)
            .bind(w.id.as_uuid())
            .bind(w.owner.as_str())
            .bind(&w.template)
            .bind(w.state.as_str())
            .bind(&w.container_id)
            .bind(w.persistent)
            .bind(&w.network)
            .bind(ts(w.created_at)?)
            .bind(opt_ts(w.started_at)?)
            .bind(ts(w.last_activity)?)
            .bind(opt_ts(w.expires_at)?)
            .bind(&w.state_reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_workspace(&self, workspace: WorkspaceId) -> Result<Workspace, StoreError> {
        let row = sqlx::query(sql::GET_WORKSPACE)
            .bind(workspace.as_uuid())
            .fetch_one(&self.pool)
            .await?;
        workspace_row(&row)
    }

    async fn list_workspaces(
        &self,
        filter: &WorkspaceFilter,
    ) -> Result<Vec<Workspace>, StoreError> {
        let (text, binds) = sql::list_workspaces(filter);
        let mut query = sqlx::query(AssertSqlSafe(text));
        for value in binds {
            query = query.bind(value);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(workspace_row)
            .collect()
    }

    async fn update_workspace_state(
        &self,
        workspace: WorkspaceId,
        update: &StateUpdate,
    ) -> Result<Workspace, StoreError> {
        let row = sqlx::query(sql::UPDATE_WORKSPACE_STATE)
            .bind(workspace.as_uuid())
            .bind(update.state.as_str())
            .bind(&update.reason)
            .bind(&update.container_id)
            .bind(opt_ts(update.started_at)?)
            .bind(opt_ts(update.expires_at)?)
            .bind(update.expect.map(WorkspaceState::as_str))
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return workspace_row(&row);
        }
        let now: String = sqlx::query_scalar(sql::WORKSPACE_STATE)
            .bind(workspace.as_uuid())
            .fetch_one(&self.pool)
            .await?;
        Err(sql::cas_conflict(workspace, &now, update))
    }

    async fn touch_workspaces(
        &self,
        touches: &[(WorkspaceId, OffsetDateTime)],
    ) -> Result<u64, StoreError> {
        if touches.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for (workspace, at) in touches {
            changed += sqlx::query(sql::TOUCH_WORKSPACE)
                .bind(workspace.as_uuid())
                .bind(ts(*at)?)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn delete_workspace(&self, workspace: WorkspaceId) -> Result<(), StoreError> {
        let done = sqlx::query(sql::DELETE_WORKSPACE)
            .bind(workspace.as_uuid())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn count_workspaces(
        &self,
        owner: &Username,
        states: &[WorkspaceState],
    ) -> Result<u32, StoreError> {
        if states.is_empty() {
            return Ok(0);
        }
        let (text, binds) = sql::count_workspaces(owner, states);
        let mut query = sqlx::query_scalar(AssertSqlSafe(text));
        for value in binds {
            query = query.bind(value);
        }
        Ok(sql::count(query.fetch_one(&self.pool).await?))
    }

    async fn record_pings(&self, pings: &[ClientPing]) -> Result<(), StoreError> {
        if pings.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for ping in pings {
            sqlx::query(sql::UPSERT_PING)
                .bind(ping.client_id.as_uuid())
                .bind(ping.username.as_str())
                .bind(&ping.hostname)
                .bind(&ping.version)
                .bind(ts(ping.at)?)
                .bind(ping.ip.to_string())
                .bind(ping.local_workspaces.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_clients(&self, username: Option<&Username>) -> Result<Vec<Client>, StoreError> {
        sqlx::query(sql::LIST_CLIENTS)
            .bind(username.map(Username::as_str))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(client_row)
            .collect()
    }

    async fn record_login_attempt(
        &self,
        username: &str,
        ip: IpAddr,
        success: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        check_login_username(username)?;
        sqlx::query(sql::INSERT_LOGIN_ATTEMPT)
            .bind(username)
            .bind(ip.to_string())
            .bind(success)
            .bind(ts(at)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn recent_failures(
        &self,
        username: &str,
        since: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(sql::RECENT_FAILURES)
            .bind(username)
            .bind(ts(since)?)
            .fetch_one(&self.pool)
            .await?;
        Ok(sql::count(n))
    }

    async fn prune_login_attempts(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::PRUNE_LOGIN_ATTEMPTS)
            .bind(ts(before)?)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(sql::APPEND_AUDIT)
            .bind(ts(entry.at)?)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(entry.ip.map(|ip| ip.to_string()))
            .bind(entry.details.to_string())
            .bind(entry.outcome.as_str())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn query_table(
        &self,
        query: &TableQuery,
        scope: Option<&Username>,
    ) -> Result<TableResult, StoreError> {
        let plan = plan::plan(query, scope)?;
        let total: i64 = bind_all(
            sqlx::query(AssertSqlSafe(plan.count.text.clone())),
            &plan.count.binds,
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        let rows = bind_all(
            sqlx::query(AssertSqlSafe(plan.select.text.clone())),
            &plan.select.binds,
        )
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(|row| {
                plan.fetched
                    .iter()
                    .enumerate()
                    .map(|(i, column)| cell(row, i, column))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(plan.finish(rows, total))
    }

    async fn put_member(&self, member: &Member) -> Result<(), StoreError> {
        sqlx::query(members::PUT_MEMBER)
            .bind(member.workspace.as_uuid())
            .bind(member.username.as_str())
            .bind(member.role.as_str())
            .bind(member.added_by.as_str())
            .bind(ts(member.added_at)?)
            .execute(&self.pool)
            .await
            .map_err(members::put_error)?;
        Ok(())
    }

    async fn remove_member(
        &self,
        workspace: WorkspaceId,
        username: &Username,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(members::REMOVE_MEMBER)
            .bind(workspace.as_uuid())
            .bind(username.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn remove_memberships(&self, username: &Username) -> Result<u64, StoreError> {
        let done = sqlx::query(members::REMOVE_MEMBERSHIPS)
            .bind(username.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn rename_member(&self, from: &Username, to: &Username) -> Result<u64, StoreError> {
        let done = sqlx::query(members::RENAME_MEMBER)
            .bind(from.as_str())
            .bind(to.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn list_members(&self, workspace: WorkspaceId) -> Result<Vec<Member>, StoreError> {
        sqlx::query(members::LIST_MEMBERS)
            .bind(workspace.as_uuid())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(member_row)
            .collect()
    }

    async fn member_role(
        &self,
        workspace: WorkspaceId,
        username: &Username,
    ) -> Result<Option<MemberRole>, StoreError> {
        let role: Option<String> = sqlx::query_scalar(members::MEMBER_ROLE)
            .bind(workspace.as_uuid())
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await?;
        role.as_deref().map(members::role).transpose()
    }

    async fn insert_recording(&self, r: &Recording) -> Result<(), StoreError> {
        recordings::check_path(&r.path)?;
        sqlx::query(recordings::INSERT_RECORDING)
            .bind(r.id.as_uuid())
            .bind(r.workspace.as_uuid())
            .bind(r.owner.as_str())
            .bind(r.username.as_str())
            .bind(ts(r.started_at)?)
            .bind(opt_ts(r.ended_at)?)
            .bind(&r.path)
            .bind(recordings::bytes_to_db(r.bytes)?)
            .bind(i32::from(r.width))
            .bind(i32::from(r.height))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_recording(
        &self,
        recording: RecordingId,
        ended_at: OffsetDateTime,
        bytes: u64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(recordings::FINISH_RECORDING)
            .bind(recording.as_uuid())
            .bind(ts(ended_at)?)
            .bind(recordings::bytes_to_db(bytes)?)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn get_recording(&self, recording: RecordingId) -> Result<Recording, StoreError> {
        let row = sqlx::query(recordings::GET_RECORDING)
            .bind(recording.as_uuid())
            .fetch_one(&self.pool)
            .await?;
        recording_row(&row)
    }

    async fn list_recordings(&self, workspace: WorkspaceId) -> Result<Vec<Recording>, StoreError> {
        sqlx::query(recordings::LIST_RECORDINGS)
            .bind(workspace.as_uuid())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(recording_row)
            .collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
