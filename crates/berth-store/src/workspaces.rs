//! Workspace records: what the workspace manager knows about each container it started, and
//! [`WorkspaceStore`], the store that owns them.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use berth_types::{Username, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore};
use crate::{StoreError, sql};

/// Where a workspace is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceState {
    /// Recorded, container not created yet.
    Pending,
    /// Container being created or started.
    Starting,
    /// Container running; users may attach.
    Running,
    /// Container being stopped.
    Stopping,
    /// Container stopped (kept if persistent, removed otherwise).
    Stopped,
    /// Something went wrong; `state_reason` says what.
    Failed,
}

impl WorkspaceState {
    /// Every state, in life order.
    pub const ALL: [WorkspaceState; 6] = [
        Self::Pending,
        Self::Starting,
        Self::Running,
        Self::Stopping,
        Self::Stopped,
        Self::Failed,
    ];

    /// The states that hold (or are about to hold) a container: what quotas count.
    pub const LIVE: [WorkspaceState; 4] =
        [Self::Pending, Self::Starting, Self::Running, Self::Stopping];

    /// The name stored in the database and used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    pub(crate) const NAMES: [&'static str; 6] = [
        "pending", "starting", "running", "stopping", "stopped", "failed",
    ];
}

impl fmt::Display for WorkspaceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`WorkspaceState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workspace state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for WorkspaceState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// One workspace row. Pool containers that no user has claimed yet are not workspaces and are
/// not stored (see `docs/store.md`); a claimed one is inserted like any other workspace.
///
/// Timestamps come back normalized (UTC, microseconds; see [`crate::normalize_time`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// The workspace id.
    pub id: WorkspaceId,
    /// The user who owns it.
    pub owner: Username,
    /// The template it was started from.
    pub template: String,
    /// Where it is in its life.
    pub state: WorkspaceState,
    /// The Docker container id, once created.
    pub container_id: Option<String>,
    /// Persistent workspaces keep their container when stopped and have no TTL.
    pub persistent: bool,
    /// The Docker network it is attached to (`none`, `host`, a named network).
    pub network: String,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its container last reached `running`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// The last terminal input or client ping for it; idle culling reads this.
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity: OffsetDateTime,
    /// When its TTL runs out, if it has one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Why it is in its state, for people: "idle for 15m", "ttl reached", "stopped by alice".
    pub state_reason: String,
}

/// Which workspaces [`WorkspaceStore::list_workspaces`] returns. The default is all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceFilter {
    /// Only this user's workspaces.
    pub owner: Option<Username>,
    /// Only workspaces in one of these states; empty means any state.
    pub states: Vec<WorkspaceState>,
    /// Only workspaces this user is a member of (shared with them).
    pub member: Option<Username>,
}

/// A state change for [`WorkspaceStore::update_workspace_state`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateUpdate {
    /// The new state.
    pub state: WorkspaceState,
    /// Why, for people.
    pub reason: String,
    /// Compare-and-set guard: apply only if the workspace is in this state now, else
    /// [`crate::StoreError::Conflict`]. `None` applies unconditionally.
    pub expect: Option<WorkspaceState>,
    /// Sets the container id when `Some`; keeps the stored one when `None`.
    pub container_id: Option<String>,
    /// Sets `started_at` when `Some`.
    pub started_at: Option<OffsetDateTime>,
    /// Sets `expires_at` when `Some`.
    pub expires_at: Option<OffsetDateTime>,
}

impl StateUpdate {
    /// A move to `state` for `reason`, unconditional and touching nothing else.
    pub fn to(state: WorkspaceState, reason: impl Into<String>) -> Self {
        Self {
            state,
            reason: reason.into(),
            expect: None,
            container_id: None,
            started_at: None,
            expires_at: None,
        }
    }

    /// Applies only if the workspace is in `state` now.
    #[must_use]
    pub fn expecting(mut self, state: WorkspaceState) -> Self {
        self.expect = Some(state);
        self
    }

    /// Also records the container id.
    #[must_use]
    pub fn with_container(mut self, container_id: impl Into<String>) -> Self {
        self.container_id = Some(container_id.into());
        self
    }

    /// Also records when the container started.
    #[must_use]
    pub fn started(mut self, at: OffsetDateTime) -> Self {
        self.started_at = Some(at);
        self
    }

    /// Also records when the TTL runs out.
    #[must_use]
    pub fn expiring(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// The workspaces table: one row per workspace, whatever its state, until it is deleted. Its
/// members ([`crate::MemberStore`]) go with it; its recordings ([`crate::RecordingStore`])
/// stay.
#[async_trait]
pub trait WorkspaceStore: Send + Sync + fmt::Debug {
    /// Records a new workspace. [`StoreError::Conflict`] if the id is taken.
    async fn insert_workspace(&self, workspace: &Workspace) -> Result<(), StoreError>;

    /// One workspace. [`StoreError::NotFound`] if there is none with this id.
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace, StoreError>;

    /// The workspaces `filter` selects, oldest first.
    async fn list_workspaces(&self, filter: &WorkspaceFilter)
    -> Result<Vec<Workspace>, StoreError>;

    /// Moves a workspace to a new state and returns it as stored afterwards.
    /// [`StoreError::NotFound`] if it does not exist; [`StoreError::Conflict`] if
    /// `update.expect` is set and the workspace is in another state (someone else moved it).
    async fn update_workspace_state(
        &self,
        id: WorkspaceId,
        update: &StateUpdate,
    ) -> Result<Workspace, StoreError>;

    /// Records activity for many workspaces in one transaction. `last_activity` only moves
    /// forward; ids that no longer exist are skipped. Returns how many rows changed.
    async fn touch_workspaces(
        &self,
        touches: &[(WorkspaceId, OffsetDateTime)],
    ) -> Result<u64, StoreError>;

    /// Forgets a workspace. [`StoreError::NotFound`] if it does not exist.
    async fn delete_workspace(&self, id: WorkspaceId) -> Result<(), StoreError>;

    /// How many of `owner`'s workspaces are in one of `states` (quotas count
    /// [`WorkspaceState::LIVE`]).
    async fn count_workspaces(
        &self,
        owner: &Username,
        states: &[WorkspaceState],
    ) -> Result<u32, StoreError>;
}

fn workspace_row(row: &Row) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: WorkspaceId::from(row.get_uuid("id")?),
        owner: sql::username(row.get_str("owner")?)?,
        template: row.get_str("template")?,
        state: sql::state(&row.get_str("state")?)?,
        container_id: row.get_opt_str("container_id")?,
        persistent: row.get_bool("persistent")?,
        network: row.get_str("network")?,
        created_at: row.get_time("created_at")?,
        started_at: row.get_opt_time("started_at")?,
        last_activity: row.get_time("last_activity")?,
        expires_at: row.get_opt_time("expires_at")?,
        state_reason: row.get_str("state_reason")?,
    })
}

#[async_trait]
impl WorkspaceStore for SqlStore {
    async fn insert_workspace(&self, w: &Workspace) -> Result<(), StoreError> {
        self.execute(
            sql::INSERT_WORKSPACE,
            &[
                Bind::Uuid(w.id.as_uuid()),
                Bind::text(w.owner.as_str()),
                Bind::text(&w.template),
                Bind::text(w.state.as_str()),
                Bind::OptText(w.container_id.clone()),
                Bind::Bool(w.persistent),
                Bind::text(&w.network),
                Bind::Time(w.created_at),
                Bind::OptTime(w.started_at),
                Bind::Time(w.last_activity),
                Bind::OptTime(w.expires_at),
                Bind::text(&w.state_reason),
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace, StoreError> {
        let row = self
            .fetch_one(sql::GET_WORKSPACE, &[Bind::Uuid(id.as_uuid())])
            .await?;
        workspace_row(&row)
    }

    async fn list_workspaces(
        &self,
        filter: &WorkspaceFilter,
    ) -> Result<Vec<Workspace>, StoreError> {
        let (text, binds) = sql::list_workspaces(filter);
        let binds: Vec<Bind> = binds.into_iter().map(Bind::Text).collect();
        self.fetch_all(text, &binds)
            .await?
            .iter()
            .map(workspace_row)
            .collect()
    }

    async fn update_workspace_state(
        &self,
        id: WorkspaceId,
        update: &StateUpdate,
    ) -> Result<Workspace, StoreError> {
        let row = self
            .fetch_optional(
                sql::UPDATE_WORKSPACE_STATE,
                &[
                    Bind::Uuid(id.as_uuid()),
                    Bind::text(update.state.as_str()),
                    Bind::text(&update.reason),
                    Bind::OptText(update.container_id.clone()),
                    Bind::OptTime(update.started_at),
                    Bind::OptTime(update.expires_at),
                    Bind::OptText(update.expect.map(|s| s.as_str().to_owned())),
                ],
            )
            .await?;
        if let Some(row) = row {
            return workspace_row(&row);
        }
        let now = self
            .fetch_one(sql::WORKSPACE_STATE, &[Bind::Uuid(id.as_uuid())])
            .await?
            .get_str("state")?;
        Err(sql::cas_conflict(id, &now, update))
    }

    async fn touch_workspaces(
        &self,
        touches: &[(WorkspaceId, OffsetDateTime)],
    ) -> Result<u64, StoreError> {
        if touches.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut changed = 0;
        for (id, at) in touches {
            changed += tx
                .execute(
                    sql::TOUCH_WORKSPACE,
                    &[Bind::Uuid(id.as_uuid()), Bind::Time(*at)],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn delete_workspace(&self, id: WorkspaceId) -> Result<(), StoreError> {
        let deleted = self
            .execute(sql::DELETE_WORKSPACE, &[Bind::Uuid(id.as_uuid())])
            .await?;
        if deleted == 0 {
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
        let binds: Vec<Bind> = binds.into_iter().map(Bind::Text).collect();
        let row = self.fetch_one(text, &binds).await?;
        Ok(sql::count(row.get_i64(0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn workspaces_serialize_timestamps_as_rfc3339() {
        let at = datetime!(2024-05-01 12:00 UTC);
        let w = Workspace {
            id: WorkspaceId::random(),
            owner: Username::new("alice").unwrap(),
            template: "python".into(),
            state: WorkspaceState::Running,
            container_id: None,
            persistent: false,
            network: "none".into(),
            created_at: at,
            started_at: Some(at),
            last_activity: at,
            expires_at: None,
            state_reason: String::new(),
        };
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["created_at"], "2024-05-01T12:00:00Z");
        assert_eq!(json["started_at"], "2024-05-01T12:00:00Z");
        assert_eq!(json["expires_at"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<Workspace>(json).unwrap(), w);
    }

    #[test]
    fn states_round_trip_through_names() {
        for (state, name) in WorkspaceState::ALL.into_iter().zip(WorkspaceState::NAMES) {
            assert_eq!(state.as_str(), name);
            assert_eq!(name.parse::<WorkspaceState>().unwrap(), state);
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{name}\"")
            );
        }
        assert_eq!(
            "Running".parse::<WorkspaceState>(),
            Err(UnknownState("Running".into()))
        );
    }
}
