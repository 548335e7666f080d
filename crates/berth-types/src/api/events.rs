//! `GET /api/v1/events`: a WebSocket that pushes the caller's workspace and cluster changes.
//! The server sends JSON text messages and reads nothing but pings and the close frame.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ClusterView, WorkspaceView};
use crate::{ClusterId, WorkspaceId};

/// One message of `GET /api/v1/events`. The first is a `snapshot`; after it, changes as they
/// happen. A client that falls too far behind gets a new `snapshot` instead of the changes it
/// missed, so it never has to poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// Everything the caller sees now: their workspaces and clusters (admins: everyone's).
    Snapshot {
        /// Workspaces, oldest first.
        workspaces: Vec<WorkspaceView>,
        /// Clusters that are not deleted, oldest first.
        clusters: Vec<ClusterView>,
    },
    /// A workspace changed; the record as it is now.
    Workspace {
        /// The workspace.
        workspace: Box<WorkspaceView>,
    },
    /// A workspace was deleted.
    WorkspaceDeleted {
        /// Its id.
        id: WorkspaceId,
    },
    /// A cluster changed (a `deleted` one is gone from the provider); the record as it is
    /// now.
    Cluster {
        /// The cluster.
        cluster: Box<ClusterView>,
    },
    /// A cluster's row was removed (its owner was deleted).
    ClusterRemoved {
        /// Its id.
        id: ClusterId,
    },
}
