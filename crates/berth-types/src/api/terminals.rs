//! Around the terminal: members of shared workspaces, recordings, grids.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    GridId, Layout, MemberRole, PaneTarget, RecordingId, SessionRole, TerminalTarget,
    Unavailability, Username, WorkspaceId,
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
    /// What each pane shows, pane 0 first (at most the layout's panes): a workspace id,
    /// `{"workspace": ID}` or `{"machine": ID}`.
    #[serde(default)]
    pub panes: Vec<PaneTarget>,
}

/// `PUT /api/v1/grids/{id}/panes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPanes {
    /// A new layout (default: keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// What each pane shows, pane 0 first: a workspace id, `{"workspace": ID}` or
    /// `{"machine": ID}`.
    pub panes: Vec<PaneTarget>,
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
    /// Pane `n` shows `panes[n]`: a workspace's id (as before grids had machines) or
    /// `{"machine": ID}`.
    pub panes: Vec<PaneTarget>,
    /// The grid's page.
    pub page_url: String,
}

/// What `connect-all` found for a pane: its session is open, or why it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PaneState {
    /// Its session is open and held for the grid's socket.
    Connected,
    /// A workspace that is not running.
    NotRunning,
    /// A machine that is not enrolled.
    NotEnrolled,
    /// A machine that could not be reached.
    Unreachable,
    /// A machine whose host key is unknown or changed.
    HostKey,
    /// A machine that refused Berth's client key.
    Auth,
    /// Gone, or not the caller's to open.
    NotFound,
    /// The terminal failed on the server's side (the cause is in Berth's log).
    Failed,
}

impl PaneState {
    /// The state of a pane whose target is unavailable for `reason`.
    #[must_use]
    pub fn unavailable(reason: Unavailability) -> Self {
        match reason {
            Unavailability::NotRunning => Self::NotRunning,
            Unavailability::NotEnrolled => Self::NotEnrolled,
            Unavailability::Unreachable => Self::Unreachable,
            Unavailability::HostKey => Self::HostKey,
            Unavailability::Auth => Self::Auth,
        }
    }
}

impl fmt::Display for PaneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connected => "connected",
            Self::NotRunning => "not-running",
            Self::NotEnrolled => "not-enrolled",
            Self::Unreachable => "unreachable",
            Self::HostKey => "host-key",
            Self::Auth => "auth",
            Self::NotFound => "not-found",
            Self::Failed => "failed",
        })
    }
}

/// One pane as `connect-all` left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaneStatus {
    /// Its number, from 0 at the top left, row by row.
    pub pane: usize,
    /// What it shows.
    pub target: TerminalTarget,
    /// The workspace it shows, for a workspace pane (as before grids had machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceId>,
    /// Whether its session opened, or why not.
    pub state: PaneState,
    /// `owner@template` or `user@machine`; empty for a pane that is `not-found`.
    pub title: String,
    /// Why it did not open, for people; empty when it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `POST /api/v1/grids/{id}/connect-all`: every pane's session was opened at once; those that
/// opened are held for the grid's socket for [`ConnectAll::held_seconds`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectAll {
    /// The grid's socket, relative to the server.
    pub ws_url: String,
    /// Every pane.
    pub panes: Vec<PaneStatus>,
    /// How long the opened sessions wait for the grid's socket before they are closed.
    pub held_seconds: u64,
}
