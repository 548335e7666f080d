//! Workspace records: what the workspace manager knows about each container it started.

use std::fmt;
use std::str::FromStr;

use berth_types::{Username, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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

/// Which workspaces [`crate::Store::list_workspaces`] returns. The default is all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceFilter {
    /// Only this user's workspaces.
    pub owner: Option<Username>,
    /// Only workspaces in one of these states; empty means any state.
    pub states: Vec<WorkspaceState>,
    /// Only workspaces this user is a member of (shared with them).
    pub member: Option<Username>,
}

/// A state change for [`crate::Store::update_workspace_state`].
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
