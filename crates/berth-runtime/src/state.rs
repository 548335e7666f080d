//! What the runtime reports about containers: ids, states and summaries for reconciliation.

use std::collections::BTreeMap;

/// The label every container (and volume) created by Berth carries.
pub const MANAGED_LABEL: &str = "berth.managed";

/// An engine container id (or name: the engine accepts both wherever an id is expected).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// Wraps an id or name given by the engine or stored earlier.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as the engine knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a container is in its life, as far as Berth cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Running (also paused or restarting: its processes exist).
    Running,
    /// Created but never started, or exited; `exit_code` is `None` for never-started ones.
    Stopped {
        /// The main process's exit code.
        exit_code: Option<i64>,
    },
    /// The engine does not know the container.
    Missing,
}

/// One managed container as listed by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Engine id.
    pub id: ContainerId,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference it was created from.
    pub image: String,
    /// All labels, including Berth's.
    pub labels: BTreeMap<String, String>,
    /// Running or stopped (never `Missing` in a listing).
    pub state: ContainerState,
}

/// Something the engine reports about a managed container, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Engine id of the container.
    pub id: ContainerId,
    /// The container's labels (the engine adds its `name` and `image` attributes).
    pub labels: BTreeMap<String, String>,
    /// What happened.
    pub kind: ContainerEventKind,
}

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEventKind {
    /// It was created (a create the engine finishes after its caller died shows up here).
    Created,
    /// It started.
    Started,
    /// Its main process exited (it stopped, was killed, or ran out of memory).
    Died {
        /// The main process's exit code, when the engine says.
        exit_code: Option<i64>,
    },
    /// It was removed.
    Destroyed,
}
