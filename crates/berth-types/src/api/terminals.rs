//! Around the terminal: members of shared workspaces, recordings, grids.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    GridId, Layout, MemberRole, RecordingId, SessionRole, TerminalTarget, Username, WorkspaceId,
};

/// `POST /api/v1/workspaces/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// An existing user.
    pub username: String,
    /// `peer` or `viewer`.
    pub role: MemberRole,
}

/// One member of a shared workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberView {
    /// The member.
    pub username: Username,
    /// What they may do.
    pub role: MemberRole,
    /// Who added them (or last changed their role).
    pub added_by: Username,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub added_at: OffsetDateTime,
}

/// Someone attached to the terminal now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectedView {
    /// Who.
    pub username: Username,
    /// `owner`, `peer` or `viewer`.
    pub role: SessionRole,
}

/// `GET /api/v1/workspaces/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberList {
    /// The workspace's owner.
    pub owner: Username,
    /// Stored members (the owner is not one).
    pub members: Vec<MemberView>,
    /// Who is attached to the terminal now, owner first.
    pub connected: Vec<ConnectedView>,
}

/// One recording's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordingView {
    /// The recording.
    pub id: RecordingId,
    /// What the terminal was opened on.
    pub target: TerminalTarget,
    /// The workspace whose terminal was recorded, for workspace recordings (as before
    /// recordings had targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceId>,
    /// The workspace's owner, who may watch it.
    pub owner: Username,
    /// Who attached.
    pub username: Username,
    /// When the session began.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub started_at: OffsetDateTime,
    /// Empty while the session runs (or if the server stopped without finishing it).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub ended_at: Option<OffsetDateTime>,
    /// The size of the asciicast file.
    pub bytes: u64,
    /// The terminal's width at the start, in columns.
    pub width: u16,
    /// The terminal's height at the start, in rows.
    pub height: u16,
    /// Where to download the asciicast file.
    pub cast_url: String,
}

/// `GET /api/v1/workspaces/{id}/recordings`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordingList {
    /// The recordings the caller may watch.
    pub recordings: Vec<RecordingView>,
}

/// `POST /api/v1/grids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrid {
    /// How the panes are arranged.
    pub layout: Layout,
    /// Workspaces, pane 0 first (at most the layout's panes).
    #[serde(default)]
    pub panes: Vec<WorkspaceId>,
}

/// `PUT /api/v1/grids/{id}/panes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPanes {
    /// A new layout (default: keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// Workspaces, pane 0 first.
    pub panes: Vec<WorkspaceId>,
}

/// A grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GridView {
    /// The grid.
    pub id: GridId,
    /// Who made it.
    pub owner: Username,
    /// How the panes are arranged.
    pub layout: Layout,
    /// Pane `n` shows `panes[n]`.
    pub panes: Vec<WorkspaceId>,
    /// The grid's page.
    pub page_url: String,
}

/// Whether a pane's workspace can be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PaneState {
    /// Running, and the caller may join it.
    Ready,
    /// The caller may join it, but it is not running.
    NotRunning,
    /// Gone, or not the caller's to join.
    NotFound,
}

impl fmt::Display for PaneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ready => "ready",
            Self::NotRunning => "not-running",
            Self::NotFound => "not-found",
        })
    }
}

/// One pane as `connect-all` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaneStatus {
    /// Its number, from 0 at the top left, row by row.
    pub pane: usize,
    /// The workspace it shows.
    pub workspace: WorkspaceId,
    /// Whether it can be shown.
    pub state: PaneState,
    /// `owner@template`, empty for a pane that is `not-found`.
    pub title: String,
}

/// `POST /api/v1/grids/{id}/connect-all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectAll {
    /// The grid's socket, relative to the server.
    pub ws_url: String,
    /// Every pane with a workspace.
    pub panes: Vec<PaneStatus>,
}
