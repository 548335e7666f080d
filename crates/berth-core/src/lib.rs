//! Berth's services, tying configuration, store and runtime together behind traits.
//!
//! The [`Workspaces`] manager owns a workspace's life: it checks what a user may start (through a
//! [`Policy`], which the server implements over the YAML configuration), claims a pre-started
//! container from a pool or creates one, records every state change in the [`Store`], stops idle
//! workspaces and removes expired ones, and at start-up reconciles the database with what the
//! engine actually runs, then follows the engine's events so a container killed or removed
//! behind its back stops its workspace ([`Workspaces::watch_engine`]). It knows traits, not axum.
//!
//! [`Terminals`] runs terminal sessions below the HTTP layer ([`bridge`]): who may attach to a
//! workspace and as what (owner, members as peers or viewers, admins; see [`SessionRole`]),
//! the protocol loop over any `Sink`/`Stream` with bounded buffers, presence, grids, the audit
//! of attaches and detaches, and [`Recordings`] of sessions as asciicast v2 files.
//!
//! [`Clusters`] runs ephemeral Kubernetes clusters through a provider (`berth-clusters`):
//! provisioning, readiness, sealed kubeconfigs, TTLs and their reaper, reconciliation.
//!
//! [`Store`]: berth_store::Store
#![forbid(unsafe_code)]

mod accounts;
mod audit;
pub mod bridge;
mod clock;
pub mod clusters;
mod error;
mod events;
pub mod fleet;
pub mod gateway;
mod live_config;
mod members;
pub mod operations;
mod plan;
mod policy;
mod pool;
mod reconcile;
mod recordings;
mod records;
mod sweep;
mod terminal;
mod watch;
mod workspaces;

pub use accounts::{
    AccountError, AccountResources, Accounts, ClusterResources, InviteResources,
    MembershipResources, RecordingResources, WorkspaceResources,
};
pub use audit::{ANONYMOUS_ACTOR, Actor, Audit, AuditAction, AuditEvent, SYSTEM_ACTOR};
pub use berth_clusters::{Kubeconfig, KubeconfigKey};
/// The records the services hand out, defined with their stores: callers above the core (the
/// server) name them through here and never depend on the store crate.
pub use berth_store::{
    AuditOutcome, Client, ClientPing, LoginPressure, Member, MemberRole, Recording, RecordingId,
    StoreError, TableQuery, TableResult, WebSession, Workspace, WorkspaceFilter, WorkspaceState,
};
pub use berth_store::{
    ClusterFilter, ClusterRecord, InviteRecord, InviteUse, MachineRecord, MachineSpec, SyncRecord,
    TableScope,
};
pub use berth_types::SessionRole;
pub use bridge::{AttachRequest, TerminalSession, Terminals};
pub use clock::{Clock, ManualClock, SystemClock};
pub use clusters::{ClusterError, ClusterEvent, ClusterReconcile, Clusters, ClustersSettings};
pub use error::WorkspaceError;
pub use events::WorkspaceEvent;
pub use fleet::{
    Fleet, FleetError, FleetEvent, FleetSettings, FleetStatus, MachineAccess, MachineTerminals,
};
pub use live_config::LiveConfig;
pub use operations::{OperationError, Operations, OperationsSettings, Requester};
pub use plan::{Persistence, Plan, Policy, StartOptions};
pub use policy::{
    ConfigPolicy, SpecLimits, allowed_templates, network_mode, role_of, template_spec,
};
pub use reconcile::{ReconcileReport, Unsettled};
pub use recordings::{
    Expired, MAX_RECORDING_BYTES, RECORDER_QUEUE, Recorder, RecordingError, RecordingFile,
    RecordingStart, Recordings, Retention, Utf8Stream,
};
pub use records::{Clients, Invites, Logins, Tables, WebSessions, invite_hash};
pub use terminal::{Activity, Terminal, WorkspaceTerminals};
pub use workspaces::{Liveness, OwnerRemoval, Workspaces, WorkspacesSettings};
