//! Workspaces: start, list, stop, start again, delete.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Username, WorkspaceId};

/// `POST /api/v1/workspaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartWorkspace {
    /// The template to start (a template name, 1 to 63 characters).
    #[schemars(length(min = 1, max = 63))]
    pub template: String,
    /// Keep the workspace's container and files when it stops (the template decides whether
    /// this may be asked). Absent: the template's default.
    #[serde(default)]
    pub persist: Option<bool>,
    /// A network other than the template's default, among those it allows.
    #[serde(default)]
    pub network: Option<String>,
}

/// Where a workspace is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceState {
    /// Recorded, container not created yet.
    Pending,
    /// Container being created or started.
    Starting,
    /// Running; terminals may attach.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped (its container kept if persistent).
    Stopped,
    /// Something went wrong; `state_reason` says what.
    Failed,
}

impl WorkspaceState {
    /// The name on the wire.
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
}

impl fmt::Display for WorkspaceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workspace as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceView {
    /// The workspace.
    pub id: WorkspaceId,
    /// The template it was started from.
    pub template: String,
    /// Its owner.
    pub owner: Username,
    /// Where it is in its life.
    pub state: WorkspaceState,
    /// Whether it keeps its container and files when stopped.
    pub persistent: bool,
    /// Its network: `none`, `host` or a Docker network's name.
    pub network: String,
    /// When it was created.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created_at: OffsetDateTime,
    /// When its container last reached `running`.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started_at: Option<OffsetDateTime>,
    /// The last terminal activity recorded.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub last_activity: OffsetDateTime,
    /// When its TTL removes it.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub expires_at: Option<OffsetDateTime>,
    /// Why it is in its state, for people.
    pub state_reason: String,
    /// Why a running workspace is kept alive ("idle for 3m of 15m"); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alive_reason: Option<String>,
}

/// `GET /api/v1/workspaces` filters. Users see their own workspaces only; `owner` is for
/// admins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceQuery {
    /// Only this user's workspaces (admins; a user may give only their own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Username>,
    /// Only workspaces in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<WorkspaceState>,
    /// Only workspaces of this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Instead of your own: the workspaces others shared with you (you are a member of).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

/// `GET /api/v1/workspaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceList {
    /// The workspaces, oldest first.
    pub workspaces: Vec<WorkspaceView>,
}
