//! What the lab client needs: its configuration, liveness pings, and the admin's monitor.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::WorkspaceState;
use crate::{ClientId, Role, Username, WorkspaceId};

/// `GET /api/v1/config`: everything the caller's CLI needs, merged from main.yaml, users.yaml,
/// containers.yaml and the caller's users.d file. `T` is the template entry of containers.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClientConfig<T> {
    /// Who the caller is.
    pub user: Me,
    /// Every template the caller may start, in full, in containers.yaml order: what
    /// `berth start --local` needs to run one on the caller's machine.
    pub templates: Vec<T>,
    /// The caller's limits, after their users.d overrides.
    pub limits: UserLimits,
    /// What a workspace gets when its template says nothing.
    pub defaults: RuntimeDefaults,
    /// How often the CLI should ping, in seconds.
    pub ping_interval_seconds: u32,
}

/// The caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    /// The caller's username.
    pub username: Username,
    /// `admin` or `user`.
    pub role: Role,
    /// Names of the templates the caller may start.
    pub templates: Vec<String>,
}

/// A user's limits: users.d overrides where given, the main.yaml defaults otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserLimits {
    /// Live workspaces the user may have at once.
    pub max_workspaces: u32,
    /// Memory limit of the user's workspaces, in bytes, replacing the template's (users.d).
    pub memory_bytes: Option<u64>,
    /// CPU limit of the user's workspaces, replacing the template's (users.d).
    pub cpus: Option<f64>,
    /// Templates granted by the user's users.d file on top of users.yaml.
    pub extra_templates: Vec<String>,
}

/// main.yaml's runtime defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeDefaults {
    /// Memory limit of a workspace whose template sets none, in bytes.
    pub memory_bytes: u64,
    /// Process limit of a workspace whose template sets none.
    pub pids_limit: u32,
    /// Idle timeout of a workspace whose template sets none, in seconds.
    pub idle_timeout_seconds: u64,
}

/// `POST /api/v1/ping`: a CLI installation says it is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingRequest {
    /// The installation: the client id of the token it authenticates with.
    pub client_id: ClientId,
    /// The machine's hostname (1 to 253 printable characters).
    #[schemars(length(min = 1, max = 253), regex(pattern = super::PRINTABLE))]
    pub hostname: String,
    /// The CLI's version (1 to 64 printable characters).
    #[schemars(length(min = 1, max = 64), regex(pattern = super::PRINTABLE))]
    pub version: String,
    /// Workspaces the CLI runs on its own machine (`berth start --local`), at most 100.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub local_workspaces: Vec<LocalWorkspace>,
}

/// A workspace a CLI runs on its own machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalWorkspace {
    /// The CLI's name for it (its container name, say), at most 128 characters.
    #[schemars(length(min = 1, max = 128), regex(pattern = super::PRINTABLE))]
    pub id: String,
    /// The template it was started from.
    #[schemars(length(min = 1, max = 63), regex(pattern = super::PRINTABLE))]
    pub template: String,
    /// `running`, `stopped`, ... as the local engine says, at most 32 characters.
    #[schemars(length(min = 1, max = 32), regex(pattern = super::PRINTABLE))]
    pub state: String,
}

/// The answer to a ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PingResponse {
    /// When the server received it.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub received_at: OffsetDateTime,
    /// When to ping next, in seconds.
    pub interval_seconds: u32,
}

/// `GET /api/v1/monitor` (admins): the host, the running workspaces and the clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Monitor {
    /// The server's machine.
    pub host: HostStats,
    /// Live workspaces (pending, starting, running, stopping), with why they are kept alive.
    pub workspaces: Vec<RunningWorkspace>,
    /// Every client that ever pinged, most recently seen first.
    pub clients: Vec<ClientSeen>,
    /// Containers waiting in each template's pool.
    pub pools: Vec<PoolSize>,
}

/// CPU, memory, disk and load of the server's machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostStats {
    /// CPU busy time over the last interval, 0 to 100 (all cores together).
    pub cpu_percent: f64,
    /// Logical CPUs.
    pub cpus: u32,
    /// Memory.
    pub memory: MemoryStats,
    /// The file system of Berth's home directory.
    pub disk: DiskStats,
    /// Load averages.
    pub load: LoadAverage,
    /// Seconds since the machine booted.
    pub uptime_seconds: u64,
}

/// Memory of the machine, from /proc/meminfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryStats {
    /// Total usable memory.
    pub total_bytes: u64,
    /// Memory available to new processes without swapping.
    pub available_bytes: u64,
}

/// A file system's size and free space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiskStats {
    /// The directory measured (Berth's home).
    pub path: String,
    /// Size of the file system.
    pub total_bytes: u64,
    /// Space available to Berth.
    pub available_bytes: u64,
}

/// Run-queue load averages over 1, 5 and 15 minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadAverage {
    /// Over 1 minute.
    pub one: f64,
    /// Over 5 minutes.
    pub five: f64,
    /// Over 15 minutes.
    pub fifteen: f64,
}

/// A live workspace on the monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunningWorkspace {
    /// The workspace.
    pub id: WorkspaceId,
    /// Its owner.
    pub owner: Username,
    /// Its template.
    pub template: String,
    /// Its state.
    pub state: WorkspaceState,
    /// When its container last started.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started_at: Option<OffsetDateTime>,
    /// Why it is still alive: "2 terminals attached", "idle for 3m of 15m", ...
    pub alive_reason: String,
    /// Terminals attached now.
    pub attached: u32,
    /// Seconds since the last terminal activity.
    pub idle_seconds: u64,
    /// Seconds left before its TTL removes it.
    pub expires_in_seconds: Option<u64>,
}

/// A client's latest ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientSeen {
    /// The installation.
    pub client_id: ClientId,
    /// Its user.
    pub username: Username,
    /// Its machine, as it reports it.
    pub hostname: String,
    /// Its version.
    pub version: String,
    /// Its first ping.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub first_seen: OffsetDateTime,
    /// Its latest ping.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub last_seen: OffsetDateTime,
    /// The address of its latest ping.
    pub last_ip: String,
    /// What it ran locally at its latest ping.
    pub local_workspaces: Vec<LocalWorkspace>,
}

/// One template's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PoolSize {
    /// The template.
    pub template: String,
    /// Containers waiting.
    pub size: u64,
}

/// `GET /api/v1/templates`: the entries of containers.yaml (`T`: `berth_config::Template`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateList<T> {
    /// In containers.yaml order.
    pub templates: Vec<T>,
}
