//! Identifiers and wire types shared by every Berth crate.
//!
//! This crate knows serde and nothing else of the world: no I/O, no HTTP, no files. Types that
//! carry an invariant (a [`Username`] is always valid) enforce it when they are built or
//! deserialized, so the rest of Berth never re-checks them.
#![forbid(unsafe_code)]

// First: its `named_enum!` serves the modules below.
#[macro_use]
pub mod fleet;

pub mod api;
pub mod cluster;
pub mod grid;
mod ids;
mod image;
pub mod operation;
pub mod repository;
mod target;
pub mod template;
pub mod terminal;
pub mod units;
mod user;

pub use cluster::{ClusterName, ClusterNameError, ClusterState};
pub use fleet::{
    Changes, EnrollmentStatus, HealthStatus, MachineSelector, MachineSelectorError, SyncChanges,
    SyncFileError, SyncResult, SyncTrigger,
};
pub use ids::{ClientId, ClusterId, GridId, InviteId, OperationId, RecordingId, UserId, WorkspaceId};
pub use image::{ImageRef, ImageRefError};
pub use target::{
    MachineId, MachineIdError, PaneTarget, TargetError, TargetKind, TerminalTarget, Unavailability,
};
pub use terminal::{Layout, MemberRole, SessionRole};
pub use user::{Role, Username, UsernameError};
