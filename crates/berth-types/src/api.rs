//! The bodies of Berth's REST API (`/api/v1`), shared by the server and `berth-client`.
//!
//! Every type derives `JsonSchema`: the server's OpenAPI document is generated from these
//! definitions, so the document and the wire cannot drift apart. Request bodies refuse unknown
//! fields. Timestamps are RFC 3339 strings in UTC.
//!
//! Types that embed configuration entries (templates) are generic over the entry type, because
//! this crate knows nothing of the configuration model: the server and the client instantiate
//! them with `berth_config::Template`.

/// Strings without control characters (Unicode `Cc`, what the server refuses), as a JSON
/// Schema pattern.
const PRINTABLE: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";

mod auth;
mod clusters;
mod errors;
mod events;
mod fleet;
mod lab;
mod operations;
mod registration;
mod tables;
mod terminals;
mod users;
mod workspaces;

pub use auth::{LoginRequest, LoginResponse, NewTokenRequest, Secret, TokenResponse};
pub use clusters::{ClusterList, ClusterQuery, ClusterView, ExtendCluster, NewCluster};
pub use errors::{ErrorBody, ErrorDetail};
pub use events::LiveEvent;
pub use fleet::{
    EnrollmentView, FleetSyncStatus, HealthView, MachineList, MachineQuery, MachineView, ProbeView,
    SecretsKeyView, SyncView, TrustHostKey, VerifyAll, WebhookAccepted,
};
pub use lab::{
    ClientConfig, ClientSeen, DiskStats, HostStats, LoadAverage, LocalWorkspace, Me, MemoryStats,
    Monitor, PingRequest, PingResponse, PoolSize, RunningWorkspace, RuntimeDefaults, TemplateList,
    UserLimits,
};
pub use operations::{
    MAX_INLINE_OUTPUT, MAX_OPERATION_MACHINES, MachineRunView, MachineStatusEvent,
    OperationDetailQuery, OperationList, OperationQuery, OperationSelector, OperationStatusEvent,
    OperationView, OutputDetail, OutputEvent, OutputGroup, StartOperation, Timeout,
};
pub use registration::{
    InviteCreated, InviteList, InviteView, NewInvite, RegisterRequest, Registered,
};
pub use tables::{FilterOp, SortKey, TableFilter, TableQuery, TableResult};
pub use terminals::{
    AddMember, ConnectAll, ConnectedView, GridView, MemberList, MemberView, NewGrid, PaneState,
    PaneStatus, RecordingList, RecordingView, SetPanes,
};
pub use users::{ClientTokenView, NewSshKey, SshKeyList, SshKeyView, UserBody, UserList, UserView};
pub use workspaces::{
    StartWorkspace, WorkspaceList, WorkspaceQuery, WorkspaceState, WorkspaceView,
};

/// RFC 3339 (de)serialization of optional timestamps, re-exported for the modules below.
pub(crate) use time::serde::rfc3339;
