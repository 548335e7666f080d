//! What the core asks the runtime to create: a [`ContainerSpec`] with safe defaults.
//!
//! The core maps a template to a spec; this module only checks that the spec is well-formed and
//! safe to hand to an engine ([`ContainerSpec::validate`]). Paths allowed for bind mounts are the
//! caller's business; the Docker socket is refused here whatever the caller allowed.

mod env;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use env::Env;

/// A main process that never exits, for workspaces whose image's CMD is an interactive shell.
pub const IDLE_COMMAND: [&str; 2] = ["sleep", "infinity"];

/// The Docker sockets refused as bind sources in addition to the one the runtime talks to.
pub const DEFAULT_DOCKER_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

const GIB: i64 = 1024 * 1024 * 1024;
const MIB: i64 = 1024 * 1024;

/// A named volume mounted into the container; the runtime creates it when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// Volume name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
    pub name: String,
    /// Absolute path inside the container.
    pub target: String,
    /// Kept when the container is removed; otherwise removed with it.
    pub persistent: bool,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A host directory or file mounted into the container. The caller has checked the source
/// against the allowed paths; the runtime still refuses Docker sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Absolute host path.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The container's network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// No network at all, only loopback.
    #[default]
    None,
    /// The host's network stack.
    Host,
    /// An existing network by name; the runtime never creates one.
    Named(String),
}

impl NetworkMode {
    pub(crate) fn engine_name(&self) -> &str {
        match self {
            Self::None => "none",
            Self::Host => "host",
            Self::Named(name) => name,
        }
    }
}

/// Resource limits; every container gets a memory and a pids limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU in billionths of a CPU (1.5 CPUs = 1_500_000_000); `None` = no CPU limit.
    pub nano_cpus: Option<i64>,
    /// Memory limit in bytes; swap is limited to the same value (no swap beyond memory).
    pub memory_bytes: i64,
    /// Maximum number of processes and threads.
    pub pids: i64,
    /// Size of the tmpfs mounted at `/tmp` (it counts against the memory limit).
    pub tmp_bytes: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            nano_cpus: None,
            memory_bytes: GIB,
            pids: 512,
            tmp_bytes: 256 * MIB,
        }
    }
}

/// Security settings that may be loosened only by saying so here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// Capabilities added back after dropping all (`NET_BIND_SERVICE`, `CAP_CHOWN`…); `ALL` is
    /// refused.
    pub cap_add: Vec<String>,
    /// Mount the image's root file system read-only (`/tmp` and volumes stay writable).
    pub read_only_root: bool,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals.
    pub init: bool,
}

impl Default for Hardening {
    fn default() -> Self {
        Self {
            cap_add: Vec::new(),
            read_only_root: false,
            init: true,
        }
    }
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Container name, unique in the engine.
    pub name: String,
    /// Image reference; it must already be loaded in the engine.
    pub image: String,
    /// Command replacing the image's CMD; see [`IDLE_COMMAND`].
    pub command: Option<Vec<String>>,
    /// Environment variables.
    pub env: Env,
    /// Named volumes.
    pub volumes: Vec<VolumeMount>,
    /// Host bind mounts.
    pub binds: Vec<BindMount>,
    /// Working directory (absolute).
    pub working_dir: Option<String>,
    /// `user`, `user:group`, `uid` or `uid:gid`.
    pub user: Option<String>,
    /// Host name inside the container.
    pub hostname: Option<String>,
    /// Network.
    pub network: NetworkMode,
    /// Resource limits.
    pub limits: Limits,
    /// Security settings.
    pub hardening: Hardening,
    /// Labels; the runtime always adds `berth.managed=true`.
    pub labels: BTreeMap<String, String>,
}

impl ContainerSpec {
    /// A spec with the default limits and hardening, no network and the image's command.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            command: None,
            env: Env::new(),
            volumes: Vec::new(),
            binds: Vec::new(),
            working_dir: None,
            user: None,
            hostname: None,
            network: NetworkMode::None,
            limits: Limits::default(),
            hardening: Hardening::default(),
            labels: BTreeMap::new(),
        }
    }
}
