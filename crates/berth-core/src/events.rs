//! Changes other parts of Berth (dashboards over SSE, metrics) subscribe to.

use berth_store::{Workspace, WorkspaceState};
use berth_types::WorkspaceId;

/// Something happened to a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceEvent {
    /// It moved to a new state (the record as stored afterwards).
    Changed(Box<Workspace>),
    /// It was deleted.
    Deleted(WorkspaceId),
    /// A terminal attached or detached; `attached` is the count now.
    Attachments {
        /// The workspace.
        id: WorkspaceId,
        /// Terminals attached now.
        attached: u32,
    },
}

impl WorkspaceEvent {
    /// The workspace's state after the event, when it changed.
    #[must_use]
    pub fn state(&self) -> Option<WorkspaceState> {
        match self {
            Self::Changed(workspace) => Some(workspace.state),
            _ => None,
        }
    }
}
